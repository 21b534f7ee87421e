%% @doc Custom transports (`cb_info'): a process relays ciphertext between
%% the user's gen_tcp-like transport and a loopback TCP connection whose
%% other end the NIF adopts, so TLS and all socket semantics (active modes,
%% framing, timeouts) stay the same code as on the gen_tcp fast path.
-module(rssl_pump).

-export([start/3, info/1, transport_of/1]).

-record(pump, {module, tsock, tags, local}).

%% @doc Starts a relay for the connected transport socket `TSock' (owned by
%% the caller). Returns the gen_tcp socket the NIF is to adopt; the relay
%% owns `TSock' from then on and closes it when either side ends.
-spec start(module(), term(), {atom(), atom(), atom()}) ->
          {ok, gen_tcp:socket(), pid()} | {error, term()}.
start(Module, TSock, Tags) ->
    case loopback_pair() of
        {ok, Ours, Theirs} ->
            Caller = self(),
            Pid = spawn(fun() -> init(Caller, Module, TSock, Tags, Theirs) end),
            ok = gen_tcp:controlling_process(Theirs, Pid),
            case transfer(Module, TSock, Pid) of
                ok ->
                    Pid ! {go, self()},
                    {ok, Ours, Pid};
                Error ->
                    exit(Pid, kill),
                    gen_tcp:close(Ours),
                    Error
            end;
        Error ->
            Error
    end.

%% @doc `{Module, TransportSocket}' of a relay, for sockname/peername/opts.
-spec info(pid()) -> {ok, {module(), term()}} | {error, closed}.
info(Pid) ->
    %% The relay ends with its connection: a dead one answers at once.
    Ref = monitor(process, Pid),
    Pid ! {info, self(), Ref},
    receive
        {Ref, Info} ->
            demonitor(Ref, [flush]),
            {ok, Info};
        {'DOWN', Ref, process, Pid, _} ->
            {error, closed}
    end.

transfer(gen_tcp, TSock, Pid) -> gen_tcp:controlling_process(TSock, Pid);
transfer(Module, TSock, Pid) ->
    case erlang:function_exported(Module, controlling_process, 2) of
        true -> Module:controlling_process(TSock, Pid);
        false -> ok
    end.

%% Two ends of a loopback TCP connection, both binary and passive.
loopback_pair() ->
    Opts = [binary, {active, false}, {packet, raw}, {nodelay, true}],
    case gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}, {backlog, 1} | Opts]) of
        {ok, L} ->
            {ok, Port} = inet:port(L),
            Result = case gen_tcp:connect({127, 0, 0, 1}, Port, Opts) of
                         {ok, Ours} ->
                             case gen_tcp:accept(L, 5000) of
                                 {ok, Theirs} -> {ok, Ours, Theirs};
                                 Error -> gen_tcp:close(Ours), Error
                             end;
                         Error -> Error
                     end,
            gen_tcp:close(L),
            Result;
        Error ->
            Error
    end.

init(Caller, Module, TSock, Tags, Local) ->
    receive {go, Caller} -> ok end,
    ok = inet:setopts(Local, [{active, once}]),
    ok = setopts(Module, TSock, [{active, once}]),
    loop(#pump{module = Module, tsock = TSock, tags = Tags, local = Local}).

loop(P = #pump{module = M, tsock = TSock, tags = {Data, Closed, Error}, local = Local}) ->
    receive
        {tcp, Local, Bytes} ->
            case M:send(TSock, Bytes) of
                ok ->
                    ok = inet:setopts(Local, [{active, once}]),
                    loop(P);
                {error, _} ->
                    stop(P)
            end;
        {tcp_closed, Local} ->
            stop(P);
        {tcp_error, Local, _} ->
            stop(P);
        {Data, TSock, Bytes} ->
            case gen_tcp:send(Local, Bytes) of
                ok ->
                    case setopts(M, TSock, [{active, once}]) of
                        ok ->
                            loop(P);
                        {error, _} ->
                            %% The transport is gone without telling: end
                            %% the stream for the NIF side all the same.
                            _ = gen_tcp:shutdown(Local, write),
                            drain_local(P)
                    end;
                {error, _} ->
                    stop(P)
            end;
        {Closed, TSock} ->
            _ = gen_tcp:shutdown(Local, write),
            drain_local(P);
        {Error, TSock, _Reason} ->
            stop(P);
        {info, From, Ref} ->
            From ! {Ref, {M, TSock}},
            loop(P)
    end.

%% The transport is closed: let the NIF side read to the end, then stop.
drain_local(P = #pump{local = Local}) ->
    receive
        {tcp, Local, _} ->
            _ = inet:setopts(Local, [{active, once}]),
            drain_local(P);
        {info, From, Ref} ->
            From ! {Ref, {P#pump.module, P#pump.tsock}},
            drain_local(P);
        _ ->
            stop(P)
    after 30000 ->
        stop(P)
    end.

stop(#pump{module = M, tsock = TSock, local = Local}) ->
    gen_tcp:close(Local),
    _ = (catch M:close(TSock)),
    ok.

setopts(gen_tcp, Sock, Opts) -> inet:setopts(Sock, Opts);
setopts(Module, Sock, Opts) -> Module:setopts(Sock, Opts).

%% `{ok, {Module, TransportSocket}}' for a connection over a custom
%% transport, `none' for the gen_tcp fast path.
-spec transport_of(rssl:sslsocket()) -> {ok, {module(), term()}} | none | {error, closed}.
transport_of(Socket) ->
    case rssl_nif:transport(Socket) of
        undefined -> none;
        Pump -> info(Pump)
    end.
