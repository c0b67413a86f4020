//! Differentiable building blocks for training.
//!
//! candle applies its fused kernels (`rms_norm`, `rope`, `softmax_last_dim`) without a backward pass and
//! its `matmul` backward also computes a gradient for frozen weights. Each op here computes its forward
//! without a graph — free to use the fused kernels — and attaches the result to its inputs through a
//! custom op whose backward is written by hand and returns gradients for the inputs only.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, D};
use crate::blas::matmul as mm;
use crate::quant::{FrozenWeight, QuantWeight};
use std::sync::Mutex;

type Bwd1 = dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync;
type Bwd2 = dyn Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync;
type Bwd3 = dyn Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> + Send + Sync;

/// Holds a result computed outside the graph until the custom op's forward hands it over; the op keeps
/// only its inputs afterwards, as a native op would.
struct Precomputed(Mutex<Option<Tensor>>);

impl Precomputed {
    fn new(out: Tensor) -> Result<Self> {
        let out = if out.is_contiguous() && out.layout().start_offset() == 0 { out } else { out.force_contiguous()? };
        Ok(Self(Mutex::new(Some(out.detach()))))
    }

    fn take(&self) -> Result<Tensor> {
        self.0
            .lock()
            .map_err(|_| candle_core::Error::Msg("precomputed result lock poisoned".into()))?
            .take()
            .ok_or_else(|| candle_core::Error::Msg("precomputed result used twice".into()))
    }

    fn cpu(&self) -> Result<(CpuStorage, Shape)> {
        let t = self.take()?;
        let (st, l) = t.storage_and_layout();
        match &*st {
            Storage::Cpu(s) => Ok((s.try_clone(l)?, l.shape().clone())),
            _ => candle_core::bail!("precomputed result is not on the cpu"),
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
    out: Tensor,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(out);
    }
    x.apply_op1(Attach1 { name, out: Precomputed::new(out)?, bwd: Box::new(bwd) })
}

fn attach2(
    name: &'static str,
    (a, b): (&Tensor, &Tensor),
    out: Tensor,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> + Send + Sync + 'static,
) -> Result<Tensor> {
    let (ta, tb) = (a.track_op(), b.track_op());
    if !(ta || tb) {
        return Ok(out);
    }
    // A gradient for an input outside the graph would only be stored and never used.
    let bwd = move |res: &Tensor, g: &Tensor| {
        let (x, y) = bwd(res, g)?;
        Ok((x.filter(|_| ta), y.filter(|_| tb)))
    };
    a.apply_op2(b, Attach2 { name, out: Precomputed::new(out)?, bwd: Box::new(bwd) })
}

fn attach3(
    name: &'static str,
    (a, b, c): (&Tensor, &Tensor, &Tensor),
    out: Tensor,
    bwd: impl Fn(&Tensor, &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> + Send + Sync + 'static,
) -> Result<Tensor> {
    let (ta, tb, tc) = (a.track_op(), b.track_op(), c.track_op());
    if !(ta || tb || tc) {
        return Ok(out);
    }
    let bwd = move |res: &Tensor, g: &Tensor| {
        let (x, y, z) = bwd(res, g)?;
        Ok((x.filter(|_| ta), y.filter(|_| tb), z.filter(|_| tc)))
    };
    a.apply_op3(b, c, Attach3 { name, out: Precomputed::new(out)?, bwd: Box::new(bwd) })
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
/// `a` is `[r, in]`, `b` is `[out, r]`, `mask` the dropout mask already scaled by `1/(1-p)`. Composed
/// from plain ops, every intermediate (the base output, the low-rank product, the sum) would stay alive
/// until the backward pass; this node keeps only its inputs and recomputes `x Aᵀ`, which is `r` wide.
pub fn lora_linear(x: &Tensor, base: &FrozenLinear, a: &Tensor, b: &Tensor, scale: f64, mask: Option<Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let in_f = *dims.last().unwrap_or(&0);
    let rows = x.elem_count() / in_f.max(1);
    let out_f = base.out_features();
    let xd = x.detach().reshape((rows, in_f))?;
    let mask = match mask {
        Some(m) => Some(m.reshape((rows, in_f))?),
        None => None,
    };
    let (ad, bd) = (a.detach(), b.detach());
    let xin = match &mask {
        Some(m) => (&xd * m)?,
        None => xd.clone(),
    };
    let tracked = x.track_op() || a.track_op() || b.track_op();
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

/// `silu(gate) · up`, the gated MLP's activation, keeping only `gate` and `up` for the backward pass.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let (g, u) = (gate.detach(), up.detach());
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
    let y = (a.detach() + b.detach())?;
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
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    attention_with(q, k, v, mask, ScoreOptions::plain(q.dim(3)?))
}

/// Causal self-attention with grouped key/value heads.
///
/// `q`: `[b, t, h, d]`, `k`/`v`: `[b, s, kv, d]` (the projections' own layout), `mask`: additive,
/// broadcastable to `[b, 1, 1, t, s]` (or `None` for a single query attending to everything). Returns
/// `[b, t, h·d]`, ready for the output projection. Head-major copies are made outside the graph, and
/// the probabilities are recomputed in the backward pass instead of being kept: they are the largest
/// activation of a block.
pub fn attention_with(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, opts: ScoreOptions) -> Result<Tensor> {
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
        if crate::fused::applies(qh) && mask.is_none_or(crate::fused::applies) {
            let scores = mm(qh, &kh.t()?)?.reshape((b, kv, groups, t, s))?;
            return crate::fused::masked_softmax(&scores, scale as f32, mask)?.reshape((b, kv, groups * t, s));
        }
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
            let p = if crate::fused::applies(&capped) && mask.is_none_or(crate::fused::applies) {
                crate::fused::masked_softmax(&capped, 1.0, mask)?
            } else {
                let sc = match mask {
                    Some(m) => capped.broadcast_add(m)?,
                    None => capped,
                };
                candle_nn::ops::softmax_last_dim(&sc.contiguous()?)?
            };
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

/// Rows of logits handled at once by [`linear_cross_entropy_sum`]: `[ROWS, vocab]` f32 is 48 MiB for a
/// 49k vocabulary.
const CE_CHUNK_ROWS: usize = 256;

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
    let chunks: Vec<(usize, usize)> = (0..n).step_by(CE_CHUNK_ROWS).map(|s| (s, CE_CHUNK_ROWS.min(n - s))).collect();
    let mut lse = Vec::with_capacity(n);
    let mut total = 0f64;
    for &(start, len) in &chunks {
        let (mut logits, _) = crate::blas::matmul_vec(&hd.narrow(0, start, len)?, &w.t()?)?;
        if let Some(c) = softcap {
            crate::fused::softcap_in_place(&mut logits, c);
        }
        let (l, loss) = crate::fused::cross_entropy_rows(&logits, vocab, &tg[start..start + len]);
        lse.extend(l);
        total += loss;
    }
    let loss = Tensor::new(total as f32, hs.device())?;
    let w = w.clone();
    attach1("linear-cross-entropy", hs, loss, move |_res, g| {
        let g = g.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let mut parts = Vec::with_capacity(chunks.len());
        for &(start, len) in &chunks {
            let (mut logits, shape) = crate::blas::matmul_vec(&hd.narrow(0, start, len)?, &w.t()?)?;
            let (l, t) = (&lse[start..start + len], &tg[start..start + len]);
            match softcap {
                Some(c) => {
                    crate::fused::softcap_in_place(&mut logits, c);
                    crate::fused::cross_entropy_grad_in_place_capped(&mut logits, vocab, l, t, g, c);
                }
                None => crate::fused::cross_entropy_grad_in_place(&mut logits, vocab, l, t, g),
            }
            parts.push(mm(&Tensor::from_vec(logits, shape, hd.device())?, &w)?);
        }
        if parts.is_empty() {
            return hd.zeros_like();
        }
        Tensor::cat(&parts, 0)
    })
}

/// Row-wise log-sum-exp in f32.
pub fn logsumexp(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?.log()?;
    (e + m)?.squeeze(D::Minus1)
}
