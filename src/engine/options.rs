//! Validated, language-neutral configuration for a [`super::Config`].
//!
//! Front ends (Erlang option lists, C builder calls) fill an [`Options`];
//! equal options share one OpenSSL context (see `config.rs`).

use super::anti_replay::AntiReplayParams;
use super::config::Config;
use super::crl::{CrlCheck, CrlSource};
use super::hello::HelloFn;
use super::hooks::Callback;
use super::npn::NpnPreference;
use super::psk::UserLookupFn;
use super::session::ReuseSessionFn;
use super::sni::SniFn;
use super::verify::{PartialChainFn, VerifyFn};
use super::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }

    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verify {
    None,
    Peer,
}

/// Where our own certificate (and its chain) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertSource {
    /// PEM file: the first certificate is ours, the rest its chain.
    File(String),
    /// DER certificates: the first is ours, the rest its chain.
    Der(Vec<Vec<u8>>),
    /// PEM text in memory, as in a file.
    Pem(Vec<u8>),
}

/// Where our private key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// PEM file (possibly encrypted, see `password`).
    File(String),
    /// DER key; the kind is `RSAPrivateKey`, `ECPrivateKey`, `PrivateKeyInfo`...
    Der(String, Vec<u8>),
    /// PEM text in memory (possibly encrypted).
    Pem(Vec<u8>),
}

/// One certificate (with its chain) and its private key: an entry of
/// OTP's `certs_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub cert: CertSource,
    /// None: the key is in the certificate's PEM (file or text).
    pub key: Option<KeySource>,
    pub password: Option<String>,
}

/// Trusted certificates for verifying the peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CaSource {
    File(String),
    Der(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Options {
    pub role: Role,
    /// Enabled versions, any order; never empty.
    pub versions: Vec<Version>,
    pub verify: Verify,
    pub fail_if_no_peer_cert: bool,
    /// Maximum number of intermediate certificates in a peer chain.
    pub depth: u32,
    pub cert: Option<CertSource>,
    pub key: Option<KeySource>,
    pub password: Option<String>,
    /// Several identities (OTP's `certs_keys`): when set, `cert`, `key`
    /// and `password` are not used. OpenSSL holds one per key type (RSA,
    /// RSA-PSS, ECDSA, Ed25519, Ed448, DSA); the peer's signature
    /// algorithms pick among them.
    pub certs_keys: Option<Vec<Identity>>,
    pub cacerts: Option<CaSource>,
    /// OpenSSL cipher list for TLS 1.2 and older (None: the default list).
    pub cipher_list: Option<String>,
    /// OpenSSL TLS 1.3 suite list (None: the default list).
    pub ciphersuites: Option<String>,
    pub honor_cipher_order: bool,
    /// Client: advertised ALPN protocols; server: preferred protocols.
    pub alpn: Vec<Vec<u8>>,
    pub reuse_sessions: bool,
    pub secure_renegotiate: bool,
    pub client_renegotiation: bool,
    /// Elliptic curves / groups, OpenSSL names (None: default).
    pub groups: Option<String>,
    /// OTP's `eccs`: the curves of TLS 1.2 connections (ECDHE, ECDSA
    /// certificates), OpenSSL names; TLS 1.3 uses `groups`.
    pub eccs: Option<String>,
    /// DH parameters in PEM or DER.
    pub dh: Option<Vec<u8>>,
    pub dhfile: Option<String>,
    /// Send TLS_FALLBACK_SCSV (client).
    pub fallback: bool,
    /// Called for each certificate of the peer's chain (`verify_fun`).
    pub verify_fun: Option<Callback<VerifyFn>>,
    /// Picks a trust anchor inside a chain that reaches no trusted CA.
    pub partial_chain: Option<Callback<PartialChainFn>>,
    pub crl_check: CrlCheck,
    /// Revocation lists, added to the trusted CAs' store.
    pub crls: Vec<CrlSource>,
    /// A directory of CRLs named by issuer hash (`openssl rehash`).
    pub crl_dir: Option<String>,
    /// Fetches CRLs from the certificates' distribution points.
    pub crl_fetch: Option<Callback<super::crl::CrlFetchFn>>,
    /// Server: configurations by SNI host name (compared without case).
    pub sni_hosts: Vec<(String, Config)>,
    /// Server: chooses a configuration for hosts not in `sni_hosts`.
    pub sni_fun: Option<Callback<SniFn>>,
    /// Client: the PSK identity sent; server: the PSK identity hint.
    pub psk_identity: Option<String>,
    /// Client: SRP user name and password.
    pub srp_identity: Option<(String, String)>,
    /// PSK keys (both roles) and SRP verifiers (server).
    pub user_lookup: Option<Callback<UserLookupFn>>,
    /// Server: TLS 1.3 session tickets sent after each handshake (0, the
    /// default as in OTP, allows no TLS 1.3 resumption).
    pub session_tickets: u32,
    /// Server: TLS 1.3 tickets name state kept in the server's session
    /// cache (OTP's `stateful`) instead of carrying it (`stateless`).
    pub stateful_tickets: bool,
    /// Client: keep TLS 1.3 tickets and offer one on the next connection
    /// with the same session key (OTP's `session_tickets` `auto`).
    pub auto_tickets: bool,
    /// Client: each TLS 1.3 ticket the server sends is kept on its
    /// connection for the application to take (OTP's `session_tickets`
    /// `manual`, see `Connection::take_tickets`).
    pub manual_tickets: bool,
    /// Server: the most early data (0-RTT) a client may send on a resumed
    /// TLS 1.3 session; 0 (the default) accepts none (OTP's `early_data`).
    pub max_early_data: u32,
    /// Server with stateless tickets: refuses early data offered twice
    /// with one ticket (OTP's `anti_replay`).
    pub anti_replay: Option<AntiReplayParams>,
    /// Server: decides whether a session a client offers is resumed
    /// (OTP's `reuse_session`).
    pub reuse_session: Option<Callback<ReuseSessionFn>>,
    /// Server: protocols advertised with NPN.
    pub npn_advertised: Vec<Vec<u8>>,
    /// Client: NPN selection.
    pub npn_preferred: Option<NpnPreference>,
    /// Client: a wildcard in the certificate's leftmost label may match the
    /// host name (OpenSSL's default; OTP's `ssl` only with the https
    /// `match_fun` of `customize_hostname_check`).
    pub hostname_wildcards: bool,
    /// TLS 1.3: bytes sent before a key update (OTP's `key_update_at`).
    pub key_update_at: u64,
    /// TLS 1.2: records sent before a renegotiation (OTP's
    /// `renegotiate_at`).
    pub renegotiate_at: u64,
    /// Server: name the trusted CAs in TLS 1.3 certificate requests (OTP's
    /// `certificate_authorities`, true by default).
    pub certificate_authorities: bool,
    /// Client: the maximum fragment length asked of the server (RFC 6066:
    /// 512, 1024, 2048 or 4096).
    pub max_fragment_length: Option<u16>,
    /// Keep the TLS 1.3 traffic secrets for `security_items` (OTP's
    /// `keep_secrets`).
    pub keep_secrets: bool,
    /// Signature algorithms offered and accepted, OpenSSL's list syntax.
    pub sigalgs: Option<String>,
    /// Stops each handshake after the peer's hello (OTP's `{handshake,
    /// hello}`) until this function decides.
    pub hello: Option<Callback<HelloFn>>,
    /// The callbacks may answer later (the C API's asynchronous ones):
    /// handshakes run pausable (`pause.rs`).
    pub callbacks_may_pause: bool,
}

impl Options {
    /// Defaults as OTP 25's `ssl` has them.
    pub fn new(role: Role) -> Options {
        Options {
            role,
            versions: Version::DEFAULT.to_vec(),
            verify: Verify::None,
            fail_if_no_peer_cert: false,
            depth: 10,
            cert: None,
            key: None,
            password: None,
            certs_keys: None,
            cacerts: None,
            cipher_list: None,
            ciphersuites: None,
            honor_cipher_order: false,
            alpn: Vec::new(),
            reuse_sessions: true,
            secure_renegotiate: true,
            client_renegotiation: true,
            groups: None,
            eccs: None,
            dh: None,
            dhfile: None,
            fallback: false,
            verify_fun: None,
            partial_chain: None,
            crl_check: CrlCheck::Off,
            crls: Vec::new(),
            crl_dir: None,
            crl_fetch: None,
            sni_hosts: Vec::new(),
            sni_fun: None,
            psk_identity: None,
            srp_identity: None,
            user_lookup: None,
            session_tickets: 0,
            stateful_tickets: false,
            auto_tickets: false,
            manual_tickets: false,
            max_early_data: 0,
            anti_replay: None,
            reuse_session: None,
            npn_advertised: Vec::new(),
            npn_preferred: None,
            hostname_wildcards: true,
            keep_secrets: false,
            max_fragment_length: None,
            certificate_authorities: true,
            key_update_at: super::rekey::KEY_UPDATE_AT,
            renegotiate_at: super::rekey::RENEGOTIATE_AT,
            sigalgs: None,
            hello: None,
            callbacks_may_pause: false,
        }
    }

    /// Whether a handshake with these options calls application callbacks
    /// (those of the SNI hosts' configurations included).
    pub fn has_callbacks(&self) -> bool {
        self.verify_fun.is_some()
            || self.partial_chain.is_some()
            || self.sni_fun.is_some()
            || self.user_lookup.is_some()
            || self.reuse_session.is_some()
            || self.hello.is_some()
            || self.crl_fetch.is_some()
            || self
                .sni_hosts
                .iter()
                .any(|(_, config)| config.options().has_callbacks())
    }

    /// A DTLS configuration (datagrams over UDP): its versions are DTLS ones.
    pub fn is_dtls(&self) -> bool {
        !self.versions.is_empty() && self.versions.iter().all(|v| v.is_dtls())
    }

    /// Checks the combinations a single value check cannot see.
    pub fn validate(&self) -> Result<(), super::Error> {
        use super::Error::Option as Bad;
        if self.versions.is_empty() {
            return Err(Bad("versions".into(), "no protocol version enabled".into()));
        }
        if self.versions.iter().any(|v| v.is_dtls()) && !self.is_dtls() {
            return Err(Bad(
                "versions".into(),
                "TLS and DTLS versions cannot be mixed".into(),
            ));
        }
        if self.key.is_some() && self.cert.is_none() {
            return Err(Bad("key".into(), "a key needs a certificate".into()));
        }
        if self
            .max_fragment_length
            .is_some_and(|n| ![512, 1024, 2048, 4096].contains(&n))
        {
            return Err(Bad(
                "max_fragment_length".into(),
                "512, 1024, 2048 or 4096".into(),
            ));
        }
        if self.alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
            return Err(Bad(
                "alpn".into(),
                "protocols must be 1 to 255 bytes".into(),
            ));
        }
        Ok(())
    }
}
