%% {cb_info, {Module, DataTag, ClosedTag, ErrorTag}}: the module under test
%% (?M, rssl by default) runs TLS over any gen_tcp-like module. The module
%% here is rssl_test_transport: it wraps gen_tcp, has its own message tags
%% (tt_data, tt_closed, tt_error, tt_data_passive) and counts the bytes
%% that go through it, so the cases can tell that every TLS byte really
%% went through the module. The peer is OTP's ssl over plain gen_tcp.
%%
%% Where OTP's ssl defines the exact answer the case runs the same calls
%% with ?M and with ssl and compares (rssl_socket_lib:same/2). Compile with
%% {d, 'M', ssl} (rebar3 as otp_ssl ct) to check every case against ssl.
-module(rssl_cb_info_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(TT, rssl_test_transport).
-define(T, 10000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([client_passive/1, client_active/1, server_passive/1, server_active_n/1,
         five_tuple_cb_info/1, closed_tag/1, error_tag/1,
         options_through_transport/1, sockname_peername_getstat/1,
         upgrade_transport_socket/1, owner_exit_closes_transport/1,
         close_closes_transport/1, bad_cb_info/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [client_passive, client_active, server_passive, server_active_n,
     five_tuple_cb_info, closed_tag, error_tag,
     options_through_transport, sockname_peername_getstat,
     upgrade_transport_socket, owner_exit_closes_transport,
     close_closes_transport, bad_cb_info].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    ok = ?TT:reset_stats(),
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% ?M as client over the transport, passive: data both ways, and the
%% transport carried exactly the bytes the peer's TCP socket saw.
client_passive(Config) ->
    {S, Peer} = open(Config, client, []),
    ?assertMatch(#{connects := 1}, ?TT:stats()),
    exchange_passive(S, Peer),
    check_bytes(Peer),
    close_both(S, Peer).

%% Active mode over the transport: {ssl, S, Data} messages (the
%% transport's tt_data turned into ssl's messages).
client_active(Config) ->
    {S, Peer} = open(Config, client, [{active, true}]),
    Data = ?L:pattern(200000, 3),
    ?L:peer_send_chunks(Peer, Data, [1, 16384, 7, 40000]),
    rssl_test_lib:assert_same(Data, active_bytes(S, byte_size(Data), [])),
    ok = ?M:send(S, <<"done">>),
    ?assertEqual({ok, <<"done">>}, ?L:peer_recv(Peer, 4)),
    check_bytes(Peer),
    close_both(S, Peer).

%% ?M as server: listen and accept through the transport.
server_passive(Config) ->
    {S, Peer} = open(Config, server, []),
    ?assertMatch(#{accepts := 1}, ?TT:stats()),
    exchange_passive(S, Peer),
    check_bytes(Peer),
    close_both(S, Peer).

%% {active, N} over the transport, as server.
server_active_n(Config) ->
    {S, Peer} = open(Config, server, [{active, 2}]),
    ?L:peer_send(Peer, <<"a">>),
    ?L:expect(S, {ssl, S, <<"a">>}),
    ?L:peer_send(Peer, <<"b">>),
    ?L:expect(S, {ssl, S, <<"b">>}),
    ?L:expect(S, {ssl_passive, S}),
    ?L:peer_send(Peer, <<"c">>),
    ?assertEqual({ok, <<"c">>}, ?M:recv(S, 1, ?T)),
    close_both(S, Peer).

%% The 5-tuple form with an explicit passive tag.
five_tuple_cb_info(Config) ->
    Pki = ?config(pki, Config),
    Opts = [{cb_info, {?TT, tt_data, tt_closed, tt_error, tt_data_passive}} | ?L:base_opts(Pki, client)],
    {S, Peer} = rssl_test_lib:open(?M, client, Opts, ssl, ?L:base_opts(Pki, server), #{}),
    exchange_passive(S, Peer),
    check_bytes(Peer),
    close_both(S, Peer).

%% The peer closes: the transport's tt_closed becomes {ssl_closed, S}
%% (active) and {error, closed} (passive).
closed_tag(Config) ->
    {S, Peer} = open(Config, client, [{active, true}]),
    ?L:peer_send(Peer, <<"bye">>),
    ok = rssl_test_lib:call(Peer, close),
    ?assertEqual({[<<"bye">>], {ssl_closed, S}}, rssl_test_lib:collect_active(S, ?T)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer),
    {S2, Peer2} = open(Config, server, []),
    ok = rssl_test_lib:call(Peer2, close),
    ?assertEqual({error, closed}, ?M:recv(S2, 0, ?T)),
    close_both(S2, Peer2).

%% The transport reports an error ({tt_error, Sock, Reason}): what the
%% owner of the TLS socket sees is what ssl makes of it.
error_tag(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              Opts = rssl_test_lib:merge_opts([cb(), {active, true}], ?L:base_opts(Pki, client)),
                              {S, Peer} = rssl_test_lib:open(Mod, client, Opts, ssl, ?L:base_opts(Pki, server), #{}),
                              ok = ?TT:inject_error(?TT:last_socket(), econnreset),
                              Msg = ?L:next_msg(S, ?T),
                              After = Mod:send(S, <<"x">>),
                              ?L:finish(Mod, {S, Peer}, {Msg, After})
                      end),
    ?assertEqual({{ssl_closed, 'S'}, {error, closed}}, Got).

%% inet options given to setopts reach the transport's socket, and getopts
%% reads them from there.
options_through_transport(Config) ->
    {S, Peer} = open(Config, client, []),
    {rssl_tt, _, Tcp} = ?TT:last_socket(),
    ok = ?M:setopts(S, [{nodelay, true}, {keepalive, true}]),
    ?assertEqual({ok, [{keepalive, true}, {nodelay, true}]}, sorted(inet:getopts(Tcp, [nodelay, keepalive]))),
    ?assertEqual({ok, [{keepalive, true}, {nodelay, true}]}, sorted(?M:getopts(S, [nodelay, keepalive]))),
    ok = inet:setopts(Tcp, [{nodelay, false}]),
    ?assertEqual({ok, [{nodelay, false}]}, ?M:getopts(S, [nodelay])),
    %% Emulated options stay the TLS socket's own.
    ok = ?M:setopts(S, [list, {packet, 2}]),
    ?assertEqual({ok, [{mode, list}, {packet, 2}]}, sorted(?M:getopts(S, [mode, packet]))),
    ?L:peer_send(Peer, <<0, 2, "hi">>),
    ?assertEqual({ok, "hi"}, ?M:recv(S, 0, ?T)),
    close_both(S, Peer).

%% sockname, peername and getstat are the transport socket's.
sockname_peername_getstat(Config) ->
    {S, Peer} = open(Config, client, []),
    {rssl_tt, _, Tcp} = ?TT:last_socket(),
    ?assertEqual(inet:sockname(Tcp), ?M:sockname(S)),
    ?assertEqual(inet:peername(Tcp), ?M:peername(S)),
    ?assertEqual(?M:sockname(S), rssl_test_lib:call(Peer, {apply, peername, []})),
    exchange_passive(S, Peer),
    {ok, Stats} = ?M:getstat(S, [send_oct, recv_oct]),
    {ok, TcpStats} = inet:getstat(Tcp, [send_oct, recv_oct]),
    ?assertEqual(lists:sort(TcpStats), lists:sort(Stats)),
    close_both(S, Peer).

%% connect/3 on a socket of the transport (upgrade) with cb_info.
upgrade_transport_socket(Config) ->
    Pki = ?config(pki, Config),
    {Pid, Port} = rssl_test_lib:start_server(ssl, ?L:base_opts(Pki, server), loop),
    {ok, Sock} = ?TT:connect({127, 0, 0, 1}, Port, [binary, {active, false}], ?T),
    {ok, S} = ?M:connect(Sock, [cb() | ?L:base_opts(Pki, client)], ?T),
    Peer = receive
               {Pid, handshake, ok} -> #{pid => Pid, port => Port, mod => ssl};
               {Pid, handshake, E} -> ct:fail({peer_handshake, E})
           after ?T -> ct:fail(peer_handshake_timeout)
           end,
    exchange_passive(S, Peer),
    check_bytes(Peer),
    close_both(S, Peer).

%% The owner's death closes the TLS connection and the transport socket.
owner_exit_closes_transport(Config) ->
    Pki = ?config(pki, Config),
    {Server, Port} = rssl_test_lib:start_server(ssl, ?L:base_opts(Pki, server),
                                                fun({ok, PS}) -> rssl_test_lib:recv_until_closed(ssl, PS) end),
    {Owner, Ref} = spawn_monitor(fun() ->
                                         {ok, S} = ?M:connect({127, 0, 0, 1}, Port,
                                                              [cb() | ?L:base_opts(Pki, client)], ?T),
                                         ok = ?M:send(S, <<"last">>)
                                 end),
    receive {'DOWN', Ref, process, Owner, normal} -> ok after ?T -> ct:fail(owner_stuck) end,
    ?assertEqual({<<"last">>, {error, closed}}, rssl_test_lib:await(Server)),
    {rssl_tt, Relay, _} = ?TT:last_socket(),
    ?assert(?L:wait_until(fun() -> not is_process_alive(Relay) end, 3000)).

%% close/1 closes the transport socket (through the module's close/1).
close_closes_transport(Config) ->
    {S, Peer} = open(Config, client, []),
    {rssl_tt, Relay, _} = ?TT:last_socket(),
    ok = ?M:close(S),
    ?assertEqual({<<>>, {error, closed}}, ?L:peer_recv_closed(Peer)),
    ?assert(?L:wait_until(fun() -> not is_process_alive(Relay) end, 3000)),
    ?assertMatch(#{closes := 1}, ?TT:stats()),
    ok = rssl_test_lib:stop_peer(Peer).

%% A cb_info that is not a module and tags: {error, {options, {cb_info, _}}}.
bad_cb_info(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = ssl:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
    {ok, {_, Port}} = ssl:sockname(L),
    Got = ?L:same(?M, fun(Mod) ->
                              [{Bad, Mod:connect({127, 0, 0, 1}, Port, [{cb_info, Bad} | ?L:base_opts(Pki, client)], 1000),
                                Mod:listen(0, [{cb_info, Bad} | ?L:base_opts(Pki, server)])}
                               || Bad <- [bogus, {a, b, c}, {?TT, tt_data, tt_closed, "tt_error"}]]
                      end),
    ok = ssl:close(L),
    ?assertEqual([{bogus, {error, {options, {cb_info, bogus}}}, {error, {options, {cb_info, bogus}}}},
                  {{a, b, c}, {error, {options, {cb_info, {a, b, c}}}}, {error, {options, {cb_info, {a, b, c}}}}},
                  {{?TT, tt_data, tt_closed, "tt_error"},
                   {error, {options, {cb_info, {?TT, tt_data, tt_closed, "tt_error"}}}},
                   {error, {options, {cb_info, {?TT, tt_data, tt_closed, "tt_error"}}}}}], Got).

%%% Helpers -----------------------------------------------------------------

cb() ->
    {cb_info, ?TT:tags()}.

%% ?M over the transport in Role, Extra overriding its options; the ssl
%% peer over gen_tcp.
open(Config, Role, Extra) ->
    Pki = ?config(pki, Config),
    Opts = rssl_test_lib:merge_opts([cb() | Extra], ?L:base_opts(Pki, Role)),
    rssl_test_lib:open(?M, Role, Opts, ssl, ?L:base_opts(Pki, other(Role)), #{}).

other(client) -> server;
other(server) -> client.

exchange_passive(S, Peer) ->
    Up = ?L:pattern(150000, 1),
    ok = ?M:send(S, Up),
    rssl_test_lib:assert_same(Up, rssl_test_lib:call(Peer, {recv_total, byte_size(Up)})),
    Down = ?L:pattern(90000, 2),
    ?L:peer_send_chunks(Peer, Down, [1, 16385, 3]),
    rssl_test_lib:assert_same(Down, rssl_test_lib:recv_total(?M, S, byte_size(Down))).

%% Everything on the wire went through the transport: its byte counts are
%% the peer's TCP counts (both ends have read everything by now).
check_bytes(Peer) ->
    {ok, PeerStats} = ?L:peer_fn(Peer, fun(Mod, PS) -> Mod:getstat(PS, [send_oct, recv_oct]) end),
    #{sent := Sent, received := Received} = ?TT:stats(),
    ?assertEqual(#{sent => proplists:get_value(recv_oct, PeerStats),
                   received => proplists:get_value(send_oct, PeerStats)},
                 #{sent => Sent, received => Received}),
    ?assert(Sent > 0 andalso Received > 0).

close_both(S, Peer) ->
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

active_bytes(_S, Len, Acc) when Len =< 0 ->
    iolist_to_binary(lists:reverse(Acc));
active_bytes(S, Len, Acc) ->
    receive
        {ssl, S, B} when is_binary(B) -> active_bytes(S, Len - byte_size(B), [B | Acc]);
        {ssl_closed, S} = M -> ct:fail({unexpected, M});
        {ssl_error, S, _} = M -> ct:fail({unexpected, M})
    after ?T -> ct:fail({missing_bytes, Len})
    end.

sorted({ok, L}) when is_list(L) -> {ok, lists:sort(L)};
sorted(Other) -> Other.
