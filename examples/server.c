/* A blocking TLS echo server: one thread per connection, one shared
 * configuration.
 *
 *   server PORT CERTFILE KEYFILE [COUNT]
 *
 * Listens on 127.0.0.1:PORT (0: any free port), prints "listening on P",
 * echoes what each client sends until it closes, and exits after COUNT
 * connections (default: never). Build: cc server.c $(pkg-config --cflags
 * --libs rssl) -lpthread */
#include <pthread.h>
#include <rssl.h>
#include <stdio.h>
#include <stdlib.h>

static void *serve(void *arg)
{
    rssl_conn *conn = arg;
    uint8_t buf[4096];
    size_t n = 0;
    rssl_result r;
    while ((r = rssl_recv(conn, buf, sizeof buf, RSSL_INFINITY, &n)) == RSSL_OK)
        if ((r = rssl_send(conn, buf, n, 10000)) != RSSL_OK)
            break;
    if (r != RSSL_CLOSED)
        fprintf(stderr, "connection: %s\n", rssl_result_string(r));
    rssl_close(conn);
    return NULL;
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
    rssl_listener *listener = NULL;
    uint16_t port = 0;
    if (r == RSSL_OK)
        r = rssl_listen("127.0.0.1", (uint16_t)atoi(argv[1]), 0, &listener);
    if (r == RSSL_OK)
        r = rssl_listener_port(listener, &port);
    if (r != RSSL_OK) {
        char text[512];
        rssl_error_string(text, sizeof text, NULL);
        fprintf(stderr, "%s: %s\n", rssl_result_string(r), text);
        return 1;
    }
    printf("listening on %u\n", port);
    fflush(stdout);

    pthread_t threads[64];
    int running = 0;
    for (long served = 0; count < 0 || served < count;) {
        rssl_conn *conn = NULL;
        r = rssl_accept(listener, config, 10000, &conn);
        if (r == RSSL_TIMEOUT)
            continue;
        served++;
        if (r != RSSL_OK) { /* a client that failed its handshake */
            fprintf(stderr, "accept: %s\n", rssl_result_string(r));
            continue;
        }
        if (running == 64) { /* keep the example simple: wait for all */
            for (int i = 0; i < running; i++)
                pthread_join(threads[i], NULL);
            running = 0;
        }
        pthread_create(&threads[running++], NULL, serve, conn);
    }
    for (int i = 0; i < running; i++)
        pthread_join(threads[i], NULL);
    rssl_listener_free(listener);
    rssl_config_free(config);
    return 0;
}
