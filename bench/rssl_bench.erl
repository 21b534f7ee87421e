%% rssl benchmark: the same workloads on OTP's ssl, on rssl and on plain
%% gen_tcp (no TLS: the VM's own I/O ceiling), over loopback, and two of
%% them on OpenSSL alone (bench/c/openssl_hs.c: no sockets, no VM), printed
%% as one table with the ratios rssl/ssl and rssl/gen_tcp and a PASS/MISS
%% column against the targets of the performance issues.
%%
%% Every measurement runs in a fresh VM (`erl' spawned by run/1, which
%% parses a result line), so that one module's garbage, caches or crash do
%% not touch another's figures, and memory deltas start from the same
%% state. Both ends of every connection are in that VM. Bulk, handshakes,
%% ping-pong and memory run `repeat' times, the modules interleaved (ssl,
%% rssl, gen_tcp, OpenSSL alone, ssl, rssl, ...) so that a noisy minute on
%% the machine hits them alike; each cell of those rows is the median of
%% the runs with the min-max spread after it, "57.2 (49.0-92.1)". The rows:
%%
%%   bulk TLS 1.x MB/s      one connection, client -> server, 64 KiB sends,
%%                          the server reads with passive recv(S, 0); MB/s
%%                          (10^6 bytes/s) from the first send to the
%%                          server's acknowledgement of the last byte
%%   handshakes/s TLS 1.x   sequential full handshakes per second: connect
%%                          (with the handshake) + close, the server
%%                          accepting, handshaking and closing in its own
%%                          process; gen_tcp: TCP connect, a 1-byte greeting
%%                          from the accepting process, close. OpenSSL
%%                          column: openssl_hs, both ends of each handshake
%%                          in one thread over memory BIOs (no TCP)
%%   hs 1.x: x OpenSSL      the row above divided by OpenSSL alone's rate
%%   OpenSSL on TCP, hs/s   openssl_hs's second figure: the same OpenSSL
%%                          handshakes over loopback TCP, a client and a
%%                          server thread on blocking sockets (no VM): what
%%                          TLS between two threads over sockets costs here
%%   x OpenSSL on TCP       each module's rate divided by that one
%%   ... 1 thread, hs/s     openssl_hs's third figure: both ends in one
%%                          thread over loopback TCP, non-blocking sockets
%%                          (the system calls, no thread to wake)
%%   x OpenSSL 1 thread     each module's rate divided by that one
%%   hs/s 1.x, 50 clients   the same with 50 client processes looping at
%%                          once against 50 acceptor processes
%%   50 cl. / sequential    that rate divided by the sequential one
%%   pp 1.x <mode> p50|p99  ping-pong: a 64-byte request and its echo,
%%                          nodelay on both ends, both ends in the same
%%                          mode: passive (recv(S, 64)), once ({active,
%%                          once}, re-armed after each message) or N
%%                          ({active, 100}, re-armed on the passive
%%                          message); the median (p50) and 99th percentile
%%                          of the round trips, in us (the detail lines
%%                          give the mean and the worst)
%%   pp 1.3 <mode> switches voluntary context switches of all the VM's
%%                          threads (/proc/self/task/*/status) per round
%%                          trip: how many thread wake-ups a request and
%%                          its echo take, both ends together
%%   memory Erlang|RSS      N idle established pairs (both ends in the VM,
%%     KiB/pair             passive, sockets held in lists by 8 opener and
%%                          8 acceptor processes): the growth of
%%                          erlang:memory(total) and of the VM's VmRSS
%%                          (/proc/self/status), divided by N. Measured
%%                          after garbage-collecting every process (which
%%                          can only shrink ssl's figure); "after close"
%%                          detail lines show what stays once every pair is
%%                          closed again (Erlang memory, fds). OpenSSL
%%                          column: openssl_hs's N pairs in one process
%%                          with empty memory BIOs, VmRSS growth per pair
%%                          (its detail line gives malloc's in-use bytes)
%%   scale: ...             N pairs, an echo process per server end, a
%%                          client process per client end, all opened first
%%                          (16 at a time); then every client does R
%%                          active-once round trips of 64 bytes at once;
%%                          pairs open, errors of any kind, p50/p99 round
%%                          trip (one run)
%%   DTLS 1.2 handshakes/s  sequential full DTLS handshakes per second
%%                          (cookie exchange included; no session reuse)
%%                          by one client process: connect (with the
%%                          handshake) + close; the server's acceptor hands
%%                          each peer to a process of its own (handshake,
%%                          the client's close, close); ssl and rssl only
%%   DTLS 1.2 kdatagrams/s  thousands of datagrams per second, one DTLS
%%                          connection, 1024-byte datagrams client ->
%%                          server in batches of 32; the server counts the
%%                          datagrams that arrive (passive recv(S, 0)) and
%%                          acks each batch's last one with its count; the
%%                          rate is the count at the last ack over the time
%%                          from the first send to that ack (delivered
%%                          datagrams, not sent ones). A lost last datagram
%%                          or ack costs a 200 ms wait, then the next batch
%%                          goes; ssl and rssl only, both with a 208 KiB
%%                          UDP receive buffer
%%     ack waits            how many such waits the run had (the detail
%%                          lines give datagrams sent, received and lost)
%%   slices/NIF calls ...   the cpu workload (one run), below
%%   long_schedule ...      below
%%
%% During every measurement erlang:system_monitor(_, [{long_schedule, 1}])
%% counts the times a process or port ran uninterrupted >= 1 ms; the table
%% gives, per module, the events over 1 ms (but code loading, which every
%% fresh VM does) and the worst one, and the detail lines below it where
%% they were. long_schedule is wall time: on a shared machine an OS
%% preemption of a scheduler thread shows up too (gen_tcp, with no NIF at
%% all, gets hundreds). Hence the cpu workload: a short mix of every
%% workload with each time slice of every process and each rssl_nif call
%% stamped with the scheduler thread's CPU clock (rssl_bench_probe), which
%% an OS preemption does not advance:
%%   slices > 1 ms CPU     time slices (scheduled in to scheduled out) that
%%                         used more than 1 ms of CPU
%%   NIF calls > 1 ms CPU  rssl_nif calls on a normal scheduler that did
%%                         (the issue's "no NIF call keeps a normal
%%                         scheduler busy longer than 1 ms")
%%
%% TLS 1.3 and TLS 1.2 (1.3 only for memory, scale and cpu), both ends the same
%% module, ECDSA P-256 self-signed certificate made at startup with the
%% openssl CLI, verify_none, no session reuse, options otherwise default
%% (Nagle on, except ping-pong). The workloads are in rssl_bench_workloads,
%% the long_schedule monitor and the cpu workload in rssl_bench_probe.
%%
%% run/0 reads the environment; run/1 takes a map with the same keys:
%%   mods        RSSL_BENCH_MODS        modules, default ssl,rssl,gen_tcp,openssl
%%                                      (openssl: OpenSSL alone, hs and memory)
%%   only        RSSL_BENCH_ONLY        workloads, default
%%                                      bulk,hs,hsc,pingpong,memory,scale,cpu,dtls
%%                                      (pingpong = pp_passive,pp_once,pp_n;
%%                                      dtls = dtls_hs,dtls_dgram)
%%   mb          RSSL_BENCH_MB          bulk MiB (512)
%%   hs_secs     RSSL_BENCH_HS_SECS     seconds per handshake run (3)
%%   hs_clients  RSSL_BENCH_HS_CLIENTS  concurrent handshake clients (50)
%%   pp_secs     RSSL_BENCH_PP_SECS     seconds per ping-pong run (2)
%%   dgram_secs  RSSL_BENCH_DGRAM_SECS  seconds per DTLS datagrams run (3)
%%   conns       RSSL_BENCH_CONNS       pairs for the memory figure (2000)
%%   scale       RSSL_BENCH_SCALE       pairs for the scale run (5000)
%%   rounds      RSSL_BENCH_ROUNDS      round trips per scale client (20)
%%   repeat      RSSL_BENCH_REPEAT      runs of bulk, handshakes, ping-pong,
%%                                      memory and DTLS; the table shows the
%%                                      median (3)
%%   openssl_hs  RSSL_BENCH_OPENSSL_HS  the C program (build/bench/openssl_hs)
%% The default run takes about 15 minutes on a 2-core machine.
-module(rssl_bench).

-export([run/0, run/1, child/1]).

-define(T, 30000).
-define(CHILD_TIMEOUT, 600000).
-define(RESULT_TAG, "RSSL_BENCH_RESULT ").
-define(C_TAG, "RSSL_BENCH_C ").

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
                  "memory ~b pairs; scale ~b pairs x ~b round trips; DTLS datagrams ~b s; "
                  "~b runs of each but scale and cpu; one fresh VM each; OpenSSL alone: ~s~n",
                  [maps:get(K, Opts) || K <- [mb, hs_secs, hs_clients, pp_secs, conns,
                                              scale, rounds, dgram_secs, repeat]]
                  ++ [maps:get(openssl_hs, Opts)]),
        T0 = erlang:monotonic_time(second),
        Dirty = rssl_bench_probe:dirty_nifs(),
        Results = [{Job, run_job(Job#{dir => Dir, dirty => Dirty}, Paths)} || Job <- jobs(Opts)],
        T1 = erlang:monotonic_time(second),
        print_table(Results, Opts),
        io:format("(whole run: ~b s, ~s at the end)~n", [T1 - T0, load()])
    after
        delete_tree(Dir)
    end,
    ok.

%% The rssl app (ebin and priv) and the bench modules, copied once: every
%% child VM runs the same build even if rssl is rebuilt meanwhile (others
%% work in this tree; a NIF library overwritten in place can also crash a
%% VM that has it loaded). Returns the code paths for the children.
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
    #{mods => env_list("RSSL_BENCH_MODS", [ssl, rssl, gen_tcp, openssl]),
      only => env_list("RSSL_BENCH_ONLY", [bulk, hs, hsc, pingpong, memory, scale, cpu, dtls]),
      mb => env_int("RSSL_BENCH_MB", 512),
      hs_secs => env_int("RSSL_BENCH_HS_SECS", 3),
      hs_clients => env_int("RSSL_BENCH_HS_CLIENTS", 50),
      pp_secs => env_int("RSSL_BENCH_PP_SECS", 2),
      dgram_secs => env_int("RSSL_BENCH_DGRAM_SECS", 3),
      conns => env_int("RSSL_BENCH_CONNS", 2000),
      scale => env_int("RSSL_BENCH_SCALE", 5000),
      rounds => env_int("RSSL_BENCH_ROUNDS", 20),
      repeat => env_int("RSSL_BENCH_REPEAT", 3),
      openssl_hs => case os:getenv("RSSL_BENCH_OPENSSL_HS") of
                        Path when is_list(Path), Path =/= "" -> Path;
                        _ -> filename:absname("build/bench/openssl_hs")
                    end}.

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

%% One job per workload, TLS version, module and run. The runs of a
%% workload and version come one after the other with the modules
%% interleaved in each (ssl, rssl, gen_tcp, openssl, ssl, rssl, ...), so
%% that a noisy minute hits all alike. gen_tcp has no TLS version: it runs
%% once per workload and run, and its figure is shown in every version's
%% row. OpenSSL alone runs only the handshakes and memory workloads; the
%% DTLS workloads have no gen_tcp or OpenSSL figure.
jobs(#{mods := Mods, only := Only0, repeat := Repeat} = Opts) ->
    Only = lists:append([case W of
                             pingpong -> [pp_passive, pp_once, pp_n];
                             dtls -> [dtls_hs, dtls_dgram];
                             _ -> [W]
                         end || W <- Only0]),
    [Opts#{kind => Kind, mod => M, version => version(M, V)}
     || {Kind, Versions} <- kinds(), lists:member(Kind, Only),
        V <- Versions,
        _ <- lists:seq(1, case repeated(Kind) of true -> max(1, Repeat); false -> 1 end),
        M <- [ssl, rssl, gen_tcp, openssl], lists:member(M, Mods),
        M =/= gen_tcp orelse (V =:= hd(Versions) andalso not is_dtls(Kind)),
        M =/= openssl orelse Kind =:= hs orelse Kind =:= memory].

repeated(scale) -> false;
repeated(cpu) -> false;
repeated(_) -> true.

kinds() ->
    [{bulk, ['tlsv1.3', 'tlsv1.2']},
     {hs, ['tlsv1.3', 'tlsv1.2']},
     {hsc, ['tlsv1.3', 'tlsv1.2']},
     {pp_passive, ['tlsv1.3', 'tlsv1.2']},
     {pp_once, ['tlsv1.3', 'tlsv1.2']},
     {pp_n, ['tlsv1.3', 'tlsv1.2']},
     {memory, ['tlsv1.3']},
     {scale, ['tlsv1.3']},
     {cpu, ['tlsv1.3']},
     {dtls_hs, ['dtlsv1.2']},
     {dtls_dgram, ['dtlsv1.2']}].

is_dtls(Kind) -> lists:member(Kind, [dtls_hs, dtls_dgram]).

version(gen_tcp, _) -> tcp;
version(_, V) -> V.

%% The results with one entry per workload, version and module: each
%% figure the median of its runs, with {Min, Max} of the runs beside it. A
%% failed run is not hidden behind good ones: the entry is that failure.
merge(Measured) ->
    Keys = lists:usort([{K, V, M} || {K, V, M, _} <- Measured]),
    [{K, V, M, median([R || {K1, V1, M1, R} <- Measured, {K1, V1, M1} =:= {K, V, M}])}
     || {K, V, M} <- Keys].

median([R]) ->
    {R, #{}};
median(Rs) ->
    case [R || {{ok, _, _}, _} = R <- Rs] of
        Ok when length(Ok) =:= length(Rs) ->
            [{{ok, First, Info}, LS} | _] = Ok,
            Median = maps:map(fun(Key, _) -> middle([maps:get(Key, V) || {{ok, V, _}, _} <- Ok]) end,
                              First),
            Spread = maps:map(fun(Key, _) ->
                                      All = [maps:get(Key, V) || {{ok, V, _}, _} <- Ok],
                                      {lists:min(All), lists:max(All)}
                              end, First),
            {{{ok, Median, Info}, LS}, Spread};
        _ ->
            {hd([R || {Result, _} = R <- Rs, element(1, Result) =/= ok]), #{}}
    end.

middle(Xs) ->
    Sorted = lists:sort(Xs),
    N = length(Sorted),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, Sorted);
        0 -> (lists:nth(N div 2, Sorted) + lists:nth(N div 2 + 1, Sorted)) / 2
    end.

%%% Driver side: one VM (or one C program) per job ----------------------------

run_job(#{mod := openssl} = Job, _Paths) ->
    run_c(Job);
run_job(Job, Paths) ->
    run_child(Job, Paths).

%% bench/c/openssl_hs.c on the bench's certificate; its result line is
%% "RSSL_BENCH_C key=value ...".
run_c(#{kind := Kind, version := V, dir := Dir, openssl_hs := Exe} = Job) ->
    case filelib:is_regular(Exe) of
        true ->
            Args = [filename:join(Dir, "cert.pem"), filename:join(Dir, "key.pem"),
                    case V of 'tlsv1.3' -> "1.3"; 'tlsv1.2' -> "1.2" end]
                ++ case Kind of
                       hs -> ["hs", integer_to_list(maps:get(hs_secs, Job))];
                       memory -> ["memory", integer_to_list(maps:get(conns, Job))]
                   end,
            Port = open_port({spawn_executable, Exe},
                             [{args, Args}, exit_status, {line, 1 bsl 16}, stderr_to_stdout,
                              binary]),
            Result = collect(Port, <<>>, undefined, [], erlang:monotonic_time(millisecond)
                                                         + ?CHILD_TIMEOUT),
            {R, _} = Result,
            report(openssl, Kind, V, R, #{}),
            Result;
        false ->
            io:format("  openssl  ~-10s ~-8s skipped: no ~s (make bench builds it)~n",
                      [Kind, V, Exe]),
            {{error, {no_program, Exe}}, #{}}
    end.

c_values(Text) ->
    maps:from_list([{list_to_atom(K), to_number(N)}
                    || Pair <- string:lexemes(binary_to_list(Text), " "),
                       [K, N] <- [string:split(Pair, "=")]]).

to_number(S) ->
    try list_to_float(S) catch error:badarg -> list_to_integer(S) end.

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
                <<?C_TAG, Values/binary>> ->
                    Info = "OpenSSL alone: one thread, memory BIOs, no TCP; sock_: the same over loopback TCP, two threads; sock1_: over loopback TCP, one thread",
                    collect(Port, <<>>, {{ok, c_values(Values), Info}, #{}}, Tail, Deadline);
                _ ->
                    io:format("~s~n", [Line]),
                    collect(Port, <<>>, Result, lists:sublist([Line | Tail], 5), Deadline)
            end;
        {Port, {exit_status, Status}} ->
            case Result of
                undefined ->
                    io:format("  child exited with status ~b and no result~n", [Status]),
                    {{error, {exit, Status, lists:reverse(Tail)}}, #{}};
                _ ->
                    Result
            end
    after Left ->
        case erlang:port_info(Port, os_pid) of
            {os_pid, Pid} -> os:cmd("kill -9 " ++ integer_to_list(Pid));
            _ -> ok
        end,
        catch port_close(Port),
        io:format("  child killed after ~b s~n", [?CHILD_TIMEOUT div 1000]),
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
            Mon = rssl_bench_probe:start_monitor(),
            Result = measure(Job, Tls),
            LongSched = rssl_bench_probe:stop_monitor(Mon),
            report(M, Kind, V, Result, LongSched),
            {Result, LongSched};
        Error ->
            io:format("  ~-8s ~-10s ~-8s skipped: ~p~n", [M, Kind, V, Error]),
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

measure1(#{kind := cpu, mod := M, dirty := Dirty}, Tls) ->
    rssl_bench_probe:cpu_probe(M, Tls, Dirty);
measure1(Job, Tls) ->
    rssl_bench_workloads:measure(Job, Tls).

report(M, Kind, V, {ok, Values, Info}, LS) ->
    io:format("  ~-8s ~-10s ~-8s ~s  ~s~s~n",
              [M, Kind, V, format_values(Values), Info, format_ls(LS)]);
report(M, Kind, V, Error, LS) ->
    io:format("  ~-8s ~-10s ~-8s failed: ~P~s~n", [M, Kind, V, Error, 30, format_ls(LS)]).

format_values(Values) ->
    lists:join(" ", [io_lib:format("~s=~s", [K, cell(V)]) || {K, V} <- lists:sort(maps:to_list(Values))]).

format_ls(#{over := 0}) -> "";
format_ls(#{over := N, worst := {Ms, Who, Where}}) ->
    io_lib:format("~n      long_schedule: ~b event(s) > 1 ms, worst ~b ms (~p ~s)",
                  [N, Ms, Who, rssl_bench_probe:format_where(Where)]);
format_ls(_) -> "".

%%% Output -----------------------------------------------------------------

%% {Label, Kind, Version, Key, Target}: a figure per module;
%% {ratio, Label, Kind, Version, Key, Over, Target}: each module's figure
%% divided by OpenSSL alone's (Over = openssl), by another figure of
%% OpenSSL alone's run (Over = {openssl, Key}: sock_rate and sock1_rate,
%% its handshakes over loopback TCP) or by its own figure of another workload (Over =
%% {Kind, Key}).
rows() ->
    [{"bulk TLS 1.3 MB/s", bulk, 'tlsv1.3', mbps, {x_ssl_and_tcp, 5}},
     {"bulk TLS 1.2 MB/s", bulk, 'tlsv1.2', mbps, {x_ssl_and_tcp, 5}},
     {"handshakes/s TLS 1.3", hs, 'tlsv1.3', rate, {x_ssl_min, 3.5, 1100}},
     {ratio, "  hs 1.3: x OpenSSL", hs, 'tlsv1.3', rate, openssl, {min, 0.75}},
     {"  OpenSSL on TCP, hs/s", hs, 'tlsv1.3', sock_rate, none},
     {ratio, "  x OpenSSL on TCP", hs, 'tlsv1.3', rate, {openssl, sock_rate}, none},
     {"  ... 1 thread, hs/s", hs, 'tlsv1.3', sock1_rate, none},
     {ratio, "  x OpenSSL 1 thread", hs, 'tlsv1.3', rate, {openssl, sock1_rate}, none},
     {"handshakes/s TLS 1.2", hs, 'tlsv1.2', rate, {x_ssl, 3.5}},
     {ratio, "  hs 1.2: x OpenSSL", hs, 'tlsv1.2', rate, openssl, none},
     {"  OpenSSL on TCP, hs/s", hs, 'tlsv1.2', sock_rate, none},
     {ratio, "  x OpenSSL on TCP", hs, 'tlsv1.2', rate, {openssl, sock_rate}, none},
     {"  ... 1 thread, hs/s", hs, 'tlsv1.2', sock1_rate, none},
     {ratio, "  x OpenSSL 1 thread", hs, 'tlsv1.2', rate, {openssl, sock1_rate}, none},
     {"hs/s 1.3, 50 clients", hsc, 'tlsv1.3', rate, {x_ssl, 3.5}},
     {ratio, "  50 cl. / sequential", hsc, 'tlsv1.3', rate, {hs, rate}, {min, 1.7}},
     {"hs/s 1.2, 50 clients", hsc, 'tlsv1.2', rate, {x_ssl, 3.5}},
     {ratio, "  50 cl. / sequential", hsc, 'tlsv1.2', rate, {hs, rate}, none}]
    ++ [{io_lib:format("pp ~s ~-7s ~s us", [Name, Mode, Q]), Kind, V, Key, {pp, 1.2}}
        || {V, Name} <- [{'tlsv1.3', "1.3"}, {'tlsv1.2', "1.2"}],
           {Kind, Mode} <- [{pp_passive, "passive"}, {pp_once, "once"}, {pp_n, "N"}],
           {Key, Q} <- [{p50_us, "p50"}, {p99_us, "p99"}]]
    ++ [{io_lib:format("pp 1.3 ~-7s switches", [Mode]), Kind, 'tlsv1.3', cs_per_rt, none}
        || {Kind, Mode} <- [{pp_passive, "passive"}, {pp_once, "once"}, {pp_n, "N"}]]
    ++ [{"memory Erlang KiB/pair", memory, 'tlsv1.3', erl_kib, {max, 4}},
        {"memory RSS KiB/pair", memory, 'tlsv1.3', rss_kib, {max, 30}},
        {"scale: pairs open", scale, 'tlsv1.3', conns, scale_conns},
        {"scale: errors", scale, 'tlsv1.3', errors, {max, 0}},
        {"scale: p50 rtt us", scale, 'tlsv1.3', p50_us, none},
        {"scale: p99 rtt us", scale, 'tlsv1.3', p99_us, none},
        {"scale: p99/p50", scale, 'tlsv1.3', p99_p50, {below, 3}},
        {"slices > 1 ms CPU", cpu, 'tlsv1.3', slice_over, none},
        {"longest slice us CPU", cpu, 'tlsv1.3', slice_max_us, none},
        {"NIF calls > 1 ms CPU", cpu, 'tlsv1.3', nif_over, {max, 0}},
        {"slowest NIF call us CPU", cpu, 'tlsv1.3', nif_max_us, none},
        {"DTLS 1.2 handshakes/s", dtls_hs, 'dtlsv1.2', rate, none},
        {"DTLS 1.2 kdatagrams/s", dtls_dgram, 'dtlsv1.2', k_rate, none},
        {"  ack waits (200 ms)", dtls_dgram, 'dtlsv1.2', ack_waits, none}].

-define(FMT, "~-24s ~19s ~19s ~19s ~19s ~8s ~8s  ~-25s ~s~n").

print_table(Results, Opts) ->
    Cols = [ssl, rssl, gen_tcp, openssl],
    io:format("~n" ++ ?FMT, ["workload" | [atom_to_list(C) || C <- Cols]
                             ++ ["rssl/ssl", "rssl/tcp", "target", "rssl"]]),
    All = [{maps:get(kind, J), maps:get(version, J), maps:get(mod, J), R} || {J, R} <- Results],
    Measured = merge(All),
    [print_row(Row, Measured, Opts) || Row <- rows(), lists:keymember(row_kind(Row), 1, Measured)],
    LS = [{C, long_schedules(C, All)} || C <- [ssl, rssl, gen_tcp]],
    Over = [case L of none -> not_measured; _ -> maps:get(over, L) end || {_, L} <- LS],
    Worst = [case L of
                 none -> not_measured;
                 #{worst := {Ms, _, _}} -> Ms;
                 _ -> 0
             end || {_, L} <- LS],
    {T1, V1} = target({max, 0}, undefined, lists:nth(2, Over), undefined, Opts),
    io:format(?FMT, ["long_schedule > 1 ms" | [cell(X) || X <- Over] ++ ["", "", "", T1, V1]]),
    io:format(?FMT, ["worst long_schedule ms" | [cell(X) || X <- Worst] ++ ["", "", "", "", ""]]),
    io:format("(each cell of the bulk, handshake, ping-pong, memory and DTLS rows: the median of ~b "
              "runs (min-max); gen_tcp: one plain-TCP figure shown in the TLS 1.3 and 1.2 rows; OpenSSL: "
              "OpenSSL alone, bench/c/openssl_hs.c; \"-\" = not measured, \"err\" = failed, see the "
              "lines above the table; ping-pong, memory and scale rows: lower is better, and so is "
              "the ratio; pp target: PASS = <= ssl, PASS+goal = also <= 1.2x gen_tcp)~n",
              [maps:get(repeat, Opts)]),
    [print_where(C, L) || {C, L} <- LS, is_map(L), maps:get(over, L, 0) > 0],
    ok.

row_kind({ratio, _, Kind, _, _, _, _}) -> Kind;
row_kind({_, Kind, _, _, _}) -> Kind.

print_row({ratio, Label, Kind, V, Key, Over, Target}, Measured, Opts) ->
    Ratio = fun(M) ->
                    A = value(Kind, version(M, V), M, Key, Measured),
                    B = case Over of
                            openssl -> value(Kind, V, openssl, Key, Measured);
                            {openssl, Key2} -> value(Kind, V, openssl, Key2, Measured);
                            {K2, Key2} -> value(K2, version(M, V), M, Key2, Measured)
                        end,
                    case is_number(A) andalso is_number(B) andalso B > 0 of
                        true -> A / B;
                        false -> not_measured
                    end
            end,
    Vals = [Ratio(ssl), Ratio(rssl), case Over of
                                         openssl -> not_measured;
                                         {openssl, _} -> not_measured;
                                         _ -> Ratio(gen_tcp)
                                     end],
    [S, R, T] = Vals,
    {Text, Verdict} = target(Target, S, R, T, Opts),
    io:format(?FMT, [Label | [ratio_cell(X) || X <- Vals] ++ ["", "", "", Text, Verdict]]);
print_row({Label, Kind, V, Key, Target}, Measured, Opts) ->
    Cols = [ssl, rssl, gen_tcp, openssl],
    Vals = [value(Kind, version(C, V), C, Key, Measured) || C <- Cols],
    Cells = [spread_cell(X, spread(Kind, version(C, V), C, Key, Measured))
             || {C, X} <- lists:zip(Cols, Vals)],
    [Ssl, Rssl, Tcp, _] = Vals,
    {Text, Verdict} = target(Target, Ssl, Rssl, Tcp, Opts),
    io:format(?FMT, [lists:flatten(Label) | Cells ++ [ratio(Rssl, Ssl), ratio(Rssl, Tcp), Text,
                                                      Verdict]]).

print_where(C, #{over := O, nif := Nif, where := Where}) ->
    Top = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Where))), 5),
    io:format("long_schedule ~p: ~b event(s) > 1 ms, ~b of them in rssl/rssl_nif code; "
              "most frequent: ~s~n",
              [C, O, Nif, lists:join("; ", [io_lib:format("~b x ~s",
                                                          [N, rssl_bench_probe:format_where(W)])
                                            || {W, N} <- Top])]).

value(Kind, V, Mod, Key, Measured) ->
    case [R || {K, Ver, M, {R, _}} <- Measured, K =:= Kind, Ver =:= V, M =:= Mod] of
        [{{ok, Values, _}, _}] -> maps:get(Key, Values, not_measured);
        [_] -> err;
        [] -> not_measured
    end.

spread(Kind, V, Mod, Key, Measured) ->
    case [S || {K, Ver, M, {_, S}} <- Measured, K =:= Kind, Ver =:= V, M =:= Mod] of
        [#{Key := MinMax}] -> MinMax;
        _ -> none
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
target({pp, X}, S, R, T, _) ->
    case verdict(io_lib:format("<= ssl; goal <= ~.1fx tcp", [X]), [is_number(S) andalso R =< S], R) of
        {Text, "PASS"} when is_number(T), R =< X * T -> {Text, "PASS+goal"};
        Other -> Other
    end;
target({min, X}, _, R, _, _) ->
    verdict(io_lib:format(">= ~p", [X]), [R >= X], R);
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

%% "median (min-max)" when the figure has several runs.
spread_cell(V, {Min, Max}) when is_number(V) ->
    lists:flatten([cell(V), " (", cell(Min), "-", cell(Max), ")"]);
spread_cell(V, _) ->
    cell(V).

ratio_cell(V) when is_number(V) -> float_to_list(V, [{decimals, 2}]);
ratio_cell(_) -> "-".

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
