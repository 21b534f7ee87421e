%% @doc `make demo': an rssl server and an rssl client exchange data over
%% TLS 1.3 and TLS 1.2 on loopback, and print what was negotiated.
-module(rssl_demo).
-export([run/0]).

-include_lib("public_key/include/public_key.hrl").

-spec run() -> ok.
run() ->
    ok = rssl:start(),
    {ServerOpts, ClientOpts} = test_credentials(),
    lists:foreach(fun(Version) -> exchange(Version, ServerOpts, ClientOpts) end,
                  ['tlsv1.3', 'tlsv1.2']).

exchange(Version, ServerOpts, ClientOpts) ->
    {ok, Listen} = rssl:listen(0, [binary, {active, false}, {reuseaddr, true},
                                   {versions, [Version]} | ServerOpts]),
    {ok, {_, Port}} = rssl:sockname(Listen),
    Parent = self(),
    Server = spawn_link(fun() -> echo_once(Listen, Parent) end),
    {ok, Socket} = rssl:connect("localhost", Port,
                                [binary, {active, false}, {verify, verify_peer},
                                 {server_name_indication, "localhost"} | ClientOpts],
                                5000),
    Message = <<"hello over TLS from rssl">>,
    ok = rssl:send(Socket, Message),
    {ok, Echo} = rssl:recv(Socket, byte_size(Message), 5000),
    {ok, Info} = rssl:connection_information(Socket, [protocol, selected_cipher_suite]),
    {ok, [{openssl_name, Name}]} = rssl:connection_information(Socket, [openssl_name]),
    io:format("~-8s ~s: sent ~p, got back ~p~n         cipher ~s ~p~n",
              [Version, "client", Message, Echo, Name,
               proplists:get_value(selected_cipher_suite, Info)]),
    ok = rssl:close(Socket),
    receive {Server, done} -> ok end,
    ok = rssl:close(Listen).

echo_once(Listen, Parent) ->
    {ok, Accepted} = rssl:transport_accept(Listen, 5000),
    {ok, Socket} = rssl:handshake(Accepted, 5000),
    {ok, Data} = rssl:recv(Socket, 0, 5000),
    ok = rssl:send(Socket, Data),
    {ok, [{protocol, Protocol}]} = rssl:connection_information(Socket, [protocol]),
    io:format("~-8s server: echoed ~p bytes (negotiated ~p)~n",
              [Protocol, byte_size(Data), Protocol]),
    {error, closed} = rssl:recv(Socket, 0, 5000),
    ok = rssl:close(Socket),
    Parent ! {self(), done}.

%% A throwaway CA and certificates, made by public_key for this run only.
test_credentials() ->
    Key = {namedCurve, secp256r1},
    #{server_config := Server, client_config := Client} =
        public_key:pkix_test_data(
          #{server_chain => #{root => [{key, Key}, {digest, sha256}], intermediates => [],
                              peer => [{key, Key}, {digest, sha256},
                                       {extensions,
                                        [{'Extension', ?'id-ce-subjectAltName', false,
                                          [{dNSName, "localhost"}]}]}]},
            client_chain => #{root => [{key, Key}, {digest, sha256}], intermediates => [],
                              peer => [{key, Key}, {digest, sha256}]}}),
    {Server, Client}.
