%% A TLS echo through rssl in the scratch project: a server and a client in
%% one VM, a real handshake (the client verifies the server's certificate),
%% payloads echoed and compared, then the close seen by the server.
%% Prints "dep_echo: ok ..." and exits 0, or exits 1 saying what broke.
-module(dep_echo).
-export([main/1]).

%% A guard against a hang, not a timing: every step normally takes
%% milliseconds.
-define(DEADLINE, 60000).

main([CertDir]) ->
    try run(CertDir) of
        Version ->
            io:format("dep_echo: ok (~p)~n", [Version]),
            halt(0)
    catch Class:Reason:Stack ->
        io:format("dep_echo: FAILED ~p:~p~n~p~n", [Class, Reason, Stack]),
        halt(1)
    end.

run(CertDir) ->
    ok = rssl:start(),
    Cert = filename:join(CertDir, "cert.pem"),
    {ok, Listen} = rssl:listen(0, [binary, {active, false}, {reuseaddr, true},
                                   {certfile, Cert},
                                   {keyfile, filename:join(CertDir, "key.pem")}]),
    {ok, {_, Port}} = rssl:sockname(Listen),
    Parent = self(),
    Server = spawn_link(fun() -> serve(Listen, Parent) end),
    {ok, Socket} = rssl:connect("localhost", Port,
                                [binary, {active, false}, {verify, verify_peer},
                                 {cacertfile, Cert},
                                 {server_name_indication, "localhost"}],
                                ?DEADLINE),
    %% Several TLS records' worth in the middle one.
    Payloads = [<<"hello">>, crypto:strong_rand_bytes(100000), <<"bye">>],
    lists:foreach(fun(P) -> echo(Socket, P) end, Payloads),
    {ok, [{protocol, Version}]} = rssl:connection_information(Socket, [protocol]),
    ok = rssl:close(Socket),
    Total = lists:sum([byte_size(P) || P <- Payloads]),
    receive
        {Server, closed, Total} -> ok;
        {Server, closed, Other} -> error({server_echoed, Other, expected, Total})
    after ?DEADLINE -> error(server_saw_no_close)
    end,
    ok = rssl:close(Listen),
    Version.

echo(Socket, Payload) ->
    ok = rssl:send(Socket, Payload),
    case rssl:recv(Socket, byte_size(Payload), ?DEADLINE) of
        {ok, Payload} -> ok;
        Other -> error({echo_mismatch, byte_size(Payload), Other})
    end.

serve(Listen, Parent) ->
    {ok, Transport} = rssl:transport_accept(Listen, ?DEADLINE),
    {ok, Socket} = rssl:handshake(Transport, ?DEADLINE),
    echo_loop(Socket, Parent, 0).

echo_loop(Socket, Parent, Echoed) ->
    case rssl:recv(Socket, 0, ?DEADLINE) of
        {ok, Data} ->
            ok = rssl:send(Socket, Data),
            echo_loop(Socket, Parent, Echoed + byte_size(Data));
        {error, closed} ->
            Parent ! {self(), closed, Echoed}
    end.
