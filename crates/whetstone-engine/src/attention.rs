//! Attention masks, and attention on the CPU in f32 a block of queries against a block of keys at
//! a time.
//!
//! A causal mask with padding and a sliding window is described ([`MaskRule`]) rather than
//! tabulated: at 4k tokens its `T × T` table is 64 MiB, and reading it costs the softmax as much as
//! the scores do. The table is still made, once per forward pass, for the devices and dtypes the CPU
//! kernel does not take.
//!
//! The kernel keeps scores and probabilities for one `TILE × KEY_BLOCK` block only, in cache. The
//! softmax is taken online (a running maximum and sum per row, as FlashAttention does), and the
//! backward pass makes each block's probabilities again from its row's log-sum-exp and
//! `D = rowsum(dO ⊙ O)`, `O` being the node's own output. Work units (a batch row, a key/value
//! head, a tile of queries) run in parallel, each through single-threaded products; the backward
//! pass sums `dk` and `dv` over a split of the units fixed by the shapes alone, so a gradient is
//! the same to the bit on any machine and thread count.

use crate::blas::{gemm_slices, Mat};
use crate::fused;
use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;
use std::sync::OnceLock;

/// The additive value that hides a key in a tabulated mask.
pub const HIDDEN: f32 = -1e9;

/// Queries per work unit.
const TILE: usize = 64;

/// Keys per block of scores.
const KEY_BLOCK: usize = 128;

/// How many runs of units the backward pass sums `dk`, `dv` in (see [`runs`]).
const BACKWARD_RUNS: usize = 16;

/// Which keys each query may see: causal from an offset, optionally within a sliding window, with
/// padding keys hidden.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskRule {
    pub batch: usize,
    pub queries: usize,
    pub keys: usize,
    /// Query `i` sits at position `offset + i` and sees the keys at or before it.
    pub offset: usize,
    /// Keys `window` or more positions before the query are hidden too.
    pub window: Option<usize>,
    /// `[batch, keys]`: whether each key is a real token. `None`: every key is.
    pub present: Option<Vec<bool>>,
}

impl MaskRule {
    /// The keys query `qi` sees before padding: `[lo, hi)`.
    fn span(&self, qi: usize) -> (usize, usize) {
        let pos = self.offset + qi;
        let hi = (pos + 1).min(self.keys);
        let lo = self.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        (lo.min(hi), hi)
    }

    fn present(&self, bi: usize, key: usize) -> bool {
        self.present.as_ref().is_none_or(|p| p[bi * self.keys + key])
    }

    pub fn is_open(&self, bi: usize, qi: usize, key: usize) -> bool {
        let (lo, hi) = self.span(qi);
        key >= lo && key < hi && self.present(bi, key)
    }

    /// The additive table, `[batch or 1, 1, 1, queries, keys]`, `0` where a key is seen and
    /// [`HIDDEN`] where not.
    pub fn table(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        let rows = if self.present.is_some() { self.batch } else { 1 };
        let (t, s) = (self.queries, self.keys);
        let mut m = vec![HIDDEN; rows * t * s];
        m.par_chunks_mut(s).enumerate().for_each(|(r, row)| {
            let (bi, qi) = (r / t, r % t);
            let (lo, hi) = self.span(qi);
            for (key, v) in row.iter_mut().enumerate().take(hi).skip(lo) {
                if self.present(bi, key) {
                    *v = 0.0;
                }
            }
        });
        Tensor::from_vec(m, (rows, 1, 1, t, s), device)?.to_dtype(dtype)
    }
}

/// An attention mask: a rule, or an additive table (`[b or 1, …, t, s]`, [`HIDDEN`] hides a key).
#[derive(Debug, Clone)]
pub struct AttnMask {
    rule: Option<MaskRule>,
    dtype: DType,
    device: Device,
    table: OnceLock<Tensor>,
}

impl AttnMask {
    pub fn rule(rule: MaskRule, dtype: DType, device: &Device) -> Self {
        Self { rule: Some(rule), dtype, device: device.clone(), table: OnceLock::new() }
    }

    pub fn table(table: Tensor) -> Self {
        let (dtype, device) = (table.dtype(), table.device().clone());
        let cell = OnceLock::new();
        let _ = cell.set(table);
        Self { rule: None, dtype, device, table: cell }
    }

    pub fn as_rule(&self) -> Option<&MaskRule> {
        self.rule.as_ref()
    }

    /// The additive table, made on first use from the rule.
    pub fn as_table(&self) -> Result<&Tensor> {
        if let Some(t) = self.table.get() {
            return Ok(t);
        }
        let rule = self.rule.as_ref().expect("a mask without a table has a rule");
        let _ = self.table.set(rule.table(self.dtype, &self.device)?);
        Ok(self.table.get().expect("set just above"))
    }
}

/// The mask as the kernel reads it.
enum View<'a> {
    Open { keys: usize },
    Table { m: &'a [f32], per_batch: bool, t: usize, s: usize },
    /// `padded[bi]`: whether batch row `bi` has a padding key, which the others need not look for.
    Rule { rule: &'a MaskRule, padded: Vec<bool> },
}

impl View<'_> {
    /// Adds the mask to `x`, the scores of query `qi` of batch row `bi` against keys `k0..`.
    fn add(&self, bi: usize, qi: usize, k0: usize, x: &mut [f32]) {
        match self {
            View::Open { .. } => {}
            View::Table { m, per_batch, t, s } => {
                let row = &m[((if *per_batch { bi } else { 0 }) * t + qi) * s + k0..][..x.len()];
                for (x, m) in x.iter_mut().zip(row) {
                    *x += m;
                }
            }
            View::Rule { rule: r, padded } => {
                let (lo, hi) = r.span(qi);
                let end = k0 + x.len();
                // `span` keeps lo ≤ hi, so the open stretch [a, b) of the block is never reversed.
                let (a, b) = (lo.clamp(k0, end) - k0, hi.clamp(k0, end) - k0);
                x[..a].fill(f32::NEG_INFINITY);
                x[b..].fill(f32::NEG_INFINITY);
                if padded[bi] {
                    for (j, x) in x.iter_mut().enumerate().take(b).skip(a) {
                        if !r.present(bi, k0 + j) {
                            *x = f32::NEG_INFINITY;
                        }
                    }
                }
            }
        }
    }

    /// The keys query `qi` of row `bi` sees, as `[lo, hi)` bounds; `None` when it sees none.
    fn bounds(&self, bi: usize, qi: usize) -> Option<(usize, usize)> {
        match self {
            View::Open { keys } => (*keys > 0).then_some((0, *keys)),
            View::Table { m, per_batch, t, s } => {
                let row = &m[((if *per_batch { bi } else { 0 }) * t + qi) * s..][..*s];
                let lo = row.iter().position(|&x| x > HIDDEN / 10.0)?;
                let hi = row.iter().rposition(|&x| x > HIDDEN / 10.0)? + 1;
                Some((lo, hi))
            }
            View::Rule { rule: r, .. } => {
                let (lo, hi) = r.span(qi);
                let lo = (lo..hi).find(|&k| r.present(bi, k))?;
                let hi = (lo..hi).rev().find(|&k| r.present(bi, k))? + 1;
                Some((lo, hi))
            }
        }
    }
}

/// Shapes and scores of one attention call.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub b: usize,
    pub t: usize,
    pub s: usize,
    pub h: usize,
    pub kv: usize,
    pub d: usize,
    pub scale: f32,
    pub softcap: Option<f32>,
}

impl Dims {
    fn groups(&self) -> usize {
        self.h / self.kv
    }
}

/// A batch row, a key/value head and a tile of queries, with the keys the tile needs. A query
/// that sees no key at all gets uniform probabilities over every key, as an additive mask's
/// softmax gives it; a tile holding one spans every key.
struct Unit {
    bi: usize,
    kvi: usize,
    q0: usize,
    len: usize,
    lo: usize,
    hi: usize,
    uniform: Vec<bool>,
}

/// The units in order of batch row, then key/value head, then tile: consecutive units share a
/// head, so a run of them adds into one head's `dk`, `dv`.
fn units(dims: &Dims, view: &View) -> Vec<Unit> {
    let mut out = Vec::new();
    for bi in 0..dims.b {
        let tiles: Vec<(usize, usize, usize, usize, Vec<bool>)> = (0..dims.t)
            .step_by(TILE)
            .map(|q0| {
                let len = TILE.min(dims.t - q0);
                let bounds: Vec<Option<(usize, usize)>> = (q0..q0 + len).map(|qi| view.bounds(bi, qi)).collect();
                let uniform: Vec<bool> = bounds.iter().map(Option::is_none).collect();
                let (lo, hi) = if uniform.iter().any(|&u| u) {
                    (0, dims.s)
                } else {
                    bounds.iter().flatten().fold((usize::MAX, 0), |(lo, hi), &(l, h)| (lo.min(l), hi.max(h)))
                };
                (q0, len, lo, hi, uniform)
            })
            .collect();
        for kvi in 0..dims.kv {
            for (q0, len, lo, hi, uniform) in &tiles {
                out.push(Unit { bi, kvi, q0: *q0, len: *len, lo: *lo, hi: *hi, uniform: uniform.clone() });
            }
        }
    }
    out
}

/// The backward pass's split of the units into runs of consecutive ones, of about equal work:
/// a fixed number that depends on the shapes only, so the sums of `dk` and `dv` are made in the
/// same order, to the same bits, on any machine.
fn runs(units: &[Unit]) -> Vec<std::ops::Range<usize>> {
    let cost = |u: &Unit| (u.len * u.hi.saturating_sub(u.lo)).max(1);
    let total: usize = units.iter().map(cost).sum();
    let target = total.div_ceil(BACKWARD_RUNS).max(1);
    let mut out = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, u) in units.iter().enumerate() {
        acc += cost(u);
        if acc >= target {
            out.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    if start < units.len() {
        out.push(start..units.len());
    }
    out
}

/// Offset of row `(g, ti)` of a unit in a `[b, t, h, d]` buffer.
fn row_at(dims: &Dims, u: &Unit, g: usize, ti: usize) -> usize {
    ((u.bi * dims.t + u.q0 + ti) * dims.h + u.kvi * dims.groups() + g) * dims.d
}

/// A unit's rows of a `[b, t, h, d]` buffer, as `[groups · len, d]`.
fn gather(dims: &Dims, u: &Unit, x: &[f32]) -> Vec<f32> {
    let d = dims.d;
    let mut out = vec![0f32; dims.groups() * u.len * d];
    for g in 0..dims.groups() {
        for ti in 0..u.len {
            let at = row_at(dims, u, g, ti);
            out[(g * u.len + ti) * d..][..d].copy_from_slice(&x[at..at + d]);
        }
    }
    out
}

fn scatter(dims: &Dims, u: &Unit, rows: &[f32], x: &mut [f32]) {
    let d = dims.d;
    for g in 0..dims.groups() {
        for ti in 0..u.len {
            let at = row_at(dims, u, g, ti);
            x[at..at + d].copy_from_slice(&rows[(g * u.len + ti) * d..][..d]);
        }
    }
}

/// The scores of one block, made with the scale as the product's `alpha` unless soft-capped, turned
/// into the softmax's input in place: soft-capped (`th` then holds `tanh(scale · score / c)`) and
/// masked.
fn scores_in_place(dims: &Dims, view: &View, u: &Unit, k0: usize, kb: usize, s: &mut [f32], mut th: Option<&mut [f32]>) {
    for (r, row) in s.chunks_mut(kb).enumerate() {
        let ti = r % u.len;
        if let (Some(c), Some(th)) = (dims.softcap, th.as_deref_mut()) {
            for (x, th) in row.iter_mut().zip(&mut th[r * kb..(r + 1) * kb]) {
                *th = (*x * dims.scale / c).tanh();
                *x = c * *th;
            }
        }
        view.add(u.bi, u.q0 + ti, k0, row);
    }
}

/// The scale the scores' product takes as its `alpha`: all of it, unless a soft cap applies it
/// inside the `tanh`.
fn score_alpha(dims: &Dims) -> f32 {
    if dims.softcap.is_some() { 1.0 } else { dims.scale }
}

fused::widest! {
    /// One block of scores (`[rows, kb]`) turned into unnormalised probabilities in place, with each
    /// row's running maximum and sum brought up to date and its output rows (`acc`, `[rows, d]`)
    /// rescaled to the new maximum. Row `r` is query `r % uniform_rows.len()` of its group.
    fn online_softmax(sc: &mut [f32], kb: usize, d: usize, uniform_rows: &[bool], uniform: f32, max: &mut [f32], sum: &mut [f32], acc: &mut [f32]) = online_softmax_body;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn online_softmax_body(sc: &mut [f32], kb: usize, d: usize, uniform_rows: &[bool], uniform: f32, max: &mut [f32], sum: &mut [f32], acc: &mut [f32]) {
    for (r, row) in sc.chunks_mut(kb).enumerate() {
        if uniform_rows[r % uniform_rows.len()] {
            row.fill(uniform);
            continue;
        }
        let new_max = max[r].max(fused::max_of(row));
        if new_max == f32::NEG_INFINITY {
            row.fill(0.0);
            continue;
        }
        let total = fused::exp_shifted_sum(row, new_max);
        if new_max != max[r] {
            let corr = fused::exp(max[r] - new_max);
            sum[r] *= corr;
            acc[r * d..(r + 1) * d].iter_mut().for_each(|a| *a *= corr);
            max[r] = new_max;
        }
        sum[r] += total;
    }
}

fused::widest! {
    /// One block's probabilities (`[rows, kb]`) made again in place from the scores and each row's
    /// log-sum-exp.
    fn probabilities(p: &mut [f32], kb: usize, lse: &[f32], uniform_rows: &[bool], uniform: f32) = probabilities_body;
}

#[inline(always)]
fn probabilities_body(p: &mut [f32], kb: usize, lse: &[f32], uniform_rows: &[bool], uniform: f32) {
    for (r, row) in p.chunks_mut(kb).enumerate() {
        if uniform_rows[r % uniform_rows.len()] {
            row.fill(uniform);
        } else {
            let l = lse[r];
            row.iter_mut().for_each(|x| *x = fused::exp(*x - l));
        }
    }
}

fused::widest! {
    /// The scores' gradient in place of the probabilities' (`dp`, `[rows, kb]`): the softmax's
    /// backward `p · (dp − D)`, times the scale, through the soft cap when there is one (`th`).
    fn score_gradients(dp: &mut [f32], p: &[f32], kb: usize, dsum: &[f32], scale: f32, th: Option<&[f32]>) = score_gradients_body;
}

#[inline(always)]
fn score_gradients_body(dp: &mut [f32], p: &[f32], kb: usize, dsum: &[f32], scale: f32, th: Option<&[f32]>) {
    for (r, (dp, p)) in dp.chunks_mut(kb).zip(p.chunks(kb)).enumerate() {
        let ds = dsum[r];
        match th {
            // Through the cap: d(c · tanh(scale · x / c)) / dx = scale · (1 − tanh²).
            Some(th) => {
                for ((dp, &p), &th) in dp.iter_mut().zip(p).zip(&th[r * kb..(r + 1) * kb]) {
                    *dp = p * (*dp - ds) * scale * (1.0 - th * th);
                }
            }
            None => dp.iter_mut().zip(p).for_each(|(dp, &p)| *dp = p * (*dp - ds) * scale),
        }
    }
}

/// One unit's forward pass: its output rows (`[groups · len, d]`) and their log-sum-exps (NaN for
/// a row with uniform probabilities).
fn forward_unit(dims: &Dims, view: &View, u: &Unit, q: &[f32], km: &[f32], vm: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (d, s) = (dims.d, dims.s);
    let rows = dims.groups() * u.len;
    let qt = gather(dims, u, q);
    let head = (u.bi * dims.kv + u.kvi) * s * d;
    let (kh, vh) = (&km[head..head + s * d], &vm[head..head + s * d]);
    let mut acc = vec![0f32; rows * d];
    let mut max = vec![f32::NEG_INFINITY; rows];
    let mut sum = vec![0f32; rows];
    let mut sc = vec![0f32; rows * KEY_BLOCK];
    let mut th = dims.softcap.map(|_| vec![0f32; rows * KEY_BLOCK]);
    let uniform = 1.0 / s as f32;
    for k0 in (u.lo..u.hi).step_by(KEY_BLOCK) {
        let kb = KEY_BLOCK.min(u.hi - k0);
        let sc = &mut sc[..rows * kb];
        let keys = Mat { data: &kh[k0 * d..], ld: d, trans: true };
        gemm_slices(rows, kb, d, score_alpha(dims), Mat { data: &qt, ld: d, trans: false }, keys, 0.0, sc);
        scores_in_place(dims, view, u, k0, kb, sc, th.as_deref_mut());
        online_softmax(sc, kb, d, &u.uniform, uniform, &mut max, &mut sum, &mut acc);
        gemm_slices(rows, d, kb, 1.0, Mat { data: sc, ld: kb, trans: false }, Mat { data: &vh[k0 * d..], ld: d, trans: false }, 1.0, &mut acc);
    }
    let mut lse = vec![f32::NAN; rows];
    for r in 0..rows {
        if !u.uniform[r % u.len] {
            let inv = 1.0 / sum[r];
            acc[r * d..(r + 1) * d].iter_mut().for_each(|a| *a *= inv);
            lse[r] = max[r] + sum[r].ln();
        }
    }
    (acc, lse)
}

/// The forward pass: the output `[b, t, h, d]` and each row's log-sum-exp, laid out by unit.
pub(crate) fn forward(dims: &Dims, mask: Option<&AttnMask>, q: &[f32], km: &[f32], vm: &[f32]) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    with_view(dims, mask, |view| {
        let units = units(dims, view);
        let parts: Vec<(Vec<f32>, Vec<f32>)> = units.par_iter().map(|u| forward_unit(dims, view, u, q, km, vm)).collect();
        let mut out = vec![0f32; dims.b * dims.t * dims.h * dims.d];
        let mut lses = Vec::with_capacity(units.len());
        for (u, (rows, lse)) in units.iter().zip(parts) {
            scatter(dims, u, &rows, &mut out);
            lses.push(lse);
        }
        Ok((out, lses))
    })
}

/// Gradients kept per rayon task in the backward pass: keys and values heads-major
/// (`[b, kv, s, d]`), and each unit's query rows.
struct Grads {
    /// Where `dk` and `dv` start in the full `[b, kv, s, d]` layout: a run holds the heads it
    /// touches only.
    base: usize,
    dk: Vec<f32>,
    dv: Vec<f32>,
    dq: Vec<(usize, Vec<f32>)>,
}

/// One unit's backward pass, adding into `acc`.
#[allow(clippy::too_many_arguments)]
fn backward_unit(dims: &Dims, view: &View, (i, u): (usize, &Unit), lse: &[f32], q: &[f32], km: &[f32], vm: &[f32], out: &[f32], g: &[f32], acc: &mut Grads) {
    let (d, s) = (dims.d, dims.s);
    let rows = dims.groups() * u.len;
    let (qt, gt, ot) = (gather(dims, u, q), gather(dims, u, g), gather(dims, u, out));
    // D = rowsum(dO ⊙ O): the softmax backward's `Σ p · dp`, without the full row of p.
    let dsum: Vec<f32> = gt.chunks(d).zip(ot.chunks(d)).map(|(g, o)| g.iter().zip(o).map(|(g, o)| g * o).sum()).collect();
    let head = (u.bi * dims.kv + u.kvi) * s * d;
    let (kh, vh) = (&km[head..head + s * d], &vm[head..head + s * d]);
    let mut dqt = vec![0f32; rows * d];
    let mut p = vec![0f32; rows * KEY_BLOCK];
    let mut dp = vec![0f32; rows * KEY_BLOCK];
    let mut th = dims.softcap.map(|_| vec![0f32; rows * KEY_BLOCK]);
    let uniform = 1.0 / s as f32;
    for k0 in (u.lo..u.hi).step_by(KEY_BLOCK) {
        let kb = KEY_BLOCK.min(u.hi - k0);
        let (p, dp) = (&mut p[..rows * kb], &mut dp[..rows * kb]);
        let keys_t = Mat { data: &kh[k0 * d..], ld: d, trans: true };
        gemm_slices(rows, kb, d, score_alpha(dims), Mat { data: &qt, ld: d, trans: false }, keys_t, 0.0, p);
        scores_in_place(dims, view, u, k0, kb, p, th.as_deref_mut());
        probabilities(p, kb, lse, &u.uniform, uniform);
        let at = head - acc.base + k0 * d;
        let (dkh, dvh) = (&mut acc.dk[at..][..kb * d], &mut acc.dv[at..][..kb * d]);
        gemm_slices(kb, d, rows, 1.0, Mat { data: p, ld: kb, trans: true }, Mat { data: &gt, ld: d, trans: false }, 1.0, dvh);
        gemm_slices(rows, kb, d, 1.0, Mat { data: &gt, ld: d, trans: false }, Mat { data: &vh[k0 * d..], ld: d, trans: true }, 0.0, dp);
        score_gradients(dp, p, kb, &dsum, dims.scale, th.as_ref().map(|t| &t[..rows * kb]));
        gemm_slices(rows, d, kb, 1.0, Mat { data: dp, ld: kb, trans: false }, Mat { data: &kh[k0 * d..], ld: d, trans: false }, 1.0, &mut dqt);
        gemm_slices(kb, d, rows, 1.0, Mat { data: dp, ld: kb, trans: true }, Mat { data: &qt, ld: d, trans: false }, 1.0, dkh);
    }
    acc.dq.push((i, dqt));
}

/// The backward pass: `dq` (`[b, t, h, d]`) and `dk`, `dv` heads-major (`[b, kv, s, d]`), from the
/// output's gradient `g` and the output itself.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    dims: &Dims,
    mask: Option<&AttnMask>,
    lses: &[Vec<f32>],
    q: &[f32],
    km: &[f32],
    vm: &[f32],
    out: &[f32],
    g: &[f32],
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    with_view(dims, mask, |view| {
        let units = units(dims, view);
        let kv_len = dims.b * dims.kv * dims.s * dims.d;
        let head_len = dims.s * dims.d;
        let head_of = |u: &Unit| u.bi * dims.kv + u.kvi;
        let parts: Vec<Grads> = runs(&units)
            .into_par_iter()
            .map(|run| {
                let (first, last) = (head_of(&units[run.start]), head_of(&units[run.end - 1]));
                let len = (last - first + 1) * head_len;
                let mut acc = Grads { base: first * head_len, dk: vec![0f32; len], dv: vec![0f32; len], dq: Vec::new() };
                for i in run {
                    backward_unit(dims, view, (i, &units[i]), &lses[i], q, km, vm, out, g, &mut acc);
                }
                acc
            })
            .collect();
        let mut dq = vec![0f32; dims.b * dims.t * dims.h * dims.d];
        let (mut dk, mut dv) = (vec![0f32; kv_len], vec![0f32; kv_len]);
        for part in parts {
            let n = part.dk.len();
            fused::axpy_in_place(&mut dk[part.base..part.base + n], &part.dk, 1.0);
            fused::axpy_in_place(&mut dv[part.base..part.base + n], &part.dv, 1.0);
            for (i, rows) in part.dq {
                scatter(dims, &units[i], &rows, &mut dq);
            }
        }
        Ok((dq, dk, dv))
    })
}

fn with_view<R>(dims: &Dims, mask: Option<&AttnMask>, f: impl FnOnce(&View) -> Result<R>) -> Result<R> {
    match mask {
        None => f(&View::Open { keys: dims.s }),
        Some(m) => match m.as_rule() {
            Some(rule) => {
                if (rule.batch, rule.queries, rule.keys) != (dims.b, dims.t, dims.s) {
                    candle_core::bail!("attention: mask for {} × {} queries and {} keys does not fit {} × {} and {}", rule.batch, rule.queries, rule.keys, dims.b, dims.t, dims.s);
                }
                let padded = match &rule.present {
                    Some(p) => p.chunks(rule.keys.max(1)).map(|row| row.contains(&false)).collect(),
                    None => vec![false; rule.batch],
                };
                f(&View::Rule { rule, padded })
            }
            None => {
                let table = m.as_table()?;
                let md = table.dims().to_vec();
                let rows = md.first().copied().unwrap_or(0);
                if table.elem_count() != rows * dims.t * dims.s || !(rows == 1 || rows == dims.b) {
                    candle_core::bail!("attention: mask of shape {md:?} does not fit {} queries and {} keys", dims.t, dims.s);
                }
                let table = table.to_dtype(DType::F32)?;
                fused::slice_of(&table, |m| f(&View::Table { m, per_batch: rows == dims.b && rows > 1, t: dims.t, s: dims.s }))?
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::tests::{bits, values};

    /// The block kernels give the same bits in every version `widest!` picks from (see
    /// `fused::tests`), masked scores and uniform rows included.
    #[test]
    fn softmax_blocks_give_the_same_bits_at_every_vector_width() {
        let (rows, kb, d) = (6, 37, 8);
        let uniform_rows = [false, true, false];
        let mut scores = values(rows * kb, 1, -20.0, 20.0);
        scores[kb + 3] = f32::NEG_INFINITY;
        let (max0, sum0, acc0) = (values(rows, 2, -5.0, 30.0), values(rows, 3, 0.5, 9.0), values(rows * d, 4, -1.0, 1.0));
        let run = |wide: bool| {
            let (mut s, mut max, mut sum, mut acc) = (scores.clone(), max0.clone(), sum0.clone(), acc0.clone());
            if wide {
                online_softmax(&mut s, kb, d, &uniform_rows, 0.01, &mut max, &mut sum, &mut acc);
            } else {
                online_softmax_body(&mut s, kb, d, &uniform_rows, 0.01, &mut max, &mut sum, &mut acc);
            }
            [bits(&s), bits(&max), bits(&sum), bits(&acc)]
        };
        assert_eq!(run(true), run(false), "online softmax");

        let lse = values(rows, 5, 0.0, 25.0);
        let (mut wide, mut base) = (scores.clone(), scores.clone());
        probabilities(&mut wide, kb, &lse, &uniform_rows, 0.01);
        probabilities_body(&mut base, kb, &lse, &uniform_rows, 0.01);
        assert_eq!(bits(&wide), bits(&base), "probabilities");

        let (dsum, th, p) = (values(rows, 6, -1.0, 1.0), values(rows * kb, 7, -0.99, 0.99), values(rows * kb, 8, 0.0, 1.0));
        for cap in [None, Some(&th[..])] {
            let (mut wide, mut base) = (scores.clone(), scores.clone());
            score_gradients(&mut wide, &p, kb, &dsum, 0.125, cap);
            score_gradients_body(&mut base, &p, kb, &dsum, 0.125, cap);
            assert_eq!(bits(&wide), bits(&base), "score gradients, cap {}", cap.is_some());
        }
    }
}
