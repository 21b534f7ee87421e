//! New keys after so much traffic, as OTP's sender does: in TLS 1.3 a
//! KeyUpdate (asking the peer to update too) before the data that takes
//! what was sent since the last one past `key_update_at` bytes (not with
//! ChaCha20-Poly1305, whose limit OTP leaves to the sequence number), and
//! in TLS 1.2 a renegotiation once `renegotiate_at` records were sent.
//!
//! OpenSSL does not expose its write sequence number: records are counted
//! here, one per (at most) full fragment of each write, from the last
//! (re)negotiation this side started.

/// OTP's defaults.
pub const KEY_UPDATE_AT: u64 = 388_736_063_997;
pub const RENEGOTIATE_AT: u64 = 268_435_456;

/// What a connection has sent towards its next new keys.
#[derive(Debug, Default)]
pub(crate) struct Rekey {
    bytes: u64,
    records: u64,
    /// Fixed once the handshake is done (see `Connection::rekey_mode`).
    pub mode: Option<Mode>,
}

/// How a connection counts, from its version and cipher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    /// TLS 1.3 with a byte limit: the limit.
    pub tls13_limit: Option<u64>,
    /// TLS 1.2 or older: renegotiations count.
    pub tls12: bool,
    /// Plaintext bytes per record.
    pub fragment: usize,
}

/// What to do before writing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Nothing,
    KeyUpdate,
    Renegotiate,
}

impl Rekey {
    /// Before writing `len` bytes in fragments of `fragment`: whether new
    /// keys come first. `tls13_limit` is None for TLS 1.2 (and for ciphers
    /// without a byte limit); `renegotiate_at` applies to TLS 1.2.
    pub fn before_write(
        &mut self,
        len: usize,
        tls13_limit: Option<u64>,
        tls12: bool,
        renegotiate_at: u64,
    ) -> Due {
        let len = len as u64;
        if let Some(limit) = tls13_limit {
            if self.bytes + len > limit {
                self.bytes = 0;
                return Due::KeyUpdate;
            }
        } else if tls12 && self.records >= renegotiate_at {
            self.records = 0;
            return Due::Renegotiate;
        }
        Due::Nothing
    }

    /// After `len` bytes went out in fragments of `fragment` bytes.
    pub fn wrote(&mut self, len: usize, fragment: usize) {
        self.bytes += len as u64;
        self.records += len.div_ceil(fragment.max(1)) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_update_when_the_limit_would_be_passed() {
        let mut r = Rekey::default();
        assert_eq!(r.before_write(600, Some(1000), false, 10), Due::Nothing);
        r.wrote(600, 16384);
        assert_eq!(r.before_write(400, Some(1000), false, 10), Due::Nothing);
        r.wrote(400, 16384);
        assert_eq!(r.before_write(1, Some(1000), false, 10), Due::KeyUpdate);
        r.wrote(1, 16384);
        assert_eq!(r.before_write(999, Some(1000), false, 10), Due::Nothing);
    }

    #[test]
    fn renegotiation_after_so_many_records() {
        let mut r = Rekey::default();
        r.wrote(20000, 16384); // two records
        assert_eq!(r.before_write(10, None, true, 3), Due::Nothing);
        r.wrote(10, 16384);
        assert_eq!(r.before_write(10, None, true, 3), Due::Renegotiate);
        assert_eq!(r.before_write(10, None, true, 3), Due::Nothing);
        // TLS 1.3 ignores the record count.
        r.wrote(100_000, 512);
        assert_eq!(r.before_write(10, None, false, 3), Due::Nothing);
    }
}
