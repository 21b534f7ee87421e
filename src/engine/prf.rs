//! The TLS 1.0-1.2 pseudo-random function over a connection's secrets
//! (OTP's `ssl:prf/5`).

use super::error::Error;
use super::version::Version;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::ssl::SslRef;

/// A piece of the PRF seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedPart {
    ClientRandom,
    ServerRandom,
    Bytes(Vec<u8>),
}

/// PRF(secret, label, seed) of `len` bytes; `secret` None is the session's
/// master secret. Not defined for TLS 1.3 (which has only exporters).
pub(crate) fn prf(
    ssl: &SslRef,
    version: Option<Version>,
    secret: Option<&[u8]>,
    label: &[u8],
    seed: &[SeedPart],
    len: usize,
) -> Result<Vec<u8>, Error> {
    let unsupported =
        || Error::Option("prf".into(), "not defined for this protocol version".into());
    let version = version.ok_or_else(unsupported)?;
    if version == Version::Tls13 {
        return Err(unsupported());
    }
    let master;
    let secret = match secret {
        Some(s) => s,
        None => {
            let session = ssl.session().ok_or_else(unsupported)?;
            let mut buf = vec![0; session.master_key_len()];
            let n = session.master_key(&mut buf);
            buf.truncate(n);
            master = buf;
            &master
        }
    };
    let mut full_seed = label.to_vec();
    for part in seed {
        let mut random = [0u8; 32];
        match part {
            SeedPart::ClientRandom => {
                let n = ssl.client_random(&mut random);
                full_seed.extend_from_slice(&random[..n]);
            }
            SeedPart::ServerRandom => {
                let n = ssl.server_random(&mut random);
                full_seed.extend_from_slice(&random[..n]);
            }
            SeedPart::Bytes(b) => full_seed.extend_from_slice(b),
        }
    }
    let internal = |e: openssl::error::ErrorStack| Error::Internal(e.to_string());
    if version == Version::Tls12 {
        let digest = ssl
            .current_cipher()
            .and_then(|c| c.handshake_digest())
            .unwrap_or_else(MessageDigest::sha256);
        return p_hash(digest, secret, &full_seed, len).map_err(internal);
    }
    // TLS 1.0 and 1.1: P_MD5 over the first half of the secret XOR P_SHA1
    // over the second (the halves share a byte when the length is odd).
    let half = secret.len().div_ceil(2);
    let md5 = p_hash(MessageDigest::md5(), &secret[..half], &full_seed, len).map_err(internal)?;
    let sha1 = p_hash(
        MessageDigest::sha1(),
        &secret[secret.len() - half..],
        &full_seed,
        len,
    )
    .map_err(internal)?;
    Ok(md5.iter().zip(sha1).map(|(a, b)| a ^ b).collect())
}

/// P_hash (RFC 5246 section 5).
fn p_hash(
    digest: MessageDigest,
    secret: &[u8],
    seed: &[u8],
    len: usize,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let key = PKey::hmac(secret)?;
    let hmac = |parts: &[&[u8]]| -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut signer = Signer::new(digest, &key)?;
        for p in parts {
            signer.update(p)?;
        }
        signer.sign_to_vec()
    };
    let mut out = Vec::with_capacity(len);
    let mut a = hmac(&[seed])?;
    while out.len() < len {
        out.extend_from_slice(&hmac(&[&a, seed])?);
        a = hmac(&[&a])?;
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_sha256_matches_the_published_vector() {
        // The widely used TLS 1.2 PRF test vector (SHA-256).
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let mut seed = b"test label".to_vec();
        seed.extend(hex("a0ba9f936cda311827a6f796ffd5198c"));
        let out = p_hash(MessageDigest::sha256(), &secret, &seed, 16).unwrap();
        assert_eq!(out, hex("e3f229ba727be17b8d122620557cd453"));
    }
}
