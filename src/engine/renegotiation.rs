//! Rate limit on renegotiations a client starts (TLS 1.2 and older).
//!
//! Each renegotiation costs the server a full handshake, so a client that
//! renegotiates in a loop is a cheap denial of service (THC-SSL-DoS).
//! OTP's `ssl` accepts one client-initiated renegotiation and then refuses
//! the next ones for 12 seconds with a warning `no_renegotiation` alert,
//! keeping the connection. The same is done here: when a client starts a
//! renegotiation, `SSL_OP_ALLOW_CLIENT_RENEGOTIATION` is cleared on that
//! connection, so OpenSSL itself answers further ClientHellos with the
//! warning alert and carries on; the option comes back once the window has
//! passed, checked each time the connection takes input.
//! `{client_renegotiation, false}` still refuses them all (config.rs).

use super::ffi;
use foreign_types::ForeignTypeRef;
use libc::c_int;
use once_cell::sync::Lazy;
use openssl::ssl::{Ssl, SslRef};
use std::time::{Duration, Instant};

/// How long after a client-initiated renegotiation the next one is refused
/// (OTP's `?WAIT_TO_ALLOW_RENEGOTIATION`).
pub const WINDOW: Duration = Duration::from_secs(12);

/// Per server connection that allows client renegotiation.
#[derive(Default)]
struct Limit {
    /// The first handshake has completed: a new handshake is a renegotiation.
    established: bool,
    /// Client renegotiations are refused until then.
    refused_until: Option<Instant>,
    /// Client-initiated renegotiations accepted so far (for the tests).
    started: u32,
    /// A client-initiated renegotiation is under way.
    client_started: bool,
}

static LIMIT: Lazy<openssl::ex_data::Index<Ssl, Limit>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

/// Gives a new server connection whose configuration allows client
/// renegotiation its limit.
pub(crate) fn prepare(ssl: &mut Ssl) {
    ssl.set_ex_data(*LIMIT, Limit::default());
}

/// From the connection's info callback.
pub(crate) fn on_info(ssl: &mut SslRef, where_: c_int) {
    let ptr = ssl.as_ptr();
    // SAFETY: a live SSL, in its own info callback.
    let tls13 = unsafe { openssl_sys::SSL_version(ptr) } == openssl_sys::TLS1_3_VERSION;
    // SAFETY: as above.
    let ours = unsafe { ffi::SSL_renegotiate_pending(ptr) } != 0;
    // SAFETY: as above.
    let allowed =
        unsafe { ffi::SSL_get_options(ptr) } & ffi::SSL_OP_ALLOW_CLIENT_RENEGOTIATION != 0;
    let Some(limit) = ssl.ex_data_mut(*LIMIT) else {
        return;
    };
    // A handshake that starts on an established TLS 1.2 connection without
    // our HelloRequest is a ClientHello from the client: a renegotiation it
    // started. (TLS 1.3 has none; its post-handshake messages are no
    // handshake.) One that OpenSSL is about to refuse does not count, so
    // a flood does not push the window on (OTP's timer starts at the one
    // it accepted).
    let client_started = limit.established && !tls13 && !ours && allowed;
    if where_ & ffi::SSL_CB_HANDSHAKE_START != 0 && client_started {
        limit.started += 1;
        limit.refused_until = Some(Instant::now() + WINDOW);
        limit.client_started = true;
    }
    if where_ & ffi::SSL_CB_HANDSHAKE_DONE != 0 {
        limit.established = true;
        // OpenSSL checks the option while it processes that ClientHello,
        // so it is cleared only once that handshake is over.
        if std::mem::take(&mut limit.client_started) {
            // SAFETY: a live SSL; the option is a plain flag read at the
            // next ClientHello.
            unsafe { ffi::SSL_clear_options(ptr, ffi::SSL_OP_ALLOW_CLIENT_RENEGOTIATION) };
        }
    }
}

/// Allows client renegotiation again once the window has passed; called
/// before the connection reads input.
pub(crate) fn reopen_if_due(ssl: &mut SslRef, now: impl FnOnce() -> Instant) {
    let ptr = ssl.as_ptr();
    let Some(limit) = ssl.ex_data_mut(*LIMIT) else {
        return;
    };
    if limit.refused_until.is_some_and(|until| now() >= until) {
        limit.refused_until = None;
        // SAFETY: a live SSL owned by the caller.
        unsafe { ffi::SSL_set_options(ptr, ffi::SSL_OP_ALLOW_CLIENT_RENEGOTIATION) };
    }
}

#[cfg(test)]
mod tests {
    use super::super::connection::tests::*;
    use super::super::connection::{Connection, Progress, ReadOutcome};
    use super::super::options::Options;
    use super::super::version::Version;
    use super::*;

    /// Client-initiated renegotiations the server accepted.
    fn started(ssl: &SslRef) -> u32 {
        ssl.ex_data(*LIMIT).map_or(0, |l| l.started)
    }

    /// Shuttles records both ways, reading on each side, until quiet.
    fn exchange(client: &mut Connection, server: &mut Connection) -> (Vec<u8>, Vec<u8>) {
        let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 256];
        for _ in 0..8 {
            shuttle(client, server);
            while let Ok(ReadOutcome::Data(n)) = server.read(&mut buf) {
                at_server.extend_from_slice(&buf[..n]);
            }
            shuttle(server, client);
            while let Ok(ReadOutcome::Data(n)) = client.read(&mut buf) {
                at_client.extend_from_slice(&buf[..n]);
            }
        }
        (at_client, at_server)
    }

    fn tls12_pair(server_opts: Options, pki: &TestPki) -> (Connection, Connection) {
        let mut co = client_options(pki);
        co.versions = vec![Version::Tls12];
        let (mut client, mut server) = pair(co, server_opts, "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        (client, server)
    }

    /// The client renegotiates; returns whether it completed.
    fn client_renegotiates(client: &mut Connection, server: &mut Connection) -> bool {
        client.renegotiate().unwrap();
        exchange(client, server);
        !client.renegotiation_pending()
    }

    #[test]
    fn second_client_renegotiation_in_the_window_is_refused() {
        let pki = test_pki();
        let (mut client, mut server) = tls12_pair(server_options(&pki), &pki);
        assert!(client_renegotiates(&mut client, &mut server));
        assert_eq!(started(server.ssl()), 1);
        // The next ClientHello: the server answers with one alert record
        // (encrypted: the warning no_renegotiation) and carries on.
        client.renegotiate().unwrap();
        shuttle(&mut client, &mut server);
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::WouldBlock);
        assert_eq!(started(server.ssl()), 1);
        let out = server.output().to_vec();
        assert_eq!(out[0], 21, "one alert record: {out:?}");
        assert_eq!(out.len(), 5 + u16::from_be_bytes([out[3], out[4]]) as usize);
        // OpenSSL's client takes that warning as fatal, so a flood from it
        // stops at the first refusal.
        shuttle(&mut server, &mut client);
        let err = client.read(&mut buf).unwrap_err();
        assert!(format!("{err:?}").contains("renegotiation"), "{err:?}");
    }

    #[test]
    fn client_renegotiation_is_allowed_again_after_the_window() {
        let pki = test_pki();
        let (mut client, mut server) = tls12_pair(server_options(&pki), &pki);
        assert!(client_renegotiates(&mut client, &mut server));
        reopen_if_due(server.ssl_mut(), || Instant::now() + WINDOW);
        assert!(client_renegotiates(&mut client, &mut server));
        assert_eq!(started(server.ssl()), 2);
        client.write(b"still here").unwrap();
        let (_, at_server) = exchange(&mut client, &mut server);
        assert_eq!(at_server, b"still here");
    }

    #[test]
    fn server_renegotiations_are_not_limited() {
        let pki = test_pki();
        let (mut client, mut server) = tls12_pair(server_options(&pki), &pki);
        for _ in 0..4 {
            server.renegotiate().unwrap();
            exchange(&mut client, &mut server);
            assert!(!server.renegotiation_pending());
        }
        assert_eq!(started(server.ssl()), 0);
        // Nor do they use up the client's allowance.
        assert!(client_renegotiates(&mut client, &mut server));
    }

    #[test]
    fn client_renegotiation_false_refuses_the_first_one() {
        let pki = test_pki();
        let mut so = server_options(&pki);
        so.client_renegotiation = false;
        let (mut client, mut server) = tls12_pair(so, &pki);
        assert!(!client_renegotiates(&mut client, &mut server));
        assert_eq!(started(server.ssl()), 0);
    }
}
