//! A TLS connection on a non-blocking socket, run by a poller thread.
//!
//! All socket semantics live here once: the receive buffer, packet framing,
//! active modes, passive receive with a waiter, send back-pressure, and
//! close/shutdown. Who gets messages and how they are encoded is up to the
//! [`Host`] (the NIF layer).

use super::inet::{self, SockOpt, Stats};
use super::options::SocketOptions;
use super::packet::{FrameError, Packet};
use super::poller::{Pollable, Poller, Ready, CLOSE_LINGER};
use super::socket;
use crate::engine::{Connection, Error, Progress, ReadOutcome};
use parking_lot::Mutex;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

/// The front end's types for who is told what.
pub trait Host: Sized + Send + Sync + 'static {
    /// The controlling process (and whatever is needed to name the socket).
    type Owner: Send;
    /// A caller blocked in handshake, recv or send.
    type Waiter: Send;

    /// Runs `f` with the outbox of the current poller thread.
    fn with_poller_outbox<R>(f: impl FnOnce(&mut dyn Outbox<Self>) -> R) -> R;

    /// Runs a handshake step for `waiter`, so that application callbacks
    /// made during it know whom to ask.
    fn during_handshake<R>(_waiter: Option<&Self::Waiter>, step: impl FnOnce() -> R) -> R {
        step()
    }
}

/// Messages for the controlling process in active mode.
#[derive(Debug)]
pub enum Message<'a> {
    Data(&'a [u8]),
    /// `{active, N}` ran out.
    Passive,
    Closed,
    Error(&'a Failure),
}

/// Answers to a blocked caller.
#[derive(Debug)]
pub enum Reply<'a> {
    Handshake(Result<(), Failure>),
    Recv(Result<&'a [u8], Failure>),
    Send(Result<(), Failure>),
}

/// Why an operation failed, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Closed,
    Tls(Error),
    /// A socket error by its POSIX name.
    Posix(&'static str),
    /// A packet over `packet_size` (or malformed): all unread bytes.
    InvalidPacket(Vec<u8>),
    /// A packet to send too big for its length header: (size, largest).
    PacketTooLarge(usize, usize),
}

impl From<FrameError> for Failure {
    fn from(e: FrameError) -> Failure {
        match e {
            FrameError::TooBig | FrameError::Invalid => Failure::InvalidPacket(Vec::new()),
        }
    }
}

/// Where a connection's events go. The driver calls it with the connection
/// locked, so events of one connection are delivered in order.
pub trait Outbox<H: Host> {
    fn to_owner(&mut self, owner: &H::Owner, options: &SocketOptions, message: Message<'_>);
    fn reply(&mut self, waiter: H::Waiter, options: &SocketOptions, reply: Reply<'_>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Adopted, handshake not started (server sockets after accept).
    Idle,
    Handshaking,
    Established,
    /// The user closed; the last bytes are being flushed.
    Closing,
    Closed,
}

/// The most one read(2) takes...
const READ_CHUNK: usize = 60 * 1024;
/// ...and the first one after a wake-up: a full TLS record with its header
/// and tag.
const FIRST_READ: usize = 16 * 1024 + 512;
/// Ciphertext read per wake-up before giving other connections a turn.
const READ_BUDGET: usize = 512 * 1024;
/// Ciphertext a passive `recv` reads itself, on the caller's scheduler.
const INLINE_READ_BUDGET: usize = 128 * 1024;
/// Largest TLS record payload: the unit of decryption.
const RECORD: usize = 16 * 1024;
/// Undelivered plaintext above which the socket is no longer read.
const PLAIN_HIGH: usize = 256 * 1024;
/// Unsent ciphertext above which `send` makes its caller wait...
const SEND_HIGH: usize = 512 * 1024;
/// ...until it is below this.
const SEND_LOW: usize = 128 * 1024;

struct State<H: Host> {
    fd: RawFd,
    tls: Connection,
    phase: Phase,
    owner: H::Owner,
    options: SocketOptions,
    /// Decrypted plaintext not yet handed out is `plain[plain_pos..]`;
    /// decrypts go into its spare capacity.
    plain: Vec<u8>,
    plain_pos: usize,
    handshake_waiter: Option<H::Waiter>,
    recv_waiter: Option<(H::Waiter, usize)>,
    send_waiter: Option<H::Waiter>,
    /// A caller of `renegotiate`, answered when the new handshake is done.
    renegotiate_waiter: Option<H::Waiter>,
    /// No more ciphertext will come: end of stream or a socket error.
    eof: bool,
    /// Writing to the socket failed: the peer is gone.
    write_failed: bool,
    /// No more plaintext will come: the peer closed or the connection failed.
    input_done: bool,
    /// Why input ended, when it was not a clean close.
    failure: Option<Failure>,
    /// `failure` was given to the application once; later reads say closed.
    failure_reported: bool,
    /// `{ssl_closed, S}` (or the error) has been given to the owner.
    end_reported: bool,
    /// Reading stopped because too much plaintext waits.
    read_paused: bool,
    /// The user shut down writing (close_notify queued, FIN after flush).
    write_shut: bool,
    /// The user shut down reading: incoming plaintext is dropped.
    read_shut: bool,
    stats: Stats,
}

pub struct Conn<H: Host> {
    token: u64,
    poller: Arc<Poller>,
    state: Mutex<State<H>>,
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
    /// Takes over a connected socket (the caller keeps and closes its own fd).
    pub fn adopt(
        fd: RawFd,
        tls: Connection,
        owner: H::Owner,
        options: SocketOptions,
    ) -> io::Result<Arc<Conn<H>>> {
        let fd = socket::adopt(fd)?;
        let conn = Arc::new(Conn {
            token: Poller::new_token(),
            poller: Poller::pick(),
            state: Mutex::new(State {
                fd,
                tls,
                phase: Phase::Idle,
                owner,
                options,
                plain: Vec::new(),
                plain_pos: 0,
                handshake_waiter: None,
                recv_waiter: None,
                send_waiter: None,
                renegotiate_waiter: None,
                eof: false,
                write_failed: false,
                input_done: false,
                failure: None,
                failure_reported: false,
                end_reported: false,
                read_paused: false,
                write_shut: false,
                read_shut: false,
                stats: Stats::default(),
            }),
        });
        conn.poller.add(conn.token, fd, conn.clone());
        Ok(conn)
    }

    /// Replaces the TLS state before the handshake (e.g. extra options).
    pub fn replace_tls(&self, tls: Connection) -> Result<(), Failure> {
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
            return Err(s.failure.clone().unwrap_or(Failure::Closed));
        }
        s.phase = Phase::Handshaking;
        // Even the ClientHello is made on the poller: OpenSSL now and then
        // takes milliseconds over one (key generation, its caches), too long
        // for a scheduler.
        s.handshake_waiter = Some(waiter);
        drop(s);
        self.poller.kick(self.token);
        Ok(())
    }

    /// Has the poller run the connection (e.g. a paused handshake whose
    /// callback answer has come).
    pub fn kick(&self) {
        self.poller.kick(self.token);
    }

    /// Encrypts and sends `data` (framed by the packet option).
    pub fn send(
        &self,
        data: &[u8],
        waiter: impl FnOnce() -> H::Waiter,
    ) -> Result<SendOutcome, Failure> {
        let mut s = self.state.lock();
        let peer_gone = s.input_done && s.options.exit_on_close;
        if s.phase != Phase::Established || s.fd < 0 || s.write_shut || s.write_failed || peer_gone
        {
            return Err(Failure::Closed);
        }
        let packet = s.options.packet;
        let header = packet
            .header(data.len())
            .map_err(|_| Failure::PacketTooLarge(data.len(), packet.max_payload().unwrap_or(0)))?;
        if !header.is_empty() {
            s.tls.write(&header).map_err(Failure::Tls)?;
        }
        s.tls.write(data).map_err(Failure::Tls)?;
        s.flush()?;
        if s.tls.output().len() > SEND_HIGH {
            s.send_waiter = Some(waiter());
            return Ok(SendOutcome::Wait);
        }
        Ok(SendOutcome::Done)
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
            if s.input_done && s.end_reported {
                deliver(&s.options, Err(Failure::Closed));
                return Ok(RecvOutcome::Done);
            }
            return Err("einval");
        }
        if s.recv_waiter.is_some() {
            return Err("ealready");
        }
        if s.phase == Phase::Established && !s.eof && s.fd >= 0 {
            // Read what the socket has now, saving a trip through the poller.
            // A short read may stop early: the end of input, if it is
            // already here, still raises an event for the poller.
            s.pump_input(INLINE_READ_BUDGET, false);
        }
        let options = s.options;
        match s.take_packet(len) {
            Taken::Packet(range, end) => {
                deliver(&options, Ok(&s.plain[range.clone()]));
                s.options.packet = options.packet.after(&s.plain[range]);
                s.consume(end);
                s.resume_reading(self);
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
                s.recv_waiter = Some((waiter(), len));
                s.resume_reading(self);
                Ok(RecvOutcome::Wait)
            }
        }
    }

    /// Withdraws a recv waiter; false if it was already answered.
    pub fn cancel_recv(&self, is_it: impl Fn(&H::Waiter) -> bool) -> bool {
        let mut s = self.state.lock();
        match &s.recv_waiter {
            Some((w, _)) if is_it(w) => {
                s.recv_waiter = None;
                true
            }
            _ => false,
        }
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
        if passive_due {
            outbox.to_owner(&s.owner, &options, Message::Passive);
        }
        if s.options.active.is_active() {
            s.deliver(outbox);
            s.resume_reading(self);
        }
        Ok(true)
    }

    pub fn update_owner<R>(&self, f: impl FnOnce(&mut H::Owner) -> R) -> R {
        f(&mut self.state.lock().owner)
    }

    pub fn with_owner<R>(&self, f: impl FnOnce(&H::Owner) -> R) -> R {
        f(&self.state.lock().owner)
    }

    /// Runs `f` on the TLS state (for connection information).
    pub fn with_tls<R>(&self, f: impl FnOnce(&Connection) -> R) -> Result<R, Failure> {
        let s = self.state.lock();
        if matches!(s.phase, Phase::Closing | Phase::Closed) {
            return Err(Failure::Closed);
        }
        Ok(f(&s.tls))
    }

    pub fn is_established(&self) -> bool {
        self.state.lock().phase == Phase::Established
    }

    /// Sets a kernel socket option (`nodelay`, `sndbuf`...).
    pub fn set_sockopt(&self, opt: SockOpt) -> Result<(), Failure> {
        let s = self.state.lock();
        if s.fd < 0 {
            return Err(Failure::Closed);
        }
        inet::set(s.fd, opt).map_err(|e| Failure::Posix(socket::posix_name(&e)))
    }

    pub fn get_sockopt(&self, like: SockOpt) -> Result<SockOpt, Failure> {
        let s = self.state.lock();
        if s.fd < 0 {
            return Err(Failure::Closed);
        }
        inet::get(s.fd, like).map_err(|e| Failure::Posix(socket::posix_name(&e)))
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
        if s.phase != Phase::Established || s.fd < 0 || s.input_done {
            return Err(Failure::Closed);
        }
        if s.renegotiate_waiter.is_some() {
            return Err(Failure::Posix("ealready"));
        }
        s.tls.renegotiate().map_err(Failure::Tls)?;
        s.flush()?;
        s.renegotiate_waiter = Some(waiter);
        drop(s);
        self.poller.kick(self.token);
        Ok(())
    }

    /// TLS 1.3 `update_keys/2`: a KeyUpdate goes out at once.
    pub fn update_keys(&self, peer_too: bool) -> Result<(), Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() || s.phase != Phase::Established || s.fd < 0 || s.write_failed {
            return Err(Failure::Closed);
        }
        s.tls.update_keys(peer_too).map_err(Failure::Tls)?;
        s.flush()
    }

    /// Forgets a send waiter (its caller timed out); false if already answered.
    pub fn cancel_send(&self, is_it: impl Fn(&H::Waiter) -> bool) -> bool {
        let mut s = self.state.lock();
        match &s.send_waiter {
            Some(w) if is_it(w) => {
                s.send_waiter = None;
                true
            }
            _ => false,
        }
    }

    pub fn sockname(&self) -> Result<SocketAddr, Failure> {
        self.addr(socket::sockname)
    }

    pub fn peername(&self) -> Result<SocketAddr, Failure> {
        self.addr(socket::peername)
    }

    fn addr(&self, call: fn(RawFd) -> io::Result<SocketAddr>) -> Result<SocketAddr, Failure> {
        let s = self.state.lock();
        if s.fd < 0 {
            return Err(Failure::Closed);
        }
        call(s.fd).map_err(|e| Failure::Posix(socket::posix_name(&e)))
    }

    /// Closes for the user: close_notify, flush, then release the socket.
    /// No message reaches the owner afterwards; blocked callers get `closed`.
    pub fn close(&self, outbox: &mut dyn Outbox<H>) {
        let mut s = self.state.lock();
        if matches!(s.phase, Phase::Closing | Phase::Closed) && s.fd < 0 {
            drop(s);
            self.poller.remove(self.token);
            return;
        }
        s.end_reported = true;
        s.answer_waiters(outbox, Failure::Closed);
        if s.phase == Phase::Established && s.fd >= 0 && !s.write_shut || s.write_failed {
            s.tls.close();
        }
        s.phase = Phase::Closing;
        let _ = s.flush();
        if s.tls.output().is_empty() || s.fd < 0 {
            s.release_socket(&self.poller);
            s.phase = Phase::Closed;
            let paused = s.tls.is_paused();
            drop(s);
            if paused {
                // Only the poller may finish the paused handshake.
                self.poller.kick(self.token);
            } else {
                self.poller.remove(self.token);
            }
        } else {
            drop(s);
            self.poller
                .deadline(self.token, Instant::now() + CLOSE_LINGER);
        }
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
            s.read_shut = true;
            s.discard_plain();
        }
        if write && !s.write_shut {
            s.write_shut = true;
            s.tls.close();
            let _ = s.flush();
            if s.tls.output().is_empty() {
                let _ = socket::shutdown(s.fd, libc::SHUT_WR);
            }
        }
        Ok(())
    }
}

enum Taken {
    /// The packet's bytes and where the next one starts (absolute indexes).
    Packet(std::ops::Range<usize>, usize),
    Failed(Failure),
    Nothing,
}

impl<H: Host> State<H> {
    fn closed_by_user(&self) -> bool {
        matches!(self.phase, Phase::Closing | Phase::Closed) && self.end_reported
    }

    fn buffered(&self) -> &[u8] {
        &self.plain[self.plain_pos..]
    }

    /// Drops `end` bytes (absolute index) from the plaintext buffer.
    fn consume(&mut self, end: usize) {
        self.plain_pos = end;
        if self.plain_pos >= self.plain.len() {
            self.discard_plain();
        }
    }

    /// The next packet for a passive recv of `len` (raw mode only) bytes,
    /// as an absolute range into `plain`.
    fn take_packet(&mut self, len: usize) -> Taken {
        let buf = self.buffered();
        let frame = match self.options.packet {
            Packet::Raw if len > 0 => {
                if buf.len() >= len {
                    Ok(Some(super::packet::Frame {
                        start: 0,
                        len,
                        consumed: len,
                    }))
                } else {
                    Ok(None)
                }
            }
            packet => packet.next_frame(buf, self.options.packet_size),
        };
        match frame {
            Ok(Some(f)) => {
                let start = self.plain_pos + f.start;
                Taken::Packet(start..start + f.len, self.plain_pos + f.consumed)
            }
            Err(_) => Taken::Failed(self.invalid_packet()),
            Ok(None) if self.input_done => {
                // What is left can never complete a packet: it goes.
                self.discard_plain();
                Taken::Failed(self.report_failure())
            }
            Ok(None) => Taken::Nothing,
        }
    }

    /// A packet over `packet_size` (or malformed) ends the connection, as
    /// in OTP's ssl; the error carries every unread byte.
    fn invalid_packet(&mut self) -> Failure {
        let failure = Failure::InvalidPacket(self.buffered().to_vec());
        self.discard_plain();
        self.input_done = true;
        self.failure = Some(failure.clone());
        self.failure_reported = true;
        failure
    }

    /// Why reading ended: the failure the first time, `closed` after.
    fn report_failure(&mut self) -> Failure {
        if self.failure_reported {
            return Failure::Closed;
        }
        self.failure_reported = true;
        self.failure.clone().unwrap_or(Failure::Closed)
    }

    fn discard_plain(&mut self) {
        self.plain_pos = 0;
        self.plain.clear();
    }

    /// Sends buffered ciphertext; on a socket error, input ends too.
    fn flush(&mut self) -> Result<(), Failure> {
        while self.fd >= 0 && !self.tls.output().is_empty() {
            match socket::write(self.fd, self.tls.output()) {
                Ok(n) => {
                    self.stats.sent(n);
                    self.tls.consume_output(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let failure =
                        if matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)) {
                            Failure::Closed
                        } else {
                            Failure::Posix(socket::posix_name(&e))
                        };
                    let out = self.tls.output().len();
                    self.tls.consume_output(out);
                    // The peer is gone: what it sent before still gets read.
                    self.write_failed = true;
                    self.end_of_stream();
                    return Err(failure);
                }
            }
        }
        if self.write_shut && self.fd >= 0 && self.tls.output().is_empty() {
            let _ = socket::shutdown(self.fd, libc::SHUT_WR);
        }
        Ok(())
    }

    /// Reads ciphertext and decrypts it, up to `budget` bytes. Stops at a
    /// short read (the socket is empty: new data raises a new event) unless
    /// `to_the_end`, when it reads on to EAGAIN or the end of the stream.
    /// Returns true if the budget ran out with the socket maybe still readable.
    fn pump_input(&mut self, budget: usize, to_the_end: bool) -> bool {
        let mut total = 0;
        loop {
            if self.fd < 0 || self.eof || self.read_paused {
                return false;
            }
            if total >= budget {
                return true;
            }
            let fd = self.fd;
            // The first read of a wake-up is one record's worth: most
            // wake-ups bring less, and a small buffer is cheaper to get and
            // give back (a chunk of 64 KiB or more makes free() consolidate).
            let chunk = if total == 0 { FIRST_READ } else { READ_CHUNK };
            let drained = match self.tls.receive_with(chunk, |buf| socket::read(fd, buf)) {
                Ok(0) => {
                    self.end_of_stream();
                    return false;
                }
                Ok(n) => {
                    self.stats.received(n);
                    total += n;
                    n < chunk && !to_the_end
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.decrypt();
                    return false;
                }
                Err(_) => {
                    // A reset: end of input, as OTP reports a closed socket.
                    self.end_of_stream();
                    return false;
                }
            };
            if self.phase == Phase::Established {
                self.decrypt();
                if self.undelivered_too_much() {
                    self.read_paused = true;
                    return false;
                }
                if drained {
                    return false;
                }
            } else {
                return true;
            }
        }
    }

    /// No more ciphertext: decrypt what is buffered; the TLS layer then
    /// reports the end of the plaintext stream.
    fn end_of_stream(&mut self) {
        self.eof = true;
        self.tls.receive_eof();
        self.decrypt();
    }

    /// Too much plaintext waits and nobody is taking it: stop reading.
    /// (A waiting recv or active delivery may need more bytes to complete a
    /// large packet, so then reading goes on.)
    fn undelivered_too_much(&self) -> bool {
        self.plain.len() - self.plain_pos > PLAIN_HIGH
            && self.recv_waiter.is_none()
            && !self.options.active.is_active()
    }

    /// Decrypts buffered ciphertext into `plain`.
    fn decrypt(&mut self) {
        if self.phase != Phase::Established {
            return;
        }
        loop {
            if self.input_done {
                return;
            }
            if self.plain_pos > 0 && self.plain.capacity() - self.plain.len() < RECORD {
                // Move the undelivered tail to the front instead of growing.
                self.plain.drain(..self.plain_pos);
                self.plain_pos = 0;
            }
            let len = self.plain.len();
            match self.tls.read_onto(&mut self.plain, RECORD) {
                Ok(ReadOutcome::Data(_)) => {
                    if self.read_shut {
                        self.plain.truncate(len);
                    }
                }
                Ok(ReadOutcome::WouldBlock) => return,
                Ok(ReadOutcome::Closed) => {
                    self.input_done = true;
                    return;
                }
                Err(e) => {
                    self.input_done = true;
                    self.failure = Some(Failure::Tls(e));
                    return;
                }
            }
        }
    }

    /// Hands out plaintext by the active mode, or to a waiting recv.
    fn deliver(&mut self, outbox: &mut dyn Outbox<H>) {
        if self.phase != Phase::Established || self.end_reported {
            return;
        }
        loop {
            let options = self.options;
            if options.active.is_active() {
                let frame = options
                    .packet
                    .next_frame(self.buffered(), options.packet_size);
                match frame {
                    Ok(Some(f)) => {
                        let start = self.plain_pos + f.start;
                        let packet = &self.plain[start..start + f.len];
                        outbox.to_owner(&self.owner, &options, Message::Data(packet));
                        self.options.packet = options.packet.after(packet);
                        self.consume(self.plain_pos + f.consumed);
                        let (active, passive) = options.active.after_message();
                        self.options.active = active;
                        if passive {
                            outbox.to_owner(&self.owner, &self.options, Message::Passive);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.invalid_packet();
                        self.failure_reported = false;
                        break;
                    }
                }
            } else if let Some((_, len)) = self.recv_waiter {
                match self.take_packet(len) {
                    Taken::Packet(range, end) => {
                        let (waiter, _) = self.recv_waiter.take().expect("checked");
                        let packet = &self.plain[range];
                        outbox.reply(waiter, &options, Reply::Recv(Ok(packet)));
                        self.options.packet = options.packet.after(packet);
                        self.consume(end);
                    }
                    Taken::Failed(failure) => {
                        let (waiter, _) = self.recv_waiter.take().expect("checked");
                        outbox.reply(waiter, &options, Reply::Recv(Err(failure)));
                        break;
                    }
                    Taken::Nothing => break,
                }
            } else {
                break;
            }
        }
        if self.input_done && self.options.active.is_active() && !self.end_reported {
            // Anything left is an incomplete packet the peer will never finish.
            self.end_reported = true;
            self.discard_plain();
            let failure = self.report_failure();
            match failure {
                Failure::Closed => {}
                ref other => outbox.to_owner(&self.owner, &self.options, Message::Error(other)),
            }
            // A TLS alert or an invalid packet is the end; anything else
            // (a reset...) is followed by the close.
            if !matches!(failure, Failure::Tls(_) | Failure::InvalidPacket(_)) {
                outbox.to_owner(&self.owner, &self.options, Message::Closed);
            }
        }
    }

    /// Lets the poller read again once the plaintext backlog has shrunk.
    fn resume_reading(&mut self, conn: &Conn<H>) {
        if self.read_paused && !self.undelivered_too_much() {
            self.read_paused = false;
            conn.poller.kick(conn.token);
        }
    }

    fn answer_waiters(&mut self, outbox: &mut dyn Outbox<H>, failure: Failure) {
        let options = self.options;
        if let Some(w) = self.handshake_waiter.take() {
            outbox.reply(w, &options, Reply::Handshake(Err(failure.clone())));
        }
        if let Some((w, _)) = self.recv_waiter.take() {
            outbox.reply(w, &options, Reply::Recv(Err(failure.clone())));
        }
        if let Some(w) = self.send_waiter.take() {
            outbox.reply(w, &options, Reply::Send(Err(failure.clone())));
        }
        if let Some(w) = self.renegotiate_waiter.take() {
            outbox.reply(w, &options, Reply::Send(Err(failure)));
        }
    }

    fn release_socket(&mut self, poller: &Poller) {
        if self.fd >= 0 {
            poller.unwatch(self.fd);
            socket::close(self.fd);
            self.fd = -1;
        }
    }

    /// One round of work on the poller thread.
    fn run(&mut self, conn: &Conn<H>, outbox: &mut dyn Outbox<H>, ready: Ready) -> bool {
        let mut again = false;
        match self.phase {
            Phase::Idle => return false,
            Phase::Closed => {
                if self.tls.is_paused() {
                    // Closed while its handshake waited for a callback.
                    self.tls.abandon();
                    conn.poller.remove(conn.token);
                }
                return false;
            }
            Phase::Closing => {
                self.tls.abandon();
                let _ = self.flush();
                if self.tls.output().is_empty() || self.fd < 0 {
                    self.release_socket(&conn.poller);
                    self.phase = Phase::Closed;
                    conn.poller.remove(conn.token);
                }
                return false;
            }
            Phase::Handshaking => {
                again = self.pump_input(READ_BUDGET, ready.ending);
                let tls = &mut self.tls;
                match H::during_handshake(self.handshake_waiter.as_ref(), || tls.handshake()) {
                    Ok(Progress::Pending) => {
                        let _ = self.flush();
                        if self.eof {
                            self.fail_handshake(conn, outbox, Failure::Closed);
                        }
                        return again;
                    }
                    Ok(Progress::Done) => {
                        self.phase = Phase::Established;
                        if let Some(w) = self.handshake_waiter.take() {
                            outbox.reply(w, &self.options, Reply::Handshake(Ok(())));
                        }
                        self.decrypt();
                    }
                    Err(e) => {
                        let failure = match e {
                            Error::Closed => Failure::Closed,
                            e => Failure::Tls(e),
                        };
                        self.fail_handshake(conn, outbox, failure);
                        return false;
                    }
                }
            }
            Phase::Established => {}
        }
        let _ = self.flush();
        again |= self.pump_input(READ_BUDGET, ready.ending);
        // Reading may have produced output (key updates, renegotiation).
        if let Err(failure) = self.flush() {
            self.failure.get_or_insert(failure);
        }
        if let Some(w) = self.send_waiter.take() {
            if self.tls.output().len() <= SEND_LOW {
                outbox.reply(w, &self.options, Reply::Send(Ok(())));
            } else if self.write_failed || self.fd < 0 {
                outbox.reply(w, &self.options, Reply::Send(Err(Failure::Closed)));
            } else {
                self.send_waiter = Some(w);
            }
        }
        if self.renegotiate_waiter.is_some() {
            let result = match &self.failure {
                Some(failure) => Some(Err(failure.clone())),
                None if self.input_done => Some(Err(Failure::Closed)),
                None if !self.tls.renegotiation_pending() => Some(Ok(())),
                None => None,
            };
            if let Some(result) = result {
                if let Some(w) = self.renegotiate_waiter.take() {
                    outbox.reply(w, &self.options, Reply::Send(result));
                }
            }
        }
        self.deliver(outbox);
        if self.read_paused && !self.undelivered_too_much() {
            // Active delivery drained the backlog: read on, soon.
            self.read_paused = false;
            again = true;
        }
        let keep_writable = !self.options.exit_on_close && !self.write_failed;
        if self.input_done && self.fd >= 0 && self.tls.output().is_empty() && !keep_writable {
            // The peer is gone: answer with close_notify and let the socket go.
            if self.failure.is_none() && !self.write_shut {
                self.tls.close();
                let _ = self.flush();
            }
            if let Some(w) = self.send_waiter.take() {
                outbox.reply(w, &self.options, Reply::Send(Err(Failure::Closed)));
            }
            self.release_socket(&conn.poller);
        }
        if !again && self.plain_pos == self.plain.len() {
            // Nothing buffered: an idle connection keeps no buffers.
            self.plain = Vec::new();
            self.plain_pos = 0;
            self.tls.release_buffers();
        }
        again
    }

    fn fail_handshake(&mut self, conn: &Conn<H>, outbox: &mut dyn Outbox<H>, failure: Failure) {
        // A handshake paused for a callback ends here, on its poller.
        self.tls.abandon();
        // The alert (if any) goes out before the socket is released.
        let _ = self.flush();
        self.input_done = true;
        self.failure = Some(failure.clone());
        self.end_reported = true;
        if let Some(w) = self.handshake_waiter.take() {
            outbox.reply(w, &self.options, Reply::Handshake(Err(failure)));
        }
        self.phase = Phase::Closed;
        self.release_socket(&conn.poller);
    }
}

impl<H: Host> Pollable for Conn<H> {
    fn ready(&self, ready: Ready) -> bool {
        H::with_poller_outbox(|outbox| {
            let mut s = self.state.lock();
            s.run(self, outbox, ready)
        })
    }

    fn expired(&self) {
        let mut s = self.state.lock();
        if s.phase == Phase::Closing {
            s.tls.abandon();
            s.release_socket(&self.poller);
            s.phase = Phase::Closed;
            drop(s);
            self.poller.remove(self.token);
        }
    }
}
