//! Builds the front end (ui/ → ui/dist) when it is missing or older than its sources, then runs tauri-build,
//! which embeds ui/dist into the binary (feature `custom-protocol`).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut t = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(m) = newest(&entry.path()) {
                t = t.max(m);
            }
        }
    }
    Some(t)
}

fn main() {
    // Read at run time, not with env!(): a build script compiled for a copy of the checkout elsewhere (same target
    // directory, same hash) would otherwise look for that copy's ui/.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let ui = PathBuf::from(manifest_dir).join("../ui");
    let sources = ["src", "index.html", "package.json", "vite.config.ts"];
    for s in sources {
        println!("cargo:rerun-if-changed=../ui/{s}");
    }
    let built = newest(&ui.join("dist/index.html"));
    let changed = sources.iter().filter_map(|s| newest(&ui.join(s))).max();
    let stale = match (built, changed) {
        (None, _) => true,
        (Some(b), Some(c)) => c > b,
        (Some(_), None) => false,
    };
    if stale && std::env::var_os("NANODEX_SKIP_UI_BUILD").is_none() {
        if !ui.join("node_modules").is_dir() {
            panic!(
                "ui/node_modules is missing: run `bash scripts/setup.sh` (or `npm ci --prefix ui`) before building the app"
            );
        }
        let status = Command::new("npm")
            .args(["run", "build", "--silent"])
            .current_dir(&ui)
            .status()
            .expect("could not run npm (Node.js 20+ is needed to build ui/)");
        assert!(status.success(), "`npm run build` in ui/ failed");
    }
    tauri_build::build()
}
