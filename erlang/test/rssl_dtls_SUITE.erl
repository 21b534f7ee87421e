%% DTLS over UDP ({protocol, dtls}) with the module under test (?M, rssl
%% by default) against OTP's ssl DTLS and OpenSSL's s_server/s_client:
%% handshakes, one message per datagram record, active modes, options,
%% verification, retransmission, bad options, and no leaked descriptors,
%% ports or connections.
%%
%% Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to run the same cases
%% with ssl on both ends; what OTP 25's DTLS cannot do is skipped there,
%% with the reason.
-module(rssl_dtls_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).

-export([suite/0, all/0, groups/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([echo_passive/1, one_message_per_send/1, large_send/1,
         active_modes/1, setopts_getopts/1, connection_info_and_peercert/1,
         dtlsv1/1, close_reaches_peer/1, untrusted_ca/1, wrong_host/1,
         ciphers_option/1,
         retransmits_then_times_out/1, bad_options/1,
         openssl_s_server/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [{group, as_client}, retransmits_then_times_out, bad_options,
          openssl_s_server].

groups() ->
    Cases = [echo_passive, one_message_per_send, large_send, active_modes,
             setopts_getopts, connection_info_and_peercert, dtlsv1,
             close_reaches_peer, untrusted_ca, wrong_host, ciphers_option],
    [{as_client, [], Cases}].

init_per_suite(Config) ->
    Config1 = rssl_socket_lib:init_suite(?M, Config),
    Pki = proplists:get_value(pki, Config1),
    %% One DTLS connection each way first, so that what is made once per VM
    %% exists before any snapshot.
    {S, Peer} = pair(client, Pki, [], []),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer),
    Config1.

end_per_suite(_Config) ->
    ok.

init_per_group(as_client, Config) -> [{role, client} | Config];
init_per_group(as_server, Config) -> [{role, server} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()}, {live, live()} | Config].

end_per_testcase(_TC, Config) ->
    case proplists:get_value(tc_status, Config) of
        ok ->
            %% A connection lives until its socket term is garbage.
            true = erlang:garbage_collect(),
            Live = proplists:get_value(live, Config),
            case rssl_socket_lib:wait_until(fun() -> live() =< Live end, 3000) of
                true -> rssl_test_lib:end_per_testcase(Config);
                false -> {fail, {connections_left, live(), Live}}
            end;
        _ ->
            rssl_test_lib:end_per_testcase(Config)
    end.

%% Connections alive in the NIF (rssl), or 0 for ssl.
-if(?M =:= rssl).
live() -> rssl_nif:live_connections().
-else.
live() -> 0.
-endif.

%%% Helpers -----------------------------------------------------------------

%% Whether the module under test is OTP's ssl (rebar3 as otp_ssl ct).
is_ssl() -> lists:member(?M, [ssl]).

dtls(Version) ->
    [{protocol, dtls}, binary, {active, false}, {versions, [Version]}].

client_opts(Pki) -> client_opts(Pki, 'dtlsv1.2').
client_opts(Pki, Version) ->
    dtls(Version) ++ rssl_test_pki:client_opts(Pki, ca).

server_opts(Pki) -> server_opts(Pki, 'dtlsv1.2').
server_opts(Pki, Version) ->
    dtls(Version) ++ rssl_test_pki:server_opts(Pki, server).

%% A DTLS connection of ?M in Role with an ssl peer process. Extra goes to
%% ?M's options, PeerExtra to the peer's.
pair(Role, Pki, Extra, PeerExtra) ->
    {Mine, Theirs} = case Role of
                         client -> {client_opts(Pki), server_opts(Pki)};
                         server -> {server_opts(Pki), client_opts(Pki)}
                     end,
    rssl_test_lib:open(?M, Role, rssl_test_lib:merge_opts(Extra, Mine), ?PEER,
                       rssl_test_lib:merge_opts(PeerExtra, Theirs), #{host => "localhost"}).

pair(Config, Extra) ->
    pair(proplists:get_value(role, Config), proplists:get_value(pki, Config), Extra, []).

%% Data from the peer arrives as separate messages: each of Datas in order.
expect_active(S, Datas) ->
    [receive
         {ssl, S, Got} -> ?assertEqual(D, iolist_to_binary(Got))
     after ?T -> ct:fail({no_message, D, erlang:process_info(self(), messages)})
     end || D <- Datas],
    ok.

%%% Cases -------------------------------------------------------------------

%% Each send is one datagram record: recv(S, 0) returns the messages one by
%% one, as sent; the echo comes back the same.
echo_passive(Config) ->
    {S, Peer} = pair(Config, []),
    Msgs = [<<"hello">>, <<"x">>, crypto:strong_rand_bytes(1000), <<"yy">>],
    [ok = ?M:send(S, M) || M <- Msgs],
    [?assertEqual({ok, M}, rssl_test_lib:call(Peer, {recv, 0, ?T})) || M <- Msgs],
    [ok = rssl_test_lib:call(Peer, {send, M}) || M <- Msgs],
    [?assertEqual({ok, M}, ?M:recv(S, 0, ?T)) || M <- Msgs],
    ?assertEqual({error, timeout}, ?M:recv(S, 0, 0)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% Sends in quick succession stay apart, in active mode too.
one_message_per_send(Config) ->
    %% Room for the burst in both ends' socket buffers (gen_udp's default
    %% of 16 KiB holds about 18 small datagrams on loopback).
    Buf = {recbuf, 212992},
    {S, Peer} = pair(proplists:get_value(role, Config), proplists:get_value(pki, Config),
                     [{active, true}, Buf], [Buf]),
    Msgs = [integer_to_binary(N) || N <- lists:seq(1, 50)],
    ok = rssl_test_lib:call(Peer, {fn, fun(Mod, P) -> [ok = Mod:send(P, M) || M <- Msgs], ok end}),
    ok = expect_active(S, Msgs),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% A send larger than the MTU arrives whole, as one message (one record in
%% one datagram, which IP fragments; OTP's own receive buffer loses
%% datagrams of 16 KiB).
large_send(Config) ->
    {S, Peer} = pair(Config, []),
    Big = crypto:strong_rand_bytes(4000),
    ok = ?M:send(S, Big),
    ?assertEqual({ok, Big}, rssl_test_lib:call(Peer, {recv, 0, ?T})),
    ok = rssl_test_lib:call(Peer, {send, Big}),
    ?assertEqual({ok, Big}, ?M:recv(S, 0, ?T)),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% {active, once}, {active, N} with {ssl_passive, S}, then passive again.
active_modes(Config) ->
    {S, Peer} = pair(Config, []),
    Send = fun(M) -> ok = rssl_test_lib:call(Peer, {send, M}) end,
    ok = ?M:setopts(S, [{active, once}]),
    Send(<<"a">>),
    ok = expect_active(S, [<<"a">>]),
    ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
    ok = ?M:setopts(S, [{active, 2}]),
    Send(<<"b">>), Send(<<"c">>),
    ok = expect_active(S, [<<"b">>, <<"c">>]),
    receive {ssl_passive, S} -> ok after ?T -> ct:fail(no_ssl_passive) end,
    Send(<<"d">>),
    ?assertEqual({ok, <<"d">>}, ?M:recv(S, 0, ?T)),
    ok = ?M:setopts(S, [{active, true}, list]),
    Send(<<"e">>),
    receive {ssl, S, "e"} -> ok after ?T -> ct:fail(no_list_message) end,
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

setopts_getopts(Config) ->
    {S, Peer} = pair(Config, []),
    {ok, Opts} = ?M:getopts(S, [mode, active]),
    ?assertEqual([{active, false}, {mode, binary}], lists:sort(Opts)),
    ok = ?M:setopts(S, [list]),
    ?assertEqual({ok, [{mode, list}]}, ?M:getopts(S, [mode])),
    ok = rssl_test_lib:call(Peer, {send, <<"abc">>}),
    ?assertEqual({ok, "abc"}, ?M:recv(S, 0, ?T)),
    case is_ssl() andalso proplists:get_value(role, Config) =:= client of
        true ->
            %% OTP 25's ssl:sockname/1 raises function_clause on a DTLS client.
            ok;
        false ->
            {ok, {{127, 0, 0, 1}, Port}} = ?M:sockname(S),
            ?assert(is_integer(Port) andalso Port > 0)
    end,
    {ok, {_, PeerPort}} = ?M:peername(S),
    ?assert(is_integer(PeerPort) andalso PeerPort > 0),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

connection_info_and_peercert(Config) ->
    Pki = proplists:get_value(pki, Config),
    {S, Peer} = pair(Config, []),
    {ok, Info} = ?M:connection_information(S, [protocol, selected_cipher_suite]),
    ?assertEqual('dtlsv1.2', proplists:get_value(protocol, Info)),
    #{cipher := _, key_exchange := _} = proplists:get_value(selected_cipher_suite, Info),
    case proplists:get_value(role, Config) of
        client ->
            #{server := #{cert := Cert}} = Pki,
            ?assertEqual({ok, rssl_test_pki:der(Cert)}, ?M:peercert(S));
        server ->
            ?assertEqual({error, no_peercert}, ?M:peercert(S))
    end,
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% DTLS 1.0 when both ends ask for it.
dtlsv1(Config) ->
    Pki = proplists:get_value(pki, Config),
    Role = proplists:get_value(role, Config),
    {S, Peer} = pair(Role, Pki, [{versions, [dtlsv1]}], [{versions, [dtlsv1]}]),
    ?assertEqual({ok, [{protocol, dtlsv1}]}, ?M:connection_information(S, [protocol])),
    ok = ?M:send(S, <<"v1">>),
    ?assertEqual({ok, <<"v1">>}, rssl_test_lib:call(Peer, {recv, 0, ?T})),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% close/1 sends close_notify: the peer's recv says closed. (The data is
%% read before the close: OTP's DTLS drops what it sent just before.)
close_reaches_peer(Config) ->
    {S, Peer} = pair(Config, []),
    ok = ?M:send(S, <<"last">>),
    ?assertEqual({ok, <<"last">>}, rssl_test_lib:call(Peer, {recv, 0, ?T})),
    ok = ?M:close(S),
    ?assertEqual({error, closed}, rssl_test_lib:call(Peer, {recv, 0, ?T})),
    ?assertEqual({error, closed}, ?M:send(S, <<"after">>)),
    ok = rssl_test_lib:stop_peer(Peer).

%% A server certificate from another CA: unknown_ca, both sides fail.
untrusted_ca(Config) ->
    client_fails(Config, [], [{certfile, cert(Config, other_server)},
                              {keyfile, key(Config, other_server)}], unknown_ca).

%% A certificate for another host name: the client refuses it.
wrong_host(Config) ->
    client_fails(Config, [], [{certfile, cert(Config, wrong_host)},
                              {keyfile, key(Config, wrong_host)}], handshake_failure).

cert(Config, Name) ->
    #{Name := #{cert := C}} = proplists:get_value(pki, Config), C.
key(Config, Name) ->
    #{Name := #{key := K}} = proplists:get_value(pki, Config), K.

client_fails(Config, ClientExtra, ServerExtra, Alert) ->
    Pki = proplists:get_value(pki, Config),
    ServerOpts = rssl_test_lib:merge_opts(ServerExtra, server_opts(Pki)),
    ClientOpts = rssl_test_lib:merge_opts(ClientExtra, client_opts(Pki)),
    {Client, Server} = case proplists:get_value(role, Config) of
                           client -> {?M, ?PEER};
                           server -> {?PEER, ?M}
                       end,
    {Pid, Port} = rssl_test_lib:start_server(Server, ServerOpts, fun(HS) -> HS end),
    Result = Client:connect("localhost", Port, ClientOpts, ?T),
    ?assertMatch({error, {tls_alert, {Alert, _}}}, Result),
    ?assertMatch({error, _}, rssl_test_lib:await(Pid)).

%% The ciphers option limits the suites as for TLS.
ciphers_option(Config) ->
    Suite = #{key_exchange => ecdhe_ecdsa, cipher => aes_128_gcm, mac => aead, prf => sha256},
    {S, Peer} = pair(Config, [{ciphers, [Suite]}]),
    {ok, [{selected_cipher_suite, Got}]} = ?M:connection_information(S, [selected_cipher_suite]),
    ?assertEqual(Suite, Got),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% A client whose server never answers sends its ClientHello again (the
%% retransmission timer runs without any traffic), then gives up at the
%% timeout, leaving nothing open.
retransmits_then_times_out(Config) ->
    Pki = proplists:get_value(pki, Config),
    {ok, Silent} = gen_udp:open(0, [binary, {active, true}, {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Silent),
    Parent = self(),
    Client = spawn(fun() ->
                                Parent ! {self(), ?M:connect({127, 0, 0, 1}, Port,
                                                             client_opts(Pki), 30000)}
                        end),
    %% The first ClientHello, then the same one again with no answer in between.
    {_, _, Hello1} = receive {udp, Silent, A1, P1, D1} -> {A1, P1, D1} after ?T -> ct:fail(no_hello) end,
    {_, _, Hello2} = receive {udp, Silent, A2, P2, D2} -> {A2, P2, D2} after ?T * 2 -> ct:fail(no_retransmission) end,
    %% Handshake type 1 (ClientHello) in both records.
    <<22, _:16, _:16, _:48, _:16, 1, _/binary>> = Hello1,
    <<22, _:16, _:16, _:48, _:16, 1, _/binary>> = Hello2,
    ok = gen_udp:close(Silent),
    Ref = monitor(process, Client),
    exit(Client, kill),
    receive {'DOWN', Ref, process, Client, _} -> ok end,
    %% The short timeout of a second client: {error, timeout}.
    {ok, Silent2} = gen_udp:open(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
    {ok, Port2} = inet:port(Silent2),
    ?assertEqual({error, timeout}, ?M:connect({127, 0, 0, 1}, Port2, client_opts(Pki), 300)),
    ok = gen_udp:close(Silent2).

%% Bad option combinations give clear option errors and leave nothing open.
bad_options(Config) ->
    Pki = proplists:get_value(pki, Config),
    {ok, Udp} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Udp),
    Connect = fun(Extra) ->
                      ?M:connect("localhost", Port,
                                 rssl_test_lib:merge_opts(Extra, client_opts(Pki)), 1000)
              end,
    [?assertEqual({error, {options, {not_supported, O}}}, Connect([O]))
     || O <- [{packet, 4}, {packet, line}, {packet, raw}, {header, 2}, {packet_size, 10}]],
    ?assertEqual({error, {options, {'tlsv1.2', {versions, ['dtlsv1.2', 'tlsv1.2']}}}},
                 Connect([{versions, ['dtlsv1.2', 'tlsv1.2']}])),
    case is_ssl() of
        true ->
            %% OTP 25 raises function_clause for DTLS with TLS versions only.
            ok;
        false ->
            ?assertEqual({error, {options, {'tlsv1.3', {versions, ['tlsv1.3']}}}},
                         Connect([{versions, ['tlsv1.3']}]))
    end,
    ok = gen_udp:close(Udp).

%% ?M's DTLS client against `openssl s_server -dtls1_2': lines each way.
openssl_s_server(Config) ->
    Pki = proplists:get_value(pki, Config),
    #{server := #{cert := Cert, key := Key}} = Pki,
    Exe = rssl_tool_lib:exe("openssl"),
    {ok, Probe} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Probe),
    ok = gen_udp:close(Probe),
    Tool0 = rssl_tool_lib:start(
              [rssl_tool_lib:q(Exe), " s_server -dtls1_2 -naccept 1 -accept ",
               integer_to_list(Port), " -cert ", rssl_tool_lib:q(Cert),
               " -key ", rssl_tool_lib:q(Key)]),
    try
        {ok, _, Tool01} = rssl_tool_lib:wait_output(Tool0, <<"ACCEPT">>, ?T),
        {ok, S} = ?M:connect("localhost", Port, client_opts(Pki), ?T),
        ?assertEqual({ok, [{protocol, 'dtlsv1.2'}]}, ?M:connection_information(S, [protocol])),
        ok = ?M:send(S, <<"from client\n">>),
        {ok, _, Tool1} = rssl_tool_lib:wait_output(Tool01, <<"from client">>, ?T),
        %% s_server sends what it reads on its standard input.
        true = port_command(maps:get(port, Tool1), <<"from server\n">>),
        ?assertEqual({ok, <<"from server\n">>}, ?M:recv(S, 0, ?T)),
        ok = ?M:close(S),
        rssl_tool_lib:wait_exit(Tool1, ?T)
    after
        rssl_tool_lib:stop(Tool0)
    end.
