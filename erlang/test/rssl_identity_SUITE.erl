%% Certificates and identities of the module under test (?M, rssl by
%% default) against OTP's ssl as the peer: several certificate/key pairs
%% (`certs_keys') chosen by the peer's signature algorithms, in both roles,
%% TLS 1.3 and 1.2, and through sni_hosts, sni_fun and handshake_continue.
%%
%% Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to check the cases
%% against OTP's ssl itself.
-module(rssl_identity_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("public_key/include/public_key.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).
-define(L, rssl_test_lib).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([server_picks_by_signature_algs/1, client_picks_by_signature_algs/1,
         certs_keys_in_sni_hosts/1, certs_keys_from_sni_fun/1,
         certs_keys_in_handshake_continue/1, certs_keys_over_single_options/1,
         certs_keys_der_and_pem/1, certs_keys_bad_values/1,
         eccs_server_tls12/1, eccs_client_tls12/1, eccs_leave_tls13_alone/1,
         eccs_bad_values/1, signature_algs_cert_values/1,
         extension_events_client/1, extension_events_server/1, verify_fun_client_gone/1,
         crl_http_fetch/1, crl_http_unreachable/1, crl_hash_dir/1, crl_cache_bad_values/1,
         keep_secrets_client/1, keep_secrets_server/1, max_fragment_length/1,
         certificate_authorities/1, key_update_at/1, renegotiate_at/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [{group, 'tlsv1.3'}, {group, 'tlsv1.2'}, certs_keys_bad_values,
          eccs_server_tls12, eccs_client_tls12, eccs_leave_tls13_alone, eccs_bad_values,
          signature_algs_cert_values, extension_events_client, extension_events_server,
          verify_fun_client_gone,
          crl_http_fetch, crl_http_unreachable, crl_hash_dir, crl_cache_bad_values,
          keep_secrets_client, keep_secrets_server, max_fragment_length,
          certificate_authorities, key_update_at, renegotiate_at].

groups() ->
    Cases = [server_picks_by_signature_algs, client_picks_by_signature_algs,
             certs_keys_in_sni_hosts, certs_keys_from_sni_fun,
             certs_keys_in_handshake_continue, certs_keys_over_single_options,
             certs_keys_der_and_pem],
    [{'tlsv1.3', [], Cases}, {'tlsv1.2', [], Cases}].

init_per_suite(Config) ->
    Config1 = rssl_socket_lib:init_suite(?M, Config),
    {ok, _} = application:ensure_all_started(inets),
    {Http, HttpPort} = http_start(),
    Ids = #{pki_dir := Dir} = make_pki(?config(priv_dir, Config), HttpPort),
    Http ! {self(), dir, Dir},
    receive {Http, ok} -> ok after ?T -> error(http_dir) end,
    [{http, Http}, {ids, Ids} | Config1].

end_per_suite(Config) ->
    http_stop(?config(http, Config)).

init_per_group(Version, Config) -> [{tls_version, Version} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(TC, Config) ->
    case otp_fails(TC, ?config(tls_version, Config)) of
        true ->
            {skip, "OTP 25's own certs_keys fails this case (see otp_fails/2)"};
        false ->
            [{resources, ?L:snapshot()} | Config]
    end.

%% Cases OTP 25's ssl (10.8) fails itself, run with ?M = ssl: in TLS 1.3
%% its server crashes (function_clause in
%% tls_handshake_1_3:select_server_cert_key_pair/3) when its first pair
%% is RSA or is ruled out by the client, and its client sends no
%% certificate when the server's signature algorithms rule out its first
%% pair.
otp_fails(TC, V) ->
    otp() andalso
        V =:= 'tlsv1.3' andalso
        lists:member(TC, [client_picks_by_signature_algs, certs_keys_from_sni_fun,
                          certs_keys_der_and_pem]).

end_per_testcase(TC, Config) ->
    case otp_fails(TC, ?config(tls_version, Config)) of
        true -> ok;
        false -> ?L:end_per_testcase(Config)
    end.

%%% Cases: certs_keys -------------------------------------------------------

%% A ?M server holding an ECDSA and an RSA identity: an ssl client offering
%% only ECDSA signature algorithms gets the ECDSA certificate, one offering
%% only RSA gets the RSA one.
server_picks_by_signature_algs(Config) ->
    V = ?config(tls_version, Config),
    ServerOpts = base(V) ++ [{certs_keys, [pair(Config, ec_server), pair(Config, rsa_server)]}],
    [?assertEqual(Kind, server_cert_kind(ServerOpts, client_opts(Config, V) ++ algs(V, Kind)))
     || Kind <- kinds(V, [ec, rsa])].

%% A ?M client holding both identities: an ssl server asking for a client
%% certificate and accepting only ECDSA (or only RSA) signatures gets the
%% matching certificate.
client_picks_by_signature_algs(Config) ->
    V = ?config(tls_version, Config),
    ClientOpts = client_opts(Config, V)
        ++ [{certs_keys, [pair(Config, rsa_client), pair(Config, ec_client)]}],
    [?assertEqual(Kind, client_cert_kind(ClientOpts, verifying_server(Config, V, Kind)))
     || Kind <- [ec, rsa, ec]].

%% certs_keys in an sni_hosts entry: the host named gets both identities.
certs_keys_in_sni_hosts(Config) ->
    V = ?config(tls_version, Config),
    Both = [{certs_keys, [pair(Config, ec_server), pair(Config, rsa_server)]}],
    ServerOpts = base(V) ++ single(Config, other_server) ++ [{sni_hosts, [{"localhost", Both}]}],
    [?assertEqual(Kind, server_cert_kind(ServerOpts, client_opts(Config, V) ++ algs(V, Kind)))
     || Kind <- kinds(V, [ec, rsa])].

%% certs_keys returned by an sni_fun.
certs_keys_from_sni_fun(Config) ->
    V = ?config(tls_version, Config),
    Both = [{certs_keys, [pair(Config, rsa_server), pair(Config, ec_server)]}],
    Fun = fun("localhost") -> Both; (_) -> [] end,
    ServerOpts = base(V) ++ single(Config, other_server) ++ [{sni_fun, Fun}],
    [?assertEqual(Kind, server_cert_kind(ServerOpts, client_opts(Config, V) ++ algs(V, Kind)))
     || Kind <- kinds(V, [rsa, ec])].

%% A server stopping at the hello adds certs_keys with handshake_continue.
certs_keys_in_handshake_continue(Config) ->
    V = ?config(tls_version, Config),
    Both = [{certs_keys, [pair(Config, ec_server), pair(Config, rsa_server)]}],
    [begin
         {ok, L} = ?M:listen(0, [{reuseaddr, true}, {handshake, hello} | base(V)]),
         {ok, {_, Port}} = ?M:sockname(L),
         Client = ?L:start_client(ssl, "localhost", Port, client_opts(Config, V) ++ algs(V, Kind),
                                  fun peer_cert_kind/1),
         {ok, T} = ?M:transport_accept(L, ?T),
         {ok, S, _Ext} = ?M:handshake(T, ?T),
         {ok, S} = ?M:handshake_continue(S, Both, ?T),
         ?assertEqual(Kind, ?L:await(Client)),
         ok = ?M:close(S),
         ok = ?M:close(L)
     end || Kind <- kinds(V, [ec, rsa])].

%% With certs_keys, certfile/keyfile given beside it are not used (as in
%% OTP): an unreadable certfile beside a good certs_keys is no error, and
%% the certificate sent is one of certs_keys.
certs_keys_over_single_options(Config) ->
    V = ?config(tls_version, Config),
    Missing = filename:join(?config(priv_dir, Config), "no-such-file.pem"),
    ServerOpts = base(V) ++ [{certfile, Missing}, {keyfile, Missing},
                             {certs_keys, [pair(Config, rsa_server)]}],
    ?assertEqual(rsa, server_cert_kind(ServerOpts, client_opts(Config, V))).

%% Entries given as DER (cert, key) and as files mixed in one list.
certs_keys_der_and_pem(Config) ->
    V = ?config(tls_version, Config),
    #{ec_server := #{cert := EcCert, key := EcKey}} = ?config(ids, Config),
    Der = #{cert => cert_der(EcCert), key => key_der(EcKey)},
    ServerOpts = base(V) ++ [{certs_keys, [pair(Config, rsa_server), Der]}],
    [?assertEqual(Kind, server_cert_kind(ServerOpts, client_opts(Config, V) ++ algs(V, Kind)))
     || Kind <- kinds(V, [rsa, ec])].

%% A value that is not a list is an options error, as in OTP. OTP's ssl
%% crashes the connection process on malformed entries; rssl answers
%% {error, {options, _}} for them.
certs_keys_bad_values(Config) ->
    V = 'tlsv1.3',
    ?assertEqual({error, {options, {certs_keys, foo}}},
                 ?M:listen(0, base(V) ++ [{certs_keys, foo}])),
    ?assertEqual({error, {options, {certs_keys, foo}}},
                 ?M:connect("localhost", 1, base(V) ++ [{certs_keys, foo}], ?T)),
    case otp() of
        true ->
            ok;
        false ->
            #{ec_server := #{cert := EcCert, key := EcKey},
              rsa_server := #{key := RsaKey}} = ?config(ids, Config),
            [?assertMatch({error, {options, _}}, listen_error(base(V) ++ [{certs_keys, Bad}]))
             || Bad <- [[foo], [#{keyfile => EcKey}], [#{certfile => EcCert, bogus => 1}],
                        [#{certfile => EcCert, keyfile => RsaKey}],
                        [#{certfile => EcCert, keyfile => "/no/such/file"}],
                        [#{cert => <<"garbage">>, keyfile => EcKey}]]]
    end.

%%% Cases: eccs and signature_algs_cert -------------------------------------

%% A ?M server's eccs decide the ECDHE curve of its TLS 1.2 connections:
%% an ssl client offering all of OTP's curves gets the one the server
%% lists (and without eccs, another one).
eccs_server_tls12(Config) ->
    V = 'tlsv1.2',
    Server = base(['tlsv1.3', V]) ++ single(Config, ec_server),
    Client = client_opts(Config, V),
    ?assertEqual({named_curve, secp384r1},
                 server_curve(Server ++ [{eccs, [secp384r1]}], Client)),
    ?assertEqual({named_curve, secp256r1},
                 server_curve(Server ++ [{eccs, [foo, secp256r1]}], Client)),
    %% Of several, the client's first (OTP's default: no honor_ecc_order).
    ?assertEqual({named_curve, secp384r1},
                 server_curve(Server ++ [{eccs, [secp256r1, secp384r1]}], Client)),
    ?assertNotEqual({named_curve, secp384r1}, server_curve(Server, Client)).

%% A ?M client offering TLS 1.2 only sends its eccs: an ssl server takes
%% the curve from them (the server's certificate is on P-256, which the
%% list must hold for OpenSSL's client: see README).
eccs_client_tls12(Config) ->
    V = 'tlsv1.2',
    Server = base(V) ++ single(Config, ec_server),
    [begin
         {Pid, Port} = ?L:start_server(ssl, Server, fun curve/1),
         {ok, S} = ?M:connect("localhost", Port,
                              client_opts(Config, V) ++ [{eccs, [Curve, secp256r1]}], ?T),
         ?assertEqual({named_curve, Curve}, ?L:await(Pid)),
         ok = ?M:close(S)
     end || Curve <- [secp384r1, secp521r1]].

%% eccs do not touch TLS 1.3: a server whose eccs an ssl client does not
%% offer still agrees on x25519 with it, and a client with eccs still
%% offers its TLS 1.3 groups.
eccs_leave_tls13_alone(Config) ->
    V = 'tlsv1.3',
    Server = base(V) ++ single(Config, ec_server),
    Client = client_opts(Config, V) ++ [{supported_groups, [x25519]}],
    ?assertEqual(ec, server_cert_kind(Server ++ [{eccs, [secp384r1]}], Client)),
    {Pid, Port} = ?L:start_server(ssl, Server ++ [{supported_groups, [x25519]}],
                                  fun({Ok, _}) -> Ok end),
    {ok, S} = ?M:connect("localhost", Port, client_opts(Config, V) ++ [{eccs, [secp384r1]}], ?T),
    ?assertEqual(ok, ?L:await(Pid)),
    ok = ?M:close(S).

%% Values OTP accepts (unknown curves left out) are accepted; what makes
%% OTP's ssl crash is an options error.
eccs_bad_values(_Config) ->
    Opts = base('tlsv1.2'),
    {ok, L} = ?M:listen(0, Opts ++ [{eccs, [secp256r1, no_such_curve]}]),
    ok = ?M:close(L),
    case otp() of
        true ->
            ok;
        false ->
            ?assertEqual({error, {options, {eccs, foo}}}, ?M:listen(0, Opts ++ [{eccs, foo}])),
            ?assertEqual({error, {options, {eccs, [x25519]}}},
                         ?M:listen(0, Opts ++ [{eccs, [x25519]}]))
    end.

%% signature_algs_cert is checked as OTP checks it (the same error for an
%% empty list); accepted lists let handshakes go on as before (OpenSSL
%% sends no signature_algorithms_cert: see README).
signature_algs_cert_values(Config) ->
    Empty = [{signature_algs_cert, []}],
    ?assertEqual({error, {options, no_supported_signature_schemes, hd(Empty)}},
                 ?M:connect("localhost", 1, base('tlsv1.3') ++ Empty, ?T)),
    ?assertEqual({error, {options, no_supported_signature_schemes, hd(Empty)}},
                 ?M:listen(0, base('tlsv1.3') ++ Empty)),
    [begin
         Server = base(V) ++ single(Config, ec_server),
         Client = client_opts(Config, V) ++ [{signature_algs_cert, Algs}],
         ?assertEqual(ec, server_cert_kind(Server ++ [{signature_algs_cert, Algs}], Client))
     end || {V, Algs} <- [{'tlsv1.3', [ecdsa_secp256r1_sha256, rsa_pkcs1_sha256]},
                          {'tlsv1.2', [{sha256, ecdsa}, rsa_pss_rsae_sha256]}]],
    case otp() of
        true ->
            ok;
        false ->
            [?assertMatch({error, {options, _}},
                          ?M:listen(0, base('tlsv1.3') ++ [{signature_algs_cert, Bad}]))
             || Bad <- [foo, [foo], [rsa_pkcs1_sha256, {sha256, foo}]]]
    end.

%%% Cases: {extension, _} events of verify_fun ------------------------------

-define(CRITICAL_OID, {1, 3, 6, 1, 4, 1, 55555, 1}).
-define(PLAIN_OID, {1, 3, 6, 1, 4, 1, 55555, 2}).

%% A ?M client verifying a server certificate with a custom critical and a
%% custom non-critical extension: the fun sees the same events as with
%% ssl as the client (the extensions OTP leaves to it, then valid_peer);
%% accepting the critical one connects, answering unknown to it fails with
%% unsupported_certificate, as with ssl; unknown to the non-critical one
%% only is no failure.
extension_events_client(Config) ->
    [begin
         Server = base(V) ++ single(Config, ext_server),
         [begin
              Ours = client_events(?M, Config, V, Server, Answer),
              Theirs = client_events(ssl, Config, V, Server, Answer),
              ?assertEqual(Theirs, Ours),
              ?assertMatch({_, [_ | _]}, Ours)
          end || Answer <- [valid, unknown, unknown_plain]]
     end || V <- ['tlsv1.3', 'tlsv1.2']],
    {{ok, _}, Events} = client_events(?M, Config, 'tlsv1.3', base('tlsv1.3')
                                      ++ single(Config, ext_server), valid),
    ?assert(lists:member({extension, ?CRITICAL_OID, true}, Events)),
    ?assert(lists:member({extension, ?PLAIN_OID, false}, Events)),
    ?assertMatch({{error, {tls_alert, {unsupported_certificate, _}}}, _},
                 client_events(?M, Config, 'tlsv1.3', base('tlsv1.3')
                               ++ single(Config, ext_server), unknown)).

%% A ?M server verifying such a client certificate: the same events and
%% outcomes as an ssl server.
extension_events_server(Config) ->
    [begin
         [begin
              Ours = server_events(?M, Config, V, Answer),
              Theirs = server_events(ssl, Config, V, Answer),
              ?assertEqual(Theirs, Ours),
              ?assertMatch({_, [_ | _]}, Ours)
          end || Answer <- [valid, unknown]]
     end || V <- ['tlsv1.3', 'tlsv1.2']].

%% A TLS 1.3 ssl client that closes as soon as its handshake is done (it
%% has sent its certificate and Finished): a ?M server whose verify_fun
%% runs meanwhile still finishes the handshake with what it read, as an
%% ssl server does, and sees the events.
verify_fun_client_gone(Config) ->
    V = 'tlsv1.3',
    Self = self(),
    Ref = make_ref(),
    #{ec_ca := #{cert := EcCa}} = ?config(ids, Config),
    ServerOpts = base(V) ++ single(Config, ec_server)
        ++ [{verify, verify_peer}, {fail_if_no_peer_cert, true}, {cacerts, [cert_der(EcCa)]},
            {verify_fun, {recording_fun(Self, Ref, valid), []}}, {reuseaddr, true}],
    {ok, L} = ?M:listen(0, ServerOpts),
    {ok, {_, Port}} = ?M:sockname(L),
    Client = ?L:start_client(ssl, "localhost", Port,
                             client_opts(Config, V) ++ single(Config, ext_client),
                             fun({Ok, _}) -> Ok end),
    {ok, T} = ?M:transport_accept(L, ?T),
    Result = ?M:handshake(T, ?T),
    ok = ?M:close(L),
    ?assertEqual(ok, ?L:await(Client)),
    ?assertMatch({ok, _}, Result),
    {ok, S} = Result,
    ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
    ok = ?M:close(S),
    ?assert(lists:member(valid_peer, collect(Ref))).

%% Connects a Mod client to an ssl server; returns the outcome (ok or the
%% error) and the verify fun's events, each {extension, Oid, Critical} or
%% the atom/tuple OTP gives.
client_events(Mod, Config, V, ServerOpts, Answer) ->
    {Pid, Port} = ?L:start_server(ssl, ServerOpts, fun({Ok, _}) -> Ok end),
    Self = self(),
    Ref = make_ref(),
    Opts = client_opts(Config, V) ++ [{verify_fun, {recording_fun(Self, Ref, Answer), []}}],
    Result = Mod:connect("localhost", Port, Opts, ?T),
    _ = ?L:await(Pid),
    Outcome = case Result of
                  {ok, S} -> ok = Mod:close(S), {ok, connected};
                  Error -> Error
              end,
    {normalize(Outcome), collect(Ref)}.

%% A Mod server with verify_peer and a recording fun, an ssl client with
%% the client certificate carrying the extensions.
server_events(Mod, Config, V, Answer) ->
    Self = self(),
    Ref = make_ref(),
    #{ec_ca := #{cert := EcCa}} = ?config(ids, Config),
    ServerOpts = base(V) ++ single(Config, ec_server)
        ++ [{verify, verify_peer}, {fail_if_no_peer_cert, true}, {cacerts, [cert_der(EcCa)]},
            {verify_fun, {recording_fun(Self, Ref, Answer), []}}, {reuseaddr, true}],
    {ok, L} = Mod:listen(0, ServerOpts),
    {ok, {_, Port}} = Mod:sockname(L),
    %% The client stays connected until the server is done (it has
    %% finished its TLS 1.3 handshake before the server checks it).
    Client = ?L:start_client(ssl, "localhost", Port,
                             client_opts(Config, V) ++ single(Config, ext_client)),
    {ok, T} = Mod:transport_accept(L, ?T),
    Result = Mod:handshake(T, ?T),
    ok = Mod:close(L),
    receive
        {Client, handshake, ok} -> ok = ?L:stop_peer(#{pid => Client});
        {Client, handshake, _} -> _ = ?L:await(Client)
    after ?T -> error(client_gone)
    end,
    Outcome = case Result of
                  {ok, S} -> ok = Mod:close(S), {ok, connected};
                  Error -> Error
              end,
    {normalize(Outcome), collect(Ref)}.

normalize({error, {tls_alert, {Alert, _Text}}}) -> {error, {tls_alert, {Alert, text}}};
normalize(Other) -> Other.

%% A verify fun reporting each event; Answer says what it answers to the
%% custom extensions (valid, unknown, or unknown to the non-critical one
%% only); other extensions get unknown, as OTP's default does.
recording_fun(Pid, Ref, Answer) ->
    fun(_Cert, {extension, #'Extension'{extnID = Id, critical = Critical}}, State) ->
            Pid ! {Ref, {extension, Id, Critical}},
            Reply = case {Id, Answer} of
                        {?CRITICAL_OID, valid} -> valid;
                        {?CRITICAL_OID, unknown_plain} -> valid;
                        {?PLAIN_OID, valid} -> valid;
                        _ -> unknown
                    end,
            {Reply, State};
       (_Cert, {bad_cert, _} = Reason, _State) ->
            Pid ! {Ref, Reason},
            {fail, Reason};
       (_Cert, Event, State) ->
            Pid ! {Ref, Event},
            {valid, State}
    end.

collect(Ref) ->
    receive
        {Ref, Event} -> [Event | collect(Ref)]
    after 0 -> []
    end.

%%% Cases: CRLs ------------------------------------------------------------

-define(HTTP_CACHE(T), {crl_cache, {ssl_crl_cache, {internal, [{http, T}]}}}).

%% crl_check with the internal cache and {http, Timeout}: the server's CRL
%% is fetched from its distribution point (our small HTTP server counts
%% the requests): a revoked certificate fails as it fails with ssl as the
%% client, a good one connects; rssl fetches the CRL once and keeps it.
crl_http_fetch(Config) ->
    V = 'tlsv1.2',
    Opts = client_opts(Config, V) ++ [{crl_check, peer}, ?HTTP_CACHE(5000)],
    Before = http_count(Config, "/ec_ca.crl"),
    Good = crl_connect(?M, Config, V, crl_good_server, Opts),
    ?assertEqual({ok, connected}, Good),
    ?assert(http_count(Config, "/ec_ca.crl") > Before),
    Revoked = crl_connect(?M, Config, V, crl_revoked_server, Opts),
    ?assertEqual(crl_connect(ssl, Config, V, crl_revoked_server, Opts), Revoked),
    ?assertMatch({error, {tls_alert, {certificate_revoked, _}}}, Revoked),
    Count = http_count(Config, "/ec_ca.crl"),
    [?assertEqual({ok, connected}, crl_connect(?M, Config, 'tlsv1.3', crl_good_server,
                                                Opts -- [{versions, [V]}]
                                                ++ [{versions, ['tlsv1.3']}]))
     || _ <- [1, 2]],
    %% TLS 1.3 too, from the CRL now kept: no new request. (OTP 25's ssl
    %% fetches it again for each connection.)
    otp() orelse ?assertEqual(Count, http_count(Config, "/ec_ca.crl")).

%% A distribution point that answers 404: crl_check true fails as with ssl,
%% best_effort connects as with ssl.
crl_http_unreachable(Config) ->
    V = 'tlsv1.2',
    [begin
         Opts = client_opts(Config, V) ++ [{crl_check, Check}, ?HTTP_CACHE(5000)],
         Ours = crl_connect(?M, Config, V, crl_lost_server, Opts),
         ?assertEqual(crl_connect(ssl, Config, V, crl_lost_server, Opts), Ours),
         case Check of
             best_effort -> ?assertEqual({ok, connected}, Ours);
             true -> ?assertMatch({error, {tls_alert, {bad_certificate, _}}}, Ours)
         end
     end || Check <- [true, best_effort]],
    ?assert(http_count(Config, "/missing.crl") > 0).

%% ssl_crl_hash_dir: the CRL is found by its issuer's hash in a directory
%% laid out as `openssl rehash' lays it out; the same outcomes as ssl.
crl_hash_dir(Config) ->
    #{crl_dir := Dir} = ?config(ids, Config),
    Empty = filename:join(?config(priv_dir, Config), "empty-crl-dir"),
    ok = filelib:ensure_dir(filename:join(Empty, "x")),
    [begin
         Opts = client_opts(Config, V)
             ++ [{crl_check, Check}, {crl_cache, {ssl_crl_hash_dir, {internal, [{dir, D}]}}}],
         Ours = crl_connect(?M, Config, V, Server, Opts),
         ?assertEqual(crl_connect(ssl, Config, V, Server, Opts), Ours),
         case Want of
             ok -> ?assertEqual({ok, connected}, Ours);
             Alert -> ?assertMatch({error, {tls_alert, {Alert, _}}}, Ours)
         end
     end || V <- ['tlsv1.3', 'tlsv1.2'],
            {Check, D, Server, Want} <-
                [{true, Dir, crl_good_server, ok},
                 {peer, Dir, crl_revoked_server, certificate_revoked},
                 {true, Empty, crl_good_server, bad_certificate},
                 {best_effort, Empty, crl_good_server, ok}]].

%% crl_cache values rssl cannot take are refused as options errors.
crl_cache_bad_values(_Config) ->
    case otp() of
        true ->
            ok;
        false ->
            [?assertMatch({error, {options, _}}, ?M:connect("localhost", 1, [Opt], ?T))
             || Opt <- [{crl_cache, {ssl_crl_hash_dir, {internal, []}}},
                        ?HTTP_CACHE(soon),
                        {crl_cache, {my_cache, {internal, []}}}]]
    end.

%% A Mod client (Opts) against an ssl server with certificate Name.
crl_connect(Mod, Config, V, Name, Opts) ->
    {Pid, Port} = ?L:start_server(ssl, base(V) ++ single(Config, Name), fun({Ok, _}) -> Ok end),
    Outcome = case Mod:connect("localhost", Port, Opts, ?T) of
                  {ok, S} -> ok = Mod:close(S), {ok, connected};
                  Error -> Error
              end,
    _ = ?L:await(Pid),
    normalize(Outcome).

%%% Cases: keep_secrets ------------------------------------------------------

-define(SECRET_ITEMS, [client_random, server_random, master_secret, keylog,
                       client_traffic_secret_0, server_traffic_secret_0,
                       client_handshake_traffic_secret, server_handshake_traffic_secret]).

%% A ?M client and an ssl server, both with keep_secrets: the security
%% items of connection_information/2 (the same secrets at both ends of one
%% connection) and the key log lines are the server's, TLS 1.3 and 1.2.
keep_secrets_client(Config) ->
    [begin
         Server = base(V) ++ single(Config, ec_server) ++ [{keep_secrets, true}],
         {Pid, Port} = ?L:start_server(ssl, Server, fun secrets/1),
         {ok, S} = ?M:connect("localhost", Port,
                              client_opts(Config, V) ++ [{keep_secrets, true}], ?T),
         Ours = secrets({ok, S}),
         ok = ?M:close(S),
         Theirs = ?L:await(Pid),
         ?assertEqual(comparable(V, Theirs), comparable(V, Ours)),
         check_secrets(V, comparable(V, Ours))
     end || V <- ['tlsv1.3', 'tlsv1.2']],
    %% Without keep_secrets, TLS 1.3 has the client random only (as in OTP).
    {Pid, Port} = ?L:start_server(ssl, base('tlsv1.3') ++ single(Config, ec_server),
                                  fun({Ok, _}) -> Ok end),
    {ok, S} = ?M:connect("localhost", Port, client_opts(Config, 'tlsv1.3'), ?T),
    {ok, Items} = ?M:connection_information(S, ?SECRET_ITEMS),
    ?assertEqual([client_random], [K || {K, _} <- comparable('tlsv1.3', Items)]),
    ok = ?M:close(S),
    ok = ?L:await(Pid).

%% A ?M server with keep_secrets and an ssl client: the same.
keep_secrets_server(Config) ->
    [begin
         {ok, L} = ?M:listen(0, [{reuseaddr, true}, {keep_secrets, true}
                                 | base(V) ++ single(Config, ec_server)]),
         {ok, {_, Port}} = ?M:sockname(L),
         Client = ?L:start_client(ssl, "localhost", Port,
                                  client_opts(Config, V) ++ [{keep_secrets, true}],
                                  fun secrets/1),
         {ok, T} = ?M:transport_accept(L, ?T),
         {ok, S} = ?M:handshake(T, ?T),
         ok = ?M:close(L),
         Theirs = ?L:await(Client),
         Ours = secrets({ok, S}),
         ok = ?M:close(S),
         ?assertEqual(comparable(V, Theirs), comparable(V, Ours)),
         check_secrets(V, comparable(V, Ours))
     end || V <- ['tlsv1.3', 'tlsv1.2']].

%% In TLS 1.3 OTP 25 reports `{master_secret, {master_secret, <<0>>}}' (a
%% placeholder of its own, not a secret) and its client no server_random;
%% rssl reports no master_secret there, and server_random in both roles.
comparable('tlsv1.3', Items) ->
    lists:keydelete(server_random, 1, lists:keydelete(master_secret, 1, Items));
comparable(_, Items) -> Items.

%% The security items of a socket (of whichever module made it), key log
%% lines flattened (OTP's are deep lists), sorted by name.
secrets({ok, S}) ->
    %% OTP's sockets hold their processes in a list.
    Mod = case S of
              {sslsocket, _, Pids} when is_list(Pids) -> ssl;
              _ -> ?M
          end,
    {ok, Items} = Mod:connection_information(S, ?SECRET_ITEMS),
    lists:sort([case I of
                    {keylog, Lines} -> {keylog, [lists:flatten(L) || L <- Lines]};
                    _ -> I
                end || I <- Items]);
secrets(Error) ->
    Error.

check_secrets('tlsv1.3', Items) ->
    ?assertEqual(lists:sort([client_random, keylog,
                             client_traffic_secret_0, server_traffic_secret_0,
                             client_handshake_traffic_secret, server_handshake_traffic_secret]),
                 [K || {K, _} <- Items]),
    {keylog, Lines} = lists:keyfind(keylog, 1, Items),
    ?assertMatch(["CLIENT_HANDSHAKE_TRAFFIC_SECRET " ++ _, "SERVER_HANDSHAKE_TRAFFIC_SECRET " ++ _,
                  "CLIENT_TRAFFIC_SECRET_0 " ++ _, "SERVER_TRAFFIC_SECRET_0 " ++ _], Lines);
check_secrets('tlsv1.2', Items) ->
    ?assertEqual([client_random, keylog, master_secret, server_random], [K || {K, _} <- Items]),
    {keylog, ["CLIENT_RANDOM " ++ _]} = lists:keyfind(keylog, 1, Items).

%%% Cases: max_fragment_length ----------------------------------------------

%% A ?M client asking for 512-byte fragments of an ssl server, and an ssl
%% client asking a ?M server: both ends report the length and 20 kB go
%% each way (in records no longer than that); bad values are options
%% errors.
max_fragment_length(Config) ->
    Data = rand:bytes(20000),
    [begin
         Mfl = [{max_fragment_length, N}],
         %% ?M as the client.
         {Pid, Port} = ?L:start_server(ssl, base(V) ++ single(Config, ec_server), loop),
         {ok, C} = ?M:connect("localhost", Port, client_opts(Config, V) ++ Mfl, ?T),
         Server = #{pid => Pid},
         receive {Pid, handshake, ok} -> ok after ?T -> error(no_server) end,
         ?assertEqual({ok, Mfl}, ?M:connection_information(C, [max_fragment_length])),
         ?assertEqual({ok, Mfl}, ?L:call(Server, {apply, connection_information,
                                                  [[max_fragment_length]]})),
         ok = ?M:send(C, Data),
         ?assertEqual(Data, ?L:call(Server, {recv_total, byte_size(Data)})),
         ok = ?L:call(Server, {send, Data}),
         ?assertEqual(Data, recv_total(C, byte_size(Data))),
         ok = ?M:close(C),
         ?L:stop_peer(Server),
         %% ?M as the server.
         {ok, L} = ?M:listen(0, [{reuseaddr, true} | base(V) ++ single(Config, ec_server)]),
         {ok, {_, LPort}} = ?M:sockname(L),
         CPid = ?L:start_client(ssl, "localhost", LPort, client_opts(Config, V) ++ Mfl),
         {ok, T} = ?M:transport_accept(L, ?T),
         {ok, S} = ?M:handshake(T, ?T),
         ok = ?M:close(L),
         Client = #{pid => CPid},
         receive {CPid, handshake, ok} -> ok after ?T -> error(no_client) end,
         ?assertEqual({ok, Mfl}, ?M:connection_information(S, [max_fragment_length])),
         ok = ?M:send(S, Data),
         ?assertEqual(Data, ?L:call(Client, {recv_total, byte_size(Data)})),
         ok = ?M:close(S),
         ?L:stop_peer(Client)
     end || {V, N} <- [{'tlsv1.3', 512}, {'tlsv1.2', 4096}]],
    ?assertEqual({error, {options, {max_fragment_length, 513}}},
                 ?M:connect("localhost", 1, [{max_fragment_length, 513}], ?T)).

recv_total(S, Len) ->
    recv_total(S, Len, []).
recv_total(_S, Len, Acc) when Len =< 0 ->
    iolist_to_binary(lists:reverse(Acc));
recv_total(S, Len, Acc) ->
    {ok, Bin} = ?M:recv(S, 0, ?T),
    recv_total(S, Len - byte_size(Bin), [Bin | Acc]).

%%% Cases: certificate_authorities ------------------------------------------

%% A ?M server asking for a client certificate names its CAs in the TLS
%% 1.3 CertificateRequest (openssl s_client's trace shows the extension)
%% unless certificate_authorities is false; TLS 1.2 requests keep them.
%% Without TLS 1.3 the option is the dependency error OTP gives.
certificate_authorities(Config) ->
    #{ec_ca := #{cert := EcCa}} = ?config(ids, Config),
    Base = single(Config, ec_server) ++ [{verify, verify_peer}, {cacerts, [cert_der(EcCa)]}],
    [begin
         Opts = base(V) ++ Base ++ [{certificate_authorities, B} || B =/= default],
         Trace = s_client_trace(Opts, V),
         ?assertEqual(Want, binary:match(Trace, <<"certificate_authorities">>) =/= nomatch,
                      {V, B})
     end || {V, B, Want} <- [{'tlsv1.3', default, true}, {'tlsv1.3', true, true},
                             {'tlsv1.3', false, false}]],
    %% TLS 1.2 names them in its CertificateRequest's own field.
    Trace12 = s_client_trace(base(['tlsv1.3', 'tlsv1.2']) ++ Base
                             ++ [{certificate_authorities, false}], 'tlsv1.2'),
    ?assertNotEqual(nomatch, binary:match(Trace12, <<"rssl identity EC CA">>)),
    Dependency = {error, {options, dependency,
                          {certificate_authorities, {versions, ['tlsv1.3']}}}},
    ?assertEqual(Dependency, ?M:listen(0, base('tlsv1.2') ++ [{certificate_authorities, false}])),
    ?assertEqual(Dependency, ?M:connect("localhost", 1, base('tlsv1.2')
                                        ++ [{certificate_authorities, true}], ?T)),
    ?assertEqual({error, {options, {certificate_authorities, foo}}},
                 ?M:listen(0, [{certificate_authorities, foo}])).

%% openssl s_client's -trace of one handshake with a ?M server.
s_client_trace(ServerOpts, V) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | ServerOpts]),
    {ok, {_, Port}} = ?M:sockname(L),
    Flag = case V of 'tlsv1.3' -> " -tls1_3"; 'tlsv1.2' -> " -tls1_2" end,
    Tool = rssl_tool_lib:start([rssl_tool_lib:exe("openssl"), " s_client -trace -connect 127.0.0.1:",
                                integer_to_list(Port), Flag, " </dev/null"]),
    {ok, T} = ?M:transport_accept(L, ?T),
    {ok, S} = ?M:handshake(T, ?T),
    ok = ?M:close(L),
    {_Status, Out} = rssl_tool_lib:wait_exit(Tool, ?T),
    ok = ?M:close(S),
    Out.

%%% Cases: key_update_at, renegotiate_at ------------------------------------

%% A ?M client with key_update_at 3000 sending ten 1000-byte messages
%% (AES-GCM) to openssl s_server: its -msg trace shows a KeyUpdate before
%% the data that passes each 3000 bytes (3 of them), all data arrives.
key_update_at(Config) ->
    Opts = [{key_update_at, 3000}, {ciphers, [#{key_exchange => any, cipher => aes_128_gcm,
                                                 mac => aead, prf => sha256}]}],
    Out = to_s_server(Config, 'tlsv1.3', Opts, ["-tls1_3"]),
    ?assertEqual(3, count(Out, <<"<<< TLS 1.3, Handshake [length 0005], KeyUpdate">>)),
    ?assertEqual({error, {options, dependency, {key_update_at, {versions, ['tlsv1.3']}}}},
                 ?M:connect("localhost", 1, base('tlsv1.2') ++ [{key_update_at, 10}], ?T)),
    ?assertMatch({error, {options, _}},
                 ?M:connect("localhost", 1, base('tlsv1.3') ++ [{key_update_at, 0}], ?T)).

%% A TLS 1.2 ?M client with renegotiate_at 4 renegotiates with openssl
%% s_server (which allows it with -client_renegotiation) once it has sent
%% that many records, and the data goes on.
renegotiate_at(Config) ->
    Out = to_s_server(Config, 'tlsv1.2', [{renegotiate_at, 4}],
                      ["-tls1_2", "-client_renegotiation"]),
    ?assert(count(Out, <<"ClientHello">>) >= 2).

%% Ten 1000-byte messages from a ?M client (Opts added) to openssl
%% s_server -msg; returns s_server's output once the last one arrived.
to_s_server(Config, V, Opts, Flags) ->
    #{ec_server := #{cert := Cert, key := Key}} = ?config(ids, Config),
    Tool0 = rssl_tool_lib:start([rssl_tool_lib:exe("openssl"),
                                 " s_server -msg -accept 127.0.0.1:0 -naccept 1 -cert ",
                                 rssl_tool_lib:q(Cert), " -key ", rssl_tool_lib:q(Key), " ",
                                 lists:join(" ", Flags)]),
    Port = rssl_tool_lib:listening_port(Tool0, ?T),
    Tool1 = Tool0,
    {ok, S} = ?M:connect("127.0.0.1", Port, base(V) ++ [{verify, verify_none} | Opts], ?T),
    [ok = ?M:send(S, [io_lib:format("message ~2..0w ", [I]), binary:copy(<<"x">>, 984), $\n])
     || I <- lists:seq(1, 10)],
    {ok, _, Tool2} = rssl_tool_lib:wait_output(Tool1, <<"message 10">>, ?T),
    ok = ?M:close(S),
    {_, Out} = rssl_tool_lib:wait_exit(Tool2, ?T),
    ?assertEqual(10, count(Out, <<"message ">>)),
    Out.

count(Bin, Pattern) ->
    length(binary:matches(Bin, Pattern)).

%%% A small HTTP server for CRL distribution points -------------------------

%% Serves the files of a directory set later (http_serve/2) on 127.0.0.1,
%% counting requests by path. Returns {Pid, Port}.
http_start() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}},
                                                     {active, false}, {reuseaddr, true},
                                                     {packet, http_bin}]),
                        {ok, Port} = inet:port(L),
                        Parent ! {self(), port, Port},
                        http_loop(L, #{dir => undefined, counts => #{}})
                end),
    receive {Pid, port, Port} -> {Pid, Port} after ?T -> error(http_start) end.

http_stop(Pid) ->
    exit(Pid, kill),
    ok.

http_loop(L, State = #{dir := Dir, counts := Counts}) ->
    receive
        {From, dir, NewDir} ->
            From ! {self(), ok},
            http_loop(L, State#{dir := NewDir});
        {From, count, Path} ->
            From ! {self(), maps:get(Path, Counts, 0)},
            http_loop(L, State)
    after 0 ->
            case gen_tcp:accept(L, 50) of
                {ok, S} ->
                    Path = http_request(S),
                    Body = case Dir of
                               undefined -> error;
                               _ -> file:read_file(filename:join(Dir, tl(Path)))
                           end,
                    Reply = case Body of
                                {ok, Bin} ->
                                    [<<"HTTP/1.1 200 OK\r\nContent-Length: ">>,
                                     integer_to_list(byte_size(Bin)),
                                     <<"\r\nConnection: close\r\n\r\n">>, Bin];
                                _ ->
                                    <<"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n">>
                            end,
                    _ = gen_tcp:send(S, Reply),
                    _ = gen_tcp:close(S),
                    http_loop(L, State#{counts := Counts#{Path => maps:get(Path, Counts, 0) + 1}});
                {error, timeout} ->
                    http_loop(L, State)
            end
    end.

%% The request's path; reads its headers through.
http_request(S) ->
    {ok, {http_request, _, {abs_path, Path}, _}} = gen_tcp:recv(S, 0, ?T),
    http_headers(S),
    binary_to_list(Path).

http_headers(S) ->
    case gen_tcp:recv(S, 0, ?T) of
        {ok, {http_header, _, _, _, _}} -> http_headers(S);
        _ -> ok
    end.

http_count(Config, Path) ->
    Pid = ?config(http, Config),
    Pid ! {self(), count, Path},
    receive {Pid, N} -> N after ?T -> error(http_count) end.

%%% Helpers -----------------------------------------------------------------

%% The ECDHE curve an ssl client sees with a ?M server.
server_curve(ServerOpts, ClientOpts) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | ServerOpts]),
    {ok, {_, Port}} = ?M:sockname(L),
    Client = ?L:start_client(ssl, "localhost", Port, ClientOpts, fun curve/1),
    {ok, T} = ?M:transport_accept(L, ?T),
    {ok, S} = ?M:handshake(T, ?T),
    ok = ?M:close(L),
    Curve = ?L:await(Client),
    ok = ?M:close(S),
    Curve.

curve({ok, S}) ->
    {ok, [{ecc, Curve}]} = ssl:connection_information(S, [ecc]),
    Curve;
curve(Error) ->
    Error.

%% Whether the module under test is OTP's ssl itself.
otp() -> ?M =:= ssl.

%% The kinds of certificate a server holding pairs of kinds Listed (in
%% that order) is asked for: each, and the first again. OTP 25's own TLS
%% 1.3 server crashes (function_clause in
%% tls_handshake_1_3:select_server_cert_key_pair/3) when the client's
%% signature algorithms rule out its first pair, so with ?M = ssl the
%% TLS 1.3 cases ask for the first kind only.
kinds(V, [First | _] = Listed) ->
    case otp() andalso V =:= 'tlsv1.3' of
        true -> [First];
        false -> Listed ++ [First]
    end.

listen_error(Opts) ->
    case ?M:listen(0, Opts) of
        {ok, L} ->
            ok = ?M:close(L),
            {ok, listening};
        Error ->
            Error
    end.

base(Vs) when is_list(Vs) -> [binary, {active, false}, {versions, Vs}];
base(V) -> base([V]).

pair(Config, Name) ->
    #{Name := #{cert := Cert, key := Key}} = ?config(ids, Config),
    #{certfile => Cert, keyfile => Key}.

single(Config, Name) ->
    #{Name := #{cert := Cert, key := Key}} = ?config(ids, Config),
    [{certfile, Cert}, {keyfile, Key}].

client_opts(Config, V) ->
    #{ec_ca := #{cert := EcCa}, rsa_ca := #{cert := RsaCa}} = ?config(ids, Config),
    base(V) ++ [{verify, verify_peer}, {cacerts, [cert_der(EcCa), cert_der(RsaCa)]},
                {server_name_indication, "localhost"}].

%% An ssl server asking for a client certificate whose signatures are of
%% one kind (its own certificate of that kind too).
verifying_server(Config, V, Kind) ->
    Own = case Kind of ec -> ec_server; rsa -> rsa_server end,
    (client_opts(Config, V) -- [{server_name_indication, "localhost"}])
        ++ [{fail_if_no_peer_cert, true} | single(Config, Own)] ++ algs(V, Kind).

%% Signature algorithms of one kind only.
algs('tlsv1.3', ec) -> [{signature_algs, [ecdsa_secp256r1_sha256]}];
algs('tlsv1.3', rsa) -> [{signature_algs, [rsa_pss_rsae_sha256, rsa_pkcs1_sha256]}];
algs('tlsv1.2', ec) -> [{signature_algs, [{sha256, ecdsa}]}];
algs('tlsv1.2', rsa) -> [{signature_algs, [{sha256, rsa}]}].

%% The kind of certificate a ssl client connecting to a ?M server with
%% ServerOpts is shown.
server_cert_kind(ServerOpts, ClientOpts) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | ServerOpts]),
    {ok, {_, Port}} = ?M:sockname(L),
    Client = ?L:start_client(ssl, "localhost", Port, ClientOpts, fun peer_cert_kind/1),
    {ok, T} = ?M:transport_accept(L, ?T),
    HS = ?M:handshake(T, ?T),
    ok = ?M:close(L),
    Kind = ?L:await(Client),
    {ok, S} = HS,
    ok = ?M:close(S),
    Kind.

%% The kind of certificate a ?M client with ClientOpts shows an ssl server.
client_cert_kind(ClientOpts, ServerOpts) ->
    {Pid, Port} = ?L:start_server(ssl, ServerOpts, fun peer_cert_kind/1),
    {ok, S} = ?M:connect("localhost", Port, ClientOpts, ?T),
    Kind = ?L:await(Pid),
    ok = ?M:close(S),
    Kind.

peer_cert_kind({ok, S}) ->
    {ok, Der} = ssl:peercert(S),
    key_kind(Der);
peer_cert_kind(Error) ->
    Error.

key_kind(Der) ->
    #'OTPCertificate'{tbsCertificate = Tbs} = public_key:pkix_decode_cert(Der, otp),
    #'OTPSubjectPublicKeyInfo'{algorithm = #'PublicKeyAlgorithm'{algorithm = Alg}} =
        Tbs#'OTPTBSCertificate'.subjectPublicKeyInfo,
    case Alg of
        ?'id-ecPublicKey' -> ec;
        ?rsaEncryption -> rsa
    end.

cert_der(File) ->
    {ok, Pem} = file:read_file(File),
    [{'Certificate', Der, not_encrypted} | _] = public_key:pem_decode(Pem),
    Der.

key_der(File) ->
    {ok, Pem} = file:read_file(File),
    [{Type, Der, not_encrypted}] = public_key:pem_decode(Pem),
    {Type, Der}.

%%% PKI ---------------------------------------------------------------------

-define(EC_KEY, "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256").
-define(RSA_KEY, "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048").

%% Two CAs, one ECDSA and one RSA, each signing a server and a client
%% certificate of its own key type (so that a peer accepting one kind of
%% signature can check the whole chain), and other_server, an ECDSA server
%% certificate for another host name. Made with the openssl tool.
make_pki(PrivDir, HttpPort) ->
    Tag = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(PrivDir, "identity-" ++ Tag),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    EcCa = ca(Dir, "ec_ca", ?EC_KEY, "rssl identity EC CA " ++ Tag),
    RsaCa = ca(Dir, "rsa_ca", ?RSA_KEY, "rssl identity RSA CA " ++ Tag),
    Url = "http://127.0.0.1:" ++ integer_to_list(HttpPort),
    CrlExt = fun(File) -> ["crlDistributionPoints = URI:", Url, "/", File, "\n"] end,
    Good = leaf(Dir, "crl_good_server", ?EC_KEY, EcCa,
                [server_ext("DNS:localhost"), CrlExt("ec_ca.crl")]),
    Revoked = leaf(Dir, "crl_revoked_server", ?EC_KEY, EcCa,
                   [server_ext("DNS:localhost"), CrlExt("ec_ca.crl")]),
    %% Of the other CA: OpenSSL takes any CRL of a certificate's issuer
    %% (OTP's cache looks CRLs up by distribution point), so this one must
    %% have no CRL anywhere.
    Lost = leaf(Dir, "crl_lost_server", ?EC_KEY, RsaCa,
                [server_ext("DNS:localhost"), CrlExt("missing.crl")]),
    CrlDir = crl(Dir, EcCa, [Revoked]),
    #{crl_good_server => Good, crl_revoked_server => Revoked, crl_lost_server => Lost,
      crl_dir => CrlDir, pki_dir => Dir,
      ec_ca => EcCa, rsa_ca => RsaCa,
      ec_server => leaf(Dir, "ec_server", ?EC_KEY, EcCa, server_ext("DNS:localhost")),
      rsa_server => leaf(Dir, "rsa_server", ?RSA_KEY, RsaCa, server_ext("DNS:localhost")),
      other_server => leaf(Dir, "other_server", ?EC_KEY, EcCa, server_ext("DNS:other.example")),
      ec_client => leaf(Dir, "ec_client", ?EC_KEY, EcCa, client_ext()),
      ext_server => leaf(Dir, "ext_server", ?EC_KEY, EcCa,
                         [server_ext("DNS:localhost"), custom_ext()]),
      ext_client => leaf(Dir, "ext_client", ?EC_KEY, EcCa, [client_ext(), custom_ext()]),
      rsa_client => leaf(Dir, "rsa_client", ?RSA_KEY, RsaCa, client_ext())}.

ca(Dir, Name, KeyCmd, CN) ->
    Key = filename:join(Dir, Name ++ "_key.pem"),
    Cert = filename:join(Dir, Name ++ ".pem"),
    Cnf = filename:join(Dir, Name ++ ".cnf"),
    ok = file:write_file(Cnf, [req_cnf(CN),
                               "[ext]\n"
                               "basicConstraints = critical,CA:TRUE\n"
                               "keyUsage = critical,keyCertSign,cRLSign\n"
                               "subjectKeyIdentifier = hash\n"]),
    openssl([KeyCmd, " -out ", q(Key)], Key),
    openssl(["req -new -x509 -sha256 -days 3650 -config ", q(Cnf), " -extensions ext",
             " -key ", q(Key), " -out ", q(Cert)], Cert),
    #{cert => Cert, key => Key}.

leaf(Dir, Name, KeyCmd, #{cert := CaCert, key := CaKey}, Ext) ->
    Key = filename:join(Dir, Name ++ "_key.pem"),
    Cert = filename:join(Dir, Name ++ ".pem"),
    Csr = filename:join(Dir, Name ++ ".csr"),
    Cnf = filename:join(Dir, Name ++ ".cnf"),
    ok = file:write_file(Cnf, [req_cnf("rssl " ++ Name), "[ext]\n", Ext]),
    openssl([KeyCmd, " -out ", q(Key)], Key),
    openssl(["req -new -sha256 -config ", q(Cnf), " -key ", q(Key), " -out ", q(Csr)], Csr),
    Serial = integer_to_list(erlang:unique_integer([positive]) + 1000 * os:system_time(second)),
    openssl(["x509 -req -sha256 -days 3650 -in ", q(Csr), " -CA ", q(CaCert), " -CAkey ", q(CaKey),
             " -set_serial ", Serial, " -extfile ", q(Cnf), " -extensions ext -out ", q(Cert)],
            Cert),
    #{cert => Cert, key => Key}.

%% The CA's CRL revoking Revoked, as served over HTTP (ec_ca.crl, DER, in
%% Dir, which the HTTP server is told to serve) and in a hashed directory
%% (PEM, `Hash.r0'), which is returned.
crl(Dir, #{cert := CaCert, key := CaKey}, Revoked) ->
    Db = filename:join(Dir, "crl_db"),
    ok = filelib:ensure_dir(filename:join(Db, "x")),
    ok = file:write_file(filename:join(Db, "index.txt"), ""),
    ok = file:write_file(filename:join(Db, "crlnumber"), "01\n"),
    Cnf = filename:join(Dir, "crl.cnf"),
    ok = file:write_file(Cnf, ["[ca]\ndefault_ca = test\n[test]\ndatabase = ", Db,
                               "/index.txt\ncrlnumber = ", Db, "/crlnumber\n"
                               "default_md = sha256\ndefault_crl_days = 30\n"]),
    [begin
         Out = os:cmd(lists:flatten(["openssl ca -config ", q(Cnf), " -keyfile ", q(CaKey),
                                     " -cert ", q(CaCert), " -revoke ", q(Cert),
                                     " -crl_reason keyCompromise 2>&1; echo rc=$?"])),
         lists:suffix("rc=0\n", Out) orelse error({openssl_revoke_failed, Out})
     end || #{cert := Cert} <- Revoked],
    Pem = filename:join(Dir, "ec_ca_crl.pem"),
    openssl(["ca -config ", q(Cnf), " -keyfile ", q(CaKey), " -cert ", q(CaCert),
             " -gencrl -out ", q(Pem)], Pem),
    openssl(["crl -in ", q(Pem), " -outform DER -out ", q(filename:join(Dir, "ec_ca.crl"))],
            filename:join(Dir, "ec_ca.crl")),
    Hash = string:trim(os:cmd("openssl crl -hash -noout -in " ++ q(Pem))),
    HashDir = filename:join(Dir, "crl_hash_dir"),
    ok = filelib:ensure_dir(filename:join(HashDir, "x")),
    {ok, _} = file:copy(Pem, filename:join(HashDir, Hash ++ ".r0")),
    HashDir.

req_cnf(CN) ->
    ["[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = ", CN, "\n"].

server_ext(San) ->
    ["basicConstraints = critical,CA:FALSE\n"
     "keyUsage = critical,digitalSignature,keyEncipherment\n"
     "extendedKeyUsage = serverAuth\n"
     "subjectKeyIdentifier = hash\n"
     "authorityKeyIdentifier = keyid\n"
     "subjectAltName = ", San, "\n"].

%% Two extensions no TLS stack knows: one critical, one not.
custom_ext() ->
    "1.3.6.1.4.1.55555.1 = critical,ASN1:UTF8String:rssl critical\n"
    "1.3.6.1.4.1.55555.2 = ASN1:UTF8String:rssl plain\n".

client_ext() ->
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = clientAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n".

openssl(Args, Expect) ->
    _ = file:delete(Expect),
    Out = os:cmd(lists:flatten(["openssl ", Args, " 2>&1"])),
    case filelib:is_regular(Expect) of
        true -> ok;
        false -> error({openssl_failed, lists:flatten(Args), Out})
    end.

q(Path) -> "'" ++ Path ++ "'".
