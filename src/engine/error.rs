//! Engine errors, shaped so each front end can give what OTP's `ssl` gives.

use super::alert::Alert;
use super::options::Role;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The peer closed the connection (close_notify or end of stream).
    Closed,
    /// A fatal alert ended the connection, either sent by us or received.
    Alert {
        alert: Alert,
        /// Our role; the text names who raised the alert.
        role: Role,
        /// True when we generated the alert, false when the peer sent it.
        local: bool,
        /// OpenSSL's reason, for humans (e.g. the verify error).
        detail: String,
        /// A DTLS connection's (the text says DTLS, as OTP's).
        datagram: bool,
    },
    /// A bad option value: (option name, explanation).
    Option(String, String),
    /// A certificate, key, CA or DH source could not be used.
    File {
        option: String,
        /// Empty when the data was given in memory.
        path: String,
        /// A POSIX name (`enoent`) or what was wrong with the content.
        reason: String,
    },
    /// Anything else OpenSSL reported, without an alert.
    Internal(String),
}

impl Error {
    /// The text OTP puts in `{tls_alert, {Name, Text}}`.
    pub fn alert_text(&self) -> Option<String> {
        match self {
            Error::Alert {
                alert,
                role,
                local,
                detail,
                datagram,
            } => {
                let me = role.name();
                let protocol = if *datagram { "DTLS" } else { "TLS" };
                let raiser = if *local { role } else { &role.peer() };
                let verb = if *local { "generated" } else { "received" };
                let mut text = format!(
                    "{protocol} {me}: In state {} {verb} {} ALERT: Fatal - {}",
                    if *local { "connection" } else { "handshake" },
                    raiser.name().to_uppercase(),
                    alert.description()
                );
                if !detail.is_empty() {
                    text.push_str(" - ");
                    text.push_str(detail);
                }
                text.push('\n');
                Some(text)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => write!(f, "connection closed"),
            Error::Alert { .. } => {
                write!(f, "{}", self.alert_text().unwrap_or_default().trim_end())
            }
            Error::Option(name, why) => write!(f, "bad option {name}: {why}"),
            Error::File {
                option,
                path,
                reason,
            } => write!(f, "cannot use {option} {path:?}: {reason}"),
            Error::Internal(why) => write!(f, "TLS error: {why}"),
        }
    }
}

impl std::error::Error for Error {}
