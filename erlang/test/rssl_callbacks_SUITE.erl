%% Application callbacks in certificate checks, for the module under test
%% (?M, rssl by default) with OTP's ssl as the peer: verify_fun (the events
%% it sees, its state, the alerts its verdicts send), partial_chain, CRL
%% checking with the internal CRL cache, over TLS 1.3 and 1.2; and NPN
%% (TLS 1.2).
%%
%% Compile with {d, 'M', ssl} to run the same checks with ssl on both ends.
-module(rssl_callbacks_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("public_key/include/public_key.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).
-define(P, rssl_peer_lib).

-export([suite/0, all/0, groups/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([verify_fun_valid_peer/1, verify_fun_unknown_ca_chain/1,
         verify_fun_unknown_ca_accepted/1, verify_fun_hostname/1,
         verify_fun_verify_none/1, verify_fun_arity_4/1,
         verify_fun_fail_alerts/1, verify_fun_fail_unknown_ca/1,
         verify_fun_server/1, verify_fun_old_style/1,
         partial_chain_anchor/1, partial_chain_unknown_ca/1,
         crl_revoked/1, crl_not_revoked/1, crl_peer_only/1,
         crl_missing/1, crl_best_effort/1, crl_verify_fun/1,
         npn/1, npn_server_precedence/1, npn_default/1, npn_none/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [{group, 'tlsv1.3'}, {group, 'tlsv1.2'}, {group, npn}].

groups() ->
    Cases = [verify_fun_valid_peer, verify_fun_unknown_ca_chain,
             verify_fun_unknown_ca_accepted, verify_fun_hostname,
             verify_fun_verify_none, verify_fun_arity_4,
             verify_fun_fail_alerts, verify_fun_fail_unknown_ca,
             verify_fun_server, verify_fun_old_style,
             partial_chain_anchor, partial_chain_unknown_ca,
             crl_revoked, crl_not_revoked, crl_peer_only,
             crl_missing, crl_best_effort, crl_verify_fun],
    [{'tlsv1.3', [], Cases}, {'tlsv1.2', [], Cases},
     {npn, [], [npn, npn_server_precedence, npn_default, npn_none]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(ssl),
    ok = ?M:start(),
    Dir = ?config(priv_dir, Config),
    Pki = rssl_test_pki:make(Dir),
    ok = rssl_test_lib:warm_up(?M, Pki),
    %% The server certificate followed by its CA, for chains of two.
    #{server := #{cert := ServerFile}, ca := #{cert := CaFile}} = Pki,
    ChainFile = filename:join(Dir, "server_chain_" ++ integer_to_list(erlang:unique_integer([positive])) ++ ".pem"),
    {ok, S} = file:read_file(ServerFile),
    {ok, C} = file:read_file(CaFile),
    ok = file:write_file(ChainFile, [S, C]),
    {Crls, CrlFiles} = make_crls(Dir, Pki),
    [{pki, Pki}, {chain_file, ChainFile}, {crls, Crls}, {crl_files, CrlFiles} | Config].

end_per_suite(_Config) ->
    ok.

init_per_group(npn, Config) -> [{tls_version, 'tlsv1.2'} | Config];
init_per_group(Version, Config) -> [{tls_version, Version} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    %% CRLs a case put in the cache.
    [(crl_cache()):delete({der, [Der]}) || {_, Der} <- ?config(crls, Config)],
    rssl_test_lib:end_per_testcase(Config).

%%% verify_fun ----------------------------------------------------------------

%% A trusted chain: one event, valid_peer for the server's certificate (the
%% trusted CA is the anchor and is not shown).
verify_fun_valid_peer(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [recording_fun(Config, accept)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?assertEqual([{server, valid_peer, 0}], events()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% The server sends its CA, which the client does not trust: unknown_ca for
%% the CA (accepted, it becomes the anchor), then valid_peer; the state
%% goes from one call to the next.
verify_fun_unknown_ca_chain(Config) ->
    COpts = ?P:client_opts(Config, other_ca) ++ [recording_fun(Config, accept)],
    SOpts = chain_server_opts(Config),
    {{ok, S}, Server} = ?P:m_client(?M, COpts, SOpts, "localhost"),
    ?assertEqual([{ca, {bad_cert, unknown_ca}, 0}, {server, valid_peer, 1}], events()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% Only the server's certificate, from an unknown CA: one unknown_ca event;
%% accepting it accepts the certificate (no valid_peer after it).
verify_fun_unknown_ca_accepted(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [recording_fun(Config, accept)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, other_server), "localhost"),
    ?assertEqual([{other_server, {bad_cert, unknown_ca}, 0}], events()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% The host name does not match: hostname_check_failed in place of
%% valid_peer; accepted, the connection is up.
verify_fun_hostname(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [recording_fun(Config, accept)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, wrong_host), "localhost"),
    ?assertEqual([{wrong_host, {bad_cert, hostname_check_failed}, 0}], events()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)),
    %% Rejected: handshake_failure, as without a fun.
    COpts2 = ?P:client_opts(Config, ca) ++ [recording_fun(Config, {fail_on, hostname_check_failed})],
    {Result, Server2} = ?P:m_client(?M, COpts2, ?P:server_opts(Config, wrong_host), "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, Result),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, rssl_test_lib:await(Server2)),
    ?assertEqual([{wrong_host, {bad_cert, hostname_check_failed}, 0}], events()).

%% With verify_none the fun still sees every event (no CA needed) and its
%% verdict counts.
verify_fun_verify_none(Config) ->
    COpts = [{verify, verify_none}, recording_fun(Config, accept) | ?P:base_opts(Config)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, wrong_host), "localhost"),
    ?assertEqual([{wrong_host, {bad_cert, unknown_ca}, 0}], events()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)),
    COpts2 = [{verify, verify_none}, recording_fun(Config, {fail_on, unknown_ca}) | ?P:base_opts(Config)],
    {Result, Server2} = ?P:m_client(?M, COpts2, ?P:server_opts(Config, server), "localhost"),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, Result),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl_test_lib:await(Server2)),
    ?assertEqual([{server, {bad_cert, unknown_ca}, 0}], events()),
    %% verify_peer without any CA: a fun is enough.
    COpts3 = [{verify, verify_peer}, recording_fun(Config, accept) | ?P:base_opts(Config)],
    {{ok, S3}, Server3} = ?P:m_client(?M, COpts3, ?P:server_opts(Config, server), "localhost"),
    ?assertEqual([{server, {bad_cert, unknown_ca}, 0}], events()),
    ?P:client_exchange(?M, S3),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server3)).

%% fun/4 also gets the DER certificate.
verify_fun_arity_4(Config) ->
    Self = self(),
    Fun = fun(_Otp, Der, {extension, _}, S) when is_binary(Der) -> {unknown, S};
             (Otp, Der, Event, S) ->
                  Self ! {der, Der, Otp =:= public_key:pkix_decode_cert(Der, otp), Event, S},
                  {valid, S}
          end,
    COpts = ?P:client_opts(Config, ca) ++ [{verify_fun, {Fun, state}}],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    Der = ?P:der(Config, server),
    receive {der, D, Same, E, St} -> ?assertEqual({Der, true, valid_peer, state}, {D, Same, E, St})
    after 0 -> ct:fail(no_call)
    end,
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% {fail, Reason} at valid_peer: the alert OTP's ssl sends for Reason, on
%% both ends. A reason of the application's own is handshake_failure.
verify_fun_fail_alerts(Config) ->
    Cases = [{my_reason, handshake_failure},
             {{bad_cert, cert_expired}, certificate_expired},
             {{bad_cert, invalid_signature}, bad_certificate},
             {{bad_cert, selfsigned_peer}, bad_certificate},
             {{bad_cert, {revoked, keyCompromise}}, certificate_revoked},
             {{bad_cert, unknown_critical_extension}, unsupported_certificate},
             {{bad_cert, hostname_check_failed}, handshake_failure},
             {cert_expired, certificate_expired}],
    [begin
         Fun = fun(_, {extension, _}, S) -> {unknown, S};
                  (_, _, _) -> {fail, Reason}
               end,
         COpts = ?P:client_opts(Config, ca) ++ [{verify_fun, {Fun, []}}],
         {Result, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
         ?assertMatch({Reason, {error, {tls_alert, {Alert, _}}}}, {Reason, Result}),
         ?assertMatch({Reason, {error, {tls_alert, {Alert, _}}}}, {Reason, rssl_test_lib:await(Server)})
     end || {Reason, Alert} <- Cases].

%% {fail, Reason} for an unknown CA: OTP takes the reason as it is there, so
%% {bad_cert, unknown_ca} sends unknown_ca and a bare atom handshake_failure.
verify_fun_fail_unknown_ca(Config) ->
    Cases = [{{bad_cert, unknown_ca}, unknown_ca},
             {unknown_ca, handshake_failure},
             {{bad_cert, cert_expired}, certificate_expired},
             {my_reason, handshake_failure}],
    [begin
         Fun = fun(_, {extension, _}, S) -> {unknown, S};
                  (_, _, _) -> {fail, Reason}
               end,
         COpts = ?P:client_opts(Config, ca) ++ [{verify_fun, {Fun, []}}],
         {Result, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, other_server), "localhost"),
         ?assertMatch({Reason, {error, {tls_alert, {Alert, _}}}}, {Reason, Result}),
         ?assertMatch({Reason, {error, {tls_alert, {Alert, _}}}}, {Reason, rssl_test_lib:await(Server)})
     end || {Reason, Alert} <- Cases].

%% A server's fun sees the client's certificate; its verdict decides.
verify_fun_server(Config) ->
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, ca)
        ++ [recording_fun(Config, accept)],
    COpts = ?P:client_opts(Config, ca) ++ ?P:cert_opts(Config, client),
    {{ok, S}, Client} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?assertEqual([{client, valid_peer, 0}], events()),
    ?P:server_exchange(?M, S),
    ?assertMatch(#{result := ok}, rssl_test_lib:await(Client)),
    SOpts2 = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, ca)
        ++ [recording_fun(Config, {fail_on, valid_peer})],
    {Result, Client2} = ?P:m_server(?M, SOpts2, COpts, "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, Result),
    ?P:peer_saw_alert(Config, handshake_failure, rssl_test_lib:await(Client2)).

%% The old form, fun([{bad_cert, _}]) -> boolean(), wrapped as OTP does.
verify_fun_old_style(Config) ->
    Self = self(),
    Yes = fun(Errors) -> Self ! {old, Errors}, true end,
    COpts = ?P:client_opts(Config, ca) ++ [{verify_fun, Yes}],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, other_server), "localhost"),
    receive {old, Errors} -> ?assertEqual([{bad_cert, unknown_ca}], Errors) after 0 -> ct:fail(no_call) end,
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)),
    No = fun(_) -> false end,
    COpts2 = ?P:client_opts(Config, ca) ++ [{verify_fun, No}],
    {Result, Server2} = ?P:m_client(?M, COpts2, ?P:server_opts(Config, other_server), "localhost"),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, Result),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl_test_lib:await(Server2)).

%%% partial_chain -------------------------------------------------------------

%% The server sends [server, ca]; the client trusts neither CA but its
%% partial_chain fun names the CA in the chain as anchor. The fun gets the
%% chain from the top down.
partial_chain_anchor(Config) ->
    Self = self(),
    CaDer = ?P:der(Config, ca),
    Fun = fun(Chain) -> Self ! {chain, Chain}, {trusted_ca, CaDer} end,
    COpts = ?P:client_opts(Config, other_ca) ++ [{partial_chain, Fun}],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, chain_server_opts(Config), "localhost"),
    ?assertEqual([CaDer, ?P:der(Config, server)], last_chain()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% unknown_ca (or an anchor not in the chain, or a crash) leaves the chain
%% untrusted.
partial_chain_unknown_ca(Config) ->
    OtherDer = ?P:der(Config, other_ca),
    [begin
         COpts = ?P:client_opts(Config, other_ca) ++ [{partial_chain, Fun}],
         {Result, Server} = ?P:m_client(?M, COpts, chain_server_opts(Config), "localhost"),
         ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, Result),
         ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl_test_lib:await(Server))
     end || Fun <- [fun(_) -> unknown_ca end,
                    fun(_) -> {trusted_ca, OtherDer} end,
                    fun(_) -> error(crash) end]].

%%% CRLs ----------------------------------------------------------------------

%% The server's certificate is in the CA's CRL: certificate_revoked.
crl_revoked(Config) ->
    ok = (crl_cache()):insert({der, [crl(Config, revokes_server)]}),
    COpts = ?P:client_opts(Config, ca) ++ [{crl_check, true}],
    {Result, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?assertMatch({error, {tls_alert, {certificate_revoked, _}}}, Result),
    ?assertMatch({error, {tls_alert, {certificate_revoked, _}}}, rssl_test_lib:await(Server)).

%% A CRL that lists another certificate.
crl_not_revoked(Config) ->
    ok = (crl_cache()):insert({der, [crl(Config, revokes_other)]}),
    COpts = ?P:client_opts(Config, ca) ++ [{crl_check, true}],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)),
    %% Without crl_check the revoked certificate goes through.
    ok = (crl_cache()):insert({der, [crl(Config, revokes_server)]}),
    {{ok, S2}, Server2} = ?P:m_client(?M, ?P:client_opts(Config, ca), ?P:server_opts(Config, server), "localhost"),
    ?P:client_exchange(?M, S2),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server2)).

%% crl_check peer, a server's check of a client, and a CRL given as a file.
crl_peer_only(Config) ->
    #{revokes_client := ClientCrlFile} = ?config(crl_files, Config),
    ok = (crl_cache()):insert({file, ClientCrlFile}),
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, ca) ++ [{crl_check, peer}],
    COpts = ?P:client_opts(Config, ca) ++ ?P:cert_opts(Config, client),
    {Result, Client} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?assertMatch({error, {tls_alert, {certificate_revoked, _}}}, Result),
    ?P:peer_saw_alert(Config, certificate_revoked, rssl_test_lib:await(Client)),
    ok = (crl_cache()):delete({file, ClientCrlFile}),
    ok = (crl_cache()):insert({der, [crl(Config, revokes_other)]}),
    {{ok, S}, Client2} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?P:server_exchange(?M, S),
    ?assertMatch(#{result := ok}, rssl_test_lib:await(Client2)).

%% No CRL for the CA: revocation status undetermined, bad_certificate.
crl_missing(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [{crl_check, true}],
    {Result, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?assertMatch({error, {tls_alert, {bad_certificate, _}}}, Result),
    ?assertMatch({error, {tls_alert, {bad_certificate, _}}}, rssl_test_lib:await(Server)).

%% best_effort: no CRL is no failure; a revocation still is.
crl_best_effort(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [{crl_check, best_effort}],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)),
    ok = (crl_cache()):insert({der, [crl(Config, revokes_server)]}),
    {Result, Server2} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?assertMatch({error, {tls_alert, {certificate_revoked, _}}}, Result),
    ?assertMatch({error, {tls_alert, {certificate_revoked, _}}}, rssl_test_lib:await(Server2)).

%% A verify_fun sees the revocation after valid_peer, with the CRL entry's
%% reason, and may accept it.
crl_verify_fun(Config) ->
    ok = (crl_cache()):insert({der, [crl(Config, revokes_server)]}),
    COpts = ?P:client_opts(Config, ca) ++ [{crl_check, true}, recording_fun(Config, accept)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?assertEqual([{server, valid_peer, 0},
                  {server, {bad_cert, {revoked, keyCompromise}}, 1}], events()),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%%% NPN (TLS 1.2) -------------------------------------------------------------

%% Client precedence: the client's first protocol the server has.
npn(Config) ->
    Advertised = [<<"http/1.1">>, <<"spdy/3">>],
    Preferred = {client, [<<"spdy/3">>, <<"http/1.1">>]},
    npn_both_ways(Config, Advertised, Preferred, {ok, <<"spdy/3">>}).

%% Server precedence: the server's first protocol the client has.
npn_server_precedence(Config) ->
    Advertised = [<<"http/1.1">>, <<"spdy/3">>],
    Preferred = {server, [<<"spdy/3">>, <<"http/1.1">>]},
    npn_both_ways(Config, Advertised, Preferred, {ok, <<"http/1.1">>}).

%% Nothing in common: the client's default.
npn_default(Config) ->
    Advertised = [<<"http/1.1">>],
    Preferred = {client, [<<"spdy/3">>], <<"spdy/2">>},
    npn_both_ways(Config, Advertised, Preferred, {ok, <<"spdy/2">>}).

%% Neither side asks for NPN: {error, protocol_not_negotiated}.
npn_none(Config) ->
    npn_both_ways(Config, undefined, undefined, {error, protocol_not_negotiated}).

npn_both_ways(Config, Advertised, Preferred, Expected) ->
    SOpts = ?P:server_opts(Config, server) ++ [{next_protocols_advertised, Advertised} || Advertised =/= undefined],
    COpts = ?P:client_opts(Config, ca) ++ [{client_preferred_next_protocols, Preferred} || Preferred =/= undefined],
    %% ?M client
    {{ok, S1}, Server} = ?P:m_client(?M, COpts, SOpts, "localhost"),
    ?assertEqual(Expected, ?M:negotiated_protocol(S1)),
    ?P:client_exchange(?M, S1),
    ?assertMatch(#{result := {error, closed}, protocol := Expected}, rssl_test_lib:await(Server)),
    %% ?M server
    {{ok, S2}, Client} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?assertEqual(Expected, ?M:negotiated_protocol(S2)),
    ?P:server_exchange(?M, S2),
    ?assertMatch(#{result := ok, protocol := Expected}, rssl_test_lib:await(Client)).

%%% Helpers -----------------------------------------------------------------

crl_cache() ->
    list_to_atom(atom_to_list(?M) ++ "_crl_cache").

chain_server_opts(Config) ->
    #{server := #{key := Key}} = ?config(pki, Config),
    ?P:base_opts(Config) ++ [{certfile, ?config(chain_file, Config)}, {keyfile, Key}].

crl(Config, Name) ->
    proplists:get_value(Name, ?config(crls, Config)).

%% A verify_fun that reports {vf, CertName, Event, State} for each event but
%% extensions (OTP reports those, rssl leaves them to OpenSSL), counting
%% calls in its state. `accept' accepts everything; {fail_on, Reason}
%% fails that event ({bad_cert, Reason}, or valid_peer).
recording_fun(Config, Mode) ->
    Self = self(),
    Names = [{public_key:pkix_decode_cert(?P:der(Config, N), otp), N}
             || N <- [ca, server, client, wrong_host, other_server, other_ca]],
    Fun = fun(_, {extension, _}, S) ->
                  {unknown, S};
             (Cert, Event, S) ->
                  Name = proplists:get_value(Cert, Names, unknown_cert),
                  Self ! {vf, Name, Event, S},
                  case {Mode, Event} of
                      {{fail_on, R}, {bad_cert, R}} -> {fail, Event};
                      {{fail_on, R}, R} -> {fail, R};
                      _ -> {valid, S + 1}
                  end
          end,
    {verify_fun, {Fun, 0}}.

events() ->
    receive {vf, Name, Event, S} -> [{Name, Event, S} | events()]
    after 0 -> []
    end.

last_chain() ->
    receive {chain, Chain} -> Chain after 0 -> ct:fail(partial_chain_not_called) end.


%% CRLs of the test CA made with the openssl command line tool:
%% revokes_server (the server's certificate, keyCompromise), revokes_client
%% (the client's), revokes_other (wrong_host's only). Returns
%% {[{Name, Der}], #{Name => PemFile}}.
make_crls(Dir0, Pki) ->
    Dir = filename:join(Dir0, "crl-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Files = maps:from_list(
              [{Name, crl_file(Dir, Pki, Name, Revoked)}
               || {Name, Revoked} <- [{revokes_server, server}, {revokes_client, client},
                                      {revokes_other, wrong_host}]]),
    {[{Name, begin
                 {ok, Pem} = file:read_file(File),
                 [{'CertificateList', Der, not_encrypted}] = public_key:pem_decode(Pem),
                 Der
             end} || {Name, File} <- maps:to_list(Files)], Files}.

crl_file(Dir, Pki, Name, Revoked) ->
    #{ca := #{cert := CaCert, key := CaKey}, Revoked := #{cert := RevokedCert}} = Pki,
    Base = filename:join(Dir, atom_to_list(Name)),
    Index = Base ++ ".index",
    ok = file:write_file(Index, ""),
    ok = file:write_file(Base ++ ".crlnumber", "01\n"),
    Cnf = Base ++ ".cnf",
    ok = file:write_file(Cnf, ["[ca]\ndefault_ca = rssl\n[rssl]\n",
                               "database = ", Index, "\n",
                               "crlnumber = ", Base, ".crlnumber\n",
                               "default_md = sha256\ndefault_crl_days = 30\n"]),
    Common = " -config '" ++ Cnf ++ "' -keyfile '" ++ CaKey ++ "' -cert '" ++ CaCert ++ "'",
    Out1 = os:cmd("openssl ca" ++ Common ++ " -revoke '" ++ RevokedCert
                  ++ "' -crl_reason keyCompromise 2>&1"),
    File = Base ++ ".pem",
    Out2 = os:cmd("openssl ca" ++ Common ++ " -gencrl -out '" ++ File ++ "' 2>&1"),
    case filelib:is_regular(File) of
        true -> File;
        false -> error({openssl_ca_failed, Out1, Out2})
    end.
