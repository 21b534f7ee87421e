%% What the rssl benchmark watches besides its figures: long schedules
%% (wall time, erlang:system_monitor/2) during every measurement, and the
%% cpu workload, which stamps time slices and rssl_nif calls with the
%% scheduler thread's CPU clock (see rssl_bench.erl's header).
-module(rssl_bench_probe).

-export([start_monitor/0, stop_monitor/1, format_where/1, cpu_probe/3, dirty_nifs/0]).

-define(T, 30000).
-define(FINALIZER, {erts_internal, dirty_nif_finalizer, 1}).

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


%%% CPU-time probe ------------------------------------------------------------
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
%% and so is code loading (a module first used in the traced mix). A call
%% during which its process was switched out is left out too (see
%% tracer_loop/4).
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
    Runs = [{"handshakes 1.3", fun() -> rssl_bench_workloads:handshakes(M, V, Tls, 1) end},
            {"handshakes 1.2", fun() -> rssl_bench_workloads:handshakes(M, 'tlsv1.2', Tls, 1) end},
            {"50 clients", fun() -> rssl_bench_workloads:handshakes_concurrent(M, V, Tls, 1, 50) end},
            {"bulk 64 MiB", fun() -> rssl_bench_workloads:bulk(M, V, Tls, 64 * 1048576) end},
            {"ping-pong", fun() -> rssl_bench_workloads:ping_pong(M, V, Tls, 1, active_once) end},
            {"300 idle pairs", fun() -> rssl_bench_workloads:memory(M, V, Tls, 300) end},
            {"scale 1000", fun() -> rssl_bench_workloads:scale(M, V, Tls, 1000, 5) end}],
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
    {ok, _, _} = rssl_bench_workloads:handshakes(M, 'tlsv1.3', Tls, 0),
    {ok, _, _} = rssl_bench_workloads:handshakes(M, 'tlsv1.2', Tls, 0),
    {ok, _, _} = rssl_bench_workloads:bulk(M, 'tlsv1.3', Tls, 1048576),
    {ok, _, _} = rssl_bench_workloads:scale(M, 'tlsv1.3', Tls, 4, 1),
    ok.

tracer_loop(Dirty, Open, Stats, Where) ->
    receive
        {trace_ts, Pid, in, MFA, TS} ->
            tracer_loop(Dirty, Open#{{in, Pid} => {MFA, TS}}, Stats, Where);
        {trace_ts, Pid, out, MFA, TS} ->
            %% A call open across a switch-out has its two stamps from
            %% two threads' clocks if the process moved (the switch came
            %% between the call's trace and the NIF): not a figure.
            Open0 = maps:remove({call, Pid}, Open),
            case maps:take({in, Pid}, Open0) of
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
                    tracer_loop(Dirty, Open0, Stats, Where)
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

