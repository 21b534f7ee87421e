//! Reading on the owner's side: the Erlang distribution carrier's
//! controller reads its socket itself, through a gen_tcp port on a
//! duplicate of the descriptor (polled by the schedulers, as inet_tcp's
//! sockets are), and hands the ciphertext here, where it is decrypted
//! and cut into packets on the controller's scheduler. The poller then
//! only writes what the socket did not take at once.

use super::*;
use crate::driver::options::Active;

/// What `feed_here` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadHere {
    /// Everything fed is out: wait for more.
    Drained,
    /// Large packets wait (more than a call hands out): call again at once.
    More,
    /// A packet bigger than the copy limit is whole and waits to be copied
    /// out: read again where a long copy may run (a dirty scheduler).
    Large,
    /// Input has ended; the owner has been told (`Message::Closed` or
    /// `Message::Error`), after the data.
    Ended,
}

/// Large packets (decrypted on their own) handed out per call.
const DIRECT_ROUNDS: usize = 8;
/// Plaintext buffer capacity kept between feeds; a larger one (grown for a
/// big packet) is given back once it has been handed out.
const KEEP_PLAIN: usize = 256 * 1024;

impl<H: Host> Conn<H> {
    /// Switches reading to the owner (see the module doc): from now on the
    /// poller neither reads the socket nor is woken by its input, and the
    /// owner hands what it reads to `feed_here` (`feed_end` at the
    /// end). The socket turns active (data is handed out as it is read).
    /// Returns a duplicate of the socket for the owner to read, which
    /// `close_caller_dup` closes once the owner is done with it.
    pub fn read_on_caller(&self) -> Result<RawFd, Failure> {
        let mut s = self.state.lock();
        if s.closed_by_user() || s.fd < 0 || s.phase != Phase::Established {
            return Err(Failure::Closed);
        }
        let watch =
            socket::adopt(s.fd).map_err(|e| Failure::Posix(crate::posix::error_name(&e)))?;
        s.reads_on_caller = true;
        s.caller_dup = watch;
        s.options.active = Active::True;
        self.poller.watch_output_only(self.token, s.fd);
        Ok(watch)
    }

    /// Closes the duplicate `fd` that `read_on_caller` handed out, once its
    /// reader is gone (the port on it closed, or none could be opened).
    /// Any other descriptor, or the same one a second time, is left alone.
    pub fn close_caller_dup(&self, fd: RawFd) -> bool {
        let mut s = self.state.lock();
        if fd < 0 || s.caller_dup != fd {
            return false;
        }
        s.caller_dup = -1;
        socket::close(fd);
        true
    }

    /// Takes ciphertext the owner read itself (from a port on the
    /// duplicate `read_on_caller` gave), decrypts it and hands the whole
    /// packets to `outbox` (as `to_owner`/`packet_to_owner`, in order),
    /// then the end of input if it came. With `copy_limit`, a packet
    /// longer than that which would have to be copied out of the
    /// plaintext buffer is left for a call without the limit (`Large`).
    /// An empty `ciphertext` goes on with what is buffered (after `More`
    /// or `Large`, and first of all: the handshake may have left some).
    pub fn feed_here(
        &self,
        ciphertext: &[u8],
        copy_limit: Option<usize>,
        outbox: &mut dyn Outbox<H>,
    ) -> ReadHere {
        let mut s = self.state.lock();
        if !s.reads_on_caller || s.closed_by_user() {
            return ReadHere::Ended;
        }
        if !ciphertext.is_empty() && s.reading == Reading::Open {
            s.tls.receive(ciphertext);
            s.stats.received(ciphertext.len());
        }
        s.decrypt();
        self.hand_out(s, copy_limit, outbox)
    }

    /// The owner's reads found the end of the stream (or a reset): what is
    /// buffered is handed out, then the end.
    pub fn feed_end(&self, outbox: &mut dyn Outbox<H>) -> ReadHere {
        let mut s = self.state.lock();
        if !s.reads_on_caller || s.closed_by_user() {
            return ReadHere::Ended;
        }
        if s.reading == Reading::Open {
            s.end_of_stream();
        }
        self.hand_out(s, None, outbox)
    }

    /// Hands out what is decrypted: large packets one at a time (each
    /// decrypted on its own, the next after it is out).
    fn hand_out(
        &self,
        mut s: parking_lot::MutexGuard<'_, State<H>>,
        copy_limit: Option<usize>,
        outbox: &mut dyn Outbox<H>,
    ) -> ReadHere {
        let mut rounds = 0;
        let mut more = false;
        loop {
            if s.reading == Reading::Ended || s.fd < 0 {
                s.end_input(None);
            }
            if let Some(limit) = copy_limit {
                if s.buffered().len() > limit && s.next_packet_whole() {
                    return ReadHere::Large;
                }
            }
            let large_done = s.direct_ready();
            s.deliver_now(outbox);
            if !large_done {
                break;
            }
            if rounds == DIRECT_ROUNDS {
                more = true;
                break;
            }
            s.decrypt();
            rounds += 1;
        }
        if let Err(failure) = s.flush() {
            s.record_failure(failure);
            s.deliver_now(outbox);
        }
        if s.end_told() {
            drop(s);
            self.poller.kick(self.token);
            return ReadHere::Ended;
        }
        more |= s.direct_ready();
        if !more && s.buffered().is_empty() && s.plain.capacity() > KEEP_PLAIN {
            s.plain = Vec::new();
            s.plain_pos = 0;
            s.plain_scan = 0;
        }
        if more {
            ReadHere::More
        } else {
            ReadHere::Drained
        }
    }
}

impl<H: Host> State<H> {
    /// Whether the plaintext buffer starts with a whole packet.
    fn next_packet_whole(&self) -> bool {
        let (packet, max) = self.framing();
        matches!(packet.next_frame(self.buffered(), max), Ok(Some(_)))
    }
}
