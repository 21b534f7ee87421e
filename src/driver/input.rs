//! The receiving side: reading ciphertext, decrypting it, and cutting the
//! plaintext into the packets the application asks for.

use super::host::{Failure, Host};
use super::packet::{Frame, Packet};
use super::poller::Poller;
use super::socket;
use super::state::{Direct, Incoming, Phase, Reading, State};
use crate::engine::ReadOutcome;
use std::io;
use std::ops::Range;

/// The most one read(2) takes...
const READ_CHUNK: usize = 60 * 1024;
/// ...and the first one after a wake-up: a full TLS record with its header
/// and tag.
const FIRST_READ: usize = 16 * 1024 + 512;
use crate::engine::MAX_RECORD_PLAINTEXT as RECORD;
/// Undelivered plaintext above which the socket is no longer read.
const PLAIN_HIGH: usize = 256 * 1024;
/// Packets at least this long that are not all here yet are decrypted
/// into a buffer of their own, which becomes the delivered binary (no copy
/// out of `plain`)...
const DIRECT_MIN: usize = RECORD;
/// ...up to this long (the buffer is taken at once, on the word of the
/// peer's length header).
const DIRECT_MAX: usize = 8 * 1024 * 1024;
/// One read on a datagram socket: the largest UDP payload.
const DATAGRAM_READ: usize = 65_536;

/// What the next packet for the application is.
pub(super) enum Taken {
    /// The packet's bytes and where the next one starts (absolute indexes
    /// into the plaintext buffer).
    Packet(Range<usize>, usize),
    Failed(Failure),
    Nothing,
}

impl<H: Host> State<H> {
    pub fn buffered(&self) -> &[u8] {
        &self.plain[self.plain_pos..]
    }

    /// Drops the plaintext up to `end` (absolute index).
    pub fn consume(&mut self, end: usize) {
        self.plain_pos = end;
        if self.plain_pos >= self.plain.len() {
            self.clear_plain();
        }
    }

    fn clear_plain(&mut self) {
        self.plain_pos = 0;
        self.plain_scan = 0;
        self.plain.clear();
    }

    /// Drops every undelivered byte (a packet decrypted on its own too).
    pub fn discard_plain(&mut self) {
        self.clear_plain();
        self.direct = None;
    }

    /// The large packet decrypted on its own is complete: it must be
    /// delivered before anything more is decrypted.
    pub fn direct_ready(&self) -> bool {
        match &self.direct {
            Some(d) => d.filled == d.len,
            None => false,
        }
    }

    /// Whether large packets may be decrypted on their own: delivered as
    /// they are (active, binary, a length header, no `{header, N}`).
    fn direct_allowed(&self) -> bool {
        let o = &self.options;
        o.active.is_active()
            && o.binary
            && o.header == 0
            && matches!(o.packet, Packet::Length(_))
            && self.incoming == Incoming::Open
    }

    /// If what is buffered ends with the start of a large packet (after
    /// whole ones), moves that start into a buffer of its own, which the
    /// rest of the packet is decrypted into.
    fn start_direct(&mut self) -> bool {
        if !self.direct_allowed() {
            return false;
        }
        // Past the whole packets (each looked at once, however many reads
        // it takes to find the incomplete one).
        let (packet, max) = (self.options.packet, self.options.packet_size);
        self.plain_scan = self.plain_scan.max(self.plain_pos);
        while let Ok(Some(frame)) = packet.next_frame(&self.plain[self.plain_scan..], max) {
            self.plain_scan += frame.consumed;
        }
        let start = &self.plain[self.plain_scan..];
        let Some((size, len)) = packet.length_header(start) else {
            return false;
        };
        if !(DIRECT_MIN..=DIRECT_MAX).contains(&len)
            || start.len() >= size + len
            || (max > 0 && len > max)
        {
            return false;
        }
        let Some(mut buf) = H::buffer(len) else {
            return false;
        };
        let filled = start.len() - size;
        buf.as_mut()[..filled].copy_from_slice(&start[size..]);
        let header = start[..size].to_vec();
        self.plain.truncate(self.plain_scan);
        self.direct = Some(Box::new(Direct {
            buf,
            filled,
            len,
            header,
        }));
        true
    }

    /// Puts a packet being decrypted on its own back in front of `plain`,
    /// once it may no longer be delivered as it is (the options changed).
    pub fn undirect(&mut self) {
        if self.direct.is_none() || self.direct_allowed() {
            return;
        }
        let Some(mut d) = self.direct.take() else {
            return;
        };
        // The bytes go back as they came, after the whole packets before.
        self.plain.extend_from_slice(&d.header);
        self.plain.extend_from_slice(&d.buf.as_mut()[..d.filled]);
    }

    /// The next packet for a passive recv of `len` (raw mode only) bytes.
    pub fn take_packet(&mut self, len: usize) -> Taken {
        let (packet, packet_size) = self.framing();
        let buf = self.buffered();
        let frame = match packet {
            Packet::Raw if len > 0 => Ok((buf.len() >= len).then_some(Frame {
                start: 0,
                len,
                consumed: len,
            })),
            packet => packet.next_frame(buf, packet_size),
        };
        match frame {
            Ok(Some(f)) => {
                let start = self.plain_pos + f.start;
                Taken::Packet(start..start + f.len, self.plain_pos + f.consumed)
            }
            Err(_) => Taken::Failed(self.invalid_packet(true)),
            Ok(None) if self.input_ended() => {
                // What is left can never complete a packet: it goes.
                self.discard_plain();
                Taken::Failed(self.tell_end())
            }
            Ok(None) => Taken::Nothing,
        }
    }

    /// A packet over `packet_size` (or malformed) ends the connection, as
    /// in OTP's ssl; the error carries every unread byte. `told`: the
    /// caller hands the failure to the application itself.
    pub fn invalid_packet(&mut self, told: bool) -> Failure {
        let failure = Failure::InvalidPacket(self.buffered().to_vec());
        self.discard_plain();
        self.incoming = Incoming::Ended {
            failure: Some(Box::new(failure.clone())),
            told,
        };
        failure
    }

    /// How input ended, for the application: the failure the first time,
    /// `closed` after.
    pub fn tell_end(&mut self) -> Failure {
        match &mut self.incoming {
            Incoming::Ended { failure, told } if !*told => {
                *told = true;
                failure.as_deref().cloned().unwrap_or(Failure::Closed)
            }
            _ => Failure::Closed,
        }
    }

    /// Reads ciphertext and decrypts it, up to `budget` bytes. Stops at a
    /// short read (the socket is empty: new data raises a new event) unless
    /// `to_the_end`, when it reads on to EAGAIN or the end of the stream.
    /// Returns true if the budget ran out with the socket maybe still readable.
    pub fn pump_input(&mut self, budget: usize, to_the_end: bool) -> bool {
        let mut total = 0;
        loop {
            if self.fd < 0 || self.reading != Reading::Open {
                return false;
            }
            if total >= budget {
                return true;
            }
            if self.direct_ready() {
                // Delivered first; the caller reads on after (step.rs).
                return false;
            }
            let fd = self.fd;
            // The first read of a wake-up is one record's worth: most
            // wake-ups bring less, and a small buffer is cheaper to get and
            // give back (a chunk of 64 KiB or more makes free() consolidate).
            let chunk = if total == 0 { FIRST_READ } else { READ_CHUNK };
            let datagram = self.tls.is_datagram();
            // A datagram is read whole: room for the largest UDP payload.
            let chunk = if datagram { DATAGRAM_READ } else { chunk };
            let drained = match self.tls.receive_with(chunk, |buf| socket::read(fd, buf)) {
                // An empty datagram, or an error a datagram socket reports
                // for an earlier send (ICMP port unreachable...): nothing
                // ends, the DTLS timers see to lost datagrams.
                Ok(0) if datagram => {
                    total += 1;
                    false
                }
                Err(e) if datagram && e.kind() != io::ErrorKind::WouldBlock => {
                    total += 1;
                    false
                }
                // Each read is one datagram: read on to EAGAIN.
                Ok(n) if datagram => {
                    self.stats.received(n);
                    super::poller::note_read(n);
                    total += n;
                    false
                }
                Ok(0) => {
                    self.end_of_stream();
                    return false;
                }
                Ok(n) => {
                    self.stats.received(n);
                    super::poller::note_read(n);
                    total += n;
                    n < chunk && !to_the_end
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.decrypt();
                    return false;
                }
                Err(e) => {
                    // A connection that never was (`socket::connect`'s):
                    // the handshake fails with why, as gen_tcp:connect does.
                    if let Some(name) = connect_error(&e) {
                        if self.phase == Phase::Handshaking {
                            self.record_failure(Failure::Posix(name));
                        }
                    }
                    // A reset: end of input, as OTP reports a closed socket.
                    self.end_of_stream();
                    return false;
                }
            };
            if self.phase != Phase::Established {
                return true;
            }
            self.decrypt();
            if self.undelivered_too_much() {
                self.reading = Reading::Paused;
                return false;
            }
            if drained {
                return false;
            }
        }
    }

    /// No more ciphertext: decrypt what is buffered; the TLS layer then
    /// reports the end of the plaintext stream.
    pub fn end_of_stream(&mut self) {
        self.reading = Reading::Ended;
        self.tls.receive_eof();
        self.decrypt();
    }

    /// Too much plaintext waits and nobody is taking it: stop reading.
    /// (A waiting recv or active delivery may need more bytes to complete a
    /// large packet, so then reading goes on.)
    pub fn undelivered_too_much(&self) -> bool {
        self.plain.len() - self.plain_pos > PLAIN_HIGH
            && self.waiters.recv.is_none()
            && !self.options.active.is_active()
    }

    /// Lets the poller read again once the plaintext backlog has shrunk.
    pub fn resume_reading(&mut self, poller: &Poller, token: u64) {
        if self.reading == Reading::Paused && !self.undelivered_too_much() {
            self.reading = Reading::Open;
            poller.kick(token);
        }
    }

    /// Decrypts buffered ciphertext into `plain`.
    pub fn decrypt(&mut self) {
        if self.phase != Phase::Established {
            return;
        }
        loop {
            if self.input_ended() {
                return;
            }
            if let Some(d) = &mut self.direct {
                let room = (d.len - d.filled).min(RECORD);
                if room == 0 {
                    return; // complete: delivered before anything more
                }
                match self
                    .tls
                    .read(&mut d.buf.as_mut()[d.filled..d.filled + room])
                {
                    Ok(ReadOutcome::Data(n)) => {
                        d.filled += n;
                        continue;
                    }
                    Ok(ReadOutcome::WouldBlock) => return,
                    Ok(ReadOutcome::Closed) => {
                        self.end_input(None);
                        return;
                    }
                    Err(e) => {
                        self.end_input(Some(Failure::Tls(e)));
                        return;
                    }
                }
            }
            if self.start_direct() {
                continue;
            }
            if self.plain_pos > 0 && self.plain.capacity() - self.plain.len() < RECORD {
                // Move the undelivered tail to the front instead of growing.
                self.plain.drain(..self.plain_pos);
                self.plain_scan = self.plain_scan.saturating_sub(self.plain_pos);
                self.plain_pos = 0;
            }
            let len = self.plain.len();
            // DTLS: each record is one message; its length goes before it
            // (see `framing`).
            let header = if self.tls.is_datagram() { 4 } else { 0 };
            self.plain.resize(len + header, 0);
            let outcome = self.tls.read_onto(&mut self.plain, RECORD);
            match outcome {
                Ok(ReadOutcome::Data(n)) => {
                    if self.incoming == Incoming::Dropped {
                        self.plain.truncate(len);
                    } else if header > 0 {
                        self.plain[len..len + 4].copy_from_slice(&(n as u32).to_be_bytes());
                    }
                    continue;
                }
                _ => self.plain.truncate(len),
            }
            match outcome {
                Ok(ReadOutcome::Data(_)) => {}
                Ok(ReadOutcome::WouldBlock) => return,
                Ok(ReadOutcome::Closed) => {
                    self.end_input(None);
                    return;
                }
                Err(e) => {
                    self.end_input(Some(Failure::Tls(e)));
                    return;
                }
            }
        }
    }
}

/// The name of an error that only a connection attempt gets (the peer
/// refused it, or no route or answer reached it); None for the errors of
/// a connection that was made (a reset is the end of its input).
fn connect_error(e: &io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::ECONNREFUSED
        | libc::EHOSTUNREACH
        | libc::ENETUNREACH
        | libc::ETIMEDOUT
        | libc::EHOSTDOWN
        | libc::ENETDOWN
        | libc::EADDRNOTAVAIL => Some(crate::posix::error_name(e)),
        _ => None,
    }
}
