//! The panic boundary around every exported function, and the short
//! argument checks their bodies start with.

use super::error;
use super::result::rssl_result;
use std::any::Any;

/// What an exported function returns when its body panicked.
pub(crate) trait PanicValue {
    fn panic_value() -> Self;
}

impl PanicValue for rssl_result {
    fn panic_value() -> Self {
        rssl_result::RSSL_PANIC
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

/// Records a caught panic as the thread's last error.
pub(crate) fn caught<T: PanicValue>(payload: Box<dyn Any + Send>) -> T {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    // Dropping a payload can itself panic; never let that unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    error::set(
        rssl_result::RSSL_PANIC,
        format!("internal error (panic in rssl): {what}"),
    );
    T::panic_value()
}

/// Runs an exported function's body; a panic becomes the function's
/// `PanicValue` (`RSSL_PANIC`, NULL or nothing) and never unwinds into C.
macro_rules! ffi_panic_boundary {
    ( $($body:tt)* ) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => $crate::capi::panic::caught(payload),
        }
    };
}

/// `&T` from a `*const T` argument, or return `RSSL_NULL_PARAMETER`.
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: pointer rules (see mod.rs); NULL is handled here.
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return $crate::capi::error::null_parameter(stringify!($ptr)),
        }
    };
}

/// `&mut T` from a `*mut T` argument, or return `RSSL_NULL_PARAMETER`.
macro_rules! try_mut {
    ($ptr:ident) => {
        // SAFETY: pointer rules (see mod.rs); NULL is handled here.
        match unsafe { $ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::capi::error::null_parameter(stringify!($ptr)),
        }
    };
}

/// `&str` from a NUL-terminated UTF-8 argument, or return an error.
macro_rules! try_str {
    ($ptr:ident) => {
        // SAFETY: pointer rules (see mod.rs); NULL is handled here.
        match unsafe { $crate::capi::text::from_c_str($ptr, stringify!($ptr)) } {
            Ok(s) => s,
            Err(result) => return result,
        }
    };
}

/// `&[T]` from a pointer and a count (NULL is fine when the count is 0).
macro_rules! try_slice {
    ($ptr:ident, $len:ident) => {
        if $ptr.is_null() {
            if $len != 0 {
                return $crate::capi::error::null_parameter(stringify!($ptr));
            }
            &[]
        } else {
            // SAFETY: pointer rules (see mod.rs): non-NULL, `$len` elements.
            unsafe { ::std::slice::from_raw_parts($ptr, $len) }
        }
    };
}

/// Returns the error result of a `Result<_, rssl_result>` from the function.
macro_rules! try_result {
    ($e:expr) => {
        if let Err(result) = $e {
            return result;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics(fail: bool) -> rssl_result {
        ffi_panic_boundary! {
            if fail {
                panic!("boom {}", 42);
            }
            rssl_result::RSSL_OK
        }
    }

    fn panics_for_nothing() -> *const u8 {
        ffi_panic_boundary! {
            panic!("static message")
        }
    }

    #[test]
    fn panics_become_results_and_the_last_error() {
        assert_eq!(panics(false), rssl_result::RSSL_OK);
        assert_eq!(panics(true), rssl_result::RSSL_PANIC);
        assert_eq!(
            error::last_message().as_deref(),
            Some("internal error (panic in rssl): boom 42")
        );
        assert!(panics_for_nothing().is_null());
        assert_eq!(
            error::last_message().as_deref(),
            Some("internal error (panic in rssl): static message")
        );
    }
}
