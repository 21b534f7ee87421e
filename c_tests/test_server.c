/* (b) rssl as a server against `openssl s_client`. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned short listen_any_port(rssl_listener **listener)
{
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, listener));
    CHECK_OK(rssl_listener_port(*listener, &port));
    CHECK(port != 0);
    return port;
}

/* Starts s_client against our port, trusting the test CA. */
static void start_verifying_s_client(struct child *c, unsigned short port, const char *const *extra)
{
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[32] = {"s_client",   "-connect", target, "-servername", "localhost",
                            "-verify_hostname", "localhost", "-CAfile", cert_path("ca.pem"),
                            "-verify_return_error"};
    size_t n = 10;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    child_start(c, args);
}

/* Handshake, SNI, ALPN, a line each way, then the client's close. */
static void exchange(const char *version_flag, uint16_t version)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    const rssl_config *config = server_config(false, NULL, "http/1.1");

    struct child client;
    const char *extra[] = {version_flag, "-alpn", "h2,http/1.1", NULL};
    start_verifying_s_client(&client, port, extra);

    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    uint16_t got_version = 0;
    CHECK_OK(rssl_conn_version(conn, &got_version));
    CHECK(got_version == version);
    char text[256];
    size_t n = 0;
    CHECK_OK(rssl_conn_sni_hostname(conn, text, sizeof text, &n));
    CHECK(strcmp(text, "localhost") == 0);
    CHECK_OK(rssl_conn_alpn_protocol(conn, text, sizeof text, &n));
    CHECK(strcmp(text, "http/1.1") == 0);
    /* The client sent no certificate. */
    CHECK_RESULT(rssl_conn_peer_cert(conn, NULL, 0, &n), RSSL_NOT_AVAILABLE);

    CHECK(child_wait_for(&client, "Verify return code: 0 (ok)", TEST_TIMEOUT_MS));
    child_write(&client, "ping from s_client\n");
    const char *want = "ping from s_client\n";
    unsigned char line[64];
    recv_exactly(conn, line, strlen(want));
    CHECK(memcmp(line, want, strlen(want)) == 0);

    const char *reply = "pong from rssl\n";
    CHECK_OK(rssl_send(conn, (const uint8_t *)reply, strlen(reply), TEST_TIMEOUT_MS));
    CHECK(child_wait_for(&client, "pong from rssl", TEST_TIMEOUT_MS));

    /* End of s_client's input makes it close the connection. */
    child_close_input(&client);
    uint8_t byte;
    CHECK_RESULT(rssl_recv(conn, &byte, 1, TEST_TIMEOUT_MS, &n), RSSL_CLOSED);
    CHECK(n == 0);
    CHECK_OK(rssl_close(conn));
    CHECK(child_finish(&client, TEST_TIMEOUT_MS) == 0);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void tls12(void)
{
    exchange("-tls1_2", RSSL_TLS1_2);
}

static void tls13(void)
{
    exchange("-tls1_3", RSSL_TLS1_3);
}

/* verify_peer + fail_if_no_peer_cert: the client's certificate arrives. */
static void client_cert(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    const rssl_config *config = server_config(true, cert_path("ca.pem"), NULL);

    struct child client;
    const char *extra[] = {"-cert", cert_path("client.pem"), "-key", cert_path("client.key"),
                           NULL};
    start_verifying_s_client(&client, port, extra);

    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    size_t der_len = 0, got_len = 0;
    unsigned char *der = read_file(cert_path("client.der"), &der_len);
    unsigned char got[4096];
    CHECK_OK(rssl_conn_peer_cert(conn, got, sizeof got, &got_len));
    CHECK(got_len == der_len && memcmp(got, der, der_len) == 0);
    free(der);

    child_write(&client, "hello\n");
    unsigned char line[6];
    recv_exactly(conn, line, sizeof line);
    CHECK(memcmp(line, "hello\n", 6) == 0);
    CHECK_OK(rssl_close(conn));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

/* fail_if_no_peer_cert and a client without one: TLS 1.3's alert. */
static void no_client_cert(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = listen_any_port(&listener);
    const rssl_config *config = server_config(true, cert_path("ca.pem"), NULL);

    struct child client;
    const char *extra[] = {"-tls1_3", NULL};
    start_verifying_s_client(&client, port, extra);

    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn), RSSL_TLS_ALERT);
    CHECK(conn == NULL);
    uint8_t alert = 0;
    bool local = false;
    CHECK_OK(rssl_last_alert(&alert, &local));
    CHECK(local);
    CHECK(strcmp(rssl_alert_name(alert), "certificate_required") == 0);
    /* s_client heard about it. */
    CHECK(child_wait_for(&client, "certificate required", TEST_TIMEOUT_MS));
    child_finish(&client, TEST_TIMEOUT_MS);

    /* The listener still accepts. */
    const char *again[] = {"-cert", cert_path("client.pem"), "-key", cert_path("client.key"),
                           NULL};
    start_verifying_s_client(&client, port, again);
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    rssl_conn_free(conn);
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

int main(int argc, char **argv)
{
    static const struct test_case tests[] = {
        {"tls12", tls12},
        {"tls13", tls13},
        {"client_cert", client_cert},
        {"no_client_cert", no_client_cert},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
