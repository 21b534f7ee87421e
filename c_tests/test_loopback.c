/* rssl client against rssl server in one process (a server thread): bulk
 * data both ways, in-memory certificates, alerts seen from both ends,
 * half-close. Also run under valgrind and linked statically. */
#include "common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BULK (1024 * 1024 + 17)

struct server {
    pthread_t thread;
    rssl_listener *listener;
    const rssl_config *config;
    unsigned short port;
    /* What the server thread saw. */
    rssl_result accept_result;
    uint8_t alert;
    bool alert_local;
    char sni[64];
    char alpn[32];
    size_t echoed;
    bool half_close;
};

/* Echoes everything until the client closes (or, in half_close mode,
 * answers after the client's shutdown). */
static void *serve(void *arg)
{
    struct server *s = arg;
    rssl_conn *conn = NULL;
    s->accept_result = rssl_accept(s->listener, s->config, TEST_TIMEOUT_MS, &conn);
    if (s->accept_result == RSSL_TLS_ALERT)
        CHECK_OK(rssl_last_alert(&s->alert, &s->alert_local));
    if (s->accept_result != RSSL_OK)
        return NULL;
    size_t n = 0;
    rssl_conn_sni_hostname(conn, s->sni, sizeof s->sni, &n);
    rssl_conn_alpn_protocol(conn, s->alpn, sizeof s->alpn, &n);
    uint8_t *buf = malloc(65536);
    CHECK(buf != NULL);
    for (;;) {
        rssl_result r = rssl_recv(conn, buf, 65536, TEST_TIMEOUT_MS, &n);
        if (r == RSSL_CLOSED)
            break;
        CHECK_OK(r);
        if (!s->half_close)
            CHECK_OK(rssl_send(conn, buf, n, TEST_TIMEOUT_MS));
        s->echoed += n;
    }
    if (s->half_close) {
        /* The client shut its side down; ours still works. */
        char reply[64];
        int len = snprintf(reply, sizeof reply, "got %zu bytes", s->echoed);
        CHECK_OK(rssl_send(conn, (const uint8_t *)reply, (size_t)len, TEST_TIMEOUT_MS));
    }
    free(buf);
    CHECK_OK(rssl_close(conn));
    return NULL;
}

static void server_start(struct server *s, const rssl_config *config)
{
    s->config = config;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &s->listener));
    CHECK_OK(rssl_listener_port(s->listener, &s->port));
    CHECK(pthread_create(&s->thread, NULL, serve, s) == 0);
}

static void server_join(struct server *s)
{
    CHECK(pthread_join(s->thread, NULL) == 0);
    rssl_listener_free(s->listener);
    rssl_config_free(s->config);
}

/* Sends BULK bytes in uneven pieces and reads the echo back. */
static void bulk_echo(rssl_conn *conn)
{
    uint8_t *out = malloc(BULK), *in = malloc(BULK);
    CHECK(out != NULL && in != NULL);
    for (size_t i = 0; i < BULK; i++)
        out[i] = (uint8_t)(i * 7 + i / 251);
    size_t sent = 0, got = 0;
    while (got < BULK) {
        /* Stay at most 256 KiB ahead so neither side blocks forever. */
        if (sent < BULK && sent - got < 256 * 1024) {
            size_t piece = BULK - sent < 40000 ? BULK - sent : 40000;
            CHECK_OK(rssl_send(conn, out + sent, piece, TEST_TIMEOUT_MS));
            sent += piece;
            continue;
        }
        size_t n = 0;
        CHECK_OK(rssl_recv(conn, in + got, BULK - got, TEST_TIMEOUT_MS, &n));
        got += n;
    }
    CHECK(memcmp(in, out, BULK) == 0);
    free(out);
    free(in);
}

static void run_version(uint16_t version)
{
    struct server s = {0};
    rssl_config_builder *b = NULL;
    const rssl_config *sconfig = NULL;
    const char *server_alpn[] = {"h2", "http/1.1"};
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server.key")));
    CHECK_OK(rssl_config_builder_set_version_range(b, version, version));
    CHECK_OK(rssl_config_builder_set_alpn(b, server_alpn, 2));
    CHECK_OK(rssl_config_builder_build(b, &sconfig));
    rssl_config_builder_free(b);
    server_start(&s, sconfig);

    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, "http/1.1");
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", s.port, TEST_TIMEOUT_MS, &conn));
    uint16_t got = 0;
    CHECK_OK(rssl_conn_version(conn, &got));
    CHECK(got == version);
    char alpn[32];
    size_t n = 0;
    CHECK_OK(rssl_conn_alpn_protocol(conn, alpn, sizeof alpn, &n));
    CHECK(strcmp(alpn, "http/1.1") == 0);
    bulk_echo(conn);
    CHECK_OK(rssl_close(conn));
    server_join(&s);
    CHECK(s.accept_result == RSSL_OK);
    CHECK(strcmp(s.sni, "localhost") == 0);
    CHECK(strcmp(s.alpn, "http/1.1") == 0);
    CHECK(s.echoed == BULK);
    rssl_config_free(config);
}

static void tls12(void)
{
    run_version(RSSL_TLS1_2);
}

static void tls13(void)
{
    run_version(RSSL_TLS1_3);
}

/* Certificates, key and CAs given in memory, PEM and DER; mutual auth. */
static void memory_config(void)
{
    size_t cert_len, key_len, ca_len, ccert_len, ckey_len;
    unsigned char *cert = read_file(cert_path("server.der"), &cert_len);
    unsigned char *key = read_file(cert_path("server.key.der"), &key_len);
    unsigned char *ca = read_file(cert_path("ca.pem"), &ca_len);
    unsigned char *ccert = read_file(cert_path("client.pem"), &ccert_len);
    unsigned char *ckey = read_file(cert_path("client.key"), &ckey_len);

    struct server s = {0};
    rssl_config_builder *b = NULL;
    const rssl_config *sconfig = NULL, *config = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_OK(rssl_config_builder_set_cert(b, cert, cert_len, RSSL_FORMAT_DER));
    CHECK_OK(rssl_config_builder_set_key(b, key, key_len, RSSL_FORMAT_DER));
    CHECK_OK(rssl_config_builder_set_cacerts(b, ca, ca_len, RSSL_FORMAT_PEM));
    CHECK_OK(rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_fail_if_no_peer_cert(b, true));
    CHECK_OK(rssl_config_builder_build(b, &sconfig));
    rssl_config_builder_free(b);
    server_start(&s, sconfig);

    size_t cader_len;
    unsigned char *cader = read_file(cert_path("ca.der"), &cader_len);
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_OK(rssl_config_builder_set_cert(b, ccert, ccert_len, RSSL_FORMAT_PEM));
    CHECK_OK(rssl_config_builder_set_key(b, ckey, ckey_len, RSSL_FORMAT_PEM));
    CHECK_OK(rssl_config_builder_set_cacerts(b, cader, cader_len, RSSL_FORMAT_DER));
    CHECK_OK(rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);

    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "127.0.0.1", s.port, TEST_TIMEOUT_MS, &conn));
    CHECK_OK(rssl_send(conn, (const uint8_t *)"hi", 2, TEST_TIMEOUT_MS));
    unsigned char back[2];
    recv_exactly(conn, back, 2);
    CHECK(memcmp(back, "hi", 2) == 0);
    CHECK_OK(rssl_close(conn));
    server_join(&s);
    CHECK(s.accept_result == RSSL_OK);
    rssl_config_free(config);
    free(cert);
    free(key);
    free(ca);
    free(ccert);
    free(ckey);
    free(cader);
}

/* The client does not trust the server: each end reports the same alert,
 * generated on one side and received on the other (per-thread errors). */
static void client_rejects(void)
{
    struct server s = {0};
    server_start(&s, server_config(false, NULL, NULL));
    const rssl_config *config = client_config(cert_path("other_ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect(config, "localhost", s.port, TEST_TIMEOUT_MS, &conn),
                 RSSL_TLS_ALERT);
    uint8_t alert = 0;
    bool local = false;
    CHECK_OK(rssl_last_alert(&alert, &local));
    CHECK(strcmp(rssl_alert_name(alert), "unknown_ca") == 0 && local);
    server_join(&s);
    CHECK(s.accept_result == RSSL_TLS_ALERT);
    CHECK(strcmp(rssl_alert_name(s.alert), "unknown_ca") == 0 && !s.alert_local);
    /* The server thread's failure did not touch this thread's last error. */
    CHECK(strstr(last_error(), "generated CLIENT ALERT") != NULL);
    rssl_config_free(config);
}

/* rssl_shutdown: our side ends, the peer still answers. */
static void half_close(void)
{
    struct server s = {0};
    s.half_close = true;
    server_start(&s, server_config(false, NULL, NULL));
    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", s.port, TEST_TIMEOUT_MS, &conn));
    CHECK_OK(rssl_send(conn, (const uint8_t *)"12345", 5, TEST_TIMEOUT_MS));
    CHECK_OK(rssl_shutdown(conn, TEST_TIMEOUT_MS));
    CHECK_RESULT(rssl_send(conn, (const uint8_t *)"x", 1, TEST_TIMEOUT_MS), RSSL_CLOSED);
    size_t len = 0;
    char *reply = recv_all(conn, &len);
    CHECK(strcmp(reply, "got 5 bytes") == 0);
    free(reply);
    CHECK_OK(rssl_close(conn));
    server_join(&s);
    rssl_config_free(config);
}

#define CLIENTS 4

struct shared {
    const rssl_config *config; /* one configuration, used by every thread */
    unsigned short port;
    int id;
};

/* A server that answers CLIENTS connections one after the other. */
static void *serve_many(void *arg)
{
    struct server *s = arg;
    for (int i = 0; i < CLIENTS; i++) {
        rssl_conn *conn = NULL;
        CHECK_OK(rssl_accept(s->listener, s->config, TEST_TIMEOUT_MS, &conn));
        uint8_t buf[64];
        size_t n = 0;
        CHECK_OK(rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n));
        CHECK_OK(rssl_send(conn, buf, n, TEST_TIMEOUT_MS));
        CHECK_RESULT(rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n), RSSL_CLOSED);
        rssl_conn_free(conn);
        s->echoed++;
    }
    return NULL;
}

static void *client_thread(void *arg)
{
    struct shared *c = arg;
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(c->config, "localhost", c->port, TEST_TIMEOUT_MS, &conn));
    char hello[32], back[32];
    int len = snprintf(hello, sizeof hello, "client %d", c->id);
    CHECK_OK(rssl_send(conn, (const uint8_t *)hello, (size_t)len, TEST_TIMEOUT_MS));
    recv_exactly(conn, (unsigned char *)back, (size_t)len);
    CHECK(memcmp(back, hello, (size_t)len) == 0);
    CHECK_OK(rssl_close(conn));
    return NULL;
}

/* One client configuration shared by threads connecting at the same time. */
static void shared_config(void)
{
    struct server s = {0};
    s.config = server_config(false, NULL, NULL);
    CHECK_OK(rssl_listen("127.0.0.1", 0, CLIENTS, &s.listener));
    CHECK_OK(rssl_listener_port(s.listener, &s.port));
    CHECK(pthread_create(&s.thread, NULL, serve_many, &s) == 0);

    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);
    pthread_t threads[CLIENTS];
    struct shared clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (struct shared){.config = config, .port = s.port, .id = i};
        CHECK(pthread_create(&threads[i], NULL, client_thread, &clients[i]) == 0);
    }
    for (int i = 0; i < CLIENTS; i++)
        CHECK(pthread_join(threads[i], NULL) == 0);
    server_join(&s);
    CHECK(s.echoed == CLIENTS);
    rssl_config_free(config);
}

int main(int argc, char **argv)
{
    static const struct test_case tests[] = {
        {"tls12", tls12},
        {"tls13", tls13},
        {"memory_config", memory_config},
        {"client_rejects", client_rejects},
        {"half_close", half_close},
        {"shared_config", shared_config},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
