//! What a TLS 1.2 connection presents, decided once its version is known
//! (OpenSSL's certificate callback, run after the hellos' versions and
//! extensions are read, before the cipher, curve and certificate are
//! chosen):
//!
//! - several certificates (OTP's `certs_keys`): OpenSSL files each under
//!   its key type and, in TLS 1.3 and on servers, picks the one the peer's
//!   signature algorithms allow. A TLS 1.2 client sends the *current*
//!   certificate (the last loaded), so the callback makes current the first
//!   one the server's CertificateRequest allows, in the server's order.
//! - OTP's `{certificate_authorities, false}` on a server: its TLS 1.3
//!   CertificateRequest names no CAs (OpenSSL sends the same list in both
//!   versions; TLS 1.2's keeps it, as OTP's does).
//! - OTP's `eccs` on a server: the curves for TLS 1.2 (ECDHE and ECDSA
//!   certificates) replace the connection's group list, which in TLS 1.3
//!   stays that of `supported_groups`. (A client knows no version when it
//!   sends its hello: config.rs gives a TLS 1.2-only client `eccs` as its
//!   group list, as OTP's sends its `eccs` then.)

use super::ffi;
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_uchar, c_void};
use once_cell::sync::Lazy;
use openssl::ex_data::Index;
use openssl::pkey::Id;
use openssl::ssl::{SslContext, SslContextBuilder, SslRef};
use openssl::stack::Stack;
use openssl_sys::SSL;
use std::ffi::CString;
use std::ptr;

/// What the callback does for a context's TLS 1.2 connections.
struct Tls12Choice {
    /// Client with several certificates: pick one for the request.
    client_identity: bool,
    /// Server: the group list (`eccs`) for TLS 1.2.
    groups: Option<CString>,
    /// Server: no CA names in TLS 1.3 certificate requests.
    tls13_no_ca_names: bool,
}

static CHOICE: Lazy<Index<SslContext, Tls12Choice>> =
    Lazy::new(|| SslContext::new_ex_index().expect("SSL_CTX ex_data index"));

/// Installs the callback when a context needs it.
pub(crate) fn install(
    b: &mut SslContextBuilder,
    client_identity: bool,
    groups: Option<&str>,
    tls13_no_ca_names: bool,
) {
    if !client_identity && groups.is_none() && !tls13_no_ca_names {
        return;
    }
    let groups = groups.and_then(|g| CString::new(g).ok());
    b.set_ex_data(
        *CHOICE,
        Tls12Choice {
            client_identity,
            groups,
            tls13_no_ca_names,
        },
    );
    // SAFETY: `b` owns a live SSL_CTX; the callback takes no argument (it
    // finds its settings in the context's ex_data).
    unsafe { ffi::SSL_CTX_set_cert_cb(b.as_ptr(), Some(tls12_choice), ptr::null_mut()) }
}

/// The key type (OpenSSL's base id) a TLS signature scheme signs with.
fn scheme_key(scheme: u16) -> Option<Id> {
    match scheme {
        0x0804..=0x0806 => Some(Id::RSA),
        0x0809..=0x080b => Some(Id::RSA_PSS),
        0x0807 => Some(Id::ED25519),
        0x0808 => Some(Id::ED448),
        _ => match scheme & 0xff {
            1 => Some(Id::RSA),
            2 => Some(Id::DSA),
            3 => Some(Id::EC),
            _ => None,
        },
    }
}

/// Makes the certificate of key type `key` current; false if there is none.
///
/// # Safety
/// `ssl` must be a live SSL.
unsafe fn select(ssl: *mut SSL, key: Id) -> bool {
    let mut op = ffi::SSL_CERT_SET_FIRST;
    while openssl_sys::SSL_ctrl(ssl, ffi::SSL_CTRL_SET_CURRENT_CERT, op, ptr::null_mut()) == 1 {
        let pkey = openssl_sys::SSL_get_privatekey(ssl);
        if !pkey.is_null() && ffi::EVP_PKEY_get_base_id(pkey) == key.as_raw() {
            return true;
        }
        op = ffi::SSL_CERT_SET_NEXT;
    }
    false
}

unsafe extern "C" fn tls12_choice(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    // The current context: after an SNI switch, the chosen host's.
    let Some(choice) = SslRef::from_ptr(ssl).ssl_context().ex_data(*CHOICE) else {
        return 1;
    };
    if openssl_sys::SSL_version(ssl) >= openssl_sys::TLS1_3_VERSION {
        if choice.tls13_no_ca_names && openssl_sys::SSL_is_server(ssl) == 1 {
            // An empty list: OpenSSL then sends no certificate_authorities.
            match Stack::new() {
                Ok(empty) => SslRef::from_ptr_mut(ssl).set_client_ca_list(empty),
                Err(_) => return 0,
            }
        }
        return 1;
    }
    if let Some(groups) = &choice.groups {
        if openssl_sys::SSL_ctrl(
            ssl,
            openssl_sys::SSL_CTRL_SET_GROUPS_LIST,
            0,
            groups.as_ptr() as *mut c_void,
        ) != 1
        {
            return 0;
        }
    }
    if choice.client_identity {
        choose_client_cert(ssl);
    }
    1
}

/// Makes current the first certificate the server's request allows.
///
/// # Safety
/// `ssl` must be a live SSL.
unsafe fn choose_client_cert(ssl: *mut SSL) {
    let count = ffi::SSL_get_shared_sigalgs(
        ssl,
        0,
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    for i in 0..count {
        let (mut rsig, mut rhash): (c_uchar, c_uchar) = (0, 0);
        ffi::SSL_get_shared_sigalgs(
            ssl,
            i,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut rsig,
            &mut rhash,
        );
        let scheme = (u16::from(rhash) << 8) | u16::from(rsig);
        if scheme_key(scheme).is_some_and(|key| select(ssl, key)) {
            return;
        }
    }
    // None fits: OpenSSL then finds no signature algorithm for the current
    // certificate and sends none, as with a single unsuitable one.
}
