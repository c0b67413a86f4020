//! Single-pass, multi-threaded CPU kernels for the elementwise and row-wise work of a training step,
//! in f32.
//!
//! Composed from tensor ops, the attention softmax (scale, add mask, max, exp, sum, divide), the LM
//! head's cross-entropy (log-sum-exp over a 49k vocabulary, then its gradient), RMSNorm's and
//! SwiGLU's backward passes each walk their inputs five to ten times, allocate as many buffers, and
//! run on one core. Here each is one or two parallel passes, through [`exp`], whose plain arithmetic
//! vectorises and gives exactly zero for masked (−∞) scores, where libm's `expf` is a call per
//! element and slow on its underflow path.
//!
//! The callers fall back to the composed ops for other devices and dtypes.

use candle_core::{CpuStorage, Device, Result, Storage, Tensor};
use rayon::prelude::*;

/// Defines `fn $name(args) -> ret` that runs `$body_fn` (an `#[inline(always)]` function of the same
/// arguments) compiled for the widest vector unit the processor has: AVX-512, AVX2, or the
/// baseline the program is built for. The kernels behind it are plain arithmetic with their sums
/// split in fixed lanes, and Rust never fuses a multiply and an add on its own, so every version
/// gives the same bits; only the width of each instruction differs.
macro_rules! widest {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? = $body_fn:path;) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($a: $t),*) $(-> $r)? {
                    $body_fn($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($a: $t),*) $(-> $r)? {
                    $body_fn($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the processor has the features `avx512` is compiled for.
                    return unsafe { avx512($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above, for `avx2`.
                    return unsafe { avx2($($a),*) };
                }
            }
            $body_fn($($a),*)
        }
    };
}
pub(crate) use widest;

/// Below this, `expf` rounds to zero: skipping it changes no result.
const EXP_ZERO_BELOW: f32 = -104.0;

/// Whether the fused kernels can take `t`.
pub fn applies(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == candle_core::DType::F32
}

/// Log-sum-exp of each row of a `[rows, cols]` buffer, and the summed cross-entropy against
/// `targets` (`lse − x[target]`).
pub fn cross_entropy_rows(logits: &[f32], cols: usize, targets: &[u32]) -> (Vec<f32>, f64) {
    let lse: Vec<f32> = logits.par_chunks(cols).map(log_sum_exp).collect();
    let loss = lse
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(r, (&l, &tg))| (l - logits[r * cols + tg as usize]) as f64)
        .sum();
    (lse, loss)
}

widest! {
    /// `ln Σ eˣ` of one row.
    fn log_sum_exp(x: &[f32]) -> f32 = log_sum_exp_body;
}

#[inline(always)]
fn log_sum_exp_body(x: &[f32]) -> f32 {
    let max = max_of(x);
    // Summed in f64: a sequential f32 sum over a 49k vocabulary drifts by 1e-4 of a small loss.
    let mut s = [0f64; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            s[i] += exp(c[i] - max) as f64;
        }
    }
    for &v in chunks.remainder() {
        s[0] += exp(v - max) as f64;
    }
    let sum: f64 = s.iter().sum();
    max + sum.ln() as f32
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
        scaled_softmax_in_place(x, l, g);
        x[tg as usize] -= g;
    });
}

widest! {
    /// `x ← g · e^(x − lse)`: a row's softmax, times `g`.
    fn scaled_softmax_in_place(x: &mut [f32], lse: f32, g: f32) = scaled_softmax_in_place_body;
}

#[inline(always)]
fn scaled_softmax_in_place_body(x: &mut [f32], lse: f32, g: f32) {
    for v in x.iter_mut() {
        *v = exp(*v - lse) * g;
    }
}

/// Elements a rayon task takes at least, so that short passes do not drown in scheduling.
const PAR_CHUNK: usize = 1 << 14;

/// `a + b`, elementwise.
pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    out.par_chunks_mut(PAR_CHUNK).zip(a.par_chunks(PAR_CHUNK)).zip(b.par_chunks(PAR_CHUNK)).for_each(|((o, a), b)| {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = a + b;
        }
    });
    out
}

/// Adds `bias` to every `bias.len()`-wide row of `y`.
pub fn add_rows_in_place(y: &mut [f32], bias: &[f32]) {
    y.par_chunks_mut(bias.len().max(1)).for_each(|row| {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    });
}

/// `y += alpha · x`.
pub fn axpy_in_place(y: &mut [f32], x: &[f32], alpha: f32) {
    y.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).for_each(|(y, x)| {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += alpha * x;
        }
    });
}

/// `silu(gate) · up`.
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; gate.len()];
    out.par_chunks_mut(PAR_CHUNK).zip(gate.par_chunks(PAR_CHUNK)).zip(up.par_chunks(PAR_CHUNK)).for_each(|((o, g), u)| {
        swiglu_chunk(o, g, u);
    });
    out
}

widest! {
    fn swiglu_chunk(out: &mut [f32], gate: &[f32], up: &[f32]) = swiglu_chunk_body;
}

#[inline(always)]
fn swiglu_chunk_body(out: &mut [f32], gate: &[f32], up: &[f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = g / (1.0 + exp(-g)) * u;
    }
}

/// Gradients of [`swiglu`] for `gate` and `up` in one pass: with `σ = sigmoid(gate)`,
/// `d gate = grad · up · σ (1 + gate (1 − σ))` and `d up = grad · gate · σ`.
pub fn swiglu_backward(gate: &[f32], up: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut dgate = vec![0f32; gate.len()];
    let mut dup = vec![0f32; gate.len()];
    dgate
        .par_chunks_mut(PAR_CHUNK)
        .zip(dup.par_chunks_mut(PAR_CHUNK))
        .zip(gate.par_chunks(PAR_CHUNK).zip(up.par_chunks(PAR_CHUNK)).zip(grad.par_chunks(PAR_CHUNK)))
        .for_each(|((dg, du), ((g, u), gr))| swiglu_backward_chunk(dg, du, g, u, gr));
    (dgate, dup)
}

widest! {
    fn swiglu_backward_chunk(dgate: &mut [f32], dup: &mut [f32], gate: &[f32], up: &[f32], grad: &[f32]) = swiglu_backward_chunk_body;
}

#[inline(always)]
fn swiglu_backward_chunk_body(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], gr: &[f32]) {
    let n = dg.len();
    let (du, g, u, gr) = (&mut du[..n], &g[..n], &u[..n], &gr[..n]);
    for i in 0..n {
        let (z, sig) = (g[i], 1.0 / (1.0 + exp(-g[i])));
        dg[i] = gr[i] * u[i] * sig * (1.0 + z * (1.0 - sig));
        du[i] = gr[i] * z * sig;
    }
}

/// RMSNorm of each `w.len()`-wide row: `x / sqrt(mean(x²) + eps) · w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let n = w.len().max(1);
    out.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(|(o, x)| {
        let r = inv_rms(x, eps);
        for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
            *o = x * r * w;
        }
    });
    out
}

fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (ss / x.len() as f32 + eps).sqrt()
}

/// Gradient of [`rms_norm`] for `x`: with `r = 1/rms(x)`, `x̂ = x r` and `gw = g · w`,
/// `dx = r (gw − x̂ · mean(gw · x̂))`, a row at a time.
pub fn rms_norm_backward(x: &[f32], w: &[f32], g: &[f32], eps: f32) -> Vec<f32> {
    let mut dx = vec![0f32; x.len()];
    let n = w.len().max(1);
    dx.par_chunks_mut(n).zip(x.par_chunks(n)).zip(g.par_chunks(n)).for_each(|((dx, x), g)| {
        let r = inv_rms(x, eps);
        let dot: f32 = x.iter().zip(g).zip(w).map(|((&x, &g), &w)| g * w * x * r).sum::<f32>() / n as f32;
        for (((dx, &x), &g), &w) in dx.iter_mut().zip(x).zip(g).zip(w) {
            *dx = r * (g * w - x * r * dot);
        }
    });
    dx
}

/// `[a, b, c, d]` → `[a, c, b, d]` (tokens-major to heads-major and back), times `scale`.
pub fn swap_middle(x: &[f32], (_, b, c, d): (usize, usize, usize, usize), scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    // Each task writes one `[b, d]` slab of the output: all `b` rows of one (a, c) pair.
    out.par_chunks_mut(b * d).enumerate().for_each(|(ac, slab)| {
        let (ai, ci) = (ac / c, ac % c);
        for bi in 0..b {
            let src = &x[((ai * b + bi) * c + ci) * d..][..d];
            let dst = &mut slab[bi * d..(bi + 1) * d];
            if scale == 1.0 {
                dst.copy_from_slice(src);
            } else {
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = v * scale;
                }
            }
        }
    });
    out
}

/// Dropout drawn from a seed: element `i` is kept (and scaled by `1/(1−p)`) or zeroed as a 32-bit
/// lane of the `i/2`-th output of SplitMix64 seeded with `seed` says. The forward pass draws the
/// mask once as bits ([`DropMask`]), 1/32 of the f32 mask's size, and the backward pass reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    pub seed: u64,
    pub p: f64,
}

impl Dropout {
    /// Lanes below this are dropped; `None` when every element is (`p ≥ 1`).
    fn threshold(&self) -> Option<u32> {
        let t = self.p.clamp(0.0, 1.0) * 4_294_967_296.0;
        (t < 4_294_967_296.0).then_some(t as u32)
    }

    fn keep_scale(&self) -> f32 {
        if self.p >= 1.0 { 0.0 } else { (1.0 / (1.0 - self.p)) as f32 }
    }

    #[inline(always)]
    fn draw(seed: u64, i: u64) -> u64 {
        let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The mask of `n` elements as bits, drawn in parallel.
    pub fn bits(&self, n: usize) -> DropMask {
        let mut words = vec![0u64; n.div_ceil(64)];
        if let Some(thr) = self.threshold() {
            let seed = self.seed;
            words.par_chunks_mut(256).enumerate().for_each(|(c, ws)| mask_words(ws, c * 256, seed, thr));
        }
        let tail = n % 64;
        if tail != 0 {
            // Bits past the end stay clear, so counting kept bits counts elements.
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << tail) - 1;
            }
        }
        DropMask { words, n, keep: self.keep_scale() }
    }

    /// The mask's values (`0` or `1/(1−p)`) for `n` elements.
    pub fn mask(&self, n: usize) -> Vec<f32> {
        let bits = self.bits(n);
        let mut out = vec![0f32; n];
        out.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(c, o)| {
            let start = c * PAR_CHUNK;
            for (j, o) in o.iter_mut().enumerate() {
                *o = if bits.kept(start + j) { bits.keep } else { 0.0 };
            }
        });
        out
    }

    /// `x ⊙ mask`.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let bits = self.bits(x.len());
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).enumerate().for_each(|(c, (o, x))| bits.apply_at(c * PAR_CHUNK, x, o));
        out
    }

    /// `y += alpha · (x ⊙ mask)`.
    pub fn accumulate(&self, y: &mut [f32], x: &[f32], alpha: f32) {
        let bits = self.bits(y.len());
        y.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).enumerate().for_each(|(c, (y, x))| bits.accumulate_at(c * PAR_CHUNK, y, x, alpha));
    }
}

widest! {
    /// Words `first..` of a dropout mask: word `k` holds elements 64k..64k+63, from draws
    /// 32k..32k+31, two 32-bit lanes each.
    fn mask_words(words: &mut [u64], first: usize, seed: u64, thr: u32) = mask_words_body;
}

#[inline(always)]
fn mask_words_body(words: &mut [u64], first: usize, seed: u64, thr: u32) {
    for (j, w) in words.iter_mut().enumerate() {
        let first = ((first + j) * 32) as u64;
        let mut bits = 0u64;
        for d in 0..32u64 {
            let z = Dropout::draw(seed, first + d);
            bits |= (((z as u32) >= thr) as u64) << (2 * d);
            bits |= ((((z >> 32) as u32) >= thr) as u64) << (2 * d + 1);
        }
        *w = bits;
    }
}

widest! {
    fn apply_mask(mask: &DropMask, start: usize, x: &[f32], out: &mut [f32]) = apply_mask_body;
}

#[inline(always)]
fn apply_mask_body(mask: &DropMask, start: usize, x: &[f32], out: &mut [f32]) {
    let keep = mask.keep;
    mask.for_each_at(start, out, x, |o, x, kept| *o = if kept { x * keep } else { 0.0 });
}

widest! {
    fn accumulate_mask(mask: &DropMask, start: usize, y: &mut [f32], x: &[f32], alpha: f32) = accumulate_mask_body;
}

#[inline(always)]
fn accumulate_mask_body(mask: &DropMask, start: usize, y: &mut [f32], x: &[f32], alpha: f32) {
    let k = alpha * mask.keep;
    mask.for_each_at(start, y, x, |y, x, kept| *y += if kept { x * k } else { 0.0 });
}

/// A dropout mask as one bit an element (set: kept), with the scale kept elements take.
#[derive(Debug, Clone, PartialEq)]
pub struct DropMask {
    words: Vec<u64>,
    n: usize,
    keep: f32,
}

impl DropMask {
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[inline]
    pub fn kept(&self, i: usize) -> bool {
        (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// How many elements are kept.
    pub fn kept_count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `out[j] = x[j] · mask[start + j]`.
    pub fn apply_at(&self, start: usize, x: &[f32], out: &mut [f32]) {
        apply_mask(self, start, x, out);
    }

    /// `y[j] += alpha · x[j] · mask[start + j]`.
    pub fn accumulate_at(&self, start: usize, y: &mut [f32], x: &[f32], alpha: f32) {
        accumulate_mask(self, start, y, x, alpha);
    }

    /// `f(&mut y[j], x[j], kept(start + j))` for every `j`. Between byte boundaries of the mask the
    /// bits are read a byte at a time and tested in 8 lanes at once, which the compiler turns into
    /// vector selects; a bit lookup per element would not vectorise and cost as much as the products
    /// it feeds. Only the few elements before the first boundary and after the last take that lookup.
    #[inline(always)]
    fn for_each_at(&self, start: usize, y: &mut [f32], x: &[f32], f: impl Fn(&mut f32, f32, bool)) {
        let n = y.len().min(x.len());
        let head = ((8 - start % 8) % 8).min(n);
        let whole = head + (n - head) / 8 * 8;
        for j in (0..head).chain(whole..n) {
            f(&mut y[j], x[j], self.kept(start + j));
        }
        for (i, (y8, x8)) in y[head..whole].chunks_exact_mut(8).zip(x[head..whole].chunks_exact(8)).enumerate() {
            let b = (start + head) / 8 + i;
            let byte = (self.words[b / 8] >> (8 * (b % 8))) as u8;
            for l in 0..8 {
                f(&mut y8[l], x8[l], byte & (1 << l) != 0);
            }
        }
    }
}

/// The f32 elements of a CPU tensor, contiguous.
pub fn slice_of<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (st, l) = t.storage_and_layout();
    match &*st {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()])),
        _ => candle_core::bail!("fused kernel: expected an f32 tensor on the cpu"),
    }
}

/// Partial results the row reductions below keep: a sum or maximum is taken in this many
/// interleaved parts, which the compiler keeps in vector registers, then the parts are combined in
/// a fixed order, so the result does not depend on the machine.
const LANES: usize = 16;

fn combine(mut parts: [f32; LANES], op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut n = LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            parts[i] = op(parts[i], parts[i + n]);
        }
    }
    parts[0]
}

/// The largest element of `x` (NaN elements are passed over); −∞ for an empty slice.
#[inline(always)]
pub fn max_of(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            m[i] = if c[i] > m[i] { c[i] } else { m[i] };
        }
    }
    for &v in chunks.remainder() {
        m[0] = if v > m[0] { v } else { m[0] };
    }
    combine(m, |a, b| if b > a { b } else { a })
}

/// `x ← e^(x − shift)` elementwise, returning the sum of the new values.
#[inline(always)]
pub fn exp_shifted_sum(x: &mut [f32], shift: f32) -> f32 {
    let mut s = [0f32; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            c[i] = exp(c[i] - shift);
            s[i] += c[i];
        }
    }
    for v in chunks.into_remainder() {
        *v = exp(*v - shift);
        s[0] += *v;
    }
    combine(s, |a, b| a + b)
}

/// `eˣ` in f32 to about 2 ulp, in plain arithmetic the compiler vectorises: `2ⁿ · e^f` with
/// `n = round(x / ln 2)` and a degree-6 polynomial for `e^f` on `|f| ≤ ln 2 / 2`. libm's `expf`
/// is a call per element; the training step takes a few hundred million of them.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Beyond these, eˣ is zero or infinite in f32.
    // Adding 1.5 · 2²³ rounds to the nearest integer in plain float arithmetic (no call to `round`,
    // which would stop vectorisation), and leaves that integer in the low bits.
    const ROUNDER: f32 = 12_582_912.0;
    let x = x.clamp(-104.0, 88.0);
    let t = x * LOG2E + ROUNDER;
    let n = t - ROUNDER;
    let f = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + f * (1.0 + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    // 2ⁿ for n in the normal range; below it (n < −126) the result flushes to zero.
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let bits = ((ni + 127).max(0) as u32) << 23;
    p * f32::from_bits(bits)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` values drawn uniformly from `[lo, hi)` with `seed`.
    pub(crate) fn values(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()
    }

    pub(crate) fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// The versions [`widest!`] picks from give the same bits: on a processor with AVX-512 or AVX2
    /// the dispatched call runs the wide one, and the body called directly the baseline one.
    #[test]
    fn every_vector_width_gives_the_same_bits() {
        for n in [1, 15, 16, 17, 333, 4099] {
            let x = values(n, n as u64, -40.0, 12.0);
            assert_eq!(log_sum_exp(&x).to_bits(), log_sum_exp_body(&x).to_bits(), "log-sum-exp of {n}");

            let (mut wide, mut base) = (x.clone(), x.clone());
            scaled_softmax_in_place(&mut wide, 3.5, 0.25);
            scaled_softmax_in_place_body(&mut base, 3.5, 0.25);
            assert_eq!(bits(&wide), bits(&base), "softmax of {n}");

            let up = values(n, 99, -3.0, 3.0);
            let (mut wide, mut base) = (vec![0f32; n], vec![0f32; n]);
            swiglu_chunk(&mut wide, &x, &up);
            swiglu_chunk_body(&mut base, &x, &up);
            assert_eq!(bits(&wide), bits(&base), "swiglu of {n}");

            let grad = values(n, 7, -1.0, 1.0);
            let (mut wg, mut wu, mut bg, mut bu) = (vec![0f32; n], vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            swiglu_backward_chunk(&mut wg, &mut wu, &x, &up, &grad);
            swiglu_backward_chunk_body(&mut bg, &mut bu, &x, &up, &grad);
            assert_eq!((bits(&wg), bits(&wu)), (bits(&bg), bits(&bu)), "swiglu backward of {n}");

            let (mut wide, mut base) = (vec![0u64; n], vec![0u64; n]);
            mask_words(&mut wide, 5, 1234, 214_748_365);
            mask_words_body(&mut base, 5, 1234, 214_748_365);
            assert_eq!(wide, base, "dropout words {n}");

            let mask = Dropout { seed: 77, p: 0.1 }.bits(n + 70);
            let (mut wide, mut base) = (vec![0f32; n], vec![0f32; n]);
            apply_mask(&mask, 3, &x, &mut wide);
            apply_mask_body(&mask, 3, &x, &mut base);
            assert_eq!(bits(&wide), bits(&base), "dropout applied to {n}");
            accumulate_mask(&mask, 9, &mut wide, &up, 0.3);
            accumulate_mask_body(&mask, 9, &mut base, &up, 0.3);
            assert_eq!(bits(&wide), bits(&base), "dropout accumulated into {n}");
        }
    }
}
