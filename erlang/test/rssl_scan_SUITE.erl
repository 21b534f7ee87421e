%% Security defaults: sslyze (PyPI) scans a server of the module under test
%% (?M, rssl by default) that has only a certificate and key, and an OTP
%% ssl server with the same options, in the same run.
%%
%% The ?M server must offer no SSL 2/3, TLS 1.0/1.1, RC4, export, NULL,
%% DES or anonymous suite, support secure renegotiation, not let a client
%% renegotiate without limit (sslyze's client renegotiation DoS check),
%% not compress, and be free of Heartbleed and CCS injection; and no
%% finding sslyze makes about it may be missing from OTP's ssl.
%%
%% Only the scan commands asserted on are run (a few seconds in all).
-module(rssl_scan_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(T, 60000).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([default_server_scan/1]).

suite() -> [{timetrap, {seconds, 90}}].

all() -> [default_server_scan].

init_per_suite(Config) ->
    Config1 = rssl_socket_lib:init_suite(?M, Config),
    logger:add_primary_filter(?MODULE, {fun quiet_tls_reports/2, []}),
    Config1.

end_per_suite(_Config) ->
    logger:remove_primary_filter(?MODULE),
    ok.

%% OTP's ssl logs each alert of the scanned OTP server (sslyze's probes).
quiet_tls_reports(#{msg := {report, #{alert := _}}}, _) -> stop;
quiet_tls_reports(#{meta := #{domain := [otp, ssl | _]}}, _) -> stop;
quiet_tls_reports(_, _) -> ignore.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

default_server_scan(Config) ->
    Opts = scan_identity(Config),
    Scanned = scan(Config, ?M, Opts),
    Otp = scan(Config, ssl, Opts),
    ct:log("~p findings: ~p~nssl findings: ~p", [?M, findings(Scanned), findings(Otp)]),
    %% What sslyze must have checked, and found absent.
    [?assertEqual({Version, false}, {Version, supported(Scanned, Version)})
     || Version <- [ssl_2_0, ssl_3_0, tls_1_0, tls_1_1]],
    ?assertEqual({tls_1_3, true}, {tls_1_3, supported(Scanned, tls_1_3)}),
    ?assertEqual({tls_1_2, true}, {tls_1_2, supported(Scanned, tls_1_2)}),
    ?assertEqual([], [F || {weak_suite, _, _} = F <- findings(Scanned)]),
    ?assertEqual([], [F || {anonymous_suite, _, _} = F <- findings(Scanned)]),
    ?assertEqual({secure_renegotiation, true}, lists:keyfind(secure_renegotiation, 1, Scanned)),
    ?assertEqual({client_renegotiation_dos, false},
                 lists:keyfind(client_renegotiation_dos, 1, Scanned)),
    ?assertEqual({compression, false}, lists:keyfind(compression, 1, Scanned)),
    ?assertEqual({heartbleed, false}, lists:keyfind(heartbleed, 1, Scanned)),
    ?assertEqual({ccs_injection, false}, lists:keyfind(ccs_injection, 1, Scanned)),
    ?assertEqual({fallback_scsv, true}, lists:keyfind(fallback_scsv, 1, Scanned)),
    %% Nothing worse than OTP's ssl.
    ?assertEqual([], findings(Scanned) -- findings(Otp)).

%%% Scanning ------------------------------------------------------------------

%% A self-signed P-256 certificate without key usage limits. (With the
%% test PKI's digitalSignature-only certificate OTP's ssl still picks the
%% static ECDH suites sslyze offers, whose key agreement that certificate
%% forbids, and sslyze's TLS 1.2 scan of it ends in an error: no
%% comparison.)
scan_identity(Config) ->
    Dir = ?config(priv_dir, Config),
    Tag = integer_to_list(erlang:unique_integer([positive])),
    Cert = filename:join(Dir, "scan-cert-" ++ Tag ++ ".pem"),
    Key = filename:join(Dir, "scan-key-" ++ Tag ++ ".pem"),
    Tool = rssl_tool_lib:start(
             join([rssl_tool_lib:exe("openssl"), "req", "-x509", "-newkey", "ec",
                   "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                   "-days", "30", "-keyout", Key, "-out", Cert])),
    {0, _} = rssl_tool_lib:wait_exit(Tool, ?T),
    [{certfile, Cert}, {keyfile, Key}].

%% Scans a Mod server with Opts; returns sslyze's results as terms (see
%% rssl_scan_SUITE_data/sslyze_terms.py).
scan(Config, Mod, Opts) ->
    Python = rssl_tool_lib:exe("python3"),
    Listener = rssl_tool_lib:listener(Mod, Opts),
    Port = integer_to_list(rssl_tool_lib:listener_port(Listener)),
    Json = rssl_tool_lib:write_temp(Config, "sslyze-" ++ atom_to_list(Mod) ++ ".json", <<>>),
    try
        Tool = rssl_tool_lib:start(
                 join([Python, "-m", "sslyze", "--quiet", "--mozilla_config", "disable",
                       "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
                       "--reneg", "--compression", "--heartbleed", "--openssl_ccs", "--fallback",
                       "--json_out", Json, "localhost:" ++ Port ++ "{127.0.0.1}"])),
        case rssl_tool_lib:wait_exit(Tool, ?T) of
            {0, _} -> ok;
            {_, Out} ->
                case binary:match(Out, <<"No module named sslyze">>) of
                    nomatch -> ct:fail({sslyze_failed, Out});
                    _ -> ct:fail({tool_missing, sslyze, ".ci/setup installs it with pip"})
                end
        end,
        Terms = rssl_tool_lib:write_temp(Config, "sslyze-terms", <<>>),
        Conv = rssl_tool_lib:start(join([Python, script(Config), Json, ">", Terms])),
        {0, _} = rssl_tool_lib:wait_exit(Conv, ?T),
        {ok, Results} = file:consult(Terms),
        ct:log("~p: ~p", [Mod, Results]),
        ?assertEqual({connectivity, 'COMPLETED'}, lists:keyfind(connectivity, 1, Results)),
        ?assertEqual([], [S || {status, _, Status} = S <- Results, Status =/= 'COMPLETED']),
        Results
    after
        rssl_tool_lib:listener_stop(Listener),
        flush_handshakes()
    end.

flush_handshakes() ->
    receive {listener, _, handshake, _} -> flush_handshakes() after 0 -> ok end.

supported(Results, Version) ->
    case lists:keyfind(Version, 2, [R || {version, _, _} = R <- Results]) of
        {version, Version, Supported} -> Supported;
        false -> ct:fail({not_scanned, Version, Results})
    end.

%% What a scan says is wrong, one term per finding.
findings(Results) ->
    lists:usort(
      [{protocol, V} || {version, V, true} <- Results,
                        lists:member(V, [ssl_2_0, ssl_3_0, tls_1_0, tls_1_1])] ++
      [{weak_suite, V, Name} || {suite, V, Name, _, _} <- Results, weak(Name)] ++
      [{anonymous_suite, V, Name} || {suite, V, Name, true, _} <- Results] ++
      [{no_forward_secrecy, V, Name} || {suite, V, Name, _, false} <- Results] ++
      [no_secure_renegotiation || {secure_renegotiation, false} <- Results] ++
      [client_renegotiation_dos || {client_renegotiation_dos, true} <- Results] ++
      [compression || {compression, true} <- Results] ++
      [heartbleed || {heartbleed, true} <- Results] ++
      [ccs_injection || {ccs_injection, true} <- Results] ++
      [no_fallback_scsv || {fallback_scsv, false} <- Results]).

weak(Name) ->
    lists:any(fun(Part) -> string:find(atom_to_list(Name), Part) =/= nomatch end,
              ["RC4", "EXPORT", "NULL", "anon", "_DES_", "DES40", "3DES", "MD5", "IDEA", "RC2"]).

script(Config) ->
    filename:join(?config(data_dir, Config), "sslyze_terms.py").

join(Words) ->
    lists:join(" ", [case W of
                         ">" -> W;
                         _ -> rssl_tool_lib:q(W)
                     end || W <- Words]).
