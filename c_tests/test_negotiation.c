/* (e2) The options that choose what is negotiated: cipher order and suite
 * details, DH parameters, groups, signature algorithms. rssl against rssl
 * in one process, and against openssl s_client/s_server, checking what was
 * chosen in the peer's own words. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const uint16_t TLS13[] = {RSSL_TLS1_3};

static void honor_cipher_order(void)
{
    const char *server_order = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256";
    const char *client_order = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384";
    for (int honor = 0; honor < 2; honor++) {
        rssl_config_builder *sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_ciphers(sb, server_order));
        CHECK_OK(rssl_config_builder_set_honor_cipher_order(sb, honor));
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_versions(cb, TLS12, 1));
        CHECK_OK(rssl_config_builder_set_ciphers(cb, client_order));
        struct served seen;
        CHECK_OK(one_connection(sb, cb, &seen));
        const char *want = honor ? "ECDHE-ECDSA-AES256-GCM-SHA384" : "ECDHE-ECDSA-AES128-GCM-SHA256";
        if (strcmp(seen.cipher, want) != 0) {
            fprintf(stderr, "honor %d: %s\n", honor, seen.cipher);
            CHECK(false);
        }

        /* openssl s_client, TLS 1.2 and 1.3, each preferring the other order. */
        char line[128];
        sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_ciphers(sb, server_order));
        CHECK_OK(rssl_config_builder_set_honor_cipher_order(sb, honor));
        const char *tls12[] = {"-tls1_2", "-cipher", client_order, NULL};
        CHECK(s_client_connection(sb, tls12, &seen));
        snprintf(line, sizeof line, "Ciphersuite: %s\n", want);
        CHECK(peer_said(line));
        CHECK(strcmp(seen.cipher, want) == 0);

        sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_ciphersuites(
            sb, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"));
        CHECK_OK(rssl_config_builder_set_honor_cipher_order(sb, honor));
        const char *tls13[] = {"-tls1_3", "-ciphersuites",
                               "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384", NULL};
        CHECK(s_client_connection(sb, tls13, &seen));
        want = honor ? "TLS_AES_256_GCM_SHA384" : "TLS_AES_128_GCM_SHA256";
        snprintf(line, sizeof line, "Ciphersuite: %s\n", want);
        CHECK(peer_said(line));
        CHECK(strcmp(seen.cipher, want) == 0);
    }
}

/* A suite as the references describe it: OpenSSL's names and version
 * (`openssl ciphers -stdname -v`), OTP's atoms (ssl:str_to_suite/1). */
struct reference_suite {
    char name[64], standard_name[64], version[16];
    char key_exchange[32], cipher[32], mac[16], prf[16];
};

static void reference_suite(const char *name, bool tls13, struct reference_suite *ref)
{
    memset(ref, 0, sizeof *ref);
    struct child c;
    const char *tls13_args[] = {"ciphers", "-stdname", "-v", "-ciphersuites", name, "-tls1_3",
                                NULL};
    const char *tls12_args[] = {"ciphers", "-stdname", "-v", "-ciphersuites", "", name, NULL};
    child_start(&c, tls13 ? tls13_args : tls12_args);
    child_read_all(&c, TEST_TIMEOUT_MS);
    char version[16];
    CHECK(sscanf(c.log, "%63s - %63s %15s", ref->standard_name, ref->name, version) == 3);
    CHECK(child_finish(&c, TEST_TIMEOUT_MS) == 0);
    /* The listing's "TLSv1" is SSL_CIPHER_get_version's "TLSv1.0". */
    snprintf(ref->version, sizeof ref->version, "%s",
             strcmp(version, "TLSv1") == 0 ? "TLSv1.0" : version);

    const char *script = "[begin #{key_exchange := K, cipher := C, mac := M, prf := P} ="
                         " ssl:str_to_suite(N), io:format(\"~s ~s ~s ~s~n\", [K, C, M, P]) end"
                         " || N <- init:get_plain_arguments()], halt().";
    const char *erl_args[] = {"-noshell", "-eval", script, "-extra", ref->standard_name, NULL};
    child_start_program(&c, ERL_EXE, erl_args);
    child_read_all(&c, TEST_TIMEOUT_MS);
    CHECK(sscanf(c.log, "%31s %31s %15s %15s", ref->key_exchange, ref->cipher, ref->mac,
                 ref->prf) == 4);
    CHECK(child_finish(&c, TEST_TIMEOUT_MS) == 0);
}

/* rssl's description of suite `name` must be the references'. */
static void check_suite(const rssl_suite *s, const char *name, bool tls13)
{
    struct reference_suite ref;
    reference_suite(name, tls13, &ref);
    if (strcmp(s->name, ref.name) != 0 || strcmp(s->standard_name, ref.standard_name) != 0 ||
        strcmp(s->min_version, ref.version) != 0 ||
        strcmp(s->key_exchange, ref.key_exchange) != 0 || strcmp(s->cipher, ref.cipher) != 0 ||
        strcmp(s->mac, ref.mac) != 0 || strcmp(s->prf, ref.prf) != 0) {
        fprintf(stderr, "rssl:    %s %s %s %s %s %s %s\n", s->name, s->standard_name,
                s->min_version, s->key_exchange, s->cipher, s->mac, s->prf);
        fprintf(stderr, "openssl: %s %s %s, OTP: %s %s %s %s\n", ref.name, ref.standard_name,
                ref.version, ref.key_exchange, ref.cipher, ref.mac, ref.prf);
        CHECK(false);
    }
}

static void suite_details(void)
{
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    struct tls_server server;
    tls_server_start(&server, sconfig, 2);
    for (int v = 0; v < 2; v++) {
        rssl_config_builder *cb = client_builder("ca.pem");
        CHECK_OK(rssl_config_builder_set_versions(cb, v == 0 ? TLS12 : TLS13, 1));
        CHECK_OK(rssl_config_builder_set_ciphers(cb, "ECDHE-ECDSA-AES128-GCM-SHA256"));
        CHECK_OK(rssl_config_builder_set_ciphersuites(cb, "TLS_CHACHA20_POLY1305_SHA256"));
        const rssl_config *config = build(cb);
        rssl_conn *conn = NULL;
        CHECK_OK(ping_server(config, server.port, NULL, 0, &conn));
        rssl_suite suite;
        CHECK_OK(rssl_conn_cipher_suite(conn, &suite));
        if (v == 0)
            check_suite(&suite, "ECDHE-ECDSA-AES128-GCM-SHA256", false);
        else
            check_suite(&suite, "TLS_CHACHA20_POLY1305_SHA256", true);
        CHECK_RESULT(rssl_conn_cipher_suite(conn, NULL), RSSL_NULL_PARAMETER);
        CHECK_OK(rssl_close(conn));
        rssl_config_free(config);
    }
    tls_server_join(&server);
    rssl_config_free(sconfig);

    /* Listing. */
    size_t n = 0;
    CHECK_RESULT(rssl_cipher_suites(NULL, NULL, NULL, 0, &n), RSSL_BUFFER_TOO_SMALL);
    CHECK(n > 3);
    rssl_suite *all = calloc(n, sizeof *all);
    size_t m = 0;
    CHECK_OK(rssl_cipher_suites(NULL, NULL, all, n, &m));
    CHECK(m == n);
    CHECK(strcmp(all[0].min_version, "TLSv1.3") == 0);
    free(all);
    rssl_suite two[2];
    CHECK_OK(rssl_cipher_suites("PSK-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256", two, 2, &n));
    CHECK(n == 2);
    check_suite(&two[0], "TLS_AES_128_GCM_SHA256", true);
    check_suite(&two[1], "PSK-AES128-GCM-SHA256", false);
    CHECK_RESULT(rssl_cipher_suites("NO-SUCH", NULL, two, 2, &n), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_cipher_suites(NULL, NULL, NULL, 2, &n), RSSL_NULL_PARAMETER);

    uint16_t versions[4];
    CHECK_OK(rssl_supported_versions(versions, 4, &n));
    CHECK(n == 4 && versions[0] == RSSL_TLS1_3 && versions[1] == RSSL_TLS1_2);
    CHECK_RESULT(rssl_supported_versions(versions, 1, &n), RSSL_BUFFER_TOO_SMALL);
    CHECK(n == 4 && versions[0] == RSSL_TLS1_3);
}

static void dh_params(void)
{
    size_t len = 0;
    unsigned char *dh = read_file(cert_path("dh.pem"), &len);
    /* From a file, from memory, and none: dh.pem is ffdhe3072, where
     * OpenSSL's own choice for a 2048-bit RSA key is a 2048-bit group;
     * openssl s_client reports the size it got. */
    for (int source = 0; source < 3; source++) {
        rssl_config_builder *sb = server_builder("server_rsa.pem", "server_rsa.key");
        if (source == 0)
            CHECK_OK(rssl_config_builder_set_dhfile(sb, cert_path("dh.pem")));
        else if (source == 1)
            CHECK_OK(rssl_config_builder_set_dh(sb, dh, len));
        CHECK_OK(rssl_config_builder_set_ciphers(sb, "DHE-RSA-AES128-GCM-SHA256"));
        const char *extra[] = {"-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256", NULL};
        struct served seen;
        CHECK(s_client_connection(sb, extra, &seen));
        CHECK(peer_said("Ciphersuite: DHE-RSA-AES128-GCM-SHA256\n"));
        CHECK(peer_said(source < 2 ? "Server Temp Key: DH, 3072 bits\n"
                                   : "Server Temp Key: DH, 2048 bits\n"));
        CHECK(strcmp(seen.cipher, "DHE-RSA-AES128-GCM-SHA256") == 0);
    }
    free(dh);
    rssl_config_builder *sb = server_builder("server_rsa.pem", "server_rsa.key");
    CHECK_OK(rssl_config_builder_set_dh(sb, (const uint8_t *)"junk", 4));
    const rssl_config *config = NULL;
    CHECK_RESULT(rssl_config_builder_build(sb, &config), RSSL_INVALID_OPTION);
    CHECK_OK(rssl_config_builder_set_dhfile(sb, cert_path("garbage.pem")));
    CHECK_OK(rssl_config_builder_set_dh(sb, NULL, 0));
    rssl_config_builder_free(sb);
}

static void groups(void)
{
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_groups(sb, "P-384"));
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_groups(cb, "X25519"));
    struct served seen;
    expect_alert(one_connection(sb, cb, &seen), "handshake_failure", false);

    sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_groups(sb, "X25519:P-384"));
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_groups(cb, "P-384"));
    CHECK_OK(one_connection(sb, cb, &seen));

    /* The server's groups against openssl s_client: none in common, and
     * the one in common as s_client reports its key exchange. */
    sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_groups(sb, "P-384"));
    const char *x25519[] = {"-groups", "X25519", NULL};
    CHECK(!s_client_connection(sb, x25519, &seen));
    CHECK(peer_said("SSL alert number 40"));
    CHECK_RESULT(seen.result, RSSL_TLS_ALERT);
    CHECK(seen.alert == 40 && seen.alert_local);
    for (int v = 0; v < 2; v++) {
        sb = server_builder("server.pem", "server.key");
        CHECK_OK(rssl_config_builder_set_groups(sb, "P-384"));
        /* P-256 too: a TLS 1.2 client must accept the ECDSA key's curve. */
        const char *both[] = {v == 0 ? "-tls1_2" : "-tls1_3", "-groups", "X25519:P-384:P-256",
                              NULL};
        CHECK(s_client_connection(sb, both, &seen));
        CHECK(peer_said("Server Temp Key: ECDH, secp384r1, 384 bits\n"));
    }

    /* The client's groups, as openssl s_server received them. */
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_groups(cb, "P-384:X25519"));
    const char *server_groups[] = {"-groups", "X25519:P-384", NULL};
    CHECK_OK(s_server_connection(cb, server_groups));
    CHECK(peer_said("Supported groups: secp384r1:x25519\n"));
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_groups(cb, "X25519"));
    const char *p384[] = {"-groups", "P-384", NULL};
    expect_alert(s_server_connection(cb, p384), "handshake_failure", false);

    cb = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_groups(cb, "no-such-group"));
    const rssl_config *config = NULL;
    CHECK_RESULT(rssl_config_builder_build(cb, &config), RSSL_INVALID_OPTION);
    rssl_config_builder_free(cb);
}

static void sigalgs(void)
{
    /* The server's certificate is ECDSA P-256. */
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_sigalgs(cb, "rsa_pss_rsae_sha256:RSA+SHA256"));
    struct served seen;
    expect_alert(one_connection(sb, cb, &seen), "handshake_failure", false);

    sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_sigalgs(sb, "ecdsa_secp256r1_sha256"));
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_sigalgs(cb, "rsa_pss_rsae_sha256:ECDSA+SHA256"));
    CHECK_OK(one_connection(sb, cb, &seen));

    /* An RSA server signs with what it allows: SHA-384 with the option,
     * SHA-256 (OpenSSL's first choice) without, as s_client reports. */
    const char *no_args[] = {NULL};
    for (int set = 1; set >= 0; set--) {
        sb = server_builder("server_rsa.pem", "server_rsa.key");
        if (set)
            CHECK_OK(rssl_config_builder_set_sigalgs(sb, "rsa_pss_rsae_sha384"));
        CHECK(s_client_connection(sb, no_args, &seen));
        CHECK(peer_said("Signature type: RSA-PSS\n"));
        CHECK(peer_said(set ? "Hash used: SHA384\n" : "Hash used: SHA256\n"));
    }
    /* The client's list, as openssl s_server received it. */
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_sigalgs(cb, "rsa_pss_rsae_sha512:ECDSA+SHA256"));
    CHECK_OK(s_server_connection(cb, NULL));
    CHECK(peer_said("Signature Algorithms: RSA-PSS+SHA512:ECDSA+SHA256\n"));
    /* None the server's ECDSA key can make. */
    cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_sigalgs(cb, "rsa_pss_rsae_sha256:RSA+SHA256"));
    expect_alert(s_server_connection(cb, NULL), "handshake_failure", false);
    CHECK(peer_said("no suitable signature algorithm"));

    cb = client_builder(NULL);
    CHECK_OK(rssl_config_builder_set_sigalgs(cb, "no-such-algorithm"));
    const rssl_config *config = NULL;
    CHECK_RESULT(rssl_config_builder_build(cb, &config), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_config_builder_set_sigalgs(cb, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_sigalgs(NULL, "ed25519"), RSSL_NULL_PARAMETER);
    rssl_config_builder_free(cb);
}

static const struct test_case TESTS[] = {
    {"honor_cipher_order", honor_cipher_order},
    {"suite_details", suite_details},
    {"dh_params", dh_params},
    {"groups", groups},
    {"sigalgs", sigalgs},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
