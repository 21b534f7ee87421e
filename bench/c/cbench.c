/* C-level benchmark: rssl's C API against a minimal program written
 * directly against OpenSSL, the same workloads in one process, over
 * loopback, client and server in two threads:
 *
 *   bulk        one connection, client -> server, 64 KiB writes, the
 *               server reads into a 64 KiB buffer; MB/s (10^6 bytes/s)
 *               from the first write to the server's 4-byte "done"
 *   handshakes  sequential full handshakes per second: connect with the
 *               handshake, close (close_notify without waiting for the
 *               peer's); the server thread accepts, handshakes, closes
 *
 * TLS 1.3 and TLS 1.2, ECDSA P-256 self-signed certificate made at start
 * with the openssl CLI, no peer verification, no session reuse or tickets,
 * socket options left at their defaults (Nagle on) on both sides. Each
 * figure is the median of RUNS runs, the two implementations alternating,
 * so that both see the same noise.
 *
 *   cbench [MIB [HS_SECS [RUNS [bulk|hs]]]]   (defaults 512 MiB, 2 s, 5, both)
 *
 * Environment: RSSL_BENCH_MB, RSSL_BENCH_HS_SECS, RSSL_BENCH_RUNS (the
 * arguments win); RSSL_BENCH_C_IMPL=rssl or openssl runs one side only
 * (for profiling). Exit status 0 unless a run failed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <rssl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "plain_client.h"

#define CHUNK 65536
#define TIMEOUT_MS 30000

enum impl { IMPL_OPENSSL, IMPL_RSSL };
static const char *impl_name[] = {"openssl", "rssl"};

static char certfile[256], keyfile[256];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "cbench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void rssl_die(const char *what, rssl_result r)
{
    char text[512] = "";
    rssl_error_string(text, sizeof text, NULL);
    fprintf(stderr, "cbench: %s: %s: %s\n", what, rssl_result_string(r), text);
    exit(1);
}

/* ---- plain OpenSSL ---------------------------------------------------- */

static SSL_CTX *ossl_ctx(int server, int version)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0);
        if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1)
            die("certificate");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

static int tcp_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 128) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        die("listen");
    *port = ntohs(a.sin_port);
    return fd;
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a))
        die("connect");
    return fd;
}

static int ssl_read_full(SSL *ssl, unsigned char *buf, int n)
{
    int got = 0;
    while (got < n) {
        int r = SSL_read(ssl, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += r;
    }
    return 0;
}

/* ---- one workload, two implementations --------------------------------- */

struct run {
    enum impl impl;
    int version;       /* TLS1_3_VERSION, TLS1_2_VERSION */
    size_t total;      /* bulk bytes */
    double secs;       /* handshake run length */
    /* set up by the main thread */
    int lfd;
    SSL_CTX *sctx;
    rssl_listener *listener;
    const rssl_config *scfg;
    atomic_int stop;
    long server_failures;
};

static void *bulk_server(void *arg)
{
    struct run *r = arg;
    unsigned char *buf = malloc(CHUNK);
    size_t left = r->total;
    if (r->impl == IMPL_OPENSSL) {
        int fd = accept(r->lfd, NULL, NULL);
        SSL *ssl = SSL_new(r->sctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1)
            die("SSL_accept");
        while (left > 0) {
            int n = SSL_read(ssl, buf, CHUNK);
            if (n <= 0)
                die("SSL_read");
            left -= (size_t)n < left ? (size_t)n : left;
        }
        if (SSL_write(ssl, "done", 4) != 4)
            die("SSL_write done");
        SSL_read(ssl, buf, CHUNK); /* the client's close_notify */
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    } else {
        rssl_conn *c = NULL;
        rssl_result res = rssl_accept(r->listener, r->scfg, TIMEOUT_MS, &c);
        if (res != RSSL_OK)
            rssl_die("rssl_accept", res);
        while (left > 0) {
            size_t n = 0;
            if ((res = rssl_recv(c, buf, CHUNK, TIMEOUT_MS, &n)) != RSSL_OK)
                rssl_die("rssl_recv", res);
            left -= n < left ? n : left;
        }
        if ((res = rssl_send(c, (const uint8_t *)"done", 4, TIMEOUT_MS)) != RSSL_OK)
            rssl_die("rssl_send done", res);
        size_t n = 0;
        rssl_recv(c, buf, CHUNK, TIMEOUT_MS, &n); /* the client's close_notify */
        rssl_close(c);
    }
    free(buf);
    return NULL;
}

static double bulk(struct run *r, const rssl_config *ccfg, SSL_CTX *cctx, uint16_t port,
                   char *cipher, size_t cipher_len)
{
    pthread_t t;
    unsigned char *chunk = malloc(CHUNK), done[4];
    size_t chunks = r->total / CHUNK;
    double t0, t1;
    for (size_t i = 0; i < CHUNK; i++)
        chunk[i] = (unsigned char)(i * 7919u >> 3);
    pthread_create(&t, NULL, bulk_server, r);
    if (r->impl == IMPL_OPENSSL) {
        int fd = tcp_connect(port);
        SSL *ssl = SSL_new(cctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1)
            die("SSL_connect");
        snprintf(cipher, cipher_len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
        t0 = now();
        for (size_t i = 0; i < chunks; i++)
            if (SSL_write(ssl, chunk, CHUNK) != CHUNK)
                die("SSL_write");
        if (ssl_read_full(ssl, done, 4) || memcmp(done, "done", 4))
            die("no done");
        t1 = now();
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    } else {
        rssl_conn *c = NULL;
        rssl_result res = rssl_connect(ccfg, "127.0.0.1", port, TIMEOUT_MS, &c);
        if (res != RSSL_OK)
            rssl_die("rssl_connect", res);
        uint16_t v = 0;
        char name[128] = "";
        rssl_conn_version(c, &v);
        rssl_conn_cipher(c, name, sizeof name, NULL);
        snprintf(cipher, cipher_len, "%s %s", v == RSSL_TLS1_3 ? "TLSv1.3" : "TLSv1.2", name);
        t0 = now();
        for (size_t i = 0; i < chunks; i++)
            if ((res = rssl_send(c, chunk, CHUNK, TIMEOUT_MS)) != RSSL_OK)
                rssl_die("rssl_send", res);
        size_t got = 0;
        while (got < 4) {
            size_t n = 0;
            if ((res = rssl_recv(c, done + got, 4 - got, TIMEOUT_MS, &n)) != RSSL_OK)
                rssl_die("rssl_recv done", res);
            got += n;
        }
        t1 = now();
        rssl_close(c);
    }
    pthread_join(t, NULL);
    free(chunk);
    return (double)(chunks * CHUNK) / 1e6 / (t1 - t0);
}

static void *hs_server(void *arg)
{
    struct run *r = arg;
    while (!atomic_load(&r->stop)) {
        /* Wait for a connection with a short timeout (to see `stop`), then
         * give the handshake the full timeout (slow under valgrind). */
        int lfd = r->lfd;
        if (r->impl == IMPL_RSSL)
            rssl_listener_fd(r->listener, &lfd);
        struct timeval tv = {.tv_usec = 100000};
        fd_set set;
        FD_ZERO(&set);
        FD_SET(lfd, &set);
        if (select(lfd + 1, &set, NULL, NULL, &tv) <= 0)
            continue;
        if (r->impl == IMPL_OPENSSL) {
            int fd = accept(r->lfd, NULL, NULL);
            if (fd < 0)
                continue;
            SSL *ssl = SSL_new(r->sctx);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) == 1)
                SSL_shutdown(ssl);
            else
                r->server_failures++;
            SSL_free(ssl);
            close(fd);
            ERR_clear_error();
        } else {
            rssl_conn *c = NULL;
            rssl_result res = rssl_accept(r->listener, r->scfg, TIMEOUT_MS, &c);
            if (res == RSSL_OK)
                rssl_close(c);
            else if (res != RSSL_TIMEOUT)
                r->server_failures++;
        }
    }
    return NULL;
}

static double handshakes(struct run *r, const rssl_config *ccfg, SSL_CTX *cctx, uint16_t port)
{
    pthread_t t;
    long n = 0;
    atomic_store(&r->stop, 0);
    pthread_create(&t, NULL, hs_server, r);
    double t0 = now(), deadline = t0 + r->secs, t1;
    while ((t1 = now()) < deadline) {
        if (r->impl == IMPL_OPENSSL) {
            if (plain_client_handshake(cctx, tcp_connect(port)))
                die("SSL_connect");
        } else {
            rssl_conn *c = NULL;
            rssl_result res = rssl_connect(ccfg, "127.0.0.1", port, TIMEOUT_MS, &c);
            if (res != RSSL_OK)
                rssl_die("rssl_connect", res);
            rssl_close(c);
        }
        n++;
    }
    atomic_store(&r->stop, 1);
    pthread_join(t, NULL);
    if (r->server_failures)
        fprintf(stderr, "  %s: %ld server-side handshakes failed\n", impl_name[r->impl],
                r->server_failures);
    return (double)n / (t1 - t0);
}

/* One measurement with fresh listeners and configurations. */
static double measure(int bulk_kind, enum impl impl, int version, size_t total, double secs,
                      char *cipher, size_t cipher_len)
{
    struct run r = {.impl = impl, .version = version, .total = total, .secs = secs, .lfd = -1};
    SSL_CTX *cctx = NULL;
    const rssl_config *ccfg = NULL;
    uint16_t port = 0;
    double result;
    if (impl == IMPL_OPENSSL) {
        r.sctx = ossl_ctx(1, version);
        cctx = ossl_ctx(0, version);
        r.lfd = tcp_listen(&port);
    } else {
        uint16_t v = version == TLS1_3_VERSION ? RSSL_TLS1_3 : RSSL_TLS1_2;
        rssl_config_builder *b = NULL;
        rssl_result res;
        if ((res = rssl_config_builder_new(RSSL_ROLE_SERVER, &b)) != RSSL_OK ||
            (res = rssl_config_builder_set_certfile(b, certfile)) != RSSL_OK ||
            (res = rssl_config_builder_set_keyfile(b, keyfile)) != RSSL_OK ||
            (res = rssl_config_builder_set_versions(b, &v, 1)) != RSSL_OK ||
            (res = rssl_config_builder_set_reuse_sessions(b, false)) != RSSL_OK ||
            (res = rssl_config_builder_build(b, &r.scfg)) != RSSL_OK)
            rssl_die("server configuration", res);
        rssl_config_builder_free(b);
        b = NULL;
        if ((res = rssl_config_builder_new(RSSL_ROLE_CLIENT, &b)) != RSSL_OK ||
            (res = rssl_config_builder_set_versions(b, &v, 1)) != RSSL_OK ||
            (res = rssl_config_builder_set_reuse_sessions(b, false)) != RSSL_OK ||
            (res = rssl_config_builder_build(b, &ccfg)) != RSSL_OK)
            rssl_die("client configuration", res);
        rssl_config_builder_free(b);
        if ((res = rssl_listen("127.0.0.1", 0, 128, &r.listener)) != RSSL_OK ||
            (res = rssl_listener_port(r.listener, &port)) != RSSL_OK)
            rssl_die("rssl_listen", res);
    }
    if (bulk_kind)
        result = bulk(&r, ccfg, cctx, port, cipher, cipher_len);
    else
        result = handshakes(&r, ccfg, cctx, port);
    if (impl == IMPL_OPENSSL) {
        close(r.lfd);
        SSL_CTX_free(r.sctx);
        SSL_CTX_free(cctx);
    } else {
        rssl_listener_free(r.listener);
        rssl_config_free(r.scfg);
        rssl_config_free(ccfg);
    }
    return result;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long arg_or_env(int argc, char **argv, int i, const char *env, long dflt)
{
    if (argc > i)
        return atol(argv[i]);
    const char *s = getenv(env);
    return s && *s ? atol(s) : dflt;
}

int main(int argc, char **argv)
{
    long mib = arg_or_env(argc, argv, 1, "RSSL_BENCH_MB", 512);
    long hs_secs = arg_or_env(argc, argv, 2, "RSSL_BENCH_HS_SECS", 2);
    long runs = arg_or_env(argc, argv, 3, "RSSL_BENCH_RUNS", 5);
    const char *only = argc > 4 ? argv[4] : "";
    if (mib < 1 || hs_secs < 1 || runs < 1 || runs > 99 ||
        (*only && strcmp(only, "bulk") && strcmp(only, "hs"))) {
        fprintf(stderr, "usage: %s [MIB [HS_SECS [RUNS [bulk|hs]]]]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    char dir[] = "/tmp/rssl_cbench_XXXXXX", cmd[1024];
    if (!mkdtemp(dir))
        die("mkdtemp");
    snprintf(certfile, sizeof certfile, "%s/cert.pem", dir);
    snprintf(keyfile, sizeof keyfile, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256"
             " -days 2 -subj /CN=localhost -keyout '%s' -out '%s' >/dev/null 2>&1",
             keyfile, certfile);
    if (system(cmd) != 0)
        die("openssl req failed");

    printf("C bench: rssl C API vs plain OpenSSL (%s), bulk %ld MiB, handshakes %ld s, "
           "median of %ld runs\n", OpenSSL_version(OPENSSL_VERSION), mib, hs_secs, runs);
    struct {
        const char *label;
        int bulk, version;
    } rows[] = {
        {"bulk TLS 1.3 MB/s", 1, TLS1_3_VERSION},
        {"bulk TLS 1.2 MB/s", 1, TLS1_2_VERSION},
        {"handshakes/s TLS 1.3", 0, TLS1_3_VERSION},
        {"handshakes/s TLS 1.2", 0, TLS1_2_VERSION},
    };
    const char *impl_only = getenv("RSSL_BENCH_C_IMPL");
    double results[4][2] = {{0}};
    char ciphers[4][2][128];
    int measured[4] = {0};
    for (int row = 0; row < 4; row++) {
        double v[2][99];
        if ((!strcmp(only, "bulk") && !rows[row].bulk) || (!strcmp(only, "hs") && rows[row].bulk))
            continue;
        measured[row] = 1;
        for (long i = 0; i < runs; i++)
            for (int k = 0; k < 2; k++) {
                /* alternate which implementation goes first */
                enum impl impl = (enum impl)((k + i) % 2);
                if (impl_only && strcmp(impl_only, impl_name[impl]))
                    continue;
                v[impl][i] = measure(rows[row].bulk, impl, rows[row].version,
                                     (size_t)mib * 1048576, (double)hs_secs,
                                     ciphers[row][impl], sizeof ciphers[row][impl]);
                printf("  %-7s %-22s run %ld: %10.1f\n", impl_name[impl], rows[row].label,
                       i + 1, v[impl][i]);
                fflush(stdout);
            }
        for (int k = 0; k < 2; k++) {
            if (impl_only && strcmp(impl_only, impl_name[k]))
                continue;
            qsort(v[k], (size_t)runs, sizeof(double), cmp_double);
            results[row][k] = runs % 2 ? v[k][runs / 2] : (v[k][runs / 2 - 1] + v[k][runs / 2]) / 2;
        }
        if (rows[row].bulk)
            printf("  negotiated: openssl %s, rssl %s\n", ciphers[row][0], ciphers[row][1]);
    }

    if (impl_only)
        return 0; /* one side only: no ratios */
    printf("\n%-22s %10s %10s %13s  %-17s %s\n", "workload (C)", "openssl", "rssl",
           "rssl/openssl", "target", "rssl");
    for (int row = 0; row < 4; row++) {
        if (!measured[row])
            continue;
        double ratio = results[row][1] / results[row][0];
        printf("%-22s %10.1f %10.1f %13.2f  %-17s %s\n", rows[row].label, results[row][0],
               results[row][1], ratio, ">= 0.95x openssl", ratio >= 0.95 ? "PASS" : "MISS");
    }
    unlink(certfile);
    unlink(keyfile);
    rmdir(dir);
    return 0;
}
