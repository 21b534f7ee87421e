//! The few raw OpenSSL calls the `openssl` crate does not wrap.

use libc::{c_char, c_int, c_long, c_ulong, c_void};
use openssl_sys::{stack_st_X509, BIGNUM, SSL, SSL_CTX, SSL_SESSION, X509_STORE, X509_STORE_CTX};

/// `SSL_CTX_set_msg_callback`'s callback.
pub type MsgCallback = unsafe extern "C" fn(
    write_p: c_int,
    version: c_int,
    content_type: c_int,
    buf: *const c_void,
    len: usize,
    ssl: *mut SSL,
    arg: *mut c_void,
);
pub type InfoCallback = unsafe extern "C" fn(ssl: *const SSL, where_: c_int, ret: c_int);
pub type VerifyCallback = extern "C" fn(ok: c_int, ctx: *mut X509_STORE_CTX) -> c_int;
pub type CertVerifyCallback =
    unsafe extern "C" fn(ctx: *mut X509_STORE_CTX, arg: *mut c_void) -> c_int;
pub type SrpUsernameCallback =
    unsafe extern "C" fn(ssl: *mut SSL, alert: *mut c_int, arg: *mut c_void) -> c_int;

pub const SSL_CB_ALERT: c_int = 0x4000;
pub const SSL_CB_HANDSHAKE_START: c_int = 0x10;
pub const SSL_CB_HANDSHAKE_DONE: c_int = 0x20;
pub const SSL_KEY_UPDATE_NOT_REQUESTED: c_int = 0;
pub const SSL_KEY_UPDATE_REQUESTED: c_int = 1;
pub const SSL_CB_READ: c_int = 0x04;
pub const X509_V_FLAG_PARTIAL_CHAIN: c_ulong = 0x80000;
pub const SSL_TLSEXT_ERR_OK: c_int = 0;
pub const SSL_TLSEXT_ERR_NOACK: c_int = 3;
pub const SSL3_AL_FATAL: c_int = 2;
/// The record content type of an alert.
pub const SSL3_RT_ALERT: u8 = 21;
pub const SSL_AD_UNKNOWN_PSK_IDENTITY: c_int = 115;
pub const SSL_CTRL_MODE: c_int = 33;
pub const SSL_CTRL_SET_CURRENT_CERT: c_int = 117;
pub const SSL_CERT_SET_FIRST: c_long = 1;
pub const SSL_CERT_SET_NEXT: c_long = 2;
pub type CertCallback = unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;
pub const SSL_CTRL_CLEAR_MODE: c_int = 78;
pub const SSL_MODE_ASYNC: c_long = 0x100;
/// `SSL_ERROR_WANT_ASYNC`: the handshake's async job paused.
pub const SSL_ERROR_WANT_ASYNC: c_int = 9;
/// `SSL_OP_ALLOW_CLIENT_RENEGOTIATION` (OpenSSL 3.0).
pub const SSL_OP_ALLOW_CLIENT_RENEGOTIATION: u64 = 1 << 8;

#[repr(C)]
pub struct SRP_gN {
    pub id: *mut c_char,
    pub g: *mut BIGNUM,
    pub n: *mut BIGNUM,
}

extern "C" {
    pub fn SSL_renegotiate(ssl: *mut SSL) -> c_int;
    pub fn SSL_key_update(ssl: *mut SSL, updatetype: c_int) -> c_int;
    pub fn SSL_renegotiate_pending(ssl: *const SSL) -> c_int;
    pub fn SSL_CTX_get_ciphers(ctx: *const openssl_sys::SSL_CTX)
        -> *mut openssl_sys::OPENSSL_STACK;
    pub fn SSL_CIPHER_get_kx_nid(c: *const openssl_sys::SSL_CIPHER) -> c_int;
    pub fn SSL_CIPHER_get_auth_nid(c: *const openssl_sys::SSL_CIPHER) -> c_int;
    pub fn SSL_CTX_set_msg_callback(ctx: *mut SSL_CTX, cb: Option<MsgCallback>);
    pub fn SSL_get_shutdown(ssl: *const SSL) -> c_int;
    pub fn SSL_set_info_callback(ssl: *mut SSL, cb: Option<InfoCallback>);
    pub fn SSL_get_verify_result(ssl: *const SSL) -> c_long;
    pub fn SSL_set_options(ssl: *mut SSL, options: u64) -> u64;
    pub fn SSL_clear_options(ssl: *mut SSL, options: u64) -> u64;
    pub fn SSL_get_options(ssl: *const SSL) -> u64;

    // Maximum fragment length (RFC 6066).
    pub fn SSL_CTX_set_tlsext_max_fragment_length(ctx: *mut SSL_CTX, mode: u8) -> c_int;
    pub fn SSL_SESSION_get_max_fragment_length(session: *const SSL_SESSION) -> u8;

    // Certificates (identity.rs).
    pub fn SSL_CTX_set_cert_cb(ctx: *mut SSL_CTX, cb: Option<CertCallback>, arg: *mut c_void);
    pub fn SSL_get_shared_sigalgs(
        ssl: *mut SSL,
        idx: c_int,
        psign: *mut c_int,
        phash: *mut c_int,
        psignhash: *mut c_int,
        rsig: *mut libc::c_uchar,
        rhash: *mut libc::c_uchar,
    ) -> c_int;
    pub fn EVP_PKEY_get_base_id(pkey: *const openssl_sys::EVP_PKEY) -> c_int;

    // Verification.
    pub fn SSL_CTX_get_verify_callback(ctx: *const SSL_CTX) -> Option<VerifyCallback>;
    pub fn SSL_CTX_get_verify_depth(ctx: *const SSL_CTX) -> c_int;
    pub fn SSL_set_verify_depth(ssl: *mut SSL, depth: c_int);
    pub fn SSL_CTX_set_cert_verify_callback(
        ctx: *mut SSL_CTX,
        cb: Option<CertVerifyCallback>,
        arg: *mut c_void,
    );
    pub fn X509_STORE_CTX_get0_untrusted(ctx: *mut X509_STORE_CTX) -> *mut stack_st_X509;
    pub fn X509_STORE_CTX_get0_store(ctx: *mut X509_STORE_CTX) -> *mut X509_STORE;
    pub fn X509_STORE_CTX_get0_param(
        ctx: *mut X509_STORE_CTX,
    ) -> *mut openssl_sys::X509_VERIFY_PARAM;
    pub fn X509_STORE_CTX_set0_trusted_stack(ctx: *mut X509_STORE_CTX, sk: *mut stack_st_X509);
    pub fn X509_STORE_CTX_get_num_untrusted(ctx: *mut X509_STORE_CTX) -> c_int;
    pub fn X509_STORE_CTX_get0_current_crl(ctx: *mut X509_STORE_CTX) -> *mut openssl_sys::X509_CRL;
    pub fn X509_STORE_add_crl(store: *mut X509_STORE, crl: *mut openssl_sys::X509_CRL) -> c_int;

    // Sessions.
    pub fn SSL_SESSION_is_resumable(session: *const SSL_SESSION) -> c_int;
    /// TLS 1.3: the resumption PSK of a ticket's session.
    pub fn SSL_SESSION_get_master_key(
        session: *const SSL_SESSION,
        out: *mut u8,
        outlen: usize,
    ) -> usize;
    pub fn SSL_SESSION_get0_peer(session: *mut SSL_SESSION) -> *mut openssl_sys::X509;
    pub fn SSL_SESSION_get0_cipher(session: *const SSL_SESSION) -> *const openssl_sys::SSL_CIPHER;
    pub fn SSL_CIPHER_get_protocol_id(cipher: *const openssl_sys::SSL_CIPHER) -> u16;

    // PSK and SRP.
    pub fn SSL_get_pending_cipher(ssl: *const SSL) -> *const openssl_sys::SSL_CIPHER;
    pub fn SSL_CTX_use_psk_identity_hint(ctx: *mut SSL_CTX, hint: *const c_char) -> c_int;
    pub fn SSL_CTX_set_srp_username(ctx: *mut SSL_CTX, name: *mut c_char) -> c_int;
    pub fn SSL_CTX_set_srp_password(ctx: *mut SSL_CTX, password: *mut c_char) -> c_int;
    pub fn SSL_CTX_set_srp_username_callback(
        ctx: *mut SSL_CTX,
        cb: Option<SrpUsernameCallback>,
    ) -> c_int;
    pub fn SSL_get_srp_username(ssl: *mut SSL) -> *mut c_char;
    pub fn SSL_set_srp_server_param(
        ssl: *mut SSL,
        n: *const BIGNUM,
        g: *const BIGNUM,
        salt: *mut BIGNUM,
        verifier: *mut BIGNUM,
        info: *mut c_char,
    ) -> c_int;
    pub fn SRP_get_default_gN(id: *const c_char) -> *mut SRP_gN;

    // Async jobs (pausing a handshake).
    pub fn SSL_waiting_for_async(ssl: *mut SSL) -> c_int;
    pub fn ASYNC_is_capable() -> c_int;
    pub fn ASYNC_get_current_job() -> *mut c_void;
    pub fn ASYNC_pause_job() -> c_int;

}
