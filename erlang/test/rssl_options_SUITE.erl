%% setopts/2, getopts/2 and getstat/1,2 of the module under test (?M,
%% rssl by default), the inet options passed through to the TCP socket,
%% listen/2's options (ip, inet6, ipv6_v6only, port 0, backlog),
%% transport_accept and closing a listen socket, hibernate_after and
%% send_timeout. The peer is OTP's ssl.
%%
%% Where OTP's ssl defines the exact answer (getopts order, error terms),
%% the case runs the same calls with ?M and with ssl and compares
%% (rssl_socket_lib:same/2). Compile with {d, 'M', ssl} (rebar3 as otp_ssl
%% ct) to check every case against ssl itself.
-module(rssl_options_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(T, 10000).
-define(IPV6_LOOPBACK, {0, 0, 0, 0, 0, 0, 0, 1}).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([getopts_order_as_ssl/1, getopts_emulated_after_setopts/1,
         inet_option_defaults/1, inet_options_roundtrip/1, inet_options_at_connect/1,
         recbuf_and_buffer/1,
         setopts_error_terms/1, getopts_error_terms/1, closed_socket_calls/1,
         getstat_shape/1, getstat_counts_wire_bytes/1,
         send_timeout_returns_timeout/1, send_timeout_close_closes/1,
         hibernate_after_accepted/1, hibernate_after_bad_values/1]).
-export([listen_emulated_options/1, listen_inet_options_inherited/1,
         listen_getopts_setopts_errors/1,
         listen_ip_option/1, listen_inet6_loopback/1, listen_ipv6_v6only/1,
         listen_port_0_and_backlog/1, listen_sockname_and_close/1,
         transport_accept_timeouts/1, close_listen_ends_pending_accepts/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [{group, connection}, {group, listen}].

groups() ->
    [{connection, [], [getopts_order_as_ssl, getopts_emulated_after_setopts,
                       inet_option_defaults, inet_options_roundtrip, inet_options_at_connect,
                       recbuf_and_buffer,
                       setopts_error_terms, getopts_error_terms, closed_socket_calls,
                       getstat_shape, getstat_counts_wire_bytes,
                       send_timeout_returns_timeout, send_timeout_close_closes,
                       hibernate_after_accepted, hibernate_after_bad_values]},
     {listen, [], [listen_emulated_options, listen_inet_options_inherited,
                   listen_getopts_setopts_errors,
                   listen_ip_option, listen_inet6_loopback, listen_ipv6_v6only,
                   listen_port_0_and_backlog, listen_sockname_and_close,
                   transport_accept_timeouts, close_listen_ends_pending_accepts]}].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_group(_, Config) -> Config.
end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% getopts / setopts on a connection -------------------------------------

%% ssl answers getopts with the options in reverse order of the request
%% (it accumulates them), emulated and inet ones alike; exactly that.
getopts_order_as_ssl(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = rssl_test_lib:open(Mod, client, ?L:tls_opts(Pki, client), ssl,
                                                             ?L:base_opts(Pki, server), #{}),
                              R = [Mod:getopts(S, [mode, packet, header, active, packet_size]),
                                   Mod:getopts(S, [nodelay, mode, keepalive, active]),
                                   Mod:getopts(S, [active]),
                                   Mod:getopts(S, [])],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([{ok, [{packet_size, 0}, {active, true}, {header, 0}, {packet, 0}, {mode, list}]},
                  {ok, [{active, true}, {keepalive, false}, {mode, list}, {nodelay, false}]},
                  {ok, [{active, true}]},
                  {ok, []}], Got).

%% The emulated options after setopts, as ssl reports them.
getopts_emulated_after_setopts(Config) ->
    Pki = ?config(pki, Config),
    Names = [mode, packet, header, active, packet_size],
    Sets = [[list], [{packet, 2}, {header, 1}], [{packet_size, 100}, binary],
            [{active, once}, {packet, line}], [{packet, raw}, {header, 0}, {active, 7}],
            [{packet, asn1}, {packet, tpkt}], [{packet, http_bin}], [{packet, 0}, {active, false}]],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R = [{Set, Mod:setopts(S, Set), sorted(Mod:getopts(S, Names))} || Set <- Sets],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertMatch({_, ok, {ok, [{active, 7}, {header, 0}, {mode, binary}, {packet, raw}, {packet_size, 100}]}},
                 lists:nth(5, Got)).

%% inet options of a fresh connection (both roles), as ssl has them. The
%% kernel's sndbuf and recbuf are left out: Linux tunes them as data flows.
inet_option_defaults(Config) ->
    Pki = ?config(pki, Config),
    Names = [nodelay, keepalive, buffer, send_timeout, send_timeout_close, linger,
             exit_on_close, reuseaddr, delay_send, tos, priority, show_econnreset,
             high_watermark, low_watermark],
    Got = ?L:same(?M, fun(Mod) ->
                              [begin
                                   {S, Peer} = ?L:pair(Mod, Role, Pki, []),
                                   R = sorted(Mod:getopts(S, Names)),
                                   ?L:finish(Mod, {S, Peer}, {Role, R})
                               end || Role <- [client, server]]
                      end),
    [?assertMatch({_, {ok, Opts}} when length(Opts) =:= length(Names), R) || R <- Got],
    {_, {ok, ClientOpts}} = hd(Got),
    [?assertEqual({K, V}, lists:keyfind(K, 1, ClientOpts))
     || {K, V} <- [{nodelay, false}, {keepalive, false}, {send_timeout, infinity},
                   {send_timeout_close, false}, {linger, {false, 0}}, {exit_on_close, true},
                   {reuseaddr, false}]].

%% Each inet option set on the connection reads back as ssl reads it back
%% (the kernel doubles sndbuf and recbuf; ssl shows the kernel's value).
inet_options_roundtrip(Config) ->
    Pki = ?config(pki, Config),
    Sets = [{nodelay, true}, {keepalive, true}, {sndbuf, 65536}, {recbuf, 65536},
            {buffer, 5000}, {send_timeout, 3000}, {send_timeout_close, true},
            {linger, {true, 5}}, {exit_on_close, false}, {reuseaddr, true},
            {delay_send, true}, {tos, 16}, {priority, 3},
            {high_watermark, 16384}, {low_watermark, 2048}, {show_econnreset, true}],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R = [{K, Mod:setopts(S, [{K, V}]), Mod:getopts(S, [K])} || {K, V} <- Sets],
                              ok = Mod:setopts(S, [{nodelay, false}, {keepalive, false}]),
                              All = sorted(Mod:getopts(S, [K || {K, _} <- Sets])),
                              %% Still a working connection.
                              ok = Mod:send(S, <<"ping">>),
                              {ok, <<"ping">>} = ?L:peer_recv(Peer, 4),
                              ?L:finish(Mod, {S, Peer}, {R, All})
                      end),
    {Trace, _} = Got,
    [?assertEqual({K, ok, {ok, [{K, V}]}}, lists:keyfind(K, 1, Trace))
     || {K, V} <- Sets, K =/= sndbuf, K =/= recbuf].

%% inet options given to connect (rssl sets the kernel's on its own socket
%% before it connects) read back as ssl reads them back, sndbuf and recbuf
%% included (the kernel doubles them and, set, leaves them); the
%% connection works.
inet_options_at_connect(Config) ->
    Pki = ?config(pki, Config),
    Sets = [{nodelay, true}, {keepalive, true}, {sndbuf, 30000}, {recbuf, 20000},
            {send_timeout, 3000}, {send_timeout_close, true}, {linger, {true, 5}},
            {exit_on_close, false}, {reuseaddr, true}, {delay_send, true}, {tos, 16},
            {priority, 3}, {show_econnreset, true}],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, Sets),
                              Read = sorted(Mod:getopts(S, [K || {K, _} <- Sets])),
                              ok = Mod:send(S, <<"ping">>),
                              {ok, <<"ping">>} = ?L:peer_recv(Peer, 4),
                              ?L:finish(Mod, {S, Peer}, Read)
                      end),
    {ok, Read} = Got,
    [?assertEqual({K, V}, lists:keyfind(K, 1, Read))
     || {K, V} <- Sets, K =/= sndbuf, K =/= recbuf],
    ?assertEqual([{recbuf, 40000}, {sndbuf, 60000}],
                 [lists:keyfind(K, 1, Read) || K <- [recbuf, sndbuf]]).

%% recbuf without an explicit buffer raises buffer; an explicit buffer
%% stays (inet's rule, kept by ssl).
recbuf_and_buffer(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R = [Mod:setopts(S, [{recbuf, 65536}]),
                                   sorted(Mod:getopts(S, [buffer, recbuf])),
                                   Mod:setopts(S, [{buffer, 3000}]),
                                   Mod:setopts(S, [{recbuf, 8192}]),
                                   sorted(Mod:getopts(S, [buffer, recbuf])),
                                   Mod:setopts(S, [{sndbuf, 131072}]),
                                   sorted(Mod:getopts(S, [buffer]))],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertMatch([ok, {ok, _}, ok, ok, {ok, [{buffer, 3000}, _]}, ok, {ok, [{buffer, 3000}]}], Got).

%% setopts errors, exactly as ssl gives them: emulated options alone
%% ({socket_options, Opt}), inet ones as the list handed to inet (in
%% reverse order) with inet's reason; emulated options in the same call
%% are applied anyway.
setopts_error_terms(Config) ->
    Pki = ?config(pki, Config),
    Cases = [[{active, bogus}], [{mode, bogus}], [{packet, bogus}], [{header, bogus}],
             [{packet_size, bogus}], [{nodelay, bogus}], [{nodelay, bogus}, {keepalive, bogus}],
             [{bogus, 1}], [bogus_atom], [{a, b, c}], bogus,
             [{active, once}, {nodelay, bogus}], [{packet, 2}, {mode, bogus}]],
    Names = [active, mode, packet, header, packet_size, nodelay, keepalive],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R = [{Set, Mod:setopts(S, Set), sorted(Mod:getopts(S, Names))} || Set <- Cases],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    Results = [{Set, Res} || {Set, Res, _} <- Got],
    ?assertEqual([{[{active, bogus}], {error, {options, {socket_options, {active, bogus}}}}},
                  {[{mode, bogus}], {error, {options, {socket_options, {mode, bogus}}}}},
                  {[{packet, bogus}], {error, {options, {socket_options, {packet, bogus}}}}},
                  {[{header, bogus}], {error, {options, {socket_options, {header, bogus}}}}},
                  {[{packet_size, bogus}], {error, {options, {socket_options, {packet_size, bogus}}}}},
                  {[{nodelay, bogus}], {error, {options, {socket_options, [{nodelay, bogus}], einval}}}},
                  {[{nodelay, bogus}, {keepalive, bogus}],
                   {error, {options, {socket_options, [{keepalive, bogus}, {nodelay, bogus}], einval}}}},
                  {[{bogus, 1}], {error, {options, {socket_options, [{bogus, 1}], einval}}}},
                  {[bogus_atom], {error, {options, {socket_options, [bogus_atom], einval}}}},
                  {[{a, b, c}], {error, {options, {socket_options, [{a, b, c}], einval}}}},
                  {bogus, {error, {options, {not_a_proplist, bogus}}}},
                  {[{active, once}, {nodelay, bogus}], {error, {options, {socket_options, [{nodelay, bogus}], einval}}}},
                  {[{packet, 2}, {mode, bogus}], {error, {options, {socket_options, {mode, bogus}}}}}],
                 Results),
    %% {active, once} went through with the bad nodelay.
    {_, _, {ok, After}} = lists:keyfind([{active, once}, {nodelay, bogus}], 1, Got),
    ?assertEqual({active, once}, lists:keyfind(active, 1, After)).

%% getopts errors, exactly as ssl gives them.
getopts_error_terms(Config) ->
    Pki = ?config(pki, Config),
    Cases = [[bogus], [mode, bogus], [bogus, mode], [{a}], bogus, [raw]],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              R = [{Names, Mod:getopts(S, Names)} || Names <- Cases],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([{[bogus], {error, {options, {socket_options, bogus, einval}}}},
                  {[mode, bogus], {error, {options, {socket_options, bogus, einval}}}},
                  {[bogus, mode], {error, {options, {socket_options, bogus, einval}}}},
                  {[{a}], {error, {options, {socket_options, {a}, einval}}}},
                  {bogus, {error, {options, {socket_options, bogus}}}},
                  {[raw], {error, {options, {socket_options, raw, einval}}}}], Got).

%% After close: option and data calls say closed, address and statistics
%% calls einval (ssl asks the closed TCP socket).
closed_socket_calls(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ok = Mod:close(S),
                              R = [{getopts, Mod:getopts(S, [mode])},
                                   {getopts_inet, Mod:getopts(S, [nodelay])},
                                   {setopts, Mod:setopts(S, [{mode, list}])},
                                   {setopts_inet, Mod:setopts(S, [{nodelay, true}])},
                                   {getstat, Mod:getstat(S)},
                                   {getstat2, Mod:getstat(S, [recv_oct])},
                                   {sockname, Mod:sockname(S)},
                                   {peername, Mod:peername(S)},
                                   {send, Mod:send(S, <<"x">>)},
                                   {recv, Mod:recv(S, 0, 100)},
                                   {close, Mod:close(S)}],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([{getopts, {error, closed}}, {getopts_inet, {error, closed}},
                  {setopts, {error, closed}}, {setopts_inet, {error, closed}},
                  {getstat, {error, einval}}, {getstat2, {error, einval}},
                  {sockname, {error, einval}}, {peername, {error, einval}},
                  {send, {error, closed}}, {recv, {error, closed}}, {close, ok}], Got).

%%% getstat ---------------------------------------------------------------

%% getstat/1: inet's statistics in inet:stats() order; getstat/2: the ones
%% asked for, in that order; unknown names: {error, einval}.
getstat_shape(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              {ok, All} = Mod:getstat(S),
                              {ok, Two} = Mod:getstat(S, [send_oct, recv_oct]),
                              R = [[K || {K, _} <- All],
                                   lists:all(fun({_, V}) -> is_integer(V) andalso V >= 0 end, All),
                                   [K || {K, _} <- Two],
                                   Mod:getstat(S, []),
                                   Mod:getstat(S, [bogus]),
                                   Mod:getstat(S, [recv_oct, bogus])],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([[recv_oct, recv_cnt, recv_max, recv_avg, recv_dvi,
                   send_oct, send_cnt, send_max, send_avg, send_pend],
                  true, [send_oct, recv_oct], {ok, []}, {error, einval}, {error, einval}], Got).

%% The counts are the TCP bytes (TLS records, handshake included): once
%% both ends have read everything, what one end sent is what the other
%% received, in both roles.
getstat_counts_wire_bytes(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {S, Peer} = ?L:pair(?M, Role, Pki, []),
         {ok, [{send_oct, Sent0}]} = ?M:getstat(S, [send_oct]),
         Up = ?L:pattern(100000, 1),
         ok = ?M:send(S, Up),
         Up = rssl_test_lib:call(Peer, {recv_total, byte_size(Up)}),
         ?L:peer_send(Peer, ?L:pattern(50000, 2)),
         _ = rssl_test_lib:recv_total(?M, S, 50000),
         %% (getstat_shape checks the order of the answer.)
         {ok, Stats} = ?M:getstat(S, [send_oct, recv_oct, send_cnt, recv_cnt]),
         [Sent, Recv, SendCnt, RecvCnt] = [proplists:get_value(K, Stats)
                                           || K <- [send_oct, recv_oct, send_cnt, recv_cnt]],
         {ok, PeerStats} = ?L:peer_fn(Peer, fun(Mod, PS) -> Mod:getstat(PS, [send_oct, recv_oct]) end),
         [PeerSent, PeerRecv] = [proplists:get_value(K, PeerStats) || K <- [send_oct, recv_oct]],
         ?assertEqual({Role, Sent, Recv}, {Role, PeerRecv, PeerSent}),
         ?assert(Sent - Sent0 >= 100000),
         ?assert(Recv >= 50000),
         ?assert(SendCnt >= 1 andalso RecvCnt >= 1),
         ?L:finish(?M, {S, Peer}, ok)
     end || Role <- [client, server]].

%%% send_timeout ----------------------------------------------------------

%% A peer that does not read: send gives {error, timeout} after
%% send_timeout once the buffers are full; the socket is still open.
send_timeout_returns_timeout(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{send_timeout, 200}, {sndbuf, 16384}],
                        [{recbuf, 16384} | ?L:base_opts(?config(pki, Config), server)]),
    ?assertEqual({error, timeout}, fill(S, 2000)),
    ?assertEqual({ok, [{send_timeout, 200}]}, ?M:getopts(S, [send_timeout])),
    ?L:finish(?M, {S, Peer}, ok).

%% With send_timeout_close: after {error, timeout} the connection is
%% closed; the peer reads what got through, then sees the close.
send_timeout_close_closes(Config) ->
    Pki = ?config(pki, Config),
    {S, Peer} = ?L:pair(?M, client, Pki, [{send_timeout, 200}, {send_timeout_close, true}, {sndbuf, 16384}],
                        [{recbuf, 16384} | ?L:base_opts(Pki, server)]),
    ?assertEqual({error, timeout}, fill(S, 2000)),
    ?assertEqual({error, enotconn}, ?M:send(S, <<"more">>)),
    ?assertMatch({_, {error, closed}}, ?L:peer_recv_closed(Peer)),
    ?L:finish(?M, {S, Peer}, ok).

fill(_S, 0) ->
    no_timeout;
fill(S, N) ->
    case ?M:send(S, binary:copy(<<"x">>, 65536)) of
        ok -> fill(S, N - 1);
        Other -> Other
    end.

%%% hibernate_after -------------------------------------------------------

%% hibernate_after is accepted by connect and listen; connections idle
%% past it keep working both ways, passive and active.
hibernate_after_accepted(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {S, Peer} = ?L:pair(?M, Role, Pki, [{hibernate_after, 20}]),
         idle_past_hibernate_after(?M, S),
         ok = ?M:send(S, <<"wake">>),
         ?assertEqual({ok, <<"wake">>}, ?L:peer_recv(Peer, 4)),
         idle_past_hibernate_after(?M, S),
         ?L:peer_send(Peer, <<"up">>),
         ?assertEqual({ok, <<"up">>}, ?M:recv(S, 2, ?T)),
         ok = ?M:setopts(S, [{active, once}]),
         idle_past_hibernate_after(?M, S),
         ?L:peer_send(Peer, <<"msg">>),
         ?L:expect(S, {ssl, S, <<"msg">>}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Role <- [client, server]].

%% ssl: the connection process took the option (connection_information/1
%% lists it) and hibernates once idle; returns when it has. rssl differs
%% on purpose (README): a connection has no process to hibernate, so the
%% option has no effect once checked, and connection_information/1 lists
%% no options.
idle_past_hibernate_after(ssl, S) ->
    {ok, Info} = ssl:connection_information(S),
    ?assertEqual(20, proplists:get_value(hibernate_after, Info)),
    %% #sslsocket{pid = [ConnectionProcess, Sender]} in OTP 25.
    [Pid | _] = element(3, S),
    Hibernating = fun() -> process_info(Pid, current_function) =:= {current_function, {erlang, hibernate, 3}} end,
    ?assert(?L:wait_until(Hibernating, ?T));
idle_past_hibernate_after(rssl, S) ->
    {ok, Info} = rssl:connection_information(S),
    ?assertEqual(false, lists:keymember(hibernate_after, 1, Info)).

%% Bad values: {error, {options, {hibernate_after, V}}} (the server never
%% accepts: ssl refuses the option before connecting).
hibernate_after_bad_values(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = ssl:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
    {ok, {_, Port}} = ssl:sockname(L),
    [begin
         ?assertEqual({error, {options, {hibernate_after, V}}},
                      ?M:connect({127, 0, 0, 1}, Port, [{hibernate_after, V} | ?L:base_opts(Pki, client)], 1000)),
         ?assertEqual({error, {options, {hibernate_after, V}}},
                      ?M:listen(0, [{hibernate_after, V} | ?L:base_opts(Pki, server)]))
     end || V <- [bogus, -1, "10"]],
    ok = ssl:close(L).

%%% Listen sockets --------------------------------------------------------

%% The emulated options of a listen socket (reverse order as in ssl),
%% setopts on it, and accepted sockets inheriting them.
listen_emulated_options(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {ok, L} = Mod:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
                              G1 = Mod:getopts(L, [mode, active, packet, header, packet_size]),
                              %% ({mode, list}: OTP 25's ssl hands a bare
                              %% `list' on a listen socket to inet, which
                              %% breaks its accepted connections.)
                              S1 = Mod:setopts(L, [{active, once}, {mode, list}, {packet, line}]),
                              G2 = Mod:getopts(L, [mode, active, packet]),
                              {S, Client} = accept_from_ssl(Mod, L, Pki),
                              G3 = sorted(Mod:getopts(S, [mode, active, packet, header])),
                              ok = ssl:send(Client, <<"line one\nrest">>),
                              Msg = ?L:next_msg(S, ?T),
                              ok = ssl:close(Client),
                              ok = Mod:close(S),
                              ok = Mod:close(L),
                              [G1, S1, G2, G3, ?L:norm(S, Msg)]
                      end),
    ?assertEqual([{ok, [{packet_size, 0}, {header, 0}, {packet, 0}, {active, false}, {mode, binary}]},
                  ok,
                  {ok, [{packet, line}, {active, once}, {mode, list}]},
                  {ok, [{active, once}, {header, 0}, {mode, list}, {packet, line}]},
                  {ssl, 'S', "line one\n"}], Got).

%% inet options set on the listen socket (at listen or by setopts) carry
%% over to accepted connections.
listen_inet_options_inherited(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {ok, L} = Mod:listen(0, [{reuseaddr, true}, {keepalive, true}
                                                       | ?L:base_opts(Pki, server)]),
                              G1 = sorted(Mod:getopts(L, [reuseaddr, keepalive, nodelay])),
                              S1 = Mod:setopts(L, [{nodelay, true}]),
                              G2 = sorted(Mod:getopts(L, [nodelay])),
                              {S, Client} = accept_from_ssl(Mod, L, Pki),
                              G3 = sorted(Mod:getopts(S, [keepalive, nodelay])),
                              ok = ssl:close(Client),
                              ok = Mod:close(S),
                              ok = Mod:close(L),
                              [G1, S1, G2, G3]
                      end),
    ?assertEqual([{ok, [{keepalive, true}, {nodelay, false}, {reuseaddr, true}]},
                  ok, {ok, [{nodelay, true}]},
                  {ok, [{keepalive, true}, {nodelay, true}]}], Got).

%% Errors on a listen socket, as ssl gives them.
listen_getopts_setopts_errors(Config) ->
    Pki = ?config(pki, Config),
    ?L:same(?M, fun(Mod) ->
                        {ok, L} = Mod:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
                        R = [Mod:getopts(L, [bogus]),
                             Mod:setopts(L, [{bogus, 1}]),
                             Mod:setopts(L, [{nodelay, bogus}])],
                        ok = Mod:close(L),
                        R
                end).

%% {ip, Address}: the listen socket is bound there; {ip, loopback} too.
listen_ip_option(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {ok, L} = ?M:listen(0, [{ip, Ip}, {reuseaddr, true} | ?L:base_opts(Pki, server)]),
         {ok, {{127, 0, 0, 1}, Port}} = ?M:sockname(L),
         ?assert(Port > 0),
         {S, Client} = accept_from_ssl(?M, L, Pki),
         ?assertMatch({ok, {{127, 0, 0, 1}, Port}}, ?M:sockname(S)),
         ok = ssl:send(Client, <<"hi">>),
         ?assertEqual({ok, <<"hi">>}, ?M:recv(S, 2, ?T)),
         ok = ssl:close(Client),
         ok = ?M:close(S),
         ok = ?M:close(L)
     end || Ip <- [{127, 0, 0, 1}, loopback]].

%% inet6 with {ip, ::1}: IPv6 addresses in sockname and peername, both
%% as server and as client, and ipv6_v6only readable on the connection.
listen_inet6_loopback(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {ok, L} = Mod:listen(0, [inet6, {ip, ?IPV6_LOOPBACK}, {reuseaddr, true}
                                                       | ?L:base_opts(Pki, server)]),
                              {ok, {LAddr, LPort}} = Mod:sockname(L),
                              {S, Client} = accept_from_ssl(Mod, L, Pki, ?IPV6_LOOPBACK),
                              {ok, {SAddr, SPort}} = Mod:sockname(S),
                              {ok, {PAddr, _}} = Mod:peername(S),
                              V6only = Mod:getopts(S, [ipv6_v6only]),
                              ok = ssl:send(Client, <<"v6">>),
                              Data = Mod:recv(S, 2, ?T),
                              ok = ssl:close(Client),
                              ok = Mod:close(S),
                              ok = Mod:close(L),
                              %% And as a client to an ssl server on ::1.
                              {C, Peer} = rssl_test_lib:open(Mod, client, v6_client_opts(Pki), ssl,
                                                             [inet6, {ip, ?IPV6_LOOPBACK} | ?L:base_opts(Pki, server)],
                                                             #{host => ?IPV6_LOOPBACK}),
                              {ok, {CAddr, _}} = Mod:sockname(C),
                              {ok, {CPeer, _}} = Mod:peername(C),
                              ok = Mod:send(C, <<"up">>),
                              Up = ?L:peer_recv(Peer, 2),
                              ?L:finish(Mod, {C, Peer}, ok),
                              [LAddr, LPort =:= SPort, SAddr, PAddr, V6only, Data, CAddr, CPeer, Up]
                      end),
    ?assertEqual([?IPV6_LOOPBACK, true, ?IPV6_LOOPBACK, ?IPV6_LOOPBACK, {ok, [{ipv6_v6only, true}]},
                  {ok, <<"v6">>}, ?IPV6_LOOPBACK, ?IPV6_LOOPBACK, {ok, <<"up">>}], Got).

%% {ipv6_v6only, true}: an IPv6-only wildcard listener refuses IPv4.
listen_ipv6_v6only(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = ?M:listen(0, [inet6, {ipv6_v6only, true}, {reuseaddr, true} | ?L:base_opts(Pki, server)]),
    {ok, {{0, 0, 0, 0, 0, 0, 0, 0}, Port}} = ?M:sockname(L),
    ?assertEqual({ok, [{ipv6_v6only, true}]}, ?M:getopts(L, [ipv6_v6only])),
    ?assertEqual({error, econnrefused}, gen_tcp:connect({127, 0, 0, 1}, Port, [])),
    {S, Client} = accept_from_ssl(?M, L, Pki, ?IPV6_LOOPBACK),
    ok = ssl:close(Client),
    ok = ?M:close(S),
    ok = ?M:close(L).

%% Port 0 picks a free port (a different one each time); backlog is taken.
listen_port_0_and_backlog(Config) ->
    Pki = ?config(pki, Config),
    {ok, L1} = ?M:listen(0, [{backlog, 5}, {reuseaddr, true} | ?L:base_opts(Pki, server)]),
    {ok, L2} = ?M:listen(0, [{backlog, 1} | ?L:base_opts(Pki, server)]),
    {ok, {_, P1}} = ?M:sockname(L1),
    {ok, {_, P2}} = ?M:sockname(L2),
    ?assert(P1 > 0 andalso P2 > 0 andalso P1 =/= P2),
    %% A fixed port: the one L1 had, after closing it.
    ok = ?M:close(L1),
    {ok, L3} = ?M:listen(P1, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
    ?assertMatch({ok, {_, P1}}, ?M:sockname(L3)),
    {S, Client} = accept_from_ssl(?M, L3, Pki),
    ok = ssl:close(Client),
    ok = ?M:close(S),
    ok = ?M:close(L3),
    ok = ?M:close(L2).

%% A listen socket's sockname; after close: sockname einval (as ssl asks
%% the closed port), transport_accept {error, closed}, close again ok.
listen_sockname_and_close(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {ok, L} = Mod:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
                              {ok, {Addr, Port}} = Mod:sockname(L),
                              R = [is_integer(Port) andalso Port > 0, Addr,
                                   Mod:peername(L), Mod:close(L), Mod:sockname(L),
                                   Mod:transport_accept(L, 100), Mod:close(L)],
                              R
                      end),
    ?assertEqual([true, {0, 0, 0, 0}, {error, enotconn}, ok, {error, einval}, {error, closed}, ok], Got).

%% transport_accept with timeouts 0 and N and no client: {error, timeout};
%% a pending client is then accepted.
transport_accept_timeouts(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
    ?assertEqual({error, timeout}, ?M:transport_accept(L, 0)),
    ?assertEqual({error, timeout}, ?M:transport_accept(L, 100)),
    {S, Client} = accept_from_ssl(?M, L, Pki),
    ok = ssl:send(Client, <<"ok">>),
    ?assertEqual({ok, <<"ok">>}, ?M:recv(S, 2, ?T)),
    ok = ssl:close(Client),
    ok = ?M:close(S),
    ok = ?M:close(L).

%% Closing the listen socket ends every pending transport_accept, in any
%% process, with {error, closed}.
close_listen_ends_pending_accepts(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {self(), ?M:transport_accept(L, Timeout)} end)
            || Timeout <- [infinity, infinity, 60000]],
    [rssl_test_lib:wait_blocked(Pid, accept) || Pid <- Pids],
    ok = ?M:close(L),
    [receive
         {Pid, Result} -> ?assertEqual({error, closed}, Result)
     after ?T -> ct:fail({accept_not_ended, Pid})
     end || Pid <- Pids].

%%% Helpers -----------------------------------------------------------------

sorted({ok, L}) when is_list(L) -> {ok, lists:sort(L)};
sorted(Other) -> Other.

%% An ssl client connects to Mod's listen socket L (port from sockname);
%% returns {AcceptedSocket, ClientSocket} after both handshakes.
accept_from_ssl(Mod, L, Pki) ->
    accept_from_ssl(Mod, L, Pki, {127, 0, 0, 1}).

accept_from_ssl(Mod, L, Pki, Host) ->
    {ok, {_, Port}} = Mod:sockname(L),
    Self = self(),
    Opts = case Host of
               ?IPV6_LOOPBACK -> v6_client_opts(Pki);
               _ -> ?L:base_opts(Pki, client)
           end,
    Pid = spawn_link(fun() ->
                             R = ssl:connect(Host, Port, Opts, ?T),
                             case R of
                                 {ok, C} -> ok = ssl:controlling_process(C, Self);
                                 _ -> ok
                             end,
                             Self ! {self(), client, R}
                     end),
    {ok, T} = Mod:transport_accept(L, ?T),
    {ok, S} = Mod:handshake(T, ?T),
    receive
        {Pid, client, {ok, C}} -> {S, C};
        {Pid, client, Error} -> ct:fail({client_failed, Error})
    after ?T -> ct:fail(client_timeout)
    end.

%% The test certificate names localhost and 127.0.0.1, not ::1.
v6_client_opts(Pki) ->
    [{server_name_indication, "localhost"} | ?L:base_opts(Pki, client)].
