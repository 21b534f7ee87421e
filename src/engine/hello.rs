//! Stopping a handshake after the hello (OTP's `{handshake, hello}`).
//!
//! The application sees the peer's hello, then lets the handshake go on
//! (possibly with another configuration: the certificate for the name the
//! client asked for, other verification) or cancels it with a
//! `user_canceled` alert. The wait is the same pause as any application
//! callback's (`pause.rs`): the hello function answers `Pending` until the
//! application has decided.
//!
//! - A server stops in OpenSSL's client-hello callback, before anything
//!   is chosen; a cancel fails that callback with the alert.
//! - A client stops when the ServerHello arrives (the message callback sees
//!   it before OpenSSL processes it). OpenSSL has no way to fail there, so a
//!   cancel is carried out after the step: before TLS 1.3 a clear alert
//!   replaces what the step wrote; in TLS 1.3 the alert is protected with
//!   the client's handshake key in place of its second flight, as for a
//!   deferred verification failure (`tls13_alert.rs`).

use super::config::Config;
use super::connection::guard;
use super::connection::Connection;
use super::ffi;
use super::options::Options;
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_void};
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::ssl::{ClientHelloResponse, Ssl, SslAlert, SslContextBuilder, SslRef};
use parking_lot::Mutex;
use std::task::Poll;

/// The peer's hello, as the wire had it.
#[derive(Debug, Clone)]
pub enum Hello {
    /// A server's view: the client's extensions, in the order sent.
    Client { extensions: Vec<(u16, Vec<u8>)> },
    /// A client's view: the ServerHello message body (no header).
    Server { body: Vec<u8> },
}

/// What the application decided.
#[derive(Clone)]
pub enum HelloChoice {
    /// Go on, with this configuration instead of the current one if given.
    Continue(Option<Config>),
    /// Abort with a `user_canceled` alert.
    Cancel,
}

/// Called once per handshake with the peer's hello.
pub type HelloFn = dyn Fn(&Hello) -> Poll<HelloChoice> + Send + Sync;

/// Per connection: whether the hello was seen, the hello waiting for a
/// decision, a decision given through the connection, a pending cancel.
#[derive(Default)]
struct HelloState {
    asked: bool,
    waiting: Option<Hello>,
    decision: Option<HelloChoice>,
    cancelled: bool,
}

static STATE: Lazy<Index<Ssl, Mutex<HelloState>>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

/// The TLS 1.3 HelloRetryRequest's fixed random (RFC 8446, 4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A server's client-hello callback also chooses how TLS 1.2 resumes
/// (`session::tls12_without_tickets`): OpenSSL has one such callback.
pub(crate) fn install(b: &mut SslContextBuilder, o: &Options) {
    let fun = o.hello.clone();
    match o.role {
        super::Role::Server => {
            let tickets_per_hello = super::session::tls12_tickets_per_hello(o);
            if fun.is_none() && !tickets_per_hello {
                return;
            }
            b.set_client_hello_callback(move |ssl, alert| {
                guard(Ok(ClientHelloResponse::SUCCESS), || {
                    if tickets_per_hello {
                        super::session::tls12_without_tickets(ssl);
                    }
                    match &fun {
                        Some(fun) => on_client_hello(ssl, alert, &**fun),
                        None => Ok(ClientHelloResponse::SUCCESS),
                    }
                })
            })
        }
        super::Role::Client => {
            if fun.is_none() {
                return;
            }
            // SAFETY: a context being built; `on_message` matches the
            // callback type and reads the hello function from the
            // context's hooks, which live as long as the context.
            unsafe { ffi::SSL_CTX_set_msg_callback(b.as_ptr(), Some(on_message)) };
        }
    }
}

/// A server's hello function, asked once per handshake.
fn on_client_hello(
    ssl: &mut SslRef,
    alert: &mut SslAlert,
    fun: &HelloFn,
) -> Result<ClientHelloResponse, openssl::error::ErrorStack> {
    if !first_time(ssl) {
        return Ok(ClientHelloResponse::SUCCESS);
    }
    let hello = Hello::Client {
        extensions: client_extensions(ssl),
    };
    match decide(ssl, fun, hello) {
        Some(HelloChoice::Continue(config)) => {
            if let Some(config) = config {
                super::sni::switch(ssl, config);
            }
            Ok(ClientHelloResponse::SUCCESS)
        }
        Some(HelloChoice::Cancel) | None => {
            *alert = SslAlert::USER_CANCELLED;
            Err(openssl::error::ErrorStack::get())
        }
    }
}

/// Marks the hello as seen; false if it was already (a second ClientHello
/// after a HelloRetryRequest, a renegotiation).
fn first_time(ssl: &mut SslRef) -> bool {
    if ssl.ex_data(*STATE).is_none() {
        ssl.set_ex_data(*STATE, Mutex::new(HelloState::default()));
    }
    let Some(state) = ssl.ex_data(*STATE) else {
        return false;
    };
    let mut state = state.lock();
    !std::mem::replace(&mut state.asked, true)
}

/// The application's decision on `hello`: from the hello function, or
/// given to the connection ([`Connection::answer_hello`]) while the
/// function left it pending. None: the handshake is being abandoned.
fn decide(ssl: &SslRef, fun: &HelloFn, hello: Hello) -> Option<HelloChoice> {
    let state = ssl.ex_data(*STATE)?;
    super::pause::answer(ssl, || {
        let decided = state.lock().decision.take();
        if let Some(decision) = decided {
            state.lock().waiting = None;
            return Poll::Ready(decision);
        }
        let answer = fun(&hello);
        state.lock().waiting = match answer {
            Poll::Pending => Some(hello.clone()),
            Poll::Ready(_) => None,
        };
        answer
    })
}

impl Connection {
    /// Makes the connection pausable if its configuration stops after the
    /// hello or has callbacks that may answer later (and only then: the C
    /// API's other callbacks answer at once, and need not fit in an async
    /// job's small stack).
    pub fn allow_pausing_if_asked(&mut self) {
        if super::hooks::of(self.ssl().ssl_context())
            .is_some_and(|h| h.hello.is_some() || h.callbacks_may_pause)
        {
            self.allow_pausing();
        }
    }

    /// The peer's hello while the handshake is stopped after it, waiting
    /// for [`Connection::answer_hello`] (or the hello function's answer).
    pub fn hello_waiting(&self) -> Option<Hello> {
        let state = self.ssl().ex_data(*STATE)?;
        let state = state.lock();
        if state.decision.is_some() {
            return None;
        }
        state.waiting.clone()
    }

    /// Decides on the hello the handshake stopped at; the next handshake
    /// step goes on with it. False if no hello is waiting.
    pub fn answer_hello(&mut self, choice: HelloChoice) -> bool {
        let Some(state) = self.ssl().ex_data(*STATE) else {
            return false;
        };
        let mut state = state.lock();
        if state.waiting.is_none() || state.decision.is_some() {
            return false;
        }
        state.decision = Some(choice);
        true
    }
}

impl Hello {
    /// The extensions of the hello, in the order sent: `(type, data)`.
    pub fn extensions(&self) -> Vec<(u16, &[u8])> {
        match self {
            Hello::Client { extensions } => {
                extensions.iter().map(|(t, d)| (*t, d.as_slice())).collect()
            }
            Hello::Server { body } => server_extensions(body),
        }
    }
}

/// ServerHello: version, random, session id, suite, compression, then the
/// extensions (absent in old hellos).
fn server_extensions(body: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let Some(&id_len) = body.get(34) else {
        return out;
    };
    let start = 35 + id_len as usize + 3;
    let Some(len) = body.get(start..start + 2) else {
        return out;
    };
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    let Some(mut rest) = body.get(start + 2..start + 2 + len) else {
        return out;
    };
    while rest.len() >= 4 {
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let n = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let Some(data) = rest.get(4..4 + n) else {
            break;
        };
        out.push((t, data));
        rest = &rest[4 + n..];
    }
    out
}

fn client_extensions(ssl: &mut SslRef) -> Vec<(u16, Vec<u8>)> {
    let mut types: *mut c_int = std::ptr::null_mut();
    let mut count = 0usize;
    // SAFETY: inside the client-hello callback; OpenSSL allocates the
    // array, freed below.
    let ok = unsafe {
        openssl_sys::SSL_client_hello_get1_extensions_present(ssl.as_ptr(), &mut types, &mut count)
    };
    if ok != 1 || types.is_null() {
        return Vec::new();
    }
    // SAFETY: `count` ints allocated by OpenSSL.
    let list = unsafe { std::slice::from_raw_parts(types, count) }.to_vec();
    // SAFETY: allocated by OpenSSL with OPENSSL_malloc.
    unsafe { openssl_sys::OPENSSL_free(types as *mut c_void) };
    list.into_iter()
        .filter_map(|t| {
            let mut data: *const u8 = std::ptr::null();
            let mut len = 0usize;
            // SAFETY: inside the client-hello callback; the data stays
            // OpenSSL's, copied at once.
            let found = unsafe {
                openssl_sys::SSL_client_hello_get0_ext(ssl.as_ptr(), t as _, &mut data, &mut len)
            };
            if found != 1 {
                return None;
            }
            let bytes = if data.is_null() || len == 0 {
                Vec::new()
            } else {
                // SAFETY: `len` bytes at `data`, per OpenSSL.
                unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
            };
            Some((t as u16, bytes))
        })
        .collect()
}

/// A client's message callback: stops at the first ServerHello received.
unsafe extern "C" fn on_message(
    write_p: c_int,
    _version: c_int,
    content_type: c_int,
    buf: *const c_void,
    len: usize,
    ssl: *mut openssl_sys::SSL,
    _arg: *mut c_void,
) {
    const HANDSHAKE: c_int = 22;
    const SERVER_HELLO: u8 = 2;
    if write_p != 0 || content_type != HANDSHAKE || buf.is_null() || len < 4 + 2 + 32 {
        return;
    }
    guard((), || {
        // SAFETY: OpenSSL passes `len` readable bytes and the live SSL.
        let message = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        // SAFETY: as above.
        let ssl = unsafe { SslRef::from_ptr_mut(ssl) };
        if message[0] != SERVER_HELLO || message[6..38] == HRR_RANDOM {
            return;
        }
        let Some(fun) = super::hooks::of(ssl.ssl_context()).and_then(|h| h.hello.clone()) else {
            return;
        };
        if !first_time(ssl) {
            return;
        }
        let hello = Hello::Server {
            body: message[4..].to_vec(),
        };
        match decide(ssl, &*fun, hello) {
            Some(HelloChoice::Continue(Some(config))) => super::sni::switch(ssl, config),
            Some(HelloChoice::Continue(None)) => {}
            Some(HelloChoice::Cancel) | None => {
                if let Some(state) = ssl.ex_data(*STATE) {
                    state.lock().cancelled = true;
                }
            }
        }
    })
}

/// A client whose application cancelled at the ServerHello.
pub(crate) fn cancelled(ssl: &SslRef) -> bool {
    ssl.ex_data(*STATE).is_some_and(|s| s.lock().cancelled)
}

/// The `user_canceled` alert code.
pub(crate) const CANCEL_ALERT: u8 = 90;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::connection::tests::{
        client_options, handshake_pair, pair, server_options, shuttle, test_pki,
    };
    use crate::engine::hooks::Callback;
    use crate::engine::{Error, Progress, Version};
    use std::sync::Arc;

    fn waiting() -> Option<Callback<HelloFn>> {
        Some(Callback(Arc::new(|_: &Hello| Poll::Pending)))
    }

    #[test]
    fn server_stops_at_the_client_hello_then_goes_on() {
        let pki = test_pki();
        let mut so = server_options(&pki);
        so.hello = waiting();
        let (mut client, mut server) = pair(client_options(&pki), so, "localhost");
        server.allow_pausing_if_asked();
        assert_eq!(client.handshake(), Ok(Progress::Pending));
        shuttle(&mut client, &mut server);
        assert_eq!(server.handshake(), Ok(Progress::Pending));
        let hello = server.hello_waiting().expect("stopped at the hello");
        let sni = hello
            .extensions()
            .into_iter()
            .find(|(t, _)| *t == 0)
            .unwrap()
            .1
            .to_vec();
        assert!(sni.ends_with(b"localhost"));
        // Stepping again changes nothing until the decision.
        assert_eq!(server.handshake(), Ok(Progress::Pending));
        assert!(server.hello_waiting().is_some());
        assert!(server.answer_hello(HelloChoice::Continue(None)));
        assert!(!server.answer_hello(HelloChoice::Cancel));
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert!(server.hello_waiting().is_none());
    }

    #[test]
    fn client_cancel_reaches_the_server_as_user_canceled() {
        for version in [Version::Tls12, Version::Tls13] {
            let pki = test_pki();
            let mut co = client_options(&pki);
            co.versions = vec![version];
            co.hello = waiting();
            let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
            client.allow_pausing_if_asked();
            assert_eq!(client.handshake(), Ok(Progress::Pending));
            shuttle(&mut client, &mut server);
            assert_eq!(server.handshake(), Ok(Progress::Pending));
            shuttle(&mut server, &mut client);
            assert_eq!(client.handshake(), Ok(Progress::Pending));
            let hello = client.hello_waiting().expect("stopped at the ServerHello");
            let versions = hello.extensions().into_iter().find(|(t, _)| *t == 43);
            assert_eq!(
                versions.map(|(_, d)| d.to_vec()),
                (version == Version::Tls13).then(|| vec![3, 4])
            );
            assert!(client.answer_hello(HelloChoice::Cancel));
            match client.handshake() {
                Err(Error::Alert { alert, local, .. }) => {
                    assert_eq!((alert.name(), local), ("user_canceled", true))
                }
                other => panic!("client: {other:?}"),
            }
            shuttle(&mut client, &mut server);
            let mut s = server.handshake();
            if version == Version::Tls13 {
                // OpenSSL reads a TLS 1.3 user_canceled as a warning and
                // waits for the close (RFC 8446, 6.1).
                assert_eq!(s, Ok(Progress::Pending));
                server.receive_eof();
                s = server.handshake();
            }
            match s {
                Err(Error::Alert { alert, local, .. }) => {
                    assert_eq!((alert.name(), local), ("user_canceled", false))
                }
                other => panic!("server: {other:?}"),
            }
        }
    }
}
