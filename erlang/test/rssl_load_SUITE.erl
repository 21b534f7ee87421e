%% Stalled peers against a listener of the module under test (?M, rssl by
%% default): 1000 clients that open TCP and send half a ClientHello, and
%% 1000 that complete TLS and then read nothing. The listener must still
%% complete other handshakes promptly (against a quiet baseline measured
%% first in the same run), each stalled handshake must end with
%% {error, timeout} at its handshake timeout, memory must grow by a bounded
%% amount per connection and come back after they close, and descriptors
%% must all be released.
%%
%% Both ends of every connection are in this VM (2 fds per connection, the
%% open-file limit here is 20000). Compile with {d, 'M', ssl} (rebar3 as
%% otp_ssl ct) to run the case with OTP's ssl as the module under test.
-module(rssl_load_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(S, rssl_stress_lib).
-define(T, 10000).
-define(LONG, 120000).
-define(MiB, 1048576).
-define(KiB, 1024).
-define(STALLED_HELLOS, 1000).
-define(IDLE_CLIENTS, 1000).
-define(PROBES, 20).
%% The server's handshake timeout: long enough for the set-up (1000 full
%% handshakes on 2 loaded cores) to finish well before it.
-define(HS_TIMEOUT, 10000).
%% Sent by the server to every client after the handshake; the idle
%% clients never read it.
-define(GREETING, 16 * ?KiB).
%% Per connection (both ends in this VM), with the unread greeting.
-define(PER_CONN_BOUND, 256 * ?KiB).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([stalled_peers/1]).

suite() -> [{timetrap, {minutes, 4}}].

all() -> [stalled_peers].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% The case ------------------------------------------------------------------

stalled_peers(Config) ->
    Pki = ?config(pki, Config),
    HalfHello = half(?S:client_hello([{verify, verify_none}])),
    %% Without a session cache: by default the server keeps up to 20480
    %% sessions (OpenSSL's cache; OTP ssl has its own), growth that is
    %% bounded but would hide a per-connection leak across the rounds.
    %% (OTP's ssl takes reuse_sessions only with TLS 1.2 enabled.)
    Versions = {versions, ['tlsv1.3', 'tlsv1.2']},
    {ok, L} = ?M:listen(0, [{reuseaddr, true}, {backlog, 4096}, {reuse_sessions, false}
                            | rssl_test_lib:merge_opts([Versions], ?L:base_opts(Pki, server))]),
    {ok, {_, Port}} = ?M:sockname(L),
    spawn_acceptor(L, self()),
    ClientOpts = [{reuse_sessions, false}
                  | rssl_test_lib:merge_opts([Versions], ?L:base_opts(Pki, client))],

    %% Quiet baseline: handshakes against the idle listener.
    Baseline = probes(Port, ClientOpts),
    ok = expect_results(?PROBES, ok),
    Fds0 = rssl_test_lib:fd_count(),
    Mem0 = ?S:memory(),

    %% Three identical rounds; what a round leaves behind shows in the
    %% native heap in use after it (see the end).
    [R1, R2, R3] = [round(Port, ClientOpts, HalfHello, Fds0, Mem0) || _ <- [1, 2, 3]],
    ok = ?M:close(L),
    ct:log("quiet handshakes (ms): ~w~nbefore: ~p~nround 1: ~p~nround 2: ~p~nround 3: ~p",
           [Baseline, Mem0, R1, R2, R3]),

    Conns = ?IDLE_CLIENTS + ?STALLED_HELLOS,
    [Rss1, Rss2, Rss3] = [maps:get(rss, maps:get(loaded, R)) || R <- [R1, R2, R3]],
    PerConn = (Rss1 - maps:get(rss, Mem0)) div Conns,
    QuietMs = median(Baseline),
    LoadedMs = lists:max([median(maps:get(probes, R)) || R <- [R1, R2, R3]]),
    ct:comment("~b B/conn RSS; handshake ~b ms quiet / ~b ms loaded; RSS loaded ~b/~b/~b MiB",
               [PerConn, QuietMs, LoadedMs, Rss1 div ?MiB, Rss2 div ?MiB, Rss3 div ?MiB]),
    %% Promptly: the loaded median within a small multiple of the quiet
    %% one (the machine is shared, so the factor is generous); queueing
    %% behind stalled peers would take until their timeout.
    ?assert(LoadedMs =< 10 * max(1, QuietMs)),
    ?assert(PerConn =< ?PER_CONN_BOUND),
    %% No per-connection leak: once every connection of a round is closed
    %% and freed, the native heap in use (malloc's own count) is back where
    %% it started, within 2% of what the round's connections held (a leak
    %% of a fiftieth of a connection's memory fails it by the third
    %% round). The resident set cannot tell: malloc keeps what is freed,
    %% spread over its per-thread arenas, and the loaded and after-close
    %% resident sets both rose by 20-60 MiB from round to round with the
    %% heap in use the same within 0.1 MiB (rssl, 2026-12-06).
    [Heap0, HeapLoaded1] = [maps:get(heap, M) || M <- [Mem0, maps:get(loaded, R1)]],
    Slack = max(2 * ?MiB, (HeapLoaded1 - Heap0) div 50),
    [?assert(maps:get(heap, maps:get(after_close, R)) =< Heap0 + Slack) || R <- [R1, R2, R3]],
    ok.

%% 1000 idle TLS clients and 1000 half hellos, probes while they are held,
%% the stalled handshakes' timeouts, then everything closed; fds and Erlang
%% memory must come back. Returns the readings.
round(Port, ClientOpts, HalfHello, Fds0, Mem0) ->
    %% 1000 clients that complete TLS and never read.
    Idle = open_idle_clients(Port, ClientOpts, ?IDLE_CLIENTS),
    ok = expect_results(?IDLE_CLIENTS, ok),
    ok = flush_handshaking(),
    %% 1000 that send half a ClientHello and wait.
    Stalled = open_stalled(Port, HalfHello, ?STALLED_HELLOS),
    ok = wait_handshaking(?STALLED_HELLOS),
    MemLoaded = ?S:memory(),
    FdsLoaded = rssl_test_lib:fd_count(),

    %% Other clients still get through, before any stalled handshake has
    %% timed out.
    Probes = probes(Port, ClientOpts),
    ok = expect_results(?PROBES, ok),
    ?assertEqual(0, timeouts_so_far()),

    %% Every stalled handshake ends with {error, timeout} at its timeout:
    %% not earlier, and not later than the timeout again; the server closes
    %% those connections.
    Ends = collect_timeouts(?STALLED_HELLOS),
    [] = [E || E <- Ends, E < ?HS_TIMEOUT orelse E >= 2 * ?HS_TIMEOUT],
    ok = expect_closed_by_server(Stalled),

    %% Close the rest; descriptors and Erlang memory come back.
    close_idle(Idle),
    ok = wait_fds(Fds0),
    %% Their native state goes on the poller threads, just after.
    true = ?L:wait_until(fun() -> rssl_nif:live_connections() =:= 0 end, 10000),
    After = wait_erlang_memory(Mem0),
    #{probes => Probes, fds_loaded => FdsLoaded, fds_after => rssl_test_lib:fd_count(),
      timeout_overshoot_ms => {lists:min(Ends) - ?HS_TIMEOUT, lists:max(Ends) - ?HS_TIMEOUT},
      loaded => MemLoaded, after_close => After}.

median(Ts) ->
    lists:nth(length(Ts) div 2 + 1, lists:sort(Ts)).

%%% The listener --------------------------------------------------------------

%% One pending transport_accept at a time: each accepted connection gets
%% the next acceptor started, then handshakes in its own process and
%% reports {hs, Result, Millis} to Collector; a connection that completed
%% sends ?GREETING and stays open until the client closes.
spawn_acceptor(L, Collector) ->
    spawn_link(fun() -> acceptor(L, Collector) end).

acceptor(L, Collector) ->
    case ?M:transport_accept(L, infinity) of
        {ok, T} ->
            spawn_acceptor(L, Collector),
            Collector ! {handshaking, self()},
            T0 = erlang:monotonic_time(millisecond),
            Result = ?M:handshake(T, ?HS_TIMEOUT),
            Ms = erlang:monotonic_time(millisecond) - T0,
            case Result of
                {ok, S} ->
                    Collector ! {hs, ok, Ms},
                    %% A probe closes at once: its greeting may fail.
                    _ = ?M:send(S, binary:copy(<<"g">>, ?GREETING)),
                    %% Clients send nothing: this returns when they close.
                    {error, closed} = ?M:recv(S, 0, infinity),
                    ?M:close(S);
                {error, Reason} ->
                    Collector ! {hs, Reason, Ms}
            end;
        {error, closed} ->
            ok
    end.

%% Waits for N handshake results, all equal to Want.
expect_results(0, _Want) ->
    ok;
expect_results(N, Want) ->
    receive
        {hs, Want, _} -> expect_results(N - 1, Want);
        {hs, Other, Ms} -> ct:fail({unexpected_handshake_result, Other, Ms})
    after ?LONG -> ct:fail({handshakes_missing, N})
    end.

%% Waits until N more server processes have started their handshake.
wait_handshaking(0) ->
    ok;
wait_handshaking(N) ->
    receive {handshaking, _} -> wait_handshaking(N - 1)
    after ?LONG -> ct:fail({accepts_missing, N})
    end.

%% Each process says `handshaking' before its result, so once the results
%% are in, so are these.
flush_handshaking() ->
    receive {handshaking, _} -> flush_handshaking() after 0 -> ok end.

timeouts_so_far() ->
    {messages, Msgs} = process_info(self(), messages),
    length([x || {hs, timeout, _} <- Msgs]).

collect_timeouts(N) ->
    [receive
         {hs, timeout, Ms} -> Ms;
         {hs, Other, Ms} -> ct:fail({stalled_handshake_ended, Other, Ms})
     after ?LONG -> ct:fail(stalled_handshake_never_ended)
     end || _ <- lists:seq(1, N)].

%%% Clients -------------------------------------------------------------------

%% ?PROBES sequential connects (each timed, then closed): [Millis].
probes(Port, Opts) ->
    [begin
         T0 = erlang:monotonic_time(millisecond),
         {ok, C} = ?M:connect({127, 0, 0, 1}, Port, Opts, ?LONG),
         Ms = erlang:monotonic_time(millisecond) - T0,
         ok = ?M:close(C),
         Ms
     end || _ <- lists:seq(1, ?PROBES)].

%% N TLS clients in 4 holder processes that never read. Returns the holders.
open_idle_clients(Port, Opts, N) ->
    holders(4, N, fun() ->
                          {ok, C} = ?M:connect({127, 0, 0, 1}, Port, Opts, ?LONG),
                          C
                  end,
            fun(C) -> ?M:close(C) end).

close_idle(Holders) ->
    [H ! {close, self()} || H <- Holders],
    [receive {closed, H, _} -> ok after ?LONG -> ct:fail(holder_stuck) end || H <- Holders],
    ok.

%% N raw TCP clients that send the first half of a ClientHello.
open_stalled(Port, HalfHello, N) ->
    holders(2, N, fun() ->
                          {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port,
                                                    [binary, {active, false}], ?LONG),
                          ok = gen_tcp:send(C, HalfHello),
                          C
                  end,
            fun(C) -> gen_tcp:recv(C, 0, ?T) end).

%% After their timeout the server closed every stalled connection: each
%% raw client reads end of stream (nothing came back but maybe an alert).
expect_closed_by_server(Holders) ->
    [H ! {close, self()} || H <- Holders],
    Results = lists:append([receive {closed, H, Rs} -> Rs after ?LONG -> ct:fail(holder_stuck) end
                            || H <- Holders]),
    case [R || R <- Results, not closed_by_server(R)] of
        [] -> ok;
        Bad -> ct:fail({stalled_not_closed, length(Bad), hd(Bad)})
    end.

%% The server may answer the half hello with nothing or an alert record.
closed_by_server({error, closed}) -> true;
closed_by_server({ok, <<21, _/binary>>}) -> true;
closed_by_server(_) -> false.

%% K processes together opening N connections with Open(); on
%% {close, From} each applies Close to its connections, closes the gen_tcp
%% ones, and answers {closed, Pid, Results}.
holders(K, N, Open, Close) ->
    Self = self(),
    Pids = [spawn_link(fun() ->
                               Conns = [Open() || _ <- lists:seq(1, N div K)],
                               Self ! {opened, self()},
                               receive
                                   {close, From} ->
                                       Rs = [Close(C) || C <- Conns],
                                       [gen_tcp:close(C) || C <- Conns, is_port(C)],
                                       From ! {closed, self(), Rs}
                               end
                       end) || _ <- lists:seq(1, K)],
    [receive {opened, P} -> ok after ?LONG -> ct:fail(clients_not_opened) end || P <- Pids],
    Pids.

%%% Waiting for resources -----------------------------------------------------

wait_fds(Fds0) ->
    case ?L:wait_until(fun() -> rssl_test_lib:fd_count() =< Fds0 end, ?LONG) of
        true -> ok;
        false -> ct:fail({fds_not_released, Fds0, rssl_test_lib:fd_count()})
    end.

%% Erlang memory back within 8 MiB of the baseline (processes, ports and
%% binaries of the closed connections are gone). Returns the reading.
wait_erlang_memory(#{erlang := E0} = Mem0) ->
    Back = fun() -> maps:get(erlang, ?S:memory()) =< E0 + 8 * ?MiB end,
    case ?L:wait_until(Back, 30000) of
        true -> ?S:memory();
        false -> ct:fail({erlang_memory_not_back, Mem0, ?S:memory()})
    end.

half(Hello) ->
    binary:part(Hello, 0, byte_size(Hello) div 2).
