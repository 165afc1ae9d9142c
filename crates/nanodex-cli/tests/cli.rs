//! The `nanodex` binary end to end: reports, read commands, clear errors, locking, and kill -9 recovery.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn nanodex() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanodex"));
    cmd.env_remove("NANODEX_WORKSPACE")
        .env_remove("NANODEX_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    nanodex().args(args).output().expect("runs nanodex")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdlib() -> String {
    nanodex_tests::python_stdlib()
        .to_str()
        .expect("the stdlib path is UTF-8")
        .to_string()
}

#[test]
fn extract_inspect_show_query() {
    let ws = tempfile::tempdir().unwrap();
    let wsp = ws.path().to_str().unwrap();
    let repo = fixture("java");
    let out = run(&["extract", repo.to_str().unwrap(), "--workspace", wsp]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("files:       java 6"), "{text}");
    let db = ws.path().join("brain").join("graph.db");
    assert!(
        text.contains(&format!("store:       full write to {} (", db.display())),
        "{text}"
    );

    let out = run(&["graph-inspect", "--workspace", wsp, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["nodes"]["module"], 6);
    assert_eq!(json["edges"]["extends"], 3);
    assert!(json["resolved_call_share"].as_f64().unwrap() > 0.5);

    let out = run(&[
        "graph",
        "show",
        "com.acme.bank.Checking.withdraw",
        "--workspace",
        wsp,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("-> throws      com.acme.bank.InsufficientFundsException"),
        "{text}"
    );
    assert!(
        text.contains("-> calls       com.acme.bank.AbstractAccount.audit"),
        "{text}"
    );

    let out = run(&[
        "graph",
        "query",
        "SELECT VALUE name FROM class WHERE ->extends->class.name CONTAINS 'BankException'",
        "--workspace",
        wsp,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, serde_json::json!([["InsufficientFundsException"]]));

    let out = run(&["graph", "query", "DELETE class", "--workspace", wsp]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));

    // A second run with nothing changed is incremental and parses nothing.
    let out = run(&[
        "extract",
        repo.to_str().unwrap(),
        "--workspace",
        wsp,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["report"]["parsed"], 0);
    assert_eq!(json["write"]["mode"], "incremental");
}

#[test]
fn the_report_names_the_store_written_to() {
    let ws = tempfile::tempdir().unwrap();
    let cfg = ws.path().join("memory.yaml");
    std::fs::write(&cfg, "graph:\n  store: memory\n").unwrap();
    let repo = fixture("java");
    let out = run(&[
        "extract",
        repo.to_str().unwrap(),
        "--workspace",
        ws.path().to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("store:       full write to memory ("),
        "{text}"
    );
    assert!(!text.contains("graph.db"), "{text}");
}

#[test]
fn errors_are_one_clear_line() {
    let ws = tempfile::tempdir().unwrap();
    let wsp = ws.path().to_str().unwrap();
    let out = run(&["extract", "/no/such/repo", "--workspace", wsp]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "error: /no/such/repo: no such directory; pass the path of a repository checkout"
    );

    let file = fixture("python").join("requirements.txt");
    let out = run(&["extract", file.to_str().unwrap(), "--workspace", wsp]);
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));

    let cfg = ws.path().join("bad.yaml");
    std::fs::write(&cfg, "extract:\n  max_file_sise: 10\n").unwrap();
    let out = run(&[
        "extract",
        fixture("python").to_str().unwrap(),
        "--workspace",
        wsp,
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("bad.yaml") && err.contains("unknown field `max_file_sise`"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = run(&[
        "graph-inspect",
        "--workspace",
        empty.path().to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("no code graph yet; run `nanodex extract"),
        "{}",
        stderr(&out)
    );
}

/// Starts `extract` of the stdlib with info logs, returning once it logs that it is writing the graph.
fn start_writer(ws: &str) -> std::process::Child {
    let mut child = nanodex()
        .args(["extract", &stdlib(), "--workspace", ws, "--full"])
        .env("NANODEX_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("writing graph") => break,
            Some(_) => {}
            None => panic!("writer exited before writing"),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

#[test]
fn concurrent_writer_is_refused_and_kill_9_leaves_a_usable_graph() {
    let ws = tempfile::tempdir().unwrap();
    let wsp = ws.path().to_str().unwrap();
    let java = fixture("java");
    assert!(
        run(&["extract", java.to_str().unwrap(), "--workspace", wsp])
            .status
            .success()
    );

    let mut writer = start_writer(wsp);
    // A second writer while the first one holds the workspace.
    let out = run(&["extract", java.to_str().unwrap(), "--workspace", wsp]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("workspace is locked by another nanodex process"),
        "{}",
        stderr(&out)
    );

    // Kill the writer in the middle of its write.
    writer.kill().unwrap();
    writer.wait().unwrap();
    // The previous graph (the Java fixture) is still the current one and readable.
    let out = run(&["graph-inspect", "--workspace", wsp, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["nodes"]["module"], 6, "{json}");

    // The next run completes the job.
    let out = run(&["extract", &stdlib(), "--workspace", wsp, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["graph-inspect", "--workspace", wsp, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["nodes"]["module"].as_u64().unwrap() > 500, "{json}");
}

#[test]
fn brain_then_search_json_and_text() {
    let ws = tempfile::tempdir().unwrap();
    let wsp = ws.path().to_str().unwrap();
    let repo = fixture("brain");
    let out = run(&["extract", repo.to_str().unwrap(), "--workspace", wsp]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Before the brain exists, search says what to run.
    let out = run(&["search", "charge a card", "--workspace", wsp]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("run `nanodex brain"),
        "{}",
        stderr(&out)
    );

    let out = run(&["brain", "--workspace", wsp]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("nodes:") && text.contains("capability") && text.contains("embeddings:"),
        "{text}"
    );
    assert!(!stderr(&out).contains("ERROR"), "{}", stderr(&out));
    let exported = std::fs::read_dir(ws.path().join("brain/nodes"))
        .unwrap()
        .count();
    assert!(exported > 10, "{exported}");

    let out = run(&[
        "search",
        "card declined",
        "--workspace",
        wsp,
        "--type",
        "error",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &hits[0];
    for key in [
        "id", "type", "name", "qname", "path", "line", "score", "summary",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["qname"], "billing.errors.CardDeclined");
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["type"] == "error")
    );

    let out = run(&["search", "refund a charge", "--workspace", wsp, "-n", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(" 1. [") && text.contains("billing/payments.py:"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with(' ') && l.contains(". ["))
            .count(),
        3,
        "{text}"
    );

    // Nothing changed: the second build writes nothing.
    let out = run(&["brain", "--workspace", wsp, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exported"], 0, "{report}");
    assert_eq!(report["embedded"], 0, "{report}");
    assert_eq!(report["store_inserted"], 0, "{report}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["extract", "--help"],
        vec!["graph-inspect", "--help"],
        vec!["graph", "--help"],
        vec!["graph", "show", "--help"],
        vec!["graph", "query", "--help"],
        vec!["brain", "--help"],
        vec!["brain-embed", "--help"],
        vec!["search", "--help"],
        vec!["train", "--help"],
        vec!["generate", "--help"],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("Usage: nanodex"),
            "{args:?}: {}",
            stdout(&out)
        );
    }
}

fn smollm2() -> String {
    let models = std::env::var("NANODEX_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/nanodex/models")
        });
    let p = models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/models.sh`",
        p.display()
    );
    p.display().to_string()
}

fn train_losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["kind"] == "train")
        .map(|m| m["loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn train_killed_with_sigkill_resumes_to_the_same_loss_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let facts = std::fs::read_to_string(fixture("train/facts.jsonl")).unwrap();
    let data = tmp.path().join("d.jsonl");
    std::fs::write(&data, facts.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let cfg = tmp.path().join("t.yaml");
    std::fs::write(&cfg, "lora: {r: 4, alpha: 8, dropout: 0.05}\ntrain: {lr: 1.0e-3, max_steps: 5, batch_size: 1, micro_batch_size: 1, warmup_steps: 1, eval_split: 0.0, eval_interval: 100, save_every: 1, max_seq_len: 96}\n").unwrap();
    let base = smollm2();
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--dataset",
            data.to_str().unwrap(),
            "--base",
            &base,
            "--out",
            out.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let full = tmp.path().join("full");
    let out = nanodex().args(args(&full)).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let killed = tmp.path().join("killed");
    let mut child = nanodex()
        .args(args(&killed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let step = std::fs::read_to_string(killed.join("checkpoint.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["step"].as_u64());
        if step.is_some_and(|s| s >= 1) {
            break;
        }
        assert!(started.elapsed().as_secs() < 300, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let step: u64 = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(killed.join("checkpoint.json")).unwrap(),
    )
    .unwrap()["step"]
        .as_u64()
        .unwrap();
    assert!(
        step < 5,
        "killed before the end (checkpoint at step {step})"
    );
    let again = nanodex().args(args(&killed)).output().unwrap();
    assert!(
        !again.status.success() && stderr(&again).contains("--resume"),
        "{}",
        stderr(&again)
    );
    let mut resume = args(&killed);
    resume.push("--resume".into());
    let out = nanodex().args(&resume).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["steps"], 5);
    assert!(report["resumed_from"].as_u64().unwrap() >= 1);
    let (a, b) = (train_losses(&full), train_losses(&killed));
    assert_eq!(a.len(), 5);
    assert_eq!(a.len(), b.len(), "{b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() < 1e-5,
            "resumed curve {b:?} vs uninterrupted {a:?}"
        );
    }
}

#[test]
fn train_refuses_malformed_datasets_before_loading_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"q\", \"response\": \"a\"}\n{\"prompt\": 3}\n",
    )
    .unwrap();
    let out = run(&[
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--base",
        "/nonexistent/model",
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("bad.jsonl:2: missing string `prompt`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = run(&["generate", "--base", "/nonexistent/model", "--prompt", "hi"]);
    assert!(
        stderr(&out).contains("no such file or folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn generate_answers_with_the_chat_template() {
    let out = run(&[
        "generate",
        "--base",
        &smollm2(),
        "--prompt",
        "What is the capital of France?",
        "--max-tokens",
        "16",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["text"], "The capital of France is Paris.");
    assert_eq!(v["finish"], "stop");
}
