//! The decoder (Llama 2/3, Mistral, Qwen2, SmolLM, Gemma, Gemma 2) written for training: every op has a
//! backward, logits come out for every position, and the frozen base never gets a gradient.

use crate::attention::{AttnMask, MaskRule};
use crate::config::{Activation, ModelConfig};
use crate::error::{Error, Result};
use crate::fused::Dropout;
use crate::lora::{Adapter, Target};
use crate::ops::{self, FrozenLinear, RopeTable};
use crate::quant::{FrozenWeight, QuantMode};
use crate::rng::Rng;
use crate::weights::{BaseWeights, ModelFiles};
use candle_core::{DType, Device, Tensor};

pub struct Block {
    pub input_norm: Tensor,
    /// The norm before the MLP: HF's `post_attention_layernorm`, except in Gemma 2, where it is
    /// `pre_feedforward_layernorm`.
    pub post_norm: Tensor,
    /// Gemma 2: the norm of the attention's output before the residual sum (HF's `post_attention_layernorm`).
    pub attn_out_norm: Option<Tensor>,
    /// Gemma 2: the norm of the MLP's output before the residual sum (`post_feedforward_layernorm`).
    pub mlp_out_norm: Option<Tensor>,
    pub q: FrozenLinear,
    pub k: FrozenLinear,
    pub v: FrozenLinear,
    pub o: FrozenLinear,
    pub gate: FrozenLinear,
    pub up: FrozenLinear,
    pub down: FrozenLinear,
}

impl Block {
    pub fn linear(&self, t: Target) -> &FrozenLinear {
        match t {
            Target::Q => &self.q,
            Target::K => &self.k,
            Target::V => &self.v,
            Target::O => &self.o,
            Target::Gate => &self.gate,
            Target::Up => &self.up,
            Target::Down => &self.down,
        }
    }
}

/// Memory of the base weights: quantized linear layers apart from everything held dense.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaseMemory {
    pub linear_params: usize,
    pub linear_bytes: usize,
    pub dense_params: usize,
    pub dense_bytes: usize,
    /// Quantized formats in use (`nf4`, `q4_1`...).
    pub kinds: std::collections::BTreeSet<String>,
}

impl BaseMemory {
    pub fn bytes_per_param(&self) -> f64 {
        (self.linear_bytes + self.dense_bytes) as f64 / (self.linear_params + self.dense_params).max(1) as f64
    }

    /// Bytes per parameter of the quantized linear layers alone.
    pub fn linear_bytes_per_param(&self) -> f64 {
        self.linear_bytes as f64 / self.linear_params.max(1) as f64
    }
}

pub struct Decoder {
    pub config: ModelConfig,
    pub embed: Tensor,
    pub blocks: Vec<Block>,
    pub norm: Tensor,
    pub lm_head: FrozenLinear,
    pub dtype: DType,
    pub device: Device,
    inv_freq: Vec<f32>,
}

/// How adapters take part in a forward pass.
pub struct LoraCtx<'a> {
    pub adapter: &'a Adapter,
    /// Record gradients for the adapter (training) or use its values only (evaluation, generation).
    pub train: bool,
    /// Dropout on the adapter input; `None` turns it off (evaluation).
    pub dropout: Option<&'a std::cell::RefCell<Rng>>,
}

/// Keys and values of past positions, one pair per block, for generation.
#[derive(Default)]
pub struct KvCache {
    pub layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map(|(k, _)| k.dim(1).unwrap_or(0)).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lin(w: &mut BaseWeights, name: &str, bias: bool) -> Result<FrozenLinear> {
    let key = format!("{name}.weight");
    let b = if bias { w.take_opt(&format!("{name}.bias")) } else { None };
    if let Some(q) = w.quantized.remove(&key) {
        return Ok(FrozenLinear::quantized(q, b));
    }
    Ok(FrozenLinear::new(w.take(&key)?, b))
}

fn check(name: &str, dims: &[usize], expected: &[usize]) -> Result<()> {
    if dims != expected {
        return Err(Error::TensorShape { name: name.into(), expected: expected.to_vec(), actual: dims.to_vec() });
    }
    Ok(())
}

impl Decoder {
    pub fn load(files: &ModelFiles, dtype: DType, device: &Device) -> Result<Self> {
        let w = BaseWeights::load(files, dtype, device)?;
        Self::from_weights(w)
    }

    /// Loads with the blocks' linear weights held as `quant` says (see [`BaseWeights::load_quant`]).
    pub fn load_quant(files: &ModelFiles, dtype: DType, device: &Device, quant: QuantMode) -> Result<Self> {
        Self::from_weights(BaseWeights::load_quant(files, dtype, device, quant)?)
    }

    /// What the base weights take in memory.
    pub fn base_memory(&self) -> BaseMemory {
        let mut m = BaseMemory::default();
        let dense = |t: &Tensor, m: &mut BaseMemory| {
            m.dense_params += t.elem_count();
            m.dense_bytes += t.elem_count() * t.dtype().size_in_bytes();
        };
        dense(&self.embed, &mut m);
        dense(&self.norm, &mut m);
        if !self.config.tie_word_embeddings {
            if let Some(t) = self.lm_head.dense() {
                dense(t, &mut m);
            }
        }
        for b in &self.blocks {
            dense(&b.input_norm, &mut m);
            dense(&b.post_norm, &mut m);
            for n in [&b.attn_out_norm, &b.mlp_out_norm].into_iter().flatten() {
                dense(n, &mut m);
            }
            for t in Target::ALL {
                let lin = b.linear(t);
                let n: usize = lin.dims().iter().product();
                match &lin.weight {
                    FrozenWeight::Dense(w) => dense(w, &mut m),
                    FrozenWeight::Quantized(q) => {
                        m.linear_params += n;
                        m.linear_bytes += q.storage_bytes();
                        m.kinds.insert(q.kind());
                    }
                }
                if let Some(bias) = &lin.bias {
                    dense(bias, &mut m);
                }
            }
        }
        m
    }

    pub fn from_weights(mut w: BaseWeights) -> Result<Self> {
        let cfg = w.config.clone();
        let gemma = cfg.architecture.is_gemma();
        // Gemma's RMSNorm multiplies by `1 + weight`, computed in f32 as transformers does; the sum is
        // made once here and held in f32, which also makes the norm itself run in f32.
        let norm = |w: &mut BaseWeights, name: &str| -> Result<Tensor> {
            let t = w.take(name)?;
            check(name, t.dims(), &[cfg.hidden_size])?;
            // f64 models (numerical checks) keep their precision.
            let wide = if t.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
            Ok(if gemma { (t.to_dtype(wide)? + 1.0)? } else { t })
        };
        let embed = w.take("model.embed_tokens.weight")?;
        check("model.embed_tokens.weight", embed.dims(), &[cfg.vocab_size, cfg.hidden_size])?;
        let dtype = embed.dtype();
        let device = embed.device().clone();
        let mut blocks = Vec::with_capacity(cfg.num_layers);
        let q_dim = cfg.num_heads * cfg.head_dim;
        let kv_dim = cfg.num_kv_heads * cfg.head_dim;
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            let (post_norm, attn_out_norm, mlp_out_norm) = if cfg.architecture.has_output_norms() {
                (
                    norm(&mut w, &format!("{p}.pre_feedforward_layernorm.weight"))?,
                    Some(norm(&mut w, &format!("{p}.post_attention_layernorm.weight"))?),
                    Some(norm(&mut w, &format!("{p}.post_feedforward_layernorm.weight"))?),
                )
            } else {
                (norm(&mut w, &format!("{p}.post_attention_layernorm.weight"))?, None, None)
            };
            let b = Block {
                input_norm: norm(&mut w, &format!("{p}.input_layernorm.weight"))?,
                post_norm,
                attn_out_norm,
                mlp_out_norm,
                q: lin(&mut w, &format!("{p}.self_attn.q_proj"), cfg.attention_bias)?,
                k: lin(&mut w, &format!("{p}.self_attn.k_proj"), cfg.attention_bias)?,
                v: lin(&mut w, &format!("{p}.self_attn.v_proj"), cfg.attention_bias)?,
                o: lin(&mut w, &format!("{p}.self_attn.o_proj"), false)?,
                gate: lin(&mut w, &format!("{p}.mlp.gate_proj"), false)?,
                up: lin(&mut w, &format!("{p}.mlp.up_proj"), false)?,
                down: lin(&mut w, &format!("{p}.mlp.down_proj"), false)?,
            };
            check(&format!("{p}.self_attn.q_proj.weight"), &b.q.dims(), &[q_dim, cfg.hidden_size])?;
            check(&format!("{p}.self_attn.k_proj.weight"), &b.k.dims(), &[kv_dim, cfg.hidden_size])?;
            check(&format!("{p}.self_attn.v_proj.weight"), &b.v.dims(), &[kv_dim, cfg.hidden_size])?;
            check(&format!("{p}.self_attn.o_proj.weight"), &b.o.dims(), &[cfg.hidden_size, q_dim])?;
            check(&format!("{p}.mlp.gate_proj.weight"), &b.gate.dims(), &[cfg.intermediate_size, cfg.hidden_size])?;
            check(&format!("{p}.mlp.up_proj.weight"), &b.up.dims(), &[cfg.intermediate_size, cfg.hidden_size])?;
            check(&format!("{p}.mlp.down_proj.weight"), &b.down.dims(), &[cfg.hidden_size, cfg.intermediate_size])?;
            blocks.push(b);
        }
        let norm = norm(&mut w, "model.norm.weight")?;
        let lm_head = match w.take_opt("lm_head.weight") {
            Some(t) if !cfg.tie_word_embeddings => t,
            _ => embed.clone(),
        };
        check("lm_head.weight", lm_head.dims(), &[cfg.vocab_size, cfg.hidden_size])?;
        let inv_freq = cfg.inv_freq();
        Ok(Self { config: cfg, embed, blocks, norm, lm_head: FrozenLinear::new(lm_head, None), dtype, device, inv_freq })
    }

    pub fn rope_table(&self, start: usize, len: usize) -> Result<RopeTable> {
        Ok(RopeTable::new(&self.inv_freq, start, len, self.dtype, &self.device)?)
    }

    /// The masks of every layer: causal, padding keys (mask 0) hidden, and for sliding-window
    /// layers also the keys `window` or more positions back (transformers' `kv_idx > q_idx -
    /// sliding_window`, llama.cpp's the same).
    pub fn attention_masks(&self, attention_mask: Option<&Tensor>, b: usize, t: usize, offset: usize) -> Result<LayerMasks> {
        let s = offset + t;
        let present = match attention_mask {
            None => None,
            Some(am) => Some(am.to_dtype(DType::F32)?.reshape((b, s))?.flatten_all()?.to_vec1::<f32>()?.into_iter().map(|v| v > 0.5).collect()),
        };
        let rule = |window| MaskRule { batch: b, queries: t, keys: s, offset, window, present: present.clone() };
        let full = AttnMask::rule(rule(None), self.dtype, &self.device);
        let sliding = match self.config.sliding_window {
            // A window that covers every key changes nothing.
            Some(w) if self.config.sliding_layers.iter().any(|&s| s) && s > w => Some(AttnMask::rule(rule(Some(w)), self.dtype, &self.device)),
            _ => None,
        };
        let layers = (0..self.blocks.len()).map(|i| self.config.window_of(i).is_some() && sliding.is_some()).collect();
        Ok(LayerMasks { full, sliding, layers })
    }

    fn adapted(&self, block: &Block, layer: usize, t: Target, x: &Tensor, lora: Option<&LoraCtx>) -> Result<Tensor> {
        self.adapted_onto(None, block, layer, t, x, lora)
    }

    /// The adapter on `t` of block `layer`, if any takes part: A, B, the scale and this product's
    /// dropout.
    fn adapter_for(&self, layer: usize, t: Target, dtype: DType, lora: Option<&LoraCtx>) -> Result<Option<(Tensor, Tensor, f64, Option<Dropout>)>> {
        let Some(ctx) = lora else { return Ok(None) };
        let Some(pair) = ctx.adapter.layers[layer].get(&t) else { return Ok(None) };
        let (a, b) = if ctx.train {
            (pair.a.as_tensor().clone(), pair.b.as_tensor().clone())
        } else {
            (pair.a.as_tensor().detach(), pair.b.as_tensor().detach())
        };
        let (a, b) = (a.to_dtype(dtype)?, b.to_dtype(dtype)?);
        let p = ctx.adapter.config.dropout;
        // One draw per product seeds its whole mask, so the rng advances the same however large `x` is.
        let dropout = match ctx.dropout {
            Some(rng) if p > 0.0 => Some(Dropout { seed: rng.borrow_mut().next_u64(), p }),
            _ => None,
        };
        Ok(Some((a, b, ctx.adapter.config.scale(), dropout)))
    }

    /// `res + projection(x)`, closing a residual connection; with an adapter, as one node (see
    /// [`ops::lora_linear_residual`]).
    fn adapted_onto(&self, res: Option<&Tensor>, block: &Block, layer: usize, t: Target, x: &Tensor, lora: Option<&LoraCtx>) -> Result<Tensor> {
        let linear = block.linear(t);
        Ok(match (self.adapter_for(layer, t, x.dtype(), lora)?, res) {
            (Some((a, b, scale, dropout)), Some(r)) => ops::lora_linear_residual(r, x, linear, &a, &b, scale, dropout)?,
            (Some((a, b, scale, dropout)), None) => ops::lora_linear(x, linear, &a, &b, scale, dropout)?,
            (None, Some(r)) => ops::residual(r, &linear.forward(x)?)?,
            (None, None) => linear.forward(x)?,
        })
    }

    /// The down projection of `silu(gate) · up`; with an adapter, as one node that does not keep the
    /// activation (see [`ops::swiglu_lora_linear`]).
    fn adapted_down(&self, block: &Block, layer: usize, gate: &Tensor, up: &Tensor, lora: Option<&LoraCtx>) -> Result<Tensor> {
        Ok(match self.adapter_for(layer, Target::Down, gate.dtype(), lora)? {
            Some((a, b, scale, dropout)) => ops::swiglu_lora_linear(gate, up, &block.down, &a, &b, scale, dropout)?,
            None => block.down.forward(&ops::swiglu(gate, up)?)?,
        })
    }

    /// One decoder block. With `cache`, keys and values are appended to it and attention spans them.
    pub fn block_forward(
        &self,
        layer: usize,
        x: &Tensor,
        rope: &RopeTable,
        mask: Option<&AttnMask>,
        lora: Option<&LoraCtx>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let blk = &self.blocks[layer];
        let (b, t, _) = x.dims3()?;
        let (h, kvh, d) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n = ops::rms_norm(x, &blk.input_norm, cfg.rms_norm_eps)?;
        let q = self.adapted(blk, layer, Target::Q, &n, lora)?;
        let k = self.adapted(blk, layer, Target::K, &n, lora)?;
        let v = self.adapted(blk, layer, Target::V, &n, lora)?;
        let (q, k, v) = (q.reshape((b, t, h, d))?, k.reshape((b, t, kvh, d))?, v.reshape((b, t, kvh, d))?);
        let scores = ops::ScoreOptions { scale: cfg.attention_scale(), softcap: cfg.attn_logit_softcapping };
        let a = match cache {
            Some(slot) => {
                let (q, k) = (ops::rope(&q, rope)?, ops::rope(&k, rope)?);
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 1)?, Tensor::cat(&[&pv, &v], 1)?),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                ops::attention_with(&q, &k, &v, mask, scores)?
            }
            None => ops::rope_attention(&q, &k, &v, mask, rope, scores)?,
        };
        // Gemma 2 normalises a projection's output before the residual adds it; otherwise the
        // projection closes the residual connection itself.
        let x = match &blk.attn_out_norm {
            Some(n) => {
                let o = self.adapted(blk, layer, Target::O, &a, lora)?;
                ops::residual(x, &ops::rms_norm(&o, n, cfg.rms_norm_eps)?)?
            }
            None => self.adapted_onto(Some(x), blk, layer, Target::O, &a, lora)?,
        };
        let n2 = ops::rms_norm(&x, &blk.post_norm, cfg.rms_norm_eps)?;
        let g = self.adapted(blk, layer, Target::Gate, &n2, lora)?;
        let u = self.adapted(blk, layer, Target::Up, &n2, lora)?;
        let mut dn = match cfg.hidden_act {
            Activation::Silu => self.adapted_down(blk, layer, &g, &u, lora)?,
            Activation::GeluTanh => self.adapted(blk, layer, Target::Down, &ops::geglu(&g, &u)?, lora)?,
        };
        if let Some(n) = &blk.mlp_out_norm {
            dn = ops::rms_norm(&dn, n, cfg.rms_norm_eps)?;
        }
        Ok(ops::residual(&x, &dn)?)
    }

    pub fn embed(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let flat = input_ids.flatten_all()?.to_dtype(DType::U32)?;
        let x = self.embed.index_select(&flat, 0)?.reshape((b, t, self.config.hidden_size))?;
        if !self.config.architecture.is_gemma() {
            return Ok(x);
        }
        // Gemma scales embeddings by sqrt(hidden), rounded to the model's dtype first as transformers does.
        let scale = Tensor::new(&[(self.config.hidden_size as f64).sqrt() as f32], &self.device)?.to_dtype(x.dtype())?;
        Ok(x.broadcast_mul(&scale)?)
    }

    /// The last norm, on the last block's output.
    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::rms_norm(x, &self.norm, self.config.rms_norm_eps)?)
    }

    /// Logits through the LM head, soft-capped where the model caps them (Gemma 2).
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let l = self.lm_head.forward(h)?;
        Ok(match self.config.final_logit_softcapping {
            Some(c) => ops::softcap(&l, c)?,
            None => l,
        })
    }

    /// Final hidden states `[b, t, hidden]` (after the last norm).
    pub fn hidden(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>, lora: Option<&LoraCtx>) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let rope = self.rope_table(0, t)?;
        let masks = self.attention_masks(attention_mask, b, t, 0)?;
        let mut x = self.embed(input_ids)?;
        for i in 0..self.blocks.len() {
            x = self.block_forward(i, &x, &rope, Some(masks.of(i)), lora, None)?;
        }
        self.final_norm(&x)
    }

    /// Logits `[b, t, vocab]` for every position.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>, lora: Option<&LoraCtx>) -> Result<Tensor> {
        let h = self.hidden(input_ids, attention_mask, lora)?;
        self.logits(&h)
    }

    /// Logits of the last position `[b, vocab]`, extending `cache` by the new tokens.
    pub fn forward_cached(&self, input_ids: &Tensor, cache: &mut KvCache, lora: Option<&LoraCtx>) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        if cache.layers.len() != self.blocks.len() {
            cache.layers = (0..self.blocks.len()).map(|_| None).collect();
        }
        let offset = cache.len();
        if offset + t > self.config.max_position_embeddings.max(1) * 4 {
            return Err(Error::Settings(format!(
                "sequence of {} tokens is far beyond the model's context of {}",
                offset + t,
                self.config.max_position_embeddings
            )));
        }
        let rope = self.rope_table(offset, t)?;
        // One new token sees every cached key, unless a sliding window has moved past some of them.
        let windowed = self.config.sliding_window.is_some_and(|w| offset + t > w);
        let masks = if t > 1 || windowed { Some(self.attention_masks(None, b, t, offset)?) } else { None };
        let mut x = self.embed(input_ids)?;
        for i in 0..self.blocks.len() {
            let mask = match &masks {
                Some(m) if t > 1 || m.slides(i) => Some(m.of(i)),
                _ => None,
            };
            x = self.block_forward(i, &x, &rope, mask, lora, Some(&mut cache.layers[i]))?;
        }
        let last = x.narrow(1, t - 1, 1)?;
        let h = self.final_norm(&last)?;
        Ok(self.logits(&h)?.squeeze(1)?)
    }

    /// Summed cross-entropy of the tokens marked in `loss_mask` (`[b, t]`, 1 = train), each predicted from
    /// the position before it, and the number of such tokens. Only those rows go through the LM head.
    pub fn loss_sum(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        loss_mask: &Tensor,
        lora: Option<&LoraCtx>,
    ) -> Result<(Tensor, usize)> {
        let h = self.hidden(input_ids, attention_mask, lora)?;
        self.head_loss_sum(&h, input_ids, loss_mask)
    }

    /// The LM head and cross-entropy on final hidden states.
    pub fn head_loss_sum(&self, h: &Tensor, input_ids: &Tensor, loss_mask: &Tensor) -> Result<(Tensor, usize)> {
        let (b, t) = input_ids.dims2()?;
        let (rows, targets) = target_rows(input_ids, loss_mask)?;
        let n = rows.len();
        if n == 0 {
            return Ok((Tensor::zeros((), DType::F32, &self.device)?, 0));
        }
        let rows = Tensor::from_vec(rows, n, &self.device)?;
        let targets = Tensor::from_vec(targets, n, &self.device)?;
        let hs = h.reshape((b * t, self.config.hidden_size))?.index_select(&rows, 0)?;
        let w = self.lm_head.weight.materialize(hs.dtype())?;
        Ok((ops::linear_cross_entropy_sum_capped(&hs, &w, &targets, self.config.final_logit_softcapping)?, n))
    }

    /// Per-row mean losses and token counts, without a graph. Only target positions go through the
    /// LM head.
    pub fn row_losses(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        loss_mask: &Tensor,
        lora: Option<&LoraCtx>,
    ) -> Result<Vec<(f64, usize)>> {
        let (b, t) = input_ids.dims2()?;
        let h = self.hidden(input_ids, attention_mask, lora)?;
        let (rows, targets) = target_rows(input_ids, loss_mask)?;
        let mut out = vec![(0f64, 0usize); b];
        if rows.is_empty() {
            return Ok(out.into_iter().map(|_| (f64::NAN, 0)).collect());
        }
        let n = rows.len();
        let idx = Tensor::from_vec(rows.clone(), n, &self.device)?;
        let tg = Tensor::from_vec(targets, n, &self.device)?;
        let hs = h.reshape((b * t, self.config.hidden_size))?.index_select(&idx, 0)?;
        let logits = self.logits(&hs)?.to_dtype(DType::F32)?;
        let lse = ops::logsumexp(&logits)?;
        let picked = logits.gather(&tg.unsqueeze(1)?, 1)?.squeeze(1)?;
        let per: Vec<f32> = (lse - picked)?.to_vec1()?;
        for (r, l) in rows.iter().zip(per) {
            let e = &mut out[*r as usize / t];
            e.0 += l as f64;
            e.1 += 1;
        }
        Ok(out.into_iter().map(|(s, n)| (if n > 0 { s / n as f64 } else { f64::NAN }, n)).collect())
    }
}

/// Each layer's attention mask for one forward pass.
pub struct LayerMasks {
    full: AttnMask,
    /// Present when some layer slides and the sequence is longer than its window.
    sliding: Option<AttnMask>,
    layers: Vec<bool>,
}

impl LayerMasks {
    /// Whether layer `i` uses the sliding-window mask.
    pub fn slides(&self, i: usize) -> bool {
        self.layers.get(i).copied().unwrap_or(false)
    }

    pub fn of(&self, i: usize) -> &AttnMask {
        match &self.sliding {
            Some(s) if self.slides(i) => s,
            _ => &self.full,
        }
    }
}

/// Flattened positions `b * t + i - 1` whose next token `i` is a target, and those targets.
fn target_rows(input_ids: &Tensor, loss_mask: &Tensor) -> Result<(Vec<u32>, Vec<u32>)> {
    let (b, t) = input_ids.dims2()?;
    let ids: Vec<Vec<u32>> = input_ids.to_dtype(DType::U32)?.to_vec2()?;
    let mask: Vec<Vec<f32>> = loss_mask.to_dtype(DType::F32)?.to_vec2()?;
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for bi in 0..b {
        for ti in 1..t {
            if mask[bi][ti] > 0.5 {
                rows.push((bi * t + ti - 1) as u32);
                targets.push(ids[bi][ti]);
            }
        }
    }
    Ok((rows, targets))
}
