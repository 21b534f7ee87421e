//! DTLS over a connected UDP socket: what differs from a TLS stream.
//!
//! - Each datagram OpenSSL writes is sent alone (`flush_datagrams`), and
//!   each one read is handed to OpenSSL alone (input.rs).
//! - Each decrypted record is one message for the application: the decrypt
//!   loop puts its length before it in the plaintext buffer, and `framing`
//!   cuts there, whatever `packet` option the user set (OTP's DTLS has no
//!   packet framing; a send is one record).
//! - The handshake's retransmission timer runs on the poller: a deadline
//!   (`arm_retransmit`) makes the poller call `expired`, which lets OpenSSL
//!   resend its last flight.

use super::conn::Conn;
use super::host::Host;
use super::packet::Packet;
use super::socket;
use super::state::State;
use crate::engine::Error;
use std::io;
use std::time::{Duration, Instant};

// Bigger sends are cut into records of the largest size (as OTP does),
// each delivered as its own message.
use crate::engine::MAX_RECORD_PLAINTEXT as RECORD;

impl<H: Host> State<H> {
    /// How the plaintext is cut into messages: the user's packet option,
    /// or one record per message on a DTLS connection.
    pub fn framing(&self) -> (Packet, usize) {
        if self.tls.is_datagram() {
            (Packet::Length(4), 0)
        } else {
            (self.options.packet, self.options.packet_size)
        }
    }

    /// How a send is framed: no header on a DTLS connection.
    pub fn send_framing(&self) -> Packet {
        if self.tls.is_datagram() {
            Packet::Raw
        } else {
            self.options.packet
        }
    }

    /// Encrypts `data`: one record (one datagram) per `RECORD` bytes on a
    /// DTLS connection.
    pub fn write_plain(&mut self, data: &[u8]) -> Result<(), Error> {
        if !self.tls.is_datagram() {
            return self.tls.write(data);
        }
        for record in data.chunks(RECORD) {
            self.tls.write(record)?;
        }
        Ok(())
    }

    /// Sends the queued datagrams, each with one send(2). A datagram the
    /// socket refuses (ICMP errors of earlier sends, a full path) is lost,
    /// as any datagram may be: the peer's timers and DTLS cope.
    pub fn flush_datagrams(&mut self) {
        while self.fd >= 0 {
            let Some(datagram) = self.tls.next_datagram() else {
                break;
            };
            let len = datagram.len();
            match socket::write(self.fd, datagram) {
                Ok(n) => self.stats.sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {}
            }
            self.tls.consume_output(len);
        }
    }

    /// Makes the poller call `expired` when the handshake's retransmission
    /// timer runs out (unless a deadline at or before it is already set).
    pub fn arm_retransmit(&mut self, conn: &Conn<H>) {
        let Some(left) = self.tls.retransmit_timeout() else {
            return;
        };
        let now = Instant::now();
        let when = now + left;
        // Already due by then (the remaining time shrinks between calls:
        // a millisecond's slack keeps one deadline per timeout).
        if self
            .retransmit_at
            .is_some_and(|at| at > now && at <= when + Duration::from_millis(1))
        {
            return;
        }
        self.retransmit_at = Some(when);
        conn.poller.deadline(conn.token, when);
    }

    /// The poller's deadline came: whether OpenSSL's timer may have run out
    /// (a handshake paused for a callback is left alone until it resumes).
    pub fn retransmit_due(&mut self) -> bool {
        if !self.tls.is_datagram() || self.tls.is_paused() {
            return false;
        }
        self.retransmit_at = None;
        true
    }
}
