//! One optimizer step over a group of micro-batches: loss over response tokens, gradient accumulation,
//! optional per-block gradient checkpointing, global-norm clipping and AdamW. The loop that feeds it,
//! and whatever displays progress, live elsewhere.

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::lora::Adapter;
use crate::model::{Decoder, LoraCtx};
use crate::optim::{clip_to, global_norm, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::schedule::Schedule;
use candle_core::{Tensor, Var};
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOptions {
    pub max_grad_norm: Option<f64>,
    /// Recompute each decoder block in the backward pass instead of keeping its activations.
    pub grad_checkpoint: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// Mean loss over the step's target tokens.
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens: usize,
    pub targets: usize,
}

pub struct Trainer<'m> {
    pub model: &'m Decoder,
    pub adapter: Adapter,
    pub optimizer: AdamW,
    pub schedule: Schedule,
    pub options: StepOptions,
    /// Drives LoRA dropout; checkpointed with the run.
    pub rng: RefCell<Rng>,
}

impl<'m> Trainer<'m> {
    pub fn new(model: &'m Decoder, adapter: Adapter, adamw: AdamWConfig, schedule: Schedule, options: StepOptions, rng: Rng) -> Result<Self> {
        let optimizer = AdamW::new(adapter.vars(), adamw)?;
        Ok(Self { model, adapter, optimizer, schedule, options, rng: RefCell::new(rng) })
    }

    /// Gradients of the summed target-token loss divided by `denom`, for every adapter tensor, and the
    /// loss sum itself.
    pub fn gradients(&self, batch: &Batch, denom: f64) -> Result<(Vec<Tensor>, f64)> {
        if self.options.grad_checkpoint {
            return self.gradients_checkpointed(batch, denom);
        }
        let ctx = LoraCtx { adapter: &self.adapter, train: true, dropout: Some(&self.rng) };
        let (loss_sum, _) = self.model.loss_sum(&batch.input_ids, Some(&batch.attention_mask), &batch.loss_mask, Some(&ctx))?;
        let loss_value = loss_sum.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        let loss = (loss_sum / denom)?;
        let grads = loss.backward()?;
        let out = self
            .adapter
            .vars()
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => Ok(v.zeros_like()?),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((out, loss_value))
    }

    /// The same gradients, keeping only each block's input during the forward pass and recomputing the
    /// block when its gradient is needed. Dropout draws are replayed so both passes see the same masks.
    fn gradients_checkpointed(&self, batch: &Batch, denom: f64) -> Result<(Vec<Tensor>, f64)> {
        let m = self.model;
        let (b, t) = batch.input_ids.dims2()?;
        let rope = m.rope_table(0, t)?;
        let masks = m.attention_masks(Some(&batch.attention_mask), b, t, 0)?;
        let no_grad = LoraCtx { adapter: &self.adapter, train: false, dropout: Some(&self.rng) };
        let mut inputs = Vec::with_capacity(m.blocks.len());
        let mut rng_states = Vec::with_capacity(m.blocks.len());
        let mut x = m.embed(&batch.input_ids)?;
        for i in 0..m.blocks.len() {
            inputs.push(x.clone());
            rng_states.push(self.rng.borrow().clone());
            x = m.block_forward(i, &x, &rope, Some(masks.of(i)), Some(&no_grad), None)?.detach();
        }
        let rng_after = self.rng.borrow().clone();
        let top = Var::from_tensor(&x)?;
        let h = m.final_norm(top.as_tensor())?;
        let (loss_sum, _) = m.head_loss_sum(&h, &batch.input_ids, &batch.loss_mask)?;
        let loss_value = loss_sum.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        let grads = (loss_sum / denom)?.backward()?;
        let mut g = grads.get(top.as_tensor()).cloned().ok_or_else(|| Error::Internal("no gradient reached the last block".into()))?;
        drop(grads);
        let vars = self.adapter.vars();
        let index: HashMap<_, _> = vars.iter().enumerate().map(|(i, v)| (v.as_tensor().id(), i)).collect();
        let mut out: Vec<Option<Tensor>> = vec![None; vars.len()];
        let train = LoraCtx { adapter: &self.adapter, train: true, dropout: Some(&self.rng) };
        for i in (0..m.blocks.len()).rev() {
            *self.rng.borrow_mut() = rng_states[i].clone();
            let leaf = Var::from_tensor(&inputs[i])?;
            let y = m.block_forward(i, leaf.as_tensor(), &rope, Some(masks.of(i)), Some(&train), None)?;
            let gs = (y * &g)?.sum_all()?.backward()?;
            for pair in self.adapter.layers[i].values() {
                for v in [&pair.a, &pair.b] {
                    if let (Some(gr), Some(&k)) = (gs.get(v.as_tensor()), index.get(&v.as_tensor().id())) {
                        out[k] = Some(gr.clone());
                    }
                }
            }
            if i > 0 {
                g = gs.get(leaf.as_tensor()).cloned().ok_or_else(|| Error::Internal(format!("no gradient reached block {i}")))?;
            }
            inputs.truncate(i);
        }
        *self.rng.borrow_mut() = rng_after;
        let out = out
            .into_iter()
            .zip(vars.iter())
            .map(|(g, v)| match g {
                Some(g) => Ok(g),
                None => Ok(v.zeros_like()?),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((out, loss_value))
    }

    /// One optimizer step over `micro_batches` (gradient accumulation). The loss is the mean over all
    /// target tokens of all micro-batches, so accumulation gives the same update as one large batch.
    pub fn step(&mut self, micro_batches: &[Batch]) -> Result<StepResult> {
        let mut g = self.accumulate(micro_batches)?;
        let lr = self.schedule.lr(self.optimizer.step);
        let grad_norm = global_norm(&g.grads)?;
        self.apply(&mut g.grads, grad_norm, lr)?;
        Ok(StepResult { loss: g.loss, grad_norm, lr, tokens: g.tokens, targets: g.targets })
    }

    /// Summed gradients of the mean target-token loss over `micro_batches`, without touching the
    /// adapter, so that the caller can inspect them (non-finite values) before [`Trainer::apply`].
    pub fn accumulate(&self, micro_batches: &[Batch]) -> Result<Gradients> {
        let targets: usize = micro_batches.iter().map(|b| b.targets).sum();
        let tokens: usize = micro_batches.iter().map(|b| b.tokens).sum();
        if targets == 0 {
            return Err(Error::Settings("this step's examples have no response tokens to learn from".into()));
        }
        let denom = targets as f64;
        let mut sum: Option<Vec<Tensor>> = None;
        let mut loss = 0f64;
        for mb in micro_batches {
            let (g, l) = self.gradients(mb, denom)?;
            loss += l;
            sum = Some(match sum {
                None => g,
                Some(acc) => acc.iter().zip(g.iter()).map(|(a, b)| a + b).collect::<candle_core::Result<Vec<_>>>()?,
            });
        }
        Ok(Gradients { grads: sum.unwrap_or_default(), loss: loss / denom, tokens, targets })
    }

    /// Clip `grads` (whose global norm is `grad_norm`) and take one AdamW step with `lr`.
    pub fn apply(&mut self, grads: &mut [Tensor], grad_norm: f64, lr: f64) -> Result<()> {
        if let Some(max) = self.options.max_grad_norm {
            clip_to(grads, grad_norm, max)?;
        }
        self.optimizer.step(grads, lr)
    }
}

/// What [`Trainer::accumulate`] returns: one gradient per adapter tensor (in `Adapter::vars` order).
pub struct Gradients {
    pub grads: Vec<Tensor>,
    /// Mean loss over the target tokens.
    pub loss: f64,
    pub tokens: usize,
    pub targets: usize,
}
