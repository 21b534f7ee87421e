%% Socket modes and delivery of the module under test (?M, rssl by
%% default) against an OTP ssl peer: default socket options, {mode, _} and
%% bare list/binary, {header, N}, {active, true | false | once | N} with
%% {ssl_passive, S}, the {ssl, S, Data} / {ssl_closed, S} /
%% {ssl_error, S, Reason} messages, and recv/2,3 in passive mode.
%%
%% Where OTP's ssl defines the exact answer, the case runs the same call
%% sequence with ?M and with ssl and compares (rssl_socket_lib:same/2).
%% Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to check the cases
%% against ssl itself.
-module(rssl_active_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(T, 10000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([default_socket_options/1, mode_option_forms/1, setopts_mode_switch/1,
         header_option/1,
         active_true_then_closed/1, active_false_keeps_data/1,
         active_once_rearm/1, active_once_closed_while_passive/1,
         active_n_counts_down/1, active_n_accumulates/1, active_n_arithmetic_as_ssl/1,
         active_bad_values/1,
         recv_on_active_socket_einval/1, recv_length_zero_and_exact/1,
         recv_waits_for_data/1, recv_timeout_zero/1, recv_closed_with_partial_data/1,
         passive_closed_after_active_n/1,
         ssl_error_bad_record_active/1, ssl_error_bad_record_passive/1,
         ssl_error_bad_record_type/1, ssl_error_not_tls_active_once/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [default_socket_options, mode_option_forms, setopts_mode_switch, header_option,
     active_true_then_closed, active_false_keeps_data,
     active_once_rearm, active_once_closed_while_passive,
     active_n_counts_down, active_n_accumulates, active_n_arithmetic_as_ssl,
     active_bad_values,
     recv_on_active_socket_einval, recv_length_zero_and_exact,
     recv_waits_for_data, recv_timeout_zero, recv_closed_with_partial_data,
     passive_closed_after_active_n,
     ssl_error_bad_record_active, ssl_error_bad_record_passive,
     ssl_error_bad_record_type, ssl_error_not_tls_active_once].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Modes -----------------------------------------------------------------

%% No socket option given, as client and as server (through listen): the
%% spec's defaults [{mode,list},{packet,0},{header,0},{active,true}] (and
%% packet_size 0), so data comes as {ssl, S, String}.
default_socket_options(Config) ->
    Pki = ?config(pki, Config),
    [begin
         Got = ?L:same(?M, fun(Mod) ->
                                   {S, Peer} = rssl_test_lib:open(Mod, Role, ?L:tls_opts(Pki, Role), ssl,
                                                                  ?L:base_opts(Pki, other(Role)), #{}),
                                   {ok, Opts} = Mod:getopts(S, [mode, packet, header, active, packet_size]),
                                   ?L:peer_send(Peer, <<"hello">>),
                                   Msg = ?L:next_msg(S, ?T),
                                   ?L:finish(Mod, {S, Peer}, {Role, lists:sort(Opts), Msg})
                           end),
         ?assertEqual({Role, [{active, true}, {header, 0}, {mode, list}, {packet, 0}, {packet_size, 0}],
                       {ssl, 'S', "hello"}}, Got)
     end || Role <- [client, server]].

%% binary, list, {mode, binary}, {mode, list} in connect's options; the
%% last one given wins.
mode_option_forms(Config) ->
    Pki = ?config(pki, Config),
    Forms = [[binary], [list], [{mode, binary}], [{mode, list}],
             [list, binary], [binary, list], [{mode, list}, binary], [binary, {mode, list}]],
    Got = ?L:same(?M, fun(Mod) ->
                              [begin
                                   {S, Peer} = ?L:pair(Mod, client, Pki, Form),
                                   {ok, [{mode, Mode}]} = Mod:getopts(S, [mode]),
                                   ?L:peer_send(Peer, <<"ab">>),
                                   {ok, Data} = Mod:recv(S, 2, ?T),
                                   ?L:finish(Mod, {S, Peer}, {Form, Mode, Data})
                               end || Form <- Forms]
                      end),
    ?assertEqual([{[binary], binary, <<"ab">>},
                  {[list], list, "ab"},
                  {[{mode, binary}], binary, <<"ab">>},
                  {[{mode, list}], list, "ab"},
                  {[list, binary], binary, <<"ab">>},
                  {[binary, list], list, "ab"},
                  {[{mode, list}, binary], binary, <<"ab">>},
                  {[binary, {mode, list}], list, "ab"}], Got).

%% setopts switches the mode between recv calls, also for data already
%% buffered.
setopts_mode_switch(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ?L:peer_send(Peer, <<"abcdefgh">>),
                              R1 = Mod:recv(S, 2, ?T),
                              ok = Mod:setopts(S, [list]),
                              R2 = Mod:recv(S, 2, ?T),
                              ok = Mod:setopts(S, [{mode, binary}]),
                              R3 = Mod:recv(S, 2, ?T),
                              ok = Mod:setopts(S, [binary, {mode, list}]),
                              G = Mod:getopts(S, [mode]),
                              R4 = Mod:recv(S, 2, ?T),
                              ?L:finish(Mod, {S, Peer}, [R1, R2, R3, G, R4])
                      end),
    ?assertEqual([{ok, <<"ab">>}, {ok, "cd"}, {ok, <<"ef">>}, {ok, [{mode, list}]}, {ok, "gh"}], Got).

%% {header, N} in binary mode: the first N bytes as list elements, the rest
%% as the binary tail, exactly as ssl builds it (also for data of N bytes
%% or fewer); no effect in list mode; active messages carry the same term.
header_option(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{header, 3}]),
                              G0 = Mod:getopts(S, [header]),
                              Recv = fun(Data) ->
                                             ?L:peer_send(Peer, Data),
                                             Mod:recv(S, byte_size(Data), ?T)
                                     end,
                              R1 = Recv(<<"abcdef">>),
                              R2 = Recv(<<"ab">>),
                              R3 = Recv(<<"abc">>),
                              ok = Mod:setopts(S, [list]),
                              R4 = Recv(<<"abcdef">>),
                              ok = Mod:setopts(S, [binary, {header, 1}, {active, once}]),
                              ?L:peer_send(Peer, <<"xyz">>),
                              M1 = ?L:next_msg(S, ?T),
                              ok = Mod:setopts(S, [{header, 0}]),
                              R5 = Recv(<<"uvw">>),
                              ?L:finish(Mod, {S, Peer}, [G0, R1, R2, R3, R4, M1, R5])
                      end),
    ?assertEqual([{ok, [{header, 3}]},
                  {ok, [$a, $b, $c | <<"def">>]},
                  {ok, "ab"},
                  {ok, [$a, $b, $c | <<>>]},
                  {ok, "abcdef"},
                  {ssl, 'S', [$x | <<"yz">>]},
                  {ok, <<"uvw">>}], Got).

%%% Active modes --------------------------------------------------------------

%% {active, true}: every piece in order as {ssl, S, Data}, then
%% {ssl_closed, S} and nothing after it.
active_true_then_closed(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{active, true}]),
    Pieces = [?L:pattern(N, N) || N <- [1, 10, 100, 1000, 16384, 20000]],
    [?L:peer_send(Peer, P) || P <- Pieces],
    ok = rssl_test_lib:call(Peer, close),
    {Got, Final} = rssl_test_lib:collect_active(S, ?T),
    ?assertEqual({ssl_closed, S}, Final),
    ?assertEqual([], [G || G <- Got, not is_binary(G) orelse G =:= <<>>]),
    rssl_test_lib:assert_same(iolist_to_binary(Pieces), iolist_to_binary(Got)),
    ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
    ?assertEqual([], ?L:no_msgs(S)),
    ?L:finish(?M, {S, Peer}, ok).

%% Switching from active to passive: later data waits for recv, no message.
active_false_keeps_data(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{active, true}]),
    ?L:peer_send(Peer, <<"one">>),
    ?L:expect(S, {ssl, S, <<"one">>}),
    ok = ?M:setopts(S, [{active, false}]),
    ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
    ?L:peer_send(Peer, <<"two">>),
    ?assertEqual({ok, <<"two">>}, ?M:recv(S, 3, ?T)),
    ?assertEqual([], ?L:no_msgs(S)),
    ?L:finish(?M, {S, Peer}, ok).

%% {active, once}: one message, then passive (data waits for recv) until
%% re-armed; data that came while passive is delivered by later re-arms.
active_once_rearm(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{active, once}]),
    ?L:peer_send(Peer, <<"a">>),
    ?L:expect(S, {ssl, S, <<"a">>}),
    ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
    ?L:peer_send(Peer, <<"b">>),
    ?assertEqual({ok, <<"b">>}, ?M:recv(S, 0, ?T)),
    ok = ?M:setopts(S, [{active, once}]),
    ?assertEqual({ok, [{active, once}]}, ?M:getopts(S, [active])),
    ?L:peer_send(Peer, <<"c">>),
    ?L:expect(S, {ssl, S, <<"c">>}),
    %% Sent while passive, then fetched one message per re-arm.
    [?L:peer_send(Peer, X) || X <- [<<"d">>, <<"e">>, <<"f">>]],
    ?assertEqual(<<"def">>, rearm_collect(S, 3, <<>>)),
    ?assertEqual({error, timeout}, ?M:recv(S, 0, 0)),
    ?L:finish(?M, {S, Peer}, ok).

rearm_collect(_S, 0, Acc) ->
    Acc;
rearm_collect(S, Left, Acc) ->
    ok = ?M:setopts(S, [{active, once}]),
    receive
        {ssl, S, Data} when is_binary(Data), byte_size(Data) =< Left ->
            ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
            rearm_collect(S, Left - byte_size(Data), <<Acc/binary, Data/binary>>);
        {ssl, S, Data} ->
            ct:fail({unexpected_data, Data, expected_at_most, Left})
    after ?T -> ct:fail({no_message_after_rearm, Acc})
    end.

%% The peer closes while the socket is passive after {active, once}:
%% nothing is sent until the next re-arm, which gives {ssl_closed, S}.
active_once_closed_while_passive(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{active, once}]),
                              ?L:peer_send(Peer, <<"x">>),
                              M1 = ?L:next_msg(S, ?T),
                              ok = rssl_test_lib:call(Peer, close),
                              %% The close reaches S's side before the
                              %% peer's close call returns? Not guaranteed:
                              %% a passive recv would consume it, so just
                              %% re-arm and wait.
                              Pending = ?L:no_msgs(S),
                              ok = Mod:setopts(S, [{active, once}]),
                              M2 = ?L:next_msg(S, ?T),
                              ?L:finish(Mod, {S, Peer}, {M1, Pending, M2})
                      end),
    ?assertEqual({{ssl, 'S', <<"x">>}, [], {ssl_closed, 'S'}}, Got).

%% {active, 3}: three messages, then {ssl_passive, S} and {active, false};
%% later data waits for recv.
active_n_counts_down(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{active, 3}]),
    ?assertEqual({ok, [{active, 3}]}, ?M:getopts(S, [active])),
    ?L:peer_send(Peer, <<"1">>),
    ?L:expect(S, {ssl, S, <<"1">>}),
    ?assertEqual({ok, [{active, 2}]}, ?M:getopts(S, [active])),
    ?L:peer_send(Peer, <<"2">>),
    ?L:expect(S, {ssl, S, <<"2">>}),
    ?L:peer_send(Peer, <<"3">>),
    ?L:expect(S, {ssl, S, <<"3">>}),
    ?L:expect(S, {ssl_passive, S}),
    ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
    ?L:peer_send(Peer, <<"4">>),
    ?assertEqual({ok, <<"4">>}, ?M:recv(S, 0, ?T)),
    ?assertEqual([], ?L:no_msgs(S)),
    ?L:finish(?M, {S, Peer}, ok).

%% {active, N} adds to a positive counter, within one setopts call too.
active_n_accumulates(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), []),
    ok = ?M:setopts(S, [{active, 2}]),
    ok = ?M:setopts(S, [{active, 3}]),
    ?assertEqual({ok, [{active, 5}]}, ?M:getopts(S, [active])),
    ok = ?M:setopts(S, [{active, false}]),
    ok = ?M:setopts(S, [{active, 3}, {active, 2}]),
    ?assertEqual({ok, [{active, 5}]}, ?M:getopts(S, [active])),
    [begin
         ?L:peer_send(Peer, <<I>>),
         ?L:expect(S, {ssl, S, <<I>>})
     end || I <- lists:seq(1, 5)],
    ?L:expect(S, {ssl_passive, S}),
    ?assertEqual({ok, [{active, false}]}, ?M:getopts(S, [active])),
    ?L:finish(?M, {S, Peer}, ok).

%% The counter arithmetic of ssl's setopts, step by step: results, the
%% counter after each step, and how many {ssl_passive, S} were sent. OTP
%% 25's ssl turns any {active, N} with N =< 0 into false (and sends
%% {ssl_passive, S}), even when the counter would stay positive.
active_n_arithmetic_as_ssl(Config) ->
    Pki = ?config(pki, Config),
    Steps = [[{active, 0}], [{active, 3}, {active, 2}], [{active, -4}],
             [{active, 5}], [{active, -1}], [{active, -1}],
             [{active, once}], [{active, 2}], [{active, true}], [{active, 4}],
             [{active, 32767}], [{active, 1}], [{active, -32768}],
             [{active, 32768}], [{active, -32769}], [{active, 40000}],
             [{active, 10}], [{active, 32760}], [{active, false}]],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              Trace = [{Step, Mod:setopts(S, Step), Mod:getopts(S, [active])}
                                       || Step <- Steps],
                              %% A data message after all steps: every
                              %% ssl_passive is in the mailbox by then.
                              ok = Mod:setopts(S, [{active, once}]),
                              ?L:peer_send(Peer, <<"end">>),
                              ?L:expect(S, {ssl, S, <<"end">>}),
                              Passive = length([M || {ssl_passive, _} = M <- ?L:no_msgs(S)]),
                              ?L:finish(Mod, {S, Peer}, {?L:norm(S, Trace), Passive})
                      end),
    {Trace, _} = Got,
    %% What OTP 25's ssl does, for the record.
    ?assertMatch([{_, ok, {ok, [{active, false}]}},
                  {_, ok, {ok, [{active, 5}]}},
                  {_, ok, {ok, [{active, false}]}} | _], Trace),
    ?assertMatch({_, {error, {options, {socket_options, {active, 32768}}}}, _},
                 lists:keyfind([{active, 32768}], 1, Trace)).

%% Bad values: {error, {options, {socket_options, Opt}}}, option unchanged.
active_bad_values(Config) ->
    Pki = ?config(pki, Config),
    Bad = [bogus, "true", {once}, undefined, -40000],
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{active, once}]),
                              R = [{V, Mod:setopts(S, [{active, V}]), Mod:getopts(S, [active])}
                                   || V <- Bad],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([{V, {error, {options, {socket_options, {active, V}}}}, {ok, [{active, once}]}}
                  || V <- Bad], Got).

%%% recv ----------------------------------------------------------------------

%% recv on a socket in any active mode: {error, einval}; the data then
%% still comes as a message.
recv_on_active_socket_einval(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {S, Peer} = ?L:pair(?M, client, Pki, [{active, A}]),
         ?assertEqual({A, {error, einval}}, {A, ?M:recv(S, 0, 100)}),
         ?assertEqual({A, {error, einval}}, {A, ?M:recv(S, 5, 100)}),
         ?assertEqual({A, {error, einval}}, {A, ?M:recv(S, 0)}),
         ?L:peer_send(Peer, <<"data">>),
         ?L:expect(S, {ssl, S, <<"data">>}),
         ?L:finish(?M, {S, Peer}, ok)
     end || A <- [true, once, 3]].

%% Length 0: whatever is there; Length N: exactly N bytes, gathered over
%% several records and split from longer ones.
recv_length_zero_and_exact(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), []),
    ?L:peer_send(Peer, <<"hello">>),
    ?assertEqual({ok, <<"hello">>}, ?M:recv(S, 0, ?T)),
    [?L:peer_send(Peer, X) || X <- [<<"de">>, <<"fg">>, <<"hi">>]],
    ?assertEqual({ok, <<"defghi">>}, ?M:recv(S, 6, ?T)),
    Big = ?L:pattern(100000, 3),
    ?L:peer_send(Peer, Big),
    ?assertEqual({ok, binary:part(Big, 0, 1)}, ?M:recv(S, 1, ?T)),
    ?assertEqual({ok, binary:part(Big, 1, 70000)}, ?M:recv(S, 70000, ?T)),
    Rest = binary:part(Big, 70001, 100000 - 70001),
    ?assertEqual(Rest, rssl_test_lib:recv_total(?M, S, byte_size(Rest))),
    ?assertEqual({error, timeout}, ?M:recv(S, 0, 50)),
    ?L:finish(?M, {S, Peer}, ok).

%% A recv with the default (infinite) timeout waits until data comes.
recv_waits_for_data(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), []),
    Self = self(),
    SendWhenBlocked = fun(Data) ->
                              fun(Mod, PS) ->
                                      rssl_test_lib:wait_blocked(Self, recv),
                                      Mod:send(PS, Data)
                              end
                      end,
    ok = rssl_test_lib:request(Peer, {fn, SendWhenBlocked(<<"late">>)}),
    ?assertEqual({ok, <<"late">>}, ?M:recv(S, 4)),
    ok = rssl_test_lib:reply(Peer),
    ok = rssl_test_lib:request(Peer, {fn, SendWhenBlocked(<<"later">>)}),
    ?assertEqual({ok, <<"later">>}, ?M:recv(S, 0)),
    ok = rssl_test_lib:reply(Peer),
    ?L:finish(?M, {S, Peer}, ok).

%% A zero timeout with nothing there: {error, timeout} at once, and the
%% socket goes on working.
recv_timeout_zero(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), []),
    ?assertEqual({error, timeout}, ?M:recv(S, 0, 0)),
    ?assertEqual({error, timeout}, ?M:recv(S, 3, 0)),
    ?L:peer_send(Peer, <<"abc">>),
    ?assertEqual({ok, <<"abc">>}, ?M:recv(S, 3, ?T)),
    ?L:finish(?M, {S, Peer}, ok).

%% recv(S, N) when the peer closes before N bytes came: {error, closed}
%% (the partial data is discarded, as the spec says), then {error, closed}.
recv_closed_with_partial_data(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, []),
                              ?L:peer_send(Peer, <<"abc">>),
                              ok = rssl_test_lib:call(Peer, close),
                              R1 = Mod:recv(S, 5, ?T),
                              R2 = Mod:recv(S, 0, ?T),
                              ?L:finish(Mod, {S, Peer}, [R1, R2])
                      end),
    ?assertEqual([{error, closed}, {error, closed}], Got).

%% {active, N} ran out, then the peer closed: no message, recv says
%% {error, closed}.
passive_closed_after_active_n(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{active, 1}]),
    ?L:peer_send(Peer, <<"x">>),
    ?L:expect(S, {ssl, S, <<"x">>}),
    ?L:expect(S, {ssl_passive, S}),
    ?L:peer_send(Peer, <<"y">>),
    ok = rssl_test_lib:call(Peer, close),
    ?assertEqual({ok, <<"y">>}, ?M:recv(S, 0, ?T)),
    ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
    ?assertEqual([], ?L:no_msgs(S)),
    ?L:finish(?M, {S, Peer}, ok).

%%% {ssl_error, S, Reason} ----------------------------------------------------

%% A record that does not decrypt (written straight into the peer's TCP
%% stream): {ssl_error, S, {tls_alert, {bad_record_mac, Description}}}.
ssl_error_bad_record_active(Config) ->
    {S, Holder, Tcp} = ?L:inject_pair(?M, ?config(pki, Config), [{active, true}]),
    ok = gen_tcp:send(Tcp, <<23, 3, 3, 0, 32, 0:256>>),
    receive
        {ssl_error, S, Reason} ->
            ?assertMatch({tls_alert, {bad_record_mac, Desc}} when is_list(Desc), Reason)
    after ?T -> ct:fail({no_ssl_error, ?L:no_msgs(S)})
    end,
    ok = ?M:close(S),
    stop_holder(Holder).

%% The same in passive mode: recv returns {error, {tls_alert, ...}}, then
%% {error, closed}.
ssl_error_bad_record_passive(Config) ->
    {S, Holder, Tcp} = ?L:inject_pair(?M, ?config(pki, Config), []),
    ok = gen_tcp:send(Tcp, <<23, 3, 3, 0, 32, 0:256>>),
    ?assertMatch({error, {tls_alert, {bad_record_mac, Desc}}} when is_list(Desc), ?M:recv(S, 0, ?T)),
    ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
    ok = ?M:close(S),
    stop_holder(Holder).

%% A record of an unknown content type (99) with a valid header:
%% {ssl_error, S, {tls_alert, {unexpected_message, _}}}.
ssl_error_bad_record_type(Config) ->
    {S, Holder, Tcp} = ?L:inject_pair(?M, ?config(pki, Config), [{active, true}]),
    ok = gen_tcp:send(Tcp, <<99, 3, 3, 0, 4, "abcd">>),
    receive
        {ssl_error, S, Reason} ->
            ?assertMatch({tls_alert, {unexpected_message, Desc}} when is_list(Desc), Reason)
    after ?T -> ct:fail({no_ssl_error, ?L:no_msgs(S)})
    end,
    ok = ?M:close(S),
    stop_holder(Holder).

%% Bytes that are no TLS record at all (plain text, so record type 'h' and
%% version "el"); OTP's ssl looks at the type first:
%% {ssl_error, S, {tls_alert, {unexpected_message, _}}} with {active, once}.
ssl_error_not_tls_active_once(Config) ->
    {S, Holder, Tcp} = ?L:inject_pair(?M, ?config(pki, Config), [{active, once}]),
    ok = gen_tcp:send(Tcp, <<"hello world, this is not TLS">>),
    receive
        {ssl_error, S, Reason} ->
            ?assertMatch({tls_alert, {unexpected_message, Desc}} when is_list(Desc), Reason)
    after ?T -> ct:fail({no_ssl_error, ?L:no_msgs(S)})
    end,
    ok = ?M:close(S),
    stop_holder(Holder).

%%% Helpers -----------------------------------------------------------------

other(client) -> server;
other(server) -> client.

stop_holder({Pid, _C}) ->
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, process, Pid, _} -> ok after ?T -> ct:fail(holder_stuck) end.
