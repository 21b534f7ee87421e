%% Back-pressure of the module under test (?M, rssl by default): a peer
%% that stops reading makes send/2 block, or fail after send_timeout as
%% gen_tcp and OTP's ssl do, instead of buffering without bound. Memory is
%% read as the VM's resident set (the NIF's and OpenSSL's buffers are not
%% in erlang:memory/0). The peer is OTP's ssl.
%%
%% What gen_tcp and ssl (OTP 25) answer, checked on this machine with the
%% same options: after a send has timed out, every further send to a peer
%% that still does not read also returns {error, timeout}; with
%% {send_timeout_close, true} the socket is closed and further sends return
%% {error, enotconn}.
%%
%% Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to run the same cases
%% with OTP's ssl as the module under test.
-module(rssl_backpressure_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(S, rssl_stress_lib).
-define(T, 10000).
-define(LONG, 120000).
-define(CHUNK, 65536).
-define(MiB, 1048576).
%% What the senders offer in all: far more than socket buffers hold.
-define(TOTAL_CHUNKS, 1024).
%% At most this much may be taken while the peer does not read. Loopback
%% socket buffers (both ends, autotuned) hold a few MiB; unbounded
%% buffering would take all 64 MiB.
-define(BOUND, 24 * ?MiB).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([send_blocks_client/1, send_blocks_server/1,
         send_timeout_then_timeouts/1, send_timeout_close/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [send_blocks_client, send_blocks_server,
     send_timeout_then_timeouts, send_timeout_close].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases ---------------------------------------------------------------------

%% ?M as client: a sender offering 64 MiB to a peer that does not read
%% blocks once the buffers are full; memory grows by a bounded amount;
%% when the peer reads, the send returns ok and every byte arrives.
send_blocks_client(Config) ->
    send_blocks(Config, client).

send_blocks_server(Config) ->
    send_blocks(Config, server).

send_blocks(Config, Role) ->
    {S, Peer} = ?L:pair(?M, Role, ?config(pki, Config), []),
    Before = ?S:memory(),
    Sent = counters:new(1, []),
    Self = self(),
    Chunk = chunk(),
    Sender = spawn_link(fun() -> Self ! {sent, send_chunks(S, Chunk, ?TOTAL_CHUNKS, Sent)} end),
    case ?S:wait_blocked([Sender], fun() -> counters:get(Sent, 1) end, ?LONG) of
        true -> ok;
        false -> ct:fail({sender_not_blocked, counters:get(Sent, 1), process_info(Sender, current_function)})
    end,
    Taken = counters:get(Sent, 1) * ?CHUNK,
    During = ?S:memory(),
    ?S:log_memory("while blocked", Before, During),
    #{rss := Growth} = ?S:growth(Before, During),
    ct:comment("blocked after ~.1f MiB; RSS grew ~.1f MiB", [Taken / ?MiB, Growth / ?MiB]),
    ?assert(Taken =< ?BOUND),
    ?assert(Growth =< ?BOUND),
    %% The peer reads everything: the blocked send goes on and completes.
    Total = ?TOTAL_CHUNKS * ?CHUNK,
    {Total, true} = ?L:peer_fn(Peer, fun(Mod, PS) -> read_chunks(Mod, PS, Chunk, Total) end),
    receive {sent, Result} -> {ok, ?TOTAL_CHUNKS} = Result after ?LONG -> ct:fail(sender_stuck) end,
    ?L:finish(?M, {S, Peer}, ok).

%% With {send_timeout, T}: the send that cannot go on returns
%% {error, timeout}; while the peer still does not read, so does every
%% retry (400 of them). The memory the retries take is only logged: OTP
%% 25's ssl keeps the data of every timed-out send too (400 retries of
%% 64 KiB: Erlang memory +23 MB), so the bound is not something ssl does.
send_timeout_then_timeouts(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{send_timeout, 300}]),
    Before = ?S:memory(),
    Sent = counters:new(1, []),
    Chunk = chunk(),
    {{error, timeout}, N} = send_chunks(S, Chunk, ?TOTAL_CHUNKS, Sent),
    ct:log("timed out after ~b chunks of ~b bytes", [N, ?CHUNK]),
    ?assert(N * ?CHUNK =< ?BOUND),
    %% Shorter waits for the retries, to keep the case short.
    ok = ?M:setopts(S, [{send_timeout, 20}]),
    TimedOut = ?S:memory(),
    Retries = [?M:send(S, Chunk) || _ <- lists:seq(1, 400)],
    After = ?S:memory(),
    ?S:log_memory("until the first timeout", Before, TimedOut),
    ?S:log_memory("during the retries", TimedOut, After),
    ct:log("retries answered: ~p", [count(Retries)]),
    ?assertEqual([{{error, timeout}, 400}], count(Retries)),
    ?L:finish(?M, {S, Peer}, ok).

count(Answers) ->
    lists:sort(maps:to_list(lists:foldl(fun(A, M) -> maps:update_with(A, fun(C) -> C + 1 end, 1, M) end,
                                        #{}, Answers))).

%% With {send_timeout_close, true} the timed-out socket is closed: further
%% sends say {error, enotconn} (as gen_tcp and ssl do) and the peer sees
%% the connection end.
send_timeout_close(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config),
                        [{send_timeout, 300}, {send_timeout_close, true}]),
    {{error, timeout}, _} = send_chunks(S, chunk(), ?TOTAL_CHUNKS, counters:new(1, [])),
    ?assertEqual({error, enotconn}, ?M:send(S, <<"more">>)),
    {_Data, {error, closed}} = ?L:peer_recv_closed(Peer),
    ?L:finish(?M, {S, Peer}, ok).

%%% Helpers -------------------------------------------------------------------

chunk() ->
    list_to_binary([I rem 251 || I <- lists:seq(1, ?CHUNK)]).

%% Sends Chunk N times, counting; {ok, N} or {Error, ChunksSent}.
send_chunks(S, Chunk, N, Sent) ->
    send_chunks(S, Chunk, N, Sent, 0).
send_chunks(_S, _Chunk, N, _Sent, N) ->
    {ok, N};
send_chunks(S, Chunk, N, Sent, I) ->
    case ?M:send(S, Chunk) of
        ok ->
            counters:add(Sent, 1, 1),
            send_chunks(S, Chunk, N, Sent, I + 1);
        Error ->
            {Error, I}
    end.

%% Reads Total bytes of repeated Chunk; {BytesRead, AllMatched}.
read_chunks(Mod, S, Chunk, Total) ->
    read_chunks(Mod, S, Chunk, Total, 0, true).
read_chunks(_Mod, _S, _Chunk, Total, Total, Ok) ->
    {Total, Ok};
read_chunks(Mod, S, Chunk, Total, Got, Ok) ->
    case Mod:recv(S, 0, ?LONG) of
        {ok, Data} ->
            Offset = Got rem ?CHUNK,
            Ok1 = Ok andalso matches(Data, Chunk, Offset),
            read_chunks(Mod, S, Chunk, Total, Got + byte_size(Data), Ok1);
        Other ->
            {Got, Other}
    end.

%% Data is the stream of repeated Chunk starting at Offset.
matches(<<>>, _Chunk, _Offset) ->
    true;
matches(Data, Chunk, Offset) ->
    Len = min(byte_size(Data), ?CHUNK - Offset),
    <<Part:Len/binary, Rest/binary>> = Data,
    Part =:= binary:part(Chunk, Offset, Len) andalso matches(Rest, Chunk, 0).
