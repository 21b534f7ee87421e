//! Cipher suites described the way OTP's `ssl` describes them.

use super::error::Error;
use super::ffi;
use foreign_types::ForeignTypeRef;
use openssl::nid::Nid;
use openssl::ssl::{SslCipherRef, SslContext, SslMethod};

/// A negotiated or available cipher suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// OpenSSL's name, e.g. `ECDHE-ECDSA-AES128-GCM-SHA256`.
    pub openssl_name: String,
    /// The IANA name, e.g. `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    pub standard_name: String,
    /// OTP's key exchange atom: `ecdhe_ecdsa`, `rsa`, ... (`any` for TLS 1.3).
    pub key_exchange: &'static str,
    /// OTP's cipher atom: `aes_128_gcm`, `chacha20_poly1305`, ...
    pub cipher: &'static str,
    /// OTP's MAC atom: `aead`, `sha`, `sha256`, `sha384`.
    pub mac: &'static str,
    /// OTP's PRF atom: `sha256`, `sha384` or `default_prf`.
    pub prf: &'static str,
    /// The oldest protocol version that has the suite: `TLSv1.3`, `TLSv1.2`, `TLSv1.0`, `SSLv3`.
    pub min_version: &'static str,
}

/// The suites OpenSSL selects for a TLS 1.2-and-older cipher list and a
/// TLS 1.3 suite list (both in OpenSSL syntax), TLS 1.3 first.
pub fn select(cipher_list: &str, tls13_suites: &str) -> Result<Vec<Suite>, Error> {
    let bad = |what: &str| Error::Option("ciphers".into(), what.into());
    let mut b =
        SslContext::builder(SslMethod::tls()).map_err(|e| Error::Internal(e.to_string()))?;
    // Listing, not negotiating: show every suite this OpenSSL has.
    b.set_security_level(0);
    b.set_cipher_list(cipher_list)
        .map_err(|_| bad(cipher_list))?;
    b.set_ciphersuites(tls13_suites)
        .map_err(|_| bad(tls13_suites))?;
    let context = b.build();
    let mut suites = Vec::new();
    unsafe {
        let stack = ffi::SSL_CTX_get_ciphers(context.as_ptr());
        if stack.is_null() {
            return Ok(suites);
        }
        for i in 0..openssl_sys::OPENSSL_sk_num(stack) {
            let cipher = openssl_sys::OPENSSL_sk_value(stack, i) as *mut openssl_sys::SSL_CIPHER;
            suites.push(Suite::from_cipher(SslCipherRef::from_ptr(cipher)));
        }
    }
    Ok(suites)
}

impl Suite {
    pub fn from_cipher(c: &SslCipherRef) -> Suite {
        let id = unsafe { openssl_sys::SSL_CIPHER_get_protocol_id(c.as_ptr()) };
        let tls13 = (0x1301..=0x13ff).contains(&id);
        let key_exchange = if tls13 {
            "any"
        } else {
            key_exchange(c.cipher_nid().unwrap_or(Nid::UNDEF), kx_nid(c), auth_nid(c))
        };
        let cipher = cipher_name(c.cipher_nid().unwrap_or(Nid::UNDEF));
        // One NID serves CCM and CCM_8 (a 16- or an 8-byte tag): the name
        // tells them apart.
        let cipher = match (cipher, c.standard_name().unwrap_or("").contains("CCM_8")) {
            ("aes_128_ccm", true) => "aes_128_ccm_8",
            ("aes_256_ccm", true) => "aes_256_ccm_8",
            (name, _) => name,
        };
        let aead =
            cipher.ends_with("gcm") || cipher.contains("ccm") || cipher == "chacha20_poly1305";
        let digest = c
            .handshake_digest()
            .map(|md| md.type_())
            .unwrap_or(Nid::UNDEF);
        let mac = if aead {
            "aead"
        } else {
            match Nid::from_raw(unsafe { openssl_sys::SSL_CIPHER_get_digest_nid(c.as_ptr()) }) {
                Nid::SHA1 => "sha",
                Nid::SHA256 => "sha256",
                Nid::SHA384 => "sha384",
                Nid::MD5 => "md5",
                _ => "null",
            }
        };
        // OTP's tables: TLS 1.3 suites name their hash; before TLS 1.3,
        // SHA-1 and CCM suites, and the CBC-SHA256 suites of RFC 5246 itself
        // (ids below 0x0100), use the default PRF, the others the suite's
        // hash.
        let prf = match digest {
            Nid::SHA384 if tls13 => "sha384",
            _ if tls13 => "sha256",
            _ if cipher.contains("ccm") || mac == "sha" || mac == "md5" => "default_prf",
            _ if mac == "sha256" && id < 0x0100 => "default_prf",
            Nid::SHA384 => "sha384",
            Nid::SHA256 => "sha256",
            _ => "default_prf",
        };
        Suite {
            min_version: c.version(),
            openssl_name: c.name().to_string(),
            standard_name: c.standard_name().unwrap_or("").to_string(),
            key_exchange,
            cipher,
            mac,
            prf,
        }
    }
}

fn kx_nid(c: &SslCipherRef) -> i32 {
    unsafe { SSL_CIPHER_get_kx_nid(c.as_ptr()) }
}

fn auth_nid(c: &SslCipherRef) -> i32 {
    unsafe { SSL_CIPHER_get_auth_nid(c.as_ptr()) }
}

extern "C" {
    fn SSL_CIPHER_get_kx_nid(c: *const openssl_sys::SSL_CIPHER) -> libc::c_int;
    fn SSL_CIPHER_get_auth_nid(c: *const openssl_sys::SSL_CIPHER) -> libc::c_int;
}

// NIDs from OpenSSL's obj_mac.h for key exchange and authentication.
const NID_KX_RSA: i32 = 1037;
const NID_KX_ECDHE: i32 = 1038;
const NID_KX_DHE: i32 = 1039;
const NID_KX_ECDHE_PSK: i32 = 1040;
const NID_KX_DHE_PSK: i32 = 1041;
const NID_KX_RSA_PSK: i32 = 1042;
const NID_KX_PSK: i32 = 1043;
const NID_KX_SRP: i32 = 1044;
const NID_AUTH_RSA: i32 = 1046;
const NID_AUTH_ECDSA: i32 = 1047;
const NID_AUTH_PSK: i32 = 1048;
const NID_AUTH_DSS: i32 = 1049;
const NID_AUTH_NULL: i32 = 1054;

fn key_exchange(_cipher: Nid, kx: i32, auth: i32) -> &'static str {
    match (kx, auth) {
        (NID_KX_RSA, _) => "rsa",
        (NID_KX_ECDHE, NID_AUTH_ECDSA) => "ecdhe_ecdsa",
        (NID_KX_ECDHE, NID_AUTH_RSA) => "ecdhe_rsa",
        (NID_KX_ECDHE, NID_AUTH_NULL) => "ecdh_anon",
        (NID_KX_DHE, NID_AUTH_RSA) => "dhe_rsa",
        (NID_KX_DHE, NID_AUTH_DSS) => "dhe_dss",
        (NID_KX_DHE, NID_AUTH_NULL) => "dh_anon",
        (NID_KX_ECDHE_PSK, _) => "ecdhe_psk",
        (NID_KX_DHE_PSK, _) => "dhe_psk",
        (NID_KX_RSA_PSK, _) => "rsa_psk",
        (NID_KX_PSK, _) | (_, NID_AUTH_PSK) => "psk",
        (NID_KX_SRP, NID_AUTH_RSA) => "srp_rsa",
        (NID_KX_SRP, NID_AUTH_DSS) => "srp_dss",
        (NID_KX_SRP, _) => "srp_anon",
        _ => "unknown",
    }
}

fn cipher_name(nid: Nid) -> &'static str {
    match nid {
        Nid::AES_128_GCM => "aes_128_gcm",
        Nid::AES_256_GCM => "aes_256_gcm",
        Nid::AES_128_CBC => "aes_128_cbc",
        Nid::AES_256_CBC => "aes_256_cbc",
        Nid::CHACHA20_POLY1305 => "chacha20_poly1305",
        Nid::AES_128_CCM => "aes_128_ccm",
        Nid::AES_256_CCM => "aes_256_ccm",
        Nid::DES_EDE3_CBC => "3des_ede_cbc",
        Nid::DES_CBC => "des_cbc",
        Nid::RC4 => "rc4_128",
        Nid::UNDEF => "null",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lists_describe_suites_the_otp_way() {
        let suites = select("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256").unwrap();
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[0].standard_name, "TLS_AES_128_GCM_SHA256");
        assert_eq!(suites[0].key_exchange, "any");
        assert_eq!(suites[0].min_version, "TLSv1.3");
        let s = &suites[1];
        assert_eq!(
            (s.key_exchange, s.cipher, s.mac, s.prf),
            ("ecdhe_ecdsa", "aes_128_gcm", "aead", "sha256")
        );
        assert!(select("NO-SUCH-CIPHER", "").is_err());
    }

    // As OTP 25's ssl:cipher_suites(all, _) describes them.
    #[test]
    fn ccm_and_ccm_8_are_told_apart() {
        let suites = select(
            "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES256-CCM",
            "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256",
        )
        .unwrap();
        let describe = |name: &str| {
            let s = suites.iter().find(|s| s.standard_name == name).unwrap();
            (s.key_exchange, s.cipher, s.mac, s.prf)
        };
        assert_eq!(
            describe("TLS_AES_128_CCM_SHA256"),
            ("any", "aes_128_ccm", "aead", "sha256")
        );
        assert_eq!(
            describe("TLS_AES_128_CCM_8_SHA256"),
            ("any", "aes_128_ccm_8", "aead", "sha256")
        );
        assert_eq!(
            describe("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
            ("ecdhe_ecdsa", "aes_128_ccm_8", "aead", "default_prf")
        );
        assert_eq!(
            describe("TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
            ("ecdhe_ecdsa", "aes_256_ccm", "aead", "default_prf")
        );
    }
}
