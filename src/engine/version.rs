//! Protocol versions by their OTP names.

use openssl::ssl::SslVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
    /// DTLS 1.0 and 1.2, over UDP (`{protocol, dtls}`): a configuration
    /// has either TLS or DTLS versions, never both.
    Dtls10,
    Dtls12,
}

impl Version {
    /// All versions this build can negotiate, newest first.
    pub const AVAILABLE: [Version; 4] = [
        Version::Tls13,
        Version::Tls12,
        Version::Tls11,
        Version::Tls10,
    ];
    /// Versions enabled when the user does not choose (as OTP 25).
    pub const DEFAULT: [Version; 2] = [Version::Tls13, Version::Tls12];
    /// The DTLS versions this build can negotiate, newest first.
    pub const AVAILABLE_DTLS: [Version; 2] = [Version::Dtls12, Version::Dtls10];
    /// DTLS versions enabled when the user does not choose: 1.2 alone, as
    /// OTP 25 (a DTLS 1.0 peer gets protocol_version unless asked for).
    pub const DEFAULT_DTLS: [Version; 1] = [Version::Dtls12];

    /// A DTLS version (datagrams), not a TLS one.
    pub fn is_dtls(self) -> bool {
        matches!(self, Version::Dtls10 | Version::Dtls12)
    }

    pub fn name(self) -> &'static str {
        match self {
            Version::Tls10 => "tlsv1",
            Version::Tls11 => "tlsv1.1",
            Version::Tls12 => "tlsv1.2",
            Version::Tls13 => "tlsv1.3",
            Version::Dtls10 => "dtlsv1",
            Version::Dtls12 => "dtlsv1.2",
        }
    }

    pub fn from_name(name: &str) -> Option<Version> {
        Version::AVAILABLE
            .into_iter()
            .chain(Version::AVAILABLE_DTLS)
            .find(|v| v.name() == name)
    }

    /// The version's value on the wire (0x0301 for TLS 1.0 ... 0x0304).
    pub fn wire(self) -> u16 {
        match self {
            Version::Tls10 => 0x0301,
            Version::Tls11 => 0x0302,
            Version::Tls12 => 0x0303,
            Version::Tls13 => 0x0304,
            Version::Dtls10 => 0xfeff,
            Version::Dtls12 => 0xfefd,
        }
    }

    pub fn from_wire(value: u16) -> Option<Version> {
        Version::AVAILABLE
            .into_iter()
            .chain(Version::AVAILABLE_DTLS)
            .find(|v| v.wire() == value)
    }

    pub(crate) fn to_openssl(self) -> SslVersion {
        match self {
            Version::Tls10 => SslVersion::TLS1,
            Version::Tls11 => SslVersion::TLS1_1,
            Version::Tls12 => SslVersion::TLS1_2,
            Version::Tls13 => SslVersion::TLS1_3,
            Version::Dtls10 => SslVersion::DTLS1,
            Version::Dtls12 => SslVersion::DTLS1_2,
        }
    }

    /// Maps OpenSSL's `SSL_get_version` string.
    pub(crate) fn from_openssl_str(s: &str) -> Option<Version> {
        match s {
            "TLSv1" => Some(Version::Tls10),
            "TLSv1.1" => Some(Version::Tls11),
            "TLSv1.2" => Some(Version::Tls12),
            "TLSv1.3" => Some(Version::Tls13),
            "DTLSv1" => Some(Version::Dtls10),
            "DTLSv1.2" => Some(Version::Dtls12),
            _ => None,
        }
    }
}
