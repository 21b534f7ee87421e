//! Moving strings and bytes across the boundary.

use super::error;
use super::result::rssl_result::{self, *};
use std::ffi::{c_char, CStr};

/// Borrows a NUL-terminated UTF-8 argument; NULL and invalid UTF-8 are
/// recorded as the last error.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that outlives `'a` (pointer
/// rules, see mod.rs).
pub(crate) unsafe fn from_c_str<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<&'a str, rssl_result> {
    if ptr.is_null() {
        return Err(error::null_parameter(name));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|_| error::invalid_argument(format!("{name} is not valid UTF-8")))
}

/// Copies `text` and a terminating NUL into `buf` of `len` bytes, truncating
/// to fit. `*out_n` (when not NULL) gets the full length without the NUL.
/// Does not touch the last error: callers decide whether a short buffer is
/// a failure worth recording.
///
/// # Safety
/// `buf` is NULL (with `len` 0) or writable for `len` bytes; `out_n` is NULL
/// or writable.
pub(crate) unsafe fn copy_str(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> rssl_result {
    if buf.is_null() && len != 0 {
        return rssl_result::RSSL_NULL_PARAMETER;
    }
    if let Some(out_n) = out_n.as_mut() {
        *out_n = text.len();
    }
    if len == 0 {
        return rssl_result::RSSL_BUFFER_TOO_SMALL;
    }
    let n = text.len().min(len - 1);
    std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
    *buf.add(n) = 0;
    if n < text.len() {
        rssl_result::RSSL_BUFFER_TOO_SMALL
    } else {
        rssl_result::RSSL_OK
    }
}

/// Copies `bytes` into `buf` of `len` bytes, or nothing when they do not
/// fit. `*out_n` (when not NULL) gets `bytes.len()` either way.
///
/// # Safety
/// As [`copy_str`].
pub(crate) unsafe fn copy_bytes(
    bytes: &[u8],
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
) -> rssl_result {
    if buf.is_null() && len != 0 {
        return rssl_result::RSSL_NULL_PARAMETER;
    }
    if let Some(out_n) = out_n.as_mut() {
        *out_n = bytes.len();
    }
    if len < bytes.len() {
        return rssl_result::RSSL_BUFFER_TOO_SMALL;
    }
    // A NULL `buf` is fine for nothing to copy; copy_nonoverlapping's is not.
    if !bytes.is_empty() {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
    }
    rssl_result::RSSL_OK
}

/// Records a failed copy into a caller's buffer (a short buffer, NULL).
pub(crate) fn copied(result: rssl_result, what: &str) -> rssl_result {
    match result {
        RSSL_OK => RSSL_OK,
        RSSL_BUFFER_TOO_SMALL => error::set(result, format!("{what}: buffer too small")),
        RSSL_NULL_PARAMETER => error::null_parameter("buf"),
        other => error::set(other, what.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_str_truncates_and_reports_full_length() {
        let mut buf = [0x55 as c_char; 4];
        let mut n = 0;
        // SAFETY (the unsafe blocks of these tests): live local buffers of the lengths given.
        let r = unsafe { copy_str("hello", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, rssl_result::RSSL_BUFFER_TOO_SMALL);
        assert_eq!(n, 5);
        assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }, c"hel");
        let mut big = [0 as c_char; 6];
        let r = unsafe { copy_str("hello", big.as_mut_ptr(), big.len(), &mut n) };
        assert_eq!(r, rssl_result::RSSL_OK);
        assert_eq!(unsafe { CStr::from_ptr(big.as_ptr()) }, c"hello");
    }

    #[test]
    fn copy_bytes_writes_nothing_when_short() {
        let mut buf = [0u8; 2];
        let mut n = 0;
        let r = unsafe { copy_bytes(b"abc", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!((r, n, buf), (rssl_result::RSSL_BUFFER_TOO_SMALL, 3, [0, 0]));
        let r = unsafe { copy_bytes(b"abc", std::ptr::null_mut(), 0, &mut n) };
        assert_eq!((r, n), (rssl_result::RSSL_BUFFER_TOO_SMALL, 3));
    }
}
