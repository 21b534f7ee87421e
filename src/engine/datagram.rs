//! DTLS specifics of a connection: the datagram size and the handshake's
//! retransmission timer, which the transport drives (OpenSSL over memory
//! BIOs cannot wait by itself).

use super::connection::{guard, Connection};
use super::error::Error;
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_long, c_void};
use once_cell::sync::Lazy;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};
use std::time::Duration;

/// The largest datagram we send (UDP payload): a 1500-byte Ethernet link
/// less the IPv6 and UDP headers (48) leaves 1452; 1400 leaves room for a
/// tunnel's overhead. OpenSSL would ask the socket for the path MTU, but it
/// only sees a memory BIO, so the size is set here.
pub const MTU: u32 = 1400;

const DTLS_CTRL_GET_TIMEOUT: c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: c_int = 74;

/// Sets up a new DTLS `SSL` (datagram size).
pub(crate) fn prepare(ssl: &mut SslRef) -> Result<(), openssl::error::ErrorStack> {
    ssl.set_mtu(MTU)
}

impl Connection {
    /// How long until the retransmission timer of a DTLS handshake runs
    /// out, if it is running (zero when it already has).
    pub fn retransmit_timeout(&self) -> Option<Duration> {
        if !self.is_datagram() {
            return None;
        }
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: DTLSv1_get_timeout: a live SSL and a live timeval it fills.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                self.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                (&mut tv as *mut libc::timeval).cast::<c_void>(),
            )
        };
        (running == 1).then(|| {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.max(0) as u64)
        })
    }

    /// The retransmission timer ran out: OpenSSL sends its last flight
    /// again (into the output) with a doubled timeout. Fails once OpenSSL
    /// gives up (after 12 tries).
    pub fn handle_retransmit_timeout(&mut self) -> Result<(), Error> {
        if !self.is_datagram() {
            return Ok(());
        }
        // SAFETY: DTLSv1_handle_timeout: a live SSL, no argument.
        let r: c_long = unsafe {
            openssl_sys::SSL_ctrl(
                self.ssl_mut().as_ptr(),
                DTLS_CTRL_HANDLE_TIMEOUT,
                0,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

// --- Cookies (HelloVerifyRequest, RFC 6347 4.2.1) ---

/// What a server's cookie callbacks check a ClientHello's cookie against.
#[derive(Clone)]
pub enum CookieKey {
    /// An HMAC-SHA256 of the peer's address under the listener's secret:
    /// a peer gets one only at its address, so a spoofed address never
    /// gets past the HelloVerifyRequest.
    Hmac { secret: Vec<u8>, peer: Vec<u8> },
    /// The ClientHello's cookie was checked already (by the listener, with
    /// `Hmac`): any cookie passes.
    Checked,
}

/// What `Connection::listen` found in the datagram given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    /// A ClientHello with a valid cookie: the connection goes on with it.
    Verified,
    /// A ClientHello without a valid cookie: the output holds the
    /// HelloVerifyRequest to send back (and nothing is kept).
    VerifyRequest,
    /// Not a ClientHello: nothing to answer.
    Ignored,
}

static COOKIE_KEY: Lazy<openssl::ex_data::Index<Ssl, CookieKey>> =
    Lazy::new(|| Ssl::new_ex_index().expect("SSL ex_data index"));

fn cookie_for(ssl: &SslRef) -> Option<Vec<u8>> {
    let CookieKey::Hmac { secret, peer } = ssl.ex_data(*COOKIE_KEY)? else {
        return None;
    };
    let key = PKey::hmac(secret).ok()?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key).ok()?;
    signer.update(peer).ok()?;
    signer.sign_to_vec().ok()
}

/// Installs the cookie callbacks on a DTLS server context. They act only
/// for a connection given a key by `Connection::listen`.
pub(crate) fn install_cookies(b: &mut SslContextBuilder) {
    b.set_cookie_generate_cb(|ssl, out| {
        guard(Err(ErrorStack::get()), || match cookie_for(ssl) {
            Some(cookie) if cookie.len() <= out.len() => {
                out[..cookie.len()].copy_from_slice(&cookie);
                Ok(cookie.len())
            }
            _ => Err(ErrorStack::get()),
        })
    });
    b.set_cookie_verify_cb(|ssl, cookie| {
        guard(false, || match ssl.ex_data(*COOKIE_KEY) {
            Some(CookieKey::Checked) => true,
            Some(CookieKey::Hmac { .. }) => cookie_for(ssl)
                .is_some_and(|c| c.len() == cookie.len() && openssl::memcmp::eq(&c, cookie)),
            None => false,
        })
    });
}

/// OpenSSL's opaque `BIO_ADDR`.
#[repr(C)]
struct BioAddr {
    _opaque: [u8; 0],
}

extern "C" {
    fn DTLSv1_listen(s: *mut openssl_sys::SSL, client: *mut BioAddr) -> c_int;
    fn BIO_ADDR_new() -> *mut BioAddr;
    fn BIO_ADDR_free(a: *mut BioAddr);
}

impl Connection {
    /// A DTLS server before its handshake, with the first datagram of a
    /// peer received: checks it is a ClientHello with the cookie `key`
    /// expects (OpenSSL's DTLSv1_listen, stateless). Once `Verified`, the
    /// handshake goes on from that ClientHello.
    pub fn listen(&mut self, key: CookieKey) -> Result<Hello, Error> {
        if !self.is_datagram() || self.role() != super::options::Role::Server {
            return Err(Error::Internal("listen: not a DTLS server".into()));
        }
        self.ssl_mut().set_ex_data(*COOKIE_KEY, key);
        // SAFETY: a BIO_ADDR of our own, freed below; OpenSSL fills it
        // (or clears it: a memory BIO has no peer address).
        let addr = unsafe { BIO_ADDR_new() };
        if addr.is_null() {
            return Err(Error::Internal("BIO_ADDR_new".into()));
        }
        let before = self.output().len();
        // SAFETY: a live SSL owned by this connection and a live BIO_ADDR.
        let r = unsafe { DTLSv1_listen(self.ssl_mut().as_ptr(), addr) };
        // SAFETY: allocated above, not used after.
        unsafe { BIO_ADDR_free(addr) };
        match r {
            1 => Ok(Hello::Verified),
            0 if self.output().len() > before => Ok(Hello::VerifyRequest),
            _ => {
                // A datagram DTLSv1_listen refused (garbage, a fatal
                // error): nothing is sent back, nothing stays queued.
                let _ = ErrorStack::get();
                Ok(Hello::Ignored)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::connection::tests::{client_options, server_options, test_pki};
    use crate::engine::connection::PeerName;
    use crate::engine::{Config, Progress, ReadOutcome, Version};

    /// Moves the datagrams `from` wrote to `to`, one by one.
    fn datagrams(from: &mut Connection, to: &mut Connection) -> usize {
        let mut n = 0;
        while let Some(d) = from.next_datagram().map(<[u8]>::to_vec) {
            from.consume_output(d.len());
            to.receive(&d);
            n += 1;
        }
        n
    }

    pub(super) fn configs() -> (Config, Config) {
        let pki = test_pki();
        let mut c = client_options(&pki);
        let mut s = server_options(&pki);
        c.versions = vec![Version::Dtls12];
        s.versions = vec![Version::Dtls12];
        (Config::build(c).unwrap(), Config::build(s).unwrap())
    }

    fn hmac(peer: &str) -> CookieKey {
        CookieKey::Hmac {
            secret: b"listener secret".to_vec(),
            peer: peer.as_bytes().to_vec(),
        }
    }

    #[test]
    fn cookie_exchange_then_handshake_and_records() {
        let (client_cfg, server_cfg) = configs();
        let peer = PeerName {
            verify_host: Some("localhost".into()),
            ..PeerName::default()
        };
        let mut client = Connection::new(&client_cfg, &peer).unwrap();
        assert_eq!(client.handshake().unwrap(), Progress::Pending);
        assert!(client.retransmit_timeout().is_some());

        // No cookie: a HelloVerifyRequest, and the listener keeps nothing.
        let mut first = Connection::new(&server_cfg, &PeerName::default()).unwrap();
        assert_eq!(datagrams(&mut client, &mut first), 1);
        assert_eq!(
            first.listen(hmac("10.0.0.1:5000")).unwrap(),
            Hello::VerifyRequest
        );
        assert_eq!(datagrams(&mut first, &mut client), 1);
        assert_eq!(client.handshake().unwrap(), Progress::Pending);
        let hello = client.next_datagram().unwrap().to_vec();
        client.consume_output(hello.len());

        // The cookie made for one address does not pass from another.
        let mut spoofed = Connection::new(&server_cfg, &PeerName::default()).unwrap();
        spoofed.receive(&hello);
        assert_eq!(
            spoofed.listen(hmac("10.0.0.2:5000")).unwrap(),
            Hello::VerifyRequest
        );

        // From the right address it does; the listener's check and the
        // connection's own (Checked) agree.
        let mut check = Connection::new(&server_cfg, &PeerName::default()).unwrap();
        check.receive(&hello);
        assert_eq!(
            check.listen(hmac("10.0.0.1:5000")).unwrap(),
            Hello::Verified
        );
        let mut server = Connection::new(&server_cfg, &PeerName::default()).unwrap();
        server.receive(&hello);
        assert_eq!(server.listen(CookieKey::Checked).unwrap(), Hello::Verified);

        // Both flights are out: both timers run (for retransmission).
        assert_eq!(server.handshake().unwrap(), Progress::Pending);
        assert!(server.retransmit_timeout().is_some());
        assert!(client.retransmit_timeout().is_some());
        let mut done = (false, false);
        for _ in 0..10 {
            done.1 = server.handshake().unwrap() == Progress::Done;
            datagrams(&mut server, &mut client);
            done.0 = client.handshake().unwrap() == Progress::Done;
            datagrams(&mut client, &mut server);
            if done == (true, true) {
                break;
            }
        }
        assert_eq!(done, (true, true));
        assert_eq!(client.version(), Some(Version::Dtls12));

        // Each write is one record in one datagram.
        client.write(b"one").unwrap();
        client.write(b"two").unwrap();
        assert_eq!(datagrams(&mut client, &mut server), 2);
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(3));
        assert_eq!(&buf[..3], b"one");
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(3));
        assert_eq!(&buf[..3], b"two");
    }

    #[test]
    fn garbage_is_ignored_by_listen() {
        let (_, server_cfg) = configs();
        let mut server = Connection::new(&server_cfg, &PeerName::default()).unwrap();
        server.receive(b"\x16\xfe\xfd garbage that is no ClientHello");
        assert_eq!(
            server.listen(hmac("10.0.0.1:5000")).unwrap(),
            Hello::Ignored
        );
        assert!(server.output().is_empty());
    }
}

#[cfg(test)]
mod retransmit_tests {
    use super::tests::configs;
    use super::*;
    use crate::engine::connection::PeerName;
    use crate::engine::{Progress, ReadOutcome};

    extern "C" {
        fn DTLS_set_timer_cb(
            s: *mut openssl_sys::SSL,
            cb: Option<unsafe extern "C" fn(*mut openssl_sys::SSL, u32) -> u32>,
        );
    }

    /// A 50 ms retransmission timeout, so that a test waits that, not 1 s
    /// (shorter, and a slow debug build's own steps outlast it).
    unsafe extern "C" fn short(_: *mut openssl_sys::SSL, _: u32) -> u32 {
        50_000
    }

    fn fast(c: &mut Connection) {
        // SAFETY: a live SSL; the callback matches DTLS_timer_cb.
        unsafe { DTLS_set_timer_cb(c.ssl_mut().as_ptr(), Some(short)) };
    }

    fn take(c: &mut Connection) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(d) = c.next_datagram().map(<[u8]>::to_vec) {
            c.consume_output(d.len());
            out.push(d);
        }
        out
    }

    #[test]
    fn lost_flights_are_sent_again_whole() {
        let (mut client, mut server) = pair();
        let valid = |ds: &[Vec<u8>]| ds.iter().all(|d| matches!(d[0], 20..=23));
        let mut done = (false, false);
        let mut lost = 0;
        for round in 0..40 {
            done.0 = client.handshake().unwrap() == Progress::Done;
            let to_server = take(&mut client);
            assert!(valid(&to_server), "round {round}: {to_server:?}");
            // Every other round of each side is lost.
            if round % 2 == 0 {
                to_server.iter().for_each(|d| server.receive(d));
            } else {
                lost += to_server.len();
            }
            done.1 = server.handshake().unwrap() == Progress::Done;
            let to_client = take(&mut server);
            assert!(valid(&to_client), "round {round}: {to_client:?}");
            if round % 4 != 1 {
                to_client.iter().for_each(|d| client.receive(d));
            } else {
                lost += to_client.len();
            }
            if done == (true, true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(60));
            client.handle_retransmit_timeout().unwrap();
            server.handle_retransmit_timeout().unwrap();
        }
        assert_eq!(done, (true, true));
        assert!(lost > 0);
    }

    /// A DTLS 1.2 client (checking the name) and server, with short
    /// retransmission timers.
    fn pair() -> (Connection, Connection) {
        let (cc, sc) = configs();
        let peer = PeerName {
            verify_host: Some("localhost".into()),
            ..PeerName::default()
        };
        let mut client = Connection::new(&cc, &peer).unwrap();
        let mut server = Connection::new(&sc, &PeerName::default()).unwrap();
        fast(&mut client);
        fast(&mut server);
        (client, server)
    }

    /// Whether a datagram holds a ChangeCipherSpec record (a DTLS record
    /// header: type, version, epoch, sequence number, length).
    fn has_change_cipher_spec(mut d: &[u8]) -> bool {
        while d.len() >= 13 {
            if d[0] == 20 {
                return true;
            }
            let len = usize::from(u16::from_be_bytes([d[11], d[12]]));
            d = &d[(13 + len).min(d.len())..];
        }
        false
    }

    fn deliver(ds: &[Vec<u8>], to: &mut Connection) {
        ds.iter().for_each(|d| to.receive(d));
    }

    /// The server's last flight (ChangeCipherSpec, Finished) lost: the
    /// client sends its own again at its timeout, and the server, done
    /// already, answers that with its last flight again (RFC 6347 4.2.4).
    #[test]
    fn a_lost_last_flight_comes_again_when_the_peer_repeats_its_own() {
        let (mut client, mut server) = pair();
        assert_eq!(client.handshake().unwrap(), Progress::Pending);
        deliver(&take(&mut client), &mut server);
        assert_eq!(server.handshake().unwrap(), Progress::Pending);
        deliver(&take(&mut server), &mut client);
        assert_eq!(client.handshake().unwrap(), Progress::Pending);
        let last = take(&mut client);
        deliver(&last, &mut server);
        assert_eq!(server.handshake().unwrap(), Progress::Done);
        let lost = take(&mut server);
        assert!(lost.iter().any(|d| has_change_cipher_spec(d)), "{lost:?}");
        // Nothing comes: the client's timer runs out, its flight goes again.
        assert_eq!(client.handshake().unwrap(), Progress::Pending);
        std::thread::sleep(std::time::Duration::from_millis(60));
        client.handle_retransmit_timeout().unwrap();
        let again = take(&mut client);
        assert!(!again.is_empty());
        deliver(&again, &mut server);
        // The established server reads it and sends its last flight again.
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::WouldBlock);
        let resent = take(&mut server);
        assert_eq!(
            resent.iter().map(Vec::len).sum::<usize>(),
            lost.iter().map(Vec::len).sum::<usize>()
        );
        deliver(&resent, &mut client);
        assert_eq!(client.handshake().unwrap(), Progress::Done);
        client.write(b"after").unwrap();
        deliver(&take(&mut client), &mut server);
        assert_eq!(server.read(&mut buf).unwrap(), ReadOutcome::Data(5));
    }

    /// After the handshake (RFC 6347 4.1.2.6, 4.1.2.7): records out of
    /// order are read, each once; copies, records older than the replay
    /// window, stale handshake datagrams and datagrams that are no valid
    /// record are dropped without an error, and the connection goes on.
    #[test]
    fn records_reordered_doubled_replayed_or_forged_after_the_handshake() {
        let (mut client, mut server) = pair();
        let mut first_hello = None;
        for _ in 0..10 {
            let _ = client.handshake().unwrap();
            let to_server = take(&mut client);
            first_hello.get_or_insert_with(|| to_server[0].clone());
            deliver(&to_server, &mut server);
            let _ = server.handshake().unwrap();
            deliver(&take(&mut server), &mut client);
        }
        assert!(client.is_established() && server.is_established());
        let records = |c: &mut Connection, msgs: &[&[u8]]| -> Vec<Vec<u8>> {
            msgs.iter().for_each(|m| c.write(m).unwrap());
            take(c)
        };
        let read_all = |c: &mut Connection| {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while let ReadOutcome::Data(n) = c.read(&mut buf).unwrap() {
                got.push(buf[..n].to_vec());
            }
            got
        };
        let sent = records(&mut client, &[b"a", b"b", b"c", b"d"]);
        // Reordered and doubled: each once, in the order they came.
        let (a, b, c, d) = (&sent[0], &sent[1], &sent[2], &sent[3]);
        deliver(&[c.clone(), a.clone(), c.clone(), d.clone()], &mut server);
        deliver(&[a.clone(), b.clone(), d.clone()], &mut server);
        assert_eq!(read_all(&mut server), [b"c", b"a", b"d", b"b"]);
        // A forged copy of the next record (a bad tag) does not keep the
        // real one out.
        let next = records(&mut client, &[b"e"]).remove(0);
        let mut forged = next.clone();
        *forged.last_mut().unwrap() ^= 1;
        deliver(&[forged, next.clone()], &mut server);
        assert_eq!(read_all(&mut server), [b"e"]);
        // Garbage, a cut record, the handshake's first datagram again.
        let garbage: [&[u8]; 3] = [b"\x17\xfe\xfd no record", &next[..20], b""];
        garbage.iter().for_each(|g| server.receive(g));
        server.receive(first_hello.as_ref().unwrap());
        assert!(read_all(&mut server).is_empty());
        // Past the window (64 records on): the first record is dropped.
        let msgs: Vec<Vec<u8>> = (0..70).map(|i| format!("m{i}").into_bytes()).collect();
        let many = records(
            &mut client,
            &msgs.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        );
        deliver(&many, &mut server);
        assert_eq!(read_all(&mut server), msgs);
        deliver(&[a.clone(), many[0].clone(), many[69].clone()], &mut server);
        assert!(read_all(&mut server).is_empty());
        // And the connection works both ways.
        let back = records(&mut server, &[b"still here"]);
        deliver(&back, &mut client);
        assert_eq!(read_all(&mut client), [b"still here"]);
        assert!(server.output().is_empty());
    }

    /// A flight sent again and again keeps its datagrams: the memory BIO
    /// knows no path MTU to fall back to after repeated timeouts.
    #[test]
    fn retransmissions_keep_the_datagram_size() {
        let (cc, sc) = configs();
        let mut client = Connection::new(&cc, &PeerName::default()).unwrap();
        let mut server = Connection::new(&sc, &PeerName::default()).unwrap();
        fast(&mut server);
        assert_eq!(client.handshake().unwrap(), Progress::Pending);
        take(&mut client).iter().for_each(|d| server.receive(d));
        assert_eq!(server.handshake().unwrap(), Progress::Pending);
        let sizes = |ds: Vec<Vec<u8>>| ds.iter().map(Vec::len).collect::<Vec<_>>();
        assert!(!take(&mut server).is_empty());
        let mut again = || {
            std::thread::sleep(std::time::Duration::from_millis(60));
            server.handle_retransmit_timeout().unwrap();
            sizes(take(&mut server))
        };
        // A message per datagram when sent again, one of them longer than
        // OpenSSL's smallest MTU (256): falling back to it would show.
        let first = again();
        assert!(first.iter().any(|&n| n > 300), "{first:?}");
        for round in 1..6 {
            assert_eq!(again(), first, "retransmission {round}");
        }
    }
}
