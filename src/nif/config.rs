//! `config_new/1`: an options map (already type-checked by `rssl.erl`)
//! becomes a shared engine configuration.

use super::atoms;
use super::terms::error_term;
use crate::engine::{
    CaSource, CertSource, Config, Identity, KeySource, Options, Role, Verify, Version,
};
use rustler::{Atom, Binary, Encoder, Env, NifResult, ResourceArc, Term};

pub struct ConfigRes {
    pub config: Config,
}

#[rustler::resource_impl]
impl rustler::Resource for ConfigRes {}

fn get<'a>(map: Term<'a>, key: Atom) -> Option<Term<'a>> {
    map.map_get(key)
        .ok()
        .filter(|t| !(t.is_atom() && *t == atoms::undefined().to_term(map.get_env())))
}

fn string(term: Term) -> NifResult<String> {
    let bin: Binary = term.decode()?;
    Ok(String::from_utf8_lossy(bin.as_slice()).into_owned())
}

fn bytes(term: Term) -> NifResult<Vec<u8>> {
    let bin: Binary = term.decode()?;
    Ok(bin.as_slice().to_vec())
}

fn bytes_list(term: Term) -> NifResult<Vec<Vec<u8>>> {
    let list: Vec<Binary> = term.decode()?;
    Ok(list.iter().map(|b| b.as_slice().to_vec()).collect())
}

fn flag(map: Term, key: Atom, default: bool) -> NifResult<bool> {
    get(map, key).map_or(Ok(default), |t| t.decode())
}

/// Decodes the normalized map `rssl.erl` builds (see `rssl_options`).
fn decode(map: Term) -> NifResult<Options> {
    let role = match get(map, atoms::role()) {
        Some(t) if t == atoms::server().to_term(map.get_env()) => Role::Server,
        _ => Role::Client,
    };
    let mut o = Options::new(role);
    if let Some(t) = get(map, atoms::versions()) {
        let names: Vec<Atom> = t.decode()?;
        let env = map.get_env();
        o.versions = names
            .iter()
            .filter_map(|a| {
                let name = a.to_term(env).atom_to_string().ok()?;
                Version::from_name(&name)
            })
            .collect();
    }
    if let Some(t) = get(map, atoms::verify()) {
        o.verify = if t == atoms::verify_peer().to_term(map.get_env()) {
            Verify::Peer
        } else {
            Verify::None
        };
    }
    o.fail_if_no_peer_cert = flag(map, atoms::fail_if_no_peer_cert(), false)?;
    if let Some(t) = get(map, atoms::depth()) {
        o.depth = t.decode()?;
    }
    let (cert, key, password) = decode_identity(map)?;
    o.cert = cert;
    o.key = key;
    o.password = password;
    if let Some(t) = get(map, atoms::certs_keys()) {
        let entries: Vec<Term> = t.decode()?;
        let mut list = Vec::with_capacity(entries.len());
        for entry in entries {
            let (cert, key, password) = decode_identity(entry)?;
            // rssl_options refuses an entry without a certificate.
            let cert = cert.ok_or(rustler::Error::BadArg)?;
            list.push(Identity {
                cert,
                key,
                password,
            });
        }
        o.certs_keys = Some(list);
    }
    o.cacerts = if let Some(t) = get(map, atoms::cacerts()) {
        Some(CaSource::Der(bytes_list(t)?))
    } else if let Some(t) = get(map, atoms::cacertfile()) {
        Some(CaSource::File(string(t)?))
    } else {
        None
    };
    o.cipher_list = get(map, atoms::ciphers()).map(string).transpose()?;
    o.ciphersuites = get(map, atoms::ciphersuites()).map(string).transpose()?;
    o.honor_cipher_order = flag(map, atoms::honor_cipher_order(), false)?;
    // As OTP's ssl: no wildcard certificates unless asked for.
    o.hostname_wildcards = flag(map, atoms::hostname_wildcards(), false)?;
    o.sigalgs = get(map, atoms::signature_algs()).map(string).transpose()?;
    if let Some(t) = get(map, atoms::alpn()) {
        o.alpn = bytes_list(t)?;
    }
    o.reuse_sessions = flag(map, atoms::reuse_sessions(), true)?;
    o.secure_renegotiate = flag(map, atoms::secure_renegotiate(), true)?;
    o.client_renegotiation = flag(map, atoms::client_renegotiation(), true)?;
    o.groups = get(map, atoms::supported_groups())
        .map(string)
        .transpose()?;
    o.eccs = get(map, atoms::eccs()).map(string).transpose()?;
    o.dh = get(map, atoms::dh()).map(bytes).transpose()?;
    o.dhfile = get(map, atoms::dhfile()).map(string).transpose()?;
    o.fallback = flag(map, atoms::fallback(), false)?;
    o.keep_secrets = flag(map, atoms::keep_secrets(), false)?;
    o.certificate_authorities = flag(map, atoms::certificate_authorities(), true)?;
    if let Some(t) = get(map, atoms::key_update_at()) {
        o.key_update_at = t.decode()?;
    }
    if let Some(t) = get(map, atoms::renegotiate_at()) {
        o.renegotiate_at = t.decode()?;
    }
    o.max_fragment_length = get(map, atoms::max_fragment_length())
        .map(|t| t.decode())
        .transpose()?;
    if let Some(t) = get(map, atoms::sni_fun()) {
        let ask = super::callback::sni_fun(super::callback::Saved::new(t));
        o.sni_fun = Some(crate::engine::hooks::Callback(std::sync::Arc::from(ask)));
    }
    decode_callbacks(map, &mut o)?;
    if let Some(t) = get(map, atoms::sni_hosts()) {
        let hosts: Vec<(Binary, ResourceArc<ConfigRes>)> = t.decode()?;
        o.sni_hosts = hosts
            .iter()
            .map(|(host, res)| {
                (
                    String::from_utf8_lossy(host.as_slice()).into_owned(),
                    res.config.clone(),
                )
            })
            .collect();
    }
    Ok(o)
}

/// A certificate, key and password, from the top-level options or from an
/// entry of `certs_keys` (the same keys in both).
type IdentityParts = (Option<CertSource>, Option<KeySource>, Option<String>);

fn decode_identity(map: Term) -> NifResult<IdentityParts> {
    let cert = if let Some(t) = get(map, atoms::cert()) {
        Some(CertSource::Der(bytes_list(t)?))
    } else if let Some(t) = get(map, atoms::cert_pem()) {
        Some(CertSource::Pem(bytes(t)?))
    } else if let Some(t) = get(map, atoms::certfile()) {
        Some(CertSource::File(string(t)?))
    } else {
        None
    };
    let key = if let Some(t) = get(map, atoms::key()) {
        let (kind, der): (Atom, Binary) = t.decode()?;
        let kind = kind.to_term(map.get_env()).atom_to_string()?;
        Some(KeySource::Der(kind, der.as_slice().to_vec()))
    } else if let Some(t) = get(map, atoms::key_pem()) {
        Some(KeySource::Pem(bytes(t)?))
    } else if let Some(t) = get(map, atoms::keyfile()) {
        Some(KeySource::File(string(t)?))
    } else {
        None
    };
    let password = get(map, atoms::password()).map(string).transpose()?;
    Ok((cert, key, password))
}

/// Verification, CRLs, PSK/SRP, sessions and NPN.
fn decode_callbacks(map: Term, o: &mut Options) -> NifResult<()> {
    use crate::engine::crl::{CrlCheck, CrlSource};
    use crate::engine::npn::{NpnPrecedence, NpnPreference};
    let is = |t: Term, a: Atom| t.decode::<Atom>().ok() == Some(a);
    if let Some(t) = get(map, atoms::verify_fun()) {
        o.verify_fun = Some(super::callback::verify_fun(t));
        if o.role == Role::Client {
            // A client validates the server's chain whatever `verify` says;
            // the fun's verdict is final (OpenSSL ignores verdicts with
            // verify_none).
            o.verify = Verify::Peer;
        }
    }
    if let Some(t) = get(map, atoms::partial_chain()) {
        o.partial_chain = Some(super::callback::partial_chain(t));
    }
    if let Some(t) = get(map, atoms::crl_check()) {
        o.crl_check = if is(t, atoms::peer()) {
            CrlCheck::Peer
        } else if is(t, atoms::best_effort()) {
            CrlCheck::BestEffort
        } else if t.decode::<bool>()? {
            CrlCheck::All
        } else {
            CrlCheck::Off
        };
    }
    if let Some(t) = get(map, atoms::crls()) {
        o.crls = bytes_list(t)?.into_iter().map(CrlSource::Der).collect();
    }
    o.crl_dir = get(map, atoms::crl_dir()).map(string).transpose()?;
    if let Some(t) = get(map, atoms::crl_http()) {
        o.crl_fetch = Some(super::callback::crl_fetch(t));
    }
    if let Some(t) = get(map, atoms::user_lookup_fun()) {
        o.user_lookup = Some(super::callback::user_lookup(t));
    }
    o.psk_identity = get(map, atoms::psk_identity()).map(string).transpose()?;
    if let Some(t) = get(map, atoms::srp_identity()) {
        let (user, password): (Term, Term) = t.decode()?;
        o.srp_identity = Some((string(user)?, string(password)?));
    }
    if let Some(t) = get(map, atoms::session_tickets()) {
        if is(t, atoms::stateless()) || is(t, atoms::stateful()) {
            // As many tickets as OTP's servers send.
            o.session_tickets = 3;
            o.stateful_tickets = is(t, atoms::stateful());
        }
        o.auto_tickets = is(t, atoms::auto());
        o.manual_tickets = is(t, atoms::manual());
    }
    // Server 0-RTT: the most early data accepted (rssl_options puts the
    // size there for `{early_data, enabled}`).
    if let Some(t) = get(map, atoms::early_data()) {
        o.max_early_data = t.decode()?;
    }
    if let Some(t) = get(map, atoms::anti_replay()) {
        let (window_secs, hashes, bits): (u32, u32, u32) = t.decode()?;
        o.anti_replay = Some(crate::engine::anti_replay::AntiReplayParams {
            window_secs,
            hashes,
            bits,
        });
    }
    if let Some(t) = get(map, atoms::handshake()) {
        if is(t, atoms::hello()) {
            o.hello = Some(super::callback::hello_fun(t));
        }
    }
    if let Some(t) = get(map, atoms::reuse_session()) {
        o.reuse_session = Some(super::callback::reuse_session(t));
    }
    if let Some(t) = get(map, atoms::next_protocols_advertised()) {
        o.npn_advertised = bytes_list(t)?;
    }
    if let Some(t) = get(map, atoms::client_preferred_next_protocols()) {
        let (precedence, protocols, default): (Atom, Term, Term) = t.decode()?;
        o.npn_preferred = Some(NpnPreference {
            precedence: if precedence == atoms::server() {
                NpnPrecedence::Server
            } else {
                NpnPrecedence::Client
            },
            protocols: bytes_list(protocols)?,
            default: default
                .decode::<Binary>()
                .ok()
                .map(|b| b.as_slice().to_vec()),
        });
    }
    Ok(())
}

/// Builds (or finds in the cache) the configuration for an options map.
/// Reads certificate files, hence a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn config_new<'a>(env: Env<'a>, map: Term<'a>) -> NifResult<Term<'a>> {
    let options = decode(map)?;
    Ok(match Config::get(&options) {
        Ok(config) => (atoms::ok(), ResourceArc::new(ConfigRes { config })).encode(env),
        Err(e) => (atoms::error(), error_term(env, &e)).encode(env),
    })
}

/// The cached configuration for an options map, without touching files:
/// `{ok, Config}` or `miss` (then `config_new/1` builds it).
#[rustler::nif]
fn config_cached<'a>(env: Env<'a>, map: Term<'a>) -> NifResult<Term<'a>> {
    let options = decode(map)?;
    Ok(match Config::cached(&options) {
        Some(config) => (atoms::ok(), ResourceArc::new(ConfigRes { config })).encode(env),
        None => atoms::miss().encode(env),
    })
}

#[rustler::nif]
fn config_clear_cache() -> Atom {
    Config::clear_cache();
    atoms::ok()
}
