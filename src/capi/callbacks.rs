//! Application callbacks in a configuration: certificate verification,
//! partial chains, SNI, PSK and SRP.
//!
//! Every callback gets the `user_data` given with it, runs synchronously in
//! the thread that drives the handshake (inside `rssl_connect`,
//! `rssl_accept`, `rssl_handshake` or `rssl_conn_handshake_step`). The
//! asynchronous verify and SNI callbacks may instead answer `RSSL_PAUSED`:
//! the handshake call then returns `RSSL_PAUSED` at once, and the next one
//! (on the same thread) asks the callback again. Callbacks may run in
//! several threads at once when the configuration is shared:
//! `user_data` must be safe for that. A callback must not call rssl on the
//! connection being handshaken, must not unwind (longjmp) through rssl,
//! and must keep `user_data` valid as long as any configuration built with
//! it lives. These "callback rules" (the C caller's promises) and the
//! pointer rules (see mod.rs) are what every call of a callback relies on.

use super::config::{rssl_config, rssl_config_builder};
use super::error;
use super::result::rssl_result::{self, *};
use crate::engine::hooks::Callback;
use crate::engine::psk::{UserLookup, UserSecret};
use crate::engine::sni::SniChoice;
use crate::engine::verify::{CertCheck, Verdict};
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::task::Poll;

/// A byte string owned by rssl, valid during the callback it is given to.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rssl_bytes {
    pub data: *const u8,
    pub len: usize,
}

/// Verifies one certificate of the peer's chain (OTP's `verify_fun`):
/// called for each certificate from the trust anchor down to the peer's
/// own (`depth` 0), and once more for each problem found. `error` is 0 when
/// OpenSSL found this certificate good, else an `X509_V_ERR_*` code
/// (`rssl_verify_error_name` gives OTP's name, e.g. "unknown_ca",
/// "hostname_check_failed"). Return true to accept the certificate (also
/// despite `error`), false to fail the handshake (with the alert for
/// `error`, or handshake_failure when `error` is 0). Only with
/// `RSSL_VERIFY_PEER`.
pub type rssl_verify_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        cert_der: *const u8,
        cert_len: usize,
        depth: u32,
        error: i32,
    ) -> bool,
>;

/// As `rssl_verify_callback`, for a verification that may answer later:
/// return `RSSL_OK` to accept the certificate, `RSSL_PAUSED` when the answer
/// is not known yet (the handshake call returns `RSSL_PAUSED`; call it again
/// on the same thread once the answer is ready, and this callback is called
/// again with the same arguments), anything else to reject it.
pub type rssl_async_verify_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        cert_der: *const u8,
        cert_len: usize,
        depth: u32,
        error: i32,
    ) -> rssl_result,
>;

/// Picks the trust anchor inside a peer chain that reaches no trusted CA
/// (OTP's `partial_chain`): `chain` holds `count` DER certificates, the
/// peer's own first. Return the index of the certificate to trust, or -1
/// to leave the chain untrusted.
pub type rssl_partial_chain_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, chain: *const rssl_bytes, count: usize) -> i64,
>;

/// Chooses the server configuration for the host name a client sent with
/// SNI (OTP's `sni_fun`; not called without SNI). Return `RSSL_OK` with
/// `*config_out` left NULL for the listening configuration, `RSSL_OK` with
/// a server configuration in `*config_out` to use that one (rssl keeps its
/// own reference: the caller still owns and frees it), anything else to
/// fail the handshake with an `unrecognized_name` alert.
pub type rssl_sni_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        server_name: *const c_char,
        config_out: *mut *const rssl_config,
    ) -> rssl_result,
>;

/// Finds a pre-shared key (OTP's `user_lookup_fun` for psk). On a server,
/// `identity` is what the client sent; on a client, the server's identity
/// hint (NULL with `identity_len` 0 when it sent none). Write the key (at
/// most `key_cap` bytes, 256) to `key_out` and its length to `*key_len`,
/// and return true; false fails the handshake.
pub type rssl_psk_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        identity: *const u8,
        identity_len: usize,
        key_out: *mut u8,
        key_cap: usize,
        key_len: *mut usize,
    ) -> bool,
>;

/// Finds a server's SRP parameters for `username` (OTP's
/// `user_lookup_fun` for srp): the RFC 5054 group size in `*group_bits`
/// (1024, 1536, 2048, 3072, 4096, 6144 or 8192), the salt and the verifier
/// (`rssl_srp_verifier` computes it), each at most its `_cap` bytes (1024)
/// with its length stored. Return false for an unknown user
/// (`unknown_psk_identity` alert).
pub type rssl_srp_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        username: *const c_char,
        group_bits: *mut u32,
        salt_out: *mut u8,
        salt_cap: usize,
        salt_len: *mut usize,
        verifier_out: *mut u8,
        verifier_cap: usize,
        verifier_len: *mut usize,
    ) -> bool,
>;

/// The C side's pointer; the caller promises it may be used from any thread.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: callback rules: the C caller promises that `user_data` may be
// used from any thread, from several at once.
unsafe impl Send for UserData {}
// SAFETY: as for Send.
unsafe impl Sync for UserData {}

#[derive(Clone, Copy)]
pub(crate) struct PskHook(
    unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut u8, usize, *mut usize) -> bool,
    UserData,
);

#[derive(Clone, Copy)]
pub(crate) struct SrpHook(
    unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *mut u32,
        *mut u8,
        usize,
        *mut usize,
        *mut u8,
        usize,
        *mut usize,
    ) -> bool,
    UserData,
);

const PSK_MAX: usize = 256;
const SRP_MAX: usize = 1024;

fn lookup(
    psk: Option<PskHook>,
    srp: Option<SrpHook>,
    query: &UserLookup<'_>,
) -> Option<UserSecret> {
    match *query {
        UserLookup::Psk { identity } => {
            let PskHook(f, ud) = psk?;
            let identity = identity.unwrap_or_default();
            let id_ptr = if identity.is_empty() {
                std::ptr::null()
            } else {
                identity.as_ptr()
            };
            let mut key = [0u8; PSK_MAX];
            let mut len = 0usize;
            // SAFETY: callback rules; the buffers and lengths passed live for the call.
            let ok = unsafe {
                f(
                    ud.0,
                    id_ptr,
                    identity.len(),
                    key.as_mut_ptr(),
                    PSK_MAX,
                    &mut len,
                )
            };
            (ok && len <= PSK_MAX).then(|| UserSecret::Psk(key[..len].to_vec()))
        }
        UserLookup::Srp { username } => {
            let SrpHook(f, ud) = srp?;
            let name = CString::new(username).ok()?;
            let (mut group, mut salt, mut verifier) =
                (0u32, vec![0u8; SRP_MAX], vec![0u8; SRP_MAX]);
            let (mut salt_len, mut verifier_len) = (0usize, 0usize);
            // SAFETY: callback rules; the buffers and lengths passed live for the call.
            let ok = unsafe {
                f(
                    ud.0,
                    name.as_ptr(),
                    &mut group,
                    salt.as_mut_ptr(),
                    SRP_MAX,
                    &mut salt_len,
                    verifier.as_mut_ptr(),
                    SRP_MAX,
                    &mut verifier_len,
                )
            };
            if !ok || salt_len > SRP_MAX || verifier_len > SRP_MAX {
                return None;
            }
            salt.truncate(salt_len);
            verifier.truncate(verifier_len);
            Some(UserSecret::Srp {
                group,
                salt,
                verifier,
            })
        }
    }
}

impl rssl_config_builder {
    fn set_user_lookup(&mut self) {
        let (psk, srp) = (self.psk, self.srp);
        self.options.user_lookup = if psk.is_none() && srp.is_none() {
            None
        } else {
            Some(Callback(Arc::new(move |q: &UserLookup<'_>| {
                Poll::Ready(lookup(psk, srp, q))
            })))
        };
    }

    /// Whether handshakes may pause: with an asynchronous callback set.
    fn set_may_pause(&mut self) {
        self.options.callbacks_may_pause = self.async_verify || self.async_sni;
    }

    /// Sets (or, with `callback` NULL, removes) the per-certificate verify
    /// callback; see `rssl_verify_callback`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_verify_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_verify_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let ud = UserData(user_data);
            // SAFETY (the call in the closure): callback rules; the certificate's
            // bytes live for the call.
            builder.set_verify(callback.map(|f| move |c: &CertCheck<'_>| {
                let ud = ud;
                match unsafe { f(ud.0, c.der.as_ptr(), c.der.len(), c.depth, c.error) } {
                    true => Poll::Ready(Verdict::Accept),
                    false => Poll::Ready(Verdict::Reject),
                }
            }), false);
            RSSL_OK
        }
    }

    /// Sets (or, with `callback` NULL, removes) a verify callback that may
    /// answer later; see `rssl_async_verify_callback`. It replaces any
    /// verify callback set before. While a configuration has an
    /// asynchronous callback, its handshakes run inside OpenSSL's async
    /// jobs, on a 32 KiB stack: every callback of it must use little
    /// stack, and a paused connection must be resumed and freed on the
    /// thread that paused it (another thread gets `RSSL_INVALID_STATE`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_async_verify_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_async_verify_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let ud = UserData(user_data);
            // SAFETY (the call in the closure): callback rules; the certificate's
            // bytes live for the call.
            builder.set_verify(callback.map(|f| move |c: &CertCheck<'_>| {
                let ud = ud;
                match unsafe { f(ud.0, c.der.as_ptr(), c.der.len(), c.depth, c.error) } {
                    RSSL_OK => Poll::Ready(Verdict::Accept),
                    RSSL_PAUSED => Poll::Pending,
                    _ => Poll::Ready(Verdict::Reject),
                }
            }), true);
            RSSL_OK
        }
    }

    fn set_verify<F>(&mut self, fun: Option<F>, may_pause: bool)
    where
        F: Fn(&CertCheck<'_>) -> Poll<Verdict> + Send + Sync + 'static,
    {
        self.async_verify = may_pause && fun.is_some();
        self.options.verify_fun =
            fun.map(|f| Callback(Arc::new(f) as Arc<crate::engine::verify::VerifyFn>));
        self.set_may_pause();
    }

    /// Sets (or removes, with NULL) the partial-chain callback; see
    /// `rssl_partial_chain_callback`. Only with `RSSL_VERIFY_PEER`.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_partial_chain_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_partial_chain_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let ud = UserData(user_data);
            // SAFETY (the call in the closure): callback rules; `items` and the
            // certificates it points to live for the call.
            builder.options.partial_chain = callback.map(|f| {
                let fun = move |chain: &[Vec<u8>]| {
                    let ud = ud;
                    let items: Vec<rssl_bytes> = chain
                        .iter()
                        .map(|c| rssl_bytes { data: c.as_ptr(), len: c.len() })
                        .collect();
                    let index = unsafe { f(ud.0, items.as_ptr(), items.len()) };
                    Poll::Ready(usize::try_from(index).ok().filter(|i| *i < chain.len()))
                };
                Callback(Arc::new(fun) as Arc<crate::engine::verify::PartialChainFn>)
            });
            RSSL_OK
        }
    }

    /// Server: sets (or removes, with NULL) the SNI callback; see
    /// `rssl_sni_callback`. Hosts added with `rssl_config_builder_add_sni_host`
    /// are looked up first.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_sni_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_sni_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.set_sni(callback, user_data, false);
            RSSL_OK
        }
    }

    /// Server: as `rssl_config_builder_set_sni_callback`, for a callback
    /// that may also return `RSSL_PAUSED` when its choice is not known yet:
    /// the handshake call returns `RSSL_PAUSED`, and the callback is called
    /// again when it is called again on the same thread. The rules of
    /// `rssl_config_builder_set_async_verify_callback` apply.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_async_sni_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_sni_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.set_sni(callback, user_data, true);
            RSSL_OK
        }
    }

    fn set_sni(&mut self, callback: rssl_sni_callback, user_data: *mut c_void, may_pause: bool) {
        let ud = UserData(user_data);
        // SAFETY (the calls in the closure): callback rules; `name` and `chosen`
        // live for the call, which leaves `chosen` NULL or a live configuration
        // (rssl_sni_callback's contract).
        self.options.sni_fun = callback.map(|f| {
            let fun = move |name: &str| {
                let ud = ud;
                let Ok(name) = CString::new(name) else {
                    return Poll::Ready(SniChoice::Reject);
                };
                let mut chosen: *const rssl_config = std::ptr::null();
                match unsafe { f(ud.0, name.as_ptr(), &mut chosen) } {
                    RSSL_OK => Poll::Ready(match unsafe { chosen.as_ref() } {
                        None => SniChoice::Default,
                        Some(config) => SniChoice::Use(config.config.clone()),
                    }),
                    RSSL_PAUSED if may_pause => Poll::Pending,
                    _ => Poll::Ready(SniChoice::Reject),
                }
            };
            Callback(Arc::new(fun) as Arc<crate::engine::sni::SniFn>)
        });
        self.async_sni = may_pause && callback.is_some();
        self.set_may_pause();
    }

    /// Server: uses `config` (a server configuration) for clients asking
    /// for `host` with SNI (compared without case; OTP's `sni_hosts`). rssl
    /// keeps its own reference to `config`; the caller still frees it.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_add_sni_host(
        builder: *mut rssl_config_builder,
        host: *const c_char,
        config: *const rssl_config,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            let host = try_str!(host);
            let config = try_ref!(config);
            if config.config.role() != crate::engine::Role::Server {
                return error::invalid_argument("sni host: not a server configuration");
            }
            builder.options.sni_hosts.retain(|(h, _)| !h.eq_ignore_ascii_case(host));
            builder.options.sni_hosts.push((host.to_string(), config.config.clone()));
            RSSL_OK
        }
    }

    /// Sets (or removes, with NULL) the PSK callback; see
    /// `rssl_psk_callback`. PSK needs PSK cipher suites (e.g.
    /// "PSK-AES128-GCM-SHA256" with TLS 1.2) and, on a client, an identity
    /// (`rssl_config_builder_set_psk_identity`).
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_psk_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_psk_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.psk = callback.map(|f| PskHook(f, UserData(user_data)));
            builder.set_user_lookup();
            RSSL_OK
        }
    }

    /// Server: sets (or removes, with NULL) the SRP callback; see
    /// `rssl_srp_callback`. SRP needs TLS 1.2 and SRP cipher suites (e.g.
    /// "SRP-AES-128-CBC-SHA") on both sides.
    #[no_mangle]
    pub unsafe extern "C" fn rssl_config_builder_set_srp_callback(
        builder: *mut rssl_config_builder,
        callback: rssl_srp_callback,
        user_data: *mut c_void,
    ) -> rssl_result {
        ffi_panic_boundary! {
            let builder = try_mut!(builder);
            builder.srp = callback.map(|f| SrpHook(f, UserData(user_data)));
            builder.set_user_lookup();
            RSSL_OK
        }
    }
}

/// Computes the SRP verifier a server stores for `username` and `password`
/// with `salt` (RFC 5054: x = SHA1(salt | SHA1(user ":" password)),
/// v = g^x mod N) in the group of `group_bits`, into `out` as with
/// `rssl_conn_peer_cert` (at most group_bits / 8 bytes).
#[no_mangle]
pub unsafe extern "C" fn rssl_srp_verifier(
    username: *const c_char,
    password: *const c_char,
    salt: *const u8,
    salt_len: usize,
    group_bits: u32,
    out: *mut u8,
    len: usize,
    out_n: *mut usize,
) -> rssl_result {
    ffi_panic_boundary! {
        let username = try_str!(username);
        let password = try_str!(password);
        let salt = try_slice!(salt, salt_len);
        let x = crate::engine::psk::srp_derived_key(username, password, salt);
        match crate::engine::psk::srp_verifier(group_bits, &x) {
            Ok(v) => match super::text::copy_bytes(&v, out, len, out_n) {
                RSSL_OK => RSSL_OK,
                RSSL_NULL_PARAMETER => error::null_parameter("out"),
                other => error::set(other, "verifier: buffer too small"),
            },
            Err(_) => error::invalid_argument(format!("no SRP group of {group_bits} bits")),
        }
    }
}
