//! NIFs for the Erlang distribution carrier (rssl_dist).

use super::atoms;
use super::host::Waiter;
use super::socket::conn_of;
use super::terms::error_tuple;
use crate::driver::SendOutcome;
use rustler::{Encoder, Env, NifResult, Term, TermType};
use std::ops::Range;

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
    let mut pieces = Pieces::default();
    let mut ends = Vec::new();
    for packet in packets.into_list_iterator()? {
        pieces.add_iodata(packet)?;
        ends.push(pieces.list.len());
    }
    let slices = pieces.slices();
    let mut start = 0;
    let grouped: Vec<&[&[u8]]> = ends
        .iter()
        .map(|&end| {
            let packet = &slices[start..end];
            start = end;
            packet
        })
        .collect();
    let percent = (pieces.total / 640).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent);
    let waiter = || Waiter {
        pid: env.pid(),
        tag,
        mailbox: None,
    };
    Ok(match res.conn.send_packets(&grouped, waiter) {
        Ok(SendOutcome::Done) => atoms::ok().encode(env),
        Ok(SendOutcome::Wait) => atoms::wait().encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// One piece of a packet: a binary's bytes where they are, or a run of
/// the list's integers (copied, as they are not bytes in memory).
enum Piece<'a> {
    Binary(&'a [u8]),
    Bytes(Range<usize>),
}

/// The pieces of iodata terms, in order, without copying their binaries.
#[derive(Default)]
struct Pieces<'a> {
    list: Vec<Piece<'a>>,
    /// Where the `Bytes` pieces are.
    bytes: Vec<u8>,
    total: usize,
}

impl<'a> Pieces<'a> {
    /// Adds an iodata term (binaries, bytes, nested lists).
    fn add_iodata(&mut self, term: Term<'a>) -> NifResult<()> {
        match term.get_type() {
            TermType::Binary => {
                let bin = rustler::Binary::from_term(term)?.as_slice();
                self.total += bin.len();
                self.list.push(Piece::Binary(bin));
                Ok(())
            }
            TermType::List => {
                for item in term.into_list_iterator()? {
                    match item.get_type() {
                        TermType::Integer => self.add_byte(item.decode()?),
                        _ => self.add_iodata(item)?,
                    }
                }
                Ok(())
            }
            _ => Err(rustler::Error::BadArg),
        }
    }

    fn add_byte(&mut self, byte: u8) {
        self.bytes.push(byte);
        self.total += 1;
        let end = self.bytes.len();
        match self.list.last_mut() {
            Some(Piece::Bytes(run)) if run.end == end - 1 => run.end = end,
            _ => self.list.push(Piece::Bytes(end - 1..end)),
        }
    }

    fn slices(&self) -> Vec<&[u8]> {
        self.list
            .iter()
            .map(|piece| match piece {
                Piece::Binary(bin) => *bin,
                Piece::Bytes(run) => &self.bytes[run.clone()],
            })
            .collect()
    }
}
