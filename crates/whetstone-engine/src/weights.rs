//! Reading a base model from disk: an HF folder of safetensors (memory-mapped) or a GGUF file.
//! Tensors are handed out under their HF names so that the rest of the engine, and adapters, speak
//! one naming.

use crate::config::{Architecture, ModelConfig};
use crate::error::{Error, Result};
use crate::nf4::Nf4;
use crate::quant::{QuantMode, QuantWeight};
use candle_core::quantized::{gguf_file, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a model's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// A folder with `config.json` and one or more `*.safetensors`.
    HfDir(PathBuf),
    /// A single `.gguf` file.
    Gguf(PathBuf),
}

impl ModelFiles {
    /// Recognise a model path: a `.gguf` file, or a folder holding `config.json` (or a single GGUF).
    pub fn detect(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::model(path, "no such file or folder"));
        }
        if path.is_file() {
            let mut magic = [0u8; 4];
            use std::io::Read;
            std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut magic))
                .map_err(|e| Error::io(path, e))?;
            if &magic == b"GGUF" {
                return Ok(ModelFiles::Gguf(path.to_path_buf()));
            }
            return Err(Error::model(path, "not a GGUF file (and not a folder with config.json)"));
        }
        if path.join("config.json").is_file() {
            return Ok(ModelFiles::HfDir(path.to_path_buf()));
        }
        let ggufs: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .collect();
        match ggufs.as_slice() {
            [one] => Ok(ModelFiles::Gguf(one.clone())),
            [] => Err(Error::model(path, "folder has neither config.json nor a .gguf file")),
            _ => Err(Error::model(path, "folder has several .gguf files; name one")),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            ModelFiles::HfDir(p) | ModelFiles::Gguf(p) => p,
        }
    }

    /// The model's shape alone, without reading weights: a cheap first check of a model path.
    pub fn config(&self) -> Result<ModelConfig> {
        match self {
            ModelFiles::HfDir(d) => ModelConfig::from_hf_json(&d.join("config.json")),
            ModelFiles::Gguf(p) => {
                let mut file = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
                let ct = gguf_file::Content::read(&mut file)
                    .map_err(|e| Error::model(p, format!("cannot read GGUF: {e}")))?;
                ModelConfig::from_gguf(&ct).map_err(|e| match e {
                    Error::Config(m) => Error::model(p, m),
                    other => other,
                })
            }
        }
    }
}

/// All tensors of a base model, in `dtype` on `device`, under HF names; with quantization, the
/// decoder blocks' linear weights are in `quantized` instead of `tensors`.
pub struct BaseWeights {
    pub config: ModelConfig,
    pub tensors: HashMap<String, Tensor>,
    pub quantized: HashMap<String, QuantWeight>,
    pub source: ModelFiles,
}

type Loaded = (ModelConfig, HashMap<String, Tensor>, HashMap<String, QuantWeight>);

impl BaseWeights {
    /// Every tensor dense (GGUF blocks dequantized), as [`QuantMode::None`].
    pub fn load(files: &ModelFiles, dtype: DType, device: &Device) -> Result<Self> {
        Self::load_quant(files, dtype, device, QuantMode::None)
    }

    /// Loads with the decoder blocks' linear weights held as `quant` says. Embeddings, norms and the LM
    /// head always stay dense, as in QLoRA: they are a small share of a large model and the LM head's
    /// output is the loss itself. Quantizing to NF4 happens one tensor at a time, so memory while
    /// loading stays near the quantized size plus one layer.
    pub fn load_quant(files: &ModelFiles, dtype: DType, device: &Device, quant: QuantMode) -> Result<Self> {
        match files {
            ModelFiles::HfDir(dir) => load_hf(dir, dtype, device, quant),
            ModelFiles::Gguf(path) => load_gguf(path, dtype, device, quant),
        }
        .map(|(config, tensors, quantized)| BaseWeights { config, tensors, quantized, source: files.clone() })
    }

    pub fn take(&mut self, name: &str) -> Result<Tensor> {
        self.tensors
            .remove(name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string(), path: self.source.path().to_path_buf() })
    }

    pub fn take_opt(&mut self, name: &str) -> Option<Tensor> {
        self.tensors.remove(name)
    }

    /// Moves the decoder blocks' dense linear weights into `quantized`, each through `f`.
    pub fn quantize_linears(&mut self, mut f: impl FnMut(&str, &Tensor) -> Result<QuantWeight>) -> Result<()> {
        let mut names: Vec<String> = self.tensors.keys().filter(|n| is_block_linear(n)).cloned().collect();
        names.sort();
        for name in names {
            if let Some(t) = self.tensors.remove(&name) {
                let q = f(&name, &t)?;
                self.quantized.insert(name, q);
            }
        }
        Ok(())
    }
}

/// Whether an HF tensor name is one of a decoder block's linear weights, the ones quantization applies to.
pub fn is_block_linear(name: &str) -> bool {
    const PROJ: [&str; 7] = [
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.o_proj.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    ];
    name.strip_prefix("model.layers.")
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(layer, tail)| layer.parse::<usize>().is_ok() && PROJ.contains(&tail))
}

fn nf4_weight(t: &Tensor, device: &Device) -> Result<QuantWeight> {
    Ok(QuantWeight::Nf4(Nf4::quantize_tensor(t, true)?.to_device(device)?))
}

fn load_hf(dir: &Path, dtype: DType, device: &Device, quant: QuantMode) -> Result<Loaded> {
    let config = ModelConfig::from_hf_json(&dir.join("config.json"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::model(dir, "no .safetensors weights in the folder"));
    }
    let mut tensors = HashMap::new();
    let mut quantized = HashMap::new();
    for f in &files {
        // SAFETY: the file is mapped read-only and not modified while the engine runs; a model folder
        // being rewritten under a running job is outside what the engine can guard against.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }
            .map_err(|e| Error::model(f, format!("cannot read safetensors: {e}")))?;
        for (name, _) in st.tensors() {
            if quant == QuantMode::Nf4 && is_block_linear(&name) {
                let t = st.load(&name, &Device::Cpu).map_err(|e| Error::model(f, format!("tensor {name}: {e}")))?;
                quantized.insert(name, nf4_weight(&t, device)?);
                continue;
            }
            let t = st.load(&name, device).map_err(|e| Error::model(f, format!("tensor {name}: {e}")))?;
            tensors.insert(name, t.to_dtype(dtype)?);
        }
    }
    Ok((config, tensors, quantized))
}

/// GGUF tensor name → HF name, for the tensors of the Llama family.
pub fn hf_name_for_gguf(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = tail.rsplit_once('.')?;
    let hf = match module {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// llama.cpp stores Llama's q and k rows interleaved per head for its rope kernel; HF (and PEFT
/// adapters) use the split-half layout. Undo `convert_hf_to_gguf.py`'s permute.
pub fn unpermute_qk(w: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let out = dims[0];
    let rest: usize = dims[1..].iter().product();
    let half = out / heads / 2;
    let t = w.reshape((heads, half, 2, rest))?.transpose(1, 2)?.contiguous()?;
    Ok(t.reshape(dims)?)
}

/// [`unpermute_qk`] on a GGUF tensor's raw blocks. Quantization blocks run along rows, so moving whole
/// rows' bytes is exact: the result dequantizes to the un-permuted dense weight bit for bit.
pub fn unpermute_qk_quantized(q: &QTensor, heads: usize, device: &Device) -> Result<QTensor> {
    let dims = q.shape().dims().to_vec();
    let rows = dims[0];
    let data = q.data()?;
    let row_bytes = data.len() / rows.max(1);
    let half = rows / heads / 2;
    let mut out = vec![0u8; data.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let src = h * 2 * half + i * 2 + j;
                let dst = h * 2 * half + j * half + i;
                out[dst * row_bytes..(dst + 1) * row_bytes].copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
            }
        }
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), device, q.dtype())?;
    Ok(QTensor::new(storage, dims)?)
}

/// A GGUF tensor's blocks on `device` (dequantized there when a product needs it).
pub fn qtensor_to(q: QTensor, device: &Device) -> Result<QTensor> {
    if device.is_cpu() {
        return Ok(q);
    }
    let dims = q.shape().dims().to_vec();
    let storage = QStorage::from_data(q.data()?, device, q.dtype())?;
    Ok(QTensor::new(storage, dims)?)
}

fn load_gguf(path: &Path, dtype: DType, device: &Device, quant: QuantMode) -> Result<Loaded> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let ct = gguf_file::Content::read(&mut file).map_err(|e| Error::model(path, format!("cannot read GGUF: {e}")))?;
    let config = ModelConfig::from_gguf(&ct).map_err(|e| match e {
        Error::Config(m) => Error::model(path, m),
        other => other,
    })?;
    let mut tensors = HashMap::new();
    let mut quantized = HashMap::new();
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let Some(hf) = hf_name_for_gguf(name) else { continue };
        let read_err = |e: candle_core::Error| Error::model(path, format!("tensor {name}: {e}"));
        // llama.cpp interleaves Llama's q and k rows per head; these are the heads to undo it with.
        let permuted_heads = match config.architecture {
            Architecture::Qwen2 => None,
            _ if name.ends_with("attn_q.weight") || name.ends_with("attn_q.bias") => Some(config.num_heads),
            _ if name.ends_with("attn_k.weight") || name.ends_with("attn_k.bias") => Some(config.num_kv_heads),
            _ => None,
        };
        let linear = is_block_linear(&hf);
        let info_dtype = ct.tensor_infos[name].ggml_dtype;
        let cols = ct.tensor_infos[name].shape.dims().last().copied().unwrap_or(0);
        if linear && quant == QuantMode::Native && QuantWeight::keeps_quantized_rows(info_dtype, cols) {
            let q = ct.tensor(&mut file, name, &Device::Cpu).map_err(read_err)?;
            let q = match permuted_heads {
                Some(heads) => unpermute_qk_quantized(&q, heads, device)?,
                None => qtensor_to(q, device)?,
            };
            quantized.insert(hf, QuantWeight::Gguf(q));
            continue;
        }
        if linear && quant == QuantMode::Nf4 {
            // GGUF blocks to float32, then to NF4: a second, lossy quantization of the file's weights.
            let q = ct.tensor(&mut file, name, &Device::Cpu).map_err(read_err)?;
            let mut t = q.dequantize(&Device::Cpu)?;
            if let Some(heads) = permuted_heads {
                t = unpermute_qk(&t, heads)?;
            }
            quantized.insert(hf, nf4_weight(&t, device)?);
            continue;
        }
        let q = ct.tensor(&mut file, name, device).map_err(read_err)?;
        let mut t = q.dequantize(device)?;
        if let Some(heads) = permuted_heads {
            t = unpermute_qk(&t, heads)?;
        }
        tensors.insert(hf, t.to_dtype(dtype)?);
    }
    Ok((config, tensors, quantized))
}

impl BaseWeights {
    /// A model with random weights for `config`: small ones make fast tests, and they exercise every
    /// code path a real checkpoint does.
    pub fn random(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = crate::rng::Rng::new(seed);
        let mut normal = |shape: &[usize], std: f64, mean: f64| -> Result<Tensor> {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    // Box-Muller
                    let u1 = rng.next_f64().max(1e-12);
                    let u2 = rng.next_f64();
                    (mean + std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
                })
                .collect();
            Ok(Tensor::from_vec(v, shape, device)?)
        };
        let c = config;
        let (h, q, kv, i) = (c.hidden_size, c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.intermediate_size);
        let mut t = HashMap::new();
        t.insert("model.embed_tokens.weight".to_string(), normal(&[c.vocab_size, h], 0.02, 0.0)?);
        for l in 0..c.num_layers {
            let p = format!("model.layers.{l}");
            t.insert(format!("{p}.input_layernorm.weight"), normal(&[h], 0.1, 1.0)?);
            t.insert(format!("{p}.post_attention_layernorm.weight"), normal(&[h], 0.1, 1.0)?);
            for (n, o, inp) in [("self_attn.q_proj", q, h), ("self_attn.k_proj", kv, h), ("self_attn.v_proj", kv, h), ("self_attn.o_proj", h, q), ("mlp.gate_proj", i, h), ("mlp.up_proj", i, h), ("mlp.down_proj", h, i)] {
                t.insert(format!("{p}.{n}.weight"), normal(&[o, inp], 0.02, 0.0)?);
            }
            if c.attention_bias {
                for (n, o) in [("self_attn.q_proj", q), ("self_attn.k_proj", kv), ("self_attn.v_proj", kv)] {
                    t.insert(format!("{p}.{n}.bias"), normal(&[o], 0.02, 0.0)?);
                }
            }
        }
        t.insert("model.norm.weight".to_string(), normal(&[h], 0.1, 1.0)?);
        if !c.tie_word_embeddings {
            t.insert("lm_head.weight".to_string(), normal(&[c.vocab_size, h], 0.02, 0.0)?);
        }
        Ok(BaseWeights {
            config: c.clone(),
            tensors: t,
            quantized: HashMap::new(),
            source: ModelFiles::HfDir(PathBuf::from("<random>")),
        })
    }
}

impl BaseWeights {
    /// A model with random weights for `config`, made straight on `device` in `dtype`, its decoder
    /// blocks' linear layers held as `quant` says (`nf4`: quantized as they are made, so the dense
    /// weights of a 7B model never exist at once). Values are drawn in parallel from streams seeded
    /// by `seed` and each tensor's place, so the same seed gives the same model on any machine; they
    /// differ from [`BaseWeights::random`]'s. For benchmarks of model shapes nobody has to download.
    pub fn random_on(config: &ModelConfig, seed: u64, device: &Device, dtype: DType, quant: QuantMode) -> Result<Self> {
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 16;
        let normal = |index: u64, shape: &[usize], std: f32, mean: f32| -> Vec<f32> {
            let n: usize = shape.iter().product();
            let mut v = vec![0f32; n];
            v.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
                let mut rng = crate::rng::Rng::new(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (c as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9));
                for x in out.iter_mut() {
                    // Box-Muller
                    let u1 = rng.next_f64().max(1e-12);
                    let u2 = rng.next_f64();
                    *x = mean + std * ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32;
                }
            });
            v
        };
        let mut tensors = HashMap::new();
        let mut quantized = HashMap::new();
        let mut index = 0u64;
        let mut add = |name: String, shape: &[usize], std: f32, mean: f32| -> Result<()> {
            index += 1;
            let v = normal(index, shape, std, mean);
            if quant == QuantMode::Nf4 && is_block_linear(&name) {
                quantized.insert(name, QuantWeight::Nf4(Nf4::quantize(&v, shape, true).to_device(device)?));
            } else {
                tensors.insert(name, Tensor::from_vec(v, shape, device)?.to_dtype(dtype)?);
            }
            Ok(())
        };
        let c = config;
        let (h, q, kv, i) = (c.hidden_size, c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.intermediate_size);
        add("model.embed_tokens.weight".into(), &[c.vocab_size, h], 0.02, 0.0)?;
        for l in 0..c.num_layers {
            let p = format!("model.layers.{l}");
            add(format!("{p}.input_layernorm.weight"), &[h], 0.1, 1.0)?;
            add(format!("{p}.post_attention_layernorm.weight"), &[h], 0.1, 1.0)?;
            for (n, o, inp) in [("self_attn.q_proj", q, h), ("self_attn.k_proj", kv, h), ("self_attn.v_proj", kv, h), ("self_attn.o_proj", h, q), ("mlp.gate_proj", i, h), ("mlp.up_proj", i, h), ("mlp.down_proj", h, i)] {
                add(format!("{p}.{n}.weight"), &[o, inp], 0.02, 0.0)?;
            }
            if c.attention_bias {
                for (n, o) in [("self_attn.q_proj", q), ("self_attn.k_proj", kv), ("self_attn.v_proj", kv)] {
                    add(format!("{p}.{n}.bias"), &[o], 0.02, 0.0)?;
                }
            }
        }
        add("model.norm.weight".into(), &[h], 0.1, 1.0)?;
        if !c.tie_word_embeddings {
            add("lm_head.weight".into(), &[c.vocab_size, h], 0.02, 0.0)?;
        }
        Ok(BaseWeights { config: c.clone(), tensors, quantized, source: ModelFiles::HfDir(PathBuf::from("<random>")) })
    }
}

impl ModelConfig {
    /// A tiny Llama-shaped config for tests and examples.
    pub fn tiny(architecture: Architecture) -> Self {
        ModelConfig {
            architecture,
            vocab_size: 96,
            hidden_size: 32,
            intermediate_size: 64,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 8,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 128,
            tie_word_embeddings: architecture == Architecture::Qwen2,
            attention_bias: architecture == Architecture::Qwen2,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
        }
    }
}
