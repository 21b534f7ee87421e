//! Generates the C header `$OUT_DIR/rssl.h` from `src/capi` with cbindgen.
//! The committed copy is `include/rssl.h`; `tests/header.rs` fails when it
//! differs, and `make header` refreshes it.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("rssl.h");
    println!("cargo:rerun-if-changed=src/capi");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    // Only the C API is parsed: the engine, driver and NIF never reach the header.
    match cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/capi/mod.rs"))
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&out);
        }
        Err(err) => {
            // rustc reports the real problem; the header test then fails.
            let _ = std::fs::remove_file(&out);
            println!("cargo:warning=cbindgen could not generate rssl.h: {err}");
        }
    }
}
