%% One handshake between the module under test (Mod) and an OTP ssl peer
%% that reports what it saw, for the verification and callback suites.
%% Config carries {pki, _} and {tls_version, _}.
-module(rssl_peer_lib).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([base_opts/1, client_opts/2, server_opts/2, cert_opts/2,
         require_client_cert/2, der/2,
         m_client/4, m_server/4, peer_saw_alert/3,
         client_exchange/2, server_exchange/2]).

-define(PEER, ssl).
-define(T, 10000).

base_opts(Config) ->
    [binary, {active, false}, {versions, [?config(tls_version, Config)]}].

client_opts(Config, Ca) ->
    rssl_test_lib:client_opts(?config(pki, Config), ?config(tls_version, Config), Ca).

server_opts(Config, Cert) ->
    rssl_test_lib:server_opts(?config(pki, Config), ?config(tls_version, Config), Cert).

cert_opts(Config, Name) ->
    rssl_test_pki:server_opts(?config(pki, Config), Name).

require_client_cert(Config, Ca) ->
    #{Ca := #{cert := CaFile}} = ?config(pki, Config),
    [{verify, verify_peer}, {fail_if_no_peer_cert, true}, {cacertfile, CaFile}].

der(Config, Name) ->
    #{Name := #{cert := File}} = ?config(pki, Config),
    rssl_test_pki:der(File).

%% Mod client against an ssl server that reports its side (peer_server/1).
%% Returns {ConnectResult, ServerPid}.
m_client(Mod, COpts, SOpts, Host) ->
    {Server, Port} = rssl_test_lib:start_server(?PEER, SOpts, fun peer_server/1),
    {Mod:connect(Host, Port, COpts, ?T), Server}.

%% Mod server against an ssl client that reports its side (peer_client/1).
%% The client runs in {active, once} mode: ssl delivers an alert that
%% comes after its handshake as {ssl_error, S, Alert} whenever it arrives,
%% where a passive socket would lose it if it came before recv was called
%% (recv then says {error, closed}). Returns {HandshakeResult, ClientPid}.
m_server(Mod, SOpts, COpts, Host) ->
    {ok, L} = Mod:listen(0, [{reuseaddr, true} | SOpts]),
    {ok, {_, Port}} = Mod:sockname(L),
    Client = rssl_test_lib:start_client(?PEER, Host, Port,
                                        rssl_test_lib:merge_opts([{active, once}], COpts),
                                        fun peer_client/1),
    {ok, T} = Mod:transport_accept(L, ?T),
    Result = Mod:handshake(T, ?T),
    ok = Mod:close(L),
    {Result, Client}.

%% ssl server side: after the handshake, what it saw, then "ping"/"pong"
%% and the client's close.
peer_server({ok, S}) ->
    Seen = #{sni => ?PEER:connection_information(S, [sni_hostname]),
             peercert => ?PEER:peercert(S),
             protocol => ?PEER:negotiated_protocol(S)},
    case ?PEER:recv(S, 4, ?T) of
        {ok, <<"ping">>} ->
            ok = ?PEER:send(S, <<"pong">>),
            Seen#{result => ?PEER:recv(S, 0, ?T)};
        Other ->
            Seen#{result => Other}
    end;
peer_server(Error) ->
    Error.

%% ssl client side (active once): "ping", then expects "pong"; result ok,
%% or what came instead: {error, Reason} for {ssl_error, S, Reason},
%% {error, closed} for {ssl_closed, S}, {unexpected, Data} for other data.
peer_client({ok, S}) ->
    Seen = #{server_cert => ?PEER:peercert(S),
             protocol => ?PEER:negotiated_protocol(S)},
    _ = ?PEER:send(S, <<"ping">>),
    Seen#{result => active_reply(S, <<>>)};
peer_client(Error) ->
    Error.

active_reply(S, Got) ->
    receive
        {ssl, S, Data} ->
            case <<Got/binary, Data/binary>> of
                <<"pong">> -> ok;
                <<"pong", _/binary>> = More -> {unexpected, More};
                Part when byte_size(Part) < 4 -> ok = ?PEER:setopts(S, [{active, once}]),
                                                 active_reply(S, Part);
                Other -> {unexpected, Other}
            end;
        {ssl_error, S, Reason} -> {error, Reason};
        {ssl_closed, S} -> {error, closed}
    after ?T -> {error, timeout}
    end.

%% What the ssl client peer saw of a server's alert: the connect result in
%% TLS 1.2; in TLS 1.3 connect succeeded and the alert came after (as
%% {ssl_error, S, Alert}: m_server/4's client is active).
peer_saw_alert(Config, Alert, ClientResult) ->
    case ?config(tls_version, Config) of
        'tlsv1.2' -> ?assertMatch({error, {tls_alert, {Alert, _}}}, ClientResult);
        'tlsv1.3' -> ?assertMatch(#{result := {error, {tls_alert, {Alert, _}}}}, ClientResult)
    end.

client_exchange(Mod, S) ->
    ok = Mod:send(S, <<"ping">>),
    ?assertEqual({ok, <<"pong">>}, Mod:recv(S, 4, ?T)),
    ok = Mod:close(S).

server_exchange(Mod, S) ->
    ?assertEqual({ok, <<"ping">>}, Mod:recv(S, 4, ?T)),
    ok = Mod:send(S, <<"pong">>),
    ?assertEqual({error, closed}, Mod:recv(S, 0, ?T)),
    ok = Mod:close(S).
