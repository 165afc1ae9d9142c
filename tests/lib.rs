//! Integration tests of nanodex live in `it/` (one test binary); fixtures in `fixtures/`. This library holds what
//! tests of several crates share (the core's unit tests and the CLI's tests use it as a dev-dependency).

use std::path::PathBuf;
use std::process::Command;

/// The installed CPython standard library, a real corpus: `NANODEX_PYTHON_STDLIB`, or the stdlib folder of
/// `python3`. A missing interpreter is a test failure with a clear message, not a skip.
pub fn python_stdlib() -> PathBuf {
    if let Ok(dir) = std::env::var("NANODEX_PYTHON_STDLIB") {
        return PathBuf::from(dir);
    }
    let out = Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"])
        .output()
        .expect("python3 must be installed (scripts/setup.sh installs it), or set NANODEX_PYTHON_STDLIB");
    assert!(
        out.status.success(),
        "python3 could not name its standard library: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
