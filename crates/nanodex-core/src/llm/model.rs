//! The decoder: Llama-family and Qwen2 in one implementation, with optional LoRA on every projection.
//!
//! Reference implementations: Hugging Face `transformers` `modeling_llama.py` / `modeling_qwen2.py`
//! (rotate-half RoPE, pre-norm blocks, grouped-query attention, SwiGLU), and LoRA as in Hu et al. 2021,
//! "LoRA: Low-Rank Adaptation of Large Language Models" (arXiv:2106.09685), with PEFT's conventions:
//! `y = x·Wᵀ + b + (alpha / r) · dropout(x)·Aᵀ·Bᵀ`, `A` Kaiming-uniform, `B` zero.

use super::config::ModelConfig;
use super::ops::{self, Frozen};
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::sync::Mutex;

/// The seven projections LoRA can adapt, by their PEFT / Hugging Face module names.
pub const TARGET_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Low-rank update of one projection: `A` `[r, in]`, `B` `[out, r]`.
#[derive(Clone, Debug)]
pub struct Lora {
    /// Down projection.
    pub a: Tensor,
    /// Up projection.
    pub b: Tensor,
    /// `alpha / r`.
    pub scale: f64,
    /// Dropout on the LoRA input while training.
    pub dropout: f64,
}

/// A projection: frozen weight, optional bias, optional LoRA.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Frozen base weight `[out, in]`.
    pub weight: Frozen,
    /// Frozen bias `[out]`.
    pub bias: Option<Tensor>,
    /// Trainable or loaded low-rank update.
    pub lora: Option<Lora>,
}

/// Per-call state: training mode and the dropout generator.
pub struct Pass {
    /// Training: differentiable ops, dropout on.
    pub train: bool,
    rng: Option<Mutex<StdRng>>,
}

impl Pass {
    /// Inference: fused kernels, no dropout.
    pub fn infer() -> Self {
        Self {
            train: false,
            rng: None,
        }
    }
    /// Training with dropout masks drawn from `seed`: on the CPU by a host generator; on another device by the
    /// device's own generator, which this seeds (so a pass's masks depend only on `seed` there too).
    pub fn train(seed: u64, device: &Device) -> Result<Self> {
        if !device.is_cpu() {
            device.set_seed(seed)?;
        }
        Ok(Self {
            train: true,
            rng: Some(Mutex::new(StdRng::seed_from_u64(seed))),
        })
    }

    /// The dropout mask for `x`, `None` when not training or `p` is 0. On the CPU one random byte per element
    /// from the seeded generator (its bulk fill), kept when at or above the threshold (`p` in 1/256 steps);
    /// elsewhere drawn on the device.
    fn dropout_mask(&self, x: &Tensor, p: f64) -> Option<ops::Mask> {
        let rng = self.rng.as_ref().filter(|_| self.train && p > 0.0)?;
        if !x.device().is_cpu() {
            return Some(ops::Mask::Device(p));
        }
        let mut bytes = vec![0u8; x.elem_count()];
        rng.lock().expect("dropout rng").fill_bytes(&mut bytes);
        Some(ops::Mask::Bytes(
            bytes,
            (p * 256.0).round().clamp(1.0, 255.0) as u8,
        ))
    }
}

impl Linear {
    fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (lead, inner) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, inner[0]))?;
        let mut y = match &self.lora {
            Some(lora) => {
                // No mask unless training.
                let mask = pass.dropout_mask(&x2, lora.dropout);
                ops::lora_linear(
                    &x2,
                    &self.weight,
                    &lora.a,
                    &lora.b,
                    lora.scale,
                    mask,
                    pass.train,
                )?
            }
            None => ops::frozen_linear(&x2, &self.weight, pass.train)?,
        };
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(bias)?;
        }
        let mut out = lead.to_vec();
        out.push(self.weight.out_features());
        y.reshape(out)
    }

    /// `W + scale · B·A` as a dense tensor (for `--merge`).
    pub fn merged_weight(&self) -> Result<Tensor> {
        let w = self.weight.dense()?;
        match &self.lora {
            Some(l) => w + (l.b.matmul(&l.a)? * l.scale)?,
            None => Ok(w),
        }
    }
}

/// One pre-norm decoder block.
#[derive(Clone, Debug)]
pub struct Block {
    /// RMSNorm before attention.
    pub input_norm: Tensor,
    /// Query projection.
    pub q_proj: Linear,
    /// Key projection.
    pub k_proj: Linear,
    /// Value projection.
    pub v_proj: Linear,
    /// Attention output projection.
    pub o_proj: Linear,
    /// RMSNorm before the MLP.
    pub post_norm: Tensor,
    /// MLP gate.
    pub gate_proj: Linear,
    /// MLP up projection.
    pub up_proj: Linear,
    /// MLP down projection.
    pub down_proj: Linear,
}

impl Block {
    /// The block's projections with their PEFT module paths relative to the layer (`self_attn.q_proj`, ...).
    pub fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 7] {
        [
            ("self_attn.q_proj", &mut self.q_proj),
            ("self_attn.k_proj", &mut self.k_proj),
            ("self_attn.v_proj", &mut self.v_proj),
            ("self_attn.o_proj", &mut self.o_proj),
            ("mlp.gate_proj", &mut self.gate_proj),
            ("mlp.up_proj", &mut self.up_proj),
            ("mlp.down_proj", &mut self.down_proj),
        ]
    }

    /// Read-only view of [`Block::linears_mut`].
    pub fn linears(&self) -> [(&'static str, &Linear); 7] {
        [
            ("self_attn.q_proj", &self.q_proj),
            ("self_attn.k_proj", &self.k_proj),
            ("self_attn.v_proj", &self.v_proj),
            ("self_attn.o_proj", &self.o_proj),
            ("mlp.gate_proj", &self.gate_proj),
            ("mlp.up_proj", &self.up_proj),
            ("mlp.down_proj", &self.down_proj),
        ]
    }
}

/// Keys and values of the positions seen so far, per layer.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map(|(k, _)| k.dims()[2])
            .unwrap_or(0)
    }
    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A loaded decoder.
#[derive(Clone, Debug)]
pub struct Model {
    /// Shape.
    pub cfg: ModelConfig,
    /// Token embedding `[vocab, hidden]`.
    pub embed: Tensor,
    /// Decoder blocks.
    pub layers: Vec<Block>,
    /// Final RMSNorm.
    pub norm: Tensor,
    /// Output projection (the embedding when tied).
    pub lm_head: Frozen,
    cos: Tensor,
    sin: Tensor,
}

/// Longest rotary table built up front.
const MAX_ROPE: usize = 131_072;

impl Model {
    /// Assembles a model from its parts and builds the rotary tables.
    pub fn new(
        cfg: ModelConfig,
        embed: Tensor,
        layers: Vec<Block>,
        norm: Tensor,
        lm_head: Frozen,
    ) -> Result<Self> {
        let device = embed.device().clone();
        let half = cfg.head_dim / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64) as f32)
            .collect();
        let n = cfg.max_position_embeddings.clamp(1, MAX_ROPE);
        let inv = Tensor::from_vec(inv, (1, half), &device)?;
        let pos = Tensor::arange(0u32, n as u32, &device)?
            .to_dtype(DType::F32)?
            .reshape((n, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cfg,
            embed,
            layers,
            norm,
            lm_head,
            cos: freqs.cos()?,
            sin: freqs.sin()?,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    /// Final hidden states `[b, t, hidden]` for token ids `[b, t]`. With a cache, positions continue after the
    /// cached ones and the cache is extended.
    pub fn hidden(&self, ids: &Tensor, cache: Option<&mut KvCache>, pass: &Pass) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let cfg = &self.cfg;
        let mut cache = cache;
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        if past + t > self.cos.dims()[0] {
            candle_core::bail!(
                "sequence of {} tokens is longer than the model's {} positions",
                past + t,
                self.cos.dims()[0]
            );
        }
        if let Some(c) = cache.as_mut()
            && c.layers.len() != self.layers.len()
        {
            c.layers = vec![None; self.layers.len()];
        }
        let cos = self.cos.narrow(0, past, t)?;
        let sin = self.sin.narrow(0, past, t)?;
        let mask = if t > 1 {
            Some(causal_mask(t, past, ids.device())?)
        } else {
            None
        };
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, cfg.hidden_size))?;
        let (h, kvh, d) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        for (i, layer) in self.layers.iter().enumerate() {
            let residual = x.clone();
            let xn = ops::rms_norm(&x, &layer.input_norm, cfg.rms_norm_eps, pass.train)?;
            let q = layer.q_proj.forward(&xn, pass)?;
            let k = layer.k_proj.forward(&xn, pass)?;
            let v = layer.v_proj.forward(&xn, pass)?;
            let q = q.reshape((b, t, h, d))?.transpose(1, 2)?.contiguous()?;
            let k = k.reshape((b, t, kvh, d))?.transpose(1, 2)?.contiguous()?;
            let v = v.reshape((b, t, kvh, d))?.transpose(1, 2)?.contiguous()?;
            let q = ops::rope(&q, &cos, &sin, pass.train)?;
            let mut k = ops::rope(&k, &cos, &sin, pass.train)?;
            let mut v = v;
            if let Some(c) = cache.as_mut() {
                if let Some((pk, pv)) = &c.layers[i] {
                    k = Tensor::cat(&[pk, &k], 2)?;
                    v = Tensor::cat(&[pv, &v], 2)?;
                }
                c.layers[i] = Some((k.clone(), v.clone()));
            }
            let k = candle_transformers::utils::repeat_kv(k, h / kvh)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v, h / kvh)?.contiguous()?;
            let att = ops::causal_softmax(
                &q.matmul(&k.t()?)?,
                1.0 / (d as f64).sqrt(),
                past,
                mask.as_ref(),
                pass.train,
            )?;
            let y = att
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, h * d))?;
            x = (layer.o_proj.forward(&y, pass)? + residual)?;
            let residual = x.clone();
            let xn = ops::rms_norm(&x, &layer.post_norm, cfg.rms_norm_eps, pass.train)?;
            let gate = layer.gate_proj.forward(&xn, pass)?;
            let up = layer.up_proj.forward(&xn, pass)?;
            let act = ops::swiglu(&gate, &up, pass.train)?;
            x = (layer.down_proj.forward(&act, pass)? + residual)?;
        }
        ops::rms_norm(&x, &self.norm, cfg.rms_norm_eps, pass.train)
    }

    /// Logits `[n, vocab]` for hidden states `[n, hidden]`.
    pub fn project(&self, hidden: &Tensor, pass: &Pass) -> Result<Tensor> {
        ops::frozen_linear(hidden, &self.lm_head, pass.train)
    }

    /// Logits `[b, t, vocab]` for token ids `[b, t]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        pass: &Pass,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let hidden = self.hidden(ids, cache, pass)?;
        let logits = self.project(&hidden.reshape((b * t, self.cfg.hidden_size))?, pass)?;
        logits.reshape((b, t, self.cfg.vocab_size))
    }

    /// Adds fresh LoRA weights (`A` Kaiming-uniform from `seed`, `B` zero) to the named projections of every
    /// layer; returns the trainable variables by their PEFT tensor names.
    pub fn attach_lora(
        &mut self,
        rank: usize,
        alpha: f64,
        dropout: f64,
        targets: &[String],
        seed: u64,
    ) -> Result<Vec<(String, Var)>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let device = self.device().clone();
        let mut vars = Vec::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (path, linear) in layer.linears_mut() {
                let module = path.rsplit('.').next().unwrap_or(path);
                if !targets.iter().any(|t| t == module) {
                    continue;
                }
                let (out_f, in_f) = (linear.weight.out_features(), linear.weight.in_features());
                let bound = 1.0 / (in_f as f64).sqrt();
                let a: Vec<f32> = (0..rank * in_f)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (rank, in_f), &device)?)?;
                let b = Var::zeros((out_f, rank), DType::F32, &device)?;
                linear.lora = Some(Lora {
                    a: a.as_tensor().clone(),
                    b: b.as_tensor().clone(),
                    scale: alpha / rank as f64,
                    dropout,
                });
                let name = format!("base_model.model.model.layers.{i}.{path}");
                vars.push((format!("{name}.lora_A.weight"), a));
                vars.push((format!("{name}.lora_B.weight"), b));
            }
        }
        Ok(vars)
    }

    /// Bytes held by frozen weights (what QLoRA shrinks).
    pub fn frozen_bytes(&self) -> usize {
        let t = |x: &Tensor| x.elem_count() * x.dtype().size_in_bytes();
        let mut n = t(&self.embed) + t(&self.norm);
        if !self.cfg.tie_word_embeddings {
            n += self.lm_head.size_in_bytes();
        }
        for l in &self.layers {
            n += t(&l.input_norm) + t(&l.post_norm);
            for (_, lin) in l.linears() {
                n += lin.weight.size_in_bytes() + lin.bias.as_ref().map(t).unwrap_or(0);
            }
        }
        n
    }
}

fn causal_mask(t: usize, past: usize, device: &Device) -> Result<Tensor> {
    let total = past + t;
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, total), device)
}

/// Logits `[n, vocab]` → mean negative log-likelihood of `targets` `[n]` (u32).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    ops::cross_entropy_rows(logits, targets)?.mean_all()
}
