//! Benchmarks: training speed and peak memory on random tokens, and the data pipeline on a synthetic
//! dataset. Each prints figures (`whet bench …`); no test asserts a time.

use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use whetstone_data::clean;
use whetstone_data::import::{self, ImportOptions};
use whetstone_engine::batch::Batch;
use whetstone_engine::lora::{LoraConfig, Target};
use whetstone_engine::optim::AdamWConfig;
use whetstone_engine::quant::QuantMode;
use whetstone_engine::rng::Rng;
use whetstone_engine::schedule::{Schedule, ScheduleKind};
use whetstone_engine::train::{StepOptions, Trainer};
use whetstone_engine::{Adapter, Decoder, ModelFiles};

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub model: String,
    pub batch: usize,
    pub seq_len: usize,
    pub lora_r: usize,
    pub lora_dropout: f64,
    pub grad_checkpoint: bool,
    pub threads: usize,
    pub steps: usize,
    pub tokens_per_s: f64,
    pub step_s_mean: f64,
    pub step_s_min: f64,
    pub peak_rss_mb: f64,
    /// Minor page faults a timed step takes on average: fresh memory the step touches.
    pub minor_faults_per_step: Option<f64>,
    /// Model FLOPs a trained token takes (see [`crate::gpu_bench::flops_per_token`]), and the rate
    /// the step achieved with them.
    pub gflop_per_token: f64,
    pub gflop_per_s: f64,
    /// This machine's measured f32 matrix-product speed with the same threads, and the share of it
    /// the training step reached.
    pub sgemm_peak_gflop_per_s: Option<f64>,
    pub share_of_sgemm_peak: Option<f64>,
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
    pub lora_dropout: f64,
    pub steps: usize,
    pub warmup_steps: usize,
    pub grad_checkpoint: bool,
    pub quant: QuantMode,
}

/// `6.74B`, `135M`, `40K`.
pub fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Peak resident memory of this process so far, from the kernel's high-water mark.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Minor page faults of this process so far.
pub fn minor_faults() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
        // SAFETY: on success the kernel wrote the whole struct (and it started zeroed).
        (rc == 0).then(|| unsafe { usage.assume_init() }.ru_minflt as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The machine's f32 product speed, FLOP/s: the best of five measurements of a 1024 × 1024 ×
/// 1024 product (as wide as a training step's products are tall), so that a moment of other work
/// on the machine does not pass for its peak.
fn sgemm_peak(device: &candle_core::Device) -> Option<f64> {
    (0..5).filter_map(|_| crate::backend::matmul_flops(device, DType::F32, 1024, 1024).ok()).reduce(f64::max)
}

/// Training speed and memory on fixed random tokens (every token trained), the configuration of
/// `scripts/bench/torch_train.py`.
pub fn bench_train(req: &BenchRequest, mut on_step: impl FnMut(usize, f64)) -> Result<BenchReport> {
    if req.steps == 0 || req.batch == 0 || req.seq_len < 2 {
        return Err(Error::InvalidInput("bench needs at least 1 step, batch 1 and 2 tokens".into()));
    }
    if !(0.0..1.0).contains(&req.lora_dropout) {
        return Err(Error::InvalidInput(format!("LoRA dropout must be at least 0 and below 1, not {}", req.lora_dropout)));
    }
    let total = (req.steps + req.warmup_steps) as u64;
    let shape = Shape { model: req.model, batch: req.batch, seq_len: req.seq_len, lora_r: req.lora_r, targets: Target::ALL.to_vec(), dropout: req.lora_dropout, grad_checkpoint: req.grad_checkpoint, quant: req.quant };
    let decoder = load(&shape)?;
    let mem = decoder.base_memory();
    let (mut trainer, batch) = random_job(&decoder, &shape, total, AdamWConfig { weight_decay: 0.0, ..AdamWConfig::default() })?;
    let params = trainer.adapter.num_parameters();
    let mut times = Vec::with_capacity(req.steps);
    let mut faults_before = None;
    for i in 0..(req.warmup_steps + req.steps) {
        if i == req.warmup_steps {
            faults_before = minor_faults();
        }
        let t0 = Instant::now();
        trainer.step(std::slice::from_ref(&batch))?;
        let dt = t0.elapsed().as_secs_f64();
        on_step(i, dt);
        if i >= req.warmup_steps {
            times.push(dt);
        }
    }
    let minor_faults_per_step = match (faults_before, minor_faults()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / req.steps as f64),
        _ => None,
    };
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let tokens_per_s = (req.batch * req.seq_len) as f64 / mean;
    let gflop_per_token = crate::gpu_bench::flops_per_token(&decoder.config, req.seq_len) / 1e9;
    let gflop_per_s = tokens_per_s * gflop_per_token;
    let sgemm_peak_gflop_per_s = if decoder.device.is_cpu() { sgemm_peak(&decoder.device).map(|f| f / 1e9) } else { None };
    Ok(BenchReport {
        implementation: "whetstone",
        model: req.model.display().to_string(),
        batch: req.batch,
        seq_len: req.seq_len,
        lora_r: req.lora_r,
        lora_dropout: req.lora_dropout,
        grad_checkpoint: req.grad_checkpoint,
        threads: rayon_threads(),
        steps: req.steps,
        tokens_per_s,
        step_s_mean: mean,
        step_s_min: min,
        peak_rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
        minor_faults_per_step,
        gflop_per_token,
        gflop_per_s,
        sgemm_peak_gflop_per_s,
        share_of_sgemm_peak: sgemm_peak_gflop_per_s.map(|p| gflop_per_s / p),
        trainable_parameters: params,
        quant: req.quant,
        quant_kinds: mem.kinds.iter().cloned().collect(),
        base_bytes_per_param: mem.bytes_per_param(),
        linear_bytes_per_param: (mem.linear_params > 0).then(|| mem.linear_bytes_per_param()),
        base_mb: (mem.linear_bytes + mem.dense_bytes) as f64 / (1024.0 * 1024.0),
    })
}

/// One configuration of the training benches.
struct Shape<'a> {
    model: &'a Path,
    batch: usize,
    seq_len: usize,
    lora_r: usize,
    targets: Vec<Target>,
    dropout: f64,
    grad_checkpoint: bool,
    quant: QuantMode,
}

fn load(shape: &Shape) -> Result<Decoder> {
    let files = ModelFiles::detect(shape.model)?;
    let (device, dtype) = whetstone_engine::device::best();
    Ok(Decoder::load_quant(&files, dtype, &device, shape.quant)?)
}

/// A trainer with a fresh adapter (alpha = 2r) and one batch of random tokens, every one trained:
/// the same work on every run of a configuration.
fn random_job<'a>(decoder: &'a Decoder, shape: &Shape, total_steps: u64, adamw: AdamWConfig) -> Result<(Trainer<'a>, Batch)> {
    let mut rng = Rng::new(0);
    let lora = LoraConfig { r: shape.lora_r, alpha: 2.0 * shape.lora_r as f64, dropout: shape.dropout, targets: shape.targets.clone(), use_rslora: false };
    let adapter = Adapter::init(&decoder.config, lora, &mut rng, &decoder.device)?;
    let schedule = Schedule { kind: ScheduleKind::Constant, base_lr: 1e-4, warmup_steps: 0, total_steps };
    let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: shape.grad_checkpoint };
    let trainer = Trainer::new(decoder, adapter, adamw, schedule, opts, Rng::new(1))?;
    let n = shape.batch * shape.seq_len;
    let ids: Vec<u32> = (0..n).map(|_| rng.below(decoder.config.vocab_size) as u32).collect();
    let dev = &decoder.device;
    let t = |r: candle_core::Result<Tensor>| r.map_err(whetstone_engine::Error::from);
    let batch = Batch {
        input_ids: t(Tensor::from_vec(ids, (shape.batch, shape.seq_len), dev))?,
        attention_mask: t(Tensor::ones((shape.batch, shape.seq_len), DType::U32, dev))?,
        loss_mask: t(Tensor::ones((shape.batch, shape.seq_len), DType::U32, dev))?,
        tokens: n,
        targets: shape.batch * (shape.seq_len - 1),
    };
    Ok((trainer, batch))
}

/// One training configuration for [`measure_peak`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeasureRequest {
    pub model: PathBuf,
    pub batch: usize,
    pub seq_len: usize,
    pub lora_r: usize,
    pub targets: String,
    pub lora_dropout: f64,
    pub grad_checkpoint: bool,
    pub steps: usize,
    /// How the base's linear layers are held, as `--quant` says.
    pub quant: QuantMode,
}

/// The peak this process reached: run it in a fresh process per configuration, since the
/// high-water mark never goes down.
pub fn measure_peak(req: &MeasureRequest) -> Result<u64> {
    let shape = Shape {
        model: &req.model,
        batch: req.batch,
        seq_len: req.seq_len,
        lora_r: req.lora_r,
        targets: Target::parse_list(&req.targets)?,
        dropout: req.lora_dropout,
        grad_checkpoint: req.grad_checkpoint,
        quant: req.quant,
    };
    let decoder = load(&shape)?;
    let (mut trainer, batch) = random_job(&decoder, &shape, req.steps as u64, AdamWConfig::default())?;
    for _ in 0..req.steps.max(1) {
        trainer.step(std::slice::from_ref(&batch))?;
    }
    peak_rss_mb()
        .map(|mb| (mb * 1024.0 * 1024.0) as u64)
        .ok_or_else(|| Error::Internal("this system does not report peak memory (/proc/self/status)".into()))
}

#[derive(Debug, Clone, Serialize)]
pub struct DataBenchReport {
    pub rows: usize,
    pub source_mb: f64,
    pub threads: usize,
    pub generate_s: f64,
    pub import_s: f64,
    pub exact_dedupe_s: f64,
    pub near_dedupe_s: f64,
    pub pii_scan_s: f64,
    /// import + exact + near + PII (generation excluded).
    pub total_s: f64,
    pub accepted: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    pub pii_findings: usize,
}

/// Generates `rows` synthetic rows of about 1 KB in `dir` (deterministic), then times import, exact and near
/// deduplication and the personal-data scan.
pub fn bench_data(dir: &Path, rows: usize, mut on_phase: impl FnMut(&str, f64)) -> Result<DataBenchReport> {
    if rows == 0 {
        return Err(Error::InvalidInput("--rows must be at least 1".into()));
    }
    let src = dir.join("bench.jsonl");
    let out = dir.join("bench.rows.jsonl");
    let t = Instant::now();
    whetstone_data::synthetic::write_synthetic_jsonl(&src, rows, 1000, 2025)?;
    let generate_s = t.elapsed().as_secs_f64();
    on_phase("generate", generate_s);
    let source_mb = std::fs::metadata(&src).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);

    let t = Instant::now();
    let mut data = Vec::with_capacity(rows);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).map_err(|source| Error::Io { action: "create", path: out.clone(), source })?);
    let report = import::import_file(
        &src,
        &ImportOptions::default(),
        |row| {
            w.write_all(row.to_json().as_bytes())?;
            w.write_all(b"\n")?;
            data.push(row);
            Ok(())
        },
        |_| Ok(()),
    )?;
    w.flush().map_err(|source| Error::Io { action: "write", path: out.clone(), source })?;
    let import_s = t.elapsed().as_secs_f64();
    on_phase("import", import_s);

    let all: Vec<usize> = (0..data.len()).collect();
    let t = Instant::now();
    let exact_groups = clean::exact_duplicate_groups(&data, &all);
    let exact_s = t.elapsed().as_secs_f64();
    on_phase("exact dedupe", exact_s);
    let exact: usize = exact_groups.iter().map(|g| g.len() - 1).sum();
    let mut gone = vec![false; data.len()];
    for g in &exact_groups {
        for &i in &g[1..] {
            gone[i] = true;
        }
    }
    let alive: Vec<usize> = all.iter().copied().filter(|&i| !gone[i]).collect();

    let t = Instant::now();
    let sigs = clean::signatures(&data, &alive);
    let near_groups = clean::minhash::near_duplicate_groups(&sigs, 0.8);
    let near_s = t.elapsed().as_secs_f64();
    on_phase("near dedupe", near_s);
    let near: usize = near_groups.iter().map(|g| g.len() - 1).sum();

    let t = Instant::now();
    let findings = clean::pii_findings(&data, &alive);
    let pii_s = t.elapsed().as_secs_f64();
    on_phase("PII scan", pii_s);

    Ok(DataBenchReport {
        rows,
        source_mb,
        threads: rayon_threads(),
        generate_s,
        import_s,
        exact_dedupe_s: exact_s,
        near_dedupe_s: near_s,
        pii_scan_s: pii_s,
        total_s: import_s + exact_s + near_s + pii_s,
        accepted: report.accepted,
        exact_duplicates: exact,
        near_duplicates: near,
        pii_findings: findings.len(),
    })
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
