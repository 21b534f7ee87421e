//! Several packets in one send: the Erlang distribution carrier's batches
//! (many small messages, each framed by the packet option) encrypted as
//! full records and written with one system call.

use super::*;
use crate::engine::Error;

use crate::engine::MAX_RECORD_PLAINTEXT as RECORD;

impl<H: Host> Conn<H> {
    /// As `send`, for `packets` each framed by the packet option, each one
    /// given as the pieces it is made of (as `erlang:dist_ctrl_get_data/1`
    /// returns them); all of them or none are taken (a packet too big for
    /// its header refuses the batch).
    pub fn send_packets(
        &self,
        packets: &[&[&[u8]]],
        waiter: impl FnOnce() -> H::Waiter,
    ) -> Result<SendOutcome, Failure> {
        let mut s = self.state.lock();
        s.check_sendable()?;
        let packet = s.send_framing();
        let mut headers = Vec::with_capacity(packets.len());
        for pieces in packets {
            let len = pieces.iter().map(|p| p.len()).sum();
            let header = packet
                .header(len)
                .map_err(|_| Failure::PacketTooLarge(len, packet.max_payload().unwrap_or(0)))?;
            headers.push(header);
        }
        let framed = packets.iter().zip(&headers).flat_map(|(pieces, header)| {
            std::iter::once(&header[..]).chain(pieces.iter().copied())
        });
        if s.send_must_wait() {
            s.waiters
                .sends
                .push_back((waiter(), Some(framed.collect::<Vec<_>>().concat())));
            return Ok(SendOutcome::Wait);
        }
        let total = packets
            .iter()
            .zip(&headers)
            .map(|(pieces, header)| header.len() + pieces.iter().map(|p| p.len()).sum::<usize>())
            .sum();
        s.tls.reserve_output(total);
        let mut gather = Gather {
            tls: &mut s.tls,
            staging: Vec::new(),
        };
        for piece in framed {
            gather.push(piece).map_err(Failure::Tls)?;
        }
        gather.finish().map_err(Failure::Tls)?;
        s.flush_sent(waiter)
    }
}

/// Plaintext handed to the engine a full record at a time without being
/// flattened first: small pieces (headers, small messages) are copied into
/// `staging` until it holds a record; the record-sized middle of a large
/// piece is encrypted straight from the caller's memory.
struct Gather<'t> {
    tls: &'t mut Connection,
    staging: Vec<u8>,
}

impl Gather<'_> {
    fn push(&mut self, mut piece: &[u8]) -> Result<(), Error> {
        if self.staging.len() + piece.len() < RECORD {
            if self.staging.capacity() == 0 {
                self.staging.reserve(RECORD);
            }
            self.staging.extend_from_slice(piece);
            return Ok(());
        }
        if !self.staging.is_empty() {
            let (top_up, rest) = piece.split_at(RECORD - self.staging.len());
            self.staging.extend_from_slice(top_up);
            self.tls.write(&self.staging)?;
            self.staging.clear();
            piece = rest;
        }
        let (direct, rest) = piece.split_at(piece.len() - piece.len() % RECORD);
        if !direct.is_empty() {
            self.tls.write(direct)?;
        }
        self.staging.extend_from_slice(rest);
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        if self.staging.is_empty() {
            return Ok(());
        }
        self.tls.write(&self.staging)
    }
}
