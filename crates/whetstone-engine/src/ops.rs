//! Differentiable building blocks for training.
//!
//! candle applies its fused kernels (`rms_norm`, `rope`, `softmax_last_dim`) without a backward pass and
//! its `matmul` backward also computes a gradient for frozen weights. Each op here computes its forward
//! without a graph — free to use the fused kernels — and attaches the result to its inputs through a
//! custom op whose backward is written by hand and returns gradients for the inputs only.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, D};
use crate::blas::matmul as mm;
use crate::blas::{gemm_slices, Mat};
use crate::attention::{self, AttnMask};
use crate::fused::{self, Dropout};
use crate::quant::{FrozenWeight, QuantWeight};
use rayon::prelude::*;
use std::sync::Mutex;

type Bwd1 = dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync;
type Bwd2 = dyn Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync;
type Bwd3 = dyn Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> + Send + Sync;

/// An op's result computed outside the graph: a tensor, or a plain CPU buffer that is handed to the
/// graph as it is, without the copy a tensor's storage needs.
pub enum Out {
    Tensor(Tensor),
    Cpu(Vec<f32>, Shape),
}

impl From<Tensor> for Out {
    fn from(t: Tensor) -> Self {
        Out::Tensor(t)
    }
}

impl Out {
    pub fn cpu(data: Vec<f32>, shape: impl Into<Shape>) -> Self {
        Out::Cpu(data, shape.into())
    }

    fn into_tensor(self) -> Result<Tensor> {
        match self {
            Out::Tensor(t) => Ok(t),
            Out::Cpu(v, shape) => Tensor::from_vec(v, shape, &candle_core::Device::Cpu),
        }
    }
}

/// Holds a result computed outside the graph until the custom op's forward hands it over; the op keeps
/// only its inputs afterwards, as a native op would.
struct Precomputed(Mutex<Option<Out>>);

impl Precomputed {
    fn new(out: Out) -> Result<Self> {
        let out = match out {
            Out::Tensor(t) if !(t.is_contiguous() && t.layout().start_offset() == 0) => Out::Tensor(t.force_contiguous()?.detach()),
            Out::Tensor(t) => Out::Tensor(t.detach()),
            cpu => cpu,
        };
        Ok(Self(Mutex::new(Some(out))))
    }

    fn take_out(&self) -> Result<Out> {
        self.0
            .lock()
            .map_err(|_| candle_core::Error::Msg("precomputed result lock poisoned".into()))?
            .take()
            .ok_or_else(|| candle_core::Error::Msg("precomputed result used twice".into()))
    }

    #[cfg(any(feature = "cuda", feature = "metal"))]
    fn take(&self) -> Result<Tensor> {
        match self.take_out()? {
            Out::Tensor(t) => Ok(t),
            Out::Cpu(..) => candle_core::bail!("precomputed result is on the cpu"),
        }
    }

    fn cpu(&self) -> Result<(CpuStorage, Shape)> {
        match self.take_out()? {
            Out::Cpu(v, shape) => Ok((CpuStorage::F32(v), shape)),
            Out::Tensor(t) => {
                let (st, l) = t.storage_and_layout();
                match &*st {
                    Storage::Cpu(s) => Ok((s.try_clone(l)?, l.shape().clone())),
                    _ => candle_core::bail!("precomputed result is not on the cpu"),
                }
            }
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Result<(candle_core::CudaStorage, Shape)> {
        let t = self.take()?;
        let (st, l) = t.storage_and_layout();
        match &*st {
            Storage::Cuda(s) => Ok((s.try_clone(l)?, l.shape().clone())),
            _ => candle_core::bail!("precomputed result is not on the gpu"),
        }
    }

    #[cfg(feature = "metal")]
    fn metal(&self) -> Result<(candle_core::MetalStorage, Shape)> {
        let t = self.take()?;
        let (st, l) = t.storage_and_layout();
        match &*st {
            Storage::Metal(s) => Ok((s.try_clone(l)?, l.shape().clone())),
            _ => candle_core::bail!("precomputed result is not on the gpu"),
        }
    }
}

struct Attach1 {
    name: &'static str,
    out: Precomputed,
    bwd: Box<Bwd1>,
}

impl CustomOp1 for Attach1 {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.out.cpu()
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, _: &candle_core::CudaStorage, _: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        self.out.cuda()
    }
    #[cfg(feature = "metal")]
    fn metal_fwd(&self, _: &candle_core::MetalStorage, _: &Layout) -> Result<(candle_core::MetalStorage, Shape)> {
        self.out.metal()
    }
    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        (self.bwd)(res, grad).map(Some)
    }
}

struct Attach2 {
    name: &'static str,
    out: Precomputed,
    bwd: Box<Bwd2>,
}

impl CustomOp2 for Attach2 {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        self.out.cpu()
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.out.cuda()
    }
    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        _: &candle_core::MetalStorage,
        _: &Layout,
        _: &candle_core::MetalStorage,
        _: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        self.out.metal()
    }
    fn bwd(&self, _: &Tensor, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        (self.bwd)(res, grad)
    }
}

struct Attach3 {
    name: &'static str,
    out: Precomputed,
    bwd: Box<Bwd3>,
}

impl CustomOp3 for Attach3 {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.out.cpu()
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.out.cuda()
    }
    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        _: &candle_core::MetalStorage,
        _: &Layout,
        _: &candle_core::MetalStorage,
        _: &Layout,
        _: &candle_core::MetalStorage,
        _: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        self.out.metal()
    }
    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        (self.bwd)(res, grad)
    }
}

/// `out` (computed from a detached `x`) joined to the graph of `x`, with `bwd(out, grad_out) -> grad_x`.
pub fn attach1(
    name: &'static str,
    x: &Tensor,
    out: impl Into<Out>,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.track_op() {
        return out.into().into_tensor();
    }
    x.apply_op1(Attach1 { name, out: Precomputed::new(out.into())?, bwd: Box::new(bwd) })
}

fn attach2(
    name: &'static str,
    (a, b): (&Tensor, &Tensor),
    out: impl Into<Out>,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync + 'static,
) -> Result<Tensor> {
    let (ta, tb) = (a.track_op(), b.track_op());
    if !(ta || tb) {
        return out.into().into_tensor();
    }
    // A gradient for an input outside the graph would only be stored and never used.
    let bwd = move |res: &Tensor, g: &Tensor| {
        let (x, y) = bwd(res, g)?;
        Ok((x.filter(|_| ta), y.filter(|_| tb)))
    };
    a.apply_op2(b, Attach2 { name, out: Precomputed::new(out.into())?, bwd: Box::new(bwd) })
}

fn attach3(
    name: &'static str,
    (a, b, c): (&Tensor, &Tensor, &Tensor),
    out: impl Into<Out>,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> + Send + Sync + 'static,
) -> Result<Tensor> {
    let (ta, tb, tc) = (a.track_op(), b.track_op(), c.track_op());
    if !(ta || tb || tc) {
        return out.into().into_tensor();
    }
    let bwd = move |res: &Tensor, g: &Tensor| {
        let (x, y, z) = bwd(res, g)?;
        Ok((x.filter(|_| ta), y.filter(|_| tb), z.filter(|_| tc)))
    };
    a.apply_op3(b, c, Attach3 { name, out: Precomputed::new(out.into())?, bwd: Box::new(bwd) })
}

/// A weight that never trains, dense or quantized. Its backward returns the input gradient only, so no
/// gradient for the weight is ever computed or stored; a quantized weight is dequantized for the
/// product and again for the backward pass, and the dense copy is dropped in between.
#[derive(Clone, Debug)]
pub struct FrozenLinear {
    /// `[out, in]`, as in PyTorch.
    pub weight: FrozenWeight,
    pub bias: Option<Tensor>,
}

impl FrozenLinear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight: FrozenWeight::Dense(weight), bias }
    }

    pub fn quantized(weight: QuantWeight, bias: Option<Tensor>) -> Self {
        Self { weight: FrozenWeight::Quantized(std::sync::Arc::new(weight)), bias }
    }

    /// The weight tensor when it is held dense.
    pub fn dense(&self) -> Option<&Tensor> {
        match &self.weight {
            FrozenWeight::Dense(t) => Some(t),
            FrozenWeight::Quantized(_) => None,
        }
    }

    pub fn dims(&self) -> Vec<usize> {
        self.weight.dims()
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_f = *dims.last().unwrap_or(&0);
        let rows = x.elem_count() / in_f.max(1);
        let x2 = x.detach().reshape((rows, in_f))?;
        let mut y = if x.track_op() {
            let w = self.weight.materialize(x.dtype())?;
            mm(&x2, &w.t()?)?
        } else {
            self.weight.matmul_t(&x2)?
        };
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        let mut out_dims = dims.clone();
        *out_dims.last_mut().expect("linear input has a last dimension") = self.out_features();
        let y = y.reshape(out_dims)?;
        let w = self.weight.clone();
        attach1("frozen-linear", x, y, move |_res, g| {
            let g_dims = g.dims().to_vec();
            let out_f = *g_dims.last().unwrap_or(&0);
            let rows = g.elem_count() / out_f.max(1);
            let gx = mm(&g.reshape((rows, out_f))?, &w.materialize(g.dtype())?)?;
            gx.reshape(dims.as_slice())
        })
    }
}

/// A frozen linear with a LoRA adapter in one graph node: `x Wᵀ + b + scale · ((x ⊙ mask) Aᵀ) Bᵀ`.
///
/// `a` is `[r, in]`, `b` is `[out, r]`; `dropout` draws the mask from a seed, so the backward pass
/// draws it again instead of keeping it. Composed from plain ops, every intermediate (the base
/// output, the low-rank product, the sum) would stay alive until the backward pass; this node keeps
/// only its inputs and recomputes `x Aᵀ`, which is `r` wide.
pub fn lora_linear(x: &Tensor, base: &FrozenLinear, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<Dropout>) -> Result<Tensor> {
    let tracked = x.track_op() || a.track_op() || b.track_op();
    if tracked && fused::applies(x) && fused::applies(a) && fused::applies(b) {
        return lora_linear_cpu(x, base, a, b, scale, dropout, None);
    }
    let dims = x.dims().to_vec();
    let in_f = *dims.last().unwrap_or(&0);
    let rows = x.elem_count() / in_f.max(1);
    let out_f = base.out_features();
    let xd = x.detach().reshape((rows, in_f))?;
    let mask = match dropout {
        Some(d) if x.device().is_cpu() => Some(Tensor::from_vec(d.mask(rows * in_f), (rows, in_f), x.device())?.to_dtype(x.dtype())?),
        Some(d) => {
            // On a GPU the mask is drawn there, from the same seed: drawing it on the host would move
            // a 7B model's billions of draws per step over the bus.
            x.device().set_seed(d.seed)?;
            let u = Tensor::rand(0f32, 1f32, (rows, in_f), x.device())?;
            Some((u.ge(d.p)?.to_dtype(x.dtype())? * (1.0 / (1.0 - d.p)))?)
        }
        None => None,
    };
    let (ad, bd) = (a.detach(), b.detach());
    let xin = match &mask {
        Some(m) => (&xd * m)?,
        None => xd.clone(),
    };
    let mut y = if tracked {
        let w = base.weight.materialize(xd.dtype())?;
        mm(&xd, &w.t()?)?
    } else {
        base.weight.matmul_t(&xd)?
    };
    if let Some(bias) = &base.bias {
        y = y.broadcast_add(bias)?;
    }
    let y = (y + (mm(&mm(&xin, &ad.t()?)?, &bd.t()?)? * scale)?)?;
    let mut out_dims = dims.clone();
    *out_dims.last_mut().expect("linear input has a last dimension") = out_f;
    let y = y.reshape(out_dims)?;
    let w = base.weight.clone();
    let need_dx = x.track_op();
    attach3("lora-linear", (x, a, b), y, move |_res, g| {
        let g = g.reshape((rows, out_f))?;
        let xin = match &mask {
            Some(m) => (&xd * m)?,
            None => xd.clone(),
        };
        let gb = mm(&g, &bd)?;
        let dx = if need_dx {
            let mut dx_lora = (mm(&gb, &ad)? * scale)?;
            if let Some(m) = &mask {
                dx_lora = (dx_lora * m)?;
            }
            Some((mm(&g, &w.materialize(g.dtype())?)? + dx_lora)?.reshape(dims.as_slice())?)
        } else {
            None
        };
        let da = (mm(&gb.t()?, &xin)? * scale)?;
        let h = mm(&xin, &ad.t()?)?;
        let db = (mm(&g.t()?, &h)? * scale)?;
        Ok((dx, Some(da), Some(db)))
    })
}

/// Rows of the input a LoRA kernel with dropout masks at a time: the masked block (at most
/// 32 × 8960 floats, about 1 MB) stays in cache on its way into the products.
const DROP_BLOCK_ROWS: usize = 32;

/// How many partial `dA` sums the dropout backward makes at most: a fixed number, so the order of
/// the additions, and the result, do not depend on the machine.
const DROP_GROUPS: usize = 16;

/// The frozen weight, the adapter and their scale, dropout and shapes: the arithmetic of
/// [`lora_linear`] in f32 on the CPU, shared by the nodes that compute it. The adapter's product
/// is accumulated into the base output and into the input gradient by sgemm itself, and the
/// results go to the graph without a copy.
#[derive(Clone)]
struct LoraCpu {
    w: FrozenWeight,
    bias: Option<Tensor>,
    ad: Tensor,
    bd: Tensor,
    scale: f64,
    dropout: Option<Dropout>,
    rows: usize,
    in_f: usize,
    out_f: usize,
}

/// What the forward pass of [`LoraCpu`] leaves for the backward one: the adapter's `r`-wide
/// product `drop(x) Aᵀ` and the dropout mask as bits.
struct LoraSaved {
    h: Tensor,
    bits: Option<fused::DropMask>,
}

impl LoraCpu {
    fn new(base: &FrozenLinear, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<Dropout>, rows: usize, in_f: usize) -> Result<Self> {
        let out_f = base.out_features();
        let (ad, bd) = (a.detach().contiguous()?, b.detach().contiguous()?);
        Ok(Self { w: base.weight.clone(), bias: base.bias.clone(), ad, bd, scale, dropout, rows, in_f, out_f })
    }

    fn rank(&self) -> usize {
        self.ad.dims()[0]
    }

    /// `drop(xd) Aᵀ`, with dropout drawn as bits and applied block by block on its way into the
    /// product, so the masked input never exists whole.
    fn low_rank(&self, xd: &Tensor) -> Result<LoraSaved> {
        let Some(d) = self.dropout else {
            return Ok(LoraSaved { h: mm(xd, &self.ad.t()?)?, bits: None });
        };
        let (r, in_f) = (self.rank(), self.in_f);
        let bits = d.bits(self.rows * in_f);
        let mut h = vec![0f32; self.rows * r];
        fused::slice_of(xd, |xv| {
            fused::slice_of(&self.ad, |av| {
                h.par_chunks_mut(DROP_BLOCK_ROWS * r).enumerate().for_each_init(
                    || vec![0f32; DROP_BLOCK_ROWS * in_f],
                    |scratch, (bi, hb)| {
                        let (start, n) = (bi * DROP_BLOCK_ROWS * in_f, hb.len() / r * in_f);
                        bits.apply_at(start, &xv[start..start + n], &mut scratch[..n]);
                        let x = Mat { data: &scratch[..n], ld: in_f, trans: false };
                        gemm_slices(hb.len() / r, r, in_f, 1.0, x, Mat { data: av, ld: in_f, trans: true }, 0.0, hb);
                    },
                )
            })
        })??;
        Ok(LoraSaved { h: Tensor::from_vec(h, (self.rows, r), &candle_core::Device::Cpu)?, bits: Some(bits) })
    }

    /// `init + xd Wᵀ + bias + scale · (drop(xd) Aᵀ) Bᵀ`, `xd` being `[rows, in]`.
    fn forward(&self, xd: &Tensor, init: Option<Vec<f32>>) -> Result<(Vec<f32>, LoraSaved)> {
        let wt = self.w.materialize(DType::F32)?;
        let mut y = match init {
            // A residual stream is the product's starting value: sgemm adds to it.
            Some(mut y) => {
                crate::blas::matmul_acc(xd, &wt.t()?, 1.0, &mut y)?;
                y
            }
            None => crate::blas::matmul_vec(xd, &wt.t()?)?.0,
        };
        drop(wt);
        if let Some(bias) = &self.bias {
            fused::slice_of(&bias.to_dtype(DType::F32)?, |bv| fused::add_rows_in_place(&mut y, bv))?;
        }
        let saved = self.low_rank(xd)?;
        crate::blas::matmul_acc(&saved.h, &self.bd.t()?, self.scale as f32, &mut y)?;
        Ok((y, saved))
    }

    /// The gradients for the input (when asked), A and B, from the output's gradient `g`
    /// (`[rows, out]`).
    fn backward(&self, xd: &Tensor, g: &Tensor, need_dx: bool, saved: &LoraSaved) -> Result<(Option<Vec<f32>>, Tensor, Tensor)> {
        let scale = self.scale;
        let gb = mm(g, &self.bd)?;
        let mut dx = if need_dx { Some(crate::blas::matmul_vec(g, &self.w.materialize(DType::F32)?)?.0) } else { None };
        let da = match &saved.bits {
            None => {
                if let Some(dx) = dx.as_mut() {
                    crate::blas::matmul_acc(&gb, &self.ad, scale as f32, dx)?;
                }
                // dA = scale · gbᵀ x, made as (xᵀ gb)ᵀ: `in` rows split across threads instead of `r`.
                mm(&xd.t()?, &gb)?.t()?.affine(scale, 0.0)?
            }
            Some(bits) => self.dropped_backward(xd, &gb, bits, dx.as_deref_mut())?,
        };
        let db = mm(&g.t()?, &saved.h)?.affine(scale, 0.0)?;
        Ok((dx, da, db))
    }

    /// With dropout, in blocks of rows: `dx += scale · mask ⊙ (gb A)` and
    /// `dA = scale · gbᵀ (x ⊙ mask)`, each block's masked input made in a scratch buffer and summed
    /// into a per-task `dA`.
    fn dropped_backward(&self, xd: &Tensor, gb: &Tensor, bits: &fused::DropMask, dx: Option<&mut [f32]>) -> Result<Tensor> {
        let (r, in_f, rows) = (self.rank(), self.in_f, self.rows);
        let scale = self.scale as f32;
        let da = fused::slice_of(xd, |xv| {
            fused::slice_of(gb, |gv| {
                fused::slice_of(&self.ad, |av| {
                    let block = |bi: usize, dxb: Option<&mut [f32]>, acc: &mut [f32], scratch: &mut [f32]| {
                        let row0 = bi * DROP_BLOCK_ROWS;
                        let nr = DROP_BLOCK_ROWS.min(rows - row0);
                        let (start, n) = (row0 * in_f, nr * in_f);
                        let gbb = &gv[row0 * r..(row0 + nr) * r];
                        if let Some(dxb) = dxb {
                            let (g, a) = (Mat { data: gbb, ld: r, trans: false }, Mat { data: av, ld: in_f, trans: false });
                            gemm_slices(nr, in_f, r, 1.0, g, a, 0.0, &mut scratch[..n]);
                            bits.accumulate_at(start, dxb, &scratch[..n], scale);
                        }
                        bits.apply_at(start, &xv[start..start + n], &mut scratch[..n]);
                        let (g, x) = (Mat { data: gbb, ld: r, trans: true }, Mat { data: &scratch[..n], ld: in_f, trans: false });
                        gemm_slices(r, in_f, nr, 1.0, g, x, 1.0, acc);
                    };
                    // A fixed split into groups of blocks, each summing its own `dA`, added up in
                    // order: the result is the same bits whatever the thread count or scheduling.
                    let blocks = rows.div_ceil(DROP_BLOCK_ROWS);
                    let per_group = blocks.div_ceil(DROP_GROUPS).max(1);
                    let group = |gi: usize, mut dxg: Option<&mut [f32]>| {
                        let (mut acc, mut scratch) = (vec![0f32; r * in_f], vec![0f32; DROP_BLOCK_ROWS * in_f]);
                        for bi in gi * per_group..((gi + 1) * per_group).min(blocks) {
                            let at = (bi - gi * per_group) * DROP_BLOCK_ROWS * in_f;
                            let dxb = dxg.as_deref_mut().map(|d| {
                                let end = (at + DROP_BLOCK_ROWS * in_f).min(d.len());
                                &mut d[at..end]
                            });
                            block(bi, dxb, &mut acc, &mut scratch);
                        }
                        acc
                    };
                    let partials: Vec<Vec<f32>> = match dx {
                        Some(dx) => dx.par_chunks_mut(per_group * DROP_BLOCK_ROWS * in_f).enumerate().map(|(gi, dxg)| group(gi, Some(dxg))).collect(),
                        None => (0..blocks.div_ceil(per_group)).into_par_iter().map(|gi| group(gi, None)).collect(),
                    };
                    let mut total = vec![0f32; r * in_f];
                    for p in &partials {
                        fused::axpy_in_place(&mut total, p, scale);
                    }
                    total
                })
            })
        })???;
        Tensor::from_vec(da, (r, in_f), &candle_core::Device::Cpu)
    }
}

/// A and B as one flat tensor (a few thousand numbers) whose gradient candle splits back: a custom
/// op takes at most three inputs.
fn packed(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[&a.flatten_all()?, &b.flatten_all()?], 0)
}

fn packed_grad(da: &Tensor, db: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[&da.flatten_all()?, &db.flatten_all()?], 0)
}

fn lora_linear_cpu(x: &Tensor, base: &FrozenLinear, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<Dropout>, res: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let in_f = *dims.last().unwrap_or(&0);
    let rows = x.elem_count() / in_f.max(1);
    let core = LoraCpu::new(base, a, b, scale, dropout, rows, in_f)?;
    let xd = x.detach().reshape((rows, in_f))?.contiguous()?;
    let init = match res {
        Some(r) => Some(fused::slice_of(&r.detach().to_dtype(DType::F32)?, |v| v.to_vec())?),
        None => None,
    };
    let (y, saved) = core.forward(&xd, init)?;
    let mut out_dims = dims.clone();
    *out_dims.last_mut().expect("linear input has a last dimension") = core.out_f;
    let need_dx = x.track_op();
    let cpu = candle_core::Device::Cpu;
    match res {
        None => attach3("lora-linear", (x, a, b), Out::cpu(y, out_dims), move |_res, g| {
            let g = g.reshape((core.rows, core.out_f))?.contiguous()?;
            let (dx, da, db) = core.backward(&xd, &g, need_dx, &saved)?;
            let dx = dx.map(|v| Tensor::from_vec(v, dims.as_slice(), &cpu)).transpose()?;
            Ok((dx, Some(da), Some(db)))
        }),
        Some(r) => {
            let res_dims = r.dims().to_vec();
            attach3("lora-linear-residual", (r, x, &packed(a, b)?), Out::cpu(y, out_dims), move |_res, g| {
                let g = g.reshape((core.rows, core.out_f))?.contiguous()?;
                let (dx, da, db) = core.backward(&xd, &g, need_dx, &saved)?;
                let dx = dx.map(|v| Tensor::from_vec(v, dims.as_slice(), &cpu)).transpose()?;
                Ok((Some(g.reshape(res_dims.as_slice())?), dx, Some(packed_grad(&da, &db)?)))
            })
        }
    }
}

/// `lora_linear(silu(gate) · up, …)`, the gated MLP's activation and its down projection, as one
/// node: the activation, as wide as the MLP, is made again in the backward pass instead of kept.
pub fn swiglu_lora_linear(gate: &Tensor, up: &Tensor, base: &FrozenLinear, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<Dropout>) -> Result<Tensor> {
    let tracked = gate.track_op() || up.track_op() || a.track_op() || b.track_op();
    if !(tracked && [gate, up, a, b].into_iter().all(fused::applies) && gate.dims() == up.dims()) {
        return lora_linear(&swiglu(gate, up)?, base, a, b, scale, dropout);
    }
    let dims = gate.dims().to_vec();
    let in_f = *dims.last().unwrap_or(&0);
    let rows = gate.elem_count() / in_f.max(1);
    let core = LoraCpu::new(base, a, b, scale, dropout, rows, in_f)?;
    let (g, u) = (gate.detach().contiguous()?, up.detach().contiguous()?);
    let activation = move |g: &Tensor, u: &Tensor| -> Result<Tensor> {
        let m = fused::slice_of(g, |gv| fused::slice_of(u, |uv| fused::swiglu(gv, uv)))??;
        Tensor::from_vec(m, (rows, in_f), &candle_core::Device::Cpu)
    };
    let (y, saved) = core.forward(&activation(&g, &u)?, None)?;
    let mut out_dims = dims.clone();
    *out_dims.last_mut().expect("linear input has a last dimension") = core.out_f;
    let need_dx = gate.track_op() || up.track_op();
    attach3("swiglu-lora-linear", (gate, up, &packed(a, b)?), Out::cpu(y, out_dims), move |_res, grad| {
        let grad = grad.reshape((core.rows, core.out_f))?.contiguous()?;
        let (dm, da, db) = core.backward(&activation(&g, &u)?, &grad, need_dx, &saved)?;
        let (dg, du) = match dm {
            Some(dm) => {
                let (dg, du) = fused::slice_of(&g, |gv| fused::slice_of(&u, |uv| fused::swiglu_backward(gv, uv, &dm)))??;
                let cpu = candle_core::Device::Cpu;
                (Some(Tensor::from_vec(dg, dims.as_slice(), &cpu)?), Some(Tensor::from_vec(du, dims.as_slice(), &cpu)?))
            }
            None => (None, None),
        };
        Ok((dg, du, Some(packed_grad(&da, &db)?)))
    })
}

/// `res + lora_linear(x, …)`, a residual connection closed by the adapted projection, as one node:
/// the projection's own output is never kept, and the product adds straight into the residual
/// stream.
pub fn lora_linear_residual(res: &Tensor, x: &Tensor, base: &FrozenLinear, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<Dropout>) -> Result<Tensor> {
    let tracked = res.track_op() || x.track_op() || a.track_op() || b.track_op();
    if tracked && [res, x, a, b].into_iter().all(fused::applies) && base.out_features() == *res.dims().last().unwrap_or(&0) {
        return lora_linear_cpu(x, base, a, b, scale, dropout, Some(res));
    }
    residual(res, &lora_linear(x, base, a, b, scale, dropout)?)
}

/// `silu(gate) · up`, the gated MLP's activation, keeping only `gate` and `up` for the backward pass.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let (g, u) = (gate.detach(), up.detach());
    if fused::applies(&g) && fused::applies(&u) && g.dims() == u.dims() {
        let (g, u) = (g.contiguous()?, u.contiguous()?);
        let y = fused::slice_of(&g, |gv| fused::slice_of(&u, |uv| fused::swiglu(gv, uv)))??;
        let shape = g.shape().clone();
        return attach2("swiglu", (gate, up), Out::cpu(y, shape.clone()), move |_res, grad| {
            let (dg, du) = fused::slice_of(&g, |gv| {
                fused::slice_of(&u, |uv| fused::slice_of(grad, |gr| fused::swiglu_backward(gv, uv, gr)))
            })???;
            let dev = candle_core::Device::Cpu;
            Ok((Some(Tensor::from_vec(dg, shape.clone(), &dev)?), Some(Tensor::from_vec(du, shape.clone(), &dev)?)))
        });
    }
    let y = (g.silu()? * &u)?;
    attach2("swiglu", (gate, up), y, move |_res, grad| {
        let sig = candle_nn::ops::sigmoid(&g)?;
        let silu = (&g * &sig)?;
        // d silu / dz = σ(z) (1 + z (1 − σ(z)))
        let dsilu = (&sig * ((&g * (1.0 - &sig)?)? + 1.0)?)?;
        let dgate = ((grad * &u)? * dsilu)?;
        let dup = (grad * silu)?;
        Ok((Some(dgate), Some(dup)))
    })
}

/// `gelu_tanh(gate) · up`, Gemma's gated MLP, with GELU in PyTorch's tanh approximation
/// (`0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))`). Keeps only `gate` and `up` for the backward pass.
pub fn geglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let (g, u) = (gate.detach(), up.detach());
    let y = (g.gelu()? * &u)?;
    attach2("geglu", (gate, up), y, move |_res, grad| {
        const K: f64 = 0.797_884_560_802_865_4; // √(2/π)
        const C: f64 = 0.044_715;
        let internal = if g.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let z = g.to_dtype(internal)?;
        let z2 = z.sqr()?;
        let inner = ((&z + (&z * &z2)? * C)? * K)?;
        let th = inner.tanh()?;
        let gelu = ((&z * (&th + 1.0)?)? * 0.5)?;
        // d gelu / dz = ½(1 + tanh) + ½ z (1 − tanh²) √(2/π) (1 + 3C z²)
        let dinner = ((z2 * (3.0 * C))? + 1.0)? * K;
        let dgelu = (((&th + 1.0)? * 0.5)? + ((&z * (1.0 - th.sqr()?)?)? * dinner?)? * 0.5)?;
        let grad = grad.to_dtype(internal)?;
        let up = u.to_dtype(internal)?;
        let dgate = ((&grad * up)? * dgelu)?.to_dtype(g.dtype())?;
        let dup = (grad * gelu)?.to_dtype(u.dtype())?;
        Ok((Some(dgate), Some(dup)))
    })
}

/// `c · tanh(x / c)`, Gemma 2's soft cap, for logits outside the training loss (which caps inside
/// [`linear_cross_entropy_sum`]). Composed from ops candle differentiates.
pub fn softcap(x: &Tensor, cap: f64) -> Result<Tensor> {
    softcap_plain(x, cap)
}

/// `a + b` for a residual connection. candle's add keeps both operands alive for the backward pass,
/// which needs neither.
pub fn residual(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ad, bd) = (a.detach(), b.detach());
    let y: Out = if fused::applies(&ad) && fused::applies(&bd) && ad.dims() == bd.dims() {
        let (ad, bd) = (ad.contiguous()?, bd.contiguous()?);
        Out::cpu(fused::slice_of(&ad, |av| fused::slice_of(&bd, |bv| fused::add(av, bv)))??, ad.shape().clone())
    } else {
        (ad + bd)?.into()
    };
    attach2("residual", (a, b), y, |_res, grad| Ok((Some(grad.clone()), Some(grad.clone()))))
}

/// RMSNorm with a frozen weight: `x / sqrt(mean(x²) + eps) * w`.
///
/// A weight in another dtype than `x` (Gemma's `1 + weight`, held in f32) sets the dtype the norm is
/// computed in, as Gemma's `(x̂ · (1 + w)).to(dtype)` does, and the result is cast back to `x`'s.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if w.dtype() != x.dtype() {
        let y = rms_norm(&x.to_dtype(w.dtype())?, w, eps)?;
        return y.to_dtype(x.dtype());
    }
    let xd = x.detach();
    if fused::applies(&xd) && fused::applies(w) && xd.dims().last() == Some(&w.elem_count()) {
        let (xd, w) = (xd.contiguous()?, w.contiguous()?);
        let y = fused::slice_of(&xd, |xv| fused::slice_of(&w, |wv| fused::rms_norm(xv, wv, eps as f32)))??;
        let shape = xd.shape().clone();
        return attach1("rms-norm", x, Out::cpu(y, shape.clone()), move |_res, g| {
            let dx = fused::slice_of(&xd, |xv| {
                fused::slice_of(&w, |wv| fused::slice_of(g, |gv| fused::rms_norm_backward(xv, wv, gv, eps as f32)))
            })???;
            Tensor::from_vec(dx, shape.clone(), &candle_core::Device::Cpu)
        });
    }
    let y = if xd.dtype() == DType::F64 {
        // The fused kernel has no f64 variant; f64 is for numerical checks only.
        candle_nn::ops::rms_norm_slow(&xd, w, eps as f32)?
    } else {
        candle_nn::ops::rms_norm(&xd.contiguous()?, w, eps as f32)?
    };
    let w = w.clone();
    attach1("rms-norm", x, y, move |_res, g| {
        let internal = if xd.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let x = xd.to_dtype(internal)?;
        let g = g.to_dtype(internal)?;
        let w = w.to_dtype(internal)?;
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
        let xhat = x.broadcast_mul(&r)?;
        let gw = g.broadcast_mul(&w)?;
        let dot = (&gw * &xhat)?.mean_keepdim(D::Minus1)?;
        let dx = (gw - xhat.broadcast_mul(&dot)?)?.broadcast_mul(&r)?;
        dx.to_dtype(xd.dtype())
    })
}

/// Cosine and sine tables for rotary embeddings, with the negated sine the backward pass needs.
#[derive(Clone, Debug)]
pub struct RopeTable {
    pub cos: Tensor,
    pub sin: Tensor,
    neg_sin: Tensor,
}

impl RopeTable {
    /// Rows for positions `start..start+len`, each `[head_dim/2]`.
    pub fn new(inv_freq: &[f32], start: usize, len: usize, dtype: DType, dev: &candle_core::Device) -> Result<Self> {
        let half = inv_freq.len();
        let mut angles = Vec::with_capacity(len * half);
        for p in start..start + len {
            for f in inv_freq {
                angles.push(p as f32 * f);
            }
        }
        let a = Tensor::from_vec(angles, (len, half), dev)?;
        let cos = a.cos()?.to_dtype(dtype)?;
        let sin = a.sin()?.to_dtype(dtype)?;
        let neg_sin = sin.neg()?;
        Ok(Self { cos, sin, neg_sin })
    }
}

/// Rotary embedding in HF's `rotate_half` layout on `[batch, seq, heads, head_dim]`, the layout the
/// projections produce, so no transposed copy is made for it.
pub fn rope(x: &Tensor, table: &RopeTable) -> Result<Tensor> {
    let y = candle_nn::rotary_emb::rope_thd(&x.detach().contiguous()?, &table.cos, &table.sin)?;
    let (cos, neg_sin) = (table.cos.clone(), table.neg_sin.clone());
    // The rotation's transpose is the rotation by the opposite angle.
    attach1("rope", x, y, move |_res, g| candle_nn::rotary_emb::rope_thd(&g.contiguous()?, &cos, &neg_sin))
}

/// How attention scores are formed from `q·kᵀ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    /// Multiplies `q·kᵀ`: `head_dim^-1/2`, or Gemma 2's `query_pre_attn_scalar^-1/2`.
    pub scale: f64,
    /// Gemma 2: scores become `c · tanh(score / c)` before the mask is added.
    pub softcap: Option<f64>,
}

impl ScoreOptions {
    pub fn plain(head_dim: usize) -> Self {
        Self { scale: 1.0 / (head_dim as f64).sqrt(), softcap: None }
    }
}

/// Causal self-attention with grouped key/value heads and `1/sqrt(head_dim)` scores; see
/// [`attention_with`].
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&AttnMask>) -> Result<Tensor> {
    attention_with(q, k, v, mask, ScoreOptions::plain(q.dim(3)?))
}

/// Causal self-attention with grouped key/value heads.
///
/// `q`: `[b, t, h, d]`, `k`/`v`: `[b, s, kv, d]` (the projections' own layout), `mask`: a rule, or
/// an additive table broadcastable to `[b, 1, 1, t, s]` (or `None` for a single query attending to
/// everything). Returns
/// `[b, t, h·d]`, ready for the output projection. Head-major copies are made outside the graph, and
/// the probabilities are recomputed in the backward pass instead of being kept: they are the largest
/// activation of a block.
pub fn attention_with(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&AttnMask>, opts: ScoreOptions) -> Result<Tensor> {
    if [q, k, v].into_iter().all(fused::applies) && mask.is_none_or(cpu_mask) {
        return attention_cpu(q, k, v, mask, None, opts);
    }
    let mask = mask.map(AttnMask::as_table).transpose()?;
    let (b, t, h, d) = q.dims4()?;
    let s = k.dim(1)?;
    let kv = k.dim(2)?;
    let groups = h / kv;
    let scale = opts.scale;
    let softcap = opts.softcap;
    // Head-major: q as [b, kv, groups·t, d] (head h = kv·groups + g, as HF's repeat_kv), k/v as [b, kv, s, d].
    let qh = q.detach().transpose(1, 2)?.contiguous()?.reshape((b, kv, groups * t, d))?;
    let kh = k.detach().transpose(1, 2)?.contiguous()?;
    let vh = v.detach().transpose(1, 2)?.contiguous()?;
    let plain_probs = move |qh: &Tensor, kh: &Tensor, mask: Option<&Tensor>| -> Result<Tensor> {
        let scores = (mm(qh, &kh.t()?)? * scale)?.reshape((b, kv, groups, t, s))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores.contiguous()?)?.reshape((b, kv, groups * t, s))
    };
    // With a soft cap the scores are capped first and the softmax scale is 1. Returns the
    // probabilities and, when capped, `tanh(score / c)` for the backward pass.
    let probs = move |qh: &Tensor, kh: &Tensor, mask: Option<&Tensor>| -> Result<(Tensor, Option<Tensor>)> {
        if let Some(c) = softcap {
            let th = (((mm(qh, &kh.t()?)? * scale)? / c)?.tanh()?).reshape((b, kv, groups, t, s))?;
            let capped = (&th * c)?;
            let sc = match mask {
                Some(m) => capped.broadcast_add(m)?,
                None => capped,
            };
            let p = candle_nn::ops::softmax_last_dim(&sc.contiguous()?)?;
            return Ok((p.reshape((b, kv, groups * t, s))?, Some(th.reshape((b, kv, groups * t, s))?)));
        }
        Ok((plain_probs(qh, kh, mask)?, None))
    };
    let (p, _) = probs(&qh, &kh, mask)?;
    let to_tokens = move |x: &Tensor| -> Result<Tensor> {
        // [b, kv, groups·t, d] → [b, t, h·d]
        x.reshape((b, h, t, d))?.transpose(1, 2)?.contiguous()?.reshape((b, t, h * d))
    };
    let out = to_tokens(&mm(&p, &vh)?)?;
    drop((p, qh, kh, vh));
    let (qd, kd, vd) = (q.detach(), k.detach(), v.detach());
    let mask = mask.cloned();
    attach3("attention", (q, k, v), out, move |_res, g| {
        let qh = qd.transpose(1, 2)?.contiguous()?.reshape((b, kv, groups * t, d))?;
        let kh = kd.transpose(1, 2)?.contiguous()?;
        let vh = vd.transpose(1, 2)?.contiguous()?;
        let (p, th) = probs(&qh, &kh, mask.as_ref())?;
        let g5 = g.reshape((b, t, h, d))?.transpose(1, 2)?.contiguous()?.reshape((b, kv, groups * t, d))?;
        let dv = mm(&p.t()?, &g5)?;
        let dp = mm(&g5, &vh.t()?)?;
        let dot = (&dp * &p)?.sum_keepdim(D::Minus1)?;
        let ds = (p * dp.broadcast_sub(&dot)?)?;
        // Through the cap: d(c·tanh(x/c))/dx = 1 − tanh².
        let ds = match th {
            Some(th) => (ds * (1.0 - th.sqr()?)?)?,
            None => ds,
        };
        let dq = (mm(&ds, &kh)? * scale)?.reshape((b, h, t, d))?.transpose(1, 2)?.contiguous()?;
        let dk = (mm(&ds.t()?, &qh)? * scale)?.transpose(1, 2)?.contiguous()?;
        let dv = dv.transpose(1, 2)?.contiguous()?;
        Ok((Some(dq), Some(dk), Some(dv)))
    })
}

/// [`rope`] on `q` and `k`, then [`attention`], as one node: the rotated `q` and `k` are made again in
/// the backward pass instead of being kept, so a block keeps two fewer of its activations. `k` has
/// as many positions as `q` (no cache).
pub fn rope_attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&AttnMask>, table: &RopeTable, opts: ScoreOptions) -> Result<Tensor> {
    if [q, k, v].into_iter().all(fused::applies) && mask.is_none_or(cpu_mask) && q.dim(1)? == k.dim(1)? {
        return attention_cpu(q, k, v, mask, Some(table.clone()), opts);
    }
    attention_with(&rope(q, table)?, &rope(k, table)?, v, mask, opts)
}

/// Whether the CPU kernel can read `mask`: a rule always, a table when it is on the CPU.
fn cpu_mask(mask: &AttnMask) -> bool {
    mask.as_rule().is_some() || mask.as_table().is_ok_and(|t| t.device().is_cpu())
}

/// [`attention`] in f32 on the CPU through [`crate::attention`]'s blocked kernel: memory grows
/// linearly with the sequence, the keys a tile of queries cannot see are never multiplied, and the
/// backward pass needs only the inputs, the output and one log-sum-exp per row.
fn attention_cpu(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&AttnMask>, table: Option<RopeTable>, opts: ScoreOptions) -> Result<Tensor> {
    let (b, t, h, d) = q.dims4()?;
    let (s, kv) = (k.dim(1)?, k.dim(2)?);
    if kv == 0 || h % kv != 0 {
        candle_core::bail!("attention: {h} query heads cannot share {kv} key/value heads");
    }
    let dims = attention::Dims { b, t, s, h, kv, d, scale: opts.scale as f32, softcap: opts.softcap.map(|c| c as f32) };
    let mask = mask.cloned();
    let cpu = candle_core::Device::Cpu;
    let (qd, kd, vd) = (q.detach().contiguous()?, k.detach().contiguous()?, v.detach().contiguous()?);
    // With a rope table, `q` and `k` come unrotated; the rotation's transpose (the opposite angle)
    // takes their gradients back.
    let rotate = move |x: &Tensor, table: &Option<RopeTable>| -> Result<Tensor> {
        match table {
            Some(tb) => candle_nn::rotary_emb::rope_thd(x, &tb.cos, &tb.sin),
            None => Ok(x.clone()),
        }
    };
    let unrotate = move |x: Tensor, table: &Option<RopeTable>| -> Result<Tensor> {
        match table {
            Some(tb) => candle_nn::rotary_emb::rope_thd(&x, &tb.cos, &tb.neg_sin),
            None => Ok(x),
        }
    };
    // k and v heads-major, [b, kv, s, d], so each head's keys are one matrix.
    let heads = move |x: &Tensor| fused::slice_of(x, |xv| fused::swap_middle(xv, (b, s, kv, d), 1.0));
    let qr = rotate(&qd, &table)?;
    let (km, vm) = (heads(&rotate(&kd, &table)?)?, heads(&vd)?);
    let (out, lses) = fused::slice_of(&qr, |qv| attention::forward(&dims, mask.as_ref(), qv, &km, &vm))??;
    drop((qr, km, vm));
    attach3("attention", (q, k, v), Out::cpu(out, (b, t, h * d)), move |res, g| {
        let (g, res) = (g.contiguous()?, res.contiguous()?);
        let qr = rotate(&qd, &table)?;
        let (km, vm) = (heads(&rotate(&kd, &table)?)?, heads(&vd)?);
        let (dq, dk, dv) = fused::slice_of(&qr, |qv| {
            fused::slice_of(&res, |ov| fused::slice_of(&g, |gv| attention::backward(&dims, mask.as_ref(), &lses, qv, &km, &vm, ov, gv)))
        })????;
        // Heads-major [b, kv, s, d] back to the projections' [b, s, kv, d].
        let back = |x: Vec<f32>| -> Result<Tensor> { Tensor::from_vec(fused::swap_middle(&x, (b, kv, s, d), 1.0), (b, s, kv, d), &cpu) };
        let dq = unrotate(Tensor::from_vec(dq, (b, t, h, d), &cpu)?, &table)?;
        let dk = unrotate(back(dk)?, &table)?;
        Ok((Some(dq), Some(dk), Some(back(dv)?)))
    })
}

/// Rows of logits handled at once by [`linear_cross_entropy_sum`]: `[ROWS, vocab]` f32 is 24 MiB for a
/// 49k vocabulary.
const CE_CHUNK_ROWS: usize = 128;

/// Summed cross-entropy of `hs Wᵀ` (`hs`: `[n, hidden]`, frozen `w`: `[vocab, hidden]`) against `targets`,
/// without ever holding all `[n, vocab]` logits: they are made a chunk of rows at a time in the forward
/// pass and again in the backward pass. With a 49k vocabulary the full logits, their softmax and its
/// gradient were the largest allocations of a training step.
pub fn linear_cross_entropy_sum(hs: &Tensor, w: &Tensor, targets: &Tensor) -> Result<Tensor> {
    linear_cross_entropy_sum_capped(hs, w, targets, None)
}

/// [`linear_cross_entropy_sum`] of logits soft-capped to `c · tanh(logit / c)` first (Gemma 2's
/// `final_logit_softcapping`, under which transformers takes its loss too).
pub fn linear_cross_entropy_sum_capped(hs: &Tensor, w: &Tensor, targets: &Tensor, softcap: Option<f64>) -> Result<Tensor> {
    if crate::fused::applies(hs) && crate::fused::applies(w) {
        return linear_cross_entropy_sum_fused(hs, w, targets, softcap.map(|c| c as f32));
    }
    let n = hs.dim(0)?;
    let hd = hs.detach();
    let internal = if hs.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let chunks: Vec<(usize, usize)> = (0..n).step_by(CE_CHUNK_ROWS).map(|s| (s, CE_CHUNK_ROWS.min(n - s))).collect();
    let chunk_logits = move |hd: &Tensor, w: &Tensor, start: usize, len: usize| -> Result<Tensor> {
        let logits = mm(&hd.narrow(0, start, len)?, &w.t()?)?.to_dtype(internal)?;
        match softcap {
            Some(c) => softcap_plain(&logits, c),
            None => Ok(logits),
        }
    };
    let mut total: Option<Tensor> = None;
    for &(start, len) in &chunks {
        let logits = chunk_logits(&hd, w, start, len)?;
        let tg = targets.narrow(0, start, len)?;
        let picked = logits.gather(&tg.unsqueeze(1)?, 1)?.squeeze(1)?;
        let part = (logsumexp(&logits)? - picked)?.sum_all()?;
        total = Some(match total {
            None => part,
            Some(t) => (t + part)?,
        });
    }
    let loss = match total {
        Some(t) => t,
        None => Tensor::zeros((), internal, hs.device())?,
    };
    let (w, targets) = (w.clone(), targets.clone());
    attach1("linear-cross-entropy", hs, loss, move |_res, g| {
        let mut parts = Vec::with_capacity(chunks.len());
        for &(start, len) in &chunks {
            let logits = chunk_logits(&hd, &w, start, len)?;
            let tg = targets.narrow(0, start, len)?.unsqueeze(1)?;
            let p = candle_nn::ops::softmax_last_dim(&logits)?;
            let minus_one = Tensor::full(-1f64, (len, 1), p.device())?.to_dtype(internal)?;
            let mut dlogits = p.scatter_add(&tg, &minus_one, 1)?.broadcast_mul(&g.to_dtype(internal)?)?;
            if let Some(c) = softcap {
                dlogits = (dlogits * (1.0 - (&logits / c)?.sqr()?)?)?;
            }
            parts.push(mm(&dlogits.to_dtype(hd.dtype())?, &w)?);
        }
        Tensor::cat(&parts, 0)
    })
}

fn softcap_plain(x: &Tensor, cap: f64) -> Result<Tensor> {
    (x / cap)?.tanh()? * cap
}

/// [`linear_cross_entropy_sum`] for f32 on the CPU: each chunk's logits are made once in the forward
/// pass (keeping only each row's log-sum-exp) and once in the backward pass, where they are turned into
/// their gradient in place.
fn linear_cross_entropy_sum_fused(hs: &Tensor, w: &Tensor, targets: &Tensor, softcap: Option<f32>) -> Result<Tensor> {
    let n = hs.dim(0)?;
    let vocab = w.dim(0)?;
    let hd = hs.detach();
    let tg: Vec<u32> = targets.to_dtype(DType::U32)?.to_vec1()?;
    if let Some(&bad) = tg.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("cross-entropy: target token {bad} is outside the vocabulary of {vocab}");
    }
    let need_grad = hs.track_op();
    let mut total = 0f64;
    // The gradient of the summed loss for `hs`, made while each chunk's logits are at hand: the
    // backward pass then only scales it, instead of making the logits a second time.
    let mut dh: Vec<f32> = Vec::with_capacity(if need_grad { hd.elem_count() } else { 0 });
    for start in (0..n).step_by(CE_CHUNK_ROWS) {
        let len = CE_CHUNK_ROWS.min(n - start);
        let (mut logits, shape) = crate::blas::matmul_vec(&hd.narrow(0, start, len)?, &w.t()?)?;
        if let Some(c) = softcap {
            fused::softcap_in_place(&mut logits, c);
        }
        let (lse, loss) = fused::cross_entropy_rows(&logits, vocab, &tg[start..start + len]);
        total += loss;
        if need_grad {
            let targets = &tg[start..start + len];
            match softcap {
                Some(c) => fused::cross_entropy_grad_in_place_capped(&mut logits, vocab, &lse, targets, 1.0, c),
                None => fused::cross_entropy_grad_in_place(&mut logits, vocab, &lse, targets, 1.0),
            }
            let (part, _) = crate::blas::matmul_vec(&Tensor::from_vec(logits, shape, hd.device())?, w)?;
            dh.extend_from_slice(&part);
        }
    }
    let loss = Tensor::new(total as f32, hs.device())?;
    let shape = hd.shape().clone();
    let dh = std::sync::Arc::new(dh);
    attach1("linear-cross-entropy", hs, loss, move |_res, g| {
        let g = g.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let scaled: Vec<f32> = dh.iter().map(|v| v * g).collect();
        Tensor::from_vec(scaled, shape.clone(), &candle_core::Device::Cpu)
    })
}

/// Row-wise log-sum-exp in f32.
pub fn logsumexp(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?.log()?;
    (e + m)?.squeeze(D::Minus1)
}
