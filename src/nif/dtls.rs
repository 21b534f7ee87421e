//! DTLS servers: the listener's stateless ClientHello check (cookies), and
//! a peer's connection going on from the ClientHello the listener checked.

use super::config::ConfigRes;
use crate::engine::datagram::{CookieKey, Hello};
use crate::engine::{Connection, Error};
use rustler::{Binary, Encoder, Env, NifResult, OwnedBinary, ResourceArc, Term};

rustler::atoms! {
    ok,
    reply,
    ignore,
    dtls_hello,
}

/// `dtls_check_hello(Config, Secret, Peer, Datagram)`: a datagram from a
/// peer the listener has no connection for. `ok`: a ClientHello with the
/// cookie made for `Peer` (its address) under `Secret`; `{reply, Bin}`: a
/// ClientHello without it, Bin the HelloVerifyRequest to send back;
/// `ignore`: anything else. Nothing is kept either way.
#[rustler::nif]
fn dtls_check_hello<'a>(
    env: Env<'a>,
    config: ResourceArc<ConfigRes>,
    secret: Binary<'a>,
    peer: Binary<'a>,
    datagram: Binary<'a>,
) -> NifResult<Term<'a>> {
    let Ok(mut tls) = Connection::new(&config.config, &Default::default()) else {
        return Ok(ignore().encode(env));
    };
    tls.receive(datagram.as_slice());
    let key = CookieKey::Hmac {
        secret: secret.as_slice().to_vec(),
        peer: peer.as_slice().to_vec(),
    };
    Ok(match tls.listen(key) {
        Ok(Hello::Verified) => ok().encode(env),
        Ok(Hello::VerifyRequest) => {
            let out = tls.next_datagram().unwrap_or_default();
            let mut bin = OwnedBinary::new(out.len());
            bin.as_mut_slice().copy_from_slice(out);
            (reply(), bin.release(env)).encode(env)
        }
        Ok(Hello::Ignored) | Err(_) => ignore().encode(env),
    })
}

/// For `adopt`: a peer map with `dtls_hello` marks a DTLS server
/// connection whose initial datagram is the ClientHello the listener
/// checked; the handshake goes on from it (`continue_hello`).
pub(super) fn has_hello(peer: Term) -> bool {
    peer.map_get(dtls_hello()).is_ok()
}

/// Feeds the checked ClientHello (in the connection's input) to OpenSSL.
pub(super) fn continue_hello(tls: &mut Connection) -> Result<(), Error> {
    match tls.listen(CookieKey::Checked)? {
        Hello::Verified => Ok(()),
        _ => Err(Error::Internal("the ClientHello did not verify".into())),
    }
}
