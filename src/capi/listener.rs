//! Listening sockets that accept TLS connections (TCP), or DTLS ones
//! (UDP, `rssl_dtls_listen`).
//!
//! A listener may be shared by threads that call `rssl_accept` at the same
//! time; freeing it must wait until none does.
//!
//! A DTLS listener keeps no state per peer until the peer proves its
//! address: a ClientHello without a valid cookie gets a HelloVerifyRequest
//! (the cookie is an HMAC-SHA256 of the peer's address and port under the
//! listener's random secret, RFC 6347 4.2.1); one with it gets its own UDP
//! socket on the listener's port, connected to the peer, and the handshake
//! goes on there (as the Erlang listener does).
//!
//! The network may double a datagram: a copy of a verified ClientHello
//! that still waits at the listener is the same handshake, not a new peer.
//! A second socket connected to that peer would take the peer's later
//! datagrams (the kernel gives them to the newest of equal sockets) and
//! stall the first handshake, so the listener remembers the last
//! `KNOWN_HELLOS` handshakes it gave a socket to (peer and ClientHello
//! random, new in each handshake) and skips their copies.

use super::config::rssl_config;
use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use super::socket::{self, Deadline};
use super::udp;
use crate::engine::datagram::{CookieKey, Hello};
use crate::engine::Connection;
use std::collections::VecDeque;
use std::ffi::{c_char, c_int};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

/// How many handshakes given a socket the listener remembers, to know
/// late copies of their ClientHello.
const KNOWN_HELLOS: usize = 256;

/// A listening TCP socket, or a DTLS listener's UDP socket.
pub struct rssl_listener {
    fd: OwnedFd,
    /// DTLS: the address peers' sockets bind to and the cookie secret.
    datagram: Option<Datagram>,
}

struct Datagram {
    local: SocketAddr,
    secret: Vec<u8>,
    /// The latest handshakes given a socket, oldest first (threads may
    /// accept at the same time).
    known: Mutex<VecDeque<HelloKey>>,
}

/// A handshake: its peer and its ClientHello's random, the same in every
/// copy of the ClientHello (and in the one after the HelloVerifyRequest).
#[derive(PartialEq)]
struct HelloKey {
    peer: SocketAddr,
    random: Vec<u8>,
}

impl HelloKey {
    /// The random of a ClientHello that starts the datagram (record
    /// header, handshake header with fragment offset 0, version); a
    /// datagram of another shape is its own key.
    fn new(peer: SocketAddr, datagram: &[u8]) -> HelloKey {
        const RANDOM_AT: usize = 13 + 12 + 2;
        let is_hello = datagram.len() >= RANDOM_AT + 32
            && datagram[0] == 22
            && datagram[13] == 1
            && datagram[19..22] == [0, 0, 0];
        let random = if is_hello {
            datagram[RANDOM_AT..RANDOM_AT + 32].to_vec()
        } else {
            datagram.to_vec()
        };
        HelloKey { peer, random }
    }
}

impl Datagram {
    /// Remembers a handshake about to get a socket; false when it already
    /// has one (this is a copy of its ClientHello).
    fn claim(&self, key: HelloKey) -> bool {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(&key) {
            return false;
        }
        if known.len() == KNOWN_HELLOS {
            known.pop_front();
        }
        known.push_back(key);
        true
    }

    /// The handshake got no socket after all: a resent ClientHello may
    /// try again.
    fn forget(&self, key: &HelloKey) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|k| k != key);
    }
}

impl rssl_listener {
    /// Listens on `host` (a name or address; NULL means every IPv4
    /// address) and `port` (0 picks a free port, see `rssl_listener_port`)
    /// with SO_REUSEADDR and `backlog` (0 or less: the system maximum).
    /// Fails with `RSSL_ADDRESS_IN_USE` when the port is taken.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_listen(
        host: *const c_char,
        port: u16,
        backlog: i32,
        listener_out: *mut *mut rssl_listener,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let listener_out = try_mut!(listener_out);
            let host = if host.is_null() { None } else { Some(try_str!(host)) };
            match socket::listen(host, port, backlog) {
                Ok(fd) => {
                    *listener_out = Box::into_raw(Box::new(rssl_listener { fd, datagram: None }));
                    RSSL_OK
                }
                Err(result) => result,
            }
        }
    }

    /// Listens for DTLS clients on UDP `host` (a name or address; NULL
    /// means every IPv4 address) and `port` (0 picks a free port, see
    /// `rssl_listener_port`), with SO_REUSEADDR (each verified peer gets a
    /// socket on the same port). Accept with `rssl_accept` and a DTLS
    /// server configuration. Fails with `RSSL_ADDRESS_IN_USE` when the
    /// port is taken without SO_REUSEADDR.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_dtls_listen(
        host: *const c_char,
        port: u16,
        listener_out: *mut *mut rssl_listener,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let listener_out = try_mut!(listener_out);
            let host = if host.is_null() { None } else { Some(try_str!(host)) };
            let fd = match udp::listen(host, port) {
                Ok(fd) => fd,
                Err(result) => return result,
            };
            let local = match udp::local_addr(fd.as_raw_fd()) {
                Ok(local) => local,
                Err(result) => return result,
            };
            let mut secret = vec![0u8; 32];
            if openssl::rand::rand_bytes(&mut secret).is_err() {
                return error::set(RSSL_TLS_ERROR, "no random bytes for the cookie secret");
            }
            let datagram = Some(Datagram {
                local,
                secret,
                known: Mutex::new(VecDeque::with_capacity(KNOWN_HELLOS)),
            });
            *listener_out = Box::into_raw(Box::new(rssl_listener { fd, datagram }));
            RSSL_OK
        }
    }

    /// The port the listener is bound to.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_listener_port(
        listener: *const rssl_listener,
        port_out: *mut u16,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let listener = try_ref!(listener);
            let port_out = try_mut!(port_out);
            match socket::local_port(listener.fd.as_raw_fd()) {
                Ok(port) => {
                    *port_out = port;
                    RSSL_OK
                }
                Err(result) => result,
            }
        }
    }

    /// The listening socket (non-blocking), still owned by the listener:
    /// poll it for readability before `rssl_accept` (a DTLS listener is
    /// readable when any datagram came, ClientHellos without a cookie
    /// included, so `rssl_accept` with timeout 0 may then give
    /// `RSSL_TIMEOUT`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_listener_fd(
        listener: *const rssl_listener,
        fd_out: *mut c_int,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let listener = try_ref!(listener);
            let fd_out = try_mut!(fd_out);
            *fd_out = listener.fd.as_raw_fd();
            RSSL_OK
        }
    }

    /// Accepts one TCP connection and runs the server handshake with
    /// `config` (a server configuration), all within `timeout_ms`. On
    /// success `*conn_out` owns the connection (a blocking socket). A client
    /// that fails its handshake is closed and reported (e.g.
    /// `RSSL_TLS_ALERT`); the listener stays usable either way.
    /// With a configuration that stops after the hello: `RSSL_HELLO`, with
    /// `*conn_out` owning the stopped connection; with an asynchronous
    /// callback that has no answer yet, `RSSL_PAUSED` likewise (go on with
    /// `rssl_handshake` on this thread).
    ///
    /// On a DTLS listener (`rssl_dtls_listen`, with a DTLS configuration):
    /// answers ClientHellos without a valid cookie with a
    /// HelloVerifyRequest and ignores other datagrams, until a ClientHello
    /// with one arrives; that peer gets its own UDP socket (connected to
    /// it, on the listener's port) and the handshake runs on it, all
    /// within `timeout_ms`. A peer that does not finish its handshake
    /// then fails the call, not the listener. Copies of a ClientHello
    /// whose handshake already got a socket (the network doubled it) are
    /// skipped: the listener remembers its last 256 such handshakes.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_accept(
        listener: *const rssl_listener,
        config: *const rssl_config,
        timeout_ms: i32,
        conn_out: *mut *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let listener = try_ref!(listener);
            let config = try_ref!(config);
            let conn_out = try_mut!(conn_out);
            if config.config.role() != crate::engine::Role::Server {
                return error::set(RSSL_INVALID_ARGUMENT, "rssl_accept needs a server configuration");
            }
            match (&listener.datagram, config.config.options().is_dtls()) {
                (Some(_), false) => {
                    return error::set(RSSL_INVALID_ARGUMENT, "a DTLS listener (rssl_dtls_listen) needs a DTLS configuration")
                }
                (None, true) => {
                    return error::set(RSSL_INVALID_ARGUMENT, "a DTLS configuration needs a DTLS listener (rssl_dtls_listen)")
                }
                _ => {}
            }
            let deadline = Deadline::after_ms(timeout_ms);
            if let Some(datagram) = &listener.datagram {
                return match listener.accept_datagram(datagram, config, deadline) {
                    Ok((conn, result)) => {
                        *conn_out = conn.into_raw();
                        result
                    }
                    Err(result) => result,
                };
            }
            let fd = match socket::accept(listener.fd.as_raw_fd(), deadline) {
                Ok(fd) => fd,
                Err(result) => return result,
            };
            match rssl_conn::accepted(config, fd, deadline) {
                Ok((conn, result)) => {
                    *conn_out = conn.into_raw();
                    result
                }
                Err(result) => result,
            }
        }
    }

    /// Closes the listening socket and frees the listener; NULL is ignored.
    /// (A DTLS listener's peers keep their own sockets.)
    /// Accepted connections stay open.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_listener_free(listener: *mut rssl_listener) {
        ffi_panic_boundary! {
            if !listener.is_null() {
                // SAFETY: pointer rules: a live listener, handed out by rssl_listen as a Box.
                drop(unsafe { Box::from_raw(listener) });
            }
        }
    }
}

impl rssl_listener {
    /// Reads datagrams until a ClientHello carries the cookie made for its
    /// sender, answering those without it; then that peer's handshake runs
    /// on its own socket.
    fn accept_datagram(
        &self,
        datagram: &Datagram,
        config: &rssl_config,
        deadline: Deadline,
    ) -> Result<(rssl_conn, rssl_result), rssl_result> {
        let mut buf = Vec::new();
        loop {
            let peer = udp::receive_from(self.fd.as_raw_fd(), &mut buf, deadline)?;
            let mut tls = Connection::new(&config.config, &Default::default())
                .map_err(|e| error::engine(&e))?;
            tls.receive(&buf);
            let key = CookieKey::Hmac {
                secret: datagram.secret.clone(),
                peer: udp::cookie_peer(&peer),
            };
            match tls.listen(key) {
                Ok(Hello::Verified) => {
                    // The handshake goes on from this ClientHello, on the
                    // peer's own socket, unless a copy of it got one.
                    if !datagram.claim(HelloKey::new(peer, &buf)) {
                        continue;
                    }
                    let fd = udp::peer_socket(&datagram.local, &peer).inspect_err(|_| {
                        datagram.forget(&HelloKey::new(peer, &buf));
                    })?;
                    return rssl_conn::accepted_datagram(tls, fd, deadline);
                }
                Ok(Hello::VerifyRequest) => {
                    if let Some(reply) = tls.next_datagram() {
                        udp::send_to(self.fd.as_raw_fd(), reply, &peer);
                    }
                }
                Ok(Hello::Ignored) | Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTLS 1.2 ClientHello's first bytes: record and handshake headers,
    /// version, then `random`.
    fn hello(random: u8, cookie: u8) -> Vec<u8> {
        let mut d = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80];
        d.extend([1, 0, 0, 68, 0, 1, 0, 0, 0, 0, 0, 68, 0xfe, 0xfd]);
        d.extend([random; 32]);
        d.extend([0, 1, cookie]);
        d
    }

    #[test]
    fn copies_of_a_hello_are_claimed_once() {
        let datagram = Datagram {
            local: "127.0.0.1:1".parse().unwrap(),
            secret: Vec::new(),
            known: Mutex::new(VecDeque::new()),
        };
        let peer: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:3".parse().unwrap();
        assert!(datagram.claim(HelloKey::new(peer, &hello(7, 1))));
        // A copy, or the same handshake's hello with another cookie.
        assert!(!datagram.claim(HelloKey::new(peer, &hello(7, 1))));
        assert!(!datagram.claim(HelloKey::new(peer, &hello(7, 2))));
        // A new handshake from the same peer, the same hello from another.
        assert!(datagram.claim(HelloKey::new(peer, &hello(8, 1))));
        assert!(datagram.claim(HelloKey::new(other, &hello(7, 1))));
        // Forgotten: may claim again.
        datagram.forget(&HelloKey::new(other, &hello(7, 1)));
        assert!(datagram.claim(HelloKey::new(other, &hello(7, 1))));
    }

    #[test]
    fn the_oldest_handshakes_are_forgotten() {
        let datagram = Datagram {
            local: "127.0.0.1:1".parse().unwrap(),
            secret: Vec::new(),
            known: Mutex::new(VecDeque::new()),
        };
        let peer = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        for port in 0..=KNOWN_HELLOS as u16 {
            assert!(datagram.claim(HelloKey::new(peer(port), &hello(1, 1))));
        }
        assert_eq!(datagram.known.lock().unwrap().len(), KNOWN_HELLOS);
        assert!(datagram.claim(HelloKey::new(peer(0), &hello(1, 1))));
        assert!(!datagram.claim(HelloKey::new(peer(KNOWN_HELLOS as u16), &hello(1, 1))));
    }
}
