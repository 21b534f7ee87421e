/* (d) Error paths: NULL handles, bad files and options, timeouts, refused
 * connections, calls out of order, result and error strings. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void null_handles(void)
{
    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    rssl_conn *conn = NULL;
    rssl_listener *listener = NULL;
    uint8_t buf[16];
    char text[16];
    size_t n = 0;
    uint16_t u16 = 0;
    int fd = 0;

    CHECK_RESULT(rssl_config_builder_new(RSSL_ROLE_CLIENT, NULL), RSSL_NULL_PARAMETER);
    CHECK(strstr(last_error(), "builder_out") != NULL);
    CHECK_RESULT(rssl_config_builder_set_certfile(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_keyfile(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_password(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_cacertfile(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_cert(NULL, buf, 1, RSSL_FORMAT_PEM), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_key(NULL, buf, 1, RSSL_FORMAT_PEM), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_cacerts(NULL, buf, 1, RSSL_FORMAT_PEM),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_verify(NULL, RSSL_VERIFY_PEER), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_depth(NULL, 3), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_fail_if_no_peer_cert(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_version_range(NULL, RSSL_TLS1_2, RSSL_TLS1_3),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_versions(NULL, &u16, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_ciphers(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_ciphersuites(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_alpn(NULL, NULL, 0), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_build(NULL, &config), RSSL_NULL_PARAMETER);

    /* NULL values on a real builder. */
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_RESULT(rssl_config_builder_set_certfile(b, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_cert(b, NULL, 10, RSSL_FORMAT_DER), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_versions(b, NULL, 2), RSSL_NULL_PARAMETER);
    const char *protocols[] = {"h2", NULL};
    CHECK_RESULT(rssl_config_builder_set_alpn(b, protocols, 2), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_build(b, NULL), RSSL_NULL_PARAMETER);
    CHECK_OK(rssl_config_builder_build(b, &config));

    CHECK_RESULT(rssl_connect(NULL, "localhost", 1, 0, &conn), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_connect(config, NULL, 1, 0, &conn), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_connect(config, "localhost", 1, 0, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_from_fd(NULL, 0, NULL, &conn), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_from_fd(config, 0, NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_handshake(NULL, 0), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_send(NULL, buf, 1, 0), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_recv(NULL, buf, 1, 0, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_shutdown(NULL, 0), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_fd(NULL, &fd), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_version(NULL, &u16), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_cipher(NULL, text, sizeof text, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_cipher_standard_name(NULL, text, sizeof text, &n),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_peer_cert(NULL, buf, sizeof buf, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_alpn_protocol(NULL, text, sizeof text, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_sni_hostname(NULL, text, sizeof text, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_listen("127.0.0.1", 0, 1, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_listener_port(NULL, &u16), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_listener_fd(NULL, &fd), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_accept(NULL, config, 0, &conn), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_last_alert(NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_error_string(NULL, 10, &n), RSSL_NULL_PARAMETER);
    CHECK(conn == NULL);

    /* NULL out-pointers and buffers on real objects. */
    CHECK_OK(rssl_listen("127.0.0.1", 0, 1, &listener));
    CHECK_RESULT(rssl_listener_port(listener, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_accept(listener, NULL, 0, &conn), RSSL_NULL_PARAMETER);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_OK(rssl_conn_from_fd(config, sv[0], NULL, &conn));
    CHECK_RESULT(rssl_recv(conn, buf, sizeof buf, 0, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_recv(conn, NULL, 4, 0, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_send(conn, NULL, 4, 0), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_version(conn, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_fd(conn, NULL), RSSL_NULL_PARAMETER);
    CHECK_OK(rssl_conn_fd(conn, &fd));
    CHECK(fd == sv[0]);

    /* Every _free takes NULL; rssl_close too. */
    rssl_config_builder_free(NULL);
    rssl_config_free(NULL);
    rssl_conn_free(NULL);
    rssl_listener_free(NULL);
    CHECK_OK(rssl_close(NULL));

    rssl_conn_free(conn); /* closes sv[0] */
    close(sv[1]);
    rssl_listener_free(listener);
    rssl_config_free(config);
    rssl_config_builder_free(b);
}

static rssl_config_builder *empty_server_builder(void)
{
    rssl_config_builder *b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    return b;
}

static void build_fails(rssl_config_builder *b, rssl_result want, const char *text)
{
    const rssl_config *config = NULL;
    CHECK_RESULT(rssl_config_builder_build(b, &config), want);
    CHECK(config == NULL);
    if (strstr(last_error(), text) == NULL) {
        fprintf(stderr, "last error: %s\n", last_error());
        CHECK(strstr(last_error(), text) != NULL);
    }
}

static void missing_certfile(void)
{
    rssl_config_builder *b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, "/nonexistent/rssl/cert.pem"));
    /* The key defaults to the certificate file, which OTP names first. */
    build_fails(b, RSSL_FILE_NOT_FOUND, "\"/nonexistent/rssl/cert.pem\": enoent");
    CHECK(strcmp(rssl_result_string(RSSL_FILE_NOT_FOUND), "file not found") == 0);
    rssl_config_builder_free(b);

    b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_OK(rssl_config_builder_set_cacertfile(b, "/nonexistent/ca.pem"));
    build_fails(b, RSSL_FILE_NOT_FOUND, "cacertfile");
    rssl_config_builder_free(b);
}

static void bad_files(void)
{
    rssl_config_builder *b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("garbage.pem")));
    build_fails(b, RSSL_BAD_CERTIFICATE, "no certificate");
    rssl_config_builder_free(b);

    /* A directory is not a readable file. */
    b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("")));
    build_fails(b, RSSL_FILE_UNREADABLE, "eisdir");
    rssl_config_builder_free(b);

    /* The client's key with the server's certificate. */
    b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("client.key")));
    build_fails(b, RSSL_KEY_MISMATCH, "key_does_not_match_certificate");
    rssl_config_builder_free(b);

    /* A certificate file without a key in it, and no keyfile. */
    b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    build_fails(b, RSSL_BAD_KEY, "bad_key");
    rssl_config_builder_free(b);

    /* An encrypted key: no password, a wrong one, the right one. */
    b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server_enc.key")));
    build_fails(b, RSSL_BAD_PASSWORD, "no_password");
    CHECK_OK(rssl_config_builder_set_password(b, "wrong"));
    build_fails(b, RSSL_BAD_PASSWORD, "bad_password");
    CHECK_OK(rssl_config_builder_set_password(b, "secret"));
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_free(config);
    rssl_config_builder_free(b);

    /* Bad data in memory is refused when it is given. */
    b = empty_server_builder();
    size_t len = 0;
    unsigned char *pem = read_file(cert_path("server.pem"), &len);
    CHECK_RESULT(rssl_config_builder_set_cert(b, pem, len, RSSL_FORMAT_DER), RSSL_BAD_CERTIFICATE);
    CHECK_RESULT(rssl_config_builder_set_cert(b, pem, len, 99), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_key(b, pem, len, RSSL_FORMAT_DER), RSSL_BAD_KEY);
    CHECK_RESULT(rssl_config_builder_set_cacerts(b, (const uint8_t *)"x", 1, RSSL_FORMAT_PEM),
                 RSSL_BAD_CERTIFICATE);
    free(pem);

    /* Option values OpenSSL refuses. */
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server.key")));
    CHECK_OK(rssl_config_builder_set_ciphers(b, "NO-SUCH-CIPHER"));
    build_fails(b, RSSL_INVALID_OPTION, "ciphers");
    CHECK_OK(rssl_config_builder_set_ciphers(b, "ECDHE-ECDSA-AES128-GCM-SHA256"));
    CHECK_OK(rssl_config_builder_set_ciphersuites(b, "TLS_NO_SUCH_SUITE"));
    build_fails(b, RSSL_INVALID_OPTION, "ciphers");
    CHECK_OK(rssl_config_builder_set_ciphersuites(b, "TLS_AES_128_GCM_SHA256"));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_free(config);

    /* Argument domains. */
    uint16_t bad_versions[] = {RSSL_TLS1_2, 0x0300};
    CHECK_RESULT(rssl_config_builder_set_versions(b, bad_versions, 2), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_versions(b, bad_versions, 0), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_version_range(b, RSSL_TLS1_3, RSSL_TLS1_2),
                 RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_verify(b, 5), RSSL_INVALID_ARGUMENT);
    const char *empty[] = {""};
    CHECK_RESULT(rssl_config_builder_set_alpn(b, empty, 1), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_certfile(b, "\xff\xfe"), RSSL_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "UTF-8") != NULL);
    rssl_config_builder *none = NULL;
    CHECK_RESULT(rssl_config_builder_new(0, &none), RSSL_INVALID_ARGUMENT);
    CHECK(none == NULL);
    rssl_config_builder_free(b);
}

/* The options, queries and callbacks added with the whole option set: NULL
 * handles and NULL out-pointers. */
static void null_handles_options(void)
{
    uint8_t buf[16] = {0};
    char text[16];
    size_t n = 0;
    bool flag = false;
    const char *protos[] = {"h2"};
    rssl_suite suite;

    CHECK_RESULT(rssl_config_builder_set_honor_cipher_order(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_groups(NULL, "P-256"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_dh(NULL, buf, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_dhfile(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_reuse_sessions(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_session_tickets(NULL, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_secure_renegotiate(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_client_renegotiation(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_fallback(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_crlfile(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_crls(NULL, buf, 1, RSSL_FORMAT_PEM), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_crl_check(NULL, RSSL_CRL_CHECK_PEER), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_npn_advertised(NULL, protos, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_npn_preferred(NULL, protos, 1, RSSL_NPN_CLIENT, NULL),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_psk_identity(NULL, "x"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_srp_identity(NULL, "x", "y"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_verify_callback(NULL, NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_partial_chain_callback(NULL, NULL, NULL),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_sni_callback(NULL, NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_sni_host(NULL, "x", NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_psk_callback(NULL, NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_srp_callback(NULL, NULL, NULL), RSSL_NULL_PARAMETER);

    rssl_config_builder *b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_RESULT(rssl_config_builder_set_groups(b, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_dh(b, NULL, 4), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_dhfile(b, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_crlfile(b, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_crls(b, NULL, 4, RSSL_FORMAT_DER), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_npn_advertised(b, NULL, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_npn_preferred(b, NULL, 1, RSSL_NPN_CLIENT, NULL),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_psk_identity(b, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_srp_identity(b, "x", NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_srp_identity(b, NULL, "y"), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_add_sni_host(b, NULL, NULL), RSSL_NULL_PARAMETER);
    /* NULL callbacks remove them: not an error. */
    CHECK_OK(rssl_config_builder_set_verify_callback(b, NULL, NULL));
    CHECK_OK(rssl_config_builder_set_partial_chain_callback(b, NULL, NULL));
    CHECK_OK(rssl_config_builder_set_sni_callback(b, NULL, NULL));
    CHECK_OK(rssl_config_builder_set_psk_callback(b, NULL, NULL));
    CHECK_OK(rssl_config_builder_set_srp_callback(b, NULL, NULL));
    rssl_config_builder_free(b);

    CHECK_RESULT(rssl_conn_cipher_suite(NULL, &suite), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_negotiated_protocol(NULL, text, sizeof text, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_session_reused(NULL, &flag), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_session(NULL, buf, sizeof buf, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_set_session(NULL, buf, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_export_keying_material(NULL, "x", NULL, 0, buf, 4),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_connect_session(NULL, "localhost", 1, buf, 1, 0, NULL),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_cipher_suites(NULL, NULL, &suite, 1, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_supported_versions(NULL, 0, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_supported_versions(NULL, 2, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_srp_verifier(NULL, "p", buf, 1, 2048, buf, sizeof buf, &n),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_srp_verifier("u", "p", NULL, 1, 2048, buf, sizeof buf, &n),
                 RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_srp_verifier("u", "p", buf, 1, 2048, NULL, 300, &n), RSSL_NULL_PARAMETER);

    /* Queries on a connection before its handshake. */
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_conn_new(config, NULL, &conn));
    CHECK_RESULT(rssl_conn_cipher_suite(conn, &suite), RSSL_NOT_AVAILABLE);
    CHECK_RESULT(rssl_conn_negotiated_protocol(conn, text, sizeof text, &n), RSSL_NOT_AVAILABLE);
    CHECK_OK(rssl_conn_session_reused(conn, &flag));
    CHECK(!flag);
    CHECK_RESULT(rssl_conn_session_reused(conn, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_session(conn, buf, sizeof buf, &n), RSSL_NOT_AVAILABLE);
    CHECK_RESULT(rssl_conn_set_session(conn, NULL, 4), RSSL_NULL_PARAMETER);
    rssl_conn_free(conn);
    rssl_config_free(config);

    /* Static look-ups never fail. */
    CHECK(strcmp(rssl_verify_error_name(0), "valid") == 0);
    CHECK(strcmp(rssl_verify_error_name(10), "cert_expired") == 0);
    CHECK(strcmp(rssl_verify_error_name(-5), "unknown") == 0);
    CHECK(strcmp(rssl_verify_error_string(10), "certificate has expired") == 0);
    CHECK(rssl_verify_error_string(123456) != NULL);
    CHECK(strcmp(rssl_result_string(RSSL_WANT_READ), "more input from the peer is needed") == 0);
    CHECK(strcmp(rssl_result_string(RSSL_BAD_CRL), "no usable certificate revocation list") == 0);
}

/* CRL and DH files that are missing or hold something else. */
static void bad_option_files(void)
{
    rssl_config_builder *b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server.key")));
    CHECK_OK(rssl_config_builder_add_crlfile(b, "/nonexistent/rssl.crl"));
    build_fails(b, RSSL_FILE_NOT_FOUND, "crlfile \"/nonexistent/rssl.crl\": enoent");
    rssl_config_builder_free(b);

    b = empty_server_builder();
    CHECK_OK(rssl_config_builder_add_crlfile(b, cert_path("garbage.pem")));
    build_fails(b, RSSL_BAD_CRL, "no_crl");
    rssl_config_builder_free(b);

    b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server.key")));
    CHECK_OK(rssl_config_builder_set_dhfile(b, "/nonexistent/dh.pem"));
    build_fails(b, RSSL_FILE_NOT_FOUND, "dhfile");
    CHECK_OK(rssl_config_builder_set_dhfile(b, cert_path("garbage.pem")));
    build_fails(b, RSSL_INVALID_OPTION, "bad_dh_params");
    rssl_config_builder_free(b);

    /* An SNI host must be a server configuration. */
    rssl_config_builder *cb = NULL;
    const rssl_config *client = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &cb));
    CHECK_OK(rssl_config_builder_build(cb, &client));
    b = empty_server_builder();
    CHECK_RESULT(rssl_config_builder_add_sni_host(b, "x", client), RSSL_INVALID_ARGUMENT);
    rssl_config_builder_free(b);
    rssl_config_builder_free(cb);
    rssl_config_free(client);
}

/* A peer that speaks something else than TLS: the accept fails with an
 * alert or a TLS error and the listener goes on. */
static void peer_garbage(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 4, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    rssl_config_builder *b = empty_server_builder();
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server.key")));
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);
    for (int i = 0; i < 2; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
        addr.sin_addr.s_addr = htonl(0x7f000001);
        CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
        /* Plain HTTP, then a record of a content type TLS does not have. */
        static const char http[] = "GET / HTTP/1.0\r\n\r\n";
        static const char record[] = "\x99\x03\x03\x00\x05hello";
        const char *junk = i == 0 ? http : record;
        size_t len = i == 0 ? sizeof http - 1 : sizeof record - 1;
        CHECK(write(fd, junk, len) == (ssize_t)len);
        rssl_conn *conn = NULL;
        rssl_result r = rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn);
        if (r != RSSL_TLS_ALERT && r != RSSL_TLS_ERROR) {
            fprintf(stderr, "%d: %s: %s\n", i, rssl_result_string(r), last_error());
            CHECK(false);
        }
        CHECK(conn == NULL);
        close(fd);
    }
    rssl_listener_free(listener);
    rssl_config_free(config);
}

/* Nothing arrives: recv gives up on time and the connection stays usable. */
static void recv_timeout(void)
{
    struct child server;
    const char *args[] = {"-rev", NULL};
    unsigned short port = start_s_server(&server, args);
    const rssl_config *config = client_config(cert_path("ca.pem"), NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));

    uint8_t buf[64];
    size_t n = 99;
    long long start = now_ms();
    CHECK_RESULT(rssl_recv(conn, buf, sizeof buf, 300, &n), RSSL_TIMEOUT);
    long long took = now_ms() - start;
    CHECK(n == 0);
    CHECK(took >= 295 && took < 5000);
    CHECK(strcmp(last_error(), "timeout") == 0);
    /* Timeout 0 polls once. */
    CHECK_RESULT(rssl_recv(conn, buf, sizeof buf, 0, &n), RSSL_TIMEOUT);

    CHECK_OK(rssl_send(conn, (const uint8_t *)"still here\n", 11, TEST_TIMEOUT_MS));
    recv_exactly(conn, buf, 11);
    CHECK(memcmp(buf, "ereh llits\n", 11) == 0);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
    child_finish(&server, TEST_TIMEOUT_MS);
}

/* A TCP server that never speaks TLS: the handshake times out. */
static void handshake_timeout(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    const rssl_config *config = client_config(NULL, NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    long long start = now_ms();
    CHECK_RESULT(rssl_connect(config, "127.0.0.1", port, 300, &conn), RSSL_TIMEOUT);
    long long took = now_ms() - start;
    CHECK(took >= 295 && took < 5000);
    CHECK(conn == NULL);

    rssl_config_free(config);
    rssl_listener_free(listener);

    /* And accept with nobody connecting. */
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    const rssl_config *sconfig = server_config(false, NULL, NULL);
    rssl_conn *accepted = NULL;
    CHECK_RESULT(rssl_accept(listener, sconfig, 0, &accepted), RSSL_TIMEOUT);
    start = now_ms();
    CHECK_RESULT(rssl_accept(listener, sconfig, 200, &accepted), RSSL_TIMEOUT);
    took = now_ms() - start;
    CHECK(took >= 195 && took < 5000);
    CHECK(accepted == NULL);
    rssl_config_free(sconfig);
    rssl_listener_free(listener);
}

static void connect_refused(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    rssl_listener_free(listener); /* nothing listens there now */
    const rssl_config *config = client_config(NULL, NULL, NULL, NULL);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_connect(config, "127.0.0.1", port, TEST_TIMEOUT_MS, &conn),
                 RSSL_CONNECT_FAILED);
    CHECK(strstr(last_error(), "refused") != NULL);
    rssl_config_free(config);
}

/* Calls that need a handshake first. */
static void invalid_state(void)
{
    const rssl_config *config = client_config(NULL, NULL, NULL, NULL);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_conn_from_fd(config, -1, NULL, &conn), RSSL_INVALID_ARGUMENT);
    CHECK_OK(rssl_conn_from_fd(config, sv[0], "localhost", &conn));
    uint8_t buf[8];
    size_t n = 0;
    uint16_t version = 0;
    CHECK_RESULT(rssl_send(conn, buf, 1, 0), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_recv(conn, buf, sizeof buf, 0, &n), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_shutdown(conn, 0), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_version(conn, &version), RSSL_NOT_AVAILABLE);
    CHECK_RESULT(rssl_conn_cipher(conn, (char *)buf, sizeof buf, &n), RSSL_NOT_AVAILABLE);
    CHECK_RESULT(rssl_conn_peer_cert(conn, buf, sizeof buf, &n), RSSL_NOT_AVAILABLE);
    CHECK_RESULT(rssl_conn_alpn_protocol(conn, (char *)buf, sizeof buf, &n), RSSL_NOT_AVAILABLE);
    /* The handshake starts (the ClientHello goes out) and times out. */
    CHECK_RESULT(rssl_handshake(conn, 50), RSSL_TIMEOUT);
    CHECK(recv(sv[1], buf, 1, MSG_DONTWAIT) == 1 && buf[0] == 22); /* a handshake record */
    /* The peer goes away mid-handshake. */
    close(sv[1]);
    CHECK_RESULT(rssl_handshake(conn, TEST_TIMEOUT_MS), RSSL_CLOSED);
    CHECK_OK(rssl_close(conn));
    rssl_config_free(config);
}

static void result_strings(void)
{
    const rssl_result codes[] = {
        RSSL_OK,           RSSL_NULL_PARAMETER,  RSSL_INVALID_ARGUMENT, RSSL_BUFFER_TOO_SMALL,
        RSSL_INVALID_STATE, RSSL_NOT_AVAILABLE,  RSSL_INVALID_OPTION,   RSSL_FILE_NOT_FOUND,
        RSSL_FILE_UNREADABLE, RSSL_BAD_CERTIFICATE, RSSL_BAD_KEY,       RSSL_BAD_PASSWORD,
        RSSL_KEY_MISMATCH, RSSL_CLOSED,          RSSL_TIMEOUT,          RSSL_IO_ERROR,
        RSSL_RESOLVE_FAILED, RSSL_CONNECT_FAILED, RSSL_ADDRESS_IN_USE, RSSL_TLS_ALERT,
        RSSL_TLS_ERROR,    RSSL_PANIC,
    };
    size_t count = sizeof codes / sizeof codes[0];
    const char *unknown = rssl_result_string(12345);
    CHECK(strcmp(unknown, "unknown result code") == 0);
    for (size_t i = 0; i < count; i++) {
        const char *s = rssl_result_string(codes[i]);
        CHECK(s != NULL && *s != '\0' && strcmp(s, unknown) != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, rssl_result_string(codes[j])) != 0);
    }
    /* Stable values: changing one breaks every compiled caller. */
    CHECK(RSSL_OK == 0 && RSSL_NULL_PARAMETER == 100 && RSSL_FILE_NOT_FOUND == 201);
    CHECK(RSSL_CLOSED == 300 && RSSL_TIMEOUT == 301 && RSSL_TLS_ALERT == 400);
    CHECK(RSSL_TLS1_2 == 0x0303 && RSSL_TLS1_3 == 0x0304);

    CHECK(strcmp(rssl_version_name(RSSL_TLS1_2), "tlsv1.2") == 0);
    CHECK(strcmp(rssl_version_name(RSSL_TLS1_3), "tlsv1.3") == 0);
    CHECK(rssl_version_name(0x0300) == NULL);
    CHECK(strcmp(rssl_alert_name(48), "unknown_ca") == 0);
    CHECK(strcmp(rssl_alert_name(200), "illegal_alert") == 0);

    /* The error string: truncated copies report the full length. */
    rssl_config_builder *b = NULL;
    CHECK_RESULT(rssl_config_builder_new(42, &b), RSSL_INVALID_ARGUMENT);
    CHECK(rssl_last_result() == RSSL_INVALID_ARGUMENT);
    char full[256], small[8];
    size_t n = 0, m = 0;
    CHECK_OK(rssl_error_string(full, sizeof full, &n));
    CHECK(strcmp(full, "unknown role 42") == 0 && n == strlen(full));
    CHECK_RESULT(rssl_error_string(small, sizeof small, &m), RSSL_BUFFER_TOO_SMALL);
    CHECK(m == n && strcmp(small, "unknown") == 0);
    CHECK_RESULT(rssl_error_string(NULL, 0, &m), RSSL_BUFFER_TOO_SMALL);
    CHECK(m == n);
    /* Asking does not change it, nor does a later success. */
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    CHECK_OK(rssl_error_string(full, sizeof full, &n));
    CHECK(strcmp(full, "unknown role 42") == 0);
    /* Not an alert. */
    uint8_t alert = 0;
    CHECK_RESULT(rssl_last_alert(&alert, NULL), RSSL_NOT_AVAILABLE);
    rssl_config_builder_free(b);
}

static void wrong_role(void)
{
    const rssl_config *server = server_config(false, NULL, NULL);
    const rssl_config *client = client_config(NULL, NULL, NULL, NULL);
    rssl_listener *listener = NULL;
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_RESULT(rssl_connect(server, "127.0.0.1", 1, 0, &conn), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_accept(listener, client, 0, &conn), RSSL_INVALID_ARGUMENT);
    CHECK(conn == NULL);
    rssl_listener_free(listener);
    rssl_config_free(server);
    rssl_config_free(client);
}

static void address_in_use(void)
{
    rssl_listener *first = NULL, *second = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &first));
    CHECK_OK(rssl_listener_port(first, &port));
    CHECK_RESULT(rssl_listen("127.0.0.1", port, 8, &second), RSSL_ADDRESS_IN_USE);
    CHECK(second == NULL);
    rssl_listener_free(first);
}

int main(int argc, char **argv)
{
    static const struct test_case tests[] = {
        {"null_handles", null_handles},
        {"missing_certfile", missing_certfile},
        {"bad_files", bad_files},
        {"recv_timeout", recv_timeout},
        {"handshake_timeout", handshake_timeout},
        {"connect_refused", connect_refused},
        {"invalid_state", invalid_state},
        {"result_strings", result_strings},
        {"wrong_role", wrong_role},
        {"address_in_use", address_in_use},
        {"null_handles_options", null_handles_options},
        {"bad_option_files", bad_option_files},
        {"peer_garbage", peer_garbage},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
