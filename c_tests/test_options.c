/* (e) The configuration options but those that choose what is negotiated
 * (test_negotiation.c): verify and partial-chain callbacks, depth, CRLs, SNI
 * hosts and callback, NPN, PSK, SRP, session resumption, fallback,
 * renegotiation, keying material. rssl against rssl in one process, and
 * where a peer's own words show the effect, against openssl
 * s_client/s_server (GnuTLS's tools for secure renegotiation and SRP). */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const uint16_t TLS13[] = {RSSL_TLS1_3};

/* --- Verification callbacks --- */

struct verify_log {
    int calls;
    int depth0_errors[8];
    int n_depth0;
    bool accept_unknown_ca;
    bool reject_peer;
};

static bool verify_cb(void *user_data, const uint8_t *der, size_t len, uint32_t depth,
                      int32_t error)
{
    struct verify_log *log = user_data;
    CHECK(der != NULL && len > 100);
    __atomic_add_fetch(&log->calls, 1, __ATOMIC_SEQ_CST);
    if (depth == 0 && log->n_depth0 < 8)
        log->depth0_errors[log->n_depth0++] = error;
    if (error != 0)
        return log->accept_unknown_ca &&
               strcmp(rssl_verify_error_name(error), "unknown_ca") == 0;
    return !(log->reject_peer && depth == 0);
}

static void verify_callback_accepts_unknown_ca(void)
{
    struct verify_log log = {.accept_unknown_ca = true};
    rssl_config_builder *cb = client_builder("other_ca.pem");
    CHECK_OK(rssl_config_builder_set_verify_callback(cb, verify_cb, &log));
    struct served seen;
    CHECK_OK(one_connection(server_builder("server.pem", "server.key"), cb, &seen));
    CHECK(log.n_depth0 >= 1);
    CHECK(strcmp(rssl_verify_error_name(log.depth0_errors[0]), "unknown_ca") == 0);
    CHECK(strlen(rssl_verify_error_string(log.depth0_errors[0])) > 0);

    /* Without the callback the same client fails. */
    CHECK_RESULT(one_connection(server_builder("server.pem", "server.key"),
                                client_builder("other_ca.pem"), &seen),
                 RSSL_TLS_ALERT);
}

static void verify_callback_rejects(void)
{
    struct verify_log log = {.reject_peer = true};
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_verify_callback(cb, verify_cb, &log));
    struct served seen;
    rssl_result r = one_connection(server_builder("server.pem", "server.key"), cb, &seen);
    expect_alert(r, "handshake_failure", true);
    /* The CA (depth 1) and the peer (depth 0), each once, no errors. */
    CHECK(log.calls == 2);
    CHECK(log.n_depth0 == 1 && log.depth0_errors[0] == 0);
    CHECK(strstr(last_error(), "application verification failure") != NULL);

    /* NULL removes the callback again. */
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_verify_callback(cb, verify_cb, &log));
    CHECK_OK(rssl_config_builder_set_verify_callback(cb, NULL, NULL));
    CHECK_OK(one_connection(server_builder("server.pem", "server.key"), cb, &seen));
}

static void verify_callback_server_side(void)
{
    /* The server accepts a client certificate from the unrelated CA. */
    struct verify_log log = {.accept_unknown_ca = true};
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_verify(sb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_fail_if_no_peer_cert(sb, true));
    CHECK_OK(rssl_config_builder_set_cacertfile(sb, cert_path("ca.pem")));
    CHECK_OK(rssl_config_builder_set_verify_callback(sb, verify_cb, &log));
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_certfile(cb, cert_path("other_client.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(cb, cert_path("other_client.key")));
    struct served seen;
    CHECK_OK(one_connection(sb, cb, &seen));
    CHECK_OK(seen.result);
    CHECK(log.n_depth0 >= 1);
}

static unsigned char *ca_der;
static size_t ca_der_len;

static int64_t pick_ca(void *user_data, const rssl_bytes *chain, size_t count)
{
    int *calls = user_data;
    (*calls)++;
    CHECK(count == 2);
    for (size_t i = 0; i < count; i++)
        if (chain[i].len == ca_der_len && memcmp(chain[i].data, ca_der, ca_der_len) == 0)
            return (int64_t)i;
    return -1;
}

static int64_t pick_none(void *user_data, const rssl_bytes *chain, size_t count)
{
    (void)chain;
    (void)count;
    (*(int *)user_data)++;
    return -1;
}

static void partial_chain(void)
{
    ca_der = read_file(cert_path("ca.der"), &ca_der_len);
    /* The server sends its CA along; the client trusts no CA file at all. */
    int calls = 0;
    rssl_config_builder *cb = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_verify(cb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_ca, &calls));
    struct served seen;
    CHECK_OK(one_connection(server_builder("server_chain.pem", "server.key"), cb, &seen));
    CHECK(calls == 1);

    calls = 0;
    cb = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_verify(cb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_none, &calls));
    rssl_result r = one_connection(server_builder("server_chain.pem", "server.key"), cb, &seen);
    expect_alert(r, "unknown_ca", true);
    CHECK(calls == 1);

    /* A chain that reaches a trusted CA never asks. */
    calls = 0;
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_none, &calls));
    CHECK_OK(one_connection(server_builder("server_chain.pem", "server.key"), cb, &seen));
    CHECK(calls == 0);

    /* openssl s_server sending its certificate and the CA. */
    const char *chain[] = {"-cert_chain", cert_path("ca.pem"), NULL};
    calls = 0;
    cb = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_verify(cb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_ca, &calls));
    CHECK_OK(s_server_connection(cb, chain));
    CHECK(calls == 1);
    calls = 0;
    cb = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_verify(cb, RSSL_VERIFY_PEER));
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_none, &calls));
    expect_alert(s_server_connection(cb, chain), "unknown_ca", true);
    CHECK(calls == 1);
    CHECK(peer_said("SSL alert number 48"));
    free(ca_der);
}

/* The server sends leaf + intermediate; the CA is one more step. */
static void depth(void)
{
    struct served seen;
    for (uint32_t d = 0; d < 3; d++) {
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_depth(cb, d));
        rssl_result r = one_connection(server_builder("chain_server.pem", "chain_server.key"), cb,
                                       &seen);
        if (d == 0) {
            /* OTP's max_path_length_reached: handshake_failure. */
            expect_alert(r, "handshake_failure", true);
            CHECK(strstr(last_error(), "certificate chain too long") != NULL);
        } else {
            CHECK_OK(r);
        }
    }
    /* The same chain from openssl s_server. */
    const char *chain[] = {"-cert",       cert_path("chain_server.pem"), "-key",
                           cert_path("chain_server.key"), "-cert_chain",
                           cert_path("inter_ca.pem"), NULL};
    for (uint32_t d = 0; d < 2; d++) {
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_depth(cb, d));
        rssl_result r = s_server_connection(cb, chain);
        if (d == 0) {
            expect_alert(r, "handshake_failure", true);
            CHECK(strstr(last_error(), "certificate chain too long") != NULL);
            CHECK(peer_said("SSL alert number 40"));
        } else {
            CHECK_OK(r);
        }
    }
}

/* Picks the certificate equal to ca_der (here the intermediate). */
static int64_t pick_intermediate(void *user_data, const rssl_bytes *chain, size_t count)
{
    (void)user_data;
    for (size_t i = 0; i < count; i++)
        if (chain[i].len == ca_der_len && memcmp(chain[i].data, ca_der, ca_der_len) == 0)
            return (int64_t)i;
    return -1;
}

/* Trusting only the intermediate of a chain whose root we do not know. */
static void partial_chain_intermediate(void)
{
    ca_der = read_file(cert_path("inter_ca.der"), &ca_der_len);
    rssl_config_builder *cb = client_builder("other_ca.pem");
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_intermediate, NULL));
    struct served seen;
    CHECK_OK(one_connection(server_builder("chain_server.pem", "chain_server.key"), cb, &seen));
    /* The same chain from openssl s_server. */
    const char *chain[] = {"-cert",       cert_path("chain_server.pem"), "-key",
                           cert_path("chain_server.key"), "-cert_chain",
                           cert_path("inter_ca.pem"), NULL};
    int calls = 0;
    cb = client_builder("other_ca.pem");
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_none, &calls));
    expect_alert(s_server_connection(cb, chain), "unknown_ca", true);
    CHECK(calls == 1);
    cb = client_builder("other_ca.pem");
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(cb, pick_intermediate, NULL));
    CHECK_OK(s_server_connection(cb, chain));
    free(ca_der);
}

/* --- CRLs --- */

static rssl_config_builder *crl_client(const char *crlfile, uint32_t mode)
{
    rssl_config_builder *cb = client_builder("ca.pem");
    if (crlfile != NULL)
        CHECK_OK(rssl_config_builder_add_crlfile(cb, cert_path(crlfile)));
    CHECK_OK(rssl_config_builder_set_crl_check(cb, mode));
    return cb;
}

static void crl_check_peer(void)
{
    struct served seen;
    rssl_result r = one_connection(server_builder("revoked_server.pem", "revoked_server.key"),
                                   crl_client("ca_revoked.crl", RSSL_CRL_CHECK_PEER), &seen);
    expect_alert(r, "certificate_revoked", true);
    CHECK_OK(one_connection(server_builder("server.pem", "server.key"),
                            crl_client("ca_revoked.crl", RSSL_CRL_CHECK_PEER), &seen));
    /* The CRL that revokes nothing lets the other certificate through. */
    CHECK_OK(one_connection(server_builder("revoked_server.pem", "revoked_server.key"),
                            crl_client("ca_empty.crl", RSSL_CRL_CHECK_ALL), &seen));
    /* Without a check mode the CRL is not consulted. */
    CHECK_OK(one_connection(server_builder("revoked_server.pem", "revoked_server.key"),
                            crl_client("ca_revoked.crl", RSSL_CRL_CHECK_NONE), &seen));
}

static void crl_check_missing(void)
{
    struct served seen;
    /* Checking all needs a CRL for each certificate. */
    rssl_result r = one_connection(server_builder("server.pem", "server.key"),
                                   crl_client(NULL, RSSL_CRL_CHECK_ALL), &seen);
    CHECK_RESULT(r, RSSL_TLS_ALERT);
    if (strstr(last_error(), "unable to get certificate CRL") == NULL)
        fprintf(stderr, "crl_check_missing: error text was: %s\n", last_error());
    CHECK(strstr(last_error(), "unable to get certificate CRL") != NULL);
    /* Best effort accepts a missing CRL, but not a revocation. */
    CHECK_OK(one_connection(server_builder("server.pem", "server.key"),
                            crl_client(NULL, RSSL_CRL_CHECK_BEST_EFFORT), &seen));
    r = one_connection(server_builder("revoked_server.pem", "revoked_server.key"),
                       crl_client("ca_revoked.crl", RSSL_CRL_CHECK_BEST_EFFORT), &seen);
    expect_alert(r, "certificate_revoked", true);
}

static void crl_in_memory_server_side(void)
{
    size_t pem_len = 0, der_len = 0;
    unsigned char *pem = read_file(cert_path("ca_revoked.crl"), &pem_len);
    unsigned char *der = read_file(cert_path("ca_revoked.crl.der"), &der_len);
    for (int format = 0; format < 2; format++) {
        rssl_config_builder *sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_verify(sb, RSSL_VERIFY_PEER));
        CHECK_OK(rssl_config_builder_set_fail_if_no_peer_cert(sb, true));
        CHECK_OK(rssl_config_builder_set_cacertfile(sb, cert_path("ca.pem")));
        if (format == 0)
            CHECK_OK(rssl_config_builder_add_crls(sb, pem, pem_len, RSSL_FORMAT_PEM));
        else
            CHECK_OK(rssl_config_builder_add_crls(sb, der, der_len, RSSL_FORMAT_DER));
        CHECK_OK(rssl_config_builder_set_crl_check(sb, RSSL_CRL_CHECK_PEER));
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_certfile(cb, cert_path("revoked_client.pem")));
        CHECK_OK(rssl_config_builder_set_keyfile(cb, cert_path("revoked_client.key")));
        struct served seen;
        rssl_result r = one_connection(sb, cb, &seen);
        /* TLS 1.3: the client learns of its rejection on its first read. */
        expect_alert(r, "certificate_revoked", false);
        CHECK_RESULT(seen.result, RSSL_TLS_ALERT);
        CHECK(seen.alert == 44 && seen.alert_local);
    }
    rssl_config_builder *b = client_builder(NULL);
    CHECK_RESULT(rssl_config_builder_add_crls(b, (const uint8_t *)"junk", 4, RSSL_FORMAT_PEM),
                 RSSL_BAD_CRL);
    CHECK_RESULT(rssl_config_builder_add_crls(b, (const uint8_t *)"junk", 4, RSSL_FORMAT_DER),
                 RSSL_BAD_CRL);
    CHECK_RESULT(rssl_config_builder_add_crls(b, pem, pem_len, 9), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_crl_check(b, 4), RSSL_INVALID_ARGUMENT);
    rssl_config_builder_free(b);
    free(pem);
    free(der);
}

/* --- SNI --- */

struct sni_state {
    const rssl_config *other;
    int mode; /* 0: default, 1: other, 2: reject */
    int calls;
    char name[64];
};

static rssl_result sni_cb(void *user_data, const char *server_name, const rssl_config **config_out)
{
    struct sni_state *st = user_data;
    st->calls++;
    snprintf(st->name, sizeof st->name, "%s", server_name);
    if (st->mode == 1)
        *config_out = st->other;
    return st->mode == 2 ? RSSL_INVALID_ARGUMENT : RSSL_OK;
}

static void sni_hosts(void)
{
    const rssl_config *other = build(server_builder("other_server.pem", "other_server.key"));
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_add_sni_host(sb, "LocalHost", other));
    const rssl_config *sconfig = build(sb);
    /* The SNI host keeps its own reference. */
    rssl_config_free(other);
    struct tls_server server;
    tls_server_start(&server, sconfig, 1);
    const rssl_config *cconfig = build(client_builder("other_ca.pem"));
    rssl_conn *conn = NULL;
    CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    CHECK_OK(rssl_close(conn));
    tls_server_join(&server);
    CHECK(strcmp(server.seen[0].sni, "localhost") == 0);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);

    rssl_config_builder *cb = client_builder(NULL);
    sb = server_builder("server.pem", "server.key");
    CHECK_RESULT(rssl_config_builder_add_sni_host(sb, "x", NULL), RSSL_NULL_PARAMETER);
    const rssl_config *client_side = build(cb);
    CHECK_RESULT(rssl_config_builder_add_sni_host(sb, "x", client_side), RSSL_INVALID_ARGUMENT);
    rssl_config_free(client_side);
    rssl_config_builder_free(sb);
}

static void sni_callback(void)
{
    struct sni_state st = {0};
    st.other = build(server_builder("other_server.pem", "other_server.key"));
    for (int mode = 0; mode < 3; mode++) {
        st.mode = mode;
        st.calls = 0;
        rssl_config_builder *sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_sni_callback(sb, sni_cb, &st));
        struct served seen;
        rssl_result r = one_connection(sb, client_builder(mode == 1 ? "other_ca.pem" : "ca.pem"),
                                       &seen);
        CHECK(st.calls == 1);
        CHECK(strcmp(st.name, "localhost") == 0);
        if (mode == 2)
            expect_alert(r, "unrecognized_name", false);
        else
            CHECK_OK(r);
    }
    rssl_config_free(st.other);
}

/* --- NPN --- */

static void npn(void)
{
    const char *advertised[] = {"http/1.1", "spdy/3"};
    const char *preferred[] = {"spdy/3", "http/1.1"};
    const char *unknown[] = {"h9"};
    struct {
        const char **protos;
        size_t n;
        uint32_t precedence;
        const char *fallback;
        const char *want;
    } cases[] = {
        {preferred, 2, RSSL_NPN_CLIENT, NULL, "spdy/3"},
        {preferred, 2, RSSL_NPN_SERVER, NULL, "http/1.1"},
        {unknown, 1, RSSL_NPN_CLIENT, "fallback/1", "fallback/1"},
        {unknown, 1, RSSL_NPN_CLIENT, NULL, "h9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rssl_config_builder *sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_npn_advertised(sb, advertised, 2));
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_versions(cb, TLS12, 1));
        CHECK_OK(rssl_config_builder_set_npn_preferred(cb, cases[i].protos, cases[i].n,
                                                       cases[i].precedence, cases[i].fallback));
        struct served seen;
        CHECK_OK(one_connection(sb, cb, &seen));
        if (strcmp(seen.protocol, cases[i].want) != 0) {
            fprintf(stderr, "case %zu: %s\n", i, seen.protocol);
            CHECK(false);
        }
    }
    rssl_config_builder *b = client_builder(NULL);
    CHECK_RESULT(rssl_config_builder_set_npn_preferred(b, preferred, 2, 7, NULL),
                 RSSL_INVALID_ARGUMENT);
    const char *empty[] = {""};
    CHECK_RESULT(rssl_config_builder_set_npn_advertised(b, empty, 1), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_npn_preferred(b, preferred, 2, RSSL_NPN_CLIENT, ""),
                 RSSL_INVALID_ARGUMENT);
    rssl_config_builder_free(b);
}

/* --- PSK and SRP --- */

struct psk_state {
    const char *key;
    char identity[64];
};

static bool psk_cb(void *user_data, const uint8_t *identity, size_t identity_len,
                   uint8_t *key_out, size_t key_cap, size_t *key_len)
{
    struct psk_state *st = user_data;
    snprintf(st->identity, sizeof st->identity, "%.*s", (int)identity_len,
             identity ? (const char *)identity : "");
    size_t n = strlen(st->key);
    CHECK(key_cap >= n);
    memcpy(key_out, st->key, n);
    *key_len = n;
    return true;
}

static void psk(void)
{
    for (int wrong = 0; wrong < 2; wrong++) {
        struct psk_state server_st = {.key = "0123456789abcdef"};
        struct psk_state client_st = {.key = wrong ? "fedcba9876543210" : "0123456789abcdef"};
        rssl_config_builder *sb = NULL;
        CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
        CHECK_OK(rssl_config_builder_set_ciphers(sb, "PSK-AES128-GCM-SHA256"));
        CHECK_OK(rssl_config_builder_set_psk_identity(sb, "server hint"));
        CHECK_OK(rssl_config_builder_set_psk_callback(sb, psk_cb, &server_st));
        rssl_config_builder *cb = client_builder(NULL);
        CHECK_OK(rssl_config_builder_set_versions(cb, TLS12, 1));
        CHECK_OK(rssl_config_builder_set_ciphers(cb, "PSK-AES128-GCM-SHA256"));
        CHECK_OK(rssl_config_builder_set_psk_identity(cb, "alice"));
        CHECK_OK(rssl_config_builder_set_psk_callback(cb, psk_cb, &client_st));
        struct served seen;
        rssl_result r = one_connection(sb, cb, &seen);
        CHECK(strcmp(server_st.identity, "alice") == 0);
        CHECK(strcmp(client_st.identity, "server hint") == 0);
        if (wrong) {
            CHECK_RESULT(r, RSSL_TLS_ALERT);
        } else {
            CHECK_OK(r);
            CHECK(strcmp(seen.cipher, "PSK-AES128-GCM-SHA256") == 0);
        }
    }
}

static const char *SRP_SALT = "rssl test salt";

static bool srp_cb(void *user_data, const char *username, uint32_t *group_bits, uint8_t *salt,
                   size_t salt_cap, size_t *salt_len, uint8_t *verifier, size_t verifier_cap,
                   size_t *verifier_len)
{
    (void)user_data;
    if (strcmp(username, "alice") != 0)
        return false;
    *group_bits = 2048;
    *salt_len = strlen(SRP_SALT);
    CHECK(salt_cap >= *salt_len);
    memcpy(salt, SRP_SALT, *salt_len);
    CHECK_OK(rssl_srp_verifier("alice", "secret", (const uint8_t *)SRP_SALT, strlen(SRP_SALT),
                               2048, verifier, verifier_cap, verifier_len));
    return true;
}

static void srp(void)
{
    const char *logins[][2] = {{"alice", "secret"}, {"alice", "wrong"}, {"bob", "secret"}};
    for (int i = 0; i < 3; i++) {
        rssl_config_builder *sb = NULL;
        CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
        CHECK_OK(rssl_config_builder_set_ciphers(sb, "SRP-AES-128-CBC-SHA"));
        CHECK_OK(rssl_config_builder_set_srp_callback(sb, srp_cb, NULL));
        rssl_config_builder *cb = client_builder(NULL);
        CHECK_OK(rssl_config_builder_set_versions(cb, TLS12, 1));
        CHECK_OK(rssl_config_builder_set_ciphers(cb, "SRP-AES-128-CBC-SHA"));
        CHECK_OK(rssl_config_builder_set_srp_identity(cb, logins[i][0], logins[i][1]));
        struct served seen;
        rssl_result r = one_connection(sb, cb, &seen);
        if (i == 0) {
            CHECK_OK(r);
            CHECK(strcmp(seen.cipher, "SRP-AES-128-CBC-SHA") == 0);
        } else {
            expect_alert(r, i == 1 ? "bad_record_mac" : "unknown_psk_identity", false);
        }

        /* GnuTLS's client logs in the same way, deriving its side from the
         * password alone: rssl_srp_verifier must give the value any SRP
         * implementation expects. (OpenSSL 3.0's s_client and s_server
         * crash in SRP handshakes, so GnuTLS's client it is.) */
        sb = NULL;
        CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &sb));
        CHECK_OK(rssl_config_builder_set_ciphers(sb, "SRP-AES-128-CBC-SHA"));
        CHECK_OK(rssl_config_builder_set_srp_callback(sb, srp_cb, NULL));
        const rssl_config *sconfig = build(sb);
        struct tls_server server;
        tls_server_start(&server, sconfig, 1);
        char port[8];
        snprintf(port, sizeof port, "%u", server.port);
        const char *args[] = {"--port", port, "--srpusername", logins[i][0], "--srppasswd",
                              logins[i][1], "--priority",
                              "NORMAL:-VERS-TLS1.3:-KX-ALL:+SRP:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA1",
                              "127.0.0.1", NULL};
        struct child client;
        child_start_program(&client, GNUTLS_CLI_EXE, args);
        bool established = child_wait_for(&client, "- Handshake was completed", TEST_TIMEOUT_MS);
        child_close_input(&client);
        child_read_all(&client, TEST_TIMEOUT_MS);
        snprintf(peer_log, sizeof peer_log, "%s", client.log);
        child_finish(&client, TEST_TIMEOUT_MS);
        tls_server_join(&server);
        rssl_config_free(sconfig);
        seen = server.seen[0];
        if (i == 0) {
            CHECK(established);
            CHECK(peer_said("-(SRP)-(AES-128-CBC)-(SHA1)"));
            CHECK_OK(seen.result);
            CHECK(strcmp(seen.cipher, "SRP-AES-128-CBC-SHA") == 0);
        } else {
            /* A wrong password shows when the client's Finished does not
             * decrypt; an unknown user at once. */
            CHECK(!established);
            int alert = i == 1 ? 20 : 115;
            char line[64];
            snprintf(line, sizeof line, "Received alert [%d]", alert);
            CHECK(peer_said(line));
            CHECK_RESULT(seen.result, RSSL_TLS_ALERT);
            CHECK(seen.alert == alert && seen.alert_local);
        }
    }
    uint8_t v[512];
    size_t n = 0;
    CHECK_RESULT(rssl_srp_verifier("a", "b", NULL, 0, 1000, v, sizeof v, &n),
                 RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_srp_verifier("a", "b", NULL, 0, 2048, v, 10, &n), RSSL_BUFFER_TOO_SMALL);
    CHECK(n > 10 && n <= 256);
}

/* --- Sessions --- */

static void resume(const uint16_t *version, bool server_reuse, bool want_reused)
{
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_session_tickets(sb, 2));
    CHECK_OK(rssl_config_builder_set_reuse_sessions(sb, server_reuse));
    const rssl_config *sconfig = build(sb);
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(cb, version, 1));
    const rssl_config *cconfig = build(cb);
    struct tls_server server;
    tls_server_start(&server, sconfig, 2);

    rssl_conn *conn = NULL;
    CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    bool reused = true;
    CHECK_OK(rssl_conn_session_reused(conn, &reused));
    CHECK(!reused);
    size_t len = 0;
    rssl_result r = rssl_conn_session(conn, NULL, 0, &len);
    uint8_t *session = NULL;
    if (r == RSSL_NOT_AVAILABLE) {
        /* No resumable session: only when the server keeps none. */
        CHECK(!server_reuse);
        session = malloc(1);
        len = 0;
    } else {
        CHECK_RESULT(r, RSSL_BUFFER_TOO_SMALL);
        session = malloc(len);
        size_t n = 0;
        CHECK_OK(rssl_conn_session(conn, session, len, &n));
        CHECK(n == len);
    }
    CHECK_OK(rssl_close(conn));
    if (len > 0) {
        CHECK_OK(ping_server(cconfig, server.port, session, len, &conn));
    } else {
        CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    }
    CHECK_OK(rssl_conn_session_reused(conn, &reused));
    CHECK(reused == want_reused);
    CHECK_OK(rssl_close(conn));
    tls_server_join(&server);
    CHECK(server.seen[1].reused == want_reused);
    free(session);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static void session_resumption(void)
{
    resume(TLS12, true, true);
    resume(TLS13, true, true);
    resume(TLS12, false, false);
    /* Not a session: refused before connecting. */
    const rssl_config *config = build(client_builder(NULL));
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect_session(config, "localhost", 1, (const uint8_t *)"junk", 4, 1000,
                                      &conn),
                 RSSL_INVALID_ARGUMENT);
    CHECK(conn == NULL);
    rssl_config_free(config);
}

/* --- Fallback, renegotiation flags, keying material --- */

static void fallback(void)
{
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(cb, TLS12, 1));
    CHECK_OK(rssl_config_builder_set_fallback(cb, true));
    struct served seen;
    expect_alert(one_connection(server_builder("server.pem", "server.key"), cb, &seen),
                 "inappropriate_fallback", false);
    /* A server that has nothing newer takes it. */
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_versions(sb, TLS12, 1));
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(cb, TLS12, 1));
    CHECK_OK(rssl_config_builder_set_fallback(cb, true));
    CHECK_OK(one_connection(sb, cb, &seen));
}

/* secure_renegotiate (RFC 5746) against a server without it: GnuTLS's,
 * told to leave it out (OpenSSL's server always has it). True, the default,
 * refuses that server, as OpenSSL's own client does (OTP's ssl connects:
 * it checks only at renegotiation); false accepts it. A server with it is
 * accepted either way. */
static void renegotiation_flags(void)
{
    for (int legacy_server = 1; legacy_server >= 0; legacy_server--) {
        const char *priority = legacy_server ? "NORMAL:-VERS-TLS1.3:%DISABLE_SAFE_RENEGOTIATION"
                                             : "NORMAL:-VERS-TLS1.3";
        const char *args[] = {"--port", "0", "--echo", "--disable-client-cert", "--priority",
                              priority, "--x509certfile", cert_path("server.pem"),
                              "--x509keyfile", cert_path("server.key"), NULL};
        struct child server;
        child_start_program(&server, GNUTLS_SERV_EXE, args);
        unsigned short port = child_listen_port(&server, TEST_TIMEOUT_MS);
        CHECK(port != 0);
        for (int secure = 1; secure >= 0; secure--) {
            rssl_config_builder *cb = client_builder("ca.pem");
            if (!secure)
                CHECK_OK(rssl_config_builder_set_secure_renegotiate(cb, false));
            const rssl_config *config = build(cb);
            rssl_conn *conn = NULL;
            rssl_result r = rssl_connect(config, "127.0.0.1", port, TEST_TIMEOUT_MS, &conn);
            if (legacy_server && secure) {
                expect_alert(r, "handshake_failure", true);
                CHECK(strstr(last_error(), "unsafe legacy renegotiation disabled") != NULL);
                /* (Its standard error: its standard output is buffered.) */
                CHECK(child_wait_for(&server, "Error in handshake: A TLS fatal alert has been received",
                                     TEST_TIMEOUT_MS));
            } else {
                CHECK_OK(r);
                uint16_t version = 0;
                CHECK_OK(rssl_conn_version(conn, &version));
                CHECK(version == RSSL_TLS1_2);
                CHECK_OK(rssl_send(conn, (const uint8_t *)"echo\n", 5, TEST_TIMEOUT_MS));
                unsigned char got[5];
                recv_exactly(conn, got, 5);
                CHECK(memcmp(got, "echo\n", 5) == 0);
                CHECK_OK(rssl_close(conn));
            }
            rssl_config_free(config);
        }
        child_kill(&server);
    }
    /* client_renegotiation against OpenSSL's client: see test_interop.c. */
}

static void keying_material(void)
{
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    for (int v = 0; v < 2; v++) {
        struct tls_server server;
        tls_server_start(&server, sconfig, 1);
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_versions(cb, v == 0 ? TLS12 : TLS13, 1));
        const rssl_config *config = build(cb);
        rssl_conn *conn = NULL;
        CHECK_OK(ping_server(config, server.port, NULL, 0, &conn));
        uint8_t ekm[32], other[32], with_context[32];
        CHECK_OK(rssl_conn_export_keying_material(conn, "EXPERIMENTAL rssl test", NULL, 0, ekm,
                                                  sizeof ekm));
        CHECK_OK(rssl_conn_export_keying_material(conn, "EXPERIMENTAL other", NULL, 0, other,
                                                  sizeof other));
        CHECK_OK(rssl_conn_export_keying_material(conn, "EXPERIMENTAL rssl test",
                                                  (const uint8_t *)"ctx", 3, with_context,
                                                  sizeof with_context));
        CHECK(memcmp(ekm, other, sizeof ekm) != 0);
        CHECK(memcmp(ekm, with_context, sizeof ekm) != 0);
        CHECK_RESULT(rssl_conn_export_keying_material(conn, NULL, NULL, 0, ekm, 32),
                     RSSL_NULL_PARAMETER);
        CHECK_RESULT(rssl_conn_export_keying_material(conn, "x", NULL, 3, ekm, 32),
                     RSSL_NULL_PARAMETER);
        CHECK_OK(rssl_close(conn));
        rssl_config_free(config);
        tls_server_join(&server);
        /* The server derived the same bytes. */
        CHECK(memcmp(server.seen[0].ekm, ekm, sizeof ekm) == 0);
    }
    rssl_config_free(sconfig);
}

static const struct test_case TESTS[] = {
    {"verify_callback_accepts_unknown_ca", verify_callback_accepts_unknown_ca},
    {"verify_callback_rejects", verify_callback_rejects},
    {"verify_callback_server_side", verify_callback_server_side},
    {"partial_chain", partial_chain},
    {"partial_chain_intermediate", partial_chain_intermediate},
    {"depth", depth},
    {"crl_check_peer", crl_check_peer},
    {"crl_check_missing", crl_check_missing},
    {"crl_in_memory_server_side", crl_in_memory_server_side},
    {"sni_hosts", sni_hosts},
    {"sni_callback", sni_callback},
    {"npn", npn},
    {"psk", psk},
    {"srp", srp},
    {"session_resumption", session_resumption},
    {"fallback", fallback},
    {"renegotiation_flags", renegotiation_flags},
    {"keying_material", keying_material},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
