%% Session resumption for the module under test (?M, rssl by default) with
%% OTP's ssl as the peer: TLS 1.2 session reuse by a client connecting to
%% the same server again (reuse_sessions), a server's reuse_session fun,
%% TLS 1.3 session tickets (client auto, server stateless and stateful),
%% and the session_id / session_resumption items of
%% connection_information/2.
%%
%% A resumed TLS 1.2 session keeps its session id, which is what these
%% cases compare on both ends: OTP 25's ssl reports session_resumption
%% false for TLS 1.2 even when it resumed, rssl reports true (README), and
%% each module's own answer is checked (tls12_resumed/1). For TLS 1.3,
%% where the session id means nothing, session_resumption is compared.
%%
%% Compile with {d, 'M', ssl} to run the same checks with ssl on both ends.
-module(rssl_session_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).

-export([suite/0, all/0,
         init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([client_reuses_session/1, client_reuse_sessions_false/1,
         server_resumes/1, server_resumes_openssl_client_by_id/1,
         server_reuse_session_fun/1, server_reuse_sessions_false/1,
         client_tickets_auto/1, client_tickets_disabled/1,
         server_tickets_stateless/1, server_tickets_stateful/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [client_reuses_session, client_reuse_sessions_false,
     server_resumes, server_resumes_openssl_client_by_id,
     server_reuse_session_fun, server_reuse_sessions_false,
     client_tickets_auto, client_tickets_disabled,
     server_tickets_stateless, server_tickets_stateful].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% TLS 1.2 ---------------------------------------------------------------

%% A second connection to the same server resumes the first one's session
%% (same session id); the server agrees.
client_reuses_session(Config) ->
    [First, Second] = m_client_twice(Config, 'tlsv1.2', [], []),
    ?assertMatch(#{resumed := false, server_resumed := false}, First),
    #{id := Id} = First,
    ?assertMatch(#{id := Id, server_id := Id}, Second),
    ?assertEqual(32, byte_size(Id)),
    ?assertEqual({tls12_resumed(?M), tls12_resumed(?PEER)},
                 {maps:get(resumed, Second), maps:get(server_resumed, Second)}).

%% {reuse_sessions, false}: every connection is a full handshake.
client_reuse_sessions_false(Config) ->
    [First, Second] = m_client_twice(Config, 'tlsv1.2', [{reuse_sessions, false}], []),
    ?assertMatch(#{resumed := false}, First),
    ?assertMatch(#{resumed := false, server_resumed := false}, Second),
    ?assertNotEqual(maps:get(id, First), maps:get(id, Second)).

%% An ssl client reuses its session with ?M as server.
server_resumes(Config) ->
    [First, Second] = m_server_twice(Config, 'tlsv1.2', [], []),
    ?assertMatch(#{resumed := false, client_resumed := false}, First),
    #{id := Id} = First,
    ?assertMatch(#{id := Id, client_id := Id}, Second),
    ?assertEqual({tls12_resumed(?M), tls12_resumed(?PEER)},
                 {maps:get(resumed, Second), maps:get(client_resumed, Second)}).

%% A TLS 1.2 session resumes by its id, as with OTP's servers, also for a
%% client that offers RFC 5077 tickets: `openssl s_client -tls1_2
%% -sess_out', then `-sess_in' with the saved session. The server sends no
%% ticket (the saved session has none) and its session id, which s_client
%% shows and offers again ("Reused"), with TLS 1.2 alone and with TLS 1.3
%% enabled too (TLS 1.3 tickets are a separate choice, session_tickets).
server_resumes_openssl_client_by_id(Config) ->
    Pki = ?config(pki, Config),
    #{ca := #{cert := Ca}} = Pki,
    SessFile = filename:join(?config(priv_dir, Config), "tls12_session.pem"),
    [begin
         SOpts = lists:keystore(versions, 1, server_opts(Config, 'tlsv1.2'), {versions, Versions}),
         {ok, L} = ?M:listen(0, [{reuseaddr, true} | SOpts]),
         Once = fun(SessArg, Expect) ->
                        Args = ["-tls1_2", SessArg, rssl_tool_lib:q(SessFile)],
                        rssl_tool_lib:s_client_session(?M, L, {Ca, Args}, Expect, ?T)
                end,
         {Id, #{id := Id, resumed := false}} = Once("-sess_out", <<"New, TLSv1.2">>),
         ?assertEqual(32, byte_size(Id)),
         Saved = os:cmd(rssl_tool_lib:q(rssl_tool_lib:exe("openssl")) ++ " sess_id -noout -text -in "
                        ++ rssl_tool_lib:q(SessFile)),
         ?assertEqual(nomatch, string:find(Saved, "TLS session ticket:"), Saved),
         ?assertEqual({Id, #{id => Id, resumed => tls12_resumed(?M)}},
                      Once("-sess_in", <<"Reused, TLSv1.2">>)),
         ok = ?M:close(L)
     end || Versions <- [['tlsv1.2'], ['tlsv1.3', 'tlsv1.2']]],
    ok.

%% The server's reuse_session fun decides, and sees the offered session:
%% its id, no client certificate, compression 0 and the suite.
server_reuse_session_fun(Config) ->
    Self = self(),
    Fun = fun(Answer) ->
                  fun(Id, PeerCert, Compression, Suite) ->
                          Self ! {reuse, Id, PeerCert, Compression, Suite},
                          Answer
                  end
          end,
    [First, Second] = m_server_twice(Config, 'tlsv1.2', [{reuse_session, Fun(false)}], []),
    ?assertMatch(#{resumed := false}, First),
    ?assertMatch(#{resumed := false, client_resumed := false}, Second),
    #{id := Id} = First,
    ?assertNotEqual(Id, maps:get(id, Second)),
    receive {reuse, Id1, PeerCert, Compression, Suite} ->
            ?assertEqual({Id, undefined, 0}, {Id1, PeerCert, Compression}),
            ?assert(is_binary(Suite) andalso byte_size(Suite) =:= 2)
    after 0 -> ct:fail(reuse_session_not_called)
    end,
    [#{id := Id2}, Again] = m_server_twice(Config, 'tlsv1.2', [{reuse_session, Fun(true)}], []),
    ?assertMatch(#{id := Id2, client_id := Id2}, Again),
    ?assertEqual(tls12_resumed(?M), maps:get(resumed, Again)),
    flush_reuse().

%% A server with {reuse_sessions, false} resumes nothing.
server_reuse_sessions_false(Config) ->
    [First, Second] = m_server_twice(Config, 'tlsv1.2', [{reuse_sessions, false}], []),
    ?assertMatch(#{resumed := false, client_resumed := false}, Second),
    %% (OpenSSL sends an empty session id when it keeps no sessions.)
    ?assert(maps:get(id, Second) =:= <<>> orelse maps:get(id, First) =/= maps:get(id, Second)).

%%% TLS 1.3 ---------------------------------------------------------------

%% session_tickets auto: the client keeps the tickets a stateless server
%% sends and resumes with one.
client_tickets_auto(Config) ->
    [First, Second] = m_client_twice(Config, 'tlsv1.3', [{session_tickets, auto}],
                                     [{session_tickets, stateless}]),
    ?assertMatch(#{resumed := false}, First),
    ?assertMatch(#{resumed := true, server_resumed := true}, Second).

%% By default a client does not use tickets.
client_tickets_disabled(Config) ->
    [_, Second] = m_client_twice(Config, 'tlsv1.3', [], [{session_tickets, stateless}]),
    ?assertMatch(#{resumed := false, server_resumed := false}, Second).

%% ?M servers send tickets when asked, stateless or stateful; the ssl
%% client takes them in manual mode and offers one with use_ticket.
server_tickets_stateless(Config) ->
    server_tickets(Config, stateless).

server_tickets_stateful(Config) ->
    server_tickets(Config, stateful).

server_tickets(Config, Mode) ->
    [First, Second] = m_server_twice(Config, 'tlsv1.3', [{session_tickets, Mode}],
                                     [{session_tickets, manual}]),
    ?assertMatch(#{resumed := false}, First),
    ?assertMatch(#{resumed := true, client_resumed := true}, Second).

%%% Helpers -----------------------------------------------------------------

client_opts(Config, Version) ->
    rssl_test_lib:client_opts(?config(pki, Config), Version, ca).

server_opts(Config, Version) ->
    rssl_test_lib:server_opts(?config(pki, Config), Version, server).

%% Two ?M client connections, one after the other, to one ssl server.
%% Returns what each saw: #{resumed, id, server_resumed}.
m_client_twice(Config, Version, COpts, SOpts) ->
    {ok, L} = ?PEER:listen(0, [{reuseaddr, true} | SOpts ++ server_opts(Config, Version)]),
    {ok, {_, Port}} = ?PEER:sockname(L),
    Self = self(),
    Server = spawn_link(fun() -> serve(?PEER, L, 2, Self) end),
    Results = [begin
                   {ok, S} = ?M:connect("localhost", Port, COpts ++ client_opts(Config, Version), ?T),
                   ok = ?M:send(S, <<"ping">>),
                   %% The reply comes after the server's tickets (TLS 1.3).
                   ?assertEqual({ok, <<"pong">>}, ?M:recv(S, 4, ?T)),
                   Seen = seen(?M, S),
                   ok = ?M:close(S),
                   session_saved(?M),
                   receive {Server, served, Served, ServerId} ->
                           Seen#{server_resumed => Served, server_id => ServerId}
                   after ?T -> ct:fail(server_silent)
                   end
               end || _ <- [1, 2]],
    ok = ?PEER:close(L),
    Results.

%% Two ssl client connections, one after the other, to one ?M server.
%% Returns what the server saw of each: #{resumed, id, client_resumed}.
m_server_twice(Config, Version, SOpts, COpts) ->
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | SOpts ++ server_opts(Config, Version)]),
    {ok, {_, Port}} = ?M:sockname(L),
    Self = self(),
    Client = spawn_link(fun() -> clients(Port, 2, COpts ++ client_opts(Config, Version), Self) end),
    Results = [begin
                   {ok, T} = ?M:transport_accept(L, ?T),
                   {ok, S} = ?M:handshake(T, ?T),
                   ?assertEqual({ok, <<"ping">>}, ?M:recv(S, 4, ?T)),
                   ok = ?M:send(S, <<"pong">>),
                   Seen = seen(?M, S),
                   ?assertEqual({error, closed}, ?M:recv(S, 0, ?T)),
                   ok = ?M:close(S),
                   receive {Client, client, Resumed, ClientId} ->
                           Seen#{client_resumed => Resumed, client_id => ClientId}
                   after ?T -> ct:fail(client_silent)
                   end
               end || _ <- [1, 2]],
    ok = ?M:close(L),
    Results.

seen(Mod, S) ->
    {ok, Info} = Mod:connection_information(S, [session_id, session_resumption]),
    #{resumed => proplists:get_value(session_resumption, Info),
      id => proplists:get_value(session_id, Info)}.

%% The ssl server: N connections, each ping/pong until the client closes;
%% reports whether each was resumed.
serve(_Mod, _L, 0, _Parent) ->
    ok;
serve(Mod, L, N, Parent) ->
    {ok, T} = Mod:transport_accept(L, ?T),
    {ok, S} = Mod:handshake(T, ?T),
    {ok, <<"ping">>} = Mod:recv(S, 4, ?T),
    ok = Mod:send(S, <<"pong">>),
    {ok, Info} = Mod:connection_information(S, [session_resumption, session_id]),
    {error, closed} = Mod:recv(S, 0, ?T),
    _ = Mod:close(S),
    Parent ! {self(), served, proplists:get_value(session_resumption, Info),
              proplists:get_value(session_id, Info)},
    serve(Mod, L, N - 1, Parent).

%% The ssl client: N connections one after the other.
clients(_Port, 0, _Opts, _Parent) ->
    ok;
clients(Port, N, Opts0, Parent) ->
    Opts = case get(ticket) of
               undefined -> Opts0;
               Ticket -> [{use_ticket, [Ticket]} | Opts0]
           end,
    {ok, S} = ?PEER:connect("localhost", Port, Opts, ?T),
    ok = ?PEER:send(S, <<"ping">>),
    {ok, <<"pong">>} = ?PEER:recv(S, 4, ?T),
    case proplists:get_value(session_tickets, Opts0) of
        manual ->
            receive {ssl, session_ticket, T} -> put(ticket, T)
            after ?T -> error(no_ticket)
            end;
        _ ->
            ok
    end,
    {ok, Info} = ?PEER:connection_information(S, [session_resumption, session_id]),
    ok = ?PEER:close(S),
    Parent ! {self(), client, proplists:get_value(session_resumption, Info),
              proplists:get_value(session_id, Info)},
    session_saved(?PEER),
    clients(Port, N - 1, Opts, Parent).

%% Returns once Mod's client has saved what it may offer next time, after
%% its connect (and, in TLS 1.3, a recv of data sent after the tickets)
%% returned. OTP's ssl client hands its TLS 1.2 session to ssl_manager
%% and its TLS 1.3 tickets to tls_client_ticket_store in casts sent before
%% that; a call to each is answered only after them. rssl saves both
%% (OpenSSL's new-session callback) before connect or recv returns.
session_saved(ssl) ->
    _ = sys:get_state(ssl_manager),
    _ = sys:get_state(tls_client_ticket_store),
    ok;
session_saved(rssl) ->
    ok.

%% What session_resumption says for a resumed TLS 1.2 session (README:
%% OTP 25's ssl says false).
tls12_resumed(ssl) -> false;
tls12_resumed(rssl) -> true.

flush_reuse() ->
    receive {reuse, _, _, _, _} -> flush_reuse() after 0 -> ok end.
