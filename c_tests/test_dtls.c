/* DTLS through the C API: blocking clients and servers over UDP against
 * openssl s_server / s_client and each other, the listener's stateless
 * cookies, memory connections whose lost datagrams the retransmission
 * timer recovers, and the error paths. */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint16_t DTLS12[] = {RSSL_DTLS1_2};
static const uint16_t DTLS10[] = {RSSL_DTLS1_0};

static rssl_config_builder *dtls_server_builder(void)
{
    rssl_config_builder *b = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS));
    return b;
}

static rssl_config_builder *dtls_client_builder(void)
{
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS));
    return b;
}

/* ---- Blocking: a server thread on a DTLS listener ---- */

struct dtls_server {
    pthread_t thread;
    rssl_listener *listener;
    const rssl_config *config;
    unsigned short port;
    int count;                /* connections to serve, one after the other */
    rssl_result accepted[4];  /* rssl_accept's results */
    rssl_result ended[4];     /* what ended each echo loop (RSSL_CLOSED) */
    size_t datagrams[4];      /* how many datagrams each echoed */
    size_t sizes[4][8];       /* the sizes of the first ones */
};

static void *dtls_serve(void *arg)
{
    struct dtls_server *s = arg;
    for (int i = 0; i < s->count; i++) {
        rssl_conn *conn = NULL;
        s->accepted[i] = rssl_accept(s->listener, s->config, TEST_TIMEOUT_MS, &conn);
        if (s->accepted[i] != RSSL_OK)
            continue;
        static uint8_t buf[RSSL_DTLS_MAX_PLAINTEXT];
        for (;;) {
            size_t n = 0;
            rssl_result r = rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n);
            if (r != RSSL_OK) {
                s->ended[i] = r;
                break;
            }
            if (s->datagrams[i] < 8)
                s->sizes[i][s->datagrams[i]] = n;
            s->datagrams[i]++;
            if (rssl_send(conn, buf, n, TEST_TIMEOUT_MS) != RSSL_OK) {
                s->ended[i] = RSSL_IO_ERROR;
                break;
            }
        }
        rssl_close(conn);
    }
    return NULL;
}

static void dtls_server_start(struct dtls_server *s, const rssl_config *config, int count)
{
    memset(s, 0, sizeof *s);
    s->config = config;
    s->count = count;
    CHECK_OK(rssl_dtls_listen("127.0.0.1", 0, &s->listener));
    CHECK_OK(rssl_listener_port(s->listener, &s->port));
    CHECK(pthread_create(&s->thread, NULL, dtls_serve, s) == 0);
}

static void dtls_server_join(struct dtls_server *s)
{
    CHECK(pthread_join(s->thread, NULL) == 0);
    rssl_listener_free(s->listener);
}

/* Sends `len` bytes and expects them back as one datagram. */
static void echo(rssl_conn *conn, const uint8_t *data, size_t len)
{
    static uint8_t back[RSSL_DTLS_MAX_PLAINTEXT];
    CHECK_OK(rssl_send(conn, data, len, TEST_TIMEOUT_MS));
    size_t n = 0;
    CHECK_OK(rssl_recv(conn, back, sizeof back, TEST_TIMEOUT_MS, &n));
    CHECK(n == len && memcmp(back, data, len) == 0);
}

/* rssl client to rssl server: datagrams keep their boundaries, the
 * largest one passes, a larger one is refused, two peers one after the
 * other each get their own connection. */
static void loopback(void)
{
    const rssl_config *sconfig = build(dtls_server_builder());
    const rssl_config *cconfig = build(dtls_client_builder());
    struct dtls_server server;
    dtls_server_start(&server, sconfig, 2);
    for (int peer = 0; peer < 2; peer++) {
        rssl_conn *conn = NULL;
        CHECK_OK(rssl_connect(cconfig, "localhost", server.port, TEST_TIMEOUT_MS, &conn));
        uint16_t version = 0;
        CHECK_OK(rssl_conn_version(conn, &version));
        CHECK(version == RSSL_DTLS1_2);
        CHECK(strcmp(rssl_version_name(version), "dtlsv1.2") == 0);
        /* Three sends, three datagrams: each comes back on its own. */
        CHECK_OK(rssl_send(conn, (const uint8_t *)"a", 1, TEST_TIMEOUT_MS));
        CHECK_OK(rssl_send(conn, (const uint8_t *)"bb", 2, TEST_TIMEOUT_MS));
        CHECK_OK(rssl_send(conn, (const uint8_t *)"ccc", 3, TEST_TIMEOUT_MS));
        for (size_t want = 1; want <= 3; want++) {
            uint8_t buf[64];
            size_t n = 0;
            CHECK_OK(rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n));
            CHECK(n == want && buf[0] == "abc"[want - 1]);
        }
        static uint8_t big[RSSL_DTLS_MAX_PLAINTEXT + 1];
        memset(big, 'x', sizeof big);
        echo(conn, big, RSSL_DTLS_MAX_PLAINTEXT);
        CHECK_RESULT(rssl_send(conn, big, sizeof big, TEST_TIMEOUT_MS), RSSL_INVALID_ARGUMENT);
        echo(conn, (const uint8_t *)"still fine", 10);
        CHECK_OK(rssl_close(conn));
    }
    dtls_server_join(&server);
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(server.accepted[i], RSSL_OK);
        CHECK_RESULT(server.ended[i], RSSL_CLOSED); /* our close_notify */
        CHECK(server.datagrams[i] == 5);
        CHECK(server.sizes[i][0] == 1 && server.sizes[i][1] == 2 && server.sizes[i][2] == 3);
        CHECK(server.sizes[i][3] == RSSL_DTLS_MAX_PLAINTEXT);
    }
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* rssl client against openssl s_server -dtls1_2. */
static void s_server(void)
{
    struct child server;
    const char *const args[] = {"-dtls1_2", NULL};
    unsigned short port = start_s_server(&server, args);
    const rssl_config *config = build(dtls_client_builder());
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn));
    CHECK(child_wait_for(&server, "CIPHER is", TEST_TIMEOUT_MS));
    uint16_t version = 0;
    CHECK_OK(rssl_conn_version(conn, &version));
    CHECK(version == RSSL_DTLS1_2);
    CHECK_OK(rssl_send(conn, (const uint8_t *)"from rssl\n", 10, TEST_TIMEOUT_MS));
    CHECK(child_wait_for(&server, "from rssl", TEST_TIMEOUT_MS));
    /* s_server sends each line it reads as one record. */
    child_write(&server, "from s_server\n");
    uint8_t buf[256];
    size_t n = 0;
    CHECK_OK(rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n));
    CHECK(n == 14 && memcmp(buf, "from s_server\n", 14) == 0);
    CHECK_OK(rssl_close(conn));
    /* One connection (-naccept 1): s_server ends with our close_notify. */
    child_read_all(&server, TEST_TIMEOUT_MS);
    CHECK(child_finish(&server, TEST_TIMEOUT_MS) >= 0);
    rssl_config_free(config);
}

/* openssl s_client -dtls1_2 against the rssl server (which echoes). */
static void s_client(void)
{
    const rssl_config *sconfig = build(dtls_server_builder());
    struct dtls_server server;
    dtls_server_start(&server, sconfig, 1);
    struct child client;
    const char *const args[] = {"-dtls1_2", "-CAfile", cert_path("ca.pem"),
                                "-verify_return_error", "-servername", "localhost", NULL};
    start_s_client(&client, server.port, args);
    CHECK(child_wait_for(&client, "Verify return code: 0 (ok)", TEST_TIMEOUT_MS));
    child_write(&client, "echo me\n");
    /* Its line, sent as one datagram, comes back (and s_client prints it). */
    CHECK(child_wait_for(&client, "echo me", TEST_TIMEOUT_MS));
    child_close_input(&client); /* s_client then sends close_notify */
    child_read_all(&client, TEST_TIMEOUT_MS);
    CHECK(strstr(client.log, "DTLSv1.2") != NULL);
    CHECK(child_finish(&client, TEST_TIMEOUT_MS) == 0);
    dtls_server_join(&server);
    CHECK_RESULT(server.accepted[0], RSSL_OK);
    CHECK_RESULT(server.ended[0], RSSL_CLOSED);
    CHECK(server.datagrams[0] == 1 && server.sizes[0][0] == 8);
    rssl_config_free(sconfig);
}

/* A client whose server never answers gives up at its timeout. */
static void connect_timeout(void)
{
    int quiet = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(quiet >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK(bind(quiet, (struct sockaddr *)&addr, len) == 0);
    CHECK(getsockname(quiet, (struct sockaddr *)&addr, &len) == 0);
    const rssl_config *config = build(dtls_client_builder());
    rssl_conn *conn = NULL;
    long long start = now_ms();
    CHECK_RESULT(rssl_connect(config, "127.0.0.1", ntohs(addr.sin_port), 1500, &conn),
                 RSSL_TIMEOUT);
    CHECK(now_ms() - start >= 1500);
    CHECK(conn == NULL);
    /* It sent its ClientHello, and again when its timer (1 s) ran out. */
    uint8_t buf[2048];
    int hellos = 0;
    while (recv(quiet, buf, sizeof buf, MSG_DONTWAIT) > 0)
        hellos++;
    CHECK(hellos >= 2);
    close(quiet);
    rssl_config_free(config);
}

/* ---- Memory connections ---- */

/* Moves `from`'s datagrams to `to` one by one; `drop` (may be NULL)
 * decides which are lost. Returns how many were moved or lost. */
static int shuttle(rssl_conn *from, rssl_conn *to, bool (*drop)(void), int *lost)
{
    int n = 0;
    for (;;) {
        const uint8_t *d = NULL;
        size_t len = 0;
        CHECK_OK(rssl_conn_next_datagram(from, &d, &len));
        if (len == 0)
            return n;
        if (drop != NULL && drop())
            (*lost)++;
        else
            CHECK_OK(rssl_conn_feed(to, d, len));
        CHECK_OK(rssl_conn_consume_output(from, len));
        n++;
    }
}

static void memory_pair(rssl_conn **client, rssl_conn **server)
{
    rssl_config_builder *cb = dtls_client_builder();
    CHECK_OK(rssl_config_builder_set_versions(cb, DTLS12, 1));
    const rssl_config *cconfig = build(cb);
    const rssl_config *sconfig = build(dtls_server_builder());
    CHECK_OK(rssl_conn_new(cconfig, "localhost", client));
    CHECK_OK(rssl_conn_new(sconfig, NULL, server));
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* Runs a memory pair's handshake, passing every datagram on; returns
 * RSSL_OK once both ends are established, or the first failure. */
static rssl_result dtls_memory_handshake(rssl_conn *client, rssl_conn *server)
{
    for (int round = 0; round < 20; round++) {
        rssl_result c = rssl_conn_handshake_step(client);
        if (c != RSSL_OK && c != RSSL_WANT_READ)
            return c;
        shuttle(client, server, NULL, NULL);
        rssl_result s = rssl_conn_handshake_step(server);
        if (s != RSSL_OK && s != RSSL_WANT_READ)
            return s;
        shuttle(server, client, NULL, NULL);
        if (c == RSSL_OK && s == RSSL_OK)
            return RSSL_OK;
    }
    return RSSL_TIMEOUT;
}

/* DTLS 1.2 alone by default, as OTP 25: two default ends meet at 1.2, and
 * a DTLS 1.0 peer is refused in either role. */
static void default_versions(void)
{
    const rssl_config *client_default = build(dtls_client_builder());
    const rssl_config *server_default = build(dtls_server_builder());
    rssl_config_builder *b = dtls_client_builder();
    CHECK_OK(rssl_config_builder_set_versions(b, DTLS10, 1));
    const rssl_config *client_v1 = build(b);
    b = dtls_server_builder();
    CHECK_OK(rssl_config_builder_set_versions(b, DTLS10, 1));
    const rssl_config *server_v1 = build(b);
    const struct {
        const rssl_config *client, *server;
        bool meets;
    } pairs[] = {{client_default, server_default, true},
                 {client_v1, server_default, false},
                 {client_default, server_v1, false}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        rssl_conn *client = NULL, *server = NULL;
        CHECK_OK(rssl_conn_new(pairs[i].client, "localhost", &client));
        CHECK_OK(rssl_conn_new(pairs[i].server, NULL, &server));
        rssl_result r = dtls_memory_handshake(client, server);
        if (pairs[i].meets) {
            CHECK_OK(r);
            uint16_t version = 0;
            CHECK_OK(rssl_conn_version(server, &version));
            CHECK(version == RSSL_DTLS1_2);
        } else {
            CHECK(r != RSSL_OK && r != RSSL_TIMEOUT);
        }
        rssl_conn_free(client);
        rssl_conn_free(server);
    }
    rssl_config_free(client_default);
    rssl_config_free(server_default);
    rssl_config_free(client_v1);
    rssl_config_free(server_v1);
}

static bool step(rssl_conn *conn)
{
    rssl_result r = rssl_conn_handshake_step(conn);
    if (r == RSSL_OK)
        return true;
    CHECK_RESULT(r, RSSL_WANT_READ);
    return false;
}

/* Which datagrams the network loses: of the client's, the third, fifth
 * and seventh (in its second flight and the resent ones); of the
 * server's, its whole first flight. */
static int sent_count;
static bool lossy(void)
{
    int i = sent_count++;
    return i == 2 || i == 4 || i == 6;
}
static int server_flights;
static bool lose_first_server_flight(void)
{
    return server_flights == 0;
}

/* The smaller of two timer values (-1: none). */
static int sooner(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Datagrams lost both ways; the timers bring the handshake through, as an
 * event loop drives them. */
static void memory_loss(void)
{
    rssl_conn *client = NULL, *server = NULL;
    memory_pair(&client, &server);
    int timeout = 0;
    CHECK_OK(rssl_conn_retransmit_timeout(client, &timeout));
    CHECK(timeout == -1); /* nothing sent yet */
    bool cdone = false, sdone = false;
    int lost = 0, retransmits = 0;
    sent_count = 0;
    server_flights = 0;
    long long deadline = now_ms() + 60000;
    while (!(cdone && sdone)) {
        CHECK(now_ms() < deadline);
        cdone = step(client) || cdone;
        int moved = shuttle(client, server, lossy, &lost);
        sdone = step(server) || sdone;
        int back = shuttle(server, client, lose_first_server_flight, &lost);
        if (back > 0)
            server_flights++;
        cdone = step(client) || cdone;
        if (moved > 0 || back > 0 || (cdone && sdone))
            continue;
        /* Nothing moves: wait for the sooner timer, as poll(2) would. */
        int ct = -1, st = -1;
        CHECK_OK(rssl_conn_retransmit_timeout(client, &ct));
        CHECK_OK(rssl_conn_retransmit_timeout(server, &st));
        int wait = sooner(ct, st);
        CHECK(wait >= 0); /* a handshake under way has a timer running */
        CHECK(wait <= 60000);
        CHECK(poll(NULL, 0, wait) == 0);
        CHECK_OK(rssl_conn_handle_retransmit_timeout(client));
        CHECK_OK(rssl_conn_handle_retransmit_timeout(server));
        retransmits++;
    }
    CHECK(lost >= 3);
    CHECK(retransmits >= 1);
    /* Established: the client's timer stops once the server's Finished came. */
    int ct = 0;
    CHECK_OK(rssl_conn_retransmit_timeout(client, &ct));
    CHECK(ct == -1);
    /* Each write is one datagram, each read one record. */
    CHECK_OK(rssl_conn_write(client, (const uint8_t *)"one", 3));
    CHECK_OK(rssl_conn_write(client, (const uint8_t *)"two!", 4));
    CHECK(shuttle(client, server, NULL, NULL) == 2);
    uint8_t buf[64];
    size_t n = 0;
    CHECK_OK(rssl_conn_read(server, buf, sizeof buf, &n));
    CHECK(n == 3 && memcmp(buf, "one", 3) == 0);
    CHECK_OK(rssl_conn_read(server, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "two!", 4) == 0);
    CHECK_RESULT(rssl_conn_read(server, buf, sizeof buf, &n), RSSL_WANT_READ);
    /* A close_notify is a datagram too (after the server's last flight
     * again, if the client's resent Finished reached it: the read above
     * answered that). */
    const uint8_t *d = NULL;
    size_t before = 0;
    CHECK_OK(rssl_conn_next_datagram(server, &d, &before));
    CHECK_OK(rssl_conn_close_notify(server));
    int out = shuttle(server, client, NULL, NULL);
    CHECK(out == 1 || (before > 0 && out > 1));
    CHECK_RESULT(rssl_conn_read(client, buf, sizeof buf, &n), RSSL_CLOSED);
    rssl_conn_free(client);
    rssl_conn_free(server);
}

/* A memory client over a real UDP socket, driven by poll(2) and the
 * timer, against the blocking rssl listener: the first answer is a
 * HelloVerifyRequest (the listener's stateless cookie), then the
 * handshake completes and data echoes. */
static void memory_event_loop(void)
{
    const rssl_config *sconfig = build(dtls_server_builder());
    struct dtls_server server;
    dtls_server_start(&server, sconfig, 1);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons(server.port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    const rssl_config *cconfig = build(dtls_client_builder());
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &conn));
    bool done = false, first = true, echoed = false;
    long long deadline = now_ms() + TEST_TIMEOUT_MS;
    while (!echoed) {
        CHECK(now_ms() < deadline);
        if (!done && step(conn)) {
            done = true;
            CHECK_OK(rssl_conn_write(conn, (const uint8_t *)"event", 5));
        }
        const uint8_t *d = NULL;
        size_t len = 0;
        while (rssl_conn_next_datagram(conn, &d, &len) == RSSL_OK && len > 0) {
            CHECK(send(fd, d, len, 0) == (ssize_t)len);
            CHECK_OK(rssl_conn_consume_output(conn, len));
        }
        int timeout = -1;
        CHECK_OK(rssl_conn_retransmit_timeout(conn, &timeout));
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, timeout < 0 ? 1000 : timeout);
        CHECK(ready >= 0);
        if (ready == 0) {
            if (timeout >= 0)
                CHECK_OK(rssl_conn_handle_retransmit_timeout(conn));
            continue;
        }
        uint8_t buf[RSSL_DTLS_MAX_PLAINTEXT + 512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        CHECK(n > 0);
        if (first) {
            /* A handshake record (22) holding a HelloVerifyRequest (3). */
            CHECK(n > 13 && buf[0] == 22 && buf[13] == 3);
            first = false;
        }
        CHECK_OK(rssl_conn_feed(conn, buf, (size_t)n));
        if (done) {
            size_t got = 0;
            rssl_result r = rssl_conn_read(conn, buf, sizeof buf, &got);
            if (r == RSSL_OK) {
                CHECK(got == 5 && memcmp(buf, "event", 5) == 0);
                echoed = true;
            } else {
                CHECK_RESULT(r, RSSL_WANT_READ);
            }
        }
    }
    CHECK_OK(rssl_conn_close_notify(conn));
    const uint8_t *d = NULL;
    size_t len = 0;
    CHECK_OK(rssl_conn_next_datagram(conn, &d, &len));
    CHECK(len > 0 && send(fd, d, len, 0) == (ssize_t)len);
    CHECK_OK(rssl_conn_consume_output(conn, len));
    dtls_server_join(&server);
    CHECK_RESULT(server.accepted[0], RSSL_OK);
    CHECK_RESULT(server.ended[0], RSSL_CLOSED);
    rssl_conn_free(conn);
    close(fd);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* ---- Memory clients over UDP against the blocking listener ---- */

/* A UDP socket connected to the loopback's `port`. */
static int udp_socket_to(unsigned short port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    return fd;
}

/* Sends the connection's queued datagrams, each `copies` times (the
 * network may double datagrams); returns how many there were. */
static int send_datagrams(rssl_conn *conn, int fd, int copies)
{
    int n = 0;
    const uint8_t *d = NULL;
    size_t len = 0;
    while (rssl_conn_next_datagram(conn, &d, &len) == RSSL_OK && len > 0) {
        for (int i = 0; i < copies; i++)
            CHECK(send(fd, d, len, 0) == (ssize_t)len);
        CHECK_OK(rssl_conn_consume_output(conn, len));
        n++;
    }
    return n;
}

/* Waits for `fd` to have a datagram. */
static void wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, TEST_TIMEOUT_MS) == 1);
}

/* Receives one datagram into `buf`, or handles the connection's
 * retransmission timer if it runs out first (the connection queues its
 * last flight again) and returns 0. */
static size_t receive_or_retransmit(rssl_conn *conn, int fd, uint8_t *buf, size_t size)
{
    int timeout = -1;
    CHECK_OK(rssl_conn_retransmit_timeout(conn, &timeout));
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int ready = poll(&pfd, 1, timeout < 0 ? TEST_TIMEOUT_MS : timeout);
    CHECK(ready >= 0);
    if (ready == 0) {
        CHECK(timeout >= 0); /* no timer: the peer went silent */
        CHECK_OK(rssl_conn_handle_retransmit_timeout(conn));
        return 0;
    }
    ssize_t n = recv(fd, buf, size, 0);
    CHECK(n > 0);
    return (size_t)n;
}

/* Whether a datagram holds a ChangeCipherSpec or an encrypted record
 * (epoch above 0): the start of the server's last flight. */
static bool changes_cipher(const uint8_t *d, size_t len)
{
    for (size_t at = 0; at + 13 <= len; at += 13 + ((size_t)d[at + 11] << 8 | d[at + 12])) {
        if (d[at] == 20 || d[at + 3] != 0 || d[at + 4] != 0)
            return true;
    }
    return false;
}

/* Runs a memory client's handshake over `fd`. With `lose_last_flight`,
 * the server's last flight is lost until the client's timer has sent
 * the client's own last flight again. Returns how many datagrams were lost. */
static int udp_handshake(rssl_conn *conn, int fd, bool lose_last_flight)
{
    static uint8_t buf[RSSL_DTLS_MAX_PLAINTEXT + 512];
    int lost = 0, retransmits = 0, losing_at = -1;
    long long deadline = now_ms() + TEST_TIMEOUT_MS;
    while (!step(conn)) {
        CHECK(now_ms() < deadline);
        send_datagrams(conn, fd, 1);
        size_t n = receive_or_retransmit(conn, fd, buf, sizeof buf);
        if (n == 0) {
            retransmits++;
            continue;
        }
        if (lose_last_flight &&
            (losing_at >= 0 ? retransmits == losing_at : changes_cipher(buf, n))) {
            losing_at = retransmits;
            lost++;
            continue;
        }
        CHECK_OK(rssl_conn_feed(conn, buf, n));
    }
    send_datagrams(conn, fd, 1);
    return lost;
}

/* Sends `msg` from an established memory client and expects it back. */
static void udp_echo(rssl_conn *conn, int fd, const char *msg)
{
    static uint8_t buf[RSSL_DTLS_MAX_PLAINTEXT + 512];
    size_t len = strlen(msg);
    CHECK_OK(rssl_conn_write(conn, (const uint8_t *)msg, len));
    CHECK(send_datagrams(conn, fd, 1) == 1);
    long long deadline = now_ms() + TEST_TIMEOUT_MS;
    for (;;) {
        CHECK(now_ms() < deadline);
        size_t n = receive_or_retransmit(conn, fd, buf, sizeof buf);
        CHECK(n > 0);
        CHECK_OK(rssl_conn_feed(conn, buf, n));
        size_t got = 0;
        rssl_result r = rssl_conn_read(conn, buf, sizeof buf, &got);
        if (r == RSSL_OK) {
            CHECK(got == len && memcmp(buf, msg, len) == 0);
            return;
        }
        CHECK_RESULT(r, RSSL_WANT_READ);
    }
}

static void udp_close_notify(rssl_conn *conn, int fd)
{
    CHECK_OK(rssl_conn_close_notify(conn));
    CHECK(send_datagrams(conn, fd, 1) == 1);
}

/* The blocking server of `duplicate_hello`: two accepts in a row, then
 * one echo on each, then reads until each peer closes. */
struct two_accepts {
    pthread_t thread;
    rssl_listener *listener;
    const rssl_config *config;
    rssl_result accepted[2];
    rssl_result echoed[2];
    rssl_result ended[2];
};

static void *accept_two(void *arg)
{
    struct two_accepts *s = arg;
    rssl_conn *conns[2] = {NULL, NULL};
    static uint8_t buf[RSSL_DTLS_MAX_PLAINTEXT];
    for (int i = 0; i < 2; i++)
        s->accepted[i] = rssl_accept(s->listener, s->config, TEST_TIMEOUT_MS, &conns[i]);
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        if (conns[i] == NULL)
            continue;
        s->echoed[i] = rssl_recv(conns[i], buf, sizeof buf, TEST_TIMEOUT_MS, &n);
        if (s->echoed[i] == RSSL_OK)
            s->echoed[i] = rssl_send(conns[i], buf, n, TEST_TIMEOUT_MS);
    }
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        if (conns[i] == NULL)
            continue;
        do
            s->ended[i] = rssl_recv(conns[i], buf, sizeof buf, TEST_TIMEOUT_MS, &n);
        while (s->ended[i] == RSSL_OK);
        rssl_close(conns[i]);
    }
    return NULL;
}

/* The network doubles the ClientHello that carries the cookie, and both
 * copies wait at the listener: the first gets the peer its socket, the
 * second is a copy of a handshake under way, not a new peer (a second
 * socket connected to the same peer would take the peer's datagrams
 * from the first). The next accept gets the next peer. */
static void duplicate_hello(void)
{
    const rssl_config *sconfig = build(dtls_server_builder());
    const rssl_config *cconfig = build(dtls_client_builder());
    struct two_accepts server = {.config = sconfig};
    unsigned short port = 0;
    CHECK_OK(rssl_dtls_listen("127.0.0.1", 0, &server.listener));
    CHECK_OK(rssl_listener_port(server.listener, &port));
    int lfd = -1;
    CHECK_OK(rssl_listener_fd(server.listener, &lfd));
    int fd = udp_socket_to(port);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &conn));
    /* The first ClientHello gets a HelloVerifyRequest: nobody is
     * accepted yet (timeout 0: the datagram is already there). */
    CHECK(!step(conn));
    CHECK(send_datagrams(conn, fd, 1) == 1);
    wait_readable(lfd);
    rssl_conn *none = NULL;
    CHECK_RESULT(rssl_accept(server.listener, sconfig, 0, &none), RSSL_TIMEOUT);
    CHECK(none == NULL);
    uint8_t buf[2048];
    wait_readable(fd);
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    CHECK(n > 13 && buf[0] == 22 && buf[13] == 3);
    CHECK_OK(rssl_conn_feed(conn, buf, (size_t)n));
    /* The ClientHello with the cookie, twice, before anyone reads. */
    CHECK(!step(conn));
    CHECK(send_datagrams(conn, fd, 2) == 1);
    wait_readable(lfd);
    CHECK(pthread_create(&server.thread, NULL, accept_two, &server) == 0);
    CHECK(udp_handshake(conn, fd, false) == 0);
    /* A second peer: the server's second accept is for it. */
    rssl_conn *other = NULL;
    CHECK_OK(rssl_connect(cconfig, "localhost", port, TEST_TIMEOUT_MS, &other));
    /* Both peers reach their own connection. */
    udp_echo(conn, fd, "first");
    echo(other, (const uint8_t *)"second", 6);
    udp_close_notify(conn, fd);
    rssl_close(other);
    CHECK(pthread_join(server.thread, NULL) == 0);
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(server.accepted[i], RSSL_OK);
        CHECK_RESULT(server.echoed[i], RSSL_OK);
        CHECK_RESULT(server.ended[i], RSSL_CLOSED);
    }
    rssl_listener_free(server.listener);
    rssl_conn_free(conn);
    close(fd);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* The server's last flight is lost: the client's timer sends the
 * client's last flight again, and the server, already established and
 * blocked in rssl_recv, answers it with its own at once. */
static void lost_last_flight(void)
{
    const rssl_config *sconfig = build(dtls_server_builder());
    rssl_config_builder *cb = dtls_client_builder();
    CHECK_OK(rssl_config_builder_set_versions(cb, DTLS12, 1));
    const rssl_config *cconfig = build(cb);
    struct dtls_server server;
    dtls_server_start(&server, sconfig, 1);
    int fd = udp_socket_to(server.port);
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &conn));
    CHECK(udp_handshake(conn, fd, true) >= 1);
    udp_echo(conn, fd, "after the loss");
    udp_close_notify(conn, fd);
    dtls_server_join(&server);
    CHECK_RESULT(server.accepted[0], RSSL_OK);
    CHECK_RESULT(server.ended[0], RSSL_CLOSED);
    CHECK(server.datagrams[0] == 1);
    rssl_conn_free(conn);
    close(fd);
    rssl_config_free(cconfig);
    rssl_config_free(sconfig);
}

/* ---- Bad inputs ---- */

static void bad_config(void)
{
    const uint16_t tls12[] = {RSSL_TLS1_2};
    const uint16_t mixed[] = {RSSL_DTLS1_2, RSSL_TLS1_2};
    CHECK_RESULT(rssl_config_builder_set_protocol(NULL, RSSL_PROTOCOL_DTLS), RSSL_NULL_PARAMETER);
    rssl_config_builder *b = client_builder(NULL);
    CHECK_RESULT(rssl_config_builder_set_protocol(b, 99), RSSL_INVALID_ARGUMENT);
    /* DTLS versions need the DTLS protocol, and the other way round. */
    CHECK_RESULT(rssl_config_builder_set_versions(b, DTLS12, 1), RSSL_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "RSSL_PROTOCOL_DTLS") != NULL);
    CHECK_OK(rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS));
    CHECK_RESULT(rssl_config_builder_set_versions(b, tls12, 1), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_versions(b, mixed, 2), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_version_range(b, RSSL_TLS1_2, RSSL_DTLS1_2),
                 RSSL_INVALID_ARGUMENT);
    CHECK_OK(rssl_config_builder_set_version_range(b, RSSL_DTLS1_0, RSSL_DTLS1_2));
    /* TLS 1.3 options are refused on a DTLS builder... */
    CHECK_RESULT(rssl_config_builder_set_early_data(b, 100), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_config_builder_set_session_tickets(b, 1), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_config_builder_set_manual_tickets(b, true), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_config_builder_set_stateful_tickets(b, true), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_config_builder_set_anti_replay(b, 10, 5, 72985), RSSL_INVALID_OPTION);
    CHECK_RESULT(rssl_config_builder_set_ciphersuites(b, "TLS_AES_128_GCM_SHA256"),
                 RSSL_INVALID_OPTION);
    CHECK(strstr(last_error(), "DTLS") != NULL);
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_free(config);
    rssl_config_builder_free(b);
    /* ...and at build when they were set before the protocol. */
    b = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_session_tickets(b, 2));
    CHECK_OK(rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS));
    config = NULL;
    CHECK_RESULT(rssl_config_builder_build(b, &config), RSSL_INVALID_OPTION);
    CHECK(config == NULL);
    CHECK(strstr(last_error(), "rssl_config_builder_set_session_tickets") != NULL);
    /* Back to TLS: fine again, with TLS versions. */
    CHECK_OK(rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_TLS));
    CHECK_RESULT(rssl_config_builder_set_versions(b, DTLS12, 1), RSSL_INVALID_ARGUMENT);
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_free(config);
    rssl_config_builder_free(b);
}

static void bad_calls(void)
{
    const rssl_config *dtls_client = build(dtls_client_builder());
    const rssl_config *dtls_server = build(dtls_server_builder());
    const rssl_config *tls_client = build(client_builder(NULL));
    const rssl_config *tls_server = build(server_builder("server.pem", "server.key"));
    int timeout = 0;
    const uint8_t *d = NULL;
    size_t len = 0;

    /* NULLs. */
    CHECK_RESULT(rssl_dtls_listen(NULL, 0, NULL), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_next_datagram(NULL, &d, &len), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_retransmit_timeout(NULL, &timeout), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_handle_retransmit_timeout(NULL), RSSL_NULL_PARAMETER);

    /* Listeners and configurations of the other protocol. */
    rssl_listener *udp = NULL, *tcp = NULL;
    CHECK_OK(rssl_dtls_listen("127.0.0.1", 0, &udp));
    CHECK_OK(rssl_listen("127.0.0.1", 0, 4, &tcp));
    rssl_conn *conn = NULL;
    CHECK_RESULT(rssl_accept(udp, tls_server, 0, &conn), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_accept(tcp, dtls_server, 0, &conn), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_accept(udp, dtls_client, 0, &conn), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_accept(udp, dtls_server, 0, &conn), RSSL_TIMEOUT);
    CHECK(conn == NULL);
    rssl_listener_free(udp);
    rssl_listener_free(tcp);

    /* Sockets of the other kind (the caller keeps them). */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_RESULT(rssl_conn_from_fd(dtls_client, sv[0], "localhost", &conn), RSSL_INVALID_ARGUMENT);
    int dgram = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_RESULT(rssl_conn_from_fd(tls_client, dgram, "localhost", &conn), RSSL_INVALID_ARGUMENT);
    close(sv[0]);
    close(sv[1]);
    close(dgram);

    /* DTLS-only calls on a TLS memory connection, and on a socket one. */
    rssl_conn *tls = NULL;
    CHECK_OK(rssl_conn_new(tls_client, "localhost", &tls));
    CHECK_RESULT(rssl_conn_next_datagram(tls, &d, &len), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_retransmit_timeout(tls, &timeout), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_handle_retransmit_timeout(tls), RSSL_INVALID_STATE);
    rssl_conn_free(tls);
    dgram = socket(AF_INET, SOCK_DGRAM, 0);
    rssl_conn *sock = NULL;
    CHECK_OK(rssl_conn_from_fd(dtls_client, dgram, "localhost", &sock));
    CHECK_RESULT(rssl_conn_retransmit_timeout(sock, &timeout), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_next_datagram(sock, &d, &len), RSSL_INVALID_STATE);
    rssl_conn_free(sock); /* closes dgram */

    /* Stream calls on a DTLS memory connection. */
    rssl_conn *client = NULL, *server = NULL;
    memory_pair(&client, &server);
    CHECK_RESULT(rssl_conn_handshake_step(client), RSSL_WANT_READ);
    CHECK_RESULT(rssl_conn_output(client, &d, &len), RSSL_INVALID_STATE);
    uint8_t buf[64];
    size_t n = 0;
    CHECK_RESULT(rssl_conn_take_output(client, buf, sizeof buf, &n), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_feed_eof(client), RSSL_INVALID_STATE);
    CHECK_OK(rssl_conn_next_datagram(client, &d, &len));
    CHECK(len > 0);
    CHECK_RESULT(rssl_conn_consume_output(client, len - 1), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_conn_consume_output(client, len + 1), RSSL_INVALID_ARGUMENT);
    CHECK_OK(rssl_conn_retransmit_timeout(client, &timeout));
    CHECK(timeout >= 0 && timeout <= 1000); /* OpenSSL starts at 1 s */
    /* Called before it is due, the timer does nothing. */
    CHECK_OK(rssl_conn_handle_retransmit_timeout(client));
    CHECK_OK(rssl_conn_next_datagram(client, &d, &len));
    CHECK(len > 0);
    CHECK_OK(rssl_conn_consume_output(client, len));
    CHECK_OK(rssl_conn_next_datagram(client, &d, &len));
    CHECK(len == 0);
    rssl_conn_free(client);
    rssl_conn_free(server);

    /* Established: TLS-only calls, and datagrams too large. */
    memory_pair(&client, &server);
    bool cdone = false, sdone = false;
    for (int i = 0; i < 10 && !(cdone && sdone); i++) {
        cdone = step(client) || cdone;
        shuttle(client, server, NULL, NULL);
        sdone = step(server) || sdone;
        shuttle(server, client, NULL, NULL);
    }
    CHECK(cdone && sdone);
    static uint8_t big[RSSL_DTLS_MAX_PLAINTEXT + 1];
    CHECK_RESULT(rssl_conn_write(client, big, sizeof big), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_conn_renegotiate(client), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_update_keys(client, false), RSSL_INVALID_STATE);
    CHECK_RESULT(rssl_conn_set_early_data(client, big, 1), RSSL_INVALID_STATE);
    CHECK_OK(rssl_conn_write(client, big, RSSL_DTLS_MAX_PLAINTEXT));
    CHECK(shuttle(client, server, NULL, NULL) == 1);
    static uint8_t got[RSSL_DTLS_MAX_PLAINTEXT];
    CHECK_OK(rssl_conn_read(server, got, sizeof got, &n));
    CHECK(n == RSSL_DTLS_MAX_PLAINTEXT);
    rssl_conn_free(client);
    rssl_conn_free(server);

    rssl_config_free(dtls_client);
    rssl_config_free(dtls_server);
    rssl_config_free(tls_client);
    rssl_config_free(tls_server);
}

static const struct test_case TESTS[] = {
    {"loopback", loopback},
    {"s_server", s_server},
    {"s_client", s_client},
    {"connect_timeout", connect_timeout},
    {"memory_loss", memory_loss},
    {"default_versions", default_versions},
    {"memory_event_loop", memory_event_loop},
    {"duplicate_hello", duplicate_hello},
    {"lost_last_flight", lost_last_flight},
    {"bad_config", bad_config},
    {"bad_calls", bad_calls},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
