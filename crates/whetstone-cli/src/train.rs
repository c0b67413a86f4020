//! `whet train`: LoRA fine-tuning from a model path and a JSONL file.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use whetstone_api::training::{self, TrainRequest};
use whetstone_engine::run::{Event, TrainSettings};
use whetstone_engine::quant::QuantMode;
use whetstone_engine::schedule::ScheduleKind;

#[derive(Args)]
pub struct TrainArgs {
    /// Base model: a GGUF file or a folder with config.json and safetensors
    #[arg(long)]
    model: PathBuf,
    /// Training data, JSONL: {"prompt","response"}, {"instruction","input","output"}, {"messages":[..]} …
    #[arg(long)]
    data: PathBuf,
    /// Output folder: metrics.jsonl, adapter/ (PEFT layout), settings.json
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with any of the settings below (same names); flags override it
    #[arg(long)]
    config: Option<PathBuf>,
    /// Optimizer steps (default: as many as the epochs need)
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    epochs: Option<u64>,
    /// Learning rate
    #[arg(long)]
    lr: Option<f64>,
    /// Examples per micro-batch
    #[arg(long)]
    batch: Option<usize>,
    /// Micro-batches per optimizer step
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Longest sequence in tokens; longer examples are cut
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    lora_r: Option<usize>,
    #[arg(long)]
    lora_alpha: Option<f64>,
    #[arg(long)]
    lora_dropout: Option<f64>,
    /// Layers that get adapters, e.g. q,k,v,o,gate,up,down
    #[arg(long)]
    targets: Option<String>,
    /// Scale by alpha/sqrt(r) (rsLoRA) instead of alpha/r
    #[arg(long)]
    rslora: bool,
    /// constant, linear or cosine
    #[arg(long)]
    scheduler: Option<ScheduleKind>,
    /// Warm-up steps
    #[arg(long)]
    warmup: Option<u64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Recompute each block in the backward pass to save memory
    #[arg(long)]
    grad_checkpoint: bool,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Clip the gradient norm to this (0 turns clipping off)
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// CPU threads
    #[arg(long)]
    threads: Option<usize>,
    /// Base weights: native (a GGUF's own quantization), none (dense) or nf4 (QLoRA)
    #[arg(long)]
    quant: Option<QuantMode>,
}

impl TrainArgs {
    fn settings(&self) -> anyhow::Result<TrainSettings> {
        let mut s = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                TrainSettings::from_toml(&text, p)?
            }
            None => TrainSettings::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { s.$f = v; } )* };
        }
        set!(epochs, lr, batch, grad_accum, max_len, lora_r, lora_alpha, lora_dropout, targets, scheduler, warmup, seed, weight_decay, max_grad_norm, quant);
        if self.steps.is_some() {
            s.steps = self.steps;
        }
        if self.threads.is_some() {
            s.threads = self.threads;
        }
        s.rslora |= self.rslora;
        s.grad_checkpoint |= self.grad_checkpoint;
        Ok(s)
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    crate::set_threads(settings.threads);
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupt.clone();
        ctrlc::set_handler(move || {
            eprintln!("\nstopping after this step; the adapter trained so far will be saved");
            flag.store(true, Ordering::Relaxed);
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let req = TrainRequest { model: &args.model, data: &args.data, out: &args.out, settings };
    eprintln!("loading {} …", args.model.display());
    let mut total = 0;
    let summary = training::train(&req, &interrupt, |e| match e {
        Event::Started { total_steps, examples, trainable_parameters } => {
            total = *total_steps;
            eprintln!("training {trainable_parameters} adapter parameters on {examples} examples for {total_steps} steps");
        }
        Event::Step(m) => eprintln!(
            "step {}/{total}  loss {:.4}  lr {:.2e}  grad-norm {:.3}  {:.0} tok/s  {:.0}s",
            m.step, m.loss, m.lr, m.grad_norm, m.tokens_per_s, m.elapsed_s
        ),
        Event::Saved { adapter } => eprintln!("adapter saved to {}", adapter.display()),
    })?;
    if let (Some(a), Some(b)) = (summary.first_loss, summary.last_loss) {
        eprintln!("loss {a:.4} → {b:.4} over {} steps{}", summary.steps, if summary.interrupted { " (stopped early)" } else { "" });
    }
    Ok(())
}
