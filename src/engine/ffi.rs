//! The few raw OpenSSL calls the `openssl` crate does not wrap.

use libc::{c_int, c_long};
use openssl_sys::SSL;

pub type InfoCallback = unsafe extern "C" fn(ssl: *const SSL, where_: c_int, ret: c_int);

pub const SSL_CB_ALERT: c_int = 0x4000;
pub const SSL_CB_READ: c_int = 0x04;

extern "C" {
    pub fn SSL_CTX_get_ciphers(ctx: *const openssl_sys::SSL_CTX)
        -> *mut openssl_sys::OPENSSL_STACK;
    pub fn SSL_set_info_callback(ssl: *mut SSL, cb: Option<InfoCallback>);
    pub fn SSL_get_verify_result(ssl: *const SSL) -> c_long;
}
