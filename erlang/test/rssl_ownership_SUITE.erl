%% Who owns a connection of the module under test (?M, rssl by default)
%% and how it ends: controlling_process/2, the owner's death, shutdown/2
%% (read, write, read_write), close/1 and close/2. The peer is OTP's ssl;
%% every case also checks (end_per_testcase) that descriptors and ports
%% come back.
%%
%% Where OTP's ssl defines the exact answer the case runs the same calls
%% with ?M and with ssl and compares (rssl_socket_lib:same/2). Compile with
%% {d, 'M', ssl} (rebar3 as otp_ssl ct) to check every case against ssl.
-module(rssl_ownership_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(T, 10000).
-define(MiB, 1048576).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([controlling_process_moves_delivery/1, controlling_process_passive/1,
         controlling_process_by_non_owner/1, controlling_process_self_and_closed/1,
         controlling_process_to_dead_process/1, controlling_process_listen_socket/1,
         owner_exit_closes/1, owner_killed_in_recv/1, owner_exit_as_server/1,
         old_owner_exit_keeps_connection/1, non_owner_send_recv_close/1,
         trapping_owner_gets_no_port_exit/1]).
-export([shutdown_write_peer_reads_all/1, shutdown_write_half_close/1,
         shutdown_read/1, shutdown_read_write/1, shutdown_closed_socket/1,
         close_flushes_pending_data/1, close_twice/1,
         close_timeout_peer_closes/1, close_timeout_peer_silent/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [{group, ownership}, {group, closing}].

groups() ->
    [{ownership, [], [controlling_process_moves_delivery, controlling_process_passive,
                      controlling_process_by_non_owner, controlling_process_self_and_closed,
                      controlling_process_to_dead_process, controlling_process_listen_socket,
                      owner_exit_closes, owner_killed_in_recv, owner_exit_as_server,
                      old_owner_exit_keeps_connection, non_owner_send_recv_close,
                      trapping_owner_gets_no_port_exit]},
     {closing, [], [shutdown_write_peer_reads_all, shutdown_write_half_close,
                    shutdown_read, shutdown_read_write, shutdown_closed_socket,
                    close_flushes_pending_data, close_twice,
                    close_timeout_peer_closes, close_timeout_peer_silent]}].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_group(_, Config) -> Config.
end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% controlling_process ---------------------------------------------------

%% A caller trapping exits opens connections in both roles: once the TCP
%% ports behind them are gone (rssl hands their fds to the NIF and closes
%% them), its mailbox holds nothing but what it asked for, no {'EXIT',
%% Port, normal}, as with ssl.
trapping_owner_gets_no_port_exit(Config) ->
    Pki = ?config(pki, Config),
    Trapping = process_flag(trap_exit, true),
    Ports = tcp_ports(),
    Pairs = [?L:pair(?M, Role, Pki, []) || Role <- [client, server, client, server]],
    ok = wait_ports_back(Ports, 100),
    Exits = [M || {'EXIT', P, _} = M <- element(2, process_info(self(), messages)),
                  is_port(P)],
    [?L:finish(?M, Pair, ok) || Pair <- Pairs],
    process_flag(trap_exit, Trapping),
    ?assertEqual([], Exits).

tcp_ports() ->
    [P || P <- erlang:ports(), erlang:port_info(P, name) =:= {name, "tcp_inet"}].

%% The ports opened since `Before' that are still open: the connections'
%% own and the ssl peers' are expected; rssl's must all have closed.
wait_ports_back(Before, 0) ->
    ct:fail({ports_left, tcp_ports() -- Before});
wait_ports_back(Before, N) ->
    case [P || P <- tcp_ports() -- Before, is_rssl_port(P)] of
        [] -> ok;
        _ -> timer:sleep(20), wait_ports_back(Before, N - 1)
    end.

%% Ports connected to this process are the ones rssl opened for it (the
%% ssl peers run in their own processes).
is_rssl_port(P) ->
    erlang:port_info(P, connected) =:= {connected, self()}.

%% After controlling_process(S, P) the messages go to P, none to the old
%% owner; P can hand it back.
controlling_process_moves_delivery(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{active, true}]),
    Self = self(),
    P = spawn_link(fun() ->
                           receive {Self, go} -> ok end,
                           M1 = receive {ssl, S, D1} -> D1 after ?T -> timeout end,
                           ok = ?M:setopts(S, [{active, once}]),
                           Self ! {self(), got, M1},
                           receive {Self, give_back} -> ok end,
                           Self ! {self(), gave, ?M:controlling_process(S, Self)}
                   end),
    ok = ?M:controlling_process(S, P),
    P ! {Self, go},
    ?L:peer_send(Peer, <<"to P">>),
    ?assertEqual(<<"to P">>, receive {P, got, M1} -> M1 after ?T -> ct:fail(p_silent) end),
    ?assertEqual([], ?L:no_msgs(S)),
    P ! {Self, give_back},
    ?assertEqual(ok, receive {P, gave, R} -> R after ?T -> ct:fail(p_silent) end),
    ?L:peer_send(Peer, <<"back">>),
    ?L:expect(S, {ssl, S, <<"back">>}),
    ?L:finish(?M, {S, Peer}, ok).

%% A passive socket handed over: the new owner sets it active and gets the
%% data that was waiting.
controlling_process_passive(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), []),
    ?L:peer_send(Peer, <<"waiting">>),
    Self = self(),
    P = spawn_link(fun() ->
                           receive {Self, go} -> ok end,
                           ok = ?M:setopts(S, [{active, true}]),
                           Self ! {self(), receive {ssl, S, D} -> D after ?T -> timeout end},
                           receive {Self, stop} -> ok end
                   end),
    ok = ?M:controlling_process(S, P),
    P ! {Self, go},
    ?assertEqual(<<"waiting">>, receive {P, D} -> D after ?T -> ct:fail(p_silent) end),
    ok = ?M:close(S),
    P ! {Self, stop},
    ?L:finish(?M, {S, Peer}, ok).

%% A process that is not the owner calls controlling_process. rssl follows
%% gen_tcp's rule, as the socket-contract issue asks: {error, not_owner},
%% and the owner keeps the messages. (OTP 25's ssl does not check the
%% caller: ok, and the messages go to the caller from then on; under the
%% otp_ssl profile that is what is checked.)
controlling_process_by_non_owner(Config) ->
    Pki = ?config(pki, Config),
    Expected = case ?M of
                   ssl -> {ok, <<"x">>, []};
                   _ -> {{error, not_owner}, not_owner, [{ssl, 'S', <<"x">>}]}
               end,
    Got = (fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{active, true}]),
                              Self = self(),
                              P = spawn_link(fun() ->
                                                     R = Mod:controlling_process(S, self()),
                                                     Self ! {self(), result, R},
                                                     Got = case R of
                                                               ok -> receive {ssl, S, D} -> D
                                                                     after ?T -> none end;
                                                               _ -> not_owner
                                                           end,
                                                     Self ! {self(), got, Got},
                                                     receive stop -> ok end
                                             end),
                              R = receive {P, result, R0} -> R0 end,
                              ?L:peer_send(Peer, <<"x">>),
                              PGot = receive {P, got, G} -> G end,
                              Mine = case R of
                                         ok -> ?L:no_msgs(S);
                                         _ -> [?L:norm(S, ?L:next_msg(S, ?T))]
                                     end,
                              ok = Mod:close(S),
                              P ! stop,
                              ?L:finish(Mod, {S, Peer}, {R, PGot, Mine})
                      end)(?M),
    ?assertEqual(Expected, Got).

%% To itself: ok. On a closed socket: {error, closed}.
controlling_process_self_and_closed(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R1 = Mod:controlling_process(S, self()),
                              ok = Mod:close(S),
                              R2 = Mod:controlling_process(S, self()),
                              ?L:finish(Mod, {S, Peer}, [R1, R2])
                      end),
    ?assertEqual([ok, {error, closed}], Got).

%% Handing the connection to a process that is already dead: as with the
%% owner's death, the connection closes (ssl monitors the new owner).
controlling_process_to_dead_process(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              {Dead, Ref} = spawn_monitor(fun() -> ok end),
                              receive {'DOWN', Ref, process, Dead, _} -> ok end,
                              R = Mod:controlling_process(S, Dead),
                              PeerSaw = ?L:peer_recv(Peer, 0, ?T),
                              ?L:finish(Mod, {S, Peer}, {R, PeerSaw})
                      end),
    ?assertEqual({ok, {error, closed}}, Got).

%% A listen socket: the owner may hand it over, others get
%% {error, not_owner}; its new owner's death closes it.
controlling_process_listen_socket(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {ok, L} = Mod:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
                              {ok, {_, Port}} = Mod:sockname(L),
                              Self = self(),
                              {Other, ORef} = spawn_monitor(fun() ->
                                                                    Self ! {self(), Mod:controlling_process(L, self())}
                                                            end),
                              R1 = receive {Other, R} -> R end,
                              receive {'DOWN', ORef, process, Other, _} -> ok end,
                              {NewOwner, NRef} = spawn_monitor(fun() -> receive stop -> ok end end),
                              R2 = Mod:controlling_process(L, NewOwner),
                              R3 = Mod:controlling_process(L, self()),
                              NewOwner ! stop,
                              receive {'DOWN', NRef, process, NewOwner, _} -> ok end,
                              Refused = ?L:wait_until(fun() -> refused(Port) end, 3000),
                              [R1, R2, R3, Refused]
                      end),
    ?assertEqual([{error, not_owner}, ok, {error, not_owner}, true], Got).

%%% The owner's death -----------------------------------------------------

%% The owner exits (normally, killed, crashing) without closing: the peer
%% reads what was sent, then the close; nothing is left open.
owner_exit_closes(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {Server, Port} = rssl_test_lib:start_server(ssl, ?L:base_opts(Pki, server),
                                                     fun({ok, PS}) -> rssl_test_lib:recv_until_closed(ssl, PS) end),
         Self = self(),
         {Owner, Ref} = spawn_monitor(
                          fun() ->
                                  {ok, S} = ?M:connect({127, 0, 0, 1}, Port, ?L:base_opts(Pki, client), ?T),
                                  ok = ?M:send(S, <<"last words">>),
                                  Self ! {self(), sent},
                                  receive die -> ok end,
                                  case How of
                                      normal -> ok;
                                      crash -> error(crash);
                                      kill -> receive never -> ok end
                                  end
                          end),
         receive {Owner, sent} -> ok after ?T -> ct:fail(owner_did_not_send) end,
         case How of
             kill -> exit(Owner, kill);
             _ -> Owner ! die
         end,
         receive {'DOWN', Ref, process, Owner, _} -> ok end,
         ?assertEqual({How, {<<"last words">>, {error, closed}}}, {How, rssl_test_lib:await(Server)})
     end || How <- [normal, crash, kill]].

%% Killed while blocked in recv: the connection closes.
owner_killed_in_recv(Config) ->
    Pki = ?config(pki, Config),
    {Server, Port} = rssl_test_lib:start_server(ssl, ?L:base_opts(Pki, server),
                                                fun({ok, PS}) -> rssl_test_lib:recv_until_closed(ssl, PS) end),
    Self = self(),
    {Owner, Ref} = spawn_monitor(fun() ->
                                         {ok, S} = ?M:connect({127, 0, 0, 1}, Port, ?L:base_opts(Pki, client), ?T),
                                         Self ! {self(), connected},
                                         ?M:recv(S, 0)
                                 end),
    receive {Owner, connected} -> ok after ?T -> ct:fail(owner_did_not_connect) end,
    rssl_test_lib:wait_blocked(Owner, recv),
    exit(Owner, kill),
    receive {'DOWN', Ref, process, Owner, killed} -> ok end,
    ?assertEqual({<<>>, {error, closed}}, rssl_test_lib:await(Server)).

%% The same when the dead owner was the accepting server.
owner_exit_as_server(Config) ->
    Pki = ?config(pki, Config),
    Self = self(),
    {Owner, Ref} = spawn_monitor(fun() ->
                                         {ok, L} = ?M:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
                                         {ok, {_, Port}} = ?M:sockname(L),
                                         Self ! {self(), port, Port},
                                         {ok, T} = ?M:transport_accept(L, ?T),
                                         {ok, S} = ?M:handshake(T, ?T),
                                         ok = ?M:send(S, <<"bye">>),
                                         Self ! {self(), sent},
                                         receive die -> ok end
                                 end),
    Port = receive {Owner, port, P} -> P after ?T -> ct:fail(no_port) end,
    {ok, C} = ssl:connect({127, 0, 0, 1}, Port, ?L:base_opts(Pki, client), ?T),
    receive {Owner, sent} -> ok after ?T -> ct:fail(owner_did_not_send) end,
    Owner ! die,
    receive {'DOWN', Ref, process, Owner, _} -> ok end,
    ?assertEqual({<<"bye">>, {error, closed}}, rssl_test_lib:recv_until_closed(ssl, C)),
    ok = ssl:close(C).

%% Handed from A to B, A exits: B still has a working connection; then B
%% exits and it closes.
old_owner_exit_keeps_connection(Config) ->
    Pki = ?config(pki, Config),
    {Server, Port} = rssl_test_lib:start_server(ssl, ?L:base_opts(Pki, server), loop),
    Self = self(),
    B = spawn(fun() ->
                      S = receive {Self, sock, S0} -> S0 end,
                      receive {Self, go} -> ok end,
                      ok = ?M:send(S, <<"from B">>),
                      Self ! {self(), recv, ?M:recv(S, 4, ?T)},
                      receive die -> ok end
              end),
    {A, ARef} = spawn_monitor(fun() ->
                                      {ok, S} = ?M:connect({127, 0, 0, 1}, Port, ?L:base_opts(Pki, client), ?T),
                                      ok = ?M:controlling_process(S, B),
                                      B ! {Self, sock, S}
                              end),
    receive {'DOWN', ARef, process, A, normal} -> ok end,
    Peer = #{pid => Server, port => Port, mod => ssl},
    receive {Server, handshake, ok} -> ok after ?T -> ct:fail(no_handshake) end,
    B ! {Self, go},
    ?assertEqual({ok, <<"from B">>}, ?L:peer_recv(Peer, 6)),
    ?L:peer_send(Peer, <<"to B">>),
    ?assertEqual({ok, <<"to B">>}, receive {B, recv, R} -> R after ?T -> ct:fail(b_silent) end),
    BRef = monitor(process, B),
    B ! die,
    receive {'DOWN', BRef, process, B, _} -> ok end,
    ?assertEqual({<<>>, {error, closed}}, ?L:peer_recv_closed(Peer)),
    ok = rssl_test_lib:stop_peer(Peer).

%% send, recv and close from a process that is not the owner work (as
%% with ssl).
non_owner_send_recv_close(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              Self = self(),
                              ?L:peer_send(Peer, <<"y">>),
                              spawn_link(fun() ->
                                                 R = [Mod:send(S, <<"x">>), Mod:recv(S, 0, ?T), Mod:close(S)],
                                                 Self ! {nonowner, R}
                                         end),
                              R = receive {nonowner, R0} -> R0 end,
                              PeerSaw = ?L:peer_recv_closed(Peer),
                              ?L:finish(Mod, {S, Peer}, {R, PeerSaw})
                      end),
    ?assertEqual({[ok, {ok, <<"y">>}, ok], {<<"x">>, {error, closed}}}, Got).

%%% shutdown ----------------------------------------------------------------

%% shutdown(write) after a large send: the peer reads every byte, then the
%% close.
shutdown_write_peer_reads_all(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {S, Peer} = ?L:pair(?M, Role, Pki, []),
         Data = ?L:pattern(2 * ?MiB, 5),
         ok = ?M:send(S, Data),
         ?assertEqual(ok, ?M:shutdown(S, write)),
         {Got, Last} = ?L:peer_recv_closed(Peer),
         rssl_test_lib:assert_same(Data, Got),
         ?assertEqual({Role, {error, closed}}, {Role, Last}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Role <- [client, server]].

%% Half close with {exit_on_close, false} on both ends: after
%% shutdown(write) the peer reads the request and can still answer, and
%% the answer is read; sending after it fails.
shutdown_write_half_close(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{exit_on_close, false}],
                                                  [{exit_on_close, false} | ?L:base_opts(Pki, server)]),
                              ok = Mod:send(S, <<"request">>),
                              Shut = Mod:shutdown(S, write),
                              Req = ?L:peer_recv(Peer, 7),
                              ?L:peer_send(Peer, <<"response">>),
                              Resp = Mod:recv(S, 8, ?T),
                              After = Mod:send(S, <<"more">>),
                              ?L:finish(Mod, {S, Peer}, [Shut, Req, Resp, After])
                      end),
    ?assertEqual([ok, {ok, <<"request">>}, {ok, <<"response">>}, {error, closed}], Got).

%% shutdown(read): ok; reading then reports the close, and the peer sees
%% the connection go (exit_on_close is true).
shutdown_read(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              Shut = Mod:shutdown(S, read),
                              Recv = Mod:recv(S, 0, ?T),
                              PeerSaw = ?L:peer_recv(Peer, 0, ?T),
                              ?L:finish(Mod, {S, Peer}, [Shut, Recv, PeerSaw])
                      end),
    ?assertEqual([ok, {error, closed}, {error, closed}], Got).

%% shutdown(read_write): the peer gets what was sent, then the close;
%% send and recv say closed.
shutdown_read_write(Config) ->
    Pki = ?config(pki, Config),
    %% OTP's send after it answers closed, or einval once its connection
    %% process has gone (a race of its own): both count as the same.
    SendView = fun([Shut, PeerSaw, {error, einval}, Recv]) -> [Shut, PeerSaw, {error, closed}, Recv];
                  (Other) -> Other
               end,
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ok = Mod:send(S, <<"bye">>),
                              Shut = Mod:shutdown(S, read_write),
                              PeerSaw = ?L:peer_recv_closed(Peer),
                              R = [Mod:send(S, <<"x">>), Mod:recv(S, 0, ?T)],
                              ?L:finish(Mod, {S, Peer}, [Shut, PeerSaw | R])
                      end, SendView),
    ?assertEqual([ok, {<<"bye">>, {error, closed}}, {error, closed}, {error, closed}],
                 SendView(Got)).

%% shutdown on a closed socket: {error, closed}.
shutdown_closed_socket(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ok = Mod:close(S),
                              R = [Mod:shutdown(S, How) || How <- [read, write, read_write]],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([{error, closed}, {error, closed}, {error, closed}], Got).

%%% close -------------------------------------------------------------------

%% close/1 right after a large send: everything sent still reaches the
%% peer, then the close.
close_flushes_pending_data(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {S, Peer} = ?L:pair(?M, Role, Pki, []),
         Data = ?L:pattern(2 * ?MiB, 7),
         ok = ?M:send(S, Data),
         ok = ?M:close(S),
         {Got, Last} = ?L:peer_recv_closed(Peer),
         rssl_test_lib:assert_same(Data, Got),
         ?assertEqual({Role, {error, closed}}, {Role, Last}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Role <- [client, server]].

close_twice(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R = [Mod:close(S), Mod:close(S), Mod:close(S, 100)],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([ok, ok, ok], Got).

%% close/2 with a peer that reads and closes in turn: ok; the peer got the
%% data and the close.
close_timeout_peer_closes(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ok = Mod:send(S, <<"data">>),
                              ok = rssl_test_lib:request(Peer, recv_until_closed),
                              R = Mod:close(S, 5000),
                              PeerSaw = rssl_test_lib:reply(Peer),
                              ?L:finish(Mod, {S, Peer}, {R, PeerSaw})
                      end),
    ?assertEqual({ok, {<<"data">>, {error, closed}}}, Got).

%% close/2 with a peer that does not read: returns (ok) within about the
%% timeout, and the peer still gets data and close when it reads.
close_timeout_peer_silent(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ok = Mod:send(S, <<"data">>),
                              R = Mod:close(S, 200),
                              PeerSaw = ?L:peer_recv_closed(Peer),
                              ?L:finish(Mod, {S, Peer}, {R, PeerSaw})
                      end),
    ?assertEqual({ok, {<<"data">>, {error, closed}}}, Got).

%% true once nothing listens on Port any more.
refused(Port) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, []) of
        {error, econnrefused} -> true;
        {ok, Tcp} -> gen_tcp:close(Tcp), false;
        {error, _} -> false
    end.
