//! Certificate revocation lists: where they come from and how strictly the
//! peer's chain is checked against them (OTP's `crl_check`).

use super::error::Error;
use super::options::Options;
use super::pem;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::x509::verify::X509VerifyFlags;

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
                pem::crls_from_pem(&pem).map_err(|why| bad("crlfile", path, why))?
            }
            CrlSource::Pem(text) => pem::crls_from_pem(text).map_err(|why| bad("crls", "", why))?,
            CrlSource::Der(der) => {
                vec![pem::crl_from_der(der).map_err(|why| bad("crls", "", why))?]
            }
        };
        for crl in crls {
            // The store takes its own reference; a duplicate is harmless.
            // SAFETY: a live store (owned by `b`) and a live CRL.
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
