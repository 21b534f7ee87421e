%% External programs as TLS peers for the Common Test suites
%% (rssl_stacks_SUITE, rssl_hostile_SUITE, rssl_scan_SUITE), and a
%% listener that serves every peer that comes.
%%
%% A program runs under a port (stdout and stderr merged, exit status
%% reported) through `/bin/sh -c "exec ..."`, so redirections work and the
%% port's OS pid is the program's own. Every wait has a deadline; stop/1
%% kills what is still running. A program that is not installed fails the
%% case with a message naming the package (.ci/setup installs them all).
-module(rssl_tool_lib).

-export([exe/1, start/1, start/2, wait_output/3, wait_exit/2, stop/1,
         output/1, listening_port/2, q/1, write_temp/3,
         listener/2, listener_port/1, listener_stop/1, s_client_session/5]).

-define(POLL, 50).

%% The absolute path of Name, or the case fails saying what to install.
exe(Name) ->
    case os:find_executable(Name) of
        false ->
            ct:fail({tool_missing, Name,
                     "not on PATH; .ci/setup installs it (package " ++ package(Name) ++ ")"});
        Path ->
            Path
    end.

package("gnutls-cli") -> "gnutls-bin";
package("gnutls-serv") -> "gnutls-bin";
package("openssl") -> "openssl";
package("curl") -> "curl";
package("python3") -> "python3";
package("sslyze") -> "sslyze, from PyPI";
package(Other) -> Other.

%% Runs the shell command Cmd (its words quoted with q/1 by the caller).
%% Returns a handle for the functions below.
start(Cmd) ->
    start(Cmd, []).

start(Cmd, Env) ->
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", "exec " ++ lists:flatten(Cmd)]}, {env, Env}, binary, exit_status,
                      stderr_to_stdout, use_stdio, hide]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    ct:log("started ~s (os pid ~p)", [Cmd, OsPid]),
    #{port => Port, os_pid => OsPid, cmd => Cmd, out => <<>>, status => running}.

%% Waits until the program's output contains Pattern (a binary, or a
%% compiled re), up to Timeout ms. Returns {ok, Match, Tool} where Match is
%% the pattern's first capture group (re) or Pattern itself.
wait_output(Tool0, Pattern, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_output_until(Tool0, Pattern, Deadline).

wait_output_until(#{out := Out} = Tool, Pattern, Deadline) ->
    case match(Out, Pattern) of
        {ok, M} ->
            {ok, M, Tool};
        nomatch ->
            case collect(Tool, Deadline) of
                {more, Tool1} -> wait_output_until(Tool1, Pattern, Deadline);
                {exited, Tool1} ->
                    case match(maps:get(out, Tool1), Pattern) of
                        {ok, M} -> {ok, M, Tool1};
                        nomatch -> failed(Tool1, {exited_without, Pattern})
                    end;
                {timeout, Tool1} -> failed(Tool1, {timeout_waiting_for, Pattern})
            end
    end.

match(Out, Pattern) when is_binary(Pattern) ->
    case binary:match(Out, Pattern) of
        nomatch -> nomatch;
        _ -> {ok, Pattern}
    end;
match(Out, Re) ->
    case re:run(Out, Re, [{capture, all_but_first, binary}]) of
        {match, [M | _]} -> {ok, M};
        {match, []} -> {ok, <<>>};
        nomatch -> nomatch
    end.

%% Waits for the program to exit, up to Timeout ms: {Status, Output}.
%% A program still running then is killed and the case fails.
wait_exit(#{status := running} = Tool, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_exit_until(Tool, Deadline);
wait_exit(#{status := Status, out := Out}, _Timeout) ->
    {Status, Out}.

wait_exit_until(Tool, Deadline) ->
    case collect(Tool, Deadline) of
        {more, Tool1} -> wait_exit_until(Tool1, Deadline);
        {exited, #{status := Status, out := Out}} -> {Status, Out};
        {timeout, Tool1} -> failed(Tool1, did_not_exit)
    end.

%% Output so far.
output(#{out := Out}) -> Out.

collect(#{port := Port, out := Out} = Tool, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, D}} -> {more, Tool#{out := <<Out/binary, D/binary>>}};
        {Port, {exit_status, S}} -> {exited, drain(Tool#{status := S})}
    after Left ->
            {timeout, Tool}
    end.

%% Output the port delivered before its exit status.
drain(#{port := Port, out := Out} = Tool) ->
    receive
        {Port, {data, D}} -> drain(Tool#{out := <<Out/binary, D/binary>>})
    after 0 -> Tool
    end.

failed(Tool, Why) ->
    #{cmd := Cmd, out := Out} = Tool,
    stop(Tool),
    ct:fail({tool, Why, Cmd, {output, Out}}).

%% Ends the program if it still runs and closes its port. Returns its
%% output.
stop(#{port := Port, os_pid := OsPid, status := Status, out := Out}) ->
    case Status of
        running ->
            _ = os:cmd("kill -9 " ++ integer_to_list(OsPid) ++ " 2>/dev/null");
        _ ->
            ok
    end,
    catch port_close(Port),
    receive {Port, {exit_status, _}} -> ok after 0 -> ok end,
    drain_all(Port),
    Out.

drain_all(Port) ->
    receive {Port, _} -> drain_all(Port) after 0 -> ok end.

%% The TCP port the program OsPid listens on over IPv4 (from /proc: the
%% listening sockets among its descriptors), waiting up to Timeout ms for
%% it to appear. For programs that bind port 0 without saying which port
%% they got.
listening_port(#{os_pid := OsPid} = Tool, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    listening_port_until(Tool, OsPid, Deadline).

listening_port_until(Tool, OsPid, Deadline) ->
    case find_listening(OsPid) of
        {ok, Port} ->
            Port;
        none ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> failed(Tool, no_listening_socket);
                false ->
                    timer:sleep(?POLL),
                    listening_port_until(Tool, OsPid, Deadline)
            end
    end.

find_listening(OsPid) ->
    FdDir = "/proc/" ++ integer_to_list(OsPid) ++ "/fd",
    Inodes = case file:list_dir(FdDir) of
                 {ok, Fds} -> [Inode || Fd <- Fds, Inode <- [socket_inode(filename:join(FdDir, Fd))],
                                        Inode =/= none];
                 {error, _} -> []
             end,
    {ok, Tcp} = file:read_file("/proc/net/tcp"),
    [_Header | Lines] = binary:split(Tcp, <<"\n">>, [global, trim]),
    Listening = [binary_to_integer(PortHex, 16)
                 || Line <- Lines,
                    [_Sl, Local, _Remote, State, _Q, _Tm, _Retr, _Uid, _To, Inode | _]
                        <- [string:lexemes(Line, " ")],
                    State =:= <<"0A">>,
                    lists:member(Inode, Inodes),
                    [_Addr, PortHex] <- [binary:split(Local, <<":">>)]],
    case Listening of
        [Port | _] -> {ok, Port};
        [] -> none
    end.

socket_inode(Path) ->
    case file:read_link(Path) of
        {ok, "socket:[" ++ Rest} -> list_to_binary(lists:droplast(Rest));
        _ -> none
    end.

%% A word quoted for the shell.
q(Word) ->
    "'" ++ lists:flatten(string:replace(to_list(Word), "'", "'\\''", all)) ++ "'".

to_list(B) when is_binary(B) -> binary_to_list(B);
to_list(I) when is_integer(I) -> integer_to_list(I);
to_list(L) -> L.

%% Writes Data to a fresh file under Config's priv_dir; returns its path.
write_temp(Config, Name, Data) ->
    Dir = proplists:get_value(priv_dir, Config),
    Path = filename:join(Dir, Name ++ "-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = file:write_file(Path, Data),
    Path.

%%% A listener serving every peer ---------------------------------------------

%% Mod listens on an ephemeral port with Opts; each connection gets its own
%% process that handshakes and echoes what it reads until the peer closes
%% or fails. Handshake results are sent to the caller as
%% {listener, Pid, handshake, Result}. Returns the listener's handle.
listener(Mod, Opts) ->
    Parent = self(),
    Pid = spawn_link(
            fun() ->
                    process_flag(trap_exit, true),
                    {ok, L} = Mod:listen(0, [{reuseaddr, true}, binary, {active, false} | Opts]),
                    {ok, {_, Port}} = Mod:sockname(L),
                    Me = self(),
                    Parent ! {Me, port, Port},
                    Acceptor = spawn_link(fun() -> accept_loop(Parent, Me, Mod, L) end),
                    receive
                        {Parent, stop} ->
                            unlink(Acceptor),
                            exit(Acceptor, kill),
                            ok = Mod:close(L),
                            Parent ! {self(), stopped}
                    end
            end),
    receive
        {Pid, port, Port} -> #{pid => Pid, port => Port}
    after 10000 -> error(listener_did_not_start)
    end.

listener_port(#{port := Port}) -> Port.

%% Closes the listener; the connections it serves are ended with it.
listener_stop(#{pid := Pid}) ->
    unlink(Pid),
    Pid ! {self(), stop},
    receive {Pid, stopped} -> ok after 10000 -> error(listener_did_not_stop) end.

accept_loop(Parent, Listener, Mod, L) ->
    case Mod:transport_accept(L) of
        {ok, T} ->
            Handler = spawn_link(fun() -> receive {go, T} -> serve_one(Parent, Listener, Mod, T) end end),
            case Mod:controlling_process(T, Handler) of
                ok -> Handler ! {go, T};
                {error, _} ->
                    unlink(Handler),
                    exit(Handler, kill),
                    _ = Mod:close(T)
            end,
            accept_loop(Parent, Listener, Mod, L);
        {error, closed} ->
            ok;
        {error, _} ->
            accept_loop(Parent, Listener, Mod, L)
    end.

serve_one(Parent, Listener, Mod, T) ->
    Result = Mod:handshake(T, 10000),
    Parent ! {listener, Listener, handshake, Result},
    case Result of
        {ok, S} -> echo(Mod, S);
        _ -> ok
    end.

echo(Mod, S) ->
    case Mod:recv(S, 0) of
        {ok, Data} ->
            _ = Mod:send(S, Data),
            echo(Mod, S);
        {error, _} ->
            _ = Mod:close(S)
    end.

%% One `openssl s_client' run against Mod's listener L, verifying the
%% server for localhost with CA file Ca; Args: the version flag
%% (`-tls1_2', `-dtls1_2') and the session's, `-sess_out File' or
%% `-sess_in File'. The connection is accepted and handshaken, s_client's
%% Expect line and the session id it prints awaited, a line sent to it,
%% then it quits. Returns {Id, #{id, resumed}}: the id s_client printed,
%% and Mod's connection_information session_id and session_resumption.
s_client_session(Mod, L, {Ca, Args}, Expect, Timeout) ->
    {ok, {_, Port}} = Mod:sockname(L),
    {ok, SessionId} = re:compile("Session-ID: ([0-9A-F]*)\\R"),
    Tool0 = start([q(exe("openssl")), " s_client -connect 127.0.0.1:", integer_to_list(Port),
                   " -CAfile ", q(Ca), " -verify_return_error -servername localhost"
                   | [[" ", A] || A <- Args]]),
    try
        {ok, T} = Mod:transport_accept(L, Timeout),
        {ok, S} = Mod:handshake(T, Timeout),
        {ok, _, Tool1} = wait_output(Tool0, Expect, Timeout),
        {ok, Hex, Tool2} = wait_output(Tool1, SessionId, Timeout),
        ok = Mod:send(S, <<"from server\n">>),
        {ok, _, Tool3} = wait_output(Tool2, <<"from server">>, Timeout),
        {ok, Info} = Mod:connection_information(S, [session_id, session_resumption]),
        true = port_command(maps:get(port, Tool3), <<"Q\n">>),
        {error, closed} = Mod:recv(S, 0, Timeout),
        wait_exit(Tool3, Timeout),
        ok = Mod:close(S),
        {binary:decode_hex(Hex), #{id => proplists:get_value(session_id, Info),
                                   resumed => proplists:get_value(session_resumption, Info)}}
    after
        stop(Tool0)
    end.
