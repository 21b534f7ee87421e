//! Certificate revocation lists: where they come from and how strictly the
//! peer's chain is checked against them (OTP's `crl_check`).

use super::error::Error;
use super::options::Options;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509Crl;

/// How the peer's chain is checked against the CRLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlCheck {
    /// No revocation check (the default).
    Off,
    /// Only the peer's own certificate (`peer`).
    Peer,
    /// Every certificate of the chain (`true`).
    All,
    /// Every certificate, but one without a CRL is accepted (`best_effort`).
    BestEffort,
}

/// Where revocation lists come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CrlSource {
    /// A PEM file with any number of CRLs.
    File(String),
    /// PEM text in memory with any number of CRLs.
    Pem(Vec<u8>),
    /// One DER CRL.
    Der(Vec<u8>),
}

/// Every CRL in PEM text (none is an error).
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

fn bad(option: &str, path: &str, reason: &str) -> Error {
    Error::File {
        option: option.into(),
        path: path.into(),
        reason: reason.into(),
    }
}

/// Loads the CRLs into the context's trust store and sets the check mode;
/// true when a missing CRL must be forgiven (best effort).
pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<bool, Error> {
    for source in &o.crls {
        let crls = match source {
            CrlSource::File(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| bad("crlfile", path, crate::posix::error_name(&e)))?;
                crls_from_pem(&pem).map_err(|why| bad("crlfile", path, why))?
            }
            CrlSource::Pem(pem) => crls_from_pem(pem).map_err(|why| bad("crls", "", why))?,
            CrlSource::Der(der) => {
                vec![X509Crl::from_der(der).map_err(|_| bad("crls", "", "bad_crl"))?]
            }
        };
        for crl in crls {
            // The store takes its own reference; a duplicate is harmless.
            unsafe { super::ffi::X509_STORE_add_crl(b.cert_store_mut().as_ptr(), crl.as_ptr()) };
        }
    }
    let flags = match o.crl_check {
        CrlCheck::Off => return Ok(false),
        CrlCheck::Peer => X509VerifyFlags::CRL_CHECK,
        CrlCheck::All | CrlCheck::BestEffort => {
            X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL
        }
    };
    b.verify_param_mut()
        .set_flags(flags)
        .map_err(|e| Error::Internal(format!("crl_check: {e}")))?;
    Ok(o.crl_check == CrlCheck::BestEffort)
}
