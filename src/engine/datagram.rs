//! DTLS specifics of a connection: the datagram size and the handshake's
//! retransmission timer, which the transport drives (OpenSSL over memory
//! BIOs cannot wait by itself).

use super::connection::Connection;
use super::error::Error;
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_long, c_void};
use openssl::ssl::SslRef;
use std::time::Duration;

/// The largest datagram we send (UDP payload): a 1500-byte Ethernet link
/// less the IPv6 and UDP headers (48) leaves 1452; 1400 leaves room for a
/// tunnel's overhead. OpenSSL would ask the socket for the path MTU, but it
/// only sees a memory BIO, so the size is set here.
pub const MTU: u32 = 1400;

const DTLS_CTRL_GET_TIMEOUT: c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: c_int = 74;

/// Sets up a new DTLS `SSL` (datagram size).
pub(crate) fn prepare(ssl: &mut SslRef) -> Result<(), openssl::error::ErrorStack> {
    ssl.set_mtu(MTU)
}

impl Connection {
    /// How long until the retransmission timer of a DTLS handshake runs
    /// out, if it is running (zero when it already has).
    pub fn retransmit_timeout(&self) -> Option<Duration> {
        if !self.is_datagram() {
            return None;
        }
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: DTLSv1_get_timeout: a live SSL and a live timeval it fills.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                self.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                (&mut tv as *mut libc::timeval).cast::<c_void>(),
            )
        };
        (running == 1).then(|| {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.max(0) as u64)
        })
    }

    /// The retransmission timer ran out: OpenSSL sends its last flight
    /// again (into the output) with a doubled timeout. Fails once OpenSSL
    /// gives up (after 12 tries).
    pub fn handle_retransmit_timeout(&mut self) -> Result<(), Error> {
        if !self.is_datagram() {
            return Ok(());
        }
        // SAFETY: DTLSv1_handle_timeout: a live SSL, no argument.
        let r: c_long = unsafe {
            openssl_sys::SSL_ctrl(
                self.ssl_mut().as_ptr(),
                DTLS_CTRL_HANDLE_TIMEOUT,
                0,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(Error::Closed);
        }
        Ok(())
    }
}
