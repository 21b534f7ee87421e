//! The Erlang NIF (`rssl_nif`): terms in, engine and driver calls, terms out.

mod atoms;
mod callback;
mod cell;
mod config;
mod dist_port;
mod downgrade;
mod dtls;
mod erl_drv;
mod host;
mod info;
mod options;
mod sessions;
mod socket;
mod terms;

rustler::init!("rssl_nif");
