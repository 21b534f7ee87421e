%% TLS 1.2 client sessions by hand with the module under test (?M, rssl by
%% default) against OTP's ssl as the server: `{reuse_sessions, save}',
%% connection_information/2's `session_id' and `session_data', and
%% `{reuse_session, SessionId | {SessionId, SessionData}}'. A resumed
%% session keeps its id (OTP 25 reports session_resumption false for TLS
%% 1.2, so the id tells).
-module(rssl_client_session_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).
-define(V, 'tlsv1.2').

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([save_gives_id_and_data/1, reuse_by_id_and_data/1, save_makes_a_new_session/1,
         unknown_or_junk_sessions_do_full_handshakes/1, tls13_only_refused/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [save_gives_id_and_data, reuse_by_id_and_data, save_makes_a_new_session,
     unknown_or_junk_sessions_do_full_handshakes, tls13_only_refused].

init_per_suite(Config) ->
    Config1 = rssl_socket_lib:init_suite(?M, Config),
    Pki = ?config(pki, Config1),
    %% One ssl server for the suite, keeping its sessions.
    Parent = self(),
    Server = spawn(fun() -> serve(Parent, Pki) end),
    receive {Server, port, Port} -> [{server, Server}, {port, Port} | Config1]
    after ?T -> error(server_did_not_listen)
    end.

end_per_suite(Config) ->
    exit(?config(server, Config), kill),
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

save_gives_id_and_data(Config) ->
    {S, Id, Data} = saved(Config),
    ?assert(byte_size(Id) > 0),
    ?assert(byte_size(Data) > 0),
    {ok, All} = ?M:connection_information(S),
    ?assertEqual({session_id, Id}, lists:keyfind(session_id, 1, All)),
    ?assertEqual({session_data, Data}, lists:keyfind(session_data, 1, All)),
    ok = ?M:close(S).

%% The saved session resumes, by its data; by its id alone with rssl (OTP
%% 25's client does not resume from a bare id here).
reuse_by_id_and_data(Config) ->
    {S, Id, Data} = saved(Config),
    ok = ?M:close(S),
    ?assertEqual(Id, session_of(Config, [{reuse_session, {Id, Data}}])),
    case ?M of
        rssl -> ?assertEqual(Id, session_of(Config, [{reuse_session, Id}]));
        _ -> ok
    end.

%% `save' negotiates a new session each time, even with one saved.
save_makes_a_new_session(Config) ->
    {S1, Id1, _} = saved(Config),
    ok = ?M:close(S1),
    {S2, Id2, _} = saved(Config),
    ok = ?M:close(S2),
    ?assertNotEqual(Id1, Id2).

%% A session id nobody saved, or data that is no session: a full handshake
%% (a new session), no error.
unknown_or_junk_sessions_do_full_handshakes(Config) ->
    {S, Id, _} = saved(Config),
    ok = ?M:close(S),
    Unknown = crypto:strong_rand_bytes(32),
    ?assertNotEqual(Id, session_of(Config, [{reuse_session, Unknown}])),
    ?assertNotEqual(Id, session_of(Config, [{reuse_session, {Id, <<"junk">>}}])).

%% Sessions by hand need a version with session ids.
tls13_only_refused(_Config) ->
    Want = {error, {options, dependency,
                    {reuse_sessions, {versions, [tlsv1, 'tlsv1.1', 'tlsv1.2']}}}},
    ?assertEqual(Want, ?M:connect("localhost", 1, [{versions, ['tlsv1.3']},
                                                    {reuse_sessions, save}], ?T)),
    ?assertMatch({error, {options, dependency, {reuse_session, _}}},
                 ?M:connect("localhost", 1, [{versions, ['tlsv1.3']},
                                             {reuse_session, <<1>>}], ?T)),
    ?assertMatch({error, {options, dependency, {reuse_session, _}}},
                 ?M:connect("localhost", 1, [{versions, ['tlsv1.3']},
                                             {reuse_session, {<<1>>, <<2>>}}], ?T)).

%%% Helpers -----------------------------------------------------------------

client_opts(Config) ->
    rssl_test_lib:client_opts(?config(pki, Config), ?V, ca).

%% A connection with {reuse_sessions, save}: its socket, session id and data.
saved(Config) ->
    {ok, S} = ?M:connect({127, 0, 0, 1}, ?config(port, Config),
                         [{reuse_sessions, save} | client_opts(Config)], ?T),
    {ok, [{session_id, Id}, {session_data, Data}]} =
        ?M:connection_information(S, [session_id, session_data]),
    {S, Id, Data}.

%% The session id of a connection made with Extra options.
session_of(Config, Extra) ->
    {ok, S} = ?M:connect({127, 0, 0, 1}, ?config(port, Config), Extra ++ client_opts(Config), ?T),
    {ok, [{session_id, Id}]} = ?M:connection_information(S, [session_id]),
    ok = ?M:close(S),
    Id.

%% The ssl server: accepts forever, each connection in a process that
%% stays until its client closes.
serve(Parent, Pki) ->
    {ok, L} = ssl:listen(0, [{reuseaddr, true} | rssl_test_lib:server_opts(Pki, ?V, server)]),
    {ok, {_, Port}} = ssl:sockname(L),
    Parent ! {self(), port, Port},
    accept_loop(L).

accept_loop(L) ->
    {ok, T} = ssl:transport_accept(L),
    Pid = spawn(fun() ->
                        receive go -> ok end,
                        case ssl:handshake(T, ?T) of
                            {ok, S} -> _ = ssl:recv(S, 0), ssl:close(S);
                            _ -> ok
                        end
                end),
    ok = ssl:controlling_process(T, Pid),
    Pid ! go,
    accept_loop(L).
