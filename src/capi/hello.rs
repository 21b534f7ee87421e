//! Stopping a handshake after the peer's hello (OTP's `{handshake,
//! hello}`), for C.
//!
//! ```c
//! rssl_config_builder_set_pause_after_hello(b, true);
//! ...
//! r = rssl_handshake(conn, 5000);             // or rssl_conn_handshake_step
//! if (r == RSSL_HELLO) {
//!     rssl_bytes sni;
//!     if (rssl_conn_hello_extension(conn, 0, &sni) == RSSL_OK) { ... }
//!     rssl_conn_hello_continue(conn, chosen_config_or_NULL);
//!     // or rssl_conn_hello_cancel(conn): the next step fails with
//!     // user_canceled (RSSL_TLS_ALERT), the alert going to the peer
//!     r = rssl_handshake(conn, 5000);
//! }
//! ```
//!
//! The handshake waits inside OpenSSL (an async job, see the engine's
//! `pause.rs`) on the thread that called the handshake: the decision may
//! be made anywhere, but the handshake must go on in that same thread.
//! The configuration's other callbacks (verify, SNI, PSK...) then run
//! inside that job, on OpenSSL's 32 KiB job stack.

use super::callbacks::rssl_bytes;
use super::config::{rssl_config, rssl_config_builder};
use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use crate::engine::hello::{Hello, HelloChoice};
use crate::engine::hooks::Callback;
use std::sync::Arc;
use std::task::Poll;

impl rssl_config_builder {
    /// Stops every handshake made with the configuration after the peer's
    /// hello (a server: the ClientHello; a client: the ServerHello): the
    /// handshake call returns `RSSL_HELLO`, and goes on after
    /// `rssl_conn_hello_continue` or `rssl_conn_hello_cancel`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_pause_after_hello(
        builder: *mut rssl_config_builder,
        pause: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            // The decision comes through the connection: until then the
            // handshake stays paused.
            builder.options.hello = pause.then(|| {
                Callback(Arc::new(|_: &Hello| Poll::Pending) as Arc<crate::engine::hello::HelloFn>)
            });
            RSSL_OK
        }
    }
}

impl rssl_conn {
    fn waiting_hello(&self) -> Result<Hello, rssl_result> {
        self.tls.hello_waiting().ok_or_else(|| {
            error::set(
                RSSL_INVALID_STATE,
                "the handshake is not stopped at a hello",
            )
        })
    }

    fn decide_hello(&mut self, choice: HelloChoice) -> rssl_result {
        try_result!(self.waiting_hello());
        if self.tls.answer_hello(choice) {
            RSSL_OK
        } else {
            error::set(
                RSSL_INVALID_STATE,
                "the handshake is not stopped at a hello",
            )
        }
    }

    /// While the handshake is stopped at the peer's hello (`RSSL_HELLO`):
    /// the data of its extension `ext_type` (e.g. 0 server_name, 16 ALPN,
    /// 43 supported_versions), as sent, in `*data_out`, valid until the
    /// handshake goes on. `RSSL_NOT_AVAILABLE` if the peer did not send it,
    /// `RSSL_INVALID_STATE` if the handshake is not stopped at a hello.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_hello_extension(
        conn: *mut rssl_conn,
        ext_type: u16,
        data_out: *mut rssl_bytes,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let data_out = try_mut!(data_out);
            let hello = match conn.waiting_hello() {
                Ok(hello) => hello,
                Err(result) => return result,
            };
            let Some(data) = hello
                .extensions()
                .into_iter()
                .find(|(t, _)| *t == ext_type)
                .map(|(_, d)| d.to_vec())
            else {
                return error::set(
                    RSSL_NOT_AVAILABLE,
                    format!("the peer's hello has no extension {ext_type}"),
                );
            };
            // Kept in the connection until the handshake goes on.
            conn.hello_data = data;
            *data_out = rssl_bytes {
                data: conn.hello_data.as_ptr(),
                len: conn.hello_data.len(),
            };
            RSSL_OK
        }
    }

    /// Lets a handshake stopped at the hello go on, with `config` (same
    /// role; its certificate, key, trusted CAs and verification replace
    /// the connection's; rssl keeps its own reference) or, with NULL, the
    /// configuration it had. Then call the handshake again, in the thread
    /// that got `RSSL_HELLO`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_hello_continue(
        conn: *mut rssl_conn,
        config: *const rssl_config,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            // SAFETY: pointer rules (see mod.rs); NULL means no change.
            let config = unsafe { config.as_ref() };
            if let Some(c) = config {
                if c.config.role() != conn.tls.role() {
                    return error::set(
                        RSSL_INVALID_ARGUMENT,
                        "the configuration is for the other role",
                    );
                }
            }
            conn.decide_hello(HelloChoice::Continue(config.map(|c| c.config.clone())))
        }
    }

    /// Ends a handshake stopped at the hello: the next handshake call fails
    /// with `RSSL_TLS_ALERT` (user_canceled, sent to the peer).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_hello_cancel(conn: *mut rssl_conn) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            conn.decide_hello(HelloChoice::Cancel)
        }
    }
}
