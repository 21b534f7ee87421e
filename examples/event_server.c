/* A TLS echo server on one thread with epoll: every connection is an rssl
 * memory connection, and the loop moves the bytes between it and the
 * non-blocking socket.
 *
 *   event_server PORT CERTFILE KEYFILE [COUNT]
 *
 * Listens on 127.0.0.1:PORT (0: any free port), prints "listening on P",
 * echoes what each client sends, and exits once COUNT connections have
 * ended (default: never). Build: cc event_server.c $(pkg-config --cflags
 * --libs rssl) */
#define _GNU_SOURCE
#include <errno.h>
#include <rssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct client {
    int fd;
    rssl_conn *tls;
    bool established;
    bool closing; /* close once the output is sent */
};

static int epfd;

static void watch(struct client *c, bool want_write)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop(struct client *c, long *ended)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    rssl_conn_free(c->tls);
    free(c);
    (*ended)++;
}

/* Sends what the connection has queued; false when the socket failed. */
static bool flush(struct client *c)
{
    for (;;) {
        const uint8_t *out = NULL;
        size_t len = 0;
        rssl_conn_output(c->tls, &out, &len);
        if (len == 0) {
            watch(c, false);
            return true;
        }
        ssize_t n = send(c->fd, out, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            watch(c, true); /* the rest when the socket drains */
            return true;
        }
        if (n < 0)
            return false;
        rssl_conn_consume_output(c->tls, (size_t)n);
    }
}

/* Advances the handshake, then echoes all plaintext; false on failure. */
static bool drive(struct client *c)
{
    if (!c->established) {
        rssl_result r = rssl_conn_handshake_step(c->tls);
        if (r == RSSL_WANT_READ)
            return true;
        if (r != RSSL_OK) {
            c->closing = true; /* send the alert, if any, then close */
            return true;
        }
        c->established = true;
    }
    uint8_t buf[16384];
    for (;;) {
        size_t n = 0;
        rssl_result r = rssl_conn_read(c->tls, buf, sizeof buf, &n);
        if (r == RSSL_OK) {
            if (!c->closing && rssl_conn_write(c->tls, buf, n) != RSSL_OK)
                return false;
            continue;
        }
        if (r == RSSL_WANT_READ)
            return true;
        /* The peer closed (RSSL_CLOSED) or failed: answer, then close. */
        if (r == RSSL_CLOSED && !c->closing)
            rssl_conn_close_notify(c->tls);
        c->closing = true;
        return true;
    }
}

static void on_readable(struct client *c)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            rssl_conn_feed(c->tls, buf, (size_t)n);
            continue;
        }
        if (n == 0) {
            /* drive() reads what came before the end, then sees it. */
            rssl_conn_feed_eof(c->tls);
        } else if (errno != EAGAIN && errno != EINTR) {
            c->closing = true;
        }
        return;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT CERTFILE KEYFILE [COUNT]\n", argv[0]);
        return 2;
    }
    long count = argc > 4 ? atol(argv[4]) : -1;
    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    rssl_result r = rssl_config_builder_new(RSSL_ROLE_SERVER, &b);
    if (r == RSSL_OK)
        r = rssl_config_builder_set_certfile(b, argv[2]);
    if (r == RSSL_OK)
        r = rssl_config_builder_set_keyfile(b, argv[3]);
    if (r == RSSL_OK)
        r = rssl_config_builder_build(b, &config);
    rssl_config_builder_free(b);
    /* rssl_listen gives a non-blocking listening socket. */
    rssl_listener *listener = NULL;
    int lfd = -1;
    uint16_t port = 0;
    if (r == RSSL_OK)
        r = rssl_listen("127.0.0.1", (uint16_t)atoi(argv[1]), 0, &listener);
    if (r == RSSL_OK)
        r = rssl_listener_port(listener, &port);
    if (r == RSSL_OK)
        r = rssl_listener_fd(listener, &lfd);
    if (r != RSSL_OK) {
        char text[512];
        rssl_error_string(text, sizeof text, NULL);
        fprintf(stderr, "%s: %s\n", rssl_result_string(r), text);
        return 1;
    }
    printf("listening on %u\n", port);
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    long ended = 0;
    while (count < 0 || ended < count) {
        struct epoll_event events[64];
        int n = epoll_wait(epfd, events, 64, -1);
        for (int i = 0; i < n; i++) {
            struct client *c = events[i].data.ptr;
            if (c == NULL) { /* the listener: take every waiting client */
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = calloc(1, sizeof *c);
                    if (c == NULL || rssl_conn_new(config, NULL, &c->tls) != RSSL_OK) {
                        close(fd);
                        free(c);
                        ended++;
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
            bool ok = drive(c) && flush(c);
            const uint8_t *out = NULL;
            size_t len = 0;
            rssl_conn_output(c->tls, &out, &len);
            if (!ok || (c->closing && len == 0))
                drop(c, &ended);
        }
    }
    close(epfd);
    rssl_listener_free(listener);
    rssl_config_free(config);
    return 0;
}
