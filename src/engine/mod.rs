//! Sans-I/O TLS engine over OpenSSL.
//!
//! Knows nothing of Erlang, C or sockets: a [`Config`] is built once from
//! validated [`Options`] and shared; a [`Connection`] takes ciphertext in and
//! gives ciphertext out, and exposes plaintext read/write.

/// The largest plaintext one TLS or DTLS record carries (2^14 bytes, RFC
/// 8446 5.1): the unit the engine encrypts and decrypts.
pub const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

pub mod alert;
pub mod anti_replay;
pub mod config;
pub mod connection;
pub mod crl;
pub mod datagram;
pub mod early_data;
pub mod error;
mod ffi;
pub mod hello;
pub mod hooks;
mod identity;
pub mod npn;
pub mod options;
pub(crate) mod pause;
pub(crate) mod pem;
pub mod prf;
pub mod psk;
pub(crate) mod rekey;
pub(crate) mod renegotiation;
pub(crate) mod secrets;
pub mod session;
pub mod sni;
pub mod suite;
pub(crate) mod tls13_alert;
pub mod verify;
pub mod version;
mod wire;

pub use alert::Alert;
pub use config::Config;
pub use connection::{Connection, Progress, ReadOutcome};
pub use error::Error;
pub use options::{CaSource, CertSource, Identity, KeySource, Options, Role, Verify};
pub use version::Version;
