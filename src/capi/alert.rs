//! TLS alert names, as OTP's `ssl` spells them.

use crate::engine::Alert;
use once_cell::sync::Lazy;
use std::ffi::{c_char, CString};

/// (name, description) of every alert code, NUL-terminated for C.
static NAMES: Lazy<Vec<(CString, CString)>> = Lazy::new(|| {
    (0..=255u8)
        .map(|code| {
            let alert = Alert(code);
            (
                CString::new(alert.name()).expect("no NUL in alert names"),
                CString::new(alert.description()).expect("no NUL in alert texts"),
            )
        })
        .collect()
});

/// The name OTP gives the alert `code` (e.g. 48 gives "unknown_ca");
/// "illegal_alert" for codes TLS does not define. Static: do not free.
#[no_mangle]
pub extern "C" fn rssl_alert_name(code: u8) -> *const c_char {
    ffi_panic_boundary! {
        NAMES[code as usize].0.as_ptr()
    }
}

/// The human description of the alert `code` (e.g. 48 gives "Unknown CA").
/// Static: do not free.
#[no_mangle]
pub extern "C" fn rssl_alert_description(code: u8) -> *const c_char {
    ffi_panic_boundary! {
        NAMES[code as usize].1.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn names_come_from_the_engine_table() {
        // SAFETY: both functions return static NUL-terminated strings.
        let name = unsafe { CStr::from_ptr(rssl_alert_name(48)) };
        assert_eq!(name, c"unknown_ca");
        let text = unsafe { CStr::from_ptr(rssl_alert_description(48)) };
        assert_eq!(text, c"Unknown CA");
        let unknown = unsafe { CStr::from_ptr(rssl_alert_name(255)) };
        assert_eq!(unknown, c"illegal_alert");
    }
}
