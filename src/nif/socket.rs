//! NIFs on connection sockets: adopt an fd, handshake, send, recv, options,
//! ownership, close.

use super::atoms;
use super::callback::Mailbox;
use super::config::ConfigRes;
use super::host::{CallerOutbox, ErlHost, Owner, Waiter};
use super::terms::{addr_term, error_tuple, failure_term};
use crate::driver::{inet, socket, Conn, Poller, RecvOutcome, SendOutcome, SocketOptions, Tls};
use crate::engine::connection::PeerName;
use crate::engine::{Connection, Error};
use parking_lot::Mutex;
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Atom, Binary, Encoder, Env, LocalPid, Monitor, NifResult, ResourceArc, Term};
use std::mem::ManuallyDrop;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The resource behind a connection socket.
pub struct ConnRes {
    /// Let go of on the poller when the resource goes (`Drop` below).
    pub conn: ManuallyDrop<Arc<Conn<ErlHost>>>,
    /// The listener's TLS options, kept from accept to handshake for
    /// `handshake/3`; then, while a handshake waits at the peer's hello, what
    /// `handshake_continue/3` or `handshake_cancel/1` needs to go on.
    pending: Mutex<Option<(OwnedEnv, SavedTerm)>>,
    /// The relay process of a custom (cb_info) transport.
    transport: Option<LocalPid>,
    /// The handshake's callback questions and answers.
    pub mailbox: Arc<Mailbox>,
}

impl Drop for ConnRes {
    fn drop(&mut self) {
        // SAFETY: `conn` is not used again; this is its only take.
        let conn = unsafe { ManuallyDrop::take(&mut self.conn) };
        conn.release_on_poller();
    }
}

#[rustler::resource_impl]
impl rustler::Resource for ConnRes {
    const IMPLEMENTS_DOWN: bool = true;

    /// The controlling process died: the connection goes with it.
    fn down<'a>(&'a self, env: Env<'a>, _pid: LocalPid, monitor: Monitor) {
        let current = self.conn.with_owner(|o| o.monitor);
        if current == Some(monitor) {
            close_conn(env, &self.conn);
        }
    }
}

/// `{sslsocket, Resource, undefined}`: the socket term users hold and
/// messages carry.
pub fn socket_term<'a>(env: Env<'a>, res: &ResourceArc<ConnRes>) -> Term<'a> {
    (atoms::sslsocket(), res, atoms::undefined()).encode(env)
}

pub fn conn_of(socket: Term) -> NifResult<ResourceArc<ConnRes>> {
    let (tag, res, _): (Atom, ResourceArc<ConnRes>, Term) = socket.decode()?;
    if tag != atoms::sslsocket() {
        return Err(rustler::Error::BadArg);
    }
    Ok(res)
}

fn close_conn(env: Env, conn: &Conn<ErlHost>) {
    conn.close(&mut CallerOutbox { env });
    forget_owner(conn);
}

fn forget_owner(conn: &Conn<ErlHost>) {
    // Drop the socket term the owner's messages used: this ends the
    // resource -> connection -> owner -> resource cycle.
    let socket = conn.update_owner(|o| {
        o.monitor = None;
        o.socket.take()
    });
    drop(socket);
}

fn peer_name(peer: Term) -> NifResult<PeerName> {
    let text = |key: Atom| -> NifResult<Option<String>> {
        match peer.map_get(key) {
            Ok(t) if t.is_binary() => {
                let b: Binary = t.decode()?;
                Ok(Some(String::from_utf8_lossy(b.as_slice()).into_owned()))
            }
            _ => Ok(None),
        }
    };
    Ok(PeerName {
        sni: text(atoms::sni())?,
        verify_host: text(atoms::verify_host())?,
        session_key: text(atoms::session_key())?,
    })
}

/// Takes over a connected TCP fd; the caller becomes the owner. The TLS
/// connection is only planned here: its poller makes it (`driver::Tls`).
// The arguments are those of rssl_nif:adopt/8, one per Erlang-side fact.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn adopt<'a>(
    env: Env<'a>,
    fd: i32,
    config: ResourceArc<ConfigRes>,
    peer: Term<'a>,
    socket_options: Vec<(Atom, Term<'a>)>,
    pending: Term<'a>,
    pump: Term<'a>,
    initial: Binary<'a>,
    scheduler: usize,
) -> NifResult<Term<'a>> {
    let tls = plan(&config, peer_name(peer)?, peer, initial.as_slice());
    let options = match socket_options_of(env, &socket_options) {
        Ok(options) => options,
        Err(refused) => return Ok(refused),
    };
    let fd = match socket::adopt(fd) {
        Ok(fd) => fd,
        Err(e) => return Ok(posix_error(env, &e)),
    };
    let conn = Conn::own(fd, tls, owner(env), options, Poller::pick_for(scheduler));
    Ok(start(env, conn, pending, pump))
}

/// A client connection on a TCP socket of the NIF's own: made, given the
/// kernel options `sockopts`, and connecting to `address` (4 or 8
/// integers) and `port` when this returns. The handshake's first write
/// waits for the connection; a connection that fails fails the handshake
/// with its reason (`econnrefused`...). gen_tcp's port, its options and
/// its close are not needed for what rssl takes over at once.
// The arguments are those of rssl_nif:connect/7, one per Erlang-side fact.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn connect<'a>(
    env: Env<'a>,
    address: Vec<u16>,
    port: u16,
    sockopts: Vec<(Atom, Term<'a>)>,
    config: ResourceArc<ConfigRes>,
    peer: Term<'a>,
    socket_options: Vec<(Atom, Term<'a>)>,
    scheduler: usize,
) -> NifResult<Term<'a>> {
    let ip = match address[..] {
        [a, b, c, d] if [a, b, c, d].iter().all(|&x| x <= 255) => {
            IpAddr::V4(Ipv4Addr::new(a as u8, b as u8, c as u8, d as u8))
        }
        [a, b, c, d, e, f, g, h] => IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
        _ => return Err(rustler::Error::BadArg),
    };
    let kernel = sockopts
        .iter()
        .map(|&(key, value)| super::options::decode_sockopt(env, key, value))
        .collect::<Option<Vec<_>>>()
        .ok_or(rustler::Error::BadArg)?;
    let tls = plan(&config, peer_name(peer)?, peer, &[]);
    let options = match socket_options_of(env, &socket_options) {
        Ok(options) => options,
        Err(refused) => return Ok(refused),
    };
    let configure = |fd| kernel.iter().try_for_each(|&opt| inet::set(fd, opt));
    let fd = match socket::connect(SocketAddr::new(ip, port), configure) {
        Ok(fd) => fd,
        Err(e) => return Ok(posix_error(env, &e)),
    };
    let conn = Conn::own(fd, tls, owner(env), options, Poller::pick_for(scheduler));
    let undefined = atoms::undefined().encode(env);
    Ok(start(env, conn, undefined, undefined))
}

/// The emulated options a new connection starts with, or the error term
/// for one it cannot take.
fn socket_options_of<'a>(
    env: Env<'a>,
    pairs: &[(Atom, Term<'a>)],
) -> Result<SocketOptions, Term<'a>> {
    let mut options = SocketOptions::default();
    match super::options::apply_options(&mut options, pairs) {
        Ok(_) => Ok(options),
        Err(super::options::Refused::Unknown(pair)) => {
            Err((atoms::error(), (atoms::options(), pair)).encode(env))
        }
        Err(super::options::Refused::CountTooLarge) => {
            Err((atoms::error(), atoms::einval()).encode(env))
        }
    }
}

fn posix_error<'a>(env: Env<'a>, e: &std::io::Error) -> Term<'a> {
    let name = crate::posix::error_name(e);
    (atoms::error(), super::terms::atom(env, name)).encode(env)
}

/// The caller, as a new connection's owner.
fn owner(env: Env) -> Owner {
    Owner {
        pid: env.pid(),
        socket: None,
        monitor: None,
    }
}

/// The socket term of a new connection, owned and monitored by the caller.
fn start<'a>(
    env: Env<'a>,
    conn: Arc<Conn<ErlHost>>,
    pending: Term<'a>,
    pump: Term<'a>,
) -> Term<'a> {
    let pending = pending.is_map().then(|| {
        let owned = OwnedEnv::new();
        let saved = owned.save(pending);
        (owned, saved)
    });
    let res = ResourceArc::new(ConnRes {
        conn: ManuallyDrop::new(conn.clone()),
        pending: Mutex::new(pending),
        transport: pump.decode::<LocalPid>().ok(),
        mailbox: Arc::default(),
    });
    let monitor = env.monitor(&res, &env.pid());
    conn.update_owner(|o| {
        o.socket = Some(res.clone());
        o.monitor = monitor;
    });
    (atoms::ok(), socket_term(env, &res)).encode(env)
}

/// A plan for a connection's TLS state (`driver::Tls`), made by the
/// poller: `Connection::new`, then `setup`, then pausing for callbacks
/// (they answer from Erlang).
fn planned(
    config: &ConfigRes,
    name: PeerName,
    setup: impl FnOnce(&mut Connection) -> Result<(), Error> + Send + 'static,
) -> Tls {
    let config = config.config.clone();
    let datagram = config.options().is_dtls();
    let plan = move || {
        let mut tls = Connection::new(&config, &name)?;
        setup(&mut tls)?;
        tls.allow_pausing();
        Ok(tls)
    };
    Tls::planned(Box::new(plan), datagram)
}

/// The plan for `adopt`: what it was given, copied out of its terms.
fn plan(config: &ConfigRes, name: PeerName, peer: Term, initial: &[u8]) -> Tls {
    // Ciphertext gen_tcp had already read from the socket.
    let initial = initial.to_vec();
    let dtls_hello = super::dtls::has_hello(peer);
    // A client's session to offer (`reuse_session`); one OpenSSL cannot
    // read is not offered (a full handshake, as OTP does).
    let session = peer
        .map_get(atoms::session())
        .and_then(|t| t.decode::<Binary>())
        .map(|der| der.as_slice().to_vec())
        .ok();
    // Manual TLS 1.3 tickets (`use_ticket`): one is offered, or a full
    // handshake; early data then needs a ticket allowing it.
    let manual = peer.map_get(atoms::tickets()).ok();
    let tickets = manual
        .and_then(|t| t.decode::<Vec<Binary>>().ok())
        .map(|list| {
            list.iter()
                .map(|b| b.as_slice().to_vec())
                .collect::<Vec<_>>()
        });
    let early_term = peer.map_get(atoms::early_data()).ok();
    let offers_early = early_term.is_some();
    let early_data = early_term
        .and_then(|t| t.decode::<Binary>().ok())
        .map(|data| data.as_slice().to_vec());
    let early_required = manual.is_some();
    planned(config, name, move |tls| {
        tls.receive(&initial);
        if dtls_hello {
            super::dtls::continue_hello(tls)?;
        }
        if let Some(der) = session {
            let _ = tls.set_session(&der);
        }
        if let Some(list) = tickets {
            let ders: Vec<&[u8]> = list.iter().map(|t| t.as_slice()).collect();
            tls.use_tickets(&ders, offers_early);
        }
        if let Some(data) = early_data {
            tls.set_early_data(data, early_required);
        }
        Ok(())
    })
}

/// Replaces the configuration before the handshake (`handshake/3` options).
#[rustler::nif]
fn set_config<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    config: ResourceArc<ConfigRes>,
    peer: Term<'a>,
) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let tls = planned(&config, peer_name(peer)?, |_| Ok(()));
    Ok(match res.conn.replace_tls(tls) {
        Ok(()) => atoms::ok().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// The listener's TLS options of a socket not yet handshaken, or `undefined`.
#[rustler::nif]
fn pending_options<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let pending = res.pending.lock();
    Ok(match &*pending {
        Some((owned, saved)) => owned.run(|e| saved.load(e).in_env(env)),
        None => atoms::undefined().encode(env),
    })
}

/// Keeps the state of a handshake stopped at the peer's hello, for
/// whichever process continues or cancels it.
#[rustler::nif]
fn park_hello<'a>(socket: Term<'a>, state: Term<'a>) -> NifResult<Atom> {
    let res = conn_of(socket)?;
    let owned = OwnedEnv::new();
    let saved = owned.save(state);
    *res.pending.lock() = Some((owned, saved));
    Ok(atoms::ok())
}

/// Takes what `park_hello` kept (once: a second taker gets `undefined`).
#[rustler::nif]
fn take_hello<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let taken = res.pending.lock().take();
    Ok(match taken {
        Some((owned, saved)) => owned.run(|e| saved.load(e).in_env(env)),
        None => atoms::undefined().encode(env),
    })
}

/// The calling process becomes the one the running handshake answers,
/// as `{rssl_reply, Tag, Result}`, and asks its callbacks' questions.
#[rustler::nif]
fn handshake_rewait<'a>(env: Env<'a>, socket: Term<'a>, tag: i64) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let waiter = Waiter {
        pid: env.pid(),
        tag,
        mailbox: Some(res.mailbox.clone()),
    };
    Ok(match res.conn.rewait_handshake(waiter) {
        Ok(()) => atoms::ok().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// The relay process of a custom transport, or `undefined`.
#[rustler::nif]
fn transport<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(match res.transport {
        Some(pid) => pid.encode(env),
        None => atoms::undefined().encode(env),
    })
}

/// Starts the handshake; the result comes as `{rssl_reply, Tag, Result}`.
#[rustler::nif]
fn handshake<'a>(env: Env<'a>, socket: Term<'a>, tag: i64) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    res.pending.lock().take();
    let waiter = Waiter {
        pid: env.pid(),
        tag,
        mailbox: Some(res.mailbox.clone()),
    };
    Ok(match res.conn.handshake(waiter) {
        Ok(()) => atoms::ok().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// `ok`, `wait` (then `{rssl_reply, Tag, Result}`), or `{error, Reason}`.
#[rustler::nif]
fn send<'a>(env: Env<'a>, socket: Term<'a>, data: Term<'a>, tag: i64) -> NifResult<Term<'a>> {
    send_data(env, socket, data, tag)
}

/// `send/3` for large data, whose encryption would hold a normal scheduler too long.
#[rustler::nif(schedule = "DirtyCpu")]
fn send_dirty<'a>(env: Env<'a>, socket: Term<'a>, data: Term<'a>, tag: i64) -> NifResult<Term<'a>> {
    send_data(env, socket, data, tag)
}

/// Charges the calling process for `bytes` of encryption or decryption, so
/// a send or recv loop yields its scheduler as often as other work does
/// (about a full time slice per 64 KiB).
fn charge(env: Env, bytes: usize) {
    let percent = (bytes / 640).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent);
}

fn send_data<'a>(env: Env<'a>, socket: Term<'a>, data: Term<'a>, tag: i64) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let data = Binary::from_iolist(data)?;
    charge(env, data.len());
    let waiter = || Waiter {
        pid: env.pid(),
        tag,
        mailbox: None,
    };
    Ok(match res.conn.send(data.as_slice(), waiter) {
        Ok(SendOutcome::Done) => atoms::ok().encode(env),
        Ok(SendOutcome::Wait) => atoms::wait().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// `{ok, Data}`, `{error, Reason}` or `wait` (then `{rssl_reply, Tag, Result}`).
#[rustler::nif]
fn recv<'a>(env: Env<'a>, socket: Term<'a>, len: usize, tag: i64) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let mut result = None;
    let outcome = res.conn.recv(
        len,
        |options, data| {
            result = Some(match data {
                Ok(data) => {
                    charge(env, data.len());
                    (atoms::ok(), super::terms::data_term(env, options, data)).encode(env)
                }
                Err(f) => error_tuple(env, &f),
            })
        },
        || Waiter {
            pid: env.pid(),
            tag,
            mailbox: None,
        },
    );
    Ok(match outcome {
        Ok(RecvOutcome::Done) => result.unwrap_or_else(|| atoms::wait().encode(env)),
        Ok(RecvOutcome::Wait) => atoms::wait().encode(env),
        Err(posix) => (atoms::error(), super::terms::atom(env, posix)).encode(env),
    })
}

/// Starts a renegotiation; the result comes as `{rssl_reply, Tag, Result}`.
#[rustler::nif]
fn renegotiate<'a>(env: Env<'a>, socket: Term<'a>, tag: i64) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let waiter = Waiter {
        pid: env.pid(),
        tag,
        mailbox: None,
    };
    Ok(match res.conn.renegotiate(waiter) {
        Ok(()) => atoms::ok().encode(env),
        Err(crate::driver::Failure::Tls(crate::engine::Error::Option(..))) => {
            (atoms::error(), super::terms::atom(env, "notsup")).encode(env)
        }
        Err(f) => error_tuple(env, &f),
    })
}

/// `ok`, `{error, notsup}` before TLS 1.3, or `{error, Reason}`.
#[rustler::nif]
fn update_keys<'a>(env: Env<'a>, socket: Term<'a>, peer_too: bool) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(match res.conn.update_keys(peer_too) {
        Ok(()) => atoms::ok().encode(env),
        Err(crate::driver::Failure::Tls(crate::engine::Error::Option(..))) => {
            (atoms::error(), super::terms::atom(env, "notsup")).encode(env)
        }
        Err(f) => error_tuple(env, &f),
    })
}

/// `ok` if the recv was withdrawn, `gone` if its reply is already sent.
#[rustler::nif]
fn recv_cancel(socket: Term, tag: i64) -> NifResult<Atom> {
    let res = conn_of(socket)?;
    Ok(if res.conn.cancel_recv(|w| w.tag == tag) {
        atoms::ok()
    } else {
        atoms::gone()
    })
}

#[rustler::nif]
fn close(env: Env, socket: Term) -> NifResult<Atom> {
    let res = conn_of(socket)?;
    close_conn(env, &res.conn);
    Ok(atoms::ok())
}

/// Connections alive in the driver (adopted, not yet freed): for tests
/// that check nothing is left behind.
#[rustler::nif]
fn live_connections() -> usize {
    crate::driver::conn::live_connections()
}

/// Bytes malloc has handed out and not taken back, over every thread's
/// arena and the blocks it mapped on their own: for tests that look for
/// leaks, which the resident set hides among freed memory malloc keeps.
#[rustler::nif]
fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 only reads malloc's own statistics.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

/// `close/1` after a send timed out with `send_timeout_close`.
#[rustler::nif]
fn close_timed_out(env: Env, socket: Term) -> NifResult<Atom> {
    let res = conn_of(socket)?;
    res.conn.close_timed_out(&mut CallerOutbox { env });
    forget_owner(&res.conn);
    Ok(atoms::ok())
}

#[rustler::nif]
fn shutdown<'a>(env: Env<'a>, socket: Term<'a>, read: bool, write: bool) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    if read && res.conn.options().is_ok_and(|o| o.exit_on_close) {
        // As OTP's ssl: with exit_on_close, no reading means no connection.
        close_conn(env, &res.conn);
        return Ok(atoms::ok().encode(env));
    }
    Ok(match res.conn.shutdown(read, write) {
        Ok(()) => atoms::ok().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// Only the owner may hand the socket to another process.
#[rustler::nif]
fn controlling_process<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    new_owner: LocalPid,
) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let caller = env.pid();
    let (is_owner, old_monitor, has_socket) = res
        .conn
        .with_owner(|o| (o.pid == caller, o.monitor, o.socket.is_some()));
    if !has_socket {
        return Ok((atoms::error(), atoms::closed()).encode(env));
    }
    if !is_owner {
        return Ok((atoms::error(), atoms::not_owner()).encode(env));
    }
    if let Some(m) = old_monitor {
        env.demonitor(&res, &m);
    }
    let monitor = env.monitor(&res, &new_owner);
    if monitor.is_none() {
        // The new owner is already dead: the connection dies with it.
        close_conn(env, &res.conn);
        return Ok(atoms::ok().encode(env));
    }
    res.conn.update_owner(|o| {
        o.pid = new_owner;
        o.monitor = monitor;
    });
    Ok(atoms::ok().encode(env))
}

#[rustler::nif]
fn sockname<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(match res.conn.sockname() {
        Ok(addr) => (atoms::ok(), addr_term(env, addr)).encode(env),
        Err(f) => (atoms::error(), failure_term(env, &f)).encode(env),
    })
}

#[rustler::nif]
fn peername<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(match res.conn.peername() {
        Ok(addr) => (atoms::ok(), addr_term(env, addr)).encode(env),
        Err(f) => (atoms::error(), failure_term(env, &f)).encode(env),
    })
}
