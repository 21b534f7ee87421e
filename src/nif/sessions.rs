//! TLS 1.2 client sessions by hand (OTP's `{reuse_sessions, save}` and
//! `{reuse_session, SessionId}`): the sessions saved, by session id, for
//! any later connection of the VM to offer. Bounded: the oldest go first.

use super::atoms;
use super::socket::conn_of;
use super::terms::{binary, error_tuple};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustler::{Binary, Encoder, Env, NifResult, Term};
use std::collections::{HashMap, VecDeque};

/// As many as OTP's client session cache keeps by default.
const SAVED_MAX: usize = 1000;

#[derive(Default)]
struct Saved {
    by_id: HashMap<Vec<u8>, Vec<u8>>,
    order: VecDeque<Vec<u8>>,
}

static SAVED: Lazy<Mutex<Saved>> = Lazy::new(Mutex::default);

/// `session_save(Socket)`: keeps the connection's session under its id;
/// `ok`, or `{error, no_session}` when it has no resumable session with an
/// id (a TLS 1.3 connection, a server that keeps no sessions).
#[rustler::nif]
fn session_save<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let session = res.conn.with_tls(|tls| (tls.session_id(), tls.session()));
    Ok(match session {
        Ok((id, Some(der))) if !id.is_empty() => {
            let mut saved = SAVED.lock();
            if saved.by_id.insert(id.clone(), der).is_none() {
                saved.order.push_back(id);
            }
            while saved.order.len() > SAVED_MAX {
                if let Some(oldest) = saved.order.pop_front() {
                    saved.by_id.remove(&oldest);
                }
            }
            atoms::ok().encode(env)
        }
        Ok(_) => (atoms::error(), atoms::no_session()).encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// `session_lookup(SessionId)`: `{ok, SessionData}` or `undefined`.
#[rustler::nif]
fn session_lookup<'a>(env: Env<'a>, id: Binary<'a>) -> Term<'a> {
    match SAVED.lock().by_id.get(id.as_slice()) {
        Some(der) => (atoms::ok(), binary(env, der)).encode(env),
        None => atoms::undefined().encode(env),
    }
}
