//! Thin, safe wrappers over the socket system calls the driver needs.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Duplicates `fd` (so the original may be closed by its owner) and makes
/// the copy non-blocking and close-on-exec.
pub fn adopt(fd: RawFd) -> io::Result<RawFd> {
    // SAFETY: fcntl on a caller-provided fd; errors are returned, no memory is touched.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: as above: a flag query on the fd we just made.
    let flags = unsafe { libc::fcntl(new, libc::F_GETFL) };
    // SAFETY: as above: a flag change on the fd we just made.
    if flags < 0 || unsafe { libc::fcntl(new, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        let err = io::Error::last_os_error();
        close(new);
        return Err(err);
    }
    Ok(new)
}

/// A new non-blocking TCP socket to `addr`, `configure`d (its socket
/// options), then connecting: the connection is under way, or made, when
/// this returns; its outcome shows when the socket turns writable or
/// reports an error. The caller owns the fd.
pub fn connect(
    addr: SocketAddr,
    configure: impl FnOnce(RawFd) -> io::Result<()>,
) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain system call; the result is checked.
    let fd = check(unsafe { libc::socket(family, kind, 0) })?;
    let (storage, len) = sockaddr(addr);
    let started = configure(fd).and_then(|()| {
        // SAFETY: `storage` holds a valid address of `len` bytes for the call.
        let r = unsafe { libc::connect(fd, &storage as *const _ as *const libc::sockaddr, len) };
        match check(r) {
            Err(e) if e.raw_os_error() != Some(libc::EINPROGRESS) => Err(e),
            _ => Ok(()),
        }
    });
    match started {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is aligned for it.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is aligned for it.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Closes `fd`. The caller owns it and never uses it again: every fd the
/// driver adopts is closed exactly once, by `State::release_socket`.
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and gives it up here (each fd is closed once).
    unsafe { libc::close(fd) };
}

/// One non-blocking read into (possibly uninitialized) space, even on a
/// blocking socket: `WouldBlock` when it is empty, `Ok(0)` at its end.
pub fn read(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes; recv(2) initializes what it reports.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One non-blocking send, even on a blocking socket (no SIGPIPE):
/// `WouldBlock` when the socket buffer is full.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is readable for `buf.len()` bytes for the call.
        let n = unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

pub fn shutdown(fd: RawFd, how: libc::c_int) -> io::Result<()> {
    // SAFETY: plain system call on an fd; errors are returned.
    check(unsafe { libc::shutdown(fd, how) }).map(|_| ())
}

fn to_socket_addr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel filled `storage` with an AF_INET address, which fits in it.
            let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel filled `storage` with an AF_INET6 address, which fits in it.
            let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    }
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn name(fd: RawFd, call: NameFn) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are live and `len` holds its size.
    check(unsafe { call(fd, &mut storage as *mut _ as *mut libc::sockaddr, &mut len) })?;
    to_socket_addr(&storage)
}

pub fn sockname(fd: RawFd) -> io::Result<SocketAddr> {
    name(fd, libc::getsockname)
}

pub fn peername(fd: RawFd) -> io::Result<SocketAddr> {
    name(fd, libc::getpeername)
}
