//! How driver events become Erlang messages.

use super::atoms;
use super::callback::Mailbox;
use super::socket::{socket_term, ConnRes};
use super::terms::{data_term, error_tuple, failure_term};
use crate::driver::{Host, Message, Outbox, Reply, SocketOptions};
use rustler::env::OwnedEnv;
use rustler::{Encoder, Env, LocalPid, Monitor, OwnedBinary, ResourceArc, Term};
use std::cell::RefCell;
use std::sync::Arc;

pub struct ErlHost;

/// The controlling process and the socket term its messages carry.
pub struct Owner {
    pub pid: LocalPid,
    /// None once the connection is closed (breaks the resource cycle).
    pub socket: Option<ResourceArc<ConnRes>>,
    pub monitor: Option<Monitor>,
}

/// A process blocked in a call, answered with `{rssl_reply, Tag, Result}`.
pub struct Waiter {
    pub pid: LocalPid,
    pub tag: i64,
    /// A handshake's: where its callbacks' questions and answers go.
    pub mailbox: Option<Arc<Mailbox>>,
}

thread_local! {
    static POLLER_ENV: RefCell<Option<OwnedEnv>> = const { RefCell::new(None) };
}

impl Host for ErlHost {
    type Owner = Owner;
    type Waiter = Waiter;
    type Buffer = ErlBuffer;

    fn buffer(len: usize) -> Option<ErlBuffer> {
        Some(ErlBuffer(OwnedBinary::new(len)))
    }

    fn during_handshake<R>(waiter: Option<&Waiter>, step: impl FnOnce() -> R) -> R {
        super::callback::during(waiter, step)
    }

    fn with_poller_outbox<R>(f: impl FnOnce(&mut dyn Outbox<Self>) -> R) -> R {
        POLLER_ENV.with(|cell| {
            let mut slot = cell.borrow_mut();
            let env = slot.get_or_insert_with(OwnedEnv::new);
            f(&mut PollerOutbox { env })
        })
    }
}

fn owner_message<'a>(
    env: Env<'a>,
    owner: &Owner,
    options: &SocketOptions,
    message: Message<'_>,
) -> Option<Term<'a>> {
    let socket = socket_term(env, owner.socket.as_ref()?);
    Some(match message {
        Message::Data(data) => (atoms::ssl(), socket, data_term(env, options, data)).encode(env),
        Message::Passive => (atoms::ssl_passive(), socket).encode(env),
        Message::Closed => (atoms::ssl_closed(), socket).encode(env),
        Message::Error(failure) => {
            (atoms::ssl_error(), socket, failure_term(env, failure)).encode(env)
        }
        Message::SessionTicket(ticket) => (
            atoms::ssl(),
            atoms::session_ticket(),
            ticket_term(env, ticket),
        )
            .encode(env),
        Message::EarlyData(accepted) => {
            let verdict = if accepted {
                atoms::accepted()
            } else {
                atoms::rejected()
            };
            (atoms::ssl(), socket, (atoms::early_data(), verdict)).encode(env)
        }
    })
}

/// A ticket as OTP 25's `ssl` delivers one with `{session_tickets,
/// manual}`: a map with its `sni`, `cipher_suite`, `psk` and `timestamp`,
/// whose `ticket` is here OpenSSL's session (DER) instead of OTP's record.
fn ticket_term<'a>(env: Env<'a>, ticket: &crate::engine::session::Ticket) -> Term<'a> {
    let sni = match &ticket.sni {
        Some(name) => name
            .chars()
            .map(|c| c as u32)
            .collect::<Vec<u32>>()
            .encode(env),
        None => atoms::undefined().encode(env),
    };
    let suite = match &ticket.suite {
        Some(s) => (
            super::terms::atom(env, s.cipher),
            super::terms::atom(env, s.prf),
        )
            .encode(env),
        None => atoms::undefined().encode(env),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let pairs = [
        (atoms::cipher_suite().encode(env), suite),
        (
            atoms::psk().encode(env),
            super::terms::binary(env, &ticket.psk),
        ),
        (atoms::sni().encode(env), sni),
        (atoms::timestamp().encode(env), now.encode(env)),
        (
            atoms::ticket().encode(env),
            super::terms::binary(env, &ticket.der),
        ),
    ];
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| atoms::undefined().encode(env))
}

fn reply_message<'a>(
    env: Env<'a>,
    tag: i64,
    options: &SocketOptions,
    reply: Reply<'_>,
) -> Term<'a> {
    let result = match reply {
        Reply::Handshake(Ok(())) | Reply::Send(Ok(())) => atoms::ok().encode(env),
        Reply::Recv(Ok(data)) => (atoms::ok(), data_term(env, options, data)).encode(env),
        Reply::Handshake(Err(f)) | Reply::Send(Err(f)) | Reply::Recv(Err(f)) => {
            error_tuple(env, &f)
        }
    };
    (atoms::rssl_reply(), tag, result).encode(env)
}

/// A packet's memory: an Erlang binary from the start (`enif_alloc_binary`),
/// so delivering it copies nothing.
pub struct ErlBuffer(OwnedBinary);

impl AsMut<[u8]> for ErlBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

/// `{ssl, S, Data}` for a packet in a buffer of its own.
fn packet_message<'a>(env: Env<'a>, owner: &Owner, packet: ErlBuffer) -> Option<Term<'a>> {
    let socket = socket_term(env, owner.socket.as_ref()?);
    Some((atoms::ssl(), socket, packet.0.release(env)).encode(env))
}

/// Sends from a poller thread through a reusable process-independent env.
struct PollerOutbox<'e> {
    env: &'e mut OwnedEnv,
}

impl Outbox<ErlHost> for PollerOutbox<'_> {
    fn to_owner(&mut self, owner: &Owner, options: &SocketOptions, message: Message<'_>) {
        if owner.socket.is_none() {
            return; // closed: the owner gets nothing more
        }
        let _ = self.env.send_and_clear(&owner.pid, |env| {
            owner_message(env, owner, options, message)
                .unwrap_or_else(|| atoms::undefined().encode(env))
        });
    }

    fn packet_to_owner(&mut self, owner: &Owner, _: &SocketOptions, packet: ErlBuffer) {
        if owner.socket.is_none() {
            return;
        }
        let _ = self.env.send_and_clear(&owner.pid, |env| {
            packet_message(env, owner, packet).unwrap_or_else(|| atoms::undefined().encode(env))
        });
    }

    fn reply(&mut self, waiter: Waiter, options: &SocketOptions, reply: Reply<'_>) {
        let _ = self.env.send_and_clear(&waiter.pid, |env| {
            reply_message(env, waiter.tag, options, reply)
        });
    }
}

/// Sends from inside a NIF call, with the calling process's env.
pub struct CallerOutbox<'a> {
    pub env: Env<'a>,
}

impl Outbox<ErlHost> for CallerOutbox<'_> {
    fn to_owner(&mut self, owner: &Owner, options: &SocketOptions, message: Message<'_>) {
        if let Some(msg) = owner_message(self.env, owner, options, message) {
            let _ = self.env.send(&owner.pid, msg);
        }
    }

    fn packet_to_owner(&mut self, owner: &Owner, _: &SocketOptions, packet: ErlBuffer) {
        if let Some(msg) = packet_message(self.env, owner, packet) {
            let _ = self.env.send(&owner.pid, msg);
        }
    }

    fn reply(&mut self, waiter: Waiter, options: &SocketOptions, reply: Reply<'_>) {
        let msg = reply_message(self.env, waiter.tag, options, reply);
        let _ = self.env.send(&waiter.pid, msg);
    }
}
