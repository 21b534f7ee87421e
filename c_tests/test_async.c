/* Asynchronous callbacks: a verify or SNI callback answers RSSL_PAUSED
 * while its answer is not known, the handshake call returns RSSL_PAUSED at
 * once, and the application resumes it later on the same thread (the
 * callback is asked again). Memory connections in both roles, other
 * connections going on while one is paused, a blocking server against
 * openssl s_client, resuming on the wrong thread, and freeing a paused
 * connection. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const uint16_t TLS13[] = {RSSL_TLS1_3};

/* What the application's "lookup" has decided so far. */
enum decision { UNDECIDED, ACCEPT, REJECT };

struct verifier {
    enum decision decision;
    int calls;         /* every call of the callback */
    int paused_calls;  /* calls answered RSSL_PAUSED */
};

/* Decides only about the peer's own certificate (depth 0); the chain
 * above it is accepted as OpenSSL found it. */
static rssl_result verify_later(void *user_data, const uint8_t *cert, size_t len, uint32_t depth,
                                int32_t error)
{
    struct verifier *v = user_data;
    (void)cert;
    (void)len;
    v->calls++;
    if (depth > 0)
        return error == 0 ? RSSL_OK : RSSL_TLS_ALERT;
    switch (v->decision) {
    case UNDECIDED:
        v->paused_calls++;
        return RSSL_PAUSED;
    case ACCEPT:
        return RSSL_OK;
    default:
        return RSSL_TLS_ALERT;
    }
}

struct sni_chooser {
    const rssl_config *chosen; /* NULL while undecided */
    int paused_calls;
    char name[64];
};

static rssl_result sni_later(void *user_data, const char *server_name, const rssl_config **out)
{
    struct sni_chooser *s = user_data;
    snprintf(s->name, sizeof s->name, "%s", server_name);
    if (s->chosen == NULL) {
        s->paused_calls++;
        return RSSL_PAUSED;
    }
    *out = s->chosen;
    return RSSL_OK;
}

static const rssl_config *async_client(const uint16_t *version, struct verifier *v)
{
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(b, version, 1));
    CHECK_OK(rssl_config_builder_set_async_verify_callback(b, verify_later, v));
    return build(b);
}

/* A client's check of the server certificate waits for the application;
 * meanwhile a second connection with the same configuration completes
 * (its answer is known), and the paused one then goes on or fails. */
static void client_verify(const uint16_t *version, enum decision answer)
{
    struct verifier v = {UNDECIDED, 0, 0};
    struct verifier known = {ACCEPT, 0, 0};
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    const rssl_config *cconfig = async_client(version, &v);
    const rssl_config *other = async_client(version, &known);
    rssl_conn *client = NULL, *server = NULL, *client2 = NULL, *server2 = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK_OK(rssl_conn_new(other, "localhost", &client2));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server2));

    CHECK(memory_handshake(client, server, RSSL_PAUSED) == client);
    CHECK(v.paused_calls == 1);
    /* Still undecided: paused again, the callback asked once more. */
    CHECK_RESULT(rssl_conn_handshake_step(client), RSSL_PAUSED);
    CHECK(v.paused_calls == 2);
    /* Not established: no application data yet. */
    CHECK_RESULT(rssl_conn_write(client, (const uint8_t *)"x", 1), RSSL_INVALID_STATE);

    /* The other connection is not held up. */
    CHECK(memory_handshake(client2, server2, RSSL_PAUSED) == NULL);
    memory_ping(client2, server2);
    CHECK(known.calls >= 1);

    v.decision = answer;
    if (answer == ACCEPT) {
        CHECK(memory_handshake(client, server, RSSL_PAUSED) == NULL);
        memory_ping(client, server);
        memory_ping(server, client);
    } else {
        /* A rejection of a certificate OpenSSL found good: handshake_failure. */
        expect_alert(rssl_conn_handshake_step(client), "handshake_failure", true);
        memory_shuttle(client, server);
        expect_alert(rssl_conn_handshake_step(server), "handshake_failure", false);
    }
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_conn_free(client2);
    rssl_conn_free(server2);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
    rssl_config_free(other);
}

static void client_verify_accept_tls12(void) { client_verify(TLS12, ACCEPT); }
static void client_verify_accept_tls13(void) { client_verify(TLS13, ACCEPT); }
static void client_verify_reject_tls13(void) { client_verify(TLS13, REJECT); }

/* A server's check of the client certificate (OpenSSL has no retry point
 * of its own there) waits for the application. */
static void server_verify(const uint16_t *version)
{
    struct verifier v = {UNDECIDED, 0, 0};
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_versions(sb, version, 1));
    CHECK_OK(rssl_config_builder_set_verify(sb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_fail_if_no_peer_cert(sb, true));
    CHECK_OK(rssl_config_builder_set_cacertfile(sb, cert_path("ca.pem")));
    CHECK_OK(rssl_config_builder_set_async_verify_callback(sb, verify_later, &v));
    const rssl_config *sconfig = build(sb);
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_certfile(cb, cert_path("client.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(cb, cert_path("client.key")));
    const rssl_config *cconfig = build(cb);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));

    CHECK(memory_handshake(client, server, RSSL_PAUSED) == server);
    CHECK(v.paused_calls == 1);
    v.decision = ACCEPT;
    CHECK(memory_handshake(client, server, RSSL_PAUSED) == NULL);
    memory_ping(client, server);
    memory_ping(server, client);
    uint8_t der[4096];
    size_t n = 0;
    CHECK_OK(rssl_conn_peer_cert(server, der, sizeof der, &n));
    CHECK(n > 0);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static void server_verify_tls12(void) { server_verify(TLS12); }
static void server_verify_tls13(void) { server_verify(TLS13); }

/* The SNI choice waits for the application; it then picks the
 * configuration whose certificate the client trusts (the listening one's
 * it does not). */
static void sni(const uint16_t *version)
{
    struct sni_chooser s = {NULL, 0, {0}};
    const rssl_config *chosen = build(server_builder("server.pem", "server.key"));
    rssl_config_builder *sb = server_builder("other_server.pem", "other_server.key");
    CHECK_OK(rssl_config_builder_set_async_sni_callback(sb, sni_later, &s));
    const rssl_config *sconfig = build(sb);
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(cb, version, 1));
    const rssl_config *cconfig = build(cb);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));

    CHECK(memory_handshake(client, server, RSSL_PAUSED) == server);
    CHECK(strcmp(s.name, "localhost") == 0);
    CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_PAUSED);
    CHECK(s.paused_calls == 2);
    s.chosen = chosen;
    CHECK(memory_handshake(client, server, RSSL_PAUSED) == NULL);
    memory_ping(client, server);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(chosen);
    rssl_config_free(cconfig);
}

static void sni_tls12(void) { sni(TLS12); }
static void sni_tls13(void) { sni(TLS13); }

/* The synchronous SNI callback's RSSL_PAUSED is no answer: it rejects. */
static rssl_result sni_sync_paused(void *user_data, const char *name, const rssl_config **out)
{
    (void)user_data;
    (void)name;
    (void)out;
    return RSSL_PAUSED;
}

static void sync_sni_cannot_pause(void)
{
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_sni_callback(sb, sni_sync_paused, NULL));
    const rssl_config *sconfig = build(sb);
    const rssl_config *cconfig = build(client_builder("ca.pem"));
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK_RESULT(rssl_conn_handshake_step(client), RSSL_WANT_READ);
    memory_shuttle(client, server);
    expect_alert(rssl_conn_handshake_step(server), "unrecognized_name", true);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

struct resume_try {
    rssl_conn *conn;
    rssl_result result;
};

static void *step_elsewhere(void *arg)
{
    struct resume_try *t = arg;
    t->result = rssl_conn_handshake_step(t->conn);
    return NULL;
}

/* Resuming on another thread is refused (OpenSSL's job belongs to the
 * pausing thread) and changes nothing; this thread then finishes it. */
static void wrong_thread(void)
{
    struct verifier v = {UNDECIDED, 0, 0};
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    const rssl_config *cconfig = async_client(TLS13, &v);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK(memory_handshake(client, server, RSSL_PAUSED) == client);
    v.decision = ACCEPT;
    struct resume_try t = {client, RSSL_OK};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, step_elsewhere, &t) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK_RESULT(t.result, RSSL_INVALID_STATE);
    CHECK(v.paused_calls == 1);
    CHECK(memory_handshake(client, server, RSSL_PAUSED) == NULL);
    memory_ping(client, server);
    CHECK_RESULT(rssl_config_builder_set_async_verify_callback(NULL, verify_later, &v),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_async_sni_callback(NULL, sni_later, NULL),
                 RSSL_NULL_PARAMETER);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* Freed while paused: the handshake is abandoned and OpenSSL's job
 * released (valgrind and ASan check nothing leaks). */
static void free_paused(void)
{
    struct verifier v = {UNDECIDED, 0, 0};
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    const rssl_config *cconfig = async_client(TLS13, &v);
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK(memory_handshake(client, server, RSSL_PAUSED) == client);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* A blocking server: rssl_accept returns RSSL_PAUSED with the connection
 * while the client certificate's check waits; rssl_handshake goes on once
 * it is decided, and a line is echoed with openssl s_client. */
static void blocking_server(void)
{
    struct verifier v = {UNDECIDED, 0, 0};
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_verify(sb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_cacertfile(sb, cert_path("ca.pem")));
    CHECK_OK(rssl_config_builder_set_async_verify_callback(sb, verify_later, &v));
    const rssl_config *config = build(sb);

    struct child client;
    const char *extra[] = {"-servername", "localhost", "-CAfile", cert_path("ca.pem"),
                           "-cert", cert_path("client.pem"), "-key", cert_path("client.key"),
                           "-verify_return_error", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn), RSSL_PAUSED);
    CHECK(conn != NULL && v.paused_calls == 1);
    CHECK_RESULT(rssl_handshake(conn, TEST_TIMEOUT_MS), RSSL_PAUSED);
    v.decision = ACCEPT;
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
    {"client_verify_accept_tls12", client_verify_accept_tls12},
    {"client_verify_accept_tls13", client_verify_accept_tls13},
    {"client_verify_reject_tls13", client_verify_reject_tls13},
    {"server_verify_tls12", server_verify_tls12},
    {"server_verify_tls13", server_verify_tls13},
    {"sni_tls12", sni_tls12},
    {"sni_tls13", sni_tls13},
    {"sync_sni_cannot_pause", sync_sni_cannot_pause},
    {"wrong_thread", wrong_thread},
    {"free_paused", free_paused},
    {"blocking_server", blocking_server},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
