%% The workloads of the rssl benchmark (see rssl_bench.erl's header for
%% what each measures): the same code drives OTP's ssl, rssl and plain
%% gen_tcp through the small interface at the end of this module. Each
%% returns {ok, #{Key => Number}, Info} (Info: a line of detail) or fails.
-module(rssl_bench_workloads).

-export([switches/0,
         measure/2, bulk/4, handshakes/4, handshakes_concurrent/5, ping_pong/5, memory/4,
         scale/5, secs/1, dtls_handshakes/4, dtls_datagrams/4]).

-define(CHUNK, 65536).
-define(T, 30000).
-define(OPENERS, 8).
-define(SCALE_WINDOW, 16).
%% The N of {active, N} in the active_n ping-pong.
-define(ACTIVE_N, 100).
%% DTLS datagrams: this many bytes of plaintext each, this many per batch,
%% and how long the client waits for a batch's ack before it sends the
%% next batch anyway (UDP may lose the batch's last datagram or the ack).
-define(DGRAM, 1024).
-define(WINDOW, 32).
-define(ACK_WAIT, 200).
-define(RECBUF, 212992).

measure(#{kind := bulk, mod := M, version := V, mb := MiB}, Tls) ->
    bulk(M, V, Tls, MiB * 1048576);
measure(#{kind := hs, mod := M, version := V, hs_secs := Secs}, Tls) ->
    handshakes(M, V, Tls, Secs);
measure(#{kind := hsc, mod := M, version := V, hs_secs := Secs, hs_clients := N}, Tls) ->
    handshakes_concurrent(M, V, Tls, Secs, N);
measure(#{kind := pp_passive, mod := M, version := V, pp_secs := Secs}, Tls) ->
    ping_pong(M, V, Tls, Secs, passive);
measure(#{kind := pp_once, mod := M, version := V, pp_secs := Secs}, Tls) ->
    ping_pong(M, V, Tls, Secs, active_once);
measure(#{kind := pp_n, mod := M, version := V, pp_secs := Secs}, Tls) ->
    ping_pong(M, V, Tls, Secs, active_n);
measure(#{kind := memory, mod := M, version := V, conns := N}, Tls) ->
    memory(M, V, Tls, N);
measure(#{kind := scale, mod := M, version := V, scale := N, rounds := Rounds}, Tls) ->
    scale(M, V, Tls, N, Rounds);
measure(#{kind := dtls_hs, mod := M, version := V, hs_secs := Secs}, Tls) ->
    dtls_handshakes(M, V, Tls, Secs);
measure(#{kind := dtls_dgram, mod := M, version := V, dgram_secs := Secs}, Tls) ->
    dtls_datagrams(M, V, Tls, Secs).

bulk(M, V, Tls, Total) ->
    Parent = self(),
    {ok, L} = listen(M, server_opts(M, V, Tls)),
    Port = port(M, L),
    Server = spawn_link(fun() ->
                                {ok, S} = accept(M, L),
                                ok = count(M, S, Total),
                                ok = M:send(S, <<"done">>),
                                _ = M:recv(S, 0, ?T),
                                _ = M:close(S),
                                Parent ! {self(), done}
                        end),
    {ok, C} = connect(M, Port, client_opts(M, V)),
    Info = suite_info(M, C),
    Chunk = crypto:strong_rand_bytes(?CHUNK),
    T0 = erlang:monotonic_time(),
    ok = send_n(M, C, Chunk, Total div ?CHUNK),
    {ok, <<"done">>} = M:recv(C, 4, ?T),
    T1 = erlang:monotonic_time(),
    ok = M:close(C),
    receive {Server, done} -> ok after ?T -> error(server_not_done) end,
    ok = close_listener(M, L),
    {ok, #{mbps => (Total div ?CHUNK) * ?CHUNK / 1.0e6 / secs(T1 - T0)}, Info}.

send_n(_M, _S, _Chunk, 0) ->
    ok;
send_n(M, S, Chunk, N) ->
    ok = M:send(S, Chunk),
    send_n(M, S, Chunk, N - 1).

count(_M, _S, Left) when Left =< 0 ->
    ok;
count(M, S, Left) ->
    {ok, B} = M:recv(S, 0, ?T),
    count(M, S, Left - byte_size(B)).

handshakes(M, V, Tls, Secs) ->
    Parent = self(),
    {ok, L} = listen(M, server_opts(M, V, Tls)),
    Port = port(M, L),
    Server = spawn_link(fun() -> accept_loop(M, L, Parent, 0) end),
    COpts = client_opts(M, V),
    %% Once for the suite name, and to warm up.
    {ok, C0} = connect(M, Port, COpts),
    Info = suite_info(M, C0),
    ok = greeting(M, C0),
    ok = M:close(C0),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    T0 = erlang:monotonic_time(),
    N = connect_loop(M, Port, COpts, Deadline, 0),
    T1 = erlang:monotonic_time(),
    Failed = stop_acceptors([Server], Parent),
    ok = close_listener(M, L),
    {ok, #{rate => N / secs(T1 - T0)}, Info ++ failed_note(Failed, 0)}.

connect_loop(M, Port, COpts, Deadline, N) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        true ->
            {ok, C} = connect(M, Port, COpts),
            ok = greeting(M, C),
            ok = M:close(C),
            connect_loop(M, Port, COpts, Deadline, N + 1);
        false ->
            N
    end.

%% Clients processes loop connect + close until the deadline against as
%% many acceptor processes; a failed connect is counted, not fatal.
handshakes_concurrent(M, V, Tls, Secs, NClients) ->
    Parent = self(),
    {ok, L} = listen(M, [{backlog, 1024} | server_opts(M, V, Tls)]),
    Port = port(M, L),
    Acceptors = [spawn_link(fun() -> accept_loop(M, L, Parent, 0) end)
                 || _ <- lists:seq(1, NClients)],
    COpts = client_opts(M, V),
    {ok, C0} = connect(M, Port, COpts),
    Info = suite_info(M, C0),
    ok = greeting(M, C0),
    ok = M:close(C0),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    T0 = erlang:monotonic_time(),
    Clients = [spawn_link(fun() ->
                                  Parent ! {self(), client_done,
                                            client_loop(M, Port, COpts, Deadline, 0, 0)}
                          end) || _ <- lists:seq(1, NClients)],
    Counts = [receive {P, client_done, R} -> R after 2 * ?T -> {0, 1} end || P <- Clients],
    T1 = erlang:monotonic_time(),
    Failed = stop_acceptors(Acceptors, Parent),
    ok = close_listener(M, L),
    {N, Errors} = lists:foldl(fun({A, B}, {X, Y}) -> {A + X, B + Y} end, {0, 0}, Counts),
    {ok, #{rate => N / secs(T1 - T0)}, Info ++ failed_note(Failed, Errors)}.

client_loop(M, Port, COpts, Deadline, N, E) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        true ->
            case connect(M, Port, COpts) of
                {ok, C} ->
                    case greeting(M, C) of
                        ok ->
                            _ = M:close(C),
                            client_loop(M, Port, COpts, Deadline, N + 1, E);
                        _ ->
                            _ = M:close(C),
                            client_loop(M, Port, COpts, Deadline, N, E + 1)
                    end;
                {error, _} ->
                    client_loop(M, Port, COpts, Deadline, N, E + 1)
            end;
        false ->
            {N, E}
    end.

failed_note(0, 0) -> "";
failed_note(Server, Client) ->
    io_lib:format(" (failed handshakes: ~b server side, ~b client side)", [Server, Client]).

%% Accepts and handshakes until told to stop; reports how many server-side
%% handshakes failed.
accept_loop(M, L, Parent, Failed) ->
    receive
        {Parent, stop} -> Parent ! {self(), failed, Failed}
    after 0 ->
        case accept(M, L, 100) of
            {ok, S} ->
                _ = greet(M, S),
                _ = M:close(S),
                accept_loop(M, L, Parent, Failed);
            {error, timeout} ->
                accept_loop(M, L, Parent, Failed);
            {error, _} ->
                accept_loop(M, L, Parent, Failed + 1)
        end
    end.

stop_acceptors(Acceptors, Parent) ->
    [A ! {Parent, stop} || A <- Acceptors],
    lists:sum([receive {A, failed, F} -> F after ?T -> error(acceptor_not_done) end
               || A <- Acceptors]).

%% One connection, nodelay at both ends, a 64-byte request and its echo,
%% both ends in the same mode: passive recv(S, 64); {active, once} re-armed
%% after each message; {active, ?ACTIVE_N} re-armed on the passive message.
%% Round trip time of every exchange, in a histogram of microseconds.
ping_pong(M, V, Tls, Secs, Mode) ->
    Parent = self(),
    {ok, L} = listen(M, [{nodelay, true} | server_opts(M, V, Tls)]),
    Port = port(M, L),
    Server = spawn_link(fun() ->
                                {ok, S} = accept(M, L),
                                ok = echo(M, S, Mode),
                                Parent ! {self(), done}
                        end),
    {ok, C} = connect(M, Port, [{nodelay, true} | client_opts(M, V)]),
    Info = suite_info(M, C),
    ok = arm(M, C, Mode),
    Msg = binary:copy(<<"p">>, 64),
    _ = ping(M, C, Mode, Msg, erlang:monotonic_time(millisecond) + 200, #{}),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    Switches0 = switches(),
    T0 = erlang:monotonic_time(),
    Hist = ping(M, C, Mode, Msg, Deadline, #{}),
    T1 = erlang:monotonic_time(),
    Switches1 = switches(),
    ok = M:close(C),
    receive {Server, done} -> ok after ?T -> error(server_not_done) end,
    ok = close_listener(M, L),
    N = lists:sum(maps:values(Hist)),
    Mean = secs(T1 - T0) * 1.0e6 / max(1, N),
    {ok, #{p50_us => percentile(Hist, 0.5), p99_us => percentile(Hist, 0.99), mean_us => Mean,
           cs_per_rt => (Switches1 - Switches0) / max(1, N)},
     io_lib:format("~s; ~p; ~b round trips, mean ~.1f us, max ~b us",
                   [Info, Mode, N, Mean, lists:max([0 | maps:keys(Hist)])])}.

%% Voluntary context switches of all the VM's threads so far (a thread
%% that blocks and is woken again: the hops a message takes).
switches() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    lists:sum([task_switches(filename:join(["/proc/self/task", T, "status"])) || T <- Tasks]).

task_switches(File) ->
    case file:read_file(File) of
        {ok, B} ->
            lists:sum([list_to_integer(string:trim(N))
                       || "voluntary_ctxt_switches:" ++ N <- string:lexemes(binary_to_list(B), "\n")]);
        {error, _} ->
            0
    end.

ping(M, C, Mode, Msg, Deadline, Hist) ->
    T0 = erlang:monotonic_time(),
    case erlang:convert_time_unit(T0, native, millisecond) < Deadline of
        true ->
            ok = M:send(C, Msg),
            ok = pong(M, C, Mode, byte_size(Msg)),
            Us = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
            ping(M, C, Mode, Msg, Deadline, maps:update_with(Us, fun(X) -> X + 1 end, 1, Hist));
        false ->
            Hist
    end.

%% Waits for Left bytes of echo in the given mode.
pong(M, C, passive, Left) ->
    {ok, _} = M:recv(C, Left, ?T),
    ok;
pong(M, C, Mode, Left) ->
    {Tag, _, _} = tags(M),
    Passive = passive_tag(M),
    receive
        {Tag, C, D} ->
            Mode =:= active_once andalso (ok = setopts(M, C, [{active, once}])),
            case byte_size(D) >= Left of
                true -> ok;
                false -> pong(M, C, Mode, Left - byte_size(D))
            end;
        {Passive, C} ->
            ok = arm(M, C, Mode),
            pong(M, C, Mode, Left)
    after ?T ->
        error(pong_timeout)
    end.

arm(_M, _S, passive) -> ok;
arm(M, S, active_once) -> setopts(M, S, [{active, once}]);
arm(M, S, active_n) -> setopts(M, S, [{active, ?ACTIVE_N}]).

%% The server end: echoes what comes until the client closes.
echo(M, S, passive) ->
    case M:recv(S, 64, ?T) of
        {ok, D} ->
            ok = M:send(S, D),
            echo(M, S, passive);
        {error, closed} ->
            _ = M:close(S),
            ok
    end;
echo(M, S, Mode) ->
    ok = arm(M, S, Mode),
    echo_active_mode(M, S, Mode).

echo_active_mode(M, S, Mode) ->
    {Tag, Closed, Error} = tags(M),
    Passive = passive_tag(M),
    receive
        {Tag, S, D} ->
            ok = M:send(S, D),
            Mode =:= active_once andalso (ok = setopts(M, S, [{active, once}])),
            echo_active_mode(M, S, Mode);
        {Passive, S} ->
            ok = arm(M, S, Mode),
            echo_active_mode(M, S, Mode);
        {Closed, S} ->
            _ = M:close(S),
            ok;
        {Error, S, _} ->
            _ = M:close(S),
            ok
    after ?T ->
        error(echo_timeout)
    end.

%% N idle pairs: the growth of the VM's memory per pair.
memory(M, V, Tls, N) ->
    {ok, L} = listen(M, [{backlog, 1024} | server_opts(M, V, Tls)]),
    Port = port(M, L),
    COpts = client_opts(M, V),
    %% One pair first, so that caches, tables and poller threads exist
    %% before the baseline.
    warm_pair(M, L, Port, COpts),
    Before = snapshot(),
    {Holders, Opened} = open_idle(M, L, Port, COpts, N),
    timer:sleep(1000),
    After = snapshot(),
    [H ! {self(), close} || H <- Holders],
    [receive {H, closed} -> ok after ?T -> error(holder_not_done) end || H <- Holders],
    ok = close_listener(M, L),
    timer:sleep(1000),
    Closed = snapshot(),
    #{total := E0, rss := R0, fds := F0} = Before,
    #{total := E1, rss := R1, fds := F1} = After,
    #{total := E2, rss := R2, fds := F2} = Closed,
    {Ok, Errors} = Opened,
    Per = fun(A, B) -> (B - A) / max(1, Ok) / 1024 end,
    Breakdown = [io_lib:format("~s ~.1f", [K, Per(maps:get(K, Before), maps:get(K, After))])
                 || K <- [processes, binary, ets, system]],
    {ok, #{erl_kib => Per(E0, E1), rss_kib => Per(R0, R1), pairs => Ok},
     io_lib:format("~b pairs, ~b errors; Erlang KiB/pair: ~s; fds +~b; after close: "
                   "Erlang ~.1f KiB, RSS ~.1f MiB, fds ~b against the baseline",
                   [Ok, Errors, lists:join(", ", Breakdown), F1 - F0,
                    (E2 - E0) / 1024, (R2 - R0) / 1048576, F2 - F0])}.

warm_pair(M, L, Port, COpts) ->
    Self = self(),
    A = spawn_link(fun() -> {ok, S} = accept(M, L), Self ! {self(), S},
                            receive close -> M:close(S) end end),
    {ok, C} = connect(M, Port, COpts),
    receive {A, _} -> ok end,
    ok = M:close(C),
    A ! close.

snapshot() ->
    [erlang:garbage_collect(P) || P <- erlang:processes()],
    timer:sleep(200),
    Mem = maps:from_list(erlang:memory()),
    Mem#{rss => rss(), fds => fds()}.

rss() ->
    {ok, B} = file:read_file("/proc/self/status"),
    [KiB] = [list_to_integer(string:trim(string:trim(Rest), trailing, " kB"))
             || "VmRSS:" ++ Rest <- string:lexemes(binary_to_list(B), "\n")],
    KiB * 1024.

fds() ->
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    length(Fds).

%% Opens N pairs with ?OPENERS client processes and as many acceptors, each
%% holding its sockets until told to close them. Returns the holders and
%% {pairs established on both sides, errors}.
open_idle(M, L, Port, COpts, N) ->
    Self = self(),
    Acceptors = [spawn_link(fun() -> hold_accepting(M, L, Self, []) end)
                 || _ <- lists:seq(1, ?OPENERS)],
    Shares = [N div ?OPENERS + bool(I =< N rem ?OPENERS) || I <- lists:seq(1, ?OPENERS)],
    Openers = [spawn_link(fun() -> hold_connecting(M, Port, COpts, Share, Self) end)
               || Share <- Shares],
    {COk, CErr} = lists:foldl(fun(O, {A, B}) ->
                                      receive {O, opened, X, Y} -> {A + X, B + Y}
                                      after 10 * ?T -> error(opener_not_done)
                                      end
                              end, {0, 0}, Openers),
    {SOk, SErr} = count_accepts(COk, 0, 0),
    [A ! {Self, stop} || A <- Acceptors],
    {Acceptors ++ Openers, {min(COk, SOk), CErr + SErr}}.

count_accepts(Want, Ok, Err) when Ok >= Want ->
    {Ok, Err};
count_accepts(Want, Ok, Err) ->
    receive
        {accepted, ok} -> count_accepts(Want, Ok + 1, Err);
        {accepted, error} -> count_accepts(Want, Ok, Err + 1)
    after ?T ->
        {Ok, Err}
    end.

hold_accepting(M, L, Parent, Held) ->
    receive
        {Parent, stop} -> hold(M, Parent, Held)
    after 0 ->
        case accept(M, L, 100) of
            {ok, S} ->
                Parent ! {accepted, ok},
                hold_accepting(M, L, Parent, [S | Held]);
            {error, timeout} ->
                hold_accepting(M, L, Parent, Held);
            {error, _} ->
                Parent ! {accepted, error},
                hold_accepting(M, L, Parent, Held)
        end
    end.

hold_connecting(M, Port, COpts, N, Parent) ->
    {Held, Errors} = lists:foldl(fun(_, {H, E}) ->
                                         case connect(M, Port, COpts) of
                                             {ok, C} -> {[C | H], E};
                                             {error, _} -> {H, E + 1}
                                         end
                                 end, {[], 0}, lists:seq(1, N)),
    Parent ! {self(), opened, length(Held), Errors},
    hold(M, Parent, Held).

hold(M, Parent, Held) ->
    receive
        {Parent, close} ->
            [M:close(S) || S <- Held],
            Parent ! {self(), closed}
    end.

%% N pairs open at once, then every client does Rounds active-once round
%% trips of 64 bytes at the same time.
scale(M, V, Tls, N, Rounds) ->
    Self = self(),
    {ok, L} = listen(M, [{backlog, 1024} | server_opts(M, V, Tls)]),
    Port = port(M, L),
    COpts = client_opts(M, V),
    Fds0 = fds(),
    Acceptors = [spawn_link(fun() -> echo_accepting(M, L, Self) end)
                 || _ <- lists:seq(1, ?OPENERS)],
    T0 = erlang:monotonic_time(),
    {Clients, ConnErrors, {SOk0, SErr0}} = open_clients(M, Port, COpts, Rounds, N),
    {SOk, SErr} = count_accepts(length(Clients), SOk0, SErr0),
    T1 = erlang:monotonic_time(),
    Fds1 = fds(),
    [A ! {Self, stop} || A <- Acceptors],
    _ = [receive {A, stopped} -> ok after ?T -> ok end || A <- Acceptors],
    T2 = erlang:monotonic_time(),
    [C ! {Self, go} || C <- Clients],
    {Hist, RoundErrors} = collect_rounds(length(Clients), #{}, 0),
    T3 = erlang:monotonic_time(),
    EchoErrors = echo_errors(0),
    ok = close_listener(M, L),
    timer:sleep(1000),
    Fds2 = fds(),
    Samples = lists:sum(maps:values(Hist)),
    Errors = ConnErrors + SErr + RoundErrors + EchoErrors,
    P50 = percentile(Hist, 0.5),
    P99 = percentile(Hist, 0.99),
    {ok, #{conns => min(length(Clients), SOk), errors => Errors, p50_us => P50, p99_us => P99,
           p99_p50 => P99 / max(1, P50)},
     io_lib:format("opened in ~.1f s (~b/s); ~b round trips in ~.1f s (~b/s); errors: "
                   "~b connect, ~b accept, ~b round trip, ~b echo; fds ~b -> ~b, ~b after close",
                   [secs(T1 - T0), round(length(Clients) / secs(T1 - T0)), Samples,
                    secs(T3 - T2), round(Samples / secs(T3 - T2)), ConnErrors, SErr, RoundErrors, EchoErrors,
                    Fds0, Fds1, Fds2])}.

%% Starts N client processes, at most ?SCALE_WINDOW connecting at a time.
open_clients(M, Port, COpts, Rounds, N) ->
    Self = self(),
    Spawn = fun() -> spawn_link(fun() -> scale_client(M, Port, COpts, Rounds, Self) end) end,
    First = min(N, ?SCALE_WINDOW),
    [Spawn() || _ <- lists:seq(1, First)],
    open_clients(Spawn, N - First, First, [], 0, {0, 0}).

%% Counts the server side's accepts on the way (the mailbox must not fill
%% up with them while this loop receives selectively).
open_clients(_Spawn, 0, 0, Ok, Err, Accepts) ->
    {Ok, Err, Accepts};
open_clients(Spawn, ToStart, Running, Ok, Err, {AOk, AErr} = Accepts) ->
    receive
        {accepted, ok} ->
            open_clients(Spawn, ToStart, Running, Ok, Err, {AOk + 1, AErr});
        {accepted, error} ->
            open_clients(Spawn, ToStart, Running, Ok, Err, {AOk, AErr + 1});
        {connected, Pid} ->
            next_client(Spawn, ToStart, Running, [Pid | Ok], Err, Accepts);
        {connect_failed, _} ->
            next_client(Spawn, ToStart, Running, Ok, Err + 1, Accepts)
    after 2 * ?T ->
        error({clients_stuck, Running})
    end.

next_client(Spawn, 0, Running, Ok, Err, Accepts) ->
    open_clients(Spawn, 0, Running - 1, Ok, Err, Accepts);
next_client(Spawn, ToStart, Running, Ok, Err, Accepts) ->
    Spawn(),
    open_clients(Spawn, ToStart - 1, Running, Ok, Err, Accepts).

scale_client(M, Port, COpts, Rounds, Parent) ->
    case connect(M, Port, COpts) of
        {ok, C} ->
            Parent ! {connected, self()},
            receive {Parent, go} -> ok end,
            {Tag, _, _} = tags(M),
            Msg = binary:copy(<<"s">>, 64),
            Result = rounds(M, Tag, C, Msg, Rounds, []),
            Parent ! {self(), rounds, Result},
            _ = M:close(C),
            ok;
        {error, Reason} ->
            Parent ! {connect_failed, Reason}
    end.

rounds(_M, _Tag, _C, _Msg, 0, Acc) ->
    {ok, Acc};
rounds(M, Tag, C, Msg, N, Acc) ->
    T0 = erlang:monotonic_time(),
    case setopts(M, C, [{active, once}]) =:= ok andalso M:send(C, Msg) of
        false ->
            {{error, setopts}, Acc};
        ok ->
            case receive_n(M, Tag, C, byte_size(Msg)) of
                ok ->
                    Us = erlang:convert_time_unit(erlang:monotonic_time() - T0, native,
                                                  microsecond),
                    rounds(M, Tag, C, Msg, N - 1, [Us | Acc]);
                Error ->
                    {Error, Acc}
            end;
        Error ->
            {Error, Acc}
    end.

receive_n(_M, _Tag, _C, Left) when Left =< 0 ->
    ok;
receive_n(M, Tag, C, Left) ->
    receive
        {Tag, C, D} when byte_size(D) >= Left ->
            ok;
        {Tag, C, D} ->
            case setopts(M, C, [{active, once}]) of
                ok -> receive_n(M, Tag, C, Left - byte_size(D));
                Error -> Error
            end;
        {_, C} = Closed ->
            {error, Closed};
        {_, C, Reason} ->
            {error, Reason}
    after 2 * ?T ->
        {error, timeout}
    end.

%% The clients' results in the order they come; a client that does not
%% report within 5 minutes counts as one error per missing client.
collect_rounds(0, Hist, Errors) ->
    {Hist, Errors};
collect_rounds(Left, Hist, Errors) ->
    receive
        {_C, rounds, {Result, Samples}} ->
            Hist1 = lists:foldl(fun(Us, H) -> maps:update_with(Us, fun(X) -> X + 1 end, 1, H) end,
                                Hist, Samples),
            collect_rounds(Left - 1, Hist1, Errors + bool(Result =/= ok))
    after 10 * ?T ->
        {Hist, Errors + Left}
    end.

echo_accepting(M, L, Parent) ->
    receive
        {Parent, stop} -> Parent ! {self(), stopped}
    after 0 ->
        case accept(M, L, 100) of
            {ok, S} ->
                Pid = spawn(fun() -> receive {go, Sock} -> echo_active(M, Sock, Parent) end end),
                ok = M:controlling_process(S, Pid),
                Pid ! {go, S},
                Parent ! {accepted, ok},
                echo_accepting(M, L, Parent);
            {error, timeout} ->
                echo_accepting(M, L, Parent);
            {error, _} ->
                Parent ! {accepted, error},
                echo_accepting(M, L, Parent)
        end
    end.

echo_active(M, S, Parent) ->
    {Tag, Closed, Error} = tags(M),
    case setopts(M, S, [{active, once}]) of
        ok -> echo_active1(M, S, Parent, Tag, Closed, Error);
        _ -> M:close(S)
    end.

echo_active1(M, S, Parent, Tag, Closed, Error) ->
    receive
        {Tag, S, D} ->
            case M:send(S, D) of
                ok ->
                    echo_active(M, S, Parent);
                {error, closed} ->
                    _ = M:close(S);
                {error, Reason} ->
                    Parent ! {echo_error, Reason},
                    _ = M:close(S)
            end;
        {Closed, S} ->
            _ = M:close(S);
        {Error, S, Reason} ->
            Parent ! {echo_error, Reason},
            _ = M:close(S)
    end.

echo_errors(N) ->
    receive {echo_error, _} -> echo_errors(N + 1) after 0 -> N end.

setopts(gen_tcp, S, Opts) -> inet:setopts(S, Opts);
setopts(M, S, Opts) -> M:setopts(S, Opts).

tags(gen_tcp) -> {tcp, tcp_closed, tcp_error};
tags(_) -> {ssl, ssl_closed, ssl_error}.

percentile(Hist, _) when map_size(Hist) =:= 0 ->
    0;
percentile(Hist, P) ->
    Sorted = lists:sort(maps:to_list(Hist)),
    Want = P * lists:sum([C || {_, C} <- Sorted]),
    percentile(Sorted, Want, 0).

percentile([{V, _}], _Want, _Seen) ->
    V;
percentile([{V, C} | Rest], Want, Seen) ->
    case Seen + C >= Want of
        true -> V;
        false -> percentile(Rest, Want, Seen + C)
    end.

secs(Native) ->
    max(1, erlang:convert_time_unit(Native, native, microsecond)) / 1.0e6.
%%% DTLS -----------------------------------------------------------------------

%% Sequential full DTLS handshakes per second (with the cookie exchange:
%% ClientHello, HelloVerifyRequest, ClientHello again, ...): connect +
%% close by one client process. The server: an acceptor process that
%% hands each peer to a new process (handshake, the client's close, close)
%% and calls transport_accept/2 again at once: OTP 25's DTLS listener
%% drops a ClientHello that comes while no transport_accept/2 waits (its
%% client then waits for its 1 s retransmission), and takes any datagram
%% of a peer whose server end is gone for a new peer. OTP's DTLS
%% transport_accept/2 ignores its timeout: the acceptor stops when close/1
%% of the listen socket answers it `closed'.
dtls_handshakes(M, V, Tls, Secs) ->
    Parent = self(),
    {ok, L} = M:listen(0, dtls_server_opts(V, Tls)),
    Port = port(M, L),
    Acceptor = spawn_link(fun() -> dtls_accept_loop(M, L, Parent, 0, 0) end),
    ok = wait_accepting(Acceptor),
    COpts = dtls_client_opts(V),
    {ok, C0} = connect(M, Port, COpts),
    Info = suite_info(M, C0),
    ok = M:close(C0),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    T0 = erlang:monotonic_time(),
    N = dtls_connect_loop(M, Port, COpts, Deadline, 0),
    T1 = erlang:monotonic_time(),
    ok = M:close(L),
    {Accepted, Failed} = receive {Acceptor, accepted, Ok, F} -> {Ok, F}
                         after 2 * ?T -> error(acceptor_not_done)
                         end,
    {ok, #{rate => N / secs(T1 - T0)},
     io_lib:format("~s; ~b handshakes, the server's ~b (~b failed)", [Info, N, Accepted, Failed])}.

dtls_connect_loop(M, Port, COpts, Deadline, N) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        true ->
            {ok, C} = connect(M, Port, COpts),
            ok = M:close(C),
            dtls_connect_loop(M, Port, COpts, Deadline, N + 1);
        false ->
            N
    end.

%% Workers: the handshake processes started; Failed: failed accepts.
%% Reports the handshakes done and failed once the listener is closed.
dtls_accept_loop(M, L, Parent, Workers, Failed) ->
    case M:transport_accept(L, ?T) of
        {ok, T} ->
            _ = spawn_monitor(fun() -> dtls_serve_one(M, T) end),
            dtls_accept_loop(M, L, Parent, Workers + 1, Failed);
        {error, closed} ->
            {Ok, HsFailed} = tally(Workers, 0, 0),
            Parent ! {self(), accepted, Ok, Failed + HsFailed};
        {error, timeout} ->
            dtls_accept_loop(M, L, Parent, Workers, Failed);
        {error, _} ->
            dtls_accept_loop(M, L, Parent, Workers, Failed + 1)
    end.

%% The handshake, then the client's close before this end's: a datagram
%% of the client (its close_notify) that came once the server's end had
%% gone would look like a new peer to OTP's listener, one more handshake
%% to fail at its timeout.
dtls_serve_one(M, T) ->
    case M:handshake(T, ?T) of
        {ok, S} ->
            _ = M:recv(S, 0, ?T),
            _ = M:close(S);
        {error, Reason} ->
            exit({handshake, Reason})
    end.

%% The handshake processes' ends: {Ok, Failed} (one not ended in time
%% counts as failed).
tally(0, Ok, Failed) ->
    {Ok, Failed};
tally(Left, Ok, Failed) ->
    receive
        {'DOWN', _, process, _, normal} -> tally(Left - 1, Ok + 1, Failed);
        {'DOWN', _, process, _, _} -> tally(Left - 1, Ok, Failed + 1)
    after ?T ->
        {Ok, Failed + Left}
    end.

%% Until Pid waits in a receive (its transport_accept/2), for at most ?T.
wait_accepting(Pid) ->
    wait_accepting(Pid, erlang:monotonic_time(millisecond) + ?T).

wait_accepting(Pid, Deadline) ->
    case process_info(Pid, status) of
        {status, waiting} ->
            ok;
        _ ->
            case erlang:monotonic_time(millisecond) < Deadline of
                true -> timer:sleep(1), wait_accepting(Pid, Deadline);
                false -> error(not_accepting)
            end
    end.

%% Datagrams per second one way over one DTLS connection, counted where
%% they arrive: the client sends batches of ?WINDOW datagrams of ?DGRAM
%% bytes; the server reads each (passive recv(S, 0): one record, one
%% datagram) and answers a batch's last datagram with an ack holding how
%% many datagrams it has received in all. The rate is that count at the
%% last ack divided by the time from the first send to that ack. A batch
%% whose last datagram or ack is lost costs a wait of ?ACK_WAIT ms, then
%% the next batch goes: the waits are counted (`ack_waits'), and the
%% detail line gives datagrams sent and received.
dtls_datagrams(M, V, Tls, Secs) ->
    Parent = self(),
    {ok, L} = M:listen(0, dtls_server_opts(V, Tls)),
    Port = port(M, L),
    Server = spawn_link(fun() ->
                                {ok, S} = accept(M, L),
                                Received = dgram_sink(M, S, Parent, 0),
                                _ = M:close(S),
                                Parent ! {self(), received, Received}
                        end),
    ok = wait_accepting(Server),
    {ok, C} = connect(M, Port, dtls_client_opts(V)),
    Info = suite_info(M, C),
    Pad = binary:copy(<<"d">>, ?DGRAM - 6),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    T0 = erlang:monotonic_time(),
    {Batches, {Acked, TAck, Waits}} = dgram_batches(M, C, Pad, 1, Deadline, {0, T0, 0}),
    ok = M:close(C),
    Server ! {Parent, stop},
    Received = receive {Server, received, R} -> R after ?T -> error(server_not_done) end,
    ok = M:close(L),
    Sent = Batches * ?WINDOW,
    Rate = Acked / secs(TAck - T0),
    {ok, #{rate => Rate, k_rate => Rate / 1000, ack_waits => Waits},
     io_lib:format("~s; ~b-byte datagrams, ~b per batch: ~b sent, ~b received (~.2f% lost), "
                   "~b acked, ~b ack waits of ~b ms",
                   [Info, ?DGRAM, ?WINDOW, Sent, Received, 100 * (Sent - Received) / max(1, Sent),
                    Acked, Waits, ?ACK_WAIT])}.

%% Batches until Deadline; returns the batches sent and {datagrams the
%% last ack counted, when it came, ack waits}.
dgram_batches(M, C, Pad, Batch, Deadline, {Acked, TAck, Waits} = Acc) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        true ->
            _ = [ok = M:send(C, <<Batch:32, I:16, Pad/binary>>) || I <- lists:seq(1, ?WINDOW)],
            Until = erlang:monotonic_time(millisecond) + ?ACK_WAIT,
            case await_ack(M, C, Batch, Until) of
                {ok, N} ->
                    dgram_batches(M, C, Pad, Batch + 1, Deadline,
                                  {N, erlang:monotonic_time(), Waits});
                timeout ->
                    dgram_batches(M, C, Pad, Batch + 1, Deadline, {Acked, TAck, Waits + 1})
            end;
        false ->
            {Batch - 1, Acc}
    end.

%% The ack of Batch; an ack of an earlier batch (one given up on) is late
%% and skipped.
await_ack(M, C, Batch, Until) ->
    case M:recv(C, 0, max(0, Until - erlang:monotonic_time(millisecond))) of
        {ok, <<Batch:32, N:32>>} -> {ok, N};
        {ok, <<_Earlier:32, _:32>>} -> await_ack(M, C, Batch, Until);
        {error, timeout} -> timeout
    end.

%% Counts the datagrams that arrive and acks each batch's last one, until
%% the client closes (or, its close_notify lost, the parent says stop).
dgram_sink(M, S, Parent, N) ->
    case M:recv(S, 0, 500) of
        {ok, <<Batch:32, ?WINDOW:16, _/binary>>} ->
            ok = M:send(S, <<Batch:32, (N + 1):32>>),
            dgram_sink(M, S, Parent, N + 1);
        {ok, _} ->
            dgram_sink(M, S, Parent, N + 1);
        {error, timeout} ->
            receive {Parent, stop} -> N after 0 -> dgram_sink(M, S, Parent, N) end;
        {error, _} ->
            N
    end.

%% The same options for ssl and rssl: the TLS rows' certificate, DTLS 1.2
%% only, no session reuse (every handshake a full one), a receive buffer
%% of 208 KiB (rssl's default; with gen_udp's, OTP's listener socket lost
%% about a third of the datagrams of a batch here, in the kernel:
%% RcvbufErrors).
dtls_server_opts(V, Tls) -> dtls_opts(V) ++ Tls.

dtls_client_opts(V) -> dtls_opts(V) ++ [{verify, verify_none}].

dtls_opts(V) ->
    [{protocol, dtls}, binary, {active, false}, {versions, [V]}, {reuse_sessions, false},
     {recbuf, ?RECBUF}].

%%% The three modules behind one interface ---------------------------------

server_opts(gen_tcp, _V, _Tls) -> [{backlog, 128} | base_opts()];
server_opts(_M, V, Tls) -> [{backlog, 128} | base_opts()] ++ tls_opts(V) ++ Tls.

client_opts(gen_tcp, _V) -> base_opts();
client_opts(_M, V) -> base_opts() ++ tls_opts(V) ++ [{verify, verify_none}].

base_opts() -> [binary, {active, false}, {reuseaddr, true}].

%% ssl refuses reuse_sessions with TLS 1.3 only; 1.3 resumption needs
%% session tickets, which are off by default.
tls_opts('tlsv1.2' = V) -> [{versions, [V]}, {reuse_sessions, false}];
tls_opts(V) -> [{versions, [V]}].

listen(gen_tcp, Opts) -> gen_tcp:listen(0, Opts);
listen(M, Opts) -> M:listen(0, Opts).

port(gen_tcp, L) ->
    {ok, Port} = inet:port(L),
    Port;
port(M, L) ->
    {ok, {_, Port}} = M:sockname(L),
    Port.

accept(M, L) -> accept(M, L, ?T).

accept(gen_tcp, L, T) ->
    gen_tcp:accept(L, T);
accept(M, L, T) ->
    case M:transport_accept(L, T) of
        {ok, S} -> M:handshake(S, ?T);
        Error -> Error
    end.

connect(M, Port, Opts) -> M:connect({127, 0, 0, 1}, Port, Opts, ?T).

%% Plain TCP has no handshake: a 1-byte greeting makes each connection go
%% through the accepting process as a TLS handshake does.
greet(gen_tcp, S) -> gen_tcp:send(S, <<"h">>);
greet(_M, _S) -> ok.

greeting(gen_tcp, C) ->
    case gen_tcp:recv(C, 1, ?T) of
        {ok, <<"h">>} -> ok;
        Other -> Other
    end;
greeting(_M, _C) ->
    ok.

close_listener(gen_tcp, L) -> gen_tcp:close(L);
close_listener(M, L) -> M:close(L).

suite_info(gen_tcp, _S) ->
    "plain TCP";
suite_info(M, S) ->
    case catch M:connection_information(S, [protocol, selected_cipher_suite]) of
        {ok, Info} ->
            Suite = proplists:get_value(selected_cipher_suite, Info, #{}),
            io_lib:format("~p ~p", [proplists:get_value(protocol, Info),
                                    maps:get(cipher, Suite, unknown)]);
        _ ->
            ""
    end.


passive_tag(gen_tcp) -> tcp_passive;
passive_tag(_) -> ssl_passive.

bool(true) -> 1;
bool(false) -> 0.
