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
         extension_events_client/1, extension_events_server/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [{group, 'tlsv1.3'}, {group, 'tlsv1.2'}, certs_keys_bad_values,
          eccs_server_tls12, eccs_client_tls12, eccs_leave_tls13_alone, eccs_bad_values,
          signature_algs_cert_values, extension_events_client, extension_events_server].

groups() ->
    Cases = [server_picks_by_signature_algs, client_picks_by_signature_algs,
             certs_keys_in_sni_hosts, certs_keys_from_sni_fun,
             certs_keys_in_handshake_continue, certs_keys_over_single_options,
             certs_keys_der_and_pem],
    [{'tlsv1.3', [], Cases}, {'tlsv1.2', [], Cases}].

init_per_suite(Config) ->
    Config1 = rssl_socket_lib:init_suite(?M, Config),
    [{ids, make_pki(?config(priv_dir, Config))} | Config1].

end_per_suite(_Config) ->
    ok.

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
make_pki(PrivDir) ->
    Tag = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(PrivDir, "identity-" ++ Tag),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    EcCa = ca(Dir, "ec_ca", ?EC_KEY, "rssl identity EC CA " ++ Tag),
    RsaCa = ca(Dir, "rsa_ca", ?RSA_KEY, "rssl identity RSA CA " ++ Tag),
    #{ec_ca => EcCa, rsa_ca => RsaCa,
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
