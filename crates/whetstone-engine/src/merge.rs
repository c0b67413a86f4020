//! Folding a LoRA adapter into its base model: `W' = W + scale · B·A` for every adapted linear, so
//! the result runs anywhere a plain model runs, with no adapter support needed.
//!
//! The base is read as the run saw it: a GGUF base dequantized, and for a QLoRA run each linear
//! through the same NF4 round trip its training used, since the adapter learned to correct exactly
//! those weights. Sums are taken in f32 and only then cast to the chosen dtype.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::lora::Adapter;
use crate::nf4::Nf4;
use crate::quant::QuantMode;
use crate::weights::{is_block_linear, BaseWeights, ModelFiles};
use candle_core::{DType, Device, Tensor};
use std::path::Path;

/// A whole model as dense tensors under HF names, sorted by name, on the CPU.
pub struct MergedModel {
    pub config: ModelConfig,
    pub tensors: Vec<(String, Tensor)>,
}

impl MergedModel {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn parameters(&self) -> usize {
        self.tensors.iter().map(|(_, t)| t.elem_count()).sum()
    }
}

/// The base model at `files` with `adapter` folded in (the base alone without one), every tensor
/// in `dtype`. `quant` is how the run held the base: with [`QuantMode::Nf4`] the linears are
/// quantized to NF4 and back first.
pub fn merge(files: &ModelFiles, adapter: Option<&Adapter>, quant: QuantMode, dtype: DType) -> Result<MergedModel> {
    let cpu = Device::Cpu;
    let weights = BaseWeights::load(files, DType::F32, &cpu)?;
    let config = weights.config.clone();
    // Only the decoder's own tensors: a folder may hold other safetensors beside the model's.
    let mut tensors: Vec<(String, Tensor)> =
        weights.tensors.into_iter().filter(|(n, _)| crate::gguf_write::gguf_name_for_hf(n, config.architecture).is_some()).collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(a) = adapter {
        if a.layers.len() != config.num_layers {
            return Err(Error::Adapter {
                path: files.path().to_path_buf(),
                message: format!("the adapter has {} layers, the model {}", a.layers.len(), config.num_layers),
            });
        }
    }
    let scale = adapter.map(|a| a.config.scale());
    for (name, t) in tensors.iter_mut() {
        let mut w = t.clone();
        if quant == QuantMode::Nf4 && is_block_linear(name) {
            w = Nf4::quantize_tensor(&w, true)?.dequantize_cpu()?;
        }
        if let (Some(a), Some(scale)) = (adapter, scale) {
            if let Some(pair) = pair_for(a, name) {
                let b = pair.b.as_tensor().to_device(&cpu)?.to_dtype(DType::F32)?;
                let a = pair.a.as_tensor().to_device(&cpu)?.to_dtype(DType::F32)?;
                let delta = (b.matmul(&a)? * scale)?;
                if delta.dims() != w.dims() {
                    return Err(Error::TensorShape { name: name.clone(), expected: w.dims().to_vec(), actual: delta.dims().to_vec() });
                }
                w = (w + delta)?;
            }
        }
        *t = w.to_dtype(dtype)?;
    }
    Ok(MergedModel { config, tensors })
}

fn pair_for<'a>(adapter: &'a Adapter, name: &str) -> Option<&'a crate::lora::LoraPair> {
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let module = tail.strip_suffix(".weight")?;
    adapter.layers.get(layer)?.iter().find(|(t, _)| t.path() == module).map(|(_, p)| p)
}

/// The model's `config.json` in HF's words, for a folder transformers and our loader both read.
pub fn hf_config_json(config: &ModelConfig, dtype: DType) -> serde_json::Value {
    let arch = config.architecture;
    let class = arch.hf_class();
    let rope_scaling = match &config.rope_scaling {
        None => serde_json::Value::Null,
        Some(crate::config::RopeScaling::Linear { factor }) => serde_json::json!({"rope_type": "linear", "factor": factor}),
        Some(crate::config::RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => serde_json::json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_position_embeddings,
        }),
    };
    let eos = match config.eos_token_ids.as_slice() {
        [] => serde_json::Value::Null,
        [one] => serde_json::json!(one),
        many => serde_json::json!(many),
    };
    let mut json = serde_json::json!({
        "architectures": [class],
        "model_type": arch.model_type(),
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": match config.hidden_act {
            crate::config::Activation::Silu => "silu",
            crate::config::Activation::GeluTanh => "gelu_pytorch_tanh",
        },
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "rope_scaling": rope_scaling,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": config.tie_word_embeddings,
        "attention_bias": config.attention_bias,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": eos,
        "torch_dtype": dtype_name(dtype),
    });
    let extra = match arch {
        crate::config::Architecture::Mistral => serde_json::json!({ "sliding_window": config.sliding_window }),
        crate::config::Architecture::Gemma2 => serde_json::json!({
            "hidden_activation": "gelu_pytorch_tanh",
            "sliding_window": config.sliding_window,
            "layer_types": config
                .sliding_layers
                .iter()
                .map(|&s| if s { "sliding_attention" } else { "full_attention" })
                .collect::<Vec<_>>(),
            "query_pre_attn_scalar": config.query_pre_attn_scalar,
            "attn_logit_softcapping": config.attn_logit_softcapping,
            "final_logit_softcapping": config.final_logit_softcapping,
        }),
        _ => serde_json::json!({}),
    };
    if let (Some(o), Some(e)) = (json.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json
}

pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "float32",
    }
}

/// Writes tensors as one safetensors file in their own dtypes (f32, f16 or bf16), with the
/// `{"format":"pt"}` metadata transformers expects.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut bufs: Vec<(&str, safetensors::Dtype, Vec<u8>, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let flat = t.flatten_all()?;
        let (dtype, bytes) = match t.dtype() {
            DType::F16 => (safetensors::Dtype::F16, flat.to_vec1::<half::f16>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
            DType::BF16 => (safetensors::Dtype::BF16, flat.to_vec1::<half::bf16>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
            DType::F32 => (safetensors::Dtype::F32, flat.to_vec1::<f32>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
            other => return Err(Error::Internal(format!("tensor {name}: cannot write {other:?} to safetensors"))),
        };
        bufs.push((name, dtype, bytes, t.dims().to_vec()));
    }
    let bad = |e: safetensors::SafeTensorError| Error::model(path, e.to_string());
    let views = bufs
        .iter()
        .map(|(n, d, b, s)| safetensors::tensor::TensorView::new(*d, s.clone(), b).map(|v| (n.to_string(), v)).map_err(bad))
        .collect::<Result<Vec<_>>>()?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(bad)?;
    crate::lora::write_file_synced(path, &bytes)
}
