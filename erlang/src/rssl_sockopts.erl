%% setopts/2, getopts/2 and getstat/1,2 for rssl's sockets: the emulated
%% options (kept by the NIF, or for a listen socket in its cell), those inet
%% keeps in user space, and kernel ones (on the socket, or on a custom
%% transport's), with OTP's ssl's checks, order and error shapes.
-module(rssl_sockopts).

-export([setopts/2, getopts/2, getstat/1, getstat/2]).

-include("rssl_socket.hrl").

-spec setopts(rssl:sslsocket(), list()) -> ok | {error, term()}.
setopts(Socket, Options) when ?IS_CONN(Socket), is_list(Options) ->
    %% As OTP's ssl: the emulated options are checked and set first (one bad
    %% value is reported alone), then the rest goes to inet as one list.
    {Emulated, Inet} = split_options(Options),
    %% The options before a bad one still take effect, as in OTP's ssl.
    {Good, Bad} = lists:splitwith(fun valid_emulated/1, Emulated),
    case set_emulated(Socket, Good) of
        ok when Bad =:= [] -> set_inet(Socket, Inet);
        ok -> bad_emulated(Socket, hd(Bad));
        Error -> Error
    end;
setopts(#sslsocket{listen = #listen{tcp = LSock, emulated = Cell}}, Options)
  when is_list(Options) ->
    {Emulated, Inet} = split_options(Options),
    %% A listen socket takes all of them or none.
    case lists:splitwith(fun valid_emulated/1, Emulated) of
        {Checked, []} ->
            Old = rssl_nif:cell_get(Cell),
            rssl_nif:cell_set(Cell, rssl_options:override(Old, Checked)),
            %% inet keeps the rest on the listen port; accepted sockets
            %% inherit it.
            case Inet =:= [] orelse inet:setopts(LSock, Inet) of
                true -> ok;
                ok -> ok;
                {error, Reason} -> {error, {options, {socket_options, Inet, Reason}}}
            end;
        {_, [Bad | _]} ->
            {error, {options, {socket_options, Bad}}}
    end;
setopts(Socket, Options) when ?IS_CONN(Socket); is_record(Socket, sslsocket) ->
    {error, {options, {not_a_proplist, Options}}};
setopts(_, _) ->
    {error, einval}.

%% The emulated options (kept by rssl) and the rest (inet's), normalized.
split_options(Options) ->
    lists:partition(fun({Key, _}) -> rssl_options:is_emulated(Key); (_) -> false end,
                    [normalize(O) || O <- Options]).

valid_emulated(Opt) ->
    try rssl_options:emulated(Opt) of
        _ -> true
    catch
        throw:{options, _} -> false
    end.

%% An {active, N} outside -32768..32767 is refused after an
%% {ssl_passive, S} notice, as in OTP's ssl; the mode stays as it was.
bad_emulated(Socket, {active, N} = Opt) when is_integer(N) ->
    _ = rssl_nif:notify_passive(Socket),
    {error, {options, {socket_options, Opt}}};
bad_emulated(_Socket, Opt) ->
    {error, {options, {socket_options, Opt}}}.

set_emulated(_Socket, []) ->
    ok;
set_emulated(Socket, Options) ->
    case rssl_nif:setopts(Socket, Options) of
        rejected ->
            %% {active, N} past the counter's limit.
            {error, {options, {socket_options, lists:keyfind(active, 1, lists:reverse(Options))}}};
        Other ->
            Other
    end.

%% inet options: those inet keeps in user space go to the NIF, kernel ones
%% to the socket (or to a custom transport's socket). As OTP's ssl, a
%% failure names the whole list, reversed.
set_inet(_Socket, []) ->
    ok;
set_inet(Socket, Inet) ->
    Fail = {error, {options, {socket_options, lists:reverse(Inet), einval}}},
    try [check_inet(O) || O <- Inet] of
        Checked ->
            {UserSpace, Kernel} = lists:partition(
                                    fun(O) -> rssl_options:classify(O) =:= emulated end, Checked),
            case set_kernel(Socket, Kernel) of
                ok ->
                    case set_emulated(Socket, UserSpace) of
                        ok -> ok;
                        {error, closed} = Closed -> Closed;
                        _ -> Fail
                    end;
                {error, closed} = Closed -> Closed;
                _ -> Fail
            end
    catch
        throw:{options, _} -> Fail
    end.

check_inet({_, _} = Opt) ->
    case rssl_options:classify(Opt) of
        emulated -> rssl_options:inet_emulated(Opt);
        sockopt -> Opt;
        bad -> throw({options, Opt})
    end;
check_inet(Opt) ->
    throw({options, Opt}).

set_kernel(_Socket, []) ->
    ok;
set_kernel(Socket, Kernel) ->
    case rssl_pump:transport_of(Socket) of
        {ok, {Module, TSock}} ->
            case transport_setopts(Module, TSock, Kernel) of
                ok -> ok;
                {error, _} = Error -> Error
            end;
        none ->
            case rssl_nif:set_sockopts(Socket, Kernel) of
                {error, {options, _}} -> {error, einval};
                Other -> Other
            end;
        Error ->
            Error
    end.

transport_setopts(gen_tcp, Sock, Opts) -> inet:setopts(Sock, Opts);
transport_setopts(Module, Sock, Opts) -> Module:setopts(Sock, Opts).

transport_getopts(gen_tcp, Sock, Names) -> inet:getopts(Sock, Names);
transport_getopts(Module, Sock, Names) -> Module:getopts(Sock, Names).

%% @doc As OTP's ssl: values in the reverse of the asked order; a name that
%% is no option is `{error, {options, {socket_options, Name, einval}}}'.
-spec getopts(rssl:sslsocket(), list()) -> {ok, [gen_tcp:option()]} | {error, term()}.
getopts(Socket, Names) when ?IS_CONN(Socket), is_list(Names) ->
    case [N || N <- Names, option_kind(N) =:= bad] of
        [Bad | _] ->
            {error, {options, {socket_options, Bad, einval}}};
        [] ->
            case rssl_nif:getopts(Socket) of
                {error, _} = Error ->
                    Error;
                Emulated ->
                    Kernel = [N || N <- Names, option_kind(N) =:= sockopt],
                    case get_kernel(Socket, Kernel) of
                        {ok, Values} -> {ok, pick_options(Names, Emulated ++ Values)};
                        Error -> Error
                    end
            end
    end;
getopts(#sslsocket{listen = #listen{tcp = LSock, emulated = Cell}}, Names) when is_list(Names) ->
    Emulated = rssl_options:override([{packet_size, 0} | rssl_options:emulated_defaults()],
                                     rssl_nif:cell_get(Cell)),
    Inet = [N || N <- Names, not rssl_options:is_emulated(N)],
    case Inet =:= [] orelse inet:getopts(LSock, Inet) of
        true -> {ok, pick_options(Names, Emulated)};
        {ok, InetValues} -> {ok, pick_options(Names, Emulated ++ InetValues)};
        Error -> {error, {options, {socket_options, Inet, {badmatch, Error}}}}
    end;
getopts(Socket, Names) when is_record(Socket, sslsocket) ->
    {error, {options, {socket_options, Names}}};
getopts(_, _) ->
    {error, einval}.

option_kind(Name) when is_atom(Name) -> rssl_options:classify({Name, x});
option_kind(_) -> bad.

get_kernel(_Socket, []) ->
    {ok, []};
get_kernel(Socket, Kernel) ->
    case rssl_pump:transport_of(Socket) of
        {ok, {Module, TSock}} -> transport_getopts(Module, TSock, Kernel);
        none -> rssl_nif:get_sockopts(Socket, Kernel);
        Error -> Error
    end.

%% Options the socket does not have (e.g. tclass on IPv4) are left out, as
%% inet does; the order is the reverse of the names', as OTP's ssl has it.
pick_options(Names, Current) ->
    lists:reverse([Opt || N <- Names, {_, _} = Opt <- [lists:keyfind(N, 1, Current)]]).

%% @doc Byte and call counts of the socket (ciphertext, as the TCP socket
%% under OTP's ssl would report them). `{error, einval}' once closed.
-spec getstat(rssl:sslsocket()) -> {ok, [{inet:stat_option(), integer()}]} | {error, term()}.
getstat(Socket) when ?IS_CONN(Socket) ->
    case rssl_nif:getstat(Socket) of
        {error, closed} -> {error, einval};
        Other -> Other
    end;
getstat(#sslsocket{listen = #listen{tcp = LSock}}) ->
    inet:getstat(LSock);
getstat(_) ->
    {error, einval}.

-spec getstat(rssl:sslsocket(), list()) -> {ok, [{inet:stat_option(), integer()}]} | {error, term()}.
getstat(Socket, Names) when is_list(Names) ->
    case getstat(Socket) of
        {ok, All} ->
            case [N || N <- Names, not lists:keymember(N, 1, All)] of
                [] -> {ok, [lists:keyfind(N, 1, All) || N <- Names]};
                _ -> {error, einval}
            end;
        Error ->
            Error
    end;
getstat(_, _) ->
    {error, einval}.

normalize(binary) -> {mode, binary};
normalize(list) -> {mode, list};
normalize(Opt) -> Opt.

