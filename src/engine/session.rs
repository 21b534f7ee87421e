//! Session resumption: the server's session cache and TLS 1.3 tickets, and
//! a client's saved sessions (OTP's `reuse_sessions`, `reuse_session`,
//! `session_tickets`).
//!
//! A saved session is the DER of OpenSSL's SSL_SESSION: it holds the
//! session's master secret, so keep it as secret as a private key.

use super::connection::Connection;
use super::error::Error;
use super::ffi;
use super::options::{Options, Role};
use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslOptions, SslSession, SslSessionCacheMode};

pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<(), Error> {
    if o.role != Role::Server {
        return Ok(());
    }
    // Without an id context, OpenSSL refuses to resume sessions of a
    // server that verifies clients. One cache per context, so any fixed
    // value will do.
    b.set_session_id_context(b"rssl")
        .map_err(|e| Error::Internal(format!("session id context: {e}")))?;
    if o.reuse_sessions {
        b.set_num_tickets(o.session_tickets as usize)
            .map_err(|e| Error::Internal(format!("session tickets: {e}")))?;
    } else {
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::NO_TICKET);
    }
    Ok(())
}

impl Connection {
    /// The session to offer when connecting again (client), DER; None
    /// while there is no resumable session. With TLS 1.3 the server sends
    /// its tickets after the handshake: they arrive with the first reads.
    pub fn session(&self) -> Option<Vec<u8>> {
        let session = self.ssl().session()?;
        if unsafe { ffi::SSL_SESSION_is_resumable(session.as_ptr()) } != 1 {
            return None;
        }
        session.to_der().ok()
    }

    /// Offers a saved session (DER from [`Connection::session`]) before
    /// the handshake (client). The server decides whether to resume;
    /// [`Connection::session_reused`] tells afterwards.
    pub fn set_session(&mut self, der: &[u8]) -> Result<(), Error> {
        let bad = || Error::Option("reuse_session".into(), "not a saved session".into());
        let session = SslSession::from_der(der).map_err(|_| bad())?;
        // SAFETY: OpenSSL checks that the session fits this connection's
        // protocol and ciphers before offering it.
        unsafe { self.ssl_mut().set_session(&session) }.map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::connection::tests::{
        client_options, handshake_pair, pair, server_options, shuttle, test_pki,
    };
    use crate::engine::{Config, Connection, Progress, ReadOutcome, Version};

    #[test]
    fn saved_sessions_resume_with_both_versions() {
        let pki = test_pki();
        for version in [Version::Tls12, Version::Tls13] {
            let mut so = server_options(&pki);
            so.session_tickets = 1;
            let server_config = Config::build(so).unwrap();
            let mut co = client_options(&pki);
            co.versions = vec![version];
            let client_config = Config::build(co).unwrap();
            let peer = crate::engine::connection::PeerName {
                sni: Some("localhost".into()),
                verify_host: Some("localhost".into()),
            };
            let connect = |session: Option<&[u8]>| {
                let mut client = Connection::new(&client_config, &peer).unwrap();
                if let Some(der) = session {
                    client.set_session(der).unwrap();
                }
                let mut server = Connection::new(&server_config, &Default::default()).unwrap();
                let (c, s) = handshake_pair(&mut client, &mut server);
                assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
                server.write(b"x").unwrap();
                shuttle(&mut server, &mut client);
                let mut buf = [0u8; 8];
                assert_eq!(client.read(&mut buf).unwrap(), ReadOutcome::Data(1));
                (client, server)
            };
            let (first, _) = connect(None);
            assert!(!first.session_reused());
            let saved = first.session().expect("a resumable session");
            let (second, server) = connect(Some(&saved));
            assert!(second.session_reused(), "{version:?}");
            assert!(server.session_reused());
        }
        let (mut client, _) = pair(client_options(&pki), server_options(&pki), "localhost");
        assert!(client.set_session(b"junk").is_err());
    }
}
