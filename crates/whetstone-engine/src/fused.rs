//! Single-pass CPU kernels for the two softmaxes of a training step, in f32.
//!
//! Composed from tensor ops, the attention softmax (scale, add mask, max, exp, sum, divide) and the
//! LM head's cross-entropy (log-sum-exp over a 49k vocabulary, then its gradient) each walk their
//! large inputs five or six times and allocate as many buffers. Here each is one or two passes over
//! one buffer. Masked attention scores are skipped instead of exponentiated: `exp` of a very negative
//! number is zero anyway, but libm reaches it through its slow underflow path, and half of the
//! causal scores are masked.
//!
//! The callers fall back to the composed ops for other devices and dtypes.

use candle_core::{CpuStorage, Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// Below this, `expf` rounds to zero: skipping it changes no result.
const EXP_ZERO_BELOW: f32 = -104.0;

/// Whether the fused kernels can take `t`.
pub fn applies(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == candle_core::DType::F32
}

fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (st, l) = t.storage_and_layout();
    match &*st {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()])),
        _ => candle_core::bail!("fused kernel: expected an f32 tensor on the cpu"),
    }
}

/// `softmax(scores · scale + mask)` over the last dimension.
///
/// `scores`: `[b, …, t, s]`; `mask`: additive, `[b or 1, 1, …, t, s]` (its rows are picked by batch and
/// query position).
pub fn masked_softmax(scores: &Tensor, scale: f32, mask: Option<&Tensor>) -> Result<Tensor> {
    let dims = scores.dims().to_vec();
    let r = dims.len();
    let (t, s) = (dims[r - 2], dims[r - 1]);
    let b = dims[0];
    let rows = scores.elem_count() / s;
    let rows_per_batch = rows / b;
    let mask_data = match mask {
        Some(m) => {
            let md = m.dims();
            let mb = md[0];
            if m.elem_count() != mb * t * s || !(mb == 1 || mb == b) {
                candle_core::bail!("masked_softmax: mask of shape {md:?} does not fit scores of shape {dims:?}");
            }
            Some((with_slice(m, |v| v.to_vec())?, mb))
        }
        None => None,
    };
    let mut out = vec![0f32; scores.elem_count()];
    with_slice(scores, |x| {
        out.par_chunks_mut(s).zip(x.par_chunks(s)).enumerate().for_each(|(row, (o, x))| {
            let m = mask_data.as_ref().map(|(m, mb)| {
                let bi = if *mb == 1 { 0 } else { row / rows_per_batch };
                let ti = row % t;
                &m[(bi * t + ti) * s..(bi * t + ti + 1) * s]
            });
            let mut max = f32::NEG_INFINITY;
            match m {
                Some(m) => {
                    for ((o, &x), &m) in o.iter_mut().zip(x).zip(m) {
                        *o = x * scale + m;
                        max = max.max(*o);
                    }
                }
                None => {
                    for (o, &x) in o.iter_mut().zip(x) {
                        *o = x * scale;
                        max = max.max(*o);
                    }
                }
            }
            let mut sum = 0f32;
            for o in o.iter_mut() {
                let d = *o - max;
                *o = if d < EXP_ZERO_BELOW { 0.0 } else { d.exp() };
                sum += *o;
            }
            for o in o.iter_mut() {
                *o /= sum;
            }
        })
    })?;
    Tensor::from_vec(out, dims, &Device::Cpu)
}

/// Log-sum-exp of each row of a `[rows, cols]` buffer, and the summed cross-entropy against
/// `targets` (`lse − x[target]`).
pub fn cross_entropy_rows(logits: &[f32], cols: usize, targets: &[u32]) -> (Vec<f32>, f64) {
    let lse: Vec<f32> = logits
        .par_chunks(cols)
        .map(|x| {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // Summed in f64: a sequential f32 sum over a 49k vocabulary drifts by 1e-4 of a small loss.
            let sum: f64 = x
                .iter()
                .map(|&v| {
                    let d = v - max;
                    if d < EXP_ZERO_BELOW { 0.0 } else { d.exp() as f64 }
                })
                .sum();
            max + sum.ln() as f32
        })
        .collect();
    let loss = lse
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(r, (&l, &tg))| (l - logits[r * cols + tg as usize]) as f64)
        .sum();
    (lse, loss)
}

/// Gemma 2's final soft cap, `c · tanh(x / c)`, in place.
pub fn softcap_in_place(logits: &mut [f32], cap: f32) {
    logits.par_chunks_mut(4096).for_each(|x| {
        for v in x.iter_mut() {
            *v = (*v / cap).tanh() * cap;
        }
    });
}

/// [`cross_entropy_grad_in_place`] for logits that went through [`softcap_in_place`] (`logits` holds
/// the capped values): the gradient is carried back through the cap, whose derivative is
/// `1 − (capped / c)²`.
pub fn cross_entropy_grad_in_place_capped(logits: &mut [f32], cols: usize, lse: &[f32], targets: &[u32], g: f32, cap: f32) {
    logits.par_chunks_mut(cols).zip(lse.par_iter()).zip(targets.par_iter()).for_each(|((x, &l), &tg)| {
        for (j, v) in x.iter_mut().enumerate() {
            let th = *v / cap;
            let d = *v - l;
            let mut gl = if d < EXP_ZERO_BELOW { 0.0 } else { d.exp() * g };
            if j == tg as usize {
                gl -= g;
            }
            *v = gl * (1.0 - th * th);
        }
    });
}

/// Turns logits into the cross-entropy gradient in place: `g · (softmax − onehot(target))`, given each
/// row's log-sum-exp.
pub fn cross_entropy_grad_in_place(logits: &mut [f32], cols: usize, lse: &[f32], targets: &[u32], g: f32) {
    logits.par_chunks_mut(cols).zip(lse.par_iter()).zip(targets.par_iter()).for_each(|((x, &l), &tg)| {
        for v in x.iter_mut() {
            let d = *v - l;
            *v = if d < EXP_ZERO_BELOW { 0.0 } else { d.exp() * g };
        }
        x[tg as usize] -= g;
    });
}
