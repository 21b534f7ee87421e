//! Poller threads: epoll, edge-triggered.
//!
//! A connection is registered with one poller for its whole life. Adding
//! and removing go straight into the poller's registry (a short lock, no
//! wake-up); kicks and deadlines go through its command queue. The poller
//! clones a connection's `Arc` out of the registry before running it, so a
//! connection is never dropped while it runs.

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What woke a connection up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// The peer hung up or the socket has an error.
    pub hangup: bool,
    /// Input may end after the data (the peer's FIN or an error): read to
    /// the end, as no new event will come for it.
    pub ending: bool,
}

impl Ready {
    /// A kick: anything may be ready.
    pub const ALL: Ready = Ready {
        readable: true,
        writable: true,
        hangup: false,
        ending: true,
    };
}

/// Something a poller runs when its socket is ready or when it is kicked.
pub trait Pollable: Send + Sync {
    /// Runs on the poller thread. Returns true to be run again soon (it
    /// stopped early to be fair to other connections).
    fn ready(&self, ready: Ready) -> bool;
    /// A deadline set with [`Poller::deadline`] has passed.
    fn expired(&self);
}

enum Command {
    Kick(u64),
    Deadline(u64, Instant),
    /// A reference to drop on the poller thread ([`Poller::release`]).
    Release(Arc<dyn Pollable>),
}

type Registry = HashMap<u64, Arc<dyn Pollable>>;

/// A handle to one poller thread.
pub struct Poller {
    epoll: RawFd,
    wake: RawFd,
    commands: Mutex<Vec<Command>>,
    registry: Mutex<Registry>,
    /// Connections registered now (the registry's size, read without its lock).
    registered: AtomicUsize,
}

const WAKE_TOKEN: u64 = 0;
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
static NEXT_POLLER: AtomicUsize = AtomicUsize::new(0);
/// How many more connections than the least busy poller a thread's own
/// poller may serve before new ones go elsewhere (see [`Poller::pick_for`]).
const AFFINITY_SLACK: usize = 16;

/// How long an idle poller keeps polling without sleeping after it last
/// read a little data (RSSL_POLLER_SPIN_US, microseconds).
static SPIN: Lazy<Duration> = Lazy::new(|| {
    Duration::from_micros(
        std::env::var("RSSL_POLLER_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    )
});

/// Reads of at most this many bytes in one round of events count as
/// request/response traffic (a poller spins after them); more is bulk.
const SMALL_READS: usize = 16 * 1024;

thread_local! {
    /// Bytes this poller thread read from its sockets in the current round.
    static READ_THIS_ROUND: Cell<usize> = const { Cell::new(0) };
}

/// Counts bytes read from a socket (by a poller, in `Pollable::ready`).
pub fn note_read(n: usize) {
    READ_THIS_ROUND.with(|r| r.set(r.get() + n));
}

static POLLERS: Lazy<Vec<Arc<Poller>>> = Lazy::new(|| {
    let count = std::env::var("RSSL_POLLERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .clamp(1, 64);
    (0..count)
        .map(|i| Poller::start(i).expect("poller thread"))
        .collect()
});

impl Poller {
    /// [`Poller::pick_for`] for a thread that is not one of the VM's
    /// schedulers (the unit tests): threads are paired with a poller on
    /// their first call, in turn.
    pub fn pick() -> Arc<Poller> {
        thread_local! {
            static MINE: usize = NEXT_POLLER.fetch_add(1, Ordering::Relaxed);
        }
        Poller::pick_for(MINE.with(|i| *i))
    }

    /// Picks the poller for a new connection: the one paired with the VM's
    /// scheduler `id` (from 1; `rssl_nif:adopt/8` passes the caller's),
    /// unless it serves `AFFINITY_SLACK` connections more than the least
    /// busy one, which then gets it. The connections of processes on one
    /// scheduler then share a poller, and the threads that pass a
    /// connection's messages to and fro wake each other on one CPU rather
    /// than across two: ping-pong runs fall into the slow state of
    /// docs/design.md ("Why some ping-pong runs are slow") a third as often
    /// as with round robin. The slack spreads the connections of a lone
    /// acceptor.
    pub fn pick_for(id: usize) -> Arc<Poller> {
        let loads: Vec<usize> = POLLERS
            .iter()
            .map(|p| p.registered.load(Ordering::Relaxed))
            .collect();
        POLLERS[choose(id % POLLERS.len(), &loads)].clone()
    }

    pub fn new_token() -> u64 {
        NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
    }

    fn start(index: usize) -> std::io::Result<Arc<Poller>> {
        // SAFETY: plain system call; the result is checked.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: plain system call; the result is checked.
        let wake = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if wake < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; both fds are ours.
        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, wake, &mut ev) };
        let poller = Arc::new(Poller {
            epoll,
            wake,
            commands: Mutex::new(Vec::new()),
            registry: Mutex::new(HashMap::new()),
            registered: AtomicUsize::new(0),
        });
        let runner = poller.clone();
        std::thread::Builder::new()
            .name(format!("rssl-poller-{index}"))
            .spawn(move || runner.run())?;
        Ok(poller)
    }

    fn push(&self, command: Command) {
        let was_empty = {
            let mut queue = self.commands.lock();
            let was_empty = queue.is_empty();
            queue.push(command);
            was_empty
        };
        if was_empty {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd.
            unsafe { libc::write(self.wake, (&one as *const u64).cast(), 8) };
        }
    }

    /// Registers `fd` (edge-triggered, read and write) for `pollable`.
    /// Nothing runs until the socket is ready or the connection is kicked.
    pub fn add(&self, token: u64, fd: RawFd, pollable: Arc<dyn Pollable>) {
        // Into the registry first, so the first event finds it.
        self.register(token, pollable);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the call; a bad fd only makes it fail.
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }

    fn register(&self, token: u64, pollable: Arc<dyn Pollable>) {
        if self.registry.lock().insert(token, pollable).is_none() {
            self.registered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs the connection on its poller as if its socket were ready.
    pub fn kick(&self, token: u64) {
        self.push(Command::Kick(token));
    }

    /// Forgets the connection (its fd must already be closed or unwatched).
    pub fn remove(&self, token: u64) {
        let gone = self.registry.lock().remove(&token);
        if gone.is_some() {
            self.registered.fetch_sub(1, Ordering::Relaxed);
        }
        // Dropped outside the lock: the last reference may free a lot.
        drop(gone);
    }

    /// Drops `last` on the poller thread rather than the caller's. Freeing
    /// a connection frees its OpenSSL objects, and OpenSSL 3.0 takes a
    /// global write lock (ex_data) for each; glibc's rwlock makes waiting
    /// writers spin while the holder is between two of its own steps, and
    /// when the holder is preempted there, the spinning scheduler threads
    /// held both CPUs for up to 7 ms (perf, the cpu bench workload).
    pub fn release(&self, last: Arc<dyn Pollable>) {
        self.push(Command::Release(last));
    }

    /// Calls `expired` on the connection at `when` (if still registered).
    pub fn deadline(&self, token: u64, when: Instant) {
        self.push(Command::Deadline(token, when));
    }

    /// Stops watching `fd`; call before closing it.
    pub fn unwatch(&self, fd: RawFd) {
        // SAFETY: EPOLL_CTL_DEL takes no event; a stale fd only makes it fail.
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    fn lookup(&self, token: u64) -> Option<Arc<dyn Pollable>> {
        self.registry.lock().get(&token).cloned()
    }

    /// Runs one connection, containing any panic so the poller thread survives.
    fn run_one(&self, again: &mut VecDeque<u64>, token: u64, ready: Ready) {
        if let Some(p) = self.lookup(token) {
            let wants_more =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.ready(ready)));
            if wants_more.unwrap_or(false) {
                again.push_back(token);
            }
        }
    }

    fn run(&self) {
        let mut again: VecDeque<u64> = VecDeque::new();
        let mut deadlines: Vec<(Instant, u64)> = Vec::new();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let spin = *SPIN;
        let mut last_event = Instant::now();
        loop {
            let timeout = if !again.is_empty() {
                0
            } else if !spin.is_zero() && last_event.elapsed() < spin {
                std::thread::yield_now();
                0
            } else if let Some(next) = deadlines.iter().map(|d| d.0).min() {
                let wait = next.saturating_duration_since(Instant::now());
                wait.as_millis().min(60_000) as i32 + 1
            } else {
                -1
            };
            // SAFETY: `events` is a live buffer of `events.len()` entries that epoll_wait fills.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout,
                )
            };
            READ_THIS_ROUND.with(|r| r.set(0));
            let mut woken = false;
            for ev in &events[..n.max(0) as usize] {
                let token = ev.u64;
                if token == WAKE_TOKEN {
                    woken = true;
                    continue;
                }
                let flags = ev.events as libc::c_int;
                let ready = Ready {
                    readable: flags & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0,
                    writable: flags & libc::EPOLLOUT != 0,
                    hangup: flags & (libc::EPOLLHUP | libc::EPOLLERR) != 0,
                    ending: flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0,
                };
                self.run_one(&mut again, token, ready);
            }
            if woken {
                // The eventfd is level-triggered: commands queued after this
                // read and after the take below raise it again.
                let mut drained: u64 = 0;
                // SAFETY: reads 8 bytes into a live u64 from our eventfd.
                unsafe { libc::read(self.wake, (&mut drained as *mut u64).cast(), 8) };
                let commands = std::mem::take(&mut *self.commands.lock());
                for command in commands {
                    match command {
                        Command::Kick(token) => self.run_one(&mut again, token, Ready::ALL),
                        Command::Deadline(token, when) => deadlines.push((when, token)),
                        Command::Release(last) => drop(last),
                    }
                }
            }
            for _ in 0..again.len() {
                if let Some(token) = again.pop_front() {
                    self.run_one(&mut again, token, Ready::ALL);
                }
            }
            // Only small reads start a spin: a reply is likely within
            // microseconds. Bulk (a full record or more per round) and mere
            // writability do not: spinning then only takes the CPU that
            // the other end's scheduler encrypts on (-10% bulk throughput
            // on 2 cores, measured).
            let read = READ_THIS_ROUND.with(|r| r.get());
            if read > 0 && read <= SMALL_READS && !spin.is_zero() {
                last_event = Instant::now();
            }
            if !deadlines.is_empty() {
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = deadlines.drain(..).partition(|d| d.0 <= now);
                deadlines = later;
                for (_, token) in due {
                    if let Some(p) = self.lookup(token) {
                        p.expired();
                    }
                }
            }
        }
    }
}

/// The poller a thread paired with poller `mine` gets, given each
/// poller's connection count: its own, unless that serves more than
/// [`AFFINITY_SLACK`] connections over the least busy one.
fn choose(mine: usize, loads: &[usize]) -> usize {
    let least = (0..loads.len()).min_by_key(|&i| loads[i]).unwrap_or(mine);
    if loads[mine] > loads[least] + AFFINITY_SLACK {
        least
    } else {
        mine
    }
}

/// How long a closed connection may take to flush its last bytes.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Sender};

    #[derive(Debug, PartialEq, Eq)]
    enum Call {
        Ready { readable: bool },
        Expired,
    }

    struct Probe {
        calls: Mutex<Sender<Call>>,
        /// Panics on the first `ready` when set (the poller must survive).
        panic_once: Mutex<bool>,
    }

    impl Pollable for Probe {
        fn ready(&self, ready: Ready) -> bool {
            if std::mem::take(&mut *self.panic_once.lock()) {
                panic!("a connection that panics");
            }
            let _ = self.calls.lock().send(Call::Ready {
                readable: ready.readable,
            });
            false
        }

        fn expired(&self) {
            let _ = self.calls.lock().send(Call::Expired);
        }
    }

    const WAIT: Duration = Duration::from_secs(10);

    fn socket_pair() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        (fds[0], fds[1])
    }

    fn probe(panic_once: bool) -> (Arc<Probe>, std::sync::mpsc::Receiver<Call>) {
        let (tx, rx) = channel();
        let p = Arc::new(Probe {
            calls: Mutex::new(tx),
            panic_once: Mutex::new(panic_once),
        });
        (p, rx)
    }

    #[test]
    fn readiness_kicks_and_deadlines_reach_the_connection() {
        let poller = Poller::pick();
        let (ours, theirs) = socket_pair();
        let (p, calls) = probe(false);
        let token = Poller::new_token();
        poller.add(token, ours, p.clone());
        // A fresh edge-triggered registration reports the socket writable.
        assert_eq!(
            calls.recv_timeout(WAIT),
            Ok(Call::Ready { readable: false })
        );
        super::super::socket::write(theirs, b"x").unwrap();
        assert_eq!(calls.recv_timeout(WAIT), Ok(Call::Ready { readable: true }));
        poller.kick(token);
        assert_eq!(calls.recv_timeout(WAIT), Ok(Call::Ready { readable: true }));
        poller.deadline(token, Instant::now() + Duration::from_millis(5));
        assert_eq!(calls.recv_timeout(WAIT), Ok(Call::Expired));
        // Once removed, nothing reaches it.
        poller.unwatch(ours);
        poller.remove(token);
        poller.kick(token);
        super::super::socket::write(theirs, b"y").unwrap();
        assert!(calls.recv_timeout(Duration::from_millis(100)).is_err());
        super::super::socket::close(ours);
        super::super::socket::close(theirs);
    }

    #[test]
    fn a_thread_keeps_its_poller_until_it_is_far_busier() {
        assert_eq!(choose(1, &[0, 0]), 1);
        assert_eq!(choose(1, &[0, AFFINITY_SLACK]), 1);
        assert_eq!(choose(1, &[0, AFFINITY_SLACK + 1]), 0);
        assert_eq!(choose(0, &[AFFINITY_SLACK + 5, 4, 3]), 2);
        assert_eq!(choose(0, &[7]), 0);
    }

    #[test]
    fn a_panicking_connection_does_not_stop_its_poller() {
        let poller = Poller::pick();
        let (bad, bad_calls) = probe(true);
        let bad_token = Poller::new_token();
        poller.register(bad_token, bad.clone());
        poller.kick(bad_token);
        let (good, good_calls) = probe(false);
        let good_token = Poller::new_token();
        poller.register(good_token, good.clone());
        poller.kick(good_token);
        assert_eq!(
            good_calls.recv_timeout(WAIT),
            Ok(Call::Ready { readable: true })
        );
        // The one that panicked is still registered and runs again.
        poller.kick(bad_token);
        assert_eq!(
            bad_calls.recv_timeout(WAIT),
            Ok(Call::Ready { readable: true })
        );
        poller.remove(bad_token);
        poller.remove(good_token);
    }
}
