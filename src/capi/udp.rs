//! UDP sockets for DTLS: a client's connected socket, a listener's socket,
//! and the connected socket each verified peer gets on the listener's port
//! (as the Erlang listener does, rssl_dtls.erl): the kernel then hands that
//! peer's datagrams to it rather than to the listener.

use super::error;
use super::result::rssl_result::{self, *};
use super::socket::{self, io_error, wait, Deadline, Interest};
use crate::driver::socket::{sockaddr, socket_addr};
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The largest UDP payload: one read takes any datagram whole.
pub(crate) const MAX_DATAGRAM: usize = 65535;

/// A UDP socket connected to `host`:`port`: its first IPv4 address, or
/// its first address when it has none (OTP's default family is IPv4; UDP's
/// connect(2) only records the peer, so trying the next address on
/// failure is not possible). Left blocking: rssl's calls never wait on it
/// unasked.
pub(crate) fn connect(host: &str, port: u16) -> Result<OwnedFd, rssl_result> {
    let addrs = socket::resolve(host, port)?;
    let addr = *addrs.iter().find(|a| a.is_ipv4()).unwrap_or(&addrs[0]);
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).map_err(|e| io_error("bind", &e))?;
    socket
        .connect(addr)
        .map_err(|e| error::set(RSSL_CONNECT_FAILED, format!("connect to {addr}: {e}")))?;
    Ok(socket.into())
}

/// A non-blocking UDP socket bound to `addr` with SO_REUSEADDR, so that a
/// listener and its peers' sockets share the address.
fn bind_shared(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: a plain system call; the result is checked.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: a live fd and an int option of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: a live fd and a socket address of `len` bytes.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A DTLS listener's socket on `host` (every IPv4 address when None) and
/// `port` (0 picks a free one).
pub(crate) fn listen(host: Option<&str>, port: u16) -> Result<OwnedFd, rssl_result> {
    let host = host.unwrap_or("0.0.0.0");
    let addrs = socket::resolve(host, port)?;
    let mut last = None;
    for addr in &addrs {
        match bind_shared(addr) {
            Ok(fd) => return Ok(fd),
            Err(err) => last = Some(err),
        }
    }
    let err = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable));
    Err(socket::listen_error(
        &format!("listen on {host}:{port} (UDP)"),
        &err,
    ))
}

/// Waits (until the deadline) for a datagram on the listener's socket and
/// returns it with its sender.
pub(crate) fn receive_from(
    fd: RawFd,
    buf: &mut Vec<u8>,
    deadline: Deadline,
) -> Result<SocketAddr, rssl_result> {
    loop {
        buf.clear();
        buf.reserve(MAX_DATAGRAM);
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut from_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let spare: &mut [MaybeUninit<u8>] = buf.spare_capacity_mut();
        // SAFETY: a live fd, `spare` holds MAX_DATAGRAM writable bytes, and
        // `from` has room for any address.
        let n = unsafe {
            libc::recvfrom(
                fd,
                spare.as_mut_ptr().cast(),
                MAX_DATAGRAM,
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_storage).cast(),
                &mut from_len,
            )
        };
        if n >= 0 {
            // SAFETY: recvfrom wrote the first `n` bytes.
            unsafe { buf.set_len(n as usize) };
            match socket_addr(&from) {
                Some(addr) => return Ok(addr),
                None => continue,
            }
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            // Nothing yet, or an ICMP error left by an earlier answer.
            Some(libc::EAGAIN | libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH) => {
                if err.raw_os_error() == Some(libc::EAGAIN) {
                    let read = Interest {
                        read: true,
                        write: false,
                    };
                    wait(fd, read, deadline)?;
                }
            }
            _ => return Err(io_error("recvfrom", &err)),
        }
    }
}

/// Sends one datagram to `to` from the listener's socket; a failure means
/// the datagram is lost, as any may be (the peer retransmits).
pub(crate) fn send_to(fd: RawFd, datagram: &[u8], to: &SocketAddr) {
    let (storage, len) = sockaddr(to);
    // SAFETY: a live fd, a buffer of its length and an address of `len` bytes.
    unsafe {
        libc::sendto(
            fd,
            datagram.as_ptr().cast(),
            datagram.len(),
            libc::MSG_DONTWAIT,
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
}

/// A verified peer's own socket: on the listener's address, connected to
/// the peer. Datagrams that reached it before connect(2) (another peer's,
/// possibly) are dropped: their senders retransmit.
pub(crate) fn peer_socket(local: &SocketAddr, peer: &SocketAddr) -> Result<OwnedFd, rssl_result> {
    let fd = bind_shared(local).map_err(|e| io_error("bind (peer socket)", &e))?;
    let (storage, len) = sockaddr(peer);
    // SAFETY: a live fd and a socket address of `len` bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        return Err(io_error(
            "connect (peer socket)",
            &io::Error::last_os_error(),
        ));
    }
    let mut scratch = [0u8; 1];
    // SAFETY: a live fd and a one-byte buffer (datagrams are truncated, then dropped).
    while unsafe {
        libc::recv(
            fd.as_raw_fd(),
            scratch.as_mut_ptr().cast(),
            1,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    } >= 0
    {}
    Ok(fd)
}

/// The socket's address (the listener's, for its peers' sockets).
pub(crate) fn local_addr(fd: RawFd) -> Result<SocketAddr, rssl_result> {
    crate::driver::socket::sockname(fd).map_err(|e| io_error("getsockname", &e))
}

/// The address as the cookie binds it: family, address and port bytes.
pub(crate) fn cookie_peer(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr {
        SocketAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// Whether `fd` is a socket of `kind` (SOCK_STREAM, SOCK_DGRAM).
pub(crate) fn is_socket_type(fd: RawFd, kind: libc::c_int) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: an int output of the size passed; a bad fd is an error return.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && value == kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_sockets_share_the_listeners_port() {
        let listener = listen(Some("127.0.0.1"), 0).unwrap();
        let local = local_addr(listener.as_raw_fd()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = peer_socket(&local, &client.local_addr().unwrap()).unwrap();
        client.send_to(b"to the peer socket", local).unwrap();
        let mut buf = [0u8; 64];
        let read = Interest {
            read: true,
            write: false,
        };
        wait(peer.as_raw_fd(), read, Deadline::after_ms(20_000)).unwrap();
        // SAFETY: a live fd and a buffer of its length.
        let n = unsafe { libc::recv(peer.as_raw_fd(), buf.as_mut_ptr().cast(), 64, 0) };
        assert_eq!(&buf[..n as usize], b"to the peer socket");
        assert!(is_socket_type(peer.as_raw_fd(), libc::SOCK_DGRAM));
        assert!(!is_socket_type(peer.as_raw_fd(), libc::SOCK_STREAM));
    }

    #[test]
    fn cookie_peers_differ_by_port() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:2".parse().unwrap();
        assert_ne!(cookie_peer(&a), cookie_peer(&b));
    }
}
