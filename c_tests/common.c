#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CERT_DIR
#error "CERT_DIR must name the directory gen_certs.sh fills"
#endif
#ifndef OPENSSL_EXE
#error "OPENSSL_EXE must name the openssl program"
#endif

static struct child *running_child;

const char *last_error(void)
{
    static __thread char text[1024];
    size_t n = 0;
    rssl_error_string(text, sizeof text, &n);
    return text;
}

void test_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    if (running_child != NULL && running_child->log != NULL)
        fprintf(stderr, "--- openssl output ---\n%.*s\n---\n", (int)running_child->log_len,
                running_child->log);
    if (running_child != NULL && running_child->pid > 0)
        kill(running_child->pid, SIGKILL);
    exit(1);
}

void test_fail_result(const char *file, int line, const char *expr, rssl_result got,
                      rssl_result want)
{
    char what[2048];
    snprintf(what, sizeof what, "%s\n    returned %u (%s), expected %u (%s)\n    last error: %s",
             expr, (unsigned)got, rssl_result_string(got), (unsigned)want,
             rssl_result_string(want), last_error());
    test_fail(file, line, what);
}

/* Open file descriptors: each test must close every one it opened. */
static int count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    CHECK(dir != NULL);
    int n = 0;
    while (readdir(dir) != NULL)
        n++;
    closedir(dir);
    return n;
}

int test_main(int argc, char **argv, const struct test_case *tests, size_t count)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc != 2) {
        fprintf(stderr, "usage: %s TEST\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(argv[1], tests[i].name) == 0) {
            int fds = count_fds();
            tests[i].run();
            if (count_fds() != fds) {
                fprintf(stderr, "%d file descriptors before the test, %d after\n", fds,
                        count_fds());
                CHECK(count_fds() == fds);
            }
            printf("%s: ok\n", tests[i].name);
            return 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}

const char *cert_path(const char *name)
{
    static char paths[32][4096];
    static int next;
    char *path = paths[next++ % 32];
    snprintf(path, sizeof paths[0], "%s/%s", CERT_DIR, name);
    return path;
}

unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        test_fail(__FILE__, __LINE__, path);
    unsigned char *data = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 4096;
            data = realloc(data, cap);
            CHECK(data != NULL);
        }
        size_t n = fread(data + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    return data;
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void child_start(struct child *c, const char *const *args)
{
    child_start_program(c, OPENSSL_EXE, args);
}

void child_start_program(struct child *c, const char *program, const char *const *args)
{
    int in[2], out[2];
    CHECK(pipe2(in, O_CLOEXEC) == 0);
    CHECK(pipe2(out, O_CLOEXEC) == 0);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = program;
    for (; args[n - 1] != NULL; n++) {
        CHECK(n < 63);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execv(program, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    memset(c, 0, sizeof *c);
    c->pid = pid;
    c->in_fd = in[1];
    c->out_fd = out[0];
    c->log_cap = 65536;
    c->log = malloc(c->log_cap);
    CHECK(c->log != NULL);
    c->log[0] = '\0';
    running_child = c;
}

/* Reads what is there within `timeout_ms`; false at EOF or timeout. */
static bool child_read_some(struct child *c, int timeout_ms)
{
    if (c->out_fd < 0)
        return false;
    struct pollfd pfd = {.fd = c->out_fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    if (r <= 0)
        return false;
    if (c->log_len + 4096 + 1 > c->log_cap) {
        c->log_cap *= 2;
        c->log = realloc(c->log, c->log_cap);
        CHECK(c->log != NULL);
    }
    ssize_t n = read(c->out_fd, c->log + c->log_len, 4096);
    if (n <= 0) {
        close(c->out_fd);
        c->out_fd = -1;
        return false;
    }
    c->log_len += (size_t)n;
    c->log[c->log_len] = '\0';
    return true;
}

bool child_wait_for(struct child *c, const char *needle, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (strstr(c->log, needle) == NULL) {
        long long left = deadline - now_ms();
        if (left <= 0 || !child_read_some(c, (int)left))
            return strstr(c->log, needle) != NULL;
    }
    return true;
}

void child_read_all(struct child *c, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (c->out_fd >= 0) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return;
        child_read_some(c, (int)left);
    }
}

void child_write(struct child *c, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(c->in_fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0);
        text += n;
        len -= (size_t)n;
    }
}

void child_close_input(struct child *c)
{
    if (c->in_fd >= 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
}

int child_finish(struct child *c, int timeout_ms)
{
    child_close_input(c);
    long long deadline = now_ms() + timeout_ms;
    int status = 0;
    int result = -1;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            result = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (now_ms() >= deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        /* Keep draining so the child never blocks on a full pipe. */
        if (!child_read_some(c, 20))
            usleep(10000);
    }
    if (c->out_fd >= 0)
        close(c->out_fd);
    free(c->log);
    running_child = NULL;
    memset(c, 0, sizeof *c);
    c->in_fd = c->out_fd = -1;
    return result;
}

void child_kill(struct child *c)
{
    kill(c->pid, SIGKILL);
    child_finish(c, TEST_TIMEOUT_MS);
}

unsigned short start_s_server(struct child *c, const char *const *extra_args)
{
    const char *args[48] = {"s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                            "-cert", cert_path("server.pem"), "-key", cert_path("server.key")};
    size_t n = 9;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        CHECK(n < 47);
        args[n++] = extra_args[i];
    }
    args[n] = NULL;
    child_start(c, args);
    CHECK(child_wait_for(c, "ACCEPT 127.0.0.1:", TEST_TIMEOUT_MS));
    /* Wait for the whole line so the port is complete. */
    const char *at = strstr(c->log, "ACCEPT 127.0.0.1:");
    while (strchr(at, '\n') == NULL) {
        CHECK(child_read_some(c, TEST_TIMEOUT_MS));
        at = strstr(c->log, "ACCEPT 127.0.0.1:");
    }
    unsigned port = 0;
    CHECK(sscanf(at, "ACCEPT 127.0.0.1:%u", &port) == 1);
    CHECK(port > 0 && port < 65536);
    return (unsigned short)port;
}

void start_s_client(struct child *c, unsigned short port, const char *const *extra)
{
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[48] = {"s_client", "-connect", target};
    size_t n = 3;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        CHECK(n < 47);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    child_start(c, args);
}

/* The inodes of the sockets process `pid` has open; returns how many. */
static size_t socket_inodes(pid_t pid, unsigned long *inodes, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < cap) {
        char link[320], target[64];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (sscanf(target, "socket:[%lu]", &inodes[n]) == 1)
            n++;
    }
    closedir(dir);
    return n;
}

unsigned short child_listen_port(struct child *c, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    do {
        unsigned long inodes[16];
        size_t count = socket_inodes(c->pid, inodes, 16);
        FILE *tcp = count > 0 ? fopen("/proc/net/tcp", "r") : NULL;
        char line[512];
        while (tcp != NULL && fgets(line, sizeof line, tcp) != NULL) {
            unsigned port = 0, state = 0;
            unsigned long inode = 0;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &port,
                       &state, &inode) != 3 ||
                state != 0x0A /* LISTEN */)
                continue;
            for (size_t i = 0; i < count; i++) {
                if (inodes[i] == inode) {
                    fclose(tcp);
                    return (unsigned short)port;
                }
            }
        }
        if (tcp != NULL)
            fclose(tcp);
        /* Not listening yet: keep its output drained meanwhile. */
        if (!child_read_some(c, 20))
            usleep(20000);
    } while (now_ms() < deadline);
    return 0;
}

const rssl_config *client_config(const char *cafile, const char *certfile, const char *keyfile,
                                 const char *alpn)
{
    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    if (cafile != NULL) {
        CHECK_OK(rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER));
        CHECK_OK(rssl_config_builder_set_cacertfile(b, cafile));
    }
    if (certfile != NULL) {
        CHECK_OK(rssl_config_builder_set_certfile(b, certfile));
        CHECK_OK(rssl_config_builder_set_keyfile(b, keyfile));
    }
    if (alpn != NULL)
        CHECK_OK(rssl_config_builder_set_alpn(b, &alpn, 1));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);
    return config;
}

const rssl_config *server_config(bool verify_peer, const char *cafile, const char *alpn)
{
    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path("server.pem")));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path("server.key")));
    if (verify_peer) {
        CHECK_OK(rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER));
        CHECK_OK(rssl_config_builder_set_fail_if_no_peer_cert(b, true));
        CHECK_OK(rssl_config_builder_set_cacertfile(b, cafile));
    }
    if (alpn != NULL)
        CHECK_OK(rssl_config_builder_set_alpn(b, &alpn, 1));
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);
    return config;
}

char *recv_all(rssl_conn *conn, size_t *len)
{
    size_t cap = 4096;
    char *data = malloc(cap);
    CHECK(data != NULL);
    *len = 0;
    for (;;) {
        if (cap - *len < 1024) {
            cap *= 2;
            data = realloc(data, cap);
            CHECK(data != NULL);
        }
        size_t n = 0;
        rssl_result r =
            rssl_recv(conn, (uint8_t *)data + *len, cap - *len - 1, TEST_TIMEOUT_MS, &n);
        if (r == RSSL_CLOSED)
            break;
        CHECK_OK(r);
        CHECK(n > 0);
        *len += n;
    }
    data[*len] = '\0';
    return data;
}

void recv_exactly(rssl_conn *conn, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t n = 0;
        CHECK_OK(rssl_recv(conn, buf + got, len - got, TEST_TIMEOUT_MS, &n));
        CHECK(n > 0);
        got += n;
    }
}

int last_alert(bool *local)
{
    uint8_t alert = 0;
    bool is_local = false;
    if (rssl_last_alert(&alert, &is_local) != RSSL_OK)
        return -1;
    if (local != NULL)
        *local = is_local;
    return alert;
}

static void *tls_server_run(void *arg)
{
    struct tls_server *s = arg;
    for (int i = 0; i < s->count; i++) {
        struct served *seen = &s->seen[i];
        rssl_conn *conn = NULL;
        seen->result = rssl_accept(s->listener, s->config, TEST_TIMEOUT_MS, &conn);
        if (seen->result != RSSL_OK) {
            int alert = last_alert(&seen->alert_local);
            seen->alert = alert < 0 ? 0 : (uint8_t)alert;
            continue;
        }
        size_t n = 0;
        rssl_conn_sni_hostname(conn, seen->sni, sizeof seen->sni, &n);
        rssl_conn_negotiated_protocol(conn, seen->protocol, sizeof seen->protocol, &n);
        rssl_conn_cipher(conn, seen->cipher, sizeof seen->cipher, &n);
        CHECK_OK(rssl_conn_session_reused(conn, &seen->reused));
        const char *label = "EXPERIMENTAL rssl test";
        CHECK_OK(rssl_conn_export_keying_material(conn, label, NULL, 0, seen->ekm,
                                                  sizeof seen->ekm));
        uint8_t buf[4096];
        for (;;) {
            rssl_result r = rssl_recv(conn, buf, sizeof buf, TEST_TIMEOUT_MS, &n);
            if (r == RSSL_CLOSED)
                break;
            if (r != RSSL_OK) {
                /* A TLS 1.3 client rejects us only after our handshake. */
                seen->result = r;
                int alert = last_alert(&seen->alert_local);
                seen->alert = alert < 0 ? 0 : (uint8_t)alert;
                break;
            }
            CHECK_OK(rssl_send(conn, buf, n, TEST_TIMEOUT_MS));
            seen->echoed += n;
        }
        rssl_close(conn);
    }
    return NULL;
}

void tls_server_start(struct tls_server *s, const rssl_config *config, int count)
{
    CHECK(count >= 1 && count <= 4);
    memset(s, 0, sizeof *s);
    s->config = config;
    s->count = count;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &s->listener));
    CHECK_OK(rssl_listener_port(s->listener, &s->port));
    CHECK(pthread_create(&s->thread, NULL, tls_server_run, s) == 0);
}

void tls_server_join(struct tls_server *s)
{
    CHECK(pthread_join(s->thread, NULL) == 0);
    rssl_listener_free(s->listener);
    s->listener = NULL;
}

rssl_config_builder *server_builder(const char *certfile, const char *keyfile)
{
    rssl_config_builder *b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_OK(rssl_config_builder_set_certfile(b, cert_path(certfile)));
    CHECK_OK(rssl_config_builder_set_keyfile(b, cert_path(keyfile)));
    return b;
}

rssl_config_builder *client_builder(const char *cafile)
{
    rssl_config_builder *b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_CLIENT, &b));
    if (cafile != NULL) {
        CHECK_OK(rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER));
        CHECK_OK(rssl_config_builder_set_cacertfile(b, cert_path(cafile)));
    }
    return b;
}

const rssl_config *build(rssl_config_builder *b)
{
    const rssl_config *config = NULL;
    CHECK_OK(rssl_config_builder_build(b, &config));
    rssl_config_builder_free(b);
    return config;
}

rssl_result ping_server(const rssl_config *config, unsigned short port, const uint8_t *session,
                        size_t session_len, rssl_conn **conn_out)
{
    rssl_conn *conn = NULL;
    rssl_result r = session == NULL
                        ? rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn)
                        : rssl_connect_session(config, "localhost", port, session, session_len,
                                               TEST_TIMEOUT_MS, &conn);
    if (r != RSSL_OK)
        return r;
    r = rssl_send(conn, (const uint8_t *)"ping", 4, TEST_TIMEOUT_MS);
    uint8_t buf[4];
    size_t got = 0;
    while (r == RSSL_OK && got < 4) {
        size_t n = 0;
        r = rssl_recv(conn, buf + got, 4 - got, TEST_TIMEOUT_MS, &n);
        got += n;
    }
    if (r != RSSL_OK) {
        /* Keep this failure as the thread's last error for the caller. */
        rssl_conn_free(conn);
        return r;
    }
    CHECK(memcmp(buf, "ping", 4) == 0);
    *conn_out = conn;
    return RSSL_OK;
}

/* --- Connections with a given configuration, and openssl peers --- */

/* One connection to a server built from `sb`, by a client built from `cb`:
 * the client's result, and what the server saw in *seen. */
rssl_result one_connection(rssl_config_builder *sb, rssl_config_builder *cb,
                                  struct served *seen)
{
    const rssl_config *sconfig = build(sb);
    const rssl_config *cconfig = build(cb);
    struct tls_server server;
    tls_server_start(&server, sconfig, 1);
    rssl_conn *conn = NULL;
    rssl_result r = ping_server(cconfig, server.port, NULL, 0, &conn);
    /* Keep the client's last error across the server's join. */
    int alert = last_alert(NULL);
    if (r == RSSL_OK)
        CHECK_OK(rssl_close(conn));
    tls_server_join(&server);
    *seen = server.seen[0];
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
    (void)alert;
    return r;
}

void expect_last_alert(const char *name, bool want_local, const char *text)
{
    uint8_t alert = 0;
    bool local = !want_local;
    CHECK_OK(rssl_last_alert(&alert, &local));
    if (strcmp(rssl_alert_name(alert), name) != 0) {
        fprintf(stderr, "alert %u (%s), last error: %s\n", alert, rssl_alert_name(alert),
                last_error());
        CHECK(strcmp(rssl_alert_name(alert), name) == 0);
    }
    CHECK(local == want_local);
    if (text != NULL && strstr(last_error(), text) == NULL) {
        fprintf(stderr, "last error: %s\n", last_error());
        CHECK(strstr(last_error(), text) != NULL);
    }
}

void expect_alert(rssl_result r, const char *name, bool local)
{
    CHECK_RESULT(r, RSSL_TLS_ALERT);
    expect_last_alert(name, local, NULL);
}

/* Output of the last openssl peer (s_client_connection, s_server_connection). */
char peer_log[65536];

/* Whether the last peer's output has `text`; prints the output when not. */
bool peer_said(const char *text)
{
    if (strstr(peer_log, text) != NULL)
        return true;
    fprintf(stderr, "the peer said no \"%s\" in:\n%s\n", text, peer_log);
    return false;
}

/* `openssl s_client -brief` with `extra` options, once, against an rssl
 * server built from `sb`: whether s_client finished its handshake; what the
 * server saw in *seen, s_client's output in peer_log. */
bool s_client_connection(rssl_config_builder *sb, const char *const *extra,
                                struct served *seen)
{
    const rssl_config *sconfig = build(sb);
    struct tls_server server;
    tls_server_start(&server, sconfig, 1);
    const char *args[32] = {"-brief"};
    size_t n = 1;
    for (size_t i = 0; extra[i] != NULL; i++) {
        CHECK(n < 31);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    struct child client;
    start_s_client(&client, server.port, args);
    bool established = child_wait_for(&client, "CONNECTION ESTABLISHED", TEST_TIMEOUT_MS);
    /* The end of its input closes the connection; then it exits. */
    child_close_input(&client);
    child_read_all(&client, TEST_TIMEOUT_MS);
    snprintf(peer_log, sizeof peer_log, "%s", client.log);
    CHECK(child_finish(&client, TEST_TIMEOUT_MS) >= 0);
    tls_server_join(&server);
    *seen = server.seen[0];
    rssl_config_free(sconfig);
    return established;
}

/* An rssl client built from `cb`, once, against `openssl s_server` with
 * `extra` options: the client's result (its last error kept for the
 * caller), s_server's output in peer_log. */
rssl_result s_server_connection(rssl_config_builder *cb, const char *const *extra)
{
    struct child server;
    unsigned short port = start_s_server(&server, extra);
    const rssl_config *config = build(cb);
    rssl_conn *conn = NULL;
    rssl_result r = rssl_connect(config, "localhost", port, TEST_TIMEOUT_MS, &conn);
    if (r == RSSL_OK) {
        /* s_server prints what was negotiated once its handshake is done. */
        CHECK(child_wait_for(&server, "CIPHER is", TEST_TIMEOUT_MS));
        CHECK_OK(rssl_close(conn));
    }
    /* One connection (-naccept 1): s_server ends with it. */
    child_read_all(&server, TEST_TIMEOUT_MS);
    snprintf(peer_log, sizeof peer_log, "%s", server.log);
    CHECK(child_finish(&server, TEST_TIMEOUT_MS) >= 0);
    rssl_config_free(config);
    return r;
}

size_t memory_shuttle(rssl_conn *from, rssl_conn *to)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(rssl_conn_output(from, &data, &len));
    if (len > 0) {
        CHECK_OK(rssl_conn_feed(to, data, len));
        CHECK_OK(rssl_conn_consume_output(from, len));
    }
    return len;
}

static rssl_result memory_step(rssl_conn *conn, rssl_result stop)
{
    rssl_result r = rssl_conn_handshake_step(conn);
    if (r != RSSL_OK && r != stop)
        CHECK_RESULT(r, RSSL_WANT_READ);
    return r;
}

rssl_conn *memory_handshake(rssl_conn *client, rssl_conn *server, rssl_result stop)
{
    bool cdone = false, sdone = false;
    for (int round = 0; !(cdone && sdone); round++) {
        CHECK(round < 10);
        rssl_result r = memory_step(client, stop);
        if (stop != RSSL_OK && r == stop)
            return client;
        cdone = r == RSSL_OK;
        memory_shuttle(client, server);
        r = memory_step(server, stop);
        if (stop != RSSL_OK && r == stop)
            return server;
        sdone = r == RSSL_OK;
        memory_shuttle(server, client);
    }
    return NULL;
}

void memory_ping(rssl_conn *from, rssl_conn *to)
{
    CHECK_OK(rssl_conn_write(from, (const uint8_t *)"ping", 4));
    memory_shuttle(from, to);
    uint8_t buf[8];
    size_t n = 0;
    CHECK_OK(rssl_conn_read(to, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "ping", 4) == 0);
}
