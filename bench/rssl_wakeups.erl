%% Where ping-pong time goes: round trips of 64 bytes, passive recv(S, 0)
%% at both ends, nodelay, both ends in this VM, with the voluntary context
%% switches of all the VM's threads counted per round trip.
%%
%%   tcp      gen_tcp (inet_drv: the port's fd is polled by the schedulers
%%            themselves, +IOs true)
%%   socket   gen_tcp with {inet_backend, socket}: OTP's socket NIF, which
%%            waits with enif_select (what a NIF can use to let the VM poll)
%%   ssl      OTP's ssl, TLS 1.3
%%   rssl     rssl, TLS 1.3 (its own poller threads, which keep polling
%%            50 us after their last event before they sleep)
%%   rssl_nospin  the same with RSSL_POLLER_SPIN_US=0: each poller sleeps
%%            in epoll_wait as soon as it has nothing to do (rssl before
%%            the spin; the before and after of that change)
%%
%% The figure rssl_bench cannot give: whether a NIF waiting through the
%% VM's own poll set (enif_select, as OTP's socket NIF does) would save
%% rssl's poller thread wake-up.
%%
%% Each kind runs in a fresh VM, RSSL_WAKEUPS_RUNS times interleaved
%% (default 3); the table shows the median of the runs' p50, p99 and
%% switches, and each p50 as a ratio of tcp's.
%%
%%   make bench-wakeups
-module(rssl_wakeups).

-export([run/0, child/1]).

-define(KINDS, [tcp, socket, ssl, rssl, rssl_nospin]).
-define(ROUNDS, 20000).
-define(TAG, "RSSL_WAKEUPS ").

run() ->
    Runs = list_to_integer(os:getenv("RSSL_WAKEUPS_RUNS", "3")),
    Dir = make_cert(),
    Results = [{K, child_run(K, Dir)} || _ <- lists:seq(1, Runs), K <- ?KINDS],
    io:format("~nping-pong 64 B, passive recv, ~b round trips per run, median of ~b runs~n",
              [?ROUNDS, Runs]),
    io:format("~-12s ~9s ~9s ~12s ~10s~n", [kind, "p50 us", "p99 us", "vcsw/rt", "p50/tcp"]),
    Median = fun(K, I) -> median([element(I, R) || {K1, R} <- Results, K1 =:= K]) end,
    Tcp = Median(tcp, 1),
    [io:format("~-12s ~9.1f ~9.1f ~12.2f ~10.2f~n",
               [K, Median(K, 1), Median(K, 2), Median(K, 3), Median(K, 1) / Tcp])
     || K <- ?KINDS],
    ok.

median(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)).

child_run(Kind, Dir) ->
    Ebin = filename:dirname(code:which(rssl)),
    Here = filename:dirname(code:which(?MODULE)),
    Env = case Kind of
              rssl_nospin -> "RSSL_POLLER_SPIN_US=0 ";
              _ -> ""
          end,
    Cmd = io_lib:format("~serl -noshell -pa ~s -pa ~s -eval 'rssl_wakeups:child([~p, \"~s\"]), halt().'",
                        [Env, Ebin, Here, Kind, Dir]),
    Out = os:cmd(lists:flatten(Cmd)),
    case string:split(Out, ?TAG) of
        [_, Line] ->
            {ok, Tokens, _} = erl_scan:string(string:trim(Line) ++ "."),
            {ok, Value} = erl_parse:parse_term(Tokens),
            Value;
        _ -> error({child_failed, Kind, Out})
    end.

make_cert() ->
    Dir = filename:join("/tmp", "rssl_wakeups_" ++ os:getpid()),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    _ = os:cmd("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout " ++ Dir ++ "/key.pem -out " ++ Dir ++ "/cert.pem "
               "-subj /CN=localhost -days 2 2>/dev/null"),
    Dir.

child([Kind, Dir]) ->
    {ok, _} = application:ensure_all_started(ssl),
    ok = rssl:start(),
    {Listen, Connect, Accept, Send, Recv} = api(Kind, Dir),
    {ok, L} = Listen(),
    Self = self(),
    spawn_link(fun() -> {ok, S} = Accept(L), Self ! ready, echo(S, Send, Recv) end),
    {ok, C} = Connect(port_of(Kind, L)),
    receive ready -> ok end,
    Msg = binary:copy(<<"x">>, 64),
    RoundTrip = fun() -> ok = Send(C, Msg), {ok, _} = Recv(C) end,
    [RoundTrip() || _ <- lists:seq(1, 2000)],
    Before = rssl_bench_workloads:switches(),
    Times = [begin
                 T0 = erlang:monotonic_time(nanosecond),
                 RoundTrip(),
                 erlang:monotonic_time(nanosecond) - T0
             end || _ <- lists:seq(1, ?ROUNDS)],
    Switches = (rssl_bench_workloads:switches() - Before) / ?ROUNDS,
    Sorted = list_to_tuple(lists:sort(Times)),
    P = fun(Q) -> element(max(1, ?ROUNDS * Q div 100), Sorted) / 1000 end,
    io:format("~s~p~n", [?TAG, {P(50), P(99), Switches}]).

echo(S, Send, Recv) ->
    case Recv(S) of
        {ok, D} -> ok = Send(S, D), echo(S, Send, Recv);
        _ -> ok
    end.

port_of(rssl_nospin, L) -> port_of(rssl, L);
port_of(K, L) when K == ssl; K == rssl -> {ok, {_, P}} = K:sockname(L), P;
port_of(_, L) -> {ok, P} = inet:port(L), P.

-define(TCP, [binary, {active, false}, {nodelay, true}, {reuseaddr, true}]).
api(tcp, _) -> tcp_api(?TCP);
api(socket, _) -> tcp_api([{inet_backend, socket} | ?TCP]);
api(rssl_nospin, Dir) -> api(rssl, Dir);
api(M, Dir) ->
    Opts = [binary, {active, false}, {nodelay, true}, {versions, ['tlsv1.3']}],
    {fun() -> M:listen(0, [{certfile, Dir ++ "/cert.pem"}, {keyfile, Dir ++ "/key.pem"},
                           {reuseaddr, true} | Opts]) end,
     fun(P) -> M:connect("localhost", P, [{verify, verify_none} | Opts]) end,
     fun(L) -> {ok, T} = M:transport_accept(L), M:handshake(T) end,
     fun(S, D) -> M:send(S, D) end,
     fun(S) -> M:recv(S, 0) end}.

tcp_api(O) ->
    {fun() -> gen_tcp:listen(0, O) end,
     fun(P) -> gen_tcp:connect("localhost", P, O) end,
     fun(L) -> gen_tcp:accept(L) end,
     fun(S, D) -> gen_tcp:send(S, D) end,
     fun(S) -> gen_tcp:recv(S, 0) end}.
