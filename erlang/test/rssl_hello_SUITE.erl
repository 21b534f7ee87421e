%% `{handshake, hello}' with the module under test (?M, rssl by default)
%% in either role and OTP's ssl as the peer: the handshake stops after the
%% peer's hello with `{ok, Socket, Extensions}', handshake_continue/2,3
%% finishes it (with options added: a certificate, verification) and
%% handshake_cancel/1 ends it with a user_canceled alert. The extension
%% maps are compared with those OTP's ssl reports for the same peer.
-module(rssl_hello_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).
-define(VERSIONS, ['tlsv1.3', 'tlsv1.2']).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([server_extensions_as_ssl/1, client_extensions_as_ssl/1,
         server_continue_with_certificate/1, client_continue_with_verification/1,
         server_cancel/1, client_cancel/1, continue_elsewhere_and_twice/1,
         continue_from_another_process/1]).

suite() -> [{timetrap, {seconds, 120}}].

all() ->
    [server_extensions_as_ssl, client_extensions_as_ssl,
     server_continue_with_certificate, client_continue_with_verification,
     server_cancel, client_cancel, continue_elsewhere_and_twice,
     continue_from_another_process].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% The same ssl client (SNI, ALPN) reaches a ?M server and an ssl server,
%% both stopping at the hello: the same map (key share keys aside), then
%% the handshake finishes and data flows.
server_extensions_as_ssl(Config) ->
    Pki = ?config(pki, Config),
    [begin
         ClientOpts = client_opts(Pki, V, ca) ++
             [{alpn_advertised_protocols, [<<"h2">>, <<"http/1.1">>]}],
         ServerOpts = server_opts(Pki, V, server) ++ [{handshake, hello}],
         {Ours, S, Client} = server_hello(?M, ServerOpts, ClientOpts),
         {ok, S} = ?M:handshake_continue(S, [], ?T),
         exchange(?M, S, Client),
         {Theirs, S2, Client2} = server_hello(ssl, ServerOpts, ClientOpts),
         {ok, S2} = ssl:handshake_continue(S2, [], ?T),
         exchange(ssl, S2, Client2),
         ?assertEqual(blank_keys(Theirs), blank_keys(Ours)),
         ?assertMatch(#{sni := "localhost", alpn := <<2, "h2", 8, "http/1.1">>}, Ours)
     end || V <- ?VERSIONS].

%% A ?M client and an ssl client stop at the same ssl server's hello: the
%% same map (key share keys aside).
client_extensions_as_ssl(Config) ->
    Pki = ?config(pki, Config),
    [begin
         ClientOpts = client_opts(Pki, V, ca) ++
             [{handshake, hello}, {alpn_advertised_protocols, [<<"h2">>]}],
         ServerOpts = server_opts(Pki, V, server) ++ [{alpn_preferred_protocols, [<<"h2">>]}],
         Ours = client_hello_map(?M, ServerOpts, ClientOpts),
         Theirs = client_hello_map(ssl, ServerOpts, ClientOpts),
         ?assertEqual(blank_keys(Theirs), blank_keys(Ours))
     end || V <- ?VERSIONS].

%% The listener's certificate is one the client does not trust; at the
%% hello, the server continues with the certificate for the name asked.
%% Without it, the client refuses the server.
server_continue_with_certificate(Config) ->
    Pki = ?config(pki, Config),
    [begin
         ServerOpts = server_opts(Pki, V, other_server) ++ [{handshake, hello}],
         {#{sni := "localhost"}, S, Client} = server_hello(?M, ServerOpts, client_opts(Pki, V, ca)),
         {ok, S} = ?M:handshake_continue(S, rssl_test_pki:server_opts(Pki, server), ?T),
         exchange(?M, S, Client),
         {_, S2, Client2} = server_hello(?M, ServerOpts, client_opts(Pki, V, ca)),
         {error, _} = ?M:handshake_continue(S2, [], ?T),
         ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, client_result(Client2))
     end || V <- ?VERSIONS].

%% A client that does not verify at first: verification added at the hello
%% acts (the wrong CA fails the handshake, the right one passes).
client_continue_with_verification(Config) ->
    Pki = ?config(pki, Config),
    [begin
         ClientOpts = [binary, {active, false}, {versions, [V]}, {verify, verify_none},
                       {server_name_indication, "localhost"}, {handshake, hello}],
         ServerOpts = server_opts(Pki, V, server),
         {Pid, Port} = start_server(ssl, ServerOpts),
         {ok, S, _} = ?M:connect({127, 0, 0, 1}, Port, ClientOpts, ?T),
         ?assertMatch({error, {tls_alert, {unknown_ca, _}}},
                      ?M:handshake_continue(S, rssl_test_pki:client_opts(Pki, other_ca), ?T)),
         {error, _} = server_result(Pid),
         {Pid2, Port2} = start_server(ssl, ServerOpts),
         {ok, S2, _} = ?M:connect({127, 0, 0, 1}, Port2, ClientOpts, ?T),
         {ok, S2} = ?M:handshake_continue(S2, rssl_test_pki:client_opts(Pki, ca), ?T),
         exchange_with_server(?M, S2, Pid2)
     end || V <- ?VERSIONS].

%% A ?M server cancels at the hello: the ssl client gets user_canceled.
server_cancel(Config) ->
    Pki = ?config(pki, Config),
    [begin
         ServerOpts = server_opts(Pki, V, server) ++ [{handshake, hello}],
         {_, S, Client} = server_hello(?M, ServerOpts, client_opts(Pki, V, ca)),
         ok = ?M:handshake_cancel(S),
         ?assertMatch({error, {tls_alert, {user_canceled, _}}}, client_result(Client))
     end || V <- ?VERSIONS].

%% A ?M client cancels at the ServerHello: the ssl server gets
%% user_canceled (in TLS 1.3 the alert is protected, as ssl's own).
client_cancel(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {Pid, Port} = start_server(ssl, server_opts(Pki, V, server)),
         ClientOpts = client_opts(Pki, V, ca) ++ [{handshake, hello}],
         {ok, S, _} = ?M:connect({127, 0, 0, 1}, Port, ClientOpts, ?T),
         ok = ?M:handshake_cancel(S),
         ?assertMatch({error, {tls_alert, {user_canceled, _}}}, server_result(Pid))
     end || V <- ?VERSIONS].

%% A handshake not stopped cannot be continued; one continued cannot be
%% continued again (rssl only: OTP's answers differ by state).
continue_elsewhere_and_twice(Config) ->
    Pki = ?config(pki, Config),
    V = 'tlsv1.3',
    ServerOpts = server_opts(Pki, V, server) ++ [{handshake, hello}],
    {_, S, Client} = server_hello(?M, ServerOpts, client_opts(Pki, V, ca)),
    {ok, S} = ?M:handshake_continue(S, [], ?T),
    case ?M of
        rssl ->
            {error, einval} = rssl:handshake_continue(S, [], ?T),
            {error, einval} = rssl:handshake_cancel(S),
            {error, einval} = rssl:handshake_continue(not_a_socket, [], ?T);
        _ ->
            ok
    end,
    exchange(?M, S, Client).

%% Any process may continue or cancel a handshake stopped at the hello,
%% as with OTP's ssl: the caller gets the result, the socket stays its
%% owner's. Options the continuation refuses leave the handshake stopped
%% (rssl only).
continue_from_another_process(Config) ->
    Pki = ?config(pki, Config),
    V = 'tlsv1.3',
    ServerOpts = server_opts(Pki, V, server) ++ [{handshake, hello}],
    {_, S, Client} = server_hello(?M, ServerOpts, client_opts(Pki, V, ca)),
    case ?M of
        rssl ->
            ?assertMatch({error, {options, _}},
                         in_another_process(
                           fun() -> rssl:handshake_continue(S, [{verify, bogus}], ?T) end));
        _ ->
            ok  % OTP 25's connection process crashes on them
    end,
    {ok, S} = in_another_process(fun() -> ?M:handshake_continue(S, [], ?T) end),
    exchange(?M, S, Client),
    {_, S2, Client2} = server_hello(?M, ServerOpts, client_opts(Pki, V, ca)),
    ok = in_another_process(fun() -> ?M:handshake_cancel(S2) end),
    ?assertMatch({error, {tls_alert, {user_canceled, _}}}, client_result(Client2)).

in_another_process(Fun) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({result, Fun()}) end),
    receive {'DOWN', Ref, process, Pid, {result, Result}} -> Result
    after ?T -> error(no_result)
    end.

%%% Helpers -----------------------------------------------------------------

client_opts(Pki, V, Ca) ->
    rssl_test_lib:client_opts(Pki, V, Ca) ++ [{server_name_indication, "localhost"}].

server_opts(Pki, V, Cert) ->
    rssl_test_lib:server_opts(Pki, V, Cert).

%% Mod listens with ServerOpts, an ssl client connects with ClientOpts;
%% returns the hello's map, the stopped socket and the client process.
server_hello(Mod, ServerOpts, ClientOpts) ->
    {ok, L} = Mod:listen(0, [{reuseaddr, true} | ServerOpts]),
    {ok, {_, Port}} = Mod:sockname(L),
    Client = start_client(ssl, Port, ClientOpts),
    {ok, T} = Mod:transport_accept(L, ?T),
    {ok, S, Ext} = Mod:handshake(T, ?T),
    ok = Mod:close(L),
    {Ext, S, Client}.

%% The map Mod's client gets at an ssl server's hello (then it goes on).
client_hello_map(Mod, ServerOpts, ClientOpts) ->
    {Pid, Port} = start_server(ssl, ServerOpts),
    {ok, S, Ext} = Mod:connect({127, 0, 0, 1}, Port, ClientOpts, ?T),
    {ok, S} = Mod:handshake_continue(S, [], ?T),
    exchange_with_server(Mod, S, Pid),
    Ext.

%% An ssl client process: reports its connect result, then echoes one
%% message and waits for the close.
start_client(Mod, Port, Opts) ->
    Parent = self(),
    spawn_link(fun() ->
                       Result = Mod:connect({127, 0, 0, 1}, Port, Opts, ?T),
                       Parent ! {self(), connected, Result},
                       echo_once(Mod, Result)
               end).

client_result(Pid) ->
    receive {Pid, connected, Result} -> Result
    after ?T -> error(client_silent)
    end.

%% An ssl server process for one connection: reports its handshake
%% result, then echoes one message.
start_server(Mod, Opts) ->
    Parent = self(),
    Pid = spawn_link(fun() ->
                             {ok, L} = Mod:listen(0, [{reuseaddr, true} | Opts]),
                             {ok, {_, Port}} = Mod:sockname(L),
                             Parent ! {self(), port, Port},
                             {ok, T} = Mod:transport_accept(L, ?T),
                             Result = Mod:handshake(T, ?T),
                             ok = Mod:close(L),
                             Parent ! {self(), connected, Result},
                             echo_once(Mod, Result)
                     end),
    receive {Pid, port, Port} -> {Pid, Port}
    after ?T -> error(server_did_not_listen)
    end.

server_result(Pid) -> client_result(Pid).

echo_once(Mod, {ok, S}) ->
    {ok, Data} = Mod:recv(S, 0, ?T),
    ok = Mod:send(S, Data),
    {error, closed} = Mod:recv(S, 0, ?T);
echo_once(_Mod, _) ->
    ok.

exchange(Mod, S, Client) ->
    {ok, _} = client_result(Client),
    ok = Mod:send(S, <<"ping">>),
    {ok, <<"ping">>} = Mod:recv(S, 4, ?T),
    ok = Mod:close(S).

exchange_with_server(Mod, S, Pid) ->
    exchange(Mod, S, Pid).

%% Key shares carry fresh public keys each time.
blank_keys(Ext = #{key_share := Shares}) when is_list(Shares) ->
    Ext#{key_share := [{key_share_entry, G, key} || {key_share_entry, G, _} <- Shares]};
blank_keys(Ext = #{key_share := {key_share_entry, G, _}}) ->
    Ext#{key_share := {key_share_entry, G, key}};
blank_keys(Ext) ->
    Ext.
