%% Packet framing on the plaintext by the module under test (?M, rssl by
%% default) with an OTP ssl peer: {packet, raw | 0 | 1 | 2 | 4 | line},
%% packet_size, and the erlang:decode_packet types asn1, cdr, sunrm, fcgi,
%% tpkt, http, http_bin, httph, httph_bin as OTP's ssl supports them;
%% across TLS record boundaries (one message over many records, many
%% messages in one record), received in passive mode (group passive) and
%% active mode (group active), and framing added on send.
%%
%% The peer sends and receives raw bytes, so what is on the wire is what
%% the test built. Expected packets come from erlang:decode_packet/3 where
%% that defines them; exact error terms are compared with ssl
%% (rssl_socket_lib:same/2). Compile with {d, 'M', ssl} (rebar3 as otp_ssl
%% ct) to check every case against ssl itself.
-module(rssl_packet_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(T, 10000).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
%% Both groups.
-export([raw_and_0/1, many_messages_one_record/1, one_message_many_records/1,
         messages_straddling_records/1, empty_messages/1, line_waits_for_newline/1,
         list_mode_packets/1, header_with_packet/1,
         packet_size_limit/1, packet_size_exceeded/1, packet_size_line/1,
         decode_packet_types/1, http_bin_request_then_body/1, http_list_mode/1,
         http_response/1, httph_headers_only/1, http_error_line/1,
         switch_packet_mid_stream/1]).
%% Sending, and passive-only checks.
-export([send_adds_framing/1, send_packet_too_large/1, send_packet_iodata/1,
         recv_length_ignored_with_packet/1, getopts_packet_during_headers/1,
         send_header_shares_record/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [{group, passive}, {group, active},
     send_adds_framing, send_packet_too_large, send_packet_iodata,
     recv_length_ignored_with_packet, getopts_packet_during_headers,
     send_header_shares_record].

groups() ->
    Cases = [raw_and_0, many_messages_one_record, one_message_many_records,
             messages_straddling_records, empty_messages, line_waits_for_newline,
             list_mode_packets, header_with_packet,
             packet_size_limit, packet_size_exceeded, packet_size_line,
             decode_packet_types, http_bin_request_then_body, http_list_mode,
             http_response, httph_headers_only, http_error_line,
             switch_packet_mid_stream],
    [{passive, [], Cases}, {active, [], Cases}].

init_per_suite(Config) ->
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_group(passive, Config) -> [{recv_mode, passive} | Config];
init_per_group(active, Config) -> [{recv_mode, active} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Framing on receive ------------------------------------------------------

%% raw and 0: no framing, the bytes arrive whole and in order however the
%% peer cut them.
raw_and_0(Config) ->
    [begin
         {S, Peer} = open(Config, [{packet, Type}]),
         Data = ?L:pattern(100000, 1),
         ?L:peer_send_chunks(Peer, Data, [1, 7, 16384, 16385, 1000, 40000]),
         rssl_test_lib:assert_same(Data, recv_bytes(Config, S, byte_size(Data))),
         ?L:finish(?M, {S, Peer}, ok)
     end || Type <- [raw, 0]].

%% Many small messages in one send (one TLS record): one packet each.
many_messages_one_record(Config) ->
    [begin
         Msgs = [?L:pattern(I rem 41, I) || I <- lists:seq(1, 300)],
         Wire = ?L:frame_all(Type, Msgs),
         ?assert(byte_size(Wire) < 16384),
         {S, Peer} = open(Config, [{packet, Type}]),
         ?L:peer_send(Peer, Wire),
         ?assertEqual({Type, [framed_payload(Type, M) || M <- Msgs]},
                      {Type, recv_packets(Config, S, length(Msgs))}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Type <- [1, 2, 4, line]].

%% One large message cut into many sends (records): one packet.
one_message_many_records(Config) ->
    [begin
         Msg = ?L:pattern(Size, Size),
         {S, Peer} = open(Config, [{packet, Type}]),
         ?L:peer_send_chunks(Peer, ?L:frame(Type, Msg), [Chunk]),
         [Got] = recv_packets(Config, S, 1, {Type, Size, Chunk}),
         rssl_test_lib:assert_same(framed_payload(Type, Msg), Got),
         ?L:finish(?M, {S, Peer}, ok)
     end || {Type, Size, Chunk} <- [{1, 255, 1}, {2, 65535, 1000}, {4, 300000, 16383},
                                    {4, 6000, 3}, {line, 50000, 777}]].

%% Messages of mixed sizes, the stream cut at odd places so messages and
%% their length headers straddle record boundaries.
messages_straddling_records(Config) ->
    [begin
         Msgs = [?L:pattern(Size, I) || {I, Size} <- lists:zip(lists:seq(1, 12), sizes(Type))],
         {S, Peer} = open(Config, [{packet, Type}]),
         ?L:peer_send_chunks(Peer, ?L:frame_all(Type, Msgs), [1, 2, 3, 5, 16385, 4, 1000, 7, 20000]),
         ?assertEqual({Type, [framed_payload(Type, M) || M <- Msgs]},
                      {Type, recv_packets(Config, S, length(Msgs))}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Type <- [1, 2, 4, line]].

sizes(1) -> [0, 1, 255, 3, 100, 254, 2, 17, 200, 5, 128, 255];
sizes(_) -> [0, 1, 16383, 3, 16384, 16385, 2, 40000, 5, 1000, 65535, 7].

%% Zero-length messages: an empty packet each (and "\n" for line).
empty_messages(Config) ->
    [begin
         {S, Peer} = open(Config, [{packet, Type}]),
         ?L:peer_send(Peer, ?L:frame_all(Type, [<<>>, <<"x">>, <<>>])),
         ?assertEqual({Type, [framed_payload(Type, M) || M <- [<<>>, <<"x">>, <<>>]]},
                      {Type, recv_packets(Config, S, 3)}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Type <- [1, 2, 4, line]].

%% A line without its newline is held back until the newline comes.
line_waits_for_newline(Config) ->
    {S, Peer} = open(Config, [{packet, line}]),
    ?L:peer_send(Peer, <<"ab">>),
    case ?config(recv_mode, Config) of
        passive -> ?assertEqual({error, timeout}, ?M:recv(S, 0, 100));
        active -> ok
    end,
    ?L:peer_send(Peer, <<"c\nde">>),
    ?L:peer_send(Peer, <<"f\n">>),
    ?assertEqual([<<"abc\n">>, <<"def\n">>], recv_packets(Config, S, 2)),
    ?L:finish(?M, {S, Peer}, ok).

%% list mode: each packet as a string.
list_mode_packets(Config) ->
    [begin
         {S, Peer} = open(Config, [list, {packet, Type}]),
         ?L:peer_send(Peer, ?L:frame_all(Type, [<<"abc">>, <<>>, <<"de">>])),
         ?assertEqual({Type, [binary_to_list(framed_payload(Type, M)) || M <- [<<"abc">>, <<>>, <<"de">>]]},
                      {Type, recv_packets(Config, S, 3)}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Type <- [2, line]].

%% {header, N} applies to each packet's payload.
header_with_packet(Config) ->
    {S, Peer} = open(Config, [{packet, 2}, {header, 2}]),
    ?L:peer_send(Peer, ?L:frame_all(2, [<<"abcd">>, <<"xy">>, <<"z">>])),
    ?assertEqual([[$a, $b | <<"cd">>], [$x, $y | <<>>], [$z]], recv_packets(Config, S, 3)),
    ?L:finish(?M, {S, Peer}, ok).

%% A packet of exactly packet_size bytes is fine.
packet_size_limit(Config) ->
    {S, Peer} = open(Config, [{packet, 2}, {packet_size, 10}]),
    ?assertEqual({ok, [{packet_size, 10}]}, ?M:getopts(S, [packet_size])),
    ?L:peer_send(Peer, ?L:frame_all(2, [<<"0123456789">>, <<"a">>])),
    ?assertEqual([<<"0123456789">>, <<"a">>], recv_packets(Config, S, 2)),
    ?L:finish(?M, {S, Peer}, ok).

%% A length header above packet_size: {error, {invalid_packet, Buffered}}
%% (passive) or {ssl_error, S, {invalid_packet, Buffered}} (active) with
%% every byte not yet delivered, then the connection is closed.
packet_size_exceeded(Config) ->
    Mode = ?config(recv_mode, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = open(Mod, Config, [{packet, 2}, {packet_size, 10}]),
                              ?L:peer_send(Peer, <<0, 2, "ok", 0, 11, "0123456789a", "more">>),
                              R = case Mode of
                                      passive -> [Mod:recv(S, 0, ?T), Mod:recv(S, 0, ?T),
                                                  Mod:recv(S, 0, ?T)];
                                      active -> ?L:expect_msgs(S, 2, ?T)
                                  end,
                              %% The peer sees the close (no timeout).
                              PeerSaw = ?L:peer_recv(Peer, 0, 5000),
                              ?L:finish(Mod, {S, Peer}, {?L:norm(S, R), PeerSaw})
                      end),
    Invalid = {invalid_packet, <<0, 11, "0123456789a", "more">>},
    case Mode of
        passive -> ?assertMatch({[{ok, <<"ok">>}, {error, Invalid}, {error, closed}], _}, Got);
        active -> ?assertMatch({[{ssl, 'S', <<"ok">>}, {ssl_error, 'S', Invalid}], _}, Got)
    end,
    ?assertMatch({_, {error, closed}}, Got).

%% packet_size with line: a longer line is an invalid packet too.
packet_size_line(Config) ->
    Mode = ?config(recv_mode, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = open(Mod, Config, [{packet, line}, {packet_size, 8}]),
                              ?L:peer_send(Peer, <<"short\nmuch too long\n">>),
                              R = case Mode of
                                      passive -> [Mod:recv(S, 0, ?T), Mod:recv(S, 0, ?T)];
                                      active -> ?L:expect_msgs(S, 2, ?T)
                                  end,
                              ?L:finish(Mod, {S, Peer}, ?L:norm(S, R))
                      end),
    case Mode of
        passive -> ?assertEqual([{ok, <<"short\n">>}, {error, {invalid_packet, <<"much too long\n">>}}], Got);
        active -> ?assertEqual([{ssl, 'S', <<"short\n">>}, {ssl_error, 'S', {invalid_packet, <<"much too long\n">>}}], Got)
    end.

%%% decode_packet types -------------------------------------------------------

%% asn1, cdr, sunrm, fcgi and tpkt: the packets erlang:decode_packet/3 finds
%% in the stream, however it is cut.
decode_packet_types(Config) ->
    [begin
         Wire = iolist_to_binary(Packets),
         {Expected, <<>>} = ?L:decode_all(Type, Wire, []),
         ?assertEqual(length(Packets), length(Expected)),
         {S, Peer} = open(Config, [{packet, Type}]),
         ?L:peer_send_chunks(Peer, Wire, [3, 1, 5, 1000, 2]),
         ?assertEqual({Type, Expected}, {Type, recv_packets(Config, S, length(Expected))}),
         ?L:finish(?M, {S, Peer}, ok)
     end || {Type, Packets} <- decode_samples()].

decode_samples() ->
    Big = ?L:pattern(1000, 9),
    [{asn1, [<<16#30, 3, 1, 2, 3>>,
             <<16#04, 16#82, 1000:16, Big/binary>>,
             <<16#02, 1, 5>>,
             <<16#05, 0>>]},
     {tpkt, [<<3, 0, 6:16, 1, 2>>,
             <<3, 0, 4:16>>,
             <<3, 0, 1004:16, Big/binary>>]},
     {sunrm, [<<1:1, 2:31, 1, 2>>,
              <<1:1, 0:31>>,
              <<1:1, 1000:31, Big/binary>>]},
     {fcgi, [<<1, 5, 1:16, 3:16, 2, 0, 7, 8, 9, 0, 0>>,
             <<1, 6, 1:16, 0:16, 0, 0>>,
             <<1, 5, 2:16, 1000:16, 5, 0, Big/binary, 0:40>>]},
     {cdr, [<<"GIOP", 1, 0, 0, 0, 2:32, 5, 6>>,
            <<"GIOP", 1, 0, 1, 0, 3:32/little, 1, 2, 3>>,
            <<"GIOP", 1, 2, 0, 1, 1000:32, Big/binary>>]}].

%% http_bin: a request line, then headers (the socket switches to httph_bin
%% by itself) up to http_eoh; then {packet, raw} reads the body, which the
%% header parsing must have left alone.
http_bin_request_then_body(Config) ->
    {S, Peer} = open(Config, [{packet, http_bin}]),
    Head = <<"POST /submit?x=1 HTTP/1.1\r\nHost: example.org\r\nContent-Length: 5\r\n"
             "X-Custom: a b\r\n\r\n">>,
    ?L:peer_send_chunks(Peer, <<Head/binary, "hello">>, [4, 1, 9]),
    Packets = http_packets(http_bin, Head),
    ?assertMatch([{http_request, 'POST', _, {1, 1}}, _, _, _, http_eoh], Packets),
    ?assertEqual(Packets, recv_packets(Config, S, 5)),
    case ?config(recv_mode, Config) of
        passive ->
            ok = ?M:setopts(S, [{packet, raw}]),
            ?assertEqual({ok, <<"hello">>}, ?M:recv(S, 5, ?T));
        active ->
            ok = ?M:setopts(S, [{packet, raw}, {active, once}]),
            ?L:expect(S, {ssl, S, <<"hello">>})
    end,
    %% A second request on the same connection starts with a request line.
    ok = ?M:setopts(S, [{packet, http_bin}, {active, ?config(recv_mode, Config) =:= active}]),
    Second = <<"GET / HTTP/1.0\r\n\r\n">>,
    ?L:peer_send(Peer, Second),
    ?assertEqual(http_packets(http_bin, Second), recv_packets(Config, S, 2)),
    ?L:finish(?M, {S, Peer}, ok).

%% http (not _bin) in list mode: strings inside the tuples, as
%% erlang:decode_packet(http, ...) makes them.
http_list_mode(Config) ->
    {S, Peer} = open(Config, [list, {packet, http}]),
    Req = <<"GET /a HTTP/1.1\r\nAccept: */*\r\nX-Y: z\r\n\r\n">>,
    ?L:peer_send(Peer, Req),
    Packets = http_packets(http, Req),
    ?assertMatch([{http_request, 'GET', {abs_path, "/a"}, {1, 1}}, _, _, http_eoh], Packets),
    ?assertEqual(Packets, recv_packets(Config, S, 4)),
    ?L:finish(?M, {S, Peer}, ok).

%% A response line, its headers, then the next response line.
http_response(Config) ->
    {S, Peer} = open(Config, [{packet, http_bin}]),
    Responses = <<"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                  "HTTP/1.0 404 Not Found\r\n\r\n">>,
    ?L:peer_send(Peer, Responses),
    Packets = http_packets(http_bin, Responses),
    ?assertMatch([{http_response, {1, 1}, 200, _}, _, http_eoh, {http_response, {1, 0}, 404, _}, http_eoh],
                 Packets),
    ?assertEqual(Packets, recv_packets(Config, S, 5)),
    ?L:finish(?M, {S, Peer}, ok).

%% httph_bin set explicitly: headers only, no switching after http_eoh.
httph_headers_only(Config) ->
    {S, Peer} = open(Config, [{packet, httph_bin}]),
    Headers = <<"A: b\r\n\r\nC: d\r\n\r\n">>,
    ?L:peer_send(Peer, Headers),
    Packets = http_packets(httph_bin, Headers),
    ?assertMatch([{http_header, _, _, _, _}, http_eoh, {http_header, _, _, _, _}, http_eoh], Packets),
    ?assertEqual(Packets, recv_packets(Config, S, 4)),
    ?assertEqual({ok, [{packet, httph_bin}]}, ?M:getopts(S, [packet])),
    ?L:finish(?M, {S, Peer}, ok).

%% A line that is no request line: {http_error, Line}; the connection goes
%% on (a good request line after it parses).
http_error_line(Config) ->
    {S, Peer} = open(Config, [{packet, http_bin}]),
    Lines = <<"garbage\r\nGET / HTTP/1.1\r\n\r\n">>,
    ?L:peer_send(Peer, Lines),
    Packets = http_packets(http_bin, Lines),
    ?assertMatch([{http_error, _}, {http_request, 'GET', _, _}, http_eoh], Packets),
    ?assertEqual(Packets, recv_packets(Config, S, 3)),
    ?L:finish(?M, {S, Peer}, ok).

%% Changing {packet, _} between packets re-frames what is already buffered.
switch_packet_mid_stream(Config) ->
    Mode = ?config(recv_mode, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, ?config(pki, Config), [{packet, 2}]),
                              ?L:peer_send(Peer, <<0, 3, "abc", 2, "de", "fg\n",
                                                   16#30, 1, 0, "GET / HTTP/1.1\r\n", "raw">>),
                              Steps = [{2, 0}, {1, 0}, {line, 0}, {asn1, 0}, {http_bin, 0}, {raw, 3}],
                              R = [{P, recv_one(Mod, Mode, S, [{packet, P}], N)} || {P, N} <- Steps],
                              ?L:finish(Mod, {S, Peer}, ?L:norm(S, R))
                      end),
    ?assertEqual([{2, <<"abc">>}, {1, <<"de">>}, {line, <<"fg\n">>},
                  {asn1, <<16#30, 1, 0>>},
                  {http_bin, {http_request, 'GET', {abs_path, <<"/">>}, {1, 1}}},
                  {raw, <<"raw">>}], Got).

%%% Sending ---------------------------------------------------------------

%% {packet, 1 | 2 | 4} adds the length header to each send; raw, 0 and
%% line send the bytes as they are.
send_adds_framing(Config) ->
    Msgs = [<<"hello">>, <<>>, ?L:pattern(255, 1)],
    [begin
         {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{packet, Type}]),
         [ok = ?M:send(S, M) || M <- Msgs],
         Wire = << <<(send_framed(Type, M))/binary>> || M <- Msgs >>,
         ?assertEqual({Type, {ok, Wire}}, {Type, ?L:peer_recv(Peer, byte_size(Wire))}),
         ?L:finish(?M, {S, Peer}, ok)
     end || Type <- [raw, 0, 1, 2, 4, line]],
    %% Large messages over many records.
    {S2, Peer2} = ?L:pair(?M, client, ?config(pki, Config), [{packet, 4}]),
    Big = ?L:pattern(300000, 2),
    ok = ?M:send(S2, Big),
    ?assertEqual({ok, <<300000:32>>}, ?L:peer_recv(Peer2, 4)),
    rssl_test_lib:assert_same(Big, rssl_test_lib:call(Peer2, {recv_total, 300000})),
    ?L:finish(?M, {S2, Peer2}, ok).

%% The packet header travels in the same TLS record as the start of its
%% message, as with ssl: a message of up to 16 KiB minus the header is one
%% record, 20000 bytes two. Counted on the wire by a relay between a
%% ?M server and an ssl client, in TLS 1.2 and 1.3 (no tickets: the
%% server sends nothing else once the handshake is done).
send_header_shares_record(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {ok, L} = ?M:listen(0, [{packet, 4}, {versions, [V]}, {reuseaddr, true}
                                 | rssl_test_pki:server_opts(Pki, server)]),
         {ok, {_, Port}} = ?M:sockname(L),
         {Relay, RelayPort} = counting_relay(Port),
         Self = self(),
         Client = spawn_link(
                    fun() ->
                            {ok, C} = ssl:connect({127, 0, 0, 1}, RelayPort,
                                                  [binary, {active, false}, {packet, 4},
                                                   {versions, [V]}
                                                   | rssl_test_pki:client_opts(Pki, ca)], ?T),
                            Self ! {self(), connected},
                            client_loop(C)
                    end),
         {ok, T} = ?M:transport_accept(L, ?T),
         {ok, S} = ?M:handshake(T, ?T),
         receive {Client, connected} -> ok after ?T -> ct:fail(no_client) end,
         Counts = [begin
                       Before = relay_records(Relay),
                       Msg = ?L:pattern(Size, 3),
                       ok = ?M:send(S, Msg),
                       Client ! {recv, Self},
                       receive {Client, {ok, Got}} -> ?assertEqual(Msg, Got)
                       after ?T -> ct:fail(no_message)
                       end,
                       {Size, relay_records(Relay) - Before}
                   end || Size <- [5, 16380, 20000]],
         ?assertEqual({V, [{5, 1}, {16380, 1}, {20000, 2}]}, {V, Counts}),
         Client ! stop,
         unlink(Relay),
         Relay ! stop,
         ok = ?M:close(S),
         ok = ?M:close(L)
     end || V <- ['tlsv1.2', 'tlsv1.3']],
    ok.

client_loop(C) ->
    receive
        {recv, From} -> From ! {self(), ssl:recv(C, 0, ?T)}, client_loop(C);
        stop -> ssl:close(C)
    end.

%% A TCP relay in front of Port that counts the records the server sends;
%% relay_records/1 asks it. Returns {Pid, RelayPort}.
counting_relay(Port) ->
    Self = self(),
    Pid = spawn_link(
            fun() ->
                    {ok, LS} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
                    {ok, RelayPort} = inet:port(LS),
                    Self ! {self(), RelayPort},
                    {ok, A} = gen_tcp:accept(LS, ?T),
                    {ok, B} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, true}]),
                    ok = inet:setopts(A, [{active, true}]),
                    counting_loop(A, B, <<>>, 0)
            end),
    receive {Pid, RelayPort} -> {Pid, RelayPort} after ?T -> ct:fail(no_relay) end.

counting_loop(A, B, Buf, N) ->
    receive
        {tcp, A, Data} ->
            _ = gen_tcp:send(B, Data),
            counting_loop(A, B, Buf, N);
        {tcp, B, Data} ->
            _ = gen_tcp:send(A, Data),
            {Rest, M} = count_records(<<Buf/binary, Data/binary>>, N),
            counting_loop(A, B, Rest, M);
        {records, From} ->
            From ! {self(), records, N},
            counting_loop(A, B, Buf, N);
        {tcp_closed, _} ->
            gen_tcp:close(A), gen_tcp:close(B);
        stop ->
            gen_tcp:close(A), gen_tcp:close(B)
    end.

count_records(<<_Type, _:16, Len:16, _:Len/binary, Rest/binary>>, N) ->
    count_records(Rest, N + 1);
count_records(Partial, N) ->
    {Partial, N}.

relay_records(Relay) ->
    Relay ! {records, self()},
    receive {Relay, records, N} -> N after ?T -> ct:fail(relay_silent) end.

send_framed(line, M) -> M;
send_framed(Type, M) -> ?L:frame(Type, M).

%% A message too long for the header: {error, {badarg, {packet_to_large,
%% Size, Max}}} (sic), nothing sent, the connection goes on.
send_packet_too_large(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              [begin
                                   {S, Peer} = ?L:pair(Mod, client, Pki, [{packet, Type}]),
                                   Too = Mod:send(S, binary:copy(<<"x">>, Size)),
                                   ok = Mod:send(S, <<"ok">>),
                                   Next = ?L:peer_recv(Peer, 0),
                                   ?L:finish(Mod, {S, Peer}, {Type, Too, Next})
                               end || {Type, Size} <- [{1, 256}, {2, 65536}]]
                      end),
    ?assertEqual([{1, {error, {badarg, {packet_to_large, 256, 255}}}, {ok, <<2, "ok">>}},
                  {2, {error, {badarg, {packet_to_large, 65536, 65535}}}, {ok, <<0, 2, "ok">>}}],
                 Got).

%% iodata and lists are framed as one message.
send_packet_iodata(Config) ->
    {S, Peer} = ?L:pair(?M, client, ?config(pki, Config), [{packet, 2}]),
    ok = ?M:send(S, [<<"ab">>, $c, [[<<"de">>], "f"]]),
    ok = ?M:send(S, "xyz"),
    ?assertEqual({ok, <<0, 6, "abcdef", 0, 3, "xyz">>}, ?L:peer_recv(Peer, 13)),
    ?L:finish(?M, {S, Peer}, ok).

%%% Passive-only details ------------------------------------------------------

%% With a packet type, recv's Length is ignored: one whole packet.
recv_length_ignored_with_packet(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{packet, 2}]),
                              ?L:peer_send(Peer, <<0, 3, "abc", 0, 2, "de", 0, 4, "wxyz">>),
                              R = [Mod:recv(S, 5, ?T), Mod:recv(S, 1, ?T), Mod:recv(S, 4, ?T)],
                              ?L:finish(Mod, {S, Peer}, R)
                      end),
    ?assertEqual([{ok, <<"abc">>}, {ok, <<"de">>}, {ok, <<"wxyz">>}], Got).

%% While reading headers after a request line, getopts still says the
%% packet type that was set (http_bin), as ssl reports it.
getopts_packet_during_headers(Config) ->
    Pki = ?config(pki, Config),
    Got = ?L:same(?M, fun(Mod) ->
                              {S, Peer} = ?L:pair(Mod, client, Pki, [{packet, http_bin}]),
                              ?L:peer_send(Peer, <<"GET / HTTP/1.1\r\nA: b\r\n\r\n">>),
                              R1 = Mod:recv(S, 0, ?T),
                              G1 = Mod:getopts(S, [packet]),
                              R2 = Mod:recv(S, 0, ?T),
                              R3 = Mod:recv(S, 0, ?T),
                              G2 = Mod:getopts(S, [packet]),
                              ?L:finish(Mod, {S, Peer}, [R1, G1, R2, R3, G2])
                      end),
    ?assertEqual([{ok, {http_request, 'GET', {abs_path, <<"/">>}, {1, 1}}},
                  {ok, [{packet, http_bin}]},
                  {ok, {http_header, 0, <<"A">>, <<"A">>, <<"b">>}},
                  {ok, http_eoh},
                  {ok, [{packet, http_bin}]}], Got).

%%% Helpers -----------------------------------------------------------------

%% The packets erlang:decode_packet/3 finds in Bin (which must hold nothing
%% more) read with {packet, Type} the way a gen_tcp socket reads HTTP:
%% header lines (httph, httph_bin) after a request or response line, and
%% Type again after http_eoh.
http_packets(Type, Bin) ->
    http_packets(Type, Type, Bin, []).

http_packets(Type, Now, Bin, Acc) ->
    case erlang:decode_packet(Now, Bin, []) of
        {ok, Packet, Rest} -> http_packets(Type, http_next(Type, Now, Packet), Rest, [Packet | Acc]);
        {more, _} when Bin =:= <<>> -> lists:reverse(Acc);
        {more, _} -> error({http_packets, incomplete, Bin})
    end.

http_next(http, _, Line) when element(1, Line) =:= http_request; element(1, Line) =:= http_response -> httph;
http_next(http_bin, _, Line) when element(1, Line) =:= http_request; element(1, Line) =:= http_response -> httph_bin;
http_next(Type, _, http_eoh) -> Type;
http_next(_, Now, _) -> Now.

%% ?M as client with Extra options, in the group's receive mode.
open(Config, Extra) ->
    open(?M, Config, Extra).

open(Mod, Config, Extra) ->
    Active = case ?config(recv_mode, Config) of
                 passive -> false;
                 active -> true
             end,
    ?L:pair(Mod, client, ?config(pki, Config), [{active, Active} | Extra]).

%% What a receiver with {packet, Type} gets for a message framed by
%% rssl_socket_lib:frame/2.
framed_payload(line, M) -> <<M/binary, $\n>>;
framed_payload(_, M) -> M.

%% N packets in the group's receive mode.
recv_packets(Config, S, N) ->
    recv_packets(Config, S, N, []).

%% Fails with Info and what came so far.
recv_packets(Config, S, N, Info) ->
    recv_packets(?config(recv_mode, Config), S, N, Info, []).

recv_packets(_Mode, _S, 0, _Info, Acc) ->
    lists:reverse(Acc);
recv_packets(passive, S, N, Info, Acc) ->
    case ?M:recv(S, 0, ?T) of
        {ok, P} -> recv_packets(passive, S, N - 1, Info, [P | Acc]);
        Other -> ct:fail({recv, Other, Info, got_before, lists:reverse(Acc)})
    end;
recv_packets(active, S, N, Info, Acc) ->
    receive
        {ssl, S, P} -> recv_packets(active, S, N - 1, Info, [P | Acc]);
        {ssl_error, S, _} = E -> ct:fail({E, Info, got_before, lists:reverse(Acc)});
        {ssl_closed, S} = E -> ct:fail({E, Info, got_before, lists:reverse(Acc)})
    after ?T -> ct:fail({no_packet, Info, got_before, lists:reverse(Acc)})
    end.

%% Len bytes (raw mode) in the group's receive mode.
recv_bytes(Config, S, Len) ->
    case ?config(recv_mode, Config) of
        passive ->
            rssl_test_lib:recv_total(?M, S, Len);
        active ->
            active_bytes(S, Len, [])
    end.

active_bytes(_S, Len, Acc) when Len =< 0 ->
    iolist_to_binary(lists:reverse(Acc));
active_bytes(S, Len, Acc) ->
    receive
        {ssl, S, B} when is_binary(B), byte_size(B) > 0 -> active_bytes(S, Len - byte_size(B), [B | Acc]);
        {ssl, S, Other} -> ct:fail({unexpected_data, Other});
        {Tag, S} = M when Tag =:= ssl_closed; Tag =:= ssl_passive -> ct:fail({unexpected, M});
        {ssl_error, S, _} = M -> ct:fail({unexpected, M})
    after ?T -> ct:fail({missing_bytes, Len})
    end.

%% Sets Opts, then reads one packet (recv(S, N) when passive; one message
%% after {active, once} when active).
recv_one(Mod, passive, S, Opts, N) ->
    ok = Mod:setopts(S, Opts),
    case Mod:recv(S, N, ?T) of
        {ok, P} -> P;
        Other -> Other
    end;
recv_one(Mod, active, S, Opts, _N) ->
    ok = Mod:setopts(S, [{active, once} | Opts]),
    receive
        {ssl, S, P} -> P;
        {ssl_error, S, _} = E -> E
    after ?T -> timeout
    end.
