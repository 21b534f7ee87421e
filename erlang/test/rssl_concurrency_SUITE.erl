%% Several processes using one connection of the module under test (?M,
%% rssl by default) at once, as pools and multiplexed protocols do: gen_tcp
%% and ssl let any process send. The peer is OTP's ssl in {packet, 4}
%% passive mode; every frame carries its sender's id and sequence number
%% (rssl_stress_lib:frame/2), and the peer checks each frame is whole and
%% the next of its sender. Every send must return, with or without
%% back-pressure, and while other processes change options, read stats,
%% receive or close.
%%
%% Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to run the same cases
%% with OTP's ssl as the module under test.
-module(rssl_concurrency_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(S, rssl_stress_lib).
-define(T, 10000).
%% Long enough for 16,000 frames on a loaded 2-core machine.
-define(LONG, 120000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([many_senders/1, many_senders_backpressure/1,
         senders_race_options/1, senders_race_close/1, blocked_senders_then_close/1,
         recv_while_others_send/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [many_senders, many_senders_backpressure, senders_race_options,
     senders_race_close, blocked_senders_then_close, recv_while_others_send].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases ---------------------------------------------------------------------

%% 8 processes x 2,000 frames of 400-2,500 bytes on one socket, the peer
%% reading as fast as it can: every frame arrives, in order per sender.
many_senders(Config) ->
    {S, Peer} = framed_pair(Config),
    T0 = erlang:monotonic_time(millisecond),
    rssl_test_lib:request(Peer, {fn, reader(8 * 2000, [])}),
    Senders = start_senders(S, lists:seq(1, 8), 2000, counters:new(1, [])),
    [{ok, 2000}] = lists:usort(await_senders(Senders, ?LONG)),
    {ok, Order} = rssl_test_lib:reply(Peer, ?LONG),
    ?assertEqual(maps:from_list([{Id, 2000} || Id <- lists:seq(1, 8)]), Order),
    ct:comment("16000 frames in ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    ?L:finish(?M, {S, Peer}, ok).

%% The same with back-pressure: the peer stops reading three times, until
%% every sender (that has frames left) is blocked in send/2 and nothing
%% moves; then reads on. Each time every waiting sender must be released.
many_senders_backpressure(Config) ->
    {S, Peer} = framed_pair(Config),
    %% Early enough that most senders still have frames to send.
    Pauses = [300, 3000, 6000],
    rssl_test_lib:request(Peer, {fn, reader(8 * 2000, Pauses)}),
    Sent = counters:new(1, []),
    Senders = start_senders(S, lists:seq(1, 8), 2000, Sent),
    Pids = [Pid || {_, Pid} <- Senders],
    PeerPid = maps:get(pid, Peer),
    Blocked = [begin
                   receive {reader_paused, PeerPid, At} -> ok after ?LONG -> ct:fail({reader_not_at, At}) end,
                   ok = expect_blocked(Pids, Sent),
                   Frames = counters:get(Sent, 1),
                   PeerPid ! resume_reader,
                   Frames
               end || At <- Pauses],
    ct:log("frames handed to send/2 when the senders were blocked: ~p", [Blocked]),
    [{ok, 2000}] = lists:usort(await_senders(Senders, ?LONG)),
    {ok, Order} = rssl_test_lib:reply(Peer, ?LONG),
    ?assertEqual(maps:from_list([{Id, 2000} || Id <- lists:seq(1, 8)]), Order),
    ?L:finish(?M, {S, Peer}, ok).

%% Four senders while two other processes keep calling setopts (nodelay,
%% send_timeout), getopts and getstat on the same socket: every call
%% answers as it would alone, and the frames are intact.
senders_race_options(Config) ->
    {S, Peer} = framed_pair(Config),
    rssl_test_lib:request(Peer, {fn, reader(4 * 1000, [])}),
    Senders = start_senders(S, lists:seq(1, 4), 1000, counters:new(1, [])),
    Self = self(),
    Meddlers = [spawn_link(fun() -> Self ! {meddled, self(), meddle(S, K, 0, [])} end)
                || K <- [1, 2]],
    [{ok, 1000}] = lists:usort(await_senders(Senders, ?LONG)),
    [Pid ! stop || Pid <- Meddlers],
    Results = [receive {meddled, Pid, R} -> R after ?T -> ct:fail(meddler_stuck) end
               || Pid <- Meddlers],
    ct:log("option calls made while sending: ~p", [[N || {N, _} <- Results]]),
    [] = lists:append([Bad || {_, Bad} <- Results]),
    true = lists:all(fun({N, _}) -> N > 0 end, Results),
    {ok, _} = rssl_test_lib:reply(Peer, ?LONG),
    ?L:finish(?M, {S, Peer}, ok).

%% Four senders that never stop, and the owner closes the socket while they
%% run: every sender returns an error, none hangs; the peer got whole
%% frames, in order per sender, then the close.
senders_race_close(Config) ->
    {S, Peer} = framed_pair(Config),
    rssl_test_lib:request(Peer, {fn, reader_until_closed(2000)}),
    Senders = start_senders(S, lists:seq(1, 4), infinity, counters:new(1, [])),
    PeerPid = maps:get(pid, Peer),
    receive {reader_at, PeerPid, 2000} -> ok after ?LONG -> ct:fail(reader_got_nothing) end,
    ok = ?M:close(S),
    Ends = await_senders(Senders, ?LONG),
    ct:log("senders ended with ~p", [Ends]),
    [] = [E || {E, _} <- Ends, not is_tuple(E) orelse element(1, E) =/= error],
    {Frames, _Order, Last} = rssl_test_lib:reply(Peer, ?LONG),
    ct:log("peer read ~b frames, then ~p", [Frames, Last]),
    true = Frames >= 2000,
    {error, closed} = Last,
    ok = rssl_test_lib:stop_peer(Peer).

%% The peer stops reading until all four senders are blocked in send/2;
%% then the owner closes: every blocked send is answered (no waiter is left
%% behind), and the peer still reads whole frames in order until the close.
blocked_senders_then_close(Config) ->
    {S, Peer} = framed_pair(Config),
    rssl_test_lib:request(Peer, {fn, reader_until_closed(300, pause)}),
    Sent = counters:new(1, []),
    Senders = start_senders(S, lists:seq(1, 4), infinity, Sent),
    PeerPid = maps:get(pid, Peer),
    receive {reader_paused, PeerPid, 300} -> ok after ?LONG -> ct:fail(reader_not_paused) end,
    ok = expect_blocked([Pid || {_, Pid} <- Senders], Sent),
    ok = ?M:close(S),
    Ends = await_senders(Senders, ?LONG),
    ct:log("blocked senders ended with ~p", [Ends]),
    [] = [E || {E, _} <- Ends, not is_tuple(E) orelse element(1, E) =/= error],
    PeerPid ! resume_reader,
    {Frames, _Order, Last} = rssl_test_lib:reply(Peer, ?LONG),
    ct:log("peer read ~b frames, then ~p", [Frames, Last]),
    true = Frames >= 300,
    {error, closed} = Last,
    ok = rssl_test_lib:stop_peer(Peer).

%% The owner receives frames the peer sends (from a second peer process)
%% while four other processes send: both directions arrive intact.
recv_while_others_send(Config) ->
    {S, Peer} = framed_pair(Config),
    Incoming = 2000,
    PeerRead = reader(4 * 1000, []),
    rssl_test_lib:request(
      Peer, {fn, fun(Mod, PS) ->
                         Self = self(),
                         W = spawn_link(fun() -> Self ! {peer_sent, send_all(Mod, PS, 100, 0, Incoming)} end),
                         Read = PeerRead(Mod, PS),
                         receive {peer_sent, R} -> {Read, R} after ?LONG -> {Read, {stuck, W}} end
                 end}),
    Senders = start_senders(S, lists:seq(1, 4), 1000, counters:new(1, [])),
    {ok, #{100 := Incoming}} = read_frames(?M, S, Incoming, ?S:new_order()),
    [{ok, 1000}] = lists:usort(await_senders(Senders, ?LONG)),
    {{ok, Order}, {ok, Incoming}} = rssl_test_lib:reply(Peer, ?LONG),
    ?assertEqual(#{1 => 1000, 2 => 1000, 3 => 1000, 4 => 1000}, Order),
    ?L:finish(?M, {S, Peer}, ok).

%%% Helpers -------------------------------------------------------------------

%% ?M client, ssl server, both {packet, 4}.
framed_pair(Config) ->
    Pki = ?config(pki, Config),
    PeerOpts = rssl_test_lib:merge_opts([{packet, 4}], ?L:base_opts(Pki, server)),
    ?L:pair(?M, client, Pki, [{packet, 4}], PeerOpts).

%% Processes sending Count frames each (infinity: until send fails), each
%% counting its sends in Sent. Returns [{Id, Pid}].
start_senders(S, Ids, Count, Sent) ->
    Self = self(),
    [{Id, spawn_link(fun() -> Self ! {sender_done, Id, send_frames(S, Id, 0, Count, Sent)} end)}
     || Id <- Ids].

send_frames(_S, _Id, Count, Count, _Sent) ->
    {ok, Count};
send_frames(S, Id, Seq, Count, Sent) ->
    case ?M:send(S, ?S:frame(Id, Seq)) of
        ok ->
            counters:add(Sent, 1, 1),
            send_frames(S, Id, Seq + 1, Count, Sent);
        Error ->
            {Error, Seq}
    end.

send_all(_Mod, _S, _Id, Count, Count) ->
    {ok, Count};
send_all(Mod, S, Id, Seq, Count) ->
    case Mod:send(S, ?S:frame(Id, Seq)) of
        ok -> send_all(Mod, S, Id, Seq + 1, Count);
        Error -> {Error, Seq}
    end.

%% Each sender's result, in sender order; fails naming the stuck ones.
await_senders(Senders, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    [receive
         {sender_done, Id, Result} -> Result
     after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
         ct:fail({sender_never_returned, Id,
                  [{I, process_info(P, [status, current_stacktrace])} || {I, P} <- Senders]})
     end || {Id, _Pid} <- Senders].

expect_blocked(Pids, Sent) ->
    case ?S:wait_blocked(Pids, fun() -> counters:get(Sent, 1) end, ?LONG) of
        true -> ok;
        false -> ct:fail({senders_not_blocked, [process_info(P, [status, current_function]) || P <- Pids]})
    end.

%% A peer fun reading Total frames, checking each; at each frame count in
%% Pauses it tells the test ({reader_paused, Pid, N}) and stops reading
%% until `resume_reader'. Returns {ok, Order} or the first problem.
reader(Total, Pauses) ->
    Parent = self(),
    fun(Mod, PS) -> read_frames(Mod, PS, Total, ?S:new_order(), 0, {Parent, Pauses}) end.

read_frames(Mod, S, Total, Order) ->
    read_frames(Mod, S, Total, Order, 0, {self(), []}).

read_frames(_Mod, _S, Total, Order, Total, _Pauses) ->
    {ok, Order};
read_frames(Mod, S, Total, Order, N, {Parent, [N | Pauses]}) ->
    pause(Parent, N),
    read_frames(Mod, S, Total, Order, N, {Parent, Pauses});
read_frames(Mod, S, Total, Order, N, Pauses) ->
    case Mod:recv(S, 0, ?LONG) of
        {ok, Frame} ->
            case ?S:check_frame(Frame, Order) of
                {ok, Order1} -> read_frames(Mod, S, Total, Order1, N + 1, Pauses);
                {error, Why} -> {Why, at_frame, N}
            end;
        Other ->
            {recv_failed, Other, at_frame, N, Order}
    end.

pause(Parent, N) ->
    Parent ! {reader_paused, self(), N},
    receive resume_reader -> ok end.

%% A peer fun reading frames until the socket reports an error; says
%% {reader_at, Pid, Mark} after Mark frames (with `pause', it then also
%% waits for `resume_reader'). Returns {Frames, Order, LastResult}.
reader_until_closed(Mark) ->
    reader_until_closed(Mark, go_on).
reader_until_closed(Mark, Then) ->
    Parent = self(),
    fun(Mod, PS) -> read_until_closed(Mod, PS, Parent, Mark, Then, ?S:new_order(), 0) end.

read_until_closed(Mod, S, Parent, Mark, Then, Order, Mark) when Then =/= done ->
    case Then of
        pause -> pause(Parent, Mark);
        go_on -> Parent ! {reader_at, self(), Mark}
    end,
    read_until_closed(Mod, S, Parent, Mark, done, Order, Mark);
read_until_closed(Mod, S, Parent, Mark, Then, Order, N) ->
    case Mod:recv(S, 0, ?LONG) of
        {ok, Frame} ->
            case ?S:check_frame(Frame, Order) of
                {ok, Order1} -> read_until_closed(Mod, S, Parent, Mark, Then, Order1, N + 1);
                {error, Why} -> {N, Order, {bad_frame, Why}}
            end;
        Other ->
            {N, Order, Other}
    end.

%% Setopts/getopts/getstat in a loop until `stop'; returns {Calls, Bad}
%% with every answer that is not what the call gives on an idle socket.
meddle(S, K, N, Bad) ->
    receive
        stop -> {N, lists:reverse(Bad)}
    after 0 ->
        Nodelay = (N + K) rem 2 =:= 0,
        Answers = [{setopts, ?M:setopts(S, [{nodelay, Nodelay}, {send_timeout, infinity}])},
                   {getopts, ?M:getopts(S, [packet, mode, active])},
                   {getstat, ?M:getstat(S, [send_oct, recv_oct])}],
        Bad1 = [A || A <- Answers, not expected_answer(A)] ++ Bad,
        meddle(S, K, N + 1, Bad1)
    end.

expected_answer({setopts, ok}) -> true;
expected_answer({getopts, {ok, Opts}}) -> lists:sort(Opts) =:= [{active, false}, {mode, binary}, {packet, 4}];
expected_answer({getstat, {ok, [{send_oct, A}, {recv_oct, B}]}}) -> is_integer(A) andalso is_integer(B);
expected_answer(_) -> false.
