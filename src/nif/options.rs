//! Socket options: the emulated ones (active, packet, mode...), those inet
//! keeps in user space (send_timeout...), kernel ones (nodelay, sndbuf...),
//! and `getstat`.

use super::atoms;
use super::host::CallerOutbox;
use super::socket::conn_of;
use super::terms::{atom, error_tuple};
use crate::driver::inet::SockOpt;
use crate::driver::{Active, Packet, SocketOptions};
use rustler::{Atom, Encoder, Env, NifResult, Term};

/// Why a list of emulated options was not applied.
pub enum Refused<'a> {
    /// `{active, N}` would take the count past its limit.
    CountTooLarge,
    /// A pair this NIF does not know. `rssl_options` validates every
    /// option first, so this is a bug, reported rather than dropped.
    Unknown(Term<'a>),
}

/// Applies `{Key, Value}` pairs of emulated options (validated in Erlang).
/// Returns whether `{ssl_passive, S}` is due.
pub fn apply_options<'a>(
    options: &mut SocketOptions,
    pairs: &[(Atom, Term<'a>)],
) -> Result<bool, Refused<'a>> {
    let mut passive_due = false;
    for &(key, value) in pairs {
        let unknown = || Refused::Unknown((key, value).encode(value.get_env()));
        let flag = || value.decode::<bool>().map_err(|_| unknown());
        let count = || value.decode::<usize>().map_err(|_| unknown());
        if key == atoms::active() {
            if let Ok(n) = value.decode::<i32>() {
                let (active, due) = options.active.add_count(n).ok_or(Refused::CountTooLarge)?;
                options.active = active;
                passive_due |= due;
            } else if value.decode::<Atom>().ok() == Some(atoms::once()) {
                options.active = Active::Once;
            } else {
                options.active = if flag()? { Active::True } else { Active::False };
            }
        } else if key == atoms::packet() {
            let (packet, raw_name) = packet_of(value).ok_or_else(unknown)?;
            options.packet = packet;
            options.packet_raw_name = raw_name;
        } else if key == atoms::packet_size() {
            options.packet_size = count()?;
        } else if key == atoms::mode() {
            options.binary = value.decode::<Atom>().ok() == Some(atoms::binary());
        } else if key == atoms::header() {
            options.header = count()?;
        } else if key == atoms::exit_on_close() {
            options.exit_on_close = flag()?;
        } else if key == atoms::send_timeout() {
            options.inet.send_timeout = match value.decode::<u64>() {
                Ok(ms) => Some(ms),
                Err(_) if value.decode::<Atom>().ok() == Some(atoms::infinity()) => None,
                Err(_) => return Err(unknown()),
            };
        } else if key == atoms::send_timeout_close() {
            options.inet.send_timeout_close = flag()?;
        } else if key == atoms::delay_send() {
            options.inet.delay_send = flag()?;
        } else if key == atoms::show_econnreset() {
            options.inet.show_econnreset = flag()?;
        } else if key == atoms::buffer() {
            options.inet.buffer = count()?;
            options.inet.buffer_set = true;
        } else if key == atoms::high_watermark() {
            options.inet.high_watermark = count()?;
        } else if key == atoms::low_watermark() {
            options.inet.low_watermark = count()?;
        } else {
            return Err(unknown());
        }
    }
    Ok(passive_due)
}

/// A `{packet, _}` value, and whether it was named `raw` (getopts says
/// `raw` then, and `0` for `{packet, 0}`).
fn packet_of(value: Term) -> Option<(Packet, bool)> {
    if let Ok(n) = value.decode::<u8>() {
        return match n {
            0 => Some((Packet::Raw, false)),
            1 | 2 | 4 => Some((Packet::Length(n), false)),
            _ => None,
        };
    }
    let kind = value.decode::<Atom>().ok()?;
    let http = |bin, always_headers| Packet::Http {
        bin,
        always_headers,
        headers: false,
    };
    let packet = if kind == atoms::raw() {
        return Some((Packet::Raw, true));
    } else if kind == atoms::line() {
        Packet::Line
    } else if kind == atoms::asn1() {
        Packet::Asn1
    } else if kind == atoms::cdr() {
        Packet::Cdr
    } else if kind == atoms::sunrm() {
        Packet::Sunrm
    } else if kind == atoms::fcgi() {
        Packet::Fcgi
    } else if kind == atoms::tpkt() {
        Packet::Tpkt
    } else if kind == atoms::http() {
        http(false, false)
    } else if kind == atoms::http_bin() {
        http(true, false)
    } else if kind == atoms::httph() {
        http(false, true)
    } else if kind == atoms::httph_bin() {
        http(true, true)
    } else {
        return None;
    };
    Some((packet, false))
}

#[rustler::nif]
fn setopts<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    pairs: Vec<(Atom, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let mut unknown = None;
    let result = res.conn.set_options(
        |options| match apply_options(options, &pairs) {
            Ok(passive_due) => Some(passive_due),
            Err(Refused::CountTooLarge) => None,
            Err(Refused::Unknown(pair)) => {
                unknown = Some(pair);
                None
            }
        },
        &mut CallerOutbox { env },
    );
    Ok(match (result, unknown) {
        (_, Some(pair)) => (atoms::error(), (atoms::options(), pair)).encode(env),
        (Ok(true), None) => atoms::ok().encode(env),
        (Ok(false), None) => atom(env, "rejected"),
        (Err(f), None) => error_tuple(env, &f),
    })
}

/// The emulated options as `[{active, _}, {packet, _}, ...]`.
#[rustler::nif]
fn getopts<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let o = match res.conn.options() {
        Ok(o) => o,
        Err(f) => return Ok(error_tuple(env, &f)),
    };
    let active = match o.active {
        Active::False => false.encode(env),
        Active::True => true.encode(env),
        Active::Once => atoms::once().encode(env),
        Active::Count(n) => n.encode(env),
    };
    let packet = match o.packet {
        Packet::Raw if o.packet_raw_name => atom(env, "raw"),
        Packet::Raw => 0u8.encode(env),
        Packet::Length(n) => n.encode(env),
        Packet::Line => atom(env, "line"),
        Packet::Asn1 => atom(env, "asn1"),
        Packet::Cdr => atom(env, "cdr"),
        Packet::Sunrm => atom(env, "sunrm"),
        Packet::Fcgi => atom(env, "fcgi"),
        Packet::Tpkt => atom(env, "tpkt"),
        Packet::Http {
            bin,
            always_headers,
            ..
        } => atom(
            env,
            match (always_headers, bin) {
                (false, false) => "http",
                (false, true) => "http_bin",
                (true, false) => "httph",
                (true, true) => "httph_bin",
            },
        ),
    };
    let mode = if o.binary {
        atoms::binary()
    } else {
        atoms::list()
    };
    let send_timeout = match o.inet.send_timeout {
        Some(ms) => ms.encode(env),
        None => atom(env, "infinity"),
    };
    let pairs: Vec<(Term<'a>, Term<'a>)> = vec![
        (atom(env, "active"), active),
        (atom(env, "packet"), packet),
        (atom(env, "packet_size"), o.packet_size.encode(env)),
        (atom(env, "mode"), mode.encode(env)),
        (atom(env, "header"), o.header.encode(env)),
        (atom(env, "exit_on_close"), o.exit_on_close.encode(env)),
        (atom(env, "send_timeout"), send_timeout),
        (
            atom(env, "send_timeout_close"),
            o.inet.send_timeout_close.encode(env),
        ),
        (atom(env, "delay_send"), o.inet.delay_send.encode(env)),
        (
            atom(env, "show_econnreset"),
            o.inet.show_econnreset.encode(env),
        ),
        (atom(env, "buffer"), o.inet.buffer.encode(env)),
        (
            atom(env, "high_watermark"),
            o.inet.high_watermark.encode(env),
        ),
        (atom(env, "low_watermark"), o.inet.low_watermark.encode(env)),
    ];
    Ok(pairs.encode(env))
}

fn sockopt_term<'a>(env: Env<'a>, opt: SockOpt) -> Term<'a> {
    let value = match opt {
        SockOpt::NoDelay(b)
        | SockOpt::KeepAlive(b)
        | SockOpt::ReuseAddr(b)
        | SockOpt::Ipv6Only(b) => b.encode(env),
        SockOpt::SndBuf(n)
        | SockOpt::RecBuf(n)
        | SockOpt::Tos(n)
        | SockOpt::Tclass(n)
        | SockOpt::Priority(n) => n.encode(env),
        SockOpt::Linger(on, secs) => (on, secs).encode(env),
    };
    (atom(env, opt.name()), value).encode(env)
}

/// Decodes `{Name, Value}` of a kernel-backed inet option.
pub fn decode_sockopt(env: Env, key: Atom, value: Term) -> Option<SockOpt> {
    let name = key.to_term(env).atom_to_string().ok()?;
    Some(match SockOpt::named(&name)? {
        SockOpt::NoDelay(_) => SockOpt::NoDelay(value.decode().ok()?),
        SockOpt::KeepAlive(_) => SockOpt::KeepAlive(value.decode().ok()?),
        SockOpt::ReuseAddr(_) => SockOpt::ReuseAddr(value.decode().ok()?),
        SockOpt::Ipv6Only(_) => SockOpt::Ipv6Only(value.decode().ok()?),
        SockOpt::SndBuf(_) => SockOpt::SndBuf(value.decode().ok()?),
        SockOpt::RecBuf(_) => SockOpt::RecBuf(value.decode().ok()?),
        SockOpt::Tos(_) => SockOpt::Tos(value.decode().ok()?),
        SockOpt::Tclass(_) => SockOpt::Tclass(value.decode().ok()?),
        SockOpt::Priority(_) => SockOpt::Priority(value.decode().ok()?),
        SockOpt::Linger(..) => {
            let (on, secs): (bool, i32) = value.decode().ok()?;
            SockOpt::Linger(on, secs)
        }
    })
}

/// Sets kernel socket options: `ok`, `{error, {options, Opt}}` or `{error, Posix}`.
#[rustler::nif]
fn set_sockopts<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    pairs: Vec<(Atom, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    for (key, value) in pairs {
        let Some(opt) = decode_sockopt(env, key, value) else {
            let bad = (key, value).encode(env);
            return Ok((atoms::error(), (atoms::options(), bad)).encode(env));
        };
        if let Err(f) = res.conn.set_sockopt(opt) {
            return Ok(error_tuple(env, &f));
        }
        if let SockOpt::RecBuf(size) = opt {
            // As inet: the user-space buffer follows recbuf unless set.
            let _ = res.conn.set_options(
                |o| {
                    if !o.inet.buffer_set {
                        o.inet.buffer = size.max(0) as usize;
                    }
                    Some(false)
                },
                &mut CallerOutbox { env },
            );
        }
    }
    Ok(atoms::ok().encode(env))
}

/// Reads kernel socket options by name: `{ok, [{Name, Value}]}`. Options
/// the socket's family does not have are left out, as inet does.
#[rustler::nif]
fn get_sockopts<'a>(env: Env<'a>, socket: Term<'a>, names: Vec<Atom>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let mut values = Vec::new();
    for key in names {
        let name = key.to_term(env).atom_to_string()?;
        let Some(like) = SockOpt::named(&name) else {
            continue;
        };
        match res.conn.get_sockopt(like) {
            Ok(opt) => values.push(sockopt_term(env, opt)),
            Err(crate::driver::Failure::Closed) => {
                return Ok(error_tuple(env, &crate::driver::Failure::Closed))
            }
            Err(_) => {}
        }
    }
    Ok((atoms::ok(), values).encode(env))
}

/// `inet:getstat/1` counters of the TLS socket (ciphertext bytes).
#[rustler::nif]
fn getstat<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let st = match res.conn.stats() {
        Ok(st) => st,
        Err(f) => return Ok(error_tuple(env, &f)),
    };
    let avg = |oct: u64, cnt: u64| oct.checked_div(cnt).unwrap_or(0);
    let pairs: Vec<(Term<'a>, u64)> = vec![
        (atom(env, "recv_oct"), st.recv_oct),
        (atom(env, "recv_cnt"), st.recv_cnt),
        (atom(env, "recv_max"), st.recv_max),
        (atom(env, "recv_avg"), avg(st.recv_oct, st.recv_cnt)),
        (atom(env, "recv_dvi"), 0),
        (atom(env, "send_oct"), st.send_oct),
        (atom(env, "send_cnt"), st.send_cnt),
        (atom(env, "send_max"), st.send_max),
        (atom(env, "send_avg"), avg(st.send_oct, st.send_cnt)),
        (atom(env, "send_pend"), st.send_pend),
    ];
    Ok((atoms::ok(), pairs).encode(env))
}

/// `ok` if the send wait was withdrawn, `gone` if its reply is already sent.
#[rustler::nif]
fn send_cancel(socket: Term, tag: i64) -> NifResult<Atom> {
    let res = conn_of(socket)?;
    Ok(if res.conn.cancel_send(|w| w.tag == tag) {
        atoms::ok()
    } else {
        atoms::gone()
    })
}

/// Sends `{ssl_passive, S}` to the owner without changing anything: OTP's
/// ssl does so for an `{active, N}` out of range, which it then refuses.
#[rustler::nif]
fn notify_passive<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(
        match res
            .conn
            .set_options(|_| Some(true), &mut CallerOutbox { env })
        {
            Ok(_) => atoms::ok().encode(env),
            Err(f) => error_tuple(env, &f),
        },
    )
}
