/* TLS 1.3 tickets by hand and 0-RTT early data: tickets taken one by one
 * from a client connection and offered again, early data both ways
 * (rssl, openssl s_server and s_client as peers), the anti-replay filter
 * of stateless tickets, single-use stateful tickets, and bad calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* A server config with `tickets` stateless (or stateful) TLS 1.3 tickets,
 * early data up to `early` bytes, and anti-replay when asked. */
static const rssl_config *ticket_server(bool stateful, uint32_t early, bool anti_replay)
{
    rssl_config_builder *b = server_builder("server.pem", "server.key");
    CHECK_OK(rssl_config_builder_set_session_tickets(b, 2));
    CHECK_OK(rssl_config_builder_set_stateful_tickets(b, stateful));
    CHECK_OK(rssl_config_builder_set_early_data(b, early));
    if (anti_replay)
        CHECK_OK(rssl_config_builder_set_anti_replay(b, 10, 5, 72985));
    return build(b);
}

static const rssl_config *manual_client(void)
{
    rssl_config_builder *b = client_builder("ca.pem");
    CHECK_OK(rssl_config_builder_set_manual_tickets(b, true));
    return build(b);
}

/* The next ticket of `conn` into a malloc'ed buffer (*len its size). */
static uint8_t *next_ticket(rssl_conn *conn, size_t *len)
{
    size_t need = 0;
    CHECK_RESULT(rssl_conn_next_ticket(conn, NULL, 0, &need), RSSL_BUFFER_TOO_SMALL);
    CHECK(need > 0);
    uint8_t *ticket = malloc(need);
    CHECK(ticket != NULL);
    CHECK_OK(rssl_conn_next_ticket(conn, ticket, need, len));
    CHECK(*len == need);
    return ticket;
}

/* Connects with `ticket` sending `early` as early data, then "late"; the
 * echo server sends back everything in order. Returns the status. */
static rssl_early_data early_round(const rssl_config *config, unsigned short port,
                                   const uint8_t *ticket, size_t ticket_len, const char *early,
                                   bool *reused)
{
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect_early(config, "localhost", port, ticket, ticket_len,
                                (const uint8_t *)early, strlen(early), TEST_TIMEOUT_MS, &conn));
    rssl_early_data status = RSSL_EARLY_DATA_NONE;
    CHECK_OK(rssl_conn_early_data_status(conn, &status));
    CHECK_OK(rssl_conn_session_reused(conn, reused));
    CHECK_OK(rssl_send(conn, (const uint8_t *)"late", 4, TEST_TIMEOUT_MS));
    /* Accepted early data is echoed first; rejected data never arrived. */
    char want[64];
    snprintf(want, sizeof want, "%s%s", status == RSSL_EARLY_DATA_ACCEPTED ? early : "", "late");
    unsigned char got[64];
    recv_exactly(conn, got, strlen(want));
    CHECK(memcmp(got, want, strlen(want)) == 0);
    CHECK_OK(rssl_close(conn));
    return status;
}

/* Each ticket is handed out once, in order; one resumes. */
static void manual_tickets(void)
{
    const rssl_config *sconfig = ticket_server(false, 0, false);
    const rssl_config *cconfig = manual_client();
    struct tls_server server;
    tls_server_start(&server, sconfig, 2);
    rssl_conn *conn = NULL;
    CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    size_t len1 = 0, len2 = 0, n = 0;
    uint8_t *t1 = next_ticket(conn, &len1);
    uint8_t *t2 = next_ticket(conn, &len2);
    CHECK(len1 != len2 || memcmp(t1, t2, len1) != 0);
    CHECK_RESULT(rssl_conn_next_ticket(conn, t1, len1, &n), RSSL_NOT_AVAILABLE);
    CHECK_OK(rssl_close(conn));
    CHECK_OK(ping_server(cconfig, server.port, t2, len2, &conn));
    bool reused = false;
    CHECK_OK(rssl_conn_session_reused(conn, &reused));
    CHECK(reused);
    CHECK_OK(rssl_close(conn));
    tls_server_join(&server);
    CHECK(!server.seen[0].reused && server.seen[1].reused);
    free(t1);
    free(t2);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* Stateless tickets with anti-replay: a ticket's early data is taken once;
 * the same ticket again resumes without it; another ticket's is taken. */
static void early_data_anti_replay(void)
{
    const rssl_config *sconfig = ticket_server(false, 16384, true);
    const rssl_config *cconfig = manual_client();
    struct tls_server server;
    tls_server_start(&server, sconfig, 4);
    rssl_conn *conn = NULL;
    CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    size_t len1 = 0, len2 = 0;
    uint8_t *t1 = next_ticket(conn, &len1);
    uint8_t *t2 = next_ticket(conn, &len2);
    CHECK_OK(rssl_close(conn));
    bool reused = false;
    CHECK(early_round(cconfig, server.port, t1, len1, "early", &reused) == RSSL_EARLY_DATA_ACCEPTED);
    CHECK(reused);
    CHECK(early_round(cconfig, server.port, t1, len1, "again", &reused) == RSSL_EARLY_DATA_REJECTED);
    CHECK(reused);
    CHECK(early_round(cconfig, server.port, t2, len2, "other", &reused) == RSSL_EARLY_DATA_ACCEPTED);
    tls_server_join(&server);
    CHECK(server.seen[1].echoed == 9 && server.seen[2].echoed == 4 && server.seen[3].echoed == 9);
    free(t1);
    free(t2);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* Stateful tickets are single use: the second offer is a full handshake. */
static void early_data_stateful(void)
{
    const rssl_config *sconfig = ticket_server(true, 16384, false);
    const rssl_config *cconfig = manual_client();
    struct tls_server server;
    tls_server_start(&server, sconfig, 3);
    rssl_conn *conn = NULL;
    CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    size_t len = 0;
    uint8_t *t = next_ticket(conn, &len);
    CHECK_OK(rssl_close(conn));
    bool reused = false;
    CHECK(early_round(cconfig, server.port, t, len, "early", &reused) == RSSL_EARLY_DATA_ACCEPTED);
    CHECK(reused);
    CHECK(early_round(cconfig, server.port, t, len, "again", &reused) == RSSL_EARLY_DATA_REJECTED);
    CHECK(!reused);
    tls_server_join(&server);
    free(t);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* A server that takes no early data: rejected, and a ticket that does not
 * allow early data (none is sent at all). */
static void early_data_refused(void)
{
    const rssl_config *sconfig = ticket_server(false, 0, false);
    const rssl_config *cconfig = manual_client();
    struct tls_server server;
    tls_server_start(&server, sconfig, 2);
    rssl_conn *conn = NULL;
    CHECK_OK(ping_server(cconfig, server.port, NULL, 0, &conn));
    size_t len = 0;
    uint8_t *t = next_ticket(conn, &len);
    CHECK_OK(rssl_close(conn));
    bool reused = false;
    CHECK(early_round(cconfig, server.port, t, len, "early", &reused) == RSSL_EARLY_DATA_NONE);
    CHECK(reused);
    tls_server_join(&server);
    free(t);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

/* openssl s_server -early_data prints what came as early data. */
static void early_data_s_server(void)
{
    struct child server;
    const char *extra[] = {"-tls1_3", "-early_data", "-naccept", "2", NULL};
    unsigned short port = start_s_server(&server, extra);
    const rssl_config *cconfig = manual_client();
    rssl_conn *conn = NULL;
    CHECK_OK(rssl_connect(cconfig, "localhost", port, TEST_TIMEOUT_MS, &conn));
    CHECK_OK(rssl_send(conn, (const uint8_t *)"first\n", 6, TEST_TIMEOUT_MS));
    CHECK(child_wait_for(&server, "first", TEST_TIMEOUT_MS));
    child_write(&server, "x\n");
    unsigned char got[2];
    recv_exactly(conn, got, 2); /* after the tickets */
    size_t len = 0;
    uint8_t *t = next_ticket(conn, &len);
    CHECK_OK(rssl_close(conn));
    CHECK_OK(rssl_connect_early(cconfig, "localhost", port, t, len, (const uint8_t *)"zero-rtt\n",
                                9, TEST_TIMEOUT_MS, &conn));
    rssl_early_data status = RSSL_EARLY_DATA_NONE;
    CHECK_OK(rssl_conn_early_data_status(conn, &status));
    CHECK(status == RSSL_EARLY_DATA_ACCEPTED);
    CHECK(child_wait_for(&server, "zero-rtt", TEST_TIMEOUT_MS));
    CHECK_OK(rssl_close(conn));
    child_finish(&server, TEST_TIMEOUT_MS);
    free(t);
    rssl_config_free(cconfig);
}

/* openssl s_client -sess_out, then -sess_in -early_data: the early data is
 * what the rssl server reads first, and s_client says it was accepted. */
static void early_data_s_client(void)
{
    rssl_listener *listener = NULL;
    unsigned short port = 0;
    CHECK_OK(rssl_listen("127.0.0.1", 0, 8, &listener));
    CHECK_OK(rssl_listener_port(listener, &port));
    const rssl_config *config = ticket_server(false, 16384, true);
    const char *sess = cert_path("tickets_session.pem");
    const char *early = cert_path("tickets_early.txt");
    FILE *f = fopen(early, "w");
    CHECK(f != NULL);
    fputs("zero-rtt\n", f);
    fclose(f);
    for (int round = 0; round < 2; round++) {
        struct child client;
        const char *first[] = {"-tls1_3", "-sess_out", sess, NULL};
        const char *second[] = {"-tls1_3", "-sess_in", sess, "-early_data", early, NULL};
        start_s_client(&client, port, round == 0 ? first : second);
        rssl_conn *conn = NULL;
        CHECK_OK(rssl_accept(listener, config, TEST_TIMEOUT_MS, &conn));
        if (round == 1) {
            unsigned char got[9];
            recv_exactly(conn, got, 9);
            CHECK(memcmp(got, "zero-rtt\n", 9) == 0);
            rssl_early_data status = RSSL_EARLY_DATA_NONE;
            CHECK_OK(rssl_conn_early_data_status(conn, &status));
            CHECK(status == RSSL_EARLY_DATA_ACCEPTED);
        }
        /* s_client has the tickets when it prints what follows them. */
        CHECK_OK(rssl_send(conn, (const uint8_t *)"hi\n", 3, TEST_TIMEOUT_MS));
        CHECK(child_wait_for(&client, "hi", TEST_TIMEOUT_MS));
        if (round == 1)
            CHECK(child_wait_for(&client, "Early data was accepted", TEST_TIMEOUT_MS));
        child_close_input(&client);
        size_t len = 0;
        free(recv_all(conn, &len));
        CHECK_OK(rssl_close(conn));
        child_finish(&client, TEST_TIMEOUT_MS);
    }
    rssl_config_free(config);
    rssl_listener_free(listener);
}

static void wrong_calls(void)
{
    rssl_config_builder *b = NULL;
    CHECK_OK(rssl_config_builder_new(RSSL_ROLE_SERVER, &b));
    CHECK_RESULT(rssl_config_builder_set_anti_replay(b, 0, 5, 100), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_anti_replay(b, 10, 33, 100), RSSL_INVALID_ARGUMENT);
    CHECK_RESULT(rssl_config_builder_set_anti_replay(b, 10, 5, 0), RSSL_INVALID_ARGUMENT);
    rssl_config_builder_free(b);
    CHECK_RESULT(rssl_config_builder_set_manual_tickets(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_stateful_tickets(NULL, true), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_early_data(NULL, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_config_builder_set_anti_replay(NULL, 1, 1, 1), RSSL_NULL_PARAMETER);
    uint8_t buf[8];
    size_t n = 0;
    rssl_early_data status;
    CHECK_RESULT(rssl_conn_next_ticket(NULL, buf, sizeof buf, &n), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_set_early_data(NULL, buf, 1), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_conn_early_data_status(NULL, &status), RSSL_NULL_PARAMETER);
    CHECK_RESULT(rssl_connect_early(NULL, "localhost", 1, buf, 1, buf, 1, 0, NULL),
                 RSSL_NULL_PARAMETER);
    /* A server sends no early data; a client sets it before its handshake. */
    const rssl_config *sconfig = ticket_server(false, 16384, false);
    const rssl_config *cconfig = manual_client();
    rssl_conn *server = NULL, *client = NULL;
    CHECK_OK(rssl_conn_new(sconfig, NULL, &server));
    CHECK_RESULT(rssl_conn_set_early_data(server, buf, 1), RSSL_INVALID_STATE);
    CHECK_OK(rssl_conn_early_data_status(server, &status));
    CHECK(status == RSSL_EARLY_DATA_NONE);
    CHECK_OK(rssl_conn_new(cconfig, "localhost", &client));
    CHECK_RESULT(rssl_conn_next_ticket(client, buf, sizeof buf, &n), RSSL_NOT_AVAILABLE);
    CHECK_RESULT(rssl_conn_early_data_status(client, NULL), RSSL_NULL_PARAMETER);
    rssl_conn_free(server);
    rssl_conn_free(client);
    rssl_config_free(sconfig);
    rssl_config_free(cconfig);
}

static const struct test_case TESTS[] = {
    {"manual_tickets", manual_tickets},
    {"early_data_anti_replay", early_data_anti_replay},
    {"early_data_stateful", early_data_stateful},
    {"early_data_refused", early_data_refused},
    {"early_data_s_server", early_data_s_server},
    {"early_data_s_client", early_data_s_client},
    {"wrong_calls", wrong_calls},
};

int main(int argc, char **argv)
{
    return test_main(argc, argv, TESTS, sizeof TESTS / sizeof TESTS[0]);
}
