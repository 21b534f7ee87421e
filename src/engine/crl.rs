//! Certificate revocation lists: where they come from and how strictly the
//! peer's chain is checked against them (OTP's `crl_check`).

use super::error::Error;
use super::hooks::Callback;
use super::options::Options;
use super::pem;
use foreign_types::{ForeignType, ForeignTypeRef};
use libc::c_int;
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::ssl::{SslContext, SslRef};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Crl, X509Ref, X509StoreContext, X509StoreContextRef};
use openssl_sys::{stack_st_X509_CRL, X509_NAME, X509_STORE_CTX};
use std::task::Poll;

/// Fetches the CRLs at a certificate's distribution points (http URIs):
/// DER CRLs, Pending while the answer is on its way, None to give up.
pub type CrlFetchFn = dyn Fn(&[String]) -> Poll<Option<Vec<Vec<u8>>>> + Send + Sync;

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

/// Where CRLs are looked up beyond the trust store while verifying: a
/// hashed directory (OTP's `ssl_crl_hash_dir`) and the certificates'
/// distribution points (OTP's `ssl_crl_cache` with `{http, Timeout}`).
struct Lookup {
    dir: Option<String>,
    fetch: Option<Callback<CrlFetchFn>>,
}

static LOOKUP: Lazy<Index<SslContext, Lookup>> =
    Lazy::new(|| SslContext::new_ex_index().expect("SSL_CTX ex_data index"));

extern "C" {
    fn X509_STORE_set_lookup_crls(
        store: *mut openssl_sys::X509_STORE,
        lookup: Option<
            unsafe extern "C" fn(*const X509_STORE_CTX, *const X509_NAME) -> *mut stack_st_X509_CRL,
        >,
    );
    fn X509_STORE_CTX_get1_crls(
        ctx: *const X509_STORE_CTX,
        name: *const X509_NAME,
    ) -> *mut stack_st_X509_CRL;
    fn X509_NAME_hash_ex(
        name: *const X509_NAME,
        libctx: *mut libc::c_void,
        propq: *const libc::c_char,
        ok: *mut c_int,
    ) -> libc::c_ulong;
    fn X509_STORE_CTX_get_current_cert(ctx: *const X509_STORE_CTX) -> *mut openssl_sys::X509;
}

/// OpenSSL's CRL lookup, then the directory's CRLs for that issuer, then
/// (when none was found) those at the certificate's distribution points.
unsafe extern "C" fn lookup_crls(
    ctx: *const X509_STORE_CTX,
    name: *const X509_NAME,
) -> *mut stack_st_X509_CRL {
    let mut found = X509_STORE_CTX_get1_crls(ctx, name);
    if found.is_null() {
        found = openssl_sys::OPENSSL_sk_new_null() as *mut stack_st_X509_CRL;
        if found.is_null() {
            return found;
        }
    }
    // SAFETY (of the block): `ctx` is the live verification OpenSSL runs;
    // the SSL it belongs to outlives it.
    let store = X509StoreContextRef::from_ptr(ctx as *mut X509_STORE_CTX);
    let Some(ssl) = X509StoreContext::ssl_idx()
        .ok()
        .and_then(|idx| store.ex_data::<SslRef>(idx))
    else {
        return found;
    };
    let Some(lookup) = ssl.ssl_context().ex_data(*LOOKUP) else {
        return found;
    };
    let had = openssl_sys::OPENSSL_sk_num(found as *const _) > 0;
    let mut extra = Vec::new();
    if let Some(dir) = &lookup.dir {
        extra.extend(hash_dir_crls(dir, name));
    }
    if !had && extra.is_empty() {
        if let Some(fetch) = &lookup.fetch {
            let cert = X509_STORE_CTX_get_current_cert(ctx);
            if !cert.is_null() {
                let urls = http_points(X509Ref::from_ptr(cert));
                if !urls.is_empty() {
                    let ders = super::pause::answer(ssl, || fetch(&urls)).flatten();
                    extra.extend(
                        ders.unwrap_or_default()
                            .iter()
                            .filter_map(|der| pem::crl_from_der(der).ok()),
                    );
                }
            }
        }
    }
    for crl in extra {
        // The stack takes the reference the CRL held.
        let raw = crl.as_ptr();
        std::mem::forget(crl);
        if openssl_sys::OPENSSL_sk_push(found as *mut _, raw as *const _) == 0 {
            openssl_sys::X509_CRL_free(raw);
        }
    }
    found
}

/// The CRLs of a directory laid out as `openssl rehash` lays it out: the
/// issuer name's hash, `.r0`, `.r1`... (PEM or DER, as OTP reads them).
///
/// # Safety
/// `name` is a live X509_NAME.
unsafe fn hash_dir_crls(dir: &str, name: *const X509_NAME) -> Vec<X509Crl> {
    let mut ok: c_int = 0;
    let hash = X509_NAME_hash_ex(name, std::ptr::null_mut(), std::ptr::null(), &mut ok);
    if ok == 0 {
        return Vec::new();
    }
    let mut crls = Vec::new();
    for n in 0.. {
        let path = std::path::Path::new(dir).join(format!("{hash:08x}.r{n}"));
        let Ok(bytes) = std::fs::read(&path) else {
            break;
        };
        if bytes.starts_with(b"-----BEGIN") {
            crls.extend(pem::crls_from_pem(&bytes).unwrap_or_default());
        } else if let Ok(crl) = pem::crl_from_der(&bytes) {
            crls.push(crl);
        }
    }
    crls
}

/// The http URIs of a certificate's CRL distribution points.
fn http_points(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|p| p.distpoint()?.fullname())
        .flat_map(|names| names.iter().filter_map(|n| n.uri()))
        .filter(|uri| uri.starts_with("http://"))
        .map(str::to_string)
        .collect()
}

/// Loads the CRLs into the context's trust store and sets the check mode;
/// true when a missing CRL must be forgiven (best effort).
pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<bool, Error> {
    if o.crl_dir.is_some() || o.crl_fetch.is_some() {
        b.set_ex_data(
            *LOOKUP,
            Lookup {
                dir: o.crl_dir.clone(),
                fetch: o.crl_fetch.clone(),
            },
        );
        // SAFETY: a live store owned by `b`; the function only reads what
        // OpenSSL passes it and the context's ex_data.
        unsafe { X509_STORE_set_lookup_crls(b.cert_store_mut().as_ptr(), Some(lookup_crls)) };
    }
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
