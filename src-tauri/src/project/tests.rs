use std::sync::Mutex;

use super::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<ProgressEvent>>,
    ready: Mutex<Vec<usize>>,
    warnings: Mutex<Vec<String>>,
    /// Cancelled as soon as the graph is reported (a user pressing Cancel during the brain build).
    cancel_on_ready: Option<Cancel>,
}

impl Sink for Recorder {
    fn event(&self, ev: ProgressEvent) {
        self.events.lock().unwrap().push(ev);
    }
}

impl ImportObserver for Recorder {
    fn graph_ready(&self, loaded: Arc<Loaded>) {
        self.ready.lock().unwrap().push(loaded.view.modules.len());
        if let Some(c) = &self.cancel_on_ready {
            c.cancel();
        }
    }
    fn warn(&self, message: String) {
        self.warnings.lock().unwrap().push(message);
    }
}

fn entry(repo: &str) -> ProjectEntry {
    ProjectEntry {
        name: repo.rsplit('/').next().unwrap().into(),
        repo: repo.into(),
        workspace: format!("/ws{repo}").into(),
        extracted_at_ms: 1,
        counts: BTreeMap::new(),
        has_brain: false,
    }
}

#[test]
fn workspaces_are_stable_per_checkout_and_distinct_for_same_named_ones() {
    let data = Path::new("/data");
    let a = workspace_for(data, Path::new("/src/one/app"));
    assert_eq!(a, workspace_for(data, Path::new("/src/one/app")));
    assert_ne!(a, workspace_for(data, Path::new("/src/two/app")));
    assert!(a.starts_with("/data/projects"));
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("app-"), "{name}");
    let odd = workspace_for(data, Path::new("/src/my repo (old)"));
    assert!(
        odd.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("my_repo__old_-")
    );
}

#[test]
fn recent_projects_are_newest_first_capped_and_survive_a_restart_or_a_corrupt_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = Registry::load(tmp.path());
    assert!(reg.projects.is_empty());
    for i in 0..(RECENT_MAX + 3) {
        reg.touch(entry(&format!("/r/{i}"))).unwrap();
    }
    reg.touch(entry("/r/5")).unwrap();
    let again = Registry::load(tmp.path());
    assert_eq!(again.projects.len(), RECENT_MAX);
    assert_eq!(again.projects[0].repo, Path::new("/r/5"));
    assert_eq!(
        again.projects[1].repo,
        Path::new(&format!("/r/{}", RECENT_MAX + 2))
    );
    assert_eq!(
        again
            .projects
            .iter()
            .filter(|p| p.repo == Path::new("/r/5"))
            .count(),
        1
    );
    let mut again = again;
    again.forget(Path::new("/r/5")).unwrap();
    assert!(Registry::load(tmp.path()).get(Path::new("/r/5")).is_none());

    std::fs::write(tmp.path().join("recent.json"), b"{not json").unwrap();
    let broken = Registry::load(tmp.path());
    assert!(broken.projects.is_empty());
}

#[test]
fn bad_import_paths_get_clear_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    let msg = format!("{:#}", check_import_path(&file).unwrap_err());
    assert!(msg.contains("not a directory"), "{msg}");
    let msg = format!(
        "{:#}",
        check_import_path(&tmp.path().join("missing")).unwrap_err()
    );
    assert!(msg.contains("no such directory"), "{msg}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("logo.png"), [0x89u8, b'P', b'N', b'G', 0, 0, 0]).unwrap();
    let (cfg, bcfg) = load_configs().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tmp.path().join("data");
    let err = rt
        .block_on(import(
            &cfg,
            &bcfg,
            &data,
            &empty,
            Arc::new(Recorder::default()),
            &Cancel::new(),
        ))
        .err()
        .expect("an empty folder must not import");
    let msg = format!("{err:#}");
    assert!(msg.contains("no source files"), "{msg}");
}

#[test]
fn import_reports_the_graph_early_builds_the_brain_and_reopens_from_cache_or_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, mut bcfg) = load_configs().unwrap();
    bcfg.embed.enabled = false;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rec = Arc::new(Recorder::default());
    let repo = fixture("brain");
    let run = || {
        rt.block_on(import(
            &cfg,
            &bcfg,
            tmp.path(),
            &repo,
            rec.clone(),
            &Cancel::new(),
        ))
        .unwrap()
    };
    let loaded = run();
    assert_eq!(*rec.ready.lock().unwrap(), vec![loaded.view.modules.len()]);
    assert!(loaded.view.modules.len() >= 6);
    assert!(loaded.entry.has_brain && !loaded.brain.is_empty());
    assert!(
        !loaded.view.capabilities.is_empty(),
        "capabilities from the brain"
    );
    assert_eq!(
        loaded.entry.workspace,
        workspace_for(tmp.path(), &repo.canonicalize().unwrap())
    );
    let stages: Vec<&str> = rec.events.lock().unwrap().iter().map(|e| e.stage).collect();
    for s in ["walk", "parse", "store", "done"] {
        assert!(stages.contains(&s), "{s} missing from {stages:?}");
    }

    let charge = loaded.symbols("charge", 5).remove(0);
    assert_eq!(loaded.module_of(&charge.id), charge.module);
    assert!(charge.module.is_some());
    let (panel, excerpt) = loaded.detail(&charge.id).unwrap();
    assert!(panel.callers.iter().any(|c| c.name == "try_charge"));
    assert!(panel.summary.is_some(), "the brain summarises charge()");
    assert!(excerpt.unwrap().text.contains("def charge("));

    let cached = rt.block_on(open(&cfg, loaded.entry.clone())).unwrap();
    assert_eq!(*cached.view, *loaded.view);
    std::fs::remove_file(session_path(&loaded.entry.workspace)).unwrap();
    let from_store = rt.block_on(open(&cfg, loaded.entry.clone())).unwrap();
    assert_eq!(from_store.view.modules, loaded.view.modules);
    assert_eq!(from_store.view.edges, loaded.view.edges);
    assert_eq!(from_store.brain.len(), loaded.brain.len());
    assert!(
        session_path(&loaded.entry.workspace).exists(),
        "cache rewritten"
    );

    // A second (incremental) import of the unchanged repository gives the same view.
    let again = run();
    assert_eq!(*again.view, *loaded.view);
}

#[test]
fn a_cancelled_import_fails_and_leaves_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, bcfg) = load_configs().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = Cancel::new();
    cancel.cancel();
    let err = rt
        .block_on(import(
            &cfg,
            &bcfg,
            tmp.path(),
            &fixture("python"),
            Arc::new(Recorder::default()),
            &cancel,
        ))
        .err()
        .expect("cancelled");
    assert!(format!("{err:#}").contains("cancelled"), "{err:#}");
    let ws = workspace_for(tmp.path(), &fixture("python").canonicalize().unwrap());
    assert!(!session_path(&ws).exists());
}

#[test]
fn cancelling_during_the_brain_build_keeps_the_stored_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, mut bcfg) = load_configs().unwrap();
    bcfg.embed.enabled = false;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = Cancel::new();
    let rec = Arc::new(Recorder {
        cancel_on_ready: Some(cancel.clone()),
        ..Recorder::default()
    });
    let loaded = rt
        .block_on(import(
            &cfg,
            &bcfg,
            tmp.path(),
            &fixture("brain"),
            rec.clone(),
            &cancel,
        ))
        .unwrap();
    assert!(!loaded.entry.has_brain && loaded.brain.is_empty());
    assert!(loaded.view.modules.len() >= 6);
    let warnings = rec.warnings.lock().unwrap().join(" ");
    assert!(warnings.contains("brain build cancelled"), "{warnings}");
    let reopened = rt.block_on(open(&cfg, loaded.entry.clone())).unwrap();
    assert_eq!(reopened.view.modules, loaded.view.modules);
}

#[test]
fn embedding_model_presence_is_checked_on_disk() {
    let (_, mut bcfg) = load_configs().unwrap();
    // scripts/models.sh installs the defaults (CI runs it); a model folder that does not exist is not installed.
    assert!(brain::embedder_installed(&bcfg), "run scripts/models.sh");
    bcfg.embed.model = "/nonexistent/minilm".into();
    assert!(!brain::embedder_installed(&bcfg));
}

#[test]
fn layouts_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(load_layout(tmp.path()), Layout::default());
    let mut layout = Layout::default();
    layout.positions.insert("module:ab".into(), [1.5, -2.0]);
    layout.expanded.push("package:cd".into());
    save_layout(tmp.path(), &layout).unwrap();
    assert_eq!(load_layout(tmp.path()), layout);
}
