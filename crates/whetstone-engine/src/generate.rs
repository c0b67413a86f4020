//! Text generation with a KV cache: greedy, temperature and top-p sampling, stopping at end tokens.
//! The model's own rules hold with the cache as without it (`Decoder::forward_cached`): a sliding
//! window hides cached keys that fall out of it, and Gemma 2's soft caps apply to every step.

use crate::error::Result;
use crate::model::{Decoder, KvCache, LoraCtx};
use crate::rng::Rng;
use candle_core::{DType, Tensor};

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingOptions {
    /// 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        Self { temperature: 0.0, top_p: 1.0, max_new_tokens: 128, seed: 0 }
    }
}

/// Picks the next token from a row of logits.
pub struct Sampler {
    opts: SamplingOptions,
    rng: Rng,
}

impl Sampler {
    pub fn new(opts: SamplingOptions) -> Self {
        let rng = Rng::new(opts.seed);
        Self { opts, rng }
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let argmax = || {
            logits
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
                .0 as u32
        };
        if self.opts.temperature <= 0.0 {
            return argmax();
        }
        let t = self.opts.temperature as f32;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> =
            logits.iter().enumerate().map(|(i, &l)| (i as u32, ((l - max) / t).exp())).collect();
        let total: f32 = probs.iter().map(|p| p.1).sum();
        if !total.is_finite() || total <= 0.0 {
            return argmax();
        }
        probs.iter_mut().for_each(|p| p.1 /= total);
        if self.opts.top_p < 1.0 {
            probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut cum = 0f32;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                cum += p.1;
                if cum >= self.opts.top_p as f32 {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            let s: f32 = probs.iter().map(|p| p.1).sum();
            probs.iter_mut().for_each(|p| p.1 /= s);
        }
        let r = self.rng.next_f64() as f32;
        let mut cum = 0f32;
        for (id, p) in &probs {
            cum += p;
            if r < cum {
                return *id;
            }
        }
        probs.last().map(|p| p.0).unwrap_or_else(argmax)
    }
}

/// Generates after `prompt` until a stop token or `max_new_tokens`; `on_token` sees each new id and
/// may return false to stop early. Returns the new ids (without the stop token).
pub fn generate(
    model: &Decoder,
    prompt: &[u32],
    stop: &[u32],
    opts: &SamplingOptions,
    lora: Option<&LoraCtx>,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>> {
    let mut cache = KvCache::default();
    let mut sampler = Sampler::new(opts.clone());
    let mut out = Vec::new();
    if prompt.is_empty() {
        return Ok(out);
    }
    let mut input = Tensor::from_vec(prompt.to_vec(), (1, prompt.len()), &model.device)?;
    for _ in 0..opts.max_new_tokens {
        let logits = model.forward_cached(&input, &mut cache, lora)?;
        let row: Vec<f32> = logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1()?;
        let next = sampler.sample(&row);
        if stop.contains(&next) {
            break;
        }
        out.push(next);
        if !on_token(next) {
            break;
        }
        input = Tensor::from_vec(vec![next], (1, 1), &model.device)?;
    }
    Ok(out)
}
