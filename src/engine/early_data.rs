//! TLS 1.3 early data (0-RTT): a client resuming with a ticket sends data
//! with its ClientHello; a server that allows it (`Options::max_early_data`)
//! reads it before the handshake completes and hands it out before the
//! rest of the client's data (OTP's `early_data`).
//!
//! Early data can be replayed by anyone who recorded it: stateful tickets
//! are single use (OpenSSL's session cache), stateless ones need
//! `anti_replay.rs`.

use super::alert::Alert;
use super::connection::{Connection, Progress};
use super::error::Error;
use super::options::Role;
use foreign_types::ForeignTypeRef;
use openssl::ssl::ErrorCode;

/// `SSL_get_early_data_status` values.
const SSL_EARLY_DATA_REJECTED: libc::c_int = 1;
const SSL_EARLY_DATA_ACCEPTED: libc::c_int = 2;
/// `SSL_OP_NO_ANTI_REPLAY`.
pub(crate) const SSL_OP_NO_ANTI_REPLAY: u64 = 1 << 24;

extern "C" {
    fn SSL_get_early_data_status(ssl: *const openssl_sys::SSL) -> libc::c_int;
    fn SSL_CTX_set_recv_max_early_data(ctx: *mut openssl_sys::SSL_CTX, n: u32) -> libc::c_int;
}

/// What a connection does with early data.
#[derive(Debug, Default)]
pub(crate) struct EarlyData {
    /// Client: data to send with the ClientHello, until it is written.
    to_send: Option<Vec<u8>>,
    /// Client: without a ticket that allows it, the handshake fails (a
    /// ticket given by hand, as OTP); else the data is not sent.
    required: bool,
    /// Client: the data went out.
    sent: bool,
    /// Server: still reading early data (the handshake goes through
    /// `SSL_read_early_data` until it says the early data is over).
    reading: bool,
    /// Server: the early data received, not yet handed out.
    received: Vec<u8>,
}

impl EarlyData {
    pub(crate) fn server(max_early_data: u32) -> EarlyData {
        EarlyData {
            reading: max_early_data > 0,
            ..EarlyData::default()
        }
    }
}

/// Server: early data up to `max` bytes per connection. With early data
/// OpenSSL resumes only sessions it finds, and takes, in its own cache:
/// unless `openssl_single_use`, that check is off, for stateless tickets
/// (they stay stateless; `anti_replay` guards them) and for a store of
/// ours (a `reuse_session` function's, which takes its TLS 1.3 sessions
/// itself).
pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, max: u32, openssl_single_use: bool) {
    if max == 0 {
        return;
    }
    let _ = b.set_max_early_data(max);
    // SAFETY: a live context under construction.
    unsafe { SSL_CTX_set_recv_max_early_data(b.as_ptr(), max) };
    if !openssl_single_use {
        let ctx = b.as_ptr();
        // SAFETY: a live context; only sets an option bit.
        unsafe { openssl_sys::SSL_CTX_set_options(ctx, SSL_OP_NO_ANTI_REPLAY as _) };
    }
}

impl Connection {
    /// Client: data to send as early data with the session offered (a
    /// ticket that allows it), before the handshake. With `required`, a
    /// handshake without such a ticket fails with illegal_parameter, as
    /// OTP's does with `use_ticket`; else the data is not sent.
    pub fn set_early_data(&mut self, data: Vec<u8>, required: bool) {
        if self.role() == Role::Client && !self.is_established() {
            self.early.to_send = Some(data);
            self.early.required = required;
        }
    }

    /// How the early data fared, once the handshake is done: `None` when
    /// none was sent (client) or received (server), else whether the
    /// server accepted it.
    pub fn early_data_status(&self) -> Option<bool> {
        if !self.is_established() {
            return None;
        }
        // SAFETY: a live SSL owned by this connection; the call only reads.
        let status = unsafe { SSL_get_early_data_status(self.ssl().as_ptr()) };
        match (self.role(), status) {
            (Role::Client, _) if !self.early.sent => None,
            (_, SSL_EARLY_DATA_ACCEPTED) => Some(true),
            (Role::Client, SSL_EARLY_DATA_REJECTED) => Some(false),
            _ => None,
        }
    }

    /// Server: takes the early data received (handed out before the rest).
    pub fn take_early_data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.early.received)
    }

    /// The early data step of a handshake: a client writes its data, a
    /// server reads the client's. `Some(progress)` ends this handshake
    /// step there.
    pub(super) fn early_step(&mut self) -> Result<Option<Progress>, Error> {
        match self.role() {
            Role::Client if self.early.to_send.is_some() => self.write_early(),
            Role::Server if self.early.reading => self.read_early(),
            _ => Ok(None),
        }
    }

    fn write_early(&mut self) -> Result<Option<Progress>, Error> {
        let data = self.early.to_send.take().unwrap_or_default();
        let allowed = self.ssl().session().map_or(0, |s| s.max_early_data()) as usize;
        if allowed == 0 || data.len() > allowed {
            if !self.early.required {
                return Ok(None);
            }
            let detail = if allowed == 0 {
                "no ticket allows early data"
            } else {
                "too much early data"
            };
            return Err(self.fail_locally(Alert(47), detail));
        }
        let mut written = 0;
        while written < data.len() {
            match self.stream_mut().write_early_data(&data[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if e.code() == ErrorCode::WANT_READ
                        || e.code() == ErrorCode::from_raw(super::ffi::SSL_ERROR_WANT_ASYNC) =>
                {
                    self.early.to_send = Some(data[written..].to_vec());
                    return Ok(Some(Progress::Pending));
                }
                Err(e) => return Err(self.fail_openssl(e)),
            }
        }
        self.early.sent = true;
        Ok(None)
    }

    fn read_early(&mut self) -> Result<Option<Progress>, Error> {
        // Read straight onto the end of what came before (one record at most).
        const RECORD: usize = super::MAX_RECORD_PLAINTEXT;
        let mut received = std::mem::take(&mut self.early.received);
        let outcome = loop {
            let len = received.len();
            received.resize(len + RECORD, 0);
            let read = self.stream_mut().read_early_data(&mut received[len..]);
            received.truncate(len + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => {
                    self.early.reading = false;
                    break Ok(None);
                }
                Ok(_) => {}
                Err(e)
                    if e.code() == ErrorCode::WANT_READ
                        || e.code() == ErrorCode::from_raw(super::ffi::SSL_ERROR_WANT_ASYNC) =>
                {
                    break Ok(Some(Progress::Pending));
                }
                Err(e) => break Err(self.fail_openssl(e)),
            }
        };
        self.early.received = received;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::anti_replay::AntiReplayParams;
    use crate::engine::connection::tests::{
        client_options, handshake_pair, server_options, shuttle, test_pki,
    };
    use crate::engine::connection::PeerName;
    use crate::engine::{Config, Connection, Progress, ReadOutcome};

    fn peer() -> PeerName {
        PeerName {
            sni: Some("localhost".into()),
            verify_host: Some("localhost".into()),
            session_key: None,
        }
    }

    /// A full handshake, a byte from the server, then the tickets.
    fn tickets(client_config: &Config, server_config: &Config) -> Vec<Vec<u8>> {
        let mut client = Connection::new(client_config, &peer()).unwrap();
        let mut server = Connection::new(server_config, &Default::default()).unwrap();
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        server.write(b"x").unwrap();
        shuttle(&mut server, &mut client);
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).unwrap(), ReadOutcome::Data(1));
        client.take_tickets().into_iter().map(|t| t.der).collect()
    }

    /// Resumes with `ticket` sending `early`; returns (resumed, status,
    /// what the server got before its first read).
    fn resume(
        client_config: &Config,
        server_config: &Config,
        ticket: &[u8],
        early: &[u8],
    ) -> (bool, Option<bool>, Vec<u8>) {
        let mut client = Connection::new(client_config, &peer()).unwrap();
        assert!(client.use_tickets(&[ticket], true));
        client.set_early_data(early.to_vec(), true);
        let mut server = Connection::new(server_config, &Default::default()).unwrap();
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        (
            client.session_reused(),
            client.early_data_status(),
            server.take_early_data(),
        )
    }

    #[test]
    fn early_data_once_per_stateless_ticket_with_anti_replay() {
        let pki = test_pki();
        let mut so = server_options(&pki);
        so.session_tickets = 3;
        so.max_early_data = 16384;
        so.anti_replay = Some(AntiReplayParams {
            window_secs: 10,
            hashes: 5,
            bits: 72985,
        });
        let server_config = Config::build(so).unwrap();
        let mut co = client_options(&pki);
        co.manual_tickets = true;
        let client_config = Config::build(co).unwrap();
        let got = tickets(&client_config, &server_config);
        assert_eq!(got.len(), 3);
        let (resumed, status, early) = resume(&client_config, &server_config, &got[0], b"early");
        assert_eq!(
            (resumed, status, early.as_slice()),
            (true, Some(true), &b"early"[..])
        );
        // The same ticket again: resumed, but its early data refused.
        let (resumed, status, early) = resume(&client_config, &server_config, &got[0], b"again");
        assert_eq!((resumed, status, early.len()), (true, Some(false), 0));
        let (_, status, early) = resume(&client_config, &server_config, &got[1], b"other");
        assert_eq!((status, early.as_slice()), (Some(true), &b"other"[..]));
    }

    /// Stateful tickets in the store of a `reuse_session` function are
    /// single use too: a replay of one cannot resume (nor carry early data).
    #[test]
    fn stateful_tickets_of_a_reuse_session_fun_are_single_use() {
        use crate::engine::hooks::Callback;
        use crate::engine::session::OfferedSession;
        use std::sync::Arc;
        let pki = test_pki();
        let mut so = server_options(&pki);
        so.session_tickets = 2;
        so.stateful_tickets = true;
        so.max_early_data = 16384;
        so.reuse_session = Some(Callback(Arc::new(|_: &OfferedSession<'_>| {
            std::task::Poll::Ready(true)
        })));
        let server_config = Config::build(so).unwrap();
        let mut co = client_options(&pki);
        co.manual_tickets = true;
        let client_config = Config::build(co).unwrap();
        let got = tickets(&client_config, &server_config);
        let (resumed, status, early) = resume(&client_config, &server_config, &got[0], b"early");
        assert_eq!(
            (resumed, status, early.as_slice()),
            (true, Some(true), &b"early"[..])
        );
        let (resumed, status, early) = resume(&client_config, &server_config, &got[0], b"again");
        assert_eq!((resumed, status, early.len()), (false, Some(false), 0));
    }

    #[test]
    fn no_ticket_for_early_data_fails_when_required() {
        let pki = test_pki();
        let client_config = Config::build(client_options(&pki)).unwrap();
        let server_config = Config::build(server_options(&pki)).unwrap();
        let mut client = Connection::new(&client_config, &peer()).unwrap();
        client.set_early_data(b"x".to_vec(), true);
        let mut server = Connection::new(&server_config, &Default::default()).unwrap();
        let (c, _) = handshake_pair(&mut client, &mut server);
        assert!(c.is_err());
    }
}
