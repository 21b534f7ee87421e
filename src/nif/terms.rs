//! Engine and driver values as the terms OTP's `ssl` uses.

use super::atoms;
use crate::driver::{Failure, SocketOptions};
use crate::engine::Error;
use rustler::{Atom, Encoder, Env, NewBinary, Term};
use std::net::{IpAddr, SocketAddr};

/// An Erlang string (a list of code points).
pub fn charlist<'a>(env: Env<'a>, text: &str) -> Term<'a> {
    text.chars()
        .map(|c| c as u32)
        .collect::<Vec<u32>>()
        .encode(env)
}

pub fn atom<'a>(env: Env<'a>, name: &str) -> Term<'a> {
    Atom::from_str(env, name)
        .map(|a| a.encode(env))
        .unwrap_or_else(|_| atoms::undefined().encode(env))
}

/// The `Reason` of `{error, Reason}` for an engine error.
pub fn error_term<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    match e {
        Error::Closed => atoms::closed().encode(env),
        Error::Alert { alert, .. } => {
            let text = e.alert_text().unwrap_or_default();
            (
                atoms::tls_alert(),
                (atom(env, alert.name()), charlist(env, &text)),
            )
                .encode(env)
        }
        Error::Option(name, why) => {
            (atoms::options(), (atom(env, name), charlist(env, why))).encode(env)
        }
        Error::File {
            option,
            path,
            reason,
        } => (
            atoms::options(),
            (
                atom(env, option),
                charlist(env, path),
                (atoms::error(), atom(env, reason)),
            ),
        )
            .encode(env),
        Error::Internal(why) => (
            atoms::tls_alert(),
            (atom(env, "internal_error"), charlist(env, why)),
        )
            .encode(env),
    }
}

pub fn failure_term<'a>(env: Env<'a>, f: &Failure) -> Term<'a> {
    match f {
        Failure::Closed => atoms::closed().encode(env),
        Failure::Tls(e) => error_term(env, e),
        Failure::Posix(name) => atom(env, name),
        Failure::InvalidPacket(bytes) => {
            (atom(env, "invalid_packet"), binary(env, bytes)).encode(env)
        }
        Failure::PacketTooLarge(size, max) => (
            atom(env, "badarg"),
            (atom(env, "packet_to_large"), *size, *max),
        )
            .encode(env),
    }
}

pub fn error_tuple<'a>(env: Env<'a>, f: &Failure) -> Term<'a> {
    (atoms::error(), failure_term(env, f)).encode(env)
}

/// A binary term holding a copy of `data`.
pub fn binary<'a>(env: Env<'a>, data: &[u8]) -> Term<'a> {
    let mut bin = NewBinary::new(env, data.len());
    bin.as_mut_slice().copy_from_slice(data);
    let bin: rustler::Binary = bin.into();
    bin.encode(env)
}

/// Text in an HTTP packet: a binary for `http_bin`, else a string.
fn http_text<'a>(env: Env<'a>, bin: bool, text: &[u8]) -> Term<'a> {
    if bin {
        binary(env, text)
    } else {
        text.iter()
            .map(|b| *b as u32)
            .collect::<Vec<u32>>()
            .encode(env)
    }
}

/// An HTTP packet as `erlang:decode_packet/3` returns it.
fn http_term<'a>(env: Env<'a>, bin: bool, headers: bool, data: &[u8]) -> Term<'a> {
    use crate::driver::http::{parse, HttpPacket, Method, Uri, KNOWN_HEADERS};
    let text = |t: &[u8]| http_text(env, bin, t);
    match parse(data, headers) {
        HttpPacket::Request {
            method,
            uri,
            version,
        } => {
            let method = match method {
                Method::Known(name) => atom(env, name),
                Method::Other(m) => text(m),
            };
            let uri = match uri {
                Uri::Star => atom(env, "*"),
                Uri::AbsPath(p) => (atom(env, "abs_path"), text(p)).encode(env),
                Uri::Absolute {
                    https,
                    host,
                    port,
                    path,
                } => {
                    let scheme = atom(env, if https { "https" } else { "http" });
                    let port = port.map_or(atoms::undefined().encode(env), |p| p.encode(env));
                    (
                        atom(env, "absoluteURI"),
                        scheme,
                        text(host),
                        port,
                        text(path),
                    )
                        .encode(env)
                }
                Uri::Scheme(scheme, rest) => {
                    (atom(env, "scheme"), text(scheme), text(rest)).encode(env)
                }
                Uri::Other(u) => text(u),
            };
            (atom(env, "http_request"), method, uri, version).encode(env)
        }
        HttpPacket::Response {
            version,
            status,
            reason,
        } => (atom(env, "http_response"), version, status, text(reason)).encode(env),
        HttpPacket::Header {
            index,
            name,
            original,
            value,
        } => {
            let field = if index > 0 {
                atom(env, KNOWN_HEADERS[index - 1])
            } else {
                text(&name)
            };
            (
                atom(env, "http_header"),
                index,
                field,
                text(original),
                text(value),
            )
                .encode(env)
        }
        HttpPacket::EndOfHeaders => atom(env, "http_eoh"),
        HttpPacket::Error(line) => (atom(env, "http_error"), text(line)).encode(env),
    }
}

/// Received data in the socket's mode: a binary, a list, or with
/// `{header, N}` in list mode, N bytes as integers followed by a binary.
pub fn data_term<'a>(env: Env<'a>, options: &SocketOptions, data: &[u8]) -> Term<'a> {
    if let crate::driver::Packet::Http { bin, .. } = options.packet {
        return http_term(env, bin, options.packet.in_headers(), data);
    }
    if options.binary && options.header == 0 {
        return binary(env, data);
    }
    // With {header, N}, N bytes as a list; as OTP's ssl, the binary tail is
    // there only when the data is at least N bytes long.
    let with_tail = options.binary && data.len() >= options.header;
    let (head, tail) = if with_tail {
        data.split_at(options.header)
    } else {
        (data, &data[data.len()..])
    };
    let mut list = if with_tail {
        binary(env, tail)
    } else {
        Term::list_new_empty(env)
    };
    for byte in head.iter().rev() {
        list = list.list_prepend(byte.encode(env));
    }
    list
}

pub fn ip_term<'a>(env: Env<'a>, ip: IpAddr) -> Term<'a> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            (a, b, c, d).encode(env)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            rustler::types::tuple::make_tuple(
                env,
                &s.iter().map(|x| x.encode(env)).collect::<Vec<_>>(),
            )
        }
    }
}

pub fn addr_term<'a>(env: Env<'a>, addr: SocketAddr) -> Term<'a> {
    (ip_term(env, addr.ip()), addr.port()).encode(env)
}
