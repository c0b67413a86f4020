//! The shape of a decoder model (Llama, Mistral, Qwen2, Gemma, Gemma 2), read from HF `config.json` or
//! GGUF metadata.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Llama,
    Mistral,
    Qwen2,
    Gemma,
    Gemma2,
}

impl Architecture {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "llama" | "LlamaForCausalLM" | "smollm" => Ok(Architecture::Llama),
            "mistral" | "MistralForCausalLM" => Ok(Architecture::Mistral),
            "qwen2" | "Qwen2ForCausalLM" => Ok(Architecture::Qwen2),
            "gemma" | "GemmaForCausalLM" => Ok(Architecture::Gemma),
            "gemma2" | "Gemma2ForCausalLM" => Ok(Architecture::Gemma2),
            other => Err(Error::UnsupportedArchitecture(other.to_string())),
        }
    }

    /// The HF `model_type` string, also what PEFT and llama.cpp expect in configs.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma => "gemma",
            Architecture::Gemma2 => "gemma2",
        }
    }

    /// Gemma's RMSNorm multiplies by `1 + weight` and its embeddings are scaled by `sqrt(hidden)`.
    pub fn is_gemma(self) -> bool {
        matches!(self, Architecture::Gemma | Architecture::Gemma2)
    }

    /// Gemma 2 normalizes the attention and MLP outputs too, before each residual sum.
    pub fn has_output_norms(self) -> bool {
        self == Architecture::Gemma2
    }

    /// The HF class name, as `config.json`'s `architectures` lists it.
    pub fn hf_class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Gemma => "GemmaForCausalLM",
            Architecture::Gemma2 => "Gemma2ForCausalLM",
        }
    }
}

/// The gate's activation in the gated MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `silu(gate) · up` (Llama, Mistral, Qwen2).
    #[default]
    Silu,
    /// `gelu_tanh(gate) · up`, GELU in its tanh approximation (PyTorch's `gelu_pytorch_tanh`; Gemma).
    GeluTanh,
}

/// RoPE frequency scaling as HF `rope_scaling` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RopeScaling {
    /// Position interpolation: every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.x: long wavelengths scaled, short kept, a smooth band between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Qwen2 puts a bias on q, k and v.
    pub attention_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    #[serde(default)]
    pub hidden_act: Activation,
    /// A query sees only the keys this many positions back or fewer (itself included), on the layers
    /// [`ModelConfig::sliding_layers`] marks.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Per layer, whether it uses the sliding window (Mistral: all; Gemma 2: every other, from layer 0).
    #[serde(default)]
    pub sliding_layers: Vec<bool>,
    /// Gemma 2: attention scores are scaled by `query_pre_attn_scalar^-1/2` instead of `head_dim^-1/2`.
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: attention scores become `c · tanh(score / c)` before the mask and softmax.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2: logits become `c · tanh(logit / c)`; the loss is taken on the capped logits.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
}

#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<serde_json::Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    bos_token_id: Option<serde_json::Value>,
    eos_token_id: Option<serde_json::Value>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
    sliding_window: Option<usize>,
    layer_types: Option<Vec<String>>,
    query_pre_attn_scalar: Option<f64>,
    attn_logit_softcapping: Option<f64>,
    final_logit_softcapping: Option<f64>,
}

fn token_ids(v: &Option<serde_json::Value>) -> Vec<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => vec![],
    }
}

impl ModelConfig {
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_hf_str(&text).map_err(|e| match e {
            Error::Config(m) => Error::model(path, m),
            other => other,
        })
    }

    pub fn from_hf_str(text: &str) -> Result<Self> {
        let c: HfConfig = serde_json::from_str(text).map_err(|e| Error::Config(format!("config.json: {e}")))?;
        let name = c
            .model_type
            .clone()
            .or_else(|| c.architectures.as_ref().and_then(|a| a.first().cloned()))
            .ok_or_else(|| Error::Config("config.json names no model_type".into()))?;
        let architecture = Architecture::parse(&name)?;
        let hidden_act = match architecture {
            // transformers reads Gemma's legacy `gelu` as the tanh approximation the model was trained with.
            Architecture::Gemma => match c.hidden_act.as_deref().or(c.hidden_activation.as_deref()) {
                None | Some("gelu" | "gelu_pytorch_tanh") => Activation::GeluTanh,
                Some(other) => return Err(Error::Config(format!("Gemma's hidden_act `{other}` is not supported (gelu_pytorch_tanh is)"))),
            },
            Architecture::Gemma2 => match c.hidden_activation.as_deref() {
                None | Some("gelu_pytorch_tanh") => Activation::GeluTanh,
                Some(other) => {
                    return Err(Error::Config(format!("Gemma 2's hidden_activation `{other}` is not supported (gelu_pytorch_tanh is)")))
                }
            },
            _ => match c.hidden_act.as_deref() {
                None | Some("silu") => Activation::Silu,
                Some(act) => return Err(Error::Config(format!("hidden_act `{act}` is not supported (only silu)"))),
            },
        };
        let (sliding_window, sliding_layers) = match architecture {
            Architecture::Mistral => (c.sliding_window, vec![c.sliding_window.is_some(); c.num_hidden_layers]),
            Architecture::Gemma2 => {
                let window = c.sliding_window.unwrap_or(4096);
                let layers: Vec<bool> = match &c.layer_types {
                    Some(types) => {
                        if types.len() != c.num_hidden_layers {
                            return Err(Error::Config(format!(
                                "layer_types lists {} layers, the model has {}",
                                types.len(),
                                c.num_hidden_layers
                            )));
                        }
                        types
                            .iter()
                            .map(|t| match t.as_str() {
                                "sliding_attention" => Ok(true),
                                "full_attention" => Ok(false),
                                other => Err(Error::Config(format!("layer type `{other}` is not supported"))),
                            })
                            .collect::<Result<_>>()?
                    }
                    // transformers' default: layers 0, 2, 4… slide.
                    None => (0..c.num_hidden_layers).map(|i| i % 2 == 0).collect(),
                };
                (Some(window), layers)
            }
            _ => (None, vec![false; c.num_hidden_layers]),
        };
        let gemma2 = architecture == Architecture::Gemma2;
        // transformers' Gemma 2 defaults, for configs that leave them out.
        let (query_pre_attn_scalar, attn_logit_softcapping, final_logit_softcapping) = if gemma2 {
            (Some(c.query_pre_attn_scalar.unwrap_or(256.0)), c.attn_logit_softcapping, c.final_logit_softcapping)
        } else {
            (None, None, None)
        };
        let rope_scaling = match &c.rope_scaling {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => parse_rope_scaling(v)?,
        };
        let num_kv_heads = c.num_key_value_heads.unwrap_or(c.num_attention_heads);
        let cfg = ModelConfig {
            architecture,
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_layers: c.num_hidden_layers,
            num_heads: c.num_attention_heads,
            num_kv_heads,
            head_dim: c.head_dim.unwrap_or(c.hidden_size / c.num_attention_heads.max(1)),
            rms_norm_eps: c.rms_norm_eps,
            rope_theta: c.rope_theta.unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: c.max_position_embeddings.unwrap_or(4096),
            // Gemma's configs are tied unless they say otherwise.
            tie_word_embeddings: c.tie_word_embeddings.unwrap_or(architecture.is_gemma()),
            attention_bias: c.attention_bias.unwrap_or(architecture == Architecture::Qwen2),
            bos_token_id: token_ids(&c.bos_token_id).first().copied(),
            eos_token_ids: token_ids(&c.eos_token_id),
            hidden_act,
            sliding_window,
            sliding_layers,
            query_pre_attn_scalar,
            attn_logit_softcapping,
            final_logit_softcapping,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let md = &ct.metadata;
        let arch_name = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| Error::Config("GGUF has no general.architecture".into()))?
            .clone();
        let architecture = Architecture::parse(&arch_name)?;
        let get_u = |key: &str| -> Result<usize> {
            let full = format!("{arch_name}.{key}");
            md.get(&full)
                .ok_or_else(|| Error::Config(format!("GGUF metadata lacks `{full}`")))?
                .to_u64()
                .or_else(|_| md[&full].to_u32().map(u64::from))
                .map(|v| v as usize)
                .map_err(|e| Error::Config(format!("GGUF `{full}`: {e}")))
        };
        let get_f = |key: &str| -> Option<f64> {
            md.get(&format!("{arch_name}.{key}")).and_then(|v| v.to_f32().ok().map(f64::from).or(v.to_f64().ok()))
        };
        let hidden_size = get_u("embedding_length")?;
        let num_heads = get_u("attention.head_count")?;
        let num_kv_heads = get_u("attention.head_count_kv").unwrap_or(num_heads);
        let head_dim = get_u("attention.key_length").unwrap_or(hidden_size / num_heads.max(1));
        let vocab_size = match get_u("vocab_size") {
            Ok(v) => v,
            Err(_) => md
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok())
                .map(|v| v.len())
                .ok_or_else(|| Error::Config("GGUF gives no vocabulary size".into()))?,
        };
        let rope_scaling = match md
            .get(&format!("{arch_name}.rope.scaling.type"))
            .and_then(|v| v.to_string().ok())
            .map(|s| s.as_str())
        {
            Some("linear") => get_f("rope.scaling.factor").map(|factor| RopeScaling::Linear { factor }),
            _ => None,
        };
        // A tied model ships no separate `output.weight`.
        let tie_word_embeddings = !ct.tensor_infos.contains_key("output.weight");
        let attention_bias = ct.tensor_infos.contains_key("blk.0.attn_q.bias");
        let bos_token_id = md.get("tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok());
        let eos_token_ids = md
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
            .into_iter()
            .collect();
        let num_layers = get_u("block_count")?;
        let gemma2 = architecture == Architecture::Gemma2;
        let sliding_window = match architecture {
            Architecture::Mistral | Architecture::Gemma2 => get_u("attention.sliding_window").ok(),
            _ => None,
        };
        let sliding_layers: Vec<bool> = match architecture {
            // llama.cpp's gemma2 pattern: even layers slide.
            Architecture::Gemma2 => (0..num_layers).map(|i| sliding_window.is_some() && i % 2 == 0).collect(),
            _ => vec![sliding_window.is_some(); num_layers],
        };
        // GGUF does not carry query_pre_attn_scalar; llama.cpp derives the scale from the head size, except
        // for the 46-layer 27B, which uses hidden/heads (as its HF config does).
        let query_pre_attn_scalar = gemma2.then(|| {
            if num_layers == 46 {
                (hidden_size / num_heads.max(1)) as f64
            } else {
                head_dim as f64
            }
        });
        let cfg = ModelConfig {
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size: get_u("feed_forward_length")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: get_f("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            rope_theta: get_f("rope.freq_base").unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: get_u("context_length").unwrap_or(4096),
            tie_word_embeddings,
            attention_bias,
            bos_token_id,
            eos_token_ids,
            hidden_act: if architecture.is_gemma() { Activation::GeluTanh } else { Activation::Silu },
            sliding_window,
            sliding_layers,
            query_pre_attn_scalar,
            attn_logit_softcapping: if gemma2 { get_f("attn_logit_softcapping") } else { None },
            final_logit_softcapping: if gemma2 { get_f("final_logit_softcapping") } else { None },
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.num_layers == 0 || self.hidden_size == 0 {
            return bad("heads, layers and hidden size must be positive".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "{} attention heads cannot be shared by {} key/value heads",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.sliding_layers.len() != self.num_layers {
            return bad(format!("sliding-window flags for {} layers, the model has {}", self.sliding_layers.len(), self.num_layers));
        }
        if self.sliding_window == Some(0) {
            return bad("a sliding window of 0 positions hides every key".into());
        }
        for (what, v) in [
            ("query_pre_attn_scalar", self.query_pre_attn_scalar),
            ("attn_logit_softcapping", self.attn_logit_softcapping),
            ("final_logit_softcapping", self.final_logit_softcapping),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return bad(format!("{what} must be a positive number"));
            }
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head dimension {} must be even for rotary embeddings", self.head_dim));
        }
        Ok(())
    }

    /// The sliding window of `layer`, if it has one.
    pub fn window_of(&self, layer: usize) -> Option<usize> {
        self.sliding_window.filter(|_| self.sliding_layers.get(layer).copied().unwrap_or(false))
    }

    /// The factor attention scores are multiplied by.
    pub fn attention_scale(&self) -> f64 {
        1.0 / self.query_pre_attn_scalar.unwrap_or(self.head_dim as f64).sqrt()
    }

    /// Inverse RoPE frequencies, one per pair of head dimensions, with scaling applied the way HF does.
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        // HF computes the base frequencies in float32 from an int64 arange; follow it for parity.
        let mut inv: Vec<f32> = (0..d)
            .step_by(2)
            .map(|i| 1.0f32 / (self.rope_theta as f32).powf(i as f32 / d as f32))
            .collect();
        match &self.rope_scaling {
            None => {}
            Some(RopeScaling::Linear { factor }) => inv.iter_mut().for_each(|f| *f /= *factor as f32),
            Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => {
                let old = *original_max_position_embeddings as f64;
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                for f in inv.iter_mut() {
                    let freq = *f as f64;
                    let wavelen = 2.0 * std::f64::consts::PI / freq;
                    *f = if wavelen > low_wavelen {
                        (freq / factor) as f32
                    } else if wavelen < high_wavelen {
                        *f
                    } else {
                        let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        ((1.0 - smooth) * freq / factor + smooth * freq) as f32
                    };
                }
            }
        }
        inv
    }

    /// Parameters of the base model, for plans and display.
    pub fn num_parameters(&self) -> usize {
        let h = self.hidden_size;
        let kv = self.num_kv_heads * self.head_dim;
        let q = self.num_heads * self.head_dim;
        let attn = h * q + 2 * h * kv + q * h + if self.attention_bias { q + 2 * kv } else { 0 };
        let mlp = 3 * h * self.intermediate_size;
        let norms = if self.architecture.has_output_norms() { 4 } else { 2 };
        let layer = attn + mlp + norms * h;
        let embed = self.vocab_size * h;
        embed + self.num_layers * layer + h + if self.tie_word_embeddings { 0 } else { embed }
    }
}

fn parse_rope_scaling(v: &serde_json::Value) -> Result<Option<RopeScaling>> {
    let kind = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("default");
    let num = |k: &str| -> Result<f64> {
        v.get(k)
            .and_then(|x| x.as_f64())
            .ok_or_else(|| Error::Config(format!("rope_scaling of type `{kind}` needs `{k}`")))
    };
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear { factor: num("factor")? })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")? as usize,
        })),
        other => Err(Error::Config(format!(
            "rope_scaling type `{other}` is not supported (default, linear and llama3 are)"
        ))),
    }
}
