//! Erlang funs called during a handshake (`sni_fun`, `verify_fun`,
//! `partial_chain`, `user_lookup_fun`, `reuse_session`).
//!
//! OpenSSL calls back synchronously on the poller thread running the
//! handshake. The callback sends `{rssl_callback, Tag, CallId, Request}` to
//! the process waiting in the handshake (it is in `rssl:run_handshake/2`'s
//! receive loop), which runs the fun and answers with `callback_reply/2`;
//! the poller thread waits for that answer, bounded by `ANSWER_TIMEOUT`.
//! Only that one connection's poller pauses, never a scheduler.
//!
//! Requests (`Context` is the option's term, kept with the configuration):
//! - `{sni, Host, Context}`
//! - `{verify, {Der, Depth, Error, Reason, Trusted, CrlReason}, Context}`:
//!   one OpenSSL verify callback; `rssl` turns these into OTP's events
//! - `{partial_chain, [Der], Fun}`
//! - `{user_lookup, {psk, Identity | undefined} | {srp, User}, Context}`
//! - `{reuse_session, {Id, PeerCert | undefined, Suite}, Fun}`

use super::atoms;
use super::config::ConfigRes;
use super::host::Waiter;
use super::terms::binary;
use crate::engine::hooks::Callback;
use crate::engine::psk::{UserLookup, UserLookupFn, UserSecret};
use crate::engine::session::{OfferedSession, ReuseSessionFn};
use crate::engine::sni::SniChoice;
use crate::engine::verify::{reason_name, CertCheck, PartialChainFn, Verdict, VerifyFn};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Atom, Binary, Encoder, Env, LocalPid, ResourceArc, Term};
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
    /// verify: accept the certificate.
    Accept,
    /// verify: fail with this `X509_V_ERR_*` code (OpenSSL picks the alert).
    Fail(i32),
    /// partial_chain: the index of the anchor in the chain.
    Anchor(usize),
    /// user_lookup: a PSK.
    Psk(Vec<u8>),
    /// user_lookup: SRP group bits, salt and OTP's derived key.
    Srp(u32, Vec<u8>, Vec<u8>),
    Bool(bool),
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

    /// A copy of the saved term in `env`.
    fn load<'a>(&self, env: Env<'a>) -> Term<'a> {
        let source = self.inner.lock();
        source.0.run(|e| source.1.load(e).in_env(env))
    }
}

/// Asks the handshake's process to run `{Kind, Arg, Saved}` (built by
/// `arg`) and waits; None when no process waits on this handshake (a
/// renegotiation) or it did not answer in time.
fn ask(kind: Atom, saved: &Saved, arg: impl for<'a> FnOnce(Env<'a>) -> Term<'a>) -> Option<Answer> {
    let (pid, tag) = CURRENT.with(|c| *c.borrow())?;
    let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = sync_channel(1);
    PENDING.lock().insert(call, tx);
    let mut env = OwnedEnv::new();
    let sent = env.send_and_clear(&pid, |env| {
        let request = (kind, arg(env), saved.load(env)).encode(env);
        (atoms::rssl_callback(), tag, call, request).encode(env)
    });
    let answer = match sent {
        Ok(()) => rx.recv_timeout(ANSWER_TIMEOUT).ok(),
        Err(_) => None,
    };
    PENDING.lock().remove(&call);
    answer
}

fn optional_binary<'a>(env: Env<'a>, data: Option<&[u8]>) -> Term<'a> {
    data.map_or(atoms::undefined().encode(env), |d| binary(env, d))
}

/// The SNI function for a configuration whose options had `sni_fun`.
pub fn sni_fun(saved: Arc<Saved>) -> Box<crate::engine::sni::SniFn> {
    Box::new(
        move |host| match ask(atoms::sni(), &saved, |env| host.encode(env)) {
            Some(Answer::Config(res)) => SniChoice::Use(res.config.clone()),
            Some(Answer::Default) => SniChoice::Default,
            _ => SniChoice::Reject,
        },
    )
}

/// Closures made for equal Erlang terms, so that equal options keep
/// sharing one configuration (and its session caches): a callback compares
/// by identity.
#[derive(Clone)]
enum Interned {
    Verify(Callback<VerifyFn>),
    Chain(Callback<PartialChainFn>),
    Lookup(Callback<UserLookupFn>),
    Reuse(Callback<ReuseSessionFn>),
}

/// By kind and `term_to_binary` of the option's term.
type InternTable = HashMap<(u8, Vec<u8>), Interned>;

static INTERNED: Lazy<Mutex<InternTable>> = Lazy::new(|| Mutex::new(HashMap::new()));
/// Bound on interned closures (as many as cached configurations).
const INTERN_LIMIT: usize = 256;

fn intern(kind: u8, term: Term, make: impl FnOnce(Arc<Saved>) -> Interned) -> Interned {
    let key = (kind, term.to_binary().as_slice().to_vec());
    let mut table = INTERNED.lock();
    if let Some(found) = table.get(&key) {
        return found.clone();
    }
    if table.len() >= INTERN_LIMIT {
        table.clear();
    }
    let made = make(Saved::new(term));
    table.insert(key, made.clone());
    made
}

/// `verify_fun`: `{Fun, InitialState}`. Without a process to ask, OpenSSL's
/// own verdict stands.
pub fn verify_fun(term: Term) -> Callback<VerifyFn> {
    let made = intern(1, term, |saved| {
        let fun = move |c: &CertCheck<'_>| {
            let answer = ask(atoms::verify(), &saved, |env| {
                let reason = super::terms::atom(env, reason_name(c.error));
                let crl_reason = c
                    .crl_reason
                    .map_or(atoms::undefined().encode(env), |r| r.encode(env));
                (
                    binary(env, c.der),
                    c.depth,
                    c.error,
                    reason,
                    c.trusted,
                    crl_reason,
                )
                    .encode(env)
            });
            match answer {
                Some(Answer::Accept) => Verdict::Accept,
                Some(Answer::Fail(code)) => Verdict::Fail(code),
                _ if c.error == 0 => Verdict::Accept,
                _ => Verdict::Fail(c.error),
            }
        };
        Interned::Verify(Callback(Arc::new(fun) as Arc<VerifyFn>))
    });
    match made {
        Interned::Verify(c) => c,
        _ => unreachable!("interned by kind"),
    }
}

/// `partial_chain`: `fun(Chain) -> {trusted_ca, Der} | unknown_ca`.
pub fn partial_chain(term: Term) -> Callback<PartialChainFn> {
    let made = intern(2, term, |saved| {
        let fun = move |chain: &[Vec<u8>]| {
            let answer = ask(atoms::partial_chain(), &saved, |env| {
                chain
                    .iter()
                    .map(|der| binary(env, der))
                    .collect::<Vec<_>>()
                    .encode(env)
            });
            match answer {
                Some(Answer::Anchor(i)) if i < chain.len() => Some(i),
                _ => None,
            }
        };
        Interned::Chain(Callback(Arc::new(fun) as Arc<PartialChainFn>))
    });
    match made {
        Interned::Chain(c) => c,
        _ => unreachable!("interned by kind"),
    }
}

/// `user_lookup_fun`: `{Fun, UserState}`.
pub fn user_lookup(term: Term) -> Callback<UserLookupFn> {
    let made = intern(3, term, |saved| {
        let fun = move |q: &UserLookup<'_>| {
            let answer = ask(atoms::user_lookup(), &saved, |env| match q {
                UserLookup::Psk { identity } => {
                    (atoms::psk(), optional_binary(env, *identity)).encode(env)
                }
                UserLookup::Srp { username } => {
                    (atoms::srp(), binary(env, username.as_bytes())).encode(env)
                }
            });
            match (q, answer) {
                (UserLookup::Psk { .. }, Some(Answer::Psk(key))) => Some(UserSecret::Psk(key)),
                (UserLookup::Srp { .. }, Some(Answer::Srp(group, salt, x))) => {
                    let verifier = crate::engine::psk::srp_verifier(group, &x).ok()?;
                    Some(UserSecret::Srp {
                        group,
                        salt,
                        verifier,
                    })
                }
                _ => None,
            }
        };
        Interned::Lookup(Callback(Arc::new(fun) as Arc<UserLookupFn>))
    });
    match made {
        Interned::Lookup(c) => c,
        _ => unreachable!("interned by kind"),
    }
}

/// `reuse_session`: `fun(SessionId, PeerCert, Compression, CipherSuite) -> boolean()`.
pub fn reuse_session(term: Term) -> Callback<ReuseSessionFn> {
    let made = intern(4, term, |saved| {
        let fun = move |s: &OfferedSession<'_>| {
            let answer = ask(atoms::reuse_session(), &saved, |env| {
                (
                    binary(env, s.id),
                    optional_binary(env, s.peer_cert.as_deref()),
                    binary(env, &s.suite),
                )
                    .encode(env)
            });
            matches!(answer, Some(Answer::Bool(true)))
        };
        Interned::Reuse(Callback(Arc::new(fun) as Arc<ReuseSessionFn>))
    });
    match made {
        Interned::Reuse(c) => c,
        _ => unreachable!("interned by kind"),
    }
}

fn decode_answer(answer: Term) -> Answer {
    if let Ok((_, res)) = answer.decode::<(Atom, ResourceArc<ConfigRes>)>() {
        return Answer::Config(res);
    }
    if let Ok(flag) = answer.decode::<bool>() {
        return Answer::Bool(flag);
    }
    if let Ok(name) = answer.decode::<Atom>() {
        return if name == atoms::default() {
            Answer::Default
        } else if name == atoms::accept() {
            Answer::Accept
        } else {
            Answer::Reject
        };
    }
    if let Ok((tag, code)) = answer.decode::<(Atom, i32)>() {
        if tag == atoms::fail() {
            return Answer::Fail(code);
        }
    }
    if let Ok((tag, index)) = answer.decode::<(Atom, usize)>() {
        if tag == atoms::trusted() {
            return Answer::Anchor(index);
        }
    }
    if let Ok((tag, key)) = answer.decode::<(Atom, Binary)>() {
        if tag == atoms::psk() {
            return Answer::Psk(key.as_slice().to_vec());
        }
    }
    if let Ok((tag, group, salt, x)) = answer.decode::<(Atom, u32, Binary, Binary)>() {
        if tag == atoms::srp() {
            return Answer::Srp(group, salt.as_slice().to_vec(), x.as_slice().to_vec());
        }
    }
    Answer::Reject
}

/// `callback_reply(CallId, Answer)`: `{config, Config}`, `default` or
/// `reject` (sni); `accept` or `{fail, X509Error}` (verify); `{trusted,
/// Index}` or `unknown_ca` (partial_chain); `{psk, Key}`, `{srp, Bits,
/// Salt, DerivedKey}` or `error` (user_lookup); a boolean (reuse_session).
#[rustler::nif]
fn callback_reply(call: u64, answer: Term) -> Atom {
    let answer = decode_answer(answer);
    if let Some(tx) = PENDING.lock().remove(&call) {
        let _ = tx.try_send(answer);
    }
    atoms::ok()
}
