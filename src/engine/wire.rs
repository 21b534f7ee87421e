//! The in-memory "socket" OpenSSL reads ciphertext from and writes it to.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;

/// Ciphertext buffers between the transport and OpenSSL.
#[derive(Default)]
pub struct Wire {
    /// Bytes `read_pos..` are unread ciphertext; the spare capacity is
    /// filled straight from the transport.
    incoming: Vec<u8>,
    read_pos: usize,
    outgoing: Vec<u8>,
    /// The transport saw end of stream: reads past the buffer return 0.
    pub eof: bool,
    /// Datagram mode (DTLS): the sizes of the datagrams queued each way,
    /// so that OpenSSL reads one datagram per read and each of its writes
    /// goes out as one datagram. Boxed: TLS connections (most) have none,
    /// and every connection keeps its wire as long as it lives.
    datagrams: Option<Box<Datagrams>>,
}

#[derive(Default)]
struct Datagrams {
    incoming: VecDeque<usize>,
    outgoing: VecDeque<usize>,
}

/// Buffers above this size are released once drained, so idle connections stay small.
const KEEP_CAPACITY: usize = 256 * 1024;

impl Wire {
    /// A wire that keeps datagram boundaries (for DTLS).
    pub fn datagram() -> Wire {
        Wire {
            datagrams: Some(Box::default()),
            ..Wire::default()
        }
    }

    pub fn is_datagram(&self) -> bool {
        self.datagrams.is_some()
    }

    /// The first outgoing datagram (datagram mode only).
    pub fn next_datagram(&self) -> Option<&[u8]> {
        let d = self.datagrams.as_ref()?;
        d.outgoing.front().map(|&n| &self.outgoing[..n])
    }

    /// An incoming datagram of `n` bytes was appended (an empty one
    /// carries no record, and a 0-byte read would mean the end to OpenSSL).
    fn note_incoming(&mut self, n: usize) {
        if let Some(d) = &mut self.datagrams {
            if n > 0 {
                d.incoming.push_back(n);
            }
        }
    }

    pub fn push_incoming(&mut self, data: &[u8]) {
        self.compact();
        self.incoming.extend_from_slice(data);
        self.note_incoming(data.len());
    }

    /// Lets the caller fill up to `max` bytes of incoming space directly
    /// (e.g. `read(2)`). The space is not zeroed first: the callback only
    /// writes to it, and just the `Ok(n)` bytes it reports count.
    pub fn fill_incoming<E>(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.compact();
        self.incoming.reserve(max);
        let start = self.incoming.len();
        let result = fill(&mut self.incoming.spare_capacity_mut()[..max]);
        let got = (*result.as_ref().unwrap_or(&0)).min(max);
        // SAFETY: the callback initialized the first `got` spare bytes.
        unsafe { self.incoming.set_len(start + got) };
        self.note_incoming(got);
        result
    }

    /// Takes the unread ciphertext out of the buffer.
    pub fn take_incoming(&mut self) -> Vec<u8> {
        let rest = self.incoming[self.read_pos..].to_vec();
        self.incoming.clear();
        self.read_pos = 0;
        if let Some(d) = &mut self.datagrams {
            d.incoming.clear();
        }
        rest
    }

    /// Bytes of capacity both buffers hold (used or not).
    pub fn capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity()
    }

    pub fn incoming_len(&self) -> usize {
        self.incoming.len() - self.read_pos
    }

    /// Frees both buffers if they hold nothing (an idle connection stays small).
    pub fn release_if_empty(&mut self) {
        if self.read_pos == self.incoming.len() {
            self.incoming = Vec::new();
            self.read_pos = 0;
        }
        if self.outgoing.is_empty() {
            self.outgoing = Vec::new();
        }
    }

    pub fn outgoing(&self) -> &[u8] {
        &self.outgoing
    }

    /// The outgoing buffer itself, for rewriting what OpenSSL wrote.
    pub fn outgoing_mut(&mut self) -> &mut Vec<u8> {
        &mut self.outgoing
    }

    /// Room for `n` more bytes of output, taken at once rather than by
    /// doubling as records come.
    pub fn reserve_outgoing(&mut self, n: usize) {
        self.outgoing.reserve(n);
    }

    pub fn consume_outgoing(&mut self, n: usize) {
        if let Some(d) = &mut self.datagrams {
            let mut left = n;
            while left > 0 {
                let Some(front) = d.outgoing.front_mut() else {
                    break;
                };
                if *front > left {
                    *front -= left;
                    break;
                }
                left -= *front;
                d.outgoing.pop_front();
            }
        }
        self.outgoing.drain(..n);
        if self.outgoing.is_empty() && self.outgoing.capacity() > KEEP_CAPACITY {
            self.outgoing = Vec::new();
        }
    }

    fn compact(&mut self) {
        if self.read_pos == 0 {
            return;
        }
        self.incoming.drain(..self.read_pos);
        self.read_pos = 0;
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(d) = &mut self.datagrams {
            // One datagram per read; what does not fit is dropped, as a
            // datagram socket truncates.
            let Some(size) = d.incoming.pop_front() else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            let n = size.min(buf.len());
            buf[..n].copy_from_slice(&self.incoming[self.read_pos..self.read_pos + n]);
            self.read_pos += size;
            if self.read_pos == self.incoming.len() {
                self.read_pos = 0;
                self.incoming.clear();
            }
            return Ok(n);
        }
        let available = &self.incoming[self.read_pos..];
        if available.is_empty() {
            if self.eof {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read_pos += n;
        if self.read_pos == self.incoming.len() {
            self.read_pos = 0;
            self.incoming.clear();
        }
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(d) = &mut self.datagrams {
            if buf.is_empty() {
                return Ok(0);
            }
            d.outgoing.push_back(buf.len());
        }
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_pushed_then_would_block() {
        let mut wire = Wire::default();
        wire.push_incoming(b"hello");
        let mut buf = [0u8; 3];
        assert_eq!(wire.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf, b"hel");
        assert_eq!(wire.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"lo");
        let err = wire.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        wire.eof = true;
        assert_eq!(wire.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn fill_keeps_only_what_was_filled() {
        let mut wire = Wire::default();
        let n: Result<usize, ()> = wire.fill_incoming(100, |buf| {
            for (slot, byte) in buf.iter_mut().zip(b"abcd") {
                slot.write(*byte);
            }
            Ok(4)
        });
        assert_eq!(n, Ok(4));
        assert_eq!(wire.incoming_len(), 4);
        let failed: Result<usize, ()> = wire.fill_incoming(100, |_| Err(()));
        assert!(failed.is_err());
        assert_eq!(wire.incoming_len(), 4);
        let mut buf = [0u8; 8];
        assert_eq!(wire.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"abcd");
    }

    #[test]
    fn datagram_mode_keeps_boundaries_both_ways() {
        let mut wire = Wire::datagram();
        wire.push_incoming(b"one");
        let _: Result<usize, ()> = wire.fill_incoming(100, |buf| {
            for (slot, byte) in buf.iter_mut().zip(b"twotwo") {
                slot.write(*byte);
            }
            Ok(6)
        });
        wire.push_incoming(b"");
        wire.push_incoming(b"three");
        let mut buf = [0u8; 4];
        assert_eq!(wire.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        // Too long for the buffer: truncated, the rest dropped.
        assert_eq!(wire.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"twot");
        assert_eq!(wire.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"thre");
        assert!(wire.read(&mut buf).is_err());
        wire.write_all(b"ab").unwrap();
        wire.write_all(b"cde").unwrap();
        assert_eq!(wire.next_datagram(), Some(&b"ab"[..]));
        wire.consume_outgoing(2);
        assert_eq!(wire.next_datagram(), Some(&b"cde"[..]));
        wire.consume_outgoing(3);
        assert_eq!(wire.next_datagram(), None);
    }

    #[test]
    fn release_frees_drained_buffers_only() {
        let mut wire = Wire::default();
        wire.push_incoming(&[7u8; 100_000]);
        wire.write_all(&[9u8; 50_000]).unwrap();
        // Unread input and unsent output stay.
        wire.release_if_empty();
        assert_eq!(wire.incoming_len(), 100_000);
        assert_eq!(wire.outgoing().len(), 50_000);
        let mut buf = vec![0u8; 60_000];
        assert_eq!(wire.read(&mut buf).unwrap(), 60_000);
        wire.release_if_empty();
        assert_eq!(wire.incoming_len(), 40_000);
        assert_eq!(wire.read(&mut buf).unwrap(), 40_000);
        assert!(buf[..40_000].iter().all(|&b| b == 7));
        wire.consume_outgoing(50_000);
        // Drained: an idle connection holds no buffer memory.
        assert!(wire.incoming.capacity() > 0 && wire.outgoing.capacity() > 0);
        wire.release_if_empty();
        assert_eq!((wire.incoming.capacity(), wire.outgoing.capacity()), (0, 0));
        // And works again afterwards.
        wire.push_incoming(b"more");
        assert_eq!(wire.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"more");
    }
}
