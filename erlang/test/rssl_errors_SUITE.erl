%% Error paths of the module under test (?M, rssl by default): timeouts,
%% bad options, closed sockets, refused connections, owners that exit, and
%% no leaked descriptors or ports afterwards. The peer, where one is needed,
%% is OTP's ssl.
%%
%% Compile with {d, 'M', ssl} to run the same checks with ssl on both ends.
-module(rssl_errors_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).
-define(V, 'tlsv1.3').

-export([suite/0, all/0,
         init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([recv_timeout/1, recv_exact_timeout_keeps_data/1,
         bad_options_connect/1, bad_options_listen/1, bad_options_exact_terms/1,
         non_tuple_option/1, missing_certfile_server/1,
         peer_close_active/1, peer_close_passive/1, send_after_close/1,
         connect_refused/1, transport_accept_timeout/1,
         pending_transport_accept_listener_closed/1,
         handshake_timeout/1, connect_timeout/1,
         owner_exit_closes_connection/1, owner_exit_closes_listener/1,
         many_connections_no_leak/1]).

suite() -> [{timetrap, {seconds, 30}}].

all() ->
    [recv_timeout, recv_exact_timeout_keeps_data,
     bad_options_connect, bad_options_listen, bad_options_exact_terms,
     non_tuple_option, missing_certfile_server,
     peer_close_active, peer_close_passive, send_after_close,
     connect_refused, transport_accept_timeout,
     pending_transport_accept_listener_closed,
     handshake_timeout, connect_timeout,
     owner_exit_closes_connection, owner_exit_closes_listener,
     many_connections_no_leak].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Timeouts ---------------------------------------------------------------

%% recv with a timeout and nothing to read: {error, timeout}, and the
%% connection carries on in both directions.
recv_timeout(Config) ->
    for_roles(Config, [],
              fun(S, Peer) ->
                      ?assertEqual({error, timeout}, ?M:recv(S, 0, 100)),
                      ?assertEqual({error, timeout}, ?M:recv(S, 10, 100)),
                      ok = rssl_test_lib:call(Peer, {send, <<"hello">>}),
                      ?assertEqual({ok, <<"hello">>}, ?M:recv(S, 0, ?T)),
                      ok = ?M:send(S, <<"back">>),
                      ?assertEqual({ok, <<"back">>}, rssl_test_lib:call(Peer, {recv, 4, ?T}))
              end).

%% recv(S, N) that times out with fewer than N bytes there keeps them.
recv_exact_timeout_keeps_data(Config) ->
    for_roles(Config, [],
              fun(S, Peer) ->
                      ok = rssl_test_lib:call(Peer, {send, <<"abc">>}),
                      ?assertEqual({error, timeout}, ?M:recv(S, 5, 200)),
                      ok = rssl_test_lib:call(Peer, {send, <<"defgh">>}),
                      ?assertEqual({ok, <<"abcde">>}, ?M:recv(S, 5, ?T)),
                      ?assertEqual({ok, <<"fgh">>}, ?M:recv(S, 0, ?T))
              end).

%%% Bad options ------------------------------------------------------------

%% Each bad option: {error, {options, _}} from connect, while a listener and
%% a connection of ?M keep working.
bad_options_connect(Config) ->
    with_live_connection(
      Config,
      fun(Port) ->
              [begin
                   Opts = [binary, {active, false} | Bad],
                   Result = (catch ?M:connect({127, 0, 0, 1}, Port, Opts, ?T)),
                   ?assertMatch({Bad, {error, {options, _}}}, {Bad, Result})
               end || {Bad, _Exact} <- bad_connect_options()]
      end).

%% Each bad option: {error, {options, _}} from listen, ditto.
bad_options_listen(Config) ->
    with_live_connection(
      Config,
      fun(_Port) ->
              [begin
                   Opts = [binary, {active, false}, {reuseaddr, true} | Bad] ++ cert_opts(Config),
                   Result = (catch ?M:listen(0, Opts)),
                   ?assertMatch({Bad, {error, {options, _}}}, {Bad, Result})
               end || {Bad, _Exact} <- bad_listen_options()]
      end).

%% The exact terms OTP 25's ssl gives for those options.
bad_options_exact_terms(Config) ->
    with_live_connection(
      Config,
      fun(Port) ->
              [?assertEqual({connect, Bad, {error, {options, Exact}}},
                            {connect, Bad, catch ?M:connect({127, 0, 0, 1}, Port,
                                                            [binary, {active, false} | Bad], ?T)})
               || {Bad, Exact} <- bad_connect_options(), Exact =/= any],
              [?assertEqual({listen, Bad, {error, {options, Exact}}},
                            {listen, Bad, catch ?M:listen(0, [binary, {reuseaddr, true} | Bad]
                                                          ++ cert_opts(Config))})
               || {Bad, Exact} <- bad_listen_options()]
      end).

%% Bad options for connect, with what ssl returns inside {options, _}
%% (`any' where the term is not worth pinning down).
bad_connect_options() ->
    Missing = "/nonexistent/rssl/cert.pem",
    MissingCa = "/nonexistent/rssl/ca.pem",
    [{[{verify, bogus}], {verify, bogus}},
     {[{verify, "verify_peer"}], {verify, "verify_peer"}},
     {[{verify, verify_none}, {versions, [bogus]}], {bogus, {versions, [bogus]}}},
     {[{verify, verify_none}, {versions, ['tlsv1.9']}], {'tlsv1.9', {versions, ['tlsv1.9']}}},
     %% keyfile defaults to certfile, and ssl reports the key it could not read.
     {[{verify, verify_none}, {certfile, Missing}], {keyfile, Missing, {error, enoent}}},
     {[{verify, verify_peer}, {cacertfile, MissingCa}], {cacertfile, MissingCa, {error, enoent}}},
     {[{verify, verify_peer}], {cacertfile, []}},
     {[{verify, verify_none}, {active, bogus}], {active, bogus}},
     {[{verify, verify_none}, {mode, bogus}], {mode, bogus}},
     {[{verify, verify_none}, {server_name_indication, 42}], {server_name_indication, 42}},
     {[{verify, verify_none}, {depth, bogus}], {depth, bogus}},
     {[{verify, verify_none}, {reuse_sessions, bogus}], {reuse_sessions, bogus}},
     {[{verify, verify_none}, {alpn_advertised_protocols, [<<>>]}],
      {alpn_advertised_protocols, {invalid_protocol, <<>>}}},
     %% ssl hands unknown options to inet and reports all socket options.
     {[{verify, verify_none}, {foo, bar}], any}].

bad_listen_options() ->
    [{[{verify, bogus}], {verify, bogus}},
     {[{verify, "verify_peer"}], {verify, "verify_peer"}},
     {[{versions, [bogus]}], {bogus, {versions, [bogus]}}},
     {[{versions, ['tlsv1.9']}], {'tlsv1.9', {versions, ['tlsv1.9']}}},
     {[{verify, verify_peer}], {cacertfile, []}},
     {[{active, bogus}], {active, bogus}},
     {[{mode, bogus}], {mode, bogus}},
     {[{depth, bogus}], {depth, bogus}},
     {[{reuse_sessions, bogus}], {reuse_sessions, bogus}},
     {[{fail_if_no_peer_cert, bogus}], {fail_if_no_peer_cert, bogus}}].

%% An option that is not a {Key, Value} tuple (nor a known atom such as
%% binary): each module's exact answer (non_tuple_answer/2). Nothing else
%% breaks either way.
non_tuple_option(Config) ->
    with_live_connection(
      Config,
      fun(Port) ->
              [begin
                   ?assertEqual({Bad, non_tuple_answer(?M, connect, Bad)},
                                {Bad, ?M:connect({127, 0, 0, 1}, Port,
                                                 [binary, Bad, {verify, verify_none}], ?T)}),
                   Listen = try ?M:listen(0, [binary, Bad, {reuseaddr, true} | cert_opts(Config)])
                            catch throw:Thrown -> {thrown, Thrown}
                            end,
                   ?assertEqual({Bad, non_tuple_answer(?M, listen, Bad)}, {Bad, Listen})
               end || Bad <- [42, {1, 2, 3}, bogus_atom, <<"bin">>]]
      end).

%% rssl differs from OTP 25's ssl on purpose: it answers with an options
%% error, where ssl's connect returns {option_not_a_key_value_tuple, Opt}
%% without {error, _} (its spec says so) and its listen throws that term.
non_tuple_answer(rssl, _Call, Bad) -> {error, {options, {option_not_a_key_value_tuple, Bad}}};
non_tuple_answer(ssl, connect, Bad) -> {option_not_a_key_value_tuple, Bad};
non_tuple_answer(ssl, listen, Bad) -> {thrown, {option_not_a_key_value_tuple, Bad}}.

%% A server whose certfile does not exist: {options, {certfile, File,
%% {error, enoent}}}. rssl says so at listen, where it loads the files;
%% OTP's ssl listens and fails the handshake with it (the client then sees
%% {error, closed}).
missing_certfile_server(Config) ->
    Missing = "/nonexistent/rssl/server.pem",
    #{server := #{key := Key}} = ?config(pki, Config),
    Expected = {error, {options, {certfile, Missing, {error, enoent}}}},
    Listen = ?M:listen(0, [binary, {active, false}, {reuseaddr, true},
                           {certfile, Missing}, {keyfile, Key}]),
    missing_certfile(?M, Listen, Expected).

missing_certfile(rssl, Listen, Expected) ->
    ?assertEqual(Expected, Listen);
missing_certfile(ssl, {ok, L}, Expected) ->
    {ok, {_, Port}} = ssl:sockname(L),
    Client = rssl_test_lib:start_client(?PEER, {127, 0, 0, 1}, Port,
                                        [{verify, verify_none}], fun(R) -> R end),
    {ok, T} = ssl:transport_accept(L, ?T),
    ?assertEqual(Expected, ssl:handshake(T, ?T)),
    ?assertEqual({error, closed}, rssl_test_lib:await(Client)),
    ok = ssl:close(L);
missing_certfile(ssl, Other, _Expected) ->
    ct:fail({ssl_listen, Other}).

%%% Closed connections -----------------------------------------------------

%% Active mode: data, then {ssl_closed, S} when the peer closes.
peer_close_active(Config) ->
    for_roles(Config, [{active, true}],
              fun(S, Peer) ->
                      ok = rssl_test_lib:call(Peer, {send, <<"bye">>}),
                      ok = rssl_test_lib:call(Peer, close),
                      ?assertEqual({[<<"bye">>], {ssl_closed, S}}, rssl_test_lib:collect_active(S, ?T)),
                      ?assertEqual([], rssl_test_lib:stray_messages(S))
              end).

%% Passive mode: the data, then {error, closed}, again and again; sending
%% also gives {error, closed} (once recv has seen the close).
peer_close_passive(Config) ->
    for_roles(Config, [],
              fun(S, Peer) ->
                      ok = rssl_test_lib:call(Peer, {send, <<"bye">>}),
                      ok = rssl_test_lib:call(Peer, close),
                      ?assertEqual({ok, <<"bye">>}, ?M:recv(S, 3, ?T)),
                      ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
                      ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
                      ?assertEqual({error, closed}, ?M:send(S, <<"x">>))
              end).

%% After our own close: send and recv give {error, closed}, close is
%% harmless, and the peer sees the close.
send_after_close(Config) ->
    for_roles(Config, [],
              fun(S, Peer) ->
                      ok = ?M:close(S),
                      ?assertEqual({error, closed}, ?M:send(S, <<"x">>)),
                      ?assertEqual({error, closed}, ?M:recv(S, 0, 100)),
                      ?assertEqual(ok, ?M:close(S)),
                      ?assertEqual({<<>>, {error, closed}}, rssl_test_lib:call(Peer, recv_until_closed))
              end).

%%% Connect, accept and handshake -----------------------------------------

connect_refused(Config) ->
    {ok, L} = gen_tcp:listen(0, [{reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    ok = gen_tcp:close(L),
    Opts = client_opts(Config),
    ?assertEqual({error, econnrefused}, ?M:connect({127, 0, 0, 1}, Port, Opts, ?T)),
    ?assertEqual({error, econnrefused}, ?M:connect("localhost", Port, Opts, ?T)),
    ?assertEqual({error, econnrefused}, ?M:connect({127, 0, 0, 1}, Port, Opts)),
    %% Over IPv6 too, and with socket options set before connecting.
    {ok, L6} = gen_tcp:listen(0, [inet6, {ip, {0, 0, 0, 0, 0, 0, 0, 1}}, {reuseaddr, true}]),
    {ok, Port6} = inet:port(L6),
    ok = gen_tcp:close(L6),
    ?assertEqual({error, econnrefused},
                 ?M:connect({0, 0, 0, 0, 0, 0, 0, 1}, Port6, [inet6, {nodelay, true} | Opts], ?T)),
    %% IPv6's socket options on an IPv4 socket are refused before connecting.
    [?assertMatch({error, {options, {socket_options, _}}},
                  ?M:connect({127, 0, 0, 1}, Port, [Opt | Opts], ?T))
     || Opt <- [{tclass, 8}, {ipv6_v6only, true}]].

%% transport_accept(L, 100) with no client times out; the listener then
%% still accepts.
transport_accept_timeout(Config) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | server_opts(Config)]),
    ?assertEqual({error, timeout}, ?M:transport_accept(L, 100)),
    ?assertEqual({error, timeout}, ?M:transport_accept(L, 0)),
    accept_one(L),
    ok = ?M:close(L).

%% Closing the listener wakes a transport_accept waiting in another
%% process with {error, closed}.
pending_transport_accept_listener_closed(Config) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | server_opts(Config)]),
    Self = self(),
    Pid = spawn_link(fun() -> Self ! {self(), ?M:transport_accept(L)} end),
    rssl_test_lib:wait_blocked(Pid, accept),
    ok = ?M:close(L),
    receive
        {Pid, Result} -> ?assertEqual({error, closed}, Result)
    after ?T -> ct:fail(transport_accept_not_woken)
    end,
    ?assertEqual({error, closed}, ?M:transport_accept(L, 100)).

%% A TCP client that never speaks: handshake/2 times out, the half-made
%% socket closes, the listener still accepts.
handshake_timeout(Config) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | server_opts(Config)]),
    {ok, {_, Port}} = ?M:sockname(L),
    {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    {ok, T} = ?M:transport_accept(L, ?T),
    ?assertEqual({error, timeout}, ?M:handshake(T, 200)),
    ?assertEqual(ok, ?M:close(T)),
    %% The server end is gone: the TCP client reads EOF.
    ?assertEqual({error, closed}, gen_tcp:recv(Tcp, 0, ?T)),
    ok = gen_tcp:close(Tcp),
    accept_one(L),
    ok = ?M:close(L).

%% A TCP server that never answers the ClientHello: connect/4 times out.
connect_timeout(Config) ->
    {ok, L} = gen_tcp:listen(0, [{reuseaddr, true}, binary, {active, false}]),
    {ok, Port} = inet:port(L),
    ?assertEqual({error, timeout}, ?M:connect({127, 0, 0, 1}, Port, client_opts(Config), 200)),
    {ok, A} = gen_tcp:accept(L, ?T),
    %% The client went away after its timeout.
    ?assertMatch({error, closed}, drain(A)),
    ok = gen_tcp:close(A),
    ok = gen_tcp:close(L).

%%% Owners and resources ---------------------------------------------------

%% A connection whose owner exits without closing is closed: the peer sees
%% it, and (end_per_testcase) its descriptors go.
owner_exit_closes_connection(Config) ->
    {Server, Port} = rssl_test_lib:start_server(
                       ?PEER, rssl_test_lib:server_opts(?config(pki, Config), ?V, server),
                       fun({ok, S}) -> rssl_test_lib:recv_until_closed(?PEER, S) end),
    Self = self(),
    {Owner, Ref} = spawn_monitor(fun() ->
                                         {ok, S} = ?M:connect({127, 0, 0, 1}, Port, client_opts(Config), ?T),
                                         ok = ?M:send(S, <<"last words">>),
                                         Self ! {self(), sent}
                                 end),
    receive {Owner, sent} -> ok after ?T -> ct:fail(owner_did_not_send) end,
    receive {'DOWN', Ref, process, Owner, normal} -> ok after ?T -> ct:fail(owner_did_not_exit) end,
    ?assertEqual({<<"last words">>, {error, closed}}, rssl_test_lib:await(Server)).

%% A listener whose owner exits stops listening.
owner_exit_closes_listener(Config) ->
    Self = self(),
    {Owner, Ref} = spawn_monitor(fun() ->
                                         {ok, L} = ?M:listen(0, [{reuseaddr, true} | server_opts(Config)]),
                                         {ok, {_, Port}} = ?M:sockname(L),
                                         Self ! {self(), Port}
                                 end),
    Port = receive {Owner, P} -> P after ?T -> ct:fail(no_listener) end,
    receive {'DOWN', Ref, process, Owner, normal} -> ok after ?T -> ct:fail(owner_did_not_exit) end,
    ?assertEqual({error, econnrefused}, wait_refused(Port, 50)).

%% Many connections opened and closed (both ends ?M, and against ssl):
%% descriptors and ports come back to where they were.
many_connections_no_leak(Config) ->
    Pki = ?config(pki, Config),
    Before = rssl_test_lib:snapshot(),
    [begin
         {S, Peer} = rssl_test_lib:open(?M, Role, opts_for(Pki, Role), PeerMod,
                                        opts_for(Pki, other(Role)), #{}),
         ok = ?M:send(S, <<"ping">>),
         {ok, <<"ping">>} = rssl_test_lib:call(Peer, {recv, 4, ?T}),
         ok = ?M:close(S),
         ok = rssl_test_lib:stop_peer(Peer)
     end || _ <- lists:seq(1, 10), Role <- [client, server], PeerMod <- [?M, ?PEER]],
    ?assertEqual(ok, rssl_test_lib:check_resources(Before, 3000)).

%%% Helpers -----------------------------------------------------------------

cert_opts(Config) ->
    rssl_test_pki:server_opts(?config(pki, Config)).

client_opts(Config) ->
    rssl_test_lib:client_opts(?config(pki, Config), ?V, ca).

server_opts(Config) ->
    rssl_test_lib:server_opts(?config(pki, Config), ?V, server).

opts_for(Pki, client) -> rssl_test_lib:client_opts(Pki, ?V, ca);
opts_for(Pki, server) -> rssl_test_lib:server_opts(Pki, ?V, server).

other(client) -> server;
other(server) -> client.

%% Runs Fun(S, Peer) with ?M as client, then as server, against ssl; Extra
%% overrides ?M's socket options. Closes both ends afterwards.
for_roles(Config, Extra, Fun) ->
    Pki = ?config(pki, Config),
    [begin
         Opts = rssl_test_lib:merge_opts(Extra, opts_for(Pki, Role)),
         {S, Peer} = rssl_test_lib:open(?M, Role, Opts, ?PEER, opts_for(Pki, other(Role)), #{}),
         Fun(S, Peer),
         _ = ?M:close(S),
         ok = rssl_test_lib:stop_peer(Peer)
     end || Role <- [client, server]],
    ok.

%% Runs Fun(ListenPort) while a ?M listener with an echo acceptor and one
%% established ?M connection are up; afterwards both must still work.
with_live_connection(Config, Fun) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | server_opts(Config)]),
    {ok, {_, Port}} = ?M:sockname(L),
    Acceptor = spawn_link(fun() -> echo_acceptor(L) end),
    {ok, C} = ?M:connect({127, 0, 0, 1}, Port, client_opts(Config), ?T),
    ok = ?M:send(C, <<"before">>),
    {ok, <<"before">>} = ?M:recv(C, 6, ?T),
    Fun(Port),
    %% The established connection still echoes ...
    ok = ?M:send(C, <<"after">>),
    ?assertEqual({ok, <<"after">>}, ?M:recv(C, 5, ?T)),
    %% ... and the listener takes a new one.
    {ok, C2} = ?M:connect({127, 0, 0, 1}, Port, client_opts(Config), ?T),
    ok = ?M:send(C2, <<"new">>),
    ?assertEqual({ok, <<"new">>}, ?M:recv(C2, 3, ?T)),
    ok = ?M:close(C),
    ok = ?M:close(C2),
    ok = ?M:close(L),
    unlink(Acceptor),
    ok.

%% Accepts on L from any process; each accepted connection gets a fresh
%% acceptor behind it and echoes until closed.
echo_acceptor(L) ->
    case ?M:transport_accept(L) of
        {ok, T} ->
            spawn_link(fun() -> echo_acceptor(L) end),
            case ?M:handshake(T, ?T) of
                {ok, S} -> echo(S);
                _ -> ok
            end;
        {error, closed} ->
            ok
    end.

echo(S) ->
    case ?M:recv(S, 0) of
        {ok, Data} -> ok = ?M:send(S, Data), echo(S);
        {error, _} -> ?M:close(S)
    end.

%% An ssl client connects to ?M's listener L, says hi, closes.
accept_one(L) ->
    {ok, {_, Port}} = ?M:sockname(L),
    Peer = rssl_test_lib:start_client(?PEER, {127, 0, 0, 1}, Port,
                                      [binary, {active, false}, {verify, verify_none}],
                                      fun({ok, S}) -> ?PEER:send(S, <<"hi">>); (E) -> E end),
    {ok, T} = ?M:transport_accept(L, ?T),
    {ok, S} = ?M:handshake(T, ?T),
    ?assertEqual({ok, <<"hi">>}, ?M:recv(S, 2, ?T)),
    ?assertEqual(ok, rssl_test_lib:await(Peer)),
    ok = ?M:close(S).

drain(Tcp) ->
    case gen_tcp:recv(Tcp, 0, ?T) of
        {ok, _} -> drain(Tcp);
        Other -> Other
    end.

%% The listening port may take a moment to go after its owner's exit.
wait_refused(Port, 0) ->
    gen_tcp:connect({127, 0, 0, 1}, Port, []);
wait_refused(Port, N) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, []) of
        {error, econnrefused} = E -> E;
        {ok, Tcp} -> gen_tcp:close(Tcp), timer:sleep(20), wait_refused(Port, N - 1);
        %% Caught the listener while it was closing.
        {error, econnreset} -> timer:sleep(20), wait_refused(Port, N - 1);
        Other -> Other
    end.
