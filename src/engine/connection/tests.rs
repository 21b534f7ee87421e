//! In-memory handshakes, and the test PKI other engine tests share.

use super::*;
use crate::engine::options::{CaSource, CertSource, KeySource, Options, Verify};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

/// A throwaway CA and a server certificate for "localhost" signed by it (DER).
pub(crate) struct TestPki {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

fn ec_key() -> PKey<openssl::pkey::Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_text("CN", cn).unwrap();
    b.build()
}

pub(crate) fn test_pki() -> TestPki {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ca_name = format!(
        "test CA {}",
        SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let ca_key = ec_key();
    let mut ca = X509::builder().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    ca.set_subject_name(&name(&ca_name)).unwrap();
    ca.set_issuer_name(&name(&ca_name)).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    ca.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    ca.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();

    let key = ec_key();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    cert.set_subject_name(&name("localhost")).unwrap();
    cert.set_issuer_name(ca.subject_name()).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .build(&cert.x509v3_context(Some(&ca), None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&ca_key, MessageDigest::sha256()).unwrap();
    TestPki {
        ca: ca.to_der().unwrap(),
        cert: cert.build().to_der().unwrap(),
        key: key.private_key_to_der().unwrap(),
    }
}

pub(crate) fn server_options(pki: &TestPki) -> Options {
    let mut o = Options::new(Role::Server);
    o.cert = Some(CertSource::Der(vec![pki.cert.clone()]));
    o.key = Some(KeySource::Der("ECPrivateKey".into(), pki.key.clone()));
    o
}

pub(crate) fn client_options(pki: &TestPki) -> Options {
    let mut o = Options::new(Role::Client);
    o.verify = Verify::Peer;
    o.cacerts = Some(CaSource::Der(vec![pki.ca.clone()]));
    o
}

pub(crate) fn shuttle(from: &mut Connection, to: &mut Connection) {
    let out = from.output().to_vec();
    from.consume_output(out.len());
    to.receive(&out);
}

/// Runs both handshakes in memory until neither makes progress.
pub(crate) fn handshake_pair(
    client: &mut Connection,
    server: &mut Connection,
) -> (Result<Progress, Error>, Result<Progress, Error>) {
    let mut c = client.handshake();
    let mut s = Ok(Progress::Pending);
    for _ in 0..10 {
        shuttle(client, server);
        s = server.handshake();
        shuttle(server, client);
        c = client.handshake();
        if c.is_err() || s.is_err() || (c == Ok(Progress::Done) && s == Ok(Progress::Done)) {
            shuttle(client, server);
            if c == Ok(Progress::Done) && s == Ok(Progress::Pending) {
                s = server.handshake();
            }
            if c.is_err() {
                s = server.handshake();
            }
            break;
        }
    }
    (c, s)
}

pub(crate) fn pair(
    client_opts: Options,
    server_opts: Options,
    host: &str,
) -> (Connection, Connection) {
    let client_cfg = Config::build(client_opts).unwrap();
    let server_cfg = Config::build(server_opts).unwrap();
    let peer = PeerName {
        sni: Some(host.into()),
        verify_host: Some(host.into()),
        session_key: None,
    };
    (
        Connection::new(&client_cfg, &peer).unwrap(),
        Connection::new(&server_cfg, &PeerName::default()).unwrap(),
    )
}

/// A client and a server that completed their handshake in memory.
pub(crate) fn established_pair(pki: &TestPki) -> (Connection, Connection) {
    let (mut client, mut server) = pair(client_options(pki), server_options(pki), "localhost");
    let (c, s) = handshake_pair(&mut client, &mut server);
    assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
    (client, server)
}

#[test]
fn tls13_client_forgets_handshake_secret_once_established() {
    // A verifying TLS 1.3 client records its handshake traffic secret
    // (for a deferred alert); an established connection keeps none.
    let pki = test_pki();
    let mut co = client_options(&pki);
    co.versions = vec![Version::Tls13];
    let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
    let (c, s) = handshake_pair(&mut client, &mut server);
    assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
    assert!(!super::super::tls13_alert::holds_secret(client.ssl()));
}

#[test]
fn handshake_and_data_both_versions() {
    let pki = test_pki();
    for version in [Version::Tls12, Version::Tls13] {
        let mut co = client_options(&pki);
        co.versions = vec![version];
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!(c, Ok(Progress::Done));
        assert_eq!(s, Ok(Progress::Done));
        assert_eq!(client.version(), Some(version));
        assert_eq!(server.sni_hostname().as_deref(), Some("localhost"));

        client.write(b"ping").unwrap();
        shuttle(&mut client, &mut server);
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(4));
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::WouldBlock);

        server.close();
        shuttle(&mut server, &mut client);
        assert_eq!(client.read(&mut buf).unwrap(), ReadOutcome::Closed);
    }
}

#[test]
fn unknown_ca_is_an_alert_on_both_sides() {
    let pki = test_pki();
    let other = test_pki();
    let (mut client, mut server) = pair(client_options(&other), server_options(&pki), "localhost");
    let (c, s) = handshake_pair(&mut client, &mut server);
    match c {
        Err(Error::Alert { alert, local, .. }) => {
            assert_eq!(alert.name(), "unknown_ca");
            assert!(local);
        }
        other => panic!("client: {other:?}"),
    }
    match s {
        Err(Error::Alert { alert, local, .. }) => {
            assert_eq!(alert.name(), "unknown_ca");
            assert!(!local);
        }
        other => panic!("server: {other:?}"),
    }
}

#[test]
fn tls13_client_alert_after_server_hello_is_protected() {
    let pki = test_pki();
    let other = test_pki();
    let mut co = client_options(&other);
    co.versions = vec![Version::Tls13];
    let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
    client.handshake().unwrap();
    shuttle(&mut client, &mut server);
    server.handshake().unwrap();
    shuttle(&mut server, &mut client);
    assert!(client.handshake().is_err());
    let out = client.output().to_vec();
    // Only protected records (type 23) or a middlebox-compatibility
    // change_cipher_spec (type 20) may follow the ServerHello.
    let mut i = 0;
    while i + 5 <= out.len() {
        assert!(
            out[i] == 23 || out[i] == 20,
            "record type {} in {:?}",
            out[i],
            out
        );
        i += 5 + u16::from_be_bytes([out[i + 3], out[i + 4]]) as usize;
    }
    assert!(i > 0 && out[..i].contains(&23));
    // And the server reads it as the alert.
    shuttle(&mut client, &mut server);
    match server.handshake() {
        Err(Error::Alert { alert, local, .. }) => {
            assert_eq!((alert.name(), local), ("unknown_ca", false));
        }
        other => panic!("server: {other:?}"),
    }
}

#[test]
fn tls12_renegotiation_completes() {
    let pki = test_pki();
    let mut co = client_options(&pki);
    co.versions = vec![Version::Tls12];
    let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
    let (c, s) = handshake_pair(&mut client, &mut server);
    assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
    client.renegotiate().unwrap();
    assert!(client.renegotiation_pending());
    let mut buf = [0u8; 64];
    for _ in 0..6 {
        shuttle(&mut client, &mut server);
        let _ = server.read(&mut buf).unwrap();
        shuttle(&mut server, &mut client);
        let _ = client.read(&mut buf).unwrap();
    }
    assert!(!client.renegotiation_pending());
    client.write(b"after").unwrap();
    shuttle(&mut client, &mut server);
    assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(5));
}

#[test]
fn http_request_gets_unexpected_message() {
    let pki = test_pki();
    let config = Config::build(server_options(&pki)).unwrap();
    let mut server = Connection::new(&config, &PeerName::default()).unwrap();
    server.receive(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    match server.handshake() {
        Err(Error::Alert {
            alert, local: true, ..
        }) => assert_eq!(alert, Alert::UNEXPECTED_MESSAGE),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.output(), [21, 3, 3, 0, 2, 2, 10]);
}

#[test]
fn wrong_host_name_fails_verification() {
    let pki = test_pki();
    let (mut client, mut server) = pair(client_options(&pki), server_options(&pki), "example.org");
    let (c, _) = handshake_pair(&mut client, &mut server);
    assert!(matches!(c, Err(Error::Alert { local: true, .. })), "{c:?}");
}

#[test]
fn idle_connections_release_their_buffers() {
    // What an idle connection keeps is most of rssl's memory per
    // connection: after the handshake and some data both ways, released
    // buffers hold nothing.
    for version in [Version::Tls12, Version::Tls13] {
        let pki = test_pki();
        let mut co = client_options(&pki);
        co.versions = vec![version];
        let (mut client, mut server) = pair(co, server_options(&pki), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));
        client.write(&vec![7u8; 100_000]).unwrap();
        shuttle(&mut client, &mut server);
        let mut buf = vec![0u8; 65536];
        while let ReadOutcome::Data(_) = server.read(&mut buf).unwrap() {}
        server.write(b"pong").unwrap();
        shuttle(&mut server, &mut client);
        assert_eq!(client.read(&mut buf).unwrap(), ReadOutcome::Data(4));
        assert!(client.retained_capacity() > 0 || server.retained_capacity() > 0);
        for conn in [&mut client, &mut server] {
            conn.release_buffers();
            assert_eq!(conn.retained_capacity(), 0, "{version:?}");
        }
    }
}

#[test]
fn end_of_stream_reads_as_closed() {
    let (_client, mut server) = established_pair(&test_pki());
    server.receive_eof();
    let mut buf = [0u8; 16];
    assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Closed);
}

#[test]
fn large_write_arrives_intact() {
    let (mut client, mut server) = established_pair(&test_pki());
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    client.write(&data).unwrap();
    shuttle(&mut client, &mut server);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let ReadOutcome::Data(n) = server.read(&mut buf).unwrap() {
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
}
