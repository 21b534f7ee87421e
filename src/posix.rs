//! POSIX error names, as OTP reports them (`{error, enoent}`,
//! `{error, econnreset}`): one table for file and socket errors.

use std::io;

/// The lower-case POSIX name of `err` (`eio` for anything not listed).
pub fn error_name(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENOENT) => "enoent",
        Some(libc::EACCES) => "eacces",
        Some(libc::EISDIR) => "eisdir",
        Some(libc::ENOTDIR) => "enotdir",
        Some(libc::ENAMETOOLONG) => "enametoolong",
        Some(libc::ECONNRESET) => "econnreset",
        Some(libc::EPIPE) => "epipe",
        Some(libc::ETIMEDOUT) => "etimedout",
        Some(libc::ENOTCONN) => "enotconn",
        Some(libc::EBADF) => "ebadf",
        Some(libc::EHOSTUNREACH) => "ehostunreach",
        Some(libc::ENETUNREACH) => "enetunreach",
        Some(libc::ECONNABORTED) => "econnaborted",
        Some(libc::ENOBUFS) => "enobufs",
        Some(libc::ENOMEM) => "enomem",
        Some(libc::EMFILE) => "emfile",
        Some(libc::EINVAL) => "einval",
        Some(libc::ECONNREFUSED) => "econnrefused",
        Some(libc::EHOSTDOWN) => "ehostdown",
        Some(libc::ENETDOWN) => "enetdown",
        Some(libc::EADDRNOTAVAIL) => "eaddrnotavail",
        Some(libc::EADDRINUSE) => "eaddrinuse",
        Some(libc::EAFNOSUPPORT) => "eafnosupport",
        Some(libc::ENFILE) => "enfile",
        Some(libc::EPERM) => "eperm",
        _ => "eio",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_the_system_reports() {
        let missing = std::fs::read("/nonexistent/rssl").unwrap_err();
        assert_eq!(error_name(&missing), "enoent");
        let dir = std::fs::read("/").unwrap_err();
        assert_eq!(error_name(&dir), "eisdir");
        assert_eq!(
            error_name(&io::Error::from_raw_os_error(libc::EPIPE)),
            "epipe"
        );
        assert_eq!(
            error_name(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            "econnrefused"
        );
        assert_eq!(
            error_name(&io::Error::from_raw_os_error(libc::E2BIG)),
            "eio"
        );
    }
}
