//! Several packets in one send: the Erlang distribution carrier's batches
//! (many small messages, each framed by the packet option) encrypted as
//! full records and written with one system call.

use super::*;

impl<H: Host> Conn<H> {
    /// As `send`, for `packets` each framed by the packet option; all of
    /// them or none are taken (a packet too big for its header refuses the
    /// batch).
    pub fn send_packets(
        &self,
        packets: &[&[u8]],
        waiter: impl FnOnce() -> H::Waiter,
    ) -> Result<SendOutcome, Failure> {
        let mut s = self.state.lock();
        s.check_sendable()?;
        let packet = s.send_framing();
        let total: usize = packets.iter().map(|p| p.len() + 8).sum();
        let mut framed = Vec::with_capacity(total);
        for p in packets {
            let header = packet
                .header(p.len())
                .map_err(|_| Failure::PacketTooLarge(p.len(), packet.max_payload().unwrap_or(0)))?;
            framed.extend_from_slice(&header);
            framed.extend_from_slice(p);
        }
        if s.send_must_wait() {
            s.waiters.sends.push_back((waiter(), Some(framed)));
            return Ok(SendOutcome::Wait);
        }
        s.tls.write(&framed).map_err(Failure::Tls)?;
        s.flush_sent(waiter)
    }
}
