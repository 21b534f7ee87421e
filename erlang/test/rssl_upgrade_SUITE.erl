%% Upgrading an existing gen_tcp connection to TLS with the module under
%% test (?M, rssl by default), STARTTLS style: connect/2,3 on the client,
%% handshake/2,3 and ssl_accept/2,3 on the server (and ssl_accept/1,2,3 on
%% sockets from transport_accept). The peer is OTP's ssl upgrading its own
%% gen_tcp socket. Clear-text data exchanged before the upgrade must come
%% through intact, also when the peer's first TLS bytes arrived together
%% with the last clear-text line.
%%
%% OTP 25's ssl has no ssl_accept any more; compiled with {d, 'M', ssl}
%% (rebar3 as otp_ssl ct) the cases use handshake there, with the result
%% ssl_accept documents (ok for an sslsocket, {ok, S} for a TCP socket).
-module(rssl_upgrade_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(T, 10000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([client_connect_2_and_3/1, server_handshake_2_and_3/1, server_ssl_accept_2_and_3/1,
         ssl_accept_on_transport_socket/1,
         clear_data_before_upgrade_intact/1, client_hello_with_last_clear_line/1,
         upgrade_inherits_tcp_options_client/1, upgrade_inherits_tcp_options_server/1,
         upgrade_bad_options_keep_tcp/1, upgrade_timeouts/1, upgrade_verify_failure/1,
         upgrade_sni/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [client_connect_2_and_3, server_handshake_2_and_3, server_ssl_accept_2_and_3,
     ssl_accept_on_transport_socket,
     clear_data_before_upgrade_intact, client_hello_with_last_clear_line,
     upgrade_inherits_tcp_options_client, upgrade_inherits_tcp_options_server,
     upgrade_bad_options_keep_tcp, upgrade_timeouts, upgrade_verify_failure,
     upgrade_sni].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% Client: a line exchange in clear, then connect(Tcp, Opts) and
%% connect(Tcp, Opts, Timeout); TLS data both ways afterwards.
client_connect_2_and_3(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {Pid, Port} = tcp_server(fun server_starttls/1, ?L:base_opts(Pki, server)),
         {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
         ok = client_starttls(Tcp),
         {ok, S} = case Arity of
                       2 -> ?M:connect(Tcp, ?L:base_opts(Pki, client));
                       3 -> ?M:connect(Tcp, ?L:base_opts(Pki, client), ?T)
                   end,
         Peer = peer_ready(Pid, Port),
         exchange(S, Peer),
         ?L:finish(?M, {S, Peer}, ok)
     end || Arity <- [2, 3]].

%% Server: the same with handshake(Tcp, Opts) and handshake(Tcp, Opts, T).
server_handshake_2_and_3(Config) ->
    Pki = ?config(pki, Config),
    Opts = ?L:base_opts(Pki, server),
    server_upgrade(Pki, fun(Tcp) -> ?M:handshake(Tcp, Opts) end),
    server_upgrade(Pki, fun(Tcp) -> ?M:handshake(Tcp, Opts, ?T) end).

%% Server: ssl_accept(Tcp, Opts) and ssl_accept(Tcp, Opts, T) give
%% {ok, SslSocket}.
server_ssl_accept_2_and_3(Config) ->
    Pki = ?config(pki, Config),
    [server_upgrade(Pki, fun(Tcp) -> ssl_accept([Tcp, ?L:base_opts(Pki, server) | Timeout]) end)
     || Timeout <- [[], [?T]]].

%% A STARTTLS exchange in clear with an ssl client, then Upgrade(Tcp) must
%% give {ok, S}, and data flows both ways.
server_upgrade(Pki, Upgrade) ->
    {L, Port} = tcp_listen(),
    Pid = tcp_client(Port, fun client_starttls/1, ?L:base_opts(Pki, client)),
    {ok, Tcp} = gen_tcp:accept(L, ?T),
    ok = gen_tcp:close(L),
    ok = server_starttls(Tcp),
    {ok, S} = Upgrade(Tcp),
    Peer = peer_ready(Pid, Port),
    exchange(S, Peer),
    ?L:finish(?M, {S, Peer}, ok).

%% ssl_accept/1,2 on a socket from transport_accept: ok (not {ok, S});
%% ssl_accept/3 with extra options: ok too.
ssl_accept_on_transport_socket(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {ok, L} = ?M:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
         {ok, {_, Port}} = ?M:sockname(L),
         Pid = rssl_test_lib:start_client(ssl, {127, 0, 0, 1}, Port, ?L:base_opts(Pki, client)),
         {ok, T} = ?M:transport_accept(L, ?T),
         ?assertEqual({Args, ok}, {Args, ssl_accept([T | Args])}),
         ok = ?M:close(L),
         Peer = peer_ready(Pid, Port),
         exchange(T, Peer),
         ?L:finish(?M, {T, Peer}, ok)
     end || Args <- [[], [?T], [[{active, false}], ?T]]].

%% A large clear-text exchange both ways before the upgrade, every byte
%% accounted for, then TLS; ?M as client and as server.
clear_data_before_upgrade_intact(Config) ->
    Pki = ?config(pki, Config),
    Up = ?L:pattern(100000, 1),
    Down = ?L:pattern(50000, 2),
    ServerClear = fun(Tcp) ->
                          Up = recv_exact(Tcp, byte_size(Up)),
                          send_chunks(Tcp, Down, [1, 1000, 7])
                  end,
    ClientClear = fun(Tcp) ->
                          ok = send_chunks(Tcp, Up, [3, 16384, 5]),
                          Down = recv_exact(Tcp, byte_size(Down)),
                          ok
                  end,
    %% ?M as client.
    {Pid1, Port1} = tcp_server(ServerClear, ?L:base_opts(Pki, server)),
    {ok, Tcp1} = gen_tcp:connect({127, 0, 0, 1}, Port1, [binary, {active, false}]),
    ok = ClientClear(Tcp1),
    {ok, S1} = ?M:connect(Tcp1, ?L:base_opts(Pki, client), ?T),
    Peer1 = peer_ready(Pid1, Port1),
    exchange(S1, Peer1),
    ?L:finish(?M, {S1, Peer1}, ok),
    %% ?M as server.
    {L, Port2} = tcp_listen(),
    Pid2 = tcp_client(Port2, ClientClear, ?L:base_opts(Pki, client)),
    {ok, Tcp2} = gen_tcp:accept(L, ?T),
    ok = gen_tcp:close(L),
    ok = ServerClear(Tcp2),
    {ok, S2} = ?M:handshake(Tcp2, ?L:base_opts(Pki, server), ?T),
    Peer2 = peer_ready(Pid2, Port2),
    exchange(S2, Peer2),
    ?L:finish(?M, {S2, Peer2}, ok).

%% The client does not wait for the server's go-ahead: its ClientHello
%% comes in the same TCP segment as its last clear-text line. The server
%% reads the line with {packet, line}, so gen_tcp has the ClientHello in
%% its buffer already; the upgrade must start from those bytes.
client_hello_with_last_clear_line(Config) ->
    Pki = ?config(pki, Config),
    {L, Port} = tcp_listen(),
    Proxy = ?L:proxy(#{target => Port,
                       first_from_client => fun(Record) -> <<"STARTTLS\r\n", Record/binary>> end}),
    {_, ProxyPort} = Proxy,
    Pid = tcp_client(ProxyPort, fun(_Tcp) -> ok end, ?L:base_opts(Pki, client)),
    {ok, Tcp} = gen_tcp:accept(L, ?T),
    ok = gen_tcp:close(L),
    ok = inet:setopts(Tcp, [{packet, line}]),
    ?assertEqual({ok, <<"STARTTLS\r\n">>}, gen_tcp:recv(Tcp, 0, ?T)),
    %% The situation under test: gen_tcp has read the ClientHello from the
    %% kernel already (its receive queue is empty).
    ?assertNotEqual({recv_q, nonzero}, kernel_recv_queue(Port)),
    ok = inet:setopts(Tcp, [{packet, raw}]),
    {ok, S} = ?M:handshake(Tcp, ?L:base_opts(Pki, server), ?T),
    Peer = peer_ready(Pid, ProxyPort),
    exchange(S, Peer),
    ?L:finish(?M, {S, Peer}, ok),
    ?L:proxy_stop(Proxy).

%% Without socket options in the upgrade's options, the TLS socket takes
%% mode, active, packet and header from the TCP socket (as ssl does);
%% an option given wins. Client side. (One option at a time: OTP 25's ssl
%% merges the given and the inherited lists unsorted, so with several
%% given options some of them can lose.)
upgrade_inherits_tcp_options_client(Config) ->
    Pki = ?config(pki, Config),
    Cases = [{[binary, {active, false}], []},
             {[list, {packet, line}, {active, true}], []},
             {[binary, {header, 2}, {active, once}], []},
             {[list, {packet, line}, {active, true}], [{mode, binary}]},
             {[list, {packet, line}, {active, true}], [{active, false}]}],
    Got = ?L:same(?M, fun(Mod) ->
                              [begin
                                   {Pid, Port} = rssl_test_lib:start_server(ssl, ?L:base_opts(Pki, server), loop),
                                   {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, TcpOpts),
                                   {ok, S} = Mod:connect(Tcp, Extra ++ ?L:tls_opts(Pki, client), ?T),
                                   Peer = peer_ready(Pid, Port),
                                   Opts = sorted(Mod:getopts(S, [mode, active, packet, header])),
                                   ?L:finish(Mod, {S, Peer}, {TcpOpts, Extra, Opts})
                               end || {TcpOpts, Extra} <- Cases]
                      end),
    ?assertEqual([{ok, [{active, false}, {header, 0}, {mode, binary}, {packet, 0}]},
                  {ok, [{active, true}, {header, 0}, {mode, list}, {packet, line}]},
                  {ok, [{active, once}, {header, 2}, {mode, binary}, {packet, 0}]},
                  {ok, [{active, true}, {header, 0}, {mode, binary}, {packet, line}]},
                  {ok, [{active, false}, {header, 0}, {mode, list}, {packet, line}]}],
                 [Opts || {_, _, Opts} <- Got]).

%% The same on the server side (passive TCP sockets, as ssl_accept
%% requires).
upgrade_inherits_tcp_options_server(Config) ->
    Pki = ?config(pki, Config),
    Cases = [{[binary, {active, false}], []},
             {[list, {packet, 2}, {active, false}], []},
             {[list, {packet, 2}, {active, false}], [{mode, binary}]}],
    Got = ?L:same(?M, fun(Mod) ->
                              [begin
                                   {ok, L} = gen_tcp:listen(0, [{reuseaddr, true} | TcpOpts]),
                                   {ok, Port} = inet:port(L),
                                   Pid = rssl_test_lib:start_client(ssl, {127, 0, 0, 1}, Port,
                                                                    ?L:base_opts(Pki, client)),
                                   {ok, Tcp} = gen_tcp:accept(L, ?T),
                                   ok = gen_tcp:close(L),
                                   {ok, S} = Mod:handshake(Tcp, Extra ++ ?L:tls_opts(Pki, server), ?T),
                                   Peer = peer_ready(Pid, Port),
                                   Opts = sorted(Mod:getopts(S, [mode, active, packet, header])),
                                   ?L:finish(Mod, {S, Peer}, {TcpOpts, Extra, Opts})
                               end || {TcpOpts, Extra} <- Cases]
                      end),
    ?assertEqual([{ok, [{active, false}, {header, 0}, {mode, binary}, {packet, 0}]},
                  {ok, [{active, false}, {header, 0}, {mode, list}, {packet, 2}]},
                  {ok, [{active, false}, {header, 0}, {mode, binary}, {packet, 2}]}],
                 [Opts || {_, _, Opts} <- Got]).

%% Bad TLS options: {error, {options, _}} as ssl gives it, and the TCP
%% socket is left alone: still connected, still usable in clear.
upgrade_bad_options_keep_tcp(_Config) ->
    Got = ?L:same(?M, fun(Mod) ->
                              {L, Port} = tcp_listen(),
                              {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                              {ok, A} = gen_tcp:accept(L, ?T),
                              ok = gen_tcp:close(L),
                              R1 = Mod:connect(C, [{verify, bogus}], ?T),
                              ok = gen_tcp:send(C, <<"still clear">>),
                              Clear1 = gen_tcp:recv(A, 11, ?T),
                              R2 = Mod:handshake(A, [{versions, [bogus]}], ?T),
                              ok = gen_tcp:send(A, <<"also clear">>),
                              Clear2 = gen_tcp:recv(C, 10, ?T),
                              ok = gen_tcp:close(C),
                              ok = gen_tcp:close(A),
                              [R1, Clear1, R2, Clear2]
                      end),
    ?assertEqual([{error, {options, {verify, bogus}}}, {ok, <<"still clear">>},
                  {error, {options, {bogus, {versions, [bogus]}}}}, {ok, <<"also clear">>}], Got).

%% A TCP peer that never speaks TLS: connect/3 and handshake/3 on the
%% upgraded socket time out, and the TCP connection is closed.
upgrade_timeouts(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {L, Port} = tcp_listen(),
                              {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                              {ok, A} = gen_tcp:accept(L, ?T),
                              R1 = Mod:connect(C, ?L:base_opts(Pki, client), 200),
                              %% A saw a ClientHello, then the close.
                              {Hello, Closed1} = drain(A),
                              {ok, C2} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                              {ok, A2} = gen_tcp:accept(L, ?T),
                              ok = gen_tcp:close(L),
                              R2 = Mod:handshake(A2, ?L:base_opts(Pki, server), 200),
                              Closed2 = drain(C2),
                              [gen_tcp:close(X) || X <- [A, C, A2, C2]],
                              [R1, binary:first(Hello), Closed1, R2, Closed2]
                      end),
    ?assertEqual([{error, timeout}, 22, {error, closed}, {error, timeout}, {<<>>, {error, closed}}], Got).

%% Verification applies on the upgrade path too: a server certificate
%% from an unknown CA fails the client's upgrade with unknown_ca.
upgrade_verify_failure(Config) ->
    Pki = ?config(pki, Config),
    {Pid, Port} = tcp_server(fun(_) -> ok end, ?L:base_opts(Pki, server)),
    {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    Opts = rssl_test_lib:merge_opts(rssl_test_pki:client_opts(Pki, other_ca), ?L:base_opts(Pki, client)),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, ?M:connect(Tcp, Opts, ?T)),
    receive {Pid, handshake, HS} -> ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, HS) after ?T -> ct:fail(no_server) end,
    receive {Pid, done, _} -> ok after ?T -> ok end.

%% server_name_indication on an upgrade (where the host is only an
%% address) is what the server sees; without it none is sent.
upgrade_sni(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              [begin
                                   {Pid, Port} = tcp_server(fun(_) -> ok end, ?L:base_opts(Pki, server)),
                                   {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                                   {ok, S} = Mod:connect(Tcp, Sni ++ ?L:base_opts(Pki, client), ?T),
                                   Peer = peer_ready(Pid, Port),
                                   Seen = ?L:peer_fn(Peer, fun(PM, PS) ->
                                                                   PM:connection_information(PS, [sni_hostname])
                                                           end),
                                   ?L:finish(Mod, {S, Peer}, {Sni, Seen})
                               end || Sni <- [[{server_name_indication, "localhost"}], []]]
                      end),
    ?assertEqual([{[{server_name_indication, "localhost"}], {ok, [{sni_hostname, "localhost"}]}},
                  {[], {ok, []}}], Got).

%%% Helpers -----------------------------------------------------------------

%% ssl_accept with Args; with OTP's ssl (which no longer has it) the same
%% through handshake, giving what ssl_accept was documented to give.
ssl_accept(Args) ->
    {module, ?M} = code:ensure_loaded(?M),
    case erlang:function_exported(?M, ssl_accept, length(Args)) of
        true ->
            apply(?M, ssl_accept, Args);
        false ->
            case {Args, apply(?M, handshake, Args)} of
                {[Tcp | _], Result} when is_port(Tcp) -> Result;
                {_, {ok, _}} -> ok;
                {_, Error} -> Error
            end
    end.

%% Client and server halves of a STARTTLS line exchange.
client_starttls(Tcp) ->
    ok = gen_tcp:send(Tcp, <<"STARTTLS\r\n">>),
    ok = inet:setopts(Tcp, [{packet, line}]),
    {ok, <<"OK\r\n">>} = gen_tcp:recv(Tcp, 0, ?T),
    inet:setopts(Tcp, [{packet, raw}]).

server_starttls(Tcp) ->
    ok = inet:setopts(Tcp, [{packet, line}]),
    {ok, <<"STARTTLS\r\n">>} = gen_tcp:recv(Tcp, 0, ?T),
    ok = inet:setopts(Tcp, [{packet, raw}]),
    gen_tcp:send(Tcp, <<"OK\r\n">>).

%% A gen_tcp listener on a free port: {L, Port}.
tcp_listen() ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    {L, Port}.

%% A peer that accepts one TCP connection, runs Clear(Tcp) (must return
%% ok), then upgrades it with ssl:handshake/3 and serves as a peer.
tcp_server(Clear, SslOpts) ->
    Parent = self(),
    Pid = spawn_link(fun() ->
                             {L, Port} = tcp_listen(),
                             Parent ! {self(), port, Port},
                             {ok, Tcp} = gen_tcp:accept(L, ?T),
                             ok = gen_tcp:close(L),
                             ok = Clear(Tcp),
                             HS = ssl:handshake(Tcp, SslOpts, ?T),
                             rssl_test_lib:run_peer(Parent, ssl, HS, loop)
                     end),
    receive {Pid, port, Port} -> {Pid, Port} after ?T -> ct:fail(no_tcp_server) end.

%% A peer that connects over TCP, runs Clear(Tcp), then upgrades with
%% ssl:connect/3 and serves as a peer.
tcp_client(Port, Clear, SslOpts) ->
    Parent = self(),
    spawn_link(fun() ->
                       {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                       ok = Clear(Tcp),
                       HS = ssl:connect(Tcp, SslOpts, ?T),
                       rssl_test_lib:run_peer(Parent, ssl, HS, loop)
               end).

peer_ready(Pid, Port) ->
    receive
        {Pid, handshake, ok} -> #{pid => Pid, port => Port, mod => ssl};
        {Pid, handshake, Error} -> ct:fail({peer_handshake_failed, Error})
    after ?T -> ct:fail({peer_handshake_timeout, process_info(Pid, current_stacktrace)})
    end.

%% TLS data both ways on a fresh upgraded (passive, binary) connection.
exchange(S, Peer) ->
    Up = ?L:pattern(70000, 3),
    ok = ?M:send(S, Up),
    rssl_test_lib:assert_same(Up, rssl_test_lib:call(Peer, {recv_total, byte_size(Up)})),
    Down = ?L:pattern(30000, 4),
    ?L:peer_send(Peer, Down),
    rssl_test_lib:assert_same(Down, rssl_test_lib:recv_total(?M, S, byte_size(Down))).

recv_exact(Tcp, Len) ->
    {ok, Data} = gen_tcp:recv(Tcp, Len, ?T),
    Data.

send_chunks(Tcp, Data, Sizes) ->
    lists:foreach(fun(C) -> ok = gen_tcp:send(Tcp, C) end, ?L:chunks(Data, Sizes)).

%% Everything a gen_tcp socket reads until it closes: {Data, Last}.
drain(Tcp) ->
    drain(Tcp, <<>>).
drain(Tcp, Acc) ->
    case gen_tcp:recv(Tcp, 0, ?T) of
        {ok, B} -> drain(Tcp, <<Acc/binary, B/binary>>);
        Other -> {Acc, Other}
    end.

sorted({ok, L}) when is_list(L) -> {ok, lists:sort(L)};
sorted(Other) -> Other.

%% Recv-Q of the established TCP connection whose local port is Port, from
%% ss(8): {recv_q, 0}, {recv_q, nonzero}, or unknown without ss.
kernel_recv_queue(Port) ->
    case os:find_executable("ss") of
        false ->
            unknown;
        Ss ->
            Out = os:cmd(Ss ++ " -tnH state established sport = :" ++ integer_to_list(Port)),
            ct:log("ss: ~s", [Out]),
            case string:lexemes(Out, " \n") of
                ["0" | _] -> {recv_q, 0};
                [_ | _] -> {recv_q, nonzero};
                [] -> unknown
            end
    end.
