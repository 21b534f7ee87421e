%% Helpers for the socket-contract suites (rssl_active_SUITE,
%% rssl_packet_SUITE, rssl_options_SUITE, rssl_ownership_SUITE,
%% rssl_upgrade_SUITE, rssl_cb_info_SUITE, rssl_prop_SUITE).
%%
%% Like rssl_test_lib, every function takes the module to use (`rssl' or
%% `ssl') as an argument. The other end of every connection is OTP's ssl,
%% running in a peer process (rssl_test_lib:open/6) in passive binary mode,
%% so the peer sees exactly the bytes the local end sends.
%%
%% same/2 runs one call sequence with the module under test and with ssl and
%% fails the case unless both give the same observations: that is how the
%% suites pin down results that only OTP's ssl defines (getopts order,
%% error terms, quirks of {active, N}).
-module(rssl_socket_lib).

-export([init_suite/2, base_opts/2, tls_opts/2,
         pair/4, pair/5, finish/3,
         same/2, same/3, norm/2,
         expect/2, expect_msgs/3, next_msg/2, no_msgs/1,
         peer_send/2, peer_send_chunks/3, peer_recv/2, peer_recv/3, peer_recv_closed/1, peer_fn/2,
         inject_pair/3, proxy/1, proxy_stop/1,
         frame/2, frame_all/2, decode_all/3, chunks/2, pattern/2,
         wait_until/2]).

-define(T, 10000).
-define(V, 'tlsv1.3').

%%% Suite set-up ------------------------------------------------------------

%% For init_per_suite/1: starts ssl and Mod, makes a PKI, warms up.
init_suite(Mod, Config) ->
    {ok, _} = application:ensure_all_started(ssl),
    ok = Mod:start(),
    Pki = rssl_test_pki:make(proplists:get_value(priv_dir, Config)),
    ok = rssl_test_lib:warm_up(Mod, Pki),
    [{pki, Pki} | Config].

%%% Options -------------------------------------------------------------------

%% TLS 1.3, passive, binary, and what Role needs to handshake.
base_opts(Pki, client) -> rssl_test_lib:client_opts(Pki, ?V, ca);
base_opts(Pki, server) -> rssl_test_lib:server_opts(Pki, ?V, server).

%% The same TLS options without any socket option (so the socket gets the
%% defaults).
tls_opts(Pki, client) -> [{versions, [?V]} | rssl_test_pki:client_opts(Pki, ca)];
tls_opts(Pki, server) -> [{versions, [?V]} | rssl_test_pki:server_opts(Pki, server)].

%%% Connections ---------------------------------------------------------------

%% A connection of Mod (this process, Role) to an ssl peer; Extra overrides
%% Mod's base options. Returns {S, Peer}.
pair(Mod, Role, Pki, Extra) ->
    pair(Mod, Role, Pki, Extra, base_opts(Pki, other(Role))).

pair(Mod, Role, Pki, Extra, PeerOpts) ->
    Opts = rssl_test_lib:merge_opts(Extra, base_opts(Pki, Role)),
    rssl_test_lib:open(Mod, Role, Opts, ssl, PeerOpts, #{}).

%% Closes both ends and returns Result.
finish(Mod, {S, Peer}, Result) ->
    _ = Mod:close(S),
    ok = rssl_test_lib:stop_peer(Peer),
    _ = pending(S),
    Result.

other(client) -> server;
other(server) -> client.

%%% Comparing with ssl --------------------------------------------------------

%% Runs Fun(Mod) and Fun(ssl); both must return the same term, which is
%% returned. Fun should return observations with sockets replaced by norm/2.
same(Mod, Fun) ->
    same(Mod, Fun, fun(X) -> X end).

%% As same/2, comparing View(Result).
same(Mod, Fun, View) ->
    Got = Fun(Mod),
    Want = case Mod of
               ssl -> Got;
               _ -> Fun(ssl)
           end,
    case View(Got) =:= View(Want) of
        true -> Got;
        false -> ct:fail({differs_from_ssl, #{Mod => Got, ssl => Want}})
    end.

%% Term with every occurrence of socket S replaced by the atom 'S'.
norm(S, S) -> 'S';
norm(S, T) when is_tuple(T) -> list_to_tuple(norm(S, tuple_to_list(T)));
norm(S, [H | T]) -> [norm(S, H) | norm(S, T)];
norm(_, X) -> X.

%%% Messages ------------------------------------------------------------------

%% Waits for exactly Msg (with S in it).
expect(S, Msg) ->
    receive
        Msg -> ok
    after ?T ->
        ct:fail({message_not_received, norm(S, Msg), pending, norm(S, pending(S))})
    end.

%% The next N messages about S (ssl, ssl_closed, ssl_error, ssl_passive),
%% normalized, in order of arrival; fails if they do not come.
expect_msgs(S, N, Timeout) ->
    expect_msgs(S, N, Timeout, []).
expect_msgs(_S, 0, _Timeout, Acc) ->
    lists:reverse(Acc);
expect_msgs(S, N, Timeout, Acc) ->
    case next_msg(S, Timeout) of
        timeout -> ct:fail({messages_missing, N, got, lists:reverse(Acc)});
        M -> expect_msgs(S, N - 1, Timeout, [M | Acc])
    end.

%% The next message about S, normalized, or timeout.
next_msg(S, Timeout) ->
    receive
        {Tag, S} = M when Tag =:= ssl_closed; Tag =:= ssl_passive -> norm(S, M);
        {Tag, S, _} = M when Tag =:= ssl; Tag =:= ssl_error -> norm(S, M)
    after Timeout -> timeout
    end.

%% Messages about S already in the mailbox (normalized); [] expected.
no_msgs(S) ->
    norm(S, pending(S)).

pending(S) ->
    receive
        {Tag, S} = M when Tag =:= ssl_closed; Tag =:= ssl_passive -> [M | pending(S)];
        {Tag, S, _} = M when Tag =:= ssl; Tag =:= ssl_error -> [M | pending(S)]
    after 0 -> []
    end.

%%% Peer commands -------------------------------------------------------------

peer_send(Peer, Data) ->
    ok = rssl_test_lib:call(Peer, {send, Data}).

peer_send_chunks(Peer, Data, Sizes) ->
    ok = rssl_test_lib:call(Peer, {send_chunks, Data, Sizes}).

%% Exactly Len bytes from the peer's socket.
peer_recv(Peer, Len) ->
    peer_recv(Peer, Len, ?T).
peer_recv(Peer, Len, Timeout) ->
    %% Wait longer than the peer does, so its {error, timeout} is the answer.
    rssl_test_lib:call(Peer, {recv, Len, Timeout}, Timeout + ?T).

%% Everything until the peer's socket reports the close: {Data, Last}
%% (Last is {error, timeout} when nothing came for 10 s).
peer_recv_closed(Peer) ->
    rssl_test_lib:call(Peer, recv_until_closed, 3 * ?T).

%% Fun(PeerMod, PeerSocket) in the peer process.
peer_fn(Peer, Fun) ->
    rssl_test_lib:call(Peer, {fn, Fun}).

%%% A server whose raw TCP stream the test can write to -----------------------

%% Mod (this process) as server with Extra options; the client is ssl over
%% a gen_tcp socket the caller also gets, so the test can write raw bytes
%% into the stream Mod reads. Returns {S, Client, Tcp} where Client is the
%% ssl socket (owned by a helper process that keeps it open until S's
%% owner exits or stop is sent).
inject_pair(Mod, Pki, Extra) ->
    Opts = rssl_test_lib:merge_opts(Extra, base_opts(Pki, server)),
    {ok, L} = Mod:listen(0, [{reuseaddr, true} | Opts]),
    {ok, {_, Port}} = Mod:sockname(L),
    Self = self(),
    ClientOpts = base_opts(Pki, client),
    Holder = spawn_link(
               fun() ->
                       {ok, Tcp} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
                       {ok, C} = ssl:connect(Tcp, ClientOpts, ?T),
                       Self ! {self(), client, C, Tcp},
                       receive stop -> ssl:close(C) end
               end),
    {ok, T} = Mod:transport_accept(L, ?T),
    {ok, S} = Mod:handshake(T, ?T),
    ok = Mod:close(L),
    receive
        {Holder, client, C, Tcp} -> {S, {Holder, C}, Tcp}
    after ?T -> ct:fail(inject_client_failed)
    end.

%%% A TCP relay ---------------------------------------------------------------

%% A TCP proxy in front of port Target: accepts one connection and relays
%% bytes both ways. Hooks = #{first_from_client => fun(Bin) -> Bin2 end}
%% may rewrite what the client sends first (before anything is relayed;
%% Bin is the client's first complete TLS record). Returns {Pid, Port}.
proxy(#{target := Target} = Hooks) ->
    Self = self(),
    Pid = spawn_link(
            fun() ->
                    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true}]),
                    {ok, Port} = inet:port(L),
                    Self ! {self(), port, Port},
                    {ok, A} = gen_tcp:accept(L, ?T),
                    ok = gen_tcp:close(L),
                    {ok, B} = gen_tcp:connect({127, 0, 0, 1}, Target, [binary, {active, false}]),
                    case maps:find(first_from_client, Hooks) of
                        {ok, Fun} ->
                            {ok, <<22, _:16, Len:16>> = Hdr} = gen_tcp:recv(A, 5, ?T),
                            {ok, Body} = gen_tcp:recv(A, Len, ?T),
                            ok = gen_tcp:send(B, Fun(<<Hdr/binary, Body/binary>>));
                        error ->
                            ok
                    end,
                    ok = inet:setopts(A, [{active, true}]),
                    ok = inet:setopts(B, [{active, true}]),
                    relay(A, B)
            end),
    receive
        {Pid, port, Port} -> {Pid, Port}
    after ?T -> ct:fail(proxy_not_listening)
    end.

relay(A, B) ->
    receive
        {tcp, A, Data} -> _ = gen_tcp:send(B, Data), relay(A, B);
        {tcp, B, Data} -> _ = gen_tcp:send(A, Data), relay(A, B);
        {tcp_closed, _} -> gen_tcp:close(A), gen_tcp:close(B);
        {tcp_error, _, _} -> gen_tcp:close(A), gen_tcp:close(B);
        stop -> gen_tcp:close(A), gen_tcp:close(B)
    end.

proxy_stop({Pid, _Port}) ->
    unlink(Pid),
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, process, Pid, _} -> ok after ?T -> ok end.

%%% Framing -------------------------------------------------------------------

%% A message framed the way {packet, Type} expects it on the wire.
frame(raw, Msg) -> Msg;
frame(0, Msg) -> Msg;
frame(1, Msg) -> <<(byte_size(Msg)):8, Msg/binary>>;
frame(2, Msg) -> <<(byte_size(Msg)):16, Msg/binary>>;
frame(4, Msg) -> <<(byte_size(Msg)):32, Msg/binary>>;
frame(line, Msg) -> <<Msg/binary, $\n>>.

frame_all(Type, Msgs) ->
    iolist_to_binary([frame(Type, M) || M <- Msgs]).

%% What erlang:decode_packet(Type, _, Opts) makes of Bin, packet by packet,
%% until nothing complete is left: {Packets, Rest}.
decode_all(Type, Bin, Opts) ->
    decode_all(Type, Bin, Opts, []).
decode_all(Type, Bin, Opts, Acc) ->
    case erlang:decode_packet(Type, Bin, Opts) of
        {ok, Packet, Rest} -> decode_all(Type, Rest, Opts, [Packet | Acc]);
        {more, _} -> {lists:reverse(Acc), Bin}
    end.

%% Bin cut into pieces of the given sizes (cycled; the last may be shorter).
chunks(<<>>, _Sizes) -> [];
chunks(Bin, Sizes) -> chunks(Bin, Sizes, Sizes).
chunks(<<>>, _, _) -> [];
chunks(Bin, [], All) -> chunks(Bin, All, All);
chunks(Bin, [N | Ns], All) ->
    Len = min(max(N, 1), byte_size(Bin)),
    <<C:Len/binary, Rest/binary>> = Bin,
    [C | chunks(Rest, Ns, All)].

%% Size bytes of a deterministic pattern that never contains $\n (so it can
%% be a line), different for each Seed.
pattern(Size, Seed) ->
    Cycle = << <<($a + (I * 7 + Seed) rem 26)>> || I <- lists:seq(1, 26) >>,
    binary:part(binary:copy(Cycle, Size div 26 + 1), 0, Size).

%% Polls Fun() every 20 ms until it returns true, at most Timeout ms; the
%% result of the last call.
wait_until(Fun, Timeout) ->
    case Fun() of
        true -> true;
        _ when Timeout =< 0 -> false;
        _ -> timer:sleep(20), wait_until(Fun, Timeout - 20)
    end.
