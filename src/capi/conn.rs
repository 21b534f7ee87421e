//! TLS connections over blocking sockets.
//!
//! Each call does its own I/O with poll(2) and per-call non-blocking
//! send/recv over the engine's memory interface, and returns by its timeout
//! (`timeout_ms`: milliseconds, negative waits forever, 0 does only what is
//! possible at once). A connection owns its socket and closes it when freed.
//!
//! A connection is used by one thread at a time (any thread): the caller
//! serialises calls on the same `rssl_conn`. Different connections are
//! independent.

use super::config::rssl_config;
use super::error;
use super::result::rssl_result::{self, *};
use super::socket::{self, Deadline, Interest};
use crate::engine::connection::PeerName;
use crate::engine::{Connection, Progress, ReadOutcome};
use std::ffi::{c_char, c_int};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Wait forever (for any `timeout_ms` argument).
pub const RSSL_INFINITY: i32 = -1;

/// How much ciphertext one recv(2) may bring in.
const RECV_CHUNK: usize = 32 * 1024;
/// How long `rssl_close` and failing handshakes try to deliver their last
/// record (close_notify, alert) before dropping it.
const LAST_WORDS_MS: i32 = 100;

/// A TLS connection: on a socket it owns (`rssl_connect`, `rssl_accept`,
/// `rssl_conn_from_fd`), or in memory for an event loop (`rssl_conn_new`,
/// see memory.rs).
pub struct rssl_conn {
    pub(super) tls: Connection,
    /// None for a memory connection.
    fd: Option<OwnedFd>,
    /// The transport reached end of stream.
    pub(super) eof: bool,
    /// We sent close_notify: nothing more may be written.
    pub(super) shut_down: bool,
    /// Plaintext to hand out before what the engine decrypts next: a
    /// server's 0-RTT early data, and what arrived while a send waited on
    /// a renegotiation.
    pub(super) early_plain: Vec<u8>,
    /// TLS 1.3 tickets received (manual tickets), oldest first.
    pub(super) tickets: std::collections::VecDeque<Vec<u8>>,
    /// Memory connections: the last step or read stopped for want of input.
    pub(super) want_read: bool,
    /// The hello extension last handed out by `rssl_conn_hello_extension`.
    pub(super) hello_data: Vec<u8>,
    /// DTLS: OpenSSL gave up retransmitting the handshake (dtls.rs).
    pub(super) gave_up: bool,
}

impl rssl_conn {
    fn new(config: &rssl_config, fd: OwnedFd, peer: &PeerName) -> Result<rssl_conn, rssl_result> {
        let tls = Connection::new(&config.config, peer).map_err(|e| error::engine(&e))?;
        Ok(rssl_conn::with(tls, Some(fd)))
    }

    pub(super) fn with(mut tls: Connection, fd: Option<OwnedFd>) -> rssl_conn {
        tls.allow_pausing_if_asked();
        rssl_conn {
            tls,
            fd,
            eof: false,
            shut_down: false,
            early_plain: Vec::new(),
            tickets: Default::default(),
            want_read: false,
            hello_data: Vec::new(),
            gave_up: false,
        }
    }

    /// A handshake paused by an asynchronous callback resumes only on the
    /// thread it paused on (OpenSSL's async jobs keep that thread's state).
    pub(super) fn check_resumable(&self) -> Result<(), rssl_result> {
        if self.tls.paused_elsewhere() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                "the handshake is paused on another thread: resume it there",
            ));
        }
        Ok(())
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    pub(super) fn is_memory(&self) -> bool {
        self.fd.is_none()
    }

    /// Calls that DTLS connections do not have.
    pub(super) fn not_dtls(&self, call: &str) -> Result<(), rssl_result> {
        if self.tls.is_datagram() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} on a DTLS connection (TLS only)"),
            ));
        }
        Ok(())
    }

    /// Blocking calls need a socket.
    fn socket_only(&self, call: &str) -> Result<(), rssl_result> {
        if self.is_memory() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} on a memory connection (it has no socket)"),
            ));
        }
        Ok(())
    }

    /// Sends queued ciphertext without waiting; stops when the socket is full.
    fn send_some(&mut self) -> Result<(), rssl_result> {
        if self.tls.is_datagram() {
            self.send_datagrams();
            return Ok(());
        }
        while !self.tls.output().is_empty() {
            match socket::send_now(self.raw_fd(), self.tls.output()) {
                Ok(n) => self.tls.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(socket::io_error("send", &e)),
            }
        }
        Ok(())
    }

    /// Receives what the socket has without waiting.
    fn recv_some(&mut self) -> Result<(), rssl_result> {
        if self.tls.is_datagram() {
            return self.recv_datagram();
        }
        let fd = self.raw_fd();
        match self
            .tls
            .receive_with(RECV_CHUNK, |buf| socket::recv_now(fd, buf))
        {
            Ok(0) => {
                self.eof = true;
                self.tls.receive_eof();
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            // A reset peer is a closed peer, as OTP reports it.
            Err(e) if socket::is_disconnect(&e) => {
                self.eof = true;
                self.tls.receive_eof();
                Ok(())
            }
            Err(e) => Err(socket::io_error("recv", &e)),
        }
    }

    /// Sends all queued ciphertext before the deadline.
    fn flush(&mut self, deadline: Deadline) -> Result<(), rssl_result> {
        loop {
            self.send_some()?;
            if self.tls.output().is_empty() {
                return Ok(());
            }
            let interest = Interest {
                read: false,
                write: true,
            };
            socket::wait(self.raw_fd(), interest, deadline)?;
        }
    }

    /// Waits for input (sending queued output meanwhile) and takes it in.
    fn pull(&mut self, deadline: Deadline) -> Result<(), rssl_result> {
        if self.eof {
            return Err(error::set(RSSL_CLOSED, "connection closed by peer"));
        }
        self.send_some()?;
        let interest = Interest {
            read: true,
            write: !self.tls.output().is_empty(),
        };
        // A DTLS handshake waits at most until its retransmission timer.
        let timer = self.tls.retransmit_timeout();
        let until = timer.map_or(deadline, |left| deadline.at_most(left));
        let ready = match socket::wait(self.raw_fd(), interest, until) {
            Err(RSSL_TIMEOUT) if timer.is_some() && !deadline.passed() => {
                return self.retransmit();
            }
            ready => ready?,
        };
        if ready.write {
            self.send_some()?;
        }
        if ready.read {
            self.recv_some()?;
        }
        Ok(())
    }

    /// Records an engine failure after trying to tell the peer (the alert
    /// OpenSSL queued, if any).
    fn fail(&mut self, err: &crate::engine::Error) -> rssl_result {
        let _ = self.flush(Deadline::after_ms(LAST_WORDS_MS));
        error::engine(err)
    }

    /// The handshake is done: a server's early data comes first.
    pub(super) fn established_now(&mut self) {
        let mut early = self.tls.take_early_data();
        if !early.is_empty() {
            early.append(&mut self.early_plain);
            self.early_plain = early;
        }
    }

    pub(super) fn handshake(&mut self, deadline: Deadline) -> rssl_result {
        try_result!(self.check_resumable());
        loop {
            match self.tls.handshake() {
                Ok(Progress::Done) => {
                    self.established_now();
                    return match self.flush(deadline) {
                        Ok(()) => RSSL_OK,
                        Err(result) => result,
                    };
                }
                Ok(Progress::Pending) if self.tls.hello_waiting().is_some() => {
                    return match self.flush(deadline) {
                        Ok(()) => RSSL_HELLO,
                        Err(result) => result,
                    }
                }
                Ok(Progress::Pending) if self.tls.is_paused() => {
                    return match self.flush(deadline) {
                        Ok(()) => RSSL_PAUSED,
                        Err(result) => result,
                    }
                }
                Ok(Progress::Pending) => {
                    if self.eof {
                        return error::set(RSSL_CLOSED, "connection closed during the handshake");
                    }
                    try_result!(self.pull(deadline));
                }
                Err(e) => return self.fail(&e),
            }
        }
    }

    fn send(&mut self, data: &[u8], deadline: Deadline) -> rssl_result {
        if !self.tls.is_established() {
            return error::set(RSSL_INVALID_STATE, "send before the handshake completed");
        }
        try_result!(self.check_datagram_size(data.len()));
        if self.shut_down {
            return error::set(RSSL_CLOSED, "send after rssl_shutdown");
        }
        if let Err(e) = self.tls.write(data) {
            return self.fail(&e);
        }
        // A TLS 1.2 renegotiation holds plaintext until the peer answers.
        self.read_aside_while(deadline, |tls| tls.pending_plaintext() > 0)
    }

    /// Reads while `busy` holds (a renegotiation under way), keeping the
    /// application data that arrives meanwhile for rssl_recv; then flushes.
    fn read_aside_while(
        &mut self,
        deadline: Deadline,
        busy: impl Fn(&Connection) -> bool,
    ) -> rssl_result {
        while busy(&self.tls) {
            try_result!(self.pull(deadline));
            loop {
                match self.tls.read_onto(&mut self.early_plain, RECV_CHUNK) {
                    Ok(ReadOutcome::Data(_)) => {}
                    Ok(ReadOutcome::WouldBlock) => break,
                    Ok(ReadOutcome::Closed) => {
                        return error::set(RSSL_CLOSED, "connection closed by peer")
                    }
                    Err(e) => return self.fail(&e),
                }
            }
        }
        match self.flush(deadline) {
            Ok(()) => RSSL_OK,
            Err(result) => result,
        }
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, rssl_result> {
        if !self.tls.is_established() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                "recv before the handshake completed",
            ));
        }
        if !self.early_plain.is_empty() {
            let n = buf.len().min(self.early_plain.len());
            buf[..n].copy_from_slice(&self.early_plain[..n]);
            self.early_plain.drain(..n);
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.tls.read(buf) {
                Ok(ReadOutcome::Data(n)) => {
                    // Answers to post-handshake messages (key update) go
                    // out now if the socket takes them, else with the next call.
                    self.send_some()?;
                    return Ok(n);
                }
                Ok(ReadOutcome::Closed) => {
                    return Err(error::set(RSSL_CLOSED, "connection closed by peer"))
                }
                Ok(ReadOutcome::WouldBlock) => self.pull(deadline)?,
                Err(e) => return Err(self.fail(&e)),
            }
        }
    }

    /// Renegotiation and key updates need an established, open connection.
    pub(super) fn post_handshake_ready(&self, call: &str) -> Result<(), rssl_result> {
        if !self.tls.is_established() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} before the handshake completed"),
            ));
        }
        if self.shut_down || self.eof {
            return Err(error::set(
                RSSL_CLOSED,
                format!("{call} on a closed connection"),
            ));
        }
        Ok(())
    }

    /// Drives a renegotiation we started until it completes.
    fn renegotiate(&mut self, deadline: Deadline) -> rssl_result {
        try_result!(self.flush(deadline));
        self.read_aside_while(deadline, |tls| tls.renegotiation_pending())
    }

    fn shutdown(&mut self, deadline: Deadline) -> rssl_result {
        if !self.shut_down {
            self.tls.close();
            self.shut_down = true;
        }
        try_result!(self.flush(deadline));
        if !self.tls.is_datagram() {
            // The peer sees end of stream after close_notify; reading goes on.
            // SAFETY: a plain system call on our own fd; a failure only means the peer is gone.
            unsafe { libc::shutdown(self.raw_fd(), libc::SHUT_WR) };
        }
        RSSL_OK
    }
}

/// The peer name a client checks: SNI for host names, and the host or
/// address to match against the certificate.
fn client_peer(host: Option<&str>) -> PeerName {
    match host {
        None => PeerName::default(),
        Some(host) => PeerName {
            sni: host.parse::<IpAddr>().is_err().then(|| host.to_string()),
            verify_host: Some(host.to_string()),
            session_key: None,
        },
    }
}

pub(super) fn connect(
    config: &rssl_config,
    host: &str,
    port: u16,
    session: Option<&[u8]>,
    early_data: Option<&[u8]>,
    timeout_ms: i32,
    conn_out: &mut *mut rssl_conn,
) -> rssl_result {
    if config.config.role() != crate::engine::Role::Client {
        return error::set(
            RSSL_INVALID_ARGUMENT,
            "rssl_connect needs a client configuration",
        );
    }
    // Checked before connecting, so a bad session costs no connection.
    let saved = match session.map(openssl::ssl::SslSession::from_der) {
        Some(Err(_)) => return error::invalid_argument("not a saved session"),
        _ => session,
    };
    let dtls = config.config.options().is_dtls();
    if dtls && early_data.is_some() {
        return error::set(
            RSSL_INVALID_STATE,
            "early data on a DTLS connection (TLS 1.3 only)",
        );
    }
    let deadline = Deadline::after_ms(timeout_ms);
    let fd = match if dtls {
        super::udp::connect(host, port)
    } else {
        socket::connect(host, port, deadline)
    } {
        Ok(fd) => fd,
        Err(result) => return result,
    };
    let mut conn = match rssl_conn::new(config, fd, &client_peer(Some(host))) {
        Ok(conn) => conn,
        Err(result) => return result,
    };
    if let Some(der) = saved {
        if let Err(e) = conn.tls.set_session(der) {
            return error::set(RSSL_INVALID_ARGUMENT, e.to_string());
        }
    }
    if let Some(data) = early_data {
        conn.tls.set_early_data(data.to_vec(), false);
    }
    match conn.handshake(deadline) {
        RSSL_OK => hand_out(conn, conn_out),
        stopped @ (RSSL_HELLO | RSSL_PAUSED) => {
            hand_out(conn, conn_out);
            stopped
        }
        failed => failed,
    }
}

/// A renegotiation or key update the engine refused: the wrong version is
/// a state error; anything else is the connection's failure.
pub(super) fn post_handshake_error(
    conn: &mut rssl_conn,
    err: &crate::engine::Error,
) -> rssl_result {
    match err {
        crate::engine::Error::Option(_, why) => error::set(RSSL_INVALID_STATE, why.clone()),
        _ if conn.is_memory() => error::engine(err),
        _ => conn.fail(err),
    }
}

/// Stores a new connection in `*conn_out`.
fn hand_out(conn: rssl_conn, conn_out: &mut *mut rssl_conn) -> rssl_result {
    *conn_out = Box::into_raw(Box::new(conn));
    RSSL_OK
}

impl rssl_conn {
    /// Connects to `host`:`port` (resolved with getaddrinfo, each address
    /// tried in turn) and runs the client handshake, all within
    /// `timeout_ms` (name resolution itself is not bounded).
    ///
    /// Unless `host` is an IP address it is sent as SNI; with
    /// `RSSL_VERIFY_PEER` the server certificate must match `host` (name or
    /// address). On success `*conn_out` owns the connection; on failure it
    /// is left unchanged and nothing stays open. A rejected handshake gives
    /// `RSSL_TLS_ALERT` (see `rssl_last_alert`). With a configuration that
    /// stops after the hello, `RSSL_HELLO` with `*conn_out` owning the
    /// stopped connection (see `rssl_conn_hello_continue`); likewise
    /// `RSSL_PAUSED` while an asynchronous callback has no answer yet
    /// (go on with `rssl_handshake` on this thread).
    ///
    /// With a DTLS configuration: one UDP socket connected to the first
    /// address of `host`, and the handshake over it, retransmitting lost
    /// flights as OpenSSL's timer says; a server that never answers gives
    /// `RSSL_TIMEOUT` (at `timeout_ms`, or when OpenSSL gives up).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_connect(
        config: *const rssl_config,
        host: *const c_char,
        port: u16,
        timeout_ms: i32,
        conn_out: *mut *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let config = try_ref!(config);
            let host = try_str!(host);
            let conn_out = try_mut!(conn_out);
            connect(config, host, port, None, None, timeout_ms, conn_out)
        }
    }

    /// `rssl_connect`, offering a saved session (from `rssl_conn_session`)
    /// for resumption; `rssl_conn_session_reused` tells whether the server
    /// took it. A session that is not one gives `RSSL_INVALID_ARGUMENT`
    /// before any connection is made.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_connect_session(
        config: *const rssl_config,
        host: *const c_char,
        port: u16,
        session: *const u8,
        session_len: usize,
        timeout_ms: i32,
        conn_out: *mut *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let config = try_ref!(config);
            let host = try_str!(host);
            let session = try_slice!(session, session_len);
            let conn_out = try_mut!(conn_out);
            connect(config, host, port, Some(session), None, timeout_ms, conn_out)
        }
    }

    /// Wraps an already connected stream socket `fd` (a connected UDP
    /// socket for a DTLS configuration; the wrong kind is
    /// `RSSL_INVALID_ARGUMENT`) in a connection that
    /// takes ownership of it (freeing the connection closes `fd`; on
    /// failure the caller keeps it). The fd's flags are left as they are;
    /// blocking or not, rssl's own calls wait only as their timeout says.
    ///
    /// For a client configuration, `server_name` (may be NULL) is sent as
    /// SNI unless it is an IP address, and checked against the server
    /// certificate with `RSSL_VERIFY_PEER`. It is ignored for a server.
    /// Call `rssl_handshake` next.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_from_fd(
        config: *const rssl_config,
        fd: c_int,
        server_name: *const c_char,
        conn_out: *mut *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let config = try_ref!(config);
            let conn_out = try_mut!(conn_out);
            let server_name = if server_name.is_null() {
                None
            } else {
                Some(try_str!(server_name))
            };
            if fd < 0 {
                return error::invalid_argument(format!("bad fd {fd}"));
            }
            let dtls = config.config.options().is_dtls();
            if dtls != super::udp::is_socket_type(fd, libc::SOCK_DGRAM) {
                return error::invalid_argument(match dtls {
                    true => format!("fd {fd} is no UDP socket, as a DTLS configuration needs"),
                    false => format!("fd {fd} is a UDP socket: TLS needs a stream (choose RSSL_PROTOCOL_DTLS)"),
                });
            }
            let peer = match config.config.role() {
                crate::engine::Role::Client => client_peer(server_name),
                crate::engine::Role::Server => PeerName::default(),
            };
            let tls = match Connection::new(&config.config, &peer) {
                Ok(tls) => tls,
                Err(e) => return error::engine(&e),
            };
            // Only now, when nothing can fail, does the fd change hands.
            // SAFETY: the caller hands `fd` over (the contract above): it is ours to close.
            let conn = rssl_conn::with(tls, Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            hand_out(conn, conn_out)
        }
    }

    /// Runs the handshake (client or server, as the configuration says)
    /// until it completes, fails or `timeout_ms` passes. After
    /// `RSSL_TIMEOUT` it may be called again. Returns `RSSL_OK` at once on
    /// an established connection, and `RSSL_PAUSED` while an asynchronous
    /// callback has no answer yet (call again, on the same thread).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_handshake(conn: *mut rssl_conn, timeout_ms: i32) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.socket_only("rssl_handshake"));
            conn.handshake(Deadline::after_ms(timeout_ms))
        }
    }

    /// Sends all `len` bytes of `data`, waiting at most `timeout_ms` for
    /// the socket to take them. On `RSSL_TIMEOUT` all of `data` has been
    /// encrypted and what the socket has not taken yet stays queued: it goes
    /// out first with the next rssl_send, rssl_recv or rssl_shutdown.
    /// On a DTLS connection `data` is one record in one datagram, at most
    /// `RSSL_DTLS_MAX_PLAINTEXT` bytes (`RSSL_INVALID_ARGUMENT`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_send(
        conn: *mut rssl_conn,
        data: *const u8,
        len: usize,
        timeout_ms: i32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let data = try_slice!(data, len);
            try_result!(conn.socket_only("rssl_send"));
            conn.send(data, Deadline::after_ms(timeout_ms))
        }
    }

    /// Receives up to `len` bytes into `buf`, waiting at most `timeout_ms`
    /// for at least one; `*n_out` gets the count. Returns `RSSL_CLOSED`
    /// once the peer has closed, `RSSL_TIMEOUT` when nothing came in time
    /// (the connection stays usable), `RSSL_TLS_ALERT` when the peer sent a
    /// fatal alert. `len` 0 returns `RSSL_OK` with 0 bytes. On a DTLS
    /// connection each call returns one record, what the peer sent with
    /// one send (what does not fit in `buf` comes with the next call; a
    /// buffer of `RSSL_DTLS_MAX_PLAINTEXT` bytes takes any whole), and
    /// `RSSL_CLOSED` comes only with the peer's close_notify (UDP has no
    /// end of stream: a peer that vanished is a `RSSL_TIMEOUT`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_recv(
        conn: *mut rssl_conn,
        buf: *mut u8,
        len: usize,
        timeout_ms: i32,
        n_out: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let n_out = try_mut!(n_out);
            *n_out = 0;
            if buf.is_null() && len != 0 {
                return error::null_parameter("buf");
            }
            try_result!(conn.socket_only("rssl_recv"));
            let buf: &mut [u8] = if len == 0 {
                &mut []
            } else {
                // SAFETY: pointer rules: `buf` is non-NULL and holds `len` bytes.
                unsafe { std::slice::from_raw_parts_mut(buf, len) }
            };
            match conn.recv(buf, Deadline::after_ms(timeout_ms)) {
                Ok(n) => {
                    *n_out = n;
                    RSSL_OK
                }
                Err(result) => result,
            }
        }
    }

    /// Renegotiates a TLS 1.2 (or older) connection: sends our
    /// HelloRequest (server) or ClientHello (client) and waits at most
    /// `timeout_ms` for the new handshake to complete. Application data
    /// arriving meanwhile is kept for `rssl_recv`. `RSSL_INVALID_STATE` on
    /// TLS 1.3 (use `rssl_update_keys`) or before the handshake; a peer
    /// refusing it fails the connection with its alert (`RSSL_TLS_ALERT`)
    /// or lets it time out (`RSSL_TIMEOUT`, a client ignoring a server's
    /// request). Not on DTLS connections (`RSSL_INVALID_STATE`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_renegotiate(
        conn: *mut rssl_conn,
        timeout_ms: i32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.socket_only("rssl_renegotiate"));
            try_result!(conn.not_dtls("rssl_renegotiate"));
            try_result!(conn.post_handshake_ready("rssl_renegotiate"));
            if let Err(e) = conn.tls.renegotiate() {
                return post_handshake_error(conn, &e);
            }
            conn.renegotiate(Deadline::after_ms(timeout_ms))
        }
    }

    /// TLS 1.3: sends a KeyUpdate (new keys for what we send) within
    /// `timeout_ms`; with `peer_too` the peer is asked to update its own
    /// keys as well (its answer is read with the next `rssl_recv`).
    /// `RSSL_INVALID_STATE` before TLS 1.3 (use `rssl_renegotiate`) or
    /// before the handshake.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_update_keys(
        conn: *mut rssl_conn,
        peer_too: bool,
        timeout_ms: i32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.socket_only("rssl_update_keys"));
            try_result!(conn.post_handshake_ready("rssl_update_keys"));
            if let Err(e) = conn.tls.update_keys(peer_too) {
                return post_handshake_error(conn, &e);
            }
            match conn.flush(Deadline::after_ms(timeout_ms)) {
                Ok(()) => RSSL_OK,
                Err(result) => result,
            }
        }
    }

    /// Sends close_notify (within `timeout_ms`) and ends our direction of
    /// the socket. Receiving still works until the peer closes; sending
    /// gives `RSSL_CLOSED`. The connection still needs `rssl_close` or
    /// `rssl_conn_free`. On a DTLS connection only close_notify is sent
    /// (a UDP socket has no direction to shut).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_shutdown(conn: *mut rssl_conn, timeout_ms: i32) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.socket_only("rssl_shutdown"));
            if !conn.tls.is_established() {
                return error::set(RSSL_INVALID_STATE, "shutdown before the handshake completed");
            }
            conn.shutdown(Deadline::after_ms(timeout_ms))
        }
    }

    /// Closes gracefully and frees: sends close_notify if the connection
    /// is established and has not sent it (trying briefly, without waiting
    /// for the peer's reply), closes the socket and frees `conn`. NULL is
    /// ignored. `conn` is invalid afterwards whatever the result. A peer
    /// that is already gone is no failure; `RSSL_TIMEOUT` or
    /// `RSSL_IO_ERROR` say that close_notify could not be delivered. A
    /// memory connection is only freed (queue close_notify first with
    /// `rssl_conn_close_notify` and send the output yourself).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_close(conn: *mut rssl_conn) -> rssl_result {
        ffi_panic_boundary! {
            if conn.is_null() {
                return RSSL_OK;
            }
            // SAFETY: pointer rules: a live connection, handed out as a Box.
            let mut conn = unsafe { Box::from_raw(conn) };
            if !conn.is_memory() && conn.tls.is_established() && !conn.shut_down {
                conn.tls.close();
                conn.shut_down = true;
                match conn.flush(Deadline::after_ms(LAST_WORDS_MS)) {
                    Ok(()) | Err(RSSL_CLOSED) => {}
                    Err(result) => return result,
                }
            }
            RSSL_OK
        }
    }

    /// Frees a connection and closes its socket without sending anything.
    /// NULL is ignored.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_free(conn: *mut rssl_conn) {
        ffi_panic_boundary! {
            if !conn.is_null() {
                // SAFETY: pointer rules: a live connection, handed out as a Box.
                drop(unsafe { Box::from_raw(conn) });
            }
        }
    }

    /// The connection's socket, still owned by the connection: for socket
    /// options (rssl leaves Nagle's algorithm on, as OTP does; set
    /// TCP_NODELAY here for request/response traffic) or for poll(2) (but
    /// records may already wait inside the connection: `rssl_recv` with
    /// timeout 0 tells). Do not read, write or close it.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_fd(
        conn: *const rssl_conn,
        fd_out: *mut c_int,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let fd_out = try_mut!(fd_out);
            if conn.is_memory() {
                return error::set(RSSL_NOT_AVAILABLE, "a memory connection has no socket");
            }
            *fd_out = conn.raw_fd();
            RSSL_OK
        }
    }
}

impl rssl_conn {
    /// Accepted connections are made here (see listener.rs).
    pub(crate) fn accepted(
        config: &rssl_config,
        fd: OwnedFd,
        deadline: Deadline,
    ) -> Result<(rssl_conn, rssl_result), rssl_result> {
        let mut conn = rssl_conn::new(config, fd, &PeerName::default())?;
        match conn.handshake(deadline) {
            // Stopped after the hello: the caller decides, then goes on
            // with rssl_handshake.
            done @ (RSSL_OK | RSSL_HELLO | RSSL_PAUSED) => Ok((conn, done)),
            failed => Err(failed),
        }
    }

    /// A DTLS server connection whose ClientHello (with its cookie) the
    /// listener checked: the handshake goes on from it on `fd`.
    pub(crate) fn accepted_datagram(
        tls: Connection,
        fd: OwnedFd,
        deadline: Deadline,
    ) -> Result<(rssl_conn, rssl_result), rssl_result> {
        let mut conn = rssl_conn::with(tls, Some(fd));
        match conn.handshake(deadline) {
            done @ (RSSL_OK | RSSL_HELLO | RSSL_PAUSED) => Ok((conn, done)),
            failed => Err(failed),
        }
    }

    pub(crate) fn into_raw(self) -> *mut rssl_conn {
        Box::into_raw(Box::new(self))
    }
}
