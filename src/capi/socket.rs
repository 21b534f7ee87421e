//! Blocking-socket helpers for the C API: deadlines, poll(2), and
//! per-call non-blocking send/recv, so a caller's fd flags are never
//! changed and no call waits past its timeout.

use super::error;
use super::result::rssl_result::{self, *};
use libc::c_int;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// When a blocking call must give up. A negative timeout never expires.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn after_ms(timeout_ms: i32) -> Deadline {
        if timeout_ms < 0 {
            Deadline(None)
        } else {
            Deadline(Some(
                Instant::now() + Duration::from_millis(timeout_ms as u64),
            ))
        }
    }

    /// Time left, None when unbounded.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// This deadline, or `left` from now if that comes sooner.
    pub(crate) fn at_most(&self, left: Duration) -> Deadline {
        let soon = Instant::now() + left;
        Deadline(Some(self.0.map_or(soon, |at| at.min(soon))))
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(&self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// The timeout argument for poll(2) now.
    fn poll_ms(&self) -> c_int {
        poll_timeout(self.remaining())
    }
}

/// poll(2)'s timeout for `left`: -1 for none, else milliseconds rounded up
/// so that poll never returns just before the deadline.
fn poll_timeout(left: Option<Duration>) -> c_int {
    match left {
        None => -1,
        Some(left) => {
            let ms = left.as_micros().div_ceil(1000);
            ms.min(c_int::MAX as u128) as c_int
        }
    }
}

/// Which way a socket must become ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
}

/// Readiness from poll(2); errors and hang-ups count as both, so the next
/// send or recv reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ready {
    pub read: bool,
    pub write: bool,
}

/// Waits until `fd` is ready for `interest`, or the deadline passes
/// (`RSSL_TIMEOUT`).
pub(crate) fn wait(
    fd: RawFd,
    interest: Interest,
    deadline: Deadline,
) -> Result<Ready, rssl_result> {
    let mut events = 0;
    if interest.read {
        events |= libc::POLLIN;
    }
    if interest.write {
        events |= libc::POLLOUT;
    }
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one live pollfd for the call; a bad fd is reported in `revents`.
        let n = unsafe { libc::poll(&mut pfd, 1, deadline.poll_ms()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io_error("poll", &err));
        }
        if n == 0 {
            if deadline.remaining().is_some_and(|left| left.is_zero()) {
                return Err(error::set(RSSL_TIMEOUT, "timeout"));
            }
            continue;
        }
        if pfd.revents & libc::POLLNVAL != 0 {
            return Err(error::set(
                RSSL_IO_ERROR,
                format!("poll: fd {fd} is not open"),
            ));
        }
        let broken = pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0;
        return Ok(Ready {
            read: broken || pfd.revents & libc::POLLIN != 0,
            write: broken || pfd.revents & libc::POLLOUT != 0,
        });
    }
}

// One non-blocking send or recv (`WouldBlock` when the socket is full or
// empty, `Ok(0)` at the end of the stream): the driver's, which work on
// blocking descriptors too.
pub(crate) use crate::driver::socket::{read as recv_now, write as send_now};

/// Whether a socket error means the peer is gone rather than a local fault.
pub(crate) fn is_disconnect(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNABORTED)
    )
}

/// Records a system error as `RSSL_IO_ERROR` (or `RSSL_CLOSED` when the
/// peer went away).
pub(crate) fn io_error(what: &str, err: &io::Error) -> rssl_result {
    let code = if is_disconnect(err) {
        RSSL_CLOSED
    } else {
        RSSL_IO_ERROR
    };
    error::set(code, format!("{what}: {err}"))
}

/// A listener that could not bind: `RSSL_ADDRESS_IN_USE` when the port is
/// taken, `RSSL_IO_ERROR` otherwise.
pub(crate) fn listen_error(what: &str, err: &io::Error) -> rssl_result {
    let code = if err.kind() == io::ErrorKind::AddrInUse {
        RSSL_ADDRESS_IN_USE
    } else {
        RSSL_IO_ERROR
    };
    error::set(code, format!("{what}: {err}"))
}

/// `host`'s addresses by getaddrinfo; `RSSL_RESOLVE_FAILED` when it has none.
pub(crate) fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, rssl_result> {
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(err) => {
            return Err(error::set(
                RSSL_RESOLVE_FAILED,
                format!("cannot resolve {host:?}: {err}"),
            ))
        }
    };
    if addrs.is_empty() {
        return Err(error::set(
            RSSL_RESOLVE_FAILED,
            format!("{host:?} has no address"),
        ));
    }
    Ok(addrs)
}

/// Resolves `host` with getaddrinfo and connects to the first address that
/// accepts, within the deadline. The socket is left in blocking mode.
pub(crate) fn connect(host: &str, port: u16, deadline: Deadline) -> Result<OwnedFd, rssl_result> {
    let addrs = resolve(host, port)?;
    let mut last = None;
    for addr in &addrs {
        let attempt = match deadline.remaining() {
            None => TcpStream::connect(addr),
            Some(left) if left.is_zero() => break,
            Some(left) => TcpStream::connect_timeout(addr, left),
        };
        match attempt {
            Ok(stream) => return Ok(stream.into()),
            Err(err) => last = Some((addr, err)),
        }
    }
    Err(match last {
        Some((_, err)) if err.kind() == io::ErrorKind::TimedOut => {
            error::set(RSSL_TIMEOUT, format!("connect to {host}:{port}: timeout"))
        }
        Some((addr, err)) => error::set(RSSL_CONNECT_FAILED, format!("connect to {addr}: {err}")),
        None => error::set(RSSL_TIMEOUT, format!("connect to {host}:{port}: timeout")),
    })
}

/// A listening socket on `host` (any IPv4 address when None) and `port`
/// (0 picks a free one), with SO_REUSEADDR. Left non-blocking, so that
/// accept never waits past a deadline.
pub(crate) fn listen(host: Option<&str>, port: u16, backlog: i32) -> Result<OwnedFd, rssl_result> {
    let host = host.unwrap_or("0.0.0.0");
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(err) => {
            return Err(error::set(
                RSSL_RESOLVE_FAILED,
                format!("cannot resolve {host:?}: {err}"),
            ))
        }
    };
    let listener = TcpListener::bind(&addrs[..])
        .map_err(|err| listen_error(&format!("listen on {host}:{port}"), &err))?;
    let backlog = if backlog > 0 {
        backlog
    } else {
        libc::SOMAXCONN
    };
    // std picks its own backlog; a second listen(2) only changes it.
    // SAFETY: a plain system call on the listener's own fd; errors are returned.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io_error("listen", &io::Error::last_os_error()));
    }
    listener
        .set_nonblocking(true)
        .map_err(|err| io_error("listen", &err))?;
    Ok(listener.into())
}

/// Accepts one connection within the deadline; the new socket is blocking.
pub(crate) fn accept(listener: RawFd, deadline: Deadline) -> Result<OwnedFd, rssl_result> {
    loop {
        // SAFETY: NULL address and length are allowed; errors are returned.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            // The connection went away before we took it: wait for the next.
            Some(libc::EAGAIN | libc::ECONNABORTED) => {
                wait(
                    listener,
                    Interest {
                        read: true,
                        write: false,
                    },
                    deadline,
                )?;
            }
            _ => return Err(io_error("accept", &err)),
        }
    }
}

/// The local port a socket is bound to.
pub(crate) fn local_port(fd: RawFd) -> Result<u16, rssl_result> {
    crate::driver::socket::sockname(fd)
        .map(|addr| addr.port())
        .map_err(|e| io_error("getsockname", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    #[test]
    fn poll_timeout_rounds_up() {
        assert_eq!(poll_timeout(None), -1);
        assert_eq!(poll_timeout(Some(Duration::ZERO)), 0);
        assert_eq!(poll_timeout(Some(Duration::from_micros(1))), 1);
        assert_eq!(poll_timeout(Some(Duration::from_micros(1000))), 1);
        assert_eq!(poll_timeout(Some(Duration::from_micros(1001))), 2);
        assert_eq!(poll_timeout(Some(Duration::from_millis(5))), 5);
        assert_eq!(poll_timeout(Some(Duration::from_secs(1 << 40))), c_int::MAX);
    }

    #[test]
    fn deadline_never_expires_or_expires_once_passed() {
        assert_eq!(Deadline::after_ms(-1).remaining(), None);
        assert_eq!(Deadline::after_ms(-1).poll_ms(), -1);
        // A deadline that has passed (as any zero timeout has by the time
        // it is read) leaves nothing, and poll does not wait.
        let past = Deadline(Some(Instant::now() - Duration::from_secs(1)));
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        assert_eq!(past.poll_ms(), 0);
        assert_eq!(Deadline::after_ms(0).poll_ms(), 0);
        // What is left never exceeds what was asked for.
        let d = Deadline::after_ms(60_000);
        assert!(d.remaining().unwrap() <= Duration::from_millis(60_000));
        assert!(d.poll_ms() <= 60_000);
    }

    #[test]
    fn accept_times_out_and_listen_reports_the_port() {
        let listener = listen(Some("127.0.0.1"), 0, 4).unwrap();
        let port = local_port(listener.as_raw_fd()).unwrap();
        assert_ne!(port, 0);
        let start = Instant::now();
        let r = accept(listener.as_raw_fd(), Deadline::after_ms(50));
        assert_eq!(r.err(), Some(RSSL_TIMEOUT));
        assert!(start.elapsed() >= Duration::from_millis(50));
        let client = connect("127.0.0.1", port, Deadline::after_ms(20_000)).unwrap();
        let server = accept(listener.as_raw_fd(), Deadline::after_ms(20_000)).unwrap();
        assert_eq!(send_now(client.as_raw_fd(), b"hi").unwrap(), 2);
        wait(
            server.as_raw_fd(),
            Interest {
                read: true,
                write: false,
            },
            Deadline::after_ms(20_000),
        )
        .unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 8];
        assert_eq!(recv_now(server.as_raw_fd(), &mut buf).unwrap(), 2);
        // SAFETY: recv wrote the first two bytes.
        assert_eq!(
            unsafe { [buf[0].assume_init(), buf[1].assume_init()] },
            *b"hi"
        );
    }

    #[test]
    fn address_in_use_is_its_own_code() {
        let first = listen(Some("127.0.0.1"), 0, 4).unwrap();
        let port = local_port(first.as_raw_fd()).unwrap();
        assert_eq!(
            listen(Some("127.0.0.1"), port, 4).err(),
            Some(RSSL_ADDRESS_IN_USE)
        );
    }
}
