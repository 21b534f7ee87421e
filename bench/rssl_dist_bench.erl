%% Distribution carriers compared: inet_tcp (plain TCP, the ceiling),
%% inet_tls (OTP's TLS carrier) and rssl (rssl_dist), between two local
%% nodes started with `peer' (controlled over stdio, so this VM is not in
%% their cluster). Both TLS carriers use the same options file: one ECDSA
%% P-256 certificate per node, mutual verify_peer, TLS 1.2 (their default).
%%
%% Each run starts a fresh pair of nodes per carrier, the carriers
%% interleaved (inet_tcp, inet_tls, rssl, inet_tcp, ...), and measures:
%%
%%   setup ms        net_kernel:connect_node/1 from A to B, until it
%%                   returns true: TCP, TLS and the distribution handshake;
%%                   the median of 5 (the nodes are disconnected between
%%                   them, both sides waiting until the other is gone)
%%   rpc rtt us      rpc:call(B, erlang, node, []) from A, the median of
%%                   2000 calls
%%   switches/rpc    context switches of both nodes' threads (voluntary
%%                   and not, /proc/PID/task/*/status) during those calls,
%%                   per call
%%   64 KiB MB/s     a process on A sends 64 KiB binaries to a process on B
%%                   as fast as the distribution takes them; from the first
%%                   send to B's acknowledgement of the last message
%%   1 KiB msgs/s    the same with 1 KiB binaries, messages per second
%%
%% Each cell is the median of the runs, with the min-max spread; the
%% ratio columns divide rssl's and inet_tls's medians by inet_tcp's.
%% Environment: RSSL_BENCH_REPEAT (runs, default 3), RSSL_BENCH_DIST_MB
%% (MiB per throughput measurement, default 256).
-module(rssl_dist_bench).

-export([run/0]).
%% Run on the nodes.
-export([connect_time/1, wait_gone/1, rpc_rtt/2, stream/3, sink/0]).

-define(CARRIERS, [inet_tcp, inet_tls, rssl]).

run() ->
    Repeat = env_int("RSSL_BENCH_REPEAT", 3),
    MiB = env_int("RSSL_BENCH_DIST_MB", 256),
    Dir = filename:join(os:getenv("RSSL_BENCH_DIR", "build/bench"), "dist"),
    OptFile = optfile(Dir),
    {ok, Host} = inet:gethostname(),
    io:format("rssl dist bench: OTP ~s, ~w schedulers, load average ~s~n"
              "  ~w runs, ~w MiB per throughput figure, nodes on ~s, options ~s~n",
              [erlang:system_info(otp_release), erlang:system_info(schedulers_online),
               loadavg(), Repeat, MiB, Host, OptFile]),
    Runs = [[measure(C, OptFile, MiB) || C <- ?CARRIERS] || _ <- lists:seq(1, Repeat)],
    ByCarrier = [{C, [R || Run <- Runs, {C1, R} <- Run, C1 =:= C]} || C <- ?CARRIERS],
    table(ByCarrier).

%% One fresh pair of nodes on carrier C; a map of the figures.
measure(Carrier, OptFile, MiB) ->
    {ok, A, NodeA} = start_node(Carrier, OptFile, "a"),
    {ok, B, NodeB} = start_node(Carrier, OptFile, "b"),
    try
        Setup = median([setup_time(A, NodeA, B, NodeB) || _ <- lists:seq(1, 5)]),
        true = peer:call(A, net_kernel, connect_node, [NodeB]),
        Pids = [peer:call(P, os, getpid, []) || P <- [A, B]],
        Switches0 = switches(Pids),
        Rtt = median(peer:call(A, ?MODULE, rpc_rtt, [NodeB, 2000], 120000)),
        Switches = (switches(Pids) - Switches0) / 2001,
        Big = peer:call(A, ?MODULE, stream, [NodeB, 65536, MiB * 16], 600000),
        Small = peer:call(A, ?MODULE, stream, [NodeB, 1024, MiB * 256], 600000),
        R = #{setup => Setup / 1000, rtt => Rtt, switches => Switches,
              mbps => 65536 * MiB * 16 / Big,             % bytes/us = MB/s
              rate => MiB * 256 * 1.0e6 / Small},
        io:format("  ~-9w setup ~.2f ms, rpc ~.1f us (~.1f switches), 64 KiB ~w MB/s, 1 KiB ~w msgs/s~n",
                  [Carrier, maps:get(setup, R), Rtt, Switches, round(maps:get(mbps, R)),
                   round(maps:get(rate, R))]),
        {Carrier, R}
    after
        peer:stop(A),
        peer:stop(B)
    end.

start_node(Carrier, OptFile, Prefix) ->
    Name = list_to_atom(Prefix ++ "_" ++ atom_to_list(Carrier) ++ "_"
                        ++ integer_to_list(erlang:unique_integer([positive]))),
    Ebins = [filename:dirname(code:which(M)) || M <- [?MODULE, rssl]],
    %% -connect_all false: global does not connect the nodes behind the
    %% setup measurement's back; dist_auto_connect never: nor does a
    %% message sent after a disconnect (global's, on the node that saw
    %% the other go), which reconnected the nodes between a setup
    %% measurement's disconnect and its wait, for 30 s and more at times.
    Args = ["-proto_dist", atom_to_list(Carrier), "-connect_all", "false",
            "-kernel", "dist_auto_connect", "never"] ++
        case Carrier of
            inet_tcp -> [];
            inet_tls -> ["-ssl_dist_optfile", OptFile];
            rssl -> ["-rssl_dist_optfile", OptFile]
        end ++ lists:append([["-pa", E] || E <- Ebins]),
    {ok, Peer, Node} = peer:start(#{name => Name, args => Args, connection => standard_io}),
    {ok, Peer, Node}.

%%% On the nodes -------------------------------------------------------------

%% One connection set up from A, then both ends forget each other.
setup_time(A, NodeA, B, NodeB) ->
    T = peer:call(A, ?MODULE, connect_time, [NodeB]),
    true = peer:call(A, erlang, disconnect_node, [NodeB]),
    gone = peer:call(A, ?MODULE, wait_gone, [NodeB], 30000),
    gone = peer:call(B, ?MODULE, wait_gone, [NodeA], 30000),
    T.

connect_time(Node) ->
    T0 = erlang:monotonic_time(microsecond),
    true = net_kernel:connect_node(Node),
    erlang:monotonic_time(microsecond) - T0.

wait_gone(Node) ->
    case lists:member(Node, nodes()) of
        true -> timer:sleep(1), wait_gone(Node);
        false -> gone
    end.

rpc_rtt(Node, N) ->
    Node = rpc:call(Node, erlang, node, []),
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         Node = rpc:call(Node, erlang, node, []),
         (erlang:monotonic_time(nanosecond) - T0) / 1000
     end || _ <- lists:seq(1, N)].

%% Context switches so far of every thread of the OS processes Pids.
switches(Pids) ->
    lists:sum([switches_of(Status) || Pid <- Pids,
                                      Status <- filelib:wildcard("/proc/" ++ Pid ++ "/task/*/status")]).

switches_of(Status) ->
    case file:read_file(Status) of
        {ok, Text} ->
            lists:sum([binary_to_integer(string:trim(N))
                       || Line <- binary:split(Text, <<"\n">>, [global]),
                          [Key, N] <- [binary:split(Line, <<":">>)],
                          Key =:= <<"voluntary_ctxt_switches">>
                              orelse Key =:= <<"nonvoluntary_ctxt_switches">>]);
        {error, _} ->
            0 % a thread that ended meanwhile
    end.

%% Count messages of Size bytes to a sink on Node; microseconds from the
%% first send to the sink's acknowledgement of the last.
stream(Node, Size, Count) ->
    Sink = erpc:call(Node, fun() -> spawn(?MODULE, sink, []) end),
    Bin = binary:copy(<<7>>, Size),
    Self = self(),
    Sink ! {start, Self, Count},
    receive {ready, Sink} -> ok end,
    T0 = erlang:monotonic_time(microsecond),
    send_n(Sink, Bin, Count),
    receive {done, Sink} -> ok end,
    erlang:monotonic_time(microsecond) - T0.

send_n(_, _, 0) -> ok;
send_n(Sink, Bin, N) -> Sink ! Bin, send_n(Sink, Bin, N - 1).

sink() ->
    receive {start, From, Count} -> From ! {ready, self()}, sink(From, Count) end.

sink(From, 0) -> From ! {done, self()};
sink(From, N) -> receive _ -> sink(From, N - 1) end.

%%% The table -------------------------------------------------------------------

table(ByCarrier) ->
    Rows = [{"setup ms", setup, lower, 2.0},
            {"rpc rtt us", rtt, lower, 1.1},
            {"switches/rpc", switches, none, none},
            {"64 KiB MB/s", mbps, higher, 0.5},
            {"1 KiB msgs/s", rate, higher, 0.9}],
    io:format("~n~-14s ~22s ~22s ~22s ~9s ~9s  ~-8s ~s~n",
              ["figure", "inet_tcp", "inet_tls", "rssl", "tls/tcp", "rssl/tcp", "target", "rssl"]),
    [begin
         Cells = [cell([maps:get(Key, R) || R <- Rs]) || {_, Rs} <- ByCarrier],
         [Tcp, Tls, Rssl] = [median([maps:get(Key, R) || R <- Rs]) || {_, Rs} <- ByCarrier],
         {Target, Verdict} = verdict(Dir, Limit, Rssl / Tcp),
         io:format("~-14s ~22s ~22s ~22s ~9.2f ~9.2f  ~-8s ~s~n",
                   [Label | Cells] ++ [Tls / Tcp, Rssl / Tcp, Target, Verdict])
     end || {Label, Key, Dir, Limit} <- Rows],
    ok.

verdict(none, _, _) -> {"", ""};
verdict(lower, Limit, Ratio) -> {io_lib:format("<= ~wx", [Limit]), pass(Ratio =< Limit)};
verdict(higher, Limit, Ratio) -> {io_lib:format(">= ~wx", [Limit]), pass(Ratio >= Limit)}.

pass(true) -> "PASS";
pass(false) -> "MISS".

cell(Values) ->
    lists:flatten(io_lib:format("~s (~s-~s)", [fmt(median(Values)), fmt(lists:min(Values)),
                                                fmt(lists:max(Values))])).

fmt(V) when V >= 100 -> integer_to_list(round(V));
fmt(V) -> float_to_list(float(V), [{decimals, 2}]).

median(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)).

env_int(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        V -> list_to_integer(V)
    end.

loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> lists:join(" ", lists:sublist(string:lexemes(binary_to_list(B), " "), 2));
        _ -> "?"
    end.

%% Certificates for the nodes (rssl_test_pki, openssl) and the options
%% file both TLS carriers read.
optfile(Dir) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    {ok, Host} = inet:gethostname(),
    #{node := #{cert := Cert, key := Key}, ca := #{cert := Ca}} =
        rssl_test_pki:make_nodes(Dir, [Host, "localhost"]),
    Common = [{certfile, Cert}, {keyfile, Key}, {cacertfile, Ca}, {verify, verify_peer}],
    File = filename:join(Dir, "dist.conf"),
    ok = file:write_file(File, io_lib:format("~p.~n", [[{server, [{fail_if_no_peer_cert, true} | Common]},
                                                        {client, Common}]])),
    File.
