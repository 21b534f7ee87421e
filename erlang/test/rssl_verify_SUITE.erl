%% Certificate verification of the module under test (?M, rssl by default)
%% against OTP's ssl as the peer: verify_peer with a trusted CA, unknown CA
%% on either side, hostname checks, verify_none, client certificates and
%% server name indication, over TLS 1.3 and 1.2.
%%
%% Compile with {d, 'M', ssl} to run the same checks with ssl on both ends.
-module(rssl_verify_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-ifndef(M).
-define(M, rssl).
-endif.
-define(PEER, ssl).
-define(T, 10000).
-define(P, rssl_peer_lib).

-export([suite/0, all/0, groups/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([wildcard_needs_https_match_fun/1, cacerts_as_combined_certs/1]).
-export([verify_peer_hostname/1, verify_peer_ip_address/1,
         client_rejects_unknown_ca/1, client_rejects_self_signed/1,
         server_sees_client_unknown_ca_alert/1,
         server_rejects_unknown_ca/1, client_sees_server_unknown_ca_alert/1,
         mutual_auth/1, missing_client_cert/1,
         hostname_mismatch/1, sni_option_hostname_mismatch/1,
         sni_option_used_for_hostname_check/1, verify_none_unknown_ca/1,
         sni_sent_to_server/1, sni_disable/1,
         server_sni_hosts/1, server_sni_fun/1]).
-export([client_rejects_expired/1, client_rejects_not_yet_valid/1,
         client_rejects_missing_intermediate/1, client_rejects_wrong_purpose/1,
         client_rejects_ca_false_issuer/1, client_rejects_path_length_exceeded/1,
         anchor_path_length_not_applied/1, client_rejects_unknown_critical_extension/1,
         server_rejects_client_cert_wrong_purpose/1]).

suite() -> [{timetrap, {seconds, 30}}].

all() -> [{group, 'tlsv1.3'}, {group, 'tlsv1.2'}].

groups() ->
    Cases = [verify_peer_hostname, verify_peer_ip_address,
             client_rejects_unknown_ca, client_rejects_self_signed,
             server_sees_client_unknown_ca_alert,
             server_rejects_unknown_ca, client_sees_server_unknown_ca_alert,
             mutual_auth, missing_client_cert,
             cacerts_as_combined_certs, hostname_mismatch, wildcard_needs_https_match_fun,
             sni_option_hostname_mismatch,
             sni_option_used_for_hostname_check, verify_none_unknown_ca,
             sni_sent_to_server, sni_disable,
             server_sni_hosts, server_sni_fun,
             client_rejects_expired, client_rejects_not_yet_valid,
             client_rejects_missing_intermediate, client_rejects_wrong_purpose,
             client_rejects_ca_false_issuer, client_rejects_path_length_exceeded,
             anchor_path_length_not_applied, client_rejects_unknown_critical_extension,
             server_rejects_client_cert_wrong_purpose],
    [{'tlsv1.3', [], Cases}, {'tlsv1.2', [], Cases}].

init_per_suite(Config0) ->
    Config = rssl_socket_lib:init_suite(?M, Config0),
    Pki = rssl_test_pki:make_flawed(?config(priv_dir, Config), ?config(pki, Config)),
    lists:keystore(pki, 1, Config, {pki, Pki}).

end_per_suite(_Config) ->
    ok.

init_per_group(Version, Config) -> [{tls_version, Version} | Config].

end_per_group(_, _Config) -> ok.

init_per_testcase(_TC, Config) ->
    [{resources, rssl_test_lib:snapshot()} | Config].

end_per_testcase(_TC, Config) ->
    rssl_test_lib:end_per_testcase(Config).

%%% Cases -------------------------------------------------------------------

%% verify_peer with the right CA, connecting by name: the peer certificate
%% is the server's.
verify_peer_hostname(Config) ->
    {{ok, S}, Server} = ?P:m_client(?M, ?P:client_opts(Config, ca), ?P:server_opts(Config, server), "localhost"),
    ?assertEqual({ok, ?P:der(Config, server)}, ?M:peercert(S)),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% cacerts as public_key:cacerts_get/0 gives them (#cert{der, otp} records).
cacerts_as_combined_certs(Config) ->
    CaDer = ?P:der(Config, ca),
    Combined = {cert, CaDer, public_key:pkix_decode_cert(CaDer, otp)},
    COpts = [{verify, verify_peer}, {cacerts, [Combined]} | ?P:base_opts(Config)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% ... and by IP address (the certificate has IP:127.0.0.1).
verify_peer_ip_address(Config) ->
    {{ok, S}, Server} = ?P:m_client(?M, ?P:client_opts(Config, ca), ?P:server_opts(Config, server), {127, 0, 0, 1}),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% The client does not know the server's CA: unknown_ca alert on both ends.
client_rejects_unknown_ca(Config) ->
    {Result, Server} = ?P:m_client(?M, ?P:client_opts(Config, other_ca), ?P:server_opts(Config, server), "localhost"),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, Result),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl_test_lib:await(Server)).

%% A self-signed server certificate the client does not trust is a bad
%% certificate (OTP's selfsigned_peer), not an unknown CA, in both
%% versions; the server hears the same alert.
client_rejects_self_signed(Config) ->
    {Result, Server} = ?P:m_client(?M, ?P:client_opts(Config, other_ca), ?P:server_opts(Config, self_signed), "localhost"),
    ?assertMatch({error, {tls_alert, {bad_certificate, "TLS client: " ++ _}}}, Result),
    ?assertMatch({error, {tls_alert, {bad_certificate, _}}}, rssl_test_lib:await(Server)).

%% ?M as server, the ssl client rejects its certificate: the server's
%% handshake reports the client's unknown_ca alert.
server_sees_client_unknown_ca_alert(Config) ->
    {Result, Client} = ?P:m_server(?M, ?P:server_opts(Config, server), ?P:client_opts(Config, other_ca), "localhost"),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, Result),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl_test_lib:await(Client)).

%% ?M as server requiring a client certificate from a CA it does not know.
%% The client has no CA file, so it cannot match its chain against the
%% server's certificate_authorities and sends its certificate anyway (an
%% ssl client with a CA file would send none, and get certificate_required).
server_rejects_unknown_ca(Config) ->
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, other_ca),
    COpts = [{verify, verify_none} | ?P:base_opts(Config)] ++ ?P:cert_opts(Config, client),
    {Result, Client} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, Result),
    ?P:peer_saw_alert(Config, unknown_ca, rssl_test_lib:await(Client)).

%% ?M as client with a certificate the ssl server does not trust. In TLS
%% 1.3 the client's handshake is over before the server judges its
%% certificate: connect returns {ok, S} and the alert comes next, as
%% {ssl_error, S, Alert} on an active socket.
client_sees_server_unknown_ca_alert(Config) ->
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, other_ca),
    COpts = [{verify, verify_none} | ?P:base_opts(Config)] ++ ?P:cert_opts(Config, client),
    [begin
         {Result, Server} = ?P:m_client(?M, rssl_test_lib:merge_opts([{active, Active}], COpts),
                                        SOpts, "localhost"),
         case {?config(tls_version, Config), Result} of
             {'tlsv1.3', {ok, S}} ->
                 alert_after_handshake(?M, Active, S),
                 _ = ?M:close(S);
             _ ->
                 ?assertMatch({Active, {error, {tls_alert, {unknown_ca, _}}}}, {Active, Result})
         end,
         ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl_test_lib:await(Server))
     end || Active <- [once, false]].

%% The server's unknown_ca after a TLS 1.3 client's handshake. Active: the
%% alert as a message, from either module. Passive: rssl keeps the alert
%% for the next recv; OTP's ssl gives it only to a recv already waiting
%% when it arrives, and {error, closed} to a later one (a race with the
%% server here, so both answers are ssl's).
alert_after_handshake(_Mod, once, S) ->
    receive
        {ssl_error, S, {tls_alert, {unknown_ca, _}}} -> ok;
        {Tag, S} = M when Tag =:= ssl_closed; Tag =:= ssl_passive -> ct:fail({expected_alert, M});
        {Tag, S, _} = M when Tag =:= ssl; Tag =:= ssl_error -> ct:fail({expected_alert, M})
    after ?T -> ct:fail(no_alert)
    end;
alert_after_handshake(rssl, false, S) ->
    ?assertMatch({error, {tls_alert, {unknown_ca, _}}}, rssl:recv(S, 0, ?T));
alert_after_handshake(ssl, false, S) ->
    case ssl:recv(S, 0, ?T) of
        {error, {tls_alert, {unknown_ca, _}}} -> ok;
        {error, closed} -> ok;
        Other -> ct:fail({expected_alert_or_closed, Other})
    end.

%% Client certificates accepted both ways; peercert/1 on the server gives
%% the client's certificate.
mutual_auth(Config) ->
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, ca),
    COpts = ?P:client_opts(Config, ca) ++ ?P:cert_opts(Config, client),
    %% ?M server, ssl client
    {{ok, S1}, Client} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?assertEqual({ok, ?P:der(Config, client)}, ?M:peercert(S1)),
    ?P:server_exchange(?M, S1),
    ServerDer = ?P:der(Config, server),
    ?assertMatch(#{result := ok, server_cert := {ok, ServerDer}}, rssl_test_lib:await(Client)),
    %% ?M client, ssl server
    {{ok, S2}, Server} = ?P:m_client(?M, COpts, SOpts, "localhost"),
    ?P:client_exchange(?M, S2),
    ClientDer = ?P:der(Config, client),
    ?assertMatch(#{result := {error, closed}, peercert := {ok, ClientDer}}, rssl_test_lib:await(Server)).

%% fail_if_no_peer_cert and a client without a certificate.
missing_client_cert(Config) ->
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, ca),
    {Result, Client} = ?P:m_server(?M, SOpts, ?P:client_opts(Config, ca), "localhost"),
    Alert = case ?config(tls_version, Config) of
                'tlsv1.3' -> certificate_required;
                'tlsv1.2' -> handshake_failure
            end,
    ?assertMatch({error, {tls_alert, {Alert, _}}}, Result),
    ?P:peer_saw_alert(Config, Alert, rssl_test_lib:await(Client)).

%% A valid chain for the wrong name.
hostname_mismatch(Config) ->
    {Result, Server} = ?P:m_client(?M, ?P:client_opts(Config, ca), ?P:server_opts(Config, wrong_host), "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, Result),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, rssl_test_lib:await(Server)).

%% A *.wild.example certificate does not do for www.wild.example by
%% default, as in OTP; it does with the https match fun of
%% customize_hostname_check (what Mint and hackney pass), which still does
%% not match two labels.
wildcard_needs_https_match_fun(Config) ->
    Https = [{customize_hostname_check,
              [{match_fun, public_key:pkix_verify_hostname_match_fun(https)}]}],
    Sni = fun(Name) -> ?P:client_opts(Config, ca) ++ [{server_name_indication, Name}] end,
    {Plain, Server1} = ?P:m_client(?M, Sni("www.wild.example"), ?P:server_opts(Config, wildcard), "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, Plain),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, rssl_test_lib:await(Server1)),
    {{ok, S}, Server2} = ?P:m_client(?M, Sni("www.wild.example") ++ Https,
                                  ?P:server_opts(Config, wildcard), "localhost"),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server2)),
    {Deep, Server3} = ?P:m_client(?M, Sni("a.b.wild.example") ++ Https,
                               ?P:server_opts(Config, wildcard), "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, Deep),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, rssl_test_lib:await(Server3)).

%% server_name_indication names the host to check: a localhost certificate
%% does not do for "other.example".
sni_option_hostname_mismatch(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [{server_name_indication, "other.example"}],
    {Result, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, Result),
    ?assertMatch({error, {tls_alert, {handshake_failure, _}}}, rssl_test_lib:await(Server)).

%% ... and a wrong.example certificate does when connecting by IP.
sni_option_used_for_hostname_check(Config) ->
    COpts = ?P:client_opts(Config, ca) ++ [{server_name_indication, "wrong.example"}],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, wrong_host), {127, 0, 0, 1}),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}, sni := {ok, [{sni_hostname, "wrong.example"}]}},
                 rssl_test_lib:await(Server)).

%% verify_none accepts a server whose CA is unknown.
verify_none_unknown_ca(Config) ->
    COpts = [{verify, verify_none} | ?P:base_opts(Config)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, other_server), "localhost"),
    ?assertEqual({ok, ?P:der(Config, other_server)}, ?M:peercert(S)),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% The client sends the host name (or the server_name_indication option)
%% and the server reports it as sni_hostname.
sni_sent_to_server(Config) ->
    %% ?M client by name, ssl server
    {{ok, S1}, Server1} = ?P:m_client(?M, ?P:client_opts(Config, ca), ?P:server_opts(Config, server), "localhost"),
    ?P:client_exchange(?M, S1),
    ?assertMatch(#{sni := {ok, [{sni_hostname, "localhost"}]}}, rssl_test_lib:await(Server1)),
    %% ?M client by IP with the option
    COpts = ?P:client_opts(Config, ca) ++ [{server_name_indication, "localhost"}],
    {{ok, S2}, Server2} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), {127, 0, 0, 1}),
    ?P:client_exchange(?M, S2),
    ?assertMatch(#{sni := {ok, [{sni_hostname, "localhost"}]}}, rssl_test_lib:await(Server2)),
    %% ssl client, ?M server
    {{ok, S3}, Client} = ?P:m_server(?M, ?P:server_opts(Config, server), ?P:client_opts(Config, ca), "localhost"),
    ?assertEqual({ok, [{sni_hostname, "localhost"}]}, ?M:connection_information(S3, [sni_hostname])),
    ?P:server_exchange(?M, S3),
    ?assertMatch(#{result := ok}, rssl_test_lib:await(Client)).

%% {server_name_indication, disable}: no SNI reaches the server.
sni_disable(Config) ->
    COpts = [{verify, verify_none}, {server_name_indication, disable} | ?P:base_opts(Config)],
    {{ok, S}, Server} = ?P:m_client(?M, COpts, ?P:server_opts(Config, server), "localhost"),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{sni := {ok, []}}, rssl_test_lib:await(Server)).

%% sni_hosts picks the certificate by the requested name.
server_sni_hosts(Config) ->
    SOpts = ?P:server_opts(Config, wrong_host) ++ [{sni_hosts, [{"localhost", ?P:cert_opts(Config, server)}]}],
    sni_selects_cert(Config, SOpts).

%% sni_fun does the same through a fun.
server_sni_fun(Config) ->
    ServerCert = ?P:cert_opts(Config, server),
    Fun = fun("localhost") -> ServerCert; (_) -> [] end,
    SOpts = ?P:server_opts(Config, wrong_host) ++ [{sni_fun, Fun}],
    sni_selects_cert(Config, SOpts).

sni_selects_cert(Config, SOpts) ->
    %% "localhost" gets the localhost certificate and verifies.
    {{ok, S1}, C1} = ?P:m_server(?M, SOpts, ?P:client_opts(Config, ca), "localhost"),
    ?P:server_exchange(?M, S1),
    ServerDer = ?P:der(Config, server),
    ?assertMatch(#{result := ok, server_cert := {ok, ServerDer}}, rssl_test_lib:await(C1)),
    %% Another name gets the default certificate.
    COpts = ?P:client_opts(Config, ca) ++ [{server_name_indication, "wrong.example"}],
    {{ok, S2}, C2} = ?P:m_server(?M, SOpts, COpts, {127, 0, 0, 1}),
    ?P:server_exchange(?M, S2),
    WrongDer = ?P:der(Config, wrong_host),
    ?assertMatch(#{result := ok, server_cert := {ok, WrongDer}}, rssl_test_lib:await(C2)).

%%% Flawed server certificates (rssl_test_pki:make_flawed/2): each failure
%%% gets the alert OTP sends for it, on both ends, whatever OpenSSL's own
%%% alert for it would be.

%% The server's certificate CertName fails the ?M client's verification
%% with Alert, which the ssl server hears.
client_rejects(Config, CertName, Alert) ->
    {Result, Server} = ?P:m_client(?M, ?P:client_opts(Config, ca), ?P:server_opts(Config, CertName), "localhost"),
    ?assertMatch({error, {tls_alert, {Alert, "TLS client: " ++ _}}}, Result),
    ?assertMatch({error, {tls_alert, {Alert, _}}}, rssl_test_lib:await(Server)).

client_rejects_expired(Config) ->
    client_rejects(Config, expired, certificate_expired).

%% OpenSSL would say bad_certificate.
client_rejects_not_yet_valid(Config) ->
    client_rejects(Config, not_yet_valid, certificate_expired).

%% A leaf whose issuer is not sent and not trusted.
client_rejects_missing_intermediate(Config) ->
    client_rejects(Config, missing_intermediate, unknown_ca).

%% extendedKeyUsage clientAuth only: OTP's invalid_ext_key_usage is
%% handshake_failure (OpenSSL: unsupported_certificate).
client_rejects_wrong_purpose(Config) ->
    client_rejects(Config, wrong_purpose, handshake_failure).

%% Issued by a CA:FALSE certificate: OTP's missing_basic_constraint is
%% handshake_failure (OpenSSL: unknown_ca).
client_rejects_ca_false_issuer(Config) ->
    client_rejects(Config, ca_false_chain, handshake_failure).

%% An intermediate's pathlen:0 with another CA below it: OTP's
%% max_path_length_reached is handshake_failure (OpenSSL: unknown_ca).
client_rejects_path_length_exceeded(Config) ->
    client_rejects(Config, pathlen_chain, handshake_failure).

%% The trust anchor's own pathlen:0 does not count, as in OTP (OpenSSL
%% would reject the chain).
anchor_path_length_not_applied(Config) ->
    {{ok, S}, Server} = ?P:m_client(?M, ?P:client_opts(Config, pathlen0_ca),
                                    ?P:server_opts(Config, anchored_chain), "localhost"),
    ?P:client_exchange(?M, S),
    ?assertMatch(#{result := {error, closed}}, rssl_test_lib:await(Server)).

%% OTP: unsupported_certificate (OpenSSL: certificate_unknown in TLS 1.2).
client_rejects_unknown_critical_extension(Config) ->
    client_rejects(Config, critical_ext, unsupported_certificate).

%% ?M as server, the ssl client's certificate is for servers only
%% (extendedKeyUsage serverAuth): handshake_failure, as OTP's
%% invalid_ext_key_usage (OpenSSL: unsupported_certificate).
server_rejects_client_cert_wrong_purpose(Config) ->
    SOpts = ?P:server_opts(Config, server) ++ ?P:require_client_cert(Config, ca),
    COpts = [{verify, verify_none} | ?P:base_opts(Config)] ++ ?P:cert_opts(Config, server),
    {Result, Client} = ?P:m_server(?M, SOpts, COpts, "localhost"),
    ?assertMatch({error, {tls_alert, {handshake_failure, "TLS server: " ++ _}}}, Result),
    ?P:peer_saw_alert(Config, handshake_failure, rssl_test_lib:await(Client)).
