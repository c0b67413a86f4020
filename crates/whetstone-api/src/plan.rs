//! Memory plans: will a training job fit on this machine, and what to change when it will not.
//! The arithmetic is the engine's (`whetstone_engine::plan`); this module finds the model's shape,
//! the dataset's real token lengths and the device's free memory.

use crate::error::{Error, Result};
use crate::Api;
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use whetstone_engine::plan::{self, BaseFormat, JobShape, MemoryBreakdown};
use whetstone_engine::device::DeviceChoice;
use whetstone_engine::quant::QuantMode;
use whetstone_engine::run::TrainSettings;
use whetstone_engine::{Architecture, ModelConfig, ModelFiles, Target};

/// Used memory above this share of what is free is "tight": other programs and the allocator's
/// slack need the rest.
const TIGHT_SHARE: f64 = 0.85;

#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// A model path, an installed model (id, name, hub id) or a catalog repo id.
    pub model: String,
    /// A JSONL dataset: its real token lengths replace `max-len` as the sequence length.
    #[serde(default)]
    pub data: Option<PathBuf>,
    #[serde(default)]
    pub settings: TrainSettings,
    /// `auto`, `cpu`, `cuda` / `cuda:N` (also `gpu` / `gpu:N`) or `metal`; the settings' `device`
    /// when absent.
    #[serde(default)]
    pub device: Option<String>,
    /// How the base is held (`f32`, `bf16`, `nf4`, `q4_k`…); what the engine does on the device
    /// when absent.
    #[serde(default)]
    pub base: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    Fits,
    Tight,
    DoesNotFit,
}

impl Fit {
    pub fn label(self) -> &'static str {
        match self {
            Fit::Fits => "fits",
            Fit::Tight => "tight",
            Fit::DoesNotFit => "does not fit",
        }
    }
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct DatasetLengths {
    pub examples: usize,
    pub mean_tokens: f64,
    pub p95_tokens: usize,
    pub max_tokens: usize,
    /// Examples longer than `max-len`, which training cuts.
    pub truncated: usize,
    /// Examples with no answer token within `max-len`, which training leaves out (and reports).
    pub dropped: usize,
    /// The smallest `max-len` at which no example is left out.
    pub length_keeping_all: usize,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Recommendation {
    /// In plain words.
    pub change: String,
    /// The settings with the change applied (kebab-case keys, as `whet train --config` reads).
    pub settings: TrainSettings,
    pub base: BaseFormat,
    pub peak_bytes: u64,
    pub fit: Fit,
    /// False where the engine cannot train this way yet (a 4-bit base).
    pub engine_supported: bool,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Plan {
    pub model: String,
    pub architecture: String,
    pub parameters: u64,
    pub device: String,
    pub device_free_bytes: u64,
    pub device_total_bytes: u64,
    pub base: BaseFormat,
    pub seq_len: u64,
    pub batch: u64,
    pub grad_accum: u64,
    pub dataset: Option<DatasetLengths>,
    pub memory: MemoryBreakdown,
    pub fit: Fit,
    pub fit_label: &'static str,
    pub recommendations: Vec<Recommendation>,
    pub notes: Vec<String>,
    /// How long the run would take; known when the data is given.
    pub time: Option<TimeEstimate>,
}

/// How long a run would take.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TimeEstimate {
    /// Optimizer steps the run will take.
    pub steps: u64,
    /// Tokens read per step: examples per step times their mean length (cut at `max-len`).
    pub tokens_per_step: u64,
    /// The model's arithmetic alone at the speed this computer just showed for matrix products of
    /// the model's width: the run cannot be faster, and is slower by the work around the products.
    pub at_least_s: f64,
    /// Matrix-product speed measured on the training device, in floating-point operations per second.
    pub measured_flops: f64,
    /// From the speed of the latest earlier run of this model on this computer, when there is one.
    pub from_earlier_run: Option<EarlierSpeed>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct EarlierSpeed {
    pub run: i64,
    /// Median tokens per second over that run's steps (its first step, which warms up, left out).
    pub tokens_per_s: f64,
    /// This run's tokens at that speed.
    pub seconds: f64,
}

/// Where the shape comes from, and what loading it costs on top of the weights.
pub struct ModelShape {
    pub name: String,
    pub config: ModelConfig,
    pub load_transient_bytes: Option<u64>,
    pub files: Option<ModelFiles>,
}

/// Shape and loading cost of a model on disk.
pub fn shape_of_files(path: &Path) -> Result<ModelShape> {
    let files = ModelFiles::detect(path)?;
    let config = files.config()?;
    let load = match &files {
        ModelFiles::Gguf(p) => {
            // Tensors are read one at a time, quantized, then dequantized to f32.
            let mut f = std::fs::File::open(p).map_err(|source| Error::Io { action: "read", path: p.clone(), source })?;
            let ct = gguf_file::Content::read(&mut f).map_err(|e| Error::InvalidModelFile { path: p.clone(), reason: e.to_string() })?;
            ct.tensor_infos
                .values()
                .map(|t| {
                    let n = t.shape.elem_count() as u64;
                    n * 4 + (n / t.ggml_dtype.block_size() as u64) * t.ggml_dtype.type_size() as u64
                })
                .max()
        }
        ModelFiles::HfDir(d) => std::fs::read_dir(d)
            .map_err(|source| Error::Io { action: "list", path: d.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
            .max(),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string());
    Ok(ModelShape { name, config, load_transient_bytes: load, files: Some(files) })
}

fn shape_of_catalog(entry: &whetstone_hub::CatalogEntry) -> Result<ModelShape> {
    let s = entry.shape;
    let architecture = Architecture::parse(&entry.architecture)?;
    let config = ModelConfig {
        architecture,
        vocab_size: s.vocab as usize,
        hidden_size: s.hidden as usize,
        intermediate_size: s.intermediate as usize,
        num_layers: s.layers as usize,
        num_heads: s.heads as usize,
        num_kv_heads: s.kv_heads as usize,
        head_dim: (s.hidden / s.heads) as usize,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: entry.context_length as usize,
        tie_word_embeddings: s.tied_embeddings,
        attention_bias: architecture == Architecture::Qwen2,
        bos_token_id: None,
        eos_token_ids: vec![],
    };
    // Safetensors shards of the hub's size (5 GB at most) are mapped one at a time.
    let shard = (config.num_parameters() as u64 * 2).min(5_000_000_000);
    Ok(ModelShape { name: entry.name.clone(), config, load_transient_bytes: Some(shard), files: None })
}

/// The job's shape for the engine's estimate.
pub fn job_shape(settings: &TrainSettings, base: BaseFormat, compute_bytes: u64, on_cpu: bool, seq_len: u64, trained: u64, load: Option<u64>) -> Result<JobShape> {
    Ok(JobShape {
        batch: settings.batch as u64,
        seq_len,
        trained_tokens: trained,
        lora_r: settings.lora_r as u64,
        targets: Target::parse_list(&settings.targets)?,
        lora_dropout: settings.lora_dropout,
        grad_checkpoint: settings.grad_checkpoint,
        compute_bytes,
        base,
        fused_loss: on_cpu && compute_bytes == 4,
        load_transient_bytes: load,
        // CUDA's memory (bf16); Apple GPUs share the host's memory and compute in f32.
        on_gpu: !on_cpu && compute_bytes == 2,
    })
}

fn fit_of(peak: u64, free: u64) -> Fit {
    let p = peak as f64;
    let f = free as f64;
    if p <= f * TIGHT_SHARE {
        Fit::Fits
    } else if p <= f {
        Fit::Tight
    } else {
        Fit::DoesNotFit
    }
}

impl Api {
    /// Predicts the peak memory of a training job and whether it fits the device.
    pub fn plan(&self, req: &PlanRequest) -> Result<Plan> {
        req.settings.validate()?;
        let shape = match self.resolve_model_path(&req.model) {
            Ok(path) => shape_of_files(&path)?,
            Err(not_installed) => match whetstone_hub::catalog::find(&req.model) {
                Some(entry) => shape_of_catalog(entry)?,
                None => return Err(not_installed),
            },
        };
        let hw = crate::hardware()?;
        // `device` in the request, else the run's own `device` setting; `auto` is what a run would get.
        let choice = match req.device.as_deref().map(str::trim) {
            None | Some("") => req.settings.device,
            Some(d) => d.parse::<DeviceChoice>().map_err(|_| Error::InvalidInput(format!("unknown device `{d}`: use {}", DeviceChoice::ACCEPTED)))?,
        };
        let mut notes = Vec::new();
        let detected = crate::backend::detect(&hw, &self.workers_or_self());
        let target = match choice {
            DeviceChoice::Auto => crate::backend::select(choice, &detected)?.device,
            explicit => {
                // A plan may ask about a device the run could not use yet (no GPU worker, say):
                // the figures still hold, and the note says what is missing.
                if let Err(e) = crate::backend::select(explicit, &detected) {
                    notes.push(format!("a run cannot train there yet: {e}"));
                }
                explicit
            }
        };
        let (cuda, metal): (Vec<_>, Vec<_>) = hw.gpus.iter().partition(|g| g.backend == "cuda");
        let (want_gpu, device, free, total, compute_bytes) = match target {
            DeviceChoice::Cuda(i) => {
                let i = i.unwrap_or(0);
                let g = cuda.get(i).ok_or_else(|| Error::InvalidInput(format!("no NVIDIA GPU {i} on this machine ({} found)", cuda.len())))?;
                // bf16 activations (2 bytes), measured against the GPU's own memory.
                (true, format!("{} (cuda:{i})", g.name), g.vram_free_bytes, g.vram_total_bytes, 2)
            }
            DeviceChoice::Metal => {
                let g = metal.first().ok_or_else(|| Error::InvalidInput("no Apple GPU on this machine".into()))?;
                (true, format!("{} (metal)", g.name), g.vram_free_bytes, g.vram_total_bytes, 4)
            }
            _ => (false, "cpu".to_string(), hw.ram_available_bytes, hw.ram_total_bytes, 4),
        };
        let engine_base = if compute_bytes == 2 { BaseFormat::Bf16 } else { BaseFormat::F32 };
        // What `whet train` would do with the same settings: NF4 when asked, a GGUF file's own
        // block type by default, dense otherwise.
        let base = match req.base.as_deref() {
            None | Some("") => match (req.settings.quant, &shape.files) {
                (QuantMode::Nf4, _) => BaseFormat::Nf4,
                (QuantMode::Native, Some(ModelFiles::Gguf(path))) => gguf_linear_format(path)?.unwrap_or(engine_base),
                _ => engine_base,
            },
            Some(b) => BaseFormat::parse(b).ok_or_else(|| Error::InvalidInput(format!("unknown base precision `{b}` (f32, bf16, f16, nf4, q8_0, q6_k, q5_k, q4_k, q4_1, q4_0)")))?,
        };
        if base.is_quantized() {
            notes.push(format!("the decoder's linear layers stay in {base:?} blocks; embeddings and norms are kept at full precision"));
        } else if matches!(shape.files, Some(ModelFiles::Gguf(_))) {
            notes.push("this GGUF file is dequantized when loaded (--quant none), so its weights take full precision in memory".into());
        }
        let (seq_len, trained, dataset) = match &req.data {
            Some(data) => {
                let files = shape.files.as_ref().ok_or_else(|| {
                    Error::InvalidInput(format!("{} is not downloaded: pull it to measure the dataset with its tokenizer", req.model))
                })?;
                // A file, or an imported dataset's name: its training rows, as a run would read them.
                let data = crate::training::resolve_training_data(self, data)?;
                let lengths = dataset_lengths(files, &data, req.settings.max_len, req.settings.batch)?;
                (lengths.0, lengths.1, Some(lengths.2))
            }
            None => {
                let t = req.settings.max_len as u64;
                (t, req.settings.batch as u64 * (t - 1), None)
            }
        };
        let estimate = |s: &TrainSettings, base: BaseFormat, seq: u64, trained: u64| -> Result<MemoryBreakdown> {
            Ok(plan::estimate(&shape.config, &job_shape(s, base, compute_bytes, !want_gpu, seq, trained, shape.load_transient_bytes)?))
        };
        let memory = estimate(&req.settings, base, seq_len, trained)?;
        let fit = fit_of(memory.peak, free);
        let mut recommendations = Vec::new();
        if fit != Fit::Fits {
            let per_row = trained as f64 / req.settings.batch as f64;
            let mut s = req.settings.clone();
            let push = |change: String, s: &TrainSettings, base: BaseFormat, seq: u64, recs: &mut Vec<Recommendation>| -> Result<Fit> {
                let trained = (per_row * s.batch as f64).round() as u64;
                let m = estimate(s, base, seq.min(s.max_len as u64), trained.min(s.batch as u64 * seq))?;
                let fit = fit_of(m.peak, free);
                recs.push(Recommendation { change, settings: s.clone(), base, peak_bytes: m.peak, fit, engine_supported: base.engine_holds() });
                Ok(fit)
            };
            let mut current = fit;
            if !s.grad_checkpoint {
                s.grad_checkpoint = true;
                current = push("turn on gradient checkpointing (slower steps, much less memory)".into(), &s, base, seq_len, &mut recommendations)?;
            }
            while current != Fit::Fits && s.batch > 1 {
                s.batch /= 2;
                s.grad_accum *= 2;
                current = push(
                    format!("micro-batch {} with gradient accumulation {} (same examples per step)", s.batch, s.grad_accum),
                    &s,
                    base,
                    seq_len,
                    &mut recommendations,
                )?;
            }
            if current != Fit::Fits {
                if let Some(d) = &dataset {
                    if (d.p95_tokens as u64) < seq_len {
                        s.max_len = d.p95_tokens.max(2);
                        current = push(format!("max length {} (cuts the longest 5% of examples)", s.max_len), &s, base, seq_len, &mut recommendations)?;
                    }
                }
            }
            if current != Fit::Fits && base == BaseFormat::F32 && want_gpu {
                current = push("hold the base in bf16".into(), &s, BaseFormat::Bf16, seq_len, &mut recommendations)?;
            }
            if current != Fit::Fits && base != BaseFormat::Nf4 {
                push("a 4-bit (NF4, QLoRA) base".into(), &s, BaseFormat::Nf4, seq_len, &mut recommendations)?;
            }
        }
        if fit == Fit::DoesNotFit && !recommendations.iter().any(|r| r.fit == Fit::Fits && r.engine_supported) {
            notes.push("nothing Whetstone can change makes this job fit; pick a smaller model".into());
        }
        // A GPU this program cannot compute on (the GPU worker does) has the speed its worker measured.
        let on_other_program = matches!(target, DeviceChoice::Cuda(_)) && !whetstone_engine::device::has_cuda();
        let known_speed = if on_other_program { detected.cuda_matmul_flops } else { None };
        let time = match &dataset {
            Some(_) if on_other_program && known_speed.is_none() => {
                notes.push("the GPU's speed is not known until its worker has answered, so no time is estimated".into());
                None
            }
            Some(d) => Some(self.time_estimate(&shape, &req.settings, d, want_gpu, known_speed)?),
            None => None,
        };
        Ok(Plan {
            model: shape.name.clone(),
            architecture: shape.config.architecture.model_type().to_string(),
            parameters: shape.config.num_parameters() as u64,
            device,
            device_free_bytes: free,
            device_total_bytes: total,
            base,
            seq_len,
            batch: req.settings.batch as u64,
            grad_accum: req.settings.grad_accum as u64,
            dataset,
            memory,
            fit,
            fit_label: fit.label(),
            recommendations,
            notes,
            time,
        })
    }

    /// Steps, tokens and the time they take: a floor from the arithmetic, and the pace of an
    /// earlier run of the same model when this computer has trained it before.
    fn time_estimate(&self, shape: &ModelShape, s: &TrainSettings, d: &DatasetLengths, gpu: bool, known_speed: Option<f64>) -> Result<TimeEstimate> {
        let steps = s.total_steps(d.examples);
        let per_example = d.mean_tokens.min(s.max_len as f64);
        let tokens_per_step = ((s.batch * s.grad_accum) as f64 * per_example).ceil() as u64;
        let tokens = (steps * tokens_per_step) as f64;
        let flops = match known_speed {
            Some(f) => f,
            None => matmul_speed(shape.config.hidden_size, gpu)?,
        };
        let at_least_s = tokens * training_flops_per_token(&shape.config, s) / flops;
        let from_earlier_run = match &shape.files {
            Some(files) => self.earlier_speed(files.path())?.map(|(run, tokens_per_s)| EarlierSpeed { run, tokens_per_s, seconds: tokens / tokens_per_s }),
            None => None,
        };
        Ok(TimeEstimate { steps, tokens_per_step, at_least_s, measured_flops: flops, from_earlier_run })
    }

    /// The latest run of the model at `path` with a few steps measured, and its median pace.
    fn earlier_speed(&self, path: &Path) -> Result<Option<(i64, f64)>> {
        let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut runs = self.list_runs()?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        for run in runs {
            let model = run.config.get("model").and_then(|m| m.as_str()).map(PathBuf::from);
            if model.as_deref() != Some(want.as_path()) {
                continue;
            }
            let Ok(rows) = crate::export::read_metrics(&Path::new(&run.out_dir).join("metrics.jsonl")) else { continue };
            let mut pace: Vec<f64> = rows
                .iter()
                .filter(|r| r.get("kind").and_then(|k| k.as_str()).unwrap_or("train") == "train")
                .skip(1)
                .filter_map(|r| r.get("tokens_per_s").and_then(|t| t.as_f64()))
                .filter(|t| t.is_finite() && *t > 0.0)
                .collect();
            if pace.len() < 2 {
                continue;
            }
            pace.sort_by(f64::total_cmp);
            return Ok(Some((run.id, pace[pace.len() / 2])));
        }
        Ok(None)
    }
}

/// Floating-point operations per trained token: the forward pass through every weight matrix, the
/// backward pass to the inputs (the base is frozen, so no weight gradients but the adapter's), a
/// second forward with gradient checkpointing, and attention over the sequence.
fn training_flops_per_token(c: &ModelConfig, s: &TrainSettings) -> f64 {
    let embed = (c.vocab_size * c.hidden_size) as f64;
    // The embedding lookup is free; the output layer (tied or not) is a product like any other.
    let products = c.num_parameters() as f64 - if c.tie_word_embeddings { 0.0 } else { embed } ;
    let attention = 2.0 * (c.num_layers * c.num_heads * c.head_dim) as f64 * s.max_len as f64;
    let forward = 2.0 * products + attention;
    let passes = if s.grad_checkpoint { 3.0 } else { 2.0 };
    forward * passes
}

/// Matrix-product speed of the training device, measured once per width and process: products of
/// 256 rows by a square matrix of the model's width, repeated for about 50 ms.
fn matmul_speed(hidden: usize, gpu: bool) -> Result<f64> {
    use candle_core::{DType, Device};
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static MEASURED: OnceLock<Mutex<HashMap<(usize, bool), f64>>> = OnceLock::new();
    let cache = MEASURED.get_or_init(Default::default);
    if let Some(f) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&(hidden, gpu)) {
        return Ok(*f);
    }
    let (device, dtype) = if gpu { whetstone_engine::device::best() } else { (Device::Cpu, DType::F32) };
    let flops = crate::backend::matmul_flops(&device, dtype, 256, hidden.max(64)).map_err(|e| Error::Internal(format!("measuring this computer's speed: {e}")))?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert((hidden, gpu), flops);
    Ok(flops)
}

/// Padded length of the longest batch, most trained tokens in one batch, and the length figures.
fn dataset_lengths(files: &ModelFiles, data: &Path, max_len: usize, batch: usize) -> Result<(u64, u64, DatasetLengths)> {
    let tokenizer = match files {
        ModelFiles::Gguf(p) => whetstone_data::Tokenizer::from_gguf_file(p)?,
        ModelFiles::HfDir(d) => whetstone_data::Tokenizer::from_hf_dir(d)?,
    };
    // Lengths before the cut, to count what training will truncate.
    let full = whetstone_data::read_training_rows(data)?
        .iter()
        .map(|row| whetstone_data::render_row_example(&tokenizer, row))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if full.is_empty() {
        return Err(Error::InvalidInput(format!("{}: no examples", data.display())));
    }
    let mut lens: Vec<usize> = full.iter().map(|e| e.input_ids.len()).collect();
    let truncated = lens.iter().filter(|&&l| l > max_len).count();
    let firsts: Vec<usize> = full.iter().map(|e| e.first_trained().unwrap_or(e.len())).collect();
    let dropped = firsts.iter().filter(|&&f| f >= max_len).count();
    let length_keeping_all = firsts.iter().map(|f| f + 1).max().unwrap_or(0);
    let mut trained: Vec<u64> = full
        .iter()
        .map(|e| e.loss_mask.iter().take(max_len).skip(1).filter(|&&m| m).count() as u64)
        .collect();
    lens.sort_unstable();
    trained.sort_unstable_by(|a, b| b.cmp(a));
    let max = *lens.last().unwrap_or(&0);
    let p95 = lens[((lens.len() as f64 * 0.95).ceil() as usize).saturating_sub(1).min(lens.len() - 1)];
    let mean = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    // Batches are shuffled, so some batch holds the longest example: plan for it, and for the
    // `batch` examples with the most trained tokens together.
    let seq = max.min(max_len) as u64;
    let most_trained: u64 = trained.iter().take(batch).sum();
    Ok((seq, most_trained, DatasetLengths { examples: lens.len(), mean_tokens: mean, p95_tokens: p95.min(max_len), max_tokens: max, truncated, dropped, length_keeping_all }))
}

/// The engine's prediction for a [`crate::bench::MeasureRequest`], through the same path as `whet plan`.
pub fn predict_peak(req: &crate::bench::MeasureRequest) -> Result<MemoryBreakdown> {
    let shape = shape_of_files(&req.model)?;
    let settings = TrainSettings {
        batch: req.batch,
        max_len: req.seq_len,
        lora_r: req.lora_r,
        targets: req.targets.clone(),
        lora_dropout: req.lora_dropout,
        grad_checkpoint: req.grad_checkpoint,
        ..TrainSettings::default()
    };
    let (device, dtype) = whetstone_engine::device::best();
    let bytes = dtype.size_in_bytes() as u64;
    let on_cpu = device.is_cpu();
    let dense = if bytes == 2 { BaseFormat::Bf16 } else { BaseFormat::F32 };
    let base = match (req.quant, &shape.files) {
        (QuantMode::Nf4, _) => BaseFormat::Nf4,
        (QuantMode::Native, Some(ModelFiles::Gguf(path))) => gguf_linear_format(path)?.unwrap_or(dense),
        _ => dense,
    };
    let job = job_shape(&settings, base, bytes, on_cpu, req.seq_len as u64, (req.batch * (req.seq_len - 1)) as u64, shape.load_transient_bytes)?;
    Ok(plan::estimate(&shape.config, &job))
}

/// Writes a model with random weights for `config` as an HF folder (`config.json`,
/// `model.safetensors`): for benches and tests that need a real model folder of a chosen shape.
pub fn write_random_model(dir: &Path, config: &ModelConfig, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { action: "create", path: dir.to_path_buf(), source })?;
    let w = whetstone_engine::weights::BaseWeights::random(config, seed, &candle_core::Device::Cpu)?;
    let c = config;
    let json = serde_json::json!({
        "model_type": c.architecture.model_type(),
        "architectures": [match c.architecture { Architecture::Llama => "LlamaForCausalLM", Architecture::Mistral => "MistralForCausalLM", Architecture::Qwen2 => "Qwen2ForCausalLM" }],
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tie_word_embeddings,
        "attention_bias": c.attention_bias,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_ids.first(),
        "hidden_act": "silu",
        "torch_dtype": "float32",
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap_or_default()).map_err(|source| Error::Io { action: "write", path, source })?;
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&w.tensors, &path).map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

/// The block type holding most of a GGUF file's decoder linear weights, when the planner knows it.
fn gguf_linear_format(path: &Path) -> Result<Option<BaseFormat>> {
    use candle_core::quantized::GgmlDType;
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io { action: "open", path: path.to_path_buf(), source })?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| Error::InvalidInput(format!("{}: not a readable GGUF file: {e}", path.display())))?;
    let mut by_type: std::collections::HashMap<GgmlDType, usize> = std::collections::HashMap::new();
    for (name, info) in &content.tensor_infos {
        if name.starts_with("blk.") && info.shape.dims().len() == 2 {
            *by_type.entry(info.ggml_dtype).or_default() += info.shape.elem_count();
        }
    }
    let Some((dtype, _)) = by_type.into_iter().max_by_key(|&(_, n)| n) else { return Ok(None) };
    Ok(match dtype {
        GgmlDType::Q4_0 => Some(BaseFormat::Q4_0),
        GgmlDType::Q4_1 => Some(BaseFormat::Q4_1),
        GgmlDType::Q4K => Some(BaseFormat::Q4K),
        GgmlDType::Q5K => Some(BaseFormat::Q5K),
        GgmlDType::Q6K => Some(BaseFormat::Q6K),
        GgmlDType::Q8_0 => Some(BaseFormat::Q8_0),
        GgmlDType::F16 => Some(BaseFormat::F16),
        GgmlDType::BF16 => Some(BaseFormat::Bf16),
        GgmlDType::F32 => Some(BaseFormat::F32),
        // Block types without a planner entry: planned as dense, an over-estimate.
        _ => None,
    })
}
