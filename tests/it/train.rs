//! Training on SmolLM2-135M-Instruct: prompt masking with the end-of-turn token, falling loss, the output folder
//! (PEFT adapter, card, metrics, charts), a trained model that stops, cancel + resume, malformed datasets.

use crate::llm::{smollm2, smollm2_path};
use nanodex_core::config;
use nanodex_core::export;
use nanodex_core::infer::{Finish, GenParams, Generator};
use nanodex_core::llm::{self, Message};
use nanodex_core::progress::{Cancel, NoProgress};
use nanodex_core::train::{self, Metric, TrainRequest, data};
use std::path::{Path, PathBuf};

pub fn facts_path() -> PathBuf {
    crate::fixture("train").join("facts.jsonl")
}

fn small_dataset(dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(facts_path()).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    let path = dir.join("small.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn request(dataset: PathBuf, out: PathBuf, yaml: &str) -> TrainRequest {
    TrainRequest {
        dataset,
        base: smollm2_path().display().to_string(),
        out,
        config: config::train_from_yaml(yaml).unwrap(),
        device: candle_core::Device::Cpu,
        resume: false,
        merge: false,
        project: Some("larkspur".into()),
    }
}

/// Training and eval losses, in step order, from a run's `metrics.jsonl`.
fn curves(dir: &Path) -> (Vec<f64>, Vec<f64>) {
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        match serde_json::from_str(line).unwrap() {
            Metric::Train { loss, .. } => train.push(loss),
            Metric::Eval { eval_loss, .. } => eval.push(eval_loss),
        }
    }
    (train, eval)
}

const FAST: &str = "lora: {r: 8, alpha: 16, dropout: 0.0}\ntrain: {lr: 4.0e-3, max_steps: 8, batch_size: 2, micro_batch_size: 2, warmup_steps: 1, eval_interval: 4, eval_split: 0.2, save_every: 4, max_seq_len: 128}\n";

#[test]
fn masks_prompts_and_trains_the_end_of_turn_token() {
    let base = smollm2();
    let conv = data::Conversation {
        id: "x".into(),
        messages: vec![
            Message::new("user", "Where is read_ledger?"),
            Message::new("assistant", "In csv_reader.py."),
        ],
    };
    let ex = data::tokenize(&conv, &base.tokenizer, 512)
        .unwrap()
        .unwrap();
    let trained: Vec<u32> = ex
        .ids
        .iter()
        .zip(&ex.trained)
        .filter(|(_, t)| **t)
        .map(|(i, _)| *i)
        .collect();
    let answer = base.tokenizer.encode("In csv_reader.py.").unwrap();
    let im_end = base.tokenizer.encode("<|im_end|>").unwrap()[0];
    assert_eq!(
        &trained[..answer.len()],
        answer.as_slice(),
        "the answer tokens are trained"
    );
    assert_eq!(
        trained[answer.len()],
        im_end,
        "the end-of-turn token <|im_end|> is trained"
    );
    assert!(
        trained.len() <= answer.len() + 2,
        "nothing of the prompt is trained: {trained:?}"
    );
    // Truncation that leaves no answer token drops the example.
    assert!(data::tokenize(&conv, &base.tokenizer, 8).unwrap().is_none());
}

#[test]
fn loss_falls_and_the_folder_holds_a_peft_adapter_that_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = small_dataset(tmp.path(), 5);
    let out = tmp.path().join("larkspur-nanodex-lora");
    let report =
        train::train(&request(ds, out.clone(), FAST), &NoProgress, &Cancel::new()).unwrap();
    assert_eq!((report.steps, report.examples), (8, (4, 1)));
    let (losses, evals) = curves(&out);
    assert_eq!((losses.len(), evals.len()), (8, 2));
    let (first, last) = (
        losses[..2].iter().sum::<f64>() / 2.0,
        losses[6..].iter().sum::<f64>() / 2.0,
    );
    assert!(last < 0.5 * first, "training loss falls: {losses:?}");
    for f in [
        "adapter_model.safetensors",
        "adapter_config.json",
        "README.md",
        "loss.png",
        "loss.svg",
        "checkpoint.json",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        card.contains("larkspur")
            && card.contains("eval loss")
            && card.contains(&smollm2_path().display().to_string()),
        "{card}"
    );
    // The adapter loads back and the trained model answers a training question and stops at <|im_end|>.
    let mut base = smollm2();
    export::load_adapter(&out, &mut base.model).unwrap();
    let g = Generator {
        model: &base.model,
        tokenizer: &base.tokenizer,
    };
    let q = "Where is `read_ledger` defined in Larkspur?";
    let ans = g
        .chat(
            &[Message::new("user", q)],
            &GenParams {
                max_tokens: 48,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(
        ans.finish,
        Finish::Stop,
        "the trained model ends its turn: {:?}",
        ans.text
    );
    assert!(ans.text.contains("csv_reader.py"), "answer: {:?}", ans.text);
}

#[test]
fn cancel_writes_a_checkpoint_and_resume_reproduces_the_loss_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = small_dataset(tmp.path(), 4);
    let yaml = "lora: {r: 4, alpha: 8, dropout: 0.1}\ntrain: {lr: 1.0e-3, max_steps: 4, batch_size: 2, micro_batch_size: 1, warmup_steps: 1, eval_interval: 100, eval_split: 0.0, save_every: 100, max_seq_len: 96}\n";
    let full = train::train(
        &request(ds.clone(), tmp.path().join("full"), yaml),
        &NoProgress,
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(full.steps, 4);
    // Cancel as soon as step 2 is reported (the flag is read after each step).
    struct CancelAt(Cancel, u64);
    impl nanodex_core::progress::Sink for CancelAt {
        fn event(&self, ev: nanodex_core::progress::ProgressEvent) {
            if ev.stage == "train" && ev.done >= self.1 {
                self.0.cancel();
            }
        }
    }
    let cancel = Cancel::new();
    let out = tmp.path().join("split");
    let first = train::train(
        &request(ds.clone(), out.clone(), yaml),
        &CancelAt(cancel.clone(), 2),
        &cancel,
    )
    .unwrap();
    assert!(first.cancelled && first.steps == 2, "{first:?}");
    let again = train::train(
        &request(ds.clone(), out.clone(), yaml),
        &NoProgress,
        &Cancel::new(),
    );
    assert!(
        again.unwrap_err().to_string().contains("--resume"),
        "a second run without --resume refuses to overwrite"
    );
    let mut req = request(ds, out.clone(), yaml);
    req.resume = true;
    let resumed = train::train(&req, &NoProgress, &Cancel::new()).unwrap();
    assert_eq!((resumed.resumed_from, resumed.steps), (2, 4));
    let curve = |dir: &Path| curves(dir).0;
    let (a, b) = (curve(&tmp.path().join("full")), curve(&out));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() < 1e-5,
            "resumed loss curve {b:?} differs from uninterrupted {a:?}"
        );
    }
    let w = |d: &Path| {
        candle_core::safetensors::load(
            d.join("adapter_model.safetensors"),
            &candle_core::Device::Cpu,
        )
        .unwrap()
    };
    let (wa, wb) = (w(&tmp.path().join("full")), w(&out));
    for (k, t) in &wa {
        let diff = (t - &wb[k])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{k} differs by {diff}");
    }
}

#[test]
fn qlora_trains_with_a_4_bit_base() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = small_dataset(tmp.path(), 2);
    let yaml = format!("{FAST}base: {{dtype: q4_1}}\n")
        .replace("max_steps: 8", "max_steps: 3")
        .replace("eval_split: 0.2", "eval_split: 0.0");
    let lora = train::train(
        &request(
            ds.clone(),
            tmp.path().join("lora"),
            &FAST
                .replace("max_steps: 8", "max_steps: 3")
                .replace("eval_split: 0.2", "eval_split: 0.0"),
        ),
        &NoProgress,
        &Cancel::new(),
    )
    .unwrap();
    let q = train::train(
        &request(ds, tmp.path().join("qlora"), &yaml),
        &NoProgress,
        &Cancel::new(),
    )
    .unwrap();
    assert!(
        q.base_bytes * 2 < lora.base_bytes,
        "QLoRA base {} B vs LoRA {} B",
        q.base_bytes,
        lora.base_bytes
    );
    let loss = |d: &str| curves(&tmp.path().join(d)).0;
    let ql = loss("qlora");
    assert!(ql[2] < ql[0], "QLoRA loss falls: {ql:?}");
    let card = std::fs::read_to_string(tmp.path().join("qlora/README.md")).unwrap();
    assert!(card.contains("QLoRA"));
}

#[test]
fn malformed_dataset_lines_are_refused_with_their_line_number() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{\"prompt\": \"a\", \"response\": \"b\"}\nnot json\n",
            ":2: not JSON",
        ),
        ("{\"prompt\": \"a\"}\n", ":1: missing string `response`"),
        (
            "\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n",
            ":3: the last message must be the assistant's",
        ),
        (
            "{\"messages\": [{\"role\": \"robot\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n",
            ":1: messages[0].role `robot`",
        ),
        ("[1, 2]\n", ":1: expected a JSON object"),
        ("", "no examples"),
    ];
    for (text, expected) in cases {
        let p = tmp.path().join("bad.jsonl");
        std::fs::write(&p, text).unwrap();
        let err = data::read_dataset(&p).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
        // The run does not start (no output folder is created).
        let out = tmp.path().join("never");
        let err = train::train(
            &request(p.clone(), out.clone(), FAST),
            &NoProgress,
            &Cancel::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(expected) && !out.exists());
    }
    std::fs::write(tmp.path().join("bin.jsonl"), b"{\"prompt\": \"\xff\"}\n").unwrap();
    assert!(
        data::read_dataset(&tmp.path().join("bin.jsonl"))
            .unwrap_err()
            .to_string()
            .contains(":1: invalid UTF-8")
    );
    let chat = tmp.path().join("chat.jsonl");
    std::fs::write(&chat, "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n").unwrap();
    assert_eq!(data::read_dataset(&chat).unwrap()[0].messages.len(), 3);
    let _ = llm::TARGET_MODULES;
}
