//! Downgrading a connection to TCP (`close/2` with a new owner): the
//! socket leaves the driver after our close_notify; `rssl.erl` reads the
//! peer's remaining records itself, exactly, and hands each to the TLS
//! state here until its close_notify, so that whatever the peer sends in
//! clear after that stays in the socket for the new owner.

use super::atoms;
use super::host::CallerOutbox;
use super::socket::conn_of;
use super::terms::{binary, error_term, error_tuple};
use crate::engine::ReadOutcome;
use rustler::{Binary, Encoder, Env, NifResult, ResourceArc, Term};
use std::sync::atomic::{AtomicI32, Ordering};

/// The socket of a downgraded connection. A gen_tcp port made on it with
/// `gen_tcp:fdopen/2` does not close it, so this resource does, when the
/// process keeping it (which watches the port) ends.
pub struct OwnedSocket {
    /// -1 once closed.
    fd: AtomicI32,
}

impl OwnedSocket {
    fn close(&self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            crate::driver::socket::close(fd);
        }
    }
}

#[rustler::resource_impl]
impl rustler::Resource for OwnedSocket {}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        self.close();
    }
}

/// `downgrade_detach(Socket)`: `{ok, Fd, Owned, Unsent, Buffered,
/// PeerClosed}` (`Owned` closes `Fd` when it is dropped; `Unsent` is
/// ciphertext still to send, our close_notify among it; `Buffered`
/// ciphertext received and not read), or `{error, Reason}`.
#[rustler::nif]
fn downgrade_detach<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(match res.conn.detach(&mut CallerOutbox { env }) {
        Ok(d) => (
            atoms::ok(),
            d.fd,
            ResourceArc::new(OwnedSocket {
                fd: AtomicI32::new(d.fd),
            }),
            binary(env, &d.unsent),
            binary(env, &d.buffered),
            d.peer_closed,
        )
            .encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// `downgrade_feed(Socket, Ciphertext)` on a detached connection: `more`
/// until the peer's close_notify, then `{closed, Rest}` with the bytes that
/// followed it; `{error, Reason}` if the stream fails. Data the peer sent
/// before its close_notify is dropped, as OTP's ssl drops it.
#[rustler::nif]
fn downgrade_feed<'a>(env: Env<'a>, socket: Term<'a>, data: Binary<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    Ok(res.conn.with_tls_mut(|tls| {
        tls.receive(data.as_slice());
        let mut scratch = [0u8; 4096];
        loop {
            match tls.read(&mut scratch) {
                Ok(ReadOutcome::Data(_)) => continue,
                Ok(ReadOutcome::WouldBlock) => return atoms::more().encode(env),
                Ok(ReadOutcome::Closed) if tls.peer_closed() => {
                    let rest = tls.take_buffered_input();
                    return (atoms::closed(), binary(env, &rest)).encode(env);
                }
                Ok(ReadOutcome::Closed) => {
                    return (atoms::error(), atoms::closed()).encode(env);
                }
                Err(e) => return (atoms::error(), error_term(env, &e)).encode(env),
            }
        }
    }))
}

/// `downgrade_release(Owned)`: closes the downgraded socket now (its port
/// is gone); later calls do nothing.
#[rustler::nif]
fn downgrade_release(owned: ResourceArc<OwnedSocket>) -> rustler::Atom {
    owned.close();
    atoms::ok()
}
