//! Listening sockets that accept TLS connections.
//!
//! A listener may be shared by threads that call `rssl_accept` at the same
//! time; freeing it must wait until none does.

use super::config::rssl_config;
use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use super::socket::{self, Deadline};
use std::ffi::{c_char, c_int};
use std::os::fd::{AsRawFd, OwnedFd};

/// A listening TCP socket.
pub struct rssl_listener {
    fd: OwnedFd,
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
                    *listener_out = Box::into_raw(Box::new(rssl_listener { fd }));
                    RSSL_OK
                }
                Err(result) => result,
            }
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

    /// The listening socket (non-blocking), still owned by the listener.
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
            let deadline = Deadline::after_ms(timeout_ms);
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
