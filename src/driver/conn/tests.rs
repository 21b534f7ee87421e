//! The connection state machine on a real socket: a driver connection at
//! one end of a socket pair, an engine connection driven by the test
//! thread at the other.

use super::*;
use crate::driver::host::{Message, Reply};
use crate::driver::options::Active;
use crate::driver::packet::Packet;
use crate::engine::connection::tests::{client_options, pair, server_options, test_pki};
use crate::engine::{Progress, ReadOutcome};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

/// What the test host saw, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Data(Vec<u8>),
    Passive,
    Closed,
    Error(Failure),
    /// Data decrypted into a buffer of its own (`Message::Packet`).
    Packet(Vec<u8>),
    Ticket(Vec<u8>),
    EarlyData(bool),
    Handshake(u32, Result<(), Failure>),
    Recv(u32, Result<Vec<u8>, Failure>),
    Send(u32, Result<(), Failure>),
}

struct TestHost;

impl Host for TestHost {
    type Owner = Sender<Event>;
    type Waiter = (u32, Sender<Event>);
    type Buffer = Vec<u8>;

    fn buffer(len: usize) -> Option<Vec<u8>> {
        Some(vec![0; len])
    }

    fn with_poller_outbox<R>(f: impl FnOnce(&mut dyn Outbox<Self>) -> R) -> R {
        f(&mut Recorder)
    }
}

struct Recorder;

impl Outbox<TestHost> for Recorder {
    fn to_owner(&mut self, owner: &Sender<Event>, _: &SocketOptions, message: Message<'_>) {
        let event = match message {
            Message::Data(d) => Event::Data(d.to_vec()),
            Message::Passive => Event::Passive,
            Message::Closed => Event::Closed,
            Message::Error(f) => Event::Error(f.clone()),
            Message::SessionTicket(t) => Event::Ticket(t.der.clone()),
            Message::EarlyData(accepted) => Event::EarlyData(accepted),
        };
        let _ = owner.send(event);
    }

    fn packet_to_owner(&mut self, owner: &Sender<Event>, _: &SocketOptions, packet: Vec<u8>) {
        let _ = owner.send(Event::Packet(packet));
    }

    fn reply(&mut self, (id, to): (u32, Sender<Event>), _: &SocketOptions, reply: Reply<'_>) {
        let event = match reply {
            Reply::Handshake(r) => Event::Handshake(id, r),
            Reply::Recv(r) => Event::Recv(id, r.map(|d| d.to_vec())),
            Reply::Send(r) => Event::Send(id, r),
        };
        let _ = to.send(event);
    }
}

const WAIT: Duration = Duration::from_secs(10);

/// The test thread's end: an engine client on a blocking socket.
struct Peer {
    fd: RawFd,
    tls: crate::engine::Connection,
}

impl Peer {
    fn flush(&mut self) {
        while !self.tls.output().is_empty() {
            match socket::write(self.fd, self.tls.output()) {
                Ok(n) => self.tls.consume_output(n),
                // The driver has not read yet (large writes).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut pfd = libc::pollfd {
                        fd: self.fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one live pollfd for the call.
                    let ready = unsafe { libc::poll(&mut pfd, 1, WAIT.as_millis() as i32) };
                    assert_eq!(ready, 1, "the driver reads nothing");
                }
                Err(e) => panic!("peer write: {e}"),
            }
        }
    }

    /// One blocking read into the engine; false at the end of the stream.
    fn read_some(&mut self) -> bool {
        let fd = self.fd;
        wait_readable(fd, "the driver sent nothing");
        let n = self
            .tls
            .receive_with(64 * 1024, |buf| socket::read(fd, buf))
            .expect("peer read");
        if n == 0 {
            self.tls.receive_eof();
        }
        n > 0
    }

    fn handshake(&mut self) {
        loop {
            let progress = self.tls.handshake().expect("peer handshake");
            self.flush();
            if progress == Progress::Done {
                return;
            }
            assert!(self.read_some(), "server hung up in the handshake");
        }
    }

    fn send(&mut self, data: &[u8]) {
        self.tls.write(data).unwrap();
        self.flush();
    }

    /// Plaintext until `len` bytes or the end of the stream.
    fn recv(&mut self, len: usize) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        while got.len() < len {
            match self.tls.read_onto(&mut got, 16 * 1024) {
                Ok(ReadOutcome::Data(_)) => continue,
                Ok(ReadOutcome::Closed) | Err(_) => return (got, true),
                Ok(ReadOutcome::WouldBlock) => {
                    if !self.read_some() {
                        continue;
                    }
                }
            }
        }
        (got, false)
    }
}

/// Waits until `fd` is readable; fails with `why` after `WAIT`.
fn wait_readable(fd: RawFd, why: &str) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd for the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, WAIT.as_millis() as i32) };
    assert_eq!(ready, 1, "{why}");
}

impl Drop for Peer {
    fn drop(&mut self) {
        socket::close(self.fd);
    }
}

fn socket_pair() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0);
    (fds[0], fds[1])
}

fn options(active: Active) -> SocketOptions {
    SocketOptions {
        active,
        ..SocketOptions::default()
    }
}

/// The driver takes over `ours` (on the poller of this thread).
fn adopt(ours: RawFd, tls: Tls, owner: &Sender<Event>, active: Active) -> Arc<Conn<TestHost>> {
    let fd = socket::adopt(ours).unwrap();
    Conn::<TestHost>::own(fd, tls, owner.clone(), options(active), Poller::pick())
}

/// An established driver server (owner events on the receiver) and its peer.
fn established(active: Active) -> (Arc<Conn<TestHost>>, Receiver<Event>, Peer) {
    let pki = test_pki();
    let (client, server) = pair(client_options(&pki), server_options(&pki), "localhost");
    let (ours, theirs) = socket_pair();
    let (owner, events) = channel();
    // Adopted with a plan, as the NIF does: the poller makes it.
    let plan = Tls::planned(Box::new(move || Ok(server)), false);
    let conn = adopt(ours, plan, &owner, active);
    // The driver works on its own duplicate of the descriptor.
    socket::close(ours);
    let mut peer = Peer {
        fd: theirs,
        tls: client,
    };
    conn.handshake((0, owner)).unwrap();
    peer.handshake();
    assert_eq!(next(&events), Event::Handshake(0, Ok(())));
    (conn, events, peer)
}

fn next(events: &Receiver<Event>) -> Event {
    events.recv_timeout(WAIT).expect("an event")
}

/// A passive recv: the data now, or the waiter's answer.
fn recv(
    conn: &Conn<TestHost>,
    len: usize,
    id: u32,
    to: &Sender<Event>,
    events: &Receiver<Event>,
) -> Result<Vec<u8>, Failure> {
    let mut now = None;
    let outcome = conn
        .recv(
            len,
            |_, r| now = Some(r.map(|d| d.to_vec())),
            || (id, to.clone()),
        )
        .unwrap();
    match outcome {
        RecvOutcome::Done => now.expect("delivered"),
        RecvOutcome::Wait => match next(events) {
            Event::Recv(i, r) if i == id => r,
            other => panic!("expected the recv's answer, got {other:?}"),
        },
    }
}

#[test]
fn passive_recv_and_send_both_ways() {
    let (conn, events, mut peer) = established(Active::False);
    let (to, replies) = channel();
    peer.send(b"hello");
    assert_eq!(recv(&conn, 5, 1, &to, &replies), Ok(b"hello".to_vec()));
    assert!(matches!(
        conn.send(b"back", || (2, to.clone())),
        Ok(SendOutcome::Done)
    ));
    assert_eq!(peer.recv(4), (b"back".to_vec(), false));
    assert!(
        events.try_recv().is_err(),
        "a passive socket sends its owner nothing"
    );
}

#[test]
fn active_once_delivers_one_message_then_turns_passive() {
    let (conn, events, mut peer) = established(Active::Once);
    peer.send(b"one");
    assert_eq!(next(&events), Event::Data(b"one".to_vec()));
    peer.send(b"two");
    let (to, replies) = channel();
    assert_eq!(recv(&conn, 3, 1, &to, &replies), Ok(b"two".to_vec()));
    assert!(events.try_recv().is_err());
}

#[test]
fn active_count_ends_with_passive_message() {
    let (conn, events, mut peer) = established(Active::Count(2));
    let _ = conn;
    peer.send(b"a");
    assert_eq!(next(&events), Event::Data(b"a".to_vec()));
    peer.send(b"b");
    assert_eq!(next(&events), Event::Data(b"b".to_vec()));
    assert_eq!(next(&events), Event::Passive);
}

#[test]
fn peer_close_comes_after_its_data_and_the_socket_stays_writable_until_read() {
    let (conn, _events, mut peer) = established(Active::False);
    let (to, replies) = channel();
    peer.send(b"request");
    peer.tls.close();
    peer.flush();
    // The driver sees the close_notify on its own; the data before it is
    // still there, and writing still works until the application reads on.
    assert_eq!(recv(&conn, 0, 1, &to, &replies), Ok(b"request".to_vec()));
    assert!(matches!(
        conn.send(b"answer", || (2, to.clone())),
        Ok(SendOutcome::Done)
    ));
    assert_eq!(peer.recv(6), (b"answer".to_vec(), false));
    assert_eq!(recv(&conn, 0, 3, &to, &replies), Err(Failure::Closed));
    // Told: the driver answers with its close_notify and lets the socket go.
    let (rest, ended) = peer.recv(1);
    assert!(rest.is_empty() && ended);
    assert_eq!(recv(&conn, 0, 4, &to, &replies), Err(Failure::Closed));
}

#[test]
fn active_peer_close_is_told_after_the_data() {
    let (_conn, events, mut peer) = established(Active::True);
    peer.send(b"last words");
    peer.tls.close();
    peer.flush();
    assert_eq!(next(&events), Event::Data(b"last words".to_vec()));
    assert_eq!(next(&events), Event::Closed);
}

#[test]
fn an_idle_connection_keeps_no_buffers() {
    // Most of rssl's own memory per connection: once the data is delivered
    // both ways and nothing waits, the driver frees its plaintext buffer
    // and the engine's ciphertext buffers.
    let (conn, events, mut peer) = established(Active::True);
    let data = vec![5u8; 200_000];
    peer.send(&data);
    let mut got = 0;
    while got < data.len() {
        match next(&events) {
            Event::Data(d) => got += d.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (to, _replies) = channel();
    assert!(matches!(
        conn.send(b"ack", || (0, to.clone())),
        Ok(SendOutcome::Done)
    ));
    assert_eq!(peer.recv(3).0, b"ack");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = conn.state.lock();
        if s.plain.capacity() == 0 && s.tls.retained_capacity() == 0 {
            break;
        }
        drop(s);
        assert!(std::time::Instant::now() < deadline, "buffers kept");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn every_waiting_sender_is_answered() {
    let (conn, _events, mut peer) = established(Active::False);
    let (to, replies) = channel();
    // The peer reads nothing yet: the backlog passes the high-water mark
    // and every later sender waits.
    let chunk = vec![7u8; 64 * 1024];
    let mut waiting = Vec::new();
    for id in 0..40u32 {
        if let SendOutcome::Wait = conn.send(&chunk, || (id, to.clone())).unwrap() {
            waiting.push(id);
        }
    }
    assert!(
        waiting.len() > 1,
        "several senders must be waiting, got {waiting:?}"
    );
    // Reading it all drains the backlog: each waiter gets its answer.
    let (data, ended) = peer.recv(40 * chunk.len());
    assert!(!ended);
    assert!(data.iter().all(|&b| b == 7));
    let mut answered: Vec<u32> = waiting
        .iter()
        .map(|_| match next(&replies) {
            Event::Send(id, Ok(())) => id,
            other => panic!("expected a send answer, got {other:?}"),
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, waiting);
}

#[test]
fn close_answers_blocked_callers_and_sends_close_notify() {
    let (conn, events, mut peer) = established(Active::False);
    let (to, replies) = channel();
    let outcome = conn.recv(0, |_, _| panic!("nothing to read"), || (9, to.clone()));
    assert!(matches!(outcome, Ok(RecvOutcome::Wait)));
    let mut outbox = Recorder;
    conn.close(&mut outbox);
    assert_eq!(next(&replies), Event::Recv(9, Err(Failure::Closed)));
    let (rest, ended) = peer.recv(1);
    assert!(rest.is_empty() && ended, "the peer sees close_notify");
    assert!(
        events.try_recv().is_err(),
        "a closed socket tells its owner nothing"
    );
    assert_eq!(conn.options(), Err(Failure::Closed));
}

/// A socket adopted with a plan that will fail, and its peer's fd.
fn failing_plan() -> (Arc<Conn<TestHost>>, Receiver<Event>, RawFd, Sender<Event>) {
    let (ours, theirs) = socket_pair();
    let (owner, events) = channel();
    let plan = Tls::planned(
        Box::new(|| Err(crate::engine::Error::Option("sni".into(), "bad".into()))),
        false,
    );
    let conn = adopt(ours, plan, &owner, Active::False);
    socket::close(ours);
    (conn, events, theirs, owner)
}

#[test]
fn a_plan_that_fails_fails_the_handshake_and_lets_the_socket_go() {
    let (conn, events, theirs, owner) = failing_plan();
    conn.handshake((3, owner)).unwrap();
    match next(&events) {
        Event::Handshake(3, Err(Failure::Tls(crate::engine::Error::Option(name, _)))) => {
            assert_eq!(name, "sni")
        }
        other => panic!("unexpected {other:?}"),
    }
    // The driver's end of the socket is closed: the peer reads end of file.
    wait_readable(theirs, "the socket's release");
    let mut buf = [0u8; 16];
    // SAFETY: reads into a live local buffer from our socket.
    let n = unsafe { libc::read(theirs, buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(n, 0);
    assert_eq!(
        conn.with_tls(|_| ()),
        Err(Failure::Closed),
        "nothing to ask about"
    );
    socket::close(theirs);
}

#[test]
fn a_socket_closed_before_its_handshake_never_makes_its_connection() {
    let (conn, events, theirs, _owner) = failing_plan();
    assert_eq!(conn.stats().map(|s| s.send_pend), Ok(0));
    let mut outbox = Recorder;
    conn.close(&mut outbox);
    // No close_notify (nothing was made, nothing to close): end of file.
    wait_readable(theirs, "the socket's release");
    let mut buf = [0u8; 16];
    // SAFETY: reads into a live local buffer from our socket.
    let n = unsafe { libc::read(theirs, buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(n, 0);
    assert!(events.try_recv().is_err(), "the owner is told nothing");
    socket::close(theirs);
}

#[test]
fn asked_before_its_handshake_a_plan_is_made_at_once() {
    let (conn, _events, theirs, _owner) = failing_plan();
    // The plan fails when made: the question gets that failure.
    assert!(matches!(
        conn.with_tls(|_| ()),
        Err(Failure::Tls(crate::engine::Error::Option(..)))
    ));
    socket::close(theirs);
}

#[test]
fn packet_framing_on_passive_recv() {
    let (conn, _events, mut peer) = established(Active::False);
    let (to, replies) = channel();
    let mut options = conn.options().unwrap();
    options.packet = Packet::Length(4);
    let mut outbox = Recorder;
    conn.set_options(
        |o| {
            *o = options;
            Some(false)
        },
        &mut outbox,
    )
    .unwrap();
    peer.send(&[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 1]);
    assert_eq!(recv(&conn, 0, 1, &to, &replies), Ok(b"abc".to_vec()));
    peer.send(b"z");
    assert_eq!(recv(&conn, 0, 2, &to, &replies), Ok(b"z".to_vec()));
}

/// A driver server whose `sni_fun` answers only once `open` is set, and
/// its peer, whose ClientHello has been sent; returns once the server's
/// handshake is paused waiting for that answer.
fn paused_handshake(
    open: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Conn<TestHost>>, Receiver<Event>, Peer) {
    use crate::engine::hooks::Callback;
    use crate::engine::sni::SniChoice;
    use std::sync::atomic::Ordering;
    use std::task::Poll;
    let pki = test_pki();
    let mut so = server_options(&pki);
    so.sni_fun = Some(Callback(Arc::new(move |_: &str| {
        if open.load(Ordering::SeqCst) {
            Poll::Ready(SniChoice::Default)
        } else {
            Poll::Pending
        }
    })));
    let (client, mut server) = pair(client_options(&pki), so, "localhost");
    server.allow_pausing();
    let (ours, theirs) = socket_pair();
    let (owner, events) = channel();
    let conn = adopt(ours, server.into(), &owner, Active::False);
    socket::close(ours);
    let mut peer = Peer {
        fd: theirs,
        tls: client,
    };
    conn.handshake((0, owner)).unwrap();
    assert_eq!(peer.tls.handshake(), Ok(Progress::Pending));
    peer.flush();
    let deadline = std::time::Instant::now() + WAIT;
    while !conn.with_tls(|t| t.is_paused()).unwrap() {
        assert!(std::time::Instant::now() < deadline, "never paused");
        std::thread::sleep(Duration::from_millis(1));
    }
    (conn, events, peer)
}

#[test]
fn a_paused_handshake_resumes_when_kicked() {
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (conn, events, mut peer) = paused_handshake(open.clone());
    assert!(events.try_recv().is_err(), "nothing told while paused");
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    conn.kick();
    peer.handshake();
    assert_eq!(next(&events), Event::Handshake(0, Ok(())));
    assert!(conn.is_established());
}

#[test]
fn closing_a_paused_handshake_lets_the_poller_finish_it() {
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (conn, events, _peer) = paused_handshake(open);
    let left = crate::engine::pause::JOBS_LEFT.load(std::sync::atomic::Ordering::SeqCst);
    conn.close(&mut Recorder);
    assert_eq!(next(&events), Event::Handshake(0, Err(Failure::Closed)));
    // The poller abandons the paused handshake (on its own thread), then
    // lets the connection go.
    let deadline = std::time::Instant::now() + WAIT;
    while Arc::strong_count(&conn) > 1 {
        assert!(std::time::Instant::now() < deadline, "still on the poller");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Dropped here, off the poller: its job was finished already.
    drop(conn);
    let now = crate::engine::pause::JOBS_LEFT.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(now, left);
}

/// A server set to `{packet, Size}`.
fn framed(size: u8) -> (Arc<Conn<TestHost>>, Receiver<Event>, Peer) {
    let (conn, events, peer) = established(Active::False);
    let mut options = conn.options().unwrap();
    options.packet = Packet::Length(size);
    conn.set_options(
        |o| {
            *o = options;
            Some(false)
        },
        &mut Recorder,
    )
    .unwrap();
    (conn, events, peer)
}

/// A driver client with manual tickets: each ticket reaches the owner as a
/// message (passive socket, nothing read by the application); a second
/// connection with one of them sends early data, and the owner hears the
/// server took it before the handshake's answer.
#[test]
fn tickets_then_early_data_verdict_before_the_handshake_answer() {
    use crate::engine::connection::PeerName;
    use crate::engine::{Config, Connection};
    let pki = test_pki();
    let mut so = server_options(&pki);
    so.session_tickets = 2;
    so.max_early_data = 1024;
    let server_config = Config::build(so).unwrap();
    let mut co = client_options(&pki);
    co.manual_tickets = true;
    let client_config = Config::build(co).unwrap();
    let name = PeerName {
        sni: Some("localhost".into()),
        verify_host: Some("localhost".into()),
        session_key: None,
    };
    let connect = |tls: Connection| {
        let (ours, theirs) = socket_pair();
        let (owner, events) = channel();
        let conn = adopt(ours, tls.into(), &owner, Active::False);
        socket::close(ours);
        let mut peer = Peer {
            fd: theirs,
            tls: Connection::new(&server_config, &Default::default()).unwrap(),
        };
        conn.handshake((0, owner)).unwrap();
        peer.handshake();
        (conn, events, peer)
    };
    let (_first, events, _peer) = connect(Connection::new(&client_config, &name).unwrap());
    assert_eq!(next(&events), Event::Handshake(0, Ok(())));
    let tickets: Vec<Vec<u8>> = (0..2)
        .map(|_| match next(&events) {
            Event::Ticket(der) => der,
            other => panic!("expected a ticket, got {other:?}"),
        })
        .collect();
    let mut tls = Connection::new(&client_config, &name).unwrap();
    assert!(tls.use_tickets(&[&tickets[1]], true));
    tls.set_early_data(b"early".to_vec(), true);
    let (_second, events, mut peer) = connect(tls);
    assert_eq!(next(&events), Event::EarlyData(true));
    assert_eq!(next(&events), Event::Handshake(0, Ok(())));
    assert_eq!(peer.tls.take_early_data(), b"early");
}

/// `{packet, 4}` framing of `data`.
fn frame4(data: &[u8]) -> Vec<u8> {
    [&(data.len() as u32).to_be_bytes()[..], data].concat()
}

/// Waits until the driver decrypts a packet into a buffer of its own.
fn wait_for_direct(conn: &Conn<TestHost>) {
    let deadline = std::time::Instant::now() + WAIT;
    while conn.state.lock().direct.is_none() {
        assert!(std::time::Instant::now() < deadline, "no packet of its own");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn large_packets_are_decrypted_into_their_own_buffers_in_order() {
    let (conn, events, mut peer) = framed(4);
    let mut options = conn.options().unwrap();
    options.active = Active::True;
    options.binary = true;
    conn.set_options(
        |o| {
            *o = options;
            Some(false)
        },
        &mut Recorder,
    )
    .unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let framed_big = frame4(&big);
    // A small packet, then the first part of a large one.
    peer.send(&[&frame4(b"a")[..], &framed_big[..20_004]].concat());
    assert_eq!(next(&events), Event::Data(b"a".to_vec()));
    wait_for_direct(&conn);
    let other: Vec<u8> = (0..16_384u32).map(|i| (i % 13) as u8).collect();
    peer.send(&[&framed_big[20_004..], &frame4(&other), &frame4(b"z")].concat());
    assert_eq!(next(&events), Event::Packet(big));
    // Whole when read: the 16 KiB one comes out of the shared buffer.
    assert!(matches!(next(&events), Event::Data(d) | Event::Packet(d) if d == other));
    assert_eq!(next(&events), Event::Data(b"z".to_vec()));
}

#[test]
fn a_large_packet_half_read_goes_to_a_passive_recv_whole() {
    let (conn, events, mut peer) = framed(4);
    let mut options = conn.options().unwrap();
    options.active = Active::True;
    options.binary = true;
    conn.set_options(
        |o| {
            *o = options;
            Some(false)
        },
        &mut Recorder,
    )
    .unwrap();
    let big = vec![9u8; 50_000];
    let framed_big = frame4(&big);
    peer.send(&framed_big[..10_004]);
    wait_for_direct(&conn);
    options.active = Active::False;
    conn.set_options(
        |o| {
            *o = options;
            Some(false)
        },
        &mut Recorder,
    )
    .unwrap();
    assert!(conn.state.lock().direct.is_none());
    peer.send(&[&framed_big[10_004..], &frame4(b"next")].concat());
    let (to, _replies) = channel();
    assert_eq!(recv(&conn, 0, 1, &to, &events), Ok(big));
    assert_eq!(recv(&conn, 0, 2, &to, &events), Ok(b"next".to_vec()));
}

/// Handed over (as to the distribution's port driver), the connection
/// is the new reader's: the poller reads nothing more and the owner gets
/// nothing, the plaintext already decrypted and the TLS state come along,
/// and closing the connection leaves the socket open.
#[test]
fn a_handed_over_connection_keeps_its_data_and_leaves_the_socket() {
    let (conn, events, mut peer) = established(Active::False);
    peer.send(b"before");
    // Decrypted by the poller or not yet: either way it comes along.
    std::thread::sleep(Duration::from_millis(50));
    let handed = conn.hand_over().unwrap();
    assert!(conn.hand_over().is_err(), "handed over twice");
    assert_eq!(conn.with_tls(|tls| tls.is_established()), Ok(true));
    peer.send(b" after");
    let mut got = handed.plaintext;
    let fd = handed.fd;
    while got.len() < b"before after".len() {
        wait_readable(fd, "nothing came");
        conn.with_tls_mut(|tls| {
            tls.receive_with(64 * 1024, |buf| socket::read(fd, buf))
                .unwrap();
            while let Ok(ReadOutcome::Data(_)) = tls.read_onto(&mut got, 16 * 1024) {}
        });
    }
    assert_eq!(got, b"before after");
    // The new reader writes through the same TLS state.
    conn.with_tls_mut(|tls| {
        tls.write(b"reply").unwrap();
        socket::write(fd, tls.output()).unwrap();
        let n = tls.output().len();
        tls.consume_output(n);
    });
    assert_eq!(peer.recv(5), (b"reply".to_vec(), false));
    conn.close(&mut Recorder);
    assert!(events.try_recv().is_err(), "the owner heard of it");
    // SAFETY: only asks whether the descriptor is open.
    assert!(
        unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0,
        "closed by the driver"
    );
    socket::close(fd);
}
