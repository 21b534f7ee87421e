//! Poller threads: epoll, edge-triggered, one registry per thread.
//!
//! A connection is registered with one poller for its whole life. Other
//! threads talk to a poller only through its command queue, so the registry
//! needs no lock and a connection is never dropped while it is being run.

use once_cell::sync::Lazy;
use parking_lot::Mutex;
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
}

impl Ready {
    pub const ALL: Ready = Ready {
        readable: true,
        writable: true,
        hangup: false,
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
    Add(u64, RawFd, Arc<dyn Pollable>),
    Kick(u64),
    Remove(u64),
    Deadline(u64, Instant),
}

/// A handle to one poller thread.
pub struct Poller {
    epoll: RawFd,
    wake: RawFd,
    commands: Mutex<Vec<Command>>,
}

const WAKE_TOKEN: u64 = 0;
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
static NEXT_POLLER: AtomicUsize = AtomicUsize::new(0);

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
    /// Picks a poller for a new connection (round robin).
    pub fn pick() -> Arc<Poller> {
        let i = NEXT_POLLER.fetch_add(1, Ordering::Relaxed);
        POLLERS[i % POLLERS.len()].clone()
    }

    pub fn new_token() -> u64 {
        NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
    }

    fn start(index: usize) -> std::io::Result<Arc<Poller>> {
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let wake = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if wake < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
        };
        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, wake, &mut ev) };
        let poller = Arc::new(Poller {
            epoll,
            wake,
            commands: Mutex::new(Vec::new()),
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
            unsafe { libc::write(self.wake, (&one as *const u64).cast(), 8) };
        }
    }

    /// Registers `fd` (edge-triggered, read and write) and runs `pollable` once.
    pub fn add(&self, token: u64, fd: RawFd, pollable: Arc<dyn Pollable>) {
        self.push(Command::Add(token, fd, pollable));
    }

    /// Runs the connection on its poller as if its socket were ready.
    pub fn kick(&self, token: u64) {
        self.push(Command::Kick(token));
    }

    /// Forgets the connection (its fd must already be closed or unregistered).
    pub fn remove(&self, token: u64) {
        self.push(Command::Remove(token));
    }

    /// Calls `expired` on the connection at `when` (if still registered).
    pub fn deadline(&self, token: u64, when: Instant) {
        self.push(Command::Deadline(token, when));
    }

    /// Stops watching `fd`; call before closing it.
    pub fn unwatch(&self, fd: RawFd) {
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    fn run(&self) {
        let mut registry: HashMap<u64, Arc<dyn Pollable>> = HashMap::new();
        let mut again: VecDeque<u64> = VecDeque::new();
        let mut deadlines: Vec<(Instant, u64)> = Vec::new();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            let timeout = if !again.is_empty() {
                0
            } else if let Some(next) = deadlines.iter().map(|d| d.0).min() {
                let wait = next.saturating_duration_since(Instant::now());
                wait.as_millis().min(60_000) as i32 + 1
            } else {
                -1
            };
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout,
                )
            };
            let n = n.max(0) as usize;
            for ev in &events[..n] {
                let token = ev.u64;
                if token == WAKE_TOKEN {
                    continue;
                }
                let flags = ev.events as libc::c_int;
                let ready = Ready {
                    readable: flags & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0,
                    writable: flags & libc::EPOLLOUT != 0,
                    hangup: flags & (libc::EPOLLHUP | libc::EPOLLERR) != 0,
                };
                run_one(&registry, &mut again, token, ready);
            }
            // Commands after socket events, so that a Remove sent while an
            // event was pending is seen last.
            let mut drained: u64 = 0;
            unsafe { libc::read(self.wake, (&mut drained as *mut u64).cast(), 8) };
            let commands = std::mem::take(&mut *self.commands.lock());
            for command in commands {
                match command {
                    Command::Add(token, fd, pollable) => {
                        let mut ev = libc::epoll_event {
                            events: (libc::EPOLLIN
                                | libc::EPOLLOUT
                                | libc::EPOLLRDHUP
                                | libc::EPOLLET) as u32,
                            u64: token,
                        };
                        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) };
                        registry.insert(token, pollable);
                        run_one(&registry, &mut again, token, Ready::ALL);
                    }
                    Command::Kick(token) => run_one(&registry, &mut again, token, Ready::ALL),
                    Command::Remove(token) => {
                        registry.remove(&token);
                        deadlines.retain(|d| d.1 != token);
                    }
                    Command::Deadline(token, when) => deadlines.push((when, token)),
                }
            }
            for _ in 0..again.len() {
                if let Some(token) = again.pop_front() {
                    run_one(&registry, &mut again, token, Ready::ALL);
                }
            }
            if !deadlines.is_empty() {
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = deadlines.drain(..).partition(|d| d.0 <= now);
                deadlines = later;
                for (_, token) in due {
                    if let Some(p) = registry.get(&token) {
                        p.expired();
                    }
                }
            }
            if registry.capacity() > 64 && registry.len() < registry.capacity() / 4 {
                registry.shrink_to_fit();
            }
        }
    }
}

/// Runs one connection, containing any panic so the poller thread survives.
fn run_one(
    registry: &HashMap<u64, Arc<dyn Pollable>>,
    again: &mut VecDeque<u64>,
    token: u64,
    ready: Ready,
) {
    if let Some(p) = registry.get(&token) {
        let wants_more = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.ready(ready)));
        if wants_more.unwrap_or(false) {
            again.push_back(token);
        }
    }
}

/// How long a closed connection may take to flush its last bytes.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);
