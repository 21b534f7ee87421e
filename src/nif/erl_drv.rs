//! The parts of OTP's port driver API (`erl_driver.h`, OTP 25: extended
//! version 3.3) that the distribution port driver uses. The VM resolves
//! these symbols when it loads the library, as it does `enif_*`.

#![allow(non_camel_case_types)]

use libc::{c_char, c_int, c_uint, c_void, iovec};

pub type ErlDrvPort = *mut c_void;
pub type ErlDrvData = *mut c_void;
/// A descriptor, cast to a pointer.
pub type ErlDrvEvent = *mut c_void;
pub type ErlDrvSizeT = usize;
pub type ErlDrvSSizeT = isize;

#[repr(C)]
pub struct ErlDrvBinary {
    pub orig_size: isize,
    /// The data follows (a flexible array in C).
    pub orig_bytes: [u8; 1],
}

#[repr(C)]
pub struct ErlIOVec {
    pub vsize: c_int,
    pub size: ErlDrvSizeT,
    pub iov: *mut iovec,
    pub binv: *mut *mut ErlDrvBinary,
}

#[repr(C)]
pub struct ErlDrvEntry {
    pub init: Option<unsafe extern "C" fn() -> c_int>,
    pub start: Option<unsafe extern "C" fn(ErlDrvPort, *mut c_char) -> ErlDrvData>,
    pub stop: Option<unsafe extern "C" fn(ErlDrvData)>,
    pub output: Option<unsafe extern "C" fn(ErlDrvData, *mut c_char, ErlDrvSizeT)>,
    pub ready_input: Option<unsafe extern "C" fn(ErlDrvData, ErlDrvEvent)>,
    pub ready_output: Option<unsafe extern "C" fn(ErlDrvData, ErlDrvEvent)>,
    pub driver_name: *const c_char,
    pub finish: Option<unsafe extern "C" fn()>,
    pub handle: *mut c_void,
    pub control: Option<
        unsafe extern "C" fn(
            ErlDrvData,
            c_uint,
            *mut c_char,
            ErlDrvSizeT,
            *mut *mut c_char,
            ErlDrvSizeT,
        ) -> ErlDrvSSizeT,
    >,
    pub timeout: Option<unsafe extern "C" fn(ErlDrvData)>,
    pub outputv: Option<unsafe extern "C" fn(ErlDrvData, *mut ErlIOVec)>,
    pub ready_async: Option<unsafe extern "C" fn(ErlDrvData, *mut c_void)>,
    pub flush: Option<unsafe extern "C" fn(ErlDrvData)>,
    pub call: *mut c_void,
    pub unused_event_callback: *mut c_void,
    pub extended_marker: c_int,
    pub major_version: c_int,
    pub minor_version: c_int,
    pub driver_flags: c_int,
    pub handle2: *mut c_void,
    pub process_exit: *mut c_void,
    pub stop_select: Option<unsafe extern "C" fn(ErlDrvEvent, *mut c_void)>,
    pub emergency_close: Option<unsafe extern "C" fn(ErlDrvData)>,
}

pub const ERL_DRV_EXTENDED_MARKER: c_int = 0xfeeeeeed_u32 as c_int;
pub const ERL_DRV_EXTENDED_MAJOR_VERSION: c_int = 3;
pub const ERL_DRV_EXTENDED_MINOR_VERSION: c_int = 3;
pub const ERL_DRV_FLAG_USE_PORT_LOCKING: c_int = 1;
pub const ERL_DRV_FLAG_SOFT_BUSY: c_int = 2;
pub const ERL_DRV_FLAG_NO_BUSY_MSGQ: c_int = 4;
pub const PORT_CONTROL_FLAG_BINARY: c_int = 1;
pub const ERL_DRV_READ: c_int = 1;
pub const ERL_DRV_WRITE: c_int = 2;
pub const ERL_DRV_USE: c_int = 4;

extern "C" {
    pub fn driver_select(port: ErlDrvPort, event: ErlDrvEvent, mode: c_int, on: c_int) -> c_int;
    pub fn driver_output(port: ErlDrvPort, buf: *const c_char, len: ErlDrvSizeT) -> c_int;
    pub fn driver_output_binary(
        port: ErlDrvPort,
        hbuf: *const c_char,
        hlen: ErlDrvSizeT,
        bin: *mut ErlDrvBinary,
        offset: ErlDrvSizeT,
        len: ErlDrvSizeT,
    ) -> c_int;
    pub fn driver_alloc_binary(size: ErlDrvSizeT) -> *mut ErlDrvBinary;
    pub fn driver_free_binary(bin: *mut ErlDrvBinary);
    pub fn driver_realloc_binary(bin: *mut ErlDrvBinary, size: ErlDrvSizeT) -> *mut ErlDrvBinary;
    pub fn driver_failure_atom(port: ErlDrvPort, name: *const c_char) -> c_int;
    pub fn driver_failure_posix(port: ErlDrvPort, error: c_int) -> c_int;
    pub fn set_busy_port(port: ErlDrvPort, on: c_int);
    pub fn driver_set_timer(port: ErlDrvPort, time: libc::c_ulong) -> c_int;
    pub fn set_port_control_flags(port: ErlDrvPort, flags: c_int);
}

/// The bytes of a binary the driver allocated.
///
/// # Safety
/// `bin` is a live binary of `len` bytes or more, used by nobody else.
pub unsafe fn binary_bytes<'a>(bin: *mut ErlDrvBinary, len: usize) -> &'a mut [u8] {
    std::slice::from_raw_parts_mut((*bin).orig_bytes.as_mut_ptr(), len)
}
