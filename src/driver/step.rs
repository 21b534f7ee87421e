//! What a poller thread does for a connection when its socket is ready or
//! it is kicked: the handshake, reading and delivering, answering blocked
//! callers, and letting the socket go at the end.

use super::conn::Conn;
use super::host::{Failure, Host, Message, Outbox, Reply};
use super::poller::{Pollable, Ready, CLOSE_LINGER};
use super::state::{Incoming, Outgoing, Phase, Reading, State};
use crate::engine::{Error, Progress};
use std::os::fd::RawFd;
use std::time::Instant;

/// Ciphertext read per wake-up before giving other connections a turn.
const READ_BUDGET: usize = 512 * 1024;
/// Large packets (decrypted on their own) delivered per wake-up before
/// giving other connections a turn.
const DIRECT_ROUNDS: usize = 8;

impl<H: Host> State<H> {
    /// One round of work. Returns true to be run again soon.
    fn step(&mut self, conn: &Conn<H>, outbox: &mut dyn Outbox<H>, ready: Ready) -> bool {
        let mut again = false;
        match self.phase {
            Phase::Idle | Phase::HandedOver => return false,
            Phase::Closed => {
                if self.tls.is_paused() {
                    // Closed while its handshake waited for a callback:
                    // only this thread may finish it (see finish_closing).
                    self.tls.abandon();
                    conn.poller.remove(conn.token);
                }
                return false;
            }
            Phase::CloseRequested | Phase::Closing => {
                self.tls.abandon();
                let _ = self.flush();
                if self.tls.output().is_empty() || self.fd < 0 {
                    self.finish_closing(conn);
                } else if self.phase == Phase::CloseRequested {
                    // The last bytes get a while to go, then the socket does.
                    self.phase = Phase::Closing;
                    conn.poller
                        .deadline(conn.token, Instant::now() + CLOSE_LINGER);
                }
                return false;
            }
            Phase::Handshaking => {
                // The connection's OpenSSL objects are made here, off the
                // schedulers (tls.rs).
                if let Err(e) = self.tls.make() {
                    self.fail_handshake(conn, outbox, Failure::Tls(e));
                    return false;
                }
                again = self.pump_input(READ_BUDGET, ready.ending);
                let tls = &mut self.tls;
                match H::during_handshake(self.waiters.handshake.as_ref(), || tls.handshake()) {
                    Ok(Progress::Pending) => {
                        let _ = self.flush();
                        // A handshake paused for a callback has what it
                        // read: a peer that closed after its last flight
                        // (a TLS 1.3 client) still gets it finished.
                        if self.reading == Reading::Ended && !self.tls.is_paused() {
                            let failure = self.closed_failure();
                            self.fail_handshake(conn, outbox, failure);
                        } else {
                            self.arm_retransmit(conn);
                        }
                        return again;
                    }
                    Ok(Progress::Done) => {
                        self.phase = Phase::Established;
                        if let Some(accepted) = self.tls.early_data_status() {
                            if self.tls.role() == crate::engine::Role::Client {
                                // Before connect returns, as OTP's ssl tells it.
                                let m = Message::EarlyData(accepted);
                                outbox.to_owner(&self.owner, &self.options, m);
                            }
                        }
                        // A server's early data comes before the rest.
                        let early = self.tls.take_early_data();
                        self.plain.extend_from_slice(&early);
                        if let Some(w) = self.waiters.handshake.take() {
                            outbox.reply(w, &self.options, Reply::Handshake(Ok(())));
                        }
                        self.decrypt();
                    }
                    Err(e) => {
                        let failure = match e {
                            Error::Closed => self.closed_failure(),
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
        // A large packet decrypted on its own stops reading until it is
        // delivered; then reading goes on, a few packets per round.
        let mut rounds = 0;
        while self.direct_ready() && rounds < DIRECT_ROUNDS {
            self.deliver(outbox);
            again |= self.pump_input(READ_BUDGET, ready.ending);
            rounds += 1;
        }
        again |= self.direct_ready();
        // Reading may have produced output (key updates, renegotiation).
        if let Err(failure) = self.flush() {
            self.record_failure(failure);
        }
        self.answer_senders(outbox);
        self.answer_renegotiation(outbox);
        self.deliver(outbox);
        if self.reading == Reading::Paused && !self.undelivered_too_much() {
            // Active delivery drained the backlog: read on, soon.
            self.reading = Reading::Open;
            again = true;
        }
        if self.peer_done() {
            // The peer is gone and the application knows: answer with
            // close_notify and let the socket go.
            if self.failure().is_none() && self.outgoing == Outgoing::Open {
                self.tls.close();
                let _ = self.flush();
            }
            self.reply_senders(outbox, Err(Failure::Closed));
            self.release_socket(conn);
        }
        if !again && self.plain_pos == self.plain.len() {
            // Nothing buffered: an idle connection keeps no buffers.
            self.plain = Vec::new();
            self.plain_pos = 0;
            self.plain_scan = 0;
            self.tls.release_buffers();
        }
        again
    }

    /// The socket can go: input has ended and the application has read up
    /// to the end (or it failed), nothing waits to be sent, and the socket
    /// is not kept writable (`{exit_on_close, false}` keeps it, as TLS 1.3
    /// lets a side write on after the peer's close_notify).
    fn peer_done(&self) -> bool {
        let Incoming::Ended { failure, told } = &self.incoming else {
            return false;
        };
        let keep_writable = !self.options.exit_on_close && self.outgoing != Outgoing::Failed;
        (*told || failure.is_some())
            && self.fd >= 0
            && self.tls.output().is_empty()
            && !keep_writable
    }

    fn answer_renegotiation(&mut self, outbox: &mut dyn Outbox<H>) {
        if self.waiters.renegotiate.is_none() {
            return;
        }
        let result = match &self.incoming {
            Incoming::Ended {
                failure: Some(failure),
                ..
            } => Err(Failure::clone(failure)),
            Incoming::Ended { .. } => Err(Failure::Closed),
            _ if !self.tls.renegotiation_pending() => Ok(()),
            _ => return,
        };
        if let Some(w) = self.waiters.renegotiate.take() {
            outbox.reply(w, &self.options, Reply::Send(result));
        }
    }

    /// Why a handshake whose input ended failed: `closed`, unless its
    /// connection was never made (`econnrefused`...: input.rs).
    fn closed_failure(&self) -> Failure {
        match self.failure() {
            Some(f @ Failure::Posix(_)) => f.clone(),
            _ => Failure::Closed,
        }
    }

    fn fail_handshake(&mut self, conn: &Conn<H>, outbox: &mut dyn Outbox<H>, failure: Failure) {
        // A handshake paused for a callback ends here, on its poller.
        self.tls.abandon();
        // The alert (if any) goes out before the socket is released.
        let _ = self.flush();
        self.incoming = Incoming::Ended {
            failure: Some(Box::new(failure.clone())),
            told: true,
        };
        if let Some(w) = self.waiters.handshake.take() {
            outbox.reply(w, &self.options, Reply::Handshake(Err(failure)));
        }
        self.phase = Phase::Closed;
        self.release_socket(conn);
    }

    pub fn release_socket(&mut self, conn: &Conn<H>) {
        let fd = self.take_socket(conn);
        if fd >= 0 {
            super::socket::close(fd);
        }
    }

    /// Takes the socket from the poller without closing it (-1 if there is
    /// none): the connection no longer has it.
    pub fn take_socket(&mut self, conn: &Conn<H>) -> RawFd {
        let fd = std::mem::replace(&mut self.fd, -1);
        if fd >= 0 {
            conn.poller.unwatch(fd);
        }
        fd
    }

    /// The user's close is complete: the socket goes, and so does the
    /// poller's reference, unless the handshake is paused for a callback:
    /// its OpenSSL job must be finished by the poller thread that paused
    /// it (`engine::Connection::abandon`), so the poller runs it once more.
    pub fn finish_closing(&mut self, conn: &Conn<H>) {
        self.release_socket(conn);
        self.phase = Phase::Closed;
        if self.tls.is_paused() {
            conn.poller.kick(conn.token);
        } else {
            conn.poller.remove(conn.token);
        }
    }
}

impl<H: Host> Pollable for Conn<H> {
    fn ready(&self, ready: Ready) -> bool {
        H::with_poller_outbox(|outbox| {
            let mut s = self.state.lock();
            s.step(self, outbox, ready)
        })
    }

    fn expired(&self) {
        H::with_poller_outbox(|outbox| {
            let mut s = self.state.lock();
            let phase = s.phase;
            match phase {
                Phase::Closing => s.finish_closing(self),
                Phase::Handshaking if s.retransmit_due() => {
                    if s.tls.handle_retransmit_timeout().is_err() {
                        // OpenSSL gave up retransmitting: the peer is silent.
                        s.fail_handshake(self, outbox, Failure::Posix("etimedout"));
                    } else if s.step(self, outbox, Ready::default()) {
                        self.poller.kick(self.token);
                    }
                }
                _ => {}
            }
        })
    }
}
