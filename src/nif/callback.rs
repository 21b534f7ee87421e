//! Erlang funs called during a handshake (`sni_fun`).
//!
//! OpenSSL calls back synchronously on the poller thread running the
//! handshake. The callback sends `{rssl_callback, Tag, CallId, Request}` to
//! the process waiting in the handshake (it is in `rssl:run_handshake/2`'s
//! receive loop), which runs the fun and answers with `callback_reply/2`;
//! the poller thread waits for that answer, bounded by `ANSWER_TIMEOUT`.
//! Only that one connection's poller pauses, never a scheduler.

use super::atoms;
use super::config::ConfigRes;
use super::host::Waiter;
use crate::engine::sni::SniChoice;
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Atom, Encoder, LocalPid, ResourceArc, Term};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// How long a handshake waits for an Erlang callback before failing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a fun answered.
pub enum Answer {
    Config(ResourceArc<ConfigRes>),
    Default,
    Reject,
}

static PENDING: Lazy<Mutex<HashMap<u64, SyncSender<Answer>>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The process and tag of the handshake this thread is running.
    static CURRENT: RefCell<Option<(LocalPid, i64)>> = const { RefCell::new(None) };
}

/// Runs a handshake step with `waiter` as the process callbacks ask.
pub fn during<R>(waiter: Option<&Waiter>, step: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(waiter.map(|w| (w.pid, w.tag))));
    let result = step();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    result
}

/// An Erlang term kept for building callback requests (a fun and the
/// listener's options), shareable by the configuration's callback closure.
pub struct Saved {
    inner: Mutex<(OwnedEnv, SavedTerm)>,
}

// SAFETY: the saved term is only read with its env, under the mutex.
unsafe impl Send for Saved {}
unsafe impl Sync for Saved {}

impl Saved {
    pub fn new(term: Term) -> Arc<Saved> {
        let env = OwnedEnv::new();
        let term = env.save(term);
        Arc::new(Saved {
            inner: Mutex::new((env, term)),
        })
    }
}

/// Asks the handshake's process to run `{Kind, Arg, Saved...}` and waits.
fn ask(kind: Atom, arg: &str, saved: &Saved) -> Option<Answer> {
    let (pid, tag) = CURRENT.with(|c| *c.borrow())?;
    let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = sync_channel(1);
    PENDING.lock().insert(call, tx);
    let sent = {
        let source = saved.inner.lock();
        let mut env = OwnedEnv::new();
        env.send_and_clear(&pid, |env| {
            let context = source.0.run(|e| source.1.load(e).in_env(env));
            (atoms::rssl_callback(), tag, call, (kind, arg, context)).encode(env)
        })
    };
    let answer = match sent {
        Ok(()) => rx.recv_timeout(ANSWER_TIMEOUT).ok(),
        Err(_) => None,
    };
    PENDING.lock().remove(&call);
    answer
}

/// The SNI function for a configuration whose options had `sni_fun`.
pub fn sni_fun(saved: Arc<Saved>) -> Box<crate::engine::sni::SniFn> {
    Box::new(move |host| match ask(atoms::sni(), host, &saved) {
        Some(Answer::Config(res)) => SniChoice::Use(res.config.clone()),
        Some(Answer::Default) => SniChoice::Default,
        Some(Answer::Reject) | None => SniChoice::Reject,
    })
}

/// `callback_reply(CallId, Answer)`: `{config, Config}`, `default` or `reject`.
#[rustler::nif]
fn callback_reply(call: u64, answer: Term) -> Atom {
    let answer = if let Ok((_, res)) = answer.decode::<(Atom, ResourceArc<ConfigRes>)>() {
        Answer::Config(res)
    } else if answer.decode::<Atom>().ok() == Some(atoms::default()) {
        Answer::Default
    } else {
        Answer::Reject
    };
    if let Some(tx) = PENDING.lock().remove(&call) {
        let _ = tx.try_send(answer);
    }
    atoms::ok()
}
