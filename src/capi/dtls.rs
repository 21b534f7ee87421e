//! DTLS in the C API: choosing it for a configuration, and the calls an
//! event loop needs for a DTLS memory connection (datagrams one at a time,
//! the handshake's retransmission timer).
//!
//! ```c
//! rssl_config_builder_set_protocol(b, RSSL_PROTOCOL_DTLS);  // first
//! ...
//! rssl_conn_new(config, "example.org", &conn);
//! for (;;) {
//!     r = rssl_conn_handshake_step(conn);        // RSSL_OK: established
//!     while (rssl_conn_next_datagram(conn, &d, &n) == RSSL_OK && n > 0) {
//!         send(fd, d, n, 0);                     // one datagram each
//!         rssl_conn_consume_output(conn, n);
//!     }
//!     rssl_conn_retransmit_timeout(conn, &ms);   // -1: no timer running
//!     if (poll(&pfd, 1, ms) == 0) {              // the timer ran out
//!         if (rssl_conn_handle_retransmit_timeout(conn) != RSSL_OK) break;
//!         continue;                              // resend what it queued
//!     }
//!     n = recv(fd, buf, sizeof buf, 0);
//!     rssl_conn_feed(conn, buf, n);              // one datagram each
//! }
//! ```
//!
//! Blocking DTLS connections (`rssl_connect`, `rssl_accept` on a
//! `rssl_dtls_listen` listener) drive the timer themselves.

use super::config::{rssl_config_builder, rssl_protocol};
use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use super::{socket, udp};
use crate::engine::Version;
use std::io;

/// The most a DTLS send or write may carry: one record, one datagram.
/// A datagram above the path MTU (about 1400 bytes on most networks) is
/// fragmented by IP, and lost whole if a fragment is.
pub const RSSL_DTLS_MAX_PLAINTEXT: usize = 16384;

impl rssl_config_builder {
    /// Versions given to a setter must be of the builder's protocol.
    pub(super) fn protocol_versions(&self, versions: &[Version]) -> Result<(), rssl_result> {
        match versions.iter().find(|v| v.is_dtls() != self.dtls) {
            None => Ok(()),
            Some(v) if self.dtls => Err(error::invalid_argument(format!(
                "{} in a DTLS configuration (RSSL_DTLS1_* only)",
                v.name()
            ))),
            Some(v) => Err(error::invalid_argument(format!(
                "{} in a TLS configuration: choose RSSL_PROTOCOL_DTLS first \
                 (rssl_config_builder_set_protocol)",
                v.name()
            ))),
        }
    }

    /// A TLS-only setter called on a DTLS builder.
    pub(super) fn tls_only(&self, call: &str) -> Result<(), rssl_result> {
        if self.dtls {
            return Err(error::set(
                RSSL_INVALID_OPTION,
                format!("{call}: a TLS 1.3 option, not for a DTLS configuration"),
            ));
        }
        Ok(())
    }

    /// At build time: a DTLS configuration has none of the TLS-only
    /// options (set before `rssl_config_builder_set_protocol`).
    pub(super) fn check_protocol(&self) -> Result<(), rssl_result> {
        if !self.dtls {
            return Ok(());
        }
        let o = &self.options;
        let set = [
            (
                o.ciphersuites.is_some(),
                "rssl_config_builder_set_ciphersuites",
            ),
            (
                o.session_tickets > 0,
                "rssl_config_builder_set_session_tickets",
            ),
            (o.manual_tickets, "rssl_config_builder_set_manual_tickets"),
            (
                o.stateful_tickets,
                "rssl_config_builder_set_stateful_tickets",
            ),
            (o.max_early_data > 0, "rssl_config_builder_set_early_data"),
            (
                o.anti_replay.is_some(),
                "rssl_config_builder_set_anti_replay",
            ),
        ];
        match set.iter().find(|(on, _)| *on) {
            Some((_, call)) => self.tls_only(call),
            None => Ok(()),
        }
    }

    /// Chooses TLS over TCP (`RSSL_PROTOCOL_TLS`, the default) or DTLS over
    /// UDP (`RSSL_PROTOCOL_DTLS`, OTP's `{protocol, dtls}`) and enables
    /// that protocol's default versions (DTLS: 1.2 alone, as OTP 25; 1.0
    /// through `rssl_config_builder_set_version_range`). Call it before setting versions. A DTLS configuration refuses the
    /// TLS 1.3 options (TLS 1.3 cipher suites, session tickets, early data,
    /// anti-replay: `RSSL_INVALID_OPTION`, here or at build) and TLS
    /// versions (`RSSL_INVALID_ARGUMENT`); its connections are made with
    /// `rssl_connect` (UDP), `rssl_accept` on a `rssl_dtls_listen`
    /// listener, `rssl_conn_from_fd` with a UDP socket, or `rssl_conn_new`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_protocol(
        builder: *mut rssl_config_builder,
        protocol: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.dtls = match protocol {
                p if p == rssl_protocol::RSSL_PROTOCOL_TLS as u32 => false,
                p if p == rssl_protocol::RSSL_PROTOCOL_DTLS as u32 => true,
                other => return error::invalid_argument(format!("unknown protocol {other}")),
            };
            builder.options.versions = if builder.dtls {
                Version::DEFAULT_DTLS.to_vec()
            } else {
                Version::DEFAULT.to_vec()
            };
            RSSL_OK
        }
    }
}

impl rssl_conn {
    /// Memory connections with DTLS only.
    fn dtls_memory(&self, call: &str) -> Result<(), rssl_result> {
        if !self.tls.is_datagram() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} on a TLS connection (DTLS only)"),
            ));
        }
        if !self.is_memory() {
            return Err(error::set(
                RSSL_INVALID_STATE,
                format!("{call} on a socket connection (its calls drive the timer)"),
            ));
        }
        Ok(())
    }

    /// A DTLS write is one datagram: at most one record.
    pub(super) fn check_datagram_size(&self, len: usize) -> Result<(), rssl_result> {
        if self.tls.is_datagram() && len > RSSL_DTLS_MAX_PLAINTEXT {
            return Err(error::invalid_argument(format!(
                "{len} bytes: a DTLS datagram carries at most {RSSL_DTLS_MAX_PLAINTEXT}"
            )));
        }
        Ok(())
    }

    /// The retransmission timer ran out: OpenSSL queues its last flight
    /// again, or has given up (`RSSL_TIMEOUT`, for good).
    pub(super) fn retransmit(&mut self) -> Result<(), rssl_result> {
        if !self.gave_up && self.tls.handle_retransmit_timeout().is_err() {
            self.gave_up = true;
        }
        if self.gave_up {
            return Err(error::set(
                RSSL_TIMEOUT,
                "the peer did not answer: DTLS gave up retransmitting the handshake",
            ));
        }
        Ok(())
    }

    /// DTLS memory connection: points `*data_out` at the first datagram
    /// waiting to be sent and stores its size in `*len_out` (0: none). Send
    /// it as one datagram, then drop it with `rssl_conn_consume_output(conn,
    /// len)` (also when it could not be sent: DTLS copes with lost
    /// datagrams). The bytes stay owned by the connection and valid until
    /// the next call on it. `rssl_conn_output` and `rssl_conn_take_output`
    /// refuse a DTLS connection (they would join datagrams).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_next_datagram(
        conn: *const rssl_conn,
        data_out: *mut *const u8,
        len_out: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let data_out = try_mut!(data_out);
            let len_out = try_mut!(len_out);
            try_result!(conn.dtls_memory("rssl_conn_next_datagram"));
            let datagram = conn.tls.next_datagram().unwrap_or_default();
            *data_out = datagram.as_ptr();
            *len_out = datagram.len();
            RSSL_OK
        }
    }

    /// DTLS memory connection: how long until the handshake's
    /// retransmission timer runs out, in milliseconds rounded up (0: it
    /// has), or -1 when no timer runs (before the first step, once the
    /// handshake is done, or while nothing is awaited). Ask again after
    /// each call that may have moved the handshake on
    /// (`rssl_conn_handshake_step`, `rssl_conn_read`), and give the value
    /// to poll(2) or the event loop's timer. When it runs out, call
    /// `rssl_conn_handle_retransmit_timeout`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_retransmit_timeout(
        conn: *const rssl_conn,
        timeout_ms_out: *mut i32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let timeout_ms_out = try_mut!(timeout_ms_out);
            try_result!(conn.dtls_memory("rssl_conn_retransmit_timeout"));
            *timeout_ms_out = match conn.tls.retransmit_timeout() {
                None => -1,
                Some(left) => left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
            };
            RSSL_OK
        }
    }

    /// DTLS memory connection: the retransmission timer ran out. Queues the
    /// last flight again when it is due (then send the datagrams from
    /// `rssl_conn_next_datagram`; the timeout doubles each time); called
    /// early, it does nothing. `RSSL_TIMEOUT` once OpenSSL gives up (after
    /// 12 tries without an answer): the handshake has failed, and later
    /// steps return `RSSL_TIMEOUT` too.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_handle_retransmit_timeout(
        conn: *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            try_result!(conn.dtls_memory("rssl_conn_handle_retransmit_timeout"));
            match conn.retransmit() {
                Ok(()) => RSSL_OK,
                Err(result) => result,
            }
        }
    }
}

// --- Blocking DTLS connections (their socket calls, conn.rs) ---

impl rssl_conn {
    /// Sends the queued datagrams, one send(2) each, without waiting. A
    /// datagram the socket refuses (an ICMP error of an earlier one, a
    /// full path) is lost, as any may be: the timers cope.
    pub(super) fn send_datagrams(&mut self) {
        let fd = self.raw_fd();
        while let Some(datagram) = self.tls.next_datagram() {
            let len = datagram.len();
            if let Err(e) = socket::send_now(fd, datagram) {
                if e.kind() == io::ErrorKind::WouldBlock {
                    return;
                }
            }
            self.tls.consume_output(len);
        }
    }

    /// Receives one datagram if the socket has one. UDP has no end of
    /// stream: an empty datagram or an ICMP error (nobody listens at the
    /// peer's port, yet) is nothing to read.
    pub(super) fn recv_datagram(&mut self) -> Result<(), rssl_result> {
        let fd = self.raw_fd();
        match self
            .tls
            .receive_with(udp::MAX_DATAGRAM, |buf| socket::recv_now(fd, buf))
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(socket::io_error("recv", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::connection::tests::{client_options, test_pki};
    use crate::engine::connection::PeerName;
    use crate::engine::{Config, Connection, Version};
    use foreign_types::ForeignTypeRef;

    #[test]
    fn max_plaintext_is_one_record() {
        assert_eq!(RSSL_DTLS_MAX_PLAINTEXT, crate::engine::MAX_RECORD_PLAINTEXT);
    }

    extern "C" {
        fn DTLS_set_timer_cb(
            s: *mut openssl_sys::SSL,
            cb: Option<unsafe extern "C" fn(*mut openssl_sys::SSL, u32) -> u32>,
        );
    }

    /// 50 ms per try instead of OpenSSL's 1 s doubling up to 60 s, so that
    /// giving up takes a moment rather than minutes.
    unsafe extern "C" fn quick(_: *mut openssl_sys::SSL, _: u32) -> u32 {
        50_000
    }

    #[test]
    fn a_peer_that_never_answers_ends_in_timeout() {
        let mut options = client_options(&test_pki());
        options.versions = vec![Version::Dtls12];
        let config = Config::build(options).unwrap();
        let tls = Connection::new(&config, &PeerName::default()).unwrap();
        let conn = Box::into_raw(Box::new(rssl_conn::with(tls, None)));
        // SAFETY: a live connection of ours, freed at the end; the
        // callback matches DTLS_timer_cb.
        unsafe {
            DTLS_set_timer_cb((*conn).tls.ssl_mut().as_ptr(), Some(quick));
            let first = rssl_conn::rssl_conn_handshake_step(conn);
            assert_eq!(
                first,
                RSSL_WANT_READ,
                "{:?}",
                crate::capi::error::last_message()
            );
            let mut sent = 0;
            let mut tries = 0;
            let gave_up = loop {
                let (mut d, mut len) = (std::ptr::null(), 0);
                assert_eq!(
                    rssl_conn::rssl_conn_next_datagram(conn, &mut d, &mut len),
                    RSSL_OK
                );
                if len > 0 {
                    sent += 1;
                    assert_eq!(rssl_conn::rssl_conn_consume_output(conn, len), RSSL_OK);
                }
                let mut ms = 0;
                assert_eq!(
                    rssl_conn::rssl_conn_retransmit_timeout(conn, &mut ms),
                    RSSL_OK
                );
                assert!((0..=50).contains(&ms), "{ms}");
                std::thread::sleep(std::time::Duration::from_millis(ms as u64));
                tries += 1;
                assert!(tries < 100);
                match rssl_conn::rssl_conn_handle_retransmit_timeout(conn) {
                    RSSL_OK => {}
                    other => break other,
                }
            };
            assert_eq!(gave_up, RSSL_TIMEOUT);
            // The first ClientHello and each resend of it.
            assert!(sent >= 10, "{sent}");
            assert_eq!(
                rssl_conn::rssl_conn_handle_retransmit_timeout(conn),
                RSSL_TIMEOUT
            );
            assert_eq!(rssl_conn::rssl_conn_handshake_step(conn), RSSL_TIMEOUT);
            rssl_conn::rssl_conn_free(conn);
        }
    }
}
