use super::*;
use crate::progress::NoProgress;

fn candidate(root: &Path, rel: &str) -> walk::Candidate {
    walk::Candidate {
        rel: rel.into(),
        abs: root.join(rel),
        lang: Lang::Python,
        size: 0,
        stat: None,
    }
}

#[test]
fn vanished_and_unreadable_files_are_skipped_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    // Deleted between the walk and the read.
    match read_and_parse(&candidate(tmp.path(), "gone.py"), 1 << 20, None, 0) {
        FileOutcome::Skipped(reason, rel) => {
            assert_eq!((reason, rel.as_str()), ("vanished", "gone.py"))
        }
        FileOutcome::Parsed(..) | FileOutcome::Deferred(_) => panic!("parsed a missing file"),
    }
    // Opens but cannot be read (a directory where a file was expected: EISDIR), even as root.
    std::fs::create_dir(tmp.path().join("dir.py")).unwrap();
    match read_and_parse(&candidate(tmp.path(), "dir.py"), 1 << 20, None, 0) {
        FileOutcome::Skipped(reason, _) => assert_eq!(reason, "unreadable"),
        FileOutcome::Parsed(..) | FileOutcome::Deferred(_) => panic!("parsed a directory"),
    }
}

fn run_ok(cfg: &ExtractConfig, root: &Path, previous: FactsCache) -> Extraction {
    run(cfg, root, previous, &NoProgress, &Cancel::new()).unwrap()
}

#[test]
fn unchanged_files_reuse_cached_facts() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.py"), "def a():\n    pass\n").unwrap();
    std::fs::write(tmp.path().join("b.py"), "def b():\n    a()\n").unwrap();
    std::fs::write(tmp.path().join("c.py"), "def c():\n    pass\n").unwrap();
    let cfg = crate::config::load(None).unwrap().extract;
    let first = run_ok(&cfg, tmp.path(), FactsCache::default());
    assert_eq!((first.report.parsed, first.report.reused), (3, 0));
    std::fs::write(tmp.path().join("b.py"), "def b():\n    return a()\n").unwrap();
    std::fs::remove_file(tmp.path().join("c.py")).unwrap();
    let second = run_ok(&cfg, tmp.path(), FactsCache::new(first.files.clone()));
    assert_eq!((second.report.parsed, second.report.reused), (1, 1));
    // The unchanged file's facts are the cached ones; the deleted file's are gone.
    let paths: Vec<&str> = second.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a.py", "b.py"]);
    let debug = |f: &ParsedFile| format!("{f:?}");
    assert_eq!(debug(&second.files[0]), debug(&first.files[0]));
    assert_ne!(debug(&second.files[1]), debug(&first.files[1]));
}

/// [`run_ok`] with every stat counted as settled, however recent (no margin), as files written by a test are.
fn run_settled(cfg: &ExtractConfig, root: &Path, previous: FactsCache) -> Extraction {
    let mut walked = Walked::new(cfg, root, &NoProgress).unwrap();
    walked.settled_ns = i64::MAX;
    run_walked(cfg, walked, previous, &NoProgress, &Cancel::new(), false)
        .unwrap()
        .0
}

#[test]
fn a_file_that_keeps_its_stat_is_not_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.py"), "def a():\n    pass\n").unwrap();
    std::fs::write(tmp.path().join("b.py"), "def b():\n    a()\n").unwrap();
    let cfg = crate::config::load(None).unwrap().extract;
    let first = run_settled(&cfg, tmp.path(), FactsCache::default());
    assert!(first.files.iter().all(|f| f.stat.is_some()));
    // Cached facts that the content could not give: they survive only a run that does not read the files.
    let mut cached = first.files.clone();
    for file in &mut cached {
        file.hash = "not the content's hash".into();
    }
    let second = run_settled(&cfg, tmp.path(), FactsCache::new(cached));
    assert_eq!((second.report.parsed, second.report.reused), (0, 2));
    assert!(
        second
            .files
            .iter()
            .all(|f| f.hash == "not the content's hash")
    );
    // A file whose stat changed is read: its content hash is the cached one, so its facts are reused, with the
    // new stat kept for the next run.
    std::fs::write(tmp.path().join("a.py"), "def a():\n    pass\n").unwrap();
    let third = run_settled(&cfg, tmp.path(), FactsCache::new(first.files.clone()));
    assert_eq!((third.report.parsed, third.report.reused), (0, 2));
    let now = walk::FileStat::of(&std::fs::metadata(tmp.path().join("a.py")).unwrap());
    assert_eq!(third.files[0].stat, now);
}

#[test]
fn a_rewrite_that_keeps_the_size_and_the_modification_time_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.py");
    std::fs::write(&path, "def a():\n    pass\n").unwrap();
    let before = std::fs::metadata(&path).unwrap();
    let cfg = crate::config::load(None).unwrap().extract;
    let first = run_settled(&cfg, tmp.path(), FactsCache::default());
    assert_eq!(first.files[0].facts.defs[0].name, "a");
    // Rewritten (same size) until the status-change time moves past the first write's tick, then the
    // modification time is set back.
    let first_ctime = walk::FileStat::of(&before).unwrap().ctime_ns;
    let ctime = || {
        walk::FileStat::of(&std::fs::metadata(&path).unwrap())
            .unwrap()
            .ctime_ns
    };
    for _ in 0..300 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&path, "def b():\n    pass\n").unwrap();
        if ctime() != first_ctime {
            break;
        }
    }
    assert_ne!(
        ctime(),
        first_ctime,
        "the file system's status-change time did not move in 3 s"
    );
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (before.len(), before.modified().unwrap())
    );
    let second = run_settled(&cfg, tmp.path(), FactsCache::new(first.files));
    assert_eq!((second.report.parsed, second.report.reused), (1, 0));
    assert_eq!(second.files[0].facts.defs[0].name, "b");
}

#[test]
fn a_file_written_just_before_the_run_keeps_no_stat() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.py"), "def a():\n    pass\n").unwrap();
    let cfg = crate::config::load(None).unwrap().extract;
    // Written within the settling margin: the next run reads it again, whatever its stat.
    let first = run_ok(&cfg, tmp.path(), FactsCache::default());
    assert_eq!(first.files[0].stat, None);
    let second = run_ok(&cfg, tmp.path(), FactsCache::new(first.files));
    assert_eq!((second.report.parsed, second.report.reused), (0, 1));
    assert_eq!(second.files[0].stat, None);
}

#[test]
fn the_cache_encoded_while_resolving_is_the_cache_that_loads() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.py"), "def a():\n    pass\n").unwrap();
    std::fs::write(tmp.path().join("b.py"), "def b():\n    a()\n").unwrap();
    let cfg = crate::config::load(None).unwrap().extract;
    let (first, bytes) = run_walked(
        &cfg,
        Walked::new(&cfg, tmp.path(), &NoProgress).unwrap(),
        FactsCache::default(),
        &NoProgress,
        &Cancel::new(),
        true,
    )
    .unwrap();
    let bytes = bytes.expect("encoded");
    let path = tmp.path().join("ws/facts.cache");
    FactsCache::save_encoded(&path, &bytes).unwrap();
    let loaded = FactsCache::load(&path);
    assert_eq!(loaded.len(), 2);
    // Byte for byte what saving the owned cache writes.
    FactsCache::new(first.files).save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let again = run_ok(&cfg, tmp.path(), loaded);
    assert_eq!((again.report.parsed, again.report.reused), (0, 2));
}

#[test]
fn cancellation_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.py"), "def a():\n    pass\n").unwrap();
    let cfg = crate::config::load(None).unwrap().extract;
    let cancel = Cancel::new();
    cancel.cancel();
    let err = run(
        &cfg,
        tmp.path(),
        FactsCache::default(),
        &NoProgress,
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, ExtractError::Cancelled));
}

#[test]
fn stable_keys_differ_by_part_boundaries() {
    assert_eq!(stable_key(&["a", "b"]), stable_key(&["a", "b"]));
    assert_ne!(stable_key(&["ab", ""]), stable_key(&["a", "b"]));
    assert_eq!(stable_key(&["x"]).len(), 16);
    assert_eq!(
        super::compact_key_of_pieces(&[&["calls"], &["function", ":", "ab"]]),
        stable_key(&["calls", "function:ab"])
    );
    // The definition, independently: the first 16 hex digits of blake3 over the NUL-terminated parts (node and edge
    // ids are these keys; they must not change between versions).
    assert_eq!(
        super::compact_key_of_pieces(&[&["calls"], &["function", ":", "ab"]]).as_str(),
        &blake3::hash(b"calls\0function:ab\0").to_hex()[..16]
    );
    let long = "q".repeat(5000);
    assert_eq!(
        super::compact_key_of_pieces(&[&[&long], &[""]]).as_str(),
        &blake3::hash(format!("{long}\0\0").as_bytes()).to_hex()[..16]
    );
}

#[test]
fn meta_is_serialized_as_the_sorted_map_it_replaced() {
    use serde_json::{Value, json};
    let pairs = [
        ("kind", json!("method")),
        ("is_test", json!(false)),
        ("decorators", json!(["Override"])),
        ("a", json!(1)),
    ];
    let meta: Meta = pairs.iter().cloned().collect();
    let map: BTreeMap<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(
        postcard::to_allocvec(&meta).unwrap(),
        postcard::to_allocvec(&map).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&meta).unwrap(),
        serde_json::to_string(&map).unwrap()
    );
    assert_eq!(
        meta.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["a", "decorators", "is_test", "kind"]
    );
    let back: Meta = serde_json::from_str(&serde_json::to_string(&meta).unwrap()).unwrap();
    assert_eq!(back, meta);
    // Keys arrive in any order; a repeated key keeps its last value, as a map's would.
    let parsed: Meta = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
    assert_eq!(format!("{parsed:?}"), r#"{"a": Number(2), "b": Number(3)}"#);
    let mut m = meta.clone();
    assert_eq!(m.insert("kind", json!("function")), Some(json!("method")));
    assert_eq!(m.get("kind"), Some(&json!("function")));
    assert_eq!(m.remove("a"), Some(json!(1)));
    assert!(!m.contains_key("a") && m.contains_key("is_test"));
    assert_eq!(
        (m.len(), m.is_empty(), Meta::default().is_empty()),
        (3, false, true)
    );
}

#[test]
fn a_deferred_outcome_is_finished_in_place_and_others_are_left_alone() {
    let text = "class A:\n    def f(self):\n        g()\n";
    let tree = {
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&Lang::Python.grammar()).unwrap();
        parser.parse(text, None)
    };
    assert!(tree.is_some());
    let file = ParsedFile {
        path: "a.py".into(),
        lang: Lang::Python,
        hash: "h".into(),
        size: text.len() as u64,
        invalid_utf8: false,
        stat: None,
        facts: FileFacts::default(),
    };
    let mut outcome = FileOutcome::Deferred(Box::new((file, text.to_string(), tree)));
    finish_in_place(&mut outcome);
    match &outcome {
        FileOutcome::Parsed(file, reused) => {
            assert!(!reused);
            assert_eq!(file.path, "a.py");
            // The same facts as a parse that was not deferred.
            assert_eq!(file.facts, parse::parse_file(Lang::Python, text));
            assert!(!file.facts.defs.is_empty());
        }
        _ => panic!("a deferred outcome was not finished"),
    }
    let mut skipped = FileOutcome::Skipped("binary", "b.bin".into());
    finish_in_place(&mut skipped);
    assert!(matches!(skipped, FileOutcome::Skipped("binary", ref rel) if rel == "b.bin"));
}
