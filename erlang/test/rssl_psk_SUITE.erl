%% Pre-shared keys and SRP for the module under test (?M, rssl by default)
%% with OTP's ssl as the peer (TLS 1.2, the suites enabled with `ciphers'):
%% user_lookup_fun on both ends, psk_identity (the client's identity, the
%% server's hint), srp_identity, and what a wrong key or unknown user does.
%%
%% Compile with {d, 'M', ssl} to run the same checks with ssl on both ends.
-module(rssl_psk_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).
-define(KEY, <<"0123456789abcdef0123456789abcdef">>).

-export([suite/0, all/0, groups/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([psk/1, psk_without_hint/1, psk_wrong_key/1, psk_unknown_identity/1,
         psk_dhe/1, srp/1, srp_wrong_password/1, srp_unknown_user/1,
         srp_salt_leading_zero/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [{group, as_client}, {group, as_server}].

groups() ->
    Cases = [psk, psk_without_hint, psk_wrong_key, psk_unknown_identity, psk_dhe,
             srp, srp_wrong_password, srp_unknown_user, srp_salt_leading_zero],
    [{as_client, [], Cases}, {as_server, [], Cases}].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_group(as_client, Config) -> [{role, client} | Config];
init_per_group(as_server, Config) -> [{role, server} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% The server's lookup gets the client's identity, the client's lookup the
%% server's hint (both binaries); equal keys, a working connection.
psk(Config) ->
    SOpts = psk_opts(psk, {lookup(server, ?KEY), server_state}) ++ [{psk_identity, "hint"}],
    COpts = psk_opts(psk, {lookup(client, ?KEY), client_state}) ++ [{psk_identity, "alice"}],
    {Server, Client} = connect(Config, SOpts, COpts),
    ?assertMatch({ok, _}, Server),
    ?assertMatch({ok, _}, Client),
    ?assertEqual([{client, psk, <<"hint">>, client_state},
                  {server, psk, <<"alice">>, server_state}], lookups()),
    exchange(Config, Server, Client),
    {ok, S} = mine(Config, Server, Client),
    ?assertMatch({ok, [{selected_cipher_suite, #{key_exchange := psk}}]},
                 ?M:connection_information(S, [selected_cipher_suite])),
    close(Config, Server, Client).

%% No hint from the server: the client's lookup gets undefined.
psk_without_hint(Config) ->
    SOpts = psk_opts(psk, {lookup(server, ?KEY), s}),
    COpts = psk_opts(psk, {lookup(client, ?KEY), c}) ++ [{psk_identity, "alice"}],
    {Server, Client} = connect(Config, SOpts, COpts),
    ?assertMatch({{ok, _}, {ok, _}}, {Server, Client}),
    ?assertEqual([{client, psk, undefined, c}, {server, psk, <<"alice">>, s}], lookups()),
    exchange(Config, Server, Client),
    close(Config, Server, Client).

%% Different keys: the handshake fails on both ends (the server cannot
%% read the client's Finished and says bad_record_mac; see
%% unreadable_finished/2 for what the client gets).
psk_wrong_key(Config) ->
    SOpts = psk_opts(psk, {lookup(server, ?KEY), s}),
    COpts = psk_opts(psk, {lookup(client, <<"another key, not the same">>), c})
        ++ [{psk_identity, "alice"}],
    {Server, Client} = connect(Config, SOpts, COpts),
    unreadable_finished(Config, {Server, Client}),
    ?assertEqual([{client, psk, undefined, c}, {server, psk, <<"alice">>, s}], lookups()).

%% The server's lookup says error: the handshake fails on both ends with
%% the server's alert (unknown_identity_alert/1).
psk_unknown_identity(Config) ->
    SOpts = psk_opts(psk, {fun(psk, _, _) -> error end, s}),
    COpts = psk_opts(psk, {lookup(client, ?KEY), c}) ++ [{psk_identity, "mallory"}],
    {Server, Client} = connect(Config, SOpts, COpts),
    Alert = unknown_identity_alert(mod(Config, server)),
    ?assertMatch({error, {tls_alert, {Alert, _}}}, Server),
    ?assertMatch({error, {tls_alert, {Alert, _}}}, Client),
    ?assertEqual([{client, psk, undefined, c}], lookups()).

%% DHE_PSK suites use the same lookup; their key exchange always carries
%% a hint, empty when the server has none.
psk_dhe(Config) ->
    SOpts = psk_opts(dhe_psk, {lookup(server, ?KEY), s}),
    COpts = psk_opts(dhe_psk, {lookup(client, ?KEY), c}) ++ [{psk_identity, "alice"}],
    {Server, Client} = connect(Config, SOpts, COpts),
    ?assertMatch({{ok, _}, {ok, _}}, {Server, Client}),
    ?assertEqual([{client, psk, <<>>, c}, {server, psk, <<"alice">>, s}], lookups()),
    exchange(Config, Server, Client),
    close(Config, Server, Client).

%% SRP: the server's lookup gives the group, salt and derived key for the
%% user name; the client logs in with srp_identity. The server reports the
%% user as srp_username.
srp(Config) ->
    SOpts = srp_opts() ++ [{user_lookup_fun, {srp_lookup("alice", "secret"), s}}],
    COpts = srp_opts() ++ [{srp_identity, {"alice", "secret"}}],
    {Server, Client} = connect(Config, SOpts, COpts),
    ?assertMatch({{ok, _}, {ok, _}}, {Server, Client}),
    ?assertEqual([{server, srp, <<"alice">>, s}], lookups()),
    {ok, SS} = Server,
    ?assertEqual({ok, [{srp_username, <<"alice">>}]},
                 (mod(Config, server)):connection_information(SS, [srp_username])),
    exchange(Config, Server, Client),
    close(Config, Server, Client).

%% A salt whose first byte is 0. KNOWN rssl LIMITATION, reported: OpenSSL
%% keeps the salt as a number, so an rssl server sends it without its
%% leading zero bytes and an rssl client drops them before computing x;
%% the two ends then derive different keys, and the handshake fails as
%% with a wrong password. OTP's ssl keeps the salt's bytes.
srp_salt_leading_zero(Config) ->
    Salt = <<0, (crypto:strong_rand_bytes(15))/binary>>,
    SOpts = srp_opts() ++ [{user_lookup_fun, {srp_lookup("alice", "secret", Salt), s}}],
    COpts = srp_opts() ++ [{srp_identity, {"alice", "secret"}}],
    {Server, Client} = connect(Config, SOpts, COpts),
    ?assertEqual([{server, srp, <<"alice">>, s}], lookups()),
    case ?M of
        ssl ->
            ?assertMatch({{ok, _}, {ok, _}}, {Server, Client}),
            exchange(Config, Server, Client),
            close(Config, Server, Client);
        rssl ->
            unreadable_finished(Config, {Server, Client})
    end.

%% A wrong password: the handshake fails on both ends.
srp_wrong_password(Config) ->
    SOpts = srp_opts() ++ [{user_lookup_fun, {srp_lookup("alice", "secret"), s}}],
    COpts = srp_opts() ++ [{srp_identity, {"alice", "wrong"}}],
    {Server, Client} = connect(Config, SOpts, COpts),
    unreadable_finished(Config, {Server, Client}),
    ?assertEqual([{server, srp, <<"alice">>, s}], lookups()).

%% The lookup knows no such user: the handshake fails on both ends.
srp_unknown_user(Config) ->
    SOpts = srp_opts() ++ [{user_lookup_fun, {fun(srp, _, _) -> error end, s}}],
    COpts = srp_opts() ++ [{srp_identity, {"bob", "secret"}}],
    {Server, Client} = connect(Config, SOpts, COpts),
    Alert = unknown_identity_alert(mod(Config, server)),
    ?assertMatch({error, {tls_alert, {Alert, _}}}, Server),
    ?assertMatch({error, {tls_alert, {Alert, _}}}, Client),
    ?assertEqual([], lookups()).

%%% Helpers -----------------------------------------------------------------

%% A server that cannot read the client's Finished (wrong PSK or SRP
%% password) fails with bad_record_mac. An rssl server's alert reaches
%% the client; an OTP ssl server's does not, and its client (rssl or ssl)
%% sees only the connection close.
unreadable_finished(Config, {Server, Client}) ->
    ?assertMatch({error, {tls_alert, {bad_record_mac, _}}}, Server),
    case mod(Config, server) of
        rssl -> ?assertMatch({error, {tls_alert, {bad_record_mac, _}}}, Client);
        ssl -> ?assertEqual({error, closed}, Client)
    end.

%% The alert a server sends for an identity its lookup does not know (PSK)
%% or a user it does not know (SRP): OpenSSL's unknown_psk_identity (RFC
%% 4279, RFC 5054), where OTP's ssl sends illegal_parameter (README).
unknown_identity_alert(rssl) -> unknown_psk_identity;
unknown_identity_alert(ssl) -> illegal_parameter.

base_opts() ->
    [binary, {active, false}, {versions, ['tlsv1.2']}].

psk_opts(Kex, Lookup) ->
    Cipher = case Kex of
                 psk -> #{key_exchange => psk, cipher => aes_128_gcm, mac => aead, prf => sha256};
                 dhe_psk -> #{key_exchange => dhe_psk, cipher => aes_128_gcm, mac => aead,
                                prf => sha256}
             end,
    base_opts() ++ [{ciphers, [Cipher]}, {user_lookup_fun, Lookup}, {verify, verify_none}].

srp_opts() ->
    base_opts() ++ [{ciphers, [#{key_exchange => srp_anon, cipher => aes_128_cbc,
                                 mac => sha, prf => default_prf}]},
                    {verify, verify_none}].

%% A PSK lookup that reports its calls and answers Key.
lookup(Side, Key) ->
    Self = self(),
    fun(psk, Identity, State) ->
            Self ! {lookup, Side, psk, Identity, State},
            {ok, Key}
    end.

%% An SRP lookup knowing one user (RFC 5054's derived key, as OTP documents),
%% with a random salt that does not start with a zero byte (see
%% srp_salt_leading_zero/1).
srp_lookup(User, Password) ->
    srp_lookup(User, Password, <<(rand:uniform(255)), (crypto:strong_rand_bytes(15))/binary>>).

srp_lookup(User, Password, Salt) ->
    Self = self(),
    UserBin = list_to_binary(User),
    fun(srp, Name, State) ->
            Self ! {lookup, server, srp, Name, State},
            case Name of
                UserBin ->
                    Key = crypto:hash(sha, [Salt, crypto:hash(sha, [User, <<$:>>, Password])]),
                    {ok, {srp_2048, Salt, Key}};
                _ ->
                    error
            end
    end.

%% The lookups made, sorted (the two ends call theirs in two processes).
lookups() ->
    lists:sort(lookups([])).

lookups(Acc) ->
    receive {lookup, Side, Kind, Identity, State} -> lookups([{Side, Kind, Identity, State} | Acc])
    after 0 -> Acc
    end.

%% The module of each end: ?M plays the group's role, ssl the other.
mod(Config, Role) ->
    case ?config(role, Config) of
        Role -> ?M;
        _ -> ?PEER
    end.

%% Runs both handshakes (the server in a helper process, the client here)
%% and returns {ServerResult, ClientResult}. The server's socket is handed
%% to this process.
connect(Config, SOpts, COpts) ->
    Server = mod(Config, server),
    Client = mod(Config, client),
    {ok, L} = Server:listen(0, [{reuseaddr, true} | SOpts]),
    {ok, {_, Port}} = Server:sockname(L),
    Self = self(),
    Pid = spawn_link(fun() ->
                             {ok, T} = Server:transport_accept(L, ?T),
                             case Server:handshake(T, ?T) of
                                 {ok, S} ->
                                     ok = Server:controlling_process(S, Self),
                                     Self ! {self(), {ok, S}};
                                 Error ->
                                     Self ! {self(), Error}
                             end
                     end),
    ClientResult = Client:connect("localhost", Port, COpts, ?T),
    ServerResult = receive {Pid, R} -> R after ?T -> error(server_timeout) end,
    ok = Server:close(L),
    {ServerResult, ClientResult}.

%% ?M's socket.
mine(Config, Server, Client) ->
    case ?config(role, Config) of
        server -> Server;
        client -> Client
    end.

exchange(Config, {ok, SS}, {ok, CS}) ->
    Server = mod(Config, server),
    Client = mod(Config, client),
    ok = Client:send(CS, <<"ping">>),
    ?assertEqual({ok, <<"ping">>}, Server:recv(SS, 4, ?T)),
    ok = Server:send(SS, <<"pong">>),
    ?assertEqual({ok, <<"pong">>}, Client:recv(CS, 4, ?T)).

close(Config, {ok, SS}, {ok, CS}) ->
    ok = (mod(Config, client)):close(CS),
    ?assertEqual({error, closed}, (mod(Config, server)):recv(SS, 0, ?T)),
    ok = (mod(Config, server)):close(SS).
