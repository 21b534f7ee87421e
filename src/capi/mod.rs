//! The C ABI: opaque handles, stable result codes, a panic boundary.
//!
//! Every exported function is `rssl_<noun>_<verb>`, returns an
//! [`rssl_result`] (or a value with an obvious "nothing" such as NULL), never
//! lets a panic cross into C, and accepts NULL for any pointer argument
//! (reporting [`rssl_result::RSSL_NULL_PARAMETER`]). Every `_free` function
//! accepts NULL and does nothing with it.
//!
//! Pointer rules: a non-NULL pointer argument points to what its type says
//! for the whole call: a handle that this library handed out and that was
//! not freed, an output that is writable, a NUL-terminated string, or a
//! buffer valid for the length passed with it. These are the C caller's
//! promises; an `unsafe` block that relies on nothing else says
//! `// SAFETY: pointer rules` instead of repeating them.
//!
//! When a call fails, the details (file path, OpenSSL reason, TLS alert) are
//! kept per thread until the next failing call; see `rssl_error_string` and
//! `rssl_last_alert`.
//!
//! Threads: a built `rssl_config` is immutable and may be used by any number
//! of threads at once; a `rssl_config_builder`, a `rssl_conn` or a
//! `rssl_listener` must be used by one thread at a time (any thread).
//!
//! Nothing here knows about Erlang: the C library links without the BEAM.

// The C names are the API; they follow C conventions, not Rust ones.
#![allow(non_camel_case_types)]
// Every exported function takes raw pointers from C; the rules for them are
// stated once, above, rather than in a `# Safety` section per function.
#![allow(clippy::missing_safety_doc)]

#[macro_use]
mod panic;

pub mod alert;
pub mod callbacks;
pub mod config;
pub mod conn;
pub mod dtls;
pub mod error;
pub mod hello;
pub mod info;
pub mod listener;
pub mod memory;
pub mod result;
mod socket;
mod text;
pub mod tickets;
mod udp;

pub use result::rssl_result;
