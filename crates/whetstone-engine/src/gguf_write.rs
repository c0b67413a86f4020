//! Writing GGUF files that llama.cpp and Ollama load: a whole model (f16, q8_0 or q4_k_m) and a LoRA
//! adapter on its own.
//!
//! The layout follows llama.cpp's converters: tensor names as `convert_hf_to_gguf.py` writes them,
//! Llama's q and k rows interleaved per head for its rope kernel, 1-D tensors kept f32, and for
//! q4_k_m the per-tensor mix of `llama-quant.cpp` (more bits for the output, half the `attn_v` and
//! `ffn_down` layers, fallbacks where a row is not a multiple of the 256-wide k-quant block).

use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::lora::Adapter;
use crate::merge::MergedModel;
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a model's 2-D weights are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum GgufQuant {
    F16,
    Q8_0,
    Q4KM,
}

impl GgufQuant {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "f16" => Ok(GgufQuant::F16),
            "q8_0" | "q8" => Ok(GgufQuant::Q8_0),
            "q4_k_m" | "q4km" | "q4_k" => Ok(GgufQuant::Q4KM),
            other => Err(Error::Settings(format!("unknown GGUF quantization `{other}`: use f16, q8_0 or q4_k_m"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GgufQuant::F16 => "f16",
            GgufQuant::Q8_0 => "q8_0",
            GgufQuant::Q4KM => "q4_k_m",
        }
    }

    /// llama.cpp's `general.file_type` (`LLAMA_FTYPE_MOSTLY_*`).
    pub fn file_type(self) -> u32 {
        match self {
            GgufQuant::F16 => 1,
            GgufQuant::Q8_0 => 7,
            GgufQuant::Q4KM => 15,
        }
    }
}

/// The architecture name llama.cpp knows the model by (Mistral runs as `llama`).
pub fn gguf_architecture(arch: Architecture) -> &'static str {
    match arch {
        Architecture::Llama | Architecture::Mistral => "llama",
        Architecture::Qwen2 => "qwen2",
        Architecture::Gemma => "gemma",
        Architecture::Gemma2 => "gemma2",
    }
}

/// HF tensor name → GGUF tensor name, the inverse of [`crate::weights::hf_name_for_gguf`].
pub fn gguf_name_for_hf(name: &str, arch: Architecture) -> Option<String> {
    match name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = tail.rsplit_once('.')?;
    let g = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if arch == Architecture::Gemma2 => "post_attention_norm",
        "pre_feedforward_layernorm" if arch == Architecture::Gemma2 => "ffn_norm",
        "post_feedforward_layernorm" if arch == Architecture::Gemma2 => "post_ffw_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// `convert_hf_to_gguf.py`'s permute of Llama's q/k rows (works on weights and biases alike).
pub fn permute_qk(w: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let rest: usize = dims[1..].iter().product();
    let half = dims[0] / heads / 2;
    Ok(w.reshape((heads, 2, half, rest))?.transpose(1, 2)?.contiguous()?.reshape(dims)?)
}

/// The heads to permute a tensor's rows with, when llama.cpp expects them interleaved.
fn permuted_heads(config: &ModelConfig, gguf_name: &str) -> Option<usize> {
    if matches!(config.architecture, Architecture::Qwen2 | Architecture::Gemma | Architecture::Gemma2) {
        return None;
    }
    if gguf_name.ends_with("attn_q.weight") || gguf_name.ends_with("attn_q.bias") {
        Some(config.num_heads)
    } else if gguf_name.ends_with("attn_k.weight") || gguf_name.ends_with("attn_k.bias") {
        Some(config.num_kv_heads)
    } else {
        None
    }
}

fn layer_of(gguf_name: &str) -> Option<usize> {
    gguf_name.strip_prefix("blk.")?.split_once('.')?.0.parse().ok()
}

/// The block type of one tensor under `quant`, as llama.cpp's quantizer picks it.
pub fn tensor_type(quant: GgufQuant, gguf_name: &str, dims: &[usize], num_layers: usize, tied: bool) -> GgmlDType {
    if dims.len() < 2 || gguf_name.ends_with("_norm.weight") || gguf_name.ends_with(".bias") {
        return GgmlDType::F32;
    }
    let cols = *dims.last().unwrap_or(&0);
    match quant {
        GgufQuant::F16 => GgmlDType::F16,
        GgufQuant::Q8_0 => fallback(GgmlDType::Q8_0, cols),
        GgufQuant::Q4KM => {
            let more_bits = |i: usize, n: usize| i < n / 8 || i >= 7 * n / 8 || (i as isize - (n / 8) as isize).rem_euclid(3) == 2;
            let is_output = gguf_name == "output.weight" || (tied && gguf_name == "token_embd.weight");
            let chosen = if is_output {
                if cols % 256 != 0 {
                    GgmlDType::Q8_0
                } else {
                    GgmlDType::Q6K
                }
            } else if gguf_name.ends_with("attn_v.weight") || gguf_name.ends_with("ffn_down.weight") {
                match layer_of(gguf_name) {
                    Some(i) if more_bits(i, num_layers) => GgmlDType::Q6K,
                    _ => GgmlDType::Q4K,
                }
            } else {
                GgmlDType::Q4K
            };
            fallback(chosen, cols)
        }
    }
}

/// `tensor_type_fallback`: rows that do not fill whole blocks take the nearest type that fits.
fn fallback(t: GgmlDType, cols: usize) -> GgmlDType {
    if cols % t.block_size() == 0 {
        return t;
    }
    let next = match t {
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K => GgmlDType::Q8_0,
        other => other,
    };
    if cols % next.block_size() == 0 {
        next
    } else {
        GgmlDType::F16
    }
}

/// Model metadata in llama.cpp's keys; the tokenizer's keys come from the caller.
pub fn model_metadata(config: &ModelConfig, name: &str, quant: GgufQuant) -> Result<Vec<(String, Value)>> {
    let arch = gguf_architecture(config.architecture);
    let u = |v: usize| Value::U32(v as u32);
    let mut md = vec![
        ("general.architecture".to_string(), Value::String(arch.into())),
        ("general.type".to_string(), Value::String("model".into())),
        ("general.name".to_string(), Value::String(name.into())),
        ("general.file_type".to_string(), Value::U32(quant.file_type())),
        ("general.quantization_version".to_string(), Value::U32(2)),
        (format!("{arch}.vocab_size"), u(config.vocab_size)),
        (format!("{arch}.context_length"), u(config.max_position_embeddings)),
        (format!("{arch}.embedding_length"), u(config.hidden_size)),
        (format!("{arch}.block_count"), u(config.num_layers)),
        (format!("{arch}.feed_forward_length"), u(config.intermediate_size)),
        (format!("{arch}.attention.head_count"), u(config.num_heads)),
        (format!("{arch}.attention.head_count_kv"), u(config.num_kv_heads)),
        (format!("{arch}.attention.layer_norm_rms_epsilon"), Value::F32(config.rms_norm_eps as f32)),
        (format!("{arch}.rope.freq_base"), Value::F32(config.rope_theta as f32)),
        (format!("{arch}.rope.dimension_count"), u(config.head_dim)),
    ];
    if config.head_dim * config.num_heads != config.hidden_size || config.architecture.is_gemma() {
        md.push((format!("{arch}.attention.key_length"), u(config.head_dim)));
        md.push((format!("{arch}.attention.value_length"), u(config.head_dim)));
    }
    if config.architecture == Architecture::Gemma2 {
        gemma2_checks(config)?;
        if let Some(c) = config.attn_logit_softcapping {
            md.push((format!("{arch}.attn_logit_softcapping"), Value::F32(c as f32)));
        }
        if let Some(c) = config.final_logit_softcapping {
            md.push((format!("{arch}.final_logit_softcapping"), Value::F32(c as f32)));
        }
        if let Some(w) = config.sliding_window {
            md.push((format!("{arch}.attention.sliding_window"), u(w)));
        }
    }
    match &config.rope_scaling {
        None => {}
        Some(RopeScaling::Linear { factor }) => {
            md.push((format!("{arch}.rope.scaling.type"), Value::String("linear".into())));
            md.push((format!("{arch}.rope.scaling.factor"), Value::F32(*factor as f32)));
        }
        Some(RopeScaling::Llama3 { .. }) => {
            return Err(Error::Settings(
                "GGUF export of models with Llama 3 rope scaling is not supported yet; export the merged model or the adapter instead".into(),
            ))
        }
    }
    Ok(md)
}

/// llama.cpp reads no attention scale and no per-layer window pattern from a gemma2 file: it takes the
/// scale from the head size (hidden/heads for the 46-layer 27B) and slides on even layers. A model
/// that differs would run differently there, so it is refused rather than written.
fn gemma2_checks(config: &ModelConfig) -> Result<()> {
    let derived = if config.num_layers == 46 { config.hidden_size / config.num_heads.max(1) } else { config.head_dim };
    if let Some(q) = config.query_pre_attn_scalar {
        if (q - derived as f64).abs() > 1e-9 {
            return Err(Error::ExportUnsupported(format!(
                "this Gemma 2 model scales attention by query_pre_attn_scalar {q}, but llama.cpp would use {derived} \
                 from its shape; GGUF export would change its outputs. Export the merged model or the adapter instead"
            )));
        }
    }
    let expected: Vec<bool> = (0..config.num_layers).map(|i| config.sliding_window.is_some() && i % 2 == 0).collect();
    if config.sliding_layers != expected {
        return Err(Error::ExportUnsupported(
            "this Gemma 2 model's sliding-window layers are not llama.cpp's every-other-layer pattern; GGUF export \
             would change its outputs. Export the merged model or the adapter instead"
                .into(),
        ));
    }
    Ok(())
}

/// What went into a GGUF file, per block type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct GgufSummary {
    pub tensors: usize,
    /// `(block type, tensor count)`, e.g. `("q4k", 60)`.
    pub types: Vec<(String, usize)>,
    pub bytes: u64,
}

fn summarize(tensors: &[(String, QTensor)], bytes: u64) -> GgufSummary {
    let mut types: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, q) in tensors {
        *types.entry(format!("{:?}", q.dtype()).to_lowercase()).or_default() += 1;
    }
    GgufSummary { tensors: tensors.len(), types: types.into_iter().collect(), bytes }
}

/// Writes `model` to `path` (the caller renames it into place). `extra` carries the tokenizer's and
/// any other keys; `progress(done, total)` is called after each tensor.
pub fn write_model(
    path: &Path,
    model: &MergedModel,
    name: &str,
    quant: GgufQuant,
    extra: &[(String, Value)],
    mut progress: impl FnMut(usize, usize),
) -> Result<GgufSummary> {
    let config = &model.config;
    let mut metadata = model_metadata(config, name, quant)?;
    metadata.extend(extra.iter().cloned());
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(model.tensors.len());
    let total = model.tensors.len();
    for (i, (hf, t)) in model.tensors.iter().enumerate() {
        let Some(gname) = gguf_name_for_hf(hf, config.architecture) else {
            return Err(Error::Internal(format!("no GGUF name for tensor {hf}")));
        };
        let mut t = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        if let Some(heads) = permuted_heads(config, &gname) {
            t = permute_qk(&t, heads)?;
        }
        if config.architecture.is_gemma() && gname.ends_with("norm.weight") {
            // llama.cpp multiplies by the stored weight; Gemma's converter stores `1 + weight`.
            t = (t + 1.0)?;
        }
        let ty = tensor_type(quant, &gname, t.dims(), config.num_layers, config.tie_word_embeddings);
        tensors.push((gname, QTensor::quantize(&t, ty)?));
        progress(i + 1, total);
    }
    tensors.sort_by(|a, b| tensor_order(&a.0).cmp(&tensor_order(&b.0)));
    write_file(path, &metadata, &tensors)?;
    let bytes = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    Ok(summarize(&tensors, bytes))
}

/// llama.cpp does not care about order, but people reading a dump expect the converter's: embeddings,
/// then each block in turn, then the output.
fn tensor_order(name: &str) -> (usize, usize, String) {
    match name {
        "token_embd.weight" => (0, 0, String::new()),
        "output_norm.weight" => (2, 0, name.into()),
        "output.weight" => (2, 1, name.into()),
        _ => (1, layer_of(name).unwrap_or(usize::MAX), name.into()),
    }
}

/// Writes `adapter` as llama.cpp's LoRA GGUF (`convert_lora_to_gguf.py`'s layout): `lora_a` `[r, in]`
/// and `lora_b` `[out, r]` per adapted weight, `lora_b` of q/k permuted like the base's rows, and
/// `adapter.lora.alpha` chosen so that llama.cpp's `alpha / r` is this adapter's scale (rsLoRA included).
pub fn write_lora(path: &Path, adapter: &Adapter, config: &ModelConfig, name: &str) -> Result<GgufSummary> {
    let arch = gguf_architecture(config.architecture);
    if config.architecture == Architecture::Gemma2 {
        gemma2_checks(config)?;
    }
    let alpha = adapter.config.scale() * adapter.config.r as f64;
    let metadata = vec![
        ("general.architecture".to_string(), Value::String(arch.into())),
        ("general.type".to_string(), Value::String("adapter".into())),
        ("general.name".to_string(), Value::String(name.into())),
        ("adapter.type".to_string(), Value::String("lora".into())),
        ("adapter.lora.alpha".to_string(), Value::F32(alpha as f32)),
    ];
    let mut tensors = Vec::new();
    for (layer, pairs) in adapter.layers.iter().enumerate() {
        for (target, pair) in pairs {
            let hf = format!("model.layers.{layer}.{}.weight", target.path());
            let gname = gguf_name_for_hf(&hf, config.architecture).ok_or_else(|| Error::Internal(format!("no GGUF name for {hf}")))?;
            let a = pair.a.as_tensor().to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
            let mut b = pair.b.as_tensor().to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
            if let Some(heads) = permuted_heads(config, &gname) {
                b = permute_qk(&b, heads)?;
            }
            tensors.push((format!("{gname}.lora_a"), QTensor::quantize(&a, GgmlDType::F32)?));
            tensors.push((format!("{gname}.lora_b"), QTensor::quantize(&b, GgmlDType::F32)?));
        }
    }
    write_file(path, &metadata, &tensors)?;
    let bytes = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    Ok(summarize(&tensors, bytes))
}

fn write_file(path: &Path, metadata: &[(String, Value)], tensors: &[(String, QTensor)]) -> Result<()> {
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut buf = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut buf, &md, &ts)?;
    crate::lora::write_file_synced(path, &buf.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_k_m_gives_more_bits_where_llama_cpp_does() {
        // 32 layers: use_more_bits holds for 0..4, 28..32 and every third layer between (6, 9, ...).
        let t = |name: &str| tensor_type(GgufQuant::Q4KM, name, &[4096, 4096], 32, false);
        assert_eq!(t("blk.0.attn_v.weight"), GgmlDType::Q6K);
        assert_eq!(t("blk.4.attn_v.weight"), GgmlDType::Q4K);
        assert_eq!(t("blk.6.ffn_down.weight"), GgmlDType::Q6K);
        assert_eq!(t("blk.7.ffn_down.weight"), GgmlDType::Q4K);
        assert_eq!(t("blk.31.ffn_down.weight"), GgmlDType::Q6K);
        assert_eq!(t("blk.7.attn_q.weight"), GgmlDType::Q4K);
        assert_eq!(t("output.weight"), GgmlDType::Q6K);
        assert_eq!(t("token_embd.weight"), GgmlDType::Q4K);
        assert_eq!(tensor_type(GgufQuant::Q4KM, "token_embd.weight", &[4096, 4096], 32, true), GgmlDType::Q6K);
        assert_eq!(t("blk.3.attn_norm.weight"), GgmlDType::F32);
        assert_eq!(tensor_type(GgufQuant::Q4KM, "blk.0.attn_norm.weight", &[4096], 32, false), GgmlDType::F32);
    }

    #[test]
    fn rows_that_do_not_fill_a_k_block_fall_back_as_llama_cpp_does() {
        // SmolLM2-135M: hidden 576 is not a multiple of 256.
        let t = |name: &str, cols: usize| tensor_type(GgufQuant::Q4KM, name, &[1536, cols], 30, true);
        assert_eq!(t("blk.5.attn_q.weight", 576), GgmlDType::Q5_0);
        assert_eq!(t("blk.0.ffn_down.weight", 1536), GgmlDType::Q6K);
        assert_eq!(t("blk.0.attn_v.weight", 576), GgmlDType::Q8_0);
        assert_eq!(t("token_embd.weight", 576), GgmlDType::Q8_0);
        assert_eq!(tensor_type(GgufQuant::Q8_0, "blk.0.attn_q.weight", &[8, 40], 2, false), GgmlDType::F16);
    }

    #[test]
    fn names_round_trip_with_the_loader() {
        for hf in ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.3.self_attn.k_proj.bias", "model.layers.11.mlp.down_proj.weight", "model.layers.0.post_attention_layernorm.weight"] {
            for arch in [Architecture::Llama, Architecture::Gemma] {
                let g = gguf_name_for_hf(hf, arch).unwrap();
                assert_eq!(crate::weights::hf_name_for_gguf(&g, arch).as_deref(), Some(hf), "{g}");
            }
        }
        // Gemma 2's four norms per block: HF's post_attention_layernorm is the attention output's norm there.
        let g2 = Architecture::Gemma2;
        for (hf, gguf) in [
            ("model.layers.1.input_layernorm.weight", "blk.1.attn_norm.weight"),
            ("model.layers.1.post_attention_layernorm.weight", "blk.1.post_attention_norm.weight"),
            ("model.layers.1.pre_feedforward_layernorm.weight", "blk.1.ffn_norm.weight"),
            ("model.layers.1.post_feedforward_layernorm.weight", "blk.1.post_ffw_norm.weight"),
        ] {
            assert_eq!(gguf_name_for_hf(hf, g2).as_deref(), Some(gguf));
            assert_eq!(crate::weights::hf_name_for_gguf(gguf, g2).as_deref(), Some(hf));
        }
    }

    #[test]
    fn permute_undoes_the_loaders_unpermute() {
        let w = Tensor::arange(0f32, 8.0 * 3.0, &Device::Cpu).unwrap().reshape((8, 3)).unwrap();
        let p = permute_qk(&w, 2).unwrap();
        assert_ne!(p.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        let back = crate::weights::unpermute_qk(&p, 2).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
    }
}
