%% Property-based tests (PropEr) of packet framing in the module under test
%% (?M, rssl by default) against an OTP ssl peer:
%%
%%   receive: random message sequences, framed for a random
%%     {packet, raw | 1 | 2 | 4 | line}, cut into random chunks by the
%%     sending peer (so messages straddle TLS records and share them), must
%%     come out of ?M intact and in order, in binary or list mode, received
%%     passively or with {active, true | once | N};
%%   send: ?M frames random messages (sent as binaries, lists or iolists)
%%     and ssl, reading with the same packet type, gets them back.
%%
%% Every test case is a fresh connection. PropEr comes from the Debian
%% package erlang-proper (in OTP's lib directory, so on the code path); no
%% header or parse transform is used, only proper:forall/2 and
%% proper_types. Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to run
%% the properties with ssl on both ends.
-module(rssl_prop_SUITE).

-include_lib("common_test/include/ct.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(W, 5000).          % wait for one message/packet
-define(NUMTESTS, 100).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([prop_receive_framed/1, prop_send_framed/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() -> [prop_receive_framed, prop_send_framed].

init_per_suite(Config) ->
    ok = rssl_test_lib:ensure_proper(),
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Properties ----------------------------------------------------------------

prop_receive_framed(Config) ->
    Pki = ?config(pki, Config),
    check(proper:forall(receive_case(), fun(Case) -> receive_ok(Pki, Case) end)).

prop_send_framed(Config) ->
    Pki = ?config(pki, Config),
    check(proper:forall(send_case(), fun(Case) -> send_ok(Pki, Case) end)).

check(Prop) ->
    Opts = [long_result, {numtests, ?NUMTESTS}, {max_shrinks, 30},
            {on_output, fun(Fmt, Args) -> ct:log(Fmt, Args) end}],
    case proper:quickcheck(Prop, Opts) of
        true -> ok;
        CounterExample -> ct:fail({counterexample, CounterExample})
    end.

%%% Generators ----------------------------------------------------------------

packet_type() -> proper_types:oneof([raw, 1, 2, 4, line]).

%% {Packet, Mode, Receiver, MessageSizes, ChunkSizes}
receive_case() ->
    proper_types:bind(
      proper_types:tuple([packet_type(),
                          proper_types:oneof([binary, list]),
                          proper_types:oneof([passive, true, once,
                                              proper_types:tuple([proper_types:exactly(n),
                                                                  proper_types:range(1, 4)])])]),
      fun({Packet, Mode, Recv}) ->
              proper_types:tuple([proper_types:exactly(Packet), proper_types:exactly(Mode),
                                  proper_types:exactly(Recv), sizes(Packet), chunk_sizes()])
      end, false).

%% {Packet, Form, MessageSizes, ChunkSizes (raw only)}
send_case() ->
    proper_types:bind(
      packet_type(),
      fun(Packet) ->
              proper_types:tuple([proper_types:exactly(Packet),
                                  proper_types:oneof([binary, list, iolist]),
                                  sizes(Packet), chunk_sizes()])
      end, false).

sizes(Packet) ->
    proper_types:bind(proper_types:range(0, 15),
                      fun(N) -> proper_types:vector(N, msg_size(Packet)) end, false).

msg_size(raw) -> sized([{6, 1, 300}, {2, 301, 20000}, {1, 20001, 100000}]);
msg_size(1) -> proper_types:range(0, 255);
msg_size(2) -> sized([{6, 0, 300}, {2, 301, 20000}, {1, 20001, 65535}]);
msg_size(4) -> sized([{6, 0, 300}, {2, 301, 20000}, {1, 20001, 150000}]);
msg_size(line) -> sized([{6, 0, 300}, {2, 301, 20000}, {1, 20001, 60000}]).

sized(Ranges) ->
    proper_types:frequency([{W, proper_types:range(Lo, Hi)} || {W, Lo, Hi} <- Ranges]).

chunk_sizes() ->
    proper_types:non_empty(
      proper_types:list(sized([{3, 1, 10}, {3, 11, 2000}, {1, 2001, 40000}]))).

%%% receive -------------------------------------------------------------------

receive_ok(Pki, {Packet, Mode, Recv, Sizes, Chunks} = Case) ->
    Msgs = messages(Sizes),
    Wire = ?L:frame_all(Packet, Msgs),
    {S, Peer} = ?L:pair(?M, client, Pki, [{packet, Packet}, {mode, Mode}]),
    try
        ok = arm(S, Recv),
        ok = rssl_test_lib:request(Peer, {send_chunks, Wire, Chunks}),
        Result = case Packet of
                     raw -> collect(S, Recv, fun(Acc) -> iolist_size(to_bin(Acc)) >= byte_size(Wire) end);
                     _ -> collect(S, Recv, fun(Acc) -> length(Acc) >= length(Msgs) end)
                 end,
        Sent = rssl_test_lib:reply(Peer),
        Rest = finish_receiving(S, Recv, Result),
        Expected = case Packet of
                       raw -> Wire;
                       _ -> [in_mode(Mode, payload(Packet, M)) || M <- Msgs]
                   end,
        Got = case {Packet, Result} of
                  {raw, {ok, Pieces, _}} -> {ok, iolist_to_binary(to_bin(Pieces))};
                  {_, {ok, Packets, _}} -> {ok, Packets};
                  {_, Error} -> Error
              end,
        Types = case Result of
                    {ok, Ps, _} -> lists:all(fun(P) -> is_mode(Mode, P) end, Ps);
                    _ -> false
                end,
        Good = Sent =:= ok andalso Got =:= {ok, Expected} andalso Types andalso Rest =:= clean,
        Good orelse ct:log("Case ~p~nsent ~p, rest ~p, types ok ~p~nexpected ~P~ngot ~P",
                           [Case, Sent, Rest, Types, Expected, 30, Got, 30]),
        Good
    after
        ?L:finish(?M, {S, Peer}, ok)
    end.

%% The socket starts passive; Recv says how it is read.
arm(_S, passive) -> ok;
arm(S, true) -> ?M:setopts(S, [{active, true}]);
arm(_S, once) -> ok;                     % armed before each message
arm(S, {n, N}) -> ?M:setopts(S, [{active, N}]).

%% Pieces until Done(Acc): {ok, Pieces, SinceArm} or {error, Why, Pieces}.
collect(S, Recv, Done) ->
    collect(S, Recv, Done, [], 0).

collect(S, Recv, Done, Acc, SinceArm) ->
    case Done(Acc) of
        true ->
            {ok, lists:reverse(Acc), SinceArm};
        false ->
            case take(S, Recv) of
                {data, D} ->
                    collect(S, Recv, Done, [D | Acc], SinceArm + 1);
                passive when element(1, Recv) =:= n ->
                    ok = ?M:setopts(S, [{active, element(2, Recv)}]),
                    collect(S, Recv, Done, Acc, 0);
                Other ->
                    {error, Other, lists:reverse(Acc)}
            end
    end.

take(S, passive) ->
    case ?M:recv(S, 0, ?W) of
        {ok, D} -> {data, D};
        Error -> Error
    end;
take(S, once) ->
    ok = ?M:setopts(S, [{active, once}]),
    take_msg(S);
take(S, _) ->
    take_msg(S).

take_msg(S) ->
    receive
        {ssl, S, D} -> {data, D};
        {ssl_passive, S} -> passive;
        {ssl_closed, S} -> {ssl_closed, S};
        {ssl_error, S, R} -> {ssl_error, S, R}
    after ?W -> timeout
    end.

%% After the last piece: the {ssl_passive, S} that {active, N} owes, then
%% passive with nothing more to read. clean | What was left.
finish_receiving(S, Recv, Result) ->
    Owed = case {Recv, Result} of
               {{n, N}, {ok, _, N}} -> take_msg(S);
               _ -> none
           end,
    ok = ?M:setopts(S, [{active, false}]),
    Left = ?M:recv(S, 0, 0),
    Stray = ?L:no_msgs(S),
    case {Owed, Left, Stray} of
        {Owed, {error, timeout}, []} when Owed =:= none; Owed =:= passive -> clean;
        _ -> {Owed, Left, Stray}
    end.

%%% send ----------------------------------------------------------------------

send_ok(Pki, {Packet, Form, Sizes, Chunks} = Case) ->
    Msgs = messages(Sizes),
    {S, Peer} = ?L:pair(?M, server, Pki, [{packet, Packet}]),
    try
        ok = ?L:peer_fn(Peer, fun(Mod, PS) -> Mod:setopts(PS, [{packet, Packet}]) end),
        {Expected, Sends} =
            case Packet of
                raw -> {[iolist_to_binary(Msgs)], ?L:chunks(iolist_to_binary(Msgs), Chunks)};
                line -> {[<<M/binary, $\n>> || M <- Msgs], [<<M/binary, $\n>> || M <- Msgs]};
                _ -> {Msgs, Msgs}
            end,
        Total = iolist_size(Expected),
        Count = length(Expected),
        ok = rssl_test_lib:request(Peer, {fn, fun(Mod, PS) ->
                                                      case Packet of
                                                          raw when Total =:= 0 -> [<<>>];
                                                          raw -> [rssl_test_lib:recv_total(Mod, PS, Total)];
                                                          _ -> [peer_packet(Mod, PS) || _ <- lists:seq(1, Count)]
                                                      end
                                              end}),
        SendResults = [?M:send(S, in_form(Form, D)) || D <- Sends],
        Got = rssl_test_lib:reply(Peer, 3 * ?W),
        Good = lists:all(fun(R) -> R =:= ok end, SendResults) andalso Got =:= Expected,
        Good orelse ct:log("Case ~p~nsend results ~p~nexpected ~P~ngot ~P",
                           [Case, lists:usort(SendResults), Expected, 30, Got, 30]),
        Good
    after
        ?L:finish(?M, {S, Peer}, ok)
    end.

peer_packet(Mod, PS) ->
    case Mod:recv(PS, 0, ?W) of
        {ok, P} -> P;
        Error -> Error
    end.

in_form(binary, D) -> D;
in_form(list, D) -> binary_to_list(D);
in_form(iolist, D) ->
    Half = byte_size(D) div 2,
    <<A:Half/binary, B/binary>> = D,
    [binary_to_list(A), [B], <<>>].

%%% Helpers -----------------------------------------------------------------

messages(Sizes) ->
    [?L:pattern(Size, I) || {I, Size} <- lists:zip(lists:seq(1, length(Sizes)), Sizes)].

payload(line, M) -> <<M/binary, $\n>>;
payload(_, M) -> M.

in_mode(binary, B) -> B;
in_mode(list, B) -> binary_to_list(B).

is_mode(binary, P) -> is_binary(P);
is_mode(list, P) -> is_list(P).

to_bin(Pieces) ->
    [if is_list(P) -> list_to_binary(P); true -> P end || P <- Pieces].
