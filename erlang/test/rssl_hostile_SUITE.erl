%% Hostile peers against a server of the module under test (?M, rssl by
%% default): raw gen_tcp clients that send what no TLS client should, a
%% relay that rewrites or injects records around a real client, and
%% renegotiation floods. Each case checks the alert the server sends (its
%% level and description bytes, decoded from the wire: directly before the
%% handshake, by `openssl s_client -msg` once records are encrypted) and
%% that the same listener then completes a normal handshake.
%%
%% The alert each RFC requires (RFC 8446 for TLS 1.3, RFC 5246 for 1.2) is
%% the expectation; where OpenSSL 3.0 (rssl) or OTP's ssl answers
%% otherwise, expect/1 says so and why. Compile with {d, 'M', ssl}
%% (rebar3 as otp_ssl ct) to run the cases against OTP's ssl.
-module(rssl_hostile_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).

%% Alert descriptions (RFC 8446 section 6).
-define(UNEXPECTED_MESSAGE, 10).
-define(BAD_RECORD_MAC, 20).
-define(RECORD_OVERFLOW, 22).
-define(ILLEGAL_PARAMETER, 47).
-define(DECODE_ERROR, 50).
-define(INTERNAL_ERROR, 80).
-define(NO_RENEGOTIATION, 100).
-define(FATAL, 2).
-define(WARNING, 1).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([client_hello_cut_at_every_byte/1, client_hello_cut_then_silence/1,
         zero_length_handshake_record/1, plaintext_record_overflow/1,
         fragmented_client_hello/1, wrong_first_records/1,
         garbage_after_handshake/1, ciphertext_record_overflow/1,
         wrong_records_after_handshake/1,
         renegotiation_flood_otp/1, renegotiation_refused_when_disabled/1,
         renegotiation_flood_openssl/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [client_hello_cut_at_every_byte, client_hello_cut_then_silence,
     zero_length_handshake_record, plaintext_record_overflow, wrong_first_records,
     {group, 'tlsv1.3'}, {group, 'tlsv1.2'},
     renegotiation_flood_otp, renegotiation_refused_when_disabled,
     renegotiation_flood_openssl].

groups() ->
    Cases = [fragmented_client_hello, garbage_after_handshake,
             ciphertext_record_overflow, wrong_records_after_handshake],
    [{'tlsv1.3', [], Cases}, {'tlsv1.2', [], Cases}].

init_per_suite(Config) ->
    Config1 = rssl_socket_lib:init_suite(?M, Config),
    logger:add_primary_filter(?MODULE, {fun quiet_tls_reports/2, []}),
    Config1.

end_per_suite(_Config) ->
    logger:remove_primary_filter(?MODULE),
    ok.

%% OTP's ssl logs each alert it sends or receives; hundreds of them here.
quiet_tls_reports(#{msg := {report, #{alert := _}}}, _) -> stop;
quiet_tls_reports(#{meta := #{domain := [otp, ssl | _]}}, _) -> stop;
quiet_tls_reports(_, _) -> ignore.

init_per_group(Version, Config) -> [{tls_version, Version} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Before the handshake: raw bytes ------------------------------------------

%% A real ClientHello cut after every byte, each cut sent on its own
%% connection and followed by the TCP close: every handshake fails, none
%% is answered with a ServerHello, and the listener then completes a full
%% handshake.
client_hello_cut_at_every_byte(Config) ->
    Hello = client_hello(['tlsv1.3', 'tlsv1.2']),
    {L, Port} = listen(Config, []),
    Results = [begin
                   {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                   ok = gen_tcp:send(C, binary:part(Hello, 0, N)),
                   ok = gen_tcp:shutdown(C, write),
                   HS = accept(L),
                   Answer = read_until_closed(C),
                   ok = gen_tcp:close(C),
                   {N, HS, Answer}
               end || N <- lists:seq(1, byte_size(Hello) - 1)],
    ?assertEqual([], [R || {_, {ok, _}, _} = R <- Results]),
    %% Nothing, or an alert (a cut inside the record header is no record;
    %% a cut inside the body is a record the peer never finished).
    ?assertEqual([], [R || {_, _, {Bytes, _}} = R <- Results,
                           [T || {T, _} <- records(Bytes), T =/= 21] =/= []]),
    still_serving(L, Port).

%% A cut ClientHello and then nothing: the handshake ends at its timeout,
%% the server closes the connection, and the listener goes on.
client_hello_cut_then_silence(Config) ->
    Hello = client_hello(['tlsv1.3', 'tlsv1.2']),
    {L, Port} = listen(Config, []),
    [begin
         {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
         ok = gen_tcp:send(C, binary:part(Hello, 0, N)),
         {ok, T} = ?M:transport_accept(L, ?T),
         ?assertEqual({error, timeout}, ?M:handshake(T, 300)),
         {_, closed} = read_until_closed(C),
         ok = gen_tcp:close(C)
     end || N <- [1, 5, 9, byte_size(Hello) div 2, byte_size(Hello) - 1]],
    still_serving(L, Port).

%% RFC 8446 5.1 and RFC 5246 6.2.1 forbid sending a zero-length handshake
%% fragment but require nothing of the receiver: both OpenSSL and OTP skip
%% it, and the ClientHello after it gets the ServerHello.
zero_length_handshake_record(Config) ->
    Hello = client_hello(['tlsv1.3', 'tlsv1.2']),
    {L, Port} = listen(Config, []),
    Self = self(),
    Client = spawn_link(
               fun() ->
                       {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                       ok = gen_tcp:send(C, <<22, 3, 3, 0:16, Hello/binary>>),
                       Answer = gen_tcp:recv(C, 0, ?T),
                       ok = gen_tcp:close(C),
                       Self ! {self(), Answer}
               end),
    ?assertMatch({error, _}, accept(L)),   % the client leaves after the ServerHello
    receive
        {Client, Answer} ->
            ?assertMatch({ok, <<22, 3, 3, _:16, 2, _/binary>>}, Answer)   % ServerHello
    after ?T -> ct:fail(no_answer)
    end,
    still_serving(L, Port).

%% A plaintext record one byte over 2^14: record_overflow (RFC 8446 5.1,
%% RFC 5246 6.2.1).
plaintext_record_overflow(Config) ->
    Len = 16385,
    hostile_first_bytes(Config, <<22, 3, 3, Len:16, 0:(Len * 8)>>,
                        expect(plaintext_record_overflow)).

%% Records that cannot come first, each on its own connection.
wrong_first_records(Config) ->
    Cases = [%% A fatal handshake_failure alert before any handshake.
             {fatal_alert_first, <<21, 3, 3, 0, 2, 2, 40>>},
             %% A warning close_notify before any handshake.
             {warning_alert_first, <<21, 3, 3, 0, 2, 1, 0>>},
             %% An alert record of three bytes.
             {long_alert_first, <<21, 3, 3, 0, 3, 2, 40, 0>>},
             %% change_cipher_spec before the ClientHello: RFC 8446 5,
             %% unexpected_message.
             {ccs_first, <<20, 3, 3, 0, 1, 1>>},
             %% application_data before the handshake: unexpected_message.
             {application_data_first, <<23, 3, 3, 0, 5, "hello">>},
             %% A record type TLS does not define: unexpected_message
             %% (RFC 8446 5, RFC 5246 6).
             {unknown_type_first, <<99, 3, 3, 0, 1, 0>>},
             %% A client's Finished as the first message: unexpected_message.
             {finished_first, <<22, 3, 3, 0, 4, 20, 0, 0, 0>>},
             %% A ServerHello sent to a server: unexpected_message.
             {server_hello_first, <<22, 3, 3, 0, 4, 2, 0, 0, 0>>},
             %% A ClientHello claiming more bytes than its record holds and
             %% than any ClientHello may have.
             {oversized_hello_length, oversized_hello()},
             %% Plain HTTP to the TLS port: unexpected_message. (OpenSSL
             %% alone would close without an alert; rssl's engine sends
             %% it, as RFC 8446 5 and OTP do.)
             {http_request, <<"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n">>}],
    [hostile_first_bytes(Config, Bytes, expect(Name)) || {Name, Bytes} <- Cases].

%%% Relayed real clients --------------------------------------------------

%% A real ClientHello split into one-byte records must be accepted
%% (RFC 8446 5.1: handshake messages may be fragmented across records).
fragmented_client_hello(Config) ->
    V = ?config(tls_version, Config),
    Pki = ?config(pki, Config),
    {L, Port} = listen(Config, [{versions, [V]}]),
    Relay = relay(Port, fun one_byte_records/1),
    Client = rssl_test_lib:start_client(
               ssl, {127, 0, 0, 1}, relay_port(Relay),
               [{server_name_indication, "localhost"} | rssl_test_lib:client_opts(Pki, V, ca)],
               fun({ok, C}) ->
                       ok = ssl:send(C, <<"ping">>),
                       ssl:recv(C, 4, ?T);
                  (Error) ->
                       Error
               end),
    case {otp(), accept(L)} of
        {true, {error, {tls_alert, {handshake_failure, _}}}} ->
            %% OTP 25's ssl does not reassemble a ClientHello from
            %% one-byte records ("malformed_handshake_data").
            ?assertMatch({error, _}, rssl_test_lib:await(Client));
        {_, {ok, S}} ->
            ?assertEqual({ok, [{protocol, V}]}, ?M:connection_information(S, [protocol])),
            ?assertEqual({ok, <<"ping">>}, ?M:recv(S, 4, ?T)),
            ok = ?M:send(S, <<"pong">>),
            ?assertEqual({ok, <<"pong">>}, rssl_test_lib:await(Client)),
            ok = ?M:close(S)
    end,
    relay_stop(Relay),
    still_serving(L, Port).

%% Random bytes as an application_data record once keys are in use:
%% bad_record_mac (RFC 8446 5.2, RFC 5246 6.2.3.3).
garbage_after_handshake(Config) ->
    inject_after_handshake(Config, <<23, 3, 3, 100:16, (crypto:strong_rand_bytes(100))/binary>>,
                           {?FATAL, ?BAD_RECORD_MAC}).

%% A protected record one byte over its limit: record_overflow. TLS 1.3:
%% 2^14 + 256 (RFC 8446 5.2); TLS 1.2: 2^14 + 2048 (RFC 5246 6.2.3).
ciphertext_record_overflow(Config) ->
    Len = case ?config(tls_version, Config) of
              'tlsv1.3' -> 16384 + 256 + 1;
              'tlsv1.2' -> 16384 + 2048 + 1
          end,
    inject_after_handshake(Config, <<23, 3, 3, Len:16, 0:(Len * 8)>>,
                           expect({ciphertext_overflow, ?config(tls_version, Config)})).

%% After the handshake: a record type TLS does not define
%% (unexpected_message, RFC 8446 5 and RFC 5246 6), an empty
%% application_data record (no valid ciphertext is empty: bad_record_mac,
%% RFC 8446 5.2), and in TLS 1.3 a change_cipher_spec or an unprotected
%% alert (records after the handshake are protected: unexpected_message,
%% RFC 8446 5).
wrong_records_after_handshake(Config) ->
    V = ?config(tls_version, Config),
    inject_after_handshake(Config, <<99, 3, 3, 0, 1, 0>>, expect({unknown_type_after, V})),
    inject_after_handshake(Config, <<23, 3, 3, 0, 0>>, expect({empty_record_after, V})),
    case V of
        'tlsv1.3' ->
            inject_after_handshake(Config, <<20, 3, 3, 0, 1, 1>>,
                                   {?FATAL, ?UNEXPECTED_MESSAGE}),
            inject_after_handshake(Config, <<21, 3, 3, 0, 2, 1, 0>>,
                                   expect(plain_alert_after));
        'tlsv1.2' ->
            ok
    end.

%%% Renegotiation floods -------------------------------------------------------

%% An OTP ssl client renegotiates again and again (TLS 1.2): the first is
%% accepted, the ones after it within the window are refused with a
%% warning no_renegotiation alert (as OTP's ssl server does), the
%% connection still carries data both ways, and the listener goes on.
renegotiation_flood_otp(Config) ->
    Pki = ?config(pki, Config),
    {L, Port} = listen(Config, [{versions, ['tlsv1.2']}]),
    Client = rssl_test_lib:start_client(
               ssl, {127, 0, 0, 1}, Port,
               [{server_name_indication, "localhost"}
                | rssl_test_lib:client_opts(Pki, 'tlsv1.2', ca)],
               fun({ok, C}) ->
                       [begin
                            R = ssl:renegotiate(C),
                            ok = ssl:send(C, <<"ping">>),
                            {R, ssl:recv(C, 4, ?T)}
                        end || _ <- lists:seq(1, 10)]
               end),
    {ok, S} = accept(L),
    ok = echo(S, 10 * 4),
    [First | Rest] = rssl_test_lib:await(Client),
    ?assertEqual({ok, {ok, <<"ping">>}}, First),
    ?assertEqual([], [R || R <- Rest, R =/= {{error, renegotiation_rejected}, {ok, <<"ping">>}}]),
    ?M:close(S),
    still_serving(L, Port).

%% {client_renegotiation, false}: the first one is refused too.
renegotiation_refused_when_disabled(Config) ->
    Pki = ?config(pki, Config),
    {L, Port} = listen(Config, [{versions, ['tlsv1.2']}, {client_renegotiation, false}]),
    Client = rssl_test_lib:start_client(
               ssl, {127, 0, 0, 1}, Port,
               [{server_name_indication, "localhost"}
                | rssl_test_lib:client_opts(Pki, 'tlsv1.2', ca)],
               fun({ok, C}) ->
                       R = ssl:renegotiate(C),
                       ok = ssl:send(C, <<"ping">>),
                       {R, ssl:recv(C, 4, ?T)}
               end),
    {ok, S} = accept(L),
    ok = echo(S, 4),
    ?assertEqual({{error, renegotiation_rejected}, {ok, <<"ping">>}}, rssl_test_lib:await(Client)),
    ?M:close(S),
    still_serving(L, Port).

%% openssl s_client's "R" command (TLS 1.2), again as soon as each
%% renegotiation is through. The server accepts the first and answers the
%% next with the warning no_renegotiation alert, which OpenSSL's client
%% takes as fatal: the flood is cut off there, and the listener goes on.
renegotiation_flood_openssl(Config) ->
    Exe = rssl_tool_lib:exe("openssl"),
    {L, Port} = listen(Config, [{versions, ['tlsv1.2']}]),
    Tool0 = rssl_tool_lib:start(
              join([Exe, "s_client", "-connect", "127.0.0.1:" ++ integer_to_list(Port),
                    "-tls1_2", "-msg", "-CAfile", ca(Config), "-servername", "localhost"])),
    try
        {ok, S} = accept(L),
        %% The server reads so that it sees the ClientHellos.
        Self = self(),
        Reader = spawn_link(fun() -> Self ! {self(), echo(S, 1 bsl 30)} end),
        Tool = flood(Tool0, 1, 10),
        {_Status, Out} = rssl_tool_lib:wait_exit(Tool, ?T),
        receive {Reader, _} -> ok after ?T -> ct:fail(server_recv_did_not_end) end,
        ?M:close(S),
        ?assert(lists:member({?WARNING, ?NO_RENEGOTIATION}, s_client_alerts(Out))),
        %% The first handshake and one renegotiation: two server Finished.
        ?assertEqual(2, server_finished(Out)),
        still_serving(L, Port)
    after
        rssl_tool_lib:stop(Tool0)
    end.

%% Sends "R" and waits until that renegotiation is through (one more
%% server Finished) or s_client has ended; up to Max times.
flood(Tool, N, Max) when N > Max ->
    ct:fail({no_renegotiation_refused, Max, rssl_tool_lib:output(Tool)});
flood(Tool0, N, Max) ->
    port_command(maps:get(port, Tool0), <<"R\n">>),
    Deadline = erlang:monotonic_time(millisecond) + ?T,
    case wait_finished(Tool0, N + 1, Deadline) of
        {through, Tool} -> flood(Tool, N + 1, Max);
        {ended, Tool} -> Tool
    end.

wait_finished(Tool, Count, Deadline) ->
    Out = rssl_tool_lib:output(Tool),
    case server_finished(Out) >= Count of
        true -> {through, Tool};
        false ->
            Port = maps:get(port, Tool),
            Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
            receive
                {Port, {data, D}} -> wait_finished(Tool#{out := <<Out/binary, D/binary>>}, Count, Deadline);
                {Port, {exit_status, St}} -> {ended, Tool#{status := St}}
            after Left -> ct:fail({renegotiation_stuck, Out})
            end
    end.

server_finished(Out) ->
    case re:run(Out, "<<< TLS 1.2, Handshake \\[length [0-9a-f]+\\], Finished", [global]) of
        {match, M} -> length(M);
        nomatch -> 0
    end.

%%% Expectations ----------------------------------------------------------------

%% True when the module under test is OTP's ssl (its own deviations).
otp() -> ?M =:= ssl.

%% The alert the server sends for each case: {Level, Description}, or
%% none (the connection is closed without one).
expect(Case) -> expect(?M, Case).

expect(ssl, plaintext_record_overflow) ->
    %% OTP's ssl takes up to 2^14 + 2048 bytes in any record, so it waits
    %% for more after these; the TCP close ends it without an alert.
    none;
expect(_, plaintext_record_overflow) ->
    {?FATAL, ?RECORD_OVERFLOW};
expect(rssl, Alert) when Alert =:= fatal_alert_first; Alert =:= warning_alert_first;
                         Alert =:= long_alert_first ->
    %% OpenSSL 3.0 takes nothing but a handshake record before the first
    %% ClientHello, so it answers unexpected_message. (RFC 8446 6.2 asks
    %% only that a fatal alert close the connection; OTP closes silently.)
    {?FATAL, ?UNEXPECTED_MESSAGE};
expect(ssl, long_alert_first) ->
    %% OTP reads the first two bytes as the alert and closes.
    none;
expect(ssl, Alert) when Alert =:= fatal_alert_first; Alert =:= warning_alert_first ->
    none;
expect(ssl, server_hello_first) ->
    %% OTP: decode_error (it decodes before checking the state).
    {?FATAL, ?DECODE_ERROR};
expect(rssl, oversized_hello_length) ->
    %% RFC 8446 6.2 names decode_error for a wrong message length; OpenSSL
    %% checks the length against its limit for a ClientHello first and
    %% says illegal_parameter.
    {?FATAL, ?ILLEGAL_PARAMETER};
expect(ssl, oversized_hello_length) ->
    %% OTP: handshake_failure.
    {?FATAL, 40};
expect(rssl, {unknown_type_after, 'tlsv1.2'}) ->
    %% OpenSSL 3.0 decrypts a TLS 1.2 record before it looks at its type;
    %% a one-byte record is too short for AES-GCM's nonce and tag and it
    %% answers internal_error (RFC 5246 6: unexpected_message).
    {?FATAL, ?INTERNAL_ERROR};
expect(ssl, {ciphertext_overflow, 'tlsv1.3'}) ->
    %% OTP's ssl takes up to 2^14 + 2048 bytes in a TLS 1.3 record too, so
    %% it decrypts this one: bad_record_mac.
    {?FATAL, ?BAD_RECORD_MAC};
expect(_, {ciphertext_overflow, _}) ->
    {?FATAL, ?RECORD_OVERFLOW};
expect(rssl, {empty_record_after, 'tlsv1.2'}) ->
    %% OpenSSL 3.0 rejects a TLS 1.2 record too short for AES-GCM's nonce
    %% and tag as "publicly invalid" with internal_error.
    {?FATAL, ?INTERNAL_ERROR};
expect(_, {empty_record_after, _}) ->
    {?FATAL, ?BAD_RECORD_MAC};
expect(ssl, plain_alert_after) ->
    %% OTP's ssl tries to decrypt it: bad_record_mac.
    {?FATAL, ?BAD_RECORD_MAC};
expect(rssl, plain_alert_after) ->
    {?FATAL, ?UNEXPECTED_MESSAGE};
expect(_, {unknown_type_after, _}) ->
    {?FATAL, ?UNEXPECTED_MESSAGE};
expect(_, _) ->
    {?FATAL, ?UNEXPECTED_MESSAGE}.

%%% Helpers ---------------------------------------------------------------------

%% A ClientHello record from OTP's ssl client (any TLS client would do).
client_hello(Versions) ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    Client = spawn(fun() ->
                           ssl:connect({127, 0, 0, 1}, Port,
                                       [{verify, verify_none}, {versions, Versions}], ?T)
                   end),
    {ok, A} = gen_tcp:accept(L, ?T),
    {ok, <<22, _:16, Len:16>> = Header} = gen_tcp:recv(A, 5, ?T),
    {ok, Body} = gen_tcp:recv(A, Len, ?T),
    ok = gen_tcp:close(A),
    ok = gen_tcp:close(L),
    Ref = monitor(process, Client),
    receive {'DOWN', Ref, process, Client, _} -> ok after ?T -> ct:fail(client_hello_peer) end,
    <<Header/binary, Body/binary>>.

%% A ClientHello header that claims 2^24 - 1 bytes.
oversized_hello() ->
    Body = <<1, 255, 255, 255, 3, 3, (crypto:strong_rand_bytes(32))/binary>>,
    <<22, 3, 1, (byte_size(Body)):16, Body/binary>>.

listen(Config, Extra) ->
    Pki = ?config(pki, Config),
    Opts = rssl_test_lib:merge_opts(Extra, [binary, {active, false}, {reuseaddr, true}
                                            | rssl_test_pki:server_opts(Pki, server)]),
    {ok, L} = ?M:listen(0, Opts),
    {ok, {_, Port}} = ?M:sockname(L),
    {L, Port}.

accept(L) ->
    {ok, T} = ?M:transport_accept(L, ?T),
    ?M:handshake(T, ?T).

%% Sends Bytes as the first thing on a new connection, then reads what the
%% server sends until it closes: it must be exactly the expected alert (or
%% nothing), and the listener must go on.
hostile_first_bytes(Config, Bytes, Expected) ->
    {L, Port} = listen(Config, []),
    {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    ok = gen_tcp:send(C, Bytes),
    HS = accept(L),
    {Answer, Closed} = read_until_closed(C),
    ok = gen_tcp:close(C),
    ?assertEqual(closed, Closed),
    ?assertEqual({Bytes, expected(Expected)}, {Bytes, records(Answer)}),
    %% The server's own error names the alert it sent.
    case Expected of
        none ->
            ?assertMatch({error, _}, HS);
        {?FATAL, Desc} ->
            Name = alert_name(Desc),
            ?assertMatch({_, {error, {tls_alert, {Name, _}}}}, {Bytes, HS})
    end,
    still_serving(L, Port).

expected(none) -> [];
expected({Level, Desc}) -> [{21, <<Level, Desc>>}].

%% Everything the peer sends until it closes (or ?T passes): {Bytes,
%% closed | open}.
read_until_closed(C) ->
    read_until_closed(C, <<>>).
read_until_closed(C, Acc) ->
    case gen_tcp:recv(C, 0, ?T) of
        {ok, B} -> read_until_closed(C, <<Acc/binary, B/binary>>);
        {error, closed} -> {Acc, closed};
        {error, econnreset} -> {Acc, closed};
        {error, timeout} -> {Acc, open}
    end.

%% TLS records in Bin: [{Type, Body}] (a trailing partial record is kept
%% as {partial, Rest}).
records(<<Type, _:16, Len:16, Body:Len/binary, Rest/binary>>) ->
    [{Type, Body} | records(Rest)];
records(<<>>) -> [];
records(Rest) -> [{partial, Rest}].

%% The listener completes a handshake with a new OTP ssl client and echoes;
%% then it is closed.
still_serving(L, Port) ->
    Client = rssl_test_lib:start_client(
               ssl, {127, 0, 0, 1}, Port, [{verify, verify_none}, binary, {active, false}],
               fun({ok, C}) ->
                       ok = ssl:send(C, <<"still there?">>),
                       ssl:recv(C, 12, ?T);
                  (Error) ->
                       Error
               end),
    {ok, S} = accept(L),
    ok = echo(S, 12),
    ?assertEqual({ok, <<"still there?">>}, rssl_test_lib:await(Client)),
    ok = ?M:close(S),
    ok = ?M:close(L).

%% Echoes N bytes back, whatever the pieces.
echo(_S, 0) ->
    ok;
echo(S, N) ->
    case ?M:recv(S, 0, ?T) of
        {ok, D} ->
            ok = ?M:send(S, D),
            echo(S, N - byte_size(D));
        Error ->
            Error
    end.

%% An s_client (-msg: it prints every alert it receives, decrypted) talks
%% to ?M through a relay; once both sides have the handshake done and data
%% has crossed, Bytes are sent to the server as if from the client. The
%% server must fail with Alert, s_client must have received exactly that
%% alert, and the listener must go on.
inject_after_handshake(Config, Bytes, {Level, Desc} = Alert) ->
    Exe = rssl_tool_lib:exe("openssl"),
    V = ?config(tls_version, Config),
    {L, Port} = listen(Config, [{versions, [V]}]),
    Relay = relay(Port, none),
    Tool0 = rssl_tool_lib:start(
              join([Exe, "s_client", "-connect", "127.0.0.1:" ++ integer_to_list(relay_port(Relay)),
                    "-msg", "-CAfile", ca(Config), "-servername", "localhost",
                    case V of 'tlsv1.3' -> "-tls1_3"; 'tlsv1.2' -> "-tls1_2" end])),
    try
        {ok, S} = accept(L),
        ok = ?M:send(S, <<"ready\n">>),
        {ok, _, Tool1} = rssl_tool_lib:wait_output(Tool0, <<"ready\n">>, ?T),
        relay_inject(Relay, Bytes),
        Local = ?M:recv(S, 0, ?T),
        {_, Out} = rssl_tool_lib:wait_exit(Tool1, ?T),
        ?M:close(S),
        case {otp(), V, Local} of
            {true, _, {error, closed}} ->
                %% OTP's ssl may report s_client's close instead of the
                %% alert it sent (which s_client did receive).
                ok;
            _ ->
                ?assertEqual({Bytes, {error, alert_name(Desc)}},
                             {Bytes, case Local of
                                         {error, {tls_alert, {Name, _}}} -> {error, Name};
                                         Other -> Other
                                     end})
        end,
        ?assertEqual({Bytes, [Alert]}, {Bytes, s_client_alerts(Out)}),
        ?assertEqual(?FATAL, Level),
        relay_stop(Relay),
        still_serving(L, Port)
    after
        rssl_tool_lib:stop(Tool0)
    end.

alert_name(?UNEXPECTED_MESSAGE) -> unexpected_message;
alert_name(40) -> handshake_failure;
alert_name(?ILLEGAL_PARAMETER) -> illegal_parameter;
alert_name(?DECODE_ERROR) -> decode_error;
alert_name(?BAD_RECORD_MAC) -> bad_record_mac;
alert_name(?RECORD_OVERFLOW) -> record_overflow;
alert_name(?INTERNAL_ERROR) -> internal_error.

%% The alerts s_client -msg says it received: [{Level, Description}],
%% from the hex bytes it prints under each "<<< ... Alert" line.
s_client_alerts(Out) ->
    case re:run(Out, "<<< [^\n]*Alert \\[length 0002\\][^\n]*\n +([0-9a-f]{2}) ([0-9a-f]{2})",
                [global, {capture, all_but_first, binary}]) of
        {match, Found} -> [{binary_to_integer(A, 16), binary_to_integer(B, 16)} || [A, B] <- Found];
        nomatch -> []
    end.

%% One-byte handshake records carrying the first record's content.
one_byte_records(<<22, Version:2/binary, _Len:16, Body/binary>>) ->
    << <<22, Version/binary, 1:16, B>> || <<B>> <= Body >>.

%%% A relay in front of the server --------------------------------------------

%% Accepts one client and relays both ways to Target; Rewrite (or none)
%% replaces the client's first record; relay_inject/2 sends bytes to the
%% server as if from the client.
relay(Target, Rewrite) ->
    Self = self(),
    Pid = spawn_link(
            fun() ->
                    {ok, LS} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
                    {ok, Port} = inet:port(LS),
                    Self ! {self(), port, Port},
                    {ok, A} = gen_tcp:accept(LS, ?T),
                    ok = gen_tcp:close(LS),
                    {ok, B} = gen_tcp:connect({127, 0, 0, 1}, Target, [binary, {active, false}]),
                    case Rewrite of
                        none ->
                            ok;
                        Fun ->
                            {ok, <<22, _:16, Len:16>> = Hdr} = gen_tcp:recv(A, 5, ?T),
                            {ok, Body} = gen_tcp:recv(A, Len, ?T),
                            ok = gen_tcp:send(B, Fun(<<Hdr/binary, Body/binary>>))
                    end,
                    ok = inet:setopts(A, [{active, true}]),
                    ok = inet:setopts(B, [{active, true}]),
                    relay_loop(A, B)
            end),
    receive
        {Pid, port, Port} -> {Pid, Port}
    after ?T -> ct:fail(relay_not_listening)
    end.

relay_port({_, Port}) -> Port.

relay_loop(A, B) ->
    receive
        {tcp, A, Data} -> _ = gen_tcp:send(B, Data), relay_loop(A, B);
        {tcp, B, Data} -> _ = gen_tcp:send(A, Data), relay_loop(A, B);
        {inject, From, Data} -> From ! {self(), gen_tcp:send(B, Data)}, relay_loop(A, B);
        {tcp_closed, _} -> gen_tcp:close(A), gen_tcp:close(B), relay_idle();
        {tcp_error, _, _} -> gen_tcp:close(A), gen_tcp:close(B), relay_idle();
        stop -> gen_tcp:close(A), gen_tcp:close(B)
    end.

relay_idle() ->
    receive stop -> ok end.

relay_inject({Pid, _}, Data) ->
    Pid ! {inject, self(), Data},
    receive {Pid, ok} -> ok after ?T -> ct:fail(inject_failed) end.

relay_stop({Pid, _}) ->
    unlink(Pid),
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, process, Pid, _} -> ok after ?T -> ok end.

ca(Config) ->
    #{ca := #{cert := Ca}} = ?config(pki, Config),
    Ca.

join(Words) ->
    lists:join(" ", [rssl_tool_lib:q(W) || W <- Words]).
