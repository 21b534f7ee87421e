/* (f) Memory connections (the sans-I/O API for event loops): two rssl ends
 * in one thread, a memory client against openssl s_server over a socket,
 * and the calls' error paths. */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint16_t TLS12[] = {RSSL_TLS1_2};
static const uint16_t TLS13[] = {RSSL_TLS1_3};

/* Moves all of `from`'s output into `to` (zero-copy on one side, a copy
 * through a small buffer on the other, so both calls are used). */
static size_t shuttle(rssl_conn *from, rssl_conn *to, bool zero_copy)
{
    size_t moved = 0;
    if (zero_copy) {
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_OK(rssl_conn_output(from, &data, &len));
        if (len > 0) {
            CHECK_OK(rssl_conn_feed(to, data, len));
            CHECK_OK(rssl_conn_consume_output(from, len));
        }
        return len;
    }
    uint8_t buf[1000];
    for (;;) {
        size_t n = 0;
        CHECK_OK(rssl_conn_take_output(from, buf, sizeof buf, &n));
        if (n == 0)
            return moved;
        CHECK_OK(rssl_conn_feed(to, buf, n));
        moved += n;
    }
}

static void memory_pair(const uint16_t *version, rssl_conn **client, rssl_conn **server)
{
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_versions(cb, version, 1));
    const rssl_config *cconfig = build(cb);
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    CHECK_OK(rssl_conn_new(cconfig, "localhost", client));
    CHECK_OK(rssl_conn_new(sconfig, "ignored by a server", server));
    /* Connections keep what they need of their configurations. */
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* Runs both handshakes to completion; returns the number of rounds. */
static int handshake(rssl_conn *client, rssl_conn *server)
{
    bool cdone = false, sdone = false;
    int rounds = 0;
    while (!(cdone && sdone)) {
        CHECK(++rounds < 10);
        rssl_result r = rssl_conn_handshake_step(client);
        if (r == RSSL_OK)
            cdone = true;
        else
            CHECK_RESULT(r, RSSL_WANT_READ);
        bool want_read = false, want_write = false;
        CHECK_OK(rssl_conn_wants(client, &want_read, &want_write));
        CHECK(want_read == !cdone);
        shuttle(client, server, true);
        r = rssl_conn_handshake_step(server);
        if (r == RSSL_OK)
            sdone = true;
        else
            CHECK_RESULT(r, RSSL_WANT_READ);
        shuttle(server, client, false);
    }
    return rounds;
}

static void transfer(rssl_conn *from, rssl_conn *to, size_t size)
{
    uint8_t *out = malloc(size), *in = malloc(size);
    CHECK(out != NULL && in != NULL);
    for (size_t i = 0; i < size; i++)
        out[i] = (uint8_t)(i * 13 + i / 256);
    CHECK_OK(rssl_conn_write(from, out, size));
    bool want_write = false;
    CHECK_OK(rssl_conn_wants(from, NULL, &want_write));
    CHECK(want_write);
    shuttle(from, to, size % 2 == 0);
    size_t got = 0;
    while (got < size) {
        size_t n = 0;
        CHECK_OK(rssl_conn_read(to, in + got, size - got, &n));
        CHECK(n > 0);
        got += n;
    }
    size_t n = 0;
    CHECK_RESULT(rssl_conn_read(to, in, size, &n), RSSL_WANT_READ);
    bool want_read = false;
    CHECK_OK(rssl_conn_wants(to, &want_read, NULL));
    CHECK(want_read);
    CHECK(memcmp(in, out, size) == 0);
    free(out);
    free(in);
}

static void pair(const uint16_t *version)
{
    rssl_conn *client = NULL, *server = NULL;
    memory_pair(version, &client, &server);
    /* Nothing is established yet. */
    uint8_t buf[16];
    size_t n = 0;
    CHECK_RESULT(rssl_conn_read(client, buf, sizeof buf, &n), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_write(client, buf, 1), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_close_notify(client), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_export_keying_material(client, "x", NULL, 0, buf, 8),
                 RSSL_INVALID_STATE);
    uint16_t v = 0;
    CHECK_RESULT(rssl_conn_version(client, &v), RSSL_NOT_AVAILABLE);

    handshake(client, server);
    CHECK_OK(rssl_conn_handshake_step(client)); /* again: still OK */
    CHECK_OK(rssl_conn_version(client, &v));
    CHECK(v == version[0]);
    CHECK_OK(rssl_conn_version(server, &v));
    CHECK(v == version[0]);
    char text[64];
    CHECK_OK(rssl_conn_sni_hostname(server, text, sizeof text, &n));
    CHECK(strcmp(text, "localhost") == 0);
    CHECK_RESULT(rssl_conn_peer_cert(client, NULL, 0, &n), RSSL_BUFFER_TOO_SMALL);
    CHECK(n > 100);
    uint8_t a[16], b[16];
    CHECK_OK(rssl_conn_export_keying_material(client, "EXPERIMENTAL m", NULL, 0, a, 16));
    CHECK_OK(rssl_conn_export_keying_material(server, "EXPERIMENTAL m", NULL, 0, b, 16));
    CHECK(memcmp(a, b, 16) == 0);
    int fd = 0;
    CHECK_RESULT(rssl_conn_fd(client, &fd), RSSL_NOT_AVAILABLE);

    transfer(client, server, 5);
    transfer(server, client, 1000 * 1000);
    transfer(client, server, 70000);
    CHECK_OK(rssl_conn_read(client, buf, 0, &n));
    CHECK(n == 0);

    /* close_notify: the peer reads the end; writing after it is refused. */
    CHECK_OK(rssl_conn_close_notify(client));
    CHECK_OK(rssl_conn_close_notify(client));
    CHECK_RESULT(rssl_conn_write(client, buf, 1), RSSL_CLOSED);
    shuttle(client, server, true);
    CHECK_RESULT(rssl_conn_read(server, buf, sizeof buf, &n), RSSL_CLOSED);
    /* The server can still answer before closing too. */
    CHECK_OK(rssl_conn_write(server, (const uint8_t *)"bye", 3));
    CHECK_OK(rssl_conn_close_notify(server));
    shuttle(server, client, false);
    CHECK_OK(rssl_conn_read(client, buf, sizeof buf, &n));
    CHECK(n == 3 && memcmp(buf, "bye", 3) == 0);
    CHECK_RESULT(rssl_conn_read(client, buf, sizeof buf, &n), RSSL_CLOSED);
    CHECK_OK(rssl_close(client));
    rssl_conn_free(server);
}

static void pair_tls12(void)
{
    pair(TLS12);
}

static void pair_tls13(void)
{
    pair(TLS13);
}

static void verify_failure(void)
{
    rssl_config_builder *cb = client_builder("other_ca.pem");
    const rssl_config *cconfig = build(cb);
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    rssl_conn *client = NULL, *server = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    rssl_result cr = RSSL_WANT_READ, sr = RSSL_WANT_READ;
    for (int i = 0; i < 5; i++) {
        cr = rssl_conn_handshake_step(client);
        shuttle(client, server, true);
        if (cr != RSSL_WANT_READ)
            break;
        CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_WANT_READ);
        shuttle(server, client, true);
    }
    CHECK_RESULT(cr, RSSL_TLS_ALERT);
    bool local = false;
    CHECK(last_alert(&local) == 48 && local);
    /* The alert went into the output (shuttled above): the server sees it. */
    sr = rssl_conn_handshake_step(server);
    CHECK_RESULT(sr, RSSL_TLS_ALERT);
    CHECK(last_alert(&local) == 48 && !local);
    /* Failures stick. */
    CHECK_RESULT(rssl_conn_handshake_step(client), RSSL_TLS_ALERT);
    rssl_conn_free(client);
    rssl_conn_free(server);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* Feeds `in` to a fresh server: the handshake fails with a TLS alert, and
 * the output is exactly the record of the fatal alert `alert` it sent. */
static void garbage_case(const rssl_config *sconfig, const uint8_t *in, size_t n, uint8_t alert,
                         const char *error_text)
{
    rssl_conn *server = NULL;
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK_OK(rssl_conn_feed(server, in, n));
    CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_TLS_ALERT);
    bool local = false;
    CHECK(last_alert(&local) == alert && local);
    if (strstr(last_error(), error_text) == NULL) {
        fprintf(stderr, "error text: %s\nwanted: %s\n", last_error(), error_text);
        CHECK(false);
    }
    const uint8_t *out = NULL;
    size_t len = 0;
    CHECK_OK(rssl_conn_output(server, &out, &len));
    /* An alert record (21), TLS 1.2 framing, 2 bytes: fatal (2), alert. */
    const uint8_t record[] = {21, 3, 3, 0, 2, 2, alert};
    CHECK(len == sizeof record && memcmp(out, record, len) == 0);
    /* Failures stick. */
    CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_TLS_ALERT);
    rssl_conn_free(server);
}

static void peer_garbage(void)
{
    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    rssl_conn *server = NULL;
    /* A plain HTTP request: unexpected_message, as OTP's ssl answers it
     * (OpenSSL alone would close without an alert). */
    const char *http = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
    garbage_case(sconfig, (const uint8_t *)http, strlen(http), 10, "http request");
    /* A ServerHello sent to a server. */
    const uint8_t server_hello[] = {22, 3, 3, 0, 8, 2, 0, 0, 4, 3, 3, 0, 0};
    garbage_case(sconfig, server_hello, sizeof server_hello, 10, "unexpected message");
    /* Application data before any handshake. */
    const uint8_t app_data[] = {23, 3, 3, 0, 2, 1, 2};
    garbage_case(sconfig, app_data, sizeof app_data, 10, "unexpected message");
    /* A ClientHello whose length says 4 bytes and holds just a version. */
    const uint8_t short_hello[] = {22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0};
    garbage_case(sconfig, short_hello, sizeof short_hello, 50, "length mismatch");

    /* A stream that ends in the middle of the handshake. */
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK_OK(rssl_conn_feed(server, (const uint8_t *)"\x16\x03\x01\x00", 4));
    CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_WANT_READ);
    CHECK_OK(rssl_conn_feed_eof(server));
    bool want_read = true;
    CHECK_OK(rssl_conn_wants(server, &want_read, NULL));
    CHECK(!want_read);
    CHECK_RESULT(rssl_conn_handshake_step(server), RSSL_CLOSED);
    CHECK_RESULT(rssl_conn_feed(server, (const uint8_t *)"x", 1), RSSL_INVALID_STATE);
    rssl_conn_free(server);
    rssl_config_free(sconfig);
}

static void wrong_calls(void)
{
    const rssl_config *cconfig = build(client_builder(NULL));
    rssl_conn *mem = NULL;
    CHECK_OK(rssl_conn_new(cconfig, NULL, &mem));
    uint8_t buf[8];
    size_t n = 0;
    /* Blocking calls need a socket. */
    CHECK_RESULT(rssl_handshake(mem, 0), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_send(mem, buf, 1, 0), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_recv(mem, buf, 1, 0, &n), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_shutdown(mem, 0), RSSL_INVALID_STATE);
    CHECK(strstr(last_error(), "memory connection") != NULL);
    CHECK_RESULT(rssl_conn_consume_output(mem, 1), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_conn_handshake_step(mem), RSSL_WANT_READ);
    const uint8_t *out = NULL;
    size_t len = 0;
    CHECK_OK(rssl_conn_output(mem, &out, &len));
    CHECK(len > 0 && out[0] == 22); /* the client hello */
    CHECK_RESULT(rssl_conn_consume_output(mem, len + 1), RSSL_INVALID_ARGUMENT);
    CHECK_OK(rssl_conn_consume_output(mem, len));
    /* A session is offered before the handshake only, by a client only. */
    CHECK_RESULT(rssl_conn_set_session(mem, (const uint8_t *)"junk", 4), RSSL_INVALID_ARGUMENT);
    rssl_conn_free(mem);

    /* Memory calls need a memory connection. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rssl_conn *sock = NULL;
    CHECK_OK(rssl_conn_from_fd(cconfig, sv[0], NULL, &sock));
    CHECK_RESULT(rssl_conn_feed(sock, buf, 1), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_feed_eof(sock), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_handshake_step(sock), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_read(sock, buf, 1, &n), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_write(sock, buf, 1), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_close_notify(sock), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_output(sock, &out, &len), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_consume_output(sock, 0), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_take_output(sock, buf, 1, &n), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_wants(sock, NULL, NULL), RSSL_INVALID_STATE);
    CHECK(strstr(last_error(), "socket connection") != NULL);
    rssl_conn_free(sock);
    close(sv[1]);

    const rssl_config *sconfig = build(server_builder("server.pem", "server.key"));
    CHECK_OK(rssl_conn_new(sconfig, NULL, &mem));
    CHECK_RESULT(rssl_conn_set_session(mem, (const uint8_t *)"junk", 4), RSSL_INVALID_STATE);
    rssl_conn_free(mem);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static void null_arguments(void)
{
    const rssl_config *config = build(client_builder(NULL));
    rssl_conn *conn = NULL;
    uint8_t buf[8];
    size_t n = 0;
    const uint8_t *out = NULL;
    CHECK_RESULT(rssl_conn_new(NULL, NULL, &conn), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_new(config, NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_feed(NULL, buf, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_feed_eof(NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_handshake_step(NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_read(NULL, buf, 1, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_write(NULL, buf, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_close_notify(NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_output(NULL, &out, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_consume_output(NULL, 0), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_take_output(NULL, buf, 1, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_wants(NULL, NULL, NULL), RSSL_NULL_PARAMETER);
    CHECK_OK(rssl_conn_new(config, NULL, &conn));
    CHECK_RESULT(rssl_conn_feed(conn, NULL, 1), RSSL_NULL_PARAMETER);
    CHECK_OK(rssl_conn_feed(conn, NULL, 0));
    CHECK_RESULT(rssl_conn_read(conn, NULL, 1, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_read(conn, buf, 1, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_write(conn, NULL, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_output(conn, NULL, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_output(conn, &out, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_take_output(conn, NULL, 1, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_take_output(conn, buf, 1, NULL), RSSL_NULL_PARAMETER);
    CHECK_OK(rssl_conn_take_output(conn, NULL, 0, &n));
    CHECK(n == 0);
    rssl_conn_free(conn);
    rssl_conn_free(NULL);
    CHECK_OK(rssl_close(NULL));
    rssl_config_free(config);
}

/* A memory client driving a real socket to openssl s_server. */
static void against_s_server(const char *flag, uint16_t version)
{
    struct child server;
    const char *extra[] = {flag, "-rev", NULL};
    unsigned short port = start_s_server(&server, extra);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(0x7f000001);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    const rssl_config *config = build(client_builder("ca.pem"));
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_conn_new(config, "localhost", &conn));
    rssl_config_free(config);

    /* The event loop: step, flush, wait for input, feed. */
    bool sent_line = false;
    char reply[64] = {0};
    size_t reply_len = 0;
    long long deadline = now_ms() + TEST_TIMEOUT_MS;
    for (;;) {
        CHECK(now_ms() < deadline);
        rssl_result r = rssl_conn_handshake_step(conn);
        if (r == RSSL_OK && !sent_line) {
            CHECK_OK(rssl_conn_write(conn, (const uint8_t *)"hello\n", 6));
            sent_line = true;
        }
        if (r == RSSL_OK) {
            size_t n = 0;
            r = rssl_conn_read(conn, (uint8_t *)reply + reply_len,
                               sizeof reply - 1 - reply_len, &n);
            if (r == RSSL_OK)
                reply_len += n;
            else
                CHECK_RESULT(r, RSSL_WANT_READ);
            if (strchr(reply, '\n') != NULL)
                break;
        } else {
            CHECK_RESULT(r, RSSL_WANT_READ);
        }
        bool want_write = false, want_read = false;
        CHECK_OK(rssl_conn_wants(conn, &want_read, &want_write));
        while (want_write) {
            const uint8_t *out = NULL;
            size_t len = 0;
            CHECK_OK(rssl_conn_output(conn, &out, &len));
            ssize_t w = send(fd, out, len, MSG_NOSIGNAL);
            CHECK(w > 0);
            CHECK_OK(rssl_conn_consume_output(conn, (size_t)w));
            CHECK_OK(rssl_conn_wants(conn, NULL, &want_write));
        }
        CHECK(want_read);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        CHECK(poll(&pfd, 1, TEST_TIMEOUT_MS) == 1);
        uint8_t buf[4096];
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        CHECK(got > 0);
        CHECK_OK(rssl_conn_feed(conn, buf, (size_t)got));
    }
    /* s_server -rev answers each line reversed. */
    CHECK(strcmp(reply, "olleh\n") == 0);
    uint16_t v = 0;
    CHECK_OK(rssl_conn_version(conn, &v));
    CHECK(v == version);
    CHECK_OK(rssl_conn_close_notify(conn));
    const uint8_t *out = NULL;
    size_t len = 0;
    CHECK_OK(rssl_conn_output(conn, &out, &len));
    CHECK(send(fd, out, len, MSG_NOSIGNAL) == (ssize_t)len);
    rssl_conn_free(conn);
    close(fd);
    child_finish(&server, TEST_TIMEOUT_MS);
}

static void s_server_tls12(void)
{
    against_s_server("-tls1_2", RSSL_TLS1_2);
}

static void s_server_tls13(void)
{
    against_s_server("-tls1_3", RSSL_TLS1_3);
}

static void resumption(void)
{
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_session_tickets(sb, 1));
    const rssl_config *sconfig = build(sb);
    const rssl_config *cconfig = build(client_builder("ca.pem"));
    uint8_t session[4096];
    size_t session_len = 0;
    for (int round = 0; round < 2; round++) {
        rssl_conn *client = NULL, *server = NULL;
        CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
        CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
        if (round == 1)
            CHECK_OK(rssl_conn_set_session(client, session, session_len));
        handshake(client, server);
        transfer(server, client, 10); /* brings the TLS 1.3 ticket along */
        bool reused = false;
        CHECK_OK(rssl_conn_session_reused(client, &reused));
        CHECK(reused == (round == 1));
        if (round == 0) {
            CHECK_OK(rssl_conn_session(client, session, sizeof session, &session_len));
            CHECK_RESULT(rssl_conn_set_session(client, session, session_len),
                         RSSL_INVALID_STATE);
        }
        rssl_conn_free(client);
        rssl_conn_free(server);
    }
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* 0-RTT over memory connections: a manual ticket, early data with it, read
 * first by the server; both ends say it was accepted. */
static void early_data(void)
{
    rssl_config_builder *sb = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_session_tickets(sb, 1));
    CHECK_OK(rssl_config_builder_set_early_data(sb, 1024));
    const rssl_config *sconfig = build(sb);
    rssl_config_builder *cb = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_manual_tickets(cb, true));
    const rssl_config *cconfig = build(cb);
    uint8_t ticket[4096];
    size_t ticket_len = 0;
    for (int round = 0; round < 2; round++) {
        rssl_conn *client = NULL, *server = NULL;
        CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
        CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
        if (round == 1) {
            CHECK_OK(rssl_conn_set_session(client, ticket, ticket_len));
            CHECK_OK(rssl_conn_set_early_data(client, (const uint8_t *)"early", 5));
        }
        handshake(client, server);
        rssl_early_data cstatus = RSSL_EARLY_DATA_NONE, sstatus = RSSL_EARLY_DATA_NONE;
        CHECK_OK(rssl_conn_early_data_status(client, &cstatus));
        CHECK_OK(rssl_conn_early_data_status(server, &sstatus));
        if (round == 1) {
            CHECK(cstatus == RSSL_EARLY_DATA_ACCEPTED && sstatus == RSSL_EARLY_DATA_ACCEPTED);
            uint8_t got[5];
            size_t n = 0;
            CHECK_OK(rssl_conn_read(server, got, sizeof got, &n));
            CHECK(n == 5 && memcmp(got, "early", 5) == 0);
        } else {
            CHECK(cstatus == RSSL_EARLY_DATA_NONE && sstatus == RSSL_EARLY_DATA_NONE);
        }
        transfer(client, server, 10);
        transfer(server, client, 10); /* brings the ticket along */
        if (round == 0)
            CHECK_OK(rssl_conn_next_ticket(client, ticket, sizeof ticket, &ticket_len));
        rssl_conn_free(client);
        rssl_conn_free(server);
    }
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static const struct test_case TESTS[] = {
    {"pair_tls12", pair_tls12},
    {"pair_tls13", pair_tls13},
    {"verify_failure", verify_failure},
    {"peer_garbage", peer_garbage},
    {"wrong_calls", wrong_calls},
    {"null_arguments", null_arguments},
    {"s_server_tls12", s_server_tls12},
    {"s_server_tls13", s_server_tls13},
    {"resumption", resumption},
    {"early_data", early_data},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
