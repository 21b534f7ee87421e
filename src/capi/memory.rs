//! Memory connections, for event loops: the application moves the
//! ciphertext between the connection and its sockets itself.
//!
//! ```c
//! rssl_conn *conn = NULL;
//! rssl_conn_new(config, "example.org", &conn);   // or NULL on a server
//! // whenever the socket is readable:
//! n = read(fd, buf, sizeof buf);                 // 0: rssl_conn_feed_eof
//! rssl_conn_feed(conn, buf, n);
//! r = rssl_conn_handshake_step(conn);            // until RSSL_OK, then:
//! r = rssl_conn_read(conn, plain, sizeof plain, &got);  // RSSL_WANT_READ: wait
//! rssl_conn_write(conn, reply, reply_len);
//! // whenever rssl_conn_wants says write:
//! rssl_conn_output(conn, &out, &out_len);
//! sent = write(fd, out, out_len);
//! rssl_conn_consume_output(conn, sent);
//! ```
//!
//! Nothing here blocks or touches a socket. The blocking calls
//! (`rssl_handshake`, `rssl_send`, `rssl_recv`, `rssl_shutdown`) refuse a
//! memory connection, and these calls refuse a socket connection, with
//! `RSSL_INVALID_STATE`. Queries (`rssl_conn_version`, `rssl_conn_peer_cert`,
//! ...) work on both. After a failure (e.g. `RSSL_TLS_ALERT`), send what the
//! output holds (the alert) and close the socket.

use super::config::rssl_config;
use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use crate::engine::connection::PeerName;
use crate::engine::{Connection, Progress, ReadOutcome};
use std::ffi::c_char;
use std::net::IpAddr;

impl rssl_conn {
    fn memory_only(&self, call: &str) -> Result<(), rssl_result> {
        if !self.is_memory() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} on a socket connection (use rssl_send/rssl_recv)"),
            ));
        }
        Ok(())
    }

    /// The whole output as a byte stream: TLS only (it would join DTLS
    /// datagrams).
    fn stream_output(&self, call: &str) -> Result<(), rssl_result> {
        if self.tls.is_datagram() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} on a DTLS connection (use rssl_conn_next_datagram)"),
            ));
        }
        Ok(())
    }

    fn established(&self, call: &str) -> Result<(), rssl_result> {
        if !self.tls.is_established() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} before the handshake completed"),
            ));
        }
        Ok(())
    }
}

impl rssl_conn {
    /// Creates a memory connection with `config`: no socket, no I/O. For a
    /// client, `server_name` (may be NULL) is sent as SNI unless it is an
    /// IP address and checked against the server certificate with
    /// `RSSL_VERIFY_PEER`; a server ignores it. A client's first
    /// `rssl_conn_handshake_step` puts its hello in the output. Free with
    /// `rssl_conn_free` (or `rssl_close`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_new(
        config: *const rssl_config,
        server_name: *const c_char,
        conn_out: *mut *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let config = try_ref!(config);
            let conn_out = try_mut!(conn_out);
            let server_name = if server_name.is_null() { None } else { Some(try_str!(server_name)) };
            let peer = match (config.config.role(), server_name) {
                (crate::engine::Role::Client, Some(host)) => PeerName {
                    sni: host.parse::<IpAddr>().is_err().then(|| host.to_string()),
                    verify_host: Some(host.to_string()),
                    session_key: None,
                },
                _ => PeerName::default(),
            };
            match Connection::new(&config.config, &peer) {
                Ok(tls) => {
                    *conn_out = Box::into_raw(Box::new(rssl_conn::with(tls, None)));
                    RSSL_OK
                }
                Err(e) => error::engine(&e),
            }
        }
    }

    /// Hands ciphertext received from the peer to the connection (all
    /// `len` bytes are kept). Then call `rssl_conn_handshake_step` or
    /// `rssl_conn_read`. On a DTLS connection each call hands over exactly
    /// one datagram, whole (an empty one is ignored).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_feed(
        conn: *mut rssl_conn,
        data: *const u8,
        len: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let data = try_slice!(data, len);
            try_result!(conn.memory_only("rssl_conn_feed"));
            if conn.eof {
                return error::set(RSSL_INVALID_STATE, "data fed after the end of stream");
            }
            if !data.is_empty() {
                conn.tls.receive(data);
                conn.want_read = false;
            }
            RSSL_OK
        }
    }

    /// Tells the connection that the peer's stream ended (read(2) gave 0).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_feed_eof(conn: *mut rssl_conn) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.memory_only("rssl_conn_feed_eof"));
            if conn.tls.is_datagram() {
                return error::set(RSSL_INVALID_STATE, "rssl_conn_feed_eof on a DTLS connection: UDP has no end of stream");
            }
            conn.eof = true;
            conn.want_read = false;
            conn.tls.receive_eof();
            RSSL_OK
        }
    }

    /// Advances the handshake with the input fed so far: `RSSL_OK` once it
    /// is complete (at once on an established connection), `RSSL_WANT_READ`
    /// when it needs more from the peer (send the output first),
    /// `RSSL_HELLO` when it stopped after the peer's hello (see
    /// `rssl_config_builder_set_pause_after_hello`), `RSSL_PAUSED` while an
    /// asynchronous callback has no answer yet (step again on this thread
    /// once it has),
    /// `RSSL_CLOSED` when the stream ended, or the failure
    /// (`RSSL_TLS_ALERT`: the alert is in the output). A DTLS handshake
    /// also needs its retransmission timer driven
    /// (`rssl_conn_retransmit_timeout`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_handshake_step(conn: *mut rssl_conn) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.memory_only("rssl_conn_handshake_step"));
            try_result!(conn.check_resumable());
            if conn.gave_up {
                return error::set(RSSL_TIMEOUT, "the DTLS handshake gave up retransmitting");
            }
            match conn.tls.handshake() {
                Ok(Progress::Done) => {
                    conn.established_now();
                    RSSL_OK
                }
                Ok(Progress::Pending) if conn.tls.hello_waiting().is_some() => RSSL_HELLO,
                Ok(Progress::Pending) if conn.tls.is_paused() => RSSL_PAUSED,
                Ok(Progress::Pending) if conn.eof => {
                    error::set(RSSL_CLOSED, "connection closed during the handshake")
                }
                Ok(Progress::Pending) => {
                    conn.want_read = true;
                    RSSL_WANT_READ
                }
                Err(e) => error::engine(&e),
            }
        }
    }

    /// Decrypts plaintext into `buf` (at most `len` bytes; `*n_out` gets
    /// the count): `RSSL_OK` with at least one byte, `RSSL_WANT_READ` when
    /// no complete record is buffered, `RSSL_CLOSED` once the peer closed.
    /// On a DTLS connection one call gives one record, the peer's write
    /// (what does not fit in `buf` comes with the next call: a buffer of
    /// `RSSL_DTLS_MAX_PLAINTEXT` bytes takes any record whole).
    /// Reading may queue output (a TLS 1.3 key update answer): check
    /// `rssl_conn_wants` after it.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_read(
        conn: *mut rssl_conn,
        buf: *mut u8,
        len: usize,
        n_out: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let n_out = try_mut!(n_out);
            *n_out = 0;
            if buf.is_null() && len != 0 {
                return error::null_parameter("buf");
            }
            try_result!(conn.memory_only("rssl_conn_read"));
            try_result!(conn.established("rssl_conn_read"));
            if len == 0 {
                return RSSL_OK;
            }
            // SAFETY: pointer rules: `buf` is non-NULL (len > 0) and holds `len` bytes.
            let buf = unsafe { std::slice::from_raw_parts_mut(buf, len) };
            if !conn.early_plain.is_empty() {
                // A server's early data, before the rest.
                let n = len.min(conn.early_plain.len());
                buf[..n].copy_from_slice(&conn.early_plain[..n]);
                conn.early_plain.drain(..n);
                *n_out = n;
                return RSSL_OK;
            }
            match conn.tls.read(buf) {
                Ok(ReadOutcome::Data(n)) => {
                    *n_out = n;
                    RSSL_OK
                }
                Ok(ReadOutcome::WouldBlock) => {
                    conn.want_read = true;
                    RSSL_WANT_READ
                }
                Ok(ReadOutcome::Closed) => error::set(RSSL_CLOSED, "connection closed by peer"),
                Err(e) => error::engine(&e),
            }
        }
    }

    /// Encrypts all `len` bytes of `data` into the output. On a DTLS
    /// connection: one record in one datagram, at most
    /// `RSSL_DTLS_MAX_PLAINTEXT` bytes (`RSSL_INVALID_ARGUMENT`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_write(
        conn: *mut rssl_conn,
        data: *const u8,
        len: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let data = try_slice!(data, len);
            try_result!(conn.memory_only("rssl_conn_write"));
            try_result!(conn.established("rssl_conn_write"));
            try_result!(conn.check_datagram_size(data.len()));
            if conn.shut_down {
                return error::set(RSSL_CLOSED, "write after rssl_conn_close_notify");
            }
            match conn.tls.write(data) {
                Ok(()) => RSSL_OK,
                Err(e) => error::engine(&e),
            }
        }
    }

    /// Starts a TLS 1.2 (or older) renegotiation: our HelloRequest
    /// (server) or ClientHello (client) goes into the output; the rest
    /// happens as the peer's records are fed and read with
    /// `rssl_conn_read` (which may then return `RSSL_WANT_READ` while
    /// handshake records pass). `rssl_conn_renegotiation_pending` says
    /// when it has completed. `RSSL_INVALID_STATE` on TLS 1.3.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_renegotiate(conn: *mut rssl_conn) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.memory_only("rssl_conn_renegotiate"));
            try_result!(conn.not_dtls("rssl_conn_renegotiate"));
            try_result!(conn.post_handshake_ready("rssl_conn_renegotiate"));
            match conn.tls.renegotiate() {
                Ok(()) => RSSL_OK,
                Err(e) => super::conn::post_handshake_error(conn, &e),
            }
        }
    }

    /// Whether a renegotiation started with `rssl_conn_renegotiate` is
    /// still going on (`*pending_out`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_renegotiation_pending(
        conn: *const rssl_conn,
        pending_out: *mut bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let pending_out = try_mut!(pending_out);
            *pending_out = conn.tls.renegotiation_pending();
            RSSL_OK
        }
    }

    /// TLS 1.3: queues a KeyUpdate in the output (new keys for what we
    /// write from now on); with `peer_too` the peer is asked to update its
    /// keys too. `RSSL_INVALID_STATE` before TLS 1.3.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_update_keys(
        conn: *mut rssl_conn,
        peer_too: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.memory_only("rssl_conn_update_keys"));
            try_result!(conn.post_handshake_ready("rssl_conn_update_keys"));
            match conn.tls.update_keys(peer_too) {
                Ok(()) => RSSL_OK,
                Err(e) => super::conn::post_handshake_error(conn, &e),
            }
        }
    }

    /// Queues close_notify in the output; writing is over, reading goes on
    /// until the peer closes too.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_close_notify(conn: *mut rssl_conn) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.memory_only("rssl_conn_close_notify"));
            try_result!(conn.established("rssl_conn_close_notify"));
            if !conn.shut_down {
                conn.tls.close();
                conn.shut_down = true;
            }
            RSSL_OK
        }
    }

    /// Points `*data_out` at the ciphertext waiting to be sent and stores
    /// its size in `*len_out` (0: nothing to send). The bytes stay owned by
    /// the connection and valid until the next call on it; after sending
    /// some, call `rssl_conn_consume_output`. `RSSL_INVALID_STATE` on a
    /// DTLS connection: use `rssl_conn_next_datagram`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_output(
        conn: *const rssl_conn,
        data_out: *mut *const u8,
        len_out: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let data_out = try_mut!(data_out);
            let len_out = try_mut!(len_out);
            try_result!(conn.memory_only("rssl_conn_output"));
            try_result!(conn.stream_output("rssl_conn_output"));
            let output = conn.tls.output();
            *data_out = output.as_ptr();
            *len_out = output.len();
            RSSL_OK
        }
    }

    /// Drops the first `n` bytes of the output (they were sent).
    /// `RSSL_INVALID_ARGUMENT` when `n` is more than the output holds. On
    /// a DTLS connection `n` is the length of the datagram
    /// `rssl_conn_next_datagram` gave, which is dropped whole.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_consume_output(
        conn: *mut rssl_conn,
        n: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.memory_only("rssl_conn_consume_output"));
            if conn.tls.is_datagram() {
                let next = conn.tls.next_datagram().map_or(0, <[u8]>::len);
                if n != next {
                    return error::invalid_argument(format!("consume {n} bytes of a {next}-byte datagram"));
                }
            }
            let pending = conn.tls.output().len();
            if n > pending {
                return error::invalid_argument(format!("consume {n} bytes of {pending}"));
            }
            conn.tls.consume_output(n);
            RSSL_OK
        }
    }

    /// Copies up to `len` bytes of the output into `buf` and drops them
    /// from the output; `*n_out` gets the count (0: nothing to send).
    /// `RSSL_INVALID_STATE` on a DTLS connection (see
    /// `rssl_conn_next_datagram`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_take_output(
        conn: *mut rssl_conn,
        buf: *mut u8,
        len: usize,
        n_out: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let n_out = try_mut!(n_out);
            *n_out = 0;
            if buf.is_null() && len != 0 {
                return error::null_parameter("buf");
            }
            try_result!(conn.memory_only("rssl_conn_take_output"));
            try_result!(conn.stream_output("rssl_conn_take_output"));
            let output = conn.tls.output();
            let n = output.len().min(len);
            if n > 0 {
                // SAFETY: pointer rules: `buf` holds `len` >= `n` bytes (and is
                // not our output buffer).
                unsafe { std::ptr::copy_nonoverlapping(output.as_ptr(), buf, n) };
                conn.tls.consume_output(n);
            }
            *n_out = n;
            RSSL_OK
        }
    }

    /// What the connection waits for: `*read_out` is true when the last
    /// `rssl_conn_handshake_step` or `rssl_conn_read` returned
    /// `RSSL_WANT_READ` and nothing was fed since; `*write_out` is true
    /// while the output holds ciphertext to send. Either pointer may be
    /// NULL.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_wants(
        conn: *const rssl_conn,
        read_out: *mut bool,
        write_out: *mut bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            try_result!(conn.memory_only("rssl_conn_wants"));
            // SAFETY: pointer rules (both outputs may be NULL).
            if let Some(read_out) = unsafe { read_out.as_mut() } {
                *read_out = conn.want_read;
            }
            if let Some(write_out) = unsafe { write_out.as_mut() } {
                *write_out = !conn.tls.output().is_empty();
            }
            RSSL_OK
        }
    }
}
