#!/bin/sh
# The example programs against each other and against openssl s_client:
#   run_examples.sh EXAMPLES_DIR CERT_DIR (blocking|event|dtls)
# blocking: examples/server with examples/client, one client at a time.
# event:    examples/event_server with 20 clients at once plus s_client.
# dtls:     examples/dtls_echo, its client and s_client -dtls1_2.
set -eu
ex=$1
certs=$2
mode=$3
openssl=${OPENSSL:-openssl}
tmp=$(mktemp -d)
server=
cleanup() {
  status=$?
  if [ $status -ne 0 ]; then
    echo "failed ($status); server output:"; cat "$tmp/server.out" 2>/dev/null || true
  fi
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Polls until `grep -q PATTERN FILE` matches, for at most 60 seconds.
wait_for() { # pattern file
  deadline=$(($(date +%s) + 60))
  until grep -q "$1" "$2"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

start() { # program count
  : > "$tmp/server.out"   # there before the background server opens it
  "$ex/$1" 0 "$certs/server.pem" "$certs/server.key" "$2" > "$tmp/server.out" 2>&1 &
  server=$!
  wait_for '^listening on ' "$tmp/server.out" ||
    { echo "server did not start"; cat "$tmp/server.out"; exit 1; }
  port=$(sed -n 's/^listening on //p' "$tmp/server.out")
}

ask() { # message (checks the echo)
  reply=$("$ex/client" localhost "$port" "$certs/ca.pem" "$1")
  [ "$reply" = "$1" ] || { echo "sent '$1', got '$reply'"; exit 1; }
}

case $mode in
blocking)
  start server 3
  ask "hello from the example client"
  ask "a second connection"
  # A client that does not trust the server fails with unknown_ca.
  if "$ex/client" localhost "$port" "$certs/other_ca.pem" x 2> "$tmp/err"; then
    echo "untrusted server accepted"; exit 1
  fi
  grep -q "alert: unknown_ca" "$tmp/err" || { cat "$tmp/err"; exit 1; }
  ;;
event)
  start event_server 22
  i=0
  pids=""
  while [ $i -lt 20 ]; do
    ( ask "concurrent client $i" ) > "$tmp/c$i" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
  done
  for p in $pids; do wait "$p" || { cat "$tmp"/c*; exit 1; }; done
  # openssl s_client, TLS 1.2 and 1.3, through the same loop.
  # s_client closes at the end of its input, so its input (a FIFO) stays
  # open until the echo has come back.
  mkfifo "$tmp/s_client.in"
  # An s_client that died makes writing to it fail rather than kill us.
  trap '' PIPE
  for v in -tls1_2 -tls1_3; do
    "$openssl" s_client -connect "127.0.0.1:$port" $v -CAfile "$certs/ca.pem" \
      -verify_return_error -brief < "$tmp/s_client.in" > "$tmp/s_client" 2>&1 &
    client=$!
    exec 3> "$tmp/s_client.in"
    printf 'line %s from s_client\n' "$v" >&3
    wait_for "^line $v from s_client" "$tmp/s_client" || { cat "$tmp/s_client"; exit 1; }
    exec 3>&-
    wait "$client" || { echo "s_client $v failed"; cat "$tmp/s_client"; exit 1; }
  done
  ;;
dtls)
  : > "$tmp/server.out"
  "$ex/dtls_echo" server 0 "$certs/server.pem" "$certs/server.key" 3 > "$tmp/server.out" 2>&1 &
  server=$!
  wait_for '^listening on ' "$tmp/server.out" ||
    { echo "server did not start"; cat "$tmp/server.out"; exit 1; }
  port=$(sed -n 's/^listening on //p' "$tmp/server.out")
  # The event-loop client: each line one datagram, each echoed.
  printf 'first datagram\nsecond datagram\n' |
    "$ex/dtls_echo" client localhost "$port" "$certs/ca.pem" > "$tmp/client" 2>&1 ||
    { cat "$tmp/client"; exit 1; }
  grep -q '^connected: dtlsv1.2' "$tmp/client" &&
    grep -q '^echo: first datagram' "$tmp/client" &&
    grep -q '^echo: second datagram' "$tmp/client" || { cat "$tmp/client"; exit 1; }
  # A client that does not trust the server gives up on the handshake.
  if echo x | "$ex/dtls_echo" client localhost "$port" "$certs/other_ca.pem" > "$tmp/err" 2>&1; then
    echo "untrusted DTLS server accepted"; exit 1
  fi
  grep -q "unknown_ca\|certificate" "$tmp/err" || { cat "$tmp/err"; exit 1; }
  # openssl s_client -dtls1_2 against the example server.
  mkfifo "$tmp/s_client.in"
  trap '' PIPE
  "$openssl" s_client -connect "127.0.0.1:$port" -dtls1_2 -CAfile "$certs/ca.pem" \
    -verify_return_error -brief < "$tmp/s_client.in" > "$tmp/s_client" 2>&1 &
  client=$!
  exec 3> "$tmp/s_client.in"
  printf 'line from s_client\n' >&3
  wait_for "^line from s_client" "$tmp/s_client" || { cat "$tmp/s_client"; exit 1; }
  exec 3>&-
  wait "$client" || { echo "s_client failed"; cat "$tmp/s_client"; exit 1; }
  ;;
esac
wait $server || { echo "server failed"; cat "$tmp/server.out"; exit 1; }
server=
echo "examples ($mode): ok"
