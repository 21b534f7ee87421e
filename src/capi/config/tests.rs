//! The builder through its C entry points.

use super::*;
use crate::engine::connection::tests::test_pki;
use std::ptr;

fn builder(role: rssl_role) -> *mut rssl_config_builder {
    let mut b = ptr::null_mut();
    // SAFETY: a live output pointer.
    let r = unsafe { rssl_config_builder::rssl_config_builder_new(role as u32, &mut b) };
    assert_eq!(r, RSSL_OK);
    b
}

#[test]
fn version_constants_are_the_wire_values() {
    use rssl_version::*;
    for v in [RSSL_TLS1_0, RSSL_TLS1_1, RSSL_TLS1_2, RSSL_TLS1_3] {
        assert_eq!(
            Version::from_wire(v as u16).map(Version::wire),
            Some(v as u16)
        );
    }
    assert_eq!(Version::from_wire(0x0300), None);
}

#[test]
fn server_config_from_memory_builds() {
    let pki = test_pki();
    // SAFETY: pointers to live locals, and handles from these calls, each
    // freed once.
    unsafe {
        let b = builder(rssl_role::RSSL_ROLE_SERVER);
        let r = rssl_config_builder::rssl_config_builder_set_cert(
            b,
            pki.cert.as_ptr(),
            pki.cert.len(),
            rssl_format::RSSL_FORMAT_DER as u32,
        );
        assert_eq!(r, RSSL_OK);
        let r = rssl_config_builder::rssl_config_builder_set_key(
            b,
            pki.key.as_ptr(),
            pki.key.len(),
            rssl_format::RSSL_FORMAT_DER as u32,
        );
        assert_eq!(r, RSSL_OK);
        let mut config = ptr::null();
        assert_eq!(
            rssl_config_builder::rssl_config_builder_build(b, &mut config),
            RSSL_OK
        );
        assert!(!config.is_null());
        rssl_config::rssl_config_free(config);
        rssl_config_builder::rssl_config_builder_free(b);
    }
}

#[test]
fn bad_arguments_are_reported() {
    // SAFETY: pointers to live locals, and handles from these calls, each
    // freed once.
    unsafe {
        let mut b = ptr::null_mut();
        assert_eq!(
            rssl_config_builder::rssl_config_builder_new(7, &mut b),
            RSSL_INVALID_ARGUMENT
        );
        assert!(b.is_null());
        let b = builder(rssl_role::RSSL_ROLE_CLIENT);
        assert_eq!(
            rssl_config_builder::rssl_config_builder_set_versions(b, [0x0200u16].as_ptr(), 1),
            RSSL_INVALID_ARGUMENT
        );
        assert_eq!(
            rssl_config_builder::rssl_config_builder_set_version_range(b, 0x0304, 0x0303),
            RSSL_INVALID_ARGUMENT
        );
        assert_eq!(
            rssl_config_builder::rssl_config_builder_set_cert(b, b"junk".as_ptr(), 4, 1),
            RSSL_BAD_CERTIFICATE
        );
        assert_eq!(
            rssl_config_builder::rssl_config_builder_set_certfile(b, ptr::null()),
            RSSL_NULL_PARAMETER
        );
        assert_eq!(
            error::last_message().as_deref(),
            Some("NULL pointer passed as path")
        );
        let list = c"NO-SUCH-CIPHER";
        assert_eq!(
            rssl_config_builder::rssl_config_builder_set_ciphers(b, list.as_ptr()),
            RSSL_OK
        );
        let mut config = ptr::null();
        assert_eq!(
            rssl_config_builder::rssl_config_builder_build(b, &mut config),
            RSSL_INVALID_OPTION
        );
        assert!(config.is_null());
        rssl_config_builder::rssl_config_builder_free(b);
        rssl_config_builder::rssl_config_builder_free(ptr::null_mut());
        rssl_config::rssl_config_free(ptr::null());
    }
}
