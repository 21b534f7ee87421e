/* (c) Peer verification: success, unknown CA on either side, host names,
 * and alerts the peer sends us. */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void success(void)
{
    struct child server;
    const char *args[] = {"-rev", NULL};
    unsigned short port = start_s_server(&server, args);
    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
    char name[64];
    size_t n = 0;
    CHECK_OK(rssl_conn_sni_hostname(conn, name, sizeof name, &n));
    CHECK(strcmp(name, "localhost") == 0);
    CHECK_OK(rssl_send(conn, (const uint8_t *)"abc\n", 4, TEST_TIMEOUT_MS));
    unsigned char got[4];
    recv_exactly(conn, got, 4);
    CHECK(memcmp(got, "cba\n", 4) == 0);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

/* We trust an unrelated CA: we reject the server with unknown_ca. */
static void unknown_ca(void)
{
    struct child server;
    const char *args[] = {"-www", NULL};
    unsigned short port = start_s_server(&server, args);
    const rssl_config *config = client_config(cert_path("other_ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn),
                 RSSL_TLS_ALERT);
    CHECK(conn == NULL);
    CHECK(rssl_last_result() == RSSL_TLS_ALERT);
    expect_last_alert("unknown_ca", true,
                 "TLS client: In state connection generated CLIENT ALERT: Fatal - Unknown CA");
    CHECK(strcmp(rssl_alert_description(48), "Unknown CA") == 0);
    /* The server received our alert. */
    CHECK(child_wait_for(&server, "unknown ca", TEST_TIMEOUT_MS));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

/* A client certificate from an unrelated CA: the rssl server rejects it. */
static void unknown_ca_server(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    const rssl_config *config = server_config(true, cert_path("ca.pem"), NULL);

    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[] = {"s_client", "-connect", target, "-tls1_2", "-cert",
                          cert_path("other_client.pem"), "-key", cert_path("other_client.key"),
                          NULL};
    struct child client;
    child_start(&client, args);

    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn), RSSL_TLS_ALERT);
    expect_last_alert("unknown_ca", true, "TLS server: In state connection generated SERVER ALERT");
    CHECK(child_wait_for(&client, "unknown ca", TEST_TIMEOUT_MS));
    child_finish(&client, TEST_TIMEOUT_MS);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

/* The certificate is fine but not for the name we asked for. */
static void hostname_mismatch(void)
{
    struct child server;
    const char *args[] = {"-www", NULL};
    unsigned short port = start_s_server(&server, args);
    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);

    rssl_conn *conn = NULL;
    CHECK_OK(rssl_conn_from_fd(config, fd, "www.example.org", &conn));
    CHECK_RESULT(rssl_handshake(conn, TEST_TIMEOUT_MS), RSSL_TLS_ALERT);
    uint8_t alert = 0;
    bool local = false;
    CHECK_OK(rssl_last_alert(&alert, &local));
    CHECK(local);
    CHECK(strstr(last_error(), "hostname mismatch") != NULL);
    /* The failure sticks to the connection. */
    CHECK_RESULT(rssl_handshake(conn, TEST_TIMEOUT_MS), RSSL_TLS_ALERT);
    rssl_conn_free(conn); /* closes fd */
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

/* s_server requires a client certificate from the unrelated CA and
 * rejects ours: we receive unknown_ca. In TLS 1.2 it comes during the
 * handshake; in TLS 1.3 the client has finished by then and meets the
 * alert when it reads. */
static void peer_rejects_us(const char *version_flag, bool during_handshake)
{
    struct child server;
    const char *args[] = {version_flag, "-Verify", "1", "-verify_return_error", "-CAfile",
                          cert_path("other_ca.pem"), "-www", NULL};
    unsigned short port = start_s_server(&server, args);
    const rssl_config *config = client_config(cert_path("ca.pem"), cert_path("client.pem"),
                                              cert_path("client.key"), NULL);
    rssl_conn *conn = NULL;
    if (during_handshake) {
        CHECK_RESULT(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn),
                     RSSL_TLS_ALERT);
        CHECK(conn == NULL);
    } else {
        CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
        uint8_t buf[64];
        size_t n = 0;
        /* The request may or may not get out before the alert arrives. */
        rssl_result sent =
            rssl_send(conn, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18, TEST_TIMEOUT_MS);
        CHECK(sent == RSSL_OK || sent == RSSL_CLOSED);
        CHECK_RESULT(rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n), RSSL_TLS_ALERT);
        rssl_conn_free(conn);
    }
    expect_last_alert("unknown_ca", false, "received SERVER ALERT: Fatal - Unknown CA");
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static void peer_rejects_us_tls12(void)
{
    peer_rejects_us("-tls1_2", true);
}

static void peer_rejects_us_tls13(void)
{
    peer_rejects_us("-tls1_3", false);
}

int main(int argc, char **argv)
{
    static const struct test_case tests[] = {
        {"success", success},
        {"unknown_ca", unknown_ca},
        {"unknown_ca_server", unknown_ca_server},
        {"hostname_mismatch", hostname_mismatch},
        {"peer_rejects_us_tls12", peer_rejects_us_tls12},
        {"peer_rejects_us_tls13", peer_rejects_us_tls13},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
