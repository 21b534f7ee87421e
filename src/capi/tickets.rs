//! TLS 1.3 tickets by hand and 0-RTT early data (OTP's `session_tickets`
//! `manual`, `use_ticket`, `early_data` and `anti_replay`).
//!
//! A ticket is a session as `rssl_conn_session` gives it (OpenSSL's DER):
//! offer it with `rssl_connect_session`, `rssl_connect_early` or
//! `rssl_conn_set_session`. It holds the session's secret.

use super::config::rssl_config_builder;
use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use super::text;
use crate::engine::anti_replay::AntiReplayParams;
use crate::engine::Role;
use std::ffi::c_char;

/// Tickets kept per connection until taken (a server may send any number).
const TICKETS_KEPT: usize = 32;

/// How a connection's early data fared (`rssl_conn_early_data_status`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_early_data {
    /// None was sent (client: no ticket allowing it, or none set) or
    /// received (server), or the handshake is not done.
    RSSL_EARLY_DATA_NONE = 0,
    /// The server refused it: it was not delivered; send it again if it
    /// matters.
    RSSL_EARLY_DATA_REJECTED = 1,
    /// The server took it (a server: it received some).
    RSSL_EARLY_DATA_ACCEPTED = 2,
}

impl rssl_config_builder {
    /// Client: keep each TLS 1.3 ticket the server sends on its connection
    /// for `rssl_conn_next_ticket` (default false). Tickets arrive after
    /// the handshake, with the data the client receives.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_manual_tickets(
        builder: *mut rssl_config_builder,
        manual: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            try_result!(builder.tls_only("rssl_config_builder_set_manual_tickets"));
            builder.options.manual_tickets = manual;
            RSSL_OK
        }
    }

    /// Server: TLS 1.3 tickets name sessions kept by the server (OTP's
    /// `stateful`; each is then used once) instead of carrying them
    /// (`stateless`, the default). See `rssl_config_builder_set_session_tickets`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_stateful_tickets(
        builder: *mut rssl_config_builder,
        stateful: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            try_result!(builder.tls_only("rssl_config_builder_set_stateful_tickets"));
            builder.options.stateful_tickets = stateful;
            RSSL_OK
        }
    }

    /// Server: accept up to `max_bytes` of 0-RTT early data on a resumed
    /// TLS 1.3 session (0, the default, accepts none). Needs session
    /// tickets; the early data is what `rssl_recv` / `rssl_conn_read`
    /// return first. Early data can be replayed: use stateful tickets or
    /// `rssl_config_builder_set_anti_replay`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_early_data(
        builder: *mut rssl_config_builder,
        max_bytes: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            try_result!(builder.tls_only("rssl_config_builder_set_early_data"));
            builder.options.max_early_data = max_bytes;
            RSSL_OK
        }
    }

    /// Server with stateless tickets: accept a ticket's early data once,
    /// remembered by a Bloom filter of `bits` bits and `hashes` hash
    /// functions per `window_s` seconds (at least 11 s), as OTP's
    /// `anti_replay` `{window_s, hashes, bits}` (`'10k'` is 10, 5, 72985).
    /// A refused offer resumes without its early data.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_anti_replay(
        builder: *mut rssl_config_builder,
        window_s: u32,
        hashes: u32,
        bits: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            try_result!(builder.tls_only("rssl_config_builder_set_anti_replay"));
            if window_s == 0 || hashes == 0 || hashes > 32 || bits == 0 {
                return error::invalid_argument("anti_replay: window, hashes (1-32) and bits must be positive");
            }
            builder.options.anti_replay = Some(AntiReplayParams { window_secs: window_s, hashes, bits });
            RSSL_OK
        }
    }
}

impl rssl_conn {
    /// Copies the oldest TLS 1.3 ticket received and not yet taken into
    /// `buf` (a client with `rssl_config_builder_set_manual_tickets`), as
    /// `rssl_conn_peer_cert` copies: with a buffer too small, `*out_n` says
    /// how big and the ticket stays. `RSSL_NOT_AVAILABLE` when there is
    /// none yet (tickets come with the data read after the handshake). The
    /// 32 newest not taken are kept.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_next_ticket(
        conn: *mut rssl_conn,
        buf: *mut u8,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let new = conn.tls.take_tickets();
            conn.tickets.extend(new.into_iter().map(|t| t.der));
            // As the engine does, only the newest are kept.
            while conn.tickets.len() > TICKETS_KEPT {
                conn.tickets.pop_front();
            }
            let Some(ticket) = conn.tickets.front() else {
                return error::set(RSSL_NOT_AVAILABLE, "no ticket received");
            };
            // SAFETY: pointer rules.
            let result = unsafe { text::copy_bytes(ticket, buf, len, out_n) };
            if result == RSSL_OK {
                conn.tickets.pop_front();
            }
            text::copied(result, "ticket")
        }
    }

    /// Client, before the handshake (`rssl_conn_from_fd`, `rssl_conn_new`,
    /// after `rssl_conn_set_session` with a ticket): `len` bytes sent as
    /// early data with the ClientHello if the ticket allows that much,
    /// else not sent (see `rssl_conn_early_data_status`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_set_early_data(
        conn: *mut rssl_conn,
        data: *const u8,
        len: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let data = try_slice!(data, len);
            try_result!(conn.not_dtls("rssl_conn_set_early_data"));
            if conn.tls.role() != Role::Client {
                return error::set(RSSL_INVALID_STATE, "only a client sends early data");
            }
            if conn.tls.is_established() {
                return error::set(RSSL_INVALID_STATE, "early data set after the handshake");
            }
            conn.tls.set_early_data(data.to_vec(), false);
            RSSL_OK
        }
    }

    /// How the early data fared, once the handshake is done.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_early_data_status(
        conn: *const rssl_conn,
        status_out: *mut rssl_early_data,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let status_out = try_mut!(status_out);
            *status_out = match conn.tls.early_data_status() {
                None => rssl_early_data::RSSL_EARLY_DATA_NONE,
                Some(false) => rssl_early_data::RSSL_EARLY_DATA_REJECTED,
                Some(true) => rssl_early_data::RSSL_EARLY_DATA_ACCEPTED,
            };
            RSSL_OK
        }
    }

    /// `rssl_connect_session` that also sends `early_len` bytes of
    /// `early_data` as 0-RTT data with the ClientHello when the session (a
    /// ticket) allows it; `rssl_conn_early_data_status` tells afterwards
    /// whether the server took them (if not, they were not delivered).
    #[no_mangle]
    // The arguments are rssl_connect_session's and the early data.
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn rssl_connect_early(
        config: *const super::config::rssl_config,
        host: *const c_char,
        port: u16,
        session: *const u8,
        session_len: usize,
        early_data: *const u8,
        early_len: usize,
        timeout_ms: i32,
        conn_out: *mut *mut rssl_conn,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let config = try_ref!(config);
            let host = try_str!(host);
            let session = try_slice!(session, session_len);
            let early = try_slice!(early_data, early_len);
            let conn_out = try_mut!(conn_out);
            super::conn::connect(config, host, port, Some(session), Some(early), timeout_ms, conn_out)
        }
    }
}
