//! The sending side: writing ciphertext to the socket, and holding senders
//! back while too much of it waits.

use super::conn::SendOutcome;
use super::host::{Failure, Host, Outbox, Reply};
use super::socket;
use super::state::{Outgoing, Phase, State};
use std::io;

/// Unsent ciphertext above which `send` makes its caller wait...
pub(super) const SEND_HIGH: usize = 512 * 1024;
/// ...until it is below this.
const SEND_LOW: usize = 128 * 1024;

impl<H: Host> State<H> {
    /// Sends buffered ciphertext; on a socket error, input ends too.
    pub fn flush(&mut self) -> Result<(), Failure> {
        if !self.tls.is_made() {
            return Ok(());
        }
        if self.tls.is_datagram() {
            self.flush_datagrams();
            return Ok(());
        }
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
                            Failure::Posix(crate::posix::error_name(&e))
                        };
                    let out = self.tls.output().len();
                    self.tls.consume_output(out);
                    // The peer is gone: what it sent before still gets read.
                    self.outgoing = Outgoing::Failed;
                    self.end_of_stream();
                    return Err(failure);
                }
            }
        }
        if self.outgoing == Outgoing::Shut && self.fd >= 0 && self.tls.output().is_empty() {
            let _ = socket::shutdown(self.fd, libc::SHUT_WR);
        }
        Ok(())
    }

    /// Whether a send may take data now; if not, what it answers: after a
    /// close, what the close left (enotconn after send_timeout_close), else
    /// closed (no established connection, output shut or failed, or the
    /// peer's end told with exit_on_close).
    pub fn check_sendable(&self) -> Result<(), Failure> {
        if self.closed_by_user() {
            return Err(if self.closed_on_send_timeout {
                Failure::Posix("enotconn")
            } else {
                Failure::Closed
            });
        }
        let peer_gone = self.end_told() && self.options.exit_on_close;
        if self.phase != Phase::Established
            || self.fd < 0
            || self.outgoing != Outgoing::Open
            || peer_gone
        {
            return Err(Failure::Closed);
        }
        Ok(())
    }

    /// After a send's data went to the engine: sends what the socket takes;
    /// the sender then waits (its data already queued) while the backlog
    /// is high.
    pub fn flush_sent(
        &mut self,
        waiter: impl FnOnce() -> H::Waiter,
    ) -> Result<SendOutcome, Failure> {
        self.flush()?;
        if self.send_must_wait() {
            self.waiters.sends.push_back((waiter(), None));
            return Ok(SendOutcome::Wait);
        }
        Ok(SendOutcome::Done)
    }

    /// The backlog is over the high-water mark, or senders wait with data
    /// not yet queued (which goes first): a new sender waits.
    pub fn send_must_wait(&self) -> bool {
        self.tls.output().len() > SEND_HIGH
            || self.waiters.sends.iter().any(|(_, data)| data.is_some())
    }

    /// Once the backlog is below the low-water mark, answers the waiting
    /// senders in order, queueing the data of those whose data waited with
    /// them, until the backlog is high again; answers them all with
    /// `closed` once it can never drain.
    pub fn answer_senders(&mut self, outbox: &mut dyn Outbox<H>) {
        while self.tls.output().len() <= SEND_LOW {
            if self.outgoing == Outgoing::Failed || self.fd < 0 {
                break;
            }
            let Some((waiter, data)) = self.waiters.sends.pop_front() else {
                return;
            };
            let result = match data {
                Some(data) => self.tls.write(&data).map_err(Failure::Tls),
                None => Ok(()),
            };
            let result = result.and_then(|()| self.flush());
            outbox.reply(waiter, &self.options, Reply::Send(result));
        }
        if self.outgoing == Outgoing::Failed || self.fd < 0 {
            self.reply_senders(outbox, Err(Failure::Closed));
        }
    }

    /// Answers every waiting sender with `result`.
    pub fn reply_senders(&mut self, outbox: &mut dyn Outbox<H>, result: Result<(), Failure>) {
        let options = self.options;
        for (waiter, _) in self.waiters.sends.drain(..) {
            outbox.reply(waiter, &options, Reply::Send(result.clone()));
        }
    }
}
