//! AdamW with decoupled weight decay and global-norm clipping, following `torch.optim.AdamW` and
//! `torch.nn.utils.clip_grad_norm_` operation by operation so that curves match PyTorch's.

use crate::error::{Error, Result};
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

pub struct AdamW {
    pub config: AdamWConfig,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Optimizer steps taken so far.
    pub step: u64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let m = vars.iter().map(|v| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars.iter().map(|v| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { config, vars, m, v, step: 0 })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// First and second moments, for checkpoints.
    pub fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    pub fn set_moments(&mut self, m: Vec<Tensor>, v: Vec<Tensor>, step: u64) -> Result<()> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            return Err(Error::Internal("optimizer state does not match the adapter".into()));
        }
        self.m = m;
        self.v = v;
        self.step = step;
        Ok(())
    }

    /// One update with learning rate `lr`; `grads[i]` belongs to `vars()[i]`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        if grads.len() != self.vars.len() {
            return Err(Error::Internal("gradient count does not match the parameters".into()));
        }
        self.step += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        let step_size = lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        // One index walks four parallel lists: parameters, gradients and both moments.
        #[allow(clippy::needless_range_loop)]
        for i in 0..self.vars.len() {
            let p = self.vars[i].as_tensor().detach();
            let g = grads[i].to_dtype(DType::F32)?;
            let p = if c.weight_decay != 0.0 { (p * (1.0 - lr * c.weight_decay))? } else { p };
            // torch: exp_avg.lerp_(grad, 1 - beta1)
            let m = (&self.m[i] + ((&g - &self.m[i])? * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((v.sqrt()? / bc2_sqrt)? + c.eps)?;
            let p = (p - (m.div(&denom)? * step_size)?)?;
            self.vars[i].set(&p)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// L2 norm over all gradients together, as `clip_grad_norm_` computes it.
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads {
        let n = g.to_dtype(DType::F32)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()? as f64;
        sq += n * n;
    }
    Ok(sq.sqrt())
}

/// Scale gradients so that their global norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let total = global_norm(grads)?;
    clip_to(grads, total, max_norm)?;
    Ok(total)
}

/// Scale gradients whose global norm is `total` (already measured) down to at most `max_norm`.
pub fn clip_to(grads: &mut [Tensor], total: f64, max_norm: f64) -> Result<()> {
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(())
}
