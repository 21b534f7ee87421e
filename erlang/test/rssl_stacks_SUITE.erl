%% Every TLS stack on the machine against the module under test (?M, rssl
%% by default), in both roles, over TLS 1.3 and 1.2: OpenSSL's s_client and
%% s_server, GnuTLS's gnutls-cli and gnutls-serv, curl, Python's ssl
%% module (rssl_stacks_SUITE_data/tls_peer.py) and OTP's ssl.
%%
%% Each case: the handshake (the peer verifies ?M's certificate, or ?M the
%% peer's), data both ways compared byte for byte, and the negotiated
%% version read on the ?M side with connection_information/2. gnutls-cli
%% and the Python client half-close: they send their request
%% and then close_notify, and still expect the whole answer (RFC 8446
%% section 6.1; OTP's ssl answers them).
%%
%% The programs run as ports with deadlines (rssl_tool_lib); a missing one
%% fails its case naming the package (.ci/setup installs them).
%% Compile with {d, 'M', ssl} (rebar3 as otp_ssl ct) to run every case
%% against OTP's ssl instead: they must all pass that way too.
-module(rssl_stacks_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 20000).
-define(SIZE, 100000).

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([openssl_client/1, openssl_server/1, gnutls_client_half_close/1, gnutls_server/1,
         curl_client/1, python_client_half_close/1, python_server/1,
         otp_client/1, otp_server/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [{group, 'tlsv1.3'}, {group, 'tlsv1.2'}].

groups() ->
    Cases = [openssl_client, openssl_server, gnutls_client_half_close, gnutls_server,
             curl_client, python_client_half_close, python_server,
             otp_client, otp_server],
    [{'tlsv1.3', [], Cases}, {'tlsv1.2', [], Cases}].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_group(Version, Config) -> [{tls_version, Version} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% ?M as server ------------------------------------------------------------

%% openssl s_client: sends the request from its stdin, keeps reading after
%% its input ends (-quiet implies -ign_eof) until ?M closes.
openssl_client(Config) ->
    Exe = rssl_tool_lib:exe("openssl"),
    {Req, Out} = client_files(Config),
    Cmd = fun(Port) ->
                  join([Exe, "s_client", "-connect", "127.0.0.1:" ++ integer_to_list(Port),
                        "-servername", "localhost", "-verify_hostname", "localhost",
                        "-verify_return_error", "-CAfile", ca(Config), openssl_version(Config),
                        "-quiet", "<", Req, ">", Out])
          end,
    Reply = serve(Config, Cmd, fun(S) -> echo_request(S, Req) end),
    rssl_test_lib:assert_same(Reply, read(Out)).

%% gnutls-cli sends its stdin; at its end it half-closes (gnutls_bye with
%% GNUTLS_SHUT_WR) and prints what comes back until ?M's close_notify,
%% between its own status lines.
gnutls_client_half_close(Config) ->
    Exe = rssl_tool_lib:exe("gnutls-cli"),
    {Req, Out} = client_files(Config),
    Cmd = fun(Port) ->
                  join([Exe, "--x509cafile", ca(Config), "--verify-hostname", "localhost",
                        "--priority", gnutls_priority(Config), "-p", integer_to_list(Port),
                        "127.0.0.1", "<", Req, ">", Out])
          end,
    Reply = serve(Config, Cmd, fun(S) -> echo_request(S, Req) end),
    Printed = read(Out),
    {Start, _} = binary:match(Printed, <<"- Simple Client Mode:\n\n">>),
    {End, _} = lists:last(binary:matches(Printed, <<"- Peer has closed the GnuTLS connection">>)),
    From = Start + byte_size(<<"- Simple Client Mode:\n\n">>),
    rssl_test_lib:assert_same(Reply, binary:part(Printed, From, End - From)).

%% curl POSTs the request over HTTPS and saves the response body.
curl_client(Config) ->
    Exe = rssl_tool_lib:exe("curl"),
    {Req, Out} = client_files(Config),
    Ver = case ?config(tls_version, Config) of
              'tlsv1.3' -> ["--tlsv1.3", "--tls-max", "1.3"];
              'tlsv1.2' -> ["--tlsv1.2", "--tls-max", "1.2"]
          end,
    Cmd = fun(Port) ->
                  P = integer_to_list(Port),
                  join([Exe, "-sS", "--fail", "--cacert", ca(Config),
                        "--resolve", "localhost:" ++ P ++ ":127.0.0.1"] ++ Ver ++
                           ["-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                            "--data-binary", "@" ++ Req, "-o", Out,
                            "https://localhost:" ++ P ++ "/echo"])
          end,
    Reply = serve(Config, Cmd, fun(S) -> http_echo(S, Req) end),
    rssl_test_lib:assert_same(Reply, read(Out)).

%% Python's ssl: sends, half-closes (close_notify, reading on), saves the
%% answer.
python_client_half_close(Config) ->
    Exe = rssl_tool_lib:exe("python3"),
    {Req, Out} = client_files(Config),
    Cmd = fun(Port) ->
                  join([Exe, script(Config), "client", "--version", python_version(Config),
                        "--port", integer_to_list(Port), "--cafile", ca(Config),
                        "--send", Req, "--out", Out, "--half-close"])
          end,
    Reply = serve(Config, Cmd, fun(S) -> echo_request(S, Req) end),
    rssl_test_lib:assert_same(Reply, read(Out)).

%% OTP's ssl: sends, reads the answer until ?M closes. (Not a half-close:
%% ssl:shutdown(S, write) also ends the TCP write side, after which OTP's
%% own server refuses to send, so OTP's ssl does not define that case.)
otp_client(Config) ->
    V = ?config(tls_version, Config),
    Pki = ?config(pki, Config),
    ReqData = crypto:strong_rand_bytes(?SIZE),
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | rssl_test_lib:server_opts(Pki, V, server)]),
    {ok, {_, Port}} = ?M:sockname(L),
    Client = rssl_test_lib:start_client(
               ssl, {127, 0, 0, 1}, Port,
               [{server_name_indication, "localhost"} | rssl_test_lib:client_opts(Pki, V, ca)],
               fun({ok, C}) ->
                       ok = ssl:send(C, ReqData),
                       rssl_test_lib:recv_until_closed(ssl, C)
               end),
    {ok, T} = ?M:transport_accept(L, ?T),
    {ok, S} = ?M:handshake(T, ?T),
    ok = ?M:close(L),
    ?assertEqual({ok, [{protocol, V}]}, ?M:connection_information(S, [protocol])),
    rssl_test_lib:assert_same(ReqData, rssl_test_lib:recv_total(?M, S, ?SIZE)),
    Reply = crypto:strong_rand_bytes(?SIZE),
    ok = ?M:send(S, Reply),
    ok = ?M:close(S),
    {Got, Last} = rssl_test_lib:await(Client),
    ?assertEqual({error, closed}, Last),
    rssl_test_lib:assert_same(Reply, Got).

%%% ?M as client ------------------------------------------------------------

%% openssl s_server -rev sends each line back reversed.
openssl_server(Config) ->
    Exe = rssl_tool_lib:exe("openssl"),
    #{server := #{cert := Cert, key := Key}} = ?config(pki, Config),
    Tool0 = rssl_tool_lib:start(
              join([Exe, "s_server", "-accept", "127.0.0.1:0", "-cert", Cert, "-key", Key,
                    openssl_version(Config), "-rev", "-naccept", "1"])),
    {ok, PortBin, Tool} = rssl_tool_lib:wait_output(Tool0, re("ACCEPT 127.0.0.1:(\\d+)\n"), ?T),
    try
        Lines = [base64:encode(crypto:strong_rand_bytes(48)) || _ <- lists:seq(1, 1500)],
        Req = iolist_to_binary([[L, $\n] || L <- Lines]),
        Expected = iolist_to_binary([[reverse(L), $\n] || L <- Lines]),
        S = connect(Config, binary_to_integer(PortBin)),
        ok = ?M:send(S, Req),
        rssl_test_lib:assert_same(Expected, rssl_test_lib:recv_total(?M, S, byte_size(Expected))),
        ok = ?M:close(S),
        {0, Printed} = rssl_tool_lib:wait_exit(Tool, ?T),
        ?assertMatch({match, _}, re:run(Printed, "Protocol version: " ++ tool_version(Config)))
    after
        rssl_tool_lib:stop(Tool)
    end.

%% gnutls-serv --echo (--crlf: line ends unchanged) sends everything back.
gnutls_server(Config) ->
    Exe = rssl_tool_lib:exe("gnutls-serv"),
    #{server := #{cert := Cert, key := Key}} = ?config(pki, Config),
    Tool = rssl_tool_lib:start(
             join([Exe, "--echo", "--crlf", "-q", "--disable-client-cert",
                   "--x509certfile", Cert, "--x509keyfile", Key,
                   "--priority", gnutls_priority(Config), "-p", "0"])),
    try
        Port = rssl_tool_lib:listening_port(Tool, ?T),
        %% Its echo treats data as C strings (a NUL byte ends it): text.
        S = connect(Config, Port),
        Req = text_lines(1500),
        ok = ?M:send(S, Req),
        rssl_test_lib:assert_same(Req, rssl_test_lib:recv_total(?M, S, byte_size(Req))),
        ok = ?M:close(S)
    after
        rssl_tool_lib:stop(Tool)
    end.

%% The Python server echoes until ?M's close_notify.
python_server(Config) ->
    Exe = rssl_tool_lib:exe("python3"),
    #{server := #{cert := Cert, key := Key}} = ?config(pki, Config),
    Tool0 = rssl_tool_lib:start(
              join([Exe, script(Config), "server", "--version", python_version(Config),
                    "--cert", Cert, "--key", Key])),
    {ok, PortBin, Tool} = rssl_tool_lib:wait_output(Tool0, re("PORT (\\d+)\n"), ?T),
    try
        echo_through(Config, binary_to_integer(PortBin)),
        {0, Printed} = rssl_tool_lib:wait_exit(Tool, ?T),
        ?assertMatch({match, _}, re:run(Printed, "VERSION " ++ tool_version(Config)))
    after
        rssl_tool_lib:stop(Tool)
    end.

%% OTP's ssl server echoing.
otp_server(Config) ->
    V = ?config(tls_version, Config),
    Pki = ?config(pki, Config),
    {S, Peer} = rssl_test_lib:open(?M, client,
                                   [{server_name_indication, "localhost"}
                                    | rssl_test_lib:client_opts(Pki, V, ca)],
                                   ssl, rssl_test_lib:server_opts(Pki, V, server), #{}),
    ?assertEqual({ok, [{protocol, V}]}, ?M:connection_information(S, [protocol])),
    Req = crypto:strong_rand_bytes(?SIZE),
    ok = rssl_test_lib:request(Peer, {fn, fun(Mod, P) ->
                                                  Got = rssl_test_lib:recv_total(Mod, P, ?SIZE),
                                                  Mod:send(P, Got)
                                          end}),
    ok = ?M:send(S, Req),
    rssl_test_lib:assert_same(Req, rssl_test_lib:recv_total(?M, S, ?SIZE)),
    ok = rssl_test_lib:reply(Peer),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%%% Helpers -------------------------------------------------------------------

%% ?M listens; Cmd(Port) runs the client program; Handle(S) serves the one
%% connection and returns the reply it sent. The program must then exit 0.
serve(Config, Cmd, Handle) ->
    V = ?config(tls_version, Config),
    Pki = ?config(pki, Config),
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | rssl_test_lib:server_opts(Pki, V, server)]),
    {ok, {_, Port}} = ?M:sockname(L),
    Tool = rssl_tool_lib:start(Cmd(Port)),
    try
        S = case ?M:transport_accept(L, ?T) of
                {ok, T} ->
                    case ?M:handshake(T, ?T) of
                        {ok, S0} -> S0;
                        HsError -> ct:fail({handshake, HsError, rssl_tool_lib:stop(Tool)})
                    end;
                AccError ->
                    ct:fail({transport_accept, AccError, rssl_tool_lib:stop(Tool)})
            end,
        ok = ?M:close(L),
        ?assertEqual({ok, [{protocol, V}]}, ?M:connection_information(S, [protocol])),
        Reply = Handle(S),
        ok = ?M:close(S),
        case rssl_tool_lib:wait_exit(Tool, ?T) of
            {0, _} -> Reply;
            {Status, Printed} -> ct:fail({client_failed, Status, Printed})
        end
    after
        rssl_tool_lib:stop(Tool),
        catch ?M:close(L)
    end.

%% Reads the whole request (the file's bytes), then answers ?SIZE random
%% bytes. With a half-closing client the request is followed by its
%% close_notify: the answer must still go out.
echo_request(S, ReqFile) ->
    Req = read(ReqFile),
    rssl_test_lib:assert_same(Req, rssl_test_lib:recv_total(?M, S, byte_size(Req))),
    Reply = crypto:strong_rand_bytes(?SIZE),
    case ?M:send(S, Reply) of
        ok -> Reply;
        Error -> ct:fail({send_after_request, Error})
    end.

%% A minimal HTTP/1.1 server for curl: reads the headers and the body of
%% its POST, checks the body, answers with a random body.
http_echo(S, ReqFile) ->
    Req = read(ReqFile),
    {Head, Body0} = read_head(S, <<>>),
    {match, [Len]} = re:run(Head, "(?i)\r\ncontent-length: *(\\d+)\r\n",
                            [{capture, all_but_first, binary}]),
    Length = binary_to_integer(Len),
    ?assertEqual(byte_size(Req), Length),
    Body = case Length - byte_size(Body0) of
               0 -> Body0;
               Rest -> <<Body0/binary, (rssl_test_lib:recv_total(?M, S, Rest))/binary>>
           end,
    rssl_test_lib:assert_same(Req, Body),
    Reply = crypto:strong_rand_bytes(?SIZE),
    ok = ?M:send(S, ["HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Connection: close\r\nContent-Length: ", integer_to_list(?SIZE),
                     "\r\n\r\n", Reply]),
    Reply.

read_head(S, Acc) ->
    case binary:split(Acc, <<"\r\n\r\n">>) of
        [Head, Rest] ->
            {<<Head/binary, "\r\n">>, Rest};
        [_] ->
            {ok, More} = ?M:recv(S, 0, ?T),
            read_head(S, <<Acc/binary, More/binary>>)
    end.

%% ?M connects to a server program on Port, sends ?SIZE random bytes and
%% expects them back, then closes.
echo_through(Config, Port) ->
    S = connect(Config, Port),
    Req = crypto:strong_rand_bytes(?SIZE),
    ok = ?M:send(S, Req),
    rssl_test_lib:assert_same(Req, rssl_test_lib:recv_total(?M, S, ?SIZE)),
    ok = ?M:close(S).

connect(Config, Port) ->
    V = ?config(tls_version, Config),
    Opts = [{server_name_indication, "localhost"}
            | rssl_test_lib:client_opts(?config(pki, Config), V, ca)],
    {ok, S} = ?M:connect({127, 0, 0, 1}, Port, Opts, ?T),
    ?assertEqual({ok, [{protocol, V}]}, ?M:connection_information(S, [protocol])),
    S.

client_files(Config) ->
    Req = rssl_tool_lib:write_temp(Config, "request", crypto:strong_rand_bytes(?SIZE)),
    Out = rssl_tool_lib:write_temp(Config, "answer", <<>>),
    {Req, Out}.

read(Path) ->
    {ok, Data} = file:read_file(Path),
    Data.

ca(Config) ->
    #{ca := #{cert := Ca}} = ?config(pki, Config),
    Ca.

script(Config) ->
    filename:join(?config(data_dir, Config), "tls_peer.py").

openssl_version(Config) ->
    case ?config(tls_version, Config) of
        'tlsv1.3' -> "-tls1_3";
        'tlsv1.2' -> "-tls1_2"
    end.

gnutls_priority(Config) ->
    case ?config(tls_version, Config) of
        'tlsv1.3' -> "NORMAL:-VERS-ALL:+VERS-TLS1.3";
        'tlsv1.2' -> "NORMAL:-VERS-ALL:+VERS-TLS1.2"
    end.

python_version(Config) ->
    case ?config(tls_version, Config) of
        'tlsv1.3' -> "1.3";
        'tlsv1.2' -> "1.2"
    end.

tool_version(Config) ->
    case ?config(tls_version, Config) of
        'tlsv1.3' -> "TLSv1.3";
        'tlsv1.2' -> "TLSv1.2"
    end.

%% N lines of random base64.
text_lines(N) ->
    iolist_to_binary([[base64:encode(crypto:strong_rand_bytes(48)), $\n] || _ <- lists:seq(1, N)]).

reverse(Bin) -> list_to_binary(lists:reverse(binary_to_list(Bin))).

re(Pattern) ->
    {ok, Re} = re:compile(Pattern),
    Re.

%% A shell command line: words quoted, redirections left as they are.
join(Words) ->
    lists:join(" ", [case W of
                         "<" -> W;
                         ">" -> W;
                         _ -> rssl_tool_lib:q(W)
                     end || W <- Words]).
