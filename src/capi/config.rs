//! TLS configurations: a mutable builder, then an immutable, shareable
//! `rssl_config`.
//!
//! ```c
//! rssl_config_builder *b = NULL;
//! const rssl_config *config = NULL;
//! rssl_config_builder_new(RSSL_ROLE_CLIENT, &b);
//! rssl_config_builder_set_verify(b, RSSL_VERIFY_PEER);
//! rssl_config_builder_set_cacertfile(b, "ca.pem");
//! rssl_result r = rssl_config_builder_build(b, &config);
//! rssl_config_builder_free(b);
//! ... rssl_connect(config, ...) ...
//! rssl_config_free(config);
//! ```

use super::error;
use super::result::rssl_result::{self, *};
use crate::engine::crl::{CrlCheck, CrlSource};
use crate::engine::npn::{NpnPrecedence, NpnPreference};
use crate::engine::{
    self, pem, CaSource, CertSource, Identity, KeySource, Options, Role, Verify, Version,
};
use std::ffi::c_char;

mod constants;
pub use constants::*;

/// The name OTP uses for a protocol version ("tlsv1.2", "tlsv1.3", ...),
/// or NULL for a value that is not a supported version. Static: do not free.
#[no_mangle]
pub extern "C" fn rssl_version_name(version: u16) -> *const c_char {
    ffi_panic_boundary! {
        match Version::from_wire(version) {
            Some(Version::Tls10) => c"tlsv1".as_ptr(),
            Some(Version::Tls11) => c"tlsv1.1".as_ptr(),
            Some(Version::Tls12) => c"tlsv1.2".as_ptr(),
            Some(Version::Tls13) => c"tlsv1.3".as_ptr(),
            Some(Version::Dtls10) => c"dtlsv1".as_ptr(),
            Some(Version::Dtls12) => c"dtlsv1.2".as_ptr(),
            None => std::ptr::null(),
        }
    }
}

/// Collects options for a configuration. Used by one thread at a time;
/// it can build any number of configurations and must be freed with
/// `rssl_config_builder_free`.
pub struct rssl_config_builder {
    pub(super) options: Options,
    /// The C callbacks behind `options.user_lookup` (see callbacks.rs).
    pub(super) psk: Option<super::callbacks::PskHook>,
    pub(super) srp: Option<super::callbacks::SrpHook>,
    /// The verify and SNI callbacks set are the asynchronous kind.
    pub(super) async_verify: bool,
    pub(super) async_sni: bool,
    /// `RSSL_PROTOCOL_DTLS` was chosen: DTLS versions only (dtls.rs).
    pub(super) dtls: bool,
}

/// A built configuration: immutable, and safe to use from many threads at
/// once. Connections keep what they need, so it may be freed while
/// connections made with it are still open. Its files were read when it was
/// built; build a new one to pick up changed files.
pub struct rssl_config {
    pub(crate) config: engine::Config,
}

impl rssl_config_builder {
    /// Creates a builder with OTP's defaults for `role` (one of
    /// `RSSL_ROLE_*`): TLS 1.2 and 1.3, no peer verification, depth 10.
    /// On success `*builder_out` owns a new builder.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_new(
        role: u32,
        builder_out: *mut *mut rssl_config_builder,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder_out = try_mut!(builder_out);
            let role = match role {
                r if r == rssl_role::RSSL_ROLE_CLIENT as u32 => Role::Client,
                r if r == rssl_role::RSSL_ROLE_SERVER as u32 => Role::Server,
                other => return error::invalid_argument(format!("unknown role {other}")),
            };
            let builder = rssl_config_builder {
                options: Options::new(role),
                psk: None,
                srp: None,
                async_verify: false,
                async_sni: false,
                dtls: false,
            };
            *builder_out = Box::into_raw(Box::new(builder));
            RSSL_OK
        }
    }

    /// Frees a builder; NULL is ignored. Configurations it built stay valid.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_free(builder: *mut rssl_config_builder) {
        ffi_panic_boundary! {
            if !builder.is_null() {
                // SAFETY: pointer rules: a live builder from rssl_config_builder_new's Box.
                drop(unsafe { Box::from_raw(builder) });
            }
        }
    }

    /// Our certificate from a PEM file: the first certificate is ours, the
    /// rest its chain. The key defaults to the same file. The file is read
    /// when the configuration is built.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_certfile(
        builder: *mut rssl_config_builder,
        path: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let path = try_str!(path);
            builder.options.cert = Some(CertSource::File(path.into()));
            RSSL_OK
        }
    }

    /// Our private key from a PEM file (encrypted keys need
    /// `rssl_config_builder_set_password`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_keyfile(
        builder: *mut rssl_config_builder,
        path: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let path = try_str!(path);
            builder.options.key = Some(KeySource::File(path.into()));
            RSSL_OK
        }
    }

    /// The password of an encrypted PEM private key.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_password(
        builder: *mut rssl_config_builder,
        password: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let password = try_str!(password);
            builder.options.password = Some(password.into());
            RSSL_OK
        }
    }

    /// Trusted CA certificates from a PEM file, for verifying the peer.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_cacertfile(
        builder: *mut rssl_config_builder,
        path: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let path = try_str!(path);
            builder.options.cacerts = Some(CaSource::File(path.into()));
            RSSL_OK
        }
    }

    /// Our certificate (then its chain) from memory, PEM or DER
    /// (`RSSL_FORMAT_*`). The data is copied. Returns
    /// `RSSL_BAD_CERTIFICATE` when it holds no certificate.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_cert(
        builder: *mut rssl_config_builder,
        data: *const u8,
        len: usize,
        format: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let data = try_slice!(data, len);
            let source = match cert_source(data, format) {
                Ok(source) => source,
                Err(result) => return result,
            };
            builder.options.cert = Some(source);
            RSSL_OK
        }
    }

    /// Our private key from memory: PEM (possibly encrypted, see
    /// `rssl_config_builder_set_password`) or unencrypted DER (PKCS#8, RSA
    /// or EC). The data is copied.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_key(
        builder: *mut rssl_config_builder,
        data: *const u8,
        len: usize,
        format: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let data = try_slice!(data, len);
            let source = match key_source(data, format) {
                Ok(source) => source,
                Err(result) => return result,
            };
            builder.options.key = Some(source);
            RSSL_OK
        }
    }

    /// Adds an identity from PEM files: a certificate (then its chain) and
    /// its private key (`keyfile` NULL: the key is in `certfile`;
    /// `password` NULL: not encrypted). With several identities (RSA and
    /// ECDSA, say) the peer's signature algorithms pick the one sent, in
    /// both roles (OTP's `certs_keys`). Once an identity is added, the
    /// single certificate and key (`set_certfile`, `set_cert`, ...) are not
    /// used. OpenSSL keeps one identity per key type: the first added of
    /// each type is used. Files are read when the configuration is built.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_add_identity_files(
        builder: *mut rssl_config_builder,
        certfile: *const c_char,
        keyfile: *const c_char,
        password: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let certfile = try_str!(certfile);
            let key = if keyfile.is_null() {
                None
            } else {
                Some(KeySource::File(try_str!(keyfile).into()))
            };
            let password = if password.is_null() {
                None
            } else {
                Some(try_str!(password).to_string())
            };
            add_identity(builder, CertSource::File(certfile.into()), key, password);
            RSSL_OK
        }
    }

    /// Adds an identity from memory: the certificate (then its chain) as
    /// in `rssl_config_builder_set_cert`, the key as in
    /// `rssl_config_builder_set_key` (`key` NULL with `key_len` 0: the key
    /// is in the PEM certificate data), `password` NULL when the key is not
    /// encrypted. See `rssl_config_builder_add_identity_files`. The data is
    /// copied.
    #[no_mangle]
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn rssl_config_builder_add_identity(
        builder: *mut rssl_config_builder,
        cert: *const u8,
        cert_len: usize,
        cert_format: u32,
        key: *const u8,
        key_len: usize,
        key_format: u32,
        password: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let cert = try_slice!(cert, cert_len);
            let key = try_slice!(key, key_len);
            let cert = match cert_source(cert, cert_format) {
                Ok(source) => source,
                Err(result) => return result,
            };
            let key = if key.is_empty() {
                None
            } else {
                match key_source(key, key_format) {
                    Ok(source) => Some(source),
                    Err(result) => return result,
                }
            };
            let password = if password.is_null() {
                None
            } else {
                Some(try_str!(password).to_string())
            };
            add_identity(builder, cert, key, password);
            RSSL_OK
        }
    }

    /// Trusted CA certificates from memory, PEM or DER. The data is copied.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_cacerts(
        builder: *mut rssl_config_builder,
        data: *const u8,
        len: usize,
        format: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let data = try_slice!(data, len);
            let certs = match parse_format(format) {
                Ok(rssl_format::RSSL_FORMAT_PEM) => pem_certificates(data, "cacerts"),
                Ok(rssl_format::RSSL_FORMAT_DER) => der_certificates(data, "cacerts"),
                Err(result) => return result,
            };
            match certs {
                Ok(certs) => builder.options.cacerts = Some(CaSource::Der(certs)),
                Err(result) => return result,
            }
            RSSL_OK
        }
    }

    /// `RSSL_VERIFY_NONE` (the default) or `RSSL_VERIFY_PEER`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_verify(
        builder: *mut rssl_config_builder,
        verify: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.verify = match verify {
                v if v == rssl_verify::RSSL_VERIFY_NONE as u32 => Verify::None,
                v if v == rssl_verify::RSSL_VERIFY_PEER as u32 => Verify::Peer,
                other => return error::invalid_argument(format!("unknown verify mode {other}")),
            };
            RSSL_OK
        }
    }

    /// The most intermediate certificates a peer chain may have (default 10).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_depth(
        builder: *mut rssl_config_builder,
        depth: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.depth = depth;
            RSSL_OK
        }
    }

    /// Server with `RSSL_VERIFY_PEER`: fail the handshake when the client
    /// sends no certificate (default false).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_fail_if_no_peer_cert(
        builder: *mut rssl_config_builder,
        fail: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.fail_if_no_peer_cert = fail;
            RSSL_OK
        }
    }

    /// Enables every version from `min` to `max` (`RSSL_TLS1_*` values, or
    /// `RSSL_DTLS1_*` ones for a DTLS configuration: see
    /// `rssl_config_builder_set_protocol`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_version_range(
        builder: *mut rssl_config_builder,
        min: u16,
        max: u16,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let range = (Version::from_wire(min), Version::from_wire(max));
            let (Some(lo), Some(hi)) = range else {
                return error::invalid_argument(format!("unknown version in {min:#06x}..{max:#06x}"));
            };
            try_result!(builder.protocol_versions(&[lo, hi]));
            if lo > hi {
                return error::invalid_argument("minimum version above maximum");
            }
            builder.options.versions = Version::AVAILABLE
                .into_iter()
                .chain(Version::AVAILABLE_DTLS)
                .filter(|v| *v >= lo && *v <= hi)
                .collect();
            RSSL_OK
        }
    }

    /// Enables exactly the `count` versions in `versions` (`RSSL_TLS1_*`,
    /// or `RSSL_DTLS1_*` for a DTLS configuration).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_versions(
        builder: *mut rssl_config_builder,
        versions: *const u16,
        count: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let versions = try_slice!(versions, count);
            if versions.is_empty() {
                return error::invalid_argument("versions: empty list");
            }
            let mut list = Vec::new();
            for value in versions {
                match Version::from_wire(*value) {
                    Some(v) if !list.contains(&v) => list.push(v),
                    Some(_) => {}
                    None => return error::invalid_argument(format!("unknown version {value:#06x}")),
                }
            }
            try_result!(builder.protocol_versions(&list));
            builder.options.versions = list;
            RSSL_OK
        }
    }

    /// OpenSSL cipher list for TLS 1.2 and older, e.g.
    /// "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256". Checked
    /// when the configuration is built (`RSSL_INVALID_OPTION`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_ciphers(
        builder: *mut rssl_config_builder,
        list: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let list = try_str!(list);
            builder.options.cipher_list = Some(list.into());
            RSSL_OK
        }
    }

    /// OpenSSL TLS 1.3 suite list, e.g. "TLS_AES_256_GCM_SHA384". Checked
    /// when the configuration is built (`RSSL_INVALID_OPTION`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_ciphersuites(
        builder: *mut rssl_config_builder,
        list: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let list = try_str!(list);
            try_result!(builder.tls_only("rssl_config_builder_set_ciphersuites"));
            builder.options.ciphersuites = Some(list.into());
            RSSL_OK
        }
    }

    /// ALPN protocols, `count` NUL-terminated strings of 1 to 255 bytes: a
    /// client offers them in this order, a server picks the first of its
    /// list that the client offered. `count` 0 turns ALPN off.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_alpn(
        builder: *mut rssl_config_builder,
        protocols: *const *const c_char,
        count: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let protocols = try_slice!(protocols, count);
            match protocol_list(protocols) {
                Ok(list) => builder.options.alpn = list,
                Err(result) => return result,
            }
            RSSL_OK
        }
    }

    /// Server: pick the cipher suite by the server's order rather than the
    /// client's (default false).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_honor_cipher_order(
        builder: *mut rssl_config_builder,
        honor: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.honor_cipher_order = honor;
            RSSL_OK
        }
    }

    /// Key exchange groups, OpenSSL names in preference order, e.g.
    /// "X25519:P-256" (OTP's `supported_groups`). Checked when built.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_groups(
        builder: *mut rssl_config_builder,
        list: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let list = try_str!(list);
            builder.options.groups = Some(list.into());
            RSSL_OK
        }
    }

    /// Signature algorithms offered and accepted, OpenSSL's list syntax,
    /// e.g. "ECDSA+SHA256:rsa_pss_rsae_sha256:ed25519" (OTP's
    /// `signature_algs`). Checked when built.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_sigalgs(
        builder: *mut rssl_config_builder,
        list: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let list = try_str!(list);
            builder.options.sigalgs = Some(list.into());
            RSSL_OK
        }
    }

    /// Server: Diffie-Hellman parameters for DHE suites, PEM or DER in
    /// memory (copied; checked when built). Without them OpenSSL picks
    /// parameters matching the certificate.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_dh(
        builder: *mut rssl_config_builder,
        data: *const u8,
        len: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let data = try_slice!(data, len);
            builder.options.dh = Some(data.to_vec());
            RSSL_OK
        }
    }

    /// Server: Diffie-Hellman parameters from a PEM file, read when built.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_dhfile(
        builder: *mut rssl_config_builder,
        path: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let path = try_str!(path);
            builder.options.dhfile = Some(path.into());
            RSSL_OK
        }
    }

    /// Server: keep sessions for resumption (default true); false turns
    /// the session cache and tickets off.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_reuse_sessions(
        builder: *mut rssl_config_builder,
        reuse: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.reuse_sessions = reuse;
            RSSL_OK
        }
    }

    /// Server: TLS 1.3 session tickets sent after each handshake (default
    /// 0, as OTP's `session_tickets` disabled: no TLS 1.3 resumption).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_session_tickets(
        builder: *mut rssl_config_builder,
        count: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            try_result!(builder.tls_only("rssl_config_builder_set_session_tickets"));
            builder.options.session_tickets = count;
            RSSL_OK
        }
    }

    /// Refuse peers without secure renegotiation (RFC 5746; default true).
    /// False also allows legacy renegotiation.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_secure_renegotiate(
        builder: *mut rssl_config_builder,
        secure: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.secure_renegotiate = secure;
            RSSL_OK
        }
    }

    /// Server: let TLS 1.2 clients renegotiate (default true).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_client_renegotiation(
        builder: *mut rssl_config_builder,
        allow: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.client_renegotiation = allow;
            RSSL_OK
        }
    }

    /// Client: send TLS_FALLBACK_SCSV (RFC 7507), for a retry with a lower
    /// version after a failed handshake (default false). A server that
    /// supports a higher version then answers `inappropriate_fallback`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_fallback(
        builder: *mut rssl_config_builder,
        fallback: bool,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.fallback = fallback;
            RSSL_OK
        }
    }

    /// Adds the CRLs of a PEM file (read when built) for
    /// `rssl_config_builder_set_crl_check`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_add_crlfile(
        builder: *mut rssl_config_builder,
        path: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let path = try_str!(path);
            builder.options.crls.push(CrlSource::File(path.into()));
            RSSL_OK
        }
    }

    /// Looks CRLs up in a directory laid out as `openssl rehash` lays it
    /// out (the issuer name's hash, `.r0`, `.r1`...; PEM or DER files),
    /// read during each verification, so CRLs added later are seen (OTP's
    /// `ssl_crl_hash_dir`). For `rssl_config_builder_set_crl_check`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_crl_dir(
        builder: *mut rssl_config_builder,
        dir: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let dir = try_str!(dir);
            builder.options.crl_dir = Some(dir.into());
            RSSL_OK
        }
    }

    /// Adds CRLs from memory: PEM (any number) or DER (one). Copied;
    /// `RSSL_BAD_CRL` when the data holds none.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_add_crls(
        builder: *mut rssl_config_builder,
        data: *const u8,
        len: usize,
        format: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let data = try_slice!(data, len);
            let source = match parse_format(format) {
                Ok(rssl_format::RSSL_FORMAT_PEM) => {
                    if let Err(why) = pem::crls_from_pem(data) {
                        return error::set(RSSL_BAD_CRL, format!("crls: {why}"));
                    }
                    CrlSource::Pem(data.to_vec())
                }
                Ok(rssl_format::RSSL_FORMAT_DER) => {
                    if pem::crl_from_der(data).is_err() {
                        return error::set(RSSL_BAD_CRL, "crls: not a DER CRL");
                    }
                    CrlSource::Der(data.to_vec())
                }
                Err(result) => return result,
            };
            builder.options.crls.push(source);
            RSSL_OK
        }
    }

    /// How the peer's chain is checked against the CRLs
    /// (`RSSL_CRL_CHECK_*`; default none). Needs `RSSL_VERIFY_PEER`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_crl_check(
        builder: *mut rssl_config_builder,
        mode: u32,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.options.crl_check = match mode {
                m if m == rssl_crl_check::RSSL_CRL_CHECK_NONE as u32 => CrlCheck::Off,
                m if m == rssl_crl_check::RSSL_CRL_CHECK_PEER as u32 => CrlCheck::Peer,
                m if m == rssl_crl_check::RSSL_CRL_CHECK_ALL as u32 => CrlCheck::All,
                m if m == rssl_crl_check::RSSL_CRL_CHECK_BEST_EFFORT as u32 => CrlCheck::BestEffort,
                other => return error::invalid_argument(format!("unknown crl check mode {other}")),
            };
            RSSL_OK
        }
    }

    /// Server: protocols advertised with NPN (TLS 1.2 and older), `count`
    /// NUL-terminated strings of 1 to 255 bytes; 0 turns NPN off.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_npn_advertised(
        builder: *mut rssl_config_builder,
        protocols: *const *const c_char,
        count: usize,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let protocols = try_slice!(protocols, count);
            match protocol_list(protocols) {
                Ok(list) => builder.options.npn_advertised = list,
                Err(result) => return result,
            }
            RSSL_OK
        }
    }

    /// Client: NPN protocols by preference (`count` strings, 0 turns NPN
    /// off), whose order wins (`RSSL_NPN_*`), and the protocol to pick when
    /// none matches (`fallback`, NULL: the first of `protocols`), as OTP's
    /// `client_preferred_next_protocols`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_npn_preferred(
        builder: *mut rssl_config_builder,
        protocols: *const *const c_char,
        count: usize,
        precedence: u32,
        fallback: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let protocols = try_slice!(protocols, count);
            let precedence = match precedence {
                p if p == rssl_npn_precedence::RSSL_NPN_CLIENT as u32 => NpnPrecedence::Client,
                p if p == rssl_npn_precedence::RSSL_NPN_SERVER as u32 => NpnPrecedence::Server,
                other => return error::invalid_argument(format!("unknown NPN precedence {other}")),
            };
            let default = if fallback.is_null() {
                None
            } else {
                match protocol_list(&[fallback]) {
                    Ok(mut one) => one.pop(),
                    Err(result) => return result,
                }
            };
            let list = match protocol_list(protocols) {
                Ok(list) => list,
                Err(result) => return result,
            };
            builder.options.npn_preferred = (!list.is_empty()).then_some(NpnPreference {
                precedence,
                protocols: list,
                default,
            });
            RSSL_OK
        }
    }

    /// Client: the PSK identity to send; server: the identity hint to send
    /// (see `rssl_config_builder_set_psk_callback`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_psk_identity(
        builder: *mut rssl_config_builder,
        identity: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let identity = try_str!(identity);
            builder.options.psk_identity = Some(identity.into());
            RSSL_OK
        }
    }

    /// Client: log in with SRP as `username` with `password` (TLS 1.2 and
    /// SRP cipher suites, e.g. "SRP-AES-128-CBC-SHA").
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_srp_identity(
        builder: *mut rssl_config_builder,
        username: *const c_char,
        password: *const c_char,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let username = try_str!(username);
            let password = try_str!(password);
            builder.options.srp_identity = Some((username.into(), password.into()));
            RSSL_OK
        }
    }

    /// Builds the configuration (reading files now, checking keys and
    /// cipher lists). On success `*config_out` owns a new configuration, to
    /// be freed with `rssl_config_free`. The builder is unchanged.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_build(
        builder: *const rssl_config_builder,
        config_out: *mut *const rssl_config,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_ref!(builder);
            let config_out = try_mut!(config_out);
            try_result!(builder.check_protocol());
            // Not the engine's shared cache: a C program builds a
            // configuration once and reuses it, and a rebuild after a
            // certificate rotation must read the new files.
            match engine::Config::build(builder.options.clone()) {
                Ok(config) => {
                    *config_out = Box::into_raw(Box::new(rssl_config { config }));
                    RSSL_OK
                }
                Err(err) => error::engine(&err),
            }
        }
    }
}

impl rssl_config {
    /// Frees a configuration; NULL is ignored. No other thread may be using
    /// it; connections made with it stay valid.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_free(config: *const rssl_config) {
        ffi_panic_boundary! {
            if !config.is_null() {
                // SAFETY: pointer rules: a live configuration from rssl_config_builder_build's
                // Box; "no other thread may be using it" (above).
                drop(unsafe { Box::from_raw(config as *mut rssl_config) });
            }
        }
    }
}

/// Protocol names (ALPN, NPN): NUL-terminated, 1 to 255 bytes each.
///
/// # Safety
/// Each pointer is NULL or a NUL-terminated string (pointer rules).
unsafe fn protocol_list(protocols: &[*const c_char]) -> Result<Vec<Vec<u8>>, rssl_result> {
    let mut list = Vec::with_capacity(protocols.len());
    for &protocol in protocols {
        // SAFETY: this function's contract.
        let protocol = unsafe { super::text::from_c_str(protocol, "protocol") }?;
        if protocol.is_empty() || protocol.len() > 255 {
            return Err(error::invalid_argument("protocols must be 1 to 255 bytes"));
        }
        list.push(protocol.as_bytes().to_vec());
    }
    Ok(list)
}

fn add_identity(
    builder: &mut rssl_config_builder,
    cert: CertSource,
    key: Option<KeySource>,
    password: Option<String>,
) {
    builder
        .options
        .certs_keys
        .get_or_insert_with(Vec::new)
        .push(Identity {
            cert,
            key,
            password,
        });
}

/// A certificate (and chain) given in memory, PEM or DER.
fn cert_source(data: &[u8], format: u32) -> Result<CertSource, rssl_result> {
    match parse_format(format)? {
        rssl_format::RSSL_FORMAT_PEM => {
            pem_certificates(data, "cert")?;
            Ok(CertSource::Pem(data.to_vec()))
        }
        rssl_format::RSSL_FORMAT_DER => Ok(CertSource::Der(der_certificates(data, "cert")?)),
    }
}

/// A private key given in memory, PEM (checked at build time: the
/// password may come later) or DER.
fn key_source(data: &[u8], format: u32) -> Result<KeySource, rssl_result> {
    match parse_format(format)? {
        rssl_format::RSSL_FORMAT_PEM => Ok(KeySource::Pem(data.to_vec())),
        rssl_format::RSSL_FORMAT_DER => {
            if pem::private_key_from_der(data).is_err() {
                return Err(error::set(RSSL_BAD_KEY, "key: not a DER private key"));
            }
            Ok(KeySource::Der("PrivateKeyInfo".into(), data.to_vec()))
        }
    }
}

fn parse_format(format: u32) -> Result<rssl_format, rssl_result> {
    match format {
        f if f == rssl_format::RSSL_FORMAT_PEM as u32 => Ok(rssl_format::RSSL_FORMAT_PEM),
        f if f == rssl_format::RSSL_FORMAT_DER as u32 => Ok(rssl_format::RSSL_FORMAT_DER),
        other => Err(error::invalid_argument(format!("unknown format {other}"))),
    }
}

/// The DER of every certificate in PEM text (at least one).
fn pem_certificates(data: &[u8], option: &str) -> Result<Vec<Vec<u8>>, rssl_result> {
    let certs = pem::certificates_from_pem(data).map_err(|_| {
        error::set(
            RSSL_BAD_CERTIFICATE,
            format!("{option}: no PEM certificate"),
        )
    })?;
    certs
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<_, _>>()
        .map_err(|e| error::set(RSSL_BAD_CERTIFICATE, format!("{option}: {e}")))
}

/// Concatenated DER certificates (at least one), each checked.
fn der_certificates(data: &[u8], option: &str) -> Result<Vec<Vec<u8>>, rssl_result> {
    pem::split_der_certificates(data)
        .map_err(|why| error::set(RSSL_BAD_CERTIFICATE, format!("{option}: {why}")))
}

#[cfg(test)]
mod tests;
