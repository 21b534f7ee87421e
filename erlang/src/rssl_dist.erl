%% @doc Erlang distribution over rssl: `erl -proto_dist rssl' (IPv4) or
%% `-proto_dist rssl6' (IPv6, rssl6_dist). Configured as OTP's inet_tls:
%% `-rssl_dist_optfile File' holding `[{server, Opts}, {client, Opts}]', or
%% `-rssl_dist_opt server_certfile F client_verify verify_peer ...' flags
%% (the names and values `-ssl_dist_opt' takes). Without `versions' the
%% connections use TLS 1.2, as inet_tls does in OTP 25.
%%
%% A connection is one controller process, which owns the rssl socket.
%% After the distribution handshake it reads the socket itself, through a
%% gen_tcp port on a duplicate of the descriptor (`{active, N}', raw),
%% which the schedulers poll themselves as they poll inet_tcp's; each
%% `{tcp, Port, Ciphertext}' goes to a NIF call that decrypts it on the
%% controller's scheduler and returns the whole packets ({packet, 4} is
%% framed by the NIF), which go straight to erlang:dist_ctrl_put_data/2;
%% no other thread takes part. What
%% erlang:dist_ctrl_get_data/1 returns goes straight to the NIF's send,
%% which encrypts and writes it in the calling scheduler (rssl's poller
%% thread writes only what the socket did not take at once).
-module(rssl_dist).

-export([childspecs/0, select/1, address/0, is_node_name/1,
         listen/1, listen/2, accept/1, accept_connection/5,
         setup/5, close/1, setopts/2, getopts/2]).

%% For rssl6_dist: the same with another TCP driver (inet6_tcp).
-export([fam_select/2, fam_address/1, fam_listen/3, fam_accept/2,
         fam_accept_connection/6, fam_setup/6]).

-include_lib("kernel/include/net_address.hrl").
-include_lib("kernel/include/dist.hrl").
-include_lib("kernel/include/dist_util.hrl").

-define(DRIVER, inet_tcp).
-define(PROTOCOL, rssl).
%% As OTP's dist controllers: signals off the heap, and nearly nothing
%% live between messages, so full sweeps are cheap.
-define(CTRL_SPAWN_OPTS, [{message_queue_data, off_heap}, {fullsweep_after, 0}]).

%%% Carrier interface ------------------------------------------------------

-spec childspecs() -> {ok, []}.
childspecs() -> {ok, []}.

-spec select(node()) -> boolean().
select(Node) -> fam_select(?DRIVER, Node).
-spec fam_select(module(), node()) -> boolean().
fam_select(Driver, Node) -> inet_tcp_dist:gen_select(Driver, Node).

-spec address() -> #net_address{}.
address() -> fam_address(?DRIVER).
-spec fam_address(module()) -> #net_address{}.
fam_address(Driver) ->
    (inet_tcp_dist:gen_address(Driver))#net_address{protocol = ?PROTOCOL}.

-spec is_node_name(node() | string()) -> boolean().
is_node_name(Node) -> dist_util:is_node_name(Node).

-spec listen(string() | atom()) -> {ok, {port(), #net_address{}, 1..3}} | {error, term()}.
listen(Name) ->
    {ok, Host} = inet:gethostname(),
    listen(Name, Host).

-spec listen(string() | atom(), inet:hostname()) ->
          {ok, {port(), #net_address{}, 1..3}} | {error, term()}.
listen(Name, Host) -> fam_listen(?DRIVER, Name, Host).

%% The options are read here, when the distribution starts: a bad file or
%% flag stops the node from starting rather than every connection failing.
-spec fam_listen(module(), string() | atom(), inet:hostname()) ->
          {ok, {port(), #net_address{}, 1..3}} | {error, term()}.
fam_listen(Driver, Name, Host) ->
    case rssl_dist_options:load() of
        ok ->
            case inet_tcp_dist:gen_listen(Driver, Name, Host) of
                {ok, {Socket, Address, Creation}} ->
                    %% Accepted sockets inherit it: without it the
                    %% handshakes' small writes wait for delayed ACKs.
                    ok = inet:setopts(Socket, [nodelay()]),
                    {ok, {Socket, Address#net_address{protocol = ?PROTOCOL}, Creation}};
                Error ->
                    Error
            end;
        Error ->
            Error
    end.

-spec close(port()) -> ok.
close(Listen) -> gen_tcp:close(Listen).

%% Options of the listen socket (net_kernel:setopts(new, Opts)).
-spec setopts(port(), [gen_tcp:option()]) -> ok | {error, term()}.
setopts(Listen, Opts) ->
    case framing_options(Opts) of
        [] -> inet:setopts(Listen, Opts);
        Bad -> {error, {badopts, Bad}}
    end.

-spec getopts(port(), [atom()]) -> {ok, [gen_tcp:option()]} | {error, term()}.
getopts(Listen, Opts) -> inet:getopts(Listen, Opts).

%%% Accepting ----------------------------------------------------------------

-spec accept(port()) -> pid().
accept(Listen) -> fam_accept(?DRIVER, Listen).

%% The acceptor hands each TCP connection to a process of its own for the
%% TLS handshake, so one slow or hostile peer does not hold up the others.
-spec fam_accept(module(), port()) -> pid().
fam_accept(Driver, Listen) ->
    Kernel = self(),
    spawn_opt(fun() -> accept_loop(Driver, Listen, Kernel) end, [link, {priority, max}]).

accept_loop(Driver, Listen, Kernel) ->
    case Driver:accept(Listen) of
        {ok, Socket} ->
            Worker = spawn_opt(fun() -> accept_one(Driver, Kernel) end,
                               dist_util:net_ticker_spawn_options()),
            _ = case gen_tcp:controlling_process(Socket, Worker) of
                    ok -> Worker ! {socket, Socket};
                    _ -> _ = gen_tcp:close(Socket), exit(Worker, kill)
                end,
            accept_loop(Driver, Listen, Kernel);
        Error ->
            exit(Error)
    end.

accept_one(Driver, Kernel) ->
    Socket = receive {socket, S} -> S end,
    wait_for_code_server(),
    _ = inet:setopts(Socket, [nodelay()]),
    %% Named now: a failed handshake closes the socket.
    Peer = peer_text(Socket),
    Opts = [binary, {active, false}, {packet, 4} | rssl_dist_options:get(server)],
    case rssl:handshake(Socket, Opts, net_kernel:connecttime()) of
        {ok, Tls} ->
            %% The distribution handshake's small messages must not wait
            %% for delayed ACKs.
            _ = rssl:setopts(Tls, [nodelay()]),
            Ctrl = spawn_controller(Tls),
            %% A peer gone already: the exit ends the controller (linked).
            ok =:= rssl:controlling_process(Tls, Ctrl) orelse exit(connection_closed),
            Kernel ! {accept, self(), Ctrl, Driver:family(), ?PROTOCOL},
            receive
                {Kernel, controller, Pid} ->
                    Pid ! {self(), controller};
                {Kernel, unsupported_protocol} ->
                    exit(unsupported_protocol)
            end;
        {error, {options, _}} = Error ->
            %% Our own configuration is wrong: say so.
            logger:error("Cannot accept rssl distribution connection: ~s~n",
                         [rssl:format_error(Error)]),
            gen_tcp:close(Socket);
        {error, Reason} ->
            logger:notice("rssl distribution: TLS handshake with ~s failed: ~s~n",
                          [Peer, rssl:format_error(Reason)]),
            gen_tcp:close(Socket)
    end.

peer_text(Socket) ->
    case inet:peername(Socket) of
        {ok, {Ip, Port}} -> io_lib:format("~s:~w", [inet:ntoa(Ip), Port]);
        _ -> "a peer that left"
    end.

%% The handshake loads modules; early in boot the code server may not be up.
wait_for_code_server() ->
    case whereis(code_server) of
        undefined -> timer:sleep(10), wait_for_code_server();
        _ -> ok
    end.

-spec accept_connection(pid(), pid(), node(), [node()], non_neg_integer()) -> pid().
accept_connection(AcceptPid, Ctrl, MyNode, Allowed, SetupTime) ->
    fam_accept_connection(?DRIVER, AcceptPid, Ctrl, MyNode, Allowed, SetupTime).

-spec fam_accept_connection(module(), pid(), pid(), node(), [node()], non_neg_integer()) -> pid().
fam_accept_connection(Driver, AcceptPid, Ctrl, MyNode, Allowed, SetupTime) ->
    Kernel = self(),
    spawn_opt(fun() -> do_accept(Driver, Kernel, AcceptPid, Ctrl, MyNode, Allowed, SetupTime) end,
              dist_util:net_ticker_spawn_options()).

do_accept(Driver, Kernel, AcceptPid, Ctrl, MyNode, Allowed, SetupTime) ->
    MRef = erlang:monitor(process, AcceptPid),
    receive
        {AcceptPid, controller} ->
            erlang:demonitor(MRef, [flush]),
            Timer = dist_util:start_timer(SetupTime),
            link(Ctrl),
            HSData = (hs_data(Driver, Ctrl))#hs_data{kernel_pid = Kernel,
                                                     this_node = MyNode,
                                                     timer = Timer,
                                                     this_flags = 0,
                                                     allowed = Allowed},
            dist_util:handshake_other_started(HSData);
        {'DOWN', MRef, process, AcceptPid, _} ->
            ?shutdown2(MyNode, connection_setup_failed)
    end.

%%% Connecting -----------------------------------------------------------------

-spec setup(node(), hidden | normal, node(), shortnames | longnames, non_neg_integer()) -> pid().
setup(Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    fam_setup(?DRIVER, Node, Type, MyNode, LongOrShortNames, SetupTime).

-spec fam_setup(module(), node(), hidden | normal, node(), shortnames | longnames,
                non_neg_integer()) -> pid().
fam_setup(Driver, Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    Kernel = self(),
    spawn_opt(fun() -> do_setup(Driver, Kernel, Node, Type, MyNode, LongOrShortNames, SetupTime) end,
              dist_util:net_ticker_spawn_options()).

do_setup(Driver, Kernel, Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    {Name, Host} = split_node(Driver, Node, LongOrShortNames),
    Timer = dist_util:start_timer(SetupTime),
    {Ip, Port, Version} = resolve(Driver, Node, Name, Host),
    dist_util:reset_timer(Timer),
    Opts = connect_options([binary, {active, false}, {packet, 4}, Driver:family(),
                            nodelay(), {server_name_indication, Host}
                            | rssl_dist_options:get(client)]),
    case rssl:connect(Ip, Port, Opts, net_kernel:connecttime()) of
        {ok, Tls} ->
            _ = rssl:setopts(Tls, [nodelay()]),
            Ctrl = spawn_controller(Tls),
            ok =:= rssl:controlling_process(Tls, Ctrl)
                orelse ?shutdown2(Node, {ssl_connect_failed, Ip, Port, {error, closed}}),
            link(Ctrl),
            HSData = (hs_data(Driver, Ctrl))#hs_data{kernel_pid = Kernel,
                                                     other_node = Node,
                                                     this_node = MyNode,
                                                     timer = Timer,
                                                     this_flags = 0,
                                                     other_version = Version,
                                                     request_type = Type},
            dist_util:handshake_we_started(HSData);
        Error ->
            ?shutdown2(Node, {ssl_connect_failed, Ip, Port, Error})
    end.

%% The address and port of Node, from the EPMD module (which may know
%% both, as a custom one can), else from the host name and EPMD.
resolve(Driver, Node, Name, Host) ->
    Epmd = net_kernel:epmd_module(),
    _ = code:ensure_loaded(Epmd),
    Address = case erlang:function_exported(Epmd, address_please, 3) of
                  true -> Epmd:address_please(Name, Host, Driver:family());
                  false -> Driver:getaddr(Host)
              end,
    case Address of
        {ok, Ip, Port, Version} ->
            {Ip, Port, Version};
        {ok, Ip} ->
            case Epmd:port_please(Name, Ip) of
                {port, Port, Version} -> {Ip, Port, Version};
                Other -> ?shutdown2(Node, {port_please_failed, Epmd, Name, Ip, Other})
            end;
        Other ->
            ?shutdown2(Node, {getaddr_failed, Driver, Host, Other})
    end.

%% A node name's parts, checked against -sname/-name as net_kernel would.
split_node(Driver, Node, LongOrShortNames) ->
    case dist_util:split_node(Node) of
        {node, Name, Host} ->
            case {string:split(Host, ".", all), LongOrShortNames} of
                {[_], longnames} ->
                    case Driver:parse_address(Host) of
                        {ok, _} -> {Name, Host};
                        _ ->
                            logger:error("** System running to use fully qualified hostnames **~n"
                                         "** Hostname ~ts is illegal **~n", [Host]),
                            ?shutdown2(Node, {not_longnames, Host})
                    end;
                {[_, _ | _], shortnames} ->
                    logger:error("** System NOT running to use fully qualified hostnames **~n"
                                 "** Hostname ~ts is illegal **~n", [Host]),
                    ?shutdown2(Node, {not_shortnames, Host});
                _ ->
                    {Name, Host}
            end;
        _ ->
            logger:error("** Nodename ~p illegal **~n", [Node]),
            ?shutdown2(Node, {illegal_node_name, Node})
    end.

connect_options(Opts) ->
    case application:get_env(kernel, inet_dist_connect_options) of
        {ok, ConnectOpts} -> ConnectOpts ++ Opts;
        _ -> Opts
    end.

nodelay() ->
    case application:get_env(kernel, dist_nodelay) of
        {ok, false} -> {nodelay, false};
        _ -> {nodelay, true}
    end.

%%% The distribution handshake's view of a connection -------------------------

hs_data(Driver, Ctrl) ->
    Tls = call_ctrl(Ctrl, socket),
    Same = fun(C) when C =:= Ctrl -> ok end,
    #hs_data{socket = Ctrl,
             f_send = fun(C, Packet) -> Same(C), rssl:send(Tls, Packet) end,
             f_recv = fun(C, Length, Timeout) ->
                              Same(C),
                              case rssl:recv(Tls, Length, Timeout) of
                                  {ok, Bin} -> {ok, binary_to_list(Bin)};
                                  Error -> Error
                              end
                      end,
             f_setopts_pre_nodeup = fun(C) -> Same(C) end,
             f_setopts_post_nodeup = fun(C) -> Same(C), rssl:setopts(Tls, [nodelay()]) end,
             f_getll = fun(C) -> Same(C), {ok, Ctrl} end,
             f_address = fun(C, Node) -> Same(C), net_address(Driver, Tls, Node) end,
             f_handshake_complete =
                 fun(C, Node, DHandle) -> Same(C), call_ctrl(Ctrl, {handshake_complete, Node, DHandle}) end,
             mf_tick = fun(C) -> Same(C), Ctrl ! tick, ok end,
             mf_getstat = fun(C) -> Same(C), getstat(Tls) end,
             mf_setopts = fun(C, Opts) ->
                                  Same(C),
                                  case framing_options(Opts) of
                                      [] -> rssl:setopts(Tls, Opts);
                                      Bad -> {error, {badopts, Bad}}
                                  end
                          end,
             mf_getopts = fun(C, Opts) -> Same(C), rssl:getopts(Tls, Opts) end}.

net_address(Driver, Tls, Node) ->
    case {rssl:peername(Tls), dist_util:split_node(Node)} of
        {{ok, Address}, {node, _, Host}} ->
            #net_address{address = Address, host = Host,
                         protocol = ?PROTOCOL, family = Driver:family()};
        {{ok, _}, _} -> {error, no_node};
        {Error, _} -> Error
    end.

%% {ok, Received, Sent, Pending}: net_kernel's ticker takes a connection
%% whose received count stands still for a whole tick time as dead.
getstat(Tls) ->
    case rssl:getstat(Tls, [recv_cnt, send_cnt, send_pend]) of
        {ok, [{recv_cnt, R}, {send_cnt, W}, {send_pend, P}]} -> {ok, R, W, P};
        Error -> Error
    end.

%% The framing belongs to the carrier.
framing_options(Opts) ->
    [Opt || {K, _} = Opt <- Opts, K =:= active orelse K =:= deliver orelse K =:= packet].

%%% The controller ---------------------------------------------------------------

%% Linked to its starter until dist_util's process links it: whichever of
%% them ends, the connection ends, and the socket dies with its owner.
spawn_controller(Tls) ->
    spawn_opt(fun() -> handshaking(Tls) end, [link | ?CTRL_SPAWN_OPTS]).

call_ctrl(Ctrl, Request) ->
    Ref = erlang:monitor(process, Ctrl),
    Ctrl ! {Ref, self(), Request},
    receive
        {Ref, Reply} ->
            erlang:demonitor(Ref, [flush]),
            Reply;
        {'DOWN', Ref, process, Ctrl, Reason} ->
            exit({dist_controller_exit, Reason})
    end.

%% During the distribution handshake dist_util sends and receives itself
%% (passive); the controller only answers questions. A controller whose
%% handshake process never came (net_kernel gave up on it before linking)
%% ends by itself, closing the socket.
handshaking(Tls) ->
    receive
        {Ref, From, socket} ->
            From ! {Ref, Tls},
            handshaking(Tls);
        {Ref, From, {handshake_complete, _Node, DHandle}} ->
            %% Still passive: what the handshake left buffered is handed
            %% out first, by the first feed below.
            Port = open_reader(Tls),
            From ! {Ref, ok},
            _ = erlang:dist_ctrl_set_opt(DHandle, get_size, true),
            ok = erlang:dist_ctrl_get_data_notification(DHandle),
            feed(Tls, DHandle, <<>>),
            running(Tls, Port, DHandle);
        tick ->
            handshaking(Tls)
    after 2 * net_kernel:connecttime() ->
        exit(handshake_timeout)
    end.

%% The reading port is `{active, true}': a descriptor that is never
%% deselected is polled by the schedulers themselves (the VM's scheduler
%% pollset), while `{active, N}' takes it out of that set each time the
%% port turns passive, and each packet then waits for the poll thread.
%% The mailbox is bounded by hand: past this many queued port messages
%% the port is paused (`{active, false}') until the controller has
%% caught up.
-define(MAX_QUEUED, 64).
%% Ciphertext the port reads at a time (its buffer): bounds one feed's work.
-define(READ_BUFFER, 131072).

%% The port that reads the connection from now on: a gen_tcp port on a
%% duplicate of its socket, which never writes (sends go through the NIF
%% on the connection's own descriptor). A port's descriptor is polled by
%% the schedulers themselves, so a packet wakes the controller's
%% scheduler directly. A port opened on a descriptor does not close it:
%% a process watching the port closes the duplicate once the port is
%% gone (with the controller, linked), so the descriptor leaves the poll
%% set before its number can be reused.
open_reader(Tls) ->
    Fd = case rssl_nif:dist_read_port(Tls) of
             {ok, F} -> F;
             {error, _} -> exit(connection_closed)
         end,
    Family = case rssl:sockname(Tls) of
                 {ok, {Ip, _}} when tuple_size(Ip) =:= 8 -> inet6;
                 _ -> inet
             end,
    case gen_tcp:fdopen(Fd, [Family, binary, {packet, raw}, {active, true},
                             {buffer, ?READ_BUFFER}]) of
        {ok, Port} ->
            _ = spawn(fun() -> close_after(Port, Tls, Fd) end),
            Port;
        {error, Reason} ->
            _ = rssl_nif:dist_close_dup(Tls, Fd),
            exit({reader, Reason})
    end.

close_after(Port, Tls, Fd) ->
    Ref = erlang:monitor(port, Port),
    receive
        {'DOWN', Ref, port, Port, _} -> rssl_nif:dist_close_dup(Tls, Fd)
    end.

%% What arrives is read as soon as it comes, even while a send waits for
%% the socket to drain (wait_sent/4), so two nodes sending to each other
%% at full speed cannot block each other. The poller tells the end only
%% when a write finds the peer gone (`ssl_closed', `ssl_error'); the
%% port tells it otherwise.
running(Tls, Port, DHandle) ->
    receive
        {tcp, Port, Data} ->
            feed(Tls, DHandle, Data),
            ok = throttle(Port),
            running(Tls, Port, DHandle);
        dist_data ->
            send_queued(Tls, Port, DHandle),
            running(Tls, Port, DHandle);
        tick ->
            send(Tls, Port, DHandle, 0, [<<>>]),
            running(Tls, Port, DHandle);
        Other ->
            other(Tls, Port, DHandle, Other),
            running(Tls, Port, DHandle)
    end.

%% The rest of what the controller may get, while running or waiting.
other(Tls, Port, DHandle, Message) ->
    case Message of
        {resume_reading, Port} ->
            _ = erase(rssl_reading_paused),
            _ = inet:setopts(Port, [{active, true}]),
            ok;
        {tcp_closed, Port} ->
            feed_done(rssl_nif:dist_feed_end(Tls), Tls, DHandle),
            exit(connection_closed);
        {tcp_error, Port, _} ->
            feed_done(rssl_nif:dist_feed_end(Tls), Tls, DHandle),
            exit(connection_closed);
        {ssl_closed, _} ->
            exit(connection_closed);
        {ssl_error, _, Reason} ->
            exit({ssl_error, Reason});
        {Ref, From, socket} ->
            From ! {Ref, Tls},
            ok;
        _ ->
            ok
    end.

%% Pauses the reading port while too many messages wait; a note to self
%% at the end of the queue resumes it once they are handled. The port's
%% messages stay bounded, and its descriptor leaves the schedulers' poll
%% set only under such overload. (A flag in the process dictionary keeps
%% one pause at a time: the loops' arguments are the carrier's.)
throttle(Port) ->
    case get(rssl_reading_paused) =:= undefined
        andalso erlang:process_info(self(), message_queue_len) of
        {message_queue_len, Queued} when Queued > ?MAX_QUEUED ->
            _ = inet:setopts(Port, [{active, false}]),
            put(rssl_reading_paused, true),
            self() ! {resume_reading, Port},
            ok;
        _ ->
            ok
    end.

%% One port read's packets go to the VM. A feed that stopped at its
%% budget (large packets) goes on at once; a whole packet over the copy
%% limit is copied out on a dirty scheduler.
feed(Tls, DHandle, Data) ->
    feed_done(rssl_nif:dist_feed(Tls, Data), Tls, DHandle).

feed_done({ok, Packets}, _Tls, DHandle) ->
    put_all(DHandle, Packets);
feed_done({more, Packets}, Tls, DHandle) ->
    put_all(DHandle, Packets),
    feed(Tls, DHandle, <<>>);
feed_done({large, Packets}, Tls, DHandle) ->
    put_all(DHandle, Packets),
    feed_done(rssl_nif:dist_feed_dirty(Tls, <<>>), Tls, DHandle);
feed_done({closed, Packets}, _Tls, DHandle) ->
    put_all(DHandle, Packets),
    exit(connection_closed);
feed_done({error, Reason, Packets}, _Tls, DHandle) ->
    put_all(DHandle, Packets),
    exit({ssl_error, Reason}).

put_all(DHandle, [Data | Rest]) ->
    put_data(DHandle, Data),
    put_all(DHandle, Rest);
put_all(_DHandle, []) ->
    ok.

%% An empty packet is a tick: it counts as received, there is nothing to put.
%% The VM refuses data (badarg) once the connection is being taken down:
%% the controller ends quietly, as its links end it anyway.
put_data(_DHandle, <<>>) -> ok;
put_data(DHandle, Data) ->
    try erlang:dist_ctrl_put_data(DHandle, Data)
    catch error:badarg -> exit(connection_closed)
    end.

%% What the VM has queued goes out in batches of about ?BATCH bytes, each
%% one NIF call and one write: small messages share TLS records and
%% system calls, as inet_tcp's port shares writes.
-define(BATCH, 65536).
%% Batches bigger than this are encrypted on a dirty scheduler.
-define(DIRTY_SEND, 262144).

send_queued(Tls, Port, DHandle) ->
    case collect(DHandle, 0, []) of
        {0, []} ->
            try erlang:dist_ctrl_get_data_notification(DHandle)
            catch error:badarg -> exit(connection_closed)
            end;
        {Size, Packets} ->
            send(Tls, Port, DHandle, Size, lists:reverse(Packets)),
            send_queued(Tls, Port, DHandle)
    end.

collect(_DHandle, Size, Acc) when Size >= ?BATCH ->
    {Size, Acc};
collect(DHandle, Size, Acc) ->
    try erlang:dist_ctrl_get_data(DHandle) of
        none -> {Size, Acc};
        {Len, Data} -> collect(DHandle, Size + Len, [Data | Acc])
    catch
        error:badarg -> exit(connection_closed)
    end.

%% The NIF's send, as rssl:send/2 but for the wait: a send that finds the
%% backlog high waits here for the socket to drain, reading what arrives
%% meanwhile; the distribution has no send timeout (ticks find dead peers).
send(Tls, Port, DHandle, Size, Packets) ->
    Tag = erlang:unique_integer(),
    Result = case Size > ?DIRTY_SEND of
                 true -> rssl_nif:send_packets_dirty(Tls, Packets, Tag);
                 false -> rssl_nif:send_packets(Tls, Packets, Tag)
             end,
    case Result of
        ok -> ok;
        wait -> wait_sent(Tls, Port, DHandle, Tag);
        {error, Reason} -> exit({send_error, Reason})
    end.

wait_sent(Tls, Port, DHandle, Tag) ->
    receive
        {rssl_reply, Tag, ok} ->
            ok;
        {rssl_reply, Tag, {error, Reason}} ->
            exit({send_error, Reason});
        {tcp, Port, Data} ->
            feed(Tls, DHandle, Data),
            ok = throttle(Port),
            wait_sent(Tls, Port, DHandle, Tag);
        {resume_reading, Port} = Resume ->
            other(Tls, Port, DHandle, Resume),
            wait_sent(Tls, Port, DHandle, Tag);
        {tcp_closed, Port} = Closed ->
            other(Tls, Port, DHandle, Closed);
        {tcp_error, Port, _} = Error ->
            other(Tls, Port, DHandle, Error);
        {ssl_closed, _} ->
            exit(connection_closed);
        {ssl_error, _, Reason} ->
            exit({ssl_error, Reason})
    end.
