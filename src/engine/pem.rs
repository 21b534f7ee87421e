//! Certificates, private keys, CRLs and DH parameters from PEM or DER bytes.
//!
//! Every failure is a short reason in OTP's words ("bad_key",
//! "no_password", ...); the caller adds the option or file it came from.

use openssl::dh::Dh;
use openssl::pkey::{PKey, Params, Private};
use openssl::x509::{X509Crl, X509};

/// Every certificate in PEM text: at least one ("no certificate").
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<X509>, &'static str> {
    // A PEM block that does not parse counts as no certificate at all.
    let certs = X509::stack_from_pem(pem).unwrap_or_default();
    if certs.is_empty() {
        return Err("no certificate");
    }
    Ok(certs)
}

/// The certificates of a CA file: none when the file is blank, "bad_pem"
/// when a block does not parse, "no certificate" when there is text but no
/// certificate.
pub fn ca_certificates_from_pem(pem: &[u8]) -> Result<Vec<X509>, &'static str> {
    let certs = X509::stack_from_pem(pem).map_err(|_| "bad_pem")?;
    if certs.is_empty() && !pem.iter().all(u8::is_ascii_whitespace) {
        return Err("no certificate");
    }
    Ok(certs)
}

/// One certificate per DER item ("not a DER certificate"); none is no error.
pub fn certificates_from_der(ders: &[Vec<u8>]) -> Result<Vec<X509>, &'static str> {
    ders.iter()
        .map(|der| X509::from_der(der).map_err(|_| "not a DER certificate"))
        .collect()
}

/// Splits concatenated DER certificates (at least one), checking each.
pub fn split_der_certificates(mut der: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut certs = Vec::new();
    while !der.is_empty() {
        let len = der_element_len(der).ok_or("not DER certificates")?;
        let (one, rest) = der.split_at(len);
        X509::from_der(one).map_err(|_| "not a DER certificate")?;
        certs.push(one.to_vec());
        der = rest;
    }
    if certs.is_empty() {
        return Err("no certificate");
    }
    Ok(certs)
}

/// The length of the DER SEQUENCE at the start of `der` (header included).
fn der_element_len(der: &[u8]) -> Option<usize> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (body, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let body = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (body, 2 + n)
    };
    let total = header.checked_add(body)?;
    (total <= der.len()).then_some(total)
}

/// A PEM private key, decrypted with `password` when it is encrypted:
/// "no_password" or "bad_password" for an encrypted key that cannot be
/// opened, "bad_key" otherwise.
pub fn private_key_from_pem(pem: &[u8], password: &str) -> Result<PKey<Private>, &'static str> {
    PKey::private_key_from_pem_passphrase(pem, password.as_bytes()).map_err(|_| {
        if password.is_empty() && is_encrypted(pem) {
            "no_password"
        } else if is_encrypted(pem) {
            "bad_password"
        } else {
            "bad_key"
        }
    })
}

fn is_encrypted(pem: &[u8]) -> bool {
    String::from_utf8_lossy(pem).contains("ENCRYPTED")
}

/// An unencrypted DER private key (PKCS#8, RSA or EC): "bad_key" otherwise.
pub fn private_key_from_der(der: &[u8]) -> Result<PKey<Private>, &'static str> {
    PKey::private_key_from_der(der).map_err(|_| "bad_key")
}

/// Every CRL in PEM text: at least one ("no_crl").
pub fn crls_from_pem(pem: &[u8]) -> Result<Vec<X509Crl>, &'static str> {
    const BEGIN: &str = "-----BEGIN X509 CRL-----";
    const END: &str = "-----END X509 CRL-----";
    let text = std::str::from_utf8(pem).map_err(|_| "bad_pem")?;
    let mut crls = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let tail = &rest[start..];
        let end = tail.find(END).ok_or("bad_pem")? + END.len();
        crls.push(X509Crl::from_pem(&tail.as_bytes()[..end]).map_err(|_| "bad_crl")?);
        rest = &tail[end..];
    }
    if crls.is_empty() {
        return Err("no_crl");
    }
    Ok(crls)
}

/// One DER CRL ("bad_crl").
pub fn crl_from_der(der: &[u8]) -> Result<X509Crl, &'static str> {
    X509Crl::from_der(der).map_err(|_| "bad_crl")
}

/// Diffie-Hellman parameters, PEM or DER ("bad_dh_params").
pub fn dh_params(bytes: &[u8]) -> Result<Dh<Params>, &'static str> {
    Dh::params_from_pem(bytes)
        .or_else(|_| Dh::params_from_der(bytes))
        .map_err(|_| "bad_dh_params")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::connection::tests::test_pki;
    use openssl::symm::Cipher;

    fn pem_of(der: &[u8]) -> Vec<u8> {
        X509::from_der(der).unwrap().to_pem().unwrap()
    }

    #[test]
    fn concatenated_der_certificates_split() {
        let a = test_pki();
        let b = test_pki();
        let both = [a.ca.clone(), b.cert.clone()].concat();
        assert_eq!(split_der_certificates(&both), Ok(vec![a.ca, b.cert]));
        assert_eq!(
            split_der_certificates(&both[..both.len() - 1]),
            Err("not DER certificates")
        );
        assert_eq!(split_der_certificates(b""), Err("no certificate"));
        // A well-framed SEQUENCE that is no certificate.
        assert_eq!(
            split_der_certificates(&[0x30, 0x03, 0x02, 0x01, 0x00]),
            Err("not a DER certificate")
        );
    }

    #[test]
    fn pem_certificates_in_order_and_at_least_one() {
        let pki = test_pki();
        let text = [pem_of(&pki.cert), pem_of(&pki.ca)].concat();
        let certs = certificates_from_pem(&text).unwrap();
        let ders: Vec<_> = certs.iter().map(|c| c.to_der().unwrap()).collect();
        assert_eq!(ders, vec![pki.cert.clone(), pki.ca.clone()]);
        assert_eq!(certificates_from_pem(b"junk").err(), Some("no certificate"));
        assert_eq!(certificates_from_pem(b"").err(), Some("no certificate"));
        assert_eq!(certificates_from_der(&[pki.cert]).map(|c| c.len()), Ok(1));
        assert_eq!(
            certificates_from_der(&[b"junk".to_vec()]).err(),
            Some("not a DER certificate")
        );
    }

    #[test]
    fn a_blank_ca_file_holds_no_certificate() {
        let pki = test_pki();
        assert_eq!(ca_certificates_from_pem(b" \n").map(|c| c.len()), Ok(0));
        assert_eq!(
            ca_certificates_from_pem(b"junk").err(),
            Some("no certificate")
        );
        let mut truncated = pem_of(&pki.ca);
        truncated.truncate(truncated.len() - 30);
        assert_eq!(ca_certificates_from_pem(&truncated).err(), Some("bad_pem"));
        assert_eq!(
            ca_certificates_from_pem(&pem_of(&pki.ca)).map(|c| c.len()),
            Ok(1)
        );
    }

    #[test]
    fn keys_plain_and_encrypted() {
        let pki = test_pki();
        let key = private_key_from_der(&pki.key).unwrap();
        assert_eq!(private_key_from_der(b"junk").err(), Some("bad_key"));
        let plain = key.private_key_to_pem_pkcs8().unwrap();
        assert!(private_key_from_pem(&plain, "").is_ok());
        assert_eq!(private_key_from_pem(b"junk", "").err(), Some("bad_key"));
        let locked = key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_128_cbc(), b"secret")
            .unwrap();
        assert_eq!(private_key_from_pem(&locked, "").err(), Some("no_password"));
        assert_eq!(
            private_key_from_pem(&locked, "wrong").err(),
            Some("bad_password")
        );
        let opened = private_key_from_pem(&locked, "secret").unwrap();
        assert!(opened.public_eq(&key));
    }

    #[test]
    fn crl_and_dh_reasons() {
        assert_eq!(crls_from_pem(b"").err(), Some("no_crl"));
        assert_eq!(crls_from_pem(&[0xff]).err(), Some("bad_pem"));
        let unterminated = b"-----BEGIN X509 CRL-----\nAAAA\n";
        assert_eq!(crls_from_pem(unterminated).err(), Some("bad_pem"));
        let garbled = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
        assert_eq!(crls_from_pem(garbled).err(), Some("bad_crl"));
        assert_eq!(crl_from_der(b"junk").err(), Some("bad_crl"));
        assert_eq!(dh_params(b"junk").err(), Some("bad_dh_params"));
        let params = Dh::get_2048_256().unwrap();
        assert!(dh_params(&params.params_to_pem().unwrap()).is_ok());
        assert!(dh_params(&params.params_to_der().unwrap()).is_ok());
    }
}
