%% @doc OTP's `ssl' API over OpenSSL. Replace `ssl' by `rssl' in a call and
%% it behaves the same: same arguments, results, errors and messages
%% (`{ssl, S, Data}', `{ssl_closed, S}', `{ssl_error, S, Reason}',
%% `{ssl_passive, S}').
%%
%% A client's TCP connection is made by the NIF (gen_tcp's when its
%% options need gen_tcp); a server's is accepted with gen_tcp and the NIF
%% adopts its file descriptor. The NIF does all TLS I/O on its own
%% threads, delivering straight to the owner.
-module(rssl).

-export([start/0, start/1, stop/0,
         listen/2, transport_accept/1, transport_accept/2,
         handshake/1, handshake/2, handshake/3,
         handshake_continue/2, handshake_continue/3, handshake_cancel/1,
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

-import(rssl_handshake, [deadline/1, remaining/1]).

-include("rssl_socket.hrl").

%%% Types ---------------------------------------------------------------
%% The names OTP's `ssl' exports, so that code with `ssl:tls_option()' in
%% its specs can say `rssl:tls_option()'. Data that rssl shares with ssl
%% (cipher suite maps, curve and alert names) is ssl's own type; sockets
%% and option lists are rssl's: the options listed are those rssl takes
%% (README lists the ones it refuses as not supported).

-export_type([socket/0, sslsocket/0, dtls_version/0, socket_option/0, active_msgs/0, host/0,
              tls_option/0, tls_client_option/0, tls_server_option/0,
              erl_cipher_suite/0, old_cipher_suite/0, ciphers/0, cipher/0,
              hash/0, key/0, kex_algo/0, prf_random/0, cipher_filters/0,
              sign_algo/0, protocol_version/0, tls_version/0,
              protocol_extensions/0, session_id/0, error_alert/0,
              tls_alert/0, srp_param_type/0, named_curve/0, sign_scheme/0,
              group/0, reason/0, connection_info/0, connection_info_item/0]).

-type socket() :: gen_tcp:socket() | term().
%% A TCP socket (connect/2,3 and handshake/2,3 upgrade one), or the socket
%% of a `cb_info' transport.
-type sslsocket() :: #sslsocket{}.
%% A TLS connection or a listen socket.
-type socket_option() :: gen_tcp:connect_option() | gen_tcp:listen_option().
-type active_msgs() :: {ssl, sslsocket(), Data :: binary() | list() | tuple()}
                     | {ssl_closed, sslsocket()}
                     | {ssl_error, sslsocket(), Reason :: reason()}
                     | {ssl_passive, sslsocket()}.
%% What the owner of an active socket receives (docs/messages.md).
-type host() :: inet:hostname() | inet:ip_address().
-type session_id() :: binary().
-type protocol_version() :: tls_version() | dtls_version().
-type tls_version() :: 'tlsv1.3' | 'tlsv1.2' | 'tlsv1.1' | tlsv1.
-type dtls_version() :: 'dtlsv1.2' | dtlsv1.
-type erl_cipher_suite() :: ssl:erl_cipher_suite().
-type old_cipher_suite() :: ssl:old_cipher_suite().
-type ciphers() :: ssl:ciphers().
-type cipher() :: ssl:cipher().
-type hash() :: ssl:hash().
-type key() :: ssl:key().
-type kex_algo() :: ssl:kex_algo().
-type prf_random() :: ssl:prf_random().
-type cipher_filters() :: ssl:cipher_filters().
-type sign_algo() :: ssl:sign_algo().
-type sign_scheme() :: ssl:sign_scheme().
-type named_curve() :: ssl:named_curve().
-type group() :: ssl:group() | x25519 | x448.
%% ssl:group() and the two curves OTP 25's ssl:groups/0 also lists.
-type srp_param_type() :: ssl:srp_param_type().
-type tls_alert() :: ssl:tls_alert() | decompression_failure | missing_extension
                   | certificate_required | illegal_alert.
%% ssl's alert names, and those OpenSSL may also send or receive.
-type error_alert() :: {tls_alert, {tls_alert(), Description :: string()}}.
%% `{tls_alert, {Alert, Text}}': a TLS alert we sent or received; Text
%% names OpenSSL's reason.
-type protocol_extensions() :: #{atom() => term()}.
%% rssl reports no TLS extensions from handshake/connect (OTP does so only
%% with `{handshake, hello}', which rssl does not support).
-type reason() :: closed | timeout | inet:posix() | error_alert()
                | {options, term()} | term().
%% The `Reason' of `{error, Reason}' and of `{ssl_error, S, Reason}':
%% docs/messages.md lists every one.

-type tls_option() :: tls_client_option() | tls_server_option().
-type tls_client_option() :: client_option() | common_option() | socket_option()
                           | transport_option().
-type tls_server_option() :: server_option() | common_option() | socket_option()
                           | transport_option().
-type transport_option() :: {cb_info, {module(), atom(), atom(), atom()}}
                          | {cb_info, {module(), atom(), atom(), atom(), atom()}}.
-type pem_file() :: file:filename().
-type app_protocol() :: binary().
-type common_option() :: {protocol, tls}
                       | {handshake, full}
                       | {cert, public_key:der_encoded() | [public_key:der_encoded()]}
                       | {certfile, pem_file()}
                       | {key, key()}
                       | {keyfile, pem_file()}
                       | {certs_keys, [#{cert => public_key:der_encoded() | [public_key:der_encoded()],
                                         certfile => pem_file(), key => key(),
                                         keyfile => pem_file(), password => iodata()}]}
                       | {password, iodata() | fun(() -> iodata())}
                       | {ciphers, ciphers() | [old_cipher_suite()] | [string()]}
                       | {signature_algs, [{hash(), sign_algo()} | sign_scheme()]}
                       | {supported_groups, [group()]}
                       | {eccs, [atom()]}
                       | {keep_secrets, boolean()}
                       | {key_update_at, pos_integer()}
                       | {renegotiate_at, integer()}
                       | {signature_algs_cert, [{hash(), sign_algo()} | sign_scheme()]}
                       | {secure_renegotiate, boolean()}
                       | {depth, 0..255}
                       | {verify_fun, {fun(), term()} | fun() | undefined}
                       | {crl_check, boolean() | peer | best_effort}
                       | {crl_cache, {ssl_crl_cache | rssl_crl_cache | ssl_crl_hash_dir,
                                     {internal, list()}}}
                       | {partial_chain, fun()}
                       | {versions, [protocol_version()]}
                       | {user_lookup_fun, {fun(), term()}}
                       | {log_level, logger:level() | none | all}
                       | {log_alert, boolean()}
                       | {hibernate_after, timeout() | undefined}
                       | {max_handshake_size, pos_integer()}
                       | {padding_check, boolean()}
                       | {beast_mitigation, one_n_minus_one | zero_n | disabled}
                       | {dh, binary()}
                       | {reuse_sessions, boolean() | save}.
-type client_option() :: {verify, verify_none | verify_peer}
                       | {cacerts, [public_key:der_encoded() | public_key:combined_cert()]}
                       | {cacertfile, pem_file()}
                       | {alpn_advertised_protocols, [app_protocol()]}
                       | {client_preferred_next_protocols,
                          {client | server, [app_protocol()]}
                          | {client | server, [app_protocol()], app_protocol()}}
                       | {psk_identity, string()}
                       | {srp_identity, {string(), string()}}
                       | {server_name_indication, inet:hostname() | disable}
                       | {customize_hostname_check, list()}
                       | {fallback, boolean()}
                       | {max_fragment_length, undefined | 512 | 1024 | 2048 | 4096}
                       | {middlebox_comp_mode, boolean()}
                       | {session_tickets, disabled | auto | manual}
                       | {use_ticket, [term()]}
                       | {early_data, binary()}.
-type server_option() :: {verify, verify_none | verify_peer}
                       | {fail_if_no_peer_cert, boolean()}
                       | {cacerts, [public_key:der_encoded() | public_key:combined_cert()]}
                       | {cacertfile, pem_file()}
                       | {dhfile, pem_file()}
                       | {reuse_session, fun()}
                       | {alpn_preferred_protocols, [app_protocol()]}
                       | {next_protocols_advertised, [app_protocol()]}
                       | {psk_identity, string()}
                       | {sni_hosts, [{inet:hostname(), [server_option() | common_option()]}]}
                       | {sni_fun, fun((string()) -> [server_option() | common_option()] | unknown)}
                       | {honor_cipher_order, boolean()}
                       | {client_renegotiation, boolean()}
                       | {session_tickets, disabled | stateful | stateless}
                       | {anti_replay, '10k' | '100k' | {pos_integer(), pos_integer(), pos_integer()}}
                       | {early_data, enabled | disabled}.

-type connection_info_item() :: protocol | session_id | session_resumption
                              | selected_cipher_suite | cipher_suite | sni_hostname
                              | srp_username | ecc | negotiated_protocol | atom().
-type connection_info() :: [{connection_info_item(), term()}].

-define(IS_TIMEOUT(T), (T =:= infinity orelse (is_integer(T) andalso T >= 0))).
%% Sends bigger than this are encrypted on a dirty scheduler.
-define(DIRTY_SEND, 262144).

%%% Application ----------------------------------------------------------

-spec start() -> ok | {error, term()}.
start() -> start(temporary).

-spec start(permanent | transient | temporary) -> ok | {error, term()}.
start(Type) ->
    case application:ensure_all_started(rssl, Type) of
        {ok, _} -> ok;
        Error -> Error
    end.

-spec stop() -> ok | {error, term()}.
stop() ->
    application:stop(rssl).

%%% Listen and accept ----------------------------------------------------

-spec listen(Port, Options) -> {ok, ListenSocket} | {error, reason()} when
      Port :: inet:port_number(), Options :: [tls_server_option()],
      ListenSocket :: sslsocket().
listen(_Port, Options) when not is_list(Options) ->
    {error, {options, {not_a_list, Options}}};
listen(Port, Options) ->
    case rssl_dtls:is_dtls(Options) of
        true -> rssl_dtls:listen(Port, Options);
        false -> listen_tls(Port, Options)
    end.

listen_tls(Port, Options) ->
    with_parts(server, Options,
      fun(#{tcp := Tcp, emulated := Emulated, tls := Tls,
            transport := {Module, _} = Transport}) ->
          case rssl_handshake:config(server, Tls) of
              {ok, Config} ->
                  case open_transport(fun() -> Module:listen(Port, tcp_options(Tcp)) end, Tcp) of
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

-spec transport_accept(sslsocket()) -> {ok, sslsocket()} | {error, reason()}.
transport_accept(ListenSocket) ->
    transport_accept(ListenSocket, infinity).

-spec transport_accept(sslsocket(), timeout()) -> {ok, sslsocket()} | {error, reason()}.
transport_accept(#sslsocket{listen = #listen{transport = {rssl_dtls, _}}} = L, Timeout)
  when ?IS_TIMEOUT(Timeout) ->
    rssl_dtls:transport_accept(L, Timeout);
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

-spec handshake(sslsocket()) -> {ok, sslsocket()} | {error, reason()}.
handshake(Socket) -> handshake(Socket, infinity).

-spec handshake(sslsocket(), timeout()) -> {ok, sslsocket()} | {error, reason()};
               (socket() | sslsocket(), [tls_server_option()]) ->
          {ok, sslsocket()} | {error, reason()}.
handshake(Socket, Timeout) when ?IS_CONN(Socket), ?IS_TIMEOUT(Timeout) ->
    rssl_handshake:run(Socket, deadline(Timeout));
handshake(Socket, Options) when is_list(Options) ->
    handshake(Socket, Options, infinity);
handshake(_Socket, _Timeout) ->
    {error, einval}.

%% @doc With an sslsocket from transport_accept: extra options, then the
%% handshake. With a gen_tcp socket: upgrade it (server side).
-spec handshake(socket() | sslsocket(), [tls_server_option()], timeout()) ->
          {ok, sslsocket()} | {error, reason()}.
handshake(Socket, Options, Timeout) when ?IS_CONN(Socket), is_list(Options),
                                         ?IS_TIMEOUT(Timeout) ->
    case Options of
        [] ->
            rssl_handshake:run(Socket, deadline(Timeout));
        _ ->
            case rssl_nif:pending_options(Socket) of
                Tls0 when is_map(Tls0) ->
                    with_parts(server, Options,
                      fun(#{tls := Tls, emulated := Emulated}) ->
                          Merged = maps:merge(Tls0, Tls),
                          case rssl_handshake:config(server, Merged) of
                              {ok, Config} ->
                                  ok = rssl_nif:set_config(Socket, Config, #{}),
                                  ok = rssl_nif:setopts(Socket, Emulated),
                                  rssl_handshake:run(Socket, deadline(Timeout),
                                                     Merged#{role => server});
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
          case rssl_handshake:config(server, Tls) of
              {ok, Config} ->
                  {Emulated1, Initial} = upgrade_prepare(Transport, TSock, Emulated),
                  case adopt(Transport, TSock, Config, #{}, Emulated1, undefined, Initial) of
                      {ok, Socket} ->
                          rssl_handshake:run(Socket, deadline(Timeout), Tls#{role => server});
                      Error -> Error
                  end;
              Error -> Error
          end
      end);
handshake(_, _, _) ->
    {error, einval}.

%% @doc After `{handshake, hello}' stopped a handshake (`{ok, Socket,
%% Extensions}' from handshake/2,3 or connect/3,4): goes on with `Options'
%% added (for instance the certificate for the host name the client asked
%% for), in the process the hello was reported to.
-spec handshake_continue(sslsocket(), [tls_option()]) -> {ok, sslsocket()} | {error, reason()}.
handshake_continue(Socket, Options) ->
    handshake_continue(Socket, Options, infinity).

-spec handshake_continue(sslsocket(), [tls_option()], timeout()) ->
          {ok, sslsocket()} | {error, reason()}.
handshake_continue(Socket, Options, Timeout) when ?IS_CONN(Socket), is_list(Options),
                                                  ?IS_TIMEOUT(Timeout) ->
    rssl_handshake:continue(Socket, Options, deadline(Timeout));
handshake_continue(_, _, _) ->
    {error, einval}.

%% @doc Ends a handshake `{handshake, hello}' stopped, with a user_canceled
%% alert.
-spec handshake_cancel(sslsocket()) -> ok | {error, reason()}.
handshake_cancel(Socket) when ?IS_CONN(Socket) ->
    rssl_handshake:cancel(Socket);
handshake_cancel(_) ->
    {error, einval}.

%% @doc Deprecated in OTP: handshake/1 answering `ok'.
-spec ssl_accept(sslsocket()) -> ok | {error, reason()}.
ssl_accept(Socket) -> ssl_accept(Socket, infinity).

-spec ssl_accept(sslsocket(), timeout()) -> ok | {error, reason()};
                (socket() | sslsocket(), [tls_server_option()]) ->
          ok | {ok, sslsocket()} | {error, reason()}.
ssl_accept(Socket, Timeout) when ?IS_CONN(Socket), ?IS_TIMEOUT(Timeout) ->
    to_ssl_accept(handshake(Socket, Timeout));
ssl_accept(Socket, Options) when is_list(Options) ->
    ssl_accept(Socket, Options, infinity);
ssl_accept(_, _) ->
    {error, einval}.

-spec ssl_accept(socket() | sslsocket(), [tls_server_option()], timeout()) ->
          ok | {ok, sslsocket()} | {error, reason()}.
ssl_accept(Socket, Options, Timeout) when ?IS_CONN(Socket) ->
    to_ssl_accept(handshake(Socket, Options, Timeout));
ssl_accept(Socket, Options, Timeout) ->
    handshake(Socket, Options, Timeout).

%% ssl_accept/1,2 on an sslsocket answer `ok', not `{ok, Socket}'.
to_ssl_accept({ok, _}) -> ok;
to_ssl_accept(Other) -> Other.

%%% Connect -------------------------------------------------------------

%% @doc Upgrades a connected gen_tcp socket (client side).
-spec connect(socket(), [tls_client_option()]) -> {ok, sslsocket()} | {error, reason()}.
connect(Tcp, Options) -> connect(Tcp, Options, infinity).

-spec connect(socket(), [tls_client_option()], timeout()) ->
          {ok, sslsocket()} | {error, reason()};
             (host(), inet:port_number(), [tls_client_option()]) ->
          {ok, sslsocket()} | {error, reason()}.
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

-spec connect(host(), inet:port_number(), [tls_client_option()], timeout()) ->
          {ok, sslsocket()} | {error, reason()}.
connect(_Host, _Port, Options, _Timeout) when not is_list(Options) ->
    {error, {options, {not_a_list, Options}}};
connect(Host, Port, Options, Timeout) when ?IS_TIMEOUT(Timeout) ->
    case rssl_dtls:is_dtls(Options) of
        true -> rssl_dtls:connect(Host, Port, Options, Timeout);
        false -> connect_tls(Host, Port, Options, Timeout)
    end;
connect(_Host, _Port, _Options, Timeout) ->
    {error, {options, {timeout, Timeout}}}.

connect_tls(Host, Port, Options, Timeout) ->
    with_parts(client, Options,
      fun(#{tcp := TcpOpts, emulated := Emulated, tls := Tls, sni := SNI,
            transport := {Module, _} = Transport}) ->
          Deadline = deadline(Timeout),
          case native_connect(Transport, Host, TcpOpts) of
              {ok, Address, Sockopts} ->
                  Open = fun(Config, Peer) ->
                                 rssl_nif:connect(tuple_to_list(Address), Port, Sockopts,
                                                  Config, Peer, Emulated,
                                                  erlang:system_info(scheduler_id))
                         end,
                  client_tls(Open, fun() -> ok end, {ok, {Address, Port}}, Host, SNI, Tls,
                             Deadline);
              gen_tcp ->
                  Connect = fun() -> Module:connect(Host, Port, tcp_options(TcpOpts),
                                                    remaining(Deadline)) end,
                  case open_transport(Connect, TcpOpts) of
                      {ok, TSock} ->
                          client_handshake(Transport, TSock, Host, SNI, Tls, Emulated, <<>>,
                                           Deadline);
                      Error ->
                          Error
                  end
          end
      end).

%% The NIF makes the TCP connection itself (rssl_nif:connect/7) when
%% gen_tcp would do nothing more than it does: the default transport, a
%% host that is one address, and options that are the kernel's (set on
%% the socket before it connects) or that rssl keeps; gen_tcp's port,
%% with its options and its close, was a tenth of a handshake's time.
%% Anything else (several addresses, which gen_tcp tries in turn, a local
%% address or port, an fd, a network namespace...) goes through gen_tcp.
native_connect({gen_tcp, _}, Host, TcpOpts) ->
    Family = case lists:member(inet6, TcpOpts) of
                 true -> inet6;
                 false -> inet
             end,
    case lists:all(fun(Opt) -> native_option(Family, Opt) end, TcpOpts)
        andalso inet:getaddrs(Host, Family) of
        {ok, [Address]} ->
            {ok, Address, [Opt || Opt <- TcpOpts, rssl_options:classify(Opt) =:= sockopt]};
        _ ->
            gen_tcp
    end;
native_connect(_Transport, _Host, _TcpOpts) ->
    gen_tcp.

%% An option the NIF's own socket takes as gen_tcp would, with a value
%% gen_tcp accepts (any other value goes to gen_tcp, which refuses it, as
%% it refuses IPv6's options on an IPv4 socket).
native_option(inet, {Key, _}) when Key =:= tclass; Key =:= ipv6_v6only -> false;
native_option(_Family, Opt) -> native_option(Opt).

native_option(inet) -> true;
native_option(inet6) -> true;
native_option({Key, B}) when Key =:= nodelay; Key =:= keepalive; Key =:= reuseaddr;
                             Key =:= ipv6_v6only; Key =:= delay_send; Key =:= exit_on_close;
                             Key =:= send_timeout_close; Key =:= show_econnreset ->
    is_boolean(B);
native_option({Key, N}) when Key =:= sndbuf; Key =:= recbuf ->
    is_integer(N) andalso N > 0 andalso N < 1 bsl 31;
native_option({Key, N}) when Key =:= tos; Key =:= tclass ->
    is_integer(N) andalso N >= 0 andalso N =< 255;
%% (Above 6 Linux wants CAP_NET_ADMIN: gen_tcp reports its refusal.)
native_option({priority, N}) ->
    is_integer(N) andalso N >= 0 andalso N =< 6;
native_option({linger, {On, Secs}}) ->
    is_boolean(On) andalso is_integer(Secs) andalso Secs >= 0 andalso Secs < 1 bsl 31;
native_option({send_timeout, T}) ->
    T =:= infinity orelse (is_integer(T) andalso T >= 0);
native_option(_) ->
    false.

client_handshake({Module, _} = Transport, TSock, Host, SNI, Tls, Emulated, Initial, Deadline) ->
    Open = fun(Config, Peer) ->
                   adopt(Transport, TSock, Config, Peer, Emulated, undefined, Initial)
           end,
    Peername = transport_call(Transport, peername, TSock),
    client_tls(Open, fun() -> Module:close(TSock) end, Peername, Host, SNI, Tls, Deadline).

%% The client's handshake on the connection `Open' makes (`Abandon' lets
%% the transport go when the options make no configuration).
client_tls(Open, Abandon, Peername, Host, SNI, Tls0, Deadline) ->
    {Peer00, Tls1} = rssl_options:hostname_check(rssl_options:peer(Host, SNI, Tls0), Tls0),
    {Session, Tls2} = rssl_client_session:by_hand(Tls1),
    {Peer0, Tls} = tickets_by_hand(Peer00, Tls2),
    case rssl_handshake:config(client, Tls) of
        {ok, Config} ->
            Peer = rssl_client_session:peer(Peer0, Session, Peername, Host),
            case Open(Config, Peer) of
                {ok, Socket} ->
                    Result = rssl_handshake:run(Socket, Deadline, Tls#{role => client}),
                    rssl_client_session:save(Session, Result);
                Error -> Error
            end;
        Error ->
            Abandon(),
            Error
    end.

%%% Data ------------------------------------------------------------------

-spec send(sslsocket(), iodata()) -> ok | {error, reason()}.
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

-spec recv(sslsocket(), non_neg_integer()) -> {ok, Data} | {error, reason()} when
      Data :: binary() | list() | tuple().
recv(Socket, Length) -> recv(Socket, Length, infinity).

-spec recv(sslsocket(), non_neg_integer(), timeout()) -> {ok, Data} | {error, reason()} when
      Data :: binary() | list() | tuple().
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

-spec close(sslsocket()) -> ok | {error, reason()}.
close(#sslsocket{listen = #listen{transport = {rssl_dtls, _}}} = L) ->
    rssl_dtls:close(L);
close(#sslsocket{listen = #listen{tcp = LSock}}) ->
    gen_tcp:close(LSock);
close(Socket) when ?IS_CONN(Socket) ->
    rssl_nif:close(Socket);
close(_) ->
    {error, einval}.

%% @doc Graceful close: send close_notify, wait up to `Timeout' for the
%% peer's, then release the socket. With `{NewOwner, Timeout}': downgrade
%% to TCP, `{ok, Port}' (see downgrade/3).
-spec close(sslsocket(), timeout() | {pid(), timeout()}) ->
          ok | {ok, port()} | {error, reason()}.
close(Socket, Timeout) when ?IS_CONN(Socket), ?IS_TIMEOUT(Timeout) ->
    Deadline = deadline(Timeout),
    _ = rssl_nif:setopts(Socket, [{active, false}]),
    case rssl_nif:shutdown(Socket, false, true) of
        ok -> drain_until_closed(Socket, Deadline);
        _ -> ok
    end,
    close(Socket);
close(Socket, {Pid, Timeout}) when ?IS_CONN(Socket), is_pid(Pid), ?IS_TIMEOUT(Timeout) ->
    downgrade(Socket, Pid, deadline(Timeout));
close(Socket, _) when ?IS_CONN(Socket) ->
    {error, einval};
close(Socket, _Timeout) ->
    close(Socket).

%% Downgrade to TCP, as OTP's ssl does it: our close_notify, the peer's
%% (data before it is dropped), then the TCP socket, passive, binary and
%% unframed, belongs to `Pid'. The native side lets the socket go right
%% after our close_notify; the peer's last records are read here one by
%% one, exactly, so whatever it sends in clear after its close_notify is
%% still in the socket. The connection is closed either way.
downgrade(Socket, Pid, Deadline) ->
    case rssl_nif:transport(Socket) of
        undefined ->
            case rssl_nif:downgrade_detach(Socket) of
                {ok, Fd, Owned, Unsent, Buffered, PeerClosed} ->
                    Result = downgrade_fd(Socket, Fd, Owned, Unsent, Buffered, PeerClosed,
                                          Deadline),
                    rssl_nif:close(Socket),
                    case Result of
                        {ok, Port} ->
                            case gen_tcp:controlling_process(Port, Pid) of
                                ok -> {ok, Port};
                                Error -> gen_tcp:close(Port), Error
                            end;
                        Error ->
                            Error
                    end;
                Error ->
                    Error
            end;
        _Relay ->
            %% A custom transport's socket is its own module's: rssl only
            %% sees a loopback relay to it.
            _ = close(Socket),
            {error, {not_supported, {downgrade, cb_info}}}
    end.

downgrade_fd(Socket, Fd, Owned, Unsent, Buffered, PeerClosed, Deadline) ->
    case gen_tcp:fdopen(Fd, [binary, {active, false}, {packet, 0}]) of
        {ok, Port} ->
            keep_socket(Port, Owned),
            Exchange = case gen_tcp:send(Port, Unsent) of
                           ok when PeerClosed -> {ok, Buffered};
                           ok -> peer_close_notify(Socket, Port, Buffered, Deadline);
                           Error -> Error
                       end,
            case Exchange of
                {ok, <<>>} ->
                    {ok, Port};
                {ok, After} ->
                    ok = gen_tcp:unrecv(Port, After),
                    {ok, Port};
                Error2 ->
                    gen_tcp:close(Port),
                    Error2
            end;
        Error ->
            Error
    end.

%% A port made with fdopen leaves its socket open when it closes: a
%% process watching the port keeps `Owned', which closes the socket once
%% that process ends.
keep_socket(Port, Owned) ->
    spawn(fun() ->
                  Ref = erlang:monitor(port, Port),
                  receive {'DOWN', Ref, port, _, _} -> ok end,
                  rssl_nif:downgrade_release(Owned)
          end),
    ok.

%% Reads the peer's records until its close_notify; `{ok, After}' holds
%% what came after it.
peer_close_notify(Socket, Port, Buffer, Deadline) ->
    case Buffer of
        <<_:3/binary, Len:16, _/binary>> when byte_size(Buffer) >= 5 + Len ->
            <<Record:(5 + Len)/binary, Rest/binary>> = Buffer,
            case rssl_nif:downgrade_feed(Socket, Record) of
                more -> peer_close_notify(Socket, Port, Rest, Deadline);
                {closed, After} -> {ok, <<After/binary, Rest/binary>>};
                Error -> Error
            end;
        _ ->
            Need = case Buffer of
                       <<_:3/binary, Len:16, _/binary>> -> 5 + Len - byte_size(Buffer);
                       _ -> 5 - byte_size(Buffer)
                   end,
            case gen_tcp:recv(Port, Need, remaining(Deadline)) of
                {ok, More} -> peer_close_notify(Socket, Port, <<Buffer/binary, More/binary>>, Deadline);
                Error -> Error
            end
    end.

drain_until_closed(Socket, Deadline) ->
    case recv(Socket, 0, remaining(Deadline)) of
        {ok, _} -> drain_until_closed(Socket, Deadline);
        _ -> ok
    end.

-spec shutdown(sslsocket(), read | write | read_write) -> ok | {error, reason()}.
shutdown(Socket, How) when ?IS_CONN(Socket) ->
    case How of
        read -> rssl_nif:shutdown(Socket, true, false);
        write -> rssl_nif:shutdown(Socket, false, true);
        read_write -> rssl_nif:shutdown(Socket, true, true);
        _ -> {error, einval}
    end;
shutdown(_, _) ->
    {error, einval}.

-spec controlling_process(sslsocket(), pid()) -> ok | {error, reason()}.
controlling_process(Socket, Pid) when ?IS_CONN(Socket), is_pid(Pid) ->
    rssl_nif:controlling_process(Socket, Pid);
controlling_process(#sslsocket{listen = #listen{transport = {rssl_dtls, _}}} = L, Pid)
  when is_pid(Pid) ->
    rssl_dtls:controlling_process(L, Pid);
controlling_process(#sslsocket{listen = #listen{tcp = LSock}}, Pid) when is_pid(Pid) ->
    gen_tcp:controlling_process(LSock, Pid);
controlling_process(_, _) ->
    {error, einval}.

%%% Options ---------------------------------------------------------------

-spec setopts(sslsocket(), [gen_tcp:option()]) -> ok | {error, reason()}.
setopts(Socket, Options) -> rssl_sockopts:setopts(Socket, Options).
-spec getopts(sslsocket(), [gen_tcp:option_name()]) ->
          {ok, [gen_tcp:option()]} | {error, reason()}.
getopts(Socket, Names) -> rssl_sockopts:getopts(Socket, Names).
-spec getstat(sslsocket()) -> {ok, [{inet:stat_option(), integer()}]} | {error, reason()}.
getstat(Socket) -> rssl_sockopts:getstat(Socket).
-spec getstat(sslsocket(), [inet:stat_option()]) ->
          {ok, [{inet:stat_option(), integer()}]} | {error, reason()}.
getstat(Socket, Names) -> rssl_sockopts:getstat(Socket, Names).

%%% Information -------------------------------------------------------------

-spec sockname(sslsocket()) ->
          {ok, {inet:ip_address(), inet:port_number()} | term()} | {error, reason()}.
sockname(#sslsocket{listen = #listen{tcp = LSock, transport = Transport}}) ->
    transport_call(Transport, sockname, LSock);
sockname(Socket) when ?IS_CONN(Socket) ->
    case rssl_pump:transport_of(Socket) of
        {ok, {Module, TSock}} -> transport_call({Module, tags}, sockname, TSock);
        none -> closed_is_einval(rssl_nif:sockname(Socket));
        Error -> Error
    end;
sockname(_) -> {error, einval}.

-spec peername(sslsocket()) ->
          {ok, {inet:ip_address(), inet:port_number()} | term()} | {error, reason()}.
peername(Socket) when ?IS_CONN(Socket) ->
    case rssl_pump:transport_of(Socket) of
        {ok, {Module, TSock}} -> transport_call({Module, tags}, peername, TSock);
        none -> closed_is_einval(rssl_nif:peername(Socket));
        Error -> Error
    end;
peername(#sslsocket{}) -> {error, enotconn};
peername(_) -> {error, einval}.

-spec peercert(sslsocket()) -> {ok, public_key:der_encoded()} | {error, reason()}.
peercert(Socket) when ?IS_CONN(Socket) -> rssl_nif:peercert(Socket);
peercert(_) -> {error, einval}.

-spec connection_information(sslsocket()) -> {ok, connection_info()} | {error, reason()}.
connection_information(Socket) when ?IS_CONN(Socket) ->
    case rssl_nif:info(Socket) of
        {ok, Info} -> {ok, with_cipher_suite(Info)};
        Error -> Error
    end;
connection_information(_) ->
    {error, einval}.

-spec connection_information(sslsocket(), [connection_info_item()]) ->
          {ok, connection_info()} | {error, reason()}.
connection_information(Socket, Items) when is_list(Items) ->
    case connection_information(Socket) of
        {ok, Info0} ->
            %% As OTP: the secrets only when one of these is asked for.
            Secrets = [client_random, server_random, master_secret, keylog],
            Info = case lists:any(fun(K) -> lists:member(K, Secrets) end, Items) of
                       true -> with_secrets(Socket, Info0);
                       false -> Info0
                   end,
            {ok, [I || {K, _} = I <- Info, lists:member(K, Items)]};
        Error -> Error
    end.

%% client_random, server_random, master_secret (TLS 1.2), the TLS 1.3
%% traffic secrets kept with keep_secrets, and the NSS key log lines OTP
%% makes of them (`keylog': TLS 1.2 always, TLS 1.3 with keep_secrets).
with_secrets(Socket, Info) ->
    case rssl_nif:security_info(Socket) of
        {ok, Secrets} -> Info ++ Secrets ++ keylog(lists:keyfind(protocol, 1, Info), Secrets);
        _ -> Info
    end.

keylog({protocol, 'tlsv1.3'}, Secrets) ->
    Lines = [{client_early_data_secret, "CLIENT_EARLY_TRAFFIC_SECRET"},
             {client_handshake_traffic_secret, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"},
             {server_handshake_traffic_secret, "SERVER_HANDSHAKE_TRAFFIC_SECRET"},
             {client_traffic_secret_0, "CLIENT_TRAFFIC_SECRET_0"},
             {server_traffic_secret_0, "SERVER_TRAFFIC_SECRET_0"}],
    case lists:keyfind(client_traffic_secret_0, 1, Secrets) of
        false ->
            [];
        _ ->
            {_, Random} = lists:keyfind(client_random, 1, Secrets),
            [{keylog, [keylog_line(Label, Random, Secret)
                       || {Key, Label} <- Lines, {_, Secret} <- [lists:keyfind(Key, 1, Secrets)]]}]
    end;
keylog({protocol, _}, Secrets) ->
    case {lists:keyfind(client_random, 1, Secrets), lists:keyfind(master_secret, 1, Secrets)} of
        {{_, Random}, {_, Master}} -> [{keylog, [keylog_line("CLIENT_RANDOM", Random, Master)]}];
        _ -> []
    end;
keylog(false, _Secrets) ->
    [].

keylog_line(Label, Random, Secret) ->
    Label ++ " " ++ binary_to_list(binary:encode_hex(Random)) ++ " "
        ++ binary_to_list(binary:encode_hex(Secret)).

%% The spec's `{cipher_suite, {Kex, Cipher, Hash}}' beside OTP 25's map.
with_cipher_suite(Info) ->
    case lists:keyfind(selected_cipher_suite, 1, Info) of
        {_, #{key_exchange := K, cipher := C, mac := M}} ->
            Info ++ [{cipher_suite, {K, C, M}}];
        false ->
            Info
    end.

%% @doc The old API: `{ok, {Protocol, {Kex, Cipher, Mac}}}'.
-spec connection_info(sslsocket()) ->
          {ok, {protocol_version() | undefined, old_cipher_suite() | undefined}}
          | {error, reason()}.
connection_info(Socket) ->
    case connection_information(Socket, [protocol, cipher_suite]) of
        {ok, Info} ->
            {ok, {proplists:get_value(protocol, Info),
                  proplists:get_value(cipher_suite, Info)}};
        Error ->
            Error
    end.

-spec negotiated_protocol(sslsocket()) ->
          {ok, binary()} | {error, protocol_not_negotiated | reason()}.
negotiated_protocol(Socket) ->
    case connection_information(Socket, [negotiated_protocol]) of
        {ok, [{negotiated_protocol, P}]} -> {ok, P};
        {ok, []} -> {error, protocol_not_negotiated};
        Error -> Error
    end.

%% @doc A new handshake on an established TLS 1.2 (or older) connection;
%% `{error, notsup}' on TLS 1.3, which has no renegotiation.
-spec renegotiate(sslsocket()) -> ok | {error, reason()}.
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
-spec update_keys(sslsocket(), write | read_write) -> ok | {error, reason()}.
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
-spec prf(sslsocket(), binary() | master_secret, binary(),
          [binary() | prf_random()], non_neg_integer()) -> {ok, binary()} | {error, reason()}.
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

-spec filter_cipher_suites(ciphers(), cipher_filters()) -> ciphers().
filter_cipher_suites(Suites, Filters) -> ssl:filter_cipher_suites(Suites, Filters).
-spec prepend_cipher_suites(ciphers() | cipher_filters(), ciphers()) -> ciphers().
prepend_cipher_suites(Preferred, Suites) -> ssl:prepend_cipher_suites(Preferred, Suites).
-spec append_cipher_suites(ciphers() | cipher_filters(), ciphers()) -> ciphers().
append_cipher_suites(Deferred, Suites) -> ssl:append_cipher_suites(Deferred, Suites).
-spec suite_to_str(erl_cipher_suite()) -> string().
suite_to_str(Suite) -> ssl:suite_to_str(Suite).
-spec suite_to_openssl_str(erl_cipher_suite()) -> string().
suite_to_openssl_str(Suite) -> ssl:suite_to_openssl_str(Suite).
-spec str_to_suite(string()) -> erl_cipher_suite() | {error, {not_recognized, string()}}.
str_to_suite(Name) -> ssl:str_to_suite(Name).
%% @doc `ssl:tls_version/1': a record-layer version as its TLS version tuple.
-spec tls_version({3 | 254, non_neg_integer()}) -> {3, non_neg_integer()}.
tls_version(Version) -> ssl:tls_version(Version).

%% @doc The key exchange groups `supported_groups' accepts, and (`default')
%% those offered when it is not given; the named curves of ECDHE up to TLS
%% 1.2 (what the `eccs' option takes).
-spec groups() -> [group()].
groups() -> rssl_ciphers:groups(all).
-spec groups(default) -> [group()].
groups(default) -> rssl_ciphers:groups(default).
-spec eccs() -> [named_curve()].
eccs() -> rssl_ciphers:eccs().
-spec eccs(tlsv1 | 'tlsv1.1' | 'tlsv1.2' | dtls_version()) -> [named_curve()].
eccs(Version) when Version =:= 'tlsv1.2'; Version =:= 'tlsv1.1'; Version =:= tlsv1;
                   Version =:= 'dtlsv1.2'; Version =:= dtlsv1 -> eccs().

%% @doc What rssl supports (TLS 1.2 and 1.3 by default, 1.0 and 1.1 when
%% asked for; DTLS 1.2 by default, 1.0 when asked for), in the shape of
%% `ssl:versions/0'.
-spec versions() -> [{ssl_app, string()}
                     | {supported | available | implemented, [tls_version()]}
                     | {supported_dtls | available_dtls | implemented_dtls, [dtls_version()]}].
versions() ->
    Vsn = case application:get_key(rssl, vsn) of
              {ok, V} -> V;
              undefined -> "0.1.0"
          end,
    [{ssl_app, Vsn},
     {supported, ['tlsv1.3', 'tlsv1.2']},
     {supported_dtls, ['dtlsv1.2']},
     {available, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1]},
     {available_dtls, ['dtlsv1.2', dtlsv1]},
     {implemented, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1]},
     {implemented_dtls, ['dtlsv1.2', dtlsv1]}].

%% @doc The old API: `{Kex, Cipher, Mac}' tuples (erlang, all) or OpenSSL names.
-spec cipher_suites() -> [old_cipher_suite()].
cipher_suites() -> cipher_suites(erlang).

-spec cipher_suites(erlang | openssl | all) -> [old_cipher_suite() | string()].
cipher_suites(Type) when Type =:= erlang; Type =:= openssl; Type =:= all ->
    rssl_ciphers:old_suites(Type).

%% @doc Suites as maps for `Description' (default | all | exclusive |
%% anonymous | exclusive_anonymous) and a protocol version.
-spec cipher_suites(default | all | exclusive | anonymous | exclusive_anonymous,
                    protocol_version()) -> [erl_cipher_suite()].
cipher_suites(Description, Version) ->
    rssl_ciphers:suites(Description, Version).

-spec cipher_suites(default | all | exclusive | anonymous | exclusive_anonymous,
                    protocol_version(), rfc | openssl) -> [string()].
cipher_suites(Description, Version, Naming) when Naming =:= rfc; Naming =:= openssl ->
    rssl_ciphers:suites(Description, Version, Naming).

%% @doc Forgets the certificate and key files read so far: configurations
%% made after it read them again.
-spec clear_pem_cache() -> ok.
clear_pem_cache() ->
    rssl_nif:config_clear_cache().

%% @doc A readable text for the `Reason' of an `{error, Reason}' (or for
%% the tuple itself).
-spec format_error(term()) -> string().
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

%% inet-style calls on a transport socket: inet for gen_tcp (as OTP's ssl
%% does), else the callback module's own function.
transport_call({gen_tcp, _}, Function, Sock) -> inet:Function(Sock);
transport_call({Module, _}, Function, Sock) ->
    case erlang:function_exported(Module, Function, 1) of
        true -> Module:Function(Sock);
        false -> inet:Function(Sock)
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
                CloseOnTimeout andalso rssl_nif:close_timed_out(Socket),
                {error, timeout};
            gone ->
                receive {rssl_reply, Tag, Reply} -> Reply end
        end
    end.

%% gen_tcp exits with badarg for many socket options it cannot use (and
%% raises function_clause for some, e.g. {backlog, infinity}); ssl answers
%% {error, {options, {socket_options, Opts}}} for that on connect.
open_transport(Call, TcpOpts) ->
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
                 {ok, Fd} -> rssl_nif:adopt(Fd, Config, Peer, Emulated, Pending, Pump, Initial,
                                           erlang:system_info(scheduler_id));
                 Error -> Error
             end,
    release_port(Tcp),
    Result.

%% Closes the port without making the caller wait: closing an inet port
%% suspends the closing process until the VM's poll thread has let go of
%% the fd (gen_tcp:close/1 and port_close/1 alike, 50-100 us measured),
%% which would delay the handshake. Nothing is lost: the NIF owns a
%% duplicate of the fd and nothing was left to send. Unlinked first, so a
%% caller trapping exits gets no {'EXIT', Port, normal}.
release_port(Port) ->
    unlink(Port),
    _ = spawn(fun() -> catch erlang:port_close(Port) end),
    ok.

%% TLS 1.3 tickets given with `use_ticket' and the early data to send:
%% per connection, kept out of the configuration. A ticket is what
%% `{ssl, session_ticket, Ticket}' gave (a map whose `ticket' is
%% OpenSSL's session) or that session alone; OTP's tickets, which OpenSSL
%% cannot use, are left out, as ssl leaves out what it cannot use.
tickets_by_hand(Peer0, Tls) ->
    Peer1 = case Tls of
                #{use_ticket := Tickets} ->
                    Peer0#{tickets => [Der || T <- Tickets, Der <- [ticket_der(T)], is_binary(Der)]};
                _ -> Peer0
            end,
    Peer = case Tls of
               #{early_data := Data} -> Peer1#{early_data => Data};
               _ -> Peer1
           end,
    {Peer, maps:without([use_ticket, early_data], Tls)}.

ticket_der(#{ticket := Der}) when is_binary(Der) -> Der;
ticket_der(Der) when is_binary(Der) -> Der;
ticket_der(_) -> undefined.
