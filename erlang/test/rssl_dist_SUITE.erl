%% Erlang distribution over rssl (`-proto_dist rssl', rssl_dist): peer
%% nodes started with the carrier, mutual TLS with each node's certificate
%% (verify_peer both ways), controlled over stdio by this VM (which is not
%% in their cluster). rpc, global, messages from 1 byte to 64 MiB both
%% ways, many concurrent senders, ticks on an idle link, node down when a
%% peer is killed or stops answering, refusals (another CA, a certificate
%% for another host, a plain inet_tcp node) that leave both nodes running,
%% IPv6, the -rssl_dist_opt flags, bad options, and no descriptor or
%% connection left once nodes come and go.
%%
%% With ?M = ssl (`rebar3 as otp_ssl ct') the same cases run on OTP's
%% inet_tls carrier, which shows what they expect is what inet_tls does.
-module(rssl_dist_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([rpc_both_ways/1, global_names/1, message_sizes/1, concurrent_senders/1,
         stalled_receiver_catches_up/1,
         longnames/1, ipv6/1, flags_instead_of_file/1, bad_options_stop_the_start/1,
         idle_link_ticks/1, nodedown_when_killed/1, nodedown_when_link_cut/1,
         other_ca_refused/1, wrong_host_refused/1, plain_tcp_node_refused/1,
         bad_packets_end_only_their_connection/1, port_misuse_refused/1, nodes_come_and_go/1,
         connection_options/1, reconnect_resumes_session/1]).
%% Run on the peer nodes.
-export([echo_size/1, both_ways/2, make_binary/1, collector/2, senders/3, port_stats/1,
         watch/1, await_down/1,
         dist_socket/1, resources/0, connect_cycles/2, wait_gone/1, misuse/1]).

-define(T, 30000).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [rpc_both_ways, global_names, message_sizes, concurrent_senders,
     stalled_receiver_catches_up, longnames, ipv6,
     flags_instead_of_file, bad_options_stop_the_start, idle_link_ticks,
     nodedown_when_killed, nodedown_when_link_cut, other_ca_refused, wrong_host_refused,
     plain_tcp_node_refused, bad_packets_end_only_their_connection, port_misuse_refused,
     nodes_come_and_go, connection_options, reconnect_resumes_session].

init_per_suite(Config) ->
    _ = os:cmd("epmd -daemon"),
    {ok, Host} = inet:gethostname(),
    Pki = rssl_test_pki:make_nodes(?config(priv_dir, Config), [Host, "localhost"]),
    Dir = ?config(priv_dir, Config),
    [{host, Host}, {pki, Pki},
     {good, optfile(Dir, Pki, node, ca)},
     {other, optfile(Dir, Pki, other_node, other_ca)},
     {wrong_host, optfile(Dir, Pki, wrong_host_node, ca)} | Config].

end_per_suite(_Config) -> ok.

init_per_testcase(_Case, Config) -> Config.

%% Every peer of the case is stopped (peer:stop/1 of a stopped one is fine).
end_per_testcase(_Case, _Config) ->
    [catch peer:stop(P) || P <- erase_peers()],
    ok.

%%% Cases -------------------------------------------------------------------------

rpc_both_ways(Config) ->
    {A, NA} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
    ?assertEqual(NA, peer:call(B, rpc, call, [NA, erlang, node, []])),
    ?assertEqual([NB], peer:call(A, erlang, nodes, [])),
    ?assertEqual([NA], peer:call(B, erlang, nodes, [])),
    %% The connection is this carrier's: rssl's port (inet_tls: a process).
    [{NB, Ctrl}] = peer:call(A, erlang, system_info, [dist_ctrl]),
    case ?M of
        rssl -> ?assertEqual({name, "rssl_nif"}, peer:call(A, erlang, port_info, [Ctrl, name]));
        ssl -> ?assert(is_pid(Ctrl))
    end,
    {ok, Info} = peer:call(A, net_kernel, node_info, [NB]),
    #{address := Address} = maps:from_list(Info),
    ?assertEqual(protocol(), element(4, Address)),
    %% The TLS session itself: verified both ways, the certificates seen.
    {ok, Props} = peer:call(A, ?M, connection_information, [peer:call(A, ?MODULE, dist_socket, [NB])]),
    ?assertEqual('tlsv1.2', proplists:get_value(protocol, Props)).

%% net_kernel:setopts/2 and getopts/2 reach the connection's socket, and
%% a value the socket cannot take is refused, as inet refuses it.
connection_options(Config) ->
    {A, _} = node_up(Config, "a", good),
    {_B, NB} = node_up(Config, "b", good),
    pong = peer:call(A, net_adm, ping, [NB]),
    Set = fun(Opts) -> peer:call(A, net_kernel, setopts, [NB, Opts]) end,
    Get = fun(Names) -> peer:call(A, net_kernel, getopts, [NB, Names]) end,
    ?assertEqual(ok, Set([{nodelay, false}, {sndbuf, 65536}, {keepalive, true}])),
    %% (In the order asked, as inet_tcp's; inet_tls's come reversed.)
    {ok, Got} = Get([nodelay, sndbuf, keepalive]),
    [{keepalive, true}, {nodelay, false}, {sndbuf, SndBuf}] = lists:sort(Got),
    ?assert(SndBuf >= 65536),
    ?assertEqual(ok, Set([{nodelay, true}, {linger, {true, 2}}])),
    {ok, Got2} = Get([nodelay, linger]),
    ?assertEqual([{linger, {true, 2}}, {nodelay, true}], lists:sort(Got2)),
    %% Refused: inet_tcp says einval, inet_tls wraps it in ssl's
    %% {options, ...}; rssl_dist answers as inet_tcp does.
    Refused = case ?M of
                  rssl -> fun(R) -> R =:= {error, einval} end;
                  ssl -> fun(R) -> element(1, R) =:= error end
              end,
    ?assert(Refused(Set([{nodelay, 5}]))),
    ?assert(Refused(Set([{keepalive, 1}]))),
    %% A value over 32 bits: inet wraps it (and says ok), rssl refuses it.
    ?assertEqual(case ?M of rssl -> {error, einval}; ssl -> ok end,
                 Set([{sndbuf, 1 bsl 40}])),
    %% The link still carries rpc after the refusals.
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])).

%% Connections made again between two nodes resume the first one's TLS
%% session (its id each time), whichever node ended the one before: the
%% node told of the end by the other's close_notify answers with its own,
%% which keeps the session resumable. (Neither node connects on its own
%% here, so A is always the client.) OTP's inet_tls resumes none.
reconnect_resumes_session(Config) ->
    Quiet = #{args => ["-connect_all", "false", "-kernel", "dist_auto_connect", "never"]},
    {A, NA} = node_up(Config, "a", good, Quiet),
    {B, NB} = node_up(Config, "b", good, Quiet),
    Ids = [begin
               true = peer:call(A, net_kernel, connect_node, [NB]),
               S = peer:call(A, ?MODULE, dist_socket, [NB]),
               {ok, [{session_id, Id}]} =
                   peer:call(A, ?M, connection_information, [S, [session_id]]),
               true = case Closer of
                          a -> peer:call(A, erlang, disconnect_node, [NB]);
                          b -> peer:call(B, erlang, disconnect_node, [NA])
                      end,
               ok = peer:call(A, ?MODULE, wait_gone, [NB], ?T),
               ok = peer:call(B, ?MODULE, wait_gone, [NA], ?T),
               Id
           end || Closer <- [a, b, a, b, a, b]],
    [First | _] = Ids,
    ?assertEqual(32, byte_size(First)),
    case ?M of
        rssl -> ?assertEqual(lists:duplicate(6, First), Ids);
        %% (inet_tls makes a new session each time.)
        ssl -> ?assertEqual(6, length(lists:usort(Ids)))
    end.

global_names(Config) ->
    {A, _NA} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    true = peer:call(B, net_kernel, connect_node, [node_of(A)]),
    Pid = peer:call(A, erlang, spawn, [timer, sleep, [infinity]]),
    yes = peer:call(A, global, register_name, [rssl_dist_name, Pid]),
    ok = peer:call(B, global, sync, []),
    ?assertEqual(Pid, peer:call(B, global, whereis_name, [rssl_dist_name])),
    %% And the other way: B's name seen on A.
    PidB = peer:call(B, erlang, spawn, [timer, sleep, [infinity]]),
    yes = peer:call(B, global, register_name, [rssl_dist_name_b, PidB]),
    ok = peer:call(A, global, sync, []),
    ?assertEqual(PidB, peer:call(A, global, whereis_name, [rssl_dist_name_b])),
    ?assertEqual(no, peer:call(A, global, register_name, [rssl_dist_name_b, Pid])),
    ?assertEqual(NB, node(peer:call(A, global, whereis_name, [rssl_dist_name_b]))).

%% rpc carries each binary to the other node, whose digest comes back, and
%% brings binaries made there back: 1 byte to 64 MiB, both ways.
message_sizes(Config) ->
    {A, _} = node_up(Config, "a", good),
    {_B, NB} = node_up(Config, "b", good),
    Sizes = [1, 2, 100, 1023, 1024, 65535, 65536, 65537, 1 bsl 20, (16 bsl 20) + 3, 64 bsl 20],
    ?assertEqual([{Size, ok} || Size <- Sizes],
                 peer:call(A, ?MODULE, both_ways, [NB, Sizes], 120000)).

%% 50 processes on A each send 200 messages of assorted sizes to one
%% collector on B, which checks every sender's messages came whole and in
%% order.
concurrent_senders(Config) ->
    {A, _} = node_up(Config, "a", good),
    {_B, NB} = node_up(Config, "b", good),
    ?assertEqual({ok, 50 * 200}, peer:call(A, ?MODULE, senders, [NB, 50, 200], 120000)).

%% B stops (SIGSTOP) for a second while A's senders flood it: A's side of
%% the connection backs up (bytes wait unsent, the senders are held by the
%% VM), and once B runs again every message arrives in order and the link
%% goes on working.
stalled_receiver_catches_up(Config) ->
    {A, NA} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    pong = peer:call(A, net_adm, ping, [NB]),
    Self = self(),
    spawn_link(fun() -> Self ! {flood, peer:call(A, ?MODULE, senders, [NB, 50, 200], 120000)} end),
    timer:sleep(50),
    OsPid = peer:call(B, os, getpid, []),
    _ = os:cmd("kill -STOP " ++ OsPid),
    Pending = try
                  timer:sleep(1000),
                  %% (inet_tls's sender is blocked then: not asked.)
                  otp() orelse element(4, stats(A, NB))
              after
                  os:cmd("kill -CONT " ++ OsPid)
              end,
    ct:log("bytes waiting to be sent after the stall: ~p", [Pending]),
    ?assert(otp() orelse Pending > 0),
    receive {flood, Result} -> ?assertEqual({ok, 50 * 200}, Result) after 120000 -> error(flood) end,
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
    ?assertEqual(NA, peer:call(B, rpc, call, [NA, erlang, node, []])).

longnames(Config) ->
    {A, _} = node_up(Config, "a", good, #{longnames => true, host => "127.0.0.1"}),
    {_B, NB} = node_up(Config, "b", good, #{longnames => true, host => "127.0.0.1"}),
    ?assertEqual(ip_host_answer(NB), peer:call(A, rpc, call, [NB, erlang, node, []])).

%% An IP address as the host: rssl's client matches it against the
%% certificate's IP addresses; OTP 25's ssl checks it as a DNS name
%% (hostname_check_failed), so inet_tls refuses the node.
ip_host_answer(Node) ->
    case ?M of
        rssl -> Node;
        ssl -> {badrpc, nodedown}
    end.

ipv6(Config) ->
    case gen_tcp:listen(0, [inet6, {ip, {0, 0, 0, 0, 0, 0, 0, 1}}]) of
        {ok, L} ->
            gen_tcp:close(L),
            Opts = #{longnames => true, host => "::1", proto => proto6()},
            {A, _} = node_up(Config, "a", good, Opts),
            {_B, NB} = node_up(Config, "b", good, Opts),
            case ip_host_answer(NB) of
                NB ->
                    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
                    {ok, Info} = peer:call(A, net_kernel, node_info, [NB]),
                    {net_address, {Ip, _}, _, _, Family} = proplists:get_value(address, Info),
                    ?assertEqual({{0, 0, 0, 0, 0, 0, 0, 1}, inet6}, {Ip, Family});
                Refused ->
                    ?assertEqual(Refused, peer:call(A, rpc, call, [NB, erlang, node, []]))
            end;
        {error, _} ->
            {skip, "no IPv6 loopback"}
    end.

%% `-rssl_dist_opt' flags, as `-ssl_dist_opt': server_* and client_* pairs.
flags_instead_of_file(Config) ->
    #{node := #{cert := Cert, key := Key}, ca := #{cert := Ca}} = ?config(pki, Config),
    Flags = ["server_certfile", Cert, "server_keyfile", Key, "server_cacertfile", Ca,
             "server_verify", "verify_peer", "server_fail_if_no_peer_cert", "true",
             "client_certfile", Cert, "client_keyfile", Key, "client_cacertfile", Ca,
             "client_verify", "verify_peer"],
    Opts = #{optargs => [opt_flag() | Flags]},
    {A, _} = node_up(Config, "a", good, Opts),
    {_B, NB} = node_up(Config, "b", good, Opts),
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
    %% Without the client's certificate the server refuses it.
    {C, _} = node_up(Config, "c", good, #{optargs => [opt_flag(), "client_cacertfile", Ca,
                                                         "client_verify", "verify_peer"]}),
    ?assertNot(peer:call(C, net_kernel, connect_node, [NB])),
    ?assertEqual([], peer:call(C, erlang, nodes, [])).

%% A bad options file or flag: net_kernel does not start, the VM runs on.
%% (inet_tls does so for a bad file; with a bad flag it starts, and fails
%% each connection instead.)
bad_options_stop_the_start(Config) ->
    Dir = ?config(priv_dir, Config),
    Garbage = filename:join(Dir, "garbage.conf"),
    ok = file:write_file(Garbage, "[{server, [{certfile, \"x\"}]} ,,, ."),
    Cases = [[optfile_flag(), filename:join(Dir, "missing.conf")],
             [optfile_flag(), Garbage],
             [opt_flag(), "server_no_such_option", "1"]],
    [begin
         {ok, P, _} = peer:start(#{args => ["-proto_dist", proto() | peer_paths()] ++ Args,
                                connection => standard_io}),
         case otp() andalso hd(Args) =:= opt_flag() of
             true ->
                 ?assertMatch({ok, _}, peer:call(P, net_kernel, start, [[bad_opts, shortnames]]));
             false ->
                 ?assertMatch({error, _}, peer:call(P, net_kernel, start, [[bad_opts, shortnames]])),
                 ?assertEqual(nonode@nohost, peer:call(P, erlang, node, []))
         end,
         peer:stop(P)
     end || Args <- Cases],
    ok.

%% An idle connection stays up: ticks go both ways (the received counts
%% move) while nothing else is sent.
idle_link_ticks(Config) ->
    Tick = #{args => ["-kernel", "net_ticktime", "4"]},
    {A, _} = node_up(Config, "a", good, Tick),
    {B, NB} = node_up(Config, "b", good, Tick),
    true = peer:call(A, net_kernel, connect_node, [NB]),
    NA = node_of(A),
    {ok, R0, _, _} = stats(A, NB),
    {ok, R1, _, _} = stats(B, NA),
    %% About one tick a second each way: without them the link would be
    %% down after 4 s of silence.
    wait_until(fun() -> element(2, stats(A, NB)) >= R0 + 8 andalso
                            element(2, stats(B, NA)) >= R1 + 8 end, 30000),
    ?assertEqual([NB], peer:call(A, erlang, nodes, [])),
    ?assertEqual([NA], peer:call(B, erlang, nodes, [])).

nodedown_when_killed(Config) ->
    {A, _} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    true = peer:call(A, net_kernel, connect_node, [NB]),
    ok = peer:call(A, ?MODULE, watch, [NB]),
    OsPid = peer:call(B, os, getpid, []),
    _ = os:cmd("kill -9 " ++ OsPid),
    ?assertEqual({nodedown, NB}, peer:call(A, ?MODULE, await_down, [?T], ?T + 5000)),
    ?assertEqual([], peer:call(A, erlang, nodes, [])).

%% B stops answering (SIGSTOP: its socket stays open, nothing more comes):
%% A's ticker finds the link dead within the tick time.
nodedown_when_link_cut(Config) ->
    Tick = #{args => ["-kernel", "net_ticktime", "4"]},
    {A, _} = node_up(Config, "a", good, Tick),
    {B, NB} = node_up(Config, "b", good, Tick),
    true = peer:call(A, net_kernel, connect_node, [NB]),
    ok = peer:call(A, ?MODULE, watch, [NB]),
    OsPid = peer:call(B, os, getpid, []),
    _ = os:cmd("kill -STOP " ++ OsPid),
    try
        ?assertEqual({nodedown, NB}, peer:call(A, ?MODULE, await_down, [?T], ?T + 5000)),
        ?assertEqual([], peer:call(A, erlang, nodes, []))
    after
        os:cmd("kill -CONT " ++ OsPid)
    end,
    %% Once B runs again, they connect anew.
    wait_until(fun() -> peer:call(A, net_kernel, connect_node, [NB]) end, ?T).

%% A node whose certificate comes from another CA (and which trusts only
%% that CA) is refused both ways; neither node goes down.
other_ca_refused(Config) ->
    {A, NA} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    {C, NC} = node_up(Config, "c", other),
    ?assertNot(peer:call(A, net_kernel, connect_node, [NC])),
    ?assertNot(peer:call(C, net_kernel, connect_node, [NA])),
    ?assertEqual([], peer:call(A, erlang, nodes, [])),
    ?assertEqual([], peer:call(C, erlang, nodes, [])),
    %% Both still accept and connect to nodes they trust.
    ?assertEqual(NA, peer:call(B, rpc, call, [NA, erlang, node, []])),
    ?assertEqual(pong, peer:call(C, net_adm, ping, [NC])),
    ?assertEqual([NB], peer:call(A, erlang, nodes, [])).

%% A node whose certificate (from the right CA) names another host: the
%% client's hostname check refuses it.
wrong_host_refused(Config) ->
    {A, _} = node_up(Config, "a", good),
    {_W, NW} = node_up(Config, "w", wrong_host),
    ?assertNot(peer:call(A, net_kernel, connect_node, [NW])),
    ?assertEqual([], peer:call(A, erlang, nodes, [])).

%% A plain inet_tcp node and a TLS one do not understand each other: the
%% connection is refused both ways, and both go on (a second attempt, and
%% connections to their own kind, work as before).
plain_tcp_node_refused(Config) ->
    {A, NA} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    {D, ND} = node_up(Config, "d", good, #{proto => "inet_tcp"}),
    {E, NE} = node_up(Config, "e", good, #{proto => "inet_tcp"}),
    [begin
         %% Each side waits for what the other never sends: refused when
         %% the setup time runs out.
         ?assertNot(peer:call(A, net_kernel, connect_node, [ND], ?T)),
         ?assertNot(peer:call(D, net_kernel, connect_node, [NA], ?T))
     end || _ <- [1, 2]],
    ?assertEqual([], peer:call(A, erlang, nodes, [])),
    ?assertEqual([], peer:call(D, erlang, nodes, [])),
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
    ?assertEqual(NA, peer:call(B, rpc, call, [NA, erlang, node, []])),
    ?assertEqual(NE, peer:call(D, rpc, call, [NE, erlang, node, []])),
    ?assertEqual(ND, peer:call(E, rpc, call, [ND, erlang, node, []])).

%% A peer with a good certificate that sends, before the distribution
%% handshake, a packet too large for it, or one that is not a handshake
%% message, or an empty one: A drops that connection only, and goes on
%% serving nodes.
bad_packets_end_only_their_connection(Config) ->
    {A, NA} = node_up(Config, "a", good),
    {_B, NB} = node_up(Config, "b", good),
    {Name, Host} = split(NA),
    {port, Port, _} = erl_epmd:port_please(Name, Host),
    #{node := #{cert := Cert, key := Key}} = ?config(pki, Config),
    Opts = [binary, {active, false}, {certfile, Cert}, {keyfile, Key}, {verify, verify_none}],
    [begin
         {ok, S} = ?M:connect(Host, Port, Opts, ?T),
         ok = ?M:send(S, Bad),
         ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
         _ = ?M:close(S)
     end || Bad <- [<<16#7fffffff:32, "x">>, <<5:32, "hello">>, <<0:32>>]],
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
    ?assertEqual([NB], peer:call(A, erlang, nodes, [])).

%% rssl's connection port refuses commands that do not fit its state
%% (asking for a packet once the node is up, a second connection), bad
%% arguments and unknown commands, and the link goes on working.
port_misuse_refused(Config) ->
    case otp() of
        true ->
            {skip, "rssl's port"};
        false ->
            {A, _} = node_up(Config, "a", good),
            {_B, NB} = node_up(Config, "b", good),
            ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
            ?assertEqual([<<1, "active">>, <<1, "already_attached">>, <<1, "badarg">>,
                          <<1, "einval">>, <<1, "einval">>, <<1, "badarg">>],
                         peer:call(A, ?MODULE, misuse, [NB])),
            ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []]))
    end.

misuse(Node) ->
    {Node, Port} = lists:keyfind(Node, 1, erlang:system_info(dist_ctrl)),
    [erlang:port_control(Port, Command, Arg)
     || {Command, Arg} <- [{2, <<>>}, {1, <<1:64>>}, {1, <<"short">>}, {5, <<"bad">>},
                           {6, <<99, 0:64>>}, {99, <<>>}]].

split(Node) ->
    [Name, Host] = string:split(atom_to_list(Node), "@"),
    {Name, Host}.

%% Connections made and dropped again and again, and nodes that go away:
%% once they are gone A is back to the descriptors and (rssl) connections
%% it had.
nodes_come_and_go(Config) ->
    {A, _} = node_up(Config, "a", good),
    {B, NB} = node_up(Config, "b", good),
    %% The first connection starts the NIF's poller threads (their
    %% descriptors stay): counted from after it.
    ok = peer:call(A, ?MODULE, connect_cycles, [NB, 1], ?T),
    Before = peer:call(A, ?MODULE, resources, []),
    ok = peer:call(A, ?MODULE, connect_cycles, [NB, 10], 120000),
    {C, NC} = node_up(Config, "c", good),
    {_D, ND} = node_up(Config, "d", good),
    ?assertEqual(NC, peer:call(A, rpc, call, [NC, erlang, node, []])),
    ?assertEqual(ND, peer:call(A, rpc, call, [ND, erlang, node, []])),
    ?assertEqual(NB, peer:call(A, rpc, call, [NB, erlang, node, []])),
    peer:stop(C),
    true = peer:call(A, erlang, disconnect_node, [ND]),
    peer:stop(B),
    wait_until(fun() -> peer:call(A, erlang, nodes, []) =:= [] end, ?T),
    wait_until(fun() -> peer:call(A, ?MODULE, resources, []) end, Before, ?T).

%%% On the peers -------------------------------------------------------------------

echo_size(Bin) -> {byte_size(Bin), erlang:md5(Bin)}.

%% Each size to Node and back: {Size, ok} or what went wrong.
both_ways(Node, Sizes) ->
    [{Size, begin
                Sent = make_binary(Size),
                Echo = rpc:call(Node, ?MODULE, echo_size, [Sent]),
                Got = rpc:call(Node, ?MODULE, make_binary, [Size]),
                case {Echo, Got} of
                    {{Size, Digest}, Sent} ->
                        case erlang:md5(Sent) of
                            Digest -> ok;
                            _ -> {bad_digest, Echo}
                        end;
                    {_, Sent} -> {bad_echo, Echo};
                    _ -> {bad_binary, byte_size_of(Got)}
                end
            end} || Size <- Sizes].

byte_size_of(B) when is_binary(B) -> byte_size(B);
byte_size_of(Other) -> Other.

make_binary(Size) ->
    Pattern = << <<(I rem 251)>> || I <- lists:seq(1, 4096) >>,
    Whole = binary:copy(Pattern, Size div 4096),
    <<Whole/binary, (binary:part(Pattern, 0, Size rem 4096))/binary>>.

%% Counts every sender's messages, checking their order and content;
%% answers Reply with {ok, Total} once all came, or the first fault.
collector(Reply, Expected) ->
    collector(Reply, Expected, #{}, 0).

collector(Reply, Expected, Seen, Total) when Total =:= Expected ->
    Reply ! {collected, {ok, Total}},
    Seen;
collector(Reply, Expected, Seen, Total) ->
    receive
        {From, Seq, Bin} ->
            Next = maps:get(From, Seen, 1),
            case {Seq, Bin =:= payload(Seq)} of
                {Next, true} -> collector(Reply, Expected, Seen#{From => Next + 1}, Total + 1);
                _ -> Reply ! {collected, {fault, From, Seq, Next}}
            end
    after 60000 ->
        Reply ! {collected, {stalled, Total}}
    end.

payload(Seq) -> binary:copy(<<Seq:32>>, 1 + (Seq * 7919) rem 5000).

senders(Node, Procs, Each) ->
    Self = self(),
    Collector = erpc:call(Node, erlang, spawn, [?MODULE, collector, [Self, Procs * Each]]),
    [spawn_link(fun() -> [Collector ! {self(), Seq, payload(Seq)} || Seq <- lists:seq(1, Each)] end)
     || _ <- lists:seq(1, Procs)],
    receive {collected, Result} -> Result end.

%% A registered process on this node that waits for Node to go down.
watch(Node) ->
    Self = self(),
    spawn(fun() ->
                  register(rssl_dist_watcher, self()),
                  erlang:monitor_node(Node, true),
                  Self ! watching,
                  receive {nodedown, Node} -> ok end,
                  receive {get, From} -> From ! {nodedown, Node} end
          end),
    receive watching -> ok end.

await_down(Timeout) ->
    rssl_dist_watcher ! {get, self()},
    receive {nodedown, _} = Down -> Down after Timeout -> timeout end.

%% The TLS socket of the connection to Node: rssl's connection process
%% (its port's owner) keeps it in its dictionary.
dist_socket(Node) ->
    {Node, Ctrl} = lists:keyfind(Node, 1, erlang:system_info(dist_ctrl)),
    case ?M of
        rssl ->
            {connected, Pid} = erlang:port_info(Ctrl, connected),
            {dictionary, Dict} = erlang:process_info(Pid, dictionary),
            {rssl_dist_socket, S} = lists:keyfind(rssl_dist_socket, 1, Dict),
            S;
        ssl ->
            {ok, S} = tls_sender:dist_tls_socket(Ctrl),
            S
    end.

%% {ok, Received, Sent, Pending} of the connection to Node, as net_kernel's
%% ticker sees it.
stats(Peer, Node) ->
    case ?M of
        rssl ->
            peer:call(Peer, ?MODULE, port_stats, [Node]);
        ssl ->
            S = peer:call(Peer, ?MODULE, dist_socket, [Node]),
            {ok, [{recv_cnt, R}, {send_cnt, W}, {send_pend, P}]} =
                peer:call(Peer, ?M, getstat, [S, [recv_cnt, send_cnt, send_pend]]),
            {ok, R, W, P}
    end.

%% What rssl's port tells the ticker (its GETSTAT command, 4).
port_stats(Node) ->
    {Node, Port} = lists:keyfind(Node, 1, erlang:system_info(dist_ctrl)),
    <<0, R:64, W:64, P:64>> = erlang:port_control(Port, 4, <<>>),
    {ok, R, W, P}.

%% Descriptors and live TLS connections of this VM.
resources() ->
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    Live = case ?M of
               rssl -> rssl_nif:live_connections();
               ssl -> undefined
           end,
    {length(Fds), Live}.

connect_cycles(_Node, 0) -> ok;
connect_cycles(Node, N) ->
    %% The peer may connect back at the same time (global's messages to us
    %% after it saw us go auto-connect): then ours may lose the race and
    %% answer false while the nodes are connected through the peer's.
    true = net_kernel:connect_node(Node) orelse wait_up(Node, 100),
    Node = rpc:call(Node, erlang, node, []),
    true = erlang:disconnect_node(Node),
    wait_gone(Node),
    connect_cycles(Node, N - 1).

wait_up(_Node, 0) -> false;
wait_up(Node, Tries) ->
    lists:member(Node, nodes()) orelse (receive after 10 -> wait_up(Node, Tries - 1) end).

wait_gone(Node) ->
    case lists:member(Node, nodes()) of
        true -> receive after 5 -> wait_gone(Node) end;
        false -> ok
    end.

%%% Helpers -------------------------------------------------------------------------

otp() -> ?M =:= ssl.
proto() -> case ?M of rssl -> "rssl"; ssl -> "inet_tls" end.
proto6() -> case ?M of rssl -> "rssl6"; ssl -> "inet6_tls" end.
protocol() -> case ?M of rssl -> rssl; ssl -> tls end.
optfile_flag() -> case ?M of rssl -> "-rssl_dist_optfile"; ssl -> "-ssl_dist_optfile" end.
opt_flag() -> case ?M of rssl -> "-rssl_dist_opt"; ssl -> "-ssl_dist_opt" end.

peer_paths() ->
    ["-pa", filename:dirname(code:which(rssl)), "-pa", filename:dirname(code:which(?MODULE))].

node_up(Config, Prefix, Certs) -> node_up(Config, Prefix, Certs, #{}).

%% A peer node on the carrier (or Opts' proto) with the options file of
%% Certs (or Opts' optargs), stopped by end_per_testcase.
node_up(Config, Prefix, Certs, Opts) ->
    Proto = maps:get(proto, Opts, proto()),
    OptArgs = maps:get(optargs, Opts, [optfile_flag(), ?config(Certs, Config)]),
    Name = list_to_atom(Prefix ++ "_" ++ peer:random_name()),
    PeerOpts0 = #{name => Name, connection => standard_io,
                  args => ["-proto_dist", Proto | peer_paths()] ++ OptArgs
                          ++ maps:get(args, Opts, [])},
    PeerOpts = maps:merge(PeerOpts0, maps:with([longnames, host], Opts)),
    {ok, Peer, Node} = peer:start(PeerOpts),
    put(peers, [Peer | get_peers()]),
    {Peer, Node}.

node_of(Peer) -> peer:call(Peer, erlang, node, []).

get_peers() -> case get(peers) of undefined -> []; L -> L end.
erase_peers() -> case erase(peers) of undefined -> []; L -> L end.

optfile(Dir, Pki, Node, Ca) ->
    #{Node := #{cert := Cert, key := Key}, Ca := #{cert := CaCert}} = Pki,
    Common = [{certfile, Cert}, {keyfile, Key}, {cacertfile, CaCert}, {verify, verify_peer}],
    File = filename:join(Dir, atom_to_list(Node) ++ ".conf"),
    ok = file:write_file(File, io_lib:format("~p.~n", [[{server, [{fail_if_no_peer_cert, true} | Common]},
                                                        {client, Common}]])),
    File.

wait_until(Fun, Timeout) -> wait_until(Fun, true, Timeout).

%% Polls Fun until it returns Expected; fails with the last value after
%% Timeout ms.
wait_until(Fun, Expected, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_until_(Fun, Expected, Deadline).

wait_until_(Fun, Expected, Deadline) ->
    case Fun() of
        Expected -> ok;
        Other ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({timeout, Other, expected, Expected});
                false -> receive after 20 -> wait_until_(Fun, Expected, Deadline) end
            end
    end.
