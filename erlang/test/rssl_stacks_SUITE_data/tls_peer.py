#!/usr/bin/env python3
"""A TLS peer on Python's ssl module, for rssl_stacks_SUITE.

client: connects to 127.0.0.1:PORT, checks the server certificate against
  --cafile for host "localhost", sends the bytes of --send, then half-closes
  (sends close_notify and keeps reading, RFC 8446 6.1) and writes everything
  the server sends until its close_notify to --out.
server: listens on 127.0.0.1, port chosen by the system, prints
  "PORT <n>" on stdout, accepts one connection and echoes what it reads until
  the client's close_notify, then closes.
Both print "VERSION <TLS version>" and exit 0 on success.
"""
import argparse
import socket
import ssl
import sys

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def pin(ctx, version):
    ctx.minimum_version = VERSIONS[version]
    ctx.maximum_version = VERSIONS[version]


def half_close(tls):
    """Sends close_notify without waiting for the peer's: SSL_shutdown's
    first step. unwrap() would then wait for the peer's close_notify and
    drop the data before it, so a zero timeout stops it after the send."""
    tls.settimeout(0)
    try:
        tls.unwrap()
        raise SystemExit("peer closed before answering")
    except (ssl.SSLWantReadError, TimeoutError, BlockingIOError):
        pass
    tls.settimeout(None)


def client(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.cafile)
    pin(ctx, args.version)
    with socket.create_connection(("127.0.0.1", args.port), timeout=20) as raw:
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        print("VERSION", tls.version(), flush=True)
        with open(args.send, "rb") as f:
            tls.sendall(f.read())
        if args.half_close:
            half_close(tls)
        received = []
        while True:
            try:
                chunk = tls.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            received.append(chunk)
        with open(args.out, "wb") as f:
            f.write(b"".join(received))


def server(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    pin(ctx, args.version)
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(20)
        print("PORT", lsock.getsockname()[1], flush=True)
        conn, _ = lsock.accept()
        conn.settimeout(20)
        tls = ctx.wrap_socket(conn, server_side=True)
        print("VERSION", tls.version(), flush=True)
        while True:
            try:
                chunk = tls.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            tls.sendall(chunk)
        try:
            tls.unwrap()  # our close_notify; the client may be gone already
        except (OSError, ssl.SSLError):
            pass
        tls.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["client", "server"])
    p.add_argument("--version", choices=sorted(VERSIONS), required=True)
    p.add_argument("--port", type=int)
    p.add_argument("--cafile")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--send")
    p.add_argument("--out")
    p.add_argument("--half-close", action="store_true")
    args = p.parse_args()
    try:
        (client if args.role == "client" else server)(args)
    except (OSError, ssl.SSLError) as e:
        print("ERROR", repr(e), flush=True)
        sys.exit(1)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
