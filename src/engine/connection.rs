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
    /// Needs more input from the peer (after sending what is in the output).
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
        if level != 2 {
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
    failure: Option<Error>,
}

impl Connection {
    pub fn new(config: &Config, peer: &PeerName) -> Result<Connection, Error> {
        let internal = |e: openssl::error::ErrorStack| Error::Internal(e.to_string());
        let mut ssl = Ssl::new(config.context()).map_err(internal)?;
        ssl.set_ex_data(*ALERT_LOG, AlertLog::default());
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
                if let Some(key) = &peer.session_key {
                    super::session::offer_saved(&mut ssl, key);
                }
                ssl.set_connect_state();
            }
            Role::Server => {
                if config.options().client_renegotiation {
                    super::renegotiation::prepare(&mut ssl);
                }
                ssl.set_accept_state()
            }
        }
        let stream = SslStream::new(ssl, Wire::default()).map_err(internal)?;
        Ok(Connection {
            stream,
            role,
            established: false,
            pending_plain: Vec::new(),
            failure: None,
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The OpenSSL connection, for the feature modules.
    pub(crate) fn ssl(&self) -> &SslRef {
        self.stream.ssl()
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
            return Err(err.clone());
        }
        if self.established {
            return Ok(Progress::Done);
        }
        let flight_start = self.output().len();
        match self.stream.do_handshake() {
            Ok(()) => {
                if let Some(error) = super::tls13_alert::deferred_error(self.stream.ssl()) {
                    return Err(self.fail_deferred(flight_start, error));
                }
                super::tls13_alert::forget_secret(self.stream.ssl());
                self.established = true;
                Ok(Progress::Done)
            }
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(Progress::Pending),
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

    /// Frees the ciphertext buffers when they are empty (idle connections).
    pub fn release_buffers(&mut self) {
        self.stream.get_mut().release_if_empty();
    }

    /// The transport has ended: no more ciphertext will come.
    pub fn receive_eof(&mut self) {
        self.stream.get_mut().eof = true;
    }

    /// Ciphertext waiting to be sent to the peer.
    pub fn output(&self) -> &[u8] {
        self.stream.get_ref().outgoing()
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
            return Err(err.clone());
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
            return Err(err.clone());
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
        let mut written = 0;
        while written < data.len() {
            match self.stream.ssl_write(&data[written..]) {
                Ok(n) => written += n,
                Err(e) if e.code() == ErrorCode::WANT_READ => break,
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(written)
    }

    /// Starts a TLS 1.2 (or older) renegotiation: its first message goes
    /// into the output; the rest happens as input is read.
    pub fn renegotiate(&mut self) -> Result<(), Error> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
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
            return Err(err.clone());
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
        let detail = super::verify::failure_text(self.stream.ssl(), error).to_string();
        let err = Error::Alert {
            alert: Alert(code),
            role: self.role,
            local: true,
            detail,
        };
        self.failure = Some(err.clone());
        err
    }

    /// Turns an OpenSSL failure into the error OTP would report, and keeps it.
    fn fail(&mut self, e: openssl::ssl::Error) -> Error {
        let log = self.stream.ssl().ex_data(*ALERT_LOG);
        let (sent, received) = log.map_or((None, None), |l| (l.sent, l.received));
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
        const HOSTNAME_MISMATCH: libc::c_long = 62;
        const IP_ADDRESS_MISMATCH: libc::c_long = 64;
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
        const PROTOCOL_VERSION: u8 = 70;
        let sent = match sent {
            Some(PROTOCOL_VERSION) if self.established => Some(10),
            other => other,
        };
        let sent = match sent {
            None if received.is_none() && self.answer_http_request(&e) => Some(10),
            other => other,
        };
        let err = match (sent, received) {
            (Some(code), _) => Error::Alert {
                alert: Alert(code),
                role: self.role,
                local: true,
                detail,
            },
            (None, Some(code)) => Error::Alert {
                alert: Alert(code),
                role: self.role,
                local: false,
                detail: String::new(),
            },
            (None, None) if e.code() == ErrorCode::ZERO_RETURN || e.ssl_error().is_none() => {
                Error::Closed
            }
            (None, None) => Error::Internal(e.to_string()),
        };
        self.failure = Some(err.clone());
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
        // A fatal unexpected_message alert in a plaintext record.
        let alert = [21, 3, 3, 0, 2, ffi::SSL3_AL_FATAL as u8, 10];
        self.stream
            .get_mut()
            .outgoing_mut()
            .extend_from_slice(&alert);
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
pub(crate) mod tests {
    use super::*;
    use crate::engine::options::{CaSource, CertSource, KeySource, Options, Verify};
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    /// A throwaway CA and a server certificate for "localhost" signed by it (DER).
    pub(crate) struct TestPki {
        pub ca: Vec<u8>,
        pub cert: Vec<u8>,
        pub key: Vec<u8>,
    }

    fn ec_key() -> PKey<openssl::pkey::Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn name(cn: &str) -> openssl::x509::X509Name {
        let mut b = X509NameBuilder::new().unwrap();
        b.append_entry_by_text("CN", cn).unwrap();
        b.build()
    }

    pub(crate) fn test_pki() -> TestPki {
        static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let ca_name = format!(
            "test CA {}",
            SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ca_key = ec_key();
        let mut ca = X509::builder().unwrap();
        ca.set_version(2).unwrap();
        ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        ca.set_subject_name(&name(&ca_name)).unwrap();
        ca.set_issuer_name(&name(&ca_name)).unwrap();
        ca.set_pubkey(&ca_key).unwrap();
        ca.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        ca.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let ca = ca.build();

        let key = ec_key();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        cert.set_subject_name(&name("localhost")).unwrap();
        cert.set_issuer_name(ca.subject_name()).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .build(&cert.x509v3_context(Some(&ca), None))
            .unwrap();
        cert.append_extension(san).unwrap();
        cert.sign(&ca_key, MessageDigest::sha256()).unwrap();
        TestPki {
            ca: ca.to_der().unwrap(),
            cert: cert.build().to_der().unwrap(),
            key: key.private_key_to_der().unwrap(),
        }
    }

    pub(crate) fn server_options(pki: &TestPki) -> Options {
        let mut o = Options::new(Role::Server);
        o.cert = Some(CertSource::Der(vec![pki.cert.clone()]));
        o.key = Some(KeySource::Der("ECPrivateKey".into(), pki.key.clone()));
        o
    }

    pub(crate) fn client_options(pki: &TestPki) -> Options {
        let mut o = Options::new(Role::Client);
        o.verify = Verify::Peer;
        o.cacerts = Some(CaSource::Der(vec![pki.ca.clone()]));
        o
    }

    pub(crate) fn shuttle(from: &mut Connection, to: &mut Connection) {
        let out = from.output().to_vec();
        from.consume_output(out.len());
        to.receive(&out);
    }

    /// Runs both handshakes in memory until neither makes progress.
    pub(crate) fn handshake_pair(
        client: &mut Connection,
        server: &mut Connection,
    ) -> (Result<Progress, Error>, Result<Progress, Error>) {
        let mut c = client.handshake();
        let mut s = Ok(Progress::Pending);
        for _ in 0..10 {
            shuttle(client, server);
            s = server.handshake();
            shuttle(server, client);
            c = client.handshake();
            if c.is_err() || s.is_err() || (c == Ok(Progress::Done) && s == Ok(Progress::Done)) {
                shuttle(client, server);
                if c == Ok(Progress::Done) && s == Ok(Progress::Pending) {
                    s = server.handshake();
                }
                if c.is_err() {
                    s = server.handshake();
                }
                break;
            }
        }
        (c, s)
    }

    pub(crate) fn pair(
        client_opts: Options,
        server_opts: Options,
        host: &str,
    ) -> (Connection, Connection) {
        let client_cfg = Config::build(client_opts).unwrap();
        let server_cfg = Config::build(server_opts).unwrap();
        let peer = PeerName {
            sni: Some(host.into()),
            verify_host: Some(host.into()),
            session_key: None,
        };
        (
            Connection::new(&client_cfg, &peer).unwrap(),
            Connection::new(&server_cfg, &PeerName::default()).unwrap(),
        )
    }

    /// A client and a server that completed their handshake in memory.
    pub(crate) fn established_pair(pki: &TestPki) -> (Connection, Connection) {
        let (mut client, mut server) = pair(client_options(pki), server_options(pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        (client, server)
    }

    #[test]
    fn tls13_client_forgets_handshake_secret_once_established() {
        // A verifying TLS 1.3 client records its handshake traffic secret
        // (for a deferred alert); an established connection keeps none.
        let pki = test_pki();
        let mut co = client_options(&pki);
        co.versions = vec![Version::Tls13];
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert!(!super::super::tls13_alert::holds_secret(client.ssl()));
    }

    #[test]
    fn handshake_and_data_both_versions() {
        let pki = test_pki();
        for version in [Version::Tls12, Version::Tls13] {
            let mut co = client_options(&pki);
            co.versions = vec![version];
            let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
            let (c, s) = handshake_pair(&mut client, &mut server);
            assert_eq!(c, Ok(Progress::Done));
            assert_eq!(s, Ok(Progress::Done));
            assert_eq!(client.version(), Some(version));
            assert_eq!(server.sni_hostname().as_deref(), Some("localhost"));

            client.write(b"ping").unwrap();
            shuttle(&mut client, &mut server);
            let mut buf = [0u8; 64];
            assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(4));
            assert_eq!(&buf[..4], b"ping");
            assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::WouldBlock);

            server.close();
            shuttle(&mut server, &mut client);
            assert_eq!(client.read(&mut buf).unwrap(), ReadOutcome::Closed);
        }
    }

    #[test]
    fn unknown_ca_is_an_alert_on_both_sides() {
        let pki = test_pki();
        let other = test_pki();
        let (mut client, mut server) =
            pair(client_options(&other), server_options(&pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        match c {
            Err(Error::Alert { alert, local, .. }) => {
                assert_eq!(alert.name(), "unknown_ca");
                assert!(local);
            }
            other => panic!("client: {other:?}"),
        }
        match s {
            Err(Error::Alert { alert, local, .. }) => {
                assert_eq!(alert.name(), "unknown_ca");
                assert!(!local);
            }
            other => panic!("server: {other:?}"),
        }
    }

    #[test]
    fn tls13_client_alert_after_server_hello_is_protected() {
        let pki = test_pki();
        let other = test_pki();
        let mut co = client_options(&other);
        co.versions = vec![Version::Tls13];
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        client.handshake().unwrap();
        shuttle(&mut client, &mut server);
        server.handshake().unwrap();
        shuttle(&mut server, &mut client);
        assert!(client.handshake().is_err());
        let out = client.output().to_vec();
        // Only protected records (type 23) or a middlebox-compatibility
        // change_cipher_spec (type 20) may follow the ServerHello.
        let mut i = 0;
        while i + 5 <= out.len() {
            assert!(
                out[i] == 23 || out[i] == 20,
                "record type {} in {:?}",
                out[i],
                out
            );
            i += 5 + u16::from_be_bytes([out[i + 3], out[i + 4]]) as usize;
        }
        assert!(i > 0 && out[..i].contains(&23));
        // And the server reads it as the alert.
        shuttle(&mut client, &mut server);
        match server.handshake() {
            Err(Error::Alert { alert, local, .. }) => {
                assert_eq!((alert.name(), local), ("unknown_ca", false));
            }
            other => panic!("server: {other:?}"),
        }
    }

    #[test]
    fn tls12_renegotiation_completes() {
        let pki = test_pki();
        let mut co = client_options(&pki);
        co.versions = vec![Version::Tls12];
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        client.renegotiate().unwrap();
        assert!(client.renegotiation_pending());
        let mut buf = [0u8; 64];
        for _ in 0..6 {
            shuttle(&mut client, &mut server);
            let _ = server.read(&mut buf).unwrap();
            shuttle(&mut server, &mut client);
            let _ = client.read(&mut buf).unwrap();
        }
        assert!(!client.renegotiation_pending());
        client.write(b"after").unwrap();
        shuttle(&mut client, &mut server);
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(5));
    }

    #[test]
    fn http_request_gets_unexpected_message() {
        let pki = test_pki();
        let config = Config::build(server_options(&pki)).unwrap();
        let mut server = Connection::new(&config, &PeerName::default()).unwrap();
        server.receive(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        match server.handshake() {
            Err(Error::Alert {
                alert, local: true, ..
            }) => assert_eq!(alert, Alert(10)),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.output(), [21, 3, 3, 0, 2, 2, 10]);
    }

    #[test]
    fn wrong_host_name_fails_verification() {
        let pki = test_pki();
        let (mut client, mut server) =
            pair(client_options(&pki), server_options(&pki), "example.org");
        let (c, _) = handshake_pair(&mut client, &mut server);
        assert!(matches!(c, Err(Error::Alert { local: true, .. })), "{c:?}");
    }

    #[test]
    fn end_of_stream_reads_as_closed() {
        let (_client, mut server) = established_pair(&test_pki());
        server.receive_eof();
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Closed);
    }

    #[test]
    fn large_write_arrives_intact() {
        let (mut client, mut server) = established_pair(&test_pki());
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        client.write(&data).unwrap();
        shuttle(&mut client, &mut server);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let ReadOutcome::Data(n) = server.read(&mut buf).unwrap() {
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
    }
}

#[cfg(test)]
mod speed {
    use super::tests::*;
    use super::*;

    /// `cargo test --release -- --ignored --nocapture handshake_rate`:
    /// full handshakes per second, both ends in one thread, in memory.
    #[test]
    #[ignore]
    fn handshake_rate() {
        let pki = test_pki();
        for version in [Version::Tls13, Version::Tls12] {
            let mut co = client_options(&pki);
            co.versions = vec![version];
            co.verify = crate::engine::Verify::None;
            let cc = Config::build(co).unwrap();
            let sc = Config::build(server_options(&pki)).unwrap();
            let start = std::time::Instant::now();
            let n = 300;
            for _ in 0..n {
                let mut c = Connection::new(&cc, &PeerName::default()).unwrap();
                let mut s = Connection::new(&sc, &PeerName::default()).unwrap();
                let mut done = (false, false);
                while done != (true, true) {
                    done.0 = c.handshake().unwrap() == Progress::Done;
                    let out = c.output().to_vec();
                    c.consume_output(out.len());
                    s.receive(&out);
                    done.1 = s.handshake().unwrap() == Progress::Done;
                    let out = s.output().to_vec();
                    s.consume_output(out.len());
                    c.receive(&out);
                }
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            println!("{version:?}: {rate:.0} handshakes/s");
        }
    }
}

#[cfg(test)]
mod footprint {
    use super::tests::*;
    use super::*;

    /// `cargo test --release -- --ignored --nocapture memory_per_pair`:
    /// heap bytes held by an established, idle connection pair.
    #[test]
    #[ignore]
    fn memory_per_pair() {
        let pki = test_pki();
        let mut co = client_options(&pki);
        co.verify = crate::engine::Verify::None;
        let cc = Config::build(co).unwrap();
        let sc = Config::build(server_options(&pki)).unwrap();
        let used = || unsafe { libc::mallinfo2().uordblks };
        let before = used();
        let fresh: Vec<_> = (0..100)
            .map(|_| {
                (
                    Connection::new(&cc, &PeerName::default()).unwrap(),
                    Connection::new(&sc, &PeerName::default()).unwrap(),
                )
            })
            .collect();
        println!("fresh pair: {} bytes", (used() - before) / 100);
        drop(fresh);
        let before = used();
        let n = 500;
        let mut pairs = Vec::new();
        for _ in 0..n {
            let mut c = Connection::new(&cc, &PeerName::default()).unwrap();
            let mut s = Connection::new(&sc, &PeerName::default()).unwrap();
            let mut done = (false, false);
            while done != (true, true) {
                done.0 = c.handshake().unwrap() == Progress::Done;
                shuttle(&mut c, &mut s);
                done.1 = s.handshake().unwrap() == Progress::Done;
                shuttle(&mut s, &mut c);
            }
            let mut buf = [0u8; 16];
            let _ = c.read(&mut buf);
            let _ = s.read(&mut buf);
            c.release_buffers();
            s.release_buffers();
            pairs.push((c, s));
        }
        let after = used();
        println!("heap per pair: {} bytes", (after - before) / n);
    }
}
