//! A TLS connection on a non-blocking socket, run by a poller thread: the
//! API its front end calls.
//!
//! All socket semantics live in this module's siblings once: the receive
//! side and packet framing (`input.rs`), delivery by active mode
//! (`delivery.rs`), sending with back-pressure (`output.rs`), and what the
//! poller does (`step.rs`). Who gets messages and how they are encoded is
//! up to the [`Host`] (the NIF layer).

use super::host::{Failure, Host, Message, Outbox};
use super::inet::{self, SockOpt, Stats};
use super::input::Taken;
use super::options::SocketOptions;
use super::poller::Poller;
use super::socket;
use super::state::{Incoming, Outgoing, Phase, Reading, State};
use super::tls::Tls;
use crate::engine::{Connection, MAX_RECORD_PLAINTEXT};
use parking_lot::Mutex;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Ciphertext a passive `recv` reads itself, on the caller's scheduler.
const INLINE_READ_BUDGET: usize = 128 * 1024;

/// Connections alive now: adopted and not yet dropped (leak checks).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A socket handed back by [`Conn::detach`].
pub struct Detached {
    /// The socket, now the caller's to close.
    pub fd: RawFd,
    /// Ciphertext queued for the peer (our close_notify, if it did not go).
    pub unsent: Vec<u8>,
    /// Ciphertext received and not decrypted yet.
    pub buffered: Vec<u8>,
    /// The peer's close_notify has already been read.
    pub peer_closed: bool,
}

/// A socket handed over by [`Conn::hand_over`].
pub struct HandedOver {
    /// The socket, now the caller's to close.
    pub fd: RawFd,
    /// Plaintext decrypted and not handed out yet.
    pub plaintext: Vec<u8>,
}

/// How many connections are alive now (adopted and not yet freed).
pub fn live_connections() -> usize {
    LIVE.load(Ordering::Relaxed)
}

pub struct Conn<H: Host> {
    pub(super) token: u64,
    pub(super) poller: Arc<Poller>,
    pub(super) state: Mutex<State<H>>,
}

impl<H: Host> Drop for Conn<H> {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

pub enum SendOutcome {
    Done,
    /// Accepted; the waiter is answered once the backlog drains.
    Wait,
}

pub enum RecvOutcome {
    /// The data is handed to `deliver` before the lock is released.
    Done,
    Wait,
}

impl<H: Host> Conn<H> {
    /// Runs a connection on `fd`, a non-blocking socket that is the
    /// connection's from now on (it closes it): a duplicate of one taken
    /// over (`socket::adopt`) or one of its own, connected or connecting
    /// (`socket::connect`: the handshake's first write waits for it). Run
    /// by `poller` ([`Poller::pick_for`]).
    pub fn own(
        fd: RawFd,
        tls: Tls,
        owner: H::Owner,
        options: SocketOptions,
        poller: Arc<Poller>,
    ) -> Arc<Conn<H>> {
        let conn = Arc::new(Conn {
            token: Poller::new_token(),
            poller,
            state: Mutex::new(State::new(fd, tls, owner, options)),
        });
        LIVE.fetch_add(1, Ordering::Relaxed);
        conn.poller.add(conn.token, fd, conn.clone());
        conn
    }

    /// Lets go of this reference on the connection's poller thread, so that
    /// if it is the last one, the OpenSSL objects are freed there
    /// ([`Poller::release`]), not on the caller's (a scheduler's) thread.
    pub fn release_on_poller(self: Arc<Self>) {
        let poller = self.poller.clone();
        poller.release(self);
    }

    /// Replaces the TLS state before the handshake (e.g. extra options).
    pub fn replace_tls(&self, tls: Tls) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.phase != Phase::Idle {
            return Err(Failure::Closed);
        }
        s.tls = tls;
        Ok(())
    }

    /// Starts the handshake on the poller; `waiter` is answered when it ends.
    pub fn handshake(&self, waiter: H::Waiter) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.phase != Phase::Idle || s.fd < 0 {
            return Err(s.failure().cloned().unwrap_or(Failure::Closed));
        }
        s.phase = Phase::Handshaking;
        // Even the ClientHello is made on the poller: OpenSSL now and then
        // takes milliseconds over one (key generation, its caches), too long
        // for a scheduler.
        s.waiters.handshake = Some(waiter);
        drop(s);
        self.poller.kick(self.token);
        Ok(())
    }

    /// Gives a running handshake another waiter, who then gets its result
    /// and its callbacks' questions: `handshake_continue/3` may come from
    /// any process, not only the one the peer's hello was reported to.
    pub fn rewait_handshake(&self, waiter: H::Waiter) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.phase != Phase::Handshaking || s.waiters.handshake.is_none() {
            return Err(s.failure().cloned().unwrap_or(Failure::Closed));
        }
        s.waiters.handshake = Some(waiter);
        Ok(())
    }

    /// Has the poller run the connection (e.g. a paused handshake whose
    /// callback answer has come).
    pub fn kick(&self) {
        self.poller.kick(self.token);
    }

    /// Encrypts and sends `data` (framed by the packet option). Any number
    /// of processes may send at once; their data goes out in call order.
    pub fn send(
        &self,
        data: &[u8],
        waiter: impl FnOnce() -> H::Waiter,
    ) -> Result<SendOutcome, Failure> {
        let mut s = self.state.lock();
        s.check_sendable()?;
        let packet = s.send_framing();
        let header = packet
            .header(data.len())
            .map_err(|_| Failure::PacketTooLarge(data.len(), packet.max_payload().unwrap_or(0)))?;
        if s.send_must_wait() {
            // The backlog is too high already: the data waits with its
            // sender, and goes (in order) once the backlog drains. A sender
            // that gives up first (send_timeout) sends nothing.
            s.waiters
                .sends
                .push_back((waiter(), Some([&header[..], data].concat())));
            return Ok(SendOutcome::Wait);
        }
        if header.is_empty() {
            s.write_plain(data).map_err(Failure::Tls)?;
        } else {
            // The header goes in the same record as the data's start: a
            // record of its own would cost the peer a decryption (and a
            // 22-byte record) per packet.
            let first = data.len().min(MAX_RECORD_PLAINTEXT - header.len());
            s.tls
                .write(&[&header[..], &data[..first]].concat())
                .map_err(Failure::Tls)?;
            if first < data.len() {
                s.tls.write(&data[first..]).map_err(Failure::Tls)?;
            }
        }
        s.flush_sent(waiter)
    }

    /// Receives in passive mode. Data already here goes to `deliver` at once.
    pub fn recv(
        &self,
        len: usize,
        deliver: impl FnOnce(&SocketOptions, Result<&[u8], Failure>),
        waiter: impl FnOnce() -> H::Waiter,
    ) -> Result<RecvOutcome, &'static str> {
        let mut s = self.state.lock();
        if s.closed_by_user() {
            deliver(&s.options, Err(Failure::Closed));
            return Ok(RecvOutcome::Done);
        }
        if s.options.active.is_active() {
            if s.end_told() {
                deliver(&s.options, Err(Failure::Closed));
                return Ok(RecvOutcome::Done);
            }
            return Err("einval");
        }
        if s.waiters.recv.is_some() {
            return Err("ealready");
        }
        if s.phase == Phase::Established && s.reading != Reading::Ended && s.fd >= 0 {
            // Read what the socket has now, saving a trip through the poller.
            // A short read may stop early: the end of input, if it is
            // already here, still raises an event for the poller.
            s.pump_input(INLINE_READ_BUDGET, false);
            if s.tls.is_datagram() {
                // What reading answered goes out now: a DTLS peer that sent
                // its last flight again gets ours again (ours was lost).
                s.flush_datagrams();
            }
        }
        let options = s.options;
        match s.take_packet(len) {
            Taken::Packet(range, end) => {
                deliver(&options, Ok(&s.plain[range.clone()]));
                s.options.packet = options.packet.after(&s.plain[range]);
                s.consume(end);
                s.resume_reading(&self.poller, self.token);
                Ok(RecvOutcome::Done)
            }
            Taken::Failed(failure) => {
                deliver(&options, Err(failure));
                // The poller releases the socket of a finished connection.
                self.poller.kick(self.token);
                Ok(RecvOutcome::Done)
            }
            Taken::Nothing => {
                if s.phase == Phase::Idle || s.phase == Phase::Handshaking {
                    deliver(&options, Err(Failure::Closed));
                    return Ok(RecvOutcome::Done);
                }
                s.waiters.recv = Some((waiter(), len));
                s.resume_reading(&self.poller, self.token);
                Ok(RecvOutcome::Wait)
            }
        }
    }

    /// Withdraws a recv waiter; false if it was already answered.
    pub fn cancel_recv(&self, is_it: impl Fn(&H::Waiter) -> bool) -> bool {
        let mut s = self.state.lock();
        match &s.waiters.recv {
            Some((w, _)) if is_it(w) => {
                s.waiters.recv = None;
                true
            }
            _ => false,
        }
    }

    /// Forgets a send waiter (its caller timed out); false if already answered.
    pub fn cancel_send(&self, is_it: impl Fn(&H::Waiter) -> bool) -> bool {
        let mut s = self.state.lock();
        let before = s.waiters.sends.len();
        s.waiters.sends.retain(|(w, _)| !is_it(w));
        s.waiters.sends.len() != before
    }

    pub fn options(&self) -> Result<SocketOptions, Failure> {
        let s = self.state.lock();
        if s.closed_by_user() {
            return Err(Failure::Closed);
        }
        Ok(s.options)
    }

    /// Changes the emulated options; data due in the new mode is delivered now.
    /// `change` returns whether `{ssl_passive, S}` is due, or None to
    /// refuse the change (nothing is applied then: `Ok(false)`).
    pub fn set_options(
        &self,
        change: impl FnOnce(&mut SocketOptions) -> Option<bool>,
        outbox: &mut dyn Outbox<H>,
    ) -> Result<bool, Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() {
            return Err(Failure::Closed);
        }
        let mut options = s.options;
        let Some(passive_due) = change(&mut options) else {
            return Ok(false);
        };
        s.options = options;
        s.undirect();
        if passive_due {
            outbox.to_owner(&s.owner, &options, Message::Passive);
        }
        if s.options.active.is_active() {
            s.deliver(outbox);
            s.resume_reading(&self.poller, self.token);
            if s.end_told() {
                // The end was just told: the poller lets the socket go.
                self.poller.kick(self.token);
            }
        }
        Ok(true)
    }

    pub fn update_owner<R>(&self, f: impl FnOnce(&mut H::Owner) -> R) -> R {
        f(&mut self.state.lock().owner)
    }

    pub fn with_owner<R>(&self, f: impl FnOnce(&H::Owner) -> R) -> R {
        f(&self.state.lock().owner)
    }

    /// Downgrade to TCP (OTP's `close/2` with a new owner): queues our
    /// close_notify if it is not sent yet, then hands the socket itself
    /// over with the ciphertext not yet sent and the ciphertext received
    /// but not decrypted; the driver no longer touches the socket (and
    /// delivers nothing more: it is closed for the driver). The caller
    /// finishes the close_notify exchange with `with_tls_mut`.
    pub fn detach(&self, outbox: &mut dyn Outbox<H>) -> Result<Detached, Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() || s.fd < 0 {
            return Err(Failure::Closed);
        }
        if s.phase != Phase::Established {
            return Err(Failure::Posix("enotconn"));
        }
        s.answer_waiters(outbox, Failure::Closed);
        if s.outgoing == Outgoing::Open {
            s.outgoing = Outgoing::Shut;
            s.tls.close();
        }
        let fd = s.take_socket(self);
        s.discard_plain();
        let unsent = s.tls.output().to_vec();
        s.tls.consume_output(unsent.len());
        let detached = Detached {
            fd,
            unsent,
            buffered: s.tls.take_buffered_input(),
            peer_closed: s.tls.peer_closed(),
        };
        // Closed for the driver: no more I/O, no message to the owner.
        s.phase = Phase::Closing;
        s.finish_closing(self);
        Ok(detached)
    }

    /// Hands the established connection's socket over to another reader
    /// and writer (the distribution carrier's port driver), which from
    /// then on does all the I/O through `with_tls_mut`: the poller
    /// forgets the connection and the owner gets no more messages. Gives
    /// the socket (now the caller's to close) and the plaintext already
    /// decrypted but not handed out; ciphertext not yet sent or not yet
    /// decrypted stays in the TLS state.
    pub fn hand_over(&self) -> Result<HandedOver, Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() || s.fd < 0 || s.input_ended() {
            return Err(Failure::Closed);
        }
        if s.phase != Phase::Established || s.direct.is_some() || s.waiters.any() {
            return Err(Failure::Posix("ebusy"));
        }
        let fd = s.take_socket(self);
        let plaintext = s.buffered().to_vec();
        s.discard_plain();
        s.phase = Phase::HandedOver;
        drop(s);
        self.poller.remove(self.token);
        Ok(HandedOver { fd, plaintext })
    }

    /// Runs `f` on the TLS state of a detached connection (see `detach`).
    pub fn with_tls_mut<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        f(&mut self.state.lock().tls)
    }

    /// Runs `f` on the TLS state (for connection information), also
    /// once handed over. Asked before the handshake, the connection is
    /// made here.
    pub fn with_tls<R>(&self, f: impl FnOnce(&Connection) -> R) -> Result<R, Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() && s.phase != Phase::HandedOver {
            return Err(Failure::Closed);
        }
        Ok(f(s.tls.make().map_err(Failure::Tls)?))
    }

    /// The handshake is done and the connection is open (or handed over,
    /// whose TLS state can still be asked about).
    pub fn is_established(&self) -> bool {
        matches!(
            self.state.lock().phase,
            Phase::Established | Phase::HandedOver
        )
    }

    /// Sets a kernel socket option (`nodelay`, `sndbuf`...).
    pub fn set_sockopt(&self, opt: SockOpt) -> Result<(), Failure> {
        let s = self.state.lock();
        if s.fd < 0 || s.closed_by_user() {
            return Err(Failure::Closed);
        }
        inet::set(s.fd, opt).map_err(|e| Failure::Posix(crate::posix::error_name(&e)))
    }

    pub fn get_sockopt(&self, like: SockOpt) -> Result<SockOpt, Failure> {
        let s = self.state.lock();
        if s.fd < 0 || s.closed_by_user() {
            return Err(Failure::Closed);
        }
        inet::get(s.fd, like).map_err(|e| Failure::Posix(crate::posix::error_name(&e)))
    }

    /// Ciphertext counters, as `getstat` reports them.
    pub fn stats(&self) -> Result<Stats, Failure> {
        let s = self.state.lock();
        if s.closed_by_user() {
            return Err(Failure::Closed);
        }
        Ok(Stats {
            send_pend: s.tls.output().len() as u64,
            ..s.stats
        })
    }

    /// Starts a renegotiation; `waiter` is answered when it completes.
    pub fn renegotiate(&self, waiter: H::Waiter) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.phase != Phase::Established || s.fd < 0 || s.input_ended() {
            return Err(Failure::Closed);
        }
        if s.waiters.renegotiate.is_some() {
            return Err(Failure::Posix("ealready"));
        }
        s.tls.renegotiate().map_err(Failure::Tls)?;
        s.flush()?;
        s.waiters.renegotiate = Some(waiter);
        drop(s);
        self.poller.kick(self.token);
        Ok(())
    }

    /// TLS 1.3 `update_keys/2`: a KeyUpdate goes out at once.
    pub fn update_keys(&self, peer_too: bool) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.phase != Phase::Established || s.fd < 0 || s.outgoing == Outgoing::Failed {
            return Err(Failure::Closed);
        }
        s.tls.update_keys(peer_too).map_err(Failure::Tls)?;
        s.flush()
    }

    pub fn sockname(&self) -> Result<SocketAddr, Failure> {
        self.addr(socket::sockname)
    }

    pub fn peername(&self) -> Result<SocketAddr, Failure> {
        self.addr(socket::peername)
    }

    fn addr(&self, call: fn(RawFd) -> io::Result<SocketAddr>) -> Result<SocketAddr, Failure> {
        let s = self.state.lock();
        if s.fd < 0 || s.closed_by_user() {
            return Err(Failure::Closed);
        }
        call(s.fd).map_err(|e| Failure::Posix(crate::posix::error_name(&e)))
    }

    /// `close` because a send timed out with `send_timeout_close`: later
    /// sends answer `enotconn`.
    pub fn close_timed_out(&self, outbox: &mut dyn Outbox<H>) {
        self.state.lock().closed_on_send_timeout = true;
        self.close(outbox);
    }

    /// Closes for the user: close_notify, flush, then release the socket.
    /// No message reaches the owner afterwards; blocked callers get `closed`.
    /// The flush and the socket's release run on the poller: they are
    /// system calls (the kernel's TCP teardown among them) the caller's
    /// scheduler need not wait for.
    pub fn close(&self, outbox: &mut dyn Outbox<H>) {
        let mut s = self.state.lock();
        if s.closed_by_user() {
            if s.fd < 0 {
                drop(s);
                self.poller.remove(self.token);
            }
            return;
        }
        s.answer_waiters(outbox, Failure::Closed);
        let writable = s.phase == Phase::Established && s.fd >= 0;
        if writable && s.outgoing == Outgoing::Open || s.outgoing == Outgoing::Failed {
            s.tls.close();
        }
        s.phase = Phase::CloseRequested;
        drop(s);
        self.poller.kick(self.token);
    }

    /// `shutdown/2`: `write` sends close_notify and FIN, `read` drops input.
    pub fn shutdown(&self, read: bool, write: bool) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() {
            return Err(Failure::Closed);
        }
        if s.fd < 0 || s.phase != Phase::Established {
            return Err(Failure::Posix("enotconn"));
        }
        if read {
            if s.incoming == Incoming::Open {
                s.incoming = Incoming::Dropped;
            }
            s.discard_plain();
        }
        if write && s.outgoing == Outgoing::Open {
            s.outgoing = Outgoing::Shut;
            s.tls.close();
            let _ = s.flush();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
