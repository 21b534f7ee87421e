//! Erlang funs called during a handshake (`sni_fun`, `verify_fun`,
//! `partial_chain`, `user_lookup_fun`, `reuse_session`).
//!
//! No thread waits for Erlang. When OpenSSL calls back, the closure made
//! here records a question in the connection's [`Mailbox`] and answers
//! `Pending`: the engine pauses the handshake (engine `pause.rs`) and the
//! poller goes on with other connections. After that handshake step,
//! [`during`] sends `{rssl_callback, Tag, CallId, Request}` to the process
//! waiting in the handshake (`rssl:await_handshake/4`), which has the fun
//! run and answers with `callback_reply(Socket, CallId, Answer)`: the
//! answer is stored in the connection's mailbox and the connection is
//! kicked, so its poller resumes the handshake and the closure, asked
//! again, returns the answer. A late answer (the handshake was given up,
//! closed, or timed out) matches no question and is dropped; the mailbox
//! lives and dies with the connection.
//!
//! Requests (`Context` is the option's term, kept with the configuration):
//! - `{sni, Host, Context}`
//! - `{verify, {Der, Depth, Error, Reason, Trusted, CrlReason}, Context}`:
//!   one OpenSSL verify callback; `rssl` turns these into OTP's events
//! - `{partial_chain, [Der], Fun}`
//! - `{user_lookup, {psk, Identity | undefined} | {srp, User}, Context}`
//! - `{reuse_session, {Id, PeerCert | undefined, Suite}, Fun}`
//! - `{crl_fetch, [Url], Timeout}`: CRLs at a certificate's distribution
//!   points, answered `{crls, [Der]}`
//! - `{hello, {client_hello, [{Type, Data}]} | {server_hello, Body}, hello}`:
//!   the peer's hello (`{handshake, hello}`); answered `default`, `{config,
//!   Config}` (go on) or `reject` (cancel) by `handshake_continue/3` or
//!   `handshake_cancel/1`, whenever the application decides

use super::atoms;
use super::config::ConfigRes;
use super::host::Waiter;
use super::socket::conn_of;
use super::terms::binary;
use crate::engine::crl::CrlFetchFn;
use crate::engine::hello::{Hello, HelloChoice, HelloFn};
use crate::engine::hooks::Callback;
use crate::engine::psk::{UserLookup, UserLookupFn, UserSecret};
use crate::engine::session::{OfferedSession, ReuseSessionFn};
use crate::engine::sni::SniChoice;
use crate::engine::verify::{reason_name, CertCheck, PartialChainFn, Verdict, VerifyFn};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Atom, Binary, Encoder, Env, LocalPid, NifResult, ResourceArc, Term};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

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
    /// crl_fetch: DER CRLs.
    Crls(Vec<Vec<u8>>),
}

/// What a callback asks, in owned data: the request term is built after
/// the handshake step, outside OpenSSL's small job stack.
enum Question {
    Sni(String),
    Verify {
        der: Vec<u8>,
        depth: u32,
        error: i32,
        trusted: bool,
        crl_reason: Option<i32>,
    },
    PartialChain(Vec<Vec<u8>>),
    Psk(Option<Vec<u8>>),
    Srp(String),
    Reuse {
        id: Vec<u8>,
        peer_cert: Option<Vec<u8>>,
        suite: [u8; 2],
    },
    Hello(Hello),
    CrlFetch(Vec<String>),
}

struct Outgoing {
    call: u64,
    question: Question,
    saved: Arc<Saved>,
}

#[derive(Default)]
struct Exchange {
    /// The call waiting for its answer.
    asked: Option<u64>,
    /// Its answer, once `callback_reply` brought it.
    answer: Option<Answer>,
    /// The question of the current step, sent when the step is over.
    outgoing: Option<Outgoing>,
}

/// One connection's questions to the process running its handshake's
/// funs, and their answers.
#[derive(Default)]
pub struct Mailbox {
    /// Made by the first question: most connections never ask one, and
    /// every connection keeps its mailbox as long as it lives.
    exchange: Mutex<Option<Box<Exchange>>>,
}

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// The handshake this thread is running a step of: its process, tag and
/// mailbox.
type Current = (LocalPid, i64, Arc<Mailbox>);

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Runs a handshake step for `waiter`; a question its callbacks asked goes
/// to the waiter's process once the step is over.
pub fn during<R>(waiter: Option<&Waiter>, step: impl FnOnce() -> R) -> R {
    let current = waiter.and_then(|w| w.mailbox.clone().map(|m| (w.pid, w.tag, m)));
    let previous = CURRENT.with(|c| c.replace(current.clone()));
    let result = step();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    if let Some((pid, tag, mailbox)) = current {
        let outgoing = mailbox
            .exchange
            .lock()
            .as_mut()
            .and_then(|e| e.outgoing.take());
        if let Some(out) = outgoing {
            send_question(&pid, tag, out);
        }
    }
    result
}

fn send_question(pid: &LocalPid, tag: i64, out: Outgoing) {
    let mut env = OwnedEnv::new();
    let _ = env.send_and_clear(pid, |env| {
        let (kind, arg) = match &out.question {
            Question::Sni(host) => (atoms::sni(), host.encode(env)),
            Question::Verify {
                der,
                depth,
                error,
                trusted,
                crl_reason,
            } => {
                let reason = super::terms::atom(env, reason_name(*error));
                let crl_reason =
                    crl_reason.map_or(atoms::undefined().encode(env), |r| r.encode(env));
                let check = (
                    binary(env, der),
                    *depth,
                    *error,
                    reason,
                    *trusted,
                    crl_reason,
                );
                (atoms::verify(), check.encode(env))
            }
            Question::PartialChain(chain) => {
                let ders: Vec<Term> = chain.iter().map(|der| binary(env, der)).collect();
                (atoms::partial_chain(), ders.encode(env))
            }
            Question::Psk(identity) => {
                let q = (atoms::psk(), optional_binary(env, identity.as_deref()));
                (atoms::user_lookup(), q.encode(env))
            }
            Question::Srp(user) => {
                let q = (atoms::srp(), binary(env, user.as_bytes()));
                (atoms::user_lookup(), q.encode(env))
            }
            Question::Reuse {
                id,
                peer_cert,
                suite,
            } => {
                let q = (
                    binary(env, id),
                    optional_binary(env, peer_cert.as_deref()),
                    binary(env, suite),
                );
                (atoms::reuse_session(), q.encode(env))
            }
            Question::Hello(Hello::Client { extensions }) => {
                let list: Vec<Term> = extensions
                    .iter()
                    .map(|(t, data)| (*t, binary(env, data)).encode(env))
                    .collect();
                (atoms::hello(), (atoms::client_hello(), list).encode(env))
            }
            Question::Hello(Hello::Server { body }) => {
                let q = (atoms::server_hello(), binary(env, body));
                (atoms::hello(), q.encode(env))
            }
            Question::CrlFetch(urls) => {
                let urls: Vec<Term> = urls.iter().map(|u| binary(env, u.as_bytes())).collect();
                (atoms::crl_fetch(), urls.encode(env))
            }
        };
        let request = (kind, arg, out.saved.load(env)).encode(env);
        (atoms::rssl_callback(), tag, out.call, request).encode(env)
    });
}

/// The answer to the question `question` makes, when it has come: Ready
/// with None when no process runs this handshake's funs (a renegotiation),
/// Pending while the answer is on its way (the question is sent after
/// this step).
fn ask(saved: &Arc<Saved>, question: impl FnOnce() -> Question) -> Poll<Option<Answer>> {
    let Some((_, _, mailbox)) = CURRENT.with(|c| c.borrow().clone()) else {
        return Poll::Ready(None);
    };
    let mut slot = mailbox.exchange.lock();
    let exchange = slot.get_or_insert_with(Box::default);
    if let Some(answer) = exchange.answer.take() {
        exchange.asked = None;
        return Poll::Ready(Some(answer));
    }
    if exchange.asked.is_none() {
        let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        exchange.asked = Some(call);
        exchange.outgoing = Some(Outgoing {
            call,
            question: question(),
            saved: saved.clone(),
        });
    }
    Poll::Pending
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

fn optional_binary<'a>(env: Env<'a>, data: Option<&[u8]>) -> Term<'a> {
    data.map_or(atoms::undefined().encode(env), |d| binary(env, d))
}

/// The SNI function for a configuration whose options had `sni_fun`.
pub fn sni_fun(saved: Arc<Saved>) -> Box<crate::engine::sni::SniFn> {
    Box::new(move |host| {
        ask(&saved, || Question::Sni(host.to_string())).map(|answer| match answer {
            Some(Answer::Config(res)) => SniChoice::Use(res.config.clone()),
            Some(Answer::Default) => SniChoice::Default,
            _ => SniChoice::Reject,
        })
    })
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
    Hello(Callback<HelloFn>),
    CrlFetch(Callback<CrlFetchFn>),
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
            let question = || Question::Verify {
                der: c.der.to_vec(),
                depth: c.depth,
                error: c.error,
                trusted: c.trusted,
                crl_reason: c.crl_reason,
            };
            ask(&saved, question).map(|answer| match answer {
                Some(Answer::Accept) => Verdict::Accept,
                Some(Answer::Fail(code)) => Verdict::Fail(code),
                _ if c.error == 0 => Verdict::Accept,
                _ => Verdict::Fail(c.error),
            })
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
            ask(&saved, || Question::PartialChain(chain.to_vec())).map(|answer| match answer {
                Some(Answer::Anchor(i)) if i < chain.len() => Some(i),
                _ => None,
            })
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
            let question = || match q {
                UserLookup::Psk { identity } => Question::Psk(identity.map(<[u8]>::to_vec)),
                UserLookup::Srp { username } => Question::Srp(username.to_string()),
            };
            ask(&saved, question).map(|answer| match (q, answer) {
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
            })
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
            let question = || Question::Reuse {
                id: s.id.to_vec(),
                peer_cert: s.peer_cert.clone(),
                suite: s.suite,
            };
            ask(&saved, question).map(|answer| matches!(answer, Some(Answer::Bool(true))))
        };
        Interned::Reuse(Callback(Arc::new(fun) as Arc<ReuseSessionFn>))
    });
    match made {
        Interned::Reuse(c) => c,
        _ => unreachable!("interned by kind"),
    }
}

/// `{handshake, hello}`: the peer's hello goes to the process waiting in
/// the handshake, which answers when the application continues or
/// cancels. Without a process to ask (a renegotiation), the handshake goes
/// on.
pub fn hello_fun(term: Term) -> Callback<HelloFn> {
    let made = intern(5, term, |saved| {
        let fun = move |hello: &Hello| {
            ask(&saved, || Question::Hello(hello.clone())).map(|answer| match answer {
                None | Some(Answer::Default) => HelloChoice::Continue(None),
                Some(Answer::Config(res)) => HelloChoice::Continue(Some(res.config.clone())),
                Some(_) => HelloChoice::Cancel,
            })
        };
        Interned::Hello(Callback(Arc::new(fun) as Arc<HelloFn>))
    });
    match made {
        Interned::Hello(c) => c,
        _ => unreachable!("interned by kind"),
    }
}

/// CRLs from distribution points (`{crl_cache, {ssl_crl_cache, {internal,
/// [{http, Timeout}]}}}`; the term is the timeout): the request is
/// `{crl_fetch, [Url], Timeout}`, the answer `{crls, [Der]}`.
pub fn crl_fetch(term: Term) -> Callback<CrlFetchFn> {
    let made = intern(6, term, |saved| {
        let fun = move |urls: &[String]| {
            ask(&saved, || Question::CrlFetch(urls.to_vec())).map(|answer| match answer {
                Some(Answer::Crls(ders)) => Some(ders),
                _ => None,
            })
        };
        Interned::CrlFetch(Callback(Arc::new(fun) as Arc<CrlFetchFn>))
    });
    match made {
        Interned::CrlFetch(c) => c,
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
    if let Ok((tag, ders)) = answer.decode::<(Atom, Vec<Binary>)>() {
        if tag == atoms::crls() {
            return Answer::Crls(ders.iter().map(|d| d.as_slice().to_vec()).collect());
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

/// `callback_reply(Socket, CallId, Answer)`: `{config, Config}`,
/// `default` or `reject` (sni); `accept` or `{fail, X509Error}` (verify);
/// `{trusted, Index}` or `unknown_ca` (partial_chain); `{psk, Key}`, `{srp,
/// Bits, Salt, DerivedKey}` or `error` (user_lookup); a boolean
/// (reuse_session). An answer to no pending question is dropped.
#[rustler::nif]
fn callback_reply<'a>(socket: Term<'a>, call: u64, answer: Term<'a>) -> NifResult<Atom> {
    let res = conn_of(socket)?;
    let mut slot = res.mailbox.exchange.lock();
    let Some(exchange) = slot.as_mut() else {
        return Ok(atoms::ok()); // nothing was asked
    };
    if exchange.asked == Some(call) && exchange.answer.is_none() {
        exchange.answer = Some(decode_answer(answer));
        drop(slot);
        // The poller resumes the paused handshake.
        res.conn.kick();
    }
    Ok(atoms::ok())
}
