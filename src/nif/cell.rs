//! A mutable term cell: state of a listen socket that `setopts/2` changes
//! (the listen socket term itself is immutable).

use super::atoms;
use parking_lot::Mutex;
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Atom, Encoder, Env, ResourceArc, Term};

pub struct CellRes {
    value: Mutex<(OwnedEnv, SavedTerm)>,
}

#[rustler::resource_impl]
impl rustler::Resource for CellRes {}

fn saved(term: Term) -> (OwnedEnv, SavedTerm) {
    let env = OwnedEnv::new();
    let saved = env.save(term);
    (env, saved)
}

#[rustler::nif]
fn cell_new<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    ResourceArc::new(CellRes {
        value: Mutex::new(saved(term)),
    })
    .encode(env)
}

#[rustler::nif]
fn cell_get<'a>(env: Env<'a>, cell: ResourceArc<CellRes>) -> Term<'a> {
    let value = cell.value.lock();
    value.0.run(|owned| value.1.load(owned).in_env(env))
}

#[rustler::nif]
fn cell_set(cell: ResourceArc<CellRes>, term: Term) -> Atom {
    *cell.value.lock() = saved(term);
    atoms::ok()
}
