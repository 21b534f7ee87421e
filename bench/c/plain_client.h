/* A TLS client handshake with plain OpenSSL on a connected socket, as both
 * bench programs make them (openssl_hs.c over loopback TCP, cbench.c's
 * OpenSSL side): handshake, close_notify without waiting for the peer's,
 * free, close the socket. Returns 0, or -1 if the handshake failed. */
#ifndef RSSL_BENCH_PLAIN_CLIENT_H
#define RSSL_BENCH_PLAIN_CLIENT_H

#include <openssl/ssl.h>
#include <unistd.h>

static int plain_client_handshake(SSL_CTX *cctx, int fd)
{
    SSL *ssl = SSL_new(cctx);
    int ok = ssl && SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1;
    if (ok)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    return ok ? 0 : -1;
}

#endif
