%% Interoperability of the module under test (?M, rssl by default) with
%% OTP's ssl: ?M as client against an ssl server (group as_client) and an
%% ssl client against ?M as server (group as_server), over TLS 1.3 and 1.2.
%%
%% Compile with {d, 'M', ssl} to run the same checks with ssl on both ends;
%% every case must pass that way too.
-module(rssl_interop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).
-define(MiB, 1048576).

-export([suite/0, all/0, groups/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([versions_shape/1,
         bulk_1mib_each_way/1, passive_recv_zero/1, passive_recv_exact/1,
         active_true_binary/1, active_true_list/1, active_once_and_n/1,
         negotiated_version/1, rsa_certificate/1, sockname_peername/1,
         update_keys/1]).

suite() -> [{timetrap, {seconds, 30}}].

all() -> [versions_shape, {group, 'tlsv1.3'}, {group, 'tlsv1.2'}].

groups() ->
    Cases = [bulk_1mib_each_way, passive_recv_zero, passive_recv_exact,
             active_true_binary, active_true_list, active_once_and_n,
             negotiated_version, rsa_certificate, sockname_peername, update_keys],
    [{'tlsv1.3', [], [{group, as_client}, {group, as_server}]},
     {'tlsv1.2', [], [{group, as_client}, {group, as_server}]},
     {as_client, [], Cases},
     {as_server, [], Cases}].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_group(as_client, Config) -> [{role, client} | Config];
init_per_group(as_server, Config) -> [{role, server} | Config];
init_per_group(Version, Config) -> [{tls_version, Version} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% versions/0: [{ssl_app, Vsn}, {supported, [..]}, {available, [..]}, ...]
%% with TLS 1.3 and 1.2 supported by default.
versions_shape(_Config) ->
    Versions = ?M:versions(),
    ?assert(is_list(Versions)),
    ?assert(lists:all(fun({K, _}) -> is_atom(K); (_) -> false end, Versions)),
    AppVsn = proplists:get_value(ssl_app, Versions),
    ?assert(is_list(AppVsn) andalso AppVsn =/= [] andalso io_lib:printable_list(AppVsn)),
    Supported = proplists:get_value(supported, Versions),
    Available = proplists:get_value(available, Versions),
    [?assert(is_list(L) andalso lists:all(fun is_atom/1, L)) || L <- [Supported, Available]],
    ?assert(lists:member('tlsv1.3', Supported)),
    ?assert(lists:member('tlsv1.2', Supported)),
    ?assertEqual([], Supported -- Available),
    ?assertEqual([], [V || V <- Supported, not lists:member(V, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1])]).

%% 1 MiB each way, compared byte for byte, sent in pieces around record
%% boundaries plus one large send; then close reaches the peer.
bulk_1mib_each_way(Config) ->
    {S, Peer} = pair(Config, []),
    Up = crypto:strong_rand_bytes(?MiB),
    Down = crypto:strong_rand_bytes(?MiB),
    ok = rssl_test_lib:request(Peer, {recv_total, ?MiB}),
    ok = rssl_test_lib:send_chunks(?M, S, Up, rssl_test_lib:chunk_sizes(mixed) ++ [?MiB]),
    rssl_test_lib:assert_same(Up, rssl_test_lib:reply(Peer)),
    ok = rssl_test_lib:request(Peer, {send_chunks, Down, rssl_test_lib:chunk_sizes(mixed)}),
    rssl_test_lib:assert_same(Down, rssl_test_lib:recv_total(?M, S, ?MiB)),
    ok = rssl_test_lib:reply(Peer),
    ok = ?M:close(S),
    ?assertEqual({<<>>, {error, closed}}, rssl_test_lib:call(Peer, recv_until_closed)),
    ok = rssl_test_lib:stop_peer(Peer).

%% recv(S, 0) returns whatever is there as non-empty binaries, then
%% {error, closed} once the peer has closed.
passive_recv_zero(Config) ->
    {S, Peer} = pair(Config, []),
    Data = crypto:strong_rand_bytes(300000),
    ok = rssl_test_lib:call(Peer, {send_chunks, Data, rssl_test_lib:chunk_sizes(mixed)}),
    ok = rssl_test_lib:call(Peer, close),
    {Got, Last} = rssl_test_lib:recv_until_closed(?M, S),
    ?assertEqual({error, closed}, Last),
    rssl_test_lib:assert_same(Data, Got),
    ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% recv(S, N) returns exactly N bytes, across record boundaries and across
%% several small sends.
passive_recv_exact(Config) ->
    {S, Peer} = pair(Config, []),
    Data = crypto:strong_rand_bytes(200000),
    ok = rssl_test_lib:call(Peer, {send, Data}),
    Sizes = [1, 2, 1000, 16383, 16384, 16385, 65536],
    Rest = recv_sizes(S, Data, Sizes),
    ?assertEqual({ok, Rest}, ?M:recv(S, byte_size(Rest), ?T)),
    Small = crypto:strong_rand_bytes(100),
    ok = rssl_test_lib:call(Peer, {send_chunks, Small, [10]}),
    ?assertEqual({ok, Small}, ?M:recv(S, 100, ?T)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

recv_sizes(_S, Data, []) ->
    Data;
recv_sizes(S, Data, [N | Ns]) ->
    <<Expect:N/binary, Rest/binary>> = Data,
    {ok, Got} = ?M:recv(S, N, ?T),
    ?assertEqual(N, byte_size(Got)),
    rssl_test_lib:assert_same(Expect, Got),
    recv_sizes(S, Rest, Ns).

%% {active, true}, binary mode: {ssl, S, Binary} messages, then {ssl_closed, S}.
active_true_binary(Config) ->
    {S, Peer} = pair(Config, [{active, true}]),
    Data = crypto:strong_rand_bytes(300000),
    ok = rssl_test_lib:call(Peer, {send_chunks, Data, rssl_test_lib:chunk_sizes(mixed)}),
    ok = rssl_test_lib:call(Peer, close),
    {Pieces, Final} = rssl_test_lib:collect_active(S, ?T),
    ?assertEqual({ssl_closed, S}, Final),
    ?assertEqual([], [P || P <- Pieces, not is_binary(P) orelse P =:= <<>>]),
    rssl_test_lib:assert_same(Data, iolist_to_binary(Pieces)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer),
    ?assertEqual([], rssl_test_lib:stray_messages(S)).

%% {active, true}, list mode: {ssl, S, String} messages.
active_true_list(Config) ->
    {S, Peer} = pair(Config, [{active, true}, list]),
    Data = crypto:strong_rand_bytes(100000),
    ok = rssl_test_lib:call(Peer, {send_chunks, Data, rssl_test_lib:chunk_sizes(mixed)}),
    ok = rssl_test_lib:call(Peer, close),
    {Pieces, Final} = rssl_test_lib:collect_active(S, ?T),
    ?assertEqual({ssl_closed, S}, Final),
    ?assertEqual([], [P || P <- Pieces, not is_list(P) orelse P =:= []]),
    rssl_test_lib:assert_same(Data, list_to_binary(Pieces)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% {active, once} delivers one message then turns passive; {active, N}
%% delivers N then sends {ssl_passive, S}.
active_once_and_n(Config) ->
    {S, Peer} = pair(Config, [{active, once}]),
    ok = rssl_test_lib:call(Peer, {send, <<"a">>}),
    expect({ssl, S, <<"a">>}),
    ok = rssl_test_lib:call(Peer, {send, <<"b">>}),
    %% Now passive: "b" waits for recv instead of becoming a message.
    ?assertEqual({ok, <<"b">>}, ?M:recv(S, 0, ?T)),
    ok = ?M:setopts(S, [{active, 2}]),
    ok = rssl_test_lib:call(Peer, {send, <<"c">>}),
    expect({ssl, S, <<"c">>}),
    ok = rssl_test_lib:call(Peer, {send, <<"d">>}),
    expect({ssl, S, <<"d">>}),
    expect({ssl_passive, S}),
    ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
    ok = rssl_test_lib:call(Peer, {send, <<"e">>}),
    ?assertEqual({ok, <<"e">>}, ?M:recv(S, 0, ?T)),
    ok = ?M:setopts(S, [{active, once}]),
    ok = rssl_test_lib:call(Peer, close),
    expect({ssl_closed, S}),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer),
    ?assertEqual([], rssl_test_lib:stray_messages(S)).

%% connection_information/2 gives the negotiated version and the same
%% suite on both ends; /1 includes the version too.
negotiated_version(Config) ->
    V = ?config(tls_version, Config),
    {S, Peer} = pair(Config, []),
    Items = [protocol, selected_cipher_suite],
    {ok, Info} = ?M:connection_information(S, Items),
    {ok, PeerInfo} = rssl_test_lib:call(Peer, {apply, connection_information, [Items]}),
    ?assertEqual(lists:sort(Items), lists:sort(proplists:get_keys(Info))),
    ?assertEqual(V, proplists:get_value(protocol, Info)),
    ?assertEqual(V, proplists:get_value(protocol, PeerInfo)),
    Suite = proplists:get_value(selected_cipher_suite, Info),
    ?assertMatch(#{key_exchange := _, cipher := _, mac := _, prf := _}, Suite),
    ?assertEqual(proplists:get_value(selected_cipher_suite, PeerInfo), Suite),
    ?assertEqual(expected_kex(V, ecdsa), maps:get(key_exchange, Suite)),
    {ok, All} = ?M:connection_information(S),
    ?assertEqual(V, proplists:get_value(protocol, All)),
    %% ecc: the ECDHE curve before TLS 1.3 (each end names the same one),
    %% nothing in TLS 1.3.
    {ok, Ecc} = ?M:connection_information(S, [ecc]),
    {ok, PeerEcc} = rssl_test_lib:call(Peer, {apply, connection_information, [[ecc]]}),
    case V of
        'tlsv1.3' -> ?assertEqual([], Ecc);
        'tlsv1.2' -> ?assertMatch([{ecc, {named_curve, C}}] when is_atom(C), Ecc),
                     ?assertEqual(PeerEcc, Ecc)
    end,
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% An RSA 2048 server certificate (the others are ECDSA P-256).
rsa_certificate(Config) ->
    V = ?config(tls_version, Config),
    {S, Peer} = pair(Config, [], rsa_server),
    {ok, [{selected_cipher_suite, Suite}]} = ?M:connection_information(S, [selected_cipher_suite]),
    ?assertEqual(expected_kex(V, rsa), maps:get(key_exchange, Suite)),
    ok = ?M:send(S, <<"ping">>),
    ?assertEqual({ok, <<"ping">>}, rssl_test_lib:call(Peer, {recv, 4, ?T})),
    ok = rssl_test_lib:call(Peer, {send, <<"pong">>}),
    ?assertEqual({ok, <<"pong">>}, ?M:recv(S, 4, ?T)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% sockname/peername of one end mirror the other's.
sockname_peername(Config) ->
    {S, Peer} = pair(Config, []),
    {ok, {{127, 0, 0, 1}, LocalPort} = Local} = ?M:sockname(S),
    {ok, {{127, 0, 0, 1}, RemotePort} = Remote} = ?M:peername(S),
    ?assertEqual({ok, Local}, rssl_test_lib:call(Peer, {apply, peername, []})),
    ?assertEqual({ok, Remote}, rssl_test_lib:call(Peer, {apply, sockname, []})),
    %% The listening port is the server end's port.
    #{port := ListenPort} = Peer,
    case ?config(role, Config) of
        client -> ?assertEqual(ListenPort, RemotePort);
        server -> ?assertEqual(ListenPort, LocalPort)
    end,
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% update_keys/2 (TLS 1.3): after our key update, and after the peer's
%% (asking us to update too), data still flows both ways; a bad type is
%% {illegal_parameter, _}. Before TLS 1.3 there is no key update: rssl
%% says notsup (OTP 25's ssl crashes its connection instead).
update_keys(Config) ->
    {S, Peer} = pair(Config, []),
    case {?config(tls_version, Config), testing_ssl()} of
        {'tlsv1.3', _} ->
            exchange(S, Peer, 1000),
            ok = ?M:update_keys(S, write),
            exchange(S, Peer, 70000),
            ok = ?M:update_keys(S, read_write),
            exchange(S, Peer, 1000),
            ok = rssl_test_lib:call(Peer, {apply, update_keys, [read_write]}),
            exchange(S, Peer, 1000),
            ?assertEqual({error, {illegal_parameter, sideways}}, ?M:update_keys(S, sideways));
        {'tlsv1.2', false} ->
            ?assertEqual({error, notsup}, ?M:update_keys(S, write)),
            exchange(S, Peer, 1000);
        {'tlsv1.2', true} ->
            ok
    end,
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

testing_ssl() -> ?M =:= ssl.

%% Data both ways, compared.
exchange(S, Peer, Size) ->
    Up = crypto:strong_rand_bytes(Size),
    ok = rssl_test_lib:request(Peer, {recv_total, Size}),
    ok = ?M:send(S, Up),
    rssl_test_lib:assert_same(Up, rssl_test_lib:reply(Peer)),
    Down = crypto:strong_rand_bytes(Size),
    ok = rssl_test_lib:call(Peer, {send, Down}),
    rssl_test_lib:assert_same(Down, rssl_test_lib:recv_total(?M, S, Size)).

%%% Helpers -----------------------------------------------------------------

pair(Config, Extra) ->
    pair(Config, Extra, server).

%% A connection between ?M (this process, in the group's role) and ssl,
%% with the group's version; Extra overrides ?M's socket options.
pair(Config, Extra, ServerCert) ->
    Pki = ?config(pki, Config),
    V = ?config(tls_version, Config),
    ClientOpts = rssl_test_lib:client_opts(Pki, V, ca),
    ServerOpts = rssl_test_lib:server_opts(Pki, V, ServerCert),
    case ?config(role, Config) of
        client ->
            rssl_test_lib:open(?M, client, rssl_test_lib:merge_opts(Extra, ClientOpts),
                               ?PEER, ServerOpts, #{});
        server ->
            rssl_test_lib:open(?M, server, rssl_test_lib:merge_opts(Extra, ServerOpts),
                               ?PEER, ClientOpts, #{})
    end.

expected_kex('tlsv1.3', _) -> any;
expected_kex('tlsv1.2', ecdsa) -> ecdhe_ecdsa;
expected_kex('tlsv1.2', rsa) -> ecdhe_rsa.

expect(Msg) ->
    receive
        Msg -> ok
    after ?T ->
        ct:fail({message_not_received, Msg, rssl_test_lib:stray_messages(element(2, Msg))})
    end.
