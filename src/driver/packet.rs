//! Packet framing on the plaintext stream, as inet's `{packet, Type}`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// No framing: whatever is available is one packet.
    Raw,
    /// A big-endian length header of 1, 2 or 4 bytes.
    Length(u8),
    /// Up to and including a newline.
    Line,
    /// A BER-encoded ASN.1 value (tag, length, contents).
    Asn1,
    /// A CORBA GIOP message (12-byte header).
    Cdr,
    /// A Sun RPC record (4-byte header, high bit: last fragment).
    Sunrm,
    /// A FastCGI record (8-byte header, content, padding).
    Fcgi,
    /// A TPKT packet (RFC 1006: version, reserved, 2-byte total length).
    Tpkt,
    /// HTTP/1 lines (see `http.rs`). `bin`: text as binaries (`http_bin`);
    /// `always_headers`: `httph`; `headers`: an `http` socket past its
    /// start line.
    Http {
        bin: bool,
        always_headers: bool,
        headers: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The packet is larger than `packet_size`.
    TooBig,
    /// The header is not one of this packet type.
    Invalid,
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
            Packet::Asn1 | Packet::Cdr | Packet::Sunrm | Packet::Fcgi | Packet::Tpkt => {
                let Some((total, consumed)) = self.whole_packet(buf)? else {
                    return Ok(None);
                };
                if max > 0 && total > max {
                    return Err(FrameError::TooBig);
                }
                if buf.len() < consumed {
                    return Ok(None);
                }
                Ok(Some(Frame {
                    start: 0,
                    len: total,
                    consumed,
                }))
            }
            Packet::Http { .. } => {
                let Some(len) = super::http::frame(buf, self.in_headers()) else {
                    if max > 0 && buf.len() > max {
                        return Err(FrameError::TooBig);
                    }
                    return Ok(None);
                };
                if max > 0 && len > max {
                    return Err(FrameError::TooBig);
                }
                Ok(Some(Frame {
                    start: 0,
                    len,
                    consumed: len,
                }))
            }
            Packet::Line => match buf.iter().position(|b| *b == b'\n') {
                // A line over the limit is an invalid packet, as in OTP's ssl.
                Some(i) if max > 0 && i + 1 > max => Err(FrameError::TooBig),
                Some(i) => Ok(Some(Frame {
                    start: 0,
                    len: i + 1,
                    consumed: i + 1,
                })),
                None if max > 0 && buf.len() > max => Err(FrameError::TooBig),
                None => Ok(None),
            },
        }
    }

    /// For `{packet, 1|2|4}`: (header size, payload length) once the
    /// header is complete.
    pub fn length_header(self, buf: &[u8]) -> Option<(usize, usize)> {
        let Packet::Length(size) = self else {
            return None;
        };
        let size = size as usize;
        let header = buf.get(..size)?;
        Some((
            size,
            header
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize),
        ))
    }

    /// For the self-describing types: (packet length with header, bytes it
    /// occupies), once the header is complete. As `erlang:decode_packet/3`,
    /// the packet is delivered with its header (fcgi without its padding).
    fn whole_packet(self, buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
        let be = |bytes: &[u8]| bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        Ok(match self {
            Packet::Sunrm if buf.len() >= 4 => {
                let len = be(&buf[..4]) & 0x7fff_ffff;
                Some((4 + len, 4 + len))
            }
            Packet::Tpkt if buf.len() >= 4 => {
                let len = be(&buf[2..4]);
                if len < 4 {
                    return Err(FrameError::Invalid);
                }
                Some((len, len))
            }
            Packet::Fcgi if buf.len() >= 8 => {
                let content = be(&buf[4..6]);
                let padding = buf[6] as usize;
                Some((8 + content, 8 + content + padding))
            }
            Packet::Cdr if buf.len() >= 12 => {
                if &buf[..4] != b"GIOP" {
                    return Err(FrameError::Invalid);
                }
                let size = &buf[8..12];
                let len = if buf[6] & 1 == 1 {
                    size.iter()
                        .rev()
                        .fold(0usize, |acc, b| (acc << 8) | *b as usize)
                } else {
                    be(size)
                };
                Some((12 + len, 12 + len))
            }
            Packet::Asn1 => asn1_length(buf)?.map(|total| (total, total)),
            _ => None,
        })
    }

    /// Whether the next HTTP packet is a header line.
    pub fn in_headers(self) -> bool {
        matches!(
            self,
            Packet::Http {
                always_headers: true,
                ..
            } | Packet::Http { headers: true, .. }
        )
    }

    /// The packet type after `packet` was delivered: an `http` socket reads
    /// headers after a start line and start lines again after the headers.
    pub fn after(self, packet: &[u8]) -> Packet {
        match self {
            Packet::Http {
                bin,
                always_headers: false,
                headers,
            } => {
                let parsed = super::http::parse(packet, headers);
                let headers = if headers {
                    parsed != super::http::HttpPacket::EndOfHeaders
                } else {
                    super::http::starts_headers(&parsed)
                };
                Packet::Http {
                    bin,
                    always_headers: false,
                    headers,
                }
            }
            other => other,
        }
    }

    /// The header to put in front of an outgoing packet of `len` bytes.
    /// The largest payload the header can describe (None: no header).
    pub fn max_payload(self) -> Option<usize> {
        match self {
            Packet::Length(size) if size < 8 => Some((1usize << (8 * size as usize)) - 1),
            _ => None,
        }
    }

    pub fn header(self, len: usize) -> Result<Vec<u8>, FrameError> {
        match self {
            Packet::Length(size) => {
                let size = size as usize;
                if size < 8 && len >> (8 * size) != 0 {
                    return Err(FrameError::TooBig);
                }
                Ok((0..size).rev().map(|i| (len >> (8 * i)) as u8).collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// Total length of the BER value at the start of `buf`, once its tag and
/// length octets are complete.
fn asn1_length(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut i = 0;
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    i += 1;
    if tag & 0x1f == 0x1f {
        // High tag number: base-128 octets until one without the top bit.
        loop {
            let Some(&b) = buf.get(i) else {
                return Ok(None);
            };
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i > 6 {
                return Err(FrameError::Invalid);
            }
        }
    }
    let Some(&first) = buf.get(i) else {
        return Ok(None);
    };
    i += 1;
    if first & 0x80 == 0 {
        return Ok(Some(i + first as usize));
    }
    let count = (first & 0x7f) as usize;
    if count == 0 || count > 4 {
        // Indefinite lengths are not framed by inet either.
        return Err(FrameError::Invalid);
    }
    if buf.len() < i + count {
        return Ok(None);
    }
    let len = buf[i..i + count]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Ok(Some(i + count + len))
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
    fn self_describing_types_match_decode_packet() {
        // Expected values from erlang:decode_packet/3 on OTP 25.
        let cases: [(Packet, &[u8], usize, usize); 6] = [
            (Packet::Asn1, &[0x30, 3, 1, 2, 3, 9], 5, 5),
            (Packet::Asn1, &[0x30, 0x82, 0, 3, 1, 2, 3], 7, 7),
            (Packet::Sunrm, &[128, 0, 0, 2, 1, 2, 9], 6, 6),
            (Packet::Tpkt, &[3, 0, 0, 6, 1, 2, 9], 6, 6),
            (Packet::Fcgi, &[1, 1, 0, 1, 0, 2, 1, 0, 7, 7, 0, 9], 10, 11),
            (
                Packet::Cdr,
                b"GIOP\x01\x00\x01\x00\x02\x00\x00\x00\x05\x05\x09",
                14,
                14,
            ),
        ];
        for (packet, buf, len, consumed) in cases {
            let f = packet.next_frame(buf, 0).unwrap().unwrap();
            assert_eq!(
                (f.start, f.len, f.consumed),
                (0, len, consumed),
                "{packet:?}"
            );
            assert_eq!(packet.next_frame(&buf[..consumed - 1], 0), Ok(None));
        }
        assert_eq!(
            Packet::Cdr.next_frame(b"XXXX\0\0\0\0\0\0\0\0", 0),
            Err(FrameError::Invalid)
        );
        assert_eq!(
            Packet::Tpkt.next_frame(&[3, 0, 0, 200], 10),
            Err(FrameError::TooBig)
        );
    }

    #[test]
    fn lines_split_at_newline() {
        let f = Packet::Line.next_frame(b"ab\ncd", 0).unwrap().unwrap();
        assert_eq!((f.len, f.consumed), (3, 3));
        assert_eq!(Packet::Line.next_frame(b"abcd", 0), Ok(None));
        assert_eq!(Packet::Line.next_frame(b"abcd", 2), Err(FrameError::TooBig));
        assert_eq!(Packet::Line.next_frame(b"ab\n", 2), Err(FrameError::TooBig));
    }
}
