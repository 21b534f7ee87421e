//! Result codes: explicit, stable values grouped by range.
//!
//! A value, once published, keeps its meaning; a retired code is never
//! reused. New codes go at the end of their range.

use crate::engine;
use std::ffi::c_char;

/// What a call did. `RSSL_OK` is 0; every other value is a failure whose
/// details (path, reason, alert) `rssl_error_string` gives.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_result {
    RSSL_OK = 0,

    // 100-199: the caller's arguments or the order of calls.
    /// A required pointer argument was NULL.
    RSSL_NULL_PARAMETER = 100,
    /// An argument had a value outside its domain (unknown role, version,
    /// format, text that is not UTF-8, ...).
    RSSL_INVALID_ARGUMENT = 101,
    /// The caller's buffer was too small; the size needed is reported.
    RSSL_BUFFER_TOO_SMALL = 102,
    /// The call does not fit the object's state (e.g. sending before the
    /// handshake completed).
    RSSL_INVALID_STATE = 103,
    /// The value asked for does not exist (no peer certificate, no ALPN
    /// protocol negotiated, no alert in the last error, ...).
    RSSL_NOT_AVAILABLE = 104,

    // 200-299: configuration.
    /// An option value OpenSSL rejected (cipher list, versions, ...).
    RSSL_INVALID_OPTION = 200,
    /// A certificate, key or CA file does not exist.
    RSSL_FILE_NOT_FOUND = 201,
    /// A file exists but cannot be read (permissions, a directory, ...).
    RSSL_FILE_UNREADABLE = 202,
    /// Certificate data (file or memory) holds no usable certificate.
    RSSL_BAD_CERTIFICATE = 203,
    /// Key data (file or memory) holds no usable private key.
    RSSL_BAD_KEY = 204,
    /// The key is encrypted and the password is missing or wrong.
    RSSL_BAD_PASSWORD = 205,
    /// The private key does not belong to the certificate.
    RSSL_KEY_MISMATCH = 206,
    /// CRL data (file or memory) holds no usable revocation list.
    RSSL_BAD_CRL = 207,

    // 300-399: the network.
    /// The peer closed the connection (close_notify or end of stream).
    RSSL_CLOSED = 300,
    /// The timeout passed before the operation completed.
    RSSL_TIMEOUT = 301,
    /// A socket call failed; the error string names the system error.
    RSSL_IO_ERROR = 302,
    /// The host name could not be resolved.
    RSSL_RESOLVE_FAILED = 303,
    /// No address of the host accepted the TCP connection.
    RSSL_CONNECT_FAILED = 304,
    /// The local address is already in use.
    RSSL_ADDRESS_IN_USE = 305,
    /// A memory connection needs more ciphertext from the peer before the
    /// call can make progress (not a failure: feed input, call again).
    RSSL_WANT_READ = 306,
    /// The handshake stopped after the peer's hello, as the configuration
    /// asked (`rssl_config_builder_set_pause_after_hello`; not a failure):
    /// look at it, then `rssl_conn_hello_continue` or
    /// `rssl_conn_hello_cancel`, and call the handshake again.
    RSSL_HELLO = 307,
    /// The handshake waits for an asynchronous callback that answered
    /// `RSSL_PAUSED` (not a failure; see
    /// `rssl_config_builder_set_async_verify_callback`): once the answer is
    /// ready, call the handshake again on the same thread; the callback is
    /// asked again. Also what such a callback returns to answer later.
    RSSL_PAUSED = 308,

    // 400-499: TLS.
    /// A fatal TLS alert ended the handshake or connection, sent by us or
    /// by the peer: see `rssl_last_alert` and `rssl_error_string`.
    RSSL_TLS_ALERT = 400,
    /// OpenSSL failed without an alert.
    RSSL_TLS_ERROR = 401,

    // 900-999: bugs in rssl.
    /// rssl caught an internal panic; the object involved should be freed.
    RSSL_PANIC = 900,
}

use rssl_result::*;

impl rssl_result {
    // Every code, for tests and for `from_u32` (private: not for the header).
    const ALL: [rssl_result; 26] = [
        RSSL_OK,
        RSSL_NULL_PARAMETER,
        RSSL_INVALID_ARGUMENT,
        RSSL_BUFFER_TOO_SMALL,
        RSSL_INVALID_STATE,
        RSSL_NOT_AVAILABLE,
        RSSL_INVALID_OPTION,
        RSSL_FILE_NOT_FOUND,
        RSSL_FILE_UNREADABLE,
        RSSL_BAD_CERTIFICATE,
        RSSL_BAD_KEY,
        RSSL_BAD_PASSWORD,
        RSSL_KEY_MISMATCH,
        RSSL_BAD_CRL,
        RSSL_CLOSED,
        RSSL_TIMEOUT,
        RSSL_IO_ERROR,
        RSSL_RESOLVE_FAILED,
        RSSL_CONNECT_FAILED,
        RSSL_ADDRESS_IN_USE,
        RSSL_WANT_READ,
        RSSL_HELLO,
        RSSL_PAUSED,
        RSSL_TLS_ALERT,
        RSSL_TLS_ERROR,
        RSSL_PANIC,
    ];

    pub fn from_u32(code: u32) -> Option<rssl_result> {
        Self::ALL.into_iter().find(|r| *r as u32 == code)
    }

    /// A short, fixed description of the code.
    pub fn description(self) -> &'static std::ffi::CStr {
        match self {
            RSSL_OK => c"success",
            RSSL_NULL_PARAMETER => c"a required pointer argument was NULL",
            RSSL_INVALID_ARGUMENT => c"invalid argument",
            RSSL_BUFFER_TOO_SMALL => c"buffer too small",
            RSSL_INVALID_STATE => c"operation not allowed in this state",
            RSSL_NOT_AVAILABLE => c"not available",
            RSSL_INVALID_OPTION => c"invalid option",
            RSSL_FILE_NOT_FOUND => c"file not found",
            RSSL_FILE_UNREADABLE => c"file cannot be read",
            RSSL_BAD_CERTIFICATE => c"no usable certificate",
            RSSL_BAD_KEY => c"no usable private key",
            RSSL_BAD_PASSWORD => c"missing or wrong password for the private key",
            RSSL_KEY_MISMATCH => c"private key does not match the certificate",
            RSSL_BAD_CRL => c"no usable certificate revocation list",
            RSSL_CLOSED => c"connection closed",
            RSSL_TIMEOUT => c"timeout",
            RSSL_IO_ERROR => c"I/O error",
            RSSL_RESOLVE_FAILED => c"host name could not be resolved",
            RSSL_CONNECT_FAILED => c"connection failed",
            RSSL_ADDRESS_IN_USE => c"address already in use",
            RSSL_WANT_READ => c"more input from the peer is needed",
            RSSL_HELLO => c"the handshake stopped after the peer's hello",
            RSSL_PAUSED => c"the handshake waits for a callback's answer",
            RSSL_TLS_ALERT => c"TLS alert",
            RSSL_TLS_ERROR => c"TLS error",
            RSSL_PANIC => c"internal error (panic in rssl)",
        }
    }

    /// The code for an engine error.
    pub(crate) fn from_engine(err: &engine::Error) -> rssl_result {
        use engine::Error;
        match err {
            Error::Closed => RSSL_CLOSED,
            Error::Alert { .. } => RSSL_TLS_ALERT,
            Error::Option(option, _) => match option.as_str() {
                "cert" | "cacerts" => RSSL_BAD_CERTIFICATE,
                "key" => RSSL_BAD_KEY,
                _ => RSSL_INVALID_OPTION,
            },
            Error::File { reason, option, .. } => match reason.as_str() {
                "enoent" => RSSL_FILE_NOT_FOUND,
                "eacces" | "eisdir" | "enotdir" | "enametoolong" | "eio" => RSSL_FILE_UNREADABLE,
                "bad_key" => RSSL_BAD_KEY,
                "no_password" | "bad_password" => RSSL_BAD_PASSWORD,
                "key_does_not_match_certificate" => RSSL_KEY_MISMATCH,
                "bad_dh_params" => RSSL_INVALID_OPTION,
                _ if option == "crlfile" || option == "crls" => RSSL_BAD_CRL,
                _ => RSSL_BAD_CERTIFICATE,
            },
            Error::Internal(_) => RSSL_TLS_ERROR,
        }
    }
}

/// A fixed, NUL-terminated description of a result code ("file not found").
/// Never NULL; unknown codes give "unknown result code". The string is
/// static: do not free it. For the details of the last failure in this
/// thread, use `rssl_error_string`.
#[no_mangle]
pub extern "C" fn rssl_result_string(result: u32) -> *const c_char {
    ffi_panic_boundary! {
        match rssl_result::from_u32(result) {
            Some(r) => r.description().as_ptr(),
            None => c"unknown result code".as_ptr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct_and_described() {
        let values: HashSet<u32> = rssl_result::ALL.iter().map(|r| *r as u32).collect();
        assert_eq!(values.len(), rssl_result::ALL.len());
        let texts: HashSet<&std::ffi::CStr> =
            rssl_result::ALL.iter().map(|r| r.description()).collect();
        assert_eq!(texts.len(), rssl_result::ALL.len());
        for r in rssl_result::ALL {
            assert_eq!(rssl_result::from_u32(r as u32), Some(r));
        }
        assert_eq!(rssl_result::from_u32(7), None);
    }

    #[test]
    fn missing_file_maps_to_file_not_found() {
        let err = engine::Error::File {
            option: "certfile".into(),
            path: "/x".into(),
            reason: "enoent".into(),
        };
        assert_eq!(rssl_result::from_engine(&err), RSSL_FILE_NOT_FOUND);
    }
}
