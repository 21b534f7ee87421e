/* A DTLS echo over UDP, both ends:
 *
 *   dtls_echo server PORT CERTFILE KEYFILE [COUNT]
 *   dtls_echo client HOST PORT [CAFILE]
 *
 * The server is blocking: it listens on 127.0.0.1:PORT (0: any free
 * port), prints "listening on P", and echoes each datagram of each client
 * in turn, until COUNT clients have come and gone (default: never).
 * Clients that do not prove their address (the cookie exchange) cost it
 * nothing.
 *
 * The client is an event loop around a memory connection: poll(2) waits
 * for the socket or the handshake's retransmission timer, whichever comes
 * first. It sends each line of its standard input as one datagram and
 * prints each echo, then closes. With CAFILE it verifies the server's
 * certificate and HOST.
 *
 * Build: cc dtls_echo.c $(pkg-config --cflags --libs rssl) */
#define _GNU_SOURCE
#include <netdb.h>
#include <poll.h>
#include <rssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* This thread's last error text. */
static const char *last_error(void)
{
    static char text[512];
    rssl_error_string(text, sizeof text, NULL);
    return text;
}

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, last_error());
    return 1;
}

static int server(unsigned short port, const char *certfile, const char *keyfile, long count)
{
    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    rssl_config_builder_new(RSSL_ROLE_SERVER, &b);
    rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS);
    rssl_config_builder_set_certfile(b, certfile);
    rssl_config_builder_set_keyfile(b, keyfile);
    rssl_result r = rssl_config_builder_build(b, &config);
    rssl_config_builder_free(b);
    if (r != RSSL_OK)
        return fail("configuration");
    rssl_listener *listener = NULL;
    if ((r = rssl_dtls_listen("127.0.0.1", port, &listener)) != RSSL_OK)
        return fail("listen");
    rssl_listener_port(listener, &port);
    printf("listening on %u\n", port);
    fflush(stdout);
    for (long served = 0; count == 0 || served < count; served++) {
        rssl_conn *conn = NULL;
        if ((r = rssl_accept(listener, config, RSSL_INFINITY, &conn)) != RSSL_OK) {
            fprintf(stderr, "accept: %s\n", last_error());
            continue;
        }
        static uint8_t datagram[RSSL_DTLS_MAX_PLAINTEXT];
        size_t n = 0;
        /* A client gone silent for a minute is dropped. */
        while ((r = rssl_recv(conn, datagram, sizeof datagram, 60000, &n)) == RSSL_OK)
            rssl_send(conn, datagram, n, 5000);
        printf("client done: %s\n", r == RSSL_CLOSED ? "closed" : last_error());
        fflush(stdout);
        rssl_close(conn);
    }
    rssl_listener_free(listener);
    rssl_config_free(config);
    return 0;
}

/* A UDP socket connected to host:port. */
static int udp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Sends each datagram the connection has queued. */
static void send_datagrams(rssl_conn *conn, int fd)
{
    const uint8_t *d = NULL;
    size_t len = 0;
    while (rssl_conn_next_datagram(conn, &d, &len) == RSSL_OK && len > 0) {
        send(fd, d, len, 0); /* a datagram that cannot go is lost: DTLS copes */
        rssl_conn_consume_output(conn, len);
    }
}

static int client(const char *host, const char *port, const char *cafile)
{
    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    rssl_config_builder_new(RSSL_ROLE_CLIENT, &b);
    rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS);
    if (cafile != NULL) {
        rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER);
        rssl_config_builder_set_cacertfile(b, cafile);
    }
    rssl_result r = rssl_config_builder_build(b, &config);
    rssl_config_builder_free(b);
    if (r != RSSL_OK)
        return fail("configuration");
    int fd = udp_connect(host, port);
    if (fd < 0) {
        fprintf(stderr, "cannot reach %s:%s\n", host, port);
        return 1;
    }
    rssl_conn *conn = NULL;
    rssl_conn_new(config, host, &conn);
    int status = 0;
    bool established = false, input_done = false;
    size_t awaited = 0; /* echoes still to come */
    while (!(input_done && awaited == 0)) {
        if (!established) {
            r = rssl_conn_handshake_step(conn);
            if (r == RSSL_OK) {
                established = true;
                uint16_t version = 0;
                rssl_conn_version(conn, &version);
                printf("connected: %s\n", rssl_version_name(version));
            } else if (r != RSSL_WANT_READ) {
                send_datagrams(conn, fd); /* the alert, if any */
                status = fail("handshake");
                break;
            }
        }
        send_datagrams(conn, fd);
        /* Wait for a datagram, a line of input (once established), or the
         * retransmission timer (-1: none running); echoes may be lost, so
         * after the input ends they are awaited for 5 s at most. */
        int timeout = -1;
        rssl_conn_retransmit_timeout(conn, &timeout);
        if (timeout < 0 && input_done)
            timeout = 5000;
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
                                {.fd = established && !input_done ? 0 : -1, .events = POLLIN}};
        int ready = poll(pfd, 2, timeout);
        if (ready == 0 && input_done) {
            fprintf(stderr, "%zu echoes lost\n", awaited);
            status = 1;
            break;
        }
        if (ready == 0) {
            if (rssl_conn_handle_retransmit_timeout(conn) != RSSL_OK) {
                status = fail("handshake"); /* the server never answered */
                break;
            }
            continue;
        }
        if (pfd[1].revents != 0) {
            char line[4096];
            if (fgets(line, sizeof line, stdin) == NULL) {
                input_done = true;
            } else {
                rssl_conn_write(conn, (const uint8_t *)line, strlen(line));
                awaited++;
            }
        }
        if (pfd[0].revents != 0) {
            static uint8_t buf[65536];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0)
                rssl_conn_feed(conn, buf, (size_t)n);
            /* Records after the handshake (our echoes; also what lets the
             * server finish if our last flight was lost). */
            size_t got = 0;
            while (established && (r = rssl_conn_read(conn, buf, sizeof buf, &got)) == RSSL_OK) {
                printf("echo: %.*s", (int)got, (const char *)buf);
                awaited -= awaited > 0;
            }
            if (established && r != RSSL_WANT_READ) {
                status = fail("read");
                break;
            }
        }
    }
    fflush(stdout);
    if (established) {
        rssl_conn_close_notify(conn);
        send_datagrams(conn, fd);
    }
    rssl_conn_free(conn);
    close(fd);
    rssl_config_free(config);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "server") == 0)
        return server((unsigned short)atoi(argv[2]), argv[3], argv[4],
                      argc > 5 ? atol(argv[5]) : 0);
    if (argc >= 4 && strcmp(argv[1], "client") == 0)
        return client(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
    fprintf(stderr, "usage: %s server PORT CERTFILE KEYFILE [COUNT]\n"
                    "       %s client HOST PORT [CAFILE]\n",
            argv[0], argv[0]);
    return 2;
}
