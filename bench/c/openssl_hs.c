/* OpenSSL alone, no sockets, no threads: both ends of a connection in one
 * thread, talking through two memory BIOs. The floor rssl's figures are
 * compared with (bench/rssl_bench.erl runs it in the same `make bench`).
 *
 *   openssl_hs CERT KEY 1.3|1.2 hs SECS
 *       sequential full handshakes for SECS seconds, each pair made, run
 *       to completion and freed; then, for as long, the same over
 *       loopback TCP: a client thread connects, handshakes and closes, a
 *       server thread accepts, handshakes and closes (blocking sockets,
 *       the least any TLS over sockets does between two threads);
 *       then, for as long, both ends in this one thread over loopback TCP
 *       (non-blocking sockets: the system calls and the kernel's TCP, no
 *       thread to wake); prints "RSSL_BENCH_C rate=<handshakes/s>
 *       n=<handshakes> sock_rate=<handshakes/s over TCP, two threads>
 *       sock_n=<handshakes> sock1_rate=<handshakes/s over TCP, one
 *       thread> sock1_n=<handshakes>"
 *   openssl_hs CERT KEY 1.3|1.2 memory N
 *       N pairs handshaken and kept idle, each with two new, empty
 *       memory BIOs (the used ones keep their capacity); prints
 *       "RSSL_BENCH_C heap_kib=<malloc'd KiB per pair> rss_kib=<VmRSS
 *       growth KiB per pair> pairs=N" (mallinfo2's in-use bytes: what
 *       OpenSSL itself holds for an idle pair)
 *   openssl_hs CERT KEY 1.3|1.2 records N
 *       one pair handshaken, then N messages of SIZE (64) bytes each
 *       written by one end (one record each) and read by the other,
 *       alternating directions as a request and its reply; prints
 *       "RSSL_BENCH_C record_us=<us per record, written and read>": what
 *       OpenSSL's record layer costs a small message, each way, the part
 *       of a TLS round trip no transport can save
 *   openssl_hs CERT KEY 1.3|1.2 sites N
 *       as memory, but every OpenSSL allocation is recorded (its file and
 *       line, through CRYPTO_set_mem_functions); prints the bytes per idle
 *       pair each allocation site still holds, largest first, as lines
 *       "RSSL_BENCH_C site=<file:line> bytes=<per pair> allocs=<per pair>"
 *       and a total: where OpenSSL's own floor for a connection goes
 *
 * Both ends are configured as rssl configures them by default: the CTX
 * with SSL_MODE_RELEASE_BUFFERS, no session cache, no tickets, the client
 * verify_none; the server's certificate and key are the files given (the
 * bench's ECDSA P-256 pair). Exit status 0 unless a handshake failed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "plain_client.h"
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Live OpenSSL allocations, by address (open addressing; a freed entry
 * keeps its slot with size 0), for the sites mode. */
#define SITES_CAP (1 << 21)
struct site_alloc {
    void *ptr;
    const char *file;
    int line;
    size_t size;
};
static struct site_alloc *live;
static int recording;

static size_t slot_of(void *ptr)
{
    return (size_t)(((uintptr_t)ptr >> 4) * 2654435761u) & (SITES_CAP - 1);
}

static void site_put(void *ptr, size_t size, const char *file, int line)
{
    if (!ptr || !recording)
        return;
    size_t i = slot_of(ptr);
    while (live[i].ptr && live[i].ptr != ptr)
        i = (i + 1) & (SITES_CAP - 1);
    live[i] = (struct site_alloc){ptr, file, line, size};
}

static void site_drop(void *ptr)
{
    if (!ptr)
        return;
    for (size_t i = slot_of(ptr); live[i].ptr; i = (i + 1) & (SITES_CAP - 1))
        if (live[i].ptr == ptr) {
            live[i].size = 0;
            live[i].file = NULL;
            return;
        }
}

static void *site_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n);
    site_put(p, n, file, line);
    return p;
}

static void *site_realloc(void *old, size_t n, const char *file, int line)
{
    site_drop(old);
    void *p = realloc(old, n);
    site_put(p, n, file, line);
    return p;
}

static void site_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    site_drop(p);
    free(p);
}

struct pair {
    SSL *client, *server;
};

static void die(const char *what)
{
    fprintf(stderr, "openssl_hs: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL_CTX *make_ctx(int server, int version, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0);
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            die("certificate or key");
    }
    return ctx;
}

/* A client and a server joined by two memory BIOs, one per direction;
 * each BIO is read by one end and written by the other. */
static struct pair pair_new(SSL_CTX *cctx, SSL_CTX *sctx)
{
    struct pair p = {SSL_new(cctx), SSL_new(sctx)};
    BIO *to_server = BIO_new(BIO_s_mem()), *to_client = BIO_new(BIO_s_mem());
    if (!p.client || !p.server || !to_server || !to_client)
        die("SSL_new or BIO_new");
    BIO_up_ref(to_server);
    BIO_up_ref(to_client);
    SSL_set_bio(p.client, to_client, to_server);
    SSL_set_bio(p.server, to_server, to_client);
    SSL_set_connect_state(p.client);
    SSL_set_accept_state(p.server);
    return p;
}

static int step(SSL *ssl)
{
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ)
        return 0;
    die("handshake failed");
    return -1;
}

/* Alternates the two ends until both are done, then lets each read once
 * (any post-handshake message is processed, the memory BIOs are empty). */
static void handshake(struct pair *p)
{
    int client_done = 0, server_done = 0;
    for (int rounds = 0; !(client_done && server_done); rounds++) {
        if (rounds > 20)
            die("handshake does not finish");
        client_done = step(p->client);
        server_done = step(p->server);
    }
    char buf[16];
    SSL_read(p->client, buf, sizeof buf);
    SSL_read(p->server, buf, sizeof buf);
    ERR_clear_error();
}

/* New, empty memory BIOs for an idle pair: the used ones keep the largest
 * flight's capacity, which is the transport's memory, not OpenSSL's. */
static void fresh_bios(struct pair *p)
{
    BIO *to_server = BIO_new(BIO_s_mem()), *to_client = BIO_new(BIO_s_mem());
    if (!to_server || !to_client)
        die("BIO_new");
    BIO_up_ref(to_server);
    BIO_up_ref(to_client);
    SSL_set_bio(p->client, to_client, to_server);
    SSL_set_bio(p->server, to_server, to_client);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* The server thread of the socket handshakes: accepts until the client
 * connects with nothing to say (its stop signal: a handshake that fails
 * at once). */
struct sock_server {
    SSL_CTX *ctx;
    int lfd;
};

static void *sock_server(void *arg)
{
    struct sock_server *srv = arg;
    for (;;) {
        int fd = accept(srv->lfd, NULL, NULL);
        if (fd < 0)
            die("accept");
        SSL *ssl = SSL_new(srv->ctx);
        SSL_set_fd(ssl, fd);
        int ok = SSL_accept(ssl) == 1;
        if (ok)
            SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
        if (!ok)
            return NULL;
    }
}

/* A socket connected (or, with SOCK_NONBLOCK in flags, connecting) to
 * the loopback port. */
static int sock_connect(uint16_t port, int flags)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS))
        die("connect");
    return fd;
}

/* A socket listening on a loopback port of the system's choosing. */
static int sock_listen(int flags, uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM | flags, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 128) ||
        getsockname(lfd, (struct sockaddr *)&a, &len))
        die("listen");
    *port = ntohs(a.sin_port);
    return lfd;
}

static void sock_handshake(SSL_CTX *cctx, uint16_t port)
{
    if (plain_client_handshake(cctx, sock_connect(port, 0)))
        die("SSL_connect");
}

/* Sequential handshakes over loopback TCP for SECS seconds: handshakes/s. */
static double socket_handshakes(SSL_CTX *cctx, SSL_CTX *sctx, double secs, long *count)
{
    uint16_t port;
    int lfd = sock_listen(0, &port);
    struct sock_server srv = {sctx, lfd};
    pthread_t server;
    if (pthread_create(&server, NULL, sock_server, &srv))
        die("pthread_create");
    sock_handshake(cctx, port); /* untimed, as the first memory pair */
    long n = 0;
    double start = now(), end = start + secs, t;
    while ((t = now()) < end) {
        sock_handshake(cctx, port);
        n++;
    }
    close(sock_connect(port, 0)); /* the stop signal */
    pthread_join(server, NULL);
    close(lfd);
    *count = n;
    return n / (t - start);
}

/* A handshake step on a non-blocking socket: 1 done, 0 to be called
 * again once the peer has moved. */
static int step_nonblocking(SSL *ssl)
{
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    die("handshake failed");
    return -1;
}

/* One connection over loopback TCP with both ends in this thread: the
 * client connects (non-blocking), the server accepts, the two ends take
 * turns until both are done, then each sends close_notify, as the
 * threads of socket_handshakes do. */
static void sock1_handshake(SSL_CTX *cctx, SSL_CTX *sctx, int lfd, uint16_t port)
{
    int cfd = sock_connect(port, SOCK_NONBLOCK);
    int sfd;
    while ((sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
        if (errno != EAGAIN && errno != EINTR)
            die("accept");
    SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
    if (!client || !server || !SSL_set_fd(client, cfd) || !SSL_set_fd(server, sfd))
        die("SSL_new or SSL_set_fd");
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    int client_done = 0, server_done = 0;
    for (long turns = 0; !(client_done && server_done); turns++) {
        if (turns > 100000)
            die("handshake does not finish");
        if (!client_done)
            client_done = step_nonblocking(client);
        if (!server_done)
            server_done = step_nonblocking(server);
    }
    SSL_shutdown(client);
    SSL_shutdown(server);
    SSL_free(client);
    SSL_free(server);
    close(cfd);
    close(sfd);
    ERR_clear_error();
}

/* Sequential handshakes for SECS seconds, both ends in this thread over
 * loopback TCP: handshakes/s. */
static double socket_handshakes_one_thread(SSL_CTX *cctx, SSL_CTX *sctx, double secs, long *count)
{
    uint16_t port;
    int lfd = sock_listen(SOCK_NONBLOCK, &port);
    sock1_handshake(cctx, sctx, lfd, port); /* untimed, as the others' first */
    long n = 0;
    double start = now(), end = start + secs, t;
    while ((t = now()) < end) {
        sock1_handshake(cctx, sctx, lfd, port);
        n++;
    }
    close(lfd);
    *count = n;
    return n / (t - start);
}

static void handshakes(SSL_CTX *cctx, SSL_CTX *sctx, double secs)
{
    /* One first, untimed: lazy initialisation (providers, tables). */
    struct pair p = pair_new(cctx, sctx);
    handshake(&p);
    SSL_free(p.client);
    SSL_free(p.server);
    long n = 0;
    double start = now(), end = start + secs, t;
    while ((t = now()) < end) {
        p = pair_new(cctx, sctx);
        handshake(&p);
        SSL_free(p.client);
        SSL_free(p.server);
        n++;
    }
    double rate = n / (t - start);
    long sock_n = 0;
    double sock_rate = socket_handshakes(cctx, sctx, secs, &sock_n);
    long sock1_n = 0;
    double sock1_rate = socket_handshakes_one_thread(cctx, sctx, secs, &sock1_n);
    printf("RSSL_BENCH_C rate=%.1f n=%ld sock_rate=%.1f sock_n=%ld sock1_rate=%.1f sock1_n=%ld\n",
           rate, n, sock_rate, sock_n, sock1_rate, sock1_n);
}

static void transfer(SSL *from, SSL *to, const char *msg, int len)
{
    char buf[256];
    if (SSL_write(from, msg, len) != len || SSL_read(to, buf, sizeof buf) != len)
        die("record");
}

static void records(SSL_CTX *cctx, SSL_CTX *sctx, long n)
{
    enum { SIZE = 64 };
    char msg[SIZE];
    memset(msg, 'x', sizeof msg);
    struct pair p = pair_new(cctx, sctx);
    handshake(&p);
    for (int i = 0; i < 1000; i++)
        transfer(p.client, p.server, msg, SIZE);
    double start = now();
    for (long i = 0; i < n; i++) {
        transfer(p.client, p.server, msg, SIZE);
        transfer(p.server, p.client, msg, SIZE);
    }
    double us = (now() - start) * 1e6 / (2.0 * n);
    printf("RSSL_BENCH_C record_us=%.3f n=%ld\n", us, 2 * n);
    SSL_free(p.client);
    SSL_free(p.server);
}

static void memory(SSL_CTX *cctx, SSL_CTX *sctx, int n)
{
    struct pair *pairs = calloc((size_t)n + 1, sizeof *pairs);
    if (!pairs)
        die("calloc");
    pairs[n] = pair_new(cctx, sctx);
    handshake(&pairs[n]);
    fresh_bios(&pairs[n]);
    size_t heap0 = mallinfo2().uordblks;
    long rss0 = rss_kib();
    for (int i = 0; i < n; i++) {
        pairs[i] = pair_new(cctx, sctx);
        handshake(&pairs[i]);
        fresh_bios(&pairs[i]);
    }
    size_t heap1 = mallinfo2().uordblks;
    long rss1 = rss_kib();
    printf("RSSL_BENCH_C heap_kib=%.2f rss_kib=%.2f pairs=%d\n",
           (double)(heap1 - heap0) / 1024.0 / n, (double)(rss1 - rss0) / n, n);
    for (int i = 0; i <= n; i++) {
        SSL_free(pairs[i].client);
        SSL_free(pairs[i].server);
    }
    free(pairs);
}

struct site_total {
    const char *file;
    int line;
    size_t bytes, allocs;
};

static int by_bytes(const void *a, const void *b)
{
    const struct site_total *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

/* N idle pairs made while recording; what each site still holds. */
static void sites(SSL_CTX *cctx, SSL_CTX *sctx, int n)
{
    struct pair *pairs = calloc((size_t)n, sizeof *pairs);
    struct site_total *totals = calloc(4096, sizeof *totals);
    size_t kinds = 0, bytes = 0;
    if (!pairs || !totals)
        die("calloc");
    struct pair warm = pair_new(cctx, sctx);
    handshake(&warm);
    recording = 1;
    for (int i = 0; i < n; i++) {
        pairs[i] = pair_new(cctx, sctx);
        handshake(&pairs[i]);
        fresh_bios(&pairs[i]);
    }
    recording = 0;
    for (size_t i = 0; i < SITES_CAP; i++) {
        struct site_alloc *a = &live[i];
        if (!a->ptr || !a->size)
            continue;
        size_t k = 0;
        while (k < kinds && !(totals[k].line == a->line && strcmp(totals[k].file, a->file) == 0))
            k++;
        if (k == kinds) {
            if (kinds == 4096)
                die("too many allocation sites");
            totals[kinds++] = (struct site_total){a->file, a->line, 0, 0};
        }
        totals[k].bytes += a->size;
        totals[k].allocs++;
        bytes += a->size;
    }
    qsort(totals, kinds, sizeof *totals, by_bytes);
    for (size_t k = 0; k < kinds && totals[k].bytes >= (size_t)n * 64; k++)
        printf("RSSL_BENCH_C site=%s:%d bytes=%.0f allocs=%.1f\n", totals[k].file,
               totals[k].line, (double)totals[k].bytes / n, (double)totals[k].allocs / n);
    printf("RSSL_BENCH_C sites_total_kib=%.2f pairs=%d (requested bytes, without malloc's "
           "own overhead)\n", (double)bytes / 1024.0 / n, n);
    for (int i = 0; i < n; i++) {
        SSL_free(pairs[i].client);
        SSL_free(pairs[i].server);
    }
    SSL_free(warm.client);
    SSL_free(warm.server);
    free(pairs);
    free(totals);
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[3], "1.3") && strcmp(argv[3], "1.2")) ||
        (strcmp(argv[4], "hs") && strcmp(argv[4], "memory") && strcmp(argv[4], "sites") &&
         strcmp(argv[4], "records"))) {
        fprintf(stderr,
                "usage: openssl_hs CERT KEY 1.3|1.2 hs SECS | memory PAIRS | sites PAIRS | records N\n");
        return 2;
    }
    if (strcmp(argv[4], "sites") == 0) {
        /* Before OpenSSL allocates anything. */
        live = calloc(SITES_CAP, sizeof *live);
        if (!live || !CRYPTO_set_mem_functions(site_malloc, site_realloc, site_free))
            die("CRYPTO_set_mem_functions");
    }
    int version = strcmp(argv[3], "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX *cctx = make_ctx(0, version, argv[1], argv[2]);
    SSL_CTX *sctx = make_ctx(1, version, argv[1], argv[2]);
    if (strcmp(argv[4], "hs") == 0)
        handshakes(cctx, sctx, atof(argv[5]));
    else if (strcmp(argv[4], "memory") == 0)
        memory(cctx, sctx, atoi(argv[5]));
    else if (strcmp(argv[4], "records") == 0)
        records(cctx, sctx, atol(argv[5]));
    else
        sites(cctx, sctx, atoi(argv[5]));
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}
