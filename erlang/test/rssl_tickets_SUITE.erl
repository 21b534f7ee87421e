%% TLS 1.3 tickets by hand and 0-RTT for the module under test (?M, rssl by
%% default), with OTP's ssl (and OpenSSL's s_server and s_client) as the
%% peer:
%%
%% - a ?M client with {session_tickets, manual} gets each ticket as
%%   {ssl, session_ticket, Ticket} and resumes with {use_ticket, [Ticket]}
%%   (stateless and stateful ssl servers); a ticket the server cannot use
%%   means a full handshake;
%% - early data both ways: a ?M client's {early_data, Bin} reaches the ssl
%%   server first, before later data, and the client hears
%%   {ssl, S, {early_data, accepted | rejected}}; an ssl client's early
%%   data is what a ?M server reads first;
%% - anti_replay: a replayed first flight (ClientHello and early data, sent
%%   again through a relay) delivers nothing; a ticket's early data is
%%   accepted once by an rssl server with anti_replay (OTP's Bloom filter
%%   keys on the PSK binder, which differs from one ClientHello to the
%%   next, so ssl accepts the same ticket's early data again: skipped for
%%   ssl), and again without anti_replay;
%% - bad combinations give OTP 25's errors.
%%
%% rssl's tickets are OpenSSL sessions and OTP's are its own records: each
%% module uses only its own. Compile with {d, 'M', ssl} to run the same
%% checks with ssl on both ends.
-module(rssl_tickets_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).

-export([suite/0, all/0,
         init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([client_manual_stateless/1, client_manual_stateful/1,
         client_ticket_refused/1,
         client_early_data/1, client_early_data_rejected/1, client_auto_early_data/1,
         server_early_data_stateless/1, server_early_data_stateful/1,
         server_early_data_disabled/1,
         anti_replay_ticket_once/1, no_anti_replay_ticket_twice/1,
         replayed_first_flight/1,
         openssl_server_early_data/1, openssl_client_early_data/1,
         client_option_errors/1, server_option_errors/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [client_manual_stateless, client_manual_stateful, client_ticket_refused,
     client_early_data, client_early_data_rejected, client_auto_early_data,
     server_early_data_stateless, server_early_data_stateful, server_early_data_disabled,
     anti_replay_ticket_once, no_anti_replay_ticket_twice, replayed_first_flight,
     openssl_server_early_data, openssl_client_early_data,
     client_option_errors, server_option_errors].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

%% OTP's ssl client keeps automatic tickets in one store per VM, found by
%% host name and not port: those this suite's (now gone) servers gave would
%% be offered first to the next suite's "localhost" servers. A fresh ssl
%% application has an empty store.
end_per_suite(_Config) ->
    restart_ssl().

restart_ssl() ->
    ok = application:stop(ssl),
    {ok, _} = application:ensure_all_started(ssl),
    ok.

init_per_testcase(client_auto_early_data, Config) ->
    %% The same store, filled by earlier suites' ssl clients of
    %% "localhost": with ssl as ?M its automatic tickets would be offered
    %% to this case's server, which cannot decrypt them.
    restart_ssl(),
    init_per_testcase(any, Config);
init_per_testcase(_TC, Config) ->
    flush(),
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    flush(),
    rssl_test_lib:end_per_testcase(Config).

%%% ?M client, manual tickets -------------------------------------------------

client_manual_stateless(Config) ->
    client_manual(Config, stateless).

client_manual_stateful(Config) ->
    client_manual(Config, stateful).

%% Each of the server's tickets arrives as {ssl, session_ticket, _} (OTP's
%% servers send three); one of them resumes, and both ends say so.
client_manual(Config, Mode) ->
    Server = ssl_server(Config, [{session_tickets, Mode}]),
    {S1, Tickets} = first_connection(Config, Server),
    ?assertEqual(3, length(Tickets)),
    %% OTP 25's map (its ticket record is rssl's OpenSSL session).
    [?assertMatch(#{sni := "localhost", cipher_suite := {aes_256_gcm, sha384},
                    psk := <<_:48/binary>>, timestamp := Ms, ticket := _}
                  when is_integer(Ms), T) || T <- Tickets],
    ?assertEqual([cipher_suite, psk, sni, ticket, timestamp],
                 lists:sort(maps:keys(hd(Tickets)))),
    ok = ?M:close(S1),
    ?assertEqual({ok, false}, served(Server)),
    {ok, S2} = ?M:connect("localhost", port(Server),
                          [{session_tickets, manual}, {use_ticket, [lists:last(Tickets)]}
                           | client_opts(Config)], ?T),
    ?assertEqual({ok, [{session_resumption, true}]},
                 ?M:connection_information(S2, [session_resumption])),
    ok = ?M:send(S2, <<"ping">>),
    ?assertEqual({ok, <<"ping">>}, ?M:recv(S2, 4, ?T)),
    ok = ?M:close(S2),
    ?assertEqual({ok, true}, served(Server)),
    stop_server(Server).

%% A ticket of another server: a full handshake, as OTP's.
client_ticket_refused(Config) ->
    Other = ssl_server(Config, [{session_tickets, stateless}]),
    {S1, [Ticket | _]} = first_connection(Config, Other),
    ok = ?M:close(S1),
    {ok, false} = served(Other),
    stop_server(Other),
    Server = ssl_server(Config, [{session_tickets, stateless}]),
    {ok, S2} = ?M:connect("localhost", port(Server),
                          [{session_tickets, manual}, {use_ticket, [Ticket]}
                           | client_opts(Config)], ?T),
    ?assertEqual({ok, [{session_resumption, false}]},
                 ?M:connection_information(S2, [session_resumption])),
    ok = ?M:close(S2),
    ?assertEqual({ok, false}, served(Server)),
    %% No ticket that can carry early data: the client gives up with
    %% illegal_parameter, as OTP's.
    ?assertMatch({error, {tls_alert, {illegal_parameter, _}}},
                 ?M:connect("localhost", port(Server),
                            [{session_tickets, manual}, {use_ticket, [<<"no ticket">>]},
                             {early_data, <<"early">>} | client_opts(Config)], ?T)),
    stop_server(Server).

%%% ?M client, early data ------------------------------------------------------

%% The early data arrives first, then what is sent after connect; the
%% client is told the server accepted it, before connect returns.
client_early_data(Config) ->
    Server = ssl_server(Config, [{session_tickets, stateless}, {anti_replay, '10k'},
                                 {early_data, enabled}]),
    {S1, [Ticket | _]} = first_connection(Config, Server),
    ok = ?M:close(S1),
    {ok, false} = served(Server),
    {ok, S2} = ?M:connect("localhost", port(Server),
                          [{session_tickets, manual}, {use_ticket, [Ticket]},
                           {early_data, <<"early ">>} | client_opts(Config)], ?T),
    receive {ssl, S2, {early_data, Verdict}} -> ?assertEqual(accepted, Verdict)
    after 0 -> ct:fail(no_early_data_verdict)
    end,
    ok = ?M:send(S2, <<"later">>),
    ?assertEqual({ok, <<"early later">>}, recv_exactly(S2, 11)),
    ok = ?M:close(S2),
    ?assertEqual({ok, true}, served(Server)),
    stop_server(Server).

%% A server that takes no early data: the client hears `rejected', the
%% server never sees the early data, and the connection works.
client_early_data_rejected(Config) ->
    Server = ssl_server(Config, [{session_tickets, stateless}]),
    {S1, [Ticket | _]} = first_connection(Config, Server),
    ok = ?M:close(S1),
    {ok, false} = served(Server),
    {ok, S2} = ?M:connect("localhost", port(Server),
                          [{session_tickets, manual}, {use_ticket, [Ticket]},
                           {early_data, <<"early">>} | client_opts(Config)], ?T),
    receive {ssl, S2, {early_data, Verdict}} -> ?assertEqual(rejected, Verdict)
    after 0 -> ct:fail(no_early_data_verdict)
    end,
    ok = ?M:send(S2, <<"later">>),
    ?assertEqual({ok, <<"later">>}, recv_exactly(S2, 5)),
    ok = ?M:close(S2),
    ?assertEqual({ok, true}, served(Server)),
    stop_server(Server).

%% With automatic tickets: the ticket the first connection kept carries
%% the second one's early data.
client_auto_early_data(Config) ->
    Server = ssl_server(Config, [{session_tickets, stateless}, {anti_replay, '10k'},
                                 {early_data, enabled}]),
    Opts = [{session_tickets, auto} | client_opts(Config)],
    {ok, S1} = ?M:connect("localhost", port(Server), Opts, ?T),
    ok = ?M:send(S1, <<"ping">>),
    ?assertEqual({ok, <<"ping">>}, ?M:recv(S1, 4, ?T)),
    ok = ?M:close(S1),
    {ok, false} = served(Server),
    tickets_stored(?M),
    {ok, S2} = ?M:connect("localhost", port(Server), [{early_data, <<"early ">>} | Opts], ?T),
    receive {ssl, S2, {early_data, Verdict}} -> ?assertEqual(accepted, Verdict)
    after 0 -> ct:fail(no_early_data_verdict)
    end,
    ok = ?M:send(S2, <<"later">>),
    ?assertEqual({ok, <<"early later">>}, recv_exactly(S2, 11)),
    ok = ?M:close(S2),
    ?assertEqual({ok, true}, served(Server)),
    stop_server(Server).

%%% ?M server, early data -------------------------------------------------------

server_early_data_stateless(Config) ->
    server_early_data(Config, [{session_tickets, stateless}, {anti_replay, '10k'}]).

server_early_data_stateful(Config) ->
    server_early_data(Config, [{session_tickets, stateful}]).

%% An ssl client's early data is what the ?M server reads first, then what
%% the client sends after its handshake.
server_early_data(Config, Tickets) ->
    L = m_listen(Config, [{early_data, enabled} | Tickets]),
    Ticket = ssl_ticket(Config, L),
    {Client, S} = ssl_client_early(Config, L, Ticket, <<"early ">>, <<"later">>),
    ?assertEqual({ok, <<"early later">>}, recv_exactly(S, 11)),
    ?assertEqual({ok, [{session_resumption, true}]},
                 ?M:connection_information(S, [session_resumption])),
    ?assertEqual({early_data, accepted}, client_result(Client)),
    ok = ?M:close(S),
    ok = ?M:close(L).

%% Early data to a server without it: rejected, never read.
server_early_data_disabled(Config) ->
    L = m_listen(Config, [{session_tickets, stateless}]),
    Ticket = ssl_ticket(Config, L),
    {Client, S} = ssl_client_early(Config, L, Ticket, <<"early">>, <<"later">>),
    ?assertEqual({ok, <<"later">>}, recv_exactly(S, 5)),
    ?assertEqual({early_data, rejected}, client_result(Client)),
    ok = ?M:close(S),
    ok = ?M:close(L).

%%% Replays ---------------------------------------------------------------------

%% One ticket's early data twice (a client reusing it): with anti_replay
%% an rssl server takes it the first time only; the second handshake
%% resumes without it.
anti_replay_ticket_once(Config) ->
    case ?M of
        ssl -> {skip, "OTP's anti_replay keys on the binder: a ticket's early data "
                      "is accepted again in another ClientHello"};
        _ -> ticket_twice(Config, [{anti_replay, '10k'}], rejected)
    end.

%% Without anti_replay a stateless server cannot tell: accepted twice.
no_anti_replay_ticket_twice(Config) ->
    ticket_twice(Config, [], accepted).

ticket_twice(Config, AntiReplay, Second) ->
    L = m_listen(Config, [{early_data, enabled}, {session_tickets, stateless} | AntiReplay]),
    Ticket = ssl_ticket(Config, L),
    {C1, S1} = ssl_client_early(Config, L, Ticket, <<"once ">>, <<"first">>),
    ?assertEqual({ok, <<"once first">>}, recv_exactly(S1, 10)),
    ?assertEqual({early_data, accepted}, client_result(C1)),
    {C2, S2} = ssl_client_early(Config, L, Ticket, <<"once ">>, <<"again">>),
    Expected = case Second of
                   accepted -> <<"once again">>;
                   rejected -> <<"again">>
               end,
    ?assertEqual({ok, Expected}, recv_exactly(S2, byte_size(Expected))),
    ?assertEqual({ok, [{session_resumption, true}]},
                 ?M:connection_information(S2, [session_resumption])),
    ?assertEqual({early_data, Second}, client_result(C2)),
    [ok = ?M:close(S) || S <- [S1, S2]],
    ok = ?M:close(L).

%% An attacker who recorded a client's first flight (ClientHello, early
%% data) sends it again: the server's handshake on that connection fails
%% and the early data is not delivered a second time.
replayed_first_flight(Config) ->
    L = m_listen(Config, [{early_data, enabled}, {session_tickets, stateless},
                          {anti_replay, '10k'}]),
    {ok, {_, Target}} = ?M:sockname(L),
    Ticket = ssl_ticket(Config, L),
    Self = self(),
    {Relay, RelayPort} = recording_relay(Target, Self),
    Client = spawn_link(fun() ->
                                Opts = [{session_tickets, manual}, {use_ticket, [Ticket]},
                                        {early_data, <<"pay 100">>}
                                        | rssl_test_lib:client_opts(?config(pki, Config),
                                                                    'tlsv1.3', ca)],
                                {ok, C} = ?PEER:connect("localhost", RelayPort, Opts, ?T),
                                Self ! {self(), connected},
                                receive stop -> ?PEER:close(C) end
                        end),
    {ok, T1} = ?M:transport_accept(L, ?T),
    {ok, S1} = ?M:handshake(T1, ?T),
    ?assertEqual({ok, <<"pay 100">>}, recv_exactly(S1, 7)),
    receive {Client, connected} -> ok after ?T -> ct:fail(client_not_connected) end,
    First = receive {Relay, first_flight, Bytes} -> Bytes after ?T -> ct:fail(nothing_recorded) end,
    %% The replay, on a new connection, byte for byte.
    {ok, Replay} = gen_tcp:connect("localhost", Target, [binary, {active, false}]),
    ok = gen_tcp:send(Replay, First),
    {ok, T2} = ?M:transport_accept(L, ?T),
    Replayed = spawn_link(fun() -> Self ! {self(), ?M:handshake(T2, ?T)} end),
    ok = gen_tcp:shutdown(Replay, write),
    receive
        {Replayed, {ok, S2}} -> ct:fail({replay_handshake_completed, ?M:recv(S2, 0, 0)});
        {Replayed, {error, _}} -> ok
    after ?T -> ct:fail(replay_handshake_pending)
    end,
    ok = gen_tcp:close(Replay),
    Client ! stop,
    ok = ?M:close(S1),
    rssl_socket_lib:proxy_stop({Relay, RelayPort}),
    ok = ?M:close(L).

%%% OpenSSL's tools -------------------------------------------------------------

%% openssl s_server -early_data: a ?M client's ticket from it resumes and
%% its early data is what s_server prints.
openssl_server_early_data(Config) ->
    Exe = rssl_tool_lib:exe("openssl"),
    #{server := #{cert := Cert, key := Key}} = ?config(pki, Config),
    Tool0 = rssl_tool_lib:start([Exe, " s_server -accept 127.0.0.1:0 -tls1_3 -early_data",
                                 " -cert ", rssl_tool_lib:q(Cert), " -key ", rssl_tool_lib:q(Key)]),
    {ok, PortBin, Tool} = rssl_tool_lib:wait_output(Tool0, re("ACCEPT 127.0.0.1:(\\d+)\n"), ?T),
    try
        Port = binary_to_integer(PortBin),
        Opts = [{session_tickets, manual} | client_opts(Config)],
        {ok, S1} = ?M:connect("localhost", Port, Opts, ?T),
        ok = ?M:send(S1, <<"first\n">>),
        Ticket = receive {ssl, session_ticket, T} -> T after ?T -> ct:fail(no_ticket) end,
        ok = ?M:close(S1),
        {ok, S2} = ?M:connect("localhost", Port, [{use_ticket, [Ticket]},
                                                  {early_data, <<"zero-rtt\n">>} | Opts], ?T),
        receive {ssl, S2, {early_data, V}} -> ?assertEqual(accepted, V)
        after 0 -> ct:fail(no_early_data_verdict)
        end,
        ?assertEqual({ok, [{session_resumption, true}]},
                     ?M:connection_information(S2, [session_resumption])),
        ok = ?M:send(S2, <<"after\n">>),
        %% In order: s_server prints the early data between its own lines.
        {ok, _, _} = rssl_tool_lib:wait_output(Tool, re("first\n(?:.|\n)*zero-rtt\n(?:.|\n)*after\n"), ?T),
        ok = ?M:close(S2)
    after
        rssl_tool_lib:stop(Tool)
    end.

%% openssl s_client -sess_out, then -sess_in -early_data: a ?M server
%% reads the early data first and s_client reports it accepted.
openssl_client_early_data(Config) ->
    Exe = rssl_tool_lib:exe("openssl"),
    L = m_listen(Config, [{early_data, enabled}, {session_tickets, stateless},
                          {anti_replay, '10k'}]),
    {ok, {_, Port}} = ?M:sockname(L),
    Sess = filename:join(?config(priv_dir, Config), "sess.pem"),
    Early = rssl_tool_lib:write_temp(Config, "early", <<"zero-rtt\n">>),
    Connect = [Exe, " s_client -connect localhost:", integer_to_list(Port), " -tls1_3 -ign_eof"],
    First = rssl_tool_lib:start([Connect, " -sess_out ", rssl_tool_lib:q(Sess)]),
    {ok, T1} = ?M:transport_accept(L, ?T),
    {ok, S1} = ?M:handshake(T1, ?T),
    %% Data after the tickets: s_client has read them when it prints it.
    ok = ?M:send(S1, <<"hello\n">>),
    {ok, _, First1} = rssl_tool_lib:wait_output(First, <<"hello\n">>, ?T),
    ok = ?M:close(S1),
    _ = rssl_tool_lib:stop(First1),
    Second = rssl_tool_lib:start([Connect, " -sess_in ", rssl_tool_lib:q(Sess),
                                  " -early_data ", rssl_tool_lib:q(Early)]),
    try
        {ok, T2} = ?M:transport_accept(L, ?T),
        {ok, S2} = ?M:handshake(T2, ?T),
        ?assertEqual({ok, <<"zero-rtt\n">>}, recv_exactly(S2, 9)),
        ok = ?M:send(S2, <<"bye\n">>),
        {ok, _, _} = rssl_tool_lib:wait_output(Second, <<"Early data was accepted">>, ?T),
        ok = ?M:close(S2)
    after
        rssl_tool_lib:stop(Second)
    end,
    ok = ?M:close(L).

%%% Options -------------------------------------------------------------------

client_option_errors(Config) ->
    Pki = ?config(pki, Config),
    Base = rssl_test_pki:client_opts(Pki, ca),
    T = <<1, 2, 3>>,
    Cases =
        [{[{session_tickets, manual}, {versions, ['tlsv1.2']}],
          {options, dependency, {session_tickets, {versions, ['tlsv1.3']}}}},
         {[{session_tickets, manual}, {use_ticket, [T]}, {versions, ['tlsv1.2']}],
          {options, dependency, {use_ticket, {versions, ['tlsv1.3']}}}},
         {[{early_data, <<"x">>}],
          {options, dependency, {early_data, {session_tickets, [manual, auto]}}}},
         {[{session_tickets, manual}, {early_data, <<"x">>}],
          {options, dependency, {early_data, use_ticket}}},
         {[{session_tickets, manual}, {use_ticket, [T]}, {early_data, x}],
          {options, type, {early_data, {x, not_binary}}}},
         {[{session_tickets, manual}, {use_ticket, x}], {options, {use_ticket, x}}},
         {[{session_tickets, stateless}],
          {options, role, {session_tickets, {stateless, {client, [disabled, manual, auto]}}}}},
         {[{anti_replay, '10k'}],
          {options, dependency, {anti_replay, {session_tickets, [stateless]}}}}],
    [?assertEqual({Opts, {error, Error}},
                  {Opts, ?M:connect("localhost", 1, Opts ++ Base, ?T)}) || {Opts, Error} <- Cases],
    %% use_ticket without manual tickets (OTP 25's ssl crashes) or as an
    %% improper list (OTP's accepts it): rssl says what is wrong.
    case ?M of
        ssl -> ok;
        _ -> ?assertEqual({error, {options, dependency,
                                   {use_ticket, {session_tickets, [manual]}}}},
                          ?M:connect("localhost", 1, [{use_ticket, [T]} | Base], ?T)),
             ?assertEqual({error, {options, {use_ticket, [T | T]}}},
                          ?M:connect("localhost", 1, [{session_tickets, manual},
                                                      {use_ticket, [T | T]} | Base], ?T))
    end.

server_option_errors(Config) ->
    Pki = ?config(pki, Config),
    Base = rssl_test_pki:server_opts(Pki, server),
    Cases =
        [{[{anti_replay, '10k'}],
          {options, dependency, {anti_replay, {session_tickets, [stateless]}}}},
         {[{session_tickets, stateful}, {anti_replay, '10k'}],
          {options, dependency, {anti_replay, {session_tickets, [stateless]}}}},
         {[{session_tickets, stateless}, {anti_replay, x}], {options, {anti_replay, x}}},
         {[{session_tickets, stateless}, {anti_replay, {1, 2}}],
          {options, {anti_replay, {1, 2}}}},
         {[{early_data, enabled}],
          {options, dependency, {early_data, {session_tickets, [stateful, stateless]}}}},
         {[{session_tickets, stateless}, {early_data, x}],
          {options, role, {early_data, {x, {server, [disabled, enabled]}}}}},
         {[{session_tickets, stateless}, {early_data, enabled}, {versions, ['tlsv1.2']}],
          {options, dependency, {session_tickets, {versions, ['tlsv1.3']}}}},
         {[{session_tickets, manual}],
          {options, role, {session_tickets, {manual, {server, [disabled, stateful, stateless]}}}}}],
    [?assertEqual({Opts, {error, Error}}, {Opts, ?M:listen(0, Opts ++ Base)})
     || {Opts, Error} <- Cases],
    %% Accepted: early data disabled, the value forms of anti_replay, and
    %% use_ticket (a client option OTP's servers ignore).
    [begin
         {ok, L} = ?M:listen(0, Opts ++ Base),
         ok = ?M:close(L)
     end || Opts <- [[{session_tickets, stateless}, {early_data, disabled}],
                     [{session_tickets, stateless}, {anti_replay, '100k'}],
                     [{session_tickets, stateless}, {anti_replay, {5, 3, 4096}}],
                     [{use_ticket, [<<>>]}]]],
    ok.

%%% Helpers -------------------------------------------------------------------

client_opts(Config) ->
    rssl_test_lib:client_opts(?config(pki, Config), 'tlsv1.3', ca).

server_opts(Config) ->
    rssl_test_lib:server_opts(?config(pki, Config), 'tlsv1.3', server).

%% A ?M client's first connection to Server: a round trip (the tickets come
%% before the answer), then the tickets received. Returns {S, Tickets}.
first_connection(Config, Server) ->
    {ok, S} = ?M:connect("localhost", port(Server), [{session_tickets, manual}
                                                     | client_opts(Config)], ?T),
    ?assertEqual({ok, [{session_resumption, false}]},
                 ?M:connection_information(S, [session_resumption])),
    ok = ?M:send(S, <<"ping">>),
    ?assertEqual({ok, <<"ping">>}, ?M:recv(S, 4, ?T)),
    {S, tickets(3)}.

%% Up to N tickets: those already here, waiting for the first.
tickets(N) ->
    First = receive {ssl, session_ticket, T} -> T after ?T -> ct:fail(no_ticket) end,
    [First | [receive {ssl, session_ticket, T2} -> T2 after ?T -> ct:fail(ticket_missing) end
              || _ <- lists:seq(2, N)]].

%% An ssl server echoing on each connection; after each it tells the test
%% whether the connection resumed. Returns #{pid, port}.
ssl_server(Config, Opts) ->
    Self = self(),
    Pid = spawn_link(
            fun() ->
                    {ok, L} = ?PEER:listen(0, [{reuseaddr, true} | Opts ++ server_opts(Config)]),
                    {ok, {_, Port}} = ?PEER:sockname(L),
                    Self ! {self(), port, Port},
                    serve(L, Self)
            end),
    receive {Pid, port, Port} -> #{pid => Pid, port => Port}
    after ?T -> ct:fail(server_not_listening)
    end.

serve(L, Parent) ->
    case ?PEER:transport_accept(L, infinity) of
        {ok, T} ->
            case ?PEER:handshake(T, ?T) of
                {ok, S} ->
                    {ok, [{session_resumption, R}]} =
                        ?PEER:connection_information(S, [session_resumption]),
                    echo(S),
                    Parent ! {self(), served, R};
                Error ->
                    Parent ! {self(), served, Error}
            end,
            serve(L, Parent);
        {error, closed} ->
            ok
    end.

echo(S) ->
    case ?PEER:recv(S, 0, ?T) of
        {ok, Data} -> ok = ?PEER:send(S, Data), echo(S);
        {error, _} -> ?PEER:close(S)
    end.

served(#{pid := Pid}) ->
    receive {Pid, served, R} when is_boolean(R) -> {ok, R};
            {Pid, served, Error} -> Error
    after ?T -> ct:fail(server_silent)
    end.

port(#{port := Port}) -> Port.

stop_server(#{pid := Pid}) ->
    unlink(Pid),
    exit(Pid, kill),
    ok.

m_listen(Config, Opts) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | Opts ++ server_opts(Config)]),
    L.

%% An ssl client's ticket from a ?M server (a connection with a round trip).
ssl_ticket(Config, L) ->
    {ok, {_, Port}} = ?M:sockname(L),
    Self = self(),
    Client = spawn_link(
               fun() ->
                       {ok, C} = ?PEER:connect("localhost", Port, [{session_tickets, manual}
                                                                   | client_opts(Config)], ?T),
                       ok = ?PEER:send(C, <<"ping">>),
                       {ok, <<"pong">>} = ?PEER:recv(C, 4, ?T),
                       T = receive {ssl, session_ticket, Tk} -> Tk after ?T -> error(no_ticket) end,
                       ok = ?PEER:close(C),
                       Self ! {self(), ticket, T}
               end),
    {ok, T} = ?M:transport_accept(L, ?T),
    {ok, S} = ?M:handshake(T, ?T),
    {ok, <<"ping">>} = ?M:recv(S, 4, ?T),
    ok = ?M:send(S, <<"pong">>),
    Ticket = receive {Client, ticket, Tk} -> Tk after ?T -> ct:fail(no_ticket) end,
    ok = ?M:close(S),
    Ticket.

%% An ssl client resuming with Ticket, sending Early as early data and
%% Later after its handshake; it keeps the connection until the test
%% asks for its early data verdict. Returns {Client, ServerSocket}.
ssl_client_early(Config, L, Ticket, Early, Later) ->
    {ok, {_, Port}} = ?M:sockname(L),
    Self = self(),
    Client = spawn_link(
               fun() ->
                       Opts = [{session_tickets, manual}, {use_ticket, [Ticket]},
                               {early_data, Early} | client_opts(Config)],
                       {ok, C} = ?PEER:connect("localhost", Port, Opts, ?T),
                       Verdict = receive {ssl, C, {early_data, V}} -> {early_data, V}
                                 after 0 -> none
                                 end,
                       ok = ?PEER:send(C, Later),
                       receive {Self, result} -> Self ! {self(), result, Verdict} end,
                       receive {Self, stop} -> ?PEER:close(C) end
               end),
    {ok, T} = ?M:transport_accept(L, ?T),
    {ok, S} = ?M:handshake(T, ?T),
    {Client, S}.

client_result(Client) ->
    Client ! {self(), result},
    receive {Client, result, R} -> Client ! {self(), stop}, R
    after ?T -> ct:fail(client_silent)
    end.

%% Exactly N bytes from a passive socket, however they are split.

recv_exactly(S, N) -> recv_exactly(?M, S, N, <<>>).

recv_exactly(_Mod, _S, N, Acc) when byte_size(Acc) >= N ->
    {ok, Acc};
recv_exactly(Mod, S, N, Acc) ->
    case Mod:recv(S, 0, ?T) of
        {ok, Data} -> recv_exactly(Mod, S, N, <<Acc/binary, Data/binary>>);
        Error -> {Error, Acc}
    end.

%% A relay in front of Target that sends Parent what the client sent
%% first: its first flight, ClientHello and early data, the records up to
%% the server's first answer.
recording_relay(Target, Parent) ->
    Self = self(),
    Pid = spawn_link(
            fun() ->
                    {ok, Lsn} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true}]),
                    {ok, Port} = inet:port(Lsn),
                    Self ! {self(), port, Port},
                    {ok, A} = gen_tcp:accept(Lsn, ?T),
                    ok = gen_tcp:close(Lsn),
                    {ok, B} = gen_tcp:connect({127, 0, 0, 1}, Target, [binary, {active, false}]),
                    ok = inet:setopts(A, [{active, true}]),
                    ok = inet:setopts(B, [{active, true}]),
                    record(A, B, Parent, <<>>)
            end),
    receive {Pid, port, Port} -> {Pid, Port}
    after ?T -> ct:fail(relay_not_listening)
    end.

%% Until the server answers, what the client sends is its first flight.
record(A, B, Parent, Flight) ->
    receive
        {tcp, A, Data} ->
            ok = gen_tcp:send(B, Data),
            record(A, B, Parent, <<Flight/binary, Data/binary>>);
        {tcp, B, Data} ->
            Parent ! {self(), first_flight, Flight},
            ok = gen_tcp:send(A, Data),
            relay(A, B);
        {tcp_closed, _} -> gen_tcp:close(A), gen_tcp:close(B);
        stop -> gen_tcp:close(A), gen_tcp:close(B)
    end.

relay(A, B) ->
    receive
        {tcp, A, Data} -> _ = gen_tcp:send(B, Data), relay(A, B);
        {tcp, B, Data} -> _ = gen_tcp:send(A, Data), relay(A, B);
        {tcp_closed, _} -> gen_tcp:close(A), gen_tcp:close(B);
        {tcp_error, _, _} -> gen_tcp:close(A), gen_tcp:close(B);
        stop -> gen_tcp:close(A), gen_tcp:close(B)
    end.

%% OTP's ssl client hands its tickets to tls_client_ticket_store in a
%% cast before the data that followed them is read; a call to the store
%% is answered after it. rssl keeps them before recv returns.
tickets_stored(ssl) ->
    _ = sys:get_state(tls_client_ticket_store),
    ok;
tickets_stored(rssl) ->
    ok.

re(Pattern) ->
    {ok, Re} = re:compile(Pattern),
    Re.

flush() ->
    receive {ssl, session_ticket, _} -> flush();
            {ssl, _, {early_data, _}} -> flush()
    after 0 -> ok
    end.
