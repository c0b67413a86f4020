//! Training, evaluation and generation on model and data files: the engine and the data crate put
//! together, so that the CLI and the desktop app translate arguments and nothing more.

use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use whetstone_data::{build_examples, read_jsonl_rows, Message, Tokenizer};
use whetstone_engine::batch::collate;
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::run::{Event, RunSummary, TrainExample, TrainSettings};
use whetstone_engine::quant::QuantMode;
use whetstone_engine::{Adapter, Decoder, LoraCtx, ModelFiles};

/// A base model ready to run, with its tokenizer and chat template.
pub struct LoadedModel {
    pub decoder: Decoder,
    pub tokenizer: Tokenizer,
    pub path: PathBuf,
    /// What adapters record as `base_model_name_or_path`.
    pub name: String,
}

/// Loads a model folder or GGUF file on the best device this build can use (see
/// [`whetstone_engine::device::best`]), with its own tokenizer; the base's linear layers are held as
/// `quant` says.
pub fn load_model(path: &Path, quant: QuantMode) -> Result<LoadedModel> {
    let files = ModelFiles::detect(path)?;
    files.config()?;
    let tokenizer = match &files {
        ModelFiles::Gguf(p) => Tokenizer::from_gguf_file(p)?,
        ModelFiles::HfDir(d) => Tokenizer::from_hf_dir(d)?,
    };
    let (device, dtype) = whetstone_engine::device::best();
    let decoder = Decoder::load_quant(&files, dtype, &device, quant)?;
    if tokenizer.vocab_size() > decoder.config.vocab_size {
        return Err(Error::InvalidInput(format!(
            "{}: the tokenizer has {} tokens but the model only {}",
            path.display(),
            tokenizer.vocab_size(),
            decoder.config.vocab_size
        )));
    }
    let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string());
    Ok(LoadedModel { decoder, tokenizer, path: files.path().to_path_buf(), name })
}

/// Padding id for batches: the model's pad token, else end-of-sequence, else 0. Padded positions
/// are masked out of attention and loss, so any valid id works.
pub fn pad_id(tok: &Tokenizer) -> u32 {
    tok.pad_id().or(tok.eos_id()).unwrap_or(0)
}

/// `--data` for training: a JSONL file as it is, or else the name (or id) of an imported dataset, whose latest
/// version's training rows are used (see [`crate::Api::dataset_training_file`]).
pub fn resolve_training_data(api: &crate::Api, name_or_path: &Path) -> Result<PathBuf> {
    if name_or_path.is_file() {
        return Ok(name_or_path.to_path_buf());
    }
    let name = name_or_path.to_string_lossy();
    api.dataset_training_file(&name).map_err(|e| match e {
        Error::NotFoundNamed { known, .. } => Error::InvalidInput(format!(
            "--data {name}: no such file, and no dataset by that name (datasets: {known})"
        )),
        other => other,
    })
}

/// Reads a JSONL dataset and turns every row into a tokenized example with its loss mask.
pub fn load_examples(model: &LoadedModel, data: &Path, max_len: usize) -> Result<Vec<(usize, TrainExample)>> {
    match read_training_rows(data)? {
        TrainingRows::Chat(rows) => {
            let examples = build_examples(&model.tokenizer, &rows, max_len)?;
            Ok(rows
                .iter()
                .zip(examples)
                .map(|(r, e)| (r.line, TrainExample { ids: e.input_ids, trained: e.loss_mask }))
                .collect())
        }
        TrainingRows::Text(rows) => rows
            .iter()
            .map(|(line, text)| {
                let e = whetstone_data::build_text_example(&model.tokenizer, text, max_len)?;
                Ok((*line, TrainExample { ids: e.input_ids, trained: e.loss_mask }))
            })
            .collect(),
    }
}

/// What a training file holds: conversations, or plain text for continued pre-training (`{"text": …}`
/// on every line, every token trained).
pub enum TrainingRows {
    Chat(Vec<whetstone_data::Row>),
    Text(Vec<(usize, String)>),
}

impl TrainingRows {
    pub fn len(&self) -> usize {
        match self {
            TrainingRows::Chat(r) => r.len(),
            TrainingRows::Text(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a training file, with every bad row reported by line. A file whose first row is
/// `{"text": …}` alone is plain text, and then every row must be.
pub fn read_training_rows(data: &Path) -> Result<TrainingRows> {
    match read_text_rows(data)? {
        Some(rows) => Ok(TrainingRows::Text(rows)),
        None => Ok(TrainingRows::Chat(read_jsonl_rows(data)?)),
    }
}

fn read_text_rows(path: &Path) -> Result<Option<Vec<(usize, String)>>> {
    use std::io::BufRead;
    use whetstone_data::{BadRow, DataError, RowError};
    // Anything unreadable is left to the conversation reader, whose errors name the file.
    let Ok(file) = std::fs::File::open(path) else { return Ok(None) };
    let is_text_row = |v: &serde_json::Value| v.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("text"));
    let (mut rows, mut bad, mut total) = (Vec::new(), Vec::new(), 0);
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
        line += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            if total == 0 {
                return Ok(None);
            }
            total += 1;
            bad.push(BadRow { line, reason: RowError::NotUtf8 });
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) if total == 0 => return Ok(None),
            Err(e) => {
                total += 1;
                bad.push(BadRow { line, reason: RowError::InvalidJson(e.to_string()) });
                continue;
            }
        };
        if total == 0 && !is_text_row(&value) {
            return Ok(None);
        }
        total += 1;
        match value.get("text") {
            _ if !is_text_row(&value) => bad.push(BadRow { line, reason: RowError::MissingField("text".into()) }),
            Some(serde_json::Value::String(t)) if !t.trim().is_empty() => rows.push((line, t.clone())),
            Some(serde_json::Value::String(_)) => bad.push(BadRow { line, reason: RowError::EmptyField("text".into()) }),
            Some(other) => bad.push(BadRow {
                line,
                reason: RowError::WrongType { field: "text".into(), expected: "a string", got: crate::dispatch::json_kind(other) },
            }),
            None => bad.push(BadRow { line, reason: RowError::MissingField("text".into()) }),
        }
    }
    if !bad.is_empty() {
        return Err(DataError::BadRows { path: path.to_path_buf(), total_rows: total, bad }.into());
    }
    Ok(if total == 0 { None } else { Some(rows) })
}

pub struct TrainRequest<'a> {
    pub model: &'a Path,
    pub data: &'a Path,
    pub out: &'a Path,
    pub settings: TrainSettings,
}

/// Trains a LoRA adapter; writes `out/metrics.jsonl`, `out/adapter/` and `out/settings.json`.
pub fn train(req: &TrainRequest, interrupt: &AtomicBool, on_event: impl FnMut(&Event)) -> Result<RunSummary> {
    req.settings.validate()?;
    let model = load_model(req.model, req.settings.quant)?;
    let examples: Vec<TrainExample> = load_examples(&model, req.data, req.settings.max_len)?.into_iter().map(|(_, e)| e).collect();
    std::fs::create_dir_all(req.out).map_err(|source| Error::Io { action: "create the output folder", path: req.out.to_path_buf(), source })?;
    let settings_json = serde_json::to_vec_pretty(&serde_json::json!({
        "model": model.path,
        "data": req.data,
        "settings": req.settings,
    }))
    .map_err(|e| Error::Internal(e.to_string()))?;
    let sp = req.out.join("settings.json");
    std::fs::write(&sp, settings_json).map_err(|source| Error::Io { action: "write", path: sp, source })?;
    let pad = pad_id(&model.tokenizer);
    Ok(whetstone_engine::run::train(&model.decoder, &examples, &req.settings, req.out, &model.name, pad, interrupt, on_event)?)
}

#[derive(Debug, Clone, Serialize)]
pub struct RowLoss {
    /// Line of the row in the data file.
    pub line: usize,
    pub loss: f64,
    pub tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Mean over all response tokens of all rows.
    pub loss: f64,
    pub tokens: usize,
    pub perplexity: f64,
    pub rows: Vec<RowLoss>,
}

/// Mean loss over response tokens, with and without an adapter; no gradients are recorded.
pub fn eval_loss(model: &LoadedModel, adapter: Option<&Adapter>, data: &Path, max_len: usize) -> Result<EvalReport> {
    let examples = load_examples(model, data, max_len)?;
    let ctx = adapter.map(|a| LoraCtx { adapter: a, train: false, dropout: None });
    let pad = pad_id(&model.tokenizer);
    let mut rows = Vec::with_capacity(examples.len());
    let (mut sum, mut tokens) = (0f64, 0usize);
    for chunk in examples.chunks(4) {
        let refs: Vec<(&[u32], &[bool])> = chunk.iter().map(|(_, e)| (e.ids.as_slice(), e.trained.as_slice())).collect();
        let b = collate(&refs, pad, &model.decoder.device)?;
        let losses = model.decoder.row_losses(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, ctx.as_ref())?;
        for ((line, _), (loss, n)) in chunk.iter().zip(losses) {
            if n > 0 {
                sum += loss * n as f64;
                tokens += n;
            }
            rows.push(RowLoss { line: *line, loss, tokens: n });
        }
    }
    if tokens == 0 {
        return Err(Error::InvalidInput(format!("{}: no response tokens to evaluate", data.display())));
    }
    let loss = sum / tokens as f64;
    Ok(EvalReport { loss, tokens, perplexity: loss.exp(), rows })
}

pub fn load_adapter(model: &LoadedModel, dir: &Path) -> Result<Adapter> {
    Ok(Adapter::load_peft(dir, &model.decoder.config, &model.decoder.device)?)
}

/// The chat-templated prompt for one user message, as token ids.
pub fn prompt_ids(model: &LoadedModel, user: &str) -> Result<Vec<u32>> {
    let tok = &model.tokenizer;
    let text = tok.chat_template().render(&[Message::user(user)], true)?;
    let mut ids = tok.encode(&text, false)?;
    if tok.adds_bos() && !text.starts_with(tok.chat_template().bos_token()) {
        if let Some(bos) = tok.bos_id() {
            ids.insert(0, bos);
        }
    }
    Ok(ids)
}

/// Answers `user` through the model's chat template; `on_text` receives the text as it is produced.
pub fn generate(
    model: &LoadedModel,
    adapter: Option<&Adapter>,
    user: &str,
    opts: &SamplingOptions,
    mut on_text: impl FnMut(&str),
) -> Result<String> {
    let ids = prompt_ids(model, user)?;
    let ctx = adapter.map(|a| LoraCtx { adapter: a, train: false, dropout: None });
    let mut stream = model.tokenizer.stream(true);
    let mut out = String::new();
    let mut failed = None;
    whetstone_engine::generate::generate(&model.decoder, &ids, &model.tokenizer.stop_ids(), opts, ctx.as_ref(), |id| {
        match stream.push(id) {
            Ok(Some(piece)) => {
                on_text(&piece);
                out.push_str(&piece);
            }
            Ok(None) => {}
            Err(e) => {
                failed = Some(e);
                return false;
            }
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(rest) = stream.finish()? {
        on_text(&rest);
        out.push_str(&rest);
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub model: String,
    pub batch: usize,
    pub seq_len: usize,
    pub lora_r: usize,
    pub grad_checkpoint: bool,
    pub threads: usize,
    pub steps: usize,
    pub tokens_per_s: f64,
    pub step_s_mean: f64,
    pub step_s_min: f64,
    pub peak_rss_mb: f64,
    pub trainable_parameters: usize,
    pub quant: QuantMode,
    /// Quantized formats of the base's linear layers (empty when dense).
    pub quant_kinds: Vec<String>,
    /// Bytes per parameter of the loaded base, and of its quantized linear layers alone.
    pub base_bytes_per_param: f64,
    pub linear_bytes_per_param: Option<f64>,
    pub base_mb: f64,
}

pub struct BenchRequest<'a> {
    pub model: &'a Path,
    pub batch: usize,
    pub seq_len: usize,
    pub lora_r: usize,
    pub steps: usize,
    pub warmup_steps: usize,
    pub grad_checkpoint: bool,
    pub quant: QuantMode,
}

/// Peak resident memory of this process so far, from the kernel's high-water mark.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Training speed and memory on fixed random tokens (every token trained), the configuration of
/// `scripts/bench/torch_train.py`.
pub fn bench_train(req: &BenchRequest, mut on_step: impl FnMut(usize, f64)) -> Result<BenchReport> {
    use whetstone_engine::lora::{LoraConfig, Target};
    use whetstone_engine::optim::AdamWConfig;
    use whetstone_engine::rng::Rng;
    use whetstone_engine::schedule::{Schedule, ScheduleKind};
    use whetstone_engine::train::{StepOptions, Trainer};
    if req.steps == 0 || req.batch == 0 || req.seq_len < 2 {
        return Err(Error::InvalidInput("bench needs at least 1 step, batch 1 and 2 tokens".into()));
    }
    let files = ModelFiles::detect(req.model)?;
    let (device, dtype) = whetstone_engine::device::best();
    let decoder = Decoder::load_quant(&files, dtype, &device, req.quant)?;
    let mem = decoder.base_memory();
    let mut rng = Rng::new(0);
    let lora = LoraConfig { r: req.lora_r, alpha: 2.0 * req.lora_r as f64, dropout: 0.0, targets: Target::ALL.to_vec(), use_rslora: false };
    let adapter = Adapter::init(&decoder.config, lora, &mut rng, &decoder.device)?;
    let params = adapter.num_parameters();
    let total = (req.steps + req.warmup_steps) as u64;
    let schedule = Schedule { kind: ScheduleKind::Constant, base_lr: 1e-4, warmup_steps: 0, total_steps: total };
    let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: req.grad_checkpoint };
    let adamw = AdamWConfig { weight_decay: 0.0, ..AdamWConfig::default() };
    let mut trainer = Trainer::new(&decoder, adapter, adamw, schedule, opts, Rng::new(1))?;
    let vocab = decoder.config.vocab_size;
    let n = req.batch * req.seq_len;
    let ids: Vec<u32> = (0..n).map(|_| rng.below(vocab) as u32).collect();
    let dev = &decoder.device;
    let tensor = |r: candle_core::Result<Tensor>| r.map_err(whetstone_engine::Error::from);
    let batch = whetstone_engine::batch::Batch {
        input_ids: tensor(Tensor::from_vec(ids, (req.batch, req.seq_len), dev))?,
        attention_mask: tensor(Tensor::ones((req.batch, req.seq_len), DType::U32, dev))?,
        loss_mask: tensor(Tensor::ones((req.batch, req.seq_len), DType::U32, dev))?,
        tokens: n,
        targets: req.batch * (req.seq_len - 1),
    };
    let mut times = Vec::with_capacity(req.steps);
    for i in 0..(req.warmup_steps + req.steps) {
        let t0 = std::time::Instant::now();
        trainer.step(std::slice::from_ref(&batch))?;
        let dt = t0.elapsed().as_secs_f64();
        on_step(i, dt);
        if i >= req.warmup_steps {
            times.push(dt);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(BenchReport {
        implementation: "whetstone",
        model: req.model.display().to_string(),
        batch: req.batch,
        seq_len: req.seq_len,
        lora_r: req.lora_r,
        grad_checkpoint: req.grad_checkpoint,
        threads: std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }),
        steps: req.steps,
        tokens_per_s: n as f64 / mean,
        step_s_mean: mean,
        step_s_min: min,
        peak_rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
        trainable_parameters: params,
        quant: req.quant,
        quant_kinds: mem.kinds.iter().cloned().collect(),
        base_bytes_per_param: mem.bytes_per_param(),
        linear_bytes_per_param: (mem.linear_params > 0).then(|| mem.linear_bytes_per_param()),
        base_mb: (mem.linear_bytes + mem.dense_bytes) as f64 / (1024.0 * 1024.0),
    })
}
