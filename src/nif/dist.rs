//! NIFs for the Erlang distribution carrier (rssl_dist).

use super::atoms;
use super::host::Waiter;
use super::socket::conn_of;
use super::terms::error_tuple;
use crate::driver::SendOutcome;
use rustler::{Encoder, Env, NifResult, Term, TermType};

/// `send_packets(Socket, [IoData], Tag)`: each element one packet, framed by
/// the socket's packet option, encrypted and written together; `ok`,
/// `wait` (then `{rssl_reply, Tag, Result}` once the backlog drains) or
/// `{error, Reason}`, as `send/3`.
#[rustler::nif]
fn send_packets<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    packets: Term<'a>,
    tag: i64,
) -> NifResult<Term<'a>> {
    send_batch(env, socket, packets, tag)
}

/// `send_packets/3` for batches whose encryption would hold a normal
/// scheduler too long.
#[rustler::nif(schedule = "DirtyCpu")]
fn send_packets_dirty<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    packets: Term<'a>,
    tag: i64,
) -> NifResult<Term<'a>> {
    send_batch(env, socket, packets, tag)
}

fn send_batch<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    packets: Term<'a>,
    tag: i64,
) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let mut flat = Vec::new();
    let mut bounds = Vec::new();
    for packet in packets.into_list_iterator()? {
        let start = flat.len();
        append_iodata(packet, &mut flat)?;
        bounds.push(start..flat.len());
    }
    let slices: Vec<&[u8]> = bounds.into_iter().map(|r| &flat[r]).collect();
    let percent = (flat.len() / 640).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent);
    let waiter = || Waiter {
        pid: env.pid(),
        tag,
        mailbox: None,
    };
    Ok(match res.conn.send_packets(&slices, waiter) {
        Ok(SendOutcome::Done) => atoms::ok().encode(env),
        Ok(SendOutcome::Wait) => atoms::wait().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// Appends an iodata term (binaries, bytes, nested lists) to `out`: one copy.
fn append_iodata(term: Term, out: &mut Vec<u8>) -> NifResult<()> {
    match term.get_type() {
        TermType::Binary => {
            out.extend_from_slice(rustler::Binary::from_term(term)?.as_slice());
            Ok(())
        }
        TermType::List => {
            for item in term.into_list_iterator()? {
                match item.get_type() {
                    TermType::Integer => {
                        let byte: u8 = item.decode()?;
                        out.push(byte);
                    }
                    _ => append_iodata(item, out)?,
                }
            }
            Ok(())
        }
        _ => Err(rustler::Error::BadArg),
    }
}
