//! Pausing a handshake while an application callback has no answer yet.
//!
//! An application callback (verify, partial chain, SNI, PSK/SRP lookup,
//! session reuse) may answer [`Poll::Pending`]: its answer comes later, from
//! elsewhere (the Erlang front end asks a process). A connection made
//! pausable ([`Connection::allow_pausing`]) runs each handshake step inside
//! an OpenSSL async job (`SSL_MODE_ASYNC`): the raw OpenSSL callback then
//! parks the job with `ASYNC_pause_job`, `SSL_do_handshake` returns
//! `SSL_ERROR_WANT_ASYNC` at once (reported as [`Progress::Pending`]), and
//! the next handshake step resumes the job exactly where it paused, so the
//! callback asks again and, this time, finds its answer. The thread driving
//! the handshake never waits.
//!
//! One mechanism for every callback, on both roles: OpenSSL 3.0 has retry
//! points for some of them (`SSL_set_retry_verify` on a client, the
//! client-hello callback), but none for a server verifying a client
//! certificate or for PSK look-ups, and a paused job resumes in the middle
//! of any of them.
//!
//! Constraints of OpenSSL's async jobs, which the engine upholds:
//! - a job's fibre must finish on the thread that started it (OpenSSL's
//!   `async_start_func` keeps the starting thread's dispatcher), so a
//!   paused handshake is only resumed on the thread that paused it;
//! - `SSL_free` does not release a paused job: [`Connection::abandon`]
//!   resumes it with every pending answer refused, so it runs to its end;
//! - a job's stack is OpenSSL's fixed 32 KiB (3.0 cannot change it), so
//!   the callbacks do little while inside it (the front end builds its
//!   requests after the step); measured, they run with over 30 KiB of it
//!   still free (debug and release builds);
//! - each poller thread keeps finished jobs for reuse (OpenSSL's per-thread
//!   pool): as many as handshakes were ever paused at once on it;
//! - the mode is set only while handshaking: reads and writes of an
//!   established connection run without jobs.
//!
//! [`Progress::Pending`]: super::Progress::Pending

use super::connection::Connection;
use super::ffi;
use foreign_types::ForeignTypeRef;
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslRef};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::thread::ThreadId;

/// A pausable connection's state, in its SSL's ex_data.
#[derive(Default)]
pub(crate) struct PauseState {
    /// Bumped before every handshake step: a callback that sees it
    /// unchanged after `ASYNC_pause_job` was not paused at all.
    steps: AtomicU64,
    /// The handshake is being abandoned: callbacks stop waiting.
    abandoned: AtomicBool,
    /// The thread whose job is paused (jobs resume only there).
    thread: Mutex<Option<ThreadId>>,
}

/// Paused jobs dropped off their thread, so left unfinished (and their
/// memory kept): the drivers abandon paused handshakes on their own
/// thread first, so this stays 0 (tests check it).
pub(crate) static JOBS_LEFT: AtomicUsize = AtomicUsize::new(0);

static PAUSE: Lazy<Index<Ssl, PauseState>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

/// Calls `ask` until it answers, pausing the handshake in between; None
/// when the connection cannot pause (not pausable, or OpenSSL blocks
/// pausing here) or the handshake is being abandoned: the caller then
/// fails safe (rejects).
pub(crate) fn answer<T>(ssl: &SslRef, mut ask: impl FnMut() -> Poll<T>) -> Option<T> {
    loop {
        let state = ssl.ex_data(*PAUSE);
        if state.is_some_and(|s| s.abandoned.load(Ordering::Acquire)) {
            return None;
        }
        if let Poll::Ready(answer) = ask() {
            return Some(answer);
        }
        let state = state?;
        // SAFETY: reads this thread's async context only.
        if unsafe { ffi::ASYNC_get_current_job() }.is_null() {
            return None;
        }
        let step = state.steps.load(Ordering::Acquire);
        *state.thread.lock() = Some(std::thread::current().id());
        // SAFETY: inside a job started by SSL_do_handshake on this thread;
        // it returns when the next step resumes the job.
        unsafe { ffi::ASYNC_pause_job() };
        *state.thread.lock() = None;
        if state.steps.load(Ordering::Acquire) == step {
            // OpenSSL did not let the job pause here.
            return None;
        }
    }
}

impl Connection {
    /// Lets the handshake pause while an application callback answers
    /// [`Poll::Pending`] (see the module documentation). Without it, a
    /// pending answer fails the handshake. Costs a switch of stacks per
    /// handshake step, so only connections whose configuration has
    /// callbacks get it.
    pub fn allow_pausing(&mut self) {
        if !super::hooks::of(self.ssl().ssl_context()).is_some_and(|h| h.has_callbacks) {
            return;
        }
        // SAFETY: reports whether this platform has working fibres.
        if unsafe { ffi::ASYNC_is_capable() } != 1 {
            return;
        }
        let ssl = self.ssl_mut();
        ssl.set_ex_data(*PAUSE, PauseState::default());
        // SAFETY: a live SSL owned by this connection, before or between
        // handshake steps.
        unsafe {
            openssl_sys::SSL_ctrl(
                ssl.as_ptr(),
                ffi::SSL_CTRL_MODE,
                ffi::SSL_MODE_ASYNC,
                std::ptr::null_mut(),
            )
        };
    }

    /// True while the handshake waits for a callback's answer.
    pub fn is_paused(&self) -> bool {
        // SAFETY: a live SSL; only reads whether it holds a job.
        unsafe { ffi::SSL_waiting_for_async(self.ssl().as_ptr()) == 1 }
    }

    /// True while the handshake waits paused on a thread other than this
    /// one (only that thread may resume it).
    pub fn paused_elsewhere(&self) -> bool {
        let Some(state) = self.ssl().ex_data(*PAUSE) else {
            return false;
        };
        let paused_on = *state.thread.lock();
        self.is_paused() && paused_on.is_some_and(|t| t != std::thread::current().id())
    }

    /// Before a handshake step: whether it may run on this thread (a
    /// paused job resumes only on the thread that paused it).
    pub(crate) fn step_allowed(&self) -> bool {
        let Some(state) = self.ssl().ex_data(*PAUSE) else {
            return true;
        };
        state.steps.fetch_add(1, Ordering::AcqRel);
        let paused_on = *state.thread.lock();
        !self.is_paused() || paused_on.is_none_or(|t| t == std::thread::current().id())
    }

    /// After the handshake: reads and writes run without async jobs.
    pub(crate) fn stop_pausing(&mut self) {
        if self.ssl().ex_data(*PAUSE).is_none() {
            return;
        }
        // SAFETY: a live SSL, no job paused (the handshake ended).
        unsafe {
            openssl_sys::SSL_ctrl(
                self.ssl_mut().as_ptr(),
                ffi::SSL_CTRL_CLEAR_MODE,
                ffi::SSL_MODE_ASYNC,
                std::ptr::null_mut(),
            )
        };
    }

    /// Gives up a paused handshake: every pending answer is refused and
    /// the handshake runs to its (failed) end, so OpenSSL's job is
    /// released. Must run on the thread driving the handshake; elsewhere
    /// (or when not paused) it does nothing. The connection is dead after.
    pub fn abandon(&mut self) {
        if !self.is_paused() {
            return;
        }
        let Some(state) = self.ssl().ex_data(*PAUSE) else {
            return;
        };
        state.abandoned.store(true, Ordering::Release);
        if self.step_allowed() {
            let _ = self.handshake();
        }
    }

    /// On drop: a job paused on another thread cannot be finished here.
    pub(crate) fn abandon_or_leave(&mut self) {
        self.abandon();
        if self.is_paused() {
            JOBS_LEFT.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::connection::tests::{
        client_options, pair, server_options, shuttle, test_pki,
    };
    use crate::engine::hooks::Callback;
    use crate::engine::options::{CertSource, KeySource, Options, Role, Verify};
    use crate::engine::psk::{UserLookup, UserSecret};
    use crate::engine::sni::SniChoice;
    use crate::engine::verify::Verdict;
    use crate::engine::{Connection, Error, Progress, Version};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Poll;

    /// An answer that is not there until the test opens the gate.
    #[derive(Default)]
    struct Gate {
        open: AtomicBool,
        asked: AtomicUsize,
    }

    impl Gate {
        fn poll<T>(&self, answer: T) -> Poll<T> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.open.load(Ordering::SeqCst) {
                Poll::Ready(answer)
            } else {
                Poll::Pending
            }
        }
    }

    /// Runs both handshakes; each time one pauses, steps it once more
    /// (still paused: the callback is asked again) and then opens the
    /// gate. Returns both results and how many pauses were seen.
    fn drive(
        client: &mut Connection,
        server: &mut Connection,
        gate: &Gate,
    ) -> (Result<Progress, Error>, Result<Progress, Error>, usize) {
        let (mut c, mut s) = (client.handshake(), Ok(Progress::Pending));
        let mut pauses = 0;
        for _ in 0..20 {
            for side in [&mut *client, &mut *server] {
                if side.is_paused() {
                    pauses += 1;
                    let asked = gate.asked.load(Ordering::SeqCst);
                    assert_eq!(side.handshake(), Ok(Progress::Pending));
                    assert!(side.is_paused());
                    assert_eq!(gate.asked.load(Ordering::SeqCst), asked + 1);
                    gate.open.store(true, Ordering::SeqCst);
                }
            }
            shuttle(client, server);
            s = server.handshake();
            shuttle(server, client);
            c = client.handshake();
            shuttle(client, server);
            if s == Ok(Progress::Pending) && !server.is_paused() {
                s = server.handshake();
            }
            let done = |r: &Result<Progress, Error>| r != &Ok(Progress::Pending);
            if (done(&c) && done(&s)) || c.is_err() || s.is_err() {
                break;
            }
        }
        (c, s, pauses)
    }

    fn pausable(co: Options, so: Options) -> (Connection, Connection) {
        let (mut client, mut server) = pair(co, so, "localhost");
        client.allow_pausing();
        server.allow_pausing();
        (client, server)
    }

    #[test]
    fn client_verify_fun_pauses_and_resumes() {
        let pki = test_pki();
        for version in [Version::Tls12, Version::Tls13] {
            let gate = Arc::new(Gate::default());
            let g = gate.clone();
            let mut co = client_options(&pki);
            co.versions = vec![version];
            co.verify_fun = Some(Callback(Arc::new(move |_: &_| g.poll(Verdict::Accept))));
            let (mut client, mut server) = pausable(co, server_options(&pki));
            let (c, s, pauses) = drive(&mut client, &mut server, &gate);
            assert_eq!(
                (c, s),
                (Ok(Progress::Done), Ok(Progress::Done)),
                "{version:?}"
            );
            assert_eq!(pauses, 1);
            assert!(!client.is_paused());
        }
    }

    #[test]
    fn a_pending_rejection_still_fails_with_its_alert() {
        let pki = test_pki();
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let mut co = client_options(&pki);
        co.verify_fun = Some(Callback(Arc::new(move |_: &_| g.poll(Verdict::Reject))));
        let (mut client, mut server) = pausable(co, server_options(&pki));
        let (c, s, pauses) = drive(&mut client, &mut server, &gate);
        assert_eq!(pauses, 1);
        assert!(matches!(c, Err(Error::Alert { local: true, .. })), "{c:?}");
        assert!(matches!(s, Err(Error::Alert { local: false, .. })), "{s:?}");
    }

    #[test]
    fn server_callbacks_pause_and_resume() {
        let pki = test_pki();
        // sni_fun, then the client certificate's verify_fun.
        let gate = Arc::new(Gate::default());
        let (g1, g2) = (gate.clone(), gate.clone());
        let mut so = server_options(&pki);
        so.verify = Verify::Peer;
        so.cacerts = Some(crate::engine::CaSource::Der(vec![pki.ca.clone()]));
        so.sni_fun = Some(Callback(Arc::new(move |_: &str| {
            g1.poll(SniChoice::Default)
        })));
        so.verify_fun = Some(Callback(Arc::new(move |_: &_| g2.poll(Verdict::Accept))));
        let mut co = client_options(&pki);
        co.cert = Some(CertSource::Der(vec![pki.cert.clone()]));
        co.key = Some(KeySource::Der("ECPrivateKey".into(), pki.key.clone()));
        let (mut client, mut server) = pausable(co, so);
        let (c, s, pauses) = drive(&mut client, &mut server, &gate);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert_eq!(pauses, 1, "the gate stays open after the first pause");
        assert!(server.peer_certificate().is_some());
    }

    #[test]
    fn psk_lookups_pause_on_both_sides() {
        let gate = Arc::new(Gate::default());
        let lookup = |gate: Arc<Gate>| {
            Some(Callback(Arc::new(move |_: &UserLookup<'_>| {
                gate.poll(Some(UserSecret::Psk(b"0123456789abcdef".to_vec())))
            })
                as Arc<crate::engine::psk::UserLookupFn>))
        };
        let options = |role| {
            let mut o = Options::new(role);
            o.versions = vec![Version::Tls12];
            o.cipher_list = Some("PSK-AES128-GCM-SHA256".into());
            o.psk_identity = Some("alice".into());
            o.user_lookup = lookup(gate.clone());
            o
        };
        let (mut client, mut server) = pausable(options(Role::Client), options(Role::Server));
        let (c, s, pauses) = drive(&mut client, &mut server, &gate);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert_eq!(pauses, 1);
    }

    #[test]
    fn partial_chain_pauses_and_resumes() {
        let pki = test_pki();
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let mut so = server_options(&pki);
        so.cert = Some(CertSource::Der(vec![pki.cert.clone(), pki.ca.clone()]));
        let mut co = client_options(&pki);
        co.cacerts = None;
        let ca = pki.ca.clone();
        co.partial_chain = Some(Callback(Arc::new(move |chain: &[Vec<u8>]| {
            g.poll(chain.iter().position(|der| *der == ca))
        })));
        let (mut client, mut server) = pausable(co, so);
        let (c, s, pauses) = drive(&mut client, &mut server, &gate);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert_eq!(pauses, 1);
    }

    #[test]
    fn srp_lookup_pauses_and_resumes() {
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let options = |role| {
            let mut o = Options::new(role);
            o.versions = vec![Version::Tls12];
            o.cipher_list = Some("SRP-AES-128-CBC-SHA".into());
            o
        };
        let mut so = options(Role::Server);
        so.user_lookup = Some(Callback(Arc::new(move |_: &UserLookup<'_>| {
            let salt = b"0123456789abcdef".to_vec();
            let x = crate::engine::psk::srp_derived_key("alice", "secret", &salt);
            let verifier = crate::engine::psk::srp_verifier(2048, &x).unwrap();
            g.poll(Some(UserSecret::Srp {
                group: 2048,
                salt,
                verifier,
            }))
        })));
        let mut co = options(Role::Client);
        co.srp_identity = Some(("alice".into(), "secret".into()));
        let (mut client, mut server) = pausable(co, so);
        let (c, s, pauses) = drive(&mut client, &mut server, &gate);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert_eq!(pauses, 1);
        assert_eq!(server.srp_username().as_deref(), Some("alice"));
    }

    #[test]
    fn an_abandoned_handshake_fails_and_lets_its_job_go() {
        let pki = test_pki();
        let gate = Arc::new(Gate::default());
        // A client paused in its verify_fun, which waits on `gate`.
        let paused_client = || {
            let g = gate.clone();
            let mut co = client_options(&pki);
            co.verify_fun = Some(Callback(Arc::new(move |_: &_| g.poll(Verdict::Accept))));
            let (mut client, mut server) = pausable(co, server_options(&pki));
            client.handshake().unwrap();
            shuttle(&mut client, &mut server);
            server.handshake().unwrap();
            shuttle(&mut server, &mut client);
            assert_eq!(client.handshake(), Ok(Progress::Pending));
            assert!(client.is_paused());
            client
        };
        let mut client = paused_client();
        client.abandon();
        assert!(!client.is_paused());
        assert!(client.handshake().is_err());
        // Dropping a connection paused on this thread abandons it too.
        drop(paused_client());
    }

    #[test]
    fn without_pausing_a_pending_answer_fails_the_handshake() {
        let pki = test_pki();
        let mut co = client_options(&pki);
        co.verify_fun = Some(Callback(Arc::new(|_: &_| Poll::Pending)));
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, _) = crate::engine::connection::tests::handshake_pair(&mut client, &mut server);
        assert!(matches!(c, Err(Error::Alert { local: true, .. })), "{c:?}");
    }
}
