//! Protocol versions by their OTP names.

use openssl::ssl::SslVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
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

    pub fn name(self) -> &'static str {
        match self {
            Version::Tls10 => "tlsv1",
            Version::Tls11 => "tlsv1.1",
            Version::Tls12 => "tlsv1.2",
            Version::Tls13 => "tlsv1.3",
        }
    }

    pub fn from_name(name: &str) -> Option<Version> {
        Version::AVAILABLE.into_iter().find(|v| v.name() == name)
    }

    /// The version's value on the wire (0x0301 for TLS 1.0 ... 0x0304).
    pub fn wire(self) -> u16 {
        match self {
            Version::Tls10 => 0x0301,
            Version::Tls11 => 0x0302,
            Version::Tls12 => 0x0303,
            Version::Tls13 => 0x0304,
        }
    }

    pub fn from_wire(value: u16) -> Option<Version> {
        Version::AVAILABLE.into_iter().find(|v| v.wire() == value)
    }

    pub(crate) fn to_openssl(self) -> SslVersion {
        match self {
            Version::Tls10 => SslVersion::TLS1,
            Version::Tls11 => SslVersion::TLS1_1,
            Version::Tls12 => SslVersion::TLS1_2,
            Version::Tls13 => SslVersion::TLS1_3,
        }
    }

    /// Maps OpenSSL's `SSL_get_version` string.
    pub(crate) fn from_openssl_str(s: &str) -> Option<Version> {
        match s {
            "TLSv1" => Some(Version::Tls10),
            "TLSv1.1" => Some(Version::Tls11),
            "TLSv1.2" => Some(Version::Tls12),
            "TLSv1.3" => Some(Version::Tls13),
            _ => None,
        }
    }
}
