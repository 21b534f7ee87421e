%% rssl benchmark: the same workloads on OTP's ssl, on rssl and on plain
%% gen_tcp (no TLS: the VM's own I/O ceiling), over loopback, printed as one
%% table with the ratios rssl/ssl and rssl/gen_tcp and a PASS/MISS column
%% against the targets of the performance issue.
%%
%% Every measurement runs in a fresh VM (`erl' spawned by run/1, which
%% parses a result line), so that one module's garbage, caches or crash do
%% not touch another's figures, and memory deltas start from the same
%% state. Both ends of every connection are in that VM.
%%
%%   bulk        one connection, client -> server, 64 KiB sends, the server
%%               reads with passive recv(S, 0); MB/s (10^6 bytes/s) from the
%%               first send to the server's acknowledgement of the last byte
%%   handshakes  sequential full handshakes per second: connect (with the
%%               handshake) + close, the server accepting, handshaking and
%%               closing in its own process; gen_tcp: TCP connect, a 1-byte
%%               greeting from the accepting process, close
%%   hs 50 cl.   the same with 50 client processes looping at once against
%%               50 acceptor processes
%%   ping-pong   64-byte request, 64-byte echo, passive recv(S, 64) at both
%%               ends, nodelay on both ends; mean round trip in us (p50 and
%%               p99 in the detail line)
%%   memory      N idle established pairs (both ends in the VM, passive,
%%               sockets held in lists by 8 opener and 8 acceptor
%%               processes): the growth of erlang:memory(total) and of the
%%               VM's VmRSS (/proc/self/status), divided by N. Measured
%%               after garbage-collecting every process (which can only
%%               shrink ssl's figure); "after close" lines show what stays
%%               once every pair is closed again (Erlang memory, fds)
%%   scale       N pairs, an echo process per server end, a client process
%%               per client end, all opened first (16 at a time); then
%%               every client does R active-once round trips of 64 bytes at
%%               once; p50/p99 round trip, errors of any kind
%%
%% During every measurement erlang:system_monitor(_, [{long_schedule, 1}])
%% counts the times a process or port ran uninterrupted >= 1 ms; the table
%% gives, per module, the events over 1 ms (but code loading, which every
%% fresh VM does) and the worst one, and the detail lines below it where
%% they were. long_schedule is wall time: on a shared machine an OS
%% preemption of a scheduler thread shows up too (gen_tcp, with no NIF at
%% all, gets hundreds). Hence the cpu workload: a short mix of every
%% workload with each time slice of every process and each rssl_nif call
%% stamped with the scheduler thread's CPU clock (see cpu_probe/3), which
%% an OS preemption does not advance:
%%   slices > 1 ms CPU     time slices (scheduled in to scheduled out) that
%%                         used more than 1 ms of CPU
%%   NIF calls > 1 ms CPU  rssl_nif calls on a normal scheduler that did
%%                         (the issue's "no NIF call keeps a normal
%%                         scheduler busy longer than 1 ms")
%%
%% TLS 1.3 and TLS 1.2 (1.3 only for ping-pong, memory and scale), both ends
%% the same module, ECDSA P-256 self-signed certificate made at startup
%% with the openssl CLI, verify_none, no session reuse, options otherwise
%% default (Nagle on, except ping-pong).
%%
%% run/0 reads the environment; run/1 takes a map with the same keys:
%%   mods        RSSL_BENCH_MODS        modules, default ssl,rssl,gen_tcp
%%   only        RSSL_BENCH_ONLY        workloads, default
%%                                      bulk,hs,hsc,pingpong,memory,scale,cpu
%%   mb          RSSL_BENCH_MB          bulk MiB (512)
%%   hs_secs     RSSL_BENCH_HS_SECS     seconds per handshake run (3)
%%   hs_clients  RSSL_BENCH_HS_CLIENTS  concurrent handshake clients (50)
%%   pp_secs     RSSL_BENCH_PP_SECS     seconds of ping-pong (3)
%%   conns       RSSL_BENCH_CONNS       pairs for the memory figure (2000)
%%   scale       RSSL_BENCH_SCALE       pairs for the scale run (5000)
%%   rounds      RSSL_BENCH_ROUNDS      round trips per scale client (20)
%%   repeat      RSSL_BENCH_REPEAT      runs of bulk, handshakes and ping-pong,
%%                                      the table shows each module's best (2)
%% The default run takes about 5 minutes on a 2-core machine.
-module(rssl_bench).

-export([run/0, run/1, child/1]).

-define(CHUNK, 65536).
-define(T, 30000).
-define(CHILD_TIMEOUT, 600000).
-define(RESULT_TAG, "RSSL_BENCH_RESULT ").
-define(OPENERS, 8).
-define(SCALE_WINDOW, 16).
-define(FINALIZER, {erts_internal, dirty_nif_finalizer, 1}).

run() ->
    run(#{}).

run(Opts0) ->
    Opts = maps:merge(defaults(), Opts0),
    Dir = make_cert(),
    try
        io:format("rssl bench: ~s, OTP ~s, ~b schedulers, ~s~n",
                  [openssl_version(), erlang:system_info(otp_release),
                   erlang:system_info(schedulers_online), load()]),
        Paths = snapshot_code(Dir),
        io:format("  bulk ~b MiB; handshakes ~b s (~b clients concurrent); ping-pong ~b s; "
                  "memory ~b pairs; scale ~b pairs x ~b round trips; one fresh VM each~n",
                  [maps:get(K, Opts) || K <- [mb, hs_secs, hs_clients, pp_secs, conns,
                                              scale, rounds]]),
        T0 = erlang:monotonic_time(second),
        Dirty = dirty_nifs(),
        Results = [{Job, run_child(Job#{dir => Dir, dirty => Dirty}, Paths)} || Job <- jobs(Opts)],
        T1 = erlang:monotonic_time(second),
        print_table(Results, Opts),
        io:format("(whole run: ~b s, ~s at the end)~n", [T1 - T0, load()])
    after
        delete_tree(Dir)
    end,
    ok.

%% The rssl app (ebin and priv) and this module, copied once: every child
%% VM runs the same build even if rssl is rebuilt meanwhile (others work
%% in this tree; a NIF library overwritten in place can also crash a VM
%% that has it loaded). Returns the code paths for the children.
snapshot_code(Dir) ->
    Self = filename:dirname(code:which(?MODULE)),
    ok = copy_dir(Self, filename:join(Dir, "bench"), ".beam"),
    case code:which(rssl) of
        Beam when is_list(Beam) ->
            Ebin = filename:dirname(Beam),
            Priv = filename:join(filename:dirname(Ebin), "priv"),
            ok = copy_dir(Ebin, filename:join([Dir, "rssl", "ebin"]), ""),
            ok = copy_dir(Priv, filename:join([Dir, "rssl", "priv"]), ".so"),
            io:format("  rssl: ~s, NIF built ~s, git ~s~n",
                      [Ebin, mtime(filename:join(Priv, "rssl_nif.so")),
                       string:trim(os:cmd("git describe --always --dirty 2>/dev/null"))]),
            [filename:join(Dir, "bench"), filename:join([Dir, "rssl", "ebin"])];
        _ ->
            io:format("  rssl: not in the code path~n"),
            [filename:join(Dir, "bench")]
    end.

copy_dir(From, To, Ext) ->
    ok = filelib:ensure_dir(filename:join(To, "x")),
    {ok, Names} = file:list_dir(From),
    _ = [{ok, _} = file:copy(filename:join(From, N), filename:join(To, N))
         || N <- Names, lists:suffix(Ext, N), filelib:is_regular(filename:join(From, N))],
    ok.

mtime(File) ->
    case filelib:last_modified(File) of
        {{Y, Mo, D}, {H, Mi, _}} -> io_lib:format("~b-~2..0b-~2..0b ~2..0b:~2..0b", [Y, Mo, D, H, Mi]);
        _ -> "?"
    end.

delete_tree(Path) ->
    case filelib:is_dir(Path) of
        true ->
            {ok, Names} = file:list_dir(Path),
            _ = [delete_tree(filename:join(Path, N)) || N <- Names],
            _ = file:del_dir(Path);
        false ->
            _ = file:delete(Path)
    end,
    ok.

defaults() ->
    #{mods => env_list("RSSL_BENCH_MODS", [ssl, rssl, gen_tcp]),
      only => env_list("RSSL_BENCH_ONLY", [bulk, hs, hsc, pingpong, memory, scale, cpu]),
      mb => env_int("RSSL_BENCH_MB", 512),
      hs_secs => env_int("RSSL_BENCH_HS_SECS", 3),
      hs_clients => env_int("RSSL_BENCH_HS_CLIENTS", 50),
      pp_secs => env_int("RSSL_BENCH_PP_SECS", 3),
      conns => env_int("RSSL_BENCH_CONNS", 2000),
      scale => env_int("RSSL_BENCH_SCALE", 5000),
      rounds => env_int("RSSL_BENCH_ROUNDS", 20),
      repeat => env_int("RSSL_BENCH_REPEAT", 2)}.

env_list(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        S -> [list_to_atom(M) || M <- string:lexemes(S, ", ")]
    end.

env_int(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        S -> list_to_integer(S)
    end.

%% One job per workload, TLS version and module, modules interleaved so
%% that a noisy minute on the machine hits all three alike. gen_tcp has no
%% TLS version: it runs once per workload and its figure is shown in every
%% version's row.
jobs(#{mods := Mods, only := Only, repeat := Repeat} = Opts) ->
    [Opts#{kind => Kind, mod => M, version => version(M, V)}
     || {Kind, Versions} <- kinds(), lists:member(Kind, Only),
        V <- Versions,
        _ <- lists:seq(1, case best(Kind) of none -> 1; _ -> max(1, Repeat) end),
        M <- [ssl, rssl, gen_tcp], lists:member(M, Mods),
        M =/= gen_tcp orelse V =:= hd(Versions)].

%% The throughput and latency workloads run `repeat' times (modules
%% interleaved each time) and the table takes each module's best run: noise
%% from other work on the machine only ever slows a run down.
best(bulk) -> {max, mbps};
best(hs) -> {max, rate};
best(hsc) -> {max, rate};
best(pingpong) -> {min, mean_us};
best(_) -> none.

%% Measured results with one entry per workload, version and module.
merge(Measured) ->
    Keys = lists:usort([{K, V, M} || {K, V, M, _} <- Measured]),
    [{K, V, M, pick(best(K), [R || {K1, V1, M1, R} <- Measured, {K1, V1, M1} =:= {K, V, M}])}
     || {K, V, M} <- Keys].

pick(_, [R]) ->
    R;
pick(Best, Rs) ->
    case [R || {{ok, _, _}, _} = R <- Rs] of
        Ok when length(Ok) =:= length(Rs) ->
            {Dir, Key} = Best,
            Sorted = lists:sort(fun({{ok, A, _}, _}, {{ok, B, _}, _}) ->
                                        maps:get(Key, A) =< maps:get(Key, B)
                                end, Ok),
            case Dir of
                min -> hd(Sorted);
                max -> lists:last(Sorted)
            end;
        _ ->
            %% A failure is not hidden behind a good run.
            hd([R || {Result, _} = R <- Rs, element(1, Result) =/= ok])
    end.

kinds() ->
    [{bulk, ['tlsv1.3', 'tlsv1.2']},
     {hs, ['tlsv1.3', 'tlsv1.2']},
     {hsc, ['tlsv1.3', 'tlsv1.2']},
     {pingpong, ['tlsv1.3']},
     {memory, ['tlsv1.3']},
     {scale, ['tlsv1.3']},
     {cpu, ['tlsv1.3']}].

version(gen_tcp, _) -> tcp;
version(_, V) -> V.

%%% Driver side: one VM per job ---------------------------------------------

run_child(Job, Paths) ->
    Erl = os:find_executable("erl"),
    Arg = base64:encode_to_string(term_to_binary(Job)),
    Args = ["-c", "ulimit -n \"$1\" 2>/dev/null; shift; exec \"$@\"", "sh",
            integer_to_list(nofile()), Erl, "-noshell"]
        ++ lists:append([["-pa", P] || P <- Paths])
        ++ ["-eval", "rssl_bench:child(\"" ++ Arg ++ "\")"],
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, Args}, exit_status, {line, 1 bsl 20}, stderr_to_stdout, binary]),
    Deadline = erlang:monotonic_time(millisecond) + ?CHILD_TIMEOUT,
    collect(Port, <<>>, undefined, [], Deadline).

collect(Port, Partial, Result, Tail, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {noeol, Part}}} ->
            collect(Port, <<Partial/binary, Part/binary>>, Result, Tail, Deadline);
        {Port, {data, {eol, Part}}} ->
            Line = <<Partial/binary, Part/binary>>,
            case Line of
                <<?RESULT_TAG, Encoded/binary>> ->
                    collect(Port, <<>>, binary_to_term(base64:decode(Encoded)), Tail, Deadline);
                _ ->
                    io:format("~s~n", [Line]),
                    collect(Port, <<>>, Result, lists:sublist([Line | Tail], 5), Deadline)
            end;
        {Port, {exit_status, Status}} ->
            case Result of
                undefined ->
                    io:format("  child VM exited with status ~b and no result~n", [Status]),
                    {{error, {vm_exit, Status, lists:reverse(Tail)}}, #{}};
                _ ->
                    Result
            end
    after Left ->
        case erlang:port_info(Port, os_pid) of
            {os_pid, Pid} -> os:cmd("kill -9 " ++ integer_to_list(Pid));
            _ -> ok
        end,
        catch port_close(Port),
        io:format("  child VM killed after ~b s~n", [?CHILD_TIMEOUT div 1000]),
        {{error, child_timeout}, #{}}
    end.

%% The soft open-file limit for the child VMs: the hard limit (5000 pairs
%% are 10000 descriptors), at most 65536.
nofile() ->
    case string:trim(os:cmd("ulimit -Hn")) of
        "unlimited" -> 65536;
        S -> try min(65536, list_to_integer(S)) catch _:_ -> 20000 end
    end.

%%% Child side ------------------------------------------------------------------

child(Arg) ->
    Job = binary_to_term(base64:decode(Arg)),
    Result = try child1(Job)
             catch C:R:St -> {{error, {C, R, St}}, #{}}
             end,
    io:format("~s~s~n", [?RESULT_TAG, base64:encode(term_to_binary(Result))]),
    halt(0).

child1(#{mod := M, kind := Kind, version := V, dir := Dir} = Job) ->
    {ok, _} = application:ensure_all_started(crypto),
    case usable(M) of
        ok ->
            Tls = [{certfile, filename:join(Dir, "cert.pem")},
                   {keyfile, filename:join(Dir, "key.pem")}],
            Mon = start_monitor(),
            Result = measure(Job, Tls),
            LongSched = stop_monitor(Mon),
            report(M, Kind, V, Result, LongSched),
            {Result, LongSched};
        Error ->
            io:format("  ~-8s ~-9s ~-8s skipped: ~p~n", [M, Kind, V, Error]),
            {{error, Error}, #{}}
    end.

%% ok when the module is there and starts (for rssl: its NIF loads).
usable(gen_tcp) ->
    ok;
usable(ssl) ->
    case application:ensure_all_started(ssl) of
        {ok, _} -> ok;
        Error -> Error
    end;
usable(M) ->
    case code:ensure_loaded(M) of
        {module, M} ->
            try M:start() of
                ok -> ok;
                Other -> {start_failed, Other}
            catch C:R -> {start_failed, C, R}
            end;
        {error, E} ->
            {not_loadable, E}
    end.

%% The measurement in its own process, so that a crash or a hang of the
%% module under test gives an error cell.
measure(Job, Tls) ->
    Self = self(),
    {Pid, Ref} = spawn_monitor(fun() -> Self ! {self(), measure1(Job, Tls)} end),
    receive
        {Pid, Result} ->
            erlang:demonitor(Ref, [flush]),
            Result;
        {'DOWN', Ref, process, Pid, Reason} ->
            {error, Reason}
    after ?CHILD_TIMEOUT - 30000 ->
        exit(Pid, kill),
        {error, timeout}
    end.

measure1(#{kind := bulk, mod := M, version := V, mb := MiB}, Tls) ->
    bulk(M, V, Tls, MiB * 1048576);
measure1(#{kind := hs, mod := M, version := V, hs_secs := Secs}, Tls) ->
    handshakes(M, V, Tls, Secs);
measure1(#{kind := hsc, mod := M, version := V, hs_secs := Secs, hs_clients := N}, Tls) ->
    handshakes_concurrent(M, V, Tls, Secs, N);
measure1(#{kind := pingpong, mod := M, version := V, pp_secs := Secs}, Tls) ->
    ping_pong(M, V, Tls, Secs);
measure1(#{kind := memory, mod := M, version := V, conns := N}, Tls) ->
    memory(M, V, Tls, N);
measure1(#{kind := scale, mod := M, version := V, scale := N, rounds := Rounds}, Tls) ->
    scale(M, V, Tls, N, Rounds);
measure1(#{kind := cpu, mod := M, dirty := Dirty}, Tls) ->
    cpu_probe(M, Tls, Dirty).

report(M, Kind, V, {ok, Values, Info}, LS) ->
    io:format("  ~-8s ~-9s ~-8s ~s  ~s~s~n",
              [M, Kind, V, format_values(Values), Info, format_ls(LS)]);
report(M, Kind, V, Error, LS) ->
    io:format("  ~-8s ~-9s ~-8s failed: ~P~s~n", [M, Kind, V, Error, 30, format_ls(LS)]).

format_values(Values) ->
    lists:join(" ", [io_lib:format("~s=~s", [K, cell(V)]) || {K, V} <- lists:sort(maps:to_list(Values))]).

format_ls(#{over := 0}) -> "";
format_ls(#{over := N, worst := {Ms, Who, Where}}) ->
    io_lib:format("~n      long_schedule: ~b event(s) > 1 ms, worst ~b ms (~p ~s)",
                  [N, Ms, Who, format_where(Where)]);
format_ls(_) -> "".

%%% long_schedule monitor -----------------------------------------------------

start_monitor() ->
    Pid = spawn(fun() -> monitor_loop(#{events => 0, over => 0, worst => none, nif => 0,
                                        where => #{}}) end),
    _ = erlang:system_monitor(Pid, [{long_schedule, 1}]),
    Pid.

stop_monitor(Pid) ->
    _ = erlang:system_monitor(undefined),
    Pid ! {self(), stop},
    receive {Pid, State} -> State after 5000 -> #{} end.

monitor_loop(S) ->
    receive
        {monitor, Who, long_schedule, Info} ->
            Ms = proplists:get_value(timeout, Info, 0),
            Where = case lists:keyfind(port_op, 1, Info) of
                        {port_op, Op} -> {port_op, Op};
                        false -> {proplists:get_value(in, Info), proplists:get_value(out, Info)}
                    end,
            #{events := E, over := O, worst := W, nif := Nif, where := Map} = S,
            Over = Ms > 1 andalso not is_code_loading(Where),
            S1 = S#{events := E + 1,
                    over := O + bool(Over),
                    nif := Nif + bool(Over andalso is_nif(Where)),
                    where := case Over of
                                 true -> maps:update_with(Where, fun(X) -> X + 1 end, 1, Map);
                                 false -> Map
                             end,
                    worst := case W of
                                 {WMs, _, _} when WMs >= Ms -> W;
                                 _ when not Over -> W;
                                 _ -> {Ms, who(Who), Where}
                             end},
            monitor_loop(S1);
        {From, stop} ->
            From ! {self(), S}
    end.

%% The code server loading a module used for the first time in this VM.
is_code_loading({In, Out}) -> is_loader(In) orelse is_loader(Out);
is_code_loading(_) -> false.

is_loader({M, _, _}) -> M =:= erl_prim_loader orelse M =:= code_server;
is_loader(_) -> false.

bool(true) -> 1;
bool(false) -> 0.

who(Pid) when is_pid(Pid) ->
    case erlang:process_info(Pid, [registered_name, initial_call]) of
        [{registered_name, Name}, _] when is_atom(Name) -> Name;
        [_, {initial_call, MFA}] -> MFA;
        _ -> process
    end;
who(Port) when is_port(Port) ->
    case erlang:port_info(Port, name) of
        {name, Name} -> {port, Name};
        _ -> port
    end;
who(_) ->
    unknown.

is_nif({In, Out}) -> is_rssl(In) orelse is_rssl(Out);
is_nif(_) -> false.

is_rssl({rssl_nif, _, _}) -> true;
is_rssl({rssl, _, _}) -> true;
is_rssl(_) -> false.

format_where({port_op, Op}) -> io_lib:format("port op ~p", [Op]);
format_where({In, Out}) -> io_lib:format("in ~s, out ~s", [mfa(In), mfa(Out)]);
format_where(X) -> io_lib:format("~p", [X]).

mfa({M, F, A}) -> io_lib:format("~p:~p/~p", [M, F, A]);
mfa(X) -> io_lib:format("~p", [X]).

%%% Workloads ------------------------------------------------------------------

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

ping_pong(M, V, Tls, Secs) ->
    Parent = self(),
    {ok, L} = listen(M, [{nodelay, true} | server_opts(M, V, Tls)]),
    Port = port(M, L),
    Server = spawn_link(fun() ->
                                {ok, S} = accept(M, L),
                                ok = echo_passive(M, S),
                                Parent ! {self(), done}
                        end),
    {ok, C} = connect(M, Port, [{nodelay, true} | client_opts(M, V)]),
    Info = suite_info(M, C),
    Msg = binary:copy(<<"p">>, 64),
    _ = ping(M, C, Msg, erlang:monotonic_time(millisecond) + 200, #{}),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    T0 = erlang:monotonic_time(),
    Hist = ping(M, C, Msg, Deadline, #{}),
    T1 = erlang:monotonic_time(),
    ok = M:close(C),
    receive {Server, done} -> ok after ?T -> error(server_not_done) end,
    ok = close_listener(M, L),
    N = lists:sum(maps:values(Hist)),
    {ok, #{mean_us => secs(T1 - T0) * 1.0e6 / N},
     io_lib:format("~s; ~b round trips, p50 ~b us, p99 ~b us",
                   [Info, N, percentile(Hist, 0.5), percentile(Hist, 0.99)])}.

ping(M, C, Msg, Deadline, Hist) ->
    T0 = erlang:monotonic_time(),
    case erlang:convert_time_unit(T0, native, millisecond) < Deadline of
        true ->
            ok = M:send(C, Msg),
            {ok, _} = M:recv(C, 64, ?T),
            Us = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
            ping(M, C, Msg, Deadline, maps:update_with(Us, fun(X) -> X + 1 end, 1, Hist));
        false ->
            Hist
    end.

echo_passive(M, S) ->
    case M:recv(S, 64, ?T) of
        {ok, D} ->
            ok = M:send(S, D),
            echo_passive(M, S);
        {error, closed} ->
            _ = M:close(S),
            ok
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

%% CPU-time probe. long_schedule measures wall time, so on a shared machine
%% an OS preemption of a scheduler thread looks like a long schedule. Here
%% every process's time slices (running trace: in/out) and, for rssl, every
%% rssl_nif call (call trace with return_from) are stamped with the
%% scheduler thread's CPU clock (cpu_timestamp), so that a slice or a call
%% counts the CPU it used on that thread, whatever the OS did meanwhile. A
%% short mix of every workload runs traced, after a warm-up that loads the
%% code. Dirty NIFs run on another thread, their call stamps mean nothing:
%% left out of the call figures, and a slice that begins or ends with a
%% dirty NIF's return (erts_internal:dirty_nif_finalizer) is left out too,
%% and so is code loading (a module first used in the traced mix).
cpu_probe(M, Tls, Dirty) ->
    Self = self(),
    V = 'tlsv1.3',
    ok = warm_up(M, Tls),
    Tracer = spawn(fun() -> tracer_loop(Dirty, #{}, #{}, #{}) end),
    Nif = case M of
              rssl ->
                  {module, rssl_nif} = code:ensure_loaded(rssl_nif),
                  _ = erlang:trace_pattern({rssl_nif, '_', '_'},
                                           [{'_', [], [{return_trace}]}], [local]),
                  [call];
              _ ->
                  []
          end,
    _ = erlang:trace(all, true, [running, timestamp, cpu_timestamp, {tracer, Tracer} | Nif]),
    _ = erlang:trace(Tracer, false, [all]),
    Runs = [{"handshakes 1.3", fun() -> handshakes(M, V, Tls, 1) end},
            {"handshakes 1.2", fun() -> handshakes(M, 'tlsv1.2', Tls, 1) end},
            {"50 clients", fun() -> handshakes_concurrent(M, V, Tls, 1, 50) end},
            {"bulk 64 MiB", fun() -> bulk(M, V, Tls, 64 * 1048576) end},
            {"ping-pong", fun() -> ping_pong(M, V, Tls, 1) end},
            {"300 idle pairs", fun() -> memory(M, V, Tls, 300) end},
            {"scale 1000", fun() -> scale(M, V, Tls, 1000, 5) end}],
    Failed = [Name || {Name, F} <- Runs, element(1, catch F()) =/= ok],
    _ = erlang:trace(all, false, [all]),
    _ = erlang:trace_pattern({rssl_nif, '_', '_'}, false, [local]),
    Tracer ! {Self, stop},
    {Calls, Slices, Where} = receive {Tracer, S} -> S after 20 * ?T -> error(tracer_not_done) end,
    All = [{F, Mx, C, O, Sum / C} || {F, {C, Mx, O, Sum}} <- maps:to_list(Calls)],
    Top = lists:sublist(lists:reverse(lists:keysort(2, All)), 5),
    {NSlices, SOver, {SMax, SMaxWhere}} = maps:get(slices, Slices, {0, 0, {0, none}}),
    TopWhere = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Where))), 4),
    NifValues = case M of
                    rssl -> #{nif_over => lists:sum([O || {_, _, _, O, _} <- All]),
                              nif_max_us => lists:max([0 | [Mx || {_, Mx, _, _, _} <- All]])};
                    _ -> #{}
                end,
    {ok, NifValues#{slice_over => SOver, slice_max_us => SMax},
     io_lib:format("~b slices, ~b > 1 ms of CPU, longest ~b us (~s)~s~s~s",
                   [NSlices, SOver, SMax, format_where(SMaxWhere),
                    [io_lib:format(" (~s)", [lists:join("; ", [io_lib:format("~b x ~s", [N, format_where(W)])
                                                              || {W, N} <- TopWhere])])
                     || TopWhere =/= []],
                    case Failed of
                        [] -> "";
                        _ -> io_lib:format("; runs that failed: ~p", [Failed])
                    end,
                    [io_lib:format("; ~b traced NIF calls (dirty ones left out: ~w), slowest: ~s",
                                   [lists:sum([C || {_, _, C, _, _} <- All]), Dirty,
                                    lists:join(", ", [io_lib:format("~p max ~b us mean ~.1f "
                                                                    "(~b calls, ~b > 1 ms)",
                                                                    [F, Mx, Mean, C, O])
                                                      || {F, Mx, C, O, Mean} <- Top])])
                     || M =:= rssl]])}.

%% Loads the code every run of the mix needs, untraced.
warm_up(M, Tls) ->
    {ok, _, _} = handshakes(M, 'tlsv1.3', Tls, 0),
    {ok, _, _} = handshakes(M, 'tlsv1.2', Tls, 0),
    {ok, _, _} = bulk(M, 'tlsv1.3', Tls, 1048576),
    {ok, _, _} = scale(M, 'tlsv1.3', Tls, 4, 1),
    ok.

tracer_loop(Dirty, Open, Stats, Where) ->
    receive
        {trace_ts, Pid, in, MFA, TS} ->
            tracer_loop(Dirty, Open#{{in, Pid} => {MFA, TS}}, Stats, Where);
        {trace_ts, Pid, out, MFA, TS} ->
            case maps:take({in, Pid}, Open) of
                {{In, _}, Open1} when In =:= ?FINALIZER; MFA =:= ?FINALIZER;
                                      element(1, In) =:= erl_prim_loader;
                                      element(1, In) =:= code_server ->
                    tracer_loop(Dirty, Open1, Stats, Where);
                {{In, T0}, Open1} ->
                    Us = timer:now_diff(TS, T0),
                    {N, O, Mx} = maps:get(slices, Stats, {0, 0, {0, none}}),
                    Stats1 = Stats#{slices => {N + 1, O + bool(Us > 1000),
                                               max(Mx, {Us, {In, MFA}})}},
                    Where1 = case Us > 1000 of
                                 true -> maps:update_with({In, MFA}, fun(X) -> X + 1 end, 1, Where);
                                 false -> Where
                             end,
                    tracer_loop(Dirty, Open1, Stats1, Where1);
                error ->
                    tracer_loop(Dirty, Open, Stats, Where)
            end;
        {trace_ts, Pid, call, {_, F, _}, TS} ->
            tracer_loop(Dirty, Open#{{call, Pid} => {F, TS}}, Stats, Where);
        {trace_ts, Pid, return_from, {_, F, _}, _, TS} ->
            case maps:take({call, Pid}, Open) of
                {{F, T0}, Open1} ->
                    case lists:member(F, Dirty) of
                        true ->
                            tracer_loop(Dirty, Open1, Stats, Where);
                        false ->
                            Us = timer:now_diff(TS, T0),
                            Calls = maps:get(calls, Stats, #{}),
                            {C, Mx, O, Sum} = maps:get(F, Calls, {0, 0, 0, 0}),
                            Calls1 = Calls#{F => {C + 1, max(Mx, Us), O + bool(Us > 1000),
                                                  Sum + Us}},
                            tracer_loop(Dirty, Open1, Stats#{calls => Calls1}, Where)
                    end;
                _ ->
                    tracer_loop(Dirty, Open, Stats, Where)
            end;
        {From, stop} ->
            From ! {self(), {maps:get(calls, Stats, #{}), Stats, Where}};
        _ ->
            tracer_loop(Dirty, Open, Stats, Where)
    end.

%% The NIFs declared with a dirty schedule in src/nif (the bench runs from
%% the repository root); the known ones when the source is not there.
dirty_nifs() ->
    case filelib:wildcard("src/nif/*.rs") of
        [] -> [send_dirty, config_new];
        Files -> lists:usort(lists:append([dirty_in(F) || F <- Files]))
    end.

dirty_in(File) ->
    {ok, B} = file:read_file(File),
    Re = "rustler::nif\\([^)]*schedule\\s*=\\s*\"Dirty[^)]*\\)\\]\\s*(?:pub\\s+)?fn\\s+([a-z_0-9]+)",
    case re:run(B, Re, [global, {capture, all_but_first, list}]) of
        {match, Found} -> [list_to_atom(N) || [N] <- Found];
        nomatch -> []
    end.

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

%%% Output -----------------------------------------------------------------

%% {Label, Kind, Version, Key, Target}
rows() ->
    [{"bulk TLS 1.3 MB/s", bulk, 'tlsv1.3', mbps, {x_ssl_and_tcp, 5}},
     {"bulk TLS 1.2 MB/s", bulk, 'tlsv1.2', mbps, {x_ssl_and_tcp, 5}},
     {"handshakes/s TLS 1.3", hs, 'tlsv1.3', rate, {x_ssl_min, 3.5, 1100}},
     {"handshakes/s TLS 1.2", hs, 'tlsv1.2', rate, {x_ssl, 3.5}},
     {"hs/s 1.3, 50 clients", hsc, 'tlsv1.3', rate, {x_ssl, 3.5}},
     {"hs/s 1.2, 50 clients", hsc, 'tlsv1.2', rate, {x_ssl, 3.5}},
     {"ping-pong 1.3 mean us", pingpong, 'tlsv1.3', mean_us, {x_tcp_max, 1.2}},
     {"memory Erlang KiB/pair", memory, 'tlsv1.3', erl_kib, {max, 4}},
     {"memory RSS KiB/pair", memory, 'tlsv1.3', rss_kib, {max, 30}},
     {"scale: pairs open", scale, 'tlsv1.3', conns, scale_conns},
     {"scale: errors", scale, 'tlsv1.3', errors, {max, 0}},
     {"scale: p50 rtt us", scale, 'tlsv1.3', p50_us, none},
     {"scale: p99 rtt us", scale, 'tlsv1.3', p99_us, none},
     {"scale: p99/p50", scale, 'tlsv1.3', p99_p50, {below, 3}},
     {"slices > 1 ms CPU", cpu, 'tlsv1.3', slice_over, none},
     {"longest slice us CPU", cpu, 'tlsv1.3', slice_max_us, none},
     {"NIF calls > 1 ms CPU", cpu, 'tlsv1.3', nif_over, {max, 0}},
     {"slowest NIF call us CPU", cpu, 'tlsv1.3', nif_max_us, none}].

print_table(Results, Opts) ->
    Cols = [ssl, rssl, gen_tcp],
    Fmt = "~-24s ~10s ~10s ~10s ~9s ~9s  ~-23s ~s~n",
    io:format("~n" ++ Fmt, ["workload" | [atom_to_list(C) || C <- Cols]
                            ++ ["rssl/ssl", "rssl/tcp", "target", "rssl"]]),
    All = [{maps:get(kind, J), maps:get(version, J), maps:get(mod, J), R} || {J, R} <- Results],
    Measured = merge(All),
    [begin
         Vals = [value(Kind, version(C, V), C, Key, Measured) || C <- Cols],
         [Ssl, Rssl, Tcp] = Vals,
         {Text, Verdict} = target(Target, Ssl, Rssl, Tcp, Opts),
         io:format(Fmt, [Label | [cell(X) || X <- Vals]
                         ++ [ratio(Rssl, Ssl), ratio(Rssl, Tcp), Text, Verdict]])
     end || {Label, Kind, V, Key, Target} <- rows(),
            lists:keymember(Kind, 1, Measured)],
    LS = [{C, long_schedules(C, All)} || C <- Cols],
    Over = [case L of none -> not_measured; _ -> maps:get(over, L) end || {_, L} <- LS],
    Worst = [case L of
                 none -> not_measured;
                 #{worst := {Ms, _, _}} -> Ms;
                 _ -> 0
             end || {_, L} <- LS],
    {T1, V1} = target({max, 0}, undefined, lists:nth(2, Over), undefined, Opts),
    io:format(Fmt, ["long_schedule > 1 ms" | [cell(X) || X <- Over] ++ ["", "", T1, V1]]),
    io:format(Fmt, ["worst long_schedule ms" | [cell(X) || X <- Worst] ++ ["", "", "", ""]]),
    io:format("(gen_tcp: one plain-TCP figure shown in the TLS 1.3 and 1.2 rows; "
              "\"-\" = not measured, \"err\" = failed, see the lines above the table; "
              "ping-pong, memory and scale rows: lower is better, and so is the ratio)~n"),
    [print_where(C, L) || {C, L} <- LS, is_map(L), maps:get(over, L, 0) > 0],
    ok.

print_where(C, #{over := O, nif := Nif, where := Where}) ->
    Top = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Where))), 5),
    io:format("long_schedule ~p: ~b event(s) > 1 ms, ~b of them in rssl/rssl_nif code; "
              "most frequent: ~s~n",
              [C, O, Nif, lists:join("; ", [io_lib:format("~b x ~s", [N, format_where(W)])
                                            || {W, N} <- Top])]).

value(Kind, V, Mod, Key, Measured) ->
    case [R || {K, Ver, M, R} <- Measured, K =:= Kind, Ver =:= V, M =:= Mod] of
        [{{ok, Values, _}, _}] -> maps:get(Key, Values, not_measured);
        [_] -> err;
        [] -> not_measured
    end.

%% The long_schedule results of a module, merged over its VMs (but the
%% traced cpu run, whose tracing makes long schedules of its own).
long_schedules(Mod, Measured) ->
    case [LS || {Kind, _, M, {_, LS}} <- Measured, M =:= Mod, Kind =/= cpu,
                is_map(LS), map_size(LS) > 0] of
        [] ->
            none;
        All ->
            lists:foldl(
              fun(LS, Acc) ->
                      #{over := O, nif := N, where := W, worst := Worst} = LS,
                      Acc#{over := maps:get(over, Acc) + O,
                           nif := maps:get(nif, Acc) + N,
                           where := maps:fold(fun(K, V, A) ->
                                                      maps:update_with(K, fun(X) -> X + V end, V, A)
                                              end, maps:get(where, Acc), W),
                           worst := case {maps:get(worst, Acc), Worst} of
                                        {none, _} -> Worst;
                                        {_, none} -> maps:get(worst, Acc);
                                        {{A, _, _}, {B, _, _}} when A >= B -> maps:get(worst, Acc);
                                        _ -> Worst
                                    end}
              end, #{over => 0, nif => 0, where => #{}, worst => none}, All)
    end.

target(none, _, _, _, _) ->
    {"", ""};
target({x_ssl_and_tcp, X}, S, R, T, _) ->
    verdict(io_lib:format(">= ~bx ssl, >= gen_tcp", [X]),
            [is_number(S) andalso R >= X * S, is_number(T) andalso R >= T], R);
target({x_ssl_min, X, Min}, S, R, _, _) ->
    verdict(io_lib:format(">= ~.1fx ssl, >= ~b", [X, Min]),
            [is_number(S) andalso R >= X * S, R >= Min], R);
target({x_ssl, X}, S, R, _, _) ->
    verdict(io_lib:format(">= ~.1fx ssl", [X]), [is_number(S) andalso R >= X * S], R);
target({x_tcp_max, X}, _, R, T, _) ->
    verdict(io_lib:format("<= ~.1fx gen_tcp", [X]), [is_number(T) andalso R =< X * T], R);
target({max, X}, _, R, _, _) ->
    verdict(io_lib:format("<= ~p", [X]), [R =< X], R);
target({below, X}, _, R, _, _) ->
    verdict(io_lib:format("< ~p", [X]), [R < X], R);
target(scale_conns, _, R, _, #{scale := N}) ->
    verdict(io_lib:format("= ~b", [N]), [R >= N], R).

verdict(Text, Checks, R) when is_number(R) ->
    {lists:flatten(Text), case lists:all(fun(X) -> X end, Checks) of
                              true -> "PASS";
                              false -> "MISS"
                          end};
verdict(Text, _, _) ->
    {lists:flatten(Text), "-"}.

cell(V) when is_float(V), abs(V) >= 100 -> float_to_list(V, [{decimals, 0}]);
cell(V) when is_float(V) -> float_to_list(V, [{decimals, 1}]);
cell(V) when is_integer(V) -> integer_to_list(V);
cell(err) -> "err";
cell(_) -> "-".

ratio(A, B) when is_number(A), is_number(B), B > 0 -> float_to_list(A / B, [{decimals, 2}]);
ratio(_, _) -> "-".

%%% Certificate and machine ----------------------------------------------------

make_cert() ->
    Dir = filename:join(temp_dir(), "rssl_bench_" ++ os:getpid()),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Key = filename:join(Dir, "key.pem"),
    Cert = filename:join(Dir, "cert.pem"),
    Out = os:cmd(lists:flatten(
                   ["openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes",
                    " -sha256 -days 2 -subj /CN=localhost",
                    " -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
                    " -keyout '", Key, "' -out '", Cert, "' 2>&1"])),
    case filelib:is_regular(Cert) andalso filelib:is_regular(Key) of
        true -> Dir;
        false -> error({openssl_failed, Out})
    end.

temp_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        "" -> "/tmp";
        D -> D
    end.

openssl_version() ->
    string:trim(os:cmd("openssl version")).

load() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} ->
            [L1, L5 | _] = string:lexemes(binary_to_list(B), " "),
            "load average " ++ L1 ++ " " ++ L5;
        _ ->
            "load average unknown"
    end.
