//! What a run is configured with, read from flags or a TOML file, and the checks that refuse
//! settings no run could use.

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::lora::{LoraConfig, Target};
use crate::quant::QuantMode;
use crate::schedule::ScheduleKind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything a run is configured with. Field names are the CLI's flag names; a settings file given
/// with `--config` takes these or the PEFT / HF Trainer names (see [`crate::settings_file`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
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
    /// Warm-up as a share of the run's steps (the HF Trainer's `warmup_ratio`); used when `warmup` is 0.
    pub warmup_ratio: Option<f64>,
    pub seed: u64,
    pub grad_checkpoint: bool,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub threads: Option<usize>,
    /// How the base's linear layers are held: `native` (a GGUF's own quantization; dense for
    /// safetensors), `none` (dense) or `nf4` (QLoRA).
    pub quant: QuantMode,
    /// Evaluate on the validation examples every this many steps (and at the last step); 0: only at the end.
    pub eval_every: u64,
    /// Save a checkpoint every this many steps; 0: only when pausing or stopping.
    pub save_every: u64,
    /// Newest checkpoints kept besides the best one.
    pub keep_checkpoints: usize,
    /// Stop after this many evaluations without improvement; 0 turns early stopping off.
    pub patience: u64,
    /// How much lower the validation loss must be to count as an improvement.
    pub min_delta: f64,
    /// End with the adapter of the best evaluation rather than the last step.
    pub load_best_at_end: bool,
    /// Stop after this many steps in a row whose loss or gradient was not a finite number.
    pub max_bad_steps: u64,
    /// Refuse a data file with rows that have no answer token within `max_len`, instead of leaving
    /// those rows out (and reporting them).
    pub strict_rows: bool,
    /// Fit long rows by cutting their prompt from its start, keeping the answer, instead of cutting
    /// the end.
    pub truncate_prompt: bool,
    /// Where to train: `auto` (the best this computer has), `cpu`, `cuda`, `cuda:N` or `metal`.
    pub device: DeviceChoice,
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
            warmup_ratio: None,
            seed: 42,
            grad_checkpoint: false,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            threads: None,
            quant: QuantMode::default(),
            eval_every: 50,
            save_every: 50,
            keep_checkpoints: 2,
            patience: 3,
            min_delta: 0.0,
            load_best_at_end: true,
            max_bad_steps: 5,
            strict_rows: false,
            truncate_prompt: false,
            device: DeviceChoice::Auto,
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
        if let Some(r) = self.warmup_ratio {
            if !(0.0..1.0).contains(&r) {
                return bad("warmup-ratio must be a fraction from 0 to below 1");
            }
        }
        if self.max_bad_steps == 0 {
            return bad("max-bad-steps must be at least 1");
        }
        if !(self.min_delta >= 0.0 && self.min_delta.is_finite()) {
            return bad("min-delta must be a number of at least 0");
        }
        if self.steps == Some(0) || (self.steps.is_none() && self.epochs == 0) {
            return bad("nothing to train: steps or epochs must be at least 1");
        }
        self.lora().map(|_| ())
    }

    /// Warm-up steps of a run of `total` steps.
    pub fn warmup_steps(&self, total: u64) -> u64 {
        match self.warmup_ratio {
            Some(r) if self.warmup == 0 => (r * total as f64).ceil() as u64,
            _ => self.warmup,
        }
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
