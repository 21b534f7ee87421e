//! Next Protocol Negotiation (TLS 1.2 and older; OTP's
//! `next_protocols_advertised` and `client_preferred_next_protocols`).

use super::connection::{guard, Connection};
use super::error::Error;
use super::hooks;
use super::options::{Options, Role};
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_uchar, c_uint, c_void};
use openssl::ssl::SslRef;

/// Whose preference wins when both sides list several protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpnPrecedence {
    Client,
    Server,
}

/// A client's NPN choice: its protocols by preference, and what to pick
/// when nothing matches (None: its first protocol).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NpnPreference {
    pub precedence: NpnPrecedence,
    pub protocols: Vec<Vec<u8>>,
    pub default: Option<Vec<u8>>,
}

/// Protocols in wire format (each with a length byte).
pub(crate) fn wire(protocols: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in protocols {
        out.push(p.len() as u8);
        out.extend_from_slice(p);
    }
    out
}

fn split(mut wire: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = wire.split_first() {
        if rest.len() < len as usize {
            break;
        }
        out.push(&rest[..len as usize]);
        wire = &rest[len as usize..];
    }
    out
}

/// The protocol a client picks from what the server advertised.
pub fn choose<'a>(pref: &'a NpnPreference, advertised: &[&'a [u8]]) -> Option<&'a [u8]> {
    let matched = match pref.precedence {
        NpnPrecedence::Client => pref
            .protocols
            .iter()
            .find(|p| advertised.contains(&p.as_slice()))
            .map(Vec::as_slice),
        NpnPrecedence::Server => advertised
            .iter()
            .find_map(|a| pref.protocols.iter().find(|p| p.as_slice() == *a))
            .map(Vec::as_slice),
    };
    matched
        .or(pref.default.as_deref())
        .or(pref.protocols.first().map(Vec::as_slice))
}

pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<(), Error> {
    let bad = |what: &str| Error::Option(what.into(), "protocols must be 1 to 255 bytes".into());
    if o.npn_advertised
        .iter()
        .any(|p| p.is_empty() || p.len() > 255)
    {
        return Err(bad("next_protocols_advertised"));
    }
    if let Some(pref) = &o.npn_preferred {
        if pref.protocols.is_empty()
            || pref
                .protocols
                .iter()
                .chain(pref.default.iter())
                .any(|p| p.is_empty() || p.len() > 255)
        {
            return Err(bad("client_preferred_next_protocols"));
        }
    }
    // SAFETY: `b` owns a live SSL_CTX; the callbacks take no argument (they
    // find the lists in the context's hooks).
    unsafe {
        match o.role {
            Role::Server if !o.npn_advertised.is_empty() => {
                openssl_sys::SSL_CTX_set_next_protos_advertised_cb(
                    b.as_ptr(),
                    advertise,
                    std::ptr::null_mut(),
                );
            }
            Role::Client if o.npn_preferred.is_some() => {
                openssl_sys::SSL_CTX_set_next_proto_select_cb(
                    b.as_ptr(),
                    select,
                    std::ptr::null_mut(),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

extern "C" fn advertise(
    ssl: *mut openssl_sys::SSL,
    out: *mut *const c_uchar,
    outlen: *mut c_uint,
    _: *mut c_void,
) -> c_int {
    // SAFETY: OpenSSL passes a live SSL and writable `out` and `outlen`;
    // what `out` points to lives as long as the context (see below).
    guard(super::ffi::SSL_TLSEXT_ERR_NOACK, || unsafe {
        let ssl = SslRef::from_ptr(ssl);
        match hooks::of(ssl.ssl_context()) {
            // The context keeps the list for as long as it lives.
            Some(h) if !h.npn_advertised.is_empty() => {
                *out = h.npn_advertised.as_ptr();
                *outlen = h.npn_advertised.len() as c_uint;
                super::ffi::SSL_TLSEXT_ERR_OK
            }
            _ => super::ffi::SSL_TLSEXT_ERR_NOACK,
        }
    })
}

extern "C" fn select(
    ssl: *mut openssl_sys::SSL,
    out: *mut *mut c_uchar,
    outlen: *mut c_uchar,
    input: *const c_uchar,
    inlen: c_uint,
    _: *mut c_void,
) -> c_int {
    // SAFETY: OpenSSL passes a live SSL, writable `out` and `outlen`, and
    // `inlen` bytes at `input`; the choice lives in the context (see below).
    guard(super::ffi::SSL_TLSEXT_ERR_NOACK, || unsafe {
        let ssl = SslRef::from_ptr(ssl);
        let Some(pref) = hooks::of(ssl.ssl_context()).and_then(|h| h.npn_preferred.as_ref()) else {
            return super::ffi::SSL_TLSEXT_ERR_NOACK;
        };
        let advertised = split(std::slice::from_raw_parts(input, inlen as usize));
        match choose(pref, &advertised) {
            // OpenSSL copies the choice before the context could go.
            Some(p) => {
                *out = p.as_ptr() as *mut c_uchar;
                *outlen = p.len() as c_uchar;
                super::ffi::SSL_TLSEXT_ERR_OK
            }
            None => super::ffi::SSL_TLSEXT_ERR_NOACK,
        }
    })
}

impl Connection {
    /// The protocol chosen with NPN, if any.
    pub fn npn_protocol(&self) -> Option<Vec<u8>> {
        let mut data = std::ptr::null();
        let mut len = 0;
        // SAFETY: a live SSL owned by this connection; OpenSSL points `data`
        // at `len` bytes of its own, or leaves it NULL.
        unsafe {
            openssl_sys::SSL_get0_next_proto_negotiated(self.ssl().as_ptr(), &mut data, &mut len);
            (!data.is_null() && len > 0)
                .then(|| std::slice::from_raw_parts(data, len as usize).to_vec())
        }
    }

    /// The application protocol agreed with ALPN or else NPN (OTP's
    /// `negotiated_protocol/1`).
    pub fn negotiated_protocol(&self) -> Option<Vec<u8>> {
        self.alpn_protocol().or_else(|| self.npn_protocol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_fallback() {
        let pref = NpnPreference {
            precedence: NpnPrecedence::Client,
            protocols: vec![b"spdy/2".to_vec(), b"http/1.1".to_vec()],
            default: None,
        };
        let advertised: Vec<&[u8]> = vec![b"http/1.1", b"spdy/2"];
        assert_eq!(choose(&pref, &advertised), Some(&b"spdy/2"[..]));
        let server_first = NpnPreference {
            precedence: NpnPrecedence::Server,
            ..pref.clone()
        };
        assert_eq!(choose(&server_first, &advertised), Some(&b"http/1.1"[..]));
        let with_default = NpnPreference {
            default: Some(b"x".to_vec()),
            ..pref.clone()
        };
        assert_eq!(choose(&with_default, &[b"h2"]), Some(&b"x"[..]));
        assert_eq!(choose(&pref, &[]), Some(&b"spdy/2"[..]));
        assert_eq!(
            split(&wire(&pref.protocols)),
            vec![&b"spdy/2"[..], b"http/1.1"]
        );
    }
}

#[cfg(test)]
mod handshake_tests {
    use super::*;
    use crate::engine::connection::tests::{
        client_options, handshake_pair, pair, server_options, test_pki,
    };
    use crate::engine::{Progress, Version};

    #[test]
    fn npn_negotiates_over_tls12() {
        let pki = test_pki();
        let mut so = server_options(&pki);
        so.npn_advertised = vec![b"http/1.1".to_vec(), b"spdy/3".to_vec()];
        let mut co = client_options(&pki);
        co.versions = vec![Version::Tls12];
        co.npn_preferred = Some(NpnPreference {
            precedence: NpnPrecedence::Client,
            protocols: vec![b"spdy/3".to_vec()],
            default: None,
        });
        let (mut client, mut server) = pair(co, so, "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        assert_eq!(
            client.negotiated_protocol().as_deref(),
            Some(&b"spdy/3"[..])
        );
        assert_eq!(server.npn_protocol().as_deref(), Some(&b"spdy/3"[..]));
    }
}
