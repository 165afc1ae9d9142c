//! The app binary itself (built by `cargo test`, which also makes it available to the end-to-end test): a bad
//! configuration stops it before any window opens, with one readable line naming the file and the key.
use std::process::Command;

#[test]
fn a_broken_config_stops_the_app_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("extract.yaml"),
        "extract:\n  no_such_key: 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nanodex-app"))
        .env("NANODEX_CONFIG_DIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("nanodex: ") && err.contains("extract.yaml") && err.contains("no_such_key"),
        "{err}"
    );
}
