//! The candle models against Hugging Face transformers + PEFT (fixtures from tests/fixtures/make_reference.py),
//! LoRA invariants, adapters round-tripping in PEFT's layout, training and generation on SmolLM2-135M-Instruct.

use candle_core::{DType, Device, Tensor};
use nanodex_core::export;
use nanodex_core::infer::{Finish, GenParams, Generator};
use nanodex_core::llm::{self, Base, BaseDtype, BaseSource, Message, Model, Pass};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn llm_fixture(name: &str) -> PathBuf {
    crate::fixture("llm").join(name)
}

/// SmolLM2-135M-Instruct (GGUF) as installed by scripts/models.sh.
pub fn smollm2_path() -> PathBuf {
    let p = nanodex_core::embed::models_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/models.sh` (or set NANODEX_MODELS to the folder that holds smollm2/)",
        p.display()
    );
    p
}

pub fn smollm2() -> Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        llm::load_base(
            &BaseSource::Gguf(smollm2_path()),
            &Device::Cpu,
            BaseDtype::F32,
        )
        .expect("SmolLM2 loads")
    })
    .clone()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn logits(model: &Model, ids: &[u32], pass: &Pass) -> Vec<Vec<f32>> {
    let input = Tensor::new(ids, model.device())
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    model
        .forward(&input, None, pass)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap()
}

/// Max |ours - reference| over positions × the reference's vocabulary subset.
fn max_diff(ours: &[Vec<f32>], reference: &Value, vocab: &[usize]) -> f32 {
    let mut worst = 0f32;
    for (pos, row) in reference.as_array().unwrap().iter().enumerate() {
        for (k, r) in row.as_array().unwrap().iter().enumerate() {
            let col = if vocab.is_empty() { k } else { vocab[k] };
            worst = worst.max((ours[pos][col] - r.as_f64().unwrap() as f32).abs());
        }
    }
    worst
}

fn argmax(row: &[f32]) -> u32 {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0 as u32
}

#[test]
fn tiny_llama_and_qwen2_match_transformers() {
    for name in ["tiny_llama", "tiny_qwen2"] {
        let dir = llm_fixture(name);
        let cfg = llm::ModelConfig::from_hf_json(&dir.join("config.json")).unwrap();
        if name == "tiny_qwen2" {
            assert!(cfg.qkv_bias && !cfg.tie_word_embeddings, "{cfg:?}");
        }
        let model = load_hf_weights_only(&dir);
        let reference = json(&dir.join("logits.json"));
        for (ids, expected) in reference["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .zip(reference["logits"].as_array().unwrap())
        {
            let ids = ids_of(ids);
            for pass in [Pass::infer(), Pass::train(0, &Device::Cpu).unwrap()] {
                let ours = logits(&model, &ids, &pass);
                let d = max_diff(&ours, expected, &[]);
                assert!(
                    d < 1e-4,
                    "{name}: max logit difference {d} (train mode: {})",
                    pass.train
                );
            }
        }
    }
}

/// The tiny fixtures have no tokenizer: load weights through a throwaway folder holding a minimal one.
fn load_hf_weights_only(dir: &Path) -> Model {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).unwrap();
    }
    let tok = serde_json::json!({"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
        "post_processor": null, "decoder": null, "truncation": null, "padding": null,
        "model": {"type": "WordLevel", "vocab": {"a": 0, "<unk>": 1}, "unk_token": "<unk>"}});
    std::fs::write(tmp.path().join("tokenizer.json"), tok.to_string()).unwrap();
    llm::load_base(
        &BaseSource::HfDir(tmp.path().to_path_buf()),
        &Device::Cpu,
        BaseDtype::F32,
    )
    .expect("tiny model loads")
    .model
}

#[test]
fn smollm2_matches_transformers_logits_tokens_and_template() {
    let base = smollm2();
    let reference = json(&llm_fixture("smollm2.json"));
    let vocab: Vec<usize> = ids_of(&reference["vocab_ids"])
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let mut worst = 0f32;
    for p in reference["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let ids = ids_of(&p["ids"]);
        assert_eq!(
            base.tokenizer.encode(text).unwrap(),
            ids,
            "token ids of {text:?}"
        );
        if p["kind"] == "chat" {
            let msgs: Vec<Message> = serde_json::from_value(p["messages"].clone()).unwrap();
            assert_eq!(
                base.tokenizer.render(&msgs, true).unwrap(),
                text,
                "chat template"
            );
        }
        let ours = logits(&base.model, &ids, &Pass::infer());
        worst = worst.max(max_diff(&ours, &p["logits"], &vocab));
        let am: Vec<u32> = ours.iter().map(|r| argmax(r)).collect();
        assert_eq!(am, ids_of(&p["argmax"]), "argmax per position of {text:?}");
    }
    eprintln!("SmolLM2 max |logit - transformers| = {worst:.2e}");
    assert!(
        worst < 2e-3,
        "SmolLM2 logits differ from transformers by {worst}"
    );
    for t in reference["tokenize"].as_array().unwrap() {
        assert_eq!(
            base.tokenizer.encode(t["text"].as_str().unwrap()).unwrap(),
            ids_of(&t["ids"]),
            "{}",
            t["text"]
        );
    }
}

#[test]
fn greedy_generation_matches_transformers_and_stops_at_end_of_turn() {
    let base = smollm2();
    let reference = json(&llm_fixture("smollm2.json"));
    let prompt = &reference["prompts"][reference["greedy"]["prompt"].as_u64().unwrap() as usize];
    let expected = ids_of(&reference["greedy"]["new_ids"]);
    let im_end = base.tokenizer.encode("<|im_end|>").unwrap();
    assert_eq!(
        base.tokenizer.stop_ids.first(),
        im_end.first(),
        "end-of-turn token is <|im_end|>"
    );
    let g = Generator {
        model: &base.model,
        tokenizer: &base.tokenizer,
    };
    let mut streamed = String::new();
    let out = g
        .complete(
            &ids_of(&prompt["ids"]),
            &GenParams {
                max_tokens: 32,
                ..Default::default()
            },
            &mut |s| {
                streamed.push_str(s);
                true
            },
        )
        .unwrap();
    assert_eq!(out.finish, Finish::Stop);
    let mut with_stop = out.ids.clone();
    with_stop.push(im_end[0]);
    assert_eq!(
        with_stop, expected,
        "greedy ids (KV cache) equal transformers' generate"
    );
    assert_eq!(out.text, "The capital of France is Paris.");
    assert_eq!(streamed, out.text, "streamed pieces add up to the answer");
    let chat = g
        .chat(
            &[Message::new("user", "What is the capital of France?")],
            &GenParams::default(),
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(chat.text, out.text);
    let cut = g
        .chat(
            &[Message::new("user", "What is the capital of France?")],
            &GenParams {
                stop: vec![" of".into()],
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(
        (cut.text.as_str(), cut.finish),
        ("The capital", Finish::Stop)
    );
    let sampled = g
        .chat(
            &[Message::new("user", "Name a colour.")],
            &GenParams {
                temperature: 0.8,
                top_p: 0.9,
                max_tokens: 5,
                seed: 3,
                ..Default::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert!(sampled.ids.len() <= 5);
}

#[test]
fn peft_adapter_loads_and_matches_peft_logits() {
    let mut base = smollm2();
    let reference = json(&llm_fixture("peft_adapter.json"));
    let prompts = json(&llm_fixture("smollm2.json"));
    let (cfg, adapted) =
        export::load_adapter(&llm_fixture("peft_adapter"), &mut base.model).unwrap();
    assert_eq!((cfg.r, adapted), (4, 30 * 7));
    let vocab: Vec<usize> = ids_of(&reference["vocab_ids"])
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let mut worst = 0f32;
    for (p, r) in prompts["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["prompts"].as_array().unwrap())
    {
        let ours = logits(&base.model, &ids_of(&p["ids"]), &Pass::infer());
        worst = worst.max(max_diff(&ours, &r["logits"], &vocab));
    }
    eprintln!("SmolLM2 + PEFT adapter max |logit - PEFT| = {worst:.2e}");
    assert!(worst < 2e-3, "adapter logits differ from PEFT by {worst}");
    let plain = smollm2();
    let ids = ids_of(&prompts["prompts"][0]["ids"]);
    let d = max_diff(
        &logits(&plain.model, &ids, &Pass::infer()),
        &serde_json::to_value(logits(&base.model, &ids, &Pass::infer())).unwrap(),
        &[],
    );
    assert!(d > 1e-2, "the adapter changes the logits (by {d})");
}

#[test]
fn zero_initialised_adapter_changes_nothing_and_saves_in_peft_layout() {
    let plain = smollm2();
    let mut m = plain.model.clone();
    let targets: Vec<String> = llm::TARGET_MODULES.iter().map(|s| s.to_string()).collect();
    let vars = m.attach_lora(4, 8.0, 0.0, &targets, 1).unwrap();
    assert_eq!(vars.len(), 30 * 7 * 2);
    let ids = plain
        .tokenizer
        .encode("Zero-initialised LoRA is the identity.")
        .unwrap();
    assert_eq!(
        logits(&m, &ids, &Pass::infer()),
        logits(&plain.model, &ids, &Pass::infer())
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = export::AdapterConfig::new(4, 8.0, 0.0, &targets, "smollm2");
    export::save_adapter(dir.path(), &m, &cfg).unwrap();
    let ours =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    let peft = candle_core::safetensors::load(
        llm_fixture("peft_adapter/adapter_model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let mut a: Vec<(&String, Vec<usize>)> =
        ours.iter().map(|(k, t)| (k, t.dims().to_vec())).collect();
    let mut b: Vec<(&String, Vec<usize>)> =
        peft.iter().map(|(k, t)| (k, t.dims().to_vec())).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "tensor names and shapes equal PEFT's");
    assert!(
        a.iter()
            .all(|(k, _)| !k.contains("lm_head") && !k.contains("embed_tokens"))
    );
    let ours: Value = json(&dir.path().join("adapter_config.json"));
    let peft: Value = json(&llm_fixture("peft_adapter/adapter_config.json"));
    for key in [
        "peft_type",
        "task_type",
        "r",
        "lora_alpha",
        "bias",
        "fan_in_fan_out",
        "use_rslora",
        "use_dora",
    ] {
        assert_eq!(
            ours[key]
                .as_f64()
                .map(Value::from)
                .unwrap_or(ours[key].clone()),
            peft[key]
                .as_f64()
                .map(Value::from)
                .unwrap_or(peft[key].clone()),
            "{key}"
        );
    }
    let mut t1: Vec<String> = serde_json::from_value(ours["target_modules"].clone()).unwrap();
    let mut t2: Vec<String> = serde_json::from_value(peft["target_modules"].clone()).unwrap();
    t1.sort();
    t2.sort();
    assert_eq!(t1, t2);
    assert!(ours["base_model_name_or_path"].is_string());
    // Round trip: what nanodex wrote loads back.
    let mut again = plain.model.clone();
    assert_eq!(export::load_adapter(dir.path(), &mut again).unwrap().1, 210);
    let high = export::AdapterConfig::new(32, 64.0, 0.0, &targets, "x");
    assert!(
        high.warnings()[0].contains("max-lora-rank"),
        "r > 16 warns about vLLM"
    );
}

#[test]
fn training_forward_and_gradients_are_right() {
    // Training mode (differentiable compositions, gradient-linked frozen matmuls) equals inference mode, and the
    // LoRA gradient equals a finite difference.
    let mut model = load_hf_weights_only(&llm_fixture("tiny_qwen2"));
    let targets: Vec<String> = llm::TARGET_MODULES.iter().map(|s| s.to_string()).collect();
    let vars = model.attach_lora(2, 4.0, 0.0, &targets, 9).unwrap();
    // Give B values so gradients reach A too.
    for (name, v) in &vars {
        if name.ends_with("lora_B.weight") {
            v.set(&(Tensor::randn(0f32, 0.05, v.shape(), &Device::Cpu).unwrap()))
                .unwrap();
        }
    }
    let ids = Tensor::new(&[[3u32, 17, 42, 5, 8, 60]], &Device::Cpu).unwrap();
    let targets_t = Tensor::new(&[17u32, 42, 5, 8, 60, 1], &Device::Cpu).unwrap();
    let loss = |pass: &Pass| -> Tensor {
        let l = model.forward(&ids, None, pass).unwrap().squeeze(0).unwrap();
        llm::model::cross_entropy(&l, &targets_t).unwrap()
    };
    let scalar = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    let l_train = loss(&Pass::train(0, &Device::Cpu).unwrap());
    assert!((scalar(&l_train) - scalar(&loss(&Pass::infer()))).abs() < 1e-5);
    let grads = l_train.backward().unwrap();
    for (name, var) in vars.iter().filter(|(n, _)| {
        n.contains("layers.0.self_attn.q_proj") || n.contains("layers.1.mlp.down_proj")
    }) {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has a gradient"));
        let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let orig = var.as_tensor().detach().copy().unwrap();
        let flat: Vec<f32> = orig.flatten_all().unwrap().to_vec1().unwrap();
        let k = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        let eps = 1e-2f32;
        let bump = |d: f32| {
            let mut f = flat.clone();
            f[k] += d;
            var.set(&Tensor::from_vec(f, orig.shape(), &Device::Cpu).unwrap())
                .unwrap();
            scalar(&loss(&Pass::infer()))
        };
        let fd = (bump(eps) - bump(-eps)) / (2.0 * eps as f64);
        var.set(&orig).unwrap();
        assert!(
            (fd - g[k] as f64).abs() < 2e-3 + 0.02 * fd.abs(),
            "{name}[{k}]: backprop {} vs finite difference {fd}",
            g[k]
        );
    }
}

#[test]
fn qlora_holds_base_in_4_bits_and_stays_close() {
    let q = llm::load_base(
        &BaseSource::Gguf(smollm2_path()),
        &Device::Cpu,
        BaseDtype::Quant(candle_core::quantized::GgmlDType::Q4_1),
    )
    .unwrap();
    let f = smollm2();
    let (qb, fb) = (q.model.frozen_bytes(), f.model.frozen_bytes());
    eprintln!("frozen base: f32 {} MiB, q4_1 {} MiB", fb >> 20, qb >> 20);
    assert!(qb * 2 < fb, "QLoRA base {qb} B is well below LoRA's {fb} B");
    let ids = f.tokenizer.encode("The capital of France is").unwrap();
    // The training path dequantizes each Q4_1 block: re-quantizing the Q4_1 GGUF is (nearly) lossless, so it
    // equals the f32 model. The inference path (candle's quantized matmul, activations in 8 bits) stays close.
    let (t, b) = (
        logits(&q.model, &ids, &Pass::train(0, &Device::Cpu).unwrap()),
        logits(&f.model, &ids, &Pass::infer()),
    );
    let d = t
        .last()
        .unwrap()
        .iter()
        .zip(b.last().unwrap())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("QLoRA (dequantized) vs f32 base: max logit difference {d:.2e}");
    assert!(
        d < 5e-2,
        "QLoRA training path differs from the f32 base by {d}"
    );
    let a = logits(&q.model, &ids, &Pass::infer());
    assert_eq!(
        argmax(a.last().unwrap()),
        argmax(b.last().unwrap()),
        "4-bit inference predicts the same next token"
    );
}
