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

/// Forwards its second argument (computed outside the graph); backward hands the output gradient to `grad_of`,
/// which returns the gradient of the first argument. How frozen matmuls and the loss get backward passes that
/// compute only what training needs.
struct PassThrough<F> {
    name: &'static str,
    grad_of: F,
}

impl<F: Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync> CustomOp2 for PassThrough<F> {
    fn name(&self) -> &'static str {
        self.name
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
        arg: &Tensor,
        _computed: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some((self.grad_of)(arg, grad)?), None))
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
    let w = w.clone();
    x.apply_op2(
        &y,
        PassThrough {
            name: "frozen-linear",
            grad_of: move |_x: &Tensor, grad: &Tensor| grad.matmul(&w.dense()?),
        },
    )
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

/// Per-row negative log-likelihood of `targets` `[n]` (u32) under `logits` `[n, vocab]`, differentiable in the
/// logits.
pub fn cross_entropy_rows(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let detached = logits.detach();
    let lse = detached.log_sum_exp(D::Minus1)?;
    let picked = detached.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let nll = (lse - picked)?.contiguous()?;
    // Backward: `(softmax(logits) - onehot) · g`, without the vocabulary-sized intermediates a composed
    // log-softmax keeps.
    let targets = targets.unsqueeze(1)?;
    logits.apply_op2(
        &nll,
        PassThrough {
            name: "cross-entropy",
            grad_of: move |logits: &Tensor, grad: &Tensor| {
                let g = grad.unsqueeze(1)?;
                let p = candle_nn::ops::softmax_last_dim(&logits.detach())?.broadcast_mul(&g)?;
                p.scatter_add(&targets, &g.neg()?, 1)
            },
        },
    )
}
