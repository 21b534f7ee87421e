//! Session resumption: the server's session cache and TLS 1.3 tickets, and
//! a client's saved sessions (OTP's `reuse_sessions`, `reuse_session`,
//! `session_tickets`).
//!
//! A saved session is the DER of OpenSSL's SSL_SESSION: it holds the
//! session's master secret, so keep it as secret as a private key.

use super::connection::{guard, Connection};
use super::error::Error;
use super::ffi;
use super::hooks::Callback;
use super::options::{Options, Role};
use super::version::Version;
use foreign_types::{ForeignType, ForeignTypeRef};
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContext, SslOptions, SslRef, SslSession, SslSessionCacheMode, SslVersion,
};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::task::Poll;

/// What a server's `reuse_session` function sees of an offered session.
#[derive(Debug, Clone)]
pub struct OfferedSession<'a> {
    /// The session id the client sent.
    pub id: &'a [u8],
    /// The client's certificate in that session (DER), if it sent one.
    pub peer_cert: Option<Vec<u8>>,
    /// The session's cipher suite, as its two-byte IANA code.
    pub suite: [u8; 2],
}

/// Server: true to resume the offered session, false for a full
/// handshake. Pending: asked again when the handshake resumes (`pause.rs`).
pub type ReuseSessionFn = dyn Fn(&OfferedSession<'_>) -> Poll<bool> + Send + Sync;

/// Bounds on the sessions kept per configuration.
const SERVER_SESSIONS: usize = 20_000;
const CLIENT_SESSIONS: usize = 1_000;

/// Sessions by key, the oldest evicted first when full.
struct SessionStore<K> {
    limit: usize,
    sessions: HashMap<K, SslSession>,
    order: VecDeque<K>,
}

impl<K: Clone + Eq + Hash> SessionStore<K> {
    fn new(limit: usize) -> Self {
        SessionStore {
            limit,
            sessions: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: K, session: SslSession) {
        if self.sessions.insert(key.clone(), session).is_none() {
            self.order.push_back(key);
        }
        while self.sessions.len() > self.limit {
            match self.order.pop_front() {
                Some(old) => {
                    self.sessions.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, key: &K) -> Option<SslSession> {
        let session = self.sessions.remove(key)?;
        self.order.retain(|k| k != key);
        Some(session)
    }
}

type ClientStore = Arc<Mutex<SessionStore<String>>>;

/// A client context's saved sessions, by session key.
static CLIENT_STORE: Lazy<Index<SslContext, ClientStore>> =
    Lazy::new(|| SslContext::new_ex_index().expect("SSL_CTX ex_data index"));
/// A client connection's session key.
static SESSION_KEY: Lazy<Index<Ssl, String>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<(), Error> {
    if o.role == Role::Client {
        install_client(b, o);
        return Ok(());
    }
    // Without an id context, OpenSSL refuses to resume sessions of a
    // server that verifies clients. One cache per context, so any fixed
    // value will do.
    b.set_session_id_context(b"rssl")
        .map_err(|e| Error::Internal(format!("session id context: {e}")))?;
    if o.reuse_sessions {
        if !o.versions.contains(&Version::Tls13) {
            // TLS 1.2 resumes by session id, as with OTP's servers, not by
            // RFC 5077 ticket: a ticket carries the whole session, the
            // client's certificate too, and taking it back costs the
            // server a decryption and a certificate parse (about 200 us,
            // most of a resumed handshake) where an id costs a lookup.
            // With TLS 1.3 enabled too, `tls12_without_tickets` decides
            // per hello.
            b.set_options(SslOptions::NO_TICKET);
        }
        b.set_num_tickets(o.session_tickets as usize)
            .map_err(|e| Error::Internal(format!("session tickets: {e}")))?;
        if o.stateful_tickets {
            // TLS 1.3 tickets then name a session of the server's cache.
            b.set_options(SslOptions::NO_TICKET);
        }
        if o.session_tickets > 0 {
            let openssl_cache = o.stateful_tickets && o.reuse_session.is_none();
            super::early_data::install(b, o.max_early_data, openssl_cache);
            if let (Some(params), false) = (o.anti_replay, o.stateful_tickets) {
                super::anti_replay::install(b, params);
            }
        }
        if let Some(fun) = o.reuse_session.clone() {
            install_reuse_fun(b, fun);
        }
    } else {
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::NO_TICKET);
    }
    Ok(())
}

/// Whether a server decides per hello (`tls12_without_tickets`) that TLS
/// 1.2 goes without tickets: it resumes sessions, has TLS 1.3 and TLS 1.2
/// and would otherwise send TLS 1.2 tickets (`install`).
pub(crate) fn tls12_tickets_per_hello(o: &Options) -> bool {
    o.role == Role::Server
        && o.reuse_sessions
        && !o.stateful_tickets
        && o.reuse_session.is_none()
        && o.versions.contains(&Version::Tls13)
        && o.versions.iter().any(|v| *v != Version::Tls13)
}

/// In a server's client-hello callback: a client that does not offer TLS
/// 1.3 gets TLS 1.2 without tickets (session ids only, see `install`);
/// one that does keeps the TLS 1.3 tickets configured.
pub(crate) fn tls12_without_tickets(ssl: &mut SslRef) {
    if !offers_tls13(ssl) {
        // SAFETY: a live connection, in its client-hello callback, before
        // OpenSSL looks at tickets.
        unsafe { ffi::SSL_set_options(ssl.as_ptr(), SslOptions::NO_TICKET.bits()) };
    }
}

/// Whether the ClientHello's supported_versions extension lists TLS 1.3.
fn offers_tls13(ssl: &SslRef) -> bool {
    const SUPPORTED_VERSIONS: libc::c_uint = 43;
    let mut data: *const u8 = std::ptr::null();
    let mut len = 0usize;
    // SAFETY: inside the client-hello callback; the data stays OpenSSL's
    // and is read before the callback returns.
    let found = unsafe {
        openssl_sys::SSL_client_hello_get0_ext(
            ssl.as_ptr(),
            SUPPORTED_VERSIONS,
            &mut data,
            &mut len,
        )
    };
    if found != 1 || data.is_null() || len == 0 {
        return false;
    }
    // SAFETY: `len` bytes at `data`, per OpenSSL.
    let ext = unsafe { std::slice::from_raw_parts(data, len) };
    // A one-byte length, then two-byte versions.
    ext[1..].chunks_exact(2).any(|v| v == [0x03, 0x04])
}

/// A client keeps the sessions it may offer again: TLS 1.2 sessions when
/// `reuse_sessions`, TLS 1.3 tickets when `auto_tickets`; with
/// `manual_tickets`, each TLS 1.3 ticket goes to its connection's queue
/// (`collect_tickets`) for the application.
fn install_client(b: &mut openssl::ssl::SslContextBuilder, o: &Options) {
    if !o.reuse_sessions && !o.auto_tickets && !o.manual_tickets {
        return;
    }
    let store: ClientStore = Arc::new(Mutex::new(SessionStore::new(CLIENT_SESSIONS)));
    let (tls12, tls13) = (o.reuse_sessions, o.auto_tickets);
    b.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL_STORE);
    let saved = store.clone();
    b.set_new_session_callback(move |ssl, session| {
        guard((), || {
            if session.protocol_version() == SslVersion::TLS1_3 {
                if let Some(queue) = ssl.ex_data_mut(*TICKETS) {
                    // A server may send any number: the newest are kept.
                    if queue.len() >= TICKETS_KEPT {
                        queue.remove(0);
                    }
                    queue.push(session);
                    return;
                }
            }
            let Some(key) = ssl.ex_data(*SESSION_KEY) else {
                return;
            };
            let wanted = if session.protocol_version() == SslVersion::TLS1_3 {
                tls13
            } else {
                tls12
            };
            if wanted {
                saved.lock().insert(key.clone(), session);
            }
        })
    });
    b.set_ex_data(*CLIENT_STORE, store);
}

/// Before a client handshake: remember the connection's session key and
/// offer the session saved under it, if any. A TLS 1.3 ticket is used
/// once; the server sends new ones.
pub(crate) fn offer_saved(ssl: &mut Ssl, key: &str) {
    let store = match ssl.ssl_context().ex_data(*CLIENT_STORE) {
        Some(store) => store.clone(),
        None => return,
    };
    ssl.set_ex_data(*SESSION_KEY, key.to_string());
    let mut saved = store.lock();
    let Some(session) = saved.sessions.get(key).cloned() else {
        return;
    };
    if session.protocol_version() == SslVersion::TLS1_3 {
        saved.remove(&key.to_string());
    }
    drop(saved);
    // SAFETY: the session comes from a connection of this same context.
    let _ = unsafe { ssl.set_session(&session) };
}

/// A TLS 1.3 ticket received on a connection with manual tickets.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The session the ticket resumes, OpenSSL's DER (secret: it holds the
    /// resumption key).
    pub der: Vec<u8>,
    /// The host name the client sent (SNI), if any.
    pub sni: Option<String>,
    /// The connection's cipher suite.
    pub suite: Option<super::suite::Suite>,
    /// The most early data the server accepts with it (0: no 0-RTT).
    pub max_early_data: u32,
    /// The resumption key the ticket stands for (secret).
    pub psk: Vec<u8>,
}

/// Tickets kept per connection until taken.
const TICKETS_KEPT: usize = 32;

/// A connection's tickets not yet taken (manual tickets).
static TICKETS: Lazy<Index<Ssl, Vec<SslSession>>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

/// A client with manual tickets: the tickets of this connection are kept
/// for `Connection::take_tickets`.
pub(crate) fn collect_tickets(ssl: &mut Ssl) {
    ssl.set_ex_data(*TICKETS, Vec::new());
}

/// A server whose `reuse_session` function decides: the sessions live in
/// a store of ours (OpenSSL's own lookup would not ask), and TLS 1.2
/// resumption goes through session ids only, as with OTP's servers.
fn install_reuse_fun(b: &mut openssl::ssl::SslContextBuilder, fun: Callback<ReuseSessionFn>) {
    let store = Arc::new(Mutex::new(SessionStore::<Vec<u8>>::new(SERVER_SESSIONS)));
    b.set_session_cache_mode(SslSessionCacheMode::SERVER | SslSessionCacheMode::NO_INTERNAL);
    b.set_options(SslOptions::NO_TICKET);
    let saved = store.clone();
    b.set_new_session_callback(move |_, session| {
        guard((), || {
            let id = session.id().to_vec();
            saved.lock().insert(id, session);
        })
    });
    let removed = store.clone();
    b.set_remove_session_callback(move |_, session| {
        guard((), || {
            removed.lock().remove(&session.id().to_vec());
        })
    });
    // SAFETY: the returned session is one OpenSSL gave us for this context.
    unsafe {
        b.set_get_session_callback(move |ssl, id| {
            guard(None, || {
                let session = store.lock().sessions.get(id).cloned()?;
                let offered = OfferedSession {
                    id,
                    peer_cert: session.peer_certificate_der(),
                    suite: session.suite_id(),
                };
                // No answer (the handshake is being abandoned): no resumption.
                let resume = super::pause::answer(ssl, || fun(&offered)).unwrap_or(false);
                if resume && session.protocol_version() == SslVersion::TLS1_3 {
                    // A TLS 1.3 ticket naming this store's session is used
                    // once, as OpenSSL's own cache does with early data (its
                    // replay protection) and OTP's stateful tickets are.
                    store.lock().remove(&id.to_vec());
                }
                resume.then_some(session)
            })
        });
    }
}

/// What the session API of the `openssl` crate lacks.
trait SessionExt {
    fn peer_certificate_der(&self) -> Option<Vec<u8>>;
    fn suite_id(&self) -> [u8; 2];
}

impl SessionExt for SslSession {
    fn peer_certificate_der(&self) -> Option<Vec<u8>> {
        // SAFETY: a live session; get0 lends its certificate (or NULL).
        unsafe {
            let cert = ffi::SSL_SESSION_get0_peer(self.as_ptr());
            if cert.is_null() {
                return None;
            }
            openssl::x509::X509Ref::from_ptr(cert).to_der().ok()
        }
    }

    fn suite_id(&self) -> [u8; 2] {
        // SAFETY: a live session; get0 lends its cipher (or NULL).
        unsafe {
            let cipher = ffi::SSL_SESSION_get0_cipher(self.as_ptr());
            if cipher.is_null() {
                return [0, 0];
            }
            let id = ffi::SSL_CIPHER_get_protocol_id(cipher);
            id.to_be_bytes()
        }
    }
}

impl Connection {
    /// The session's id (empty when there is none, e.g. a TLS 1.2 session
    /// kept in a ticket).
    pub fn session_id(&self) -> Vec<u8> {
        self.ssl()
            .session()
            .map(|s| s.id().to_vec())
            .unwrap_or_default()
    }

    /// The session to offer when connecting again (client), DER; None
    /// while there is no resumable session. With TLS 1.3 the server sends
    /// its tickets after the handshake: they arrive with the first reads.
    pub fn session(&self) -> Option<Vec<u8>> {
        let session = self.ssl().session()?;
        // SAFETY: a live session; the call only reads.
        if unsafe { ffi::SSL_SESSION_is_resumable(session.as_ptr()) } != 1 {
            return None;
        }
        session.to_der().ok()
    }

    /// The TLS 1.3 tickets received since the last call (a client with
    /// manual tickets; they come with the first reads after the handshake).
    pub fn take_tickets(&mut self) -> Vec<Ticket> {
        let sessions = match self.ssl_mut().ex_data_mut(*TICKETS) {
            Some(queue) if !queue.is_empty() => std::mem::take(queue),
            _ => return Vec::new(),
        };
        let sni = self.sni_hostname();
        let suite = self.suite();
        sessions
            .into_iter()
            .filter_map(|s| {
                let mut psk = vec![0u8; 64];
                // SAFETY: a live session; OpenSSL copies at most `psk.len()` bytes.
                let n = unsafe {
                    ffi::SSL_SESSION_get_master_key(s.as_ptr(), psk.as_mut_ptr(), psk.len())
                };
                psk.truncate(n);
                Some(Ticket {
                    der: s.to_der().ok()?,
                    sni: sni.clone(),
                    suite: suite.clone(),
                    max_early_data: s.max_early_data(),
                    psk,
                })
            })
            .collect()
    }

    /// Offers one of `tickets` (DER of [`Ticket`]) before the handshake
    /// (client): the first TLS 1.3 one that OpenSSL can read, or with
    /// `early_data` the first of those that allows early data if any does.
    /// False when none can be offered (a full handshake follows).
    pub fn use_tickets(&mut self, tickets: &[&[u8]], early_data: bool) -> bool {
        let usable: Vec<SslSession> = tickets
            .iter()
            .filter_map(|der| SslSession::from_der(der).ok())
            .filter(|s| s.protocol_version() == SslVersion::TLS1_3)
            // SAFETY: a live session; the call only reads.
            .filter(|s| unsafe { ffi::SSL_SESSION_is_resumable(s.as_ptr()) } == 1)
            .collect();
        let chosen = usable
            .iter()
            .find(|s| early_data && s.max_early_data() > 0)
            .or(usable.first());
        match chosen {
            // SAFETY: OpenSSL checks that the session fits this connection's
            // protocol and ciphers before offering it.
            Some(session) => unsafe { self.ssl_mut().set_session(session) }.is_ok(),
            None => false,
        }
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
                session_key: None,
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
            let (first, mut first_server) = connect(None);
            // A TLS 1.2 session lives in the server's cache (no tickets):
            // its connection ends with close_notify, or OpenSSL drops it.
            first_server.close();
            drop(first_server);
            assert!(!first.session_reused());
            let saved = first.session().expect("a resumable session");
            let (second, server) = connect(Some(&saved));
            assert!(second.session_reused(), "{version:?}");
            assert!(server.session_reused());
        }
        let (mut client, _) = pair(client_options(&pki), server_options(&pki), "localhost");
        assert!(client.set_session(b"junk").is_err());
    }

    /// Connects a client with `key` to a fresh server connection; returns
    /// whether the session was resumed, after a round trip (TLS 1.3
    /// tickets come then).
    fn connect_keyed(client_config: &Config, server_config: &Config, key: &str) -> bool {
        let peer = crate::engine::connection::PeerName {
            sni: Some("localhost".into()),
            verify_host: Some("localhost".into()),
            session_key: Some(key.into()),
        };
        let mut client = Connection::new(client_config, &peer).unwrap();
        let mut server = Connection::new(server_config, &Default::default()).unwrap();
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        server.write(b"x").unwrap();
        shuttle(&mut server, &mut client);
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).unwrap(), ReadOutcome::Data(1));
        assert_eq!(client.session_reused(), server.session_reused());
        // Sessions of connections ended without close_notify are not
        // resumed (OpenSSL invalidates them, as TLS asks).
        client.close();
        server.close();
        client.session_reused()
    }

    #[test]
    fn clients_reuse_sessions_by_key() {
        let pki = test_pki();
        // TLS 1.2: on by default (reuse_sessions).
        let server_config = Config::build(server_options(&pki)).unwrap();
        let mut co = client_options(&pki);
        co.versions = vec![Version::Tls12];
        let client_config = Config::build(co.clone()).unwrap();
        assert!(!connect_keyed(&client_config, &server_config, "a:1"));
        assert!(connect_keyed(&client_config, &server_config, "a:1"));
        assert!(connect_keyed(&client_config, &server_config, "a:1"));
        assert!(!connect_keyed(&client_config, &server_config, "b:1"));
        co.reuse_sessions = false;
        let no_reuse = Config::build(co).unwrap();
        assert!(!connect_keyed(&no_reuse, &server_config, "a:1"));
        assert!(!connect_keyed(&no_reuse, &server_config, "a:1"));

        // TLS 1.3: only with auto tickets, and a server that sends them.
        let mut so = server_options(&pki);
        so.session_tickets = 3;
        let ticket_server = Config::build(so.clone()).unwrap();
        let co = client_options(&pki);
        let plain = Config::build(co.clone()).unwrap();
        assert!(!connect_keyed(&plain, &ticket_server, "c:1"));
        assert!(!connect_keyed(&plain, &ticket_server, "c:1"));
        let mut auto = co.clone();
        auto.auto_tickets = true;
        let auto = Config::build(auto).unwrap();
        assert!(!connect_keyed(&auto, &ticket_server, "c:1"));
        assert!(connect_keyed(&auto, &ticket_server, "c:1"));
        assert!(connect_keyed(&auto, &ticket_server, "c:1"));
        so.stateful_tickets = true;
        let stateful = Config::build(so).unwrap();
        assert!(!connect_keyed(&auto, &stateful, "d:1"));
        assert!(connect_keyed(&auto, &stateful, "d:1"));
    }

    #[test]
    fn reuse_session_fun_decides() {
        use crate::engine::hooks::Callback;
        use crate::engine::session::OfferedSession;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let pki = test_pki();
        let allow = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(AtomicUsize::new(0));
        let (a, n) = (allow.clone(), calls.clone());
        let mut so = server_options(&pki);
        so.reuse_session = Some(Callback(Arc::new(move |s: &OfferedSession<'_>| {
            assert_eq!(s.id.len(), 32);
            assert!(s.peer_cert.is_none());
            assert_ne!(s.suite, [0, 0]);
            n.fetch_add(1, Ordering::SeqCst);
            std::task::Poll::Ready(a.load(Ordering::SeqCst))
        })));
        let server_config = Config::build(so).unwrap();
        let mut co = client_options(&pki);
        co.versions = vec![Version::Tls12];
        let client_config = Config::build(co).unwrap();
        assert!(!connect_keyed(&client_config, &server_config, "e:1"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(connect_keyed(&client_config, &server_config, "e:1"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        allow.store(false, Ordering::SeqCst);
        assert!(!connect_keyed(&client_config, &server_config, "e:1"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
