//! OTP's `keep_secrets` and the security items of
//! `connection_information/2` (client_random, server_random, master_secret
//! and, kept, the TLS 1.3 traffic secrets), from OpenSSL's key log.
//!
//! A context has one key log callback; it serves `tls13_alert` (the client
//! handshake secret a deferred alert is protected with) and, on
//! connections that keep their secrets, records each secret by its label.

use once_cell::sync::Lazy;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};
use parking_lot::Mutex;

/// The key log labels kept, with OTP's names for them.
const KEPT: [(&str, &str); 5] = [
    (
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "client_handshake_traffic_secret",
    ),
    (
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "server_handshake_traffic_secret",
    ),
    ("CLIENT_TRAFFIC_SECRET_0", "client_traffic_secret_0"),
    ("SERVER_TRAFFIC_SECRET_0", "server_traffic_secret_0"),
    ("CLIENT_EARLY_TRAFFIC_SECRET", "client_early_data_secret"),
];

type Kept = Mutex<Vec<(&'static str, Vec<u8>)>>;

static SECRETS: Lazy<openssl::ex_data::Index<Ssl, Kept>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

/// Installs the key log callback a context needs, if any.
pub(crate) fn install(b: &mut SslContextBuilder, tls13_alert: bool, keep: bool) {
    if !tls13_alert && !keep {
        return;
    }
    b.set_keylog_callback(move |ssl, line| {
        super::connection::guard((), || {
            if tls13_alert {
                super::tls13_alert::on_keylog(ssl, line);
            }
            if keep {
                record(ssl, line);
            }
        })
    });
}

/// Gives a connection that keeps its secrets its slot.
pub(crate) fn prepare(ssl: &mut Ssl) {
    ssl.set_ex_data(*SECRETS, Mutex::new(Vec::new()));
}

/// "<LABEL> <client random hex> <secret hex>"
fn record(ssl: &SslRef, line: &str) {
    let mut words = line.split(' ');
    let (Some(label), Some(_random), Some(hex)) = (words.next(), words.next(), words.next()) else {
        return;
    };
    let Some(&(_, name)) = KEPT.iter().find(|(l, _)| *l == label) else {
        return;
    };
    if let (Some(slot), Some(secret)) = (ssl.ex_data(*SECRETS), super::tls13_alert::from_hex(hex)) {
        let mut kept = slot.lock();
        kept.retain(|(n, _)| *n != name);
        kept.push((name, secret));
    }
}

/// A connection's security items, OTP's names and order: the randoms, the
/// TLS 1.2 master secret, then the TLS 1.3 secrets it kept.
pub(crate) fn items(ssl: &SslRef) -> Vec<(&'static str, Vec<u8>)> {
    let mut items = Vec::new();
    let mut random = [0u8; 32];
    let n = ssl.client_random(&mut random);
    items.push(("client_random", random[..n].to_vec()));
    let n = ssl.server_random(&mut random);
    items.push(("server_random", random[..n].to_vec()));
    let tls13 = ssl.version2() == Some(openssl::ssl::SslVersion::TLS1_3);
    if !tls13 {
        if let Some(session) = ssl.session() {
            let mut key = vec![0u8; session.master_key_len()];
            let n = session.master_key(&mut key);
            key.truncate(n);
            items.push(("master_secret", key));
        }
    }
    if let Some(slot) = ssl.ex_data(*SECRETS) {
        let kept = slot.lock();
        // OTP lists the traffic secrets of its own direction first.
        let order: [&str; 5] = if ssl.is_server() {
            [
                "server_traffic_secret_0",
                "client_traffic_secret_0",
                "client_early_data_secret",
                "client_handshake_traffic_secret",
                "server_handshake_traffic_secret",
            ]
        } else {
            [
                "client_traffic_secret_0",
                "server_traffic_secret_0",
                "client_early_data_secret",
                "client_handshake_traffic_secret",
                "server_handshake_traffic_secret",
            ]
        };
        for name in order {
            if let Some((n, secret)) = kept.iter().find(|(n, _)| *n == name) {
                items.push((n, secret.clone()));
            }
        }
    }
    items
}
