%% One handshake between the module under test (Mod) and an OTP ssl peer
%% that reports what it saw, for the verification and callback suites.
%% Config carries {pki, _} and {tls_version, _}.
-module(rssl_peer_lib).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([base_opts/1, client_opts/2, server_opts/2, cert_opts/2,
         require_client_cert/2, der/2,
         m_client/4, m_server/4, peer_saw_alert/3, after_alert/2,
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
%% Returns {HandshakeResult, ClientPid}.
m_server(Mod, SOpts, COpts, Host) ->
    {ok, L} = Mod:listen(0, [{reuseaddr, true} | SOpts]),
    {ok, {_, Port}} = Mod:sockname(L),
    Client = rssl_test_lib:start_client(?PEER, Host, Port, COpts, fun peer_client/1),
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

%% ssl client side: "ping", then expects "pong"; result ok or what recv said.
peer_client({ok, S}) ->
    Seen = #{server_cert => ?PEER:peercert(S),
             protocol => ?PEER:negotiated_protocol(S)},
    _ = ?PEER:send(S, <<"ping">>),
    case ?PEER:recv(S, 4, ?T) of
        {ok, <<"pong">>} -> Seen#{result => ok};
        Other -> Seen#{result => Other}
    end;
peer_client(Error) ->
    Error.

%% What the ssl client peer saw of a server's alert: the connect result in
%% TLS 1.2; in TLS 1.3 connect succeeded and the alert came after.
peer_saw_alert(Config, Alert, ClientResult) ->
    case ?config(tls_version, Config) of
        'tlsv1.2' -> ?assertMatch({error, {tls_alert, {Alert, _}}}, ClientResult);
        'tlsv1.3' -> after_alert(Alert, maps:get(result, ClientResult))
    end.

%% A TLS 1.3 client's first recv after the server rejected it: the alert,
%% or {error, closed} if the alert was processed before recv was called
%% (ssl does that when the alert arrives first).
after_alert(Alert, {error, {tls_alert, {Alert, _}}}) -> ok;
after_alert(_Alert, {error, closed}) -> ok;
after_alert(Alert, Other) -> ct:fail({expected_alert, Alert, got, Other}).

client_exchange(Mod, S) ->
    ok = Mod:send(S, <<"ping">>),
    ?assertEqual({ok, <<"pong">>}, Mod:recv(S, 4, ?T)),
    ok = Mod:close(S).

server_exchange(Mod, S) ->
    ?assertEqual({ok, <<"ping">>}, Mod:recv(S, 4, ?T)),
    ok = Mod:send(S, <<"pong">>),
    ?assertEqual({error, closed}, Mod:recv(S, 0, ?T)),
    ok = Mod:close(S).
