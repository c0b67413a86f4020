//! LoRA adapters: `y = W x + (B A dropout(x)) · scale`, kept apart from the frozen base and stored in
//! PEFT's layout so that PEFT, vLLM, llama.cpp and Ollama can read what Whetstone trains.

use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A linear layer of a decoder block that can carry an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];

    /// The HF module name, which is also what PEFT's `target_modules` lists.
    pub fn module(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    /// Module path inside a decoder layer.
    pub fn path(self) -> &'static str {
        match self {
            Target::Q => "self_attn.q_proj",
            Target::K => "self_attn.k_proj",
            Target::V => "self_attn.v_proj",
            Target::O => "self_attn.o_proj",
            Target::Gate => "mlp.gate_proj",
            Target::Up => "mlp.up_proj",
            Target::Down => "mlp.down_proj",
        }
    }

    /// Accepts the short names of the CLI (`q`, `gate`) and PEFT's module names (`q_proj`).
    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim();
        Target::ALL
            .into_iter()
            .find(|x| t == x.module() || t == x.module().trim_end_matches("_proj"))
            .ok_or_else(|| Error::Settings(format!("unknown LoRA target `{t}` (use q,k,v,o,gate,up,down)")))
    }

    pub fn parse_list(s: &str) -> Result<Vec<Self>> {
        let mut v: Vec<Target> = s.split(',').filter(|x| !x.trim().is_empty()).map(Target::parse).collect::<Result<_>>()?;
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(Error::Settings("no LoRA targets given".into()));
        }
        Ok(v)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub targets: Vec<Target>,
    /// rsLoRA scales by `alpha / sqrt(r)`, which keeps updates stable at high ranks.
    pub use_rslora: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self { r: 8, alpha: 16.0, dropout: 0.05, targets: Target::ALL.to_vec(), use_rslora: false }
    }
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.r == 0 {
            return Err(Error::Settings("LoRA rank must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Settings(format!("LoRA dropout {} must be in [0, 1)", self.dropout)));
        }
        if self.targets.is_empty() {
            return Err(Error::Settings("no LoRA targets given".into()));
        }
        Ok(())
    }
}

/// One adapted linear: `a` is `[r, in]`, `b` is `[out, r]`, both trainable f32.
pub struct LoraPair {
    pub a: Var,
    pub b: Var,
}

/// All adapters of a model, per layer and target.
pub struct Adapter {
    pub config: LoraConfig,
    pub layers: Vec<BTreeMap<Target, LoraPair>>,
}

/// Shapes of the linears that can take an adapter, as `(in, out)`.
pub fn target_shape(cfg: &crate::config::ModelConfig, t: Target) -> (usize, usize) {
    let h = cfg.hidden_size;
    let q = cfg.num_heads * cfg.head_dim;
    let kv = cfg.num_kv_heads * cfg.head_dim;
    let i = cfg.intermediate_size;
    match t {
        Target::Q => (h, q),
        Target::K | Target::V => (h, kv),
        Target::O => (q, h),
        Target::Gate | Target::Up => (h, i),
        Target::Down => (i, h),
    }
}

/// The PEFT key prefix of a layer's module.
pub fn peft_prefix(layer: usize, t: Target) -> String {
    format!("base_model.model.model.layers.{layer}.{}", t.path())
}

impl Adapter {
    /// PEFT's default init: A Kaiming-uniform with a = sqrt(5) (bound 1/sqrt(in)), B zero, so the
    /// adapted model starts equal to the base.
    pub fn init(model: &crate::config::ModelConfig, config: LoraConfig, rng: &mut Rng, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut layers = Vec::with_capacity(model.num_layers);
        for _ in 0..model.num_layers {
            let mut m = BTreeMap::new();
            for &t in &config.targets {
                let (inp, out) = target_shape(model, t);
                let bound = 1.0 / (inp as f64).sqrt();
                let a: Vec<f32> = (0..config.r * inp).map(|_| rng.uniform(-bound, bound) as f32).collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (config.r, inp), device)?)?;
                let b = Var::from_tensor(&Tensor::zeros((out, config.r), DType::F32, device)?)?;
                m.insert(t, LoraPair { a, b });
            }
            layers.push(m);
        }
        Ok(Self { config, layers })
    }

    /// Every trainable tensor with its PEFT key, in a fixed order.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut v = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (t, p) in layer {
                let pre = peft_prefix(i, *t);
                v.push((format!("{pre}.lora_A.weight"), &p.a));
                v.push((format!("{pre}.lora_B.weight"), &p.b));
            }
        }
        v
    }

    pub fn vars(&self) -> Vec<Var> {
        self.named_vars().into_iter().map(|(_, v)| v.clone()).collect()
    }

    pub fn num_parameters(&self) -> usize {
        self.named_vars().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Save in PEFT's layout, atomically: `adapter_model.safetensors` and `adapter_config.json`.
    pub fn save_peft(&self, dir: &Path, base_model_name_or_path: &str, model_type: &str) -> Result<()> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let tmp = tempdir_in(dir)?;
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (k, v) in self.named_vars() {
            tensors.push((k, v.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?));
        }
        write_safetensors(&tmp.join("adapter_model.safetensors"), &tensors)?;
        let cfg = serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": self.config.r,
            "lora_alpha": self.config.alpha,
            "lora_dropout": self.config.dropout,
            "target_modules": self.config.targets.iter().map(|t| t.module()).collect::<Vec<_>>(),
            "base_model_name_or_path": base_model_name_or_path,
            "bias": "none",
            "use_rslora": self.config.use_rslora,
            "use_dora": false,
            "fan_in_fan_out": false,
            "modules_to_save": null,
            "init_lora_weights": true,
            "inference_mode": true,
            "revision": null,
            "layers_to_transform": null,
            "whetstone_model_type": model_type,
        });
        let text = serde_json::to_string_pretty(&cfg).map_err(|e| Error::Adapter { path: dir.into(), message: e.to_string() })?;
        write_file_synced(&tmp.join("adapter_config.json"), text.as_bytes())?;
        replace_dir(&tmp, dir)
    }

    /// Load a PEFT LoRA adapter (ours or one PEFT wrote) for a model of the given shape.
    pub fn load_peft(dir: &Path, model: &crate::config::ModelConfig, device: &Device) -> Result<Self> {
        let bad = |m: String| Error::Adapter { path: dir.to_path_buf(), message: m };
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let j: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("adapter_config.json: {e}")))?;
        if j.get("peft_type").and_then(|v| v.as_str()) != Some("LORA") {
            return Err(bad("adapter_config.json: peft_type is not LORA".into()));
        }
        if j.get("use_dora").and_then(|v| v.as_bool()) == Some(true) {
            return Err(bad("DoRA adapters are not supported".into()));
        }
        if j.get("fan_in_fan_out").and_then(|v| v.as_bool()) == Some(true) {
            return Err(bad("fan_in_fan_out adapters are not supported".into()));
        }
        let r = j.get("r").and_then(|v| v.as_u64()).ok_or_else(|| bad("adapter_config.json has no r".into()))? as usize;
        let alpha = j.get("lora_alpha").and_then(|v| v.as_f64()).unwrap_or(r as f64);
        let dropout = j.get("lora_dropout").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let use_rslora = j.get("use_rslora").and_then(|v| v.as_bool()).unwrap_or(false);
        let targets: Vec<Target> = match j.get("target_modules") {
            Some(serde_json::Value::Array(a)) => {
                let mut t = a
                    .iter()
                    .map(|x| x.as_str().ok_or_else(|| bad("target_modules must be strings".into())).and_then(Target::parse))
                    .collect::<Result<Vec<_>>>()?;
                t.sort();
                t.dedup();
                t
            }
            _ => return Err(bad("adapter_config.json: target_modules must be a list".into())),
        };
        let st_path = dir.join("adapter_model.safetensors");
        let data = std::fs::read(&st_path).map_err(|e| Error::io(&st_path, e))?;
        let st = safetensors::SafeTensors::deserialize(&data).map_err(|e| bad(format!("adapter_model.safetensors: {e}")))?;
        let config = LoraConfig { r, alpha, dropout, targets: targets.clone(), use_rslora };
        let mut layers = Vec::with_capacity(model.num_layers);
        for i in 0..model.num_layers {
            let mut m = BTreeMap::new();
            for &t in &targets {
                let (inp, out) = target_shape(model, t);
                let pre = peft_prefix(i, t);
                let load = |suffix: &str, shape: (usize, usize)| -> Result<Var> {
                    let key = format!("{pre}.{suffix}.weight");
                    let view = st.tensor(&key).map_err(|_| bad(format!("missing tensor {key}")))?;
                    let t = tensor_from_view(&view, device).map_err(|e| bad(format!("{key}: {e}")))?;
                    if t.dims() != [shape.0, shape.1] {
                        return Err(Error::TensorShape { name: key, expected: vec![shape.0, shape.1], actual: t.dims().to_vec() });
                    }
                    Ok(Var::from_tensor(&t.to_dtype(DType::F32)?)?)
                };
                let a = load("lora_A", (r, inp))?;
                let b = load("lora_B", (out, r))?;
                m.insert(t, LoraPair { a, b });
            }
            layers.push(m);
        }
        Ok(Self { config, layers })
    }
}

fn tensor_from_view(view: &safetensors::tensor::TensorView<'_>, device: &Device) -> candle_core::Result<Tensor> {
    use safetensors::Dtype as S;
    let shape = view.shape().to_vec();
    let data = view.data();
    let t = match view.dtype() {
        S::F32 => {
            let v: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Tensor::from_vec(v, shape, device)?
        }
        S::F16 => {
            let v: Vec<half::f16> = data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]])).collect();
            Tensor::from_vec(v, shape, device)?.to_dtype(DType::F32)?
        }
        S::BF16 => {
            let v: Vec<half::bf16> = data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]])).collect();
            Tensor::from_vec(v, shape, device)?.to_dtype(DType::F32)?
        }
        other => candle_core::bail!("unsupported dtype {other:?}"),
    };
    Ok(t)
}

/// Write tensors as safetensors with PEFT's `{"format": "pt"}` metadata.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut bufs: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (k, t) in tensors {
        let v: Vec<f32> = t.flatten_all()?.to_vec1::<f32>()?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((k.clone(), bytes, t.dims().to_vec()));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bufs
        .iter()
        .map(|(k, b, s)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::Adapter { path: path.into(), message: e.to_string() })
        })
        .collect::<Result<_>>()?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Adapter { path: path.into(), message: e.to_string() })?;
    write_file_synced(path, &bytes)
}

/// [`whetstone_files::write_synced`] with this crate's error.
pub fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    whetstone_files::write_synced(path, bytes).map_err(|e| Error::io(path, e))
}

/// [`whetstone_files::temp_dir_beside`] with this crate's error.
pub fn tempdir_in(target: &Path) -> Result<std::path::PathBuf> {
    whetstone_files::temp_dir_beside(target).map_err(|e| Error::io(target, e))
}

/// [`whetstone_files::replace_dir`] with this crate's error.
pub fn replace_dir(tmp: &Path, target: &Path) -> Result<()> {
    whetstone_files::replace_dir(tmp, target).map_err(|e| Error::io(target, e))
}
