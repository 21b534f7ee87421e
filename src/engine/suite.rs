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
    // SAFETY: `context` outlives the block; the stack and its ciphers are
    // its own (borrowed, not freed here), and every entry is an SSL_CIPHER.
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
        // SAFETY: a live cipher, borrowed for the call.
        let id = unsafe { openssl_sys::SSL_CIPHER_get_protocol_id(c.as_ptr()) };
        let tls13 = (0x1301..=0x13ff).contains(&id);
        let standard_name = c.standard_name().unwrap_or("");
        let key_exchange = if tls13 {
            "any"
        } else if standard_name.starts_with("TLS_PSK_DHE_") {
            // RFC 6655's name order, which OTP keeps.
            "psk_dhe"
        } else {
            key_exchange(kx_nid(c), auth_nid(c))
        };
        // CCM with the 8-byte tag has the same cipher NID as CCM.
        let cipher = match cipher_name(c.cipher_nid().unwrap_or(Nid::UNDEF)) {
            "aes_128_ccm" if standard_name.contains("CCM_8") => "aes_128_ccm_8",
            "aes_256_ccm" if standard_name.contains("CCM_8") => "aes_256_ccm_8",
            name => name,
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
            // SAFETY: a live cipher, borrowed for the call.
            match Nid::from_raw(unsafe { openssl_sys::SSL_CIPHER_get_digest_nid(c.as_ptr()) }) {
                Nid::SHA1 => "sha",
                Nid::SHA256 => "sha256",
                Nid::SHA384 => "sha384",
                Nid::MD5 => "md5",
                _ => "null",
            }
        };
        // OTP's tables: TLS 1.3 suites use their hash; in TLS 1.2, SHA-1 and
        // CCM suites, RFC 5246's own CBC-SHA256 suites (RSA and DHE, ids up
        // to 0x006B) and RSA_PSK's use the default PRF; the others the
        // suite's hash (its MAC's, or for AEAD suites the handshake's).
        let by_digest = match digest {
            Nid::SHA384 => "sha384",
            Nid::SHA256 => "sha256",
            _ => "default_prf",
        };
        let prf = match mac {
            _ if tls13 => by_digest,
            _ if cipher.contains("ccm") => "default_prf",
            "aead" => by_digest,
            "sha256" if id <= 0x006B || key_exchange == "rsa_psk" => "default_prf",
            "sha256" => "sha256",
            "sha384" => "sha384",
            _ => "default_prf",
        };
        Suite {
            min_version: c.version(),
            openssl_name: c.name().to_string(),
            standard_name: standard_name.to_string(),
            key_exchange,
            cipher,
            mac,
            prf,
        }
    }
}

fn kx_nid(c: &SslCipherRef) -> i32 {
    // SAFETY: a live cipher, borrowed for the call.
    unsafe { ffi::SSL_CIPHER_get_kx_nid(c.as_ptr()) }
}

fn auth_nid(c: &SslCipherRef) -> i32 {
    // SAFETY: a live cipher, borrowed for the call.
    unsafe { ffi::SSL_CIPHER_get_auth_nid(c.as_ptr()) }
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
const NID_AUTH_NULL: i32 = 1053;

fn key_exchange(kx: i32, auth: i32) -> &'static str {
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
    fn select_keeps_the_lists_order_and_refuses_unknown_names() {
        let suites = select("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256").unwrap();
        let names: Vec<_> = suites.iter().map(|s| s.openssl_name.as_str()).collect();
        assert_eq!(
            names,
            ["TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"]
        );
        assert!(select("NO-SUCH-CIPHER", "").is_err());
    }
}

/// The suite tables checked against references outside rssl: OpenSSL's
/// own names (`openssl ciphers -stdname -v`) and OTP 25's description of
/// each suite (`ssl:str_to_suite/1`, `ssl:suite_to_openssl_str/1`).
#[cfg(test)]
mod reference_tests {
    use super::*;
    use std::collections::HashMap;
    use std::process::Command;

    const TLS13: &str = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:\
                         TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256";

    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// OpenSSL's name, standard name and version of each suite, in order.
    fn openssl_list() -> Vec<(String, String, String)> {
        run(
            "openssl",
            &[
                "ciphers",
                "-stdname",
                "-v",
                "-ciphersuites",
                TLS13,
                "ALL:COMPLEMENTOFALL",
            ],
        )
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f[1], "-", "{line}");
            // The listing's "TLSv1" is SSL_CIPHER_get_version's "TLSv1.0".
            let version = if f[3] == "TLSv1" { "TLSv1.0" } else { f[3] };
            (f[2].to_string(), f[0].to_string(), version.to_string())
        })
        .collect()
    }

    /// OTP's (key_exchange, cipher, mac, prf) by standard name, for the
    /// suites OTP knows, and OTP's own standard name for that description
    /// (`ssl:suite_to_str/1`), which must be the name asked about.
    fn otp_descriptions(names: &[&str]) -> HashMap<String, [String; 4]> {
        let script = r#"
            [case catch ssl:str_to_suite(N) of
                 #{key_exchange := K, cipher := C, mac := M, prf := P} = S ->
                     io:format("~s ~s ~s ~s ~s ~s~n",
                               [N | [atom_to_list(A) || A <- [K, C, M, P]]]
                               ++ [ssl:suite_to_str(S)]);
                 _ -> ok
             end || N <- init:get_plain_arguments()],
            halt()."#;
        let mut args = vec!["-noshell", "-eval", script, "-extra"];
        args.extend_from_slice(names);
        run("erl", &args)
            .lines()
            .map(|line| {
                let f: Vec<String> = line.split(' ').map(str::to_string).collect();
                assert_eq!(f.len(), 6, "{line}");
                assert_eq!(f[0], f[5], "OTP's names differ");
                (
                    f[0].clone(),
                    [f[1].clone(), f[2].clone(), f[3].clone(), f[4].clone()],
                )
            })
            .collect()
    }

    #[test]
    fn every_suite_is_named_as_openssl_and_described_as_otp_do() {
        let ours = select("ALL:COMPLEMENTOFALL", TLS13).unwrap();
        let openssl = openssl_list();
        let listed: Vec<_> = ours
            .iter()
            .map(|s| {
                (
                    s.openssl_name.clone(),
                    s.standard_name.clone(),
                    s.min_version.to_string(),
                )
            })
            .collect();
        assert_eq!(listed.len(), openssl.len());
        let differ: Vec<String> = listed
            .iter()
            .zip(&openssl)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("rssl {a:?}, openssl {b:?}"))
            .collect();
        assert!(differ.is_empty(), "{}", differ.join("\n"));

        let names: Vec<&str> = openssl.iter().map(|(_, std, _)| std.as_str()).collect();
        let otp = otp_descriptions(&names);
        // Most of OpenSSL's suites are OTP's too (not the ARIA, Camellia,
        // SEED, IDEA, ... ones).
        assert!(otp.len() >= 60, "OTP knows only {} suites", otp.len());
        let mut wrong = Vec::new();
        for s in &ours {
            let Some(want) = otp.get(&s.standard_name) else {
                continue;
            };
            let got = [s.key_exchange, s.cipher, s.mac, s.prf];
            if got != want.each_ref().map(String::as_str) {
                wrong.push(format!("{}: rssl {got:?}, OTP {want:?}", s.standard_name));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
