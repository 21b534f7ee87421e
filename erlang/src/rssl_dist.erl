%% @doc Erlang distribution over rssl: `erl -proto_dist rssl' (IPv4) or
%% `-proto_dist rssl6' (IPv6, rssl6_dist). Configured as OTP's inet_tls:
%% `-rssl_dist_optfile File' holding `[{server, Opts}, {client, Opts}]', or
%% `-rssl_dist_opt server_certfile F client_verify verify_peer ...' flags
%% (the names and values `-ssl_dist_opt' takes). Without `versions' the
%% connections use TLS 1.2, as inet_tls does in OTP 25.
%%
%% After the TLS handshake (rssl's) a connection is handed to a port of
%% rssl's port driver (src/nif/dist_port.rs, in the NIF's library), and
%% the distribution runs on that port as it runs on inet_tcp's: the VM
%% writes its data into the port, which frames ({packet, 4}), encrypts
%% and sends it, and the port's socket is polled by the schedulers, which
%% decrypt what comes and hand it to the VM in the same call. No process
%% takes part in moving a message.
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
%% The port driver's name (the NIF library's) and its port_control
%% commands (as in src/nif/dist_port.rs).
-define(PORT_DRIVER, "rssl_nif").
-define(ATTACH, 1).
-define(RECV, 2).
-define(ACTIVE, 3).
-define(GETSTAT, 4).
-define(SETOPT, 5).
-define(GETOPT, 6).

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
            Kernel ! {accept, self(), Tls, Driver:family(), ?PROTOCOL},
            receive
                {Kernel, controller, Pid} ->
                    %% A peer gone already: the handshake process finds
                    %% the socket closed.
                    _ = rssl:controlling_process(Tls, Pid),
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

-spec accept_connection(pid(), rssl:sslsocket(), node(), [node()], non_neg_integer()) -> pid().
accept_connection(AcceptPid, Ctrl, MyNode, Allowed, SetupTime) ->
    fam_accept_connection(?DRIVER, AcceptPid, Ctrl, MyNode, Allowed, SetupTime).

-spec fam_accept_connection(module(), pid(), rssl:sslsocket(), node(), [node()],
                            non_neg_integer()) -> pid().
fam_accept_connection(Driver, AcceptPid, Tls, MyNode, Allowed, SetupTime) ->
    Kernel = self(),
    spawn_opt(fun() -> do_accept(Driver, Kernel, AcceptPid, Tls, MyNode, Allowed, SetupTime) end,
              dist_util:net_ticker_spawn_options()).

do_accept(Driver, Kernel, AcceptPid, Tls, MyNode, Allowed, SetupTime) ->
    MRef = erlang:monitor(process, AcceptPid),
    receive
        {AcceptPid, controller} ->
            erlang:demonitor(MRef, [flush]),
            Timer = dist_util:start_timer(SetupTime),
            {Port, Address} = case carrier_port(Tls) of
                                  {ok, P, A} -> {P, A};
                                  {error, _} -> ?shutdown2(MyNode, connection_setup_failed)
                              end,
            HSData = (hs_data(Driver, Port, Address))#hs_data{kernel_pid = Kernel,
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
            {Carrier, Address} =
                case carrier_port(Tls) of
                    {ok, P, A} -> {P, A};
                    {error, Reason} ->
                        ?shutdown2(Node, {ssl_connect_failed, Ip, Port, {error, Reason}})
                end,
            HSData = (hs_data(Driver, Carrier, Address))#hs_data{kernel_pid = Kernel,
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

%%% The connection's port --------------------------------------------------------

%% Hands the TLS connection to a new port of rssl's driver, owned by (and
%% linked to) the calling process, which runs the distribution handshake
%% and then stays as the connection's process: `{ok, Port, PeerAddress}'.
carrier_port(Tls) ->
    case {rssl:peername(Tls), load_driver()} of
        {{ok, Address}, ok} ->
            %% For connection_information/1 (the handshake's details stay
            %% in the socket's resource).
            put(rssl_dist_socket, Tls),
            Port = open_port({spawn_driver, ?PORT_DRIVER}, [binary]),
            {Id, Ticket} = rssl_nif:dist_ticket(Tls),
            Attached = control(Port, ?ATTACH, <<Id:64>>),
            %% The ticket lets the connection go if we die before this.
            _ = keep(Ticket),
            case Attached of
                {ok, _} ->
                    {ok, Port, Address};
                Error ->
                    _ = (catch erlang:port_close(Port)),
                    carrier_failed(Error)
            end;
        {{error, _} = Error, _} ->
            carrier_failed(Error);
        {_, Error} ->
            carrier_failed(Error)
    end.

%% A peer that left meanwhile is not worth a report.
carrier_failed({error, closed} = Error) ->
    Error;
carrier_failed(Error) ->
    logger:notice("rssl distribution: no port for the connection: ~p~n", [Error]),
    Error.

keep(Term) -> Term.

%% The driver is the NIF's library, loaded for as long as this process
%% (the connection's) holds it.
load_driver() ->
    case erl_ddll:load_driver(rssl_nif:priv_dir(), ?PORT_DRIVER) of
        ok -> ok;
        {error, Reason} -> {error, {rssl_dist_driver, erl_ddll:format_error(Reason)}}
    end.

%% {ok, Reply} or {error, Reason}, from the driver's replies (a first
%% byte 0 or 1) or a port that has closed.
control(Port, Command, Arg) ->
    try erlang:port_control(Port, Command, Arg) of
        <<0, Reply/binary>> -> {ok, Reply};
        <<1, Reason/binary>> -> {error, binary_to_atom(Reason)}
    catch
        error:badarg -> {error, closed}
    end.

%%% The distribution handshake's view of a connection -------------------------

hs_data(Driver, Port, Address) ->
    #hs_data{socket = Port,
             f_send = fun send/2,
             f_recv = fun(P, _Length, Timeout) -> recv(P, Timeout) end,
             f_setopts_pre_nodeup = fun(_) -> ok end,
             f_setopts_post_nodeup =
                 fun(P) ->
                         case control(P, ?ACTIVE, <<>>) of
                             {ok, _} -> ok;
                             Error -> Error
                         end
                 end,
             f_getll = fun(P) -> {ok, P} end,
             f_address = fun(_, Node) -> net_address(Driver, Address, Node) end,
             mf_tick = fun tick/1,
             mf_getstat = fun getstat/1,
             mf_setopts = fun setopts_on/2,
             mf_getopts = fun getopts_on/2}.

send(Port, Data) ->
    try erlang:port_command(Port, Data) of
        true -> ok
    catch
        error:badarg -> {error, closed}
    end.

%% Before the node is up the port is passive: a packet it holds comes in
%% the reply, else as the next port message.
recv(Port, Timeout) ->
    case control(Port, ?RECV, <<>>) of
        {ok, <<1, Packet/binary>>} ->
            {ok, binary_to_list(Packet)};
        {ok, <<>>} ->
            receive
                {Port, {data, Packet}} -> {ok, binary_to_list(Packet)}
            after Timeout ->
                {error, timeout}
            end;
        Error ->
            Error
    end.

%% An empty packet, sent even while the port is busy.
tick(Port) ->
    try erlang:port_command(Port, <<>>, [force]) of
        true -> ok
    catch
        error:badarg -> {error, closed}
    end.

net_address(Driver, Address, Node) ->
    case dist_util:split_node(Node) of
        {node, _, Host} ->
            #net_address{address = Address, host = Host,
                         protocol = ?PROTOCOL, family = Driver:family()};
        _ -> {error, no_node}
    end.

%% {ok, Received, Sent, Pending}: packets received and sent, bytes not
%% yet sent. net_kernel's ticker takes a connection whose received count
%% stands still for a whole tick time as dead.
getstat(Port) ->
    case control(Port, ?GETSTAT, <<>>) of
        {ok, <<R:64, W:64, P:64>>} -> {ok, R, W, P};
        Error -> Error
    end.

%% net_kernel:setopts/2 and getopts/2 on a connection: the socket options
%% (the framing belongs to the carrier).
setopts_on(Port, Opts) ->
    case framing_options(Opts) of
        [] -> setopts_each(Port, Opts);
        Bad -> {error, {badopts, Bad}}
    end.

setopts_each(Port, [Opt | Rest]) ->
    case sockopt(Opt) of
        {ok, Arg} ->
            case control(Port, ?SETOPT, Arg) of
                {ok, _} -> setopts_each(Port, Rest);
                Error -> Error
            end;
        error ->
            {error, einval}
    end;
setopts_each(_Port, []) ->
    ok.

getopts_on(Port, Names) -> getopts_each(Port, Names, []).

getopts_each(Port, [Name | Rest], Acc) ->
    case sockopt_code(Name) of
        {ok, Code} ->
            case control(Port, ?GETOPT, <<Code:8, 0:64>>) of
                {ok, <<Value:32/signed, Extra:32/signed>>} ->
                    getopts_each(Port, Rest, [{Name, sockopt_value(Name, Value, Extra)} | Acc]);
                Error ->
                    Error
            end;
        error ->
            {error, einval}
    end;
getopts_each(_Port, [], Acc) ->
    {ok, lists:reverse(Acc)}.

%% <<Code:8, Value:32/signed, Extra:32/signed>> for the driver. A value
%% that does not fit is refused (einval), where inet would wrap it.
-define(IS_INT32(X), (is_integer(X) andalso X >= -16#80000000 andalso X =< 16#7fffffff)).
sockopt({linger, {OnOff, Secs}}) when is_boolean(OnOff), ?IS_INT32(Secs) ->
    {ok, <<8, (bool(OnOff)):32/signed, Secs:32/signed>>};
sockopt({Name, Value}) when Name =:= nodelay, is_boolean(Value);
                            Name =:= keepalive, is_boolean(Value) ->
    {ok, Code} = sockopt_code(Name),
    {ok, <<Code:8, (bool(Value)):32/signed, 0:32>>};
sockopt({Name, Value}) when Name =/= nodelay, Name =/= keepalive, Name =/= linger,
                            ?IS_INT32(Value) ->
    case sockopt_code(Name) of
        {ok, Code} -> {ok, <<Code:8, Value:32/signed, 0:32>>};
        error -> error
    end;
sockopt(_) ->
    error.

sockopt_code(nodelay) -> {ok, 1};
sockopt_code(keepalive) -> {ok, 2};
sockopt_code(sndbuf) -> {ok, 3};
sockopt_code(recbuf) -> {ok, 4};
sockopt_code(tos) -> {ok, 5};
sockopt_code(tclass) -> {ok, 6};
sockopt_code(priority) -> {ok, 7};
sockopt_code(linger) -> {ok, 8};
sockopt_code(_) -> error.

sockopt_value(Name, V, _) when Name =:= nodelay; Name =:= keepalive -> V =/= 0;
sockopt_value(linger, V, Secs) -> {V =/= 0, Secs};
sockopt_value(_, V, _) -> V.

bool(true) -> 1;
bool(false) -> 0.

%% The framing belongs to the carrier.
framing_options(Opts) ->
    [Opt || {K, _} = Opt <- Opts, K =:= active orelse K =:= deliver orelse K =:= packet].
