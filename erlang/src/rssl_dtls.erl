%% @doc DTLS over UDP (`{protocol, dtls}' in rssl:connect/3,4): the UDP
%% socket is opened and connected with gen_udp, then the NIF adopts its
%% file descriptor, as it does a TCP socket's. The NIF sends each datagram
%% OpenSSL makes with one send(2), hands each record received to the owner
%% as one message (or one recv/2 result), and drives the handshake's
%% retransmission timer on its poller thread.
%%
%% A server (rssl:listen/2 with `{protocol, dtls}') serves any number of
%% peers on one UDP port. A listener process reads the datagrams of peers
%% it has no connection for. A ClientHello without a valid cookie gets a
%% HelloVerifyRequest and leaves nothing behind (the cookie is an HMAC of
%% the peer's address under a secret of the listener, RFC 6347 4.2.1), so a
%% spoofed source address costs one answer and no state. A ClientHello
%% with a valid cookie gets its own UDP socket, bound to the listener's
%% address and port (SO_REUSEADDR) and connected to the peer: the kernel
%% then hands that peer's datagrams to it rather than to the listener (a
%% connected socket is the better match), and transport_accept/2 takes it
%% with that ClientHello, for the NIF to adopt as a client's socket. Up to
%% ?BACKLOG such peers wait for transport_accept/2; more are not answered
%% (they retransmit). A copy of a ClientHello that already got its socket
%% (doubled by the network, or retransmitted before the peer's socket was
%% connected) gets no second one: the newer socket would take the peer's
%% datagrams from the first. A peer that goes silent is dropped by its
%% handshake's timeout, as a TLS one is.
%%
%% Options are those of TLS, with DTLS versions (`''dtlsv1.2'' by default,
%% as OTP 25; `dtlsv1' when asked for), and without the packet framing options
%% (`packet', `header', `packet_size'), which OTP's DTLS refuses too.
-module(rssl_dtls).

-export([is_dtls/1, connect/4, listen/2, transport_accept/2, controlling_process/2,
         close/1]).

-include("rssl_socket.hrl").

%% OTP 25 offers DTLS 1.2 alone unless `dtlsv1' is asked for.
-define(DEFAULT_VERSIONS, ['dtlsv1.2']).
-define(VERSIONS, ['dtlsv1.2', dtlsv1]).
-define(TLS_VERSIONS, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1]).
-define(RECBUF, 212992).
-define(BACKLOG, 128).
%% The handshakes (peer and ClientHello random) given a socket lately that
%% the listener remembers, to know late copies of their ClientHello.
-define(KNOWN, 2 * ?BACKLOG).
%% The listener reads this many datagrams, then re-arms.
-define(ACTIVE_N, 50).
%% Socket options that frame a stream: OTP's DTLS refuses them.
-define(FRAMING, [packet, header, packet_size]).

%% @doc Whether an option list asks for DTLS (`{protocol, dtls}'; the first
%% `protocol' option counts, as in OTP).
-spec is_dtls(term()) -> boolean().
%% An improper list is no DTLS request: the TLS path reports it.
is_dtls([{protocol, dtls} | _]) -> true;
is_dtls([{protocol, _} | _]) -> false;
is_dtls([_ | Rest]) -> is_dtls(Rest);
is_dtls(_) -> false.

%% @doc rssl:connect/4 with `{protocol, dtls}'.
-spec connect(rssl:host(), inet:port_number(), [rssl:tls_client_option()], timeout()) ->
          {ok, rssl:sslsocket()} | {error, rssl:reason()}.
connect(Host, Port, Options, Timeout) ->
    case split(client, Options) of
        {ok, #{tcp := Inet, emulated := Emulated, tls := Tls, sni := SNI}} ->
            Deadline = rssl_handshake:deadline(Timeout),
            case open(Host, Port, Inet) of
                {ok, Udp} -> client_handshake(Udp, Host, SNI, Tls, Emulated, Deadline);
                Error -> Error
            end;
        Error ->
            Error
    end.

%% The session saved for this server (the host as given and the port, as
%% for TLS) is offered, unless `{reuse_sessions, false}'; the options'
%% `reuse_session' and `{reuse_sessions, save}' apply as for TLS.
client_handshake(Udp, Host, SNI, Tls0, Emulated, Deadline) ->
    {Peer0, Tls1} = rssl_options:hostname_check(rssl_options:peer(Host, SNI, Tls0), Tls0),
    {Session, Tls} = rssl_client_session:by_hand(Tls1),
    case rssl_handshake:config(client, Tls) of
        {ok, Config} ->
            Peer = rssl_client_session:peer(Peer0, Session, inet:peername(Udp), Host),
            case adopt(Udp, Config, Peer, Emulated) of
                {ok, Socket} ->
                    Result = rssl_handshake:run(Socket, Deadline, Tls#{role => client}),
                    rssl_client_session:save(Session, Result);
                Error -> Error
            end;
        Error ->
            gen_udp:close(Udp),
            Error
    end.

%% A UDP socket connected to the peer: the kernel then passes up only the
%% peer's datagrams, and send(2) needs no address. Its receive buffer is
%% the kernel's default (gen_udp's 16 KiB drops a burst of a few dozen
%% datagrams before the poller reads them) unless the options set one.
open(Host, Port, Inet) ->
    try gen_udp:open(0, [binary, {active, false}, {recbuf, ?RECBUF} | Inet]) of
        {ok, Udp} ->
            case gen_udp:connect(Udp, Host, Port) of
                ok -> {ok, Udp};
                Error -> gen_udp:close(Udp), Error
            end;
        {error, einval} ->
            {error, {options, {socket_options, Inet}}};
        Error ->
            Error
    catch
        _:badarg -> {error, {options, {socket_options, Inet}}}
    end.

%% The NIF takes a duplicate of the fd; the port goes.
adopt(Udp, Config, Peer, Emulated) ->
    adopt(Udp, Config, Peer, Emulated, undefined, <<>>).

adopt(Udp, Config, Peer, Emulated, Pending, Initial) ->
    Result = case prim_inet:getfd(Udp) of
                 {ok, Fd} -> rssl_nif:adopt(Fd, Config, Peer, Emulated, Pending,
                                            undefined, Initial,
                                            erlang:system_info(scheduler_id));
                 Error -> Error
             end,
    gen_udp:close(Udp),
    Result.

%%% Server ------------------------------------------------------------------

%% @doc rssl:listen/2 with `{protocol, dtls}'.
-spec listen(inet:port_number(), [rssl:tls_server_option()]) ->
          {ok, rssl:sslsocket()} | {error, rssl:reason()}.
listen(Port, Options) ->
    case split(server, Options) of
        {ok, #{tcp := Inet0, emulated := Emulated, tls := Tls}} ->
            Inet = [O || O <- Inet0, not is_backlog(O)],
            case rssl_handshake:config(server, Tls) of
                {ok, Config} ->
                    case start_listener(Port, Inet, Config) of
                        {ok, Udp, Pid} ->
                            Cell = rssl_nif:cell_new(Emulated),
                            {ok, #sslsocket{listen = #listen{tcp = Udp, config = Config,
                                                             emulated = Cell, tls = Tls,
                                                             transport = {?MODULE, Pid}}}};
                        Error ->
                            Error
                    end;
                Error ->
                    Error
            end;
        Error ->
            Error
    end.

%% gen_udp has no backlog: the listener's is ?BACKLOG.
is_backlog({backlog, _}) -> true;
is_backlog(_) -> false.

%% @doc rssl:transport_accept/2 on a DTLS listen socket: the next peer
%% whose ClientHello carried a valid cookie, as a connection ready for
%% handshake/1,2,3.
-spec transport_accept(rssl:sslsocket(), timeout()) ->
          {ok, rssl:sslsocket()} | {error, rssl:reason()}.
transport_accept(#sslsocket{listen = #listen{config = Config, emulated = Cell, tls = Tls,
                                             transport = {?MODULE, Pid}}}, Timeout) ->
    Ref = monitor(process, Pid),
    Pid ! {accept, self(), Ref},
    receive
        {Ref, {ok, Udp, Hello}} ->
            demonitor(Ref, [flush]),
            adopt(Udp, Config, #{dtls_hello => true}, rssl_nif:cell_get(Cell), Tls, Hello);
        {Ref, {error, _} = Error} ->
            demonitor(Ref, [flush]),
            Error;
        {'DOWN', Ref, process, Pid, _} ->
            {error, closed}
    after Timeout ->
            %% The listener answers the cancel; a peer handed over before
            %% it saw the cancel is dropped (it retransmits, and comes back).
            %% A listener found gone here was closed (a 'DOWN' can come
            %% after a zero timeout even when it had stopped before).
            Pid ! {cancel, Ref},
            Result = receive
                         {Ref, cancelled} -> {error, timeout};
                         {'DOWN', Ref, process, Pid, _} -> {error, closed}
                     end,
            receive {Ref, {ok, Udp, _}} -> gen_udp:close(Udp) after 0 -> ok end,
            demonitor(Ref, [flush]),
            Result
    end.

%% The listener process opens the UDP socket (it is its owner: the
%% datagrams come to it) and serves until the socket is closed
%% (rssl:close/1 closes the port), whichever processes exit meanwhile: an
%% OTP 25 DTLS listen socket belongs to no process either (see
%% controlling_process/2).
start_listener(Port, Inet, Config) ->
    Owner = self(),
    {Pid, Ref} = spawn_monitor(fun() -> listener_init(Owner, Port, Inet, Config) end),
    receive
        {Pid, {ok, Udp}} -> demonitor(Ref, [flush]), {ok, Udp, Pid};
        {Pid, Error} -> demonitor(Ref, [flush]), Error;
        {'DOWN', Ref, process, Pid, Reason} -> {error, Reason}
    end.

listener_init(Owner, Port, Inet, Config) ->
    Opts = [binary, {active, ?ACTIVE_N}, {reuseaddr, true}, {recbuf, ?RECBUF} | Inet],
    case open_listener(Port, Opts) of
        {ok, Udp} ->
            {ok, {Ip, LPort}} = inet:sockname(Udp),
            Family = case tuple_size(Ip) of 4 -> inet; 8 -> inet6 end,
            erlang:monitor(port, Udp),
            Owner ! {self(), {ok, Udp}},
            listener_loop(#{udp => Udp, config => Config,
                            local => {Family, Ip, LPort}, inet => Inet,
                            secret => crypto:strong_rand_bytes(32),
                            hellos => queue:new(), accepters => queue:new(),
                            known => queue:new()});
        Error ->
            Owner ! {self(), Error}
    end.

open_listener(Port, Opts) ->
    try gen_udp:open(Port, Opts) of
        {error, einval} -> {error, {options, {socket_options, Opts}}};
        Result -> Result
    catch
        _:badarg -> {error, {options, {socket_options, Opts}}}
    end.

listener_loop(#{udp := Udp} = St) ->
    receive
        {udp, Udp, Ip, Port, Datagram} ->
            listener_loop(handle_datagram(Ip, Port, Datagram, St));
        {udp_passive, Udp} ->
            ok = inet:setopts(Udp, [{active, ?ACTIVE_N}]),
            listener_loop(St);
        {accept, From, Ref} ->
            listener_loop(serve(St#{accepters := queue:in({From, Ref}, maps:get(accepters, St))}));
        {cancel, Ref} ->
            Accepters = queue:filter(fun({_, R}) -> R =/= Ref end, maps:get(accepters, St)),
            _ = case [P || {P, R} <- queue:to_list(maps:get(accepters, St)), R =:= Ref] of
                [From] -> From ! {Ref, cancelled};
                [] -> ok
            end,
            listener_loop(St#{accepters := Accepters});
        {'DOWN', _, port, Udp, _} ->
            listener_stop(St);
        _ ->
            listener_loop(St)
    end.

%% Every waiting accepter gets {error, closed}; the peers not taken go.
listener_stop(#{hellos := Hellos, accepters := Accepters}) ->
    _ = [gen_udp:close(Sock) || {Sock, _} <- queue:to_list(Hellos)],
    _ = [From ! {Ref, {error, closed}} || {From, Ref} <- queue:to_list(Accepters)],
    ok.

%% A datagram from a peer with no socket of its own: a ClientHello.
handle_datagram(Ip, Port, Datagram, #{udp := Udp, config := Config, secret := Secret} = St) ->
    case rssl_nif:dtls_check_hello(Config, Secret, term_to_binary({Ip, Port}), Datagram) of
        {reply, HelloVerifyRequest} ->
            _ = gen_udp:send(Udp, Ip, Port, HelloVerifyRequest),
            St;
        ok ->
            Key = hello_key(Ip, Port, Datagram),
            Known = maps:get(known, St),
            case queue:member(Key, Known) of
                true ->
                    St;
                false ->
                    case queue:len(maps:get(hellos, St)) < ?BACKLOG of
                        true -> serve(peer_socket(Ip, Port, Datagram, Key, St));
                        false -> St
                    end
            end;
        ignore ->
            St
    end.

%% The peer's own socket, on the listener's address and port, connected to
%% it. What reached it before connect(2) (the kernel may pick it for
%% another peer's datagram until then) is dropped: those peers retransmit.
peer_socket(Ip, Port, Datagram, Key, #{local := {Family, LIp, LPort}, inet := Inet} = St) ->
    Opts = [Family, binary, {active, false}, {reuseaddr, true}, {ip, LIp},
            {recbuf, ?RECBUF} | [O || {K, _} = O <- Inet, lists:member(K, [sndbuf, recbuf, tos, tclass, priority])]],
    case gen_udp:open(LPort, Opts) of
        {ok, Sock} ->
            case gen_udp:connect(Sock, Ip, Port) of
                ok ->
                    drain(Sock),
                    St#{hellos := queue:in({Sock, Datagram}, maps:get(hellos, St)),
                        known := remember(Key, maps:get(known, St))};
                _ ->
                    gen_udp:close(Sock),
                    St
            end;
        _ ->
            St
    end.

%% A handshake is its peer's address and its ClientHello's random: the same
%% in every copy of the ClientHello (and in the one after the
%% HelloVerifyRequest), new in a new handshake from the same address.
hello_key(Ip, Port, <<22, _Version:16, _Epoch:16, _Seq:48, _RecLen:16,
                      1, _Len:24, _MsgSeq:16, 0:24, _FragLen:24,
                      _ClientVersion:16, Random:32/binary, _/binary>>) ->
    {Ip, Port, Random};
hello_key(Ip, Port, Datagram) ->
    {Ip, Port, Datagram}.

remember(Key, Known) ->
    case queue:len(Known) < ?KNOWN of
        true -> queue:in(Key, Known);
        false -> queue:in(Key, queue:drop(Known))
    end.

drain(Sock) ->
    case gen_udp:recv(Sock, 0, 0) of
        {ok, _} -> drain(Sock);
        _ -> ok
    end.

%% Hands waiting peers to waiting accepters, oldest first.
serve(#{hellos := Hellos, accepters := Accepters} = St) ->
    case {queue:out(Hellos), queue:out(Accepters)} of
        {{{value, {Sock, Hello}}, Hellos1}, {{value, {From, Ref}}, Accepters1}} ->
            _ = case gen_udp:controlling_process(Sock, From) of
                ok -> From ! {Ref, {ok, Sock, Hello}};
                _ -> gen_udp:close(Sock)
            end,
            serve(St#{hellos := Hellos1, accepters := Accepters1});
        _ ->
            St
    end.

%% The options as rssl_options splits TLS ones, with DTLS's versions and
%% refusals.
split(Role, Options) when is_list(Options) ->
    try
        Versions = versions(Options),
        Rest = [O || O <- Options, not is_versions(O), not is_gen_udp(O)],
        [throw({options, {not_supported, O}}) || {K, _} = O <- Rest,
                                                lists:member(K, ?FRAMING) orelse K =:= cb_info],
        case rssl_options:split(Role, Rest) of
            {ok, Parts = #{tls := Tls}} -> {ok, Parts#{tls := Tls#{versions => Versions}}};
            Error -> Error
        end
    catch
        throw:{options, _} = Reason -> {error, Reason}
    end;
split(_Role, Options) ->
    {error, {options, {not_a_list, Options}}}.

is_versions({versions, _}) -> true;
is_versions(_) -> false.

%% `cb_info' naming gen_udp is the transport rssl uses anyway (OTP's
%% default for DTLS); another transport module is refused.
is_gen_udp({cb_info, {gen_udp, udp, udp_closed, udp_error}}) -> true;
is_gen_udp({cb_info, {gen_udp, udp, udp_closed, udp_error, udp_passive}}) -> true;
is_gen_udp(_) -> false.

%% DTLS versions only; a TLS one is refused as OTP refuses a DTLS one
%% among TLS versions ({options, {Version, {versions, List}}}).
versions(Options) ->
    case lists:keyfind(versions, 1, [O || O <- Options, is_tuple(O)]) of
        false ->
            ?DEFAULT_VERSIONS;
        {versions, Vs} = Opt when is_list(Vs), Vs =/= [] ->
            [case lists:member(V, ?VERSIONS) of
                 true -> V;
                 false -> throw({options, {V, Opt}})
             end || V <- Vs];
        Opt ->
            throw({options, Opt})
    end.

%% @doc rssl:controlling_process/2 on a DTLS listen socket: `ok', changing
%% nothing, as OTP 25's ssl answers for its DTLS listen sockets (to any
%% caller, for any pid, even once closed): the listener belongs to no
%% process, serves whoever calls transport_accept/2, and lives until
%% close/1, whichever processes exit. The connections it hands out have
%% owners as TLS ones do.
-spec controlling_process(rssl:sslsocket(), pid()) -> ok.
controlling_process(#sslsocket{listen = #listen{transport = {?MODULE, _}}}, Pid)
  when is_pid(Pid) ->
    ok.

%% @doc rssl:close/1 on a DTLS listen socket, from any process: closes the
%% UDP port and returns once the listener has stopped, so that a
%% transport_accept/2 after it answers `{error, closed}' at once, as OTP's
%% (whose close is a call to its listener).
-spec close(rssl:sslsocket()) -> ok.
close(#sslsocket{listen = #listen{tcp = Udp, transport = {?MODULE, Pid}}}) ->
    Ref = monitor(process, Pid),
    ok = gen_udp:close(Udp),
    %% The listener stops on the port's 'DOWN' (listener_loop/1).
    receive {'DOWN', Ref, process, Pid, _} -> ok end.
