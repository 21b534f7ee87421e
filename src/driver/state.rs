//! One connection's state: where it is in its life, and how far each side
//! (reading, the peer's plaintext, writing) has gone.

use super::host::{Failure, Host};
use super::inet::Stats;
use super::options::SocketOptions;
use super::tls::Tls;
use std::collections::VecDeque;
use std::os::fd::RawFd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Adopted, handshake not started (server sockets after accept).
    Idle,
    Handshaking,
    Established,
    /// The user closed; the poller has yet to flush the last bytes and
    /// let the socket go (done there, off the caller's scheduler).
    CloseRequested,
    /// The user closed; the last bytes are being flushed.
    Closing,
    Closed,
    /// Another reader and writer has the socket (`Conn::hand_over`): as
    /// closed, but the TLS state can still be asked about.
    HandedOver,
}

/// Reading ciphertext from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    Open,
    /// Too much plaintext waits undelivered: the socket is left unread.
    Paused,
    /// No more ciphertext will come: end of stream or a socket error.
    Ended,
}

/// The peer's plaintext stream, as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Incoming {
    Open,
    /// The user shut down reading: what arrives is dropped.
    Dropped,
    /// No more plaintext will come: the peer closed (`failure` is None) or
    /// the connection failed. `told` once the application has been given
    /// the end (a recv got it, or the owner its `ssl_closed`/`ssl_error`);
    /// reads after that say `closed`.
    Ended {
        /// Boxed: a failure is large and an idle connection has none.
        failure: Option<Box<Failure>>,
        told: bool,
    },
}

/// Our side's writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outgoing {
    Open,
    /// The user shut down writing: close_notify queued, FIN after the flush.
    Shut,
    /// Writing to the socket failed: the peer is gone.
    Failed,
}

/// A large packet decrypted into the buffer it is delivered in.
pub(super) struct Direct<B> {
    /// The payload, `filled` bytes of it so far.
    pub buf: B,
    pub filled: usize,
    /// The payload's length (the buffer's).
    pub len: usize,
    /// The length header it came with (put back if it must go to `plain`).
    pub header: Vec<u8>,
}

/// Callers blocked on the connection.
pub(super) struct Waiters<W> {
    pub handshake: Option<W>,
    pub recv: Option<(W, usize)>,
    /// Senders waiting for the backlog to drain, oldest first (any number
    /// of processes may send on one socket), each with its framed data when
    /// that is not queued yet (it came while the backlog was too high).
    pub sends: VecDeque<(W, Option<Vec<u8>>)>,
    /// A caller of `renegotiate`, answered when the new handshake is done.
    pub renegotiate: Option<W>,
}

impl<W> Waiters<W> {
    pub fn any(&self) -> bool {
        self.handshake.is_some()
            || self.recv.is_some()
            || !self.sends.is_empty()
            || self.renegotiate.is_some()
    }
}

pub(super) struct State<H: Host> {
    pub fd: RawFd,
    pub tls: Tls,
    pub phase: Phase,
    pub reading: Reading,
    pub incoming: Incoming,
    pub outgoing: Outgoing,
    pub owner: H::Owner,
    pub options: SocketOptions,
    /// Decrypted plaintext not yet handed out is `plain[plain_pos..]`;
    /// decrypts go into its spare capacity.
    pub plain: Vec<u8>,
    pub plain_pos: usize,
    /// Where the packets in `plain` not yet known to be whole start.
    pub plain_scan: usize,
    /// A large packet being decrypted straight into a buffer of its own.
    /// It comes after the whole packets in `plain`; nothing is decrypted
    /// into `plain` until it is delivered.
    /// Boxed: rare, and an idle connection should stay small.
    pub direct: Option<Box<Direct<H::Buffer>>>,
    pub waiters: Waiters<H::Waiter>,
    pub stats: Stats,
    /// The user's close came from `send_timeout_close`: a send answers
    /// `enotconn` after it rather than `closed` (as gen_tcp and OTP's ssl).
    pub closed_on_send_timeout: bool,
    /// DTLS: when the poller is due to check the handshake's retransmission
    /// timer (see datagram.rs).
    pub retransmit_at: Option<std::time::Instant>,
}

impl<H: Host> State<H> {
    pub fn new(fd: RawFd, tls: Tls, owner: H::Owner, options: SocketOptions) -> Self {
        State {
            fd,
            tls,
            phase: Phase::Idle,
            reading: Reading::Open,
            incoming: Incoming::Open,
            outgoing: Outgoing::Open,
            owner,
            options,
            plain: Vec::new(),
            plain_pos: 0,
            plain_scan: 0,
            direct: None,
            waiters: Waiters {
                handshake: None,
                recv: None,
                sends: VecDeque::new(),
                renegotiate: None,
            },
            stats: Stats::default(),
            closed_on_send_timeout: false,
            retransmit_at: None,
        }
    }

    pub fn closed_by_user(&self) -> bool {
        matches!(
            self.phase,
            Phase::CloseRequested | Phase::Closing | Phase::Closed | Phase::HandedOver
        )
    }

    pub fn input_ended(&self) -> bool {
        matches!(self.incoming, Incoming::Ended { .. })
    }

    /// The application has been given the end of the peer's stream.
    pub fn end_told(&self) -> bool {
        matches!(self.incoming, Incoming::Ended { told: true, .. })
    }

    /// Why input ended, if it failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.incoming {
            Incoming::Ended { failure, .. } => failure.as_deref(),
            _ => None,
        }
    }

    /// Input ends (if it has not already) with `failure`, or cleanly.
    pub fn end_input(&mut self, failure: Option<Failure>) {
        if !self.input_ended() {
            self.incoming = Incoming::Ended {
                failure: failure.map(Box::new),
                told: false,
            };
        }
    }

    /// Input ends with `failure`, or, if it ended cleanly, the failure is
    /// what the application is told (the first failure stands).
    pub fn record_failure(&mut self, failure: Failure) {
        match &mut self.incoming {
            Incoming::Ended { failure: slot, .. } => {
                slot.get_or_insert_with(|| Box::new(failure));
            }
            _ => self.end_input(Some(failure)),
        }
    }
}
