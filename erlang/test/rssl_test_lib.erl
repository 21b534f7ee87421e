%% Shared helpers for the rssl Common Test suites.
%%
%% Every function takes the TLS module to use as an argument (`rssl' or
%% `ssl'), so one helper serves both the module under test and its OTP
%% `ssl' peer. Nothing here knows which one is under test.
%%
%% Peers: open/6 sets up one connection whose "local" end belongs to the
%% calling process and whose other end lives in a spawned peer process
%% running a small command loop (see peer_loop/2). The test drives the peer
%% with call/2 (synchronous) or request/2 + reply/1 (asynchronous).
-module(rssl_test_lib).

-export([warm_up/2, snapshot/0, fd_count/0, end_per_testcase/1, check_resources/1, check_resources/2,
         open/6, start_server/3, start_client/4, start_client/5, run_peer/4, await/1,
         call/2, call/3, request/2, reply/1, reply/2, stop_peer/1,
         client_opts/3, server_opts/3,
         recv_until_closed/2, recv_total/3, collect_active/2,
         send_chunks/4, chunk_sizes/1, flush/0,
         merge_opts/2, assert_same/2, stray_messages/1, wait_blocked/2,
         ensure_proper/0]).

-define(T, 10000).       % generous upper bound for anything that should succeed

%%% Resources -------------------------------------------------------------

%% The open file descriptors of this VM, each with what it refers to
%% (readlink: "socket:[Inode]", "pipe:[Inode]", a path), sorted. A new
%% connection's socket has a new inode, so a descriptor closed and its
%% number reused shows as a different entry. /proc/self would name the
%% process doing the file operation, which is the VM itself today, but the
%% pid says it without relying on that.
fds() ->
    Dir = "/proc/" ++ os:getpid() ++ "/fd",
    {ok, Names} = file:list_dir(Dir),
    lists:sort([{list_to_integer(N), target(Dir ++ "/" ++ N)} || N <- Names]).

target(Link) ->
    case file:read_link(Link) of
        {ok, T} -> T;
        {error, _} -> closed    % closed between list_dir and read_link
    end.

%% How many descriptors this VM has open.
fd_count() ->
    length(fds()).

snapshot() ->
    #{fds => fds(), ports => length(erlang:ports())}.

%% For end_per_testcase/2: after a passing case, fails it if descriptors or
%% ports did not come back to the snapshot taken in init_per_testcase
%% (key `resources'); after a failing case only logs, so the first failure
%% stays the one reported.
end_per_testcase(Config) ->
    flush(),
    Before = proplists:get_value(resources, Config),
    case {proplists:get_value(tc_status, Config), check_resources(Before)} of
        {_, ok} -> ok;
        {ok, {leak, Info}} -> {fail, {resource_leak, Info}};
        {_, {leak, Info}} -> ct:log("Resources after the failed case: ~p", [Info])
    end.

%% ok when no descriptor is open that was not open in Before, and there
%% are no more ports than then, waiting up to ~3 s for asynchronous closes
%% to finish. No descriptor is allowed to stay: what exists once per VM
%% is made by warm_up/2 before any snapshot (the NIF's two poller threads,
%% an epoll and an eventfd each, and the resolver port's pipe: listing
%% /proc/PID/fd around it shows those six and nothing after a second
%% warm_up/2).
check_resources(Before) ->
    check_resources(Before, 3000).

check_resources(#{fds := Fds0, ports := Ports0} = Before, Wait) ->
    #{fds := Fds, ports := Ports} = snapshot(),
    case {Fds -- Fds0, Ports =< Ports0} of
        {[], true} ->
            ok;
        _ when Wait > 0 ->
            timer:sleep(50),
            check_resources(Before, Wait - 50);
        {New, _} ->
            {leak, #{new_fds => New, ports_before => Ports0, ports_now => Ports,
                     ports => [port_owner(P) || P <- erlang:ports()]}}
    end.

port_owner(P) ->
    case erlang:port_info(P, connected) of
        {connected, Pid} ->
            {P, erlang:port_info(P, name), Pid,
             catch process_info(Pid, [current_stacktrace, dictionary])};
        undefined ->
            {P, closed}
    end.

%% One full connection each way between Mod and ssl, so that whatever is
%% created once per VM (application processes, poller threads, their fds,
%% the resolver) exists before any test takes a resource snapshot.
warm_up(Mod, Pki) ->
    [begin
         {S, Peer} = open(Client, client, client_opts(Pki, 'tlsv1.3', ca), Server,
                          server_opts(Pki, 'tlsv1.3', server), #{}),
         ok = Client:close(S),
         {error, closed} = call(Peer, {recv, 0, ?T}),
         ok = stop_peer(Peer)
     end || {Client, Server} <- [{Mod, ssl}, {ssl, Mod}, {Mod, Mod}]],
    {ok, L} = gen_tcp:listen(0, [{reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    {ok, C} = gen_tcp:connect("localhost", Port, []),
    ok = gen_tcp:close(C),
    ok = gen_tcp:close(L).

%%% Options ---------------------------------------------------------------

%% Client: passive binary, the given version, verify_peer against CaName.
client_opts(Pki, Version, CaName) ->
    [binary, {active, false}, {versions, [Version]}
     | rssl_test_pki:client_opts(Pki, CaName)].

%% Server: passive binary, the given version, the certificate CertName.
server_opts(Pki, Version, CertName) ->
    [binary, {active, false}, {versions, [Version]}
     | rssl_test_pki:server_opts(Pki, CertName)].

%%% Connections -----------------------------------------------------------

%% Opens a connection between LocalMod (in the calling process, acting as
%% Role = client | server) and PeerMod (in a new peer process). Returns
%% {LocalSocket, Peer}. Peer is #{pid, port, handshake} where port is the
%% listening port. Fails the test if either side's handshake fails; use
%% start_server/3 and start_client/4 directly to look at failures.
open(LocalMod, client, LocalOpts, PeerMod, PeerOpts, Extra) ->
    {Pid, Port} = start_server(PeerMod, PeerOpts, loop),
    Host = maps:get(host, Extra, {127, 0, 0, 1}),
    case LocalMod:connect(Host, Port, LocalOpts, ?T) of
        {ok, S} ->
            {S, peer_ready(Pid, Port, PeerMod)};
        Error ->
            error({connect_failed, Error, {server, catch await(Pid)}})
    end;
open(LocalMod, server, LocalOpts, PeerMod, PeerOpts, Extra) ->
    {ok, L} = LocalMod:listen(0, [{reuseaddr, true} | LocalOpts]),
    {ok, {_, Port}} = LocalMod:sockname(L),
    Host = maps:get(host, Extra, {127, 0, 0, 1}),
    Pid = start_client(PeerMod, Host, Port, PeerOpts),
    {ok, T} = LocalMod:transport_accept(L, ?T),
    Result = LocalMod:handshake(T, ?T),
    ok = LocalMod:close(L),
    case Result of
        {ok, S} ->
            {S, peer_ready(Pid, Port, PeerMod)};
        Error ->
            error({handshake_failed, Error, {client, catch await(Pid)}})
    end.

peer_ready(Pid, Port, PeerMod) ->
    receive
        {Pid, handshake, ok} -> #{pid => Pid, port => Port, mod => PeerMod};
        {Pid, handshake, Error} -> error({peer_handshake_failed, Error})
    after ?T -> error({peer_handshake_timeout, process_info(Pid, current_stacktrace)})
    end.

%% A one-connection server in a new process: listen on port 0, accept one
%% connection, handshake, close the listener, then either run the command
%% loop (Fun = loop) or report Fun(HandshakeResult) to the caller.
%% Returns {Pid, Port}.
start_server(Mod, Opts, Fun) ->
    Parent = self(),
    Pid = spawn_link(
            fun() ->
                    {ok, L} = Mod:listen(0, [{reuseaddr, true} | Opts]),
                    {ok, {_, Port}} = Mod:sockname(L),
                    Parent ! {self(), port, Port},
                    {ok, T} = Mod:transport_accept(L, ?T),
                    HS = Mod:handshake(T, ?T),
                    ok = Mod:close(L),
                    run_peer(Parent, Mod, HS, Fun)
            end),
    receive
        {Pid, port, Port} -> {Pid, Port}
    after ?T -> error(server_did_not_listen)
    end.

%% A client in a new process: connects to Host:Port, then runs the command
%% loop (Fun = loop) or reports Fun(ConnectResult). Returns Pid.
start_client(Mod, Host, Port, Opts) ->
    start_client(Mod, Host, Port, Opts, loop).

start_client(Mod, Host, Port, Opts, Fun) ->
    Parent = self(),
    spawn_link(fun() ->
                       HS = Mod:connect(Host, Port, Opts, ?T),
                       run_peer(Parent, Mod, HS, Fun)
               end).

%% Parent's peer on the outcome HS of a handshake of Mod: with Fun = loop
%% it reports {self(), handshake, ok | Error} and serves commands; with a
%% fun it reports {self(), done, Fun(HS)}. For peers set up by hand.
run_peer(Parent, Mod, {ok, S}, loop) ->
    Parent ! {self(), handshake, ok},
    peer_loop(Parent, Mod, S);
run_peer(Parent, _Mod, HS, loop) ->
    %% Seen by open/6 (peer_ready) and by await/1.
    Parent ! {self(), handshake, HS},
    Parent ! {self(), done, HS};
run_peer(Parent, Mod, HS, Fun) when is_function(Fun, 1) ->
    Result = try Fun(HS) catch C:R:St -> {crashed, C, R, St} end,
    case HS of
        {ok, S} -> _ = Mod:close(S);
        _ -> ok
    end,
    Parent ! {self(), done, Result}.

%% The peer's command loop. Replies {Pid, reply, Result} for each command.
peer_loop(Parent, Mod, S) ->
    receive
        {Parent, stop} ->
            _ = Mod:close(S),
            Parent ! {self(), done, ok};
        {Parent, Cmd} ->
            Result = try peer_cmd(Mod, S, Cmd) catch C:R:St -> {crashed, C, R, St} end,
            Parent ! {self(), reply, Result},
            peer_loop(Parent, Mod, S)
    end.

peer_cmd(Mod, S, {send, Data}) -> Mod:send(S, Data);
peer_cmd(Mod, S, {send_chunks, Data, Sizes}) -> send_chunks(Mod, S, Data, Sizes);
peer_cmd(Mod, S, {recv, N, T}) -> Mod:recv(S, N, T);
peer_cmd(Mod, S, {recv_total, Len}) -> recv_total(Mod, S, Len);
peer_cmd(Mod, S, recv_until_closed) -> recv_until_closed(Mod, S);
peer_cmd(Mod, S, close) -> Mod:close(S);
peer_cmd(Mod, S, {apply, F, Args}) -> apply(Mod, F, [S | Args]);
peer_cmd(Mod, S, {fn, Fun}) -> Fun(Mod, S).

%% Waits for a peer's final result (after stop_peer/1 or a Fun server).
await(#{pid := Pid}) -> await(Pid);
await(Pid) ->
    receive
        {Pid, done, Result} -> Result
    after ?T -> error({peer_timeout, Pid, process_info(Pid, current_stacktrace)})
    end.

call(Peer, Cmd) -> call(Peer, Cmd, ?T).
call(Peer, Cmd, Timeout) ->
    request(Peer, Cmd),
    reply(Peer, Timeout).

request(#{pid := Pid}, Cmd) ->
    Pid ! {self(), Cmd},
    ok.

reply(Peer) -> reply(Peer, ?T).
reply(#{pid := Pid}, Timeout) ->
    receive
        {Pid, reply, {crashed, C, R, St}} -> erlang:raise(C, R, St);
        {Pid, reply, Result} -> Result
    after Timeout -> error({peer_no_reply, Pid, process_info(Pid, current_stacktrace)})
    end.

%% Closes the peer's socket and ends the peer process.
stop_peer(#{pid := Pid} = Peer) ->
    Pid ! {self(), stop},
    await(Peer).

%%% Data ------------------------------------------------------------------

%% recv(S, 0) until the peer closes; returns {Data, LastResult} where every
%% piece was a non-empty binary.
recv_until_closed(Mod, S) ->
    recv_until_closed(Mod, S, []).
recv_until_closed(Mod, S, Acc) ->
    case Mod:recv(S, 0, ?T) of
        {ok, B} when is_binary(B), byte_size(B) > 0 ->
            recv_until_closed(Mod, S, [B | Acc]);
        Other ->
            {iolist_to_binary(lists:reverse(Acc)), Other}
    end.

%% recv(S, 0) until Len bytes have come; returns them.
recv_total(Mod, S, Len) ->
    recv_total(Mod, S, Len, []).
recv_total(_Mod, _S, Len, Acc) when Len =< 0 ->
    iolist_to_binary(lists:reverse(Acc));
recv_total(Mod, S, Len, Acc) ->
    case Mod:recv(S, 0, ?T) of
        {ok, B} when is_binary(B), byte_size(B) > 0 ->
            recv_total(Mod, S, Len - byte_size(B), [B | Acc]);
        Other ->
            error({recv_total, Other, got, iolist_size(Acc), missing, Len})
    end.

%% Active-mode messages for S until {ssl_closed, S}; returns
%% {DataPieces, Final} without concatenating, so callers can check types.
collect_active(S, Timeout) ->
    collect_active(S, Timeout, []).
collect_active(S, Timeout, Acc) ->
    receive
        {ssl, S, Data} -> collect_active(S, Timeout, [Data | Acc]);
        {ssl_closed, S} = M -> {lists:reverse(Acc), M};
        {ssl_error, S, _} = M -> {lists:reverse(Acc), M}
    after Timeout -> {lists:reverse(Acc), timeout}
    end.

%% Sends Data cut into pieces of the given sizes (cycled).
send_chunks(Mod, S, Data, Sizes) ->
    send_chunks(Mod, S, Data, Sizes, Sizes).
send_chunks(_Mod, _S, <<>>, _, _) ->
    ok;
send_chunks(Mod, S, Data, [], All) ->
    send_chunks(Mod, S, Data, All, All);
send_chunks(Mod, S, Data, [N | Ns], All) ->
    Len = min(N, byte_size(Data)),
    <<Chunk:Len/binary, Rest/binary>> = Data,
    case Mod:send(S, Chunk) of
        ok -> send_chunks(Mod, S, Rest, Ns, All);
        Error -> Error
    end.

%% Chunk sizes around TLS record boundaries (16384) and odd sizes.
chunk_sizes(bulk) -> [65536];
chunk_sizes(mixed) -> [1, 100, 16383, 16384, 16385, 65536, 3, 40000, 131072, 7].

flush() ->
    receive _ -> flush() after 0 -> ok end.

%% Options: Overrides ++ Base without the Base entries they replace
%% (`binary' / `list' count as {mode, _}), so no option appears twice.
merge_opts(Overrides, Base) ->
    Keys = [opt_key(O) || O <- Overrides],
    Overrides ++ [O || O <- Base, not lists:member(opt_key(O), Keys)].

opt_key(binary) -> mode;
opt_key(list) -> mode;
opt_key({K, _}) -> K;
opt_key(Other) -> Other.

%% Fails with the first differing offset instead of printing megabytes.
assert_same(Expected, Expected) ->
    ok;
assert_same(Expected, Got) when is_binary(Expected), is_binary(Got) ->
    ct:fail({data_differs, #{expected_size => byte_size(Expected),
                             got_size => byte_size(Got),
                             first_difference => first_diff(Expected, Got, 0)}});
assert_same(Expected, Got) ->
    ct:fail({not_equal, Expected, Got}).

first_diff(<<A, RA/binary>>, <<A, RB/binary>>, N) -> first_diff(RA, RB, N + 1);
first_diff(_, _, N) -> N.

%% Messages about socket S still in the mailbox (there should be none).
stray_messages(S) ->
    receive
        {Tag, S} = M when Tag =:= ssl_closed; Tag =:= ssl_passive -> [M | stray_messages(S)];
        {Tag, S, _} = M when Tag =:= ssl; Tag =:= ssl_error -> [M | stray_messages(S)]
    after 0 -> []
    end.

%%% Waiting for another process -------------------------------------------

%% Returns once Pid is blocked in Where, polling its status until ?T has
%% passed (then the case fails). Where is
%%   accept: in gen_tcp's accept, where rssl's and ssl's transport_accept
%%           both wait for a client;
%%   recv:   in rssl:recv/3 waiting for the NIF's reply, or in ssl's call
%%           to its connection process (ssl:recv/3 and those it calls are
%%           tail calls, so only ssl_gen_statem:call/2 is on the stack).
wait_blocked(Pid, Where) ->
    wait_blocked(Pid, Where, erlang:monotonic_time(millisecond) + ?T).

wait_blocked(Pid, Where, Deadline) ->
    Info = process_info(Pid, [status, current_stacktrace]),
    case Info =/= undefined andalso blocked_in(Where, Info) of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({not_blocked, Where, Pid, Info});
                false -> timer:sleep(1), wait_blocked(Pid, Where, Deadline)
            end
    end.

blocked_in(Where, [{status, waiting}, {current_stacktrace, Stack}]) ->
    Frames = [{M, F, A} || {M, F, A, _} <- Stack],
    lists:any(fun(Frame) -> lists:member(Frame, Frames) end, blocked_frames(Where));
blocked_in(_Where, _Info) ->
    false.

blocked_frames(accept) -> [{prim_inet, accept0, 3}];
blocked_frames(recv) -> [{rssl, recv, 3}, {ssl_gen_statem, call, 2}].

%% PropEr loaded (Debian's erlang-proper is not on the code path by
%% default): ok, or why not.
ensure_proper() ->
    case code:ensure_loaded(proper) of
        {module, proper} ->
            ok;
        _ ->
            [code:add_pathz(D) || D <- filelib:wildcard(filename:join(code:lib_dir(), "proper-*/ebin"))],
            case code:ensure_loaded(proper) of
                {module, proper} -> ok;
                Error -> {proper_not_found, Error, "install the Debian package erlang-proper"}
            end
    end.
