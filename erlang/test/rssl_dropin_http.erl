%% A small HTTP/1.1-over-TLS server and client written against the `ssl'
%% API, with the module (`ssl' or `rssl') as a parameter: the calls that
%% ranch and cowboy (listen, transport_accept, handshake/2,3,
%% controlling_process, active once), gun (active once, setopts), hackney
%% and Mint (connect/3,4, passive recv/3, negotiated_protocol, peercert,
%% connection_information, cipher suite helpers) make. Both sides return
%% what they saw as a list of `{Step, Result}' observations, with what
%% differs between runs (ports, byte counts, random bytes) replaced by its
%% shape, so the observations of two runs can be compared field by field.
-module(rssl_dropin_http).

-export([start_server/2, server_port/1, server_observations/1, stop_server/1,
         client/4, ciphers/2, shape/1]).

-define(T, 10000).

%%% Server (ranch-like: a listener, an acceptor, a process per connection) --

%% Starts a server with module Mod; TLS options Opts. Returns a handle.
start_server(Mod, Opts) ->
    Parent = self(),
    Pid = spawn_link(fun() -> listener(Parent, Mod, Opts) end),
    receive
        {Pid, listening, Port, Obs} -> #{pid => Pid, port => Port, listen_obs => Obs}
    after ?T -> error(server_not_listening)
    end.

server_port(#{port := Port}) -> Port.

%% The observations of the next connection the server finished.
server_observations(#{pid := Pid}) ->
    receive {Pid, connection, Obs} -> Obs
    after 2 * ?T -> error(no_server_observations)
    end.

stop_server(#{pid := Pid}) ->
    unlink(Pid),
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, process, Pid, _} -> ok end.

listener(Parent, Mod, Opts) ->
    {ok, L} = Mod:listen(0, [binary, {active, false}, {reuseaddr, true},
                             {alpn_preferred_protocols, [<<"h2">>, <<"http/1.1">>]} | Opts]),
    {ok, {_, Port}} = Mod:sockname(L),
    Obs = [{listen_getopts, Mod:getopts(L, [mode, active, packet])},
           %% ranch polls its acceptor with a timeout: nothing is waiting.
           {transport_accept_timeout, Mod:transport_accept(L, 0)}],
    Parent ! {self(), listening, Port, Obs},
    accept_loop(Parent, Mod, L, 1).

%% Connection N is handshaken with handshake/2 when N is odd, with
%% handshake/3 (options added at the handshake, as ranch does) when even.
accept_loop(Parent, Mod, L, N) ->
    Self = self(),
    receive
        stop -> ok = Mod:close(L)
    after 0 ->
        case Mod:transport_accept(L, 200) of
            {ok, T} ->
                Conn = spawn_link(fun() -> connection(Self, Parent, Mod, N) end),
                ok = Mod:controlling_process(T, Conn),
                Conn ! {go, T},
                accept_loop(Parent, Mod, L, N + 1);
            {error, timeout} ->
                accept_loop(Parent, Mod, L, N)
        end
    end.

connection(Listener, Parent, Mod, N) ->
    T = receive {go, Sock} -> Sock end,
    HS = case N rem 2 of
             1 -> Mod:handshake(T, ?T);
             0 -> Mod:handshake(T, [{alpn_preferred_protocols, [<<"http/1.1">>]}], ?T)
         end,
    Obs = case HS of
              {ok, S} -> serve(Mod, S);
              {error, Reason} -> [{handshake, {error, shape(Reason)}}]
          end,
    Parent ! {Listener, connection, Obs}.

serve(Mod, S) ->
    Info = [{negotiated_protocol, Mod:negotiated_protocol(S)},
            {connection_information,
             Mod:connection_information(S, [protocol, selected_cipher_suite, sni_hostname])},
            {peercert, Mod:peercert(S)},
            {peername, shape(Mod:peername(S))},
            {sockname, shape(Mod:sockname(S))},
            {getopts, Mod:getopts(S, [mode, active, packet, packet_size, header])}],
    Requests = serve_requests(Mod, S, <<>>, []),
    Info ++ Requests.

%% As cowboy: {active, once}, then parse what came, until the client asks
%% to close (or goes).
serve_requests(Mod, S, Buffer, Acc) ->
    case parse_request(Buffer) of
        {ok, Request, Rest} ->
            #{method := Method, path := Path, headers := Headers, body := Body} = Request,
            Close = lists:member({<<"connection">>, <<"close">>}, Headers),
            Reply = response(200, [{<<"x-path">>, Path}], <<Method/binary, " ", Body/binary>>, Close),
            Sent = Mod:send(S, Reply),
            Seen = {request, Method, Path, Body, Sent},
            case Close of
                true -> lists:reverse([Seen | Acc]) ++ close_after_response(Mod, S);
                false -> serve_requests(Mod, S, Rest, [Seen | Acc])
            end;
        more ->
            case next_message(Mod, S) of
                {data, Data} -> serve_requests(Mod, S, <<Buffer/binary, Data/binary>>, Acc);
                Other -> lists:reverse([{Other, Buffer} | Acc])
            end
    end.

%% The next message of an {active, once} socket: {data, Data}, closed,
%% {ssl_error, Reason} or timeout. A socket the peer closed before setopts
%% says so at setopts, or by a message after it (which of the two depends
%% on timing): both are `closed'.
next_message(Mod, S) ->
    case Mod:setopts(S, [{active, once}]) of
        ok ->
            receive
                {ssl, S, Data} -> {data, Data};
                {ssl_closed, S} -> closed;
                {ssl_error, S, Reason} -> {ssl_error, shape(Reason)}
            after ?T -> timeout
            end;
        {error, closed} ->
            closed
    end.

%% The server half-closes (close_notify) and waits for the client to close.
close_after_response(Mod, S) ->
    Shut = Mod:shutdown(S, write),
    Closed = next_message(Mod, S),
    [{shutdown_write, Shut}, {client_close_seen, Closed},
     {close, Mod:close(S)},
     {send_after_close, Mod:send(S, <<"x">>)}].

%%% Client ----------------------------------------------------------------

%% Connects with Mod to Port (connect/4, or connect/3 when Timeout is
%% `none'), runs three requests on one connection (passive recv/3, then
%% active once, then Connection: close) and returns its observations.
client(Mod, Port, Opts, Timeout) ->
    Base = [binary, {active, false}, {alpn_advertised_protocols, [<<"http/1.1">>]} | Opts],
    Connect = case Timeout of
                  none -> Mod:connect("localhost", Port, Base);
                  _ -> Mod:connect("localhost", Port, Base, Timeout)
              end,
    case Connect of
        {ok, S} -> [{connect, ok} | client_session(Mod, S)];
        {error, Reason} -> [{connect, {error, shape(Reason)}}]
    end.

client_session(Mod, S) ->
    Info = [{negotiated_protocol, Mod:negotiated_protocol(S)},
            {connection_information,
             %% (Not session_resumption: OTP 25 reports false for a resumed
             %% TLS 1.2 session, README: differences; rssl_session_SUITE.)
             Mod:connection_information(S, [protocol, selected_cipher_suite, sni_hostname])},
            {peercert, case Mod:peercert(S) of
                           {ok, Der} -> {ok, public_key:pkix_decode_cert(Der, otp) =/= undefined};
                           Other -> Other
                       end},
            {peername, shape(Mod:peername(S))},
            {sockname, shape(Mod:sockname(S))},
            {recv_timeout, Mod:recv(S, 0, 0)}],
    %% hackney: passive, recv/3 until the response is complete.
    ok = Mod:send(S, request(<<"GET">>, <<"/passive">>, <<>>, false)),
    R1 = recv_response(Mod, S, <<>>),
    %% gun: {active, once} and a message per packet.
    ok = Mod:setopts(S, [{active, once}]),
    Active = Mod:getopts(S, [active]),
    RecvActive = Mod:recv(S, 0, 0),
    ok = Mod:send(S, [request(<<"POST">>, <<"/active">>, <<"hello body">>, false)]),
    R2 = active_response(Mod, S, <<>>),
    ok = Mod:setopts(S, [{active, false}]),
    Stat = case Mod:getstat(S, [recv_oct, send_oct, recv_cnt, send_cnt]) of
               {ok, Counters} -> {ok, [{K, is_integer(V) andalso V > 0} || {K, V} <- Counters]};
               Error -> Error
           end,
    %% Connection: close; the server shuts down its side after the response.
    ok = Mod:send(S, request(<<"GET">>, <<"/close">>, <<>>, true)),
    R3 = recv_response(Mod, S, <<>>),
    AfterClose = Mod:recv(S, 0, ?T),
    Info ++
        [{response, R1}, {getopts_active, Active}, {response, R2}, {getstat, Stat},
         {response, R3}, {recv_after_peer_close, AfterClose},
         {recv_in_active_mode, RecvActive},
         {close, Mod:close(S)} | after_close(Mod, S)].

%% Every call on a closed connection, as a library that raced a close
%% would make them.
after_close(Mod, S) ->
    [{send_after_close, Mod:send(S, <<"x">>)},
     {recv_after_close, Mod:recv(S, 0, 0)},
     {format_error, Mod:format_error(element(2, Mod:recv(S, 0, 0)))},
     {setopts_after_close, Mod:setopts(S, [{active, once}])},
     {getopts_after_close, Mod:getopts(S, [active])},
     {peername_after_close, Mod:peername(S)},
     {sockname_after_close, Mod:sockname(S)},
     {getstat_after_close, Mod:getstat(S)},
     {peercert_after_close, Mod:peercert(S)},
     {negotiated_protocol_after_close, Mod:negotiated_protocol(S)},
     {connection_information_after_close, Mod:connection_information(S, [protocol])},
     {shutdown_after_close, Mod:shutdown(S, write)},
     {controlling_process_after_close, Mod:controlling_process(S, self())},
     {close_after_close, Mod:close(S)}].

recv_response(Mod, S, Buffer) ->
    case parse_response(Buffer) of
        {ok, Response} -> Response;
        more ->
            case Mod:recv(S, 0, ?T) of
                {ok, Data} -> recv_response(Mod, S, <<Buffer/binary, Data/binary>>);
                {error, Reason} -> {error, shape(Reason), Buffer}
            end
    end.

active_response(Mod, S, Buffer) ->
    case parse_response(Buffer) of
        {ok, Response} -> Response;
        more ->
            receive
                {ssl, S, Data} ->
                    ok = Mod:setopts(S, [{active, once}]),
                    active_response(Mod, S, <<Buffer/binary, Data/binary>>);
                {ssl_closed, S} -> {ssl_closed, Buffer};
                {ssl_error, S, Reason} -> {ssl_error, shape(Reason)}
            after ?T -> {timeout, Buffer}
            end
    end.

%%% Cipher suites, as Mint and hackney build their `ciphers' option -------

%% The suites of Versions Mod lists by default that suit an ECDSA
%% certificate, filtered with Mod's filter_cipher_suites/2.
ciphers(Mod, Versions) ->
    All = lists:append([Mod:cipher_suites(default, V) || V <- Versions]),
    Mod:filter_cipher_suites(All, [{key_exchange, fun(K) -> K =:= any orelse K =:= ecdhe_ecdsa end}]).

%%% HTTP/1.1 --------------------------------------------------------------

request(Method, Path, Body, Close) ->
    Conn = case Close of true -> [<<"connection: close\r\n">>]; false -> [] end,
    iolist_to_binary([Method, " ", Path, " HTTP/1.1\r\nhost: localhost\r\n", Conn,
                      "content-length: ", integer_to_binary(byte_size(Body)), "\r\n\r\n", Body]).

response(Status, Headers, Body, Close) ->
    Conn = case Close of true -> [<<"connection: close\r\n">>]; false -> [] end,
    iolist_to_binary(["HTTP/1.1 ", integer_to_binary(Status), " OK\r\n",
                      [[K, ": ", V, "\r\n"] || {K, V} <- Headers], Conn,
                      "content-length: ", integer_to_binary(byte_size(Body)), "\r\n\r\n", Body]).

parse_request(Buffer) ->
    case erlang:decode_packet(http_bin, Buffer, []) of
        {ok, {http_request, Method, {abs_path, Path}, {1, 1}}, Rest} ->
            case headers(Rest, []) of
                {ok, Headers, Rest1} -> with_body(Headers, Rest1, #{method => method(Method), path => Path});
                more -> more
            end;
        {more, _} -> more
    end.

parse_response(Buffer) ->
    case erlang:decode_packet(http_bin, Buffer, []) of
        {ok, {http_response, {1, 1}, Status, _}, Rest} ->
            case headers(Rest, []) of
                {ok, Headers, Rest1} ->
                    case with_body(Headers, Rest1, #{status => Status}) of
                        {ok, Response, <<>>} -> {ok, Response};
                        {ok, Response, Extra} -> {ok, Response#{extra => Extra}};
                        more -> more
                    end;
                more -> more
            end;
        {more, _} -> more
    end.

headers(Bin, Acc) ->
    case erlang:decode_packet(httph_bin, Bin, []) of
        {ok, {http_header, _, Name, _, Value}, Rest} ->
            headers(Rest, [{lower(Name), Value} | Acc]);
        {ok, http_eoh, Rest} -> {ok, lists:reverse(Acc), Rest};
        {more, _} -> more
    end.

with_body(Headers, Bin, Map) ->
    Len = binary_to_integer(proplists:get_value(<<"content-length">>, Headers, <<"0">>)),
    case Bin of
        <<Body:Len/binary, Rest/binary>> -> {ok, Map#{headers => Headers, body => Body}, Rest};
        _ -> more
    end.

method(M) when is_atom(M) -> atom_to_binary(M);
method(M) -> M.

lower(Name) when is_atom(Name) -> string:lowercase(atom_to_binary(Name));
lower(Name) -> string:lowercase(Name).

%%% Shapes ----------------------------------------------------------------

%% What may differ between two runs of the same exchange, as its shape:
%% addresses keep the IP and lose the port; alert texts (OTP names its
%% state machine, rssl OpenSSL's reason: README, differences) become `text'.
shape({ok, {{_, _, _, _} = IP, Port}}) when is_integer(Port) -> {ok, {IP, port}};
shape({tls_alert, {Alert, Text}}) when is_list(Text) -> {tls_alert, {Alert, text}};
shape(Other) -> Other.
