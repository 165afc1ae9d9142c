//! Tensor operations for training and inference.
//!
//! candle's fused kernels (`rms_norm`, `rope`, `softmax_last_dim`) have no backward pass, and its matmul backward
//! computes the weight gradient even for frozen weights. Training therefore uses differentiable compositions of
//! basic ops, and frozen projections go through [`frozen_linear`], whose backward yields only the input gradient:
//! no `dW` matmul for the 135M frozen parameters, and no f32 copy of a 4-bit weight kept alive for backward.

use candle_core::backend::BackendStorage;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp2, D, Layout, Module, Result, Shape, Tensor};
use std::sync::Arc;

/// A frozen weight `[out, in]`: dense f32, or 4-bit blocks dequantized on the fly (QLoRA).
#[derive(Clone, Debug)]
pub enum Frozen {
    /// Full-precision weight.
    Dense(Tensor),
    /// Quantized weight (a GGUF block type such as Q4_0).
    Quant(Arc<QTensor>),
}

impl Frozen {
    /// The weight as a dense tensor (dequantized when quantized).
    pub fn dense(&self) -> Result<Tensor> {
        match self {
            Frozen::Dense(w) => Ok(w.clone()),
            Frozen::Quant(q) => q.dequantize(&q.device()),
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        match self {
            Frozen::Dense(w) => w.dims()[0],
            Frozen::Quant(q) => q.shape().dims()[0],
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match self {
            Frozen::Dense(w) => w.dims()[1],
            Frozen::Quant(q) => q.shape().dims()[1],
        }
    }

    /// Bytes the weight occupies.
    pub fn size_in_bytes(&self) -> usize {
        match self {
            Frozen::Dense(w) => w.elem_count() * w.dtype().size_in_bytes(),
            Frozen::Quant(q) => q.storage_size_in_bytes(),
        }
    }
}

/// Copies its second argument forward; backward sends `grad · W` to the first. Used as
/// `x.apply_op2(&y, link)` where `y = x.detach() · Wᵀ` was computed outside the graph.
struct GradLink(Frozen);

impl CustomOp2 for GradLink {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _s1: &candle_core::CudaStorage,
        _l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let w = self.0.dense()?;
        Ok((Some(grad.matmul(&w)?), None))
    }
}

/// `x · Wᵀ` for a 2-D `x` `[n, in]`. When `train` is set, gradients flow to `x` but never to `W`; a quantized `W`
/// is dequantized for the product and dropped right after. Inference uses candle's quantized matmul directly.
pub fn frozen_linear(x: &Tensor, w: &Frozen, train: bool) -> Result<Tensor> {
    if !train {
        return match w {
            Frozen::Dense(w) => x.matmul(&w.t()?),
            Frozen::Quant(q) => QMatMul::from_arc(q.clone())?.forward(x),
        };
    }
    let dense = w.dense()?;
    let y = x.detach().matmul(&dense.t()?)?.contiguous()?;
    drop(dense);
    x.apply_op2(&y, GradLink(w.clone()))
}

/// RMSNorm `x / sqrt(mean(x²) + eps) · w` over the last dimension; fused kernel unless training.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, train: bool) -> Result<Tensor> {
    if !train {
        return candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32);
    }
    let norm = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
    x.broadcast_div(&norm)?.broadcast_mul(w)
}

/// Rotary position embedding in the rotate-half form of Hugging Face Llama/Qwen2, for `x` `[b, h, t, d]` and
/// `cos`/`sin` `[t, d/2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, train: bool) -> Result<Tensor> {
    if !train {
        return candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin);
    }
    let half = x.dim(D::Minus1)? / 2;
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
}

/// Softmax over the last dimension; fused kernel unless training.
pub fn softmax(x: &Tensor, train: bool) -> Result<Tensor> {
    if train {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(&x.contiguous()?)
    }
}

/// Forwards the per-row losses computed outside the graph; backward sends `(softmax(logits) - onehot) · g` to the
/// logits. Saves the several vocabulary-sized intermediates a composed `log_softmax` keeps for backward.
struct CrossEntropyLink {
    targets: Tensor,
}

impl CustomOp2 for CrossEntropyLink {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _s1: &candle_core::CudaStorage,
        _l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        _nll: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.unsqueeze(1)?;
        let p = candle_nn::ops::softmax_last_dim(&logits.detach())?.broadcast_mul(&g)?;
        let p = p.scatter_add(&self.targets.unsqueeze(1)?, &g.neg()?, 1)?;
        Ok((Some(p), None))
    }
}

/// Per-row negative log-likelihood of `targets` `[n]` (u32) under `logits` `[n, vocab]`, differentiable in the
/// logits.
pub fn cross_entropy_rows(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let detached = logits.detach();
    let lse = detached.log_sum_exp(D::Minus1)?;
    let picked = detached.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let nll = (lse - picked)?.contiguous()?;
    logits.apply_op2(
        &nll,
        CrossEntropyLink {
            targets: targets.clone(),
        },
    )
}
