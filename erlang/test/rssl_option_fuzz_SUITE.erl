%% Option lists fuzzed with PropEr against the module under test (?M, rssl
%% by default): the Erlang-term option decoder (rssl_options and the NIF's
%% term decoding, src/nif/options.rs) can only be reached through a VM, so
%% this is its fuzzer, next to the cargo-fuzz targets in fuzz/ for the
%% engine and the C builder.
%%
%% listen/2 and connect/4 get random option lists: known option names with
%% values that are sometimes valid and often any term (deep, improper,
%% huge, binaries, atoms, funs of the wrong arity), unknown options and
%% junk. Every call must return {ok, _} or {error, _} within 10 s: no
%% exception, no hang, no crash of the VM, and a listener started before
%% keeps serving handshakes. A socket that did open is closed at once; at the end no
%% descriptor or port is left (end_per_testcase).
%%
%% With ?M = ssl (rebar3 as otp_ssl ct) the answers are only logged:
%% OTP 25's ssl raises function_clause from its option checks for many of
%% these lists (ssl:validate_versions/2, handle_supported_groups_option/2),
%% throws {option_not_a_key_value_tuple, X} out of connect and returns it
%% bare from listen, leaves ports open for some, and has hung in listen/2
%% for one (not identified; each call here gets 10 s); there the cases
%% check only that the VM and the listener survive (and leave backlog
%% out: see keys/1).
%%
%% Left out: {fd, N} (it takes over descriptor N of this VM, stdin
%% included), netns (it names a namespace file) and cb_info (it names the
%% modules to call).
-module(rssl_option_fuzz_SUITE).

-include_lib("common_test/include/ct.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(L, rssl_socket_lib).
-define(T, 10000).
-define(NUMTESTS, 400).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([prop_listen_options/1, prop_connect_options/1, improper_values/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() -> [prop_listen_options, prop_connect_options, improper_values].

init_per_suite(Config) ->
    ok = rssl_test_lib:ensure_proper(),
    ?L:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

%% With ssl under test the descriptor check is left out: OTP 25's ssl
%% leaves a port open for some of these option lists (see keys/1).
end_per_testcase(_TC, Config) ->
    case lenient() of
        true -> ok;
        false -> rssl_test_lib:end_per_testcase(Config)
    end.

%%% Properties ------------------------------------------------------------------

%% listen/2 with a random list in front of a valid server configuration
%% (so options that are fine reach the TLS layer).
prop_listen_options(Config) ->
    Pki = ?config(pki, Config),
    Server = server(Pki),
    Base = ?L:base_opts(Pki, server),
    check(proper:forall(option_list(server),
                        fun(Opts) -> listen_ok(Opts ++ Base) andalso listen_ok(Opts) end)),
    serving(Server, Pki).

%% connect/4 to a running listener with a random list in front of a valid
%% client configuration.
prop_connect_options(Config) ->
    Pki = ?config(pki, Config),
    {_, Port} = Server = server(Pki),
    Base = ?L:base_opts(Pki, client),
    check(proper:forall(option_list(client),
                        fun(Opts) -> connect_ok(Port, Opts ++ Base) end)),
    serving(Server, Pki).

%% Every known key with every improper list as its value, alone and in
%% front of a valid configuration, and improper option lists themselves.
improper_values(Config) ->
    Pki = ?config(pki, Config),
    {_, Port} = Server = server(Pki),
    Tries = [{Role, [{K, V} | Base]}
             || Role <- [server, client],
                Base <- [[], ?L:base_opts(Pki, Role)],
                K <- keys(Role), V <- improper()]
        ++ [{Role, Bad} || Role <- [server, client],
                           Bad <- [[binary | x], [{verify, verify_none} | {a, b}]]],
    Bad = [{Role, Opts} || {Role, Opts} <- Tries,
                           not case Role of
                                   server -> listen_ok(Opts);
                                   client -> connect_ok(Port, Opts)
                               end],
    ct:log("~b option lists tried", [length(Tries)]),
    [] = Bad,
    serving(Server, Pki).

check(Prop) ->
    Opts = [long_result, {numtests, ?NUMTESTS}, {max_shrinks, 50},
            {on_output, fun(Fmt, Args) -> ct:log(Fmt, Args) end}],
    case proper:quickcheck(Prop, Opts) of
        true -> ok;
        CounterExample -> ct:fail({counterexample, CounterExample})
    end.

listen_ok(Opts) ->
    answer_ok(fun() -> ?M:listen(0, Opts) end, Opts).

connect_ok(Port, Opts) ->
    answer_ok(fun() -> ?M:connect({127, 0, 0, 1}, Port, Opts, 2000) end, Opts).

%% The call returns {ok, Socket} (closed at once; {ok, Socket, Ext} with
%% {handshake, hello}) or {error, _}; anything
%% else, an exception included, is logged and fails the property.
answer_ok(Call, Opts) ->
    case within(Call, Opts) of
        {ok, S} ->
            _ = ?M:close(S),
            true;
        {ok, S, _Extensions} ->         % {handshake, hello}
            _ = ?M:close(S),
            true;
        {error, _} ->
            true;
        Other ->
            case lenient() of
                true ->
                    %% OTP 25's ssl itself does not hold to this (see the
                    %% module comment): only its survival is checked.
                    ct:log("ssl answered: ~p", [Other]),
                    true;
                false ->
                    ct:log("unexpected answer: ~p", [Other]),
                    false
            end
    end.

lenient() ->
    ?M =:= ssl.

%% Call() in a process of its own, which owns what it opens until this
%% process closes it; {hung, Opts} if it does not return within ?T.
within(Call, Opts) ->
    Self = self(),
    Pid = spawn(fun() ->
                        Answer = try Call()
                                 catch Class:Reason:Stack -> {raised, Class, Reason, hd(Stack)}
                                 end,
                        give(Answer, Self),
                        Self ! {self(), answer, Answer}
                end),
    receive
        {Pid, answer, Answer} -> Answer
    after ?T ->
        exit(Pid, kill),
        {hung, Opts}
    end.

%% Sockets change hands before their opener exits (which would close them).
give({ok, S}, To) -> _ = ?M:controlling_process(S, To);
give({ok, S, _}, To) -> _ = ?M:controlling_process(S, To);
give(_, _) -> ok.

%%% A listener that must keep serving ---------------------------------------------

%% A ?M listener whose acceptor handshakes every connection (2 s at most)
%% and closes it. Returns {Pid, Port}.
server(Pki) ->
    Self = self(),
    Pid = spawn_link(fun() ->
                             {ok, L} = ?M:listen(0, [{reuseaddr, true} | ?L:base_opts(Pki, server)]),
                             {ok, {_, Port}} = ?M:sockname(L),
                             Self ! {self(), port, Port},
                             accept_loop(L)
                     end),
    receive {Pid, port, Port} -> {Pid, Port} after ?T -> ct:fail(no_listener) end.

accept_loop(L) ->
    case ?M:transport_accept(L, 200) of
        {ok, T} ->
            case ?M:handshake(T, 2000) of
                {ok, S} -> _ = ?M:recv(S, 0, 200), ?M:close(S);
                {error, _} -> ok
            end,
            accept_loop(L);
        {error, timeout} ->
            receive stop -> ?M:close(L) after 0 -> accept_loop(L) end
    end.

%% The listener still completes a normal handshake; then it is stopped.
serving({Pid, Port}, Pki) ->
    {ok, S} = ?M:connect({127, 0, 0, 1}, Port, ?L:base_opts(Pki, client), ?T),
    ok = ?M:close(S),
    unlink(Pid),
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, process, Pid, _} -> ok after ?T -> ct:fail(listener_stuck) end.

%%% Generators ----------------------------------------------------------------------

option_list(Role) ->
    proper_types:list(option(Role)).

option(Role) ->
    proper_types:frequency(
      [{6, {proper_types:oneof(keys(Role)), value()}},
       {3, proper_types:oneof([{K, V} || {K, V} <- plausible(Role)])},
       {1, proper_types:oneof(keys(Role))},
       {1, junk()}]).

keys(Role) ->
    %% OTP 25's gen_tcp:listen leaves a port open when it raises for a
    %% backlog that is not an integer; ssl passes that on, rssl refuses
    %% the option first. With ssl under test the key is left out, so that
    %% the descriptor check after each case holds.
    [K || K <- all_keys(Role), not (lenient() andalso K =:= backlog)].

all_keys(Role) ->
    Common = [verify, versions, cacertfile, certfile, keyfile, cacerts, cert, key,
              password, ciphers, depth, reuse_sessions, session_tickets,
              secure_renegotiate, alpn_advertised_protocols, alpn_preferred_protocols,
              next_protocols_advertised, client_preferred_next_protocols, signature_algs,
              signature_algs_cert, supported_groups, eccs, verify_fun, partial_chain,
              crl_check, crl_cache, customize_hostname_check, hibernate_after,
              log_level, log_alert, keep_secrets, handshake, middlebox_comp_mode,
              padding_check, beast_mitigation, max_fragment_length,
              psk_identity, user_lookup_fun, srp_identity, dh, dhfile,
              fail_if_no_peer_cert, honor_cipher_order, client_renegotiation,
              sni_hosts, sni_fun, server_name_indication, reuse_session,
              mode, active, packet, packet_size, header, exit_on_close,
              send_timeout, send_timeout_close, nodelay, keepalive, linger,
              sndbuf, recbuf, buffer, reuseaddr, tos, delay_send, high_watermark,
              low_watermark, ip, ifaddr, port, backlog, inet6, inet,
              binary, list, debug, deliver, bind_to_device, raw],
    case Role of
        server -> Common ++ [stateless_tickets_seed, anti_replay, cookie, early_data];
        client -> Common ++ [early_data, use_ticket, session_id, recv_timeout]
    end.

%% Values that are valid for the key, so that mixes of good options get
%% past the first check and meet the later ones.
plausible(Role) ->
    [{verify, verify_none}, {verify, verify_peer}, {versions, ['tlsv1.2']},
     {versions, ['tlsv1.3', 'tlsv1.2']}, {versions, ['tlsv1.3']}, {versions, []},
     {ciphers, ssl:cipher_suites(default, 'tlsv1.3')}, {ciphers, "AES256-SHA"},
     {depth, 0}, {depth, 100}, {reuse_sessions, false}, {session_tickets, auto},
     {secure_renegotiate, false}, {alpn_advertised_protocols, [<<"h2">>]},
     {alpn_preferred_protocols, [<<"h2">>, <<"http/1.1">>]}, {alpn_preferred_protocols, []},
     {signature_algs, [{sha256, ecdsa}]}, {supported_groups, [x25519]}, {eccs, []},
     {mode, list}, {active, once}, {active, -1}, {active, 32768}, {packet, 4},
     {packet, http_bin}, {packet, 7}, {packet_size, 1}, {header, 3},
     {send_timeout, 0}, {linger, {true, 0}}, {sndbuf, 0}, {nodelay, true},
     {ip, {127, 0, 0, 1}}, {ip, {0, 0, 0, 0, 0, 0, 0, 1}}, {port, 0},
     {backlog, -1}, {hibernate_after, 0}, {log_level, none}, {keep_secrets, true},
     {handshake, hello}, {middlebox_comp_mode, false}, {max_fragment_length, 512},
     {verify_fun, {fun(_, _, S) -> {valid, S} end, []}}, {verify_fun, {fun(_) -> ok end, x}},
     {partial_chain, fun(_) -> unknown_ca end}, {crl_check, true},
     {customize_hostname_check, [{match_fun, fun(_, _) -> true end}]},
     {server_name_indication, disable}, {server_name_indication, "localhost"},
     {server_name_indication, ""}, {psk_identity, "id"}, {password, ""},
     {dh, <<>>}, {cacerts, [<<>>]}, {cert, <<0, 1, 2>>}, {key, {'ECPrivateKey', <<1>>}},
     {certfile, "/nonexistent"}, {keyfile, ""}, {cacertfile, "/"},
     {sni_fun, fun(_) -> [] end}, {sni_hosts, [{"a", []}]},
     {fail_if_no_peer_cert, true}, {honor_cipher_order, true}
     | case Role of
           server -> [{client_renegotiation, false}];
           client -> [{reuse_session, <<1, 2, 3>>}]
       end].

value() ->
    proper_types:frequency(
      [{3, proper_types:oneof([true, false, 0, -1, 1, 65536, 1 bsl 70, infinity,
                               undefined, [], <<>>, "", "x", <<"x">>, {}, {a, b, c}])},
       {3, proper_types:resize(6, proper_types:any())},
       {1, proper_types:list(proper_types:oneof([proper_types:binary(), proper_types:atom(),
                                                 proper_types:integer()]))},
       {1, proper_types:oneof([[[[[[]]]]], fun() -> ok end, fun(_, _, _, _) -> ok end,
                               self(), make_ref()])}]).

%% Improper lists (PropEr's shrinking cannot handle them in generated
%% values, so improper_values/1 tries them one by one).
improper() ->
    [[a | b], [<<"x">> | <<"y">>], ["x" | "y"], [{a, b} | c], [1, 2 | 3]].

junk() ->
    proper_types:oneof([proper_types:resize(5, proper_types:any()), {a}, {a, b, c},
                        {"verify", verify_none}, {<<"active">>, true}, 42, []]).
