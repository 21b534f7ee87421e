//! What the fuzz targets run, shared with the regression tests
//! (`tests/regressions.rs`) that replay saved inputs.
//!
//! - [`engine_server`]: bytes from a "client" fed to a server `Connection`
//!   in memory (TLS 1.2 only, 1.3 only, or both, chosen by the first byte).
//! - [`engine_client`]: a client `Connection` that sent its ClientHello and
//!   then gets the bytes as the "server's" answer.
//! - [`c_config_builder`]: the bytes as a program of C builder calls
//!   (`rssl_config_builder_*`), then build and a connection in memory.
//!
//! None may panic (a panic caught at the C boundary, `RSSL_PANIC`, counts
//! as one), hang or leak; everything the peer or the caller gets wrong must
//! end in an error value.

use once_cell::sync::Lazy;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use rssl::engine::connection::PeerName;
use rssl::engine::{
    CaSource, CertSource, Config, Connection, KeySource, Options, Progress, ReadOutcome, Role,
    Verify, Version,
};

mod builder;
pub use builder::c_config_builder;

/// A CA and a "localhost" server certificate it signed, all DER.
pub struct Pki {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("PKey")
}

fn certificate(
    subject: &str,
    issuer: Option<(&X509, &PKey<Private>)>,
    key: &PKey<Private>,
    serial: u32,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", subject).expect("CN");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = BigNum::from_u32(serial).and_then(|n| n.to_asn1_integer());
    b.set_serial_number(&serial.expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(3650).expect("time"))
        .expect("not after");
    match issuer {
        None => {
            b.set_issuer_name(&name).expect("issuer");
            let ca = BasicConstraints::new().critical().ca().build().expect("bc");
            b.append_extension(ca).expect("bc");
            b.sign(key, MessageDigest::sha256()).expect("sign");
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).expect("issuer");
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .build(&b.x509v3_context(Some(ca), None))
                .expect("san");
            b.append_extension(san).expect("san");
            b.sign(ca_key, MessageDigest::sha256()).expect("sign");
        }
    }
    b.build()
}

/// Made once per process: key generation is slow next to one fuzz input.
pub static PKI: Lazy<Pki> = Lazy::new(|| {
    let ca_key = ec_key();
    let ca = certificate("rssl fuzz CA", None, &ca_key, 1);
    let key = ec_key();
    let cert = certificate("localhost", Some((&ca, &ca_key)), &key, 2);
    Pki {
        ca: ca.to_der().expect("der"),
        cert: cert.to_der().expect("der"),
        key: key.private_key_to_der().expect("der"),
    }
});

/// The version sets a first input byte picks from.
const VERSION_SETS: [&[Version]; 3] = [
    &[Version::Tls12],
    &[Version::Tls13],
    &[Version::Tls12, Version::Tls13],
];

fn configs(role: Role) -> Vec<Config> {
    VERSION_SETS
        .iter()
        .map(|versions| {
            let mut o = Options::new(role);
            o.versions = versions.to_vec();
            match role {
                Role::Server => {
                    o.cert = Some(CertSource::Der(vec![PKI.cert.clone()]));
                    o.key = Some(KeySource::Der("ECPrivateKey".into(), PKI.key.clone()));
                }
                Role::Client => {
                    o.verify = Verify::Peer;
                    o.cacerts = Some(CaSource::Der(vec![PKI.ca.clone()]));
                }
            }
            Config::build(o).expect("fuzz configuration")
        })
        .collect()
}

static SERVERS: Lazy<Vec<Config>> = Lazy::new(|| configs(Role::Server));
static CLIENTS: Lazy<Vec<Config>> = Lazy::new(|| configs(Role::Client));

/// Input layout for the engine targets: byte 0 picks the versions, byte 1
/// the size of the pieces the rest is fed in (1..=256; 0 means all at once).
fn split(data: &[u8]) -> Option<(usize, usize, &[u8])> {
    match data {
        [v, cut, rest @ ..] => {
            let cut = if *cut == 0 {
                rest.len().max(1)
            } else {
                *cut as usize
            };
            Some((*v as usize % VERSION_SETS.len(), cut, rest))
        }
        _ => None,
    }
}

/// One step as the driver takes it: handshake until done, then read all
/// plaintext; output is taken away as if sent. False once the connection
/// failed or closed.
fn step(conn: &mut Connection) -> bool {
    if !conn.is_established() {
        match conn.handshake() {
            Ok(Progress::Done) => {}
            Ok(Progress::Pending) => {
                drain_output(conn);
                return true;
            }
            Err(_) => {
                drain_output(conn);
                return false;
            }
        }
    }
    let mut buf = [0u8; 4096];
    let alive = loop {
        match conn.read(&mut buf) {
            Ok(ReadOutcome::Data(n)) => assert!(n <= buf.len()),
            Ok(ReadOutcome::WouldBlock) => break true,
            Ok(ReadOutcome::Closed) | Err(_) => break false,
        }
    };
    drain_output(conn);
    alive
}

fn drain_output(conn: &mut Connection) {
    let n = conn.output().len();
    conn.consume_output(n);
}

fn feed(conn: &mut Connection, input: &[u8], cut: usize) {
    for piece in input.chunks(cut) {
        conn.receive(piece);
        if !step(conn) {
            return;
        }
    }
    conn.receive_eof();
    step(conn);
}

/// Bytes from a client, fed to a server connection.
pub fn engine_server(data: &[u8]) {
    let Some((versions, cut, input)) = split(data) else {
        return;
    };
    let mut conn =
        Connection::new(&SERVERS[versions], &PeerName::default()).expect("server connection");
    feed(&mut conn, input, cut);
}

/// A client sends its ClientHello; the bytes are the server's answer.
pub fn engine_client(data: &[u8]) {
    let Some((versions, cut, input)) = split(data) else {
        return;
    };
    let peer = PeerName {
        sni: Some("localhost".into()),
        verify_host: Some("localhost".into()),
        session_key: None,
    };
    let mut conn = Connection::new(&CLIENTS[versions], &peer).expect("client connection");
    assert!(step(&mut conn), "a fresh client must send its ClientHello");
    feed(&mut conn, input, cut);
}
