//! Replays, as ordinary tests, every saved input of every fuzz target: the
//! seeds (`seeds/<target>/`) and the inputs that once crashed or hung a
//! target (`regressions/<target>/`, named after what they found). A
//! crash that `make fuzz-short` or `make soak` finds is copied there from
//! `fuzz/artifacts/` once fixed.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let input = std::fs::read(&path).expect("saved input");
            eprintln!("{target}: {}", path.display());
            run(&input);
            count += 1;
        }
    }
    assert!(count > 0, "no saved inputs for {target}");
}

#[test]
fn engine_server_inputs() {
    replay("engine_server", rssl_fuzz::engine_server);
}

#[test]
fn engine_client_inputs() {
    replay("engine_client", rssl_fuzz::engine_client);
}

#[test]
fn c_config_builder_inputs() {
    replay("c_config_builder", rssl_fuzz::c_config_builder);
}
