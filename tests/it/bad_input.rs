//! Bad input: each case is skipped or flagged with a reason, and the rest of the repository is still extracted.

use std::path::Path;

use crate::{default_config, extract_repo, extract_with};

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn bad_files_are_skipped_or_flagged_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "good.py", b"def good():\n    return 1\n");
    write(root, "binary.py", b"\x7fELF\0\0\0\x01garbage");
    write(root, "latin1.py", b"def caf\xe9():\n    pass\n");
    let depth = 50_000;
    write(
        root,
        "deep.py",
        format!("x = {}1{}\n", "[".repeat(depth), "]".repeat(depth)).as_bytes(),
    );
    write(
        root,
        "deep.java",
        format!(
            "class D {{ int f() {{ return {}1{}; }} }}\n",
            "(".repeat(depth),
            ")".repeat(depth)
        )
        .as_bytes(),
    );
    let mut huge = Vec::with_capacity(20 << 20);
    while huge.len() < 20 << 20 {
        huge.extend_from_slice(b"def f():\n    return 1\n");
    }
    write(root, "huge.py", &huge);
    std::fs::create_dir_all(root.join("loop")).unwrap();
    std::os::unix::fs::symlink(root.join("loop"), root.join("loop/again")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc_link")).unwrap();
    std::os::unix::fs::symlink(root.join("good.py"), root.join("alias.py")).unwrap();

    let ex = extract_repo(root);
    let r = &ex.report;
    assert_eq!(r.skipped.get("binary"), Some(&1), "{r:?}");
    assert_eq!(r.skipped.get("too_large"), Some(&1), "{r:?}");
    assert_eq!(r.skipped.get("symlink_loop"), Some(&1), "{r:?}");
    assert_eq!(r.skipped.get("symlink_outside_repo"), Some(&1), "{r:?}");
    assert_eq!(r.invalid_utf8_files, vec!["latin1.py".to_string()]);
    let names: Vec<&str> = ex.graph.nodes.iter().map(|n| n.name.as_str()).collect();
    assert!(names.contains(&"good"));
    let latin = ex
        .graph
        .nodes
        .iter()
        .find(|n| n.path == "latin1.py")
        .expect("lossily decoded file is still a module");
    assert_eq!(
        latin.meta.get("invalid_utf8"),
        Some(&serde_json::json!(true))
    );
    assert!(
        names.contains(&"D"),
        "deeply nested Java still yields its class"
    );
    assert!(ex.graph.nodes.iter().any(|n| n.path == "deep.py"));
    // An in-repo symlink to a file is followed (it is a file of the repository).
    assert!(ex.graph.nodes.iter().any(|n| n.path == "alias.py"));

    // A larger limit reads the 20 MB file.
    let mut cfg = default_config();
    cfg.extract.max_file_size = 64 << 20;
    let ex = extract_with(&cfg, root, Default::default());
    assert_eq!(ex.report.skipped.get("too_large"), None);
    assert!(
        ex.graph
            .nodes
            .iter()
            .filter(|n| n.path == "huge.py")
            .count()
            > 1000
    );
}

#[test]
fn unreadable_file_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "ok.py", b"def ok():\n    pass\n");
    write(tmp.path(), "secret.py", b"def hidden():\n    pass\n");
    let secret = tmp.path().join("secret.py");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // Root reads files whatever their mode; then the permission check cannot fail and the file is simply read.
    let is_root = std::fs::read(&secret).is_ok();
    let ex = extract_repo(tmp.path());
    if is_root {
        assert!(ex.graph.nodes.iter().any(|n| n.name == "hidden"));
    } else {
        assert_eq!(
            ex.report.skipped.get("unreadable"),
            Some(&1),
            "{:?}",
            ex.report
        );
    }
    assert!(ex.graph.nodes.iter().any(|n| n.name == "ok"));
}

#[test]
fn missing_repo_and_file_instead_of_directory_are_clear_errors() {
    let cfg = default_config();
    let err = nanodex_core::extract::run(
        &cfg.extract,
        Path::new("/no/such/repo"),
        Default::default(),
        &nanodex_core::progress::NoProgress,
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("/no/such/repo: no such directory"), "{err}");
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let err = nanodex_core::extract::run(
        &cfg.extract,
        tmp.path(),
        Default::default(),
        &nanodex_core::progress::NoProgress,
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a directory"), "{err}");
}
