/* A TLS client: sends a message, prints the reply until the server closes.
 *
 *   client HOST PORT CAFILE MESSAGE
 *
 * Verifies the server against CAFILE and HOST ("-" as CAFILE: no
 * verification). Build: cc client.c $(pkg-config --cflags --libs rssl) */
#include <rssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, rssl_result r)
{
    char text[512];
    rssl_error_string(text, sizeof text, NULL);
    fprintf(stderr, "%s: %s: %s\n", what, rssl_result_string(r), text);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT CAFILE MESSAGE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *cafile = argv[3], *message = argv[4];
    uint16_t port = (uint16_t)atoi(argv[2]);

    rssl_config_builder *b = NULL;
    const rssl_config *config = NULL;
    rssl_result r = rssl_config_builder_new(RSSL_ROLE_CLIENT, &b);
    if (r == RSSL_OK && strcmp(cafile, "-") != 0) {
        rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER);
        r = rssl_config_builder_set_cacertfile(b, cafile);
    }
    if (r == RSSL_OK)
        r = rssl_config_builder_build(b, &config);
    rssl_config_builder_free(b);
    if (r != RSSL_OK)
        return fail("configuration", r);

    rssl_conn *conn = NULL;
    r = rssl_connect(config, host, port, 10000, &conn);
    rssl_config_free(config); /* the connection keeps what it needs */
    if (r != RSSL_OK) {
        uint8_t alert;
        if (rssl_last_alert(&alert, NULL) == RSSL_OK)
            fprintf(stderr, "alert: %s\n", rssl_alert_name(alert));
        return fail("connect", r);
    }
    r = rssl_send(conn, (const uint8_t *)message, strlen(message), 10000);
    if (r == RSSL_OK)
        r = rssl_shutdown(conn, 10000); /* close_notify: "that was all" */
    uint8_t buf[4096];
    size_t n = 0;
    while (r == RSSL_OK && (r = rssl_recv(conn, buf, sizeof buf, 10000, &n)) == RSSL_OK)
        fwrite(buf, 1, n, stdout);
    int status = r == RSSL_CLOSED ? 0 : fail("exchange", r);
    rssl_close(conn);
    return status;
}
