/* (g) The options against openssl s_server and s_client: NPN, PSK, session
 * resumption, renegotiation, fallback, CRLs, verify callback, SNI hosts,
 * keying material. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const char *PSK_HEX = "30313233343536373839616263646566"; /* "0123456789abcdef" */

static unsigned short listen_any_port(rssl_listener **listener)
{
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, listener));
    CHECK_OK(rssl_listener_port(*listener, &port));
    return port;
}

static rssl_conn *connect_to(const rssl_config *config, unsigned short port)
{
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
    return conn;
}

/* A line to `s_server -rev` and its reversed echo back. */
static void rev_line(rssl_conn *conn)
{
    CHECK_OK(rssl_send(conn, (const uint8_t *)"abc\n", 4, TEST_TIMEOUT_MS));
    unsigned char got[4];
    recv_exactly(conn, got, 4);
    CHECK(memcmp(got, "cba\n", 4) == 0);
}

static void npn_s_server(void)
{
    struct child server;
    const char *extra[] = {"-rev", "-tls1_2", "-nextprotoneg", "http/1.1,spdy/3", NULL};
    unsigned short port = start_s_server(&server, extra);
    rssl_config_builder *b = client_builder("ca.pem");
    const char *preferred[] = {"spdy/3"};
    CHECK_OK(rssl_config_builder_set_npn_preferred(b, preferred, 1, RSSL_NPN_CLIENT, NULL));
    const rssl_config *config = build(b);
    rssl_conn *conn = connect_to(config, port);
    char protocol[32];
    size_t n = 0;
    CHECK_OK(rssl_conn_negotiated_protocol(conn, protocol, sizeof protocol, &n));
    CHECK(strcmp(protocol, "spdy/3") == 0);
    /* NPN is not ALPN. */
    CHECK_RESULT(rssl_conn_alpn_protocol(conn, protocol, sizeof protocol, &n), RSSL_NOT_AVAILABLE);
    rev_line(conn);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static void npn_s_client(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    rssl_config_builder *b = server_builder("server.pem", "server.key");
    const char *advertised[] = {"http/1.1", "spdy/3"};
    CHECK_OK(rssl_config_builder_set_npn_advertised(b, advertised, 2));
    const rssl_config *config = build(b);
    struct child client;
    const char *extra[] = {"-tls1_2", "-nextprotoneg", "spdy/3", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    char protocol[32];
    size_t n = 0;
    CHECK_OK(rssl_conn_negotiated_protocol(conn, protocol, sizeof protocol, &n));
    CHECK(strcmp(protocol, "spdy/3") == 0);
    CHECK(child_wait_for(&client, "Next protocol: (1) spdy/3", TEST_TIMEOUT_MS));
    child_close_input(&client);
    size_t len = 0;
    free(recv_all(conn, &len));
    CHECK_OK(rssl_close(conn));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static bool psk_cb(void *user_data, const uint8_t *identity, size_t identity_len,
                   uint8_t *key_out, size_t key_cap, size_t *key_len)
{
    char *seen = user_data;
    snprintf(seen, 64, "%.*s", (int)identity_len, identity ? (const char *)identity : "");
    CHECK(key_cap >= 16);
    memcpy(key_out, "0123456789abcdef", 16);
    *key_len = 16;
    return true;
}

static void psk_s_server(void)
{
    struct child server;
    const char *extra[] = {"-rev",        "-tls1_2", "-nocert", "-psk", PSK_HEX, "-psk_hint",
                           "openssl hint", "-cipher", "PSK-AES128-GCM-SHA256", NULL};
    unsigned short port = start_s_server(&server, extra);
    char hint[64] = {0};
    rssl_config_builder *b = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_ciphers(b, "PSK-AES128-GCM-SHA256"));
    CHECK_OK(rssl_config_builder_set_versions(b, TLS12, 1));
    CHECK_OK(rssl_config_builder_set_psk_identity(b, "Client_identity"));
    CHECK_OK(rssl_config_builder_set_psk_callback(b, psk_cb, hint));
    const rssl_config *config = build(b);
    rssl_conn *conn = connect_to(config, port);
    CHECK(strcmp(hint, "openssl hint") == 0);
    rssl_suite suite;
    CHECK_OK(rssl_conn_cipher_suite(conn, &suite));
    CHECK(strcmp(suite.key_exchange, "psk") == 0);
    rev_line(conn);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static void psk_s_client(const char *version_flag)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    char identity[64] = {0};
    rssl_config_builder *b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_OK(rssl_config_builder_set_ciphers(b, "PSK-AES128-GCM-SHA256"));
    CHECK_OK(rssl_config_builder_set_psk_callback(b, psk_cb, identity));
    const rssl_config *config = build(b);
    struct child client;
    const char *extra[] = {version_flag, "-psk", PSK_HEX, "-psk_identity", "alice", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    CHECK(strcmp(identity, "alice") == 0);
    child_write(&client, "psk line\n");
    unsigned char got[9];
    recv_exactly(conn, got, 9);
    CHECK(memcmp(got, "psk line\n", 9) == 0);
    child_close_input(&client);
    size_t len = 0;
    free(recv_all(conn, &len));
    CHECK_OK(rssl_close(conn));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void psk_s_client_tls12(void)
{
    psk_s_client("-tls1_2");
}

static void psk_s_client_tls13(void)
{
    psk_s_client("-tls1_3");
}

/* s_client saves the session, then resumes it: "Reused" in its output. */
static void session_s_client(const char *version_flag)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    rssl_config_builder *b = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_session_tickets(b, 1));
    const rssl_config *config = build(b);
    /* One file per version: the two variants may run at the same time. */
    const char *file = cert_path(strcmp(version_flag, "-tls1_2") == 0 ? "session_tls12.pem"
                                                                      : "session_tls13.pem");
    for (int round = 0; round < 2; round++) {
        struct child client;
        const char *extra[] = {version_flag, "-CAfile", cert_path("ca.pem"),
                               round == 0 ? "-sess_out" : "-sess_in", file, NULL};
        start_s_client(&client, port, extra);
        rssl_conn *conn = NULL;
        CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
        bool reused = false;
        CHECK_OK(rssl_conn_session_reused(conn, &reused));
        CHECK(reused == (round == 1));
        CHECK_OK(rssl_send(conn, (const uint8_t *)"hi\n", 3, TEST_TIMEOUT_MS));
        CHECK(child_wait_for(&client, round == 0 ? "New, TLSv1." : "Reused, TLSv1.",
                             TEST_TIMEOUT_MS));
        CHECK(child_wait_for(&client, "hi", TEST_TIMEOUT_MS));
        child_close_input(&client);
        size_t len = 0;
        free(recv_all(conn, &len));
        CHECK_OK(rssl_close(conn));
        child_finish(&client, TEST_TIMEOUT_MS);
    }
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void session_s_client_tls12(void)
{
    session_s_client("-tls1_2");
}

static void session_s_client_tls13(void)
{
    session_s_client("-tls1_3");
}

/* Our client resumes its session with s_server. */
static void session_s_server(void)
{
    struct child server;
    const char *extra[] = {"-rev", "-naccept", "2", "-tls1_2", NULL};
    unsigned short port = start_s_server(&server, extra);
    const rssl_config *config = build(client_builder("ca.pem"));
    rssl_conn *conn = connect_to(config, port);
    rev_line(conn);
    uint8_t session[4096];
    size_t len = 0;
    CHECK_OK(rssl_conn_session(conn, session, sizeof session, &len));
    CHECK_OK(rssl_close(conn));
    CHECK_OK(rssl_connect_session(config, "localhost", port, session, len, TEST_TIMEOUT_MS,
                                  &conn));
    bool reused = false;
    CHECK_OK(rssl_conn_session_reused(conn, &reused));
    CHECK(reused);
    rev_line(conn);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

/* s_client's "R" command renegotiates (TLS 1.2); a server with client
 * renegotiation off refuses, and s_client then ends the connection. */
static void client_renegotiation(bool allow)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    rssl_config_builder *b = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_client_renegotiation(b, allow));
    const rssl_config *config = build(b);
    struct child client;
    const char *extra[] = {"-tls1_2", "-CAfile", cert_path("ca.pem"), NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    CHECK(child_wait_for(&client, "Verify return code", TEST_TIMEOUT_MS));
    child_write(&client, "R\n");
    CHECK(child_wait_for(&client, "RENEGOTIATING", TEST_TIMEOUT_MS));
    child_write(&client, "after\n");
    unsigned char got[6];
    size_t n = 0;
    rssl_result r = RSSL_OK;
    size_t have = 0;
    while (have < 6 && r == RSSL_OK) {
        r = rssl_recv(conn, got + have, 6 - have, TEST_TIMEOUT_MS, &n);
        have += n;
    }
    if (allow) {
        CHECK_OK(r);
        CHECK(memcmp(got, "after\n", 6) == 0);
    } else {
        /* Refused: we warn no_renegotiation, which OpenSSL's client
         * answers with a fatal handshake_failure. */
        CHECK_RESULT(r, RSSL_TLS_ALERT);
        bool local = true;
        CHECK(last_alert(&local) == 40 && !local);
        CHECK(child_wait_for(&client, ":no renegotiation:", TEST_TIMEOUT_MS));
    }
    child_close_input(&client);
    rssl_conn_free(conn);
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void renegotiation_allowed(void)
{
    client_renegotiation(true);
}

static void renegotiation_refused(void)
{
    client_renegotiation(false);
}

static void fallback_s_client(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    const rssl_config *config = build(server_builder("server.pem", "server.key"));
    struct child client;
    const char *extra[] = {"-tls1_2", "-fallback_scsv", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn), RSSL_TLS_ALERT);
    bool local = false;
    CHECK(last_alert(&local) == 86 && local);
    CHECK(child_wait_for(&client, "inappropriate fallback", TEST_TIMEOUT_MS));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void fallback_s_server(void)
{
    struct child server;
    const char *extra[] = {"-rev", NULL};
    unsigned short port = start_s_server(&server, extra);
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(b, TLS12, 1));
    CHECK_OK(rssl_config_builder_set_fallback(b, true));
    const rssl_config *config = build(b);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn), RSSL_TLS_ALERT);
    bool local = true;
    CHECK(last_alert(&local) == 86 && !local);
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static void crl_s_server(void)
{
    struct child server;
    const char *extra[] = {"-rev", "-cert", cert_path("revoked_server.pem"), "-key",
                           cert_path("revoked_server.key"), NULL};
    unsigned short port = start_s_server(&server, extra);
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_add_crlfile(b, cert_path("ca_revoked.crl")));
    CHECK_OK(rssl_config_builder_set_crl_check(b, RSSL_CRL_CHECK_ALL));
    const rssl_config *config = build(b);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn), RSSL_TLS_ALERT);
    bool local = false;
    CHECK(last_alert(&local) == 44 && local);
    CHECK(strstr(last_error(), "certificate revoked") != NULL);
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static bool accept_all(void *user_data, const uint8_t *der, size_t len, uint32_t depth,
                       int32_t error)
{
    (void)der;
    (void)len;
    (void)depth;
    if (error != 0)
        (*(int *)user_data)++;
    return true;
}

static void verify_callback_s_server(void)
{
    struct child server;
    const char *extra[] = {"-rev", "-cert", cert_path("other_server.pem"), "-key",
                           cert_path("other_server.key"), NULL};
    unsigned short port = start_s_server(&server, extra);
    int errors = 0;
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_verify_callback(b, accept_all, &errors));
    const rssl_config *config = build(b);
    rssl_conn *conn = connect_to(config, port);
    CHECK(errors >= 1);
    rev_line(conn);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static void sni_host_s_client(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    const rssl_config *other = build(server_builder("other_server.pem", "other_server.key"));
    rssl_config_builder *b = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_add_sni_host(b, "other.test", other));
    const rssl_config *config = build(b);
    rssl_config_free(other);
    struct child client;
    const char *extra[] = {"-servername", "other.test", "-CAfile", cert_path("other_ca.pem"),
                           "-verify_return_error", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    char name[64];
    size_t n = 0;
    CHECK_OK(rssl_conn_sni_hostname(conn, name, sizeof name, &n));
    CHECK(strcmp(name, "other.test") == 0);
    CHECK(child_wait_for(&client, "Verify return code: 0 (ok)", TEST_TIMEOUT_MS));
    child_close_input(&client);
    size_t len = 0;
    free(recv_all(conn, &len));
    CHECK_OK(rssl_close(conn));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void keying_material_s_client(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    const rssl_config *config = build(server_builder("server.pem", "server.key"));
    struct child client;
    const char *extra[] = {"-keymatexport", "EXPERIMENTAL rssl", "-keymatexportlen", "16", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    uint8_t ekm[16];
    CHECK_OK(rssl_conn_export_keying_material(conn, "EXPERIMENTAL rssl", NULL, 0, ekm, 16));
    char hex[40] = {0};
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02X", ekm[i]);
    CHECK(child_wait_for(&client, hex, TEST_TIMEOUT_MS));
    child_close_input(&client);
    size_t len = 0;
    free(recv_all(conn, &len));
    CHECK_OK(rssl_close(conn));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static const struct test_case TESTS[] = {
    {"npn_s_server", npn_s_server},
    {"npn_s_client", npn_s_client},
    {"psk_s_server", psk_s_server},
    {"psk_s_client_tls12", psk_s_client_tls12},
    {"psk_s_client_tls13", psk_s_client_tls13},
    {"session_s_client_tls12", session_s_client_tls12},
    {"session_s_client_tls13", session_s_client_tls13},
    {"session_s_server", session_s_server},
    {"renegotiation_allowed", renegotiation_allowed},
    {"renegotiation_refused", renegotiation_refused},
    {"fallback_s_client", fallback_s_client},
    {"fallback_s_server", fallback_s_server},
    {"crl_s_server", crl_s_server},
    {"verify_callback_s_server", verify_callback_s_server},
    {"sni_host_s_client", sni_host_s_client},
    {"keying_material_s_client", keying_material_s_client},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
