//! A shareable TLS configuration: one `SSL_CTX` per distinct [`Options`].

use super::connection::{Connection, PeerName};
use super::error::Error;
use super::options::{CaSource, CertSource, Identity, KeySource, Options, Role, Verify};
use super::pem;
use super::version::Version;
use foreign_types::ForeignTypeRef;
use once_cell::sync::Lazy;
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    AlpnError, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslVerifyMode,
};
use openssl::stack::Stack;
use openssl::x509::{X509Name, X509};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// An immutable, thread-safe TLS configuration. Cloning is cheap.
#[derive(Clone)]
pub struct Config {
    inner: Arc<Inner>,
}

struct Inner {
    context: SslContext,
    options: Options,
}

/// Configurations by their options, so that PEM files are parsed once.
static CACHE: Lazy<Mutex<HashMap<Options, Config>>> = Lazy::new(|| Mutex::new(HashMap::new()));
/// Bound on cached configurations; the cache is emptied when it is reached.
const CACHE_LIMIT: usize = 256;

impl Config {
    /// Returns the shared configuration for `options`, building it on first use.
    pub fn get(options: &Options) -> Result<Config, Error> {
        if let Some(config) = CACHE.lock().get(options) {
            return Ok(config.clone());
        }
        let config = Config::build(options.clone())?;
        let mut cache = CACHE.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        Ok(cache.entry(options.clone()).or_insert(config).clone())
    }

    /// The cached configuration for `options`, if it was built before.
    pub fn cached(options: &Options) -> Option<Config> {
        CACHE.lock().get(options).cloned()
    }

    /// Forgets every cached configuration (files are read again on next use).
    pub fn clear_cache() {
        CACHE.lock().clear();
    }

    /// Builds a fresh, uncached configuration.
    pub fn build(options: Options) -> Result<Config, Error> {
        options.validate()?;
        let context = build_context(&options)?;
        let config = Config {
            inner: Arc::new(Inner { context, options }),
        };
        config.warm_up();
        Ok(config)
    }

    /// OpenSSL finishes setting up a context on its first connection (up
    /// to milliseconds). Doing it here, where the configuration is built
    /// (off the VM's normal schedulers), keeps that cost out of the first
    /// `connect` or accept. (No handshake: that could call callbacks.)
    fn warm_up(&self) {
        let _ = Connection::new(self, &PeerName::default());
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    pub fn role(&self) -> Role {
        self.inner.options.role
    }

    pub(crate) fn context(&self) -> &SslContext {
        &self.inner.context
    }
}

// By identity, so that options naming configurations (SNI hosts) can be
// compared and hashed: equal means the same shared configuration.
impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Config {}

impl std::hash::Hash for Config {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.inner).hash(state)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Config({:p})", Arc::as_ptr(&self.inner))
    }
}

fn openssl_error(what: &str, err: openssl::error::ErrorStack) -> Error {
    Error::Internal(format!("{what}: {err}"))
}

fn build_context(o: &Options) -> Result<SslContext, Error> {
    let method = match (o.role, o.is_dtls()) {
        (Role::Client, false) => SslMethod::tls_client(),
        (Role::Server, false) => SslMethod::tls_server(),
        (Role::Client, true) => SslMethod::dtls_client(),
        (Role::Server, true) => SslMethod::dtls_server(),
    };
    let mut b = SslContext::builder(method).map_err(|e| openssl_error("SSL_CTX_new", e))?;

    let mut ssl_options = SslOptions::NO_COMPRESSION | SslOptions::IGNORE_UNEXPECTED_EOF;
    if o.honor_cipher_order {
        ssl_options |= SslOptions::CIPHER_SERVER_PREFERENCE;
    }
    if o.role == Role::Server && !o.client_renegotiation {
        ssl_options |= SslOptions::NO_RENEGOTIATION;
    }
    if !o.secure_renegotiate {
        ssl_options |= SslOptions::ALLOW_UNSAFE_LEGACY_RENEGOTIATION;
    }
    if o.is_dtls() {
        // Datagrams are sized by the connection (super::datagram::MTU), not
        // by asking the memory BIO, which knows no path MTU.
        ssl_options |= SslOptions::NO_QUERY_MTU;
    }
    b.set_options(ssl_options);
    b.set_mode(SslMode::RELEASE_BUFFERS | SslMode::ACCEPT_MOVING_WRITE_BUFFER);

    set_versions(&mut b, &o.versions)?;
    if let Some(list) = &o.cipher_list {
        b.set_cipher_list(list).map_err(|_| {
            Error::Option("ciphers".into(), format!("no usable cipher in {list:?}"))
        })?;
    }
    if let Some(list) = &o.ciphersuites {
        b.set_ciphersuites(list)
            .map_err(|_| Error::Option("ciphers".into(), format!("no usable suite in {list:?}")))?;
    }
    if let Some(sigalgs) = &o.sigalgs {
        b.set_sigalgs_list(sigalgs)
            .map_err(|_| Error::Option("signature_algs".into(), sigalgs.clone()))?;
    }
    if let Some(groups) = &o.groups {
        b.set_groups_list(groups)
            .map_err(|_| Error::Option("supported_groups".into(), groups.clone()))?;
    }

    let identities = load_identity(&mut b, o)?;
    set_eccs(&mut b, o, identities)?;
    let ca_names = load_trust(&mut b, o)?;

    let mut mode = match o.verify {
        Verify::None => SslVerifyMode::NONE,
        Verify::Peer => SslVerifyMode::PEER,
    };
    if o.role == Role::Server && o.verify == Verify::Peer && o.fail_if_no_peer_cert {
        mode |= SslVerifyMode::FAIL_IF_NO_PEER_CERT;
    }
    b.set_verify(mode);
    b.set_verify_depth(o.depth);
    if o.role == Role::Server && o.verify == Verify::Peer {
        if let Some(names) = ca_names {
            b.set_client_ca_list(names);
        }
    }

    load_dh(&mut b, o)?;

    match o.role {
        Role::Client => {
            // Only a verifying client can reject the server's certificate,
            // and only one stopping at the hello can cancel.
            let defers_alerts = o.versions.contains(&Version::Tls13)
                && (o.verify == Verify::Peer || o.hello.is_some());
            super::secrets::install(&mut b, defers_alerts, o.keep_secrets);
            if let Some(length) = o.max_fragment_length {
                // RFC 6066's codes: 512 is 1, ..., 4096 is 4.
                let mode = (length / 512).trailing_zeros() as u8 + 1;
                // SAFETY: `b` owns a live SSL_CTX.
                if unsafe { super::ffi::SSL_CTX_set_tlsext_max_fragment_length(b.as_ptr(), mode) }
                    != 1
                {
                    return Err(Error::Option(
                        "max_fragment_length".into(),
                        length.to_string(),
                    ));
                }
            }
            if !o.alpn.is_empty() {
                b.set_alpn_protos(&alpn_wire(&o.alpn))
                    .map_err(|e| openssl_error("alpn", e))?;
            }
        }
        Role::Server => {
            super::secrets::install(&mut b, false, o.keep_secrets);
            // TLS 1.3 tickets are off by default, as OTP's session_tickets.
            b.set_num_tickets(0)
                .map_err(|e| openssl_error("num_tickets", e))?;
            if !o.reuse_sessions {
                b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
                b.set_options(SslOptions::NO_TICKET);
            }
            if !o.alpn.is_empty() {
                let preferred = o.alpn.clone();
                b.set_alpn_select_callback(move |_, client| {
                    crate::engine::connection::guard(Err(AlpnError::ALERT_FATAL), || {
                        select_alpn(&preferred, client).ok_or(AlpnError::ALERT_FATAL)
                    })
                });
            }
        }
    }
    if o.is_dtls() && o.role == Role::Server {
        super::datagram::install_cookies(&mut b);
    }
    super::hooks::install(&mut b, o)?;
    Ok(b.build())
}

/// OTP's `eccs` (curves for TLS 1.2): a client offering no TLS 1.3 sends
/// them as its groups; a server uses them on its TLS 1.2 connections
/// (identity.rs), which also picks a TLS 1.2 client's certificate.
fn set_eccs(b: &mut SslContextBuilder, o: &Options, identities: usize) -> Result<(), Error> {
    let tls13 = o.versions.contains(&Version::Tls13);
    let bad = |list: &String| Error::Option("eccs".into(), list.clone());
    match (o.role, &o.eccs) {
        (Role::Client, Some(list)) if !tls13 => b.set_groups_list(list).map_err(|_| bad(list))?,
        (Role::Server, Some(list)) => {
            // Checked here, where an error can still be reported.
            SslContext::builder(SslMethod::tls())
                .and_then(|mut probe| probe.set_groups_list(list))
                .map_err(|_| bad(list))?;
        }
        _ => {}
    }
    let server_groups = match o.role {
        Role::Server => o.eccs.as_deref(),
        Role::Client => None,
    };
    super::identity::install(
        b,
        o.role == Role::Client && identities > 1,
        server_groups,
        o.role == Role::Server && !o.certificate_authorities,
    );
    Ok(())
}

fn set_versions(b: &mut SslContextBuilder, versions: &[Version]) -> Result<(), Error> {
    let min = versions.iter().min().copied().unwrap_or(Version::Tls12);
    let max = versions.iter().max().copied().unwrap_or(Version::Tls13);
    let bad = |_| Error::Option("versions".into(), "not supported".into());
    b.set_min_proto_version(Some(min.to_openssl()))
        .map_err(bad)?;
    b.set_max_proto_version(Some(max.to_openssl()))
        .map_err(bad)?;
    // Gaps in the list (e.g. 1.3 and 1.1 without 1.2) are switched off one by one.
    for (version, off) in [
        (Version::Tls10, SslOptions::NO_TLSV1),
        (Version::Tls11, SslOptions::NO_TLSV1_1),
        (Version::Tls12, SslOptions::NO_TLSV1_2),
        (Version::Tls13, SslOptions::NO_TLSV1_3),
    ] {
        if version > min && version < max && !versions.contains(&version) {
            b.set_options(off);
        }
    }
    if min < Version::Tls12 || min == Version::Dtls10 {
        // OpenSSL 3 refuses TLS 1.0/1.1 (and DTLS 1.0, their datagram
        // twin) above security level 0; only this
        // context, which asked for them explicitly, is lowered.
        b.set_security_level(0);
    }
    Ok(())
}

fn read_file(option: &str, path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::File {
        option: option.into(),
        path: path.into(),
        reason: crate::posix::error_name(&e).into(),
    })
}

fn bad_file(option: &str, path: &str, reason: &str) -> Error {
    Error::File {
        option: option.into(),
        path: path.into(),
        reason: reason.into(),
    }
}

/// Our certificate(s), chain(s) and private key(s); returns how many
/// OpenSSL holds.
fn load_identity(b: &mut SslContextBuilder, o: &Options) -> Result<usize, Error> {
    let identities: Vec<Identity> = match (&o.certs_keys, &o.cert) {
        // As OTP: with certs_keys, the single cert/key options are not used.
        (Some(list), _) => list.clone(),
        (None, Some(cert)) => vec![Identity {
            cert: cert.clone(),
            key: o.key.clone(),
            password: o.password.clone(),
        }],
        (None, None) => return Ok(0),
    };
    // OpenSSL keeps one certificate per key type: the first of each type
    // is used (every entry is still read and checked).
    let mut installed = Vec::new();
    for identity in &identities {
        let pair = read_pair(identity)?;
        let kind = pair.key.id();
        if installed.contains(&kind) {
            continue;
        }
        installed.push(kind);
        install_pair(b, pair)?;
    }
    Ok(installed.len())
}

/// A certificate, the rest of its chain and its private key, read and
/// checked against each other.
struct Pair {
    leaf: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
    /// Where the key came from, for errors: the option and the file.
    key_from: (&'static str, String),
}

fn read_pair(identity: &Identity) -> Result<Pair, Error> {
    let cert_source = &identity.cert;
    let (certs, cert_pem) = match cert_source {
        CertSource::File(path) => {
            // OTP reads the key first; with no keyfile that is this file,
            // so a missing file is reported as the keyfile.
            let option = if identity.key.is_none() {
                "keyfile"
            } else {
                "certfile"
            };
            let pem = read_file(option, path)?;
            let certs =
                pem::certificates_from_pem(&pem).map_err(|why| bad_file("certfile", path, why))?;
            (certs, Some(pem))
        }
        CertSource::Pem(pem) => {
            let certs = pem::certificates_from_pem(pem)
                .map_err(|_| Error::Option("cert".into(), "no PEM certificate".into()))?;
            (certs, Some(pem.clone()))
        }
        CertSource::Der(ders) => {
            let certs = pem::certificates_from_der(ders)
                .map_err(|why| Error::Option("cert".into(), why.into()))?;
            if certs.is_empty() {
                return Err(Error::Option(
                    "cert".into(),
                    "empty certificate list".into(),
                ));
            }
            (certs, None)
        }
    };
    let mut certs = certs.into_iter();
    let leaf = certs.next().expect("checked non-empty");
    let chain: Vec<X509> = certs.collect();

    let password = identity.password.as_deref().unwrap_or("");
    let (key, option, path) = match (&identity.key, cert_source, cert_pem) {
        (Some(KeySource::File(path)), _, _) => {
            let pem = read_file("keyfile", path)?;
            (
                pem::private_key_from_pem(&pem, password),
                "keyfile",
                path.clone(),
            )
        }
        (Some(KeySource::Pem(text)), _, _) => (
            pem::private_key_from_pem(text, password),
            "key",
            String::new(),
        ),
        (Some(KeySource::Der(_, der)), _, _) => {
            (pem::private_key_from_der(der), "key", String::new())
        }
        // As OTP: the key defaults to the certificate file.
        (None, CertSource::File(path), Some(text)) => (
            pem::private_key_from_pem(&text, password),
            "keyfile",
            path.clone(),
        ),
        (None, _, Some(text)) => (
            pem::private_key_from_pem(&text, password),
            "key",
            String::new(),
        ),
        (None, _, None) => return Err(Error::Option("key".into(), "no private key".into())),
    };
    let key = key.map_err(|reason| bad_file(option, &path, reason))?;
    let matches = leaf.public_key().is_ok_and(|public| public.public_eq(&key));
    if !matches {
        return Err(bad_file(option, &path, "key_does_not_match_certificate"));
    }
    Ok(Pair {
        leaf,
        chain,
        key,
        key_from: (option, path),
    })
}

/// Puts a pair in the context: OpenSSL files it under its key type, and
/// the chain is that certificate's own (SSL_CTX_add1_chain_cert adds to
/// the current certificate).
fn install_pair(b: &mut SslContextBuilder, pair: Pair) -> Result<(), Error> {
    b.set_certificate(&pair.leaf).map_err(|e| {
        // e.g. "ee md too weak": OpenSSL's security level refuses it.
        let why = e
            .errors()
            .first()
            .and_then(|r| r.reason())
            .unwrap_or("certificate not usable");
        Error::Option("cert".into(), why.to_string())
    })?;
    for extra in &pair.chain {
        // SAFETY: `b` owns a live SSL_CTX and `extra` a live X509; add1
        // takes its own reference, so `extra` stays ours to free.
        let ok = unsafe {
            openssl_sys::SSL_CTX_ctrl(
                b.as_ptr(),
                openssl_sys::SSL_CTRL_CHAIN_CERT,
                1,
                extra.as_ptr().cast(),
            )
        };
        if ok != 1 {
            return Err(openssl_error("chain", ErrorStack::get()));
        }
    }
    let (option, path) = &pair.key_from;
    b.set_private_key(&pair.key)
        .map_err(|_| bad_file(option, path, "bad_key"))?;
    b.check_private_key()
        .map_err(|_| bad_file(option, path, "key_does_not_match_certificate"))?;
    Ok(())
}

/// Loads trusted CAs into the context's store; returns their names for the
/// server's certificate request.
fn load_trust(b: &mut SslContextBuilder, o: &Options) -> Result<Option<Stack<X509Name>>, Error> {
    let cas = match &o.cacerts {
        None => return Ok(None),
        Some(CaSource::File(path)) => {
            let pem = read_file("cacertfile", path)?;
            pem::ca_certificates_from_pem(&pem).map_err(|why| bad_file("cacertfile", path, why))?
        }
        Some(CaSource::Der(ders)) => pem::certificates_from_der(ders)
            .map_err(|why| Error::Option("cacerts".into(), why.into()))?,
    };
    let mut names = Stack::new().map_err(|e| openssl_error("stack", e))?;
    for ca in cas {
        if let Ok(name) = ca.subject_name().to_owned() {
            let _ = names.push(name);
        }
        // Duplicates in a CA file are harmless; OpenSSL reports them as errors.
        let _ = b.cert_store_mut().add_cert(ca);
    }
    Ok(Some(names))
}

fn load_dh(b: &mut SslContextBuilder, o: &Options) -> Result<(), Error> {
    let params = match (&o.dh, &o.dhfile) {
        (Some(bytes), _) => Some(("dh", String::new(), bytes.clone())),
        (None, Some(path)) => Some(("dhfile", path.clone(), read_file("dhfile", path)?)),
        (None, None) => None,
    };
    match params {
        Some((option, path, bytes)) => {
            let dh = pem::dh_params(&bytes).map_err(|why| bad_file(option, &path, why))?;
            b.set_tmp_dh(&dh)
                .map_err(|_| bad_file(option, &path, "bad_dh_params"))?;
        }
        // Let OpenSSL pick DH parameters matching the certificate strength.
        // SAFETY: `b` owns a live SSL_CTX; the control only sets a flag.
        None => unsafe {
            openssl_sys::SSL_CTX_set_dh_auto(b.as_ptr(), 1);
        },
    }
    Ok(())
}

/// ALPN protocol list in wire format (length-prefixed strings).
fn alpn_wire(protocols: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in protocols {
        wire.push(p.len() as u8);
        wire.extend_from_slice(p);
    }
    wire
}

/// The server's first preferred protocol that the client offered.
fn select_alpn<'a>(preferred: &[Vec<u8>], client: &'a [u8]) -> Option<&'a [u8]> {
    let mut offered = Vec::new();
    let mut rest = client;
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        if tail.len() < len {
            break;
        }
        offered.push(&tail[..len]);
        rest = &tail[len..];
    }
    preferred
        .iter()
        .find_map(|p| offered.iter().find(|o| **o == p.as_slice()).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_picks_server_preference() {
        let client = alpn_wire(&[b"h2".to_vec(), b"http/1.1".to_vec()]);
        let preferred = vec![b"http/1.1".to_vec(), b"h2".to_vec()];
        assert_eq!(select_alpn(&preferred, &client), Some(&b"http/1.1"[..]));
        assert_eq!(select_alpn(&[b"spdy".to_vec()], &client), None);
    }

    #[test]
    fn missing_certfile_is_an_enoent_file_error() {
        let mut o = Options::new(Role::Server);
        o.cert = Some(CertSource::File("/nonexistent/cert.pem".into()));
        o.key = Some(KeySource::File("/nonexistent/key.pem".into()));
        match Config::build(o) {
            Err(Error::File { option, reason, .. }) => {
                assert_eq!(option, "certfile");
                assert_eq!(reason, "enoent");
            }
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn key_of_another_certificate_is_a_mismatch() {
        let pki = crate::engine::connection::tests::test_pki();
        let other = crate::engine::connection::tests::test_pki();
        let mut o = Options::new(Role::Server);
        o.cert = Some(CertSource::Der(vec![pki.cert]));
        o.key = Some(KeySource::Der("ECPrivateKey".into(), other.key));
        match Config::build(o) {
            Err(Error::File { reason, .. }) => assert_eq!(reason, "key_does_not_match_certificate"),
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn bad_cipher_list_is_an_option_error() {
        let mut o = Options::new(Role::Client);
        o.cipher_list = Some("NO-SUCH-CIPHER".into());
        assert!(matches!(Config::build(o), Err(Error::Option(name, _)) if name == "ciphers"));
    }

    #[test]
    fn equal_options_share_one_context() {
        let o = Options::new(Role::Client);
        let a = Config::get(&o).unwrap();
        let b = Config::get(&o).unwrap();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
    }
}
