%% A gen_tcp-like transport for the cb_info tests:
%%   {cb_info, {rssl_test_transport, tt_data, tt_closed, tt_error}}
%% (OTP's ssl derives the passive tag tt_data_passive from the data tag).
%%
%% It wraps gen_tcp and counts what goes through it, and it has its own
%% message tags, so a TLS implementation can only work with it by really
%% using the module: sending through send/2 and taking data from
%% {tt_data, Sock, Data} messages (or recv/3).
%%
%% A connection is {rssl_tt, Relay, Port}: Port is the gen_tcp socket,
%% owned by the Relay process, which reads it and delivers to the owner
%% with inet's active semantics (false | true | once | N, then
%% {tt_data_passive, Sock}); send/2 writes to Port directly. A listen
%% socket is the gen_tcp listen port itself (OTP's ssl monitors it with
%% inet:monitor/1, so it has to be a real socket).
%%
%% stats/0 gives the totals since reset_stats/0: bytes sent and received
%% through the module, and the number of connects, accepts, closes and
%% send calls.
-module(rssl_test_transport).

-export([connect/3, connect/4, listen/2, accept/1, accept/2,
         send/2, recv/2, recv/3, setopts/2, getopts/2, getstat/1, getstat/2,
         peername/1, sockname/1, port/1, controlling_process/2,
         close/1, shutdown/2]).
-export([stats/0, reset_stats/0, inject_error/2, tags/0, last_socket/0]).

-define(COUNTERS, [sent, received, connects, accepts, closes, sends]).
-define(HIGH, 65536).   % stop reading from the kernel above this much buffered

tags() -> {?MODULE, tt_data, tt_closed, tt_error}.

%%% Statistics --------------------------------------------------------------

counters() ->
    case persistent_term:get({?MODULE, counters}, undefined) of
        undefined ->
            C = counters:new(length(?COUNTERS), [write_concurrency]),
            persistent_term:put({?MODULE, counters}, C),
            C;
        C -> C
    end.

count(Name, N) ->
    counters:add(counters(), index(Name), N).

index(Name) -> index(Name, ?COUNTERS, 1).
index(Name, [Name | _], I) -> I;
index(Name, [_ | T], I) -> index(Name, T, I + 1).

stats() ->
    C = counters(),
    maps:from_list([{Name, counters:get(C, index(Name))} || Name <- ?COUNTERS]).

reset_stats() ->
    C = counters(),
    [counters:put(C, index(Name), 0) || Name <- ?COUNTERS],
    ok.

%%% gen_tcp API -------------------------------------------------------------

connect(Host, Port, Opts) ->
    connect(Host, Port, Opts, infinity).

connect(Host, Port, Opts, Timeout) ->
    {Emulated, Inet} = split_opts(Opts),
    case check_emulated(Emulated) of
        ok ->
            case gen_tcp:connect(Host, Port, tcp_opts(Inet), Timeout) of
                {ok, Tcp} ->
                    count(connects, 1),
                    {ok, start_relay(Tcp, proplists:get_value(active, Emulated, true))};
                Error ->
                    Error
            end;
        Error ->
            Error
    end.

listen(Port, Opts) ->
    {Emulated, Inet} = split_opts(Opts),
    case check_emulated(Emulated) of
        ok ->
            gen_tcp:listen(Port, tcp_opts(Inet));
        Error ->
            Error
    end.

accept(L) ->
    accept(L, infinity).

accept(L, Timeout) when is_port(L) ->
    case gen_tcp:accept(L, Timeout) of
        {ok, Tcp} ->
            count(accepts, 1),
            {ok, start_relay(Tcp, false)};
        Error ->
            Error
    end.

send({rssl_tt, _Relay, Tcp}, Data) ->
    count(sends, 1),
    %% Counted before the bytes can reach the peer, so a test that has seen
    %% them arrive finds them counted.
    Size = iolist_size(Data),
    count(sent, Size),
    case gen_tcp:send(Tcp, Data) of
        ok -> ok;
        Error -> count(sent, -Size), Error
    end;
send(L, _Data) when is_port(L) ->
    {error, enotconn}.

recv(Sock, Len) ->
    recv(Sock, Len, infinity).

recv({rssl_tt, Relay, _}, Len, Timeout) ->
    call(Relay, {recv, Len, Timeout});
recv(L, _Len, _Timeout) when is_port(L) ->
    {error, enotconn}.

setopts({rssl_tt, Relay, Tcp}, Opts) ->
    {Emulated, Inet} = split_opts(Opts),
    case check_emulated(Emulated) of
        ok ->
            case inet:setopts(Tcp, Inet) of
                ok ->
                    case lists:keyfind(active, 1, lists:reverse(Emulated)) of
                        {active, A} -> call(Relay, {active, A});
                        false -> ok
                    end;
                Error ->
                    Error
            end;
        Error ->
            Error
    end;
setopts(L, Opts) when is_port(L) ->
    {Emulated, Inet} = split_opts(Opts),
    case check_emulated(Emulated) of
        ok -> inet:setopts(L, Inet);
        Error -> Error
    end.

getopts({rssl_tt, Relay, Tcp}, Names) ->
    getopts(Tcp, Names, fun() -> call(Relay, active) end);
getopts(L, Names) when is_port(L) ->
    getopts(L, Names, fun() -> false end).

getopts(Tcp, Names, Active) ->
    {Mine, Inet} = lists:partition(fun is_emulated/1, Names),
    case inet:getopts(Tcp, Inet) of
        {ok, InetValues} ->
            Values = [{N, emulated_value(N, Active)} || N <- Mine] ++ InetValues,
            {ok, [Opt || N <- Names, {_, _} = Opt <- [lists:keyfind(N, 1, Values)]]};
        Error ->
            Error
    end.

emulated_value(active, Active) -> Active();
emulated_value(mode, _) -> binary;
emulated_value(packet, _) -> 0;
emulated_value(header, _) -> 0;
emulated_value(packet_size, _) -> 0.

getstat(Sock) ->
    getstat(Sock, inet:stats()).

getstat(Sock, Names) ->
    inet:getstat(tcp(Sock), Names).

peername(Sock) -> inet:peername(tcp(Sock)).
sockname(Sock) -> inet:sockname(tcp(Sock)).
port(Sock) -> inet:port(tcp(Sock)).

controlling_process({rssl_tt, Relay, _}, Pid) when is_pid(Pid) ->
    call(Relay, {controlling_process, Pid});
controlling_process(L, Pid) when is_port(L) ->
    gen_tcp:controlling_process(L, Pid).

close({rssl_tt, Relay, _}) ->
    count(closes, 1),
    case call(Relay, close) of
        {error, closed} -> ok;
        Other -> Other
    end;
close(L) when is_port(L) ->
    gen_tcp:close(L).

shutdown(Sock, How) ->
    gen_tcp:shutdown(tcp(Sock), How).

%% Test hook: the relay sends {tt_error, Sock, Reason} to the owner and
%% closes the connection, as a transport failure would.
inject_error({rssl_tt, Relay, _}, Reason) ->
    call(Relay, {inject_error, Reason}).

%%% Options -------------------------------------------------------------------

is_emulated(N) -> lists:member(N, [active, mode, packet, header, packet_size]).

split_opts(Opts) ->
    Norm = [case O of
                binary -> {mode, binary};
                list -> {mode, list};
                _ -> O
            end || O <- Opts],
    lists:partition(fun({K, _}) -> is_emulated(K); (_) -> false end, Norm).

%% The relay always reads raw binary data: only those settings are taken.
check_emulated([]) -> ok;
check_emulated([{mode, binary} | T]) -> check_emulated(T);
check_emulated([{packet, P} | T]) when P =:= 0; P =:= raw -> check_emulated(T);
check_emulated([{header, 0} | T]) -> check_emulated(T);
check_emulated([{packet_size, 0} | T]) -> check_emulated(T);
check_emulated([{active, A} | T]) when is_boolean(A); A =:= once; is_integer(A) -> check_emulated(T);
check_emulated([_ | _]) -> {error, einval}.

tcp_opts(Inet) ->
    [binary, {active, false}, {packet, raw} | Inet].

tcp({rssl_tt, _, Tcp}) -> Tcp;
tcp(L) when is_port(L) -> L.

%%% The relay -----------------------------------------------------------------

start_relay(Tcp, Active) ->
    Owner = self(),
    Relay = spawn(fun() -> relay_init(Owner) end),
    ok = gen_tcp:controlling_process(Tcp, Relay),
    Sock = {rssl_tt, Relay, Tcp},
    Relay ! {start, Sock, Active},
    persistent_term:put({?MODULE, last}, Sock),
    Sock.

%% The connection made last by connect/4 or accept/2 (the suites use one
%% at a time): for looking at the transport socket under a TLS socket.
last_socket() ->
    persistent_term:get({?MODULE, last}, undefined).

call(Relay, Req) ->
    Ref = monitor(process, Relay),
    Relay ! {call, self(), Ref, Req},
    receive
        {Ref, Reply} ->
            demonitor(Ref, [flush]),
            Reply;
        {'DOWN', Ref, process, Relay, _} ->
            {error, closed}
    end.

-record(r, {sock, tcp, owner, mon, active = false, buf = <<>>,
            closed = false,        % false | closed | {error, Reason}
            closed_sent = false, reading = false, waiter}).

relay_init(Owner) ->
    receive
        {start, {rssl_tt, _, Tcp} = Sock, Active} ->
            R = #r{sock = Sock, tcp = Tcp, owner = Owner,
                   mon = monitor(process, Owner), active = Active},
            relay_loop(deliver(R))
    end.

relay_loop(#r{tcp = Tcp, sock = Sock} = R) ->
    receive
        {tcp, Tcp, Data} ->
            count(received, byte_size(Data)),
            relay_loop(deliver(R#r{buf = <<(R#r.buf)/binary, Data/binary>>, reading = false}));
        {tcp_closed, Tcp} ->
            relay_loop(deliver(R#r{closed = closed, reading = false}));
        {tcp_error, Tcp, Reason} ->
            relay_loop(deliver(R#r{closed = {error, Reason}, reading = false}));
        {'DOWN', Mon, process, _, _} when Mon =:= R#r.mon ->
            gen_tcp:close(Tcp);
        {call, From, Ref, Req} ->
            case handle_call(Req, From, Ref, R) of
                {stop, Reply} ->
                    gen_tcp:close(Tcp),
                    From ! {Ref, Reply};
                {reply, Reply, R1} ->
                    From ! {Ref, Reply},
                    relay_loop(deliver(R1));
                {noreply, R1} ->
                    relay_loop(deliver(R1))
            end;
        {recv_timeout, Ref} ->
            case R#r.waiter of
                {From, WRef, _Len, Ref} ->
                    From ! {WRef, {error, timeout}},
                    relay_loop(deliver(R#r{waiter = undefined}));
                _ ->
                    relay_loop(R)
            end;
        _Other ->
            _ = Sock,
            relay_loop(R)
    end.

handle_call(close, _From, _Ref, _R) ->
    {stop, ok};
handle_call(active, _From, _Ref, R) ->
    {reply, R#r.active, R};
handle_call({active, A}, _From, _Ref, R) ->
    case set_active(R#r.active, A) of
        error ->
            {reply, {error, einval}, R};
        New ->
            %% {active, N} reaching 0 by setopts: passive message (inet).
            is_integer(A) andalso New =:= false
                andalso send_owner(R, {tt_data_passive, R#r.sock}),
            {reply, ok, R#r{active = New}}
    end;
handle_call({controlling_process, Pid}, From, _Ref, R) ->
    case From =:= R#r.owner of
        true ->
            demonitor(R#r.mon, [flush]),
            {reply, ok, R#r{owner = Pid, mon = monitor(process, Pid)}};
        false ->
            {reply, {error, not_owner}, R}
    end;
handle_call({recv, _Len, _Timeout}, _From, _Ref, #r{active = A} = R) when A =/= false ->
    {reply, {error, einval}, R};
handle_call({recv, _Len, _Timeout}, _From, _Ref, #r{waiter = W} = R) when W =/= undefined ->
    {reply, {error, ealready}, R};
handle_call({recv, Len, Timeout}, From, Ref, R) ->
    TRef = make_ref(),
    case Timeout of
        infinity -> ok;
        _ -> erlang:send_after(Timeout, self(), {recv_timeout, TRef})
    end,
    {noreply, R#r{waiter = {From, Ref, Len, TRef}}};
handle_call({inject_error, Reason}, _From, _Ref, R) ->
    send_owner(R, {tt_error, R#r.sock, Reason}),
    {stop, ok}.

set_active(_, A) when is_boolean(A); A =:= once -> A;
set_active(Old, N) when is_integer(N), N >= -32768, N =< 32767 ->
    New = case Old of
              Old when is_integer(Old) -> Old + N;
              _ -> N
          end,
    if
        New > 32767 -> error;
        New =< 0 -> false;
        true -> New
    end;
set_active(_, _) -> error.

send_owner(#r{owner = Owner}, Msg) ->
    Owner ! Msg.

%% Hands buffered data to a waiting recv or, when active, to the owner;
%% reports the close when everything is delivered; keeps reading from the
%% kernel while there is room.
deliver(#r{waiter = {From, Ref, Len, _}, buf = Buf, closed = Closed} = R) ->
    if
        Len =:= 0, Buf =/= <<>> ->
            From ! {Ref, {ok, Buf}},
            deliver(R#r{waiter = undefined, buf = <<>>});
        Len > 0, byte_size(Buf) >= Len ->
            <<Data:Len/binary, Rest/binary>> = Buf,
            From ! {Ref, {ok, Data}},
            deliver(R#r{waiter = undefined, buf = Rest});
        Closed =/= false ->
            From ! {Ref, closed_reply(Closed)},
            deliver(R#r{waiter = undefined});
        true ->
            read_more(R)
    end;
deliver(#r{active = false} = R) ->
    read_more(R);
deliver(#r{buf = Buf, active = A, sock = Sock} = R) when Buf =/= <<>> ->
    send_owner(R, {tt_data, Sock, Buf}),
    R1 = R#r{buf = <<>>},
    case A of
        true ->
            deliver(R1);
        once ->
            deliver(R1#r{active = false});
        1 ->
            send_owner(R, {tt_data_passive, Sock}),
            deliver(R1#r{active = false});
        N ->
            deliver(R1#r{active = N - 1})
    end;
deliver(#r{closed = Closed, closed_sent = false, sock = Sock} = R) when Closed =/= false ->
    case Closed of
        closed -> send_owner(R, {tt_closed, Sock});
        {error, Reason} -> send_owner(R, {tt_error, Sock, Reason})
    end,
    R#r{closed_sent = true};
deliver(R) ->
    read_more(R).

closed_reply(closed) -> {error, closed};
closed_reply({error, _} = E) -> E.

read_more(#r{closed = false, reading = false, buf = Buf, tcp = Tcp} = R)
  when byte_size(Buf) < ?HIGH ->
    case inet:setopts(Tcp, [{active, once}]) of
        ok -> R#r{reading = true};
        {error, _} -> deliver(R#r{closed = closed})
    end;
read_more(R) ->
    R.
