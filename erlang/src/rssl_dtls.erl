%% @doc DTLS over UDP (`{protocol, dtls}' in rssl:connect/3,4): the UDP
%% socket is opened and connected with gen_udp, then the NIF adopts its
%% file descriptor, as it does a TCP socket's. The NIF sends each datagram
%% OpenSSL makes with one send(2), hands each record received to the owner
%% as one message (or one recv/2 result), and drives the handshake's
%% retransmission timer on its poller thread.
%%
%% Options are those of TLS, with DTLS versions (`dtlsv1', `''dtlsv1.2''',
%% both by default, as OTP 25), and without the packet framing options
%% (`packet', `header', `packet_size'), which OTP's DTLS refuses too.
-module(rssl_dtls).

-export([is_dtls/1, connect/4]).

-include("rssl_socket.hrl").

-define(VERSIONS, ['dtlsv1.2', dtlsv1]).
-define(TLS_VERSIONS, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1', tlsv1]).
-define(RECBUF, 212992).
%% Socket options that frame a stream: OTP's DTLS refuses them.
-define(FRAMING, [packet, header, packet_size]).

%% @doc Whether an option list asks for DTLS (`{protocol, dtls}'; the first
%% `protocol' option counts, as in OTP).
-spec is_dtls(term()) -> boolean().
is_dtls(Options) when is_list(Options) ->
    case lists:keyfind(protocol, 1, [O || O <- Options, is_tuple(O)]) of
        {protocol, dtls} -> true;
        _ -> false
    end;
is_dtls(_) ->
    false.

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

client_handshake(Udp, Host, SNI, Tls0, Emulated, Deadline) ->
    {Peer, Tls} = rssl_options:hostname_check(rssl_options:peer(Host, SNI, Tls0), Tls0),
    case rssl_handshake:config(client, Tls) of
        {ok, Config} ->
            case adopt(Udp, Config, Peer, Emulated) of
                {ok, Socket} -> rssl_handshake:run(Socket, Deadline, Tls#{role => client});
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
    Result = case prim_inet:getfd(Udp) of
                 {ok, Fd} -> rssl_nif:adopt(Fd, Config, Peer, Emulated, undefined,
                                            undefined, <<>>);
                 Error -> Error
             end,
    gen_udp:close(Udp),
    Result.

%% The options as rssl_options splits TLS ones, with DTLS's versions and
%% refusals.
split(Role, Options) when is_list(Options) ->
    try
        Versions = versions(Options),
        Rest = [O || O <- Options, not is_versions(O)],
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

%% DTLS versions only; a TLS one is refused as OTP refuses a DTLS one
%% among TLS versions ({options, {Version, {versions, List}}}).
versions(Options) ->
    case lists:keyfind(versions, 1, [O || O <- Options, is_tuple(O)]) of
        false ->
            ?VERSIONS;
        {versions, Vs} = Opt when is_list(Vs), Vs =/= [] ->
            [case lists:member(V, ?VERSIONS) of
                 true -> V;
                 false -> throw({options, {V, Opt}})
             end || V <- Vs];
        Opt ->
            throw({options, Opt})
    end.
