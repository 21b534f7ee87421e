//! The Erlang NIF (`rssl_nif`): terms in, engine and driver calls, terms out.

mod atoms;
mod callback;
mod cell;
mod config;
mod dist;
mod dist_feed;
mod dist_watch;
mod downgrade;
mod dtls;
mod host;
mod info;
mod options;
mod sessions;
mod socket;
mod terms;

/// Resource types rustler cannot open itself (see dist_watch.rs).
fn load(env: rustler::Env, _info: rustler::Term) -> bool {
    dist_watch::open_type(env)
}

rustler::init!("rssl_nif", load = load);
