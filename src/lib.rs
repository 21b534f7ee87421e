//! rssl: OTP's `ssl` API over OpenSSL, for Erlang/Elixir (NIF) and C.

pub mod engine;
