/* Helpers shared by the C tests: checks that report rssl's error text,
 * test certificates, and openssl(1) child processes. */
#ifndef RSSL_TEST_COMMON_H
#define RSSL_TEST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
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

/* Starts `openssl s_server` with the test server certificate, one
 * connection only, on 127.0.0.1 and a free port; returns the port. */
unsigned short start_s_server(struct child *c, const char *const *extra_args);

/* Builders for the usual configurations. */
const rssl_config *client_config(const char *cafile, const char *certfile, const char *keyfile,
                                 const char *alpn);
const rssl_config *server_config(bool verify_peer, const char *cafile, const char *alpn);

/* Receives until the peer closes; returns the malloc'ed, NUL-terminated data. */
char *recv_all(rssl_conn *conn, size_t *len);
/* Receives exactly `len` bytes. */
void recv_exactly(rssl_conn *conn, unsigned char *buf, size_t len);

#endif
