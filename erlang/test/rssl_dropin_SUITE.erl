%% Drop-in: one HTTP/1.1-over-TLS server and client, written against the
%% `ssl' API with the module as a parameter (rssl_dropin_http), run with
%% ssl on both ends, with the module under test on both ends, and mixed
%% (ssl client to ?M server and the reverse). Every run must observe
%% exactly what the ssl-to-ssl run observes, field by field: results of
%% listen, transport_accept/2, handshake/2,3, connect/3,4, recv/3, send,
%% setopts, getopts, getstat, controlling_process, peername, sockname,
%% peercert, shutdown, close, negotiated_protocol, connection_information,
%% the messages of active once, and the errors of failed handshakes.
%% versions/0, cipher_suites/2, filter_cipher_suites/2 and format_error/1
%% are compared where rssl does not list a deliberate difference (README).
-module(rssl_dropin_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([http_tls13/1, http_tls12/1, http_connect3/1, unknown_ca/1, wrong_host/1,
         connection_refused/1, versions_as_ssl/1, dtls_suites_as_ssl/1, cipher_suite_helpers/1,
         format_error_as_ssl/1, peer_gone_in_handshake/1,
         bad_arguments/1]).

suite() -> [{timetrap, {seconds, 120}}].

all() ->
    [http_tls13, http_tls12, http_connect3, unknown_ca, wrong_host, connection_refused,
     versions_as_ssl, dtls_suites_as_ssl, cipher_suite_helpers, format_error_as_ssl,
     peer_gone_in_handshake, bad_arguments].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

http_tls13(Config) ->
    same_in_every_pair(Config, fun(Client, Server) -> http(Config, Client, Server, 'tlsv1.3', ?T) end).

http_tls12(Config) ->
    same_in_every_pair(Config, fun(Client, Server) -> http(Config, Client, Server, 'tlsv1.2', ?T) end).

%% connect/3 (no timeout), and the handshake/3 path of the server (its
%% second connection).
http_connect3(Config) ->
    same_in_every_pair(Config,
                       fun(Client, Server) ->
                               Pki = ?config(pki, Config),
                               Srv = rssl_dropin_http:start_server(Server, server_opts(Pki, 'tlsv1.3')),
                               Port = rssl_dropin_http:server_port(Srv),
                               Opts = client_opts(Pki, Client, 'tlsv1.3', ca),
                               C1 = rssl_dropin_http:client(Client, Port, Opts, none),
                               S1 = rssl_dropin_http:server_observations(Srv),
                               C2 = rssl_dropin_http:client(Client, Port, Opts, none),
                               S2 = rssl_dropin_http:server_observations(Srv),
                               ok = rssl_dropin_http:stop_server(Srv),
                               #{client1 => C1, server1 => S1, client2 => C2, server2 => S2}
                       end).

%% The client trusts another CA: both ends fail with unknown_ca.
unknown_ca(Config) ->
    failed_handshake(Config, server, other_ca).

%% The certificate names another host: the client refuses it.
wrong_host(Config) ->
    failed_handshake(Config, wrong_host, ca).

connection_refused(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = gen_tcp:listen(0, []),
    {ok, Port} = inet:port(L),
    ok = gen_tcp:close(L),
    Run = fun(Mod) -> rssl_dropin_http:client(Mod, Port, client_opts(Pki, Mod, 'tlsv1.3', ca), ?T) end,
    ?assertEqual([{connect, {error, econnrefused}}], Run(ssl)),
    ?assertEqual(Run(ssl), Run(?M)).

%% versions/0 as ssl's, but for the application's own version.
versions_as_ssl(_Config) ->
    View = fun(Mod) -> [I || {K, _} = I <- Mod:versions(), K =/= ssl_app] end,
    ?assertEqual(View(ssl), View(?M)),
    ?assertMatch({ssl_app, [_ | _]}, lists:keyfind(ssl_app, 1, ?M:versions())).

%% The DTLS versions list the suites of the TLS version each is built on
%% but RC4, as OTP's do; their curves are TLS's.
dtls_suites_as_ssl(_Config) ->
    Shape = fun(Mod) ->
                    [{D, Dv, Mod:cipher_suites(D, Dv) =:=
                             [S || #{cipher := C} = S <- Mod:cipher_suites(D, Tv), C =/= rc4_128]}
                     || D <- [default, all, exclusive, anonymous, exclusive_anonymous],
                        {Dv, Tv} <- [{'dtlsv1.2', 'tlsv1.2'}, {dtlsv1, 'tlsv1.1'}]]
            end,
    ?assertEqual(Shape(ssl), Shape(?M)),
    ?assert(lists:all(fun({_, _, Same}) -> Same end, Shape(?M))),
    ?assert(length(?M:cipher_suites(default, 'dtlsv1.2')) > 0),
    ?assertEqual(?M:cipher_suites(default, 'dtlsv1.2', rfc) -- ?M:cipher_suites(default, 'tlsv1.2', rfc), []),
    [?assertEqual(?M:eccs(), ?M:eccs(V)) || V <- ['dtlsv1.2', dtlsv1]].

%% What Mint and hackney do with the suite helpers: list the suites of a
%% version, filter them, give them back in `ciphers' (the http cases do
%% that, each client with its own module's lists). The lists are OpenSSL's
%% (README: differences), so compared here: filtering the same list gives
%% the same result; the TLS 1.3 suites of `all' are ssl's, those of
%% `default' are among ssl's; every default suite is in `all'.
cipher_suite_helpers(_Config) ->
    Input = ssl:cipher_suites(all, 'tlsv1.2') ++ ssl:cipher_suites(all, 'tlsv1.3'),
    Filters = [[{key_exchange, fun(K) -> K =:= ecdhe_ecdsa end}],
               [{cipher, fun(C) -> C =:= aes_256_gcm end}, {mac, fun(M) -> M =:= aead end}],
               [{prf, fun(P) -> P =:= sha384 end}],
               []],
    [?assertEqual(ssl:filter_cipher_suites(Input, F), ?M:filter_cipher_suites(Input, F))
     || F <- Filters],
    Tls13 = fun(Mod, Desc) -> lists:sort([S || #{key_exchange := any} = S <- Mod:cipher_suites(Desc, 'tlsv1.3')]) end,
    ?assertEqual(Tls13(ssl, all), Tls13(?M, all)),
    ?assertEqual([], Tls13(?M, default) -- Tls13(ssl, default)),
    ?assert(length(Tls13(?M, default)) >= 3),
    %% For TLS 1.3, `default' and `all' go on with the TLS 1.2 suites of
    %% the same description; the others have the TLS 1.3 ones alone.
    Shape = fun(Mod) ->
                    [{D, Mod:cipher_suites(D, 'tlsv1.3') =:=
                             [S || #{key_exchange := any} = S <- Mod:cipher_suites(D, 'tlsv1.3')]
                             ++ Mod:cipher_suites(D, 'tlsv1.2'),
                      [S || #{key_exchange := K} = S <- Mod:cipher_suites(D, 'tlsv1.3'), K =/= any] =:= []}
                     || D <- [default, all, exclusive, anonymous, exclusive_anonymous]]
            end,
    ?assertEqual([{default, true, false}, {all, true, false}, {exclusive, false, true},
                  {anonymous, false, true}, {exclusive_anonymous, false, true}], Shape(ssl)),
    ?assertEqual(Shape(ssl), Shape(?M)),
    %% cipher_suites/3 names the same suites, in the same order (checked
    %% for those OTP can name).
    [begin
         Named = lists:zip(?M:cipher_suites(D, V), ?M:cipher_suites(D, V, rfc)),
         Known = ssl:cipher_suites(all, V),
         ?assertEqual([{S, ssl:suite_to_str(S)} || {S, _} <- Named, lists:member(S, Known)],
                      [{S, N} || {S, N} <- Named, lists:member(S, Known)])
     end || D <- [default, all, exclusive], V <- ['tlsv1.3', 'tlsv1.2']],
    [?assert(lists:member(S, ?M:cipher_suites(all, V)))
     || V <- ['tlsv1.3', 'tlsv1.2'], S <- ?M:cipher_suites(default, V)].

format_error_as_ssl(_Config) ->
    Reasons = [closed, timeout, econnrefused, einval, enotconn, nxdomain, emfile,
               {tls_alert, {unknown_ca, "TLS client: unknown ca"}},
               {options, {versions, [sslv2]}}, {options, {not_a_list, foo}},
               {error, closed}, protocol_not_negotiated, no_peercert,
               {badarg, {packet_to_large, 70000, 65535}}],
    [?assertEqual({R, ssl:format_error(R)}, {R, ?M:format_error(R)}) || R <- Reasons].

%% A peer that closes the TCP connection during the handshake: the server's
%% handshake and the client's connect return {error, closed}. The peer
%% is plain gen_tcp, sending half a ClientHello (or reading the client's)
%% and closing.
peer_gone_in_handshake(Config) ->
    Pki = ?config(pki, Config),
    Run = fun(Mod) ->
                  {ok, L} = Mod:listen(0, [binary, {active, false} | server_opts(Pki, 'tlsv1.3')]),
                  {ok, {_, Port}} = Mod:sockname(L),
                  {ok, C} = gen_tcp:connect("localhost", Port, [binary, {active, false}]),
                  ok = gen_tcp:send(C, <<22, 3, 1, 2, 0, 1, 0, 1, 252, 3, 3>>),
                  {ok, T} = Mod:transport_accept(L, ?T),
                  ok = gen_tcp:close(C),
                  Server = Mod:handshake(T, ?T),
                  ok = Mod:close(L),
                  {ok, TL} = gen_tcp:listen(0, [binary, {active, false}]),
                  {ok, TPort} = inet:port(TL),
                  Self = self(),
                  Closer = spawn_link(fun() ->
                                              {ok, A} = gen_tcp:accept(TL, ?T),
                                              {ok, _Hello} = gen_tcp:recv(A, 0, ?T),
                                              ok = gen_tcp:close(A),
                                              Self ! {self(), closed}
                                      end),
                  Client = Mod:connect("localhost", TPort, client_opts(Pki, Mod, 'tlsv1.3', ca), ?T),
                  receive {Closer, closed} -> ok end,
                  ok = gen_tcp:close(TL),
                  #{server => Server, client => Client}
          end,
    ?assertEqual(#{server => {error, closed}, client => {error, closed}}, Run(ssl)),
    ?assertEqual(Run(ssl), Run(?M)).

%% Bad arguments: rssl answers an error and the connection stays usable,
%% where OTP 25's ssl raises function_clause (or, for shutdown/2 and
%% prf/5, crashes the connection) (README: differences).
bad_arguments(Config) ->
    Pki = ?config(pki, Config),
    Srv = rssl_dropin_http:start_server(ssl, server_opts(Pki, 'tlsv1.2')),
    Port = rssl_dropin_http:server_port(Srv),
    bad_arguments(?M, Pki, Port),
    _ = rssl_dropin_http:server_observations(Srv),
    ok = rssl_dropin_http:stop_server(Srv).

bad_arguments(rssl, Pki, Port) ->
    Opts = [binary, {active, false} | client_opts(Pki, rssl, 'tlsv1.2', ca)],
    ?assertEqual({error, {options, {timeout, -5}}}, rssl:connect("localhost", Port, Opts, -5)),
    {ok, S} = rssl:connect("localhost", Port, Opts, ?T),
    ?assertEqual({error, badarg}, rssl:prf(S, master_secret, <<"l">>, [bogus], 10)),
    ?assertEqual({error, einval}, rssl:shutdown(S, sideways)),
    ?assertEqual({error, einval}, rssl:controlling_process(S, bogus)),
    ?assertEqual({error, einval}, rssl:recv(S, -1, 0)),
    ?assertEqual({error, einval}, rssl:recv(S, 0, bogus)),
    ?assertEqual({error, einval}, rssl:send(S, [bogus])),
    ?assertEqual({error, einval}, rssl:close(S, bogus)),
    ?assertEqual({error, einval}, rssl:transport_accept(bogus, 0)),
    ?assertEqual({error, notsup}, rssl:update_keys(S, write)),
    ?assertEqual({error, {illegal_parameter, sideways}}, rssl:update_keys(S, sideways)),
    ?assertEqual({error, protocol_not_negotiated}, rssl:negotiated_protocol(S)),
    %% Still a working connection.
    ok = rssl:send(S, <<"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n">>),
    ?assertMatch({ok, <<"HTTP/1.1 200", _/binary>>}, rssl:recv(S, 0, ?T)),
    ok = rssl:close(S);
bad_arguments(ssl, _Pki, Port) ->
    {ok, S} = gen_tcp:connect("localhost", Port, []),
    ok = gen_tcp:close(S).

%%% Helpers -----------------------------------------------------------------

%% Runs Fun(Client, Server) for ssl-ssl, then ?M-?M, ssl-?M and ?M-ssl;
%% each must return what ssl-ssl returned.
same_in_every_pair(_Config, Fun) ->
    Want = Fun(ssl, ssl),
    ct:log("ssl to ssl: ~p", [Want]),
    [begin
         Got = Fun(Client, Server),
         case Got =:= Want of
             true -> ok;
             false -> ct:fail({differs_from_ssl, {client, Client}, {server, Server},
                               diff(Want, Got)})
         end
     end || {Client, Server} <- [{?M, ?M}, {ssl, ?M}, {?M, ssl}]],
    ok.

%% The fields that differ, as {Field, Ssl, Other}.
diff(Want, Got) when is_map(Want), is_map(Got) ->
    [{K, diff(V, maps:get(K, Got, missing))} || {K, V} <- maps:to_list(Want),
                                                V =/= maps:get(K, Got, missing)];
diff(Want, Got) when is_list(Want), is_list(Got), length(Want) =:= length(Got) ->
    [{W, G} || {W, G} <- lists:zip(Want, Got), W =/= G];
diff(Want, Got) ->
    {Want, Got}.

%% One server, two clients (connect/4), each running three requests.
http(Config, Client, Server, V, Timeout) ->
    Pki = ?config(pki, Config),
    Srv = rssl_dropin_http:start_server(Server, server_opts(Pki, V)),
    Port = rssl_dropin_http:server_port(Srv),
    Opts = client_opts(Pki, Client, V, ca),
    C1 = rssl_dropin_http:client(Client, Port, Opts, Timeout),
    S1 = rssl_dropin_http:server_observations(Srv),
    C2 = rssl_dropin_http:client(Client, Port, Opts, Timeout),
    S2 = rssl_dropin_http:server_observations(Srv),
    #{listen_obs := ListenObs} = Srv,
    ok = rssl_dropin_http:stop_server(Srv),
    #{listen => ListenObs, client1 => C1, server1 => S1, client2 => C2, server2 => S2}.

failed_handshake(Config, Cert, Ca) ->
    same_in_every_pair(Config,
                       fun(Client, Server) ->
                               Pki = ?config(pki, Config),
                               Srv = rssl_dropin_http:start_server(
                                       Server, [{versions, ['tlsv1.3']} | rssl_test_pki:server_opts(Pki, Cert)]),
                               Port = rssl_dropin_http:server_port(Srv),
                               C = rssl_dropin_http:client(Client, Port, client_opts(Pki, Client, 'tlsv1.3', Ca), ?T),
                               S = rssl_dropin_http:server_observations(Srv),
                               ok = rssl_dropin_http:stop_server(Srv),
                               #{client => C, server => S}
                       end).

server_opts(Pki, V) ->
    [{versions, [V]} | rssl_test_pki:server_opts(Pki, server)].

%% As Mint and hackney configure a client: verify_peer, the CA, SNI, the
%% https host name check, and the module's own default suites.
client_opts(Pki, Mod, V, Ca) ->
    [{versions, [V]}, {server_name_indication, "localhost"},
     {customize_hostname_check, [{match_fun, public_key:pkix_verify_hostname_match_fun(https)}]},
     {ciphers, rssl_dropin_http:ciphers(Mod, [V])}
     | rssl_test_pki:client_opts(Pki, Ca)].
