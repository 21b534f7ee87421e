//! The committed C header must be what cbindgen makes from src/capi now.
//! `make header` (RSSL_BLESS_HEADER=1 cargo test --test header) refreshes it.

use std::path::Path;

#[test]
fn committed_header_matches_generated() {
    let generated_path = concat!(env!("OUT_DIR"), "/rssl.h");
    let generated = std::fs::read_to_string(generated_path)
        .unwrap_or_else(|e| panic!("build.rs did not generate {generated_path}: {e}"));
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/rssl.h");
    if std::env::var_os("RSSL_BLESS_HEADER").is_some() {
        std::fs::write(&committed_path, &generated).expect("write include/rssl.h");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/rssl.h is stale (first difference at line {}); run `make header`",
            first_difference + 1
        );
    }
}
