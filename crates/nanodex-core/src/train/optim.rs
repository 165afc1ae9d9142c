//! AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", arXiv:1711.05101) with its state exposed
//! for checkpoints, global-norm gradient clipping, and the warm-up + cosine learning-rate schedule.

use candle_core::{Result, Tensor, Var};

/// AdamW over a fixed list of variables.
pub struct AdamW {
    /// β₁, β₂.
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Steps taken.
    pub t: usize,
    /// First moments, one per variable.
    pub m: Vec<Tensor>,
    /// Second moments, one per variable.
    pub v: Vec<Tensor>,
}

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: &[Var], betas: (f64, f64), eps: f64, weight_decay: f64) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Self {
            betas,
            eps,
            weight_decay,
            t: 0,
            m: vars.iter().map(zeros).collect::<Result<_>>()?,
            v: vars.iter().map(zeros).collect::<Result<_>>()?,
        })
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, vars: &[Var], grads: &[Tensor], lr: f64) -> Result<()> {
        self.t += 1;
        let (b1, b2) = self.betas;
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let mut theta = var.as_tensor().detach();
            if self.weight_decay > 0.0 {
                theta = (theta * (1.0 - lr * self.weight_decay))?;
            }
            var.set(&(theta - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// Scales `grads` in place so their global L2 norm is at most `max_norm` (0 = off); returns the norm before.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sq = 0.0f64;
    for g in grads.iter() {
        sq += g
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g = (&*g * s)?;
        }
    }
    Ok(norm)
}

/// Learning rate at 0-based `step`: linear warm-up to `peak` over `warmup` steps, then cosine decay to zero at
/// `total`.
pub fn lr_at(step: usize, peak: f64, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}
