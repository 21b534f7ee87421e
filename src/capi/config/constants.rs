//! The values a C caller passes to the builder's integer arguments. They
//! arrive as plain integers (any value must be safe) and are matched against
//! these; cbindgen exports them for their names (cbindgen.toml).

/// Which end of a connection a configuration is for.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_role {
    RSSL_ROLE_CLIENT = 1,
    RSSL_ROLE_SERVER = 2,
}

/// Whether to verify the peer's certificate.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_verify {
    /// Accept any peer certificate (a server then asks for none).
    RSSL_VERIFY_NONE = 0,
    /// Verify the peer's chain against the CA certificates, and (client)
    /// the host name given to `rssl_connect` / `rssl_conn_from_fd`.
    RSSL_VERIFY_PEER = 1,
}

/// The encoding of certificates and keys given in memory.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_format {
    /// PEM text; several certificates may follow each other.
    RSSL_FORMAT_PEM = 1,
    /// DER; several certificates may be concatenated.
    RSSL_FORMAT_DER = 2,
}

/// Protocol versions, by their TLS wire values.
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_version {
    /// TLS 1.0 (0x0301); needs OpenSSL security level 0, which rssl sets
    /// for that configuration only.
    RSSL_TLS1_0 = 0x0301,
    /// TLS 1.1 (0x0302); as TLS 1.0.
    RSSL_TLS1_1 = 0x0302,
    /// TLS 1.2 (0x0303).
    RSSL_TLS1_2 = 0x0303,
    /// TLS 1.3 (0x0304).
    RSSL_TLS1_3 = 0x0304,
    /// DTLS 1.0 (0xfeff), for `RSSL_PROTOCOL_DTLS` configurations.
    RSSL_DTLS1_0 = 0xfeff,
    /// DTLS 1.2 (0xfefd), for `RSSL_PROTOCOL_DTLS` configurations.
    RSSL_DTLS1_2 = 0xfefd,
}

/// What a configuration's connections run over (OTP's `protocol` option).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_protocol {
    /// TLS over TCP (the default): versions `RSSL_TLS1_*`.
    RSSL_PROTOCOL_TLS = 1,
    /// DTLS over UDP: versions `RSSL_DTLS1_*`, one datagram per record.
    RSSL_PROTOCOL_DTLS = 2,
}

/// How the peer's chain is checked against CRLs (OTP's `crl_check`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_crl_check {
    /// No revocation check (the default).
    RSSL_CRL_CHECK_NONE = 0,
    /// Only the peer's own certificate (`peer`).
    RSSL_CRL_CHECK_PEER = 1,
    /// Every certificate of the chain (`true`): each issuer's CRL must be
    /// there.
    RSSL_CRL_CHECK_ALL = 2,
    /// Every certificate, but one whose CRL is missing passes
    /// (`best_effort`).
    RSSL_CRL_CHECK_BEST_EFFORT = 3,
}

/// Whose order decides the NPN protocol when several match.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rssl_npn_precedence {
    RSSL_NPN_CLIENT = 1,
    RSSL_NPN_SERVER = 2,
}
