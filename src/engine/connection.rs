//! One TLS connection, sans I/O: ciphertext in, ciphertext out.

use super::alert::Alert;
use super::config::Config;
use super::error::Error;
use super::ffi;
use super::options::Role;
use super::suite::Suite;
use super::version::Version;
use super::wire::Wire;
use foreign_types::{ForeignType, ForeignTypeRef};
use libc::c_int;
use once_cell::sync::Lazy;
use openssl::ssl::{ErrorCode, Ssl, SslRef, SslStream};
use openssl::x509::verify::X509CheckFlags;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Runs an OpenSSL callback body; a panic becomes `on_panic` instead of
/// unwinding into C.
pub(crate) fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Who the client expects to talk to.
#[derive(Debug, Clone, Default)]
pub struct PeerName {
    /// Sent as SNI (a host name, never an address).
    pub sni: Option<String>,
    /// Checked against the certificate when verifying the peer.
    pub verify_host: Option<String>,
    /// Client: names the server for session reuse (OTP keys its client
    /// session cache by host and port). Connections with the same key and
    /// configuration offer the session the last one saved.
    pub session_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Needs more input from the peer (after sending what is in the
    /// output), or, on a pausable connection, an application callback's
    /// answer: the next step goes on once either is here.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(usize),
    /// No complete record is buffered.
    WouldBlock,
    /// The peer sent close_notify or the transport ended.
    Closed,
}

/// The fatal alerts seen on a connection, recorded by the info callback.
#[derive(Default)]
struct AlertLog {
    sent: Option<u8>,
    received: Option<u8>,
}

static ALERT_LOG: Lazy<openssl::ex_data::Index<Ssl, AlertLog>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

/// The connection's info callback: logs fatal alerts, and tells the
/// renegotiation limit when handshakes start and finish.
unsafe extern "C" fn on_info(ssl: *const openssl_sys::SSL, where_: c_int, ret: c_int) {
    guard((), || {
        // SAFETY: OpenSSL passes the live SSL this callback was set on.
        let ssl = SslRef::from_ptr_mut(ssl as *mut openssl_sys::SSL);
        if where_ & (ffi::SSL_CB_HANDSHAKE_START | ffi::SSL_CB_HANDSHAKE_DONE) != 0 {
            super::renegotiation::on_info(ssl, where_);
        }
        if where_ & ffi::SSL_CB_ALERT == 0 {
            return;
        }
        let level = (ret >> 8) & 0xff;
        let desc = (ret & 0xff) as u8;
        if level != ffi::SSL3_AL_FATAL {
            return; // warnings (close_notify among them) are not failures
        }
        if let Some(log) = ssl.ex_data_mut(*ALERT_LOG) {
            if where_ & ffi::SSL_CB_READ != 0 {
                log.received.get_or_insert(desc);
            } else {
                log.sent.get_or_insert(desc);
            }
        }
    })
}

pub struct Connection {
    stream: SslStream<Wire>,
    role: Role,
    established: bool,
    /// Plaintext accepted by `write` but not yet encrypted (renegotiation in progress).
    pending_plain: Vec<u8>,
    /// Boxed: set once at most, and an idle connection should stay small.
    failure: Option<Box<Error>>,
    /// 0-RTT (`early_data.rs`).
    pub(super) early: super::early_data::EarlyData,
    /// Traffic towards the next key update or renegotiation (`rekey.rs`).
    rekey: super::rekey::Rekey,
    key_update_at: u64,
    renegotiate_at: u64,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A paused handshake's job is not released by SSL_free. Off the
        // thread that paused it, it cannot be finished safely: it stays
        // (the driver abandons handshakes on their own thread first).
        self.abandon_or_leave();
    }
}

impl Connection {
    pub fn new(config: &Config, peer: &PeerName) -> Result<Connection, Error> {
        let internal = |e: openssl::error::ErrorStack| Error::Internal(e.to_string());
        let mut ssl = Ssl::new(config.context()).map_err(internal)?;
        ssl.set_ex_data(*ALERT_LOG, AlertLog::default());
        // SAFETY: a live SSL we own; `on_info` matches the callback type.
        unsafe { ffi::SSL_set_info_callback(ssl.as_ptr(), Some(on_info)) };
        let role = config.role();
        match role {
            Role::Client => {
                if let Some(sni) = &peer.sni {
                    ssl.set_hostname(sni)
                        .map_err(|_| Error::Option("server_name_indication".into(), sni.clone()))?;
                }
                if let Some(host) = &peer.verify_host {
                    let param = ssl.param_mut();
                    if !config.options().hostname_wildcards {
                        param.set_hostflags(X509CheckFlags::NO_WILDCARDS);
                    }
                    match host.parse::<IpAddr>() {
                        Ok(ip) => param.set_ip(ip),
                        Err(_) => param.set_host(host),
                    }
                    .map_err(|_| Error::Option("server_name_indication".into(), host.clone()))?;
                }
                super::tls13_alert::prepare(&mut ssl);
                if config.options().manual_tickets {
                    super::session::collect_tickets(&mut ssl);
                }
                if config.options().keep_secrets {
                    super::secrets::prepare(&mut ssl);
                }
                if let Some(key) = &peer.session_key {
                    super::session::offer_saved(&mut ssl, key);
                }
                ssl.set_connect_state();
            }
            Role::Server => {
                if config.options().keep_secrets {
                    super::secrets::prepare(&mut ssl);
                }
                if config.options().client_renegotiation {
                    super::renegotiation::prepare(&mut ssl);
                }
                ssl.set_accept_state()
            }
        }
        let wire = if config.options().is_dtls() {
            super::datagram::prepare(&mut ssl).map_err(internal)?;
            Wire::datagram()
        } else {
            Wire::default()
        };
        let stream = SslStream::new(ssl, wire).map_err(internal)?;
        let early = match role {
            Role::Server => super::early_data::EarlyData::server(config.options().max_early_data),
            Role::Client => Default::default(),
        };
        Ok(Connection {
            stream,
            role,
            established: false,
            pending_plain: Vec::new(),
            failure: None,
            early,
            rekey: Default::default(),
            key_update_at: config.options().key_update_at,
            renegotiate_at: config.options().renegotiate_at,
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The OpenSSL connection, for the feature modules.
    pub(crate) fn ssl(&self) -> &SslRef {
        self.stream.ssl()
    }

    pub(super) fn stream_mut(&mut self) -> &mut SslStream<Wire> {
        &mut self.stream
    }

    pub(crate) fn ssl_mut(&mut self) -> &mut SslRef {
        // SAFETY: the stream owns the SSL and `&mut self` is exclusive.
        unsafe { SslRef::from_ptr_mut(self.stream.ssl().as_ptr()) }
    }

    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Advances the handshake with whatever input is buffered.
    pub fn handshake(&mut self) -> Result<Progress, Error> {
        if let Some(err) = &self.failure {
            return Err(Error::clone(err));
        }
        if self.established {
            return Ok(Progress::Done);
        }
        if !self.step_allowed() {
            // Paused on another thread: only that one may resume it.
            return Ok(Progress::Pending);
        }
        if let Some(progress) = self.early_step()? {
            return Ok(progress);
        }
        let flight_start = self.output().len();
        let step = self.stream.do_handshake();
        if self.role == Role::Client && super::hello::cancelled(self.stream.ssl()) {
            if let Some(err) = self.cancel_after_hello(flight_start, &step) {
                return Err(err);
            }
        }
        match step {
            Ok(()) => {
                if let Some(error) = super::tls13_alert::deferred_error(self.stream.ssl()) {
                    return Err(self.fail_deferred(flight_start, error));
                }
                super::tls13_alert::forget_secret(self.stream.ssl());
                self.established = true;
                self.stop_pausing();
                Ok(Progress::Done)
            }
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(Progress::Pending),
            Err(e) if e.code() == ErrorCode::from_raw(ffi::SSL_ERROR_WANT_ASYNC) => {
                Ok(Progress::Pending)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Appends ciphertext received from the peer.
    pub fn receive(&mut self, ciphertext: &[u8]) {
        self.stream.get_mut().push_incoming(ciphertext);
    }

    /// Reads ciphertext straight from the transport into the input buffer.
    pub fn receive_with<E>(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.stream.get_mut().fill_incoming(max, fill)
    }

    /// Ciphertext received but not yet decrypted.
    pub fn buffered_input(&self) -> usize {
        self.stream.get_ref().incoming_len()
    }

    /// Takes the ciphertext received but not yet decrypted (after the
    /// peer's close_notify: what it sent in clear after it, on a downgrade).
    pub fn take_buffered_input(&mut self) -> Vec<u8> {
        self.stream.get_mut().take_incoming()
    }

    /// The peer's close_notify has been read.
    pub fn peer_closed(&self) -> bool {
        const SSL_RECEIVED_SHUTDOWN: c_int = 2;
        // SAFETY: a live SSL owned by this connection; the call only reads.
        unsafe { ffi::SSL_get_shutdown(self.stream.ssl().as_ptr()) & SSL_RECEIVED_SHUTDOWN != 0 }
    }

    /// Frees the ciphertext buffers when they are empty (idle connections).
    pub fn release_buffers(&mut self) {
        self.stream.get_mut().release_if_empty();
    }

    /// Bytes of buffer capacity the connection holds itself (ciphertext
    /// both ways, plaintext waiting on a handshake): 0 once it is idle and
    /// its buffers were released. OpenSSL's own (`SSL_MODE_RELEASE_BUFFERS`)
    /// are not counted.
    pub fn retained_capacity(&self) -> usize {
        self.stream.get_ref().capacity() + self.pending_plain.capacity()
    }

    /// The transport has ended: no more ciphertext will come.
    pub fn receive_eof(&mut self) {
        self.stream.get_mut().eof = true;
    }

    /// Ciphertext waiting to be sent to the peer.
    pub fn output(&self) -> &[u8] {
        self.stream.get_ref().outgoing()
    }

    /// Makes room in the output for about `plain` bytes of plaintext
    /// encrypted (a large write then grows the buffer once).
    pub fn reserve_output(&mut self, plain: usize) {
        // Each record of up to 16 KiB adds a header, an explicit nonce and a tag.
        let overhead = (plain / (16 * 1024) + 1) * 64;
        self.stream.get_mut().reserve_outgoing(plain + overhead);
    }

    /// The error for a fatal alert on this connection, sent by us
    /// (`local`) or received.
    fn alert_error(&self, alert: Alert, local: bool, detail: impl Into<String>) -> Error {
        Error::Alert {
            alert,
            role: self.role,
            local,
            detail: detail.into(),
            datagram: self.is_datagram(),
        }
    }

    /// A DTLS connection: its output goes out one datagram at a time.
    pub fn is_datagram(&self) -> bool {
        self.stream.get_ref().is_datagram()
    }

    /// The first datagram of the output (DTLS); `consume_output` with its
    /// length takes it away.
    pub fn next_datagram(&self) -> Option<&[u8]> {
        self.stream.get_ref().next_datagram()
    }

    pub fn consume_output(&mut self, n: usize) {
        self.stream.get_mut().consume_outgoing(n);
    }

    /// Decrypts buffered input into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error> {
        // SAFETY: initialized bytes viewed as maybe-uninitialized ones;
        // OpenSSL only writes to them.
        let buf = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        self.read_uninit(buf)
    }

    /// Decrypts up to `max` bytes onto the end of `plain`, in its spare
    /// capacity (no zeroing first).
    pub fn read_onto(&mut self, plain: &mut Vec<u8>, max: usize) -> Result<ReadOutcome, Error> {
        plain.reserve(max);
        let len = plain.len();
        let outcome = self.read_uninit(&mut plain.spare_capacity_mut()[..max]);
        if let Ok(ReadOutcome::Data(n)) = outcome {
            // SAFETY: OpenSSL wrote the first `n` bytes of the spare space.
            unsafe { plain.set_len(len + n) };
        }
        outcome
    }

    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<ReadOutcome, Error> {
        if let Some(err) = &self.failure {
            return Err(Error::clone(err));
        }
        super::renegotiation::reopen_if_due(self.ssl_mut(), Instant::now);
        let outcome = match self.stream.ssl_read_uninit(buf) {
            Ok(n) => ReadOutcome::Data(n),
            Err(e) if e.code() == ErrorCode::WANT_READ => ReadOutcome::WouldBlock,
            Err(e) if e.code() == ErrorCode::ZERO_RETURN => ReadOutcome::Closed,
            Err(e) if e.code() == ErrorCode::SYSCALL && e.io_error().is_none() => {
                ReadOutcome::Closed
            }
            Err(e) => return Err(self.fail(e)),
        };
        // A renegotiation may have been waiting for this input.
        self.flush_pending_plain()?;
        Ok(outcome)
    }

    /// Encrypts all of `data` into the output.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(err) = &self.failure {
            return Err(Error::clone(err));
        }
        if !self.pending_plain.is_empty() {
            self.pending_plain.extend_from_slice(data);
            return self.flush_pending_plain();
        }
        let written = self.write_some(data)?;
        self.pending_plain.extend_from_slice(&data[written..]);
        Ok(())
    }

    /// Plaintext accepted but still waiting on a handshake message.
    pub fn pending_plaintext(&self) -> usize {
        self.pending_plain.len()
    }

    fn flush_pending_plain(&mut self) -> Result<(), Error> {
        if self.pending_plain.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.pending_plain);
        let written = self.write_some(&data)?;
        self.pending_plain = data[written..].to_vec();
        Ok(())
    }

    fn write_some(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.established && !data.is_empty() {
            self.rekey_before(data.len())?;
        }
        let mut written = 0;
        while written < data.len() {
            match self.stream.ssl_write(&data[written..]) {
                Ok(n) => written += n,
                Err(e) if e.code() == ErrorCode::WANT_READ => break,
                Err(e) => return Err(self.fail(e)),
            }
        }
        if let Some(mode) = self.rekey.mode {
            self.rekey.wrote(written, mode.fragment);
        }
        Ok(written)
    }

    /// The security items of `connection_information/2` (OTP's names):
    /// the randoms, the TLS 1.2 master secret, the kept TLS 1.3 secrets.
    pub fn security_items(&self) -> Vec<(&'static str, Vec<u8>)> {
        super::secrets::items(self.stream.ssl())
    }

    /// New keys before `len` more bytes, when `key_update_at` or
    /// `renegotiate_at` says so (`rekey.rs`).
    fn rekey_before(&mut self, len: usize) -> Result<(), Error> {
        use super::rekey::Due;
        let mode = self.rekey_mode();
        let due = self
            .rekey
            .before_write(len, mode.tls13_limit, mode.tls12, self.renegotiate_at);
        match due {
            Due::Nothing => Ok(()),
            Due::KeyUpdate => self.update_keys(true),
            // Not while one is under way (ours or the peer's).
            Due::Renegotiate if self.renegotiation_pending() => Ok(()),
            Due::Renegotiate => self.renegotiate(),
        }
    }

    /// How this connection counts towards new keys, worked out at its
    /// first write (version and cipher stay: TLS 1.3 does not renegotiate).
    fn rekey_mode(&mut self) -> super::rekey::Mode {
        if let Some(mode) = self.rekey.mode {
            return mode;
        }
        let version = self.version();
        let tls13 = version == Some(Version::Tls13);
        // OTP counts no bytes for ChaCha20-Poly1305.
        let chacha = self
            .stream
            .ssl()
            .current_cipher()
            .is_some_and(|c| c.name().contains("CHACHA20"));
        let mode = super::rekey::Mode {
            tls13_limit: (tls13 && !chacha).then_some(self.key_update_at),
            tls12: !tls13 && version.is_some(),
            fragment: self.max_fragment_length().map_or(16384, usize::from),
        };
        self.rekey.mode = Some(mode);
        mode
    }

    /// Starts a TLS 1.2 (or older) renegotiation: its first message goes
    /// into the output; the rest happens as input is read.
    pub fn renegotiate(&mut self) -> Result<(), Error> {
        if let Some(err) = &self.failure {
            return Err(Error::clone(err));
        }
        if !self.established || self.version() == Some(Version::Tls13) {
            return Err(Error::Option(
                "renegotiate".into(),
                "only TLS 1.2 and older renegotiate".into(),
            ));
        }
        let ssl = self.stream.ssl().as_ptr();
        // SAFETY: a live SSL owned by this connection.
        if unsafe { ffi::SSL_renegotiate(ssl) } != 1 {
            return Err(Error::Internal("renegotiation refused".into()));
        }
        self.write_post_handshake()
    }

    /// TLS 1.3: sends a KeyUpdate (new keys for what we send) into the
    /// output; with `peer_too`, the peer is asked to update its keys too.
    pub fn update_keys(&mut self, peer_too: bool) -> Result<(), Error> {
        if let Some(err) = &self.failure {
            return Err(Error::clone(err));
        }
        if !self.established || self.version() != Some(Version::Tls13) {
            return Err(Error::Option(
                "update_keys".into(),
                "only TLS 1.3 updates keys".into(),
            ));
        }
        let kind = if peer_too {
            ffi::SSL_KEY_UPDATE_REQUESTED
        } else {
            ffi::SSL_KEY_UPDATE_NOT_REQUESTED
        };
        let ssl = self.stream.ssl().as_ptr();
        // SAFETY: a live SSL owned by this connection.
        if unsafe { ffi::SSL_key_update(ssl, kind) } != 1 {
            return Err(Error::Internal("key update refused".into()));
        }
        self.write_post_handshake()
    }

    /// Writes a message OpenSSL has queued after the handshake (a
    /// HelloRequest or ClientHello, a KeyUpdate) into the output.
    fn write_post_handshake(&mut self) -> Result<(), Error> {
        match self.stream.do_handshake() {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// True while a renegotiation started here has not completed.
    pub fn renegotiation_pending(&self) -> bool {
        // SAFETY: a live SSL owned by this connection.
        unsafe { ffi::SSL_renegotiate_pending(self.stream.ssl().as_ptr()) != 0 }
    }

    /// Queues close_notify in the output.
    pub fn close(&mut self) {
        if self.failure.is_none() {
            let _ = self.stream.shutdown();
        }
    }

    /// A client whose application cancelled at the ServerHello
    /// (`hello.rs`): before TLS 1.3, a clear user_canceled alert replaces
    /// what this step wrote (nothing is protected yet); in TLS 1.3 the
    /// alert goes, protected, in place of the second flight once OpenSSL
    /// has written it (the deferred path below).
    fn cancel_after_hello(
        &mut self,
        flight_start: usize,
        step: &Result<(), openssl::ssl::Error>,
    ) -> Option<Error> {
        if self.version() == Some(Version::Tls13) {
            super::tls13_alert::cancel(self.stream.ssl());
            return None;
        }
        if step
            .as_ref()
            .is_err_and(|e| e.code() != ErrorCode::WANT_READ)
        {
            return None; // failed on its own
        }
        // SAFETY: a live SSL owned by this connection; the call only reads.
        let minor = (unsafe { openssl_sys::SSL_version(self.stream.ssl().as_ptr()) } & 0xff) as u8;
        let outgoing = self.stream.get_mut().outgoing_mut();
        outgoing.truncate(flight_start);
        outgoing.extend_from_slice(&[ffi::SSL3_RT_ALERT, 3, minor, 0, 2]);
        outgoing.extend_from_slice(&[ffi::SSL3_AL_FATAL as u8, super::hello::CANCEL_ALERT]);
        let err = self.alert_error(
            Alert(super::hello::CANCEL_ALERT),
            true,
            "handshake canceled",
        );
        self.failure = Some(Box::new(err.clone()));
        Some(err)
    }

    /// A TLS 1.3 client whose verification failed (see `tls13_alert`):
    /// its Finished is replaced by the protected alert.
    fn fail_deferred(&mut self, flight_start: usize, error: i32) -> Error {
        let code = super::tls13_alert::alert_for(error);
        let mut output = std::mem::take(self.stream.get_mut().outgoing_mut());
        if !super::tls13_alert::replace_flight(self.stream.ssl(), &mut output, flight_start, code) {
            // Cannot protect it: better no alert than our Finished.
            output.truncate(flight_start);
        }
        *self.stream.get_mut().outgoing_mut() = output;
        let detail = if error == super::tls13_alert::CANCELLED {
            "handshake canceled".to_string()
        } else {
            super::verify::failure_text(self.stream.ssl(), error).to_string()
        };
        let err = self.alert_error(Alert(code), true, detail);
        self.failure = Some(Box::new(err.clone()));
        err
    }

    /// A failure found here, before anything went to the peer: `alert`
    /// is reported as sent (as OTP reports its own checks).
    pub(super) fn fail_locally(&mut self, alert: Alert, detail: &str) -> Error {
        let err = self.alert_error(alert, true, detail);
        self.failure = Some(Box::new(err.clone()));
        err
    }

    pub(super) fn fail_openssl(&mut self, e: openssl::ssl::Error) -> Error {
        self.fail(e)
    }

    /// Turns an OpenSSL failure into the error OTP would report, and keeps it.
    fn fail(&mut self, e: openssl::ssl::Error) -> Error {
        let log = self.stream.ssl().ex_data(*ALERT_LOG);
        let (sent, received) = log.map_or((None, None), |l| (l.sent, l.received));
        // SAFETY: a live SSL owned by this connection; the call only reads.
        let verify = unsafe { ffi::SSL_get_verify_result(self.stream.ssl().as_ptr()) };
        let detail = if verify != 0 {
            super::verify::failure_text(self.stream.ssl(), verify as i32).to_string()
        } else {
            e.ssl_error()
                .and_then(|stack| stack.errors().first().and_then(|err| err.reason()))
                .unwrap_or("")
                .to_string()
        };
        // OTP reports a failed host name check as handshake_failure
        // (OpenSSL's wire alert for it is bad_certificate).
        const HOSTNAME_MISMATCH: libc::c_long = openssl_sys::X509_V_ERR_HOSTNAME_MISMATCH as _;
        const IP_ADDRESS_MISMATCH: libc::c_long = openssl_sys::X509_V_ERR_IP_ADDRESS_MISMATCH as _;
        let sent = match sent {
            // (The verify callback turns these into application errors, so
            // this is only a safety net.)
            Some(_) if matches!(verify, HOSTNAME_MISMATCH | IP_ADDRESS_MISMATCH) => {
                Some(Alert::HANDSHAKE_FAILURE.0)
            }
            other => other,
        };
        // Bytes that are no TLS record at all: OTP checks the record type
        // first and says unexpected_message; OpenSSL, protocol_version.
        const PROTOCOL_VERSION: u8 = Alert::PROTOCOL_VERSION.0;
        let sent = match sent {
            Some(PROTOCOL_VERSION) if self.established => Some(Alert::UNEXPECTED_MESSAGE.0),
            other => other,
        };
        let sent = match sent {
            None if received.is_none() && self.answer_http_request(&e) => {
                Some(Alert::UNEXPECTED_MESSAGE.0)
            }
            other => other,
        };
        let err = match (sent, received) {
            (Some(code), _) => self.alert_error(Alert(code), true, detail),
            (None, Some(code)) => self.alert_error(Alert(code), false, String::new()),
            (None, None) if e.code() == ErrorCode::ZERO_RETURN || e.ssl_error().is_none() => {
                Error::Closed
            }
            (None, None) => Error::Internal(e.to_string()),
        };
        self.failure = Some(Box::new(err.clone()));
        err
    }

    /// A server whose first bytes are an HTTP request: OpenSSL closes
    /// without an alert; RFC 8446 section 5 (and OTP) answer
    /// unexpected_message, so that alert is queued here. True if it was.
    fn answer_http_request(&mut self, e: &openssl::ssl::Error) -> bool {
        const SSL_R_HTTPS_PROXY_REQUEST: c_int = 155;
        const SSL_R_HTTP_REQUEST: c_int = 156;
        let http = e
            .ssl_error()
            .and_then(|stack| stack.errors().first())
            .is_some_and(|err| {
                matches!(
                    err.reason_code(),
                    SSL_R_HTTP_REQUEST | SSL_R_HTTPS_PROXY_REQUEST
                )
            });
        if !http || self.established || self.role != Role::Server {
            return false;
        }
        // A fatal unexpected_message alert in a plaintext record (legacy
        // version 3.3, 2 bytes long).
        let record = [ffi::SSL3_RT_ALERT, 3, 3, 0, 2];
        let alert = [ffi::SSL3_AL_FATAL as u8, Alert::UNEXPECTED_MESSAGE.0];
        let outgoing = self.stream.get_mut().outgoing_mut();
        outgoing.extend_from_slice(&record);
        outgoing.extend_from_slice(&alert);
        true
    }

    // --- What was negotiated ---

    pub fn version(&self) -> Option<Version> {
        Version::from_openssl_str(self.stream.ssl().version_str())
    }

    pub fn suite(&self) -> Option<Suite> {
        self.stream.ssl().current_cipher().map(Suite::from_cipher)
    }

    /// The peer's certificate, DER encoded.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.stream
            .ssl()
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
    }

    /// The host name the client asked for (SNI).
    pub fn sni_hostname(&self) -> Option<String> {
        self.stream
            .ssl()
            .servername(openssl::ssl::NameType::HOST_NAME)
            .map(str::to_string)
    }

    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.stream
            .ssl()
            .selected_alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// The curve of an ECDHE key exchange before TLS 1.3, in OTP's names
    /// (`connection_information`'s `ecc`).
    pub fn ecdhe_curve(&self) -> Option<String> {
        if self.version() == Some(Version::Tls13)
            || !self.suite()?.key_exchange.starts_with("ecdhe")
        {
            return None;
        }
        const SSL_CTRL_GET_NEGOTIATED_GROUP: libc::c_int = 134;
        let ssl = self.stream.ssl().as_ptr();
        // SAFETY: a live SSL owned by this connection; the control only reads.
        let nid = unsafe {
            openssl_sys::SSL_ctrl(ssl, SSL_CTRL_GET_NEGOTIATED_GROUP, 0, std::ptr::null_mut())
        };
        let name = openssl::nid::Nid::from_raw(nid as libc::c_int)
            .short_name()
            .ok()?;
        Some(match name {
            "prime256v1" => "secp256r1".into(),
            "prime192v1" => "secp192r1".into(),
            "X25519" => "x25519".into(),
            "X448" => "x448".into(),
            other => other.into(),
        })
    }

    /// The maximum fragment length agreed on (RFC 6066), if any.
    pub fn max_fragment_length(&self) -> Option<u16> {
        let session = self.stream.ssl().session()?;
        // SAFETY: a live session of this connection.
        let mode = unsafe { ffi::SSL_SESSION_get_max_fragment_length(session.as_ptr()) };
        (1..=4).contains(&mode).then(|| 512u16 << (mode - 1))
    }

    pub fn session_reused(&self) -> bool {
        self.stream.ssl().session_reused()
    }

    /// The TLS 1.0-1.2 PRF over this connection's secrets (`ssl:prf/5`).
    pub fn prf(
        &self,
        secret: Option<&[u8]>,
        label: &[u8],
        seed: &[super::prf::SeedPart],
        len: usize,
    ) -> Result<Vec<u8>, Error> {
        super::prf::prf(self.stream.ssl(), self.version(), secret, label, seed, len)
    }

    /// RFC 5705 keying material export.
    pub fn export_keying_material(
        &self,
        label: &str,
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, Error> {
        let mut out = vec![0; len];
        self.stream
            .ssl()
            .export_keying_material(&mut out, label, context)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests;
