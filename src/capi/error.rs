//! The last error of each thread: its full text and, for TLS alerts, which
//! alert it was.
//!
//! Like `errno`, it describes the most recent call in this thread that
//! returned something other than `RSSL_OK`; successful calls leave it alone.

use super::result::rssl_result;
use super::text;
use crate::engine;
use std::cell::RefCell;
use std::ffi::c_char;

struct LastError {
    result: rssl_result,
    message: String,
    /// (alert code, true when we sent it)
    alert: Option<(u8, bool)>,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Records a failure and returns its code, so call sites read
/// `return error::set(RSSL_TIMEOUT, "...")`.
pub(crate) fn set(result: rssl_result, message: impl Into<String>) -> rssl_result {
    let message = message.into();
    LAST.with(|last| {
        *last.borrow_mut() = Some(LastError {
            result,
            message,
            alert: None,
        })
    });
    result
}

/// Records an engine failure, keeping the alert if there was one.
pub(crate) fn engine(err: &engine::Error) -> rssl_result {
    let result = rssl_result::from_engine(err);
    let alert = match err {
        engine::Error::Alert { alert, local, .. } => Some((alert.0, *local)),
        _ => None,
    };
    let message = err.to_string();
    LAST.with(|last| {
        *last.borrow_mut() = Some(LastError {
            result,
            message,
            alert,
        })
    });
    result
}

pub(crate) fn null_parameter(name: &str) -> rssl_result {
    set(
        rssl_result::RSSL_NULL_PARAMETER,
        format!("NULL pointer passed as {name}"),
    )
}

pub(crate) fn invalid_argument(message: impl Into<String>) -> rssl_result {
    set(rssl_result::RSSL_INVALID_ARGUMENT, message)
}

/// The last error's text (for tests of this crate).
#[cfg(test)]
pub(crate) fn last_message() -> Option<String> {
    LAST.with(|last| last.borrow().as_ref().map(|e| e.message.clone()))
}

/// Copies the text of this thread's last error into `buf`, e.g.
/// `cannot use certfile "/etc/x.pem": enoent` or, for an alert,
/// `TLS client: In state connection generated CLIENT ALERT: Fatal - Unknown CA - unable to get local issuer certificate`.
///
/// The text is NUL-terminated and truncated to fit `len` bytes; `*out_n`
/// (if `out_n` is not NULL) receives the full length without the NUL.
/// Returns `RSSL_OK`, `RSSL_BUFFER_TOO_SMALL` when the text was truncated,
/// or `RSSL_NOT_AVAILABLE` (and an empty string) when this thread has had
/// no failure. This function does not change the last error.
#[no_mangle]
pub unsafe extern "C" fn rssl_error_string(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> rssl_result {
    ffi_panic_boundary! {
        let message = LAST.with(|last| last.borrow().as_ref().map(|e| e.message.clone()));
        match message {
            Some(message) => text::copy_str(&message, buf, len, out_n),
            None => match text::copy_str("", buf, len, out_n) {
                rssl_result::RSSL_OK => rssl_result::RSSL_NOT_AVAILABLE,
                other => other,
            },
        }
    }
}

/// The result code of this thread's last failure (`RSSL_OK` if none).
#[no_mangle]
pub extern "C" fn rssl_last_result() -> rssl_result {
    ffi_panic_boundary! {
        LAST.with(|last| last.borrow().as_ref().map_or(rssl_result::RSSL_OK, |e| e.result))
    }
}

/// When this thread's last failure was `RSSL_TLS_ALERT`: stores the alert
/// code (RFC 8446 section 6, e.g. 48) in `*alert_out` and whether we sent it
/// (true) or received it from the peer (false) in `*local_out`, and returns
/// `RSSL_OK`. Otherwise returns `RSSL_NOT_AVAILABLE`. `local_out` may be
/// NULL. Names: `rssl_alert_name`, `rssl_alert_description`. This function
/// does not change the last error.
#[no_mangle]
pub unsafe extern "C" fn rssl_last_alert(alert_out: *mut u8, local_out: *mut bool) -> rssl_result {
    ffi_panic_boundary! {
        // Checked by hand: this function must not replace the last error.
        // SAFETY: pointer rules (`local_out` below may be NULL too).
        let Some(alert_out) = (unsafe { alert_out.as_mut() }) else {
            return rssl_result::RSSL_NULL_PARAMETER;
        };
        let alert = LAST.with(|last| last.borrow().as_ref().and_then(|e| e.alert));
        match alert {
            Some((code, local)) => {
                *alert_out = code;
                if let Some(local_out) = unsafe { local_out.as_mut() } {
                    *local_out = local;
                }
                rssl_result::RSSL_OK
            }
            // Not recorded as the last error: asking is not a failure.
            None => rssl_result::RSSL_NOT_AVAILABLE,
        }
    }
}
