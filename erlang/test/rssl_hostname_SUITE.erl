%% customize_hostname_check on a client of the module under test (?M,
%% rssl by default): any match_fun, fqdn_fun or fail_callback of
%% public_key:pkix_verify_hostname/3. Each customization, certificate and
%% host name is tried with ?M and with OTP's ssl as the client of the same
%% ssl server: both must connect, or both fail with the same alert. A
%% verify_fun hears `{bad_cert, hostname_check_failed}' as with ssl.
-module(rssl_hostname_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 10000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([same_outcome_as_ssl/1, verify_fun_hears_hostname_failure/1,
         server_ignores_it/1, bad_values_refused/1]).

suite() -> [{timetrap, {seconds, 180}}].

all() ->
    [same_outcome_as_ssl, verify_fun_hears_hostname_failure, server_ignores_it,
     bad_values_refused].

init_per_suite(Config) ->
    rssl_socket_lib:init_suite(?M, Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

same_outcome_as_ssl(Config) ->
    Pki = ?config(pki, Config),
    Https = public_key:pkix_verify_hostname_match_fun(https),
    Customs =
        [{always, [{match_fun, fun(_, _) -> true end}]},
         {never, [{match_fun, fun(_, _) -> false end}]},
         {default, [{match_fun, fun(_, _) -> default end}]},
         {case_sensitive, [{match_fun, fun({dns_id, R}, {dns_id, P}) -> R =:= P;
                                          (_, _) -> default
                                       end}]},
         {https_fqdn, [{match_fun, Https}, {fqdn_fun, fun(_) -> default end}]},
         {fqdn_undefined, [{fqdn_fun, fun(_) -> undefined end}]},
         {fail_accepts, [{fail_callback, fun(_) -> true end}]},
         {fail_refuses, [{fail_callback, fun(_) -> false end}]}],
    Targets = [{server, "localhost"}, {wrong_host, "localhost"},
               {wildcard, "a.wild.example"}, {server, "LOCALHOST"}],
    Outcomes =
        [begin
             Ours = outcome(?M, Pki, Cert, Name, Custom),
             Theirs = outcome(ssl, Pki, Cert, Name, Custom),
             ?assertEqual({Label, Cert, Name, Theirs}, {Label, Cert, Name, Ours}),
             Ours
         end || {Label, Custom} <- Customs, {Cert, Name} <- Targets],
    %% The cases decide: both outcomes occur.
    ?assert(lists:member(ok, Outcomes)),
    ?assert(lists:member({error, handshake_failure}, Outcomes)).

%% The user's verify_fun gets the failed check at the peer certificate,
%% and may accept it.
verify_fun_hears_hostname_failure(Config) ->
    Pki = ?config(pki, Config),
    Parent = self(),
    Fun = fun(_, Event, State) ->
                  Parent ! {event, Event},
                  case Event of
                      {bad_cert, hostname_check_failed} -> {valid, State};
                      {bad_cert, _} = R -> {fail, R};
                      _ -> {valid, State}
                  end
          end,
    Opts = [{verify_fun, {Fun, []}},
            {customize_hostname_check, [{match_fun, fun(_, _) -> false end}]}],
    ok = connect(?M, Pki, server, "localhost", Opts),
    Events = collect_events(),
    ?assert(lists:member({bad_cert, hostname_check_failed}, Events)),
    ?assertNot(lists:member(valid_peer, Events)).

%% On a server the option is checked and has no effect, as in OTP.
server_ignores_it(Config) ->
    Pki = ?config(pki, Config),
    Opts = [{customize_hostname_check, [{match_fun, fun(_, _) -> false end}]}
            | rssl_test_lib:server_opts(Pki, 'tlsv1.3', server)],
    {S, Peer} = rssl_test_lib:open(?M, server, Opts, ssl,
                                   rssl_test_lib:client_opts(Pki, 'tlsv1.3', ca), #{}),
    ok = ?M:close(S),
    ok = rssl_test_lib:stop_peer(Peer).

%% rssl checks the values at connect (OTP's ssl only when it uses them).
bad_values_refused(_Config) ->
    case ?M of
        rssl ->
            [?assertMatch({error, {options, _}},
                          rssl:connect("localhost", 1, [{customize_hostname_check, Bad}], ?T))
             || Bad <- [not_a_list, [{match_fun, fun(_) -> true end}], [{fqdn_fun, 42}]]];
        _ ->
            {skip, "ssl checks the values later"}
    end.

%%% Helpers -----------------------------------------------------------------

%% ok, or {error, AlertName}: Mod's client with Custom against an ssl
%% server presenting Cert, asking for Name.
outcome(Mod, Pki, Cert, Name, Custom) ->
    case connect(Mod, Pki, Cert, Name, [{customize_hostname_check, Custom}]) of
        ok -> ok;
        {error, {tls_alert, {Alert, _}}} -> {error, Alert};
        Other -> Other
    end.

connect(Mod, Pki, Cert, Name, Opts) ->
    {Pid, Port} = rssl_test_lib:start_server(
                    ssl, [{log_alert, false} | rssl_test_lib:server_opts(Pki, 'tlsv1.3', Cert)],
                    fun(R) -> R end),
    Result = case Mod:connect({127, 0, 0, 1}, Port,
                              [{server_name_indication, Name}, {log_alert, false}
                               | Opts ++ rssl_test_lib:client_opts(Pki, 'tlsv1.3', ca)], ?T) of
                 {ok, S} -> Mod:close(S);
                 Error -> Error
             end,
    _ = rssl_test_lib:await(Pid),
    Result.

collect_events() ->
    receive {event, E} -> [E | collect_events()]
    after 0 -> []
    end.
