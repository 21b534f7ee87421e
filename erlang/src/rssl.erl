%% @doc OTP's `ssl' API over OpenSSL. Replace `ssl' by `rssl' in a call and
%% it behaves the same: same arguments, results, errors and messages
%% (`{ssl, S, Data}', `{ssl_closed, S}', `{ssl_error, S, Reason}',
%% `{ssl_passive, S}').
%%
%% TCP is set up with gen_tcp; the NIF then adopts the file descriptor and
%% does all TLS I/O on its own threads, delivering straight to the owner.
-module(rssl).

-export([start/0, start/1, stop/0,
         listen/2, transport_accept/1, transport_accept/2,
         handshake/1, handshake/2, handshake/3,
         ssl_accept/1, ssl_accept/2, ssl_accept/3,
         connect/2, connect/3, connect/4,
         send/2, recv/2, recv/3,
         close/1, close/2, shutdown/2,
         controlling_process/2,
         setopts/2, getopts/2, getstat/1, getstat/2,
         sockname/1, peername/1, peercert/1,
         connection_info/1, connection_information/1, connection_information/2,
         negotiated_protocol/1, prf/5, renegotiate/1, update_keys/2,
         cipher_suites/0, cipher_suites/1, cipher_suites/2, cipher_suites/3,
         filter_cipher_suites/2, prepend_cipher_suites/2, append_cipher_suites/2,
         suite_to_str/1, suite_to_openssl_str/1, str_to_suite/1, tls_version/1,
         groups/0, groups/1, eccs/0, eccs/1,
         versions/0, clear_pem_cache/0, format_error/1]).

-record(sslsocket, {handle, listen}).
%% A connection:    #sslsocket{handle = NifResource, listen = undefined}
%% A listen socket: #sslsocket{handle = undefined, listen = #listen{}}
-record(listen, {tcp, config, emulated, tls, transport}).
%% `transport' is `{Module, Tags}' from cb_info ({gen_tcp, _} by default).
%% `emulated' is a NIF cell holding the emulated options accepted sockets
%% start with; setopts/2 on the listen socket changes it.

-type sslsocket() :: #sslsocket{}.
-export_type([sslsocket/0]).

-define(IS_CONN(S), (is_record(S, sslsocket) andalso S#sslsocket.handle =/= undefined)).
-define(IS_TIMEOUT(T), (T =:= infinity orelse (is_integer(T) andalso T >= 0))).
%% Sends bigger than this are encrypted on a dirty scheduler.
-define(DIRTY_SEND, 262144).

%%% Application ----------------------------------------------------------

start() -> start(temporary).

start(Type) ->
    case application:ensure_all_started(rssl, Type) of
        {ok, _} -> ok;
        Error -> Error
    end.

stop() ->
    application:stop(rssl).

%%% Listen and accept ----------------------------------------------------

listen(_Port, Options) when not is_list(Options) ->
    {error, {options, {not_a_list, Options}}};
listen(Port, Options) ->
    with_parts(server, Options,
      fun(#{tcp := Tcp, emulated := Emulated, tls := Tls,
            transport := {Module, _} = Transport}) ->
          case config(server, Tls) of
              {ok, Config} ->
                  case transport_call(fun() -> Module:listen(Port, tcp_options(Tcp)) end, Tcp) of
                      {ok, LSock} ->
                          Cell = rssl_nif:cell_new(Emulated),
                          {ok, #sslsocket{listen = #listen{tcp = LSock, config = Config,
                                                           emulated = Cell, tls = Tls,
                                                           transport = Transport}}};
                      Error -> Error
                  end;
              Error -> Error
          end
      end).

transport_accept(ListenSocket) ->
    transport_accept(ListenSocket, infinity).

transport_accept(#sslsocket{listen = #listen{tcp = LSock, config = Config,
                                            emulated = Cell, tls = Tls,
                                            transport = {Module, _} = Transport}},
                 Timeout) when ?IS_TIMEOUT(Timeout) ->
    case Module:accept(LSock, Timeout) of
        {ok, TSock} -> adopt(Transport, TSock, Config, #{}, rssl_nif:cell_get(Cell), Tls);
        Error -> Error
    end;
transport_accept(_, _) ->
    {error, einval}.

handshake(Socket) -> handshake(Socket, infinity).

handshake(Socket, Timeout) when ?IS_CONN(Socket), ?IS_TIMEOUT(Timeout) ->
    run_handshake(Socket, deadline(Timeout));
handshake(Socket, Options) when is_list(Options) ->
    handshake(Socket, Options, infinity);
handshake(_Socket, _Timeout) ->
    {error, einval}.

%% @doc With an sslsocket from transport_accept: extra options, then the
%% handshake. With a gen_tcp socket: upgrade it (server side).
handshake(Socket, Options, Timeout) when ?IS_CONN(Socket), is_list(Options),
                                         ?IS_TIMEOUT(Timeout) ->
    case Options of
        [] ->
            run_handshake(Socket, deadline(Timeout));
        _ ->
            case rssl_nif:pending_options(Socket) of
                Tls0 when is_map(Tls0) ->
                    with_parts(server, Options,
                      fun(#{tls := Tls, emulated := Emulated}) ->
                          Merged = maps:merge(Tls0, Tls),
                          case config(server, Merged) of
                              {ok, Config} ->
                                  ok = rssl_nif:set_config(Socket, Config, #{}),
                                  ok = rssl_nif:setopts(Socket, Emulated),
                                  run_handshake(Socket, deadline(Timeout));
                              Error ->
                                  rssl_nif:close(Socket),
                                  Error
                          end
                      end);
                undefined ->
                    {error, einval}
            end
    end;
handshake(TSock, Options, Timeout) when not ?IS_CONN(TSock), is_list(Options),
                                       ?IS_TIMEOUT(Timeout) ->
    with_parts(server, Options,
      fun(#{emulated := Emulated, tls := Tls, transport := Transport}) ->
          case config(server, Tls) of
              {ok, Config} ->
                  {Emulated1, Initial} = upgrade_prepare(Transport, TSock, Emulated),
                  case adopt(Transport, TSock, Config, #{}, Emulated1, undefined, Initial) of
                      {ok, Socket} -> run_handshake(Socket, deadline(Timeout));
                      Error -> Error
                  end;
              Error -> Error
          end
      end);
handshake(_, _, _) ->
    {error, einval}.

ssl_accept(Socket) -> ssl_accept(Socket, infinity).

ssl_accept(Socket, Timeout) when ?IS_CONN(Socket), ?IS_TIMEOUT(Timeout) ->
    to_ssl_accept(handshake(Socket, Timeout));
ssl_accept(Socket, Options) when is_list(Options) ->
    ssl_accept(Socket, Options, infinity);
ssl_accept(_, _) ->
    {error, einval}.

ssl_accept(Socket, Options, Timeout) when ?IS_CONN(Socket) ->
    to_ssl_accept(handshake(Socket, Options, Timeout));
ssl_accept(Socket, Options, Timeout) ->
    handshake(Socket, Options, Timeout).

%% ssl_accept/1,2 on an sslsocket answer `ok', not `{ok, Socket}'.
to_ssl_accept({ok, _}) -> ok;
to_ssl_accept(Other) -> Other.

%%% Connect -------------------------------------------------------------

%% @doc Upgrades a connected gen_tcp socket (client side).
connect(Tcp, Options) -> connect(Tcp, Options, infinity).

connect(Host, Port, Options) when is_integer(Port) ->
    connect(Host, Port, Options, infinity);
connect(TSock, Options, Timeout) when is_list(Options), ?IS_TIMEOUT(Timeout) ->
    with_parts(client, Options,
      fun(#{emulated := Emulated, tls := Tls, sni := SNI, transport := Transport}) ->
          Host = case transport_call(Transport, peername, TSock) of
                     {ok, {Address, _}} -> Address;
                     _ -> undefined
                 end,
          {Emulated1, Initial} = upgrade_prepare(Transport, TSock, Emulated),
          client_handshake(Transport, TSock, Host, SNI, Tls, Emulated1, Initial,
                           deadline(Timeout))
      end);
connect(_TSock, _Options, _Timeout) ->
    {error, einval}.

connect(_Host, _Port, Options, _Timeout) when not is_list(Options) ->
    {error, {options, {not_a_list, Options}}};
connect(Host, Port, Options, Timeout) when ?IS_TIMEOUT(Timeout) ->
    with_parts(client, Options,
      fun(#{tcp := TcpOpts, emulated := Emulated, tls := Tls, sni := SNI,
            transport := {Module, _} = Transport}) ->
          Deadline = deadline(Timeout),
          Connect = fun() -> Module:connect(Host, Port, tcp_options(TcpOpts), remaining(Deadline)) end,
          case transport_call(Connect, TcpOpts) of
              {ok, TSock} ->
                  client_handshake(Transport, TSock, Host, SNI, Tls, Emulated, <<>>, Deadline);
              Error ->
                  Error
          end
      end);
connect(_Host, _Port, _Options, Timeout) ->
    {error, {options, {timeout, Timeout}}}.

client_handshake({Module, _} = Transport, TSock, Host, SNI, Tls, Emulated, Initial, Deadline) ->
    case config(client, Tls) of
        {ok, Config} ->
            Peer = session_peer(rssl_options:peer(Host, SNI, Tls), Transport, TSock, Host),
            case adopt(Transport, TSock, Config, Peer, Emulated, undefined, Initial) of
                {ok, Socket} -> run_handshake(Socket, Deadline);
                Error -> Error
            end;
        Error ->
            Module:close(TSock),
            Error
    end.

%%% Data ------------------------------------------------------------------

send(Socket, Data) when ?IS_CONN(Socket) ->
    Tag = erlang:unique_integer(),
    Result = try iolist_size(Data) > ?DIRTY_SEND of
                 true -> rssl_nif:send_dirty(Socket, Data, Tag);
                 false -> rssl_nif:send(Socket, Data, Tag)
             catch
                 error:badarg -> {error, einval}
             end,
    case Result of
        wait -> wait_sent(Socket, Tag);
        Other -> Other
    end;
send(#sslsocket{}, _Data) ->
    {error, enotconn};
send(_, _) ->
    {error, einval}.

recv(Socket, Length) -> recv(Socket, Length, infinity).

recv(Socket, Length, Timeout) when ?IS_CONN(Socket), is_integer(Length), Length >= 0,
                                   ?IS_TIMEOUT(Timeout) ->
    Tag = erlang:unique_integer(),
    case rssl_nif:recv(Socket, Length, Tag) of
        wait ->
            receive
                {rssl_reply, Tag, Reply} -> Reply
            after Timeout ->
                case rssl_nif:recv_cancel(Socket, Tag) of
                    ok -> {error, timeout};
                    gone -> receive {rssl_reply, Tag, Reply} -> Reply end
                end
            end;
        Other ->
            Other
    end;
recv(#sslsocket{listen = #listen{}}, _, _) ->
    {error, enotconn};
recv(_, _, _) ->
    {error, einval}.

%%% Closing and ownership -------------------------------------------------

close(#sslsocket{listen = #listen{tcp = LSock}}) ->
    gen_tcp:close(LSock);
close(Socket) when ?IS_CONN(Socket) ->
    rssl_nif:close(Socket);
close(_) ->
    {error, einval}.

%% @doc Graceful close: send close_notify, wait up to `Timeout' for the
%% peer's, then release the socket. Downgrading to TCP (`{Pid, Timeout}')
%% is not supported.
close(Socket, Timeout) when ?IS_CONN(Socket), ?IS_TIMEOUT(Timeout) ->
    Deadline = deadline(Timeout),
    _ = rssl_nif:setopts(Socket, [{active, false}]),
    case rssl_nif:shutdown(Socket, false, true) of
        ok -> drain_until_closed(Socket, Deadline);
        _ -> ok
    end,
    close(Socket);
close(Socket, {Pid, _Timeout}) when ?IS_CONN(Socket), is_pid(Pid) ->
    {error, {not_supported, downgrade}};
close(Socket, _) when ?IS_CONN(Socket) ->
    {error, einval};
close(Socket, _Timeout) ->
    close(Socket).

drain_until_closed(Socket, Deadline) ->
    case recv(Socket, 0, remaining(Deadline)) of
        {ok, _} -> drain_until_closed(Socket, Deadline);
        _ -> ok
    end.

shutdown(Socket, How) when ?IS_CONN(Socket) ->
    case How of
        read -> rssl_nif:shutdown(Socket, true, false);
        write -> rssl_nif:shutdown(Socket, false, true);
        read_write -> rssl_nif:shutdown(Socket, true, true);
        _ -> {error, einval}
    end;
shutdown(_, _) ->
    {error, einval}.

controlling_process(Socket, Pid) when ?IS_CONN(Socket), is_pid(Pid) ->
    rssl_nif:controlling_process(Socket, Pid);
controlling_process(#sslsocket{listen = #listen{tcp = LSock}}, Pid) when is_pid(Pid) ->
    gen_tcp:controlling_process(LSock, Pid);
controlling_process(_, _) ->
    {error, einval}.

%%% Options ---------------------------------------------------------------

setopts(Socket, Options) when ?IS_CONN(Socket), is_list(Options) ->
    %% As OTP's ssl: the emulated options are checked and set first (one bad
    %% value is reported alone), then the rest goes to inet as one list.
    {Emulated, Inet} = lists:partition(fun is_emulated_option/1,
                                       [normalize(O) || O <- Options]),
    %% The options before a bad one still take effect, as in OTP's ssl.
    {Good, Bad} = lists:splitwith(fun valid_emulated/1, Emulated),
    case set_emulated(Socket, Good) of
        ok when Bad =:= [] -> set_inet(Socket, Inet);
        ok -> bad_emulated(Socket, hd(Bad));
        Error -> Error
    end;
setopts(#sslsocket{listen = #listen{tcp = LSock, emulated = Cell}}, Options)
  when is_list(Options) ->
    {Emulated, Inet} = lists:partition(fun is_emulated_option/1,
                                       [normalize(O) || O <- Options]),
    try [rssl_options:emulated(O) || O <- Emulated] of
        Checked ->
            Old = rssl_nif:cell_get(Cell),
            rssl_nif:cell_set(Cell, rssl_options:override(Old, Checked)),
            %% inet keeps the rest on the listen port; accepted sockets
            %% inherit it.
            case Inet =:= [] orelse inet:setopts(LSock, Inet) of
                true -> ok;
                ok -> ok;
                {error, Reason} -> {error, {options, {socket_options, Inet, Reason}}}
            end
    catch
        throw:{options, Bad} -> {error, {options, {socket_options, Bad}}}
    end;
setopts(Socket, Options) when ?IS_CONN(Socket); is_record(Socket, sslsocket) ->
    {error, {options, {not_a_proplist, Options}}};
setopts(_, _) ->
    {error, einval}.

is_emulated_option({Key, _}) -> rssl_options:is_emulated(Key);
is_emulated_option(_) -> false.

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
    case custom_transport(Socket) of
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
    case custom_transport(Socket) of
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
getstat(Socket) when ?IS_CONN(Socket) ->
    case rssl_nif:getstat(Socket) of
        {error, closed} -> {error, einval};
        Other -> Other
    end;
getstat(#sslsocket{listen = #listen{tcp = LSock}}) ->
    inet:getstat(LSock);
getstat(_) ->
    {error, einval}.

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

%%% Information -------------------------------------------------------------

sockname(#sslsocket{listen = #listen{tcp = LSock, transport = Transport}}) ->
    transport_call(Transport, sockname, LSock);
sockname(Socket) when ?IS_CONN(Socket) ->
    case custom_transport(Socket) of
        {ok, {Module, TSock}} -> transport_call({Module, tags}, sockname, TSock);
        none -> closed_is_einval(rssl_nif:sockname(Socket));
        Error -> Error
    end;
sockname(_) -> {error, einval}.

peername(Socket) when ?IS_CONN(Socket) ->
    case custom_transport(Socket) of
        {ok, {Module, TSock}} -> transport_call({Module, tags}, peername, TSock);
        none -> closed_is_einval(rssl_nif:peername(Socket));
        Error -> Error
    end;
peername(#sslsocket{}) -> {error, enotconn};
peername(_) -> {error, einval}.

peercert(Socket) when ?IS_CONN(Socket) -> rssl_nif:peercert(Socket);
peercert(_) -> {error, einval}.

connection_information(Socket) when ?IS_CONN(Socket) ->
    case rssl_nif:info(Socket) of
        {ok, Info} -> {ok, with_cipher_suite(Info)};
        Error -> Error
    end;
connection_information(_) ->
    {error, einval}.

connection_information(Socket, Items) when is_list(Items) ->
    case connection_information(Socket) of
        {ok, Info} -> {ok, [I || {K, _} = I <- Info, lists:member(K, Items)]};
        Error -> Error
    end.

%% The spec's `{cipher_suite, {Kex, Cipher, Hash}}' beside OTP 25's map.
with_cipher_suite(Info) ->
    case lists:keyfind(selected_cipher_suite, 1, Info) of
        {_, #{key_exchange := K, cipher := C, mac := M}} ->
            Info ++ [{cipher_suite, {K, C, M}}];
        false ->
            Info
    end.

connection_info(Socket) ->
    case connection_information(Socket, [protocol, cipher_suite]) of
        {ok, Info} ->
            {ok, {proplists:get_value(protocol, Info),
                  proplists:get_value(cipher_suite, Info)}};
        Error ->
            Error
    end.

negotiated_protocol(Socket) ->
    case connection_information(Socket, [negotiated_protocol]) of
        {ok, [{negotiated_protocol, P}]} -> {ok, P};
        {ok, []} -> {error, protocol_not_negotiated};
        Error -> Error
    end.

%% @doc A new handshake on an established TLS 1.2 (or older) connection;
%% `{error, notsup}' on TLS 1.3, which has no renegotiation.
renegotiate(Socket) when ?IS_CONN(Socket) ->
    Tag = erlang:unique_integer(),
    case rssl_nif:renegotiate(Socket, Tag) of
        ok -> receive {rssl_reply, Tag, Result} -> Result end;
        Error -> Error
    end;
renegotiate(_) ->
    {error, einval}.

%% @doc TLS 1.3 key update: `write' renews the keys we send with,
%% `read_write' asks the peer to renew its keys too. `{error, notsup}'
%% before TLS 1.3.
update_keys(Socket, Type) when ?IS_CONN(Socket) ->
    case Type of
        write -> rssl_nif:update_keys(Socket, false);
        read_write -> rssl_nif:update_keys(Socket, true);
        _ -> {error, {illegal_parameter, Type}}
    end;
update_keys(_, _) ->
    {error, einval}.

%% @doc The session's pseudo-random function (TLS 1.0-1.2): `Secret' is a
%% binary or `master_secret', `Seed' a list of binaries, `client_random'
%% and `server_random'. `{error, undefined}' where the version has no PRF
%% (TLS 1.3).
prf(Socket, Secret, Label, Seed, Length)
  when ?IS_CONN(Socket), (is_binary(Secret) orelse Secret =:= master_secret),
       is_binary(Label), is_list(Seed), is_integer(Length), Length >= 0 ->
    case lists:all(fun(P) -> is_binary(P) orelse P =:= client_random
                                 orelse P =:= server_random end, Seed) of
        true -> rssl_nif:prf(Socket, Secret, Label, Seed, Length);
        false -> {error, badarg}
    end;
prf(_, _, _, _, _) ->
    {error, badarg}.

%%% Cipher suite and group helpers -----------------------------------------
%% Cipher suites are the same maps as OTP's, so its pure helpers serve.

filter_cipher_suites(Suites, Filters) -> ssl:filter_cipher_suites(Suites, Filters).
prepend_cipher_suites(Preferred, Suites) -> ssl:prepend_cipher_suites(Preferred, Suites).
append_cipher_suites(Deferred, Suites) -> ssl:append_cipher_suites(Deferred, Suites).
suite_to_str(Suite) -> ssl:suite_to_str(Suite).
suite_to_openssl_str(Suite) -> ssl:suite_to_openssl_str(Suite).
str_to_suite(Name) -> ssl:str_to_suite(Name).
tls_version(Version) -> ssl:tls_version(Version).

%% @doc The key exchange groups `supported_groups' accepts, and (`default')
%% those offered when it is not given: OpenSSL's default list.
groups() ->
    [x25519, x448, secp256r1, secp384r1, secp521r1,
     ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192].

groups(default) ->
    [x25519, secp256r1, x448, secp521r1, secp384r1,
     ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192].

%% @doc The named curves used for ECDHE up to TLS 1.2 (the `eccs' option
%% itself is not supported: OpenSSL offers its default groups).
eccs() -> [secp521r1, secp384r1, secp256r1].

eccs(Version) when Version =:= 'tlsv1.2'; Version =:= 'tlsv1.1'; Version =:= tlsv1 ->
    eccs().

versions() ->
    Vsn = case application:get_key(rssl, vsn) of
              {ok, V} -> V;
              undefined -> "0.1.0"
          end,
    [{ssl_app, Vsn},
     {supported, ['tlsv1.3', 'tlsv1.2']},
     {supported_dtls, []},
     {available, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1]},
     {available_dtls, []},
     {implemented, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1]},
     {implemented_dtls, []}].

%% @doc The old API: `{Kex, Cipher, Mac}' tuples (erlang, all) or OpenSSL names.
cipher_suites() -> cipher_suites(erlang).

cipher_suites(Type) when Type =:= erlang; Type =:= openssl; Type =:= all ->
    rssl_ciphers:old_suites(Type).

%% @doc Suites as maps for `Description' (default | all | exclusive |
%% anonymous | exclusive_anonymous) and a protocol version.
cipher_suites(Description, Version) ->
    rssl_ciphers:suites(Description, Version).

cipher_suites(Description, Version, Naming) when Naming =:= rfc; Naming =:= openssl ->
    rssl_ciphers:suites(Description, Version, Naming).

clear_pem_cache() ->
    rssl_nif:config_clear_cache().

format_error({tls_alert, {_, Description}}) when is_list(Description) ->
    Description;
format_error({options, Option}) ->
    lists:flatten(io_lib:format("Invalid TLS option: ~p", [Option]));
format_error(closed) ->
    "TLS connection is closed";
format_error({error, Reason}) ->
    format_error(Reason);
format_error(Reason) when is_atom(Reason) ->
    case inet:format_error(Reason) of
        "unknown POSIX error" ++ _ ->
            lists:flatten(io_lib:format("Unexpected error: ~p", [Reason]));
        Text -> Text
    end;
format_error(Reason) ->
    lists:flatten(io_lib:format("Unexpected error: ~p", [Reason])).

%%% Internals -------------------------------------------------------------

%% Upgrading a TCP socket the user set up: its emulated options (mode,
%% active, packet...) are the defaults, as in OTP's ssl, and whatever gen_tcp
%% already read from it (a ClientHello behind a clear-text line) is handed
%% to the TLS connection.
upgrade_prepare({gen_tcp, _}, Tcp, Emulated) ->
    Names = [mode, active, packet, header, packet_size],
    Inherited = case inet:getopts(Tcp, Names) of
                    {ok, Values} -> [rssl_options:emulated(normalize_packet(O)) || O <- Values];
                    _ -> []
                end,
    _ = inet:setopts(Tcp, [binary, {active, false}, {packet, raw}]),
    Buffered = case gen_tcp:recv(Tcp, 0, 0) of
                   {ok, Bytes} -> Bytes;
                   _ -> <<>>
               end,
    {rssl_options:override(Inherited, Emulated), Buffered};
upgrade_prepare(_Transport, _TSock, Emulated) ->
    {Emulated, <<>>}.

normalize_packet({packet, raw}) -> {packet, 0};
normalize_packet(O) -> O.

%% Address calls on a closed connection: OTP's ssl asks the closed TCP
%% socket, which says einval.
closed_is_einval({error, closed}) -> {error, einval};
closed_is_einval(Other) -> Other.

%% `{ok, {Module, TransportSocket}}' for a connection over a custom
%% transport, `none' for the gen_tcp fast path.
custom_transport(Socket) ->
    case rssl_nif:transport(Socket) of
        undefined -> none;
        Pump -> rssl_pump:info(Pump)
    end.

%% inet-style calls on a transport socket: inet for gen_tcp (as OTP's ssl
%% does), else the callback module's own function.
transport_call({gen_tcp, _}, Function, Sock) -> inet:Function(Sock);
transport_call({Module, _}, Function, Sock) ->
    case erlang:function_exported(Module, Function, 1) of
        true -> Module:Function(Sock);
        false -> inet:Function(Sock)
    end.

%% The NIF configuration for validated TLS options. Each `sni_hosts' entry
%% becomes a configuration of its own: the listener's options with the
%% host's merged over them.
config(server, Tls = #{sni_fun := Fun}) when is_function(Fun) ->
    %% The fun runs in the handshaking process (see run_handshake/2), with
    %% the listener's options to merge its answer over.
    Base = maps:remove(sni_fun, Tls),
    config(server, Base#{sni_fun => {Fun, Base}});
config(Role, Tls = #{sni_hosts := Hosts}) ->
    Base = maps:remove(sni_hosts, Tls),
    try
        Configs = [case rssl_nif:config_new(rssl_options:tls_map(Role, maps:merge(Base, HostTls))) of
                       {ok, C} -> {unicode:characters_to_binary(Host), C};
                       {error, _} = Error -> throw(Error)
                   end || {Host, HostTls} <- Hosts],
        rssl_nif:config_new(rssl_options:tls_map(Role, Base#{sni_hosts => Configs}))
    catch
        throw:{error, _} = Error -> Error
    end;
config(Role, Tls) ->
    Map = rssl_options:tls_map(Role, Tls),
    %% Files are read (on a dirty scheduler) only the first time.
    case rssl_nif:config_cached(Map) of
        {ok, _} = Cached -> Cached;
        miss -> rssl_nif:config_new(Map)
    end.

%% The send is queued but the backlog is high: wait until it drains, at most
%% send_timeout.
wait_sent(Socket, Tag) ->
    {Timeout, CloseOnTimeout} =
        case rssl_nif:getopts(Socket) of
            {error, _} -> {infinity, false};
            Opts -> {proplists:get_value(send_timeout, Opts, infinity),
                     proplists:get_value(send_timeout_close, Opts, false)}
        end,
    receive
        {rssl_reply, Tag, Reply} -> Reply
    after Timeout ->
        case rssl_nif:send_cancel(Socket, Tag) of
            ok ->
                CloseOnTimeout andalso rssl_nif:close(Socket),
                {error, timeout};
            gone ->
                receive {rssl_reply, Tag, Reply} -> Reply end
        end
    end.

%% gen_tcp exits with badarg for many socket options it cannot use (and
%% raises function_clause for some, e.g. {backlog, infinity}); ssl answers
%% {error, {options, {socket_options, Opts}}} for that on connect.
transport_call(Call, TcpOpts) ->
    try Call()
    catch
        exit:badarg -> {error, {options, {socket_options, TcpOpts}}};
        error:badarg -> {error, {options, {socket_options, TcpOpts}}};
        error:function_clause -> {error, {options, {socket_options, TcpOpts}}}
    end.

with_parts(Role, Options, Fun) ->
    case rssl_options:split(Role, Options) of
        {ok, Parts} -> Fun(Parts);
        Error -> Error
    end.

%% TCP as the NIF needs it before adoption: binary, passive, unframed.
tcp_options(Tcp) ->
    [binary, {active, false}, {packet, raw} | Tcp].

%% A connected transport socket becomes an rssl connection. gen_tcp sockets
%% are adopted directly; other transports (cb_info) through a relay process
%% and a loopback connection (rssl_pump).
adopt(Transport, TSock, Config, Peer, Emulated, Pending) ->
    adopt(Transport, TSock, Config, Peer, Emulated, Pending, <<>>).

adopt({gen_tcp, _}, Tcp, Config, Peer, Emulated, Pending, Initial) ->
    adopt_fd(Tcp, Config, Peer, Emulated, Pending, undefined, Initial);
adopt({Module, Tags}, TSock, Config, Peer, Emulated, Pending, _Initial) ->
    case rssl_pump:start(Module, TSock, Tags) of
        {ok, Local, Pump} -> adopt_fd(Local, Config, Peer, Emulated, Pending, Pump, <<>>);
        Error -> Module:close(TSock), Error
    end.

%% Hands the TCP socket's fd to the NIF; the port is closed after, the
%% connection lives on the NIF's duplicate. `Pending' is the listener's TLS
%% map, kept until the handshake for `handshake/3' options; `Pump' the
%% relay of a custom transport.
adopt_fd(Tcp, Config, Peer, Emulated, Pending, Pump, Initial) ->
    Result = case prim_inet:getfd(Tcp) of
                 {ok, Fd} -> rssl_nif:adopt(Fd, Config, Peer, Emulated, Pending, Pump, Initial);
                 Error -> Error
             end,
    gen_tcp:close(Tcp),
    Result.

run_handshake(Socket, Deadline) ->
    Tag = erlang:unique_integer(),
    case rssl_nif:handshake(Socket, Tag) of
        ok -> await_handshake(Socket, Tag, Deadline, #{});
        Error ->
            rssl_nif:close(Socket),
            Error
    end.

%% Waits for the handshake, running the funs it calls back (sni_fun,
%% verify_fun...). `CbState' is what the funs keep for the handshake (the
%% verify fun's user state).
await_handshake(Socket, Tag, Deadline, CbState) ->
    receive
        {rssl_reply, Tag, ok} ->
            {ok, Socket};
        {rssl_reply, Tag, {error, _} = Error} ->
            rssl_nif:close(Socket),
            Error;
        {rssl_callback, Tag, Call, Request} ->
            {Answer, CbState1} = callback(Request, CbState),
            rssl_nif:callback_reply(Call, Answer),
            await_handshake(Socket, Tag, Deadline, CbState1)
    after remaining(Deadline) ->
        rssl_nif:close(Socket),
        receive {rssl_reply, Tag, _} -> ok after 0 -> ok end,
        {error, timeout}
    end.

%% verify_fun: OpenSSL's checks become OTP's events (rssl_verify), with
%% the fun's state kept for the handshake.
callback({verify, Check, Context}, CbState) ->
    {Answer, State} = rssl_verify:verify(Check, Context, maps:get(verify, CbState, undefined)),
    {Answer, CbState#{verify => State}};
callback(Request, CbState) ->
    {callback(Request), CbState}.

%% partial_chain: {trusted, Index} | unknown_ca.
callback({partial_chain, Chain, Fun}) ->
    rssl_verify:partial_chain(Chain, Fun);
%% user_lookup_fun: {psk, Key} | {srp, Bits, Salt, DerivedKey} | error. As
%% OTP's ssl, the identity, hint or user name is a binary (hint: undefined
%% when the server sent none).
callback({user_lookup, {psk, Identity}, {Fun, UserState}}) ->
    case catch Fun(psk, Identity, UserState) of
        {ok, Key} when is_binary(Key) -> {psk, Key};
        _ -> error
    end;
callback({user_lookup, {srp, User}, {Fun, UserState}}) ->
    case catch Fun(srp, User, UserState) of
        {ok, {Params, Salt, DerivedKey}} when is_binary(Salt), is_binary(DerivedKey) ->
            case srp_bits(Params) of
                undefined -> error;
                Bits -> {srp, Bits, Salt, DerivedKey}
            end;
        _ -> error
    end;
%% reuse_session(SessionId, PeerCert, Compression, CipherSuite): only
%% `true' resumes.
callback({reuse_session, {Id, PeerCert, Suite}, Fun}) ->
    (catch Fun(Id, PeerCert, 0, Suite)) =:= true;
%% sni_fun(Host) returns options for that host ([] or undefined: the
%% listener's own); anything unusable rejects the host.
callback({sni, Host, {Fun, Base}}) ->
    case catch Fun(binary_to_list(Host)) of
        Options when is_list(Options), Options =/= [] ->
            case rssl_options:sni_options(Options, Base) of
                {ok, Tls} ->
                    case config(server, Tls) of
                        {ok, Config} -> {config, Config};
                        _ -> reject
                    end;
                _ -> reject
            end;
        Empty when Empty =:= []; Empty =:= undefined -> default;
        _ -> reject
    end.

srp_bits(srp_1024) -> 1024;
srp_bits(srp_1536) -> 1536;
srp_bits(srp_2048) -> 2048;
srp_bits(srp_3072) -> 3072;
srp_bits(srp_4096) -> 4096;
srp_bits(srp_6144) -> 6144;
srp_bits(srp_8192) -> 8192;
srp_bits(_) -> undefined.

%% A client reuses sessions per server, as OTP's ssl keys them: the host
%% as given and the port.
session_peer(Peer, Transport, TSock, Host) ->
    case transport_call(Transport, peername, TSock) of
        {ok, {Address, Port}} ->
            Name = case Host of
                       undefined -> Address;
                       _ -> Host
                   end,
            Key = iolist_to_binary(io_lib:format("~p:~p", [Name, Port])),
            Peer#{session_key => Key};
        _ ->
            Peer
    end.

deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
