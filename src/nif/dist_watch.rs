//! The distribution controller's wait on its socket in the VM's own poll
//! set (`enif_select`), and the reads it then makes on its scheduler.
//!
//! A watch is a resource of a type of our own, opened through the raw
//! `enif_*` API: `enif_select` needs the type's `stop` callback, which
//! rustler cannot register. It holds a duplicate of the connection's
//! socket, which only the VM's poll set uses (the connection reads and
//! writes its own descriptor), and the connection. The duplicate is
//! closed once, by `stop`: when the controller dies the `down` callback
//! deselects it (`ERL_NIF_SELECT_STOP`), and the VM calls `stop` once the
//! descriptor is out of its poll set.

use super::atoms;
use super::host::{ErlBuffer, ErlHost, Waiter};
use super::socket::conn_of;
use super::terms::{binary, failure_term};
use crate::driver::{Conn, Message, Outbox, ReadHere, Reply, SocketOptions};
use rustler::sys::{
    c_int, c_void, enif_alloc_resource, enif_get_resource, enif_init_resource_type,
    enif_make_resource, enif_monitor_process, enif_release_resource, enif_select, ErlNifEnv,
    ErlNifEvent, ErlNifMonitor, ErlNifPid, ErlNifResourceDown, ErlNifResourceDtor,
    ErlNifResourceFlags, ErlNifResourceStop, ErlNifResourceType, ErlNifResourceTypeInit,
    ERL_NIF_SELECT_READ, ERL_NIF_SELECT_STOP,
};
use rustler::{Encoder, Env, NifResult, Term};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;

/// Ciphertext one read takes before the controller gets its packets (and
/// reads again, or waits): about 30 us of decryption and copying.
const READ_BUDGET: usize = 128 * 1024;
/// Plaintext that a normal scheduler may copy out in one call; more is
/// copied on a dirty one (a packet over 8 MiB is not decrypted straight
/// into its own binary, see driver/input.rs).
pub(super) const COPY_LIMIT: usize = 1024 * 1024;

/// What a watch resource holds.
struct Watch {
    /// The duplicate the VM polls; -1 once `stop` closed it.
    fd: AtomicI32,
    conn: Arc<Conn<ErlHost>>,
}

static WATCH_TYPE: AtomicPtr<ErlNifResourceType> = AtomicPtr::new(ptr::null_mut());

/// Opens the watch resource type (in the NIF's load).
pub fn open_type(env: Env) -> bool {
    let init = ErlNifResourceTypeInit {
        dtor: watch_dtor as *const ErlNifResourceDtor,
        stop: watch_stop as *const ErlNifResourceStop,
        down: watch_down as *const ErlNifResourceDown,
        members: 3,
        dyncall: ptr::null(),
    };
    let mut tried = MaybeUninit::uninit();
    // SAFETY: called from the load callback with its env; the name is
    // NUL-terminated and `init` lives for the call (the VM copies it).
    let ty = unsafe {
        enif_init_resource_type(
            env.as_c_arg(),
            c"rssl_dist_watch".as_ptr(),
            &init,
            ErlNifResourceFlags::ERL_NIF_RT_CREATE,
            tried.as_mut_ptr(),
        )
    };
    WATCH_TYPE.store(ty as *mut _, Ordering::Release);
    !ty.is_null()
}

/// The watch behind a term, if it is one.
fn watch_of<'a>(env: Env<'a>, term: Term<'a>) -> NifResult<&'a Watch> {
    let ty = WATCH_TYPE.load(Ordering::Acquire);
    let mut obj: *const c_void = ptr::null();
    // SAFETY: `ty` is our opened type (or null, which enif_get_resource
    // refuses); the term and env are the caller's.
    let ok = unsafe { enif_get_resource(env.as_c_arg(), term.as_c_arg(), ty, &mut obj) };
    if ok == 0 || obj.is_null() {
        return Err(rustler::Error::BadArg);
    }
    // SAFETY: a resource of our type holds an initialized `Watch` (written
    // before its first term was made) until its destructor, which cannot
    // run while the caller's term references it.
    Ok(unsafe { &*(obj as *const Watch) })
}

unsafe extern "C" fn watch_dtor(_env: *mut ErlNifEnv, obj: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the VM calls the destructor once, on a resource of our
        // type, whose `Watch` was written before any term existed.
        let watch = unsafe { &*(obj as *const Watch) };
        // Never selected or stopped (the VM keeps a selected resource
        // alive until `stop`): the descriptor is still ours to close.
        close_once(&watch.fd);
        // SAFETY: as above; nothing uses the `Watch` after its destructor.
        unsafe { ptr::drop_in_place(obj as *mut Watch) };
    });
}

unsafe extern "C" fn watch_stop(
    _env: *mut ErlNifEnv,
    obj: *mut c_void,
    _event: ErlNifEvent,
    _is_direct_call: c_int,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the VM calls `stop` on a live resource of our type.
        let watch = unsafe { &*(obj as *const Watch) };
        close_once(&watch.fd);
    });
}

/// The controller died: the descriptor leaves the poll set, and `stop`
/// closes it.
unsafe extern "C" fn watch_down(
    env: *mut ErlNifEnv,
    obj: *mut c_void,
    _pid: *const ErlNifPid,
    _mon: *const ErlNifMonitor,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the VM calls `down` on a live resource of our type, with
        // an env valid for the call.
        let (watch, env) = unsafe { (&*(obj as *const Watch), Env::new(&env, env)) };
        deselect(env, watch, obj);
    });
}

fn close_once(fd: &AtomicI32) {
    let fd = fd.swap(-1, Ordering::AcqRel);
    if fd >= 0 {
        crate::driver::socket::close(fd);
    }
}

/// Takes the descriptor out of the poll set; `stop` closes it (at once, or
/// later if a poll thread is using it).
fn deselect(env: Env, watch: &Watch, obj: *mut c_void) {
    let fd = watch.fd.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    let undefined = atoms::undefined().encode(env).as_c_arg();
    // SAFETY: `obj` is the live watch resource that owns `fd`; STOP needs no pid.
    unsafe {
        enif_select(
            env.as_c_arg(),
            fd,
            ERL_NIF_SELECT_STOP,
            obj,
            ptr::null(),
            undefined,
        )
    };
}

/// `dist_read_here(Socket)`: the connection is read by the calling
/// process from now on (see `Conn::read_on_caller`); `{ok, Watch}`, then
/// `{select, Watch, undefined, ready_input}` comes whenever `dist_recv/1`
/// is due. The caller must call `dist_recv/1` at once (data may already
/// be buffered); the watch ends with the caller.
#[rustler::nif]
fn dist_read_here<'a>(env: Env<'a>, socket: Term<'a>) -> NifResult<Term<'a>> {
    let res = conn_of(socket)?;
    let fd = match res.conn.read_on_caller() {
        Ok(fd) => fd,
        Err(f) => return Ok(super::terms::error_tuple(env, &f)),
    };
    let ty = WATCH_TYPE.load(Ordering::Acquire);
    // SAFETY: `ty` is our type, opened in load (else the library did not load).
    let obj = unsafe { enif_alloc_resource(ty, std::mem::size_of::<Watch>()) };
    if obj.is_null() {
        crate::driver::socket::close(fd);
        return Err(rustler::Error::BadArg);
    }
    let watch = Watch {
        fd: AtomicI32::new(fd),
        conn: res.conn.clone(),
    };
    // SAFETY: `obj` is fresh, suitably aligned resource memory of
    // `size_of::<Watch>()` bytes, written once before anything reads it.
    unsafe { ptr::write(obj as *mut Watch, watch) };
    // SAFETY: `obj` is a live resource of ours; the term keeps it alive
    // after we release our own reference.
    let term = unsafe {
        let term = Term::new(env, enif_make_resource(env.as_c_arg(), obj));
        let mut mon = MaybeUninit::<ErlNifMonitor>::uninit();
        let pid = env.pid();
        if enif_monitor_process(env.as_c_arg(), obj, pid.as_c_arg(), mon.as_mut_ptr()) != 0 {
            // Cannot happen for the calling process; if it does, nobody
            // would deselect: stop now.
            deselect(env, &*(obj as *const Watch), obj);
        }
        enif_release_resource(obj);
        term
    };
    Ok((atoms::ok(), term).encode(env))
}

/// `dist_recv(Watch)`: reads what the socket has (within a budget) and
/// returns the packets, in order: `{ok, Packets}` (the socket is empty;
/// the watch is armed again), `{more, Packets}` (call again at once),
/// `{large, Packets}` (call `dist_recv_dirty/1` at once), `{closed,
/// Packets}` or `{error, Reason, Packets}` (the end).
#[rustler::nif]
fn dist_recv<'a>(env: Env<'a>, watch: Term<'a>) -> NifResult<Term<'a>> {
    recv(env, watch, Some(COPY_LIMIT))
}

/// `dist_recv/1` for a packet too large to copy on a normal scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn dist_recv_dirty<'a>(env: Env<'a>, watch: Term<'a>) -> NifResult<Term<'a>> {
    recv(env, watch, None)
}

fn recv<'a>(env: Env<'a>, term: Term<'a>, copy_limit: Option<usize>) -> NifResult<Term<'a>> {
    let watch = watch_of(env, term)?;
    let mut collect = Collect {
        env,
        packets: Vec::new(),
        bytes: 0,
        end: None,
    };
    let outcome = watch.conn.read_here(READ_BUDGET, copy_limit, &mut collect);
    let percent = (collect.bytes / 1280).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent);
    let packets = collect.packets.encode(env);
    Ok(match outcome {
        ReadHere::Drained => match arm(env, watch) {
            Ok(()) => (atoms::ok(), packets).encode(env),
            Err(r) => (atoms::error(), (atoms::select(), r), packets).encode(env),
        },
        ReadHere::More => (atoms::more(), packets).encode(env),
        ReadHere::Large => (atoms::large(), packets).encode(env),
        ReadHere::Ended => match collect.end {
            Some(reason) => (atoms::error(), reason, packets).encode(env),
            None => (atoms::closed(), packets).encode(env),
        },
    })
}

/// Has `{select, Watch, undefined, ready_input}` sent to the caller once
/// the socket is readable (at once if it already is); the VM's result if
/// it refused.
fn arm(env: Env, watch: &Watch) -> Result<(), c_int> {
    let fd = watch.fd.load(Ordering::Acquire);
    if fd < 0 {
        // Stopped: its controller is gone.
        return Err(-1);
    }
    let pid = env.pid();
    let undefined = atoms::undefined().encode(env).as_c_arg();
    let obj = (watch as *const Watch) as *mut c_void;
    // SAFETY: `obj` is the live watch (the caller's term holds it) and `fd`
    // its descriptor, which only `stop` closes, after the controller died.
    let r = unsafe {
        enif_select(
            env.as_c_arg(),
            fd,
            ERL_NIF_SELECT_READ,
            obj,
            pid.as_c_arg(),
            undefined,
        )
    };
    if r < 0 {
        Err(r)
    } else {
        Ok(())
    }
}

/// Gathers what a read hands out into the caller's terms.
pub(super) struct Collect<'a> {
    env: Env<'a>,
    pub packets: Vec<Term<'a>>,
    pub bytes: usize,
    /// The failure input ended with, if it failed.
    pub end: Option<Term<'a>>,
}

impl<'a> Collect<'a> {
    pub fn new(env: Env<'a>) -> Self {
        Collect {
            env,
            packets: Vec::new(),
            bytes: 0,
            end: None,
        }
    }
}

impl Outbox<ErlHost> for Collect<'_> {
    fn to_owner(&mut self, _: &super::host::Owner, _: &SocketOptions, message: Message<'_>) {
        match message {
            Message::Data(data) => {
                self.bytes += data.len();
                self.packets.push(binary(self.env, data));
            }
            Message::Error(failure) => self.end = Some(failure_term(self.env, failure)),
            Message::Closed => {}
            // Not for an active binary socket without manual tickets.
            Message::Passive | Message::SessionTicket(_) | Message::EarlyData(_) => {}
        }
    }

    fn packet_to_owner(&mut self, _: &super::host::Owner, _: &SocketOptions, packet: ErlBuffer) {
        self.bytes += packet.len();
        self.packets.push(packet.into_term(self.env));
    }

    fn reply(&mut self, waiter: Waiter, options: &SocketOptions, reply: Reply<'_>) {
        super::host::CallerOutbox { env: self.env }.reply(waiter, options, reply);
    }
}
