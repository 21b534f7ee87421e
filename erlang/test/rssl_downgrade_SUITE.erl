%% Downgrading a TLS connection to TCP with the module under test (?M,
%% rssl by default): close(S, {NewOwner, Timeout}) exchanges close_notify
%% and gives back the TCP socket, `{ok, Port}', passive, binary and
%% unframed, owned by NewOwner. OTP's ssl on the other end does the same
%% downgrade; clear text then flows both ways on the two ports, also when
%% the peer sends it at once after its close_notify (rssl keeps it; OTP's
%% ssl may have read and dropped it, so with ?M = ssl the peer waits until
%% the downgrade on this side is over).
-module(rssl_downgrade_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).
-define(VERSIONS, ['tlsv1.3', 'tlsv1.2']).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([downgrade_client/1, downgrade_server/1, new_owner_gets_the_port/1,
         data_before_close_notify_dropped/1, peer_silent_times_out/1,
         downgrade_bad_arguments/1, blocked_reader_answered/1]).

suite() -> [{timetrap, {seconds, 120}}].

all() ->
    [downgrade_client, downgrade_server, new_owner_gets_the_port,
     data_before_close_notify_dropped, peer_silent_times_out, downgrade_bad_arguments,
     blocked_reader_answered].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% ?M client, ssl server: both downgrade; the server writes clear text the
%% moment its downgrade returns; each side reads the other's.
downgrade_client(Config) ->
    [both_downgrade(Config, client, V) || V <- ?VERSIONS].

%% ?M server, ssl client.
downgrade_server(Config) ->
    [both_downgrade(Config, server, V) || V <- ?VERSIONS].

%% The port belongs to the process named, which can use it at once.
new_owner_gets_the_port(Config) ->
    Pki = ?config(pki, Config),
    {S, Peer} = rssl_test_lib:open(?M, client, client_opts(Pki, 'tlsv1.3'), ssl,
                                   server_opts(Pki, 'tlsv1.3'), #{}),
    rssl_test_lib:request(Peer, {fn, fun(Mod, PS) -> peer_downgrade(Mod, PS, <<"hi">>) end}),
    Parent = self(),
    Owner = spawn_link(fun() ->
                               receive {port, P} ->
                                       Parent ! {owner_read, gen_tcp:recv(P, 2, ?T)},
                                       receive stop -> gen_tcp:close(P) end
                               end
                       end),
    {ok, Port} = ?M:close(S, {Owner, ?T}),
    ok = peer_go(Peer),
    ?assertEqual({connected, Owner}, erlang:port_info(Port, connected)),
    ?assertEqual({error, not_owner}, gen_tcp:controlling_process(Port, self())),
    Owner ! {port, Port},
    receive {owner_read, Read} -> ?assertEqual({ok, <<"hi">>}, Read)
    after ?T -> error(owner_silent)
    end,
    {ok, _} = rssl_test_lib:reply(Peer),
    Owner ! stop,
    ok = rssl_test_lib:stop_peer(Peer).

%% TLS data the peer sent before its close_notify is not in the port (OTP
%% drops it); what it sends in clear after is. OTP 25's own ssl:close/2
%% hangs here about one run in three (its gen_statem call never returns,
%% seen under `rebar3 as otp_ssl ct`), so the case runs for rssl only.
data_before_close_notify_dropped(Config) ->
    case ?M of
        ssl -> {skip, "OTP 25's ssl:close/2 downgrade hangs now and then when TLS data precedes the peer's close_notify"};
        _ -> data_before_close_notify_dropped_run(Config)
    end.

data_before_close_notify_dropped_run(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {S, Peer} = rssl_test_lib:open(?M, server, server_opts(Pki, V), ssl,
                                        client_opts(Pki, V), #{}),
         Down = fun(Mod, PS) ->
                        ok = Mod:send(PS, <<"tls before">>),
                        peer_downgrade(Mod, PS, <<"clear after">>)
                end,
         rssl_test_lib:request(Peer, {fn, Down}),
         {ok, Port} = ?M:close(S, {self(), ?T}),
         ok = peer_go(Peer),
         ?assertEqual({ok, <<"clear after">>}, gen_tcp:recv(Port, 11, ?T)),
         {ok, PeerPort} = rssl_test_lib:reply(Peer),
         ok = gen_tcp:close(Port),
         ?assertEqual({error, closed}, gen_tcp:recv(PeerPort, 0, ?T)),
         ok = gen_tcp:close(PeerPort),
         ok = rssl_test_lib:stop_peer(Peer)
     end || V <- ?VERSIONS].

%% A peer that never answers our close_notify: {error, timeout}, and the
%% connection is gone.
peer_silent_times_out(Config) ->
    Pki = ?config(pki, Config),
    {S, Peer} = rssl_test_lib:open(?M, client, client_opts(Pki, 'tlsv1.2'), ssl,
                                   server_opts(Pki, 'tlsv1.2'), #{}),
    ?assertEqual({error, timeout}, ?M:close(S, {self(), 200})),
    ok = rssl_test_lib:stop_peer(Peer).

%% A process blocked in recv on the socket is answered when it is
%% downgraded (rssl: {error, closed}; the ssl answer differs by state).
blocked_reader_answered(Config) ->
    Pki = ?config(pki, Config),
    {S, Peer} = rssl_test_lib:open(?M, client, client_opts(Pki, 'tlsv1.3'), ssl,
                                   server_opts(Pki, 'tlsv1.3'), #{}),
    Parent = self(),
    Reader = spawn_link(fun() -> Parent ! {self(), ?M:recv(S, 0, ?T)} end),
    true = rssl_socket_lib:wait_until(fun() ->
                                              {status, waiting} =:= process_info(Reader, status)
                                      end, ?T),
    rssl_test_lib:request(Peer, {fn, fun(Mod, PS) -> peer_downgrade(Mod, PS, <<"x">>) end}),
    {ok, Port} = ?M:close(S, {self(), ?T}),
    ok = peer_go(Peer),
    receive {Reader, Result} -> ?assertMatch({error, _}, Result)
    after ?T -> error(reader_not_answered)
    end,
    {ok, PeerPort} = rssl_test_lib:reply(Peer),
    ok = gen_tcp:close(PeerPort),
    ok = gen_tcp:close(Port),
    ok = rssl_test_lib:stop_peer(Peer).

%% Not a process, or not a timeout: refused (rssl; OTP raises).
downgrade_bad_arguments(Config) ->
    case ?M of
        rssl ->
            Pki = ?config(pki, Config),
            {S, Peer} = rssl_test_lib:open(rssl, client, client_opts(Pki, 'tlsv1.3'), ssl,
                                           server_opts(Pki, 'tlsv1.3'), #{}),
            {error, einval} = rssl:close(S, {not_a_pid, ?T}),
            {error, einval} = rssl:close(S, {self(), -1}),
            ok = rssl:close(S),
            ok = rssl_test_lib:stop_peer(Peer);
        _ ->
            {skip, "OTP raises function_clause"}
    end.

%%% Helpers -----------------------------------------------------------------

client_opts(Pki, V) -> rssl_test_lib:client_opts(Pki, V, ca).
server_opts(Pki, V) -> rssl_test_lib:server_opts(Pki, V, server).

both_downgrade(Config, Role, V) ->
    Pki = ?config(pki, Config),
    {Local, Remote} = case Role of
                          client -> {client_opts(Pki, V), server_opts(Pki, V)};
                          server -> {server_opts(Pki, V), client_opts(Pki, V)}
                      end,
    {S, Peer} = rssl_test_lib:open(?M, Role, Local, ssl, Remote, #{}),
    rssl_test_lib:request(Peer, {fn, fun(Mod, PS) -> peer_downgrade(Mod, PS, <<"from ssl">>) end}),
    {ok, Port} = ?M:close(S, {self(), ?T}),
    ok = peer_go(Peer),
    ?assertEqual({ok, [{active, false}, {mode, binary}, {packet, 0}]},
                 inet:getopts(Port, [active, mode, packet])),
    ?assertEqual({ok, <<"from ssl">>}, gen_tcp:recv(Port, 8, ?T)),
    ok = gen_tcp:send(Port, <<"from ", (atom_to_binary(?M))/binary>>),
    {ok, PeerPort} = rssl_test_lib:reply(Peer),
    Want = <<"from ", (atom_to_binary(?M))/binary>>,
    ?assertEqual({ok, Want}, gen_tcp:recv(PeerPort, byte_size(Want), ?T)),
    ok = gen_tcp:close(PeerPort),
    ?assertEqual({error, closed}, gen_tcp:recv(Port, 0, ?T)),
    ok = gen_tcp:close(Port),
    ok = rssl_test_lib:stop_peer(Peer).

%% In the peer: downgrade, then send `Clear' at once; the port stays the
%% peer process's (its reply carries it for the test to use).
peer_downgrade(Mod, S, Clear) ->
    {ok, Port} = Mod:close(S, {self(), ?T}),
    case ?M of
        rssl -> ok;
        _ -> receive {_, go} -> ok end
    end,
    ok = gen_tcp:send(Port, Clear),
    {ok, Port}.

%% With ?M = ssl, lets the peer send its clear text now.
peer_go(#{pid := Pid}) ->
    case ?M of
        rssl -> ok;
        _ -> Pid ! {self(), go}, ok
    end.
