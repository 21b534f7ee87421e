//! Application checks of the peer's certificates: a per-certificate verify
//! function (OTP's `verify_fun`) and the choice of a trust anchor inside
//! the peer's chain (OTP's `partial_chain`).
//!
//! Both are called inside the handshake, in the thread that drives it; on
//! a pausable connection they may answer later (`Poll::Pending`: see
//! `pause.rs`).

use super::connection::guard;
use super::ffi;
use super::hooks;
use super::options::Options;
use foreign_types::{ForeignType, ForeignTypeRef};
use libc::{c_int, c_void};
use openssl::stack::{Stack, StackRef};
use openssl::x509::{X509StoreContext, X509StoreContextRef, X509VerifyResult, X509};
use openssl_sys::X509_STORE_CTX;
use std::task::Poll;

/// One certificate of the peer's chain, as the verify function sees it.
#[derive(Debug, Clone, Copy)]
pub struct CertCheck<'a> {
    /// The certificate, DER.
    pub der: &'a [u8],
    /// 0 for the peer's own certificate, 1 for its issuer, and so on.
    pub depth: u32,
    /// 0 when OpenSSL found nothing wrong, else an `X509_V_ERR_*` code
    /// ([`reason_name`] gives OTP's name for it).
    pub error: i32,
    /// The certificate is a trust anchor: it came from the trusted store
    /// (or the partial-chain function chose it), not from the peer alone.
    pub trusted: bool,
    /// For a revoked certificate (`X509_V_ERR_CERT_REVOKED`), the reason
    /// code of its CRL entry (RFC 5280 CRLReason), when it has one.
    pub crl_reason: Option<i32>,
}

/// The verify function's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accept the certificate, even with an error.
    Accept,
    /// Fail the handshake (a `handshake_failure` alert when OpenSSL had no
    /// error of its own for it).
    Reject,
    /// Fail the handshake as if OpenSSL had found the `X509_V_ERR_*` error
    /// given (OpenSSL picks the alert from it: [`X509_V_ERR_CERT_REJECTED`]
    /// sends bad_certificate, [`X509_V_ERR_CERT_HAS_EXPIRED`]
    /// certificate_expired, and so on).
    Fail(i32),
}

/// Called for each certificate of the peer's chain, from the trust anchor
/// down to the peer (depth 0), and again for each error found. Pending:
/// asked again, with the same check, when the handshake resumes.
pub type VerifyFn = dyn Fn(&CertCheck<'_>) -> Poll<Verdict> + Send + Sync;

/// Given the peer's chain (DER, the peer's own certificate first) when it
/// does not lead to a trusted CA, names the certificate to trust as the
/// anchor (an index into the chain), or None.
pub type PartialChainFn = dyn Fn(&[Vec<u8>]) -> Poll<Option<usize>> + Send + Sync;

// X509_V_ERR_* values (x509_vfy.h).
pub const X509_V_OK: i32 = 0;
pub const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
pub const X509_V_ERR_UNABLE_TO_GET_CRL: i32 = 3;
pub const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;
pub const X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
pub const X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
pub const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
pub const X509_V_ERR_CERT_REVOKED: i32 = 23;
pub const X509_V_ERR_PATH_LENGTH_EXCEEDED: i32 = 25;
pub const X509_V_ERR_INVALID_PURPOSE: i32 = 26;
pub const X509_V_ERR_CERT_REJECTED: i32 = 28;
pub const X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION: i32 = 34;
pub const X509_V_ERR_APPLICATION_VERIFICATION: i32 = 50;
pub const X509_V_ERR_HOSTNAME_MISMATCH: i32 = 62;
pub const X509_V_ERR_IP_ADDRESS_MISMATCH: i32 = 64;

/// OTP's name for an `X509_V_ERR_*` code, as in `{bad_cert, Reason}`
/// (`valid` for 0; `unknown` for codes OTP has no name for).
pub fn reason_name(error: i32) -> &'static str {
    match error {
        0 => "valid",
        2 | 20 | 21 | 19 => "unknown_ca",
        18 => "selfsigned_peer",
        9 | 10 => "cert_expired",
        4 | 6 | 7 | 8 => "invalid_signature",
        3 | 11 | 12 | 13 | 14 | 15 | 16 | 33 | 35 | 36 => "revocation_status_undetermined",
        23 => "revoked",
        24 | 37 | 41 | 79 => "missing_basic_constraint",
        22 | 25 => "max_path_length_reached",
        26 | 28 | 32 | 39 => "invalid_key_usage",
        34 => "unknown_critical_extension",
        47 | 48 | 49 | 51 | 52 | 53 => "name_not_permitted",
        62..=64 => "hostname_check_failed",
        50 => "application_verification",
        _ => "unknown",
    }
}

/// OpenSSL's text for an `X509_V_ERR_*` code.
pub fn error_text(error: i32) -> &'static str {
    // SAFETY: any value is accepted; unknown codes get a generic text.
    unsafe { X509VerifyResult::from_raw(error as c_int) }.error_string()
}

/// Installs the raw callbacks when an application check or best-effort CRL
/// checking needs them. The verify mode set by `config.rs` is kept.
pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options, crl_best_effort: bool) {
    // SAFETY: `b` owns a live SSL_CTX; the trampolines match OpenSSL's
    // callback types and need no argument.
    unsafe {
        // Always with peer verification: the trampoline also gives host
        // name mismatches OTP's alert.
        if o.verify_fun.is_some() || crl_best_effort || o.verify == super::options::Verify::Peer {
            let mode = openssl_sys::SSL_CTX_get_verify_mode(b.as_ptr());
            openssl_sys::SSL_CTX_set_verify(b.as_ptr(), mode, Some(verify_trampoline));
        }
        if o.partial_chain.is_some() {
            ffi::SSL_CTX_set_cert_verify_callback(
                b.as_ptr(),
                Some(chain_trampoline),
                std::ptr::null_mut(),
            );
        }
    }
}

/// What the verify callbacks need from the hooks of the context the
/// connection of `store` uses now: (verify_fun, partial_chain, crl best effort).
type VerifyHooks = (
    Option<hooks::Callback<VerifyFn>>,
    Option<hooks::Callback<PartialChainFn>>,
    bool,
);

fn hooks_of(store: &X509StoreContextRef) -> Option<VerifyHooks> {
    let ssl = store.ex_data(X509StoreContext::ssl_idx().ok()?)?;
    let h = hooks::of(ssl.ssl_context())?;
    Some((
        h.verify_fun.clone(),
        h.partial_chain.clone(),
        h.crl_best_effort,
    ))
}

/// OpenSSL's per-certificate verify callback.
pub(crate) extern "C" fn verify_trampoline(
    preverify_ok: c_int,
    store: *mut X509_STORE_CTX,
) -> c_int {
    // SAFETY: OpenSSL passes the live store of the verification under way;
    // its SSL outlives this call.
    guard(0, || unsafe {
        let store = X509StoreContextRef::from_ptr_mut(store);
        let preverify_ok = forgive_anchor_path_length(preverify_ok, store);
        let (ok, chosen) = apply_hooks(preverify_ok, store);
        if ok == 0 {
            // (A pointer: the store is changed while the SSL is in use.)
            let ssl = X509StoreContext::ssl_idx()
                .ok()
                .and_then(|idx| store.ex_data(idx))
                .map(|ssl| ssl.as_ptr());
            let ssl = ssl.map(|ptr| openssl::ssl::SslRef::from_ptr(ptr));
            if let Some(ssl) = ssl {
                remember_reason(ssl, store.error().as_raw());
            }
            if !chosen {
                if let Some(carrier) = otp_alert_carrier(store.error().as_raw()) {
                    store.set_error(X509VerifyResult::from_raw(carrier));
                }
            }
            if let Some(ssl) = ssl {
                if super::tls13_alert::defer(ssl, store.error().as_raw()) {
                    // Reported after the handshake, protected (tls13_alert).
                    return 1;
                }
            }
        }
        ok
    })
}

/// OTP, as RFC 5280 allows, does not apply the trust anchor's own path
/// length constraint (a root with pathlen:0 above an intermediate);
/// OpenSSL does. A constraint below the anchor still counts.
///
/// # Safety
/// `store` is the store of a verification under way.
unsafe fn forgive_anchor_path_length(
    preverify_ok: c_int,
    store: &mut X509StoreContextRef,
) -> c_int {
    if preverify_ok != 0 || store.error().as_raw() != X509_V_ERR_PATH_LENGTH_EXCEEDED {
        return preverify_ok;
    }
    let untrusted = ffi::X509_STORE_CTX_get_num_untrusted(store.as_ptr());
    if untrusted >= 0 && store.error_depth() >= untrusted as u32 {
        store.set_error(X509VerifyResult::OK);
        return 1;
    }
    preverify_ok
}

/// For an error OpenSSL found itself, the `X509_V_ERR_*` code OpenSSL
/// answers with the alert OTP sends for that failure, when that is another
/// code (OpenSSL's own alert differs for many: unknown_ca for a CA:FALSE
/// issuer, bad_certificate for a certificate not yet valid...). The error
/// text still names the failure itself ([`failure_text`]); a TLS 1.3
/// client's deferred alert maps the same codes (`tls13_alert::alert_for`).
fn otp_alert_carrier(error: i32) -> Option<i32> {
    let carrier = match error {
        // unknown_ca
        2 | 19 | 20 | 21 => X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        // cert_expired, not yet valid too: certificate_expired
        9 | 10 => X509_V_ERR_CERT_HAS_EXPIRED,
        // unknown_critical_extension: unsupported_certificate
        X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION => X509_V_ERR_INVALID_PURPOSE,
        // selfsigned_peer, invalid_signature, revocation status
        // undetermined, name_not_permitted: bad_certificate
        3 | 4 | 6 | 7 | 8 | 11..=16 | 18 | 33 | 35 | 36 | 47..=49 | 51..=53 => {
            X509_V_ERR_CERT_REJECTED
        }
        // missing_basic_constraint, max_path_length_reached, invalid
        // (extended) key usage, a failed host name check: OTP's catch-all
        // handshake_failure
        22 | 24 | 25 | 26 | 32 | 37 | 39 | 41 | 62..=64 | 79 => X509_V_ERR_APPLICATION_VERIFICATION,
        _ => return None,
    };
    (carrier != error).then_some(carrier)
}

/// An SSL ex_data slot (no destructor) for the first verification error
/// that failed the handshake, which its text names when the error given
/// to OpenSSL was changed only to get OTP's alert.
// SAFETY: a new index with no callbacks; nothing is passed but NULL.
static REASON_SLOT: once_cell::sync::Lazy<c_int> = once_cell::sync::Lazy::new(|| unsafe {
    openssl_sys::CRYPTO_get_ex_new_index(
        openssl_sys::CRYPTO_EX_INDEX_SSL,
        0,
        std::ptr::null_mut(),
        None,
        None,
        None,
    )
});

/// Keeps `error` as the reason of the failure, unless one is kept already
/// (a TLS 1.3 client goes on after its first failure: `tls13_alert`).
fn remember_reason(ssl: &openssl::ssl::SslRef, error: i32) {
    // SAFETY: called inside the handshake that owns `ssl`; the slot holds
    // a small integer, never a pointer.
    unsafe {
        if openssl_sys::SSL_get_ex_data(ssl.as_ptr(), *REASON_SLOT).is_null() {
            openssl_sys::SSL_set_ex_data(ssl.as_ptr(), *REASON_SLOT, error as usize as *mut c_void);
        }
    };
}

/// The text of a verification failure: OpenSSL's for `error`, or for the
/// error it stood for (see [`remember_reason`]).
pub(crate) fn failure_text(ssl: &openssl::ssl::SslRef, error: i32) -> &'static str {
    // SAFETY: the slot holds an integer or NULL.
    let kept = unsafe { openssl_sys::SSL_get_ex_data(ssl.as_ptr(), *REASON_SLOT) } as usize;
    error_text(if kept != 0 { kept as i32 } else { error })
}

/// The verify function and CRL best-effort rule, when the context has them:
/// the verdict, and whether the verify function chose the error to fail
/// with (`Verdict::Fail`).
///
/// # Safety
/// `store` is the store of a verification under way, as OpenSSL passes it
/// to the verify callback.
unsafe fn apply_hooks(preverify_ok: c_int, store: &mut X509StoreContextRef) -> (c_int, bool) {
    {
        let Some((verify_fun, _, crl_best_effort)) = hooks_of(store) else {
            return (preverify_ok, false);
        };
        let mut chosen = false;
        let mut ok = preverify_ok != 0;
        let mut error = store.error().as_raw();
        if !ok && crl_best_effort && error == X509_V_ERR_UNABLE_TO_GET_CRL {
            store.set_error(X509VerifyResult::OK);
            ok = true;
            error = X509_V_OK;
        }
        if let Some(fun) = &verify_fun {
            let der = store
                .current_cert()
                .and_then(|cert| cert.to_der().ok())
                .unwrap_or_default();
            let depth = store.error_depth();
            let untrusted = ffi::X509_STORE_CTX_get_num_untrusted(store.as_ptr());
            let check = CertCheck {
                der: &der,
                depth,
                error,
                trusted: untrusted >= 0 && depth >= untrusted as u32,
                crl_reason: if error == X509_V_ERR_CERT_REVOKED {
                    crl_reason(store)
                } else {
                    None
                },
            };
            let ssl = X509StoreContext::ssl_idx()
                .ok()
                .and_then(|idx| store.ex_data(idx));
            let verdict = match ssl {
                Some(ssl) => super::pause::answer(ssl, || fun(&check)),
                None => match fun(&check) {
                    Poll::Ready(verdict) => Some(verdict),
                    Poll::Pending => None,
                },
            };
            // No answer (the handshake is being abandoned): reject.
            match verdict.unwrap_or(Verdict::Reject) {
                Verdict::Accept => {
                    if !ok {
                        store.set_error(X509VerifyResult::OK);
                    }
                    ok = true;
                }
                Verdict::Reject => {
                    if ok {
                        store.set_error(X509VerifyResult::from_raw(
                            X509_V_ERR_APPLICATION_VERIFICATION,
                        ));
                    }
                    ok = false;
                }
                Verdict::Fail(code) => {
                    store.set_error(X509VerifyResult::from_raw(code));
                    ok = false;
                    chosen = true;
                }
            }
        }
        (ok as c_int, chosen)
    }
}

/// The reason code of the current certificate's entry in the CRL that
/// revoked it.
///
/// # Safety
/// As [`apply_hooks`]: the store's current CRL, if any, is live.
unsafe fn crl_reason(store: &X509StoreContextRef) -> Option<i32> {
    let crl = ffi::X509_STORE_CTX_get0_current_crl(store.as_ptr());
    if crl.is_null() {
        return None;
    }
    let crl = openssl::x509::X509CrlRef::from_ptr(crl);
    let cert = store.current_cert()?.to_owned();
    match crl.get_by_cert(&cert) {
        openssl::x509::CrlStatus::Revoked(entry) => {
            let (_, reason) = entry.extension::<openssl::x509::ReasonCode>().ok()??;
            i32::try_from(reason.get_i64().ok()?).ok()
        }
        _ => None,
    }
}

/// OpenSSL's whole-chain verification callback: verifies as usual, unless
/// the chain has no trusted anchor and the partial-chain function names one.
unsafe extern "C" fn chain_trampoline(store: *mut X509_STORE_CTX, _arg: *mut c_void) -> c_int {
    // SAFETY: OpenSSL passes the live store of the verification under way;
    // `trusted` outlives X509_verify_cert, which takes its own references.
    guard(0, || {
        let store_ref = X509StoreContextRef::from_ptr_mut(store);
        let anchor = hooks_of(store_ref)
            .and_then(|(_, partial_chain, _)| partial_chain)
            .and_then(|fun| chosen_anchor(store, &*fun));
        match anchor {
            Some(trusted) => {
                let param = ffi::X509_STORE_CTX_get0_param(store);
                openssl_sys::X509_VERIFY_PARAM_set_flags(param, ffi::X509_V_FLAG_PARTIAL_CHAIN);
                ffi::X509_STORE_CTX_set0_trusted_stack(store, trusted.as_ptr());
                // The verified chain holds its own references: `trusted`
                // may go when verification is over.
                openssl_sys::X509_verify_cert(store)
            }
            None => openssl_sys::X509_verify_cert(store),
        }
    })
}

/// Asks the partial-chain function when the peer's chain does not verify
/// for want of a trusted issuer; the anchor it picks, as a trusted stack.
///
/// # Safety
/// `store` is the live store of a verification under way.
unsafe fn chosen_anchor(store: *mut X509_STORE_CTX, fun: &PartialChainFn) -> Option<Stack<X509>> {
    let untrusted = ffi::X509_STORE_CTX_get0_untrusted(store);
    if untrusted.is_null() {
        return None;
    }
    let chain = StackRef::<X509>::from_ptr(untrusted);
    let leaf = chain.get(0)?;
    let trust = openssl::x509::store::X509StoreRef::from_ptr(ffi::X509_STORE_CTX_get0_store(store));
    let mut trial = X509StoreContext::new().ok()?;
    let error = trial
        .init(trust, leaf, chain, |c| {
            c.verify_cert().map(|_| c.error().as_raw())
        })
        .ok()?;
    if !matches!(
        error,
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
            | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
            | X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    ) {
        return None;
    }
    let ders: Vec<Vec<u8>> = chain.iter().filter_map(|c| c.to_der().ok()).collect();
    let ssl = X509StoreContextRef::from_ptr(store).ex_data(X509StoreContext::ssl_idx().ok()?)?;
    let index = super::pause::answer(ssl, || fun(&ders))??;
    let anchor = chain.get(index)?.to_owned();
    let mut trusted = Stack::new().ok()?;
    trusted.push(anchor).ok()?;
    Some(trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_otp_names() {
        assert_eq!(reason_name(0), "valid");
        assert_eq!(
            reason_name(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            "unknown_ca"
        );
        assert_eq!(reason_name(X509_V_ERR_CERT_REVOKED), "revoked");
        assert_eq!(reason_name(62), "hostname_check_failed");
        assert_eq!(error_text(10), "certificate has expired");
    }

    #[test]
    fn openssl_errors_carry_otps_alerts() {
        // OpenSSL 3's INVALID_CA (a CA:FALSE issuer): handshake_failure.
        assert_eq!(
            otp_alert_carrier(79),
            Some(X509_V_ERR_APPLICATION_VERIFICATION)
        );
        assert_eq!(reason_name(79), "missing_basic_constraint");
        // Not yet valid: certificate_expired, as an expired certificate.
        assert_eq!(otp_alert_carrier(9), Some(X509_V_ERR_CERT_HAS_EXPIRED));
        assert_eq!(
            otp_alert_carrier(X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION),
            Some(X509_V_ERR_INVALID_PURPOSE)
        );
        assert_eq!(
            otp_alert_carrier(X509_V_ERR_INVALID_PURPOSE),
            Some(X509_V_ERR_APPLICATION_VERIFICATION)
        );
        assert_eq!(
            otp_alert_carrier(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
            Some(X509_V_ERR_CERT_REJECTED)
        );
        // Already the carrier of OTP's alert, or no OTP name: unchanged.
        assert_eq!(otp_alert_carrier(X509_V_ERR_CERT_HAS_EXPIRED), None);
        assert_eq!(otp_alert_carrier(X509_V_ERR_CERT_REVOKED), None);
        assert_eq!(otp_alert_carrier(X509_V_ERR_CERT_REJECTED), None);
        assert_eq!(otp_alert_carrier(17), None);
        // The carriers are what a TLS 1.3 client sends too.
        assert_eq!(
            super::super::tls13_alert::alert_for(X509_V_ERR_INVALID_PURPOSE),
            43
        );
        assert_eq!(
            super::super::tls13_alert::alert_for(X509_V_ERR_APPLICATION_VERIFICATION),
            40
        );
    }
}

#[cfg(test)]
mod handshake_tests {
    use super::*;
    use crate::engine::connection::tests::{
        client_options, handshake_pair, pair, server_options, test_pki,
    };
    use crate::engine::{Error, Progress};
    use std::sync::{Arc, Mutex};

    #[test]
    fn verify_fun_sees_each_certificate_and_can_reject() {
        let pki = test_pki();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut co = client_options(&pki);
        co.verify_fun = Some(hooks::Callback(Arc::new(move |c: &CertCheck<'_>| {
            log.lock().unwrap().push((c.depth, c.error));
            Poll::Ready(if c.depth == 0 {
                Verdict::Reject
            } else {
                Verdict::Accept
            })
        })));
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, _) = handshake_pair(&mut client, &mut server);
        assert!(matches!(c, Err(Error::Alert { local: true, .. })), "{c:?}");
        assert_eq!(*seen.lock().unwrap(), vec![(1, 0), (0, 0)]);
    }

    #[test]
    fn verify_fun_can_accept_an_unknown_ca() {
        let pki = test_pki();
        let other = test_pki();
        let mut co = client_options(&other);
        co.verify_fun = Some(hooks::Callback(Arc::new(|c: &CertCheck<'_>| {
            Poll::Ready(if reason_name(c.error) == "unknown_ca" || c.error == 0 {
                Verdict::Accept
            } else {
                Verdict::Reject
            })
        })));
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
    }

    #[test]
    fn partial_chain_trusts_a_certificate_of_the_chain() {
        let pki = test_pki();
        let mut so = server_options(&pki);
        so.cert = Some(crate::engine::CertSource::Der(vec![
            pki.cert.clone(),
            pki.ca.clone(),
        ]));
        let mut co = client_options(&pki);
        co.cacerts = None;
        let ca = pki.ca.clone();
        co.partial_chain = Some(hooks::Callback(Arc::new(move |chain: &[Vec<u8>]| {
            Poll::Ready(chain.iter().position(|der| *der == ca))
        })));
        let (mut client, mut server) = pair(co.clone(), so.clone(), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));

        co.partial_chain = Some(hooks::Callback(Arc::new(|_: &[Vec<u8>]| Poll::Ready(None))));
        let (mut client, mut server) = pair(co, so, "localhost");
        let (c, _) = handshake_pair(&mut client, &mut server);
        assert!(matches!(c, Err(Error::Alert { local: true, .. })), "{c:?}");
    }
}
