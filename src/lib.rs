//! rssl: OTP's `ssl` API over OpenSSL, for Erlang/Elixir (NIF) and C.

pub mod capi;
pub mod driver;
pub mod engine;
#[cfg(feature = "nif")]
mod nif;
pub mod posix;
