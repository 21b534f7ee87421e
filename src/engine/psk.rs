//! Pre-shared keys and SRP: the user lookup function (OTP's
//! `user_lookup_fun`), the client's identities (`psk_identity`,
//! `srp_identity`) and the server's PSK identity hint.

use super::connection::guard;
use super::error::Error;
use super::ffi;
use super::options::{Options, Role};
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_void};
use once_cell::sync::Lazy;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ex_data::Index;
use openssl::hash::{hash, MessageDigest};
use openssl::ssl::{SslContext, SslRef};
use std::ffi::{CStr, CString};
use std::task::Poll;

/// What the lookup function is asked.
#[derive(Debug, Clone, Copy)]
pub enum UserLookup<'a> {
    /// A PSK: on a server, for the identity the client sent; on a client,
    /// for the identity hint the server sent (None when it sent none).
    Psk { identity: Option<&'a [u8]> },
    /// A server's SRP verifier for a user name.
    Srp { username: &'a str },
}

/// The SRP group sizes of RFC 5054, by their bit length.
pub const SRP_GROUPS: [u32; 7] = [1024, 1536, 2048, 3072, 4096, 6144, 8192];

/// What the lookup function answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// The pre-shared key (at most 256 bytes; OpenSSL's limit).
    Psk(Vec<u8>),
    /// SRP parameters for the user: the RFC 5054 group (bits, one of
    /// [`SRP_GROUPS`]), the salt and the verifier (see [`srp_verifier`]).
    Srp {
        group: u32,
        salt: Vec<u8>,
        verifier: Vec<u8>,
    },
}

/// Answers PSK and SRP look-ups; None fails the handshake
/// (`unknown_psk_identity` on a server). Pending: asked again when the
/// handshake resumes (`pause.rs`).
pub type UserLookupFn = dyn Fn(&UserLookup<'_>) -> Poll<Option<UserSecret>> + Send + Sync;

/// The RFC 5054 group of `bits` bits: (N, g).
fn srp_group(
    bits: u32,
) -> Option<(
    &'static openssl::bn::BigNumRef,
    &'static openssl::bn::BigNumRef,
)> {
    if !SRP_GROUPS.contains(&bits) {
        return None;
    }
    let id = CString::new(bits.to_string()).ok()?;
    // SAFETY: a NUL-terminated id; a non-NULL result is a static table entry.
    unsafe {
        let gn = ffi::SRP_get_default_gN(id.as_ptr());
        if gn.is_null() {
            return None;
        }
        // OpenSSL's static tables: they live as long as the process.
        Some((
            openssl::bn::BigNumRef::from_ptr((*gn).n),
            openssl::bn::BigNumRef::from_ptr((*gn).g),
        ))
    }
}

/// The SRP verifier `g^x mod N` for OTP's derived key `x` (a big-endian
/// number) in the group of `group` bits.
pub fn srp_verifier(group: u32, x: &[u8]) -> Result<Vec<u8>, Error> {
    let (n, g) = srp_group(group)
        .ok_or_else(|| Error::Option("srp".into(), format!("no SRP group of {group} bits")))?;
    let internal = |e: openssl::error::ErrorStack| Error::Internal(e.to_string());
    let x = BigNum::from_slice(x).map_err(internal)?;
    let mut v = BigNum::new().map_err(internal)?;
    let mut ctx = BigNumContext::new().map_err(internal)?;
    v.mod_exp(g, &x, n, &mut ctx).map_err(internal)?;
    Ok(v.to_vec())
}

/// RFC 5054's `x = SHA1(salt | SHA1(user ":" password))` (OTP's derived key).
pub fn srp_derived_key(username: &str, password: &str, salt: &[u8]) -> Vec<u8> {
    let inner = hash(
        MessageDigest::sha1(),
        format!("{username}:{password}").as_bytes(),
    )
    .expect("SHA-1");
    hash(MessageDigest::sha1(), &[salt, &inner[..]].concat())
        .expect("SHA-1")
        .to_vec()
}

/// The lookup function of a context, for the SRP callback (raw, so it
/// finds it through the context).
static LOOKUP: Lazy<Index<SslContext, super::hooks::Callback<UserLookupFn>>> =
    Lazy::new(|| SslContext::new_ex_index().expect("SSL_CTX ex_data index"));

pub(crate) fn install(b: &mut openssl::ssl::SslContextBuilder, o: &Options) -> Result<(), Error> {
    let bad = |what: &str| Error::Option(what.into(), "contains a NUL byte".into());
    if let Some(identity) = &o.psk_identity {
        let c_identity = CString::new(identity.as_str()).map_err(|_| bad("psk_identity"))?;
        if o.role == Role::Server {
            // SAFETY: `b` owns a live SSL_CTX; OpenSSL copies the hint.
            unsafe { ffi::SSL_CTX_use_psk_identity_hint(b.as_ptr(), c_identity.as_ptr()) };
        }
    }
    if let Some((user, password)) = &o.srp_identity {
        if o.role == Role::Client {
            let user = CString::new(user.as_str()).map_err(|_| bad("srp_identity"))?;
            let password = CString::new(password.as_str()).map_err(|_| bad("srp_identity"))?;
            // SAFETY: `b` owns a live SSL_CTX; OpenSSL copies both strings.
            unsafe {
                ffi::SSL_CTX_set_srp_username(b.as_ptr(), user.as_ptr() as *mut _);
                ffi::SSL_CTX_set_srp_password(b.as_ptr(), password.as_ptr() as *mut _);
            }
        }
    }
    let Some(lookup) = o.user_lookup.clone() else {
        return Ok(());
    };
    match o.role {
        Role::Client => {
            let identity = o.psk_identity.clone().unwrap_or_default();
            let lookup = lookup.clone();
            b.set_psk_client_callback(move |ssl, hint, identity_out, key_out| {
                guard(Ok(0), || {
                    // (EC)DHE_PSK key exchanges always carry a hint, empty
                    // when the server has none (OpenSSL reports none).
                    let hint = hint.or_else(|| hint_always_sent(ssl).then_some(&b""[..]));
                    let query = UserLookup::Psk { identity: hint };
                    let Some(Some(UserSecret::Psk(key))) =
                        super::pause::answer(ssl, || lookup(&query))
                    else {
                        return Ok(0);
                    };
                    if identity.len() + 1 > identity_out.len() || key.len() > key_out.len() {
                        return Ok(0);
                    }
                    identity_out[..identity.len()].copy_from_slice(identity.as_bytes());
                    identity_out[identity.len()] = 0;
                    key_out[..key.len()].copy_from_slice(&key);
                    Ok(key.len())
                })
            });
        }
        Role::Server => {
            let psk_lookup = lookup.clone();
            b.set_psk_server_callback(move |ssl, identity, key_out| {
                let query = UserLookup::Psk { identity };
                guard(Ok(0), || {
                    match super::pause::answer(ssl, || psk_lookup(&query)) {
                        Some(Some(UserSecret::Psk(key))) if key.len() <= key_out.len() => {
                            key_out[..key.len()].copy_from_slice(&key);
                            Ok(key.len())
                        }
                        _ => Ok(0),
                    }
                })
            });
            b.set_ex_data(*LOOKUP, lookup);
            // SAFETY: `b` owns a live SSL_CTX; the callback finds its lookup in LOOKUP.
            unsafe { ffi::SSL_CTX_set_srp_username_callback(b.as_ptr(), Some(srp_username)) };
        }
    }
    Ok(())
}

/// Whether the suite being negotiated sends a PSK identity hint even when
/// empty (ECDHE_PSK and DHE_PSK; plain PSK sends none).
fn hint_always_sent(ssl: &SslRef) -> bool {
    // SAFETY: a live SSL; the pending cipher is a static OpenSSL table entry.
    unsafe {
        let cipher = ffi::SSL_get_pending_cipher(ssl.as_ptr());
        if cipher.is_null() {
            return false;
        }
        let name = openssl::ssl::SslCipherRef::from_ptr(cipher as *mut _).name();
        name.starts_with("ECDHE-PSK") || name.starts_with("DHE-PSK")
    }
}

impl super::Connection {
    /// Server: the user name of an SRP handshake.
    pub fn srp_username(&self) -> Option<String> {
        // SAFETY: a live SSL; OpenSSL returns NULL without SRP.
        unsafe {
            let name = ffi::SSL_get_srp_username(self.ssl().as_ptr());
            (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
        }
    }
}

/// OpenSSL's SRP server callback: the verifier for the client's user name.
unsafe extern "C" fn srp_username(
    ssl: *mut openssl_sys::SSL,
    alert: *mut c_int,
    _: *mut c_void,
) -> c_int {
    // SAFETY: OpenSSL passes a live SSL in handshake and a writable `alert`;
    // the user name it gives back is its own NUL-terminated copy.
    guard(ffi::SSL3_AL_FATAL, || {
        let fail = || {
            *alert = ffi::SSL_AD_UNKNOWN_PSK_IDENTITY;
            ffi::SSL3_AL_FATAL
        };
        let ssl_ref = SslRef::from_ptr(ssl);
        let Some(lookup) = ssl_ref.ssl_context().ex_data(*LOOKUP) else {
            return fail();
        };
        let name = ffi::SSL_get_srp_username(ssl);
        if name.is_null() {
            return fail();
        }
        let Ok(username) = CStr::from_ptr(name).to_str() else {
            return fail();
        };
        let query = UserLookup::Srp { username };
        let Some(Some(UserSecret::Srp {
            group,
            salt,
            verifier,
        })) = super::pause::answer(ssl_ref, || lookup(&query))
        else {
            return fail();
        };
        let (Some((n, g)), Ok(salt), Ok(verifier)) = (
            srp_group(group),
            BigNum::from_slice(&salt),
            BigNum::from_slice(&verifier),
        ) else {
            return fail();
        };
        // OpenSSL copies every number.
        let ok = ffi::SSL_set_srp_server_param(
            ssl,
            n.as_ptr(),
            g.as_ptr(),
            salt.as_ptr(),
            verifier.as_ptr(),
            std::ptr::null_mut(),
        );
        if ok == 1 {
            0
        } else {
            fail()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foreign_types::ForeignType;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// RFC 5054 Appendix B: user "alice", password "password123", the
    /// 1024-bit group.
    #[test]
    fn srp_matches_the_rfc_5054_test_vector() {
        let salt = hex("BEB25379 D1A8581E B5A72767 3A2441EE");
        let x = srp_derived_key("alice", "password123", &salt);
        assert_eq!(x, hex("94B7555A ABE9127C C58CCF49 93DB6CF8 4D16C124"));
        let v = srp_verifier(1024, &x).unwrap();
        let want = hex(
            "7E273DE8 696FFC4F 4E337D05 B4B375BE B0DDE156 9E8FA00A 9886D812
             9BADA1F1 822223CA 1A605B53 0E379BA4 729FDC59 F105B478 7E5186F5
             C671085A 1447B52A 48CF1970 B4FB6F84 00BBF4CE BFBB1681 52E08AB5
             EA53D15C 1AFF87B2 B9DA6E04 E058AD51 CC72BFC9 033B564E 26480D78
             E955A5E2 9E7AB245 DB2BE315 E2099AFB",
        );
        assert_eq!(v, want);
    }

    /// Each group is RFC 5054's of that size (Appendix A: the prime's bit
    /// length and the generator), and the verifier in it is the one
    /// OpenSSL's own SRP code computes from the user name and password.
    #[test]
    fn srp_verifier_is_g_to_the_x_in_each_group() {
        extern "C" {
            fn SRP_create_verifier_BN(
                user: *const libc::c_char,
                pass: *const libc::c_char,
                salt: *mut *mut openssl_sys::BIGNUM,
                verifier: *mut *mut openssl_sys::BIGNUM,
                n: *const openssl_sys::BIGNUM,
                g: *const openssl_sys::BIGNUM,
            ) -> c_int;
        }
        let generators = [2, 2, 2, 5, 5, 5, 19];
        let salt = b"\x5arssl salt";
        for (bits, g_want) in SRP_GROUPS.into_iter().zip(generators) {
            let (n, g) = srp_group(bits).unwrap();
            assert_eq!(n.num_bits(), bits as i32);
            assert_eq!(g.to_vec(), vec![g_want]);
            let ours = srp_verifier(bits, &srp_derived_key("alice", "secret", salt)).unwrap();
            let user = CString::new("alice").unwrap();
            let pass = CString::new("secret").unwrap();
            let salt_bn = BigNum::from_slice(salt).unwrap();
            let mut salt_ptr = salt_bn.as_ptr();
            let mut v_ptr = std::ptr::null_mut();
            // SAFETY: valid C strings and numbers; with *salt set, OpenSSL
            // uses it and allocates only the verifier, which we then own.
            let theirs = unsafe {
                assert_eq!(
                    SRP_create_verifier_BN(
                        user.as_ptr(),
                        pass.as_ptr(),
                        &mut salt_ptr,
                        &mut v_ptr,
                        n.as_ptr(),
                        g.as_ptr()
                    ),
                    1
                );
                BigNum::from_ptr(v_ptr)
            };
            assert_eq!(ours, theirs.to_vec(), "group {bits}");
        }
        assert!(srp_verifier(1000, &[1]).is_err());
    }
}

#[cfg(test)]
mod handshake_tests {
    use super::*;
    use crate::engine::connection::tests::{handshake_pair, pair};
    use crate::engine::hooks::Callback;
    use crate::engine::{Progress, Version};
    use std::sync::Arc;

    fn lookup(key: &'static [u8]) -> Option<Callback<UserLookupFn>> {
        Some(Callback(Arc::new(move |q: &UserLookup<'_>| {
            Poll::Ready(match q {
                UserLookup::Psk {
                    identity: Some(b"alice"),
                }
                | UserLookup::Psk {
                    identity: Some(b"hint"),
                } => Some(UserSecret::Psk(key.to_vec())),
                UserLookup::Srp { username: "alice" } => {
                    let salt = b"0123456789abcdef".to_vec();
                    let x = srp_derived_key("alice", "secret", &salt);
                    Some(UserSecret::Srp {
                        group: 2048,
                        verifier: srp_verifier(2048, &x).unwrap(),
                        salt,
                    })
                }
                _ => None,
            })
        })))
    }

    fn options(role: Role) -> Options {
        let mut o = Options::new(role);
        o.versions = vec![Version::Tls12];
        o
    }

    #[test]
    fn psk_both_sides_agree() {
        let mut so = options(Role::Server);
        so.cipher_list = Some("PSK-AES128-GCM-SHA256".into());
        so.psk_identity = Some("hint".into());
        so.user_lookup = lookup(b"0123456789abcdef");
        let mut co = options(Role::Client);
        co.cipher_list = Some("PSK-AES128-GCM-SHA256".into());
        co.psk_identity = Some("alice".into());
        co.user_lookup = lookup(b"0123456789abcdef");
        let (mut client, mut server) = pair(co.clone(), so.clone(), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));

        co.user_lookup = lookup(b"another key, not the same");
        let (mut client, mut server) = pair(co, so, "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert!(c.is_err() && s.is_err(), "{c:?} {s:?}");
    }

    #[test]
    fn srp_with_the_right_password_only() {
        let mut so = options(Role::Server);
        so.cipher_list = Some("SRP-AES-128-CBC-SHA".into());
        so.user_lookup = lookup(b"");
        let mut co = options(Role::Client);
        co.cipher_list = Some("SRP-AES-128-CBC-SHA".into());
        co.srp_identity = Some(("alice".into(), "secret".into()));
        let (mut client, mut server) = pair(co.clone(), so.clone(), "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert_eq!((c, s), (Ok(Progress::Done), Ok(Progress::Done)));

        co.srp_identity = Some(("alice".into(), "wrong".into()));
        let (mut client, mut server) = pair(co, so, "localhost");
        let (c, s) = handshake_pair(&mut client, &mut server);
        assert!(c.is_err() || s.is_err(), "{c:?} {s:?}");
    }
}
