//! The distribution controller reads its socket through a gen_tcp port
//! on a duplicate of it, so the descriptor sits in the schedulers' own
//! poll set as inet_tcp's do, and hands each `{tcp, Port, Ciphertext}`
//! to these NIFs, which decrypt it and return the whole packets.
//!
//! The port only reads: every write goes through the connection's own
//! descriptor (`send_packets/3`). A port opened on a descriptor does not
//! close it: `dist_close_dup/2` does, once the port is gone.

use super::atoms;
use super::host::{ErlBuffer, ErlHost, Waiter};
use super::socket::conn_of;
use super::terms::{binary, failure_term};
use crate::driver::{Message, Outbox, ReadHere, Reply, SocketOptions};
use rustler::{Binary, Encoder, Env, NifResult, Term};

/// Plaintext that a normal scheduler may copy out in one call; more is
/// copied on a dirty one (a packet over 8 MiB is not decrypted straight
/// into its own binary, see driver/input.rs).
const COPY_LIMIT: usize = 1024 * 1024;

/// `dist_read_port(Socket)`: the connection is read by its owner from now
/// on (see `Conn::read_on_caller`); `{ok, Fd}`, a duplicate of the socket
/// for the owner to open a port on (`gen_tcp:fdopen/2`), or `{error,
/// Reason}`. The owner must call `dist_feed(Socket, <<>>)` at once (data
/// may already be buffered).
#[rustler::nif]
fn dist_read_port<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(match res.conn.read_on_caller() {
        Ok(fd) => (atoms::ok(), fd).encode(env),
        Err(f) => super::terms::error_tuple(env, &f),
    })
}

/// `dist_close_dup(Socket, Fd)`: the port on the duplicate
/// `dist_read_port/1` gave is gone (or none could be opened): closes it
/// (`true`); `false` for any other descriptor, or the second time.
#[rustler::nif]
fn dist_close_dup(socket: Term, fd: i32) -> NifResult<bool> {
    Ok(conn_of(socket)?.conn.close_caller_dup(fd))
}

/// `dist_feed(Socket, Ciphertext)`: decrypts what the port read and
/// returns the packets, in order: `{ok, Packets}` (all of it is out),
/// `{more, Packets}` (call again with `<<>>` at once), `{large, Packets}`
/// (call `dist_feed_dirty(Socket, <<>>)` at once), `{closed, Packets}` or
/// `{error, Reason, Packets}` (the end).
#[rustler::nif]
fn dist_feed<'a>(env: Env<'a>, socket: Term<'a>, data: Binary<'a>) -> NifResult<Term<'a>> {
    feed(env, socket, Some(data.as_slice()), Some(COPY_LIMIT))
}

/// `dist_feed/2` for a packet too large to copy on a normal scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn dist_feed_dirty<'a>(env: Env<'a>, socket: Term<'a>, data: Binary<'a>) -> NifResult<Term<'a>> {
    feed(env, socket, Some(data.as_slice()), None)
}

/// `dist_feed_end(Socket)`: the port found the end of the stream; the
/// packets still buffered, then `{closed, Packets}` or `{error, Reason,
/// Packets}`.
#[rustler::nif]
fn dist_feed_end<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    feed(env, socket, None, None)
}

fn feed<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    data: Option<&[u8]>,
    copy_limit: Option<usize>,
) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let mut collect = Collect::new(env);
    let outcome = match data {
        Some(data) => res.conn.feed_here(data, copy_limit, &mut collect),
        None => res.conn.feed_end(&mut collect),
    };
    let fed = data.map_or(0, <[u8]>::len);
    let percent = ((fed + collect.bytes) / 1280).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent);
    let packets = collect.packets.encode(env);
    Ok(match outcome {
        ReadHere::Drained => (atoms::ok(), packets).encode(env),
        ReadHere::More => (atoms::more(), packets).encode(env),
        ReadHere::Large => (atoms::large(), packets).encode(env),
        ReadHere::Ended => match collect.end {
            Some(reason) => (atoms::error(), reason, packets).encode(env),
            None => (atoms::closed(), packets).encode(env),
        },
    })
}

/// Gathers what a read hands out into the caller's terms.
struct Collect<'a> {
    env: Env<'a>,
    packets: Vec<Term<'a>>,
    bytes: usize,
    /// The failure input ended with, if it failed.
    end: Option<Term<'a>>,
}

impl<'a> Collect<'a> {
    fn new(env: Env<'a>) -> Self {
        Collect {
            env,
            packets: Vec::new(),
            bytes: 0,
            end: None,
        }
    }
}

impl Outbox<ErlHost> for Collect<'_> {
    fn to_owner(&mut self, _: &super::host::Owner, _: &SocketOptions, message: Message<'_>) {
        match message {
            Message::Data(data) => {
                self.bytes += data.len();
                self.packets.push(binary(self.env, data));
            }
            Message::Error(failure) => self.end = Some(failure_term(self.env, failure)),
            Message::Closed => {}
            // Not for an active binary socket without manual tickets.
            Message::Passive | Message::SessionTicket(_) | Message::EarlyData(_) => {}
        }
    }

    fn packet_to_owner(&mut self, _: &super::host::Owner, _: &SocketOptions, packet: ErlBuffer) {
        self.bytes += packet.len();
        self.packets.push(packet.into_term(self.env));
    }

    fn reply(&mut self, waiter: Waiter, options: &SocketOptions, reply: Reply<'_>) {
        super::host::CallerOutbox { env: self.env }.reply(waiter, options, reply);
    }
}
