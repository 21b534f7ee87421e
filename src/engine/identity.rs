//! Several certificates in one context (OTP's `certs_keys`): which one a
//! TLS 1.2 client sends.
//!
//! OpenSSL files each certificate under its key type and, in TLS 1.3 and on
//! servers, picks the one the peer's signature algorithms allow. A TLS 1.2
//! client sends the *current* certificate (the last loaded), so a
//! certificate callback makes current the first one the server's
//! CertificateRequest allows, in the server's order of preference.

use super::ffi;
use libc::{c_int, c_uchar, c_void};
use openssl::pkey::Id;
use openssl::ssl::SslContextBuilder;
use openssl_sys::SSL;
use std::ptr;

/// Installs the choice on a client context holding several certificates.
pub(crate) fn install_client_choice(b: &mut SslContextBuilder) {
    // SAFETY: `b` owns a live SSL_CTX; the callback takes no argument.
    unsafe { ffi::SSL_CTX_set_cert_cb(b.as_ptr(), Some(choose_client_cert), ptr::null_mut()) }
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

unsafe extern "C" fn choose_client_cert(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    // TLS 1.3 chooses among all certificates by itself.
    if openssl_sys::SSL_version(ssl) >= openssl_sys::TLS1_3_VERSION {
        return 1;
    }
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
            return 1;
        }
    }
    // None fits: OpenSSL then finds no signature algorithm for the current
    // certificate and sends none, as with a single unsuitable one.
    1
}
