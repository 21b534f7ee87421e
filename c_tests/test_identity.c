/* Several identities in one configuration (the C side of OTP's
 * certs_keys), and renegotiation (TLS 1.2) and key updates (TLS 1.3)
 * started from C, on memory connections and on sockets against openssl's
 * s_server and s_client. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const uint16_t TLS13[] = {RSSL_TLS1_3};

/* Moves all of `from`'s output into `to`; returns the byte count. */
static void pair(const rssl_config *cconfig, const rssl_config *sconfig, rssl_conn **client,
                 rssl_conn **server)
{
    CHECK_OK(rssl_conn_new(cconfig, "localhost", client));
    CHECK_OK(rssl_conn_new(sconfig, "ignored by a server", server));
    CHECK(memory_handshake(*client, *server, RSSL_OK) == NULL);
}

/* Writes `text` on `from` and reads it whole on `to`. */
static void transfer(rssl_conn *from, rssl_conn *to, const char *text)
{
    size_t len = strlen(text);
    CHECK_OK(rssl_conn_write(from, (const uint8_t *)text, len));
    memory_shuttle(from, to);
    char buf[256];
    size_t got = 0;
    while (got < len) {
        size_t n = 0;
        CHECK_OK(rssl_conn_read(to, (uint8_t *)buf + got, sizeof buf - got, &n));
        got += n;
    }
    CHECK(got == len && memcmp(buf, text, len) == 0);
}

/* Whether the peer certificate of `conn` is the DER file `name`. */
static bool peer_cert_is(const rssl_conn *conn, const char *name)
{
    uint8_t buf[4096];
    size_t n = 0;
    CHECK_OK(rssl_conn_peer_cert(conn, buf, sizeof buf, &n));
    size_t len = 0;
    unsigned char *der = read_file(cert_path(name), &len);
    bool same = len == n && memcmp(der, buf, n) == 0;
    free(der);
    return same;
}

/* An identity of each kind: server.pem (ECDSA P-256) and server_rsa.pem. */
static void add_both(rssl_config_builder *b)
{
    CHECK_OK(rssl_config_builder_add_identity_files(b, cert_path("server_rsa.pem"),
                                                    cert_path("server_rsa.key"), NULL));
    CHECK_OK(rssl_config_builder_add_identity_files(b, cert_path("server.pem"),
                                                    cert_path("server.key"), NULL));
}

/* A server holding an ECDSA and an RSA identity sends the one the
 * client's signature algorithms allow, TLS 1.2 and 1.3. */
static void server_picks(void)
{
    const uint16_t *versions[] = {TLS12, TLS13};
    for (int v = 0; v < 2; v++) {
        rssl_config_builder *sb = NULL;
        CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
        add_both(sb);
        const rssl_config *sconfig = build(sb);
        const char *lists[] = {"ECDSA+SHA256", "rsa_pss_rsae_sha256:RSA+SHA256", "ECDSA+SHA256"};
        const char *want[] = {"server.der", "server_rsa.der", "server.der"};
        for (int i = 0; i < 3; i++) {
            rssl_config_builder *cb = client_builder("ca.pem");
            CHECK_OK(rssl_config_builder_set_versions(cb, versions[v], 1));
            CHECK_OK(rssl_config_builder_set_sigalgs(cb, lists[i]));
            const rssl_config *cconfig = build(cb);
            rssl_conn *client = NULL, *server = NULL;
            pair(cconfig, sconfig, &client, &server);
            CHECK(peer_cert_is(client, want[i]));
            transfer(client, server, "ping");
            rssl_conn_free(client);
            rssl_conn_free(server);
            rssl_config_free(cconfig);
        }
        rssl_config_free(sconfig);
    }
}

/* A client holding both identities sends the one the server's
 * CertificateRequest allows, TLS 1.2 and 1.3. */
static void client_picks(void)
{
    const uint16_t *versions[] = {TLS12, TLS13};
    for (int v = 0; v < 2; v++) {
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_versions(cb, versions[v], 1));
        CHECK_OK(rssl_config_builder_add_identity_files(cb, cert_path("client.pem"),
                                                        cert_path("client.key"), NULL));
        CHECK_OK(rssl_config_builder_add_identity_files(cb, cert_path("server_rsa.pem"),
                                                        cert_path("server_rsa.key"), NULL));
        const rssl_config *cconfig = build(cb);
        const char *lists[] = {"rsa_pss_rsae_sha256:RSA+SHA256", "ECDSA+SHA256"};
        const char *server_cert[] = {"server_rsa.pem", "server.pem"};
        const char *server_key[] = {"server_rsa.key", "server.key"};
        const char *want[] = {"server_rsa.der", "client.der"};
        for (int i = 0; i < 2; i++) {
            rssl_config_builder *sb = server_builder(server_cert[i], server_key[i]);
            CHECK_OK(rssl_config_builder_set_verify(sb, RSSL_VERIFY_PEER));
            CHECK_OK(rssl_config_builder_set_fail_if_no_peer_cert(sb, true));
            CHECK_OK(rssl_config_builder_set_cacertfile(sb, cert_path("ca.pem")));
            CHECK_OK(rssl_config_builder_set_sigalgs(sb, lists[i]));
            const rssl_config *sconfig = build(sb);
            rssl_conn *client = NULL, *server = NULL;
            pair(cconfig, sconfig, &client, &server);
            CHECK(peer_cert_is(server, want[i]));
            transfer(server, client, "pong");
            rssl_conn_free(client);
            rssl_conn_free(server);
            rssl_config_free(sconfig);
        }
        rssl_config_free(cconfig);
    }
}

/* openssl s_client restricted to one kind of signature sees that kind. */
static void server_picks_s_client(void)
{
    const char *lists[] = {"ECDSA+SHA256", "rsa_pss_rsae_sha256"};
    const char *want[] = {"Signature type: ECDSA\n", "Signature type: RSA-PSS\n"};
    for (int i = 0; i < 2; i++) {
        rssl_config_builder *sb = NULL;
        CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
        add_both(sb);
        const char *extra[] = {"-sigalgs", lists[i], NULL};
        struct served seen;
        CHECK(s_client_connection(sb, extra, &seen));
        CHECK(peer_said(want[i]));
    }
}

/* Identities from memory (PEM, key in the same data; DER certificate with a
 * DER key), bad identities refused when the configuration is built, and
 * NULL arguments. */
static void identity_arguments(void)
{
    size_t pem_len = 0, key_len = 0, der_len = 0, kder_len = 0;
    unsigned char *pem = read_file(cert_path("server.pem"), &pem_len);
    unsigned char *key = read_file(cert_path("server.key"), &key_len);
    unsigned char *der = read_file(cert_path("server.der"), &der_len);
    unsigned char *kder = read_file(cert_path("server.key.der"), &kder_len);
    unsigned char *both = malloc(pem_len + key_len);
    CHECK(both != NULL);
    memcpy(both, pem, pem_len);
    memcpy(both + pem_len, key, key_len);

    rssl_config_builder *sb = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
    CHECK_OK(rssl_config_builder_add_identity(sb, both, pem_len + key_len, RSSL_FORMAT_PEM, NULL,
                                              0, RSSL_FORMAT_PEM, NULL));
    CHECK_OK(rssl_config_builder_add_identity_files(sb, cert_path("server_rsa.pem"),
                                                    cert_path("server_rsa.key"), NULL));
    const rssl_config *config = build(sb);
    rssl_config_free(config);

    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
    CHECK_OK(rssl_config_builder_add_identity(sb, der, der_len, RSSL_FORMAT_DER, kder, kder_len,
                                              RSSL_FORMAT_DER, NULL));
    config = build(sb);
    rssl_config_free(config);

    /* An encrypted key with its password, and without. */
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
    CHECK_OK(rssl_config_builder_add_identity_files(sb, cert_path("server.pem"),
                                                    cert_path("server_enc.key"), "secret"));
    config = build(sb);
    rssl_config_free(config);
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
    CHECK_OK(rssl_config_builder_add_identity_files(sb, cert_path("server.pem"),
                                                    cert_path("server_enc.key"), NULL));
    CHECK(rssl_config_builder_build(sb, &config) != RSSL_OK);
    CHECK(strstr(last_error(), "server_enc.key") != NULL);
    rssl_config_builder_free(sb);

    /* A key of another pair, a missing file. */
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
    CHECK_OK(rssl_config_builder_add_identity_files(sb, cert_path("server.pem"),
                                                    cert_path("server_rsa.key"), NULL));
    CHECK(rssl_config_builder_build(sb, &config) != RSSL_OK);
    CHECK(strstr(last_error(), "key_does_not_match_certificate") != NULL);
    rssl_config_builder_free(sb);
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
    CHECK_OK(rssl_config_builder_add_identity_files(sb, cert_path("no-such.pem"), NULL, NULL));
    CHECK(rssl_config_builder_build(sb, &config) != RSSL_OK);
    CHECK(strstr(last_error(), "no-such.pem") != NULL);

    CHECK_RESULT(rssl_config_builder_add_identity(sb, (const uint8_t *)"junk", 4,
                                                  RSSL_FORMAT_PEM, NULL, 0, RSSL_FORMAT_PEM, NULL),
                 RSSL_BAD_CERTIFICATE);
    CHECK_RESULT(rssl_config_builder_add_identity(sb, der, der_len, 7, NULL, 0, 7, NULL),
                 RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_add_identity_files(sb, NULL, NULL, NULL),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_identity_files(NULL, cert_path("server.pem"), NULL,
                                                        NULL),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_identity(sb, NULL, 3, RSSL_FORMAT_PEM, NULL, 0,
                                                  RSSL_FORMAT_PEM, NULL),
                 RSSL_NULL_PARAMETER);
    rssl_config_builder_free(sb);
    free(pem);
    free(key);
    free(der);
    free(kder);
    free(both);
}

static void memory_configs(const uint16_t *version, const rssl_config **cconfig,
                           const rssl_config **sconfig)
{
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(cb, version, 1));
    *cconfig = build(cb);
    *sconfig = build(server_builder("server.pem", "server.key"));
}

/* Reads on `conn` with nothing to deliver: handshake records only. */
static void read_nothing(rssl_conn *conn)
{
    uint8_t buf[64];
    size_t n = 0;
    CHECK_RESULT(rssl_conn_read(conn, buf, sizeof buf, &n), RSSL_WANT_READ);
}

/* TLS 1.2 renegotiation on memory connections, started by either side:
 * pending until the new handshake's last flight, data flows after. */
static void renegotiate_memory(void)
{
    const rssl_config *cconfig = NULL, *sconfig = NULL;
    memory_configs(TLS12, &cconfig, &sconfig);
    for (int by_server = 0; by_server < 2; by_server++) {
        rssl_conn *client = NULL, *server = NULL;
        pair(cconfig, sconfig, &client, &server);
        rssl_conn *us = by_server ? server : client, *them = by_server ? client : server;
        bool pending = false;
        CHECK_OK(rssl_conn_renegotiation_pending(us, &pending));
        CHECK(!pending);
        CHECK_OK(rssl_conn_renegotiate(us));
        CHECK_OK(rssl_conn_renegotiation_pending(us, &pending));
        CHECK(pending);
        int rounds = 0;
        while (pending) {
            CHECK(++rounds < 10);
            CHECK(memory_shuttle(us, them) > 0 || rounds > 1);
            read_nothing(them);
            memory_shuttle(them, us);
            read_nothing(us);
            CHECK_OK(rssl_conn_renegotiation_pending(us, &pending));
        }
        /* The new handshake took more than one exchange. */
        CHECK(rounds >= 2);
        memory_shuttle(us, them);
        transfer(client, server, "after renegotiation");
        transfer(server, client, "and back");
        rssl_conn_free(client);
        rssl_conn_free(server);
    }
    /* TLS 1.3 has no renegotiation; key updates are TLS 1.3 only. */
    rssl_conn *client = NULL, *server = NULL;
    pair(cconfig, sconfig, &client, &server);
    CHECK_RESULT(rssl_conn_update_keys(client, false), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_renegotiate(NULL), RSSL_NULL_PARAMETER);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* TLS 1.3 key updates on memory connections: ours alone, then one asking
 * the peer to update too (its KeyUpdate comes back), data after each. */
static void update_keys_memory(void)
{
    const rssl_config *cconfig = NULL, *sconfig = NULL;
    memory_configs(TLS13, &cconfig, &sconfig);
    rssl_conn *client = NULL, *server = NULL;
    pair(cconfig, sconfig, &client, &server);
    /* A connection not yet established cannot. */
    rssl_conn *fresh = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &fresh));
    CHECK_RESULT(rssl_conn_update_keys(fresh, true), RSSL_INVALID_STATE);
    rssl_conn_free(fresh);

    CHECK_OK(rssl_conn_update_keys(client, false));
    CHECK(memory_shuttle(client, server) > 0);
    read_nothing(server);
    CHECK(memory_shuttle(server, client) == 0);
    transfer(client, server, "new client keys");
    transfer(server, client, "old server keys");

    CHECK_OK(rssl_conn_update_keys(client, true));
    CHECK(memory_shuttle(client, server) > 0);
    read_nothing(server);
    /* The server answers with its own KeyUpdate, which OpenSSL sends
     * before its next record: a data record alone would be the text, one
     * content type byte, the 16-byte AEAD tag and the 5-byte header. */
    const char *text = "new server keys";
    CHECK_OK(rssl_conn_write(server, (const uint8_t *)text, strlen(text)));
    const uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK_OK(rssl_conn_output(server, &out, &out_len));
    CHECK(out_len > strlen(text) + 22);
    char buf[64];
    size_t n = 0;
    memory_shuttle(server, client);
    CHECK_OK(rssl_conn_read(client, (uint8_t *)buf, sizeof buf, &n));
    CHECK(n == strlen(text) && memcmp(buf, text, n) == 0);
    transfer(client, server, "newer client keys");
    CHECK_RESULT(rssl_conn_renegotiate(client), RSSL_INVALID_STATE);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* Counts the occurrences of `text` in the last peer's output. */
static int peer_count(const char *text)
{
    int count = 0;
    for (const char *at = strstr(peer_log, text); at != NULL; at = strstr(at + 1, text))
        count++;
    return count;
}

/* A blocking client renegotiates with openssl s_server (TLS 1.2; it
 * allows client renegotiation only with -client_renegotiation), then
 * updates keys with it (TLS 1.3): s_server's -msg trace shows a second
 * ClientHello, or our KeyUpdate. */
static void blocking_s_server(void)
{
    for (int tls13 = 0; tls13 < 2; tls13++) {
        struct child server;
        const char *extra[] = {"-msg", tls13 ? "-tls1_3" : "-tls1_2", "-client_renegotiation",
                               NULL};
        unsigned short port = start_s_server(&server, extra);
        rssl_config_builder *cb = client_builder("ca.pem");
        const rssl_config *config = build(cb);
        rssl_conn *conn = NULL;
        CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
        if (tls13) {
            CHECK_RESULT(rssl_renegotiate(conn, TEST_TIMEOUT_MS), RSSL_INVALID_STATE);
            CHECK_OK(rssl_update_keys(conn, true, TEST_TIMEOUT_MS));
            CHECK(child_wait_for(&server, "KeyUpdate", TEST_TIMEOUT_MS));
        } else {
            CHECK_RESULT(rssl_update_keys(conn, false, TEST_TIMEOUT_MS), RSSL_INVALID_STATE);
            CHECK_OK(rssl_renegotiate(conn, TEST_TIMEOUT_MS));
        }
        /* Data after it reaches s_server (it prints what it gets). */
        const char *line = "after the new keys\n";
        CHECK_OK(rssl_send(conn, (const uint8_t *)line, strlen(line), TEST_TIMEOUT_MS));
        CHECK(child_wait_for(&server, line, TEST_TIMEOUT_MS));
        CHECK_OK(rssl_close(conn));
        child_read_all(&server, TEST_TIMEOUT_MS);
        snprintf(peer_log, sizeof peer_log, "%s", server.log);
        CHECK(child_finish(&server, TEST_TIMEOUT_MS) >= 0);
        if (tls13) {
            /* Ours (s_server would answer our request with its next
             * write; it writes nothing here). */
            CHECK(peer_count("<<< TLS 1.3, Handshake [length 0005], KeyUpdate") == 1);
        } else {
            CHECK(peer_count("ClientHello") == 2);
            CHECK(peer_count("ServerHelloDone") == 2);
        }
        rssl_config_free(config);
    }
}

/* A blocking server renegotiates with openssl s_client (TLS 1.2): its
 * HelloRequest, then the whole new handshake. */
static void blocking_s_client(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_versions(sb, TLS12, 1));
    const rssl_config *config = build(sb);
    struct child client;
    const char *extra[] = {"-msg", NULL};
    start_s_client(&client, port, extra);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
    CHECK(child_wait_for(&client, "Verify return code", TEST_TIMEOUT_MS));
    CHECK_OK(rssl_renegotiate(conn, TEST_TIMEOUT_MS));
    const char *line = "renegotiated\n";
    CHECK_OK(rssl_send(conn, (const uint8_t *)line, strlen(line), TEST_TIMEOUT_MS));
    CHECK(child_wait_for(&client, line, TEST_TIMEOUT_MS));
    child_close_input(&client);
    size_t len = 0;
    free(recv_all(conn, &len));
    CHECK_OK(rssl_close(conn));
    child_read_all(&client, TEST_TIMEOUT_MS);
    snprintf(peer_log, sizeof peer_log, "%s", client.log);
    CHECK(child_finish(&client, TEST_TIMEOUT_MS) >= 0);
    CHECK(peer_count("HelloRequest") == 1);
    CHECK(peer_count("ClientHello") == 2);
    rssl_config_free(config);
    rssl_listener_free(listener);
}

/* s_server refusing client renegotiation (its default): the alert. */
static void blocking_refused(void)
{
    struct child server;
    const char *extra[] = {"-tls1_2", NULL};
    unsigned short port = start_s_server(&server, extra);
    const rssl_config *config = build(client_builder("ca.pem"));
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
    CHECK_RESULT(rssl_renegotiate(conn, TEST_TIMEOUT_MS), RSSL_TLS_ALERT);
    CHECK(strstr(last_error(), "no renegotiation") != NULL);
    CHECK_RESULT(rssl_renegotiate(conn, TEST_TIMEOUT_MS), RSSL_TLS_ALERT);
    rssl_conn_free(conn);
    child_kill(&server);
    rssl_config_free(config);
}

/* CRLs from a hashed directory: the revoked certificate fails, another
 * passes; a directory without the CRL fails a full check. */
static void crl_dir(void)
{
    const char *dirs[] = {"crl_hash_dir", "crl_hash_dir", "."};
    const char *certs[] = {"revoked_server", "server", "server"};
    for (int i = 0; i < 3; i++) {
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_crl_dir(cb, cert_path(dirs[i])));
        CHECK_OK(rssl_config_builder_set_crl_check(cb, RSSL_CRL_CHECK_PEER));
        char pem[64], key[64];
        snprintf(pem, sizeof pem, "%s.pem", certs[i]);
        snprintf(key, sizeof key, "%s.key", certs[i]);
        struct served seen;
        rssl_result r = one_connection(server_builder(pem, key), cb, &seen);
        if (i == 0)
            expect_alert(r, "certificate_revoked", true);
        else if (i == 1)
            CHECK_OK(r);
        else
            CHECK_RESULT(r, RSSL_TLS_ALERT);
    }
    CHECK_RESULT(rssl_config_builder_set_crl_dir(NULL, "x"), RSSL_NULL_PARAMETER);
}

static const struct test_case TESTS[] = {
    {"server_picks", server_picks},
    {"client_picks", client_picks},
    {"server_picks_s_client", server_picks_s_client},
    {"identity_arguments", identity_arguments},
    {"renegotiate_memory", renegotiate_memory},
    {"update_keys_memory", update_keys_memory},
    {"blocking_s_server", blocking_s_server},
    {"blocking_s_client", blocking_s_client},
    {"blocking_refused", blocking_refused},
    {"crl_dir", crl_dir},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
