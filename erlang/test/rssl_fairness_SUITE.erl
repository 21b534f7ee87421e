%% Fairness: a slow or stuck Erlang callback (verify_fun, sni_fun,
%% user_lookup_fun) delays only its own handshake, never the other
%% connections served by the same poller thread.
%%
%% Everything runs in a peer VM started with RSSL_POLLERS=1 (read once,
%% when the NIF starts its pollers), so every connection of a case shares
%% one poller: a poller that waited for a fun would stall them all.
-module(rssl_fairness_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([slow_callbacks_leave_others_alone/1, unanswered_callback_fails_alone/1,
         idle_poller_sleeps/1]).
%% Run in the peer VM.
-export([pollers/0, fairness_run/1, unanswered_run/1, idle_run/1]).

-define(PAIRS, 100).
-define(SLOW_MS, 2000).
-define(T, 20000).
-define(PSK_KEY, <<"0123456789abcdef">>).

suite() -> [{timetrap, {seconds, 120}}].

all() -> [slow_callbacks_leave_others_alone, unanswered_callback_fails_alone, idle_poller_sleeps].

init_per_suite(Config) ->
    Pki = rssl_test_pki:make(?config(priv_dir, Config)),
    Dirs = lists:usort([filename:dirname(code:which(M))
                        || M <- [rssl, rssl_nif, ?MODULE, rssl_test_pki]]),
    Args = lists:append([["-pa", D] || D <- Dirs]),
    {ok, Peer} = case peer:start(#{connection => standard_io, args => Args,
                                        env => [{"RSSL_POLLERS", "1"}]}) of
                     {ok, P} -> {ok, P};
                     {ok, P, _Node} -> {ok, P}
                 end,
    ok = peer:call(Peer, rssl, start, []),
    [{pki, Pki}, {peer, Peer} | Config].

end_per_suite(Config) ->
    peer:stop(?config(peer, Config)).

%% 100 established connections doing ping-pong keep their p99 round trip
%% within 2x of a quiet run while handshakes wait 2 s each in a client's
%% verify_fun, a server's sni_fun and a server's PSK user_lookup_fun.
slow_callbacks_leave_others_alone(Config) ->
    Peer = ?config(peer, Config),
    #{quiet := Quiet, loaded := Loaded, slow := Slow, overlap := Overlap, pollers := Pollers} =
        peer:call(Peer, ?MODULE, fairness_run, [?config(pki, Config)], 100000),
    ?assertEqual(1, Pollers),
    QuietP99 = p99(Quiet),
    LoadedP99 = p99(Loaded),
    %% The failure guarded against is a poller waiting for a fun: round
    %% trips of seconds (2034 ms worst before). Twice the quiet p99 is the
    %% bound; on a fast quiet run that is a fraction of a millisecond, which
    %% scheduling noise on a shared machine alone can exceed, hence the
    %% 20 ms floor (still 100 times below the stall).
    Bound = max(2 * QuietP99, QuietP99 + 20000),
    ct:log("round trips (us): quiet p50 ~p p99 ~p max ~p (~p samples); "
           "loaded p50 ~p p99 ~p max ~p (~p samples); bound ~p~nslow handshakes: ~p",
           [p50(Quiet), QuietP99, lists:max(Quiet), length(Quiet),
            p50(Loaded), LoadedP99, lists:max(Loaded), length(Loaded), Bound, Slow]),
    ?assert(LoadedP99 =< Bound),
    %% The loaded run happened while all three funs were sleeping.
    ?assert(Overlap),
    %% And the slow handshakes completed, once their funs answered.
    ?assertEqual([{psk, client, ok}, {psk, server, ok}, {sni, client, ok},
                  {sni, server, ok}, {verify, client, ok}, {verify, server, ok}],
                 lists:sort(Slow)).

%% A fun that never returns fails its own handshake at the caller's
%% timeout, while handshakes started after it on the same poller
%% complete; the process running the fun goes, and a handshake whose owner
%% dies in a fun leaves nothing behind.
unanswered_callback_fails_alone(Config) ->
    Peer = ?config(peer, Config),
    #{client := {ClientResult, ClientMs}, server := {ServerResult, ServerMs},
      others := Others, funs_gone := FunsGone, fds := {FdsBefore, FdsAfter}} =
        peer:call(Peer, ?MODULE, unanswered_run, [?config(pki, Config)], 100000),
    ct:log("stuck client ~p after ~p ms, stuck server ~p after ~p ms, others ~p, fds ~p -> ~p",
           [ClientResult, ClientMs, ServerResult, ServerMs, Others, FdsBefore, FdsAfter]),
    ?assertEqual({error, timeout}, ClientResult),
    ?assertEqual({error, timeout}, ServerResult),
    %% At the caller's timeout (1000 ms), not at some fixed native one.
    ?assert(ClientMs >= 1000 andalso ClientMs < 5000),
    ?assert(ServerMs >= 1000 andalso ServerMs < 5000),
    ?assertEqual(lists:duplicate(10, ok), Others),
    ?assert(FunsGone),
    ?assert(FdsAfter =< FdsBefore).

%% A poller keeps polling for a moment after its last event instead of
%% sleeping at once (RSSL_POLLER_SPIN_US, the VM's schedulers do the
%% same): that moment must end. Right after a burst of round trips on 100
%% connections, the poller thread uses (almost) no CPU over the next two
%% seconds while the connections stay open and idle.
idle_poller_sleeps(Config) ->
    Peer = ?config(peer, Config),
    #{busy_ticks := Busy, idle_ticks := Idle, hz := Hz} =
        peer:call(Peer, ?MODULE, idle_run, [?config(pki, Config)], 100000),
    ct:log("poller CPU: ~p ticks during the round trips, ~p ticks in the 2 s idle after (~p per s)",
           [Busy, Idle, Hz]),
    %% A poller that kept spinning would use ~2 s = 2 * Hz ticks; the
    %% bound is 5% of that, above the tick granularity.
    ?assert(Idle =< max(2, Hz div 10)).

%%% In the peer VM ----------------------------------------------------------

%% The poller threads of this VM.
pollers() ->
    Tasks = "/proc/" ++ os:getpid() ++ "/task",
    {ok, Ids} = file:list_dir(Tasks),
    length([Id || Id <- Ids,
                  {ok, Name} <- [file:read_file(filename:join([Tasks, Id, "comm"]))],
                  binary:match(Name, <<"rssl-poller">>) =/= nomatch]).

fairness_run(Pki) ->
    Parent = self(),
    {L, Port} = listen(rssl_test_pki:server_opts(Pki)),
    Clients = [pair(L, Port, client_opts(Pki)) || _ <- lists:seq(1, ?PAIRS)],
    _ = rtts(Clients, 3),
    Quiet = rtts(Clients, 20),
    Slow = start_slow(Pki, L, Port, Parent),
    Entered = [receive {entered, Kind, T} -> {Kind, T} after ?T -> error({not_entered, Kind}) end
               || Kind <- [verify, sni, psk]],
    Loaded = rtts(Clients, 20),
    LoadedEnd = now_ms(),
    Left = [receive {left, Kind, T} -> T after ?T -> error({not_left, Kind}) end
            || Kind <- [verify, sni, psk]],
    Results = [receive {slow, Kind, Side, R} -> {Kind, Side, R} after ?T -> {Kind, Side, no_result} end
               || {Kind, Side} <- Slow],
    Pollers = pollers(),
    [P ! stop || P <- Clients],
    rssl:close(L),
    #{quiet => Quiet, loaded => Loaded, slow => Results, pollers => Pollers,
      overlap => LoadedEnd < lists:min(Left), entered => Entered}.

idle_run(Pki) ->
    {L, Port} = listen(rssl_test_pki:server_opts(Pki)),
    Clients = [pair(L, Port, client_opts(Pki)) || _ <- lists:seq(1, ?PAIRS)],
    Before = poller_ticks(),
    _ = rtts(Clients, 20),
    AfterBusy = poller_ticks(),
    timer:sleep(2000),
    AfterIdle = poller_ticks(),
    [P ! stop || P <- Clients],
    rssl:close(L),
    #{busy_ticks => AfterBusy - Before, idle_ticks => AfterIdle - AfterBusy,
      hz => list_to_integer(string:trim(os:cmd("getconf CLK_TCK")))}.

%% User plus system CPU ticks of this VM's poller threads so far.
poller_ticks() ->
    Tasks = "/proc/" ++ os:getpid() ++ "/task",
    {ok, Ids} = file:list_dir(Tasks),
    lists:sum([thread_ticks(Stat) || Id <- Ids,
                  {ok, Name} <- [file:read_file(filename:join([Tasks, Id, "comm"]))],
                  binary:match(Name, <<"rssl-poller">>) =/= nomatch,
                  {ok, Stat} <- [file:read_file(filename:join([Tasks, Id, "stat"]))]]).

%% Fields 14 and 15 of /proc/.../stat (utime, stime), counted after the
%% command name's closing parenthesis (the name may hold spaces).
thread_ticks(Stat) ->
    [_, Rest] = binary:split(Stat, <<") ">>),
    Fields = binary:split(Rest, <<" ">>, [global]),
    binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)).

%% Starts the three slow handshakes; their ends report {slow, Kind, Side,
%% Result}, their funs {entered, Kind, Time} and {left, Kind, Time}.
start_slow(Pki, L, Port, Parent) ->
    Slow = fun(Kind, Answer) ->
                   Parent ! {entered, Kind, now_ms()},
                   timer:sleep(?SLOW_MS),
                   Parent ! {left, Kind, now_ms()},
                   Answer
           end,
    %% Client verify_fun: the plain listener's server end.
    accept(L, verify, Parent),
    VerifyFun = fun(_, valid_peer, sleep) -> Slow(verify, {valid, slept});
                   (_, valid, S) -> {valid, S};
                   (_, valid_peer, S) -> {valid, S};
                   (_, {extension, _}, S) -> {unknown, S};
                   (_, Reason, _) -> {fail, Reason}
                end,
    connect(Port, [{verify_fun, {VerifyFun, sleep}} | client_opts(Pki)], verify, Parent),
    %% Server sni_fun.
    {Lsni, PortSni} = listen([{sni_fun, fun(_Host) -> Slow(sni, []) end}
                              | rssl_test_pki:server_opts(Pki)]),
    accept(Lsni, sni, Parent),
    connect(PortSni, client_opts(Pki), sni, Parent),
    %% Server PSK user_lookup_fun (TLS 1.2).
    Lookup = fun(psk, _Identity, _) -> {ok, ?PSK_KEY} end,
    SlowLookup = fun(psk, _Identity, _) -> Slow(psk, {ok, ?PSK_KEY}) end,
    {Lpsk, PortPsk} = listen([{user_lookup_fun, {SlowLookup, s}} | psk_opts()]),
    accept(Lpsk, psk, Parent),
    connect(PortPsk, [{user_lookup_fun, {Lookup, c}}, {psk_identity, "alice"} | psk_opts()],
            psk, Parent),
    [{Kind, Side} || Kind <- [verify, sni, psk], Side <- [client, server]].

unanswered_run(Pki) ->
    Parent = self(),
    {L, Port} = listen(rssl_test_pki:server_opts(Pki)),
    %% One handshake first: the poller and OpenSSL open their own fds (both
    %% ends are closed before they report).
    accept(L, warm_up, Parent),
    connect(Port, client_opts(Pki), warm_up, Parent),
    [receive {slow, warm_up, _, ok} -> ok after ?T -> error(warm_up) end || _ <- [1, 2]],
    FdsBefore = rssl_test_lib:fd_count(),
    Stuck = fun() -> Parent ! {stuck, self()}, receive after infinity -> ok end end,
    %% A client stuck in its verify_fun, with a 1 s timeout.
    accept(L, stuck_client, Parent),
    StuckVerify = fun(_, _, _) -> Stuck() end,
    timed_connect(Port, [{verify_fun, {StuckVerify, s}} | client_opts(Pki)], 1000, Parent),
    FunA = receive {stuck, PA} -> PA after ?T -> error(not_stuck) end,
    %% A server stuck in its sni_fun, with a 1 s timeout.
    {Lsni, PortSni} = listen([{sni_fun, fun(_) -> Stuck() end} | rssl_test_pki:server_opts(Pki)]),
    timed_accept(Lsni, 1000, Parent),
    connect(PortSni, client_opts(Pki), stuck_server, Parent),
    FunB = receive {stuck, PB} -> PB after ?T -> error(not_stuck) end,
    %% Meanwhile, on the same poller, others complete.
    [begin accept(L, other, Parent), connect(Port, client_opts(Pki), other, Parent) end
     || _ <- lists:seq(1, 5)],
    Others = [receive {slow, other, _, R} -> R after ?T -> no_result end || _ <- lists:seq(1, 10)],
    Client = receive {timed, client, R1, Ms1} -> {R1, Ms1} after ?T -> no_result end,
    Server = receive {timed, server, R2, Ms2} -> {R2, Ms2} after ?T -> no_result end,
    %% An owner dying while its fun runs.
    Owner = spawn(fun() ->
                          rssl:connect("localhost", Port,
                                       [{verify_fun, {StuckVerify, s}} | client_opts(Pki)],
                                       infinity)
                  end),
    accept(L, dying_owner, Parent),
    FunC = receive {stuck, PC} -> PC after ?T -> error(not_stuck) end,
    exit(Owner, kill),
    FunsGone = lists:all(fun gone/1, [FunA, FunB, FunC]),
    %% The ends of the stuck handshakes fail too, in their own time.
    [receive {slow, Kind, _, _} -> ok after ?T -> ok end
     || Kind <- [stuck_client, stuck_server, dying_owner]],
    [rssl:close(S) || S <- [L, Lsni]],
    FdsAfter = settle_fds(FdsBefore, 50),
    #{client => Client, server => Server, others => Others, funs_gone => FunsGone,
      fds => {FdsBefore, FdsAfter}}.

gone(Pid) ->
    Ref = erlang:monitor(process, Pid),
    receive {'DOWN', Ref, process, Pid, _} -> true after ?T -> false end.

%% The fd count, once it is back to Before (polled: closes are asynchronous).
settle_fds(_Before, 0) -> rssl_test_lib:fd_count();
settle_fds(Before, N) ->
    case rssl_test_lib:fd_count() of
        Now when Now =< Before -> Now;
        _ -> timer:sleep(100), settle_fds(Before, N - 1)
    end.

%%% Helpers -----------------------------------------------------------------

client_opts(Pki) ->
    [binary, {active, false}, {nodelay, true} | rssl_test_pki:client_opts(Pki)].

psk_opts() ->
    [binary, {active, false}, {versions, ['tlsv1.2']}, {verify, verify_none},
     {ciphers, [#{key_exchange => psk, cipher => aes_128_gcm, mac => aead, prf => sha256}]}].

listen(Opts) ->
    {ok, L} = rssl:listen(0, [binary, {active, false}, {reuseaddr, true}, {nodelay, true} | Opts]),
    {ok, {_, Port}} = rssl:sockname(L),
    {L, Port}.

%% An accepted connection echoing what it receives, and a process owning
%% its client end, measuring round trips when asked (see rtts/2).
pair(L, Port, ClientOpts) ->
    spawn_link(fun() ->
                       {ok, T} = rssl:transport_accept(L, ?T),
                       {ok, S} = rssl:handshake(T, ?T),
                       echo(S)
               end),
    Self = self(),
    Client = spawn_link(fun() ->
                                {ok, C} = rssl:connect("localhost", Port, ClientOpts, ?T),
                                Self ! {connected, self()},
                                measurer(C)
                        end),
    receive {connected, Client} -> Client after ?T -> error(not_connected) end.

measurer(C) ->
    receive
        {rtts, Rounds, From} ->
            From ! {rtts, self(), [rtt(C) || _ <- lists:seq(1, Rounds)]},
            measurer(C);
        stop ->
            rssl:close(C)
    end.

echo(S) ->
    case rssl:recv(S, 0) of
        {ok, Data} -> ok = rssl:send(S, Data), echo(S);
        {error, _} -> rssl:close(S)
    end.

%% One handshake's server end, reporting {slow, Kind, server, Result}.
accept(L, Kind, Parent) ->
    spawn(fun() ->
                  {ok, T} = rssl:transport_accept(L, ?T),
                  R = rssl:handshake(T, ?T),
                  Parent ! {slow, Kind, server, result(R)}
          end).

connect(Port, Opts, Kind, Parent) ->
    spawn(fun() ->
                  R = rssl:connect("localhost", Port, Opts, ?T),
                  Parent ! {slow, Kind, client, result(R)}
          end).

timed_connect(Port, Opts, Timeout, Parent) ->
    spawn(fun() ->
                  T0 = now_ms(),
                  R = rssl:connect("localhost", Port, Opts, Timeout),
                  Parent ! {timed, client, result(R), now_ms() - T0}
          end).

timed_accept(L, Timeout, Parent) ->
    spawn(fun() ->
                  {ok, T} = rssl:transport_accept(L, ?T),
                  T0 = now_ms(),
                  R = rssl:handshake(T, Timeout),
                  Parent ! {timed, server, result(R), now_ms() - T0}
          end).

result({ok, S}) -> rssl:close(S), ok;
result(Error) -> Error.

%% Round trips (us) of 64 bytes, Rounds on each client, all clients at
%% once. A poller that stalls delays every client's round trip in flight,
%% so a stall shows in at least one sample per client: 1/Rounds of the
%% samples, well above the 1% a p99 ignores.
rtts(Clients, Rounds) ->
    [P ! {rtts, Rounds, self()} || P <- Clients],
    lists:append([receive {rtts, P, Rtts} -> Rtts after 4 * ?T -> error(no_rtts) end
                  || P <- Clients]).

rtt(C) ->
    T0 = erlang:monotonic_time(microsecond),
    ok = rssl:send(C, <<0:512>>),
    {ok, <<_:512>>} = rssl:recv(C, 64, ?T),
    erlang:monotonic_time(microsecond) - T0.

now_ms() -> erlang:monotonic_time(millisecond).

p50(L) -> percentile(L, 0.50).
p99(L) -> percentile(L, 0.99).

percentile(L, P) ->
    Sorted = lists:sort(L),
    lists:nth(max(1, ceil(P * length(Sorted))), Sorted).
