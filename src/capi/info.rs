//! What a connection negotiated, and what this library supports: cipher
//! suites, versions, sessions, keying material, verification error names.

use super::conn::rssl_conn;
use super::error;
use super::result::rssl_result::{self, *};
use super::text;
use crate::engine::suite::{self, Suite};
use crate::engine::{verify, Version};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};

/// A cipher suite, described as OTP's `ssl` describes it. Every string is
/// static (never freed, never NULL).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rssl_suite {
    /// OpenSSL's name, e.g. "ECDHE-RSA-AES128-GCM-SHA256".
    pub name: *const c_char,
    /// The IANA name, e.g. "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".
    pub standard_name: *const c_char,
    /// OTP's key exchange: "ecdhe_rsa", "ecdhe_ecdsa", "rsa", "psk",
    /// "srp_anon", ... ("any" for TLS 1.3 suites).
    pub key_exchange: *const c_char,
    /// OTP's cipher: "aes_128_gcm", "chacha20_poly1305", ...
    pub cipher: *const c_char,
    /// OTP's MAC: "aead", "sha", "sha256", "sha384".
    pub mac: *const c_char,
    /// OTP's PRF: "sha256", "sha384" or "default_prf".
    pub prf: *const c_char,
    /// The oldest protocol version with the suite ("TLSv1.3", "TLSv1.2",
    /// "TLSv1.0", "SSLv3").
    pub min_version: *const c_char,
}

/// Static NUL-terminated copies of the (finitely many) names OpenSSL has.
fn interned(s: &str) -> *const c_char {
    static NAMES: Lazy<Mutex<HashMap<String, &'static CStr>>> =
        Lazy::new(|| Mutex::new(HashMap::new()));
    let mut names = NAMES.lock();
    if let Some(name) = names.get(s) {
        return name.as_ptr();
    }
    let owned = CString::new(s.replace('\0', "")).expect("NUL removed");
    let leaked: &'static CStr = Box::leak(owned.into_boxed_c_str());
    names.insert(s.to_string(), leaked);
    leaked.as_ptr()
}

impl rssl_suite {
    fn from(s: &Suite) -> rssl_suite {
        rssl_suite {
            name: interned(&s.openssl_name),
            standard_name: interned(&s.standard_name),
            key_exchange: interned(s.key_exchange),
            cipher: interned(s.cipher),
            mac: interned(s.mac),
            prf: interned(s.prf),
            min_version: interned(s.min_version),
        }
    }
}

/// OpenSSL's default TLS 1.3 suites.
const DEFAULT_TLS13: &str =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

/// Describes the cipher suites an OpenSSL cipher list (`ciphers`, for
/// TLS 1.2 and older; NULL: "DEFAULT") and TLS 1.3 suite list (`tls13`;
/// NULL: OpenSSL's default three) select, TLS 1.3 first, into `out` (room
/// for `len`). `*out_n` gets how many there are; `RSSL_BUFFER_TOO_SMALL`
/// when that is more than `len` (the first `len` are filled), so `out`
/// NULL with `len` 0 asks for the count. Every suite OpenSSL has:
/// `ciphers` "ALL:COMPLEMENTOFALL". A list OpenSSL rejects gives
/// `RSSL_INVALID_OPTION`.
#[no_mangle]
pub unsafe extern "C" fn rssl_cipher_suites(
    ciphers: *const c_char,
    tls13: *const c_char,
    out: *mut rssl_suite,
    len: usize,
    out_n: *mut usize,
) -> rssl_result {
    ffi_panic_boundary! {
        let ciphers = if ciphers.is_null() { "DEFAULT" } else { try_str!(ciphers) };
        let tls13 = if tls13.is_null() { DEFAULT_TLS13 } else { try_str!(tls13) };
        let out_n = try_mut!(out_n);
        if out.is_null() && len != 0 {
            return error::null_parameter("out");
        }
        let suites = match suite::select(ciphers, tls13) {
            Ok(suites) => suites,
            Err(e) => return error::engine(&e),
        };
        *out_n = suites.len();
        for (i, s) in suites.iter().take(len).enumerate() {
            // SAFETY: pointer rules: `out` has room for `len` > `i` suites.
            unsafe { *out.add(i) = rssl_suite::from(s) };
        }
        if suites.len() > len {
            return error::set(RSSL_BUFFER_TOO_SMALL, format!("{} cipher suites", suites.len()));
        }
        RSSL_OK
    }
}

/// The protocol versions this library can use (`RSSL_TLS1_*`), newest
/// first, into `out` (room for `len`); `*out_n` gets the count. TLS 1.2
/// and 1.3 are on by default; 1.0 and 1.1 only when a configuration asks.
#[no_mangle]
pub unsafe extern "C" fn rssl_supported_versions(
    out: *mut u16,
    len: usize,
    out_n: *mut usize,
) -> rssl_result {
    ffi_panic_boundary! {
        let out_n = try_mut!(out_n);
        if out.is_null() && len != 0 {
            return error::null_parameter("out");
        }
        let all = Version::AVAILABLE;
        *out_n = all.len();
        for (i, v) in all.iter().take(len).enumerate() {
            // SAFETY: pointer rules: `out` has room for `len` > `i` versions.
            unsafe { *out.add(i) = v.wire() };
        }
        if all.len() > len {
            return error::set(RSSL_BUFFER_TOO_SMALL, "4 versions");
        }
        RSSL_OK
    }
}

/// OTP's name for a certificate verification error (an `X509_V_ERR_*`
/// code as a verify callback gets it): "unknown_ca", "cert_expired",
/// "hostname_check_failed", "revoked", "selfsigned_peer", ...; "valid" for
/// 0 and "unknown" for codes OTP has no name for. Static: do not free.
#[no_mangle]
pub extern "C" fn rssl_verify_error_name(error: i32) -> *const c_char {
    ffi_panic_boundary! {
        interned(verify::reason_name(error))
    }
}

/// OpenSSL's description of a certificate verification error, e.g.
/// "certificate has expired". Static: do not free.
#[no_mangle]
pub extern "C" fn rssl_verify_error_string(error: i32) -> *const c_char {
    ffi_panic_boundary! {
        interned(verify::error_text(error))
    }
}

impl rssl_conn {
    /// The negotiated protocol version (`RSSL_TLS1_*`; `rssl_version_name`
    /// gives "tlsv1.3" and the like). `RSSL_NOT_AVAILABLE` before the
    /// handshake completed.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_version(
        conn: *const rssl_conn,
        version_out: *mut u16,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let version_out = try_mut!(version_out);
            match conn.tls.version().filter(|_| conn.tls.is_established()) {
                Some(version) => {
                    *version_out = version.wire();
                    RSSL_OK
                }
                None => error::set(RSSL_NOT_AVAILABLE, "no version negotiated yet"),
            }
        }
    }

    /// The negotiated cipher suite's OpenSSL name (e.g.
    /// "ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384"), copied as
    /// with `rssl_error_string`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_cipher(
        conn: *const rssl_conn,
        buf: *mut c_char,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.suite().filter(|_| conn.tls.is_established()) {
                Some(suite) => text::copied(text::copy_str(&suite.openssl_name, buf, len, out_n), "cipher"),
                None => error::set(RSSL_NOT_AVAILABLE, "no cipher negotiated yet"),
            }
        }
    }

    /// The negotiated cipher suite's standard (IANA) name, e.g.
    /// "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_cipher_standard_name(
        conn: *const rssl_conn,
        buf: *mut c_char,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.suite().filter(|_| conn.tls.is_established()) {
                Some(suite) => text::copied(text::copy_str(&suite.standard_name, buf, len, out_n), "cipher"),
                None => error::set(RSSL_NOT_AVAILABLE, "no cipher negotiated yet"),
            }
        }
    }

    /// Copies the peer's certificate (DER) into `buf` of `len` bytes.
    /// `*out_n` gets its size; when `len` is too small nothing is copied
    /// and `RSSL_BUFFER_TOO_SMALL` is returned, so `buf` NULL with `len` 0
    /// asks for the size. `RSSL_NOT_AVAILABLE` when the peer sent none.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_peer_cert(
        conn: *const rssl_conn,
        buf: *mut u8,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.peer_certificate() {
                Some(der) => text::copied(text::copy_bytes(&der, buf, len, out_n), "peer certificate"),
                None => error::set(RSSL_NOT_AVAILABLE, "the peer sent no certificate"),
            }
        }
    }

    /// The ALPN protocol both sides agreed on, copied as with
    /// `rssl_error_string`; `RSSL_NOT_AVAILABLE` when none was negotiated.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_alpn_protocol(
        conn: *const rssl_conn,
        buf: *mut c_char,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.alpn_protocol() {
                Some(protocol) => {
                    let protocol = String::from_utf8_lossy(&protocol);
                    text::copied(text::copy_str(&protocol, buf, len, out_n), "alpn protocol")
                }
                None => error::set(RSSL_NOT_AVAILABLE, "no ALPN protocol negotiated"),
            }
        }
    }

    /// The SNI host name: on a server, the one the client asked for; on a
    /// client, the one it sent. Copied as with `rssl_error_string`;
    /// `RSSL_NOT_AVAILABLE` when there is none.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_sni_hostname(
        conn: *const rssl_conn,
        buf: *mut c_char,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.sni_hostname() {
                Some(name) => text::copied(text::copy_str(&name, buf, len, out_n), "sni hostname"),
                None => error::set(RSSL_NOT_AVAILABLE, "no SNI host name"),
            }
        }
    }

    /// The negotiated cipher suite, described in `*suite_out`.
    /// `RSSL_NOT_AVAILABLE` before the handshake completed.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_cipher_suite(
        conn: *const rssl_conn,
        suite_out: *mut rssl_suite,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let suite_out = try_mut!(suite_out);
            match conn.tls.suite().filter(|_| conn.tls.is_established()) {
                Some(s) => {
                    *suite_out = rssl_suite::from(&s);
                    RSSL_OK
                }
                None => error::set(RSSL_NOT_AVAILABLE, "no cipher negotiated yet"),
            }
        }
    }

    /// The application protocol agreed with ALPN, or else NPN (OTP's
    /// `negotiated_protocol`), copied as with `rssl_error_string`;
    /// `RSSL_NOT_AVAILABLE` when there is none.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_negotiated_protocol(
        conn: *const rssl_conn,
        buf: *mut c_char,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.negotiated_protocol() {
                Some(p) => text::copied(
                    text::copy_str(&String::from_utf8_lossy(&p), buf, len, out_n),
                    "negotiated protocol",
                ),
                None => error::set(RSSL_NOT_AVAILABLE, "no protocol negotiated"),
            }
        }
    }

    /// Whether the handshake resumed an earlier session.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_session_reused(
        conn: *const rssl_conn,
        reused_out: *mut bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let reused_out = try_mut!(reused_out);
            *reused_out = conn.tls.is_established() && conn.tls.session_reused();
            RSSL_OK
        }
    }

    /// Copies the connection's session (client), to resume it later with
    /// `rssl_connect_session` or `rssl_conn_set_session`, into `buf` as
    /// with `rssl_conn_peer_cert`. `RSSL_NOT_AVAILABLE` while there is no
    /// resumable session: with TLS 1.3 the server's ticket comes after the
    /// handshake, so receive something first (and the server must send
    /// tickets, see `rssl_config_builder_set_session_tickets`). The data
    /// holds the session's secret: keep it as safe as a private key.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_session(
        conn: *const rssl_conn,
        buf: *mut u8,
        len: usize,
        out_n: *mut usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            match conn.tls.session().filter(|_| conn.tls.is_established()) {
                Some(der) => text::copied(text::copy_bytes(&der, buf, len, out_n), "session"),
                None => error::set(RSSL_NOT_AVAILABLE, "no resumable session"),
            }
        }
    }

    /// Offers a saved session (from `rssl_conn_session`) on a client
    /// connection before its handshake (`rssl_conn_from_fd` or
    /// `rssl_conn_new`). The server decides; `rssl_conn_session_reused`
    /// tells. `RSSL_INVALID_ARGUMENT` for data that is not a session.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_set_session(
        conn: *mut rssl_conn,
        data: *const u8,
        len: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_mut!(conn);
            let data = try_slice!(data, len);
            if conn.tls.role() != crate::engine::Role::Client {
                return error::set(RSSL_INVALID_STATE, "only a client offers a session");
            }
            if conn.tls.is_established() {
                return error::set(RSSL_INVALID_STATE, "session set after the handshake");
            }
            match conn.tls.set_session(data) {
                Ok(()) => RSSL_OK,
                Err(e) => error::set(RSSL_INVALID_ARGUMENT, e.to_string()),
            }
        }
    }

    /// Keying material exported as RFC 5705 says (OTP's `prf/5` with the
    /// master secret and the two randoms as seed): `out_len` bytes into
    /// `out`, for `label` and, unless `context` is NULL, `context` of
    /// `context_len` bytes (an empty context differs from none).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_conn_export_keying_material(
        conn: *const rssl_conn,
        label: *const c_char,
        context: *const u8,
        context_len: usize,
        out: *mut u8,
        out_len: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let conn = try_ref!(conn);
            let label = try_str!(label);
            let context = if context.is_null() {
                if context_len != 0 {
                    return error::null_parameter("context");
                }
                None
            } else {
                // SAFETY: pointer rules: non-NULL, `context_len` bytes.
                Some(unsafe { std::slice::from_raw_parts(context, context_len) })
            };
            if out.is_null() && out_len != 0 {
                return error::null_parameter("out");
            }
            if !conn.tls.is_established() {
                return error::set(RSSL_INVALID_STATE, "keying material before the handshake completed");
            }
            match conn.tls.export_keying_material(label, context, out_len) {
                // An empty export leaves `out` alone: it may be NULL then.
                Ok(bytes) if bytes.is_empty() => RSSL_OK,
                Ok(bytes) => {
                    // SAFETY: pointer rules: `out` holds `out_len` bytes, exactly
                    // what the engine exported.
                    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
                    RSSL_OK
                }
                Err(e) => error::engine(&e),
            }
        }
    }
}
