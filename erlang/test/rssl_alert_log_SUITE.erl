%% Alerts logged through `logger' by the module under test (?M, rssl by
%% default) as OTP 25's ssl logs them: a notice report with OTP's alert
%% record, `alerter' own or peer, formatted by its report_cb into OTP's
%% text; `log_level' above notice and `{log_alert, false}' silence it. A
%% logger handler of the test captures the events. The ssl peer logs
%% nothing itself ({log_alert, false}).
-module(rssl_alert_log_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2, log/2]).
-export([own_alert_logged/1, peer_alert_logged/1, log_level_silences/1,
         log_alert_false_silences/1, log_level_debug_logs/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [own_alert_logged, peer_alert_logged, log_level_silences, log_alert_false_silences,
     log_level_debug_logs].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}, level => all}),
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    ok = logger:remove_handler(?MODULE),
    rssl_test_lib:end_per_testcase(Config).

%% The handler: alert reports go to the test process.
log(#{msg := {report, #{alert := _} = Report}} = Event, #{config := #{pid := Pid}}) ->
    Pid ! {alert_logged, Event, Report};
log(_, _) ->
    ok.

%%% Cases -------------------------------------------------------------------

%% A ?M client that rejects the server's certificate logs the alert it
%% sent: notice, OTP's report, OTP's text.
own_alert_logged(Config) ->
    Pki = ?config(pki, Config),
    {error, {tls_alert, {unknown_ca, _}}} = reject_server(Pki, []),
    #{level := Level, meta := Meta, report := Report} = next_alert(client),
    ?assertEqual(notice, Level),
    ?assertMatch(#{alert := {alert, 2, 48, #{file := _, line := _}, client, _},
                   alerter := own, protocol := "TLS", role := client,
                   statename := State} when is_atom(State), Report),
    Text = text(Meta, Report),
    ?assertMatch({match, _}, re:run(Text, "^TLS client: In state \\S+ at \\S+:\\d+ "
                                          "generated CLIENT ALERT: Fatal - Unknown CA")),
    no_more_alerts().

%% A ?M server whose client rejects its certificate logs the alert it
%% received.
peer_alert_logged(Config) ->
    Pki = ?config(pki, Config),
    {ok, L} = ?M:listen(0, [{reuseaddr, true} | rssl_test_lib:server_opts(Pki, 'tlsv1.2', server)]),
    {ok, {_, Port}} = ?M:sockname(L),
    Client = rssl_test_lib:start_client(ssl, {127, 0, 0, 1}, Port,
                                        [{log_alert, false}
                                         | rssl_test_lib:client_opts(Pki, 'tlsv1.2', other_ca)],
                                        fun(R) -> R end),
    {ok, T} = ?M:transport_accept(L, ?T),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, ?M:handshake(T, ?T)),
    ok = ?M:close(L),
    _ = rssl_test_lib:await(Client),
    #{level := notice, meta := Meta, report := Report} = next_alert(server),
    ?assertMatch(#{alert := {alert, 2, 48, _, client, _}, alerter := peer,
                   protocol := "TLS", role := server}, Report),
    ?assertMatch({match, _}, re:run(text(Meta, Report),
                                    "^TLS server: In state \\S+ received CLIENT ALERT: "
                                    "Fatal - Unknown CA")).

%% log_level above notice: nothing.
log_level_silences(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {error, {tls_alert, {unknown_ca, _}}} = reject_server(Pki, [{log_level, Level}]),
         no_more_alerts()
     end || Level <- [warning, error, none]].

%% {log_alert, false}: nothing.
log_alert_false_silences(Config) ->
    Pki = ?config(pki, Config),
    {error, {tls_alert, {unknown_ca, _}}} = reject_server(Pki, [{log_alert, false}]),
    no_more_alerts().

%% log_level at or below notice: logged.
log_level_debug_logs(Config) ->
    Pki = ?config(pki, Config),
    [begin
         {error, {tls_alert, {unknown_ca, _}}} = reject_server(Pki, [{log_level, Level}]),
         #{level := notice} = next_alert(client)
     end || Level <- [debug, info, notice]],
    no_more_alerts().

%%% Helpers -----------------------------------------------------------------

%% ?M client trusting another CA than the server's: it sends unknown_ca.
reject_server(Pki, Extra) ->
    {Pid, Port} = rssl_test_lib:start_server(ssl, [{log_alert, false}
                                                   | rssl_test_lib:server_opts(Pki, 'tlsv1.3', server)],
                                             fun(R) -> R end),
    Result = ?M:connect({127, 0, 0, 1}, Port,
                        Extra ++ rssl_test_lib:client_opts(Pki, 'tlsv1.3', other_ca), ?T),
    _ = rssl_test_lib:await(Pid),
    Result.

%% The next alert logged by a connection in `Role'.
next_alert(Role) ->
    receive
        {alert_logged, #{level := Level, meta := Meta}, #{role := Role} = Report} ->
            #{level => Level, meta => Meta, report => Report}
    after ?T ->
        error({no_alert_logged, Role})
    end.

no_more_alerts() ->
    receive
        {alert_logged, _, Report} -> error({unexpected_alert_log, Report})
    after 0 ->
        ok
    end.

%% The text logger's formatter would print, through the report_cb.
text(#{report_cb := Cb}, Report) ->
    {Format, Args} = Cb(Report),
    lists:flatten(io_lib:format(Format, Args)).
