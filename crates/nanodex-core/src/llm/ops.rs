//! Tensor operations for training and inference.
//!
//! candle's fused kernels (`rms_norm`, `rope`, `softmax_last_dim`) have no backward pass, its matmul backward
//! computes the weight gradient even for frozen weights, and every composed op keeps its output alive until the
//! backward pass. Training on the CPU therefore runs its own fused kernels with backward passes ([`CustomOp1`]s
//! over contiguous f32 rows): frozen projections ([`frozen_linear`]: only the input gradient, no `dW` matmul for
//! the 135M frozen parameters, no f32 copy of a 4-bit weight kept alive), RMSNorm, RoPE, the scaled causal
//! softmax and dropout (a byte mask instead of an f32 one). Each keeps one output per call where the composition
//! kept three to six, which is most of the activation memory of a step, and makes one pass over memory where the
//! composition made several. On other devices training uses differentiable compositions of candle's basic ops.
use candle_core::backend::BackendStorage;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Layout, Module, Result, Shape, Storage,
    Tensor, bail,
};
use rayon::prelude::*;
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
/// which returns the gradient of the first argument. How the loss ([`cross_entropy_rows`]) gets a backward pass
/// that computes only what training needs; the frozen projections compute their product inside their own op.
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
    x.apply_op1(FrozenMatmul { w: w.clone() })
}

/// `x · Wᵀ` as one op: the product is computed in the forward pass itself (no copy of it is kept), and the
/// backward pass returns only `dx = g · W`.
struct FrozenMatmul {
    w: Frozen,
}

impl FrozenMatmul {
    /// `(m, n, k)` of the product and the transposed dense weight.
    /// The raw storage matmul does not check shapes (`Tensor::matmul` does), so this does.
    fn operands(&self, l: &Layout) -> Result<((usize, usize, usize), Tensor)> {
        let (m, k) = l.shape().dims2()?;
        if self.w.in_features() != k {
            bail!(
                "frozen-matmul: input of {k} features for a weight of {}",
                self.w.in_features()
            )
        }
        Ok(((m, self.w.out_features(), k), self.w.dense()?.t()?))
    }
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let ((m, n, k), wt) = self.operands(l)?;
        let (ws, wl) = wt.storage_and_layout();
        let Storage::Cpu(ws) = &*ws else {
            bail!("frozen-matmul: the weight is not on the CPU")
        };
        Ok((s.matmul(ws, (1, m, n, k), l, wl)?, Shape::from((m, n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let ((m, n, k), wt) = self.operands(l)?;
        let (ws, wl) = wt.storage_and_layout();
        let Storage::Cuda(ws) = &*ws else {
            bail!("frozen-matmul: the weight is not on the GPU")
        };
        Ok((s.matmul(ws, (1, m, n, k), l, wl)?, Shape::from((m, n))))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.w.dense()?)?))
    }
}

/// A LoRA projection: `x · Wᵀ + scale · dropout(x) · Aᵀ · Bᵀ` for `x` `[n, in]`, `A` `[r, in]`, `B` `[out, r]`.
/// Training on the CPU runs one op that keeps only its output for the backward pass (the dropped-out input and
/// the low-rank product are recomputed there, `[n, r]` and one `[n, in]` pass); otherwise (inference, other
/// devices) it is composed of basic ops. `dropout` is a [`Mask`].
pub fn lora_linear(
    x: &Tensor,
    w: &Frozen,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    dropout: Option<Mask>,
    train: bool,
) -> Result<Tensor> {
    if fused(x, train) && !matches!(dropout, Some(Mask::Device(_))) {
        let dropout = match dropout {
            Some(Mask::Bytes(mask, threshold)) => Some(Dropout::new(x, mask, threshold)?),
            _ => None,
        };
        return x.contiguous()?.apply_op3(
            a,
            b,
            LoraLinear {
                w: w.clone(),
                scale: scale as f32,
                dropout,
            },
        );
    }
    let y = frozen_linear(x, w, train)?;
    let xd = match dropout {
        Some(mask) => self::dropout(x, mask)?,
        None => x.clone(),
    };
    // Scaling the small B instead of the [n, out] product saves a full-size elementwise op.
    y + xd.matmul(&a.t()?)?.matmul(&(b * scale)?.t()?)?
}

struct LoraLinear {
    w: Frozen,
    scale: f32,
    dropout: Option<Dropout>,
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sa: &CpuStorage,
        la: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, k) = lx.shape().dims2()?;
        let (r, out) = (la.shape().dims2()?.0, self.w.out_features());
        // The raw storage matmuls below do not check shapes (`Tensor::matmul` does), so this does.
        if self.w.in_features() != k || la.shape().dims() != [r, k] || lb.shape().dims() != [out, r]
        {
            bail!(
                "lora-linear: input {:?}, weight [{out}, {}], A {:?}, B {:?} do not fit",
                lx.shape().dims(),
                self.w.in_features(),
                la.shape().dims(),
                lb.shape().dims()
            )
        }
        let wt = self.w.dense()?.t()?;
        let (ws, wl) = wt.storage_and_layout();
        let Storage::Cpu(ws) = &*ws else {
            bail!("lora-linear: the weight is not on the CPU")
        };
        let mut y = sx.matmul(ws, (1, n, out, k), lx, wl)?;
        let dropped;
        let dense = Layout::contiguous((n, k));
        let (xd, lxd) = match &self.dropout {
            Some(d) => {
                dropped = d.apply(f32_slice(sx, lx, self.name())?);
                (&dropped, &dense)
            }
            None => (sx, lx),
        };
        let h = xd.matmul(sa, (1, n, r, k), lxd, &la.transpose(0, 1)?)?;
        let low = h.matmul(
            sb,
            (1, n, out, r),
            &Layout::contiguous((n, r)),
            &lb.transpose(0, 1)?,
        )?;
        let (CpuStorage::F32(y_v), CpuStorage::F32(low)) = (&mut y, &low) else {
            bail!("lora-linear: expects f32")
        };
        y_v.par_iter_mut()
            .zip(low.par_iter())
            .with_min_len(4096)
            .for_each(|(y, l)| *y += self.scale * l);
        Ok((y, Shape::from((n, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The first layer's input comes from the frozen embedding: no input gradient, no `g · W` matmul.
        let needs_dx = x.track_op();
        let (x, a, b) = (x.detach(), a.detach(), b.detach());
        let xd = match &self.dropout {
            Some(d) => x.apply_op1_no_bwd(d)?,
            None => x.clone(),
        };
        let scale = self.scale as f64;
        let h = xd.matmul(&a.t()?)?;
        let gb = (g.t()?.matmul(&h)? * scale)?;
        let gh = (g.matmul(&b)? * scale)?;
        let ga = gh.t()?.matmul(&xd)?;
        drop(xd);
        if !needs_dx {
            return Ok((None, Some(ga), Some(gb)));
        }
        let mut low = gh.matmul(&a)?;
        if let Some(d) = &self.dropout {
            low = low.apply_op1_no_bwd(d)?;
        }
        let gx = (g.matmul(&self.w.dense()?)? + low)?;
        Ok((Some(gx), Some(ga), Some(gb)))
    }
}

/// SwiGLU `silu(gate) ∘ up`; one fused op with a backward pass when training on the CPU.
pub fn swiglu(gate: &Tensor, up: &Tensor, train: bool) -> Result<Tensor> {
    if fused(gate, train) && up.shape() == gate.shape() {
        return gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu);
    }
    candle_nn::ops::silu(gate)? * up
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, u) = (
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
        );
        let out = g
            .par_iter()
            .zip(u.par_iter())
            .with_min_len(4096)
            .map(|(g, u)| g * sigmoid(*g) * u)
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let d_gate = gate.apply_op3_no_bwd(up, &grad, &SwiGluGrad { of_gate: true })?;
        let d_up = gate.apply_op3_no_bwd(up, &grad, &SwiGluGrad { of_gate: false })?;
        Ok((Some(d_gate), Some(d_up)))
    }
}

/// Gradient of [`SwiGlu`] with respect to the gate (`g ∘ u ∘ σ(x)(1 + x(1 − σ(x)))`) or to up (`g ∘ silu(x)`).
struct SwiGluGrad {
    of_gate: bool,
}

impl CustomOp3 for SwiGluGrad {
    fn name(&self) -> &'static str {
        "swiglu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (x, u, g) = (
            f32_slice(s1, l1, name)?,
            f32_slice(s2, l2, name)?,
            f32_slice(s3, l3, name)?,
        );
        let of_gate = self.of_gate;
        let out = x
            .par_iter()
            .zip(u.par_iter().zip(g.par_iter()))
            .with_min_len(4096)
            .map(|(x, (u, g))| {
                let s = sigmoid(*x);
                if of_gate {
                    g * u * s * (1.0 + x * (1.0 - s))
                } else {
                    g * x * s
                }
            })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Whether training can use the fused CPU kernels for `x`.
fn fused(x: &Tensor, train: bool) -> bool {
    train && x.device().is_cpu() && x.dtype() == DType::F32
}

/// The contiguous f32 slice a CPU kernel reads.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: expects f32")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("{op}: expects a contiguous input")
    };
    Ok(&v[a..b])
}

/// Applies `f(input row, output row)` to every row of `width` elements, in parallel.
fn map_rows(x: &[f32], width: usize, f: impl Fn(usize, &[f32], &mut [f32]) + Sync) -> CpuStorage {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .enumerate()
        .with_min_len(16)
        .for_each(|(r, (o, x))| f(r, x, o));
    CpuStorage::F32(out)
}

/// Like [`map_rows`] with a second input of the same shape.
fn map_rows2(
    x: &[f32],
    y: &[f32],
    width: usize,
    f: impl Fn(usize, &[f32], &[f32], &mut [f32]) + Sync,
) -> CpuStorage {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(width)
        .zip(x.par_chunks(width).zip(y.par_chunks(width)))
        .enumerate()
        .with_min_len(16)
        .for_each(|(r, (o, (x, y)))| f(r, x, y, o));
    CpuStorage::F32(out)
}

/// The last two dimensions of a layout.
fn last_two(l: &Layout) -> Result<(usize, usize)> {
    match l.shape().dims() {
        [.., a, b] => Ok((*a, *b)),
        dims => bail!("expected at least 2 dimensions, got {dims:?}"),
    }
}

/// The last dimension of a layout.
fn last_dim(l: &Layout) -> Result<usize> {
    l.shape()
        .dims()
        .last()
        .copied()
        .ok_or_else(|| candle_core::Error::Msg("a scalar".into()))
}

/// RMSNorm `x / sqrt(mean(x²) + eps) · w` over the last dimension; fused kernel unless training.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, train: bool) -> Result<Tensor> {
    if !train {
        return candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32);
    }
    // A trainable norm weight (never the case today) takes the composed path, which gives it a gradient.
    if fused(x, train) && !w.track_op() && w.dims1()? == x.dim(D::Minus1)? {
        let w = w.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        return x.contiguous()?.apply_op1(RmsNorm {
            w: Arc::new(w),
            eps: eps as f32,
        });
    }
    let norm = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
    x.broadcast_div(&norm)?.broadcast_mul(w)
}

/// Fused RMSNorm with a frozen weight; backward: `dx = r·(g∘w) − x·r³·mean(g∘w∘x)`, `r = 1/sqrt(mean(x²)+eps)`.
#[derive(Clone)]
struct RmsNorm {
    w: Arc<Vec<f32>>,
    eps: f32,
}

impl RmsNorm {
    fn inv_rms(&self, x: &[f32]) -> f32 {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        1.0 / (ms + self.eps).sqrt()
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-train"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let width = last_dim(l)?;
        let out = map_rows(x, width, |_, x, o| {
            let r = self.inv_rms(x);
            for ((o, x), w) in o.iter_mut().zip(x).zip(self.w.iter()) {
                *o = x * r * w;
            }
        });
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(
            &grad.contiguous()?,
            &RmsNormGrad(self.clone()),
        )?))
    }
}

struct RmsNormGrad(RmsNorm);

impl CustomOp2 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "rms-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
        );
        let width = last_dim(l1)?;
        let w = &self.0.w;
        let out = map_rows2(x, g, width, |_, x, g, o| {
            let r = self.0.inv_rms(x);
            let dot = x
                .iter()
                .zip(g)
                .zip(w.iter())
                .map(|((x, g), w)| x * g * w)
                .sum::<f32>()
                / width as f32;
            let c = r * r * r * dot;
            for (((o, x), g), w) in o.iter_mut().zip(x).zip(g).zip(w.iter()) {
                *o = r * g * w - x * c;
            }
        });
        Ok((out, l1.shape().clone()))
    }
}

/// Rotary position embedding in the rotate-half form of Hugging Face Llama/Qwen2, for `x` `[b, h, t, d]` and
/// `cos`/`sin` `[t, d/2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, train: bool) -> Result<Tensor> {
    if !train {
        return candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin);
    }
    if fused(x, train) {
        return x.contiguous()?.apply_op1(Rope {
            cos: Arc::new(cos.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?),
            sin: Arc::new(sin.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?),
            sign: 1.0,
        });
    }
    let half = x.dim(D::Minus1)? / 2;
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
}

/// Fused rotate-half RoPE over rows `[.., t, d]`; its transpose (the backward pass) is the same rotation with
/// `sin` negated (`sign` -1).
#[derive(Clone)]
struct Rope {
    cos: Arc<Vec<f32>>,
    sin: Arc<Vec<f32>>,
    sign: f32,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope-train"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let (t, d) = last_two(l)?;
        let half = d / 2;
        if self.cos.len() != t * half || self.sin.len() != t * half {
            bail!("rope: tables do not match {t} positions of {d}")
        }
        let out = map_rows(x, d, |r, x, o| {
            let p = (r % t) * half;
            let (cos, sin) = (&self.cos[p..p + half], &self.sin[p..p + half]);
            let (x1, x2) = x.split_at(half);
            let (o1, o2) = o.split_at_mut(half);
            for i in 0..half {
                let (c, s) = (cos[i], self.sign * sin[i]);
                o1[i] = x1[i] * c - x2[i] * s;
                o2[i] = x2[i] * c + x1[i] * s;
            }
        });
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let transpose = Rope {
            sign: -self.sign,
            ..self.clone()
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&transpose)?))
    }
}

/// Softmax over the last dimension; fused kernel unless training.
pub fn softmax(x: &Tensor, train: bool) -> Result<Tensor> {
    if train {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(&x.contiguous()?)
    }
}

/// Attention weights `softmax(scale · scores + causal mask)` for scores `[b, h, t, past + t]`, where query `i`
/// sees keys `0..=past + i`. `mask` must be that causal mask as an additive `[t, past + t]` tensor (used by the
/// composed path); training on the CPU uses one fused kernel that builds the same mask itself, so any other
/// mask (padding, say) would need a new kernel. `scale` must be positive.
pub fn causal_softmax(
    scores: &Tensor,
    scale: f64,
    past: usize,
    mask: Option<&Tensor>,
    train: bool,
) -> Result<Tensor> {
    if fused(scores, train) {
        if scale <= 0.0 {
            bail!("causal-softmax: the scale must be positive, got {scale}")
        }
        return scores.contiguous()?.apply_op1(CausalSoftmax {
            scale: scale as f32,
            past,
        });
    }
    let mut att = (scores * scale)?;
    if let Some(mask) = mask {
        att = att.broadcast_add(mask)?;
    }
    softmax(&att, train)
}

/// Fused scaled causal softmax; backward: `dx = scale · y ∘ (g − Σ g∘y)` per row.
struct CausalSoftmax {
    scale: f32,
    past: usize,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let (t, total) = last_two(l)?;
        let out = map_rows(x, total, |r, x, o| {
            let seen = (self.past + r % t + 1).min(total);
            let max = x[..seen].iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) * self.scale;
            let mut sum = 0.0;
            for (o, x) in o[..seen].iter_mut().zip(x) {
                *o = (x * self.scale - max).exp();
                sum += *o;
            }
            let inv = 1.0 / sum;
            o[..seen].iter_mut().for_each(|o| *o *= inv);
        });
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(
            &grad.contiguous()?,
            &SoftmaxGrad { scale: self.scale },
        )?))
    }
}

struct SoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
        );
        let out = map_rows2(y, g, last_dim(l1)?, |_, y, g, o| {
            let dot = y.iter().zip(g).map(|(y, g)| y * g).sum::<f32>();
            for ((o, y), g) in o.iter_mut().zip(y).zip(g) {
                *o = self.scale * y * (g - dot);
            }
        });
        Ok((out, l1.shape().clone()))
    }
}

/// Where a dropout mask comes from.
#[derive(Clone, Debug)]
pub enum Mask {
    /// One random byte per element, drawn on the host; element `i` is kept when `bytes[i] ≥ threshold`
    /// (`p = threshold / 256`). For the CPU, whose fused kernels read it.
    Bytes(Vec<u8>, u8),
    /// Drawn on the tensor's device by its own generator (the caller seeds it: `Device::set_seed`), dropping
    /// with probability `p`. For a GPU: host bytes for every LoRA input were about 150 KB per token
    /// (SmolLM2-135M), 1.2 GB per 16 × 512 step made on the CPU (0.34-0.39 s of generator time alone) and
    /// copied over.
    Device(f64),
}

/// Inverted dropout `x ∘ keep / (1 − p)` with the kept elements chosen by `mask`.
pub fn dropout(x: &Tensor, mask: Mask) -> Result<Tensor> {
    match mask {
        Mask::Bytes(mask, threshold) => {
            if mask.len() != x.elem_count() {
                bail!(
                    "dropout: mask of {} for {} elements",
                    mask.len(),
                    x.elem_count()
                )
            }
            if fused(x, true) {
                return x.contiguous()?.apply_op1(Dropout::new(x, mask, threshold)?);
            }
            let scale = 256.0 / (256.0 - threshold as f64);
            let r = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(DType::F32)?;
            let keep = (r.ge(threshold as f64)?.to_dtype(DType::F32)? * scale)?;
            x.mul(&keep.to_dtype(x.dtype())?)
        }
        Mask::Device(p) => {
            if !(0.0..1.0).contains(&p) {
                bail!("dropout: p = {p} is outside [0, 1)")
            }
            let r = Tensor::rand(0f32, 1f32, x.shape(), x.device())?;
            let keep = (r.ge(p)?.to_dtype(DType::F32)? * (1.0 / (1.0 - p)))?;
            x.mul(&keep.to_dtype(x.dtype())?)
        }
    }
}

/// Fused dropout; it is linear, so its backward pass applies the same mask to the gradient.
#[derive(Clone)]
struct Dropout {
    mask: Arc<Vec<u8>>,
    threshold: u8,
    scale: f32,
}

impl Dropout {
    fn new(x: &Tensor, mask: Vec<u8>, threshold: u8) -> Result<Self> {
        if mask.len() != x.elem_count() {
            bail!(
                "dropout: mask of {} for {} elements",
                mask.len(),
                x.elem_count()
            )
        }
        Ok(Self {
            mask: Arc::new(mask),
            threshold,
            scale: 256.0 / (256.0 - threshold as f32),
        })
    }

    fn apply(&self, x: &[f32]) -> CpuStorage {
        CpuStorage::F32(
            x.par_iter()
                .zip(self.mask.par_iter())
                .with_min_len(4096)
                .map(|(x, m)| {
                    if *m >= self.threshold {
                        x * self.scale
                    } else {
                        0.0
                    }
                })
                .collect(),
        )
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        if x.len() != self.mask.len() {
            bail!(
                "dropout: mask of {} for {} elements",
                self.mask.len(),
                x.len()
            )
        }
        Ok((self.apply(x), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(self)?))
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

#[cfg(test)]
mod tests {
    //! Each fused CPU kernel against the composed path it replaces: the composed ops run on f64 tensors (the
    //! fused kernels take only f32), on the same values; outputs and gradients must agree.
    use super::*;
    use candle_core::{Device, Var};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Largest absolute difference; NaN anywhere counts as infinite.
    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        let v = |t: &Tensor| {
            t.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        };
        let (a, b) = (v(a), v(b));
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| {
                if (x - y).is_nan() {
                    f64::INFINITY
                } else {
                    (x - y).abs()
                }
            })
            .fold(0.0, f64::max)
    }

    /// Runs `op` on `inputs` as f32 (fused) and f64 (composed) variables, with the loss `Σ y ∘ r` for a fixed
    /// random `r`; returns the largest output and gradient differences.
    fn compare(inputs: &[Tensor], op: impl Fn(&[Tensor]) -> Tensor) -> (f64, f64) {
        let run = |dtype: DType| {
            let vars: Vec<Var> = inputs
                .iter()
                .map(|t| Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap())
                .collect();
            let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let y = op(&ts);
            assert_eq!(y.dtype(), dtype);
            let r = rand(y.dims(), 99).to_dtype(dtype).unwrap();
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let gs: Vec<Tensor> = vars
                .iter()
                .map(|v| grads.get(v.as_tensor()).expect("a gradient").clone())
                .collect();
            (y, gs)
        };
        let (y32, g32) = run(DType::F32);
        let (y64, g64) = run(DType::F64);
        let dg = g32
            .iter()
            .zip(&g64)
            .map(|(a, b)| max_diff(a, b))
            .fold(0.0, f64::max);
        (max_diff(&y32, &y64), dg)
    }

    fn close((dy, dg): (f64, f64), what: &str) {
        assert!(
            dy < 1e-5 && dg < 1e-4,
            "{what}: output differs by {dy:e}, gradient by {dg:e}"
        );
    }

    #[test]
    fn fused_rms_norm_matches_composition() {
        let w = rand(&[16], 2);
        close(
            compare(&[rand(&[2, 3, 16], 1)], |t| {
                rms_norm(&t[0], &w.to_dtype(t[0].dtype()).unwrap(), 1e-5, true).unwrap()
            }),
            "rms_norm",
        );
    }

    #[test]
    fn fused_rope_matches_composition() {
        let (cos, sin) = (rand(&[5, 4], 3), rand(&[5, 4], 4));
        close(
            compare(&[rand(&[2, 3, 5, 8], 5)], |t| {
                let d = t[0].dtype();
                rope(
                    &t[0],
                    &cos.to_dtype(d).unwrap(),
                    &sin.to_dtype(d).unwrap(),
                    true,
                )
                .unwrap()
            }),
            "rope",
        );
    }

    #[test]
    fn fused_causal_softmax_matches_composition() {
        for past in [0, 2] {
            let (t, total) = (4, 4 + past);
            let mask: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            let mask = Tensor::from_vec(mask, (t, total), &Device::Cpu).unwrap();
            close(
                compare(&[rand(&[2, 3, t, total], 6)], |x| {
                    let m = mask.to_dtype(x[0].dtype()).unwrap();
                    causal_softmax(&x[0], 0.35, past, Some(&m), true).unwrap()
                }),
                "causal_softmax",
            );
        }
    }

    #[test]
    fn fused_swiglu_matches_composition() {
        close(
            compare(&[rand(&[6, 10], 7), rand(&[6, 10], 8)], |t| {
                swiglu(&t[0], &t[1], true).unwrap()
            }),
            "swiglu",
        );
    }

    #[test]
    fn fused_dropout_and_lora_linear_match_composition() {
        let mask: Vec<u8> = (0..6 * 12).map(|i| (i * 37 % 256) as u8).collect();
        let kept = mask.iter().filter(|m| **m >= 64).count();
        assert!(
            kept > 0 && kept < mask.len(),
            "the mask drops some elements and keeps others"
        );
        close(
            compare(&[rand(&[6, 12], 9)], |t| {
                dropout(&t[0], Mask::Bytes(mask.clone(), 64)).unwrap()
            }),
            "dropout",
        );
        let w = rand(&[7, 12], 10);
        for drop in [None, Some(Mask::Bytes(mask.clone(), 64))] {
            close(
                compare(
                    &[rand(&[6, 12], 11), rand(&[3, 12], 12), rand(&[7, 3], 13)],
                    |t| {
                        let d = t[0].dtype();
                        let w = w.to_dtype(d).unwrap();
                        if d == DType::F32 {
                            return lora_linear(
                                &t[0],
                                &Frozen::Dense(w),
                                &t[1],
                                &t[2],
                                2.5,
                                drop.clone(),
                                true,
                            )
                            .unwrap();
                        }
                        // Reference from candle's own ops only (plain matmuls, tensor dropout).
                        let xd = match &drop {
                            Some(m) => dropout(&t[0], m.clone()).unwrap(),
                            None => t[0].clone(),
                        };
                        let low = xd
                            .matmul(&t[1].t().unwrap())
                            .unwrap()
                            .matmul(&t[2].t().unwrap())
                            .unwrap();
                        (t[0].matmul(&w.t().unwrap()).unwrap() + (low * 2.5).unwrap()).unwrap()
                    },
                ),
                "lora_linear",
            );
        }
    }

    #[test]
    fn device_dropout_drops_a_share_p_and_scales_the_rest() {
        // The GPU's mask (Mask::Device) drawn here on the CPU device: same ops, the CPU's generator.
        let p = 0.25;
        let x =
            Var::from_tensor(&Tensor::ones((400, 250), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let y = dropout(x.as_tensor(), Mask::Device(p)).unwrap();
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let dropped = v.iter().filter(|e| **e == 0.0).count() as f64 / v.len() as f64;
        // 100,000 draws: the share's standard deviation is 0.0014.
        assert!((dropped - p).abs() < 0.01, "dropped {dropped}, p {p}");
        assert!(
            v.iter().all(|e| *e == 0.0 || (e - 1.0 / 0.75).abs() < 1e-6),
            "kept elements are scaled by 1/(1-p)"
        );
        // Backward applies the same mask: d(sum y)/dx = the kept scale where kept, 0 where dropped.
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx: Vec<f32> = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(gx, v, "the gradient is the mask");
        let err = dropout(x.as_tensor(), Mask::Device(1.0)).unwrap_err();
        assert!(err.to_string().contains("outside [0, 1)"), "{err}");
    }

    #[test]
    fn frozen_linear_matches_matmul_and_checks_shapes() {
        let w = rand(&[7, 12], 14);
        close(
            compare(&[rand(&[6, 12], 15)], |t| {
                let w = w.to_dtype(t[0].dtype()).unwrap();
                if t[0].dtype() == DType::F32 {
                    frozen_linear(&t[0], &Frozen::Dense(w), true).unwrap()
                } else {
                    t[0].matmul(&w.t().unwrap()).unwrap()
                }
            }),
            "frozen_linear",
        );
        let x = Var::from_tensor(&rand(&[6, 11], 16)).unwrap();
        let err = frozen_linear(x.as_tensor(), &Frozen::Dense(w.clone()), true).unwrap_err();
        assert!(err.to_string().contains("11 features"), "{err}");
        let (a, b) = (rand(&[3, 11], 17), rand(&[7, 3], 18));
        let err =
            lora_linear(x.as_tensor(), &Frozen::Dense(w), &a, &b, 1.0, None, true).unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");
    }
}
