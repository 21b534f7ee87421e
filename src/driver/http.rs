//! `{packet, http | http_bin | httph | httph_bin}`: HTTP/1 request and
//! status lines and headers, decoded as `erlang:decode_packet/3` does.

/// The headers inet knows, in its order: a known header's index is its
/// position here plus one.
pub const KNOWN_HEADERS: [&str; 52] = [
    "Cache-Control",
    "Connection",
    "Date",
    "Pragma",
    "Transfer-Encoding",
    "Upgrade",
    "Via",
    "Accept",
    "Accept-Charset",
    "Accept-Encoding",
    "Accept-Language",
    "Authorization",
    "From",
    "Host",
    "If-Modified-Since",
    "If-Match",
    "If-None-Match",
    "If-Range",
    "If-Unmodified-Since",
    "Max-Forwards",
    "Proxy-Authorization",
    "Range",
    "Referer",
    "User-Agent",
    "Age",
    "Location",
    "Proxy-Authenticate",
    "Public",
    "Retry-After",
    "Server",
    "Vary",
    "Warning",
    "Www-Authenticate",
    "Allow",
    "Content-Base",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Location",
    "Content-Md5",
    "Content-Range",
    "Content-Type",
    "Etag",
    "Expires",
    "Last-Modified",
    "Accept-Ranges",
    "Set-Cookie",
    "Set-Cookie2",
    "X-Forwarded-For",
    "Cookie",
    "Keep-Alive",
    "Proxy-Connection",
];

/// Methods inet returns as atoms (others stay strings).
const KNOWN_METHODS: [&str; 7] = ["OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method<'a> {
    Known(&'static str),
    Other(&'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `*`
    Star,
    AbsPath(&'a [u8]),
    /// `http://host[:port]/path` (`https` too).
    Absolute {
        https: bool,
        host: &'a [u8],
        port: Option<u64>,
        path: &'a [u8],
    },
    /// Any other `scheme:rest`.
    Scheme(&'a [u8], &'a [u8]),
    Other(&'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpPacket<'a> {
    Request {
        method: Method<'a>,
        uri: Uri<'a>,
        version: (u64, u64),
    },
    Response {
        version: (u64, u64),
        status: u64,
        reason: &'a [u8],
    },
    Header {
        /// 1-based index into [`KNOWN_HEADERS`], 0 for others.
        index: usize,
        /// For unknown headers: the name with each word capitalized.
        name: Vec<u8>,
        /// The name as sent.
        original: &'a [u8],
        /// The value, leading blanks removed, continuation lines kept.
        value: &'a [u8],
    },
    EndOfHeaders,
    Error(&'a [u8]),
}

/// Length of the first complete packet in `buf`: a line, and in header
/// mode the continuation lines that follow it. A header line is complete
/// only once the next byte shows it is not continued.
pub fn frame(buf: &[u8], headers: bool) -> Option<usize> {
    let mut end = line_end(buf, 0)?;
    if !headers || is_blank_line(&buf[..end]) {
        return Some(end);
    }
    loop {
        match buf.get(end) {
            None => return None,
            Some(b' ') | Some(b'\t') => end = line_end(buf, end)?,
            Some(_) => return Some(end),
        }
    }
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| from + i + 1)
}

fn is_blank_line(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Decodes one packet found by [`frame`].
pub fn parse(packet: &[u8], headers: bool) -> HttpPacket<'_> {
    if headers {
        if is_blank_line(packet) {
            return HttpPacket::EndOfHeaders;
        }
        return parse_header(packet).unwrap_or(HttpPacket::Error(packet));
    }
    parse_start_line(packet).unwrap_or(HttpPacket::Error(packet))
}

/// True if `packet` switches an `http` socket to headers (a start line).
pub fn starts_headers(packet: &HttpPacket) -> bool {
    matches!(
        packet,
        HttpPacket::Request { .. } | HttpPacket::Response { .. }
    )
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_header(packet: &[u8]) -> Option<HttpPacket<'_>> {
    let text = strip_eol(packet);
    let colon = text.iter().position(|b| *b == b':')?;
    let original = &text[..colon];
    if !original.iter().all(|b| is_token(*b)) {
        return None;
    }
    let mut value = &text[colon + 1..];
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    let index = KNOWN_HEADERS
        .iter()
        .position(|h| h.as_bytes().eq_ignore_ascii_case(original))
        .map_or(0, |i| i + 1);
    let name = if index == 0 {
        capitalize(original)
    } else {
        Vec::new()
    };
    Some(HttpPacket::Header {
        index,
        name,
        original,
        value,
    })
}

/// `x-custom-HEADER` as `X-Custom-Header`.
fn capitalize(name: &[u8]) -> Vec<u8> {
    let mut upper = true;
    name.iter()
        .map(|b| {
            let c = if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
            upper = *b == b'-';
            c
        })
        .collect()
}

/// Words separated by runs of spaces.
fn words(text: &[u8]) -> Vec<&[u8]> {
    text.split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .collect()
}

fn parse_start_line(packet: &[u8]) -> Option<HttpPacket<'_>> {
    let text = strip_eol(packet);
    if text.first() == Some(&b' ') {
        return None;
    }
    if let Some(rest) = text.strip_prefix(b"HTTP/") {
        // Status line: HTTP/x.y code [reason]
        let space = rest.iter().position(|b| *b == b' ')?;
        let version = parse_version(&rest[..space])?;
        let after = &rest[space + 1..];
        let (code, reason) = match after.iter().position(|b| *b == b' ') {
            Some(i) => (&after[..i], &after[i + 1..]),
            None => (after, &after[after.len()..]),
        };
        let status = parse_number(code)?;
        return Some(HttpPacket::Response {
            version,
            status,
            reason,
        });
    }
    let parts = words(text);
    let (method, target, version) = match parts.as_slice() {
        [m, t] => (*m, *t, (0, 9)),
        [m, t, v, ..] => (*m, *t, parse_version(v.strip_prefix(b"HTTP/")?)?),
        _ => return None,
    };
    let method = KNOWN_METHODS
        .iter()
        .find(|k| k.as_bytes() == method)
        .map_or(Method::Other(method), |k| Method::Known(k));
    Some(HttpPacket::Request {
        method,
        uri: parse_uri(target),
        version,
    })
}

fn parse_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_version(v: &[u8]) -> Option<(u64, u64)> {
    let dot = v.iter().position(|b| *b == b'.')?;
    Some((parse_number(&v[..dot])?, parse_number(&v[dot + 1..])?))
}

fn parse_uri(target: &[u8]) -> Uri<'_> {
    if target == b"*" {
        return Uri::Star;
    }
    if target.first() == Some(&b'/') {
        return Uri::AbsPath(target);
    }
    for (prefix, https) in [(&b"http://"[..], false), (&b"https://"[..], true)] {
        if target.len() >= prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix) {
            let rest = &target[prefix.len()..];
            let slash = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(slash);
            let path: &[u8] = if path.is_empty() { b"/" } else { path };
            let (host, port) = match authority.iter().rposition(|b| *b == b':') {
                Some(i) => match parse_number(&authority[i + 1..]) {
                    Some(port) => (&authority[..i], Some(port)),
                    None => (authority, None),
                },
                None => (authority, None),
            };
            return Uri::Absolute {
                https,
                host,
                port,
                path,
            };
        }
    }
    match target.iter().position(|b| *b == b':') {
        Some(i) if i > 0 && target[..i].iter().all(|b| b.is_ascii_alphanumeric()) => {
            Uri::Scheme(&target[..i], &target[i + 1..])
        }
        _ => Uri::Other(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from erlang:decode_packet/3 on OTP 25.

    #[test]
    fn request_lines() {
        let p = parse(b"GET /a?b=1 HTTP/1.1\r\n", false);
        assert_eq!(
            p,
            HttpPacket::Request {
                method: Method::Known("GET"),
                uri: Uri::AbsPath(b"/a?b=1"),
                version: (1, 1)
            }
        );
        assert_eq!(
            parse(b"GET http://h:8/p HTTP/1.0\r\n", false),
            HttpPacket::Request {
                method: Method::Known("GET"),
                uri: Uri::Absolute {
                    https: false,
                    host: b"h",
                    port: Some(8),
                    path: b"/p"
                },
                version: (1, 0)
            }
        );
        assert!(matches!(
            parse(b"CONNECT h:443 HTTP/1.1\r\n", false),
            HttpPacket::Request {
                method: Method::Other(b"CONNECT"),
                uri: Uri::Scheme(b"h", b"443"),
                ..
            }
        ));
        assert!(matches!(
            parse(b"GET /\r\n", false),
            HttpPacket::Request {
                version: (0, 9),
                ..
            }
        ));
        assert_eq!(parse(b"GET\r\n", false), HttpPacket::Error(b"GET\r\n"));
        assert_eq!(
            parse(b"  GET / HTTP/1.1\r\n", false),
            HttpPacket::Error(b"  GET / HTTP/1.1\r\n")
        );
        assert_eq!(
            parse(b"GET /x HTTP/2\r\n", false),
            HttpPacket::Error(b"GET /x HTTP/2\r\n")
        );
        assert_eq!(
            parse(b"HTTP/1.0 200 Very OK\r\n", false),
            HttpPacket::Response {
                version: (1, 0),
                status: 200,
                reason: b"Very OK"
            }
        );
        assert_eq!(
            parse(b"HTTP/1.1 404\r\n", false),
            HttpPacket::Response {
                version: (1, 1),
                status: 404,
                reason: b""
            }
        );
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse(b"accept-CHARSET:v\r\n", true),
            HttpPacket::Header {
                index: 9,
                name: vec![],
                original: b"accept-CHARSET",
                value: b"v"
            }
        );
        assert_eq!(
            parse(b"x-custom-HEADER: v\r\n", true),
            HttpPacket::Header {
                index: 0,
                name: b"X-Custom-Header".to_vec(),
                original: b"x-custom-HEADER",
                value: b"v"
            }
        );
        assert_eq!(
            parse(b"host : v\r\n", true),
            HttpPacket::Error(b"host : v\r\n")
        );
        assert_eq!(parse(b"\r\n", true), HttpPacket::EndOfHeaders);
        assert!(matches!(
            parse(b"X:  spaced  \r\n", true),
            HttpPacket::Header {
                value: b"spaced  ",
                ..
            }
        ));
    }

    #[test]
    fn framing_waits_for_continuations() {
        assert_eq!(frame(b"GET / HTTP/1.1\r\nHost", false), Some(16));
        assert_eq!(frame(b"Host: x\r\n", true), None);
        assert_eq!(frame(b"Host: x\r\nA", true), Some(9));
        assert_eq!(frame(b"X: y\r\n  cont\r\nZ", true), Some(14));
        assert_eq!(frame(b"\r\nrest", true), Some(2));
        assert_eq!(KNOWN_HEADERS[37], "Content-Length");
        assert_eq!(KNOWN_HEADERS[51], "Proxy-Connection");
    }
}
