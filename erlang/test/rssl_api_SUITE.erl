%% The library helpers of the API: cipher suite helpers give what OTP's ssl
%% gives, and every key exchange group groups/0 names works against an OTP
%% ssl peer.
-module(rssl_api_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([suite_helpers_as_ssl/1, every_group_negotiates/1, default_groups/1,
         eccs_shape/1, tuning_options_accepted/1, signature_algs_restrict/1,
         format_error_as_ssl/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [suite_helpers_as_ssl, every_group_negotiates, default_groups, eccs_shape,
     tuning_options_accepted, signature_algs_restrict, format_error_as_ssl].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% filter/prepend/append, the name conversions and tls_version answer as
%% OTP's ssl does, errors included.
suite_helpers_as_ssl(_Config) ->
    All = ssl:cipher_suites(all, 'tlsv1.2'),
    Gcm = [#{key_exchange => ecdhe_rsa, cipher => aes_128_gcm, mac => aead, prf => sha256}],
    Filters = [{cipher, fun(aes_128_gcm) -> true; (_) -> false end}],
    Calls = [{filter_cipher_suites, [All, Filters]},
             {filter_cipher_suites, [All, []]},
             {prepend_cipher_suites, [Gcm, All]},
             {prepend_cipher_suites, [Filters, All]},
             {append_cipher_suites, [Gcm, All]},
             {suite_to_str, [hd(Gcm)]},
             {suite_to_openssl_str, [hd(Gcm)]},
             {str_to_suite, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]},
             {str_to_suite, ["TLS_AES_128_GCM_SHA256"]},
             {str_to_suite, ["nonsense"]},
             {tls_version, [{3, 3}]},
             {tls_version, [{3, 4}]}],
    [?assertEqual({F, catch apply(ssl, F, Args)}, {F, catch apply(?M, F, Args)})
     || {F, Args} <- Calls].

%% Each group of groups/0 alone in supported_groups gives a TLS 1.3
%% handshake with an OTP ssl server offering them all; unknown names are
%% left out.
every_group_negotiates(Config) ->
    Pki = ?config(pki, Config),
    V = 'tlsv1.3',
    ServerOpts = [{supported_groups, ssl:groups()} | rssl_test_lib:server_opts(Pki, V, server)],
    Groups = ?M:groups(),
    ?assertEqual([], Groups -- ssl:groups()),
    [ok = negotiate([G], Pki, ServerOpts, attempts(G)) || G <- Groups],
    %% As in OTP's ssl, a name it does not know is left out.
    ok = negotiate([no_such_group, "x448", x25519], Pki, ServerOpts, 1).

negotiate(Gs, Pki, ServerOpts, Attempts) ->
    ClientOpts = [{supported_groups, Gs} | rssl_test_lib:client_opts(Pki, 'tlsv1.3', ca)],
    try rssl_test_lib:open(?M, client, ClientOpts, ssl, ServerOpts, #{}) of
        {S, Peer} ->
            ?assertMatch({ok, [{protocol, 'tlsv1.3'}]}, ?M:connection_information(S, [protocol])),
            ok = ?M:close(S),
            rssl_test_lib:stop_peer(Peer)
    catch
        error:{connect_failed, {error, {tls_alert, {illegal_parameter, _}}}, _} when Attempts > 1 ->
            negotiate(Gs, Pki, ServerOpts, Attempts - 1)
    end.

%% OTP 25's server now and then sends an FFDHE key share OpenSSL rejects
%% (bad ecpoint: seen about 1 handshake in 150 with ffdhe6144 and 8192,
%% never between OpenSSL peers), so those get a second and third try.
attempts(G) ->
    case atom_to_list(G) of
        "ffdhe" ++ _ -> 3;
        _ -> 1
    end.

%% groups(default) is a subset of groups/0 with the curves every peer has.
default_groups(_Config) ->
    Default = ?M:groups(default),
    ?assertEqual([], Default -- ?M:groups()),
    ?assert(lists:member(x25519, Default)),
    ?assert(lists:member(secp256r1, Default)).

eccs_shape(_Config) ->
    Eccs = ?M:eccs(),
    ?assert(Eccs =/= [] andalso lists:all(fun is_atom/1, Eccs)),
    ?assertEqual([], Eccs -- ssl:eccs()),
    ?assertEqual(Eccs, ?M:eccs('tlsv1.2')).

%% Options that tune OTP's connection processes (or say what is always
%% done, as {handshake, full}) are accepted on both ends of a handshake;
%% the TLS 1.0 ones need tlsv1.
tuning_options_accepted(Config) ->
    Pki = ?config(pki, Config),
    V = 'tlsv1.3',
    Tuning = [{handshake, full}, {log_level, error}, {max_handshake_size, 262144},
              {middlebox_comp_mode, true}, {hibernate_after, 5000}],
    ClientOpts = rssl_test_lib:client_opts(Pki, V, ca),
    ServerOpts = rssl_test_lib:server_opts(Pki, V, server),
    Cases = [{client, Tuning ++ ClientOpts, ServerOpts},
             {server, Tuning ++ ServerOpts, ClientOpts}],
    [begin
         {S, Peer} = rssl_test_lib:open(?M, Role, Opts, ssl, PeerOpts, #{}),
         ok = ?M:send(S, <<"ping">>),
         ok = ?M:close(S),
         ok = rssl_test_lib:stop_peer(Peer)
     end || {Role, Opts, PeerOpts} <- Cases],
    %% The TLS 1.0 record options need tlsv1 among the versions (checked
    %% before their values), as in OTP.
    Dependency = fun(Key) -> {error, {options, dependency, {Key, {versions, [tlsv1]}}}} end,
    ?assertEqual(Dependency(padding_check), ?M:connect("localhost", 1, [{padding_check, true}], 1000)),
    ?assertEqual(Dependency(beast_mitigation),
                 ?M:connect("localhost", 1, [{beast_mitigation, bad}, {padding_check, 1}], 1000)),
    ?assertEqual(Dependency(padding_check), ?M:listen(0, [{padding_check, false} | ServerOpts])),
    ?assertEqual({error, econnrefused},
                 ?M:connect("localhost", 1, [{padding_check, false}, {beast_mitigation, zero_n},
                                             {versions, [tlsv1, 'tlsv1.2']}], 1000)).

%% signature_algs, in OTP's names: what the peer's certificate (ECDSA
%% P-256) can sign with makes a handshake, on either end and in TLS 1.3
%% (schemes) and 1.2 ({Hash, Sign}); an RSA-only list fails it.
signature_algs_restrict(Config) ->
    Pki = ?config(pki, Config),
    Ok = [{'tlsv1.3', [ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256]},
          {'tlsv1.2', [{sha256, ecdsa}, {sha384, rsa}]}],
    [begin
         Algs = {signature_algs, Sig},
         ClientOpts = rssl_test_lib:client_opts(Pki, V, ca),
         ServerOpts = rssl_test_lib:server_opts(Pki, V, server),
         {C, P1} = rssl_test_lib:open(?M, client, [Algs | ClientOpts], ssl, ServerOpts, #{}),
         ok = ?M:close(C),
         ok = rssl_test_lib:stop_peer(P1),
         {S, P2} = rssl_test_lib:open(?M, server, [Algs | ServerOpts], ssl, ClientOpts, #{}),
         ok = ?M:close(S),
         ok = rssl_test_lib:stop_peer(P2)
     end || {V, Sig} <- Ok],
    V3 = 'tlsv1.3',
    {Server, Port} = rssl_test_lib:start_server(ssl, rssl_test_lib:server_opts(Pki, V3, server),
                                                fun(Result) -> Result end),
    RsaOnly = [{signature_algs, [rsa_pss_rsae_sha256, rsa_pkcs1_sha256]}
               | rssl_test_lib:client_opts(Pki, V3, ca)],
    ?assertMatch({error, {tls_alert, _}}, ?M:connect("localhost", Port, RsaOnly, 10000)),
    ?assertMatch({error, _}, rssl_test_lib:await(Server)),
    case ?M of
        ssl -> ok;  % OTP's ssl crashes on names it does not know
        _ ->
            [?assertMatch({error, {options, _}},
                          ?M:connect("localhost", 1, [{signature_algs, Bad}], 1000))
             || Bad <- [[nonsense], [{sha256, nonsense}], [{nohash, rsa}], []]]
    end.

%% format_error/1 gives OTP's texts for the reasons both return.
format_error_as_ssl(_Config) ->
    Reasons = [closed, timeout, einval, enotconn, econnrefused, eaddrinuse, not_owner,
               {error, closed}, {error, timeout}, {options, {versions, [foo]}},
               {options, {not_supported, {eccs, [secp256r1]}}},
               {options, dependency, {padding_check, {versions, [tlsv1]}}},
               {tls_alert, {unknown_ca, "TLS client: unknown CA"}}, something_else],
    [?assertEqual({R, ssl:format_error(R)}, {R, ?M:format_error(R)}) || R <- Reasons].
