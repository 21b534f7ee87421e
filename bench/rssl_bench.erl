%% rssl benchmark: the same workloads on OTP's ssl, on rssl and on plain
%% gen_tcp, in one VM over loopback, printed as a table.
%%
%%   bulk        one connection, client -> server, 64 KiB sends, the server
%%               reads with passive recv(S, 0); MB/s (10^6 bytes/s) from the
%%               first send to the server's acknowledgement of the last byte
%%   handshakes  sequential full handshakes per second: connect (with the
%%               handshake) + close, the server accepting, handshaking and
%%               closing in its own process; gen_tcp: TCP connect, a 1-byte
%%               greeting from the accepting process, close
%%
%% TLS 1.3 and TLS 1.2, both ends the same module, ECDSA P-256 self-signed
%% certificate made at startup with the openssl CLI, verify_none, no session
%% reuse.
%%
%% run/0 measures every module that loads; rssl rows are skipped when the
%% rssl module (or its NIF) cannot be loaded. run/1 takes a map:
%%   mods      modules to measure, e.g. [ssl, gen_tcp] (env RSSL_BENCH_MODS,
%%             comma-separated)
%%   mb        bulk volume in MiB (env RSSL_BENCH_MB, default 256)
%%   hs_secs   seconds per handshake run (env RSSL_BENCH_HS_SECS, default 3)
-module(rssl_bench).

-export([run/0, run/1]).

-define(CHUNK, 65536).
-define(T, 30000).

run() ->
    run(#{}).

run(Opts0) ->
    Opts = maps:merge(defaults(), Opts0),
    #{mods := Wanted, mb := MiB, hs_secs := HsSecs} = Opts,
    {ok, _} = application:ensure_all_started(ssl),
    {Mods, Skipped} = lists:partition(fun(M) -> usable(M) =:= ok end, Wanted),
    Dir = make_cert(),
    try
        Tls = [{certfile, filename:join(Dir, "cert.pem")},
               {keyfile, filename:join(Dir, "key.pem")}],
        Total = MiB * 1048576,
        io:format("rssl bench: ~s, OTP ~s, ~b schedulers~n",
                  [openssl_version(), erlang:system_info(otp_release),
                   erlang:system_info(schedulers_online)]),
        [io:format("  skipping ~p: ~p~n", [M, usable(M)]) || M <- Skipped],
        io:format("  bulk: ~b MiB client -> server in 64 KiB sends; handshakes: ~b s per run~n",
                  [MiB, HsSecs]),
        %% gen_tcp has no TLS version: measured once per kind, shown in both rows.
        Tcp = [{Kind, measure(gen_tcp, Kind, tcp, Tls, Total, HsSecs)}
               || lists:member(gen_tcp, Mods), Kind <- [bulk, handshake]],
        Rows = [{Name, [{M, measure(M, Kind, V, Tls, Total, HsSecs)} || M <- Mods, M =/= gen_tcp]
                 ++ [{gen_tcp, R} || {K, R} <- Tcp, K =:= Kind]}
                || {Name, Kind, V} <- workloads()],
        print_table(Rows)
    after
        _ = [file:delete(filename:join(Dir, F)) || F <- ["cert.pem", "key.pem"]],
        _ = file:del_dir(Dir)
    end,
    ok.

defaults() ->
    #{mods => env_mods(),
      mb => env_int("RSSL_BENCH_MB", 256),
      hs_secs => env_int("RSSL_BENCH_HS_SECS", 3)}.

workloads() ->
    [{"bulk TLS 1.3 (MB/s)", bulk, 'tlsv1.3'},
     {"bulk TLS 1.2 (MB/s)", bulk, 'tlsv1.2'},
     {"handshakes/s TLS 1.3", handshake, 'tlsv1.3'},
     {"handshakes/s TLS 1.2", handshake, 'tlsv1.2'}].

env_mods() ->
    case os:getenv("RSSL_BENCH_MODS") of
        false -> [ssl, rssl, gen_tcp];
        S -> [list_to_atom(M) || M <- string:lexemes(S, ", ")]
    end.

env_int(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        S -> list_to_integer(S)
    end.

%% ok when the module is there and starts (for rssl: its NIF loads).
usable(gen_tcp) ->
    ok;
usable(ssl) ->
    ok;
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

%%% Measurements -----------------------------------------------------------

%% One measurement in its own process, so a failure or a hang of the
%% module under test gives an error cell instead of stopping the run.
measure(M, Kind, V, Tls, Total, HsSecs) ->
    Self = self(),
    {Pid, Ref} = spawn_monitor(fun() -> Self ! {self(), measure1(M, Kind, V, Tls, Total, HsSecs)} end),
    receive
        {Pid, Result} ->
            erlang:demonitor(Ref, [flush]),
            report(M, Kind, V, Result),
            Result;
        {'DOWN', Ref, process, Pid, Reason} ->
            report(M, Kind, V, {error, Reason}),
            {error, Reason}
    after 300000 ->
        exit(Pid, kill),
        report(M, Kind, V, {error, timeout}),
        {error, timeout}
    end.

measure1(M, bulk, V, Tls, Total, _) -> bulk(M, V, Tls, Total);
measure1(M, handshake, V, Tls, _, Secs) -> handshakes(M, V, Tls, Secs).

report(M, Kind, V, {ok, Value, Info}) ->
    io:format("  ~-8s ~-10s ~-8s ~10.1f  ~s~n", [M, Kind, V, Value, Info]);
report(M, Kind, V, Error) ->
    io:format("  ~-8s ~-10s ~-8s failed: ~P~n", [M, Kind, V, Error, 20]).

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
    Secs = erlang:convert_time_unit(T1 - T0, native, microsecond) / 1.0e6,
    {ok, (Total div ?CHUNK) * ?CHUNK / 1.0e6 / Secs, Info}.

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
    ok = M:close(C0),
    Deadline = erlang:monotonic_time(millisecond) + Secs * 1000,
    T0 = erlang:monotonic_time(),
    N = connect_loop(M, Port, COpts, Deadline, 0),
    T1 = erlang:monotonic_time(),
    Server ! {Parent, stop},
    Failed = receive {Server, failed, F} -> F after ?T -> error(server_not_done) end,
    ok = close_listener(M, L),
    Elapsed = erlang:convert_time_unit(T1 - T0, native, microsecond) / 1.0e6,
    Note = case Failed of
               0 -> Info;
               _ -> io_lib:format("~s (~b server-side handshakes failed)", [Info, Failed])
           end,
    {ok, N / Elapsed, Note}.

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

%% Accepts and handshakes until told to stop; reports how many server-side
%% handshakes failed.
accept_loop(M, L, Parent, Failed) ->
    receive
        {Parent, stop} -> Parent ! {self(), failed, Failed}
    after 0 ->
        case accept(M, L, 100) of
            {ok, S} ->
                ok = greet(M, S),
                _ = M:close(S),
                accept_loop(M, L, Parent, Failed);
            {error, timeout} ->
                accept_loop(M, L, Parent, Failed);
            {error, _} ->
                accept_loop(M, L, Parent, Failed + 1)
        end
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
    {ok, <<"h">>} = gen_tcp:recv(C, 1, ?T),
    ok;
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

print_table(Rows) ->
    Cols = [ssl, rssl, gen_tcp],
    io:format("~n~-22s ~12s ~12s ~12s ~10s ~13s~n",
              ["workload" | [atom_to_list(C) || C <- Cols] ++ ["rssl/ssl", "rssl/gen_tcp"]]),
    [begin
         Vals = [value(C, Results) || C <- Cols],
         [Ssl, Rssl, Tcp] = Vals,
         io:format("~-22s ~12s ~12s ~12s ~10s ~13s~n",
                   [Name | [cell(X) || X <- Vals] ++ [ratio(Rssl, Ssl), ratio(Rssl, Tcp)]])
     end || {Name, Results} <- Rows],
    io:format("(gen_tcp: the same plain-TCP figure in the TLS 1.3 and 1.2 rows; "
              "\"-\" = not measured, \"err\" = failed, see above)~n"),
    ok.

value(C, Results) ->
    case lists:keyfind(C, 1, Results) of
        {C, {ok, V, _}} -> V;
        {C, _} -> err;
        false -> not_measured
    end.

cell(V) when is_float(V) -> float_to_list(V, [{decimals, 1}]);
cell(err) -> "err";
cell(_) -> "-".

ratio(A, B) when is_float(A), is_float(B), B > 0 -> float_to_list(A / B, [{decimals, 2}]);
ratio(_, _) -> "-".

%%% Certificate --------------------------------------------------------------

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
