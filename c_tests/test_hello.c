/* Stopping a handshake after the peer's hello
 * (rssl_config_builder_set_pause_after_hello): looking at the hello's
 * extensions, going on (with another configuration) or cancelling; memory
 * connections in both roles, and a blocking server against openssl
 * s_client. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const uint16_t TLS13[] = {RSSL_TLS1_3};

static const rssl_config *client_with(const uint16_t *version, bool pause)
{
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(b, version, 1));
    CHECK_OK(rssl_config_builder_set_pause_after_hello(b, pause));
    return build(b);
}

/* The server's certificate is one the client does not trust; at the
 * hello the server reads the SNI name and goes on with the certificate
 * for it. */
static void server_pause(const uint16_t *version)
{
    rssl_config_builder *sb = server_builder("other_server.pem", "other_server.key");
    CHECK_OK(rssl_config_builder_set_pause_after_hello(sb, true));
    const rssl_config *sconfig = build(sb);
    const rssl_config *chosen = build(server_builder("server.pem", "server.key"));
    const rssl_config *cconfig = client_with(version, false);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));

    CHECK(memory_handshake(client, server, RSSL_HELLO) == server);
    /* Stopped: again the same, with nothing new. */
    CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_HELLO);
    rssl_bytes sni = {0};
    CHECK_OK(rssl_conn_hello_extension(server, 0, &sni));
    /* server_name_list: length, type host_name, length, "localhost". */
    CHECK(sni.len == 2 + 1 + 2 + 9 && memcmp(sni.data + 5, "localhost", 9) == 0);
    rssl_bytes none = {0};
    CHECK_RESULT(rssl_conn_hello_extension(server, 4242, &none), RSSL_NOT_AVAILABLE);
    /* A client configuration does not fit a server. */
    CHECK_RESULT(rssl_conn_hello_continue(server, cconfig), RSSL_INVALID_ARGUMENT);
    CHECK_OK(rssl_conn_hello_continue(server, chosen));
    /* Decided once. */
    CHECK_RESULT(rssl_conn_hello_cancel(server), RSSL_INVALID_STATE);
    CHECK(memory_handshake(client, server, RSSL_HELLO) == NULL);
    memory_ping(client, server);
    memory_ping(server, client);
    CHECK_RESULT(rssl_conn_hello_extension(server, 0, &sni), RSSL_INVALID_STATE);

    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(chosen);
    rssl_config_free(cconfig);
}

static void server_pause_tls12(void) { server_pause(TLS12); }
static void server_pause_tls13(void) { server_pause(TLS13); }

/* The server cancels at the hello: both ends fail with user_canceled. */
static void server_cancel(const uint16_t *version)
{
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_pause_after_hello(sb, true));
    const rssl_config *sconfig = build(sb);
    const rssl_config *cconfig = client_with(version, false);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK(memory_handshake(client, server, RSSL_HELLO) == server);
    CHECK_OK(rssl_conn_hello_cancel(server));
    expect_alert(rssl_conn_handshake_step(server), "user_canceled", true);
    memory_shuttle(server, client);
    expect_alert(rssl_conn_handshake_step(client), "user_canceled", false);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static void server_cancel_tls12(void) { server_cancel(TLS12); }
static void server_cancel_tls13(void) { server_cancel(TLS13); }

/* The client stops at the ServerHello (its supported_versions names the
 * version), then goes on or cancels; a cancel reaches the server as
 * user_canceled (protected in TLS 1.3). */
static void client_pause(const uint16_t *version, bool cancel)
{
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    const rssl_config *cconfig = client_with(version, true);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK(memory_handshake(client, server, RSSL_HELLO) == client);
    rssl_bytes v = {0};
    if (version[0] == RSSL_TLS1_3) {
        CHECK_OK(rssl_conn_hello_extension(client, 43, &v));
        CHECK(v.len == 2 && v.data[0] == 3 && v.data[1] == 4);
    } else {
        CHECK_RESULT(rssl_conn_hello_extension(client, 43, &v), RSSL_NOT_AVAILABLE);
    }
    if (cancel) {
        CHECK_OK(rssl_conn_hello_cancel(client));
        expect_alert(rssl_conn_handshake_step(client), "user_canceled", true);
        memory_shuttle(client, server);
        rssl_result r = rssl_conn_handshake_step(server);
        if (version[0] == RSSL_TLS1_3) {
            /* OpenSSL takes a TLS 1.3 user_canceled as a warning (RFC
             * 8446, 6.1) and waits: the client's close ends it. */
            CHECK_RESULT(r, RSSL_WANT_READ);
            CHECK_OK(rssl_conn_feed_eof(server));
            r = rssl_conn_handshake_step(server);
        }
        expect_alert(r, "user_canceled", false);
    } else {
        CHECK_OK(rssl_conn_hello_continue(client, NULL));
        CHECK(memory_handshake(client, server, RSSL_HELLO) == NULL);
        memory_ping(client, server);
        memory_ping(server, client);
    }
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static void client_pause_tls12(void) { client_pause(TLS12, false); }
static void client_pause_tls13(void) { client_pause(TLS13, false); }
static void client_cancel_tls12(void) { client_pause(TLS12, true); }
static void client_cancel_tls13(void) { client_pause(TLS13, true); }

/* Hello calls on a connection that is not stopped, NULLs, and a stopped
 * connection freed without a decision. */
static void wrong_calls(void)
{
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    const rssl_config *cconfig = client_with(TLS13, true);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    rssl_bytes data = {0};
    CHECK_RESULT(rssl_conn_hello_extension(server, 0, &data), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_hello_continue(server, NULL), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_hello_cancel(server), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_hello_extension(NULL, 0, &data), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_hello_extension(server, 0, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_hello_continue(NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_hello_cancel(NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_pause_after_hello(NULL, true), RSSL_NULL_PARAMETER);
    CHECK(memory_handshake(client, server, RSSL_HELLO) == client);
    /* Freed while stopped: the paused handshake is abandoned. */
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* A blocking server stops at the hello of openssl s_client (rssl_accept
 * answers RSSL_HELLO with the connection), reads the SNI name, goes on
 * with rssl_handshake, and echoes a line. */
static void s_client_server(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_pause_after_hello(sb, true));
    const rssl_config *config = build(sb);

    struct child client;
    const char *extra[] = {"-servername", "localhost", "-CAfile", cert_path("ca.pem"),
                           "-verify_return_error", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn), RSSL_HELLO);
    CHECK(conn != NULL);
    rssl_bytes sni = {0};
    CHECK_OK(rssl_conn_hello_extension(conn, 0, &sni));
    CHECK(sni.len > 9 && memcmp(sni.data + sni.len - 9, "localhost", 9) == 0);
    CHECK_OK(rssl_conn_hello_continue(conn, NULL));
    CHECK_OK(rssl_handshake(conn, TEST_TIMEOUT_MS));
    CHECK(child_wait_for(&client, "Verify return code: 0 (ok)", TEST_TIMEOUT_MS));
    child_write(&client, "ping\n");
    unsigned char line[5];
    recv_exactly(conn, line, sizeof line);
    CHECK(memcmp(line, "ping\n", 5) == 0);
    child_close_input(&client);
    CHECK_OK(rssl_close(conn));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static const struct test_case TESTS[] = {
    {"server_pause_tls12", server_pause_tls12},
    {"server_pause_tls13", server_pause_tls13},
    {"server_cancel_tls12", server_cancel_tls12},
    {"server_cancel_tls13", server_cancel_tls13},
    {"client_pause_tls12", client_pause_tls12},
    {"client_pause_tls13", client_pause_tls13},
    {"client_cancel_tls12", client_cancel_tls12},
    {"client_cancel_tls13", client_cancel_tls13},
    {"wrong_calls", wrong_calls},
    {"s_client_server", s_client_server},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
