//! The receiving side: reading ciphertext, decrypting it, and cutting the
//! plaintext into the packets the application asks for.

use super::host::{Failure, Host};
use super::packet::{Frame, Packet};
use super::poller::Poller;
use super::socket;
use super::state::{Incoming, Phase, Reading, State};
use crate::engine::ReadOutcome;
use std::io;
use std::ops::Range;

/// The most one read(2) takes...
const READ_CHUNK: usize = 60 * 1024;
/// ...and the first one after a wake-up: a full TLS record with its header
/// and tag.
const FIRST_READ: usize = 16 * 1024 + 512;
/// Largest TLS record payload: the unit of decryption.
const RECORD: usize = 16 * 1024;
/// Undelivered plaintext above which the socket is no longer read.
const PLAIN_HIGH: usize = 256 * 1024;
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
            self.discard_plain();
        }
    }

    pub fn discard_plain(&mut self) {
        self.plain_pos = 0;
        self.plain.clear();
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
            failure: Some(failure.clone()),
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
                failure.clone().unwrap_or(Failure::Closed)
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
                Err(_) => {
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
            if self.plain_pos > 0 && self.plain.capacity() - self.plain.len() < RECORD {
                // Move the undelivered tail to the front instead of growing.
                self.plain.drain(..self.plain_pos);
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
