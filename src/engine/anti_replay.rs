//! Replay protection for 0-RTT with stateless tickets (OTP's
//! `anti_replay`).
//!
//! A stateless ticket carries its session, so the server keeps nothing that
//! could tell a ClientHello from its replay. OpenSSL's own protection makes
//! tickets single use through the session cache, which stateless tickets
//! bypass (rssl sets `SSL_OP_NO_ANTI_REPLAY` to keep them stateless), so
//! this module does it the way OTP does: a time-windowed Bloom filter of
//! what was seen. OpenSSL asks it (the allow-early-data callback) each time
//! a resumed handshake offers early data; the key is the resumption secret
//! of the ticket's session, which is different for every ticket, so early
//! data is accepted at most once per ticket. A refused offer is a full
//! TLS 1.3 resumption without the early data (the client is told
//! `rejected` and may send it again as normal data).
//!
//! Two filters take turns: keys go into the current one; a key is a replay
//! when either holds it; every `period` the older one is emptied and
//! becomes current. A key is thus remembered for at least one period. The
//! period is OTP's window, but never less than 11 seconds: OpenSSL accepts
//! early data only when the ticket age the client claims is within 10
//! seconds of the real one, so a ClientHello replayed later than that is
//! refused by OpenSSL itself. A Bloom filter may say "seen" of a key that
//! was not (a false positive): that only costs a client its 0-RTT.

use super::connection::guard;
use foreign_types::ForeignTypeRef;
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::hash::{hash, MessageDigest};
use openssl::ssl::{SslContext, SslContextBuilder, SslRef};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// OTP's `{BloomFilterWindowSize, HashFunctions, Bits}` (`'10k'` is
/// `{10, 5, 72985}`, `'100k'` `{10, 5, 729845}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AntiReplayParams {
    pub window_secs: u32,
    pub hashes: u32,
    pub bits: u32,
}

/// OpenSSL's ticket age allowance (10 s) and one second of rounding.
const MIN_PERIOD: Duration = Duration::from_secs(11);

/// The filters of one server configuration.
pub struct AntiReplay {
    period: Duration,
    hashes: u32,
    bits: u64,
    state: Mutex<Filters>,
}

struct Filters {
    since: Instant,
    current: Vec<u64>,
    previous: Vec<u64>,
}

impl AntiReplay {
    pub fn new(params: AntiReplayParams) -> AntiReplay {
        let bits = u64::from(params.bits.max(64));
        let words = bits.div_ceil(64) as usize;
        AntiReplay {
            period: Duration::from_secs(params.window_secs.into()).max(MIN_PERIOD),
            hashes: params.hashes.clamp(1, 32),
            bits,
            state: Mutex::new(Filters {
                since: Instant::now(),
                current: vec![0; words],
                previous: vec![0; words],
            }),
        }
    }

    /// True the first time `key` is offered within the remembered time;
    /// false when it (probably) was before.
    pub fn first_use(&self, key: &[u8], now: Instant) -> bool {
        let positions = self.positions(key);
        let mut f = self.state.lock();
        let elapsed = now.saturating_duration_since(f.since);
        if elapsed >= self.period * 2 {
            f.current.fill(0);
            f.previous.fill(0);
            f.since = now;
        } else if elapsed >= self.period {
            let Filters {
                current, previous, ..
            } = &mut *f;
            std::mem::swap(current, previous);
            current.fill(0);
            f.since += self.period;
        }
        let set = |filter: &[u64], p: u64| filter[(p / 64) as usize] & (1 << (p % 64)) != 0;
        let seen = positions.iter().all(|&p| set(&f.current, p))
            || positions.iter().all(|&p| set(&f.previous, p));
        if !seen {
            for p in positions {
                f.current[(p / 64) as usize] |= 1 << (p % 64);
            }
        }
        !seen
    }

    /// The filter positions of `key`: double hashing over SHA-256.
    fn positions(&self, key: &[u8]) -> Vec<u64> {
        let digest = hash(MessageDigest::sha256(), key).map(|d| d.to_vec());
        let digest = digest.unwrap_or_else(|_| key.to_vec());
        let word = |i: usize| {
            let mut b = [0u8; 8];
            for (j, byte) in b.iter_mut().enumerate() {
                *byte = digest.get(i * 8 + j).copied().unwrap_or(0);
            }
            u64::from_le_bytes(b)
        };
        let (h1, h2) = (word(0), word(1) | 1);
        (0..u64::from(self.hashes))
            .map(|i| h1.wrapping_add(i.wrapping_mul(h2)) % self.bits)
            .collect()
    }
}

static FILTER: Lazy<Index<SslContext, Arc<AntiReplay>>> =
    Lazy::new(|| SslContext::new_ex_index().expect("SSL_CTX ex_data index"));

type AllowEarlyDataCb =
    unsafe extern "C" fn(*mut openssl_sys::SSL, *mut libc::c_void) -> libc::c_int;

extern "C" {
    fn SSL_CTX_set_allow_early_data_cb(
        ctx: *mut openssl_sys::SSL_CTX,
        cb: Option<AllowEarlyDataCb>,
        arg: *mut libc::c_void,
    );
}

/// Makes the context ask the filter before accepting early data.
pub(crate) fn install(b: &mut SslContextBuilder, params: AntiReplayParams) {
    b.set_ex_data(*FILTER, Arc::new(AntiReplay::new(params)));
    // SAFETY: a live context under construction; the callback matches
    // OpenSSL's type and needs no argument (it finds the filter itself).
    unsafe {
        SSL_CTX_set_allow_early_data_cb(b.as_ptr(), Some(allow_early_data), std::ptr::null_mut())
    };
}

unsafe extern "C" fn allow_early_data(
    ssl: *mut openssl_sys::SSL,
    _arg: *mut libc::c_void,
) -> libc::c_int {
    guard(0, || {
        // SAFETY: OpenSSL passes the live SSL of the handshake.
        let ssl = unsafe { SslRef::from_ptr(ssl) };
        let Some(filter) = ssl.ssl_context().ex_data(*FILTER) else {
            return 0;
        };
        let Some(session) = ssl.session() else {
            return 0;
        };
        let mut secret = [0u8; 64];
        // SAFETY: a live session; OpenSSL copies at most `secret.len()` bytes.
        let n = unsafe {
            super::ffi::SSL_SESSION_get_master_key(
                session.as_ptr(),
                secret.as_mut_ptr(),
                secret.len(),
            )
        };
        if n == 0 {
            return 0;
        }
        filter.first_use(&secret[..n], Instant::now()) as libc::c_int
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_once_while_remembered() {
        let ar = AntiReplay::new(AntiReplayParams {
            window_secs: 20,
            hashes: 5,
            bits: 72985,
        });
        let t0 = Instant::now();
        assert!(ar.first_use(b"ticket-1", t0));
        assert!(!ar.first_use(b"ticket-1", t0));
        assert!(ar.first_use(b"ticket-2", t0));
        // Still remembered in the next period (the filters turned once).
        let t1 = t0 + Duration::from_secs(25);
        assert!(!ar.first_use(b"ticket-1", t1));
        assert!(ar.first_use(b"ticket-3", t1));
        // Forgotten two periods later.
        let t2 = t1 + Duration::from_secs(41);
        assert!(ar.first_use(b"ticket-1", t2));
    }

    #[test]
    fn short_windows_last_as_long_as_openssl_accepts_ticket_ages() {
        let ar = AntiReplay::new(AntiReplayParams {
            window_secs: 1,
            hashes: 3,
            bits: 1024,
        });
        let t0 = Instant::now();
        assert!(ar.first_use(b"k", t0));
        assert!(!ar.first_use(b"k", t0 + Duration::from_secs(10)));
    }
}
