//! The distribution carrier's port driver (`rssl_nif`, loaded with
//! `erl_ddll` from the NIF's own library): after the TLS handshake the
//! connection is handed to a port, which the VM then uses as the
//! distribution controller, as it uses inet_tcp's port. The VM writes
//! distribution data straight into the port (`outputv`), which frames
//! it ({packet, 4}), encrypts and sends it; the socket sits in the
//! schedulers' own poll set, and what the port reads is decrypted and
//! handed to the VM (`driver_output`) in the same callback. No process
//! and no other thread takes part in moving a message.
//!
//! Before the node is up (the distribution handshake) the port is
//! passive: `rssl_dist` asks for each packet (`RECV`), as dist_util's
//! `f_recv` does of a socket. The TLS state stays in the connection's
//! resource (`Conn::with_tls_mut`); the port owns the socket.

use super::erl_drv::*;
use super::socket::{conn_of, ConnRes};
use crate::driver::inet::{self, SockOpt};
use crate::driver::{socket, Conn};
use crate::engine::{Connection, ReadOutcome, MAX_RECORD_PLAINTEXT};
use crate::nif::host::ErlHost;
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustler::{NifResult, ResourceArc, Term};
use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

// ---------------------------------------------------------------------------
// Handing a connection to a port.

/// Connections waiting for their port: `dist_ticket/1` puts one here,
/// the port's `ATTACH` takes it.
static TICKETS: Lazy<Mutex<HashMap<u64, ResourceArc<ConnRes>>>> = Lazy::new(Default::default);
static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

/// Held by the process that hands a connection to a port: if it dies
/// before the port has taken the connection, the connection is let go.
pub struct DistTicket {
    id: u64,
}

#[rustler::resource_impl]
impl rustler::Resource for DistTicket {}

impl Drop for DistTicket {
    fn drop(&mut self) {
        let untaken = TICKETS.lock().remove(&self.id);
        drop(untaken);
    }
}

/// `dist_ticket(Socket)`: `{Id, Ticket}`; `port_control(Port, ATTACH,
/// <<Id:64>>)` then moves the connection into the port. Keep `Ticket`
/// until then.
#[rustler::nif]
fn dist_ticket(socket: Term) -> NifResult<(u64, ResourceArc<DistTicket>)> {
    let res = conn_of(socket)?;
    let id = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
    TICKETS.lock().insert(id, res);
    Ok((id, ResourceArc::new(DistTicket { id })))
}

// ---------------------------------------------------------------------------
// The driver entry.

const NAME: &CStr = c"rssl_nif";

struct Entry(std::cell::UnsafeCell<ErlDrvEntry>);
// SAFETY: the VM alone touches the entry (its reserved fields), after
// `driver_init` hands it over.
unsafe impl Sync for Entry {}

static ENTRY: Entry = Entry(std::cell::UnsafeCell::new(ErlDrvEntry {
    init: None,
    start: Some(start),
    stop: Some(stop),
    output: None,
    ready_input: Some(ready_input),
    ready_output: Some(ready_output),
    driver_name: NAME.as_ptr(),
    finish: None,
    handle: std::ptr::null_mut(),
    control: Some(control),
    timeout: Some(timeout),
    outputv: Some(outputv),
    ready_async: None,
    flush: None,
    call: std::ptr::null_mut(),
    unused_event_callback: std::ptr::null_mut(),
    extended_marker: ERL_DRV_EXTENDED_MARKER,
    major_version: ERL_DRV_EXTENDED_MAJOR_VERSION,
    minor_version: ERL_DRV_EXTENDED_MINOR_VERSION,
    driver_flags: ERL_DRV_FLAG_USE_PORT_LOCKING
        | ERL_DRV_FLAG_SOFT_BUSY
        | ERL_DRV_FLAG_NO_BUSY_MSGQ,
    handle2: std::ptr::null_mut(),
    process_exit: std::ptr::null_mut(),
    stop_select: Some(stop_select),
    emergency_close: None,
}));

/// What `erl_ddll` looks up in a driver's library.
#[no_mangle]
pub extern "C" fn driver_init() -> *mut ErlDrvEntry {
    ENTRY.0.get()
}

/// `port_control/3` commands (rssl_dist.erl has the same numbers).
mod command {
    pub const ATTACH: u32 = 1;
    pub const RECV: u32 = 2;
    pub const ACTIVE: u32 = 3;
    pub const GETSTAT: u32 = 4;
    pub const SETOPT: u32 = 5;
    pub const GETOPT: u32 = 6;
}

/// Ciphertext read from the socket per `ready_input`: bounds one
/// callback's work (its decryption) on a scheduler.
const READ_BUDGET: usize = 128 * 1024;
/// Unsent ciphertext above which the port says it is busy (the VM then
/// keeps the distribution's data queued on its side), and below which
/// it is not busy any more.
const BUSY_ABOVE: usize = 256 * 1024;
const NOT_BUSY_BELOW: usize = 64 * 1024;
/// Packets larger than this are decrypted straight into a binary of
/// their own, grown as they arrive, rather than cut out of `plain`.
const LARGE_PACKET: usize = 64 * 1024;
/// Before the node is up the peer has only sent handshake messages:
/// no larger packet, and no more of them waiting to be asked for.
const HANDSHAKE_PACKET_MAX: usize = 64 * 1024;
const HANDSHAKE_QUEUE_MAX: usize = 64 * 1024;
/// Small packets are gathered into writes of up to a record's plaintext
/// (a large packet is encrypted where it is).
const GATHER: usize = MAX_RECORD_PLAINTEXT;
/// Ciphertext that is sent at once rather than at the end of the burst.
const FLUSH_EARLY: usize = 64 * 1024;

enum Mode {
    /// The distribution handshake: packets are queued until asked for
    /// (`wanted`: asked for before one came, so it is sent as a message).
    Passive { wanted: bool },
    /// The node is up: every packet goes to the VM as it comes.
    Active,
}

/// A large packet being decrypted into its binary.
struct Large {
    bin: *mut ErlDrvBinary,
    capacity: usize,
    len: usize,
    filled: usize,
}

struct DistPort {
    port: ErlDrvPort,
    /// The connection, once attached: its resource holds the TLS state.
    res: Option<ResourceArc<ConnRes>>,
    fd: RawFd,
    /// Decrypted plaintext from `pos`: the start of a packet not yet whole.
    plain: Vec<u8>,
    pos: usize,
    large: Option<Large>,
    mode: Mode,
    /// Passive: whole packets not yet asked for.
    queued: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    reading: bool,
    writing: bool,
    busy: bool,
    /// The connection has failed: the port is being taken down.
    failed: bool,
    /// Why, until `guarded` tells the VM (`driver_failure_*`) once the
    /// callback is done: the VM may stop the port, freeing this struct,
    /// from inside that call.
    ending: Option<End>,
    /// Packets received and sent (ticks among them): dist_util's ticker
    /// takes a connection whose received count stands still as dead.
    received: u64,
    sent: u64,
    /// Framed plaintext not yet encrypted (small packets, gathered).
    staged: Vec<u8>,
    /// `end_of_output` is due (a timeout of 0 is queued).
    end_armed: bool,
}

fn event(fd: RawFd) -> ErlDrvEvent {
    fd as isize as ErlDrvEvent
}

/// Runs a callback's body, containing any panic: the port fails, the VM
/// goes on.
fn guarded(p: &mut DistPort, body: impl FnOnce(&mut DistPort)) {
    let port = p.port;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut *p)));
    let end = match run {
        Ok(()) => p.ending.take(),
        Err(_) => None,
    };
    // Last: `p` is not touched after these calls (see `DistPort::ending`).
    // SAFETY: called from a callback of this live port.
    unsafe {
        match (run.is_err(), end) {
            (true, _) => driver_failure_atom(port, c"rssl_dist_panic".as_ptr()),
            (false, Some(End::Posix(e))) => {
                driver_failure_posix(port, e.raw_os_error().unwrap_or(libc::EIO))
            }
            (false, Some(End::Closed)) => driver_failure_atom(port, c"connection_closed".as_ptr()),
            (false, Some(End::Tls)) => driver_failure_atom(port, c"tls_error".as_ptr()),
            (false, Some(End::TooLarge)) => driver_failure_atom(port, c"packet_too_large".as_ptr()),
            (false, None) => 0,
        };
    }
}

/// # Safety
/// `data` is what `start` returned, for a port not yet stopped.
unsafe fn port_data<'a>(data: ErlDrvData) -> &'a mut DistPort {
    &mut *(data as *mut DistPort)
}

// The callbacks. SAFETY (all of them): the VM calls them one at a time per
// port (ERL_DRV_FLAG_USE_PORT_LOCKING), with the `ErlDrvData` that `start`
// returned until `stop` takes it back, and with buffers valid for the call.

unsafe extern "C" fn start(port: ErlDrvPort, _command: *mut libc::c_char) -> ErlDrvData {
    set_port_control_flags(port, PORT_CONTROL_FLAG_BINARY);
    let p = Box::new(DistPort {
        port,
        res: None,
        fd: -1,
        plain: Vec::new(),
        pos: 0,
        large: None,
        mode: Mode::Passive { wanted: false },
        queued: VecDeque::new(),
        queued_bytes: 0,
        reading: false,
        writing: false,
        busy: false,
        failed: false,
        ending: None,
        received: 0,
        sent: 0,
        staged: Vec::new(),
        end_armed: false,
    });
    Box::into_raw(p) as ErlDrvData
}

unsafe extern "C" fn stop(data: ErlDrvData) {
    let mut p = Box::from_raw(data as *mut DistPort);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.stop()));
}

unsafe extern "C" fn stop_select(event: ErlDrvEvent, _reserved: *mut libc::c_void) {
    // The VM no longer polls the descriptor: it is ours to close, once.
    socket::close(event as isize as RawFd);
}

unsafe extern "C" fn ready_input(data: ErlDrvData, _event: ErlDrvEvent) {
    guarded(port_data(data), DistPort::read_socket);
}

unsafe extern "C" fn ready_output(data: ErlDrvData, _event: ErlDrvEvent) {
    guarded(port_data(data), DistPort::flush);
}

unsafe extern "C" fn timeout(data: ErlDrvData) {
    guarded(port_data(data), DistPort::end_of_output);
}

unsafe extern "C" fn outputv(data: ErlDrvData, ev: *mut ErlIOVec) {
    let ev = &*ev;
    let iov: &[libc::iovec] = if ev.vsize > 0 && !ev.iov.is_null() {
        std::slice::from_raw_parts(ev.iov, ev.vsize as usize)
    } else {
        &[]
    };
    let pieces: Vec<&[u8]> = iov
        .iter()
        .filter(|v| v.iov_len > 0)
        .map(|v| std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len))
        .collect();
    guarded(port_data(data), |p| p.send_packet(&pieces, ev.size));
}

unsafe extern "C" fn control(
    data: ErlDrvData,
    command: libc::c_uint,
    buf: *mut libc::c_char,
    len: ErlDrvSizeT,
    rbuf: *mut *mut libc::c_char,
    _rlen: ErlDrvSizeT,
) -> ErlDrvSSizeT {
    let arg: &[u8] = if len > 0 {
        std::slice::from_raw_parts(buf as *const u8, len)
    } else {
        &[]
    };
    // What the caller gets if the command panics (the port then fails).
    let mut reply = error_reply("internal");
    guarded(port_data(data), |p| reply = p.control(command, arg));
    let bin = driver_alloc_binary(reply.len());
    if bin.is_null() {
        return -1;
    }
    binary_bytes(bin, reply.len()).copy_from_slice(&reply);
    *rbuf = bin as *mut libc::c_char;
    reply.len() as ErlDrvSSizeT
}

// ---------------------------------------------------------------------------
// The port's work.

/// Why the connection ended.
enum End {
    Closed,
    Posix(io::Error),
    Tls,
    TooLarge,
}

impl DistPort {
    fn control(&mut self, command: u32, arg: &[u8]) -> Vec<u8> {
        match command {
            command::ATTACH => match arg.try_into().map(u64::from_be_bytes) {
                Ok(id) => self.attach(id),
                Err(_) => error_reply("badarg"),
            },
            command::RECV => self.recv(),
            command::ACTIVE => {
                self.mode = Mode::Active;
                while let Some(packet) = self.queued.pop_front() {
                    self.output(&packet);
                }
                self.queued_bytes = 0;
                self.read_more();
                vec![0]
            }
            command::GETSTAT => {
                let encrypted = self.with_tls(|tls| tls.output().len()).unwrap_or(0);
                let pending = (encrypted + self.staged.len()) as u64;
                let mut out = vec![0];
                for n in [self.received, self.sent, pending] {
                    out.extend(n.to_be_bytes());
                }
                out
            }
            command::SETOPT => self.sockopt(arg, |fd, opt| inet::set(fd, opt).map(|()| vec![0])),
            command::GETOPT => self.sockopt(arg, |fd, like| {
                let mut out = vec![0];
                out.extend(encode_sockopt(inet::get(fd, like)?));
                Ok(out)
            }),
            _ => error_reply("badarg"),
        }
    }

    /// `SETOPT`/`GETOPT`: `call` on the socket with the option `arg`
    /// encodes; the reply, or the error.
    fn sockopt(
        &self,
        arg: &[u8],
        call: impl FnOnce(RawFd, SockOpt) -> io::Result<Vec<u8>>,
    ) -> Vec<u8> {
        match (decode_sockopt(arg), self.fd) {
            (None, _) => error_reply("einval"),
            (Some(_), fd) if fd < 0 => error_reply("closed"),
            (Some(opt), fd) => {
                call(fd, opt).unwrap_or_else(|e| error_reply(crate::posix::error_name(&e)))
            }
        }
    }

    /// Takes the connection `dist_ticket/1` left under `id`.
    fn attach(&mut self, id: u64) -> Vec<u8> {
        if self.res.is_some() {
            return error_reply("already_attached");
        }
        let Some(res) = TICKETS.lock().remove(&id) else {
            return error_reply("no_connection");
        };
        let handed = match res.conn.hand_over() {
            Ok(h) => h,
            Err(_) => return error_reply("closed"),
        };
        self.fd = handed.fd;
        self.plain = handed.plaintext;
        self.res = Some(res);
        // SAFETY: a live port, our descriptor; ERL_DRV_USE makes the VM
        // call stop_select (which closes it) once it is deselected.
        unsafe { driver_select(self.port, event(self.fd), ERL_DRV_READ | ERL_DRV_USE, 1) };
        self.reading = true;
        // The handshake may have left ciphertext to send, and received
        // more than it read.
        self.flush();
        if !self.failed {
            self.take_input();
        }
        vec![0]
    }

    /// A packet for dist_util's `f_recv`: `<<0, 1, Packet>>` if one is
    /// queued, else `<<0>>` and the next one comes as a port message.
    fn recv(&mut self) -> Vec<u8> {
        if let Mode::Active = self.mode {
            return error_reply("active");
        }
        match self.queued.pop_front() {
            Some(packet) => {
                self.queued_bytes -= packet.len();
                self.read_more();
                let mut out = Vec::with_capacity(2 + packet.len());
                out.extend([0, 1]);
                out.extend_from_slice(&packet);
                out
            }
            None => {
                self.mode = Mode::Passive { wanted: true };
                vec![0]
            }
        }
    }

    /// The attached connection (a new reference, so `self` stays free);
    /// None before `attach`.
    fn conn(&self) -> Option<Arc<Conn<ErlHost>>> {
        self.res.as_ref().map(|r| Arc::clone(&r.conn))
    }

    fn with_tls<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        self.res.as_ref().map(|r| r.conn.with_tls_mut(f))
    }

    /// Frames one packet (`total` bytes in `pieces`) and queues it: small
    /// pieces are staged and encrypted together, up to a record's worth,
    /// large ones encrypted where they are. What is queued goes out at
    /// the end of the VM's run of `outputv` calls (`end_of_output`), so a
    /// burst of small messages costs a few records and one system call.
    fn send_packet(&mut self, pieces: &[&[u8]], total: usize) {
        if self.fd < 0 || self.failed {
            return;
        }
        let Ok(header) = u32::try_from(total) else {
            return self.fail(End::TooLarge);
        };
        let Some(conn) = self.conn() else {
            return;
        };
        let staged = &mut self.staged;
        staged.extend_from_slice(&header.to_be_bytes());
        let written = conn.with_tls_mut(|tls| {
            for piece in pieces {
                if staged.len() + piece.len() <= GATHER {
                    staged.extend_from_slice(piece);
                    continue;
                }
                if !staged.is_empty() {
                    tls.write(staged)?;
                    staged.clear();
                }
                tls.write(piece)?;
            }
            Ok::<usize, crate::engine::Error>(tls.output().len())
        });
        match written {
            Ok(encrypted) => {
                self.sent += 1;
                if !matches!(self.mode, Mode::Active) {
                    // The distribution handshake: one message, then an
                    // answer awaited; nothing to gather.
                    return self.end_of_output();
                }
                if encrypted > FLUSH_EARLY && !self.writing {
                    self.flush();
                }
                self.arm_end_of_output();
            }
            Err(_) => self.fail(End::Tls),
        }
    }

    /// Has `end_of_output` run once the current port task is done: a
    /// timeout of 0 is a port task queued at once, after this one.
    fn arm_end_of_output(&mut self) {
        if !self.end_armed {
            self.end_armed = true;
            // SAFETY: a live port with a timeout callback.
            unsafe { driver_set_timer(self.port, 0) };
        }
    }

    /// Encrypts what is staged and sends what the socket takes.
    fn end_of_output(&mut self) {
        self.end_armed = false;
        if self.fd < 0 || self.failed {
            return;
        }
        if self.encrypt_staged().is_err() {
            return self.fail(End::Tls);
        }
        self.flush();
    }

    fn encrypt_staged(&mut self) -> Result<(), crate::engine::Error> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let Some(conn) = self.conn() else {
            return Ok(());
        };
        let staged = &mut self.staged;
        let written = conn.with_tls_mut(|tls| tls.write(staged));
        staged.clear();
        if staged.capacity() > 4 * GATHER {
            *staged = Vec::new();
        }
        written
    }

    /// Writes what the socket takes of the ciphertext waiting; selects
    /// for writing while some is left, and says busy while much is.
    fn flush(&mut self) {
        if self.fd < 0 || self.failed {
            return;
        }
        let fd = self.fd;
        let left = self.with_tls(|tls| loop {
            let out = tls.output();
            if out.is_empty() {
                return Ok(0);
            }
            match socket::write(fd, out) {
                Ok(n) => tls.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out.len()),
                Err(e) => return Err(e),
            }
        });
        let left = match left {
            Some(Ok(left)) => left,
            Some(Err(e)) => return self.fail(End::Posix(e)),
            None => return,
        };
        let want_write = left > 0;
        if want_write != self.writing {
            self.writing = want_write;
            // SAFETY: a live port and its selected descriptor.
            unsafe { driver_select(self.port, event(fd), ERL_DRV_WRITE, want_write as i32) };
        }
        let busy = if self.busy {
            left >= NOT_BUSY_BELOW
        } else {
            left > BUSY_ABOVE
        };
        if busy != self.busy {
            self.busy = busy;
            // SAFETY: a live port, from one of its callbacks.
            unsafe { set_busy_port(self.port, busy as i32) };
        }
    }

    /// Reads what the socket has (up to a budget), decrypts it and hands
    /// out the whole packets.
    fn read_socket(&mut self) {
        if self.fd < 0 || self.failed || !self.reading {
            return;
        }
        let fd = self.fd;
        let read = self.with_tls(|tls| tls.receive_with(READ_BUDGET, |buf| socket::read(fd, buf)));
        match read {
            Some(Ok(0)) => {
                // The end of the stream: what came before it goes first.
                self.take_input();
                self.fail(End::Closed);
            }
            Some(Ok(_)) => self.take_input(),
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Some(Err(e)) => self.fail(End::Posix(e)),
            None => {}
        }
    }

    /// Decrypts what is buffered and hands out the whole packets; then
    /// sends what reading made (a key update's answer, say).
    fn take_input(&mut self) {
        self.cut_packets();
        let Some(conn) = self.conn() else {
            return;
        };
        while !self.failed && !self.paused() {
            let outcome = conn.with_tls_mut(|tls| match &mut self.large {
                Some(large) => large.grow_for_next_record().and_then(|()| {
                    // SAFETY: the binary is ours, `capacity` bytes long.
                    let bytes = unsafe { binary_bytes(large.bin, large.capacity) };
                    tls.read(&mut bytes[large.filled..large.capacity])
                        .map_err(|_| End::Tls)
                }),
                None => tls
                    .read_onto(&mut self.plain, MAX_RECORD_PLAINTEXT)
                    .map_err(|_| End::Tls),
            });
            match outcome {
                Ok(ReadOutcome::Data(n)) => match &mut self.large {
                    Some(large) => {
                        large.filled += n;
                        if large.filled == large.len {
                            self.finish_large();
                        }
                    }
                    None => self.cut_packets(),
                },
                Ok(ReadOutcome::WouldBlock) => break,
                Ok(ReadOutcome::Closed) => {
                    // The peer closed cleanly: our close_notify answers,
                    // which also keeps the session resumable (OpenSSL
                    // drops from its cache the session of a connection
                    // freed before it sent one).
                    self.send_close_notify();
                    return self.fail(End::Closed);
                }
                Err(end) => return self.fail(end),
            }
        }
        self.flush();
    }

    /// Hands out the whole packets at the start of `plain`; a large one
    /// not yet whole moves to a binary of its own.
    fn cut_packets(&mut self) {
        loop {
            let avail = &self.plain[self.pos..];
            if avail.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
            if matches!(self.mode, Mode::Passive { .. }) && len > HANDSHAKE_PACKET_MAX {
                return self.fail(End::TooLarge);
            }
            if avail.len() >= 4 + len {
                let start = self.pos + 4;
                self.pos = start + len;
                let plain = std::mem::take(&mut self.plain);
                self.deliver(&plain[start..start + len]);
                self.plain = plain;
                if self.failed {
                    return;
                }
                continue;
            }
            if len > LARGE_PACKET {
                match Large::new(len, &avail[4..]) {
                    Some(large) => self.large = Some(large),
                    None => return self.fail(End::TooLarge),
                }
                self.pos = self.plain.len();
            }
            break;
        }
        if self.pos == self.plain.len() {
            self.plain.clear();
            self.pos = 0;
        } else if self.pos > self.plain.len() / 2 {
            self.plain.drain(..self.pos);
            self.pos = 0;
        }
        if self.plain.capacity() > 4 * LARGE_PACKET && self.plain.len() < LARGE_PACKET {
            self.plain.shrink_to(LARGE_PACKET);
        }
    }

    fn finish_large(&mut self) {
        let large = self.large.take().expect("a large packet");
        self.received += 1;
        match self.mode {
            Mode::Active => {
                // SAFETY: a live port; the VM takes its own reference to
                // the binary, ours is freed below.
                unsafe {
                    driver_output_binary(self.port, std::ptr::null(), 0, large.bin, 0, large.len)
                };
            }
            Mode::Passive { .. } => {
                // SAFETY: the binary holds `len` bytes.
                let bytes = unsafe { binary_bytes(large.bin, large.len) };
                self.deliver_passive(bytes);
            }
        }
        // SAFETY: our reference, given up once.
        unsafe { driver_free_binary(large.bin) };
    }

    /// One whole packet (a tick if empty).
    fn deliver(&mut self, packet: &[u8]) {
        self.received += 1;
        match self.mode {
            Mode::Active => self.output(packet),
            Mode::Passive { .. } => self.deliver_passive(packet),
        }
    }

    fn deliver_passive(&mut self, packet: &[u8]) {
        if let Mode::Passive { wanted: true } = self.mode {
            self.mode = Mode::Passive { wanted: false };
            return self.output(packet);
        }
        self.queued_bytes += packet.len();
        self.queued.push_back(packet.to_vec());
        if self.queued_bytes > HANDSHAKE_QUEUE_MAX {
            self.select_read(false);
        }
    }

    /// To the VM: once the node is up, the distribution's input; before,
    /// a `{Port, {data, Packet}}` message to the port's owner.
    fn output(&self, packet: &[u8]) {
        if self.failed {
            return;
        }
        // SAFETY: a live port; the VM copies the bytes.
        unsafe { driver_output(self.port, packet.as_ptr().cast(), packet.len()) };
    }

    /// Reading stops while the packets not yet asked for are many.
    fn paused(&self) -> bool {
        matches!(self.mode, Mode::Passive { .. }) && self.queued_bytes > HANDSHAKE_QUEUE_MAX
    }

    fn read_more(&mut self) {
        if !self.paused() && self.fd >= 0 && !self.failed {
            self.select_read(true);
            self.take_input();
        }
    }

    fn select_read(&mut self, on: bool) {
        if self.reading != on && self.fd >= 0 {
            self.reading = on;
            // SAFETY: a live port and its selected descriptor.
            unsafe { driver_select(self.port, event(self.fd), ERL_DRV_READ, on as i32) };
        }
    }

    /// Ends the port, which ends the connection (its linked owner, then
    /// the node's connection, go with it). The VM is told once the
    /// callback is done (`guarded`, `DistPort::ending`).
    fn fail(&mut self, end: End) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.ending = Some(end);
    }

    /// Writes a close_notify after what is queued, as far as the socket
    /// takes it at once: the connection ends here.
    fn send_close_notify(&self) {
        let fd = self.fd;
        self.with_tls(|tls| {
            tls.close();
            let _ = socket::write(fd, tls.output());
        });
    }

    /// The port is closing: a close_notify if the socket takes it, then
    /// the socket leaves the poll set (and `stop_select` closes it).
    fn stop(&mut self) {
        if let Some(large) = self.large.take() {
            // SAFETY: our reference, given up once.
            unsafe { driver_free_binary(large.bin) };
        }
        if self.fd < 0 {
            return;
        }
        let fd = self.fd;
        if !self.failed && self.encrypt_staged().is_ok() {
            self.send_close_notify();
        }
        // SAFETY: a live port and its selected descriptor.
        unsafe {
            driver_select(
                self.port,
                event(fd),
                ERL_DRV_READ | ERL_DRV_WRITE | ERL_DRV_USE,
                0,
            )
        };
        self.fd = -1;
    }
}

impl Large {
    /// A binary for a packet of `len` bytes, starting with `start`; it
    /// grows as the packet arrives, so a length header alone allocates
    /// little.
    fn new(len: usize, start: &[u8]) -> Option<Large> {
        let capacity = len.min(start.len().max(LARGE_PACKET) * 2);
        // SAFETY: plain allocation; checked below.
        let bin = unsafe { driver_alloc_binary(capacity) };
        if bin.is_null() {
            return None;
        }
        // SAFETY: the binary is ours, `capacity` bytes long.
        unsafe { binary_bytes(bin, capacity)[..start.len()].copy_from_slice(start) };
        Some(Large {
            bin,
            capacity,
            len,
            filled: start.len(),
        })
    }

    /// Makes room for a record's plaintext (doubling, up to the packet).
    fn grow_for_next_record(&mut self) -> Result<(), End> {
        if self.capacity - self.filled >= MAX_RECORD_PLAINTEXT || self.capacity == self.len {
            return Ok(());
        }
        let capacity = (self.capacity * 2).min(self.len);
        // SAFETY: our binary, reallocated to a larger size; checked below.
        let bin = unsafe { driver_realloc_binary(self.bin, capacity) };
        if bin.is_null() {
            return Err(End::TooLarge);
        }
        self.bin = bin;
        self.capacity = capacity;
        Ok(())
    }
}

fn error_reply(reason: &str) -> Vec<u8> {
    let mut out = vec![1];
    out.extend_from_slice(reason.as_bytes());
    out
}

/// `<<Code:8, Value:32/signed, Seconds:32/signed>>`, as rssl_dist encodes
/// the socket options it passes on.
fn decode_sockopt(arg: &[u8]) -> Option<SockOpt> {
    let [code, v @ ..] = arg else { return None };
    if v.len() != 8 {
        return None;
    }
    let value = i32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let extra = i32::from_be_bytes([v[4], v[5], v[6], v[7]]);
    Some(match code {
        1 => SockOpt::NoDelay(value != 0),
        2 => SockOpt::KeepAlive(value != 0),
        3 => SockOpt::SndBuf(value),
        4 => SockOpt::RecBuf(value),
        5 => SockOpt::Tos(value),
        6 => SockOpt::Tclass(value),
        7 => SockOpt::Priority(value),
        8 => SockOpt::Linger(value != 0, extra),
        _ => return None,
    })
}

fn encode_sockopt(opt: SockOpt) -> Vec<u8> {
    let (value, extra) = match opt {
        SockOpt::NoDelay(b) | SockOpt::KeepAlive(b) => (b as i32, 0),
        SockOpt::SndBuf(n)
        | SockOpt::RecBuf(n)
        | SockOpt::Tos(n)
        | SockOpt::Tclass(n)
        | SockOpt::Priority(n) => (n, 0),
        SockOpt::Linger(on, secs) => (on as i32, secs),
        SockOpt::ReuseAddr(b) | SockOpt::Ipv6Only(b) => (b as i32, 0),
    };
    let mut out = value.to_be_bytes().to_vec();
    out.extend(extra.to_be_bytes());
    out
}
