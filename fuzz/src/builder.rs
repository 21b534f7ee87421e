//! The C builder target: fuzz bytes read as a program of
//! `rssl_config_builder_*` calls with fuzzed strings, lengths and values,
//! then `rssl_config_builder_build` and, when that succeeds, a memory
//! connection that takes one handshake step. Every call must return a
//! result code other than `RSSL_PANIC`.
//!
//! File options get one of a fixed set of paths (missing, empty, a
//! directory, real PEM files, garbage): arbitrary paths could name devices
//! that never end (/dev/zero).

use super::PKI;
use once_cell::sync::Lazy;
use rssl::capi::config::{rssl_config, rssl_config_builder as B};
use rssl::capi::conn::rssl_conn;
use rssl::capi::error::rssl_error_string;
use rssl::capi::rssl_result;
use std::ffi::{c_char, CString};
use std::path::PathBuf;
use std::ptr;

/// The bytes of a program, consumed front to back; missing bytes read as 0.
struct Program<'a> {
    data: &'a [u8],
}

impl<'a> Program<'a> {
    fn done(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to 255 bytes, length first.
    fn bytes(&mut self) -> &'a [u8] {
        let n = (self.u8() as usize).min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }

    /// A C string: the bytes up to the first NUL.
    fn string(&mut self) -> CString {
        let bytes = self.bytes();
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        CString::new(&bytes[..end]).expect("no NUL inside")
    }

    fn strings(&mut self) -> Vec<CString> {
        (0..self.u8() % 5).map(|_| self.string()).collect()
    }

    fn path(&mut self) -> CString {
        let i = self.u8() as usize % FILES.len();
        FILES[i].clone()
    }

    /// A certificate-like blob: fuzzed bytes, or the real ones (PEM or
    /// DER) so that later calls see a builder that can build.
    fn blob(&mut self) -> (Vec<u8>, u32) {
        let format = self.u32() % 4;
        match self.u8() % 4 {
            0 => (PKI.cert.clone(), 2),
            1 => (PKI.key.clone(), 2),
            2 => (PKI.ca.clone(), 2),
            _ => (self.bytes().to_vec(), format),
        }
    }
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let text = openssl::base64::encode_block(der);
    let mut out = format!("-----BEGIN {label}-----\n").into_bytes();
    for line in text.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    out
}

/// The paths a program may name, made once per process.
static FILES: Lazy<Vec<CString>> = Lazy::new(|| {
    let dir: PathBuf = std::env::temp_dir().join(format!("rssl-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files = [
        ("cert.pem", pem("CERTIFICATE", &PKI.cert)),
        ("key.pem", pem("PRIVATE KEY", &pkcs8(&PKI.key))),
        ("ca.pem", pem("CERTIFICATE", &PKI.ca)),
        (
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64\n".to_vec(),
        ),
        ("empty.pem", Vec::new()),
    ];
    let mut paths: Vec<CString> = files
        .iter()
        .map(|(name, content)| {
            let path = dir.join(name);
            std::fs::write(&path, content).expect("write fuzz file");
            CString::new(path.to_string_lossy().as_bytes()).expect("path")
        })
        .collect();
    paths.push(CString::new(dir.join("missing.pem").to_string_lossy().as_bytes()).expect("path"));
    paths.push(CString::new(dir.to_string_lossy().as_bytes()).expect("path"));
    paths.push(CString::new("").expect("path"));
    paths
});

fn pkcs8(ec_der: &[u8]) -> Vec<u8> {
    let key = openssl::ec::EcKey::private_key_from_der(ec_der).expect("EC key");
    let key = openssl::pkey::PKey::from_ec_key(key).expect("PKey");
    key.private_key_to_pkcs8().expect("PKCS#8")
}

/// A call's result: never a caught panic. After a failure the thread's
/// error string must be readable.
fn check(result: rssl_result) {
    assert_ne!(result, rssl_result::RSSL_PANIC, "a builder call panicked");
    if result != rssl_result::RSSL_OK {
        let mut buf = [0 as c_char; 64];
        let mut n = 0usize;
        // SAFETY: buf is writable for its length; n is a valid out pointer.
        let r = unsafe { rssl_error_string(buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_ne!(r, rssl_result::RSSL_PANIC);
    }
}

fn ptrs(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).collect()
}

/// Runs the program in `data` (see the module comment).
pub fn c_config_builder(data: &[u8]) {
    let mut p = Program { data };
    let role = p.u32() % 4; // 1 and 2 are roles; 0 and 3 must be refused
    let mut b: *mut B = ptr::null_mut();
    // SAFETY: b is a valid out pointer.
    let r = unsafe { B::rssl_config_builder_new(role, &mut b) };
    check(r);
    if r != rssl_result::RSSL_OK {
        assert!(b.is_null() || role == 1 || role == 2);
        return;
    }
    let mut steps = 0;
    while !p.done() && steps < 64 {
        steps += 1;
        // SAFETY: b is a live builder from rssl_config_builder_new; every
        // pointer passed is to a live CString, Vec or local for the call.
        unsafe { call(b, &mut p) };
    }
    // SAFETY: b is live; freed once, after its last use.
    unsafe {
        build_and_connect(b);
        B::rssl_config_builder_free(b);
    }
}

/// One builder call chosen by the next byte.
///
/// # Safety
/// `b` must be a live builder.
unsafe fn call(b: *mut B, p: &mut Program) {
    let op = p.u8() % 34;
    let r = match op {
        0 => B::rssl_config_builder_set_certfile(b, p.path().as_ptr()),
        1 => B::rssl_config_builder_set_keyfile(b, p.path().as_ptr()),
        2 => B::rssl_config_builder_set_password(b, p.string().as_ptr()),
        3 => B::rssl_config_builder_set_cacertfile(b, p.path().as_ptr()),
        4 => {
            let (d, f) = p.blob();
            B::rssl_config_builder_set_cert(b, d.as_ptr(), d.len(), f)
        }
        5 => {
            let (d, f) = p.blob();
            B::rssl_config_builder_set_key(b, d.as_ptr(), d.len(), f)
        }
        6 => {
            let (d, f) = p.blob();
            B::rssl_config_builder_set_cacerts(b, d.as_ptr(), d.len(), f)
        }
        7 => B::rssl_config_builder_set_verify(b, p.u32() % 3),
        8 => B::rssl_config_builder_set_depth(b, p.u32()),
        9 => B::rssl_config_builder_set_fail_if_no_peer_cert(b, p.bool()),
        10 => B::rssl_config_builder_set_version_range(b, p.u16(), p.u16()),
        11 => {
            let versions: Vec<u16> = (0..p.u8() % 6).map(|_| 0x0300 | (p.u16() % 6)).collect();
            B::rssl_config_builder_set_versions(b, versions.as_ptr(), versions.len())
        }
        12 => B::rssl_config_builder_set_ciphers(b, p.string().as_ptr()),
        13 => B::rssl_config_builder_set_ciphersuites(b, p.string().as_ptr()),
        14 => {
            let list = p.strings();
            let ptrs = ptrs(&list);
            B::rssl_config_builder_set_alpn(b, ptrs.as_ptr(), ptrs.len())
        }
        15 => B::rssl_config_builder_set_honor_cipher_order(b, p.bool()),
        16 => B::rssl_config_builder_set_groups(b, p.string().as_ptr()),
        17 => B::rssl_config_builder_set_sigalgs(b, p.string().as_ptr()),
        18 => {
            let d = p.bytes();
            B::rssl_config_builder_set_dh(b, d.as_ptr(), d.len())
        }
        19 => B::rssl_config_builder_set_dhfile(b, p.path().as_ptr()),
        20 => B::rssl_config_builder_set_reuse_sessions(b, p.bool()),
        21 => B::rssl_config_builder_set_session_tickets(b, p.u32()),
        22 => B::rssl_config_builder_set_secure_renegotiate(b, p.bool()),
        23 => B::rssl_config_builder_set_client_renegotiation(b, p.bool()),
        24 => B::rssl_config_builder_set_fallback(b, p.bool()),
        25 => B::rssl_config_builder_add_crlfile(b, p.path().as_ptr()),
        26 => {
            let (d, f) = p.blob();
            B::rssl_config_builder_add_crls(b, d.as_ptr(), d.len(), f)
        }
        27 => B::rssl_config_builder_set_crl_check(b, p.u32() % 6),
        28 => {
            let list = p.strings();
            let ptrs = ptrs(&list);
            B::rssl_config_builder_set_npn_advertised(b, ptrs.as_ptr(), ptrs.len())
        }
        29 => {
            let list = p.strings();
            let ptrs = ptrs(&list);
            let fallback = p.string();
            B::rssl_config_builder_set_npn_preferred(
                b,
                ptrs.as_ptr(),
                ptrs.len(),
                p.u32() % 4,
                fallback.as_ptr(),
            )
        }
        30 => B::rssl_config_builder_set_psk_identity(b, p.string().as_ptr()),
        31 => {
            let (user, pass) = (p.string(), p.string());
            B::rssl_config_builder_set_srp_identity(b, user.as_ptr(), pass.as_ptr())
        }
        32 => {
            // A NULL where a pointer belongs is refused, not followed.
            B::rssl_config_builder_set_ciphers(b, ptr::null())
        }
        _ => {
            build_and_connect(b);
            rssl_result::RSSL_OK
        }
    };
    check(r);
}

/// Builds; on success makes a memory connection, takes one handshake step
/// and frees both.
///
/// # Safety
/// `b` must be a live builder.
unsafe fn build_and_connect(b: *mut B) {
    let mut config: *const rssl_config = ptr::null();
    let r = B::rssl_config_builder_build(b, &mut config);
    check(r);
    if r != rssl_result::RSSL_OK {
        assert!(config.is_null(), "a failed build returned a configuration");
        return;
    }
    let host = CString::new("localhost").expect("host");
    let mut conn: *mut rssl_conn = ptr::null_mut();
    let r = rssl_conn::rssl_conn_new(config, host.as_ptr(), &mut conn);
    check(r);
    if r == rssl_result::RSSL_OK {
        check_step(rssl_conn::rssl_conn_handshake_step(conn));
        rssl_conn::rssl_conn_free(conn);
    }
    rssl_config::rssl_config_free(config);
}

fn check_step(r: rssl_result) {
    assert_ne!(r, rssl_result::RSSL_PANIC, "a handshake step panicked");
}
