//! TLS alerts with the names and texts OTP's `ssl` uses for them.

/// A TLS alert description code (RFC 8446 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alert(pub u8);

/// (code, OTP atom, OTP description text)
const ALERTS: &[(u8, &str, &str)] = &[
    (0, "close_notify", "Close Notify"),
    (10, "unexpected_message", "Unexpected Message"),
    (20, "bad_record_mac", "Bad Record MAC"),
    (21, "decryption_failed_RESERVED", "Decryption Failed"),
    (22, "record_overflow", "Record Overflow"),
    (30, "decompression_failure", "Decompression Failure"),
    (40, "handshake_failure", "Handshake Failure"),
    (41, "no_certificate_RESERVED", "No Certificate Reserved"),
    (42, "bad_certificate", "Bad Certificate"),
    (43, "unsupported_certificate", "Unsupported Certificate"),
    (44, "certificate_revoked", "Certificate Revoked"),
    (45, "certificate_expired", "Certificate Expired"),
    (46, "certificate_unknown", "Certificate Unknown"),
    (47, "illegal_parameter", "Illegal Parameter"),
    (48, "unknown_ca", "Unknown CA"),
    (49, "access_denied", "Access Denied"),
    (50, "decode_error", "Decode Error"),
    (51, "decrypt_error", "Decrypt Error"),
    (60, "export_restriction", "Export Restriction"),
    (70, "protocol_version", "Protocol Version"),
    (71, "insufficient_security", "Insufficient Security"),
    (80, "internal_error", "Internal Error"),
    (86, "inappropriate_fallback", "Inappropriate Fallback"),
    (90, "user_canceled", "User Canceled"),
    (100, "no_renegotiation", "No Renegotiation"),
    (109, "missing_extension", "Missing extension"),
    (110, "unsupported_extension", "Unsupported Extension"),
    (111, "certificate_unobtainable", "Certificate Unobtainable"),
    (112, "unrecognized_name", "Unrecognised Name"),
    (
        113,
        "bad_certificate_status_response",
        "Bad Certificate Status Response",
    ),
    (
        114,
        "bad_certificate_hash_value",
        "Bad Certificate Hash Value",
    ),
    (115, "unknown_psk_identity", "Unknown Psk Identity"),
    (116, "certificate_required", "Certificate required"),
    (120, "no_application_protocol", "No application protocol"),
];

impl Alert {
    pub const CLOSE_NOTIFY: Alert = Alert(0);
    pub const UNEXPECTED_MESSAGE: Alert = Alert(10);
    pub const HANDSHAKE_FAILURE: Alert = Alert(40);
    pub const PROTOCOL_VERSION: Alert = Alert(70);
    pub const INTERNAL_ERROR: Alert = Alert(80);

    fn entry(self) -> Option<&'static (u8, &'static str, &'static str)> {
        ALERTS.iter().find(|(code, _, _)| *code == self.0)
    }

    /// The atom OTP uses for this alert, e.g. `unknown_ca`.
    pub fn name(self) -> &'static str {
        self.entry().map_or("illegal_alert", |e| e.1)
    }

    /// The human text OTP prints for this alert, e.g. `Unknown CA`.
    pub fn description(self) -> &'static str {
        self.entry().map_or("Illegal Alert", |e| e.2)
    }

    pub fn from_name(name: &str) -> Option<Alert> {
        ALERTS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(code, _, _)| Alert(*code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Alert(48).name(), "unknown_ca");
        assert_eq!(Alert(48).description(), "Unknown CA");
        assert_eq!(Alert::from_name("unknown_ca"), Some(Alert(48)));
        assert_eq!(Alert(255).name(), "illegal_alert");
    }
}
