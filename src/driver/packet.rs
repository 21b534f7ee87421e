//! Packet framing on the plaintext stream, as inet's `{packet, Type}`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// No framing: whatever is available is one packet.
    Raw,
    /// A big-endian length header of 1, 2 or 4 bytes.
    Length(u8),
    /// Up to and including a newline.
    Line,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The packet is larger than `packet_size`.
    TooBig,
}

/// Where one complete packet lies in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the payload (after any header).
    pub start: usize,
    pub len: usize,
    /// Bytes to drop from the buffer once the packet is taken.
    pub consumed: usize,
}

impl Packet {
    /// Finds the first complete packet in `buf`, if there is one.
    /// `max` is `packet_size` (0: no limit).
    pub fn next_frame(self, buf: &[u8], max: usize) -> Result<Option<Frame>, FrameError> {
        match self {
            Packet::Raw => Ok((!buf.is_empty()).then_some(Frame {
                start: 0,
                len: buf.len(),
                consumed: buf.len(),
            })),
            Packet::Length(size) => {
                let size = size as usize;
                if buf.len() < size {
                    return Ok(None);
                }
                let len = buf[..size]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | *b as usize);
                if max > 0 && len > max {
                    return Err(FrameError::TooBig);
                }
                if buf.len() < size + len {
                    return Ok(None);
                }
                Ok(Some(Frame {
                    start: size,
                    len,
                    consumed: size + len,
                }))
            }
            Packet::Line => match buf.iter().position(|b| *b == b'\n') {
                Some(i) if max > 0 && i + 1 > max => Ok(Some(Frame {
                    start: 0,
                    len: max,
                    consumed: max,
                })),
                Some(i) => Ok(Some(Frame {
                    start: 0,
                    len: i + 1,
                    consumed: i + 1,
                })),
                // A line longer than the limit is cut, as inet does.
                None if max > 0 && buf.len() >= max => Ok(Some(Frame {
                    start: 0,
                    len: max,
                    consumed: max,
                })),
                None => Ok(None),
            },
        }
    }

    /// The header to put in front of an outgoing packet of `len` bytes.
    pub fn header(self, len: usize) -> Result<Vec<u8>, FrameError> {
        match self {
            Packet::Length(size) => {
                let size = size as usize;
                if size < 8 && len >> (8 * size) != 0 {
                    return Err(FrameError::TooBig);
                }
                Ok((0..size).rev().map(|i| (len >> (8 * i)) as u8).collect())
            }
            Packet::Raw | Packet::Line => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_takes_everything() {
        assert_eq!(Packet::Raw.next_frame(b"", 0), Ok(None));
        let f = Packet::Raw.next_frame(b"abc", 0).unwrap().unwrap();
        assert_eq!((f.start, f.len, f.consumed), (0, 3, 3));
    }

    #[test]
    fn length_prefixed_waits_for_whole_packet() {
        let p = Packet::Length(2);
        assert_eq!(p.next_frame(&[0], 0), Ok(None));
        assert_eq!(p.next_frame(&[0, 3, b'a'], 0), Ok(None));
        let f = p
            .next_frame(&[0, 3, b'a', b'b', b'c', 9], 0)
            .unwrap()
            .unwrap();
        assert_eq!((f.start, f.len, f.consumed), (2, 3, 5));
        assert_eq!(p.next_frame(&[0, 3, b'a'], 2), Err(FrameError::TooBig));
    }

    #[test]
    fn header_round_trips() {
        for size in [1u8, 2, 4] {
            let p = Packet::Length(size);
            let mut msg = p.header(200).unwrap();
            msg.extend(std::iter::repeat_n(7, 200));
            let f = p.next_frame(&msg, 0).unwrap().unwrap();
            assert_eq!(f.len, 200);
        }
        assert_eq!(Packet::Length(1).header(256), Err(FrameError::TooBig));
    }

    #[test]
    fn lines_split_at_newline() {
        let f = Packet::Line.next_frame(b"ab\ncd", 0).unwrap().unwrap();
        assert_eq!((f.len, f.consumed), (3, 3));
        assert_eq!(Packet::Line.next_frame(b"abcd", 0), Ok(None));
        let cut = Packet::Line.next_frame(b"abcd", 2).unwrap().unwrap();
        assert_eq!(cut.len, 2);
    }
}
