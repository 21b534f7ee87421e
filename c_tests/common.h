/* Helpers shared by the C tests: checks that report rssl's error text,
 * test certificates, and openssl(1) child processes. */
#ifndef RSSL_TEST_COMMON_H
#define RSSL_TEST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/types.h>

#include "rssl.h"

/* Generous enough for valgrind, which slows handshakes down a lot. */
#define TEST_TIMEOUT_MS 20000

void test_fail(const char *file, int line, const char *what);
void test_fail_result(const char *file, int line, const char *expr, rssl_result got,
                      rssl_result want);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

/* Checks that `expr` returns `want`; prints both codes and the last error. */
#define CHECK_RESULT(expr, want)                                                                   \
    do {                                                                                           \
        rssl_result got_ = (expr);                                                                 \
        if (got_ != (rssl_result)(want))                                                           \
            test_fail_result(__FILE__, __LINE__, #expr, got_, (rssl_result)(want));                \
    } while (0)

#define CHECK_OK(expr) CHECK_RESULT(expr, RSSL_OK)

/* A test case; each test program runs the one named on its command line. */
struct test_case {
    const char *name;
    void (*run)(void);
};

int test_main(int argc, char **argv, const struct test_case *tests, size_t count);

/* Path of a file made by gen_certs.sh (in a rotating static buffer). */
const char *cert_path(const char *name);
/* Reads a whole file into a malloc'ed buffer; aborts the test on failure. */
unsigned char *read_file(const char *path, size_t *len);

/* The last error text of this thread (static buffer per thread). */
const char *last_error(void);

/* Milliseconds on a monotonic clock. */
long long now_ms(void);

/* An openssl(1) child with its stdin and its merged stdout/stderr on pipes. */
struct child {
    pid_t pid;
    int in_fd;
    int out_fd;
    char *log;
    size_t log_len;
    size_t log_cap;
};

/* Starts OPENSSL_EXE with `args` (NULL-terminated, without argv[0]). */
void child_start(struct child *c, const char *const *args);
/* Starts another program (a path) the same way. */
void child_start_program(struct child *c, const char *program, const char *const *args);
/* The IPv4 TCP port the child listens on, found through /proc, for
 * servers that cannot report a port they let the system choose; 0 if it
 * does not listen within `timeout_ms`. */
unsigned short child_listen_port(struct child *c, int timeout_ms);
/* Reads output until `needle` appears; false after `timeout_ms` or EOF. */
bool child_wait_for(struct child *c, const char *needle, int timeout_ms);
/* Reads output until the child closes it (or the timeout passes). */
void child_read_all(struct child *c, int timeout_ms);
/* Writes to the child's stdin. */
void child_write(struct child *c, const char *text);
/* Closes the child's stdin. */
void child_close_input(struct child *c);
/* Waits for the child to exit (killing it after `timeout_ms`); returns
 * its exit status, or -1 when it had to be killed. Frees the log. */
int child_finish(struct child *c, int timeout_ms);

/* Kills a child that never ends by itself (a server) and frees the log. */
void child_kill(struct child *c);

/* Starts `openssl s_server` with the test server certificate, one
 * connection only, on 127.0.0.1 and a free port; returns the port. */
unsigned short start_s_server(struct child *c, const char *const *extra_args);

/* Starts `openssl s_client` to 127.0.0.1:`port` with `extra` options
 * (NULL-terminated; may be NULL). */
void start_s_client(struct child *c, unsigned short port, const char *const *extra);

/* Builders for the usual configurations. */
const rssl_config *client_config(const char *cafile, const char *certfile, const char *keyfile,
                                 const char *alpn);
const rssl_config *server_config(bool verify_peer, const char *cafile, const char *alpn);

/* Receives until the peer closes; returns the malloc'ed, NUL-terminated data. */
char *recv_all(rssl_conn *conn, size_t *len);
/* Receives exactly `len` bytes. */
void recv_exactly(rssl_conn *conn, unsigned char *buf, size_t len);

/* An rssl server in a thread of the test: accepts `count` connections one
 * after the other with `config`, and for each records what it saw, then
 * echoes until the client closes. */
struct served {
    rssl_result result; /* of rssl_accept, or of the first recv when the
                           client failed only after its handshake */
    uint8_t alert;
    bool alert_local;
    char sni[64];
    char protocol[64]; /* rssl_conn_negotiated_protocol */
    char cipher[64];
    bool reused;
    uint8_t ekm[32]; /* "EXPERIMENTAL rssl test" keying material */
    size_t echoed;
};

struct tls_server {
    pthread_t thread;
    rssl_listener *listener;
    const rssl_config *config;
    unsigned short port;
    int count;
    struct served seen[4];
};

/* Starts the server thread (`count` <= 4); the config stays the caller's. */
void tls_server_start(struct tls_server *s, const rssl_config *config, int count);
/* Waits for the thread and frees the listener. */
void tls_server_join(struct tls_server *s);

/* A builder with the test server certificate and key (server.pem/.key). */
rssl_config_builder *server_builder(const char *certfile, const char *keyfile);
/* A client builder verifying the server with `cafile` (NULL: no verify). */
rssl_config_builder *client_builder(const char *cafile);
/* Builds and frees the builder. */
const rssl_config *build(rssl_config_builder *b);

/* Connects to the test server as "localhost", sends "ping" and expects it
 * back; returns the result of the first failing step (RSSL_OK if none)
 * and leaves the connection open in *conn_out when it succeeded. */
rssl_result ping_server(const rssl_config *config, unsigned short port,
                        const uint8_t *session, size_t session_len, rssl_conn **conn_out);

/* The alert of the last failure (-1 if none) and whether we sent it. */
int last_alert(bool *local);

/* One connection to a server built from `sb`, by a client built from `cb`
 * (both builders consumed): the client's result, and what the server saw
 * in *seen. */
rssl_result one_connection(rssl_config_builder *sb, rssl_config_builder *cb,
                           struct served *seen);
/* Expects the last failure to be a TLS alert named `name`, sent by us
 * (`want_local`) or received, with `text` (if not NULL) in the last error. */
void expect_last_alert(const char *name, bool want_local, const char *text);
/* Expects `r` to be RSSL_TLS_ALERT for an alert named `name`, sent by us
 * (`local`) or received. */
void expect_alert(rssl_result r, const char *name, bool local);

/* Output of the last openssl peer (s_client_connection, s_server_connection). */
extern char peer_log[65536];
/* Whether the last peer's output has `text`; prints the output when not. */
bool peer_said(const char *text);
/* `openssl s_client -brief` with `extra` options (NULL-terminated), once,
 * against an rssl server built from `sb`: whether s_client finished its
 * handshake; what the server saw in *seen, s_client's output in peer_log. */
bool s_client_connection(rssl_config_builder *sb, const char *const *extra,
                         struct served *seen);
/* An rssl client built from `cb`, once, against `openssl s_server` with
 * `extra` options: the client's result (its last error kept for the
 * caller), s_server's output in peer_log. */
rssl_result s_server_connection(rssl_config_builder *cb, const char *const *extra);

/* Memory connections: moves what `from` has to send into `to`; returns
 * how many bytes. */
size_t memory_shuttle(rssl_conn *from, rssl_conn *to);
/* Memory connections: steps both handshakes, shuttling between them,
 * until both are done (NULL) or one returns `stop` (e.g. RSSL_HELLO or
 * RSSL_PAUSED; that one is returned; RSSL_OK: no stop). Any other result
 * fails the test. */
rssl_conn *memory_handshake(rssl_conn *client, rssl_conn *server, rssl_result stop);
/* Memory connections: "ping" written by `from` is read by `to`. */
void memory_ping(rssl_conn *from, rssl_conn *to);

#endif
