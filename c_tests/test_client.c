/* (a) rssl as a client against `openssl s_server`. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_version(rssl_conn *conn, uint16_t want)
{
    uint16_t version = 0;
    CHECK_OK(rssl_conn_version(conn, &version));
    CHECK(version == want);
    CHECK(rssl_version_name(version) != NULL);
}

static void check_peer_is_test_server(rssl_conn *conn)
{
    size_t der_len = 0, got_len = 0;
    unsigned char *der = read_file(cert_path("server.der"), &der_len);
    CHECK_RESULT(rssl_conn_peer_cert(conn, NULL, 0, &got_len), RSSL_BUFFER_TOO_SMALL);
    CHECK(got_len == der_len);
    unsigned char *got = malloc(got_len);
    CHECK_OK(rssl_conn_peer_cert(conn, got, got_len, &got_len));
    CHECK(memcmp(got, der, der_len) == 0);
    free(got);
    free(der);
}

/* GET against `s_server -www`, which answers with its view of the session
 * ("New, TLSv1.2, Cipher is ...") and closes. */
static void www(uint16_t version, const char *version_flag, const char *host,
                const char *version_text)
{
    struct child server;
    const char *args[] = {"-www", version_flag, NULL};
    unsigned short port = start_s_server(&server, args);

    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, host, port, TEST_TIMEOUT_MS, &conn));
    CHECK(conn != NULL);
    check_version(conn, version);
    CHECK(strcmp(rssl_version_name(version), version_text) == 0);
    check_peer_is_test_server(conn);

    char cipher[128], standard[128];
    size_t n = 0;
    CHECK_OK(rssl_conn_cipher(conn, cipher, sizeof cipher, &n));
    CHECK(n == strlen(cipher) && n > 0);
    CHECK_OK(rssl_conn_cipher_standard_name(conn, standard, sizeof standard, &n));
    CHECK(strncmp(standard, "TLS_", 4) == 0);

    const char *request = "GET / HTTP/1.0\r\n\r\n";
    CHECK_OK(rssl_send(conn, (const uint8_t *)request, strlen(request), TEST_TIMEOUT_MS));
    size_t len = 0;
    char *page = recv_all(conn, &len);
    CHECK(strncmp(page, "HTTP/1.0 200 ok", 15) == 0);
    /* The server saw the same version and cipher as we did. */
    char expect[256];
    snprintf(expect, sizeof expect, "New, %s, Cipher is %s",
             version == RSSL_TLS1_3 ? "TLSv1.3" : "TLSv1.2", cipher);
    CHECK(strstr(page, expect) != NULL);
    free(page);

    /* After the peer closed, receiving keeps reporting it. */
    uint8_t byte;
    CHECK_RESULT(rssl_recv(conn, &byte, 1, 0, &n), RSSL_CLOSED);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    CHECK(child_finish(&server, TEST_TIMEOUT_MS) == 0);
}

static void tls12_www(void)
{
    www(RSSL_TLS1_2, "-tls1_2", "localhost", "tlsv1.2");
}

static void tls13_www(void)
{
    /* An address: no SNI, and the certificate's IP entry is checked. */
    www(RSSL_TLS1_3, "-tls1_3", "127.0.0.1", "tlsv1.3");
}

/* Line echo against `s_server -rev` (it sends each line back reversed). */
static void echo(const char *version_flag, const char *protocol_text)
{
    struct child server;
    const char *args[] = {"-rev", version_flag, NULL};
    unsigned short port = start_s_server(&server, args);

    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
    CHECK(child_wait_for(&server, protocol_text, TEST_TIMEOUT_MS));

    for (int i = 0; i < 20; i++) {
        char line[64], want[64], got[64];
        int len = snprintf(line, sizeof line, "line %02d abcdef\n", i);
        for (int j = 0; j < len - 1; j++)
            want[j] = line[len - 2 - j];
        want[len - 1] = '\n';
        /* Split each line over two records. */
        CHECK_OK(rssl_send(conn, (const uint8_t *)line, 4, TEST_TIMEOUT_MS));
        CHECK_OK(rssl_send(conn, (const uint8_t *)line + 4, (size_t)len - 4, TEST_TIMEOUT_MS));
        recv_exactly(conn, (unsigned char *)got, (size_t)len);
        CHECK(memcmp(got, want, (size_t)len) == 0);
    }
    CHECK_OK(rssl_shutdown(conn, TEST_TIMEOUT_MS));
    CHECK(child_wait_for(&server, "CONNECTION CLOSED", TEST_TIMEOUT_MS));
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    CHECK(child_finish(&server, TEST_TIMEOUT_MS) == 0);
}

static void tls12_echo(void)
{
    echo("-tls1_2", "Protocol version: TLSv1.2");
}

static void tls13_echo(void)
{
    echo("-tls1_3", "Protocol version: TLSv1.3");
}

static void alpn(void)
{
    struct child server;
    const char *args[] = {"-www", "-alpn", "h2,http/1.1", NULL};
    unsigned short port = start_s_server(&server, args);

    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    const char *protocols[] = {"spdy/3", "http/1.1"};
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_OK(rssl_config_builder_set_alpn(b, protocols, 2));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);

    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "127.0.0.1", port, TEST_TIMEOUT_MS, &conn));
    char protocol[32];
    size_t n = 0;
    CHECK_OK(rssl_conn_alpn_protocol(conn, protocol, sizeof protocol, &n));
    CHECK(strcmp(protocol, "http/1.1") == 0 && n == 8);
    /* A short buffer reports the size needed and a truncated string. */
    char small[4];
    CHECK_RESULT(rssl_conn_alpn_protocol(conn, small, sizeof small, &n), RSSL_BUFFER_TOO_SMALL);
    CHECK(n == 8 && strcmp(small, "htt") == 0);
    const char *request = "GET / HTTP/1.0\r\n\r\n";
    CHECK_OK(rssl_send(conn, (const uint8_t *)request, strlen(request), TEST_TIMEOUT_MS));
    size_t len = 0;
    free(recv_all(conn, &len));
    rssl_conn_free(conn);
    rssl_config_free(config);
    CHECK(child_finish(&server, TEST_TIMEOUT_MS) == 0);
}

/* Only TLS 1.3 on our side, only TLS 1.2 on the server's. */
static void version_mismatch(void)
{
    struct child server;
    const char *args[] = {"-www", "-tls1_2", NULL};
    unsigned short port = start_s_server(&server, args);

    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    const uint16_t versions[] = {RSSL_TLS1_3};
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_OK(rssl_config_builder_set_versions(b, versions, 1));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);

    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect(config, "127.0.0.1", port, TEST_TIMEOUT_MS, &conn), RSSL_TLS_ALERT);
    CHECK(conn == NULL);
    uint8_t alert = 0;
    bool local = true;
    CHECK_OK(rssl_last_alert(&alert, &local));
    CHECK(strcmp(rssl_alert_name(alert), "protocol_version") == 0);
    CHECK(!local);
    CHECK(strstr(last_error(), "received SERVER ALERT: Fatal - Protocol Version") != NULL);
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
    static const struct test_case tests[] = {
        {"tls12_www", tls12_www},   {"tls13_www", tls13_www}, {"tls12_echo", tls12_echo},
        {"tls13_echo", tls13_echo}, {"alpn", alpn},           {"version_mismatch", version_mismatch},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
