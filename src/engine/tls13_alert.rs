//! A TLS 1.3 client's certificate-verification alert, protected.
//!
//! OpenSSL's client switches its write side to the handshake keys only when
//! it sends its second flight, so an alert it raises while checking the
//! server's certificate goes out in clear. Peers that switch both sides at
//! ServerHello (OTP's `ssl` among them) then see a bad record instead of the
//! alert. So a TLS 1.3 client defers a verification failure: the verify
//! callback records it and lets the handshake go on; once OpenSSL has
//! written the second flight (and logged the client handshake traffic
//! secret), that flight is replaced by the alert, protected with that
//! secret's key and the flight's first sequence number (RFC 8446, 5.2).
//! The server never sees our Finished, so its handshake fails with the
//! alert, as it would against OTP's own client.

use once_cell::sync::Lazy;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::ssl::{Ssl, SslRef, SslVersion};
use openssl::symm::{encrypt_aead, Cipher};
use parking_lot::Mutex;

/// Per client connection: the first verification error and the client
/// handshake traffic secret.
#[derive(Default)]
pub(crate) struct Deferred {
    pub error: Option<i32>,
    secret: Option<Vec<u8>>,
}

static DEFERRED: Lazy<openssl::ex_data::Index<Ssl, Mutex<Deferred>>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

const LABEL: &str = "CLIENT_HANDSHAKE_TRAFFIC_SECRET ";

/// The key log callback's share for this module (installed by
/// `secrets.rs` on client contexts that may defer an alert): records the
/// client handshake traffic secret.
pub(crate) fn on_keylog(ssl: &SslRef, line: &str) {
    let Some(rest) = line.strip_prefix(LABEL) else {
        return;
    };
    // "<client random hex> <secret hex>"
    let Some(hex) = rest.split(' ').nth(1) else {
        return;
    };
    if let (Some(slot), Some(secret)) = (ssl.ex_data(*DEFERRED), from_hex(hex)) {
        slot.lock().secret = Some(secret);
    }
}

/// Gives a new client connection its slot.
pub(crate) fn prepare(ssl: &mut Ssl) {
    ssl.set_ex_data(*DEFERRED, Mutex::new(Deferred::default()));
}

/// Called from the verify callback on a failure: true if the failure was
/// deferred (a TLS 1.3 client with a slot), so the callback should accept.
pub(crate) fn defer(ssl: &SslRef, error: i32) -> bool {
    if ssl.is_server() || ssl.version2() != Some(SslVersion::TLS1_3) {
        return false;
    }
    match ssl.ex_data(*DEFERRED) {
        Some(slot) => {
            slot.lock().error.get_or_insert(error);
            true
        }
        None => false,
    }
}

/// Not a verification error: the application cancelled the handshake at
/// the ServerHello (`hello.rs`); its alert is user_canceled.
pub(crate) const CANCELLED: i32 = -1;

/// Defers a cancel (a TLS 1.3 client), before any verification error.
pub(crate) fn cancel(ssl: &SslRef) {
    if let Some(slot) = ssl.ex_data(*DEFERRED) {
        slot.lock().error = Some(CANCELLED);
    }
}

/// The handshake is done: the secret is no longer needed. Wiped and freed,
/// so an established connection keeps no handshake key material (nor the
/// memory for it).
pub(crate) fn forget_secret(ssl: &SslRef) {
    let Some(slot) = ssl.ex_data(*DEFERRED) else {
        return;
    };
    if let Some(mut secret) = slot.lock().secret.take() {
        for byte in secret.iter_mut() {
            // SAFETY: `byte` is a valid, exclusive reference into the
            // vector; a volatile write is not elided before the free.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

#[cfg(test)]
pub(crate) fn holds_secret(ssl: &SslRef) -> bool {
    ssl.ex_data(*DEFERRED)
        .is_some_and(|slot| slot.lock().secret.is_some())
}

/// The deferred verification error, if any.
pub(crate) fn deferred_error(ssl: &SslRef) -> Option<i32> {
    ssl.ex_data(*DEFERRED).and_then(|slot| slot.lock().error)
}

/// OpenSSL's alert for a verification error (ssl_x509err2alert), as a
/// TLS 1.3 client sends it in place of OpenSSL. The verify callback has
/// already turned OpenSSL's own errors into the codes that carry OTP's
/// alerts (`verify::otp_alert_carrier`); a failed host name check is
/// OTP's handshake_failure here too.
pub(crate) fn alert_for(error: i32) -> u8 {
    match error {
        CANCELLED => super::hello::CANCEL_ALERT,
        2 | 3 | 19 | 20 | 21 | 27 | 29 | 33 | 35 => 48, // unknown_ca
        9..=16 => 45,                                   // certificate_expired
        23 => 44,                                       // certificate_revoked
        26 => 43,                                       // unsupported_certificate
        17 | 24 | 25 | 22 => 46,                        // certificate_unknown
        50 | 62 | 63 | 64 => 40,                        // handshake_failure
        _ => 42, // bad_certificate (28, cert rejected, among them)
    }
}

pub(crate) fn from_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Replaces the second flight in `output[flight_start..]` by the fatal
/// alert `alert`, protected with the client handshake traffic key. A clear
/// change_cipher_spec (middlebox compatibility) stays. Returns false (and
/// leaves the output alone) if that cannot be done.
pub(crate) fn replace_flight(
    ssl: &SslRef,
    output: &mut Vec<u8>,
    flight_start: usize,
    alert: u8,
) -> bool {
    let Some(secret) = ssl.ex_data(*DEFERRED).and_then(|s| s.lock().secret.clone()) else {
        return false;
    };
    let Some(suite) = ssl.current_cipher() else {
        return false;
    };
    let (cipher, digest, key_len) = match suite.standard_name() {
        Some("TLS_AES_128_GCM_SHA256") => (Cipher::aes_128_gcm(), MessageDigest::sha256(), 16),
        Some("TLS_AES_256_GCM_SHA384") => (Cipher::aes_256_gcm(), MessageDigest::sha384(), 32),
        Some("TLS_CHACHA20_POLY1305_SHA256") => {
            (Cipher::chacha20_poly1305(), MessageDigest::sha256(), 32)
        }
        _ => return false,
    };
    let (Some(key), Some(iv)) = (
        expand_label(digest, &secret, "key", key_len),
        expand_label(digest, &secret, "iv", 12),
    ) else {
        return false;
    };
    // Keep what precedes the first protected record of the flight.
    let mut keep = flight_start;
    while keep + 5 <= output.len() && output[keep] == 20 {
        keep += 5 + u16::from_be_bytes([output[keep + 3], output[keep + 4]]) as usize;
    }
    // Sequence number 0, so the nonce is the IV itself.
    let inner = [2, alert, 21];
    let header = [23, 3, 3, 0, (inner.len() + 16) as u8];
    let mut tag = [0u8; 16];
    let Ok(sealed) = encrypt_aead(cipher, &key, Some(&iv), &header, &inner, &mut tag) else {
        return false;
    };
    output.truncate(keep.min(output.len()));
    output.extend_from_slice(&header);
    output.extend_from_slice(&sealed);
    output.extend_from_slice(&tag);
    true
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context.
fn expand_label(digest: MessageDigest, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    // HKDF-Expand: T(i) = HMAC(secret, T(i-1) || info || i).
    let key = PKey::hmac(secret).ok()?;
    let mut out = Vec::with_capacity(len);
    let mut previous: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while out.len() < len {
        let mut mac = Signer::new(digest, &key).ok()?;
        mac.update(&previous).ok()?;
        mac.update(&info).ok()?;
        mac.update(&[counter]).ok()?;
        previous = mac.sign_to_vec().ok()?;
        out.extend_from_slice(&previous);
        counter += 1;
    }
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_label_matches_rfc8448() {
        // RFC 8448, simple 1-RTT handshake: client handshake traffic secret
        // and the key and IV derived from it.
        let secret =
            from_hex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21").unwrap();
        let key = expand_label(MessageDigest::sha256(), &secret, "key", 16).unwrap();
        let iv = expand_label(MessageDigest::sha256(), &secret, "iv", 12).unwrap();
        assert_eq!(key, from_hex("dbfaa693d1762c5b666af5d950258d01").unwrap());
        assert_eq!(iv, from_hex("5bd3c71b836e0b76bb73265f").unwrap());
    }
}
