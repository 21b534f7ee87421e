//! Connection information: version, suite, SNI, ALPN, peer certificate.

use super::atoms;
use super::socket::ConnRes;
use super::terms::{atom, binary, charlist, error_tuple};
use crate::driver::Failure;
use crate::engine::Role;
use rustler::{Atom, Encoder, Env, NifResult, ResourceArc, Term};

fn conn_of(socket: Term) -> NifResult<ResourceArc<ConnRes>> {
    let (_, res, _): (Atom, ResourceArc<ConnRes>, Term) = socket.decode()?;
    Ok(res)
}

/// `{ok, [{protocol, _}, {selected_cipher_suite, #{...}}, ...]}` once established.
#[rustler::nif]
fn info<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    if !res.conn.is_established() {
        return Ok(error_tuple(env, &Failure::Closed));
    }
    // OTP's order (protocol, session_id, session_data, session_resumption,
    // selected_cipher_suite, sni_hostname, srp_username, ecc), then rssl's
    // own items. As in OTP, only a server reports sni_hostname.
    let items = res.conn.with_tls(|tls| {
        let mut items: Vec<(Atom, Term<'a>)> = Vec::new();
        if let Some(v) = tls.version() {
            items.push((atoms::protocol(), atom(env, v.name())));
        }
        items.push((atoms::session_id(), binary(env, &tls.session_id())));
        if let Some(der) = tls.session() {
            items.push((atoms::session_data(), binary(env, &der)));
        }
        items.push((
            atoms::session_resumption(),
            tls.session_reused().encode(env),
        ));
        let suite = tls.suite();
        if let Some(s) = &suite {
            let map = Term::map_from_pairs(
                env,
                &[
                    (atoms::key_exchange(), atom(env, s.key_exchange)),
                    (atoms::cipher(), atom(env, s.cipher)),
                    (atoms::mac(), atom(env, s.mac)),
                    (atoms::prf(), atom(env, s.prf)),
                ],
            )
            .unwrap_or_else(|_| atoms::undefined().encode(env));
            items.push((atoms::selected_cipher_suite(), map));
        }
        if tls.role() == Role::Server {
            if let Some(host) = tls.sni_hostname() {
                items.push((atoms::sni_hostname(), charlist(env, &host)));
            }
        }
        if let Some(user) = tls.srp_username() {
            items.push((atoms::srp_username(), binary(env, user.as_bytes())));
        }
        if let Some(curve) = tls.ecdhe_curve() {
            let curve = (atoms::named_curve(), atom(env, &curve)).encode(env);
            items.push((atoms::ecc(), curve));
        }
        if let Some(n) = tls.max_fragment_length() {
            items.push((atoms::max_fragment_length(), n.encode(env)));
        }
        if let Some(p) = tls.negotiated_protocol() {
            items.push((atoms::negotiated_protocol(), binary(env, &p)));
        }
        if let Some(s) = &suite {
            items.push((atoms::openssl_name(), charlist(env, &s.openssl_name)));
            items.push((atoms::standard_name(), charlist(env, &s.standard_name)));
        }
        items
    });
    Ok(match items {
        Ok(items) => (atoms::ok(), items).encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

#[rustler::nif]
fn peercert<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let cert = res.conn.with_tls(|tls| tls.peer_certificate());
    Ok(match cert {
        Ok(Some(der)) => (atoms::ok(), binary(env, &der)).encode(env),
        Ok(None) => (atoms::error(), atoms::no_peercert()).encode(env),
        Err(f) => error_tuple(env, &f),
    })
}

/// The suites OpenSSL selects for two lists (TLS 1.2-and-older, TLS 1.3),
/// each as `#{key_exchange, cipher, mac, prf, openssl, rfc, min_version}`.
#[rustler::nif]
fn suites<'a>(env: Env<'a>, cipher_list: String, tls13_suites: String) -> NifResult<Term<'a>> {
    let suites = match crate::engine::suite::select(&cipher_list, &tls13_suites) {
        Ok(suites) => suites,
        Err(e) => return Ok((atoms::error(), super::terms::error_term(env, &e)).encode(env)),
    };
    let maps: Vec<Term<'a>> = suites
        .iter()
        .map(|s| {
            Term::map_from_pairs(
                env,
                &[
                    (atoms::key_exchange(), atom(env, s.key_exchange)),
                    (atoms::cipher(), atom(env, s.cipher)),
                    (atoms::mac(), atom(env, s.mac)),
                    (atoms::prf(), atom(env, s.prf)),
                    (atoms::openssl_name(), charlist(env, &s.openssl_name)),
                    (atoms::standard_name(), charlist(env, &s.standard_name)),
                    (atoms::protocol(), charlist(env, s.min_version)),
                ],
            )
            .unwrap_or_else(|_| atoms::undefined().encode(env))
        })
        .collect();
    Ok((atoms::ok(), maps).encode(env))
}

/// `{ok, [{client_random, Bin}, {server_random, Bin}, {master_secret,
/// Bin} (TLS 1.2), kept TLS 1.3 secrets...]}`: the security items of
/// `connection_information/2`.
#[rustler::nif]
fn security_info<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    if !res.conn.is_established() {
        return Ok(error_tuple(env, &Failure::Closed));
    }
    Ok(match res.conn.with_tls(|tls| tls.security_items()) {
        Ok(items) => {
            let list: Vec<Term> = items
                .iter()
                .map(|(name, bytes)| (atom(env, name), binary(env, bytes)).encode(env))
                .collect();
            (atoms::ok(), list).encode(env)
        }
        Err(f) => error_tuple(env, &f),
    })
}

/// `prf(Socket, Secret, Label, Seed, Length)` (validated in Erlang).
#[rustler::nif]
fn prf<'a>(
    env: Env<'a>,
    socket: Term<'a>,
    secret: Term<'a>,
    label: rustler::Binary<'a>,
    seed: Vec<Term<'a>>,
    len: usize,
) -> NifResult<Term<'a>> {
    use crate::engine::prf::SeedPart;
    let res = conn_of(socket)?;
    let secret: Option<Vec<u8>> = secret
        .decode::<rustler::Binary>()
        .ok()
        .map(|b| b.as_slice().to_vec());
    let parts = seed
        .iter()
        .map(|t| {
            if let Ok(b) = t.decode::<rustler::Binary>() {
                Ok(SeedPart::Bytes(b.as_slice().to_vec()))
            } else if t.atom_to_string()? == "client_random" {
                Ok(SeedPart::ClientRandom)
            } else {
                Ok(SeedPart::ServerRandom)
            }
        })
        .collect::<NifResult<Vec<_>>>()?;
    if !res.conn.is_established() {
        return Ok(error_tuple(env, &Failure::Closed));
    }
    let out = res
        .conn
        .with_tls(|tls| tls.prf(secret.as_deref(), label.as_slice(), &parts, len));
    Ok(match out {
        Ok(Ok(bytes)) => (atoms::ok(), binary(env, &bytes)).encode(env),
        Ok(Err(_)) => (atoms::error(), atoms::undefined()).encode(env),
        Err(f) => error_tuple(env, &f),
    })
}
