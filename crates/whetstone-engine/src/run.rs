//! The training loop: epochs, shuffling, batching, the step, metrics on disk and the saved adapter.
//! Progress goes out as events, so a terminal, the desktop app or a worker process can show it as
//! each sees fit; an interrupt flag stops the loop between steps.

use crate::batch::collate;
use crate::error::{Error, Result};
use crate::lora::{Adapter, LoraConfig, Target};
use crate::model::Decoder;
use crate::optim::AdamWConfig;
use crate::quant::QuantMode;
use crate::rng::Rng;
use crate::schedule::{Schedule, ScheduleKind};
use crate::train::{StepOptions, Trainer};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Everything a run is configured with. Field names are the CLI's flag names, so a TOML file given with
/// `--config` uses the same keys (`lora-r = 8`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TrainSettings {
    /// Optimizer steps; when absent, `epochs` passes over the data decide.
    pub steps: Option<u64>,
    pub epochs: u64,
    pub lr: f64,
    /// Examples per micro-batch.
    pub batch: usize,
    pub grad_accum: usize,
    pub max_len: usize,
    pub lora_r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub targets: String,
    pub rslora: bool,
    pub scheduler: ScheduleKind,
    pub warmup: u64,
    pub seed: u64,
    pub grad_checkpoint: bool,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub threads: Option<usize>,
    /// How the base's linear layers are held: `native` (a GGUF's own quantization; dense for
    /// safetensors), `none` (dense) or `nf4` (QLoRA).
    pub quant: QuantMode,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            steps: None,
            epochs: 1,
            lr: 2e-4,
            batch: 4,
            grad_accum: 1,
            max_len: 512,
            lora_r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.05,
            targets: "q,k,v,o,gate,up,down".into(),
            rslora: false,
            scheduler: ScheduleKind::Cosine,
            warmup: 0,
            seed: 42,
            grad_checkpoint: false,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            threads: None,
            quant: QuantMode::default(),
        }
    }
}

impl TrainSettings {
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Settings(format!("{}: {e}", path.display())))
    }

    pub fn lora(&self) -> Result<LoraConfig> {
        let c = LoraConfig {
            r: self.lora_r,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            targets: Target::parse_list(&self.targets)?,
            use_rslora: self.rslora,
        };
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Settings(m.into()));
        if self.batch == 0 {
            return bad("batch must be at least 1");
        }
        if self.grad_accum == 0 {
            return bad("grad-accum must be at least 1");
        }
        if self.max_len < 2 {
            return bad("max-len must be at least 2 tokens");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr must be a positive number");
        }
        if self.steps == Some(0) || (self.steps.is_none() && self.epochs == 0) {
            return bad("nothing to train: steps or epochs must be at least 1");
        }
        self.lora().map(|_| ())
    }

    /// Optimizer steps the run will take over `n` examples.
    pub fn total_steps(&self, n: usize) -> u64 {
        match self.steps {
            Some(s) => s,
            None => {
                let per_step = (self.batch * self.grad_accum) as u64;
                (n as u64).div_ceil(per_step) * self.epochs
            }
        }
    }
}

/// A tokenized example: ids and which of them are trained.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainExample {
    pub ids: Vec<u32>,
    pub trained: Vec<bool>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub epoch: u64,
}

#[derive(Debug, Clone)]
pub enum Event {
    Started { total_steps: u64, examples: usize, trainable_parameters: usize },
    Step(StepMetrics),
    Saved { adapter: PathBuf },
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub steps: u64,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub adapter: PathBuf,
    pub interrupted: bool,
}

/// Deterministic stream of examples: each epoch a fresh seeded shuffle.
struct Order {
    idx: Vec<usize>,
    pos: usize,
    epoch: u64,
    rng: Rng,
}

impl Order {
    fn new(n: usize, seed: u64) -> Self {
        let mut o = Order { idx: (0..n).collect(), pos: 0, epoch: 0, rng: Rng::new(seed ^ 0x5eed_da7a) };
        o.rng.shuffle(&mut o.idx);
        o
    }
    fn next(&mut self) -> usize {
        if self.pos == self.idx.len() {
            self.rng.shuffle(&mut self.idx);
            self.pos = 0;
            self.epoch += 1;
        }
        self.pos += 1;
        self.idx[self.pos - 1]
    }
}

/// Train an adapter on `examples` and write `out/metrics.jsonl` and `out/adapter/` (PEFT layout).
pub fn train(
    model: &Decoder,
    examples: &[TrainExample],
    settings: &TrainSettings,
    out: &Path,
    base_model_name: &str,
    pad_id: u32,
    interrupt: &AtomicBool,
    mut on_event: impl FnMut(&Event),
) -> Result<RunSummary> {
    settings.validate()?;
    if examples.is_empty() {
        return Err(Error::Settings("the dataset has no examples".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut rng = Rng::new(settings.seed);
    let adapter = Adapter::init(&model.config, settings.lora()?, &mut rng, &model.device)?;
    let total_steps = settings.total_steps(examples.len());
    let schedule = Schedule { kind: settings.scheduler, base_lr: settings.lr, warmup_steps: settings.warmup, total_steps };
    let adamw = AdamWConfig { weight_decay: settings.weight_decay, ..AdamWConfig::default() };
    let options = StepOptions {
        max_grad_norm: (settings.max_grad_norm > 0.0).then_some(settings.max_grad_norm),
        grad_checkpoint: settings.grad_checkpoint,
    };
    let mut trainer = Trainer::new(model, adapter, adamw, schedule, options, rng)?;
    on_event(&Event::Started {
        total_steps,
        examples: examples.len(),
        trainable_parameters: trainer.adapter.num_parameters(),
    });
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics = std::fs::File::create(&metrics_path).map_err(|e| Error::io(&metrics_path, e))?;
    let mut order = Order::new(examples.len(), settings.seed);
    let start = Instant::now();
    let (mut first, mut last) = (None, None);
    let mut done = 0;
    let mut interrupted = false;
    for step in 0..total_steps {
        if interrupt.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let mut micro = Vec::with_capacity(settings.grad_accum);
        for _ in 0..settings.grad_accum {
            let rows: Vec<(&[u32], &[bool])> = (0..settings.batch)
                .map(|_| {
                    let e = &examples[order.next()];
                    let n = e.ids.len().min(settings.max_len);
                    (&e.ids[..n], &e.trained[..n])
                })
                .collect();
            micro.push(collate(&rows, pad_id, &model.device)?);
        }
        let r = trainer.step(&micro)?;
        let dt = t0.elapsed().as_secs_f64();
        let m = StepMetrics {
            step: step + 1,
            loss: r.loss,
            lr: r.lr,
            grad_norm: r.grad_norm,
            tokens: r.tokens,
            tokens_per_s: r.tokens as f64 / dt.max(1e-9),
            elapsed_s: start.elapsed().as_secs_f64(),
            epoch: order.epoch,
        };
        let line = serde_json::to_string(&m).map_err(|e| Error::Settings(e.to_string()))?;
        writeln!(metrics, "{line}").map_err(|e| Error::io(&metrics_path, e))?;
        metrics.flush().map_err(|e| Error::io(&metrics_path, e))?;
        first.get_or_insert(r.loss);
        last = Some(r.loss);
        done = step + 1;
        on_event(&Event::Step(m));
    }
    let adapter_dir = out.join("adapter");
    trainer.adapter.save_peft(&adapter_dir, base_model_name, model.config.architecture.model_type())?;
    on_event(&Event::Saved { adapter: adapter_dir.clone() });
    Ok(RunSummary { steps: done, first_loss: first, last_loss: last, adapter: adapter_dir, interrupted })
}
