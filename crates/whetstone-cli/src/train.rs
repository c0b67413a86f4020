//! `whet train`: LoRA fine-tuning as a run. The training itself happens in a worker process (see
//! `whet runs`); in the foreground this command follows it and Ctrl-C pauses it cleanly.

use clap::Args;
use std::path::{Path, PathBuf};
use whetstone_api::{Api, StartRun};
use whetstone_engine::device::DeviceChoice;
use whetstone_engine::quant::QuantMode;
use whetstone_engine::run::TrainSettings;
use whetstone_engine::schedule::ScheduleKind;

#[derive(Args)]
pub struct TrainArgs {
    /// Base model: a GGUF file, a folder with config.json and safetensors, or an installed model's id,
    /// name or hub id
    #[arg(long, required_unless_present = "resume")]
    model: Option<PathBuf>,
    /// Training data: a file in any format and shape `whet data import` reads (JSONL, JSON, CSV/TSV, text)
    /// or the name of an imported dataset (its latest version's train split)
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Validation data (same formats, or an imported dataset's name: its val split): evaluated every
    /// --eval-every steps, for early stopping and the best adapter
    #[arg(long)]
    val: Option<PathBuf>,
    /// Run folder: metrics.jsonl, adapter/ (PEFT layout), checkpoints/, events.jsonl [default: a new folder under the home folder's runs/]
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Replace an earlier run's files in --out (a folder holding anything is refused without it)
    #[arg(long)]
    overwrite: bool,
    /// Start the run in the background, print its id and return
    #[arg(long)]
    detach: bool,
    /// Continue run ID from its last good checkpoint
    #[arg(long, value_name = "ID", conflicts_with_all = ["model", "data", "val", "out", "config"])]
    resume: Option<i64>,
}

/// The training settings as flags, shared by `whet train` and `whet plan`: the keys of
/// [`TrainSettings`], each overriding `--config`.
#[derive(Args)]
pub struct SettingsArgs {
    /// Start from a preset sized for the data and this machine, as the app offers them: quick-test,
    /// balanced or thorough; --config and the flags below change it further
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// A settings file (TOML, YAML or JSON) with any of the settings below, under these names or the ones
    /// PEFT and the HF Trainer use (r, lora_alpha, learning_rate, per_device_train_batch_size, ...); flags override it
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
    /// Warm-up as a share of all steps, used when --warmup is 0 (e.g. 0.03)
    #[arg(long)]
    warmup_ratio: Option<f64>,
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
    /// Where to train: auto (the best this computer has), cpu, cuda (the first NVIDIA GPU), cuda:N
    /// or metal; `whet hw` lists what is available
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Evaluate on --val every N steps (0: only at the end)
    #[arg(long, value_name = "N")]
    eval_every: Option<u64>,
    /// Save a checkpoint every N steps (0: only when pausing or stopping)
    #[arg(long, value_name = "N")]
    save_every: Option<u64>,
    /// Newest checkpoints to keep besides the best one
    #[arg(long, value_name = "K")]
    keep_checkpoints: Option<usize>,
    /// Stop after N evaluations without improvement (0: never stop early)
    #[arg(long, value_name = "N")]
    patience: Option<u64>,
    /// How much the validation loss must fall to count as an improvement
    #[arg(long)]
    min_delta: Option<f64>,
    /// Keep the last step's adapter rather than the best evaluation's
    #[arg(long)]
    no_load_best: bool,
    /// Stop after N steps in a row with a loss or gradient that is not a finite number
    #[arg(long, value_name = "N")]
    max_bad_steps: Option<u64>,
    /// Refuse data with rows that have no answer token within --max-len (by default they are left out and listed)
    #[arg(long)]
    strict_rows: bool,
    /// Fit long rows by cutting their prompt from the start instead of cutting the end
    #[arg(long)]
    truncate_prompt: bool,
}

impl SettingsArgs {
    /// The preset, if any, then the settings file, if any, with every flag given on top; each
    /// setting outside its safe range is named in a warning. `data` sizes the preset.
    pub fn settings(&self, api: &Api, data: Option<&Path>) -> anyhow::Result<TrainSettings> {
        let base = match &self.preset {
            Some(name) => {
                let examples = match data {
                    Some(d) => Some(whetstone_data::read_training_rows(&whetstone_api::training::resolve_training_data(api, d)?)?.len() as u64),
                    None => None,
                };
                api.preset(name, examples)?
            }
            None => TrainSettings::default(),
        };
        let mut s = match &self.config {
            Some(p) => {
                let file = whetstone_engine::settings_file::read_over(p, base)?;
                for w in &file.warnings {
                    eprintln!("warning: {}: {w}", p.display());
                }
                file.settings
            }
            None => base,
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { s.$f = v; } )* };
        }
        set!(epochs, lr, batch, grad_accum, max_len, lora_r, lora_alpha, lora_dropout, targets, scheduler, warmup, seed, weight_decay, max_grad_norm, quant, device);
        set!(eval_every, save_every, keep_checkpoints, patience, min_delta, max_bad_steps);
        if self.steps.is_some() {
            s.steps = self.steps;
        }
        if self.threads.is_some() {
            s.threads = self.threads;
        }
        if self.warmup_ratio.is_some() {
            s.warmup_ratio = self.warmup_ratio;
        }
        s.rslora |= self.rslora;
        s.grad_checkpoint |= self.grad_checkpoint;
        s.strict_rows |= self.strict_rows;
        s.truncate_prompt |= self.truncate_prompt;
        if self.no_load_best {
            s.load_best_at_end = false;
        }
        for w in whetstone_api::defaults::check(&s) {
            eprintln!("warning: {}", w.message);
        }
        Ok(s)
    }
}

pub fn run(api: &Api, args: &TrainArgs) -> anyhow::Result<()> {
    let run = match args.resume {
        Some(id) => api.resume_run(id)?,
        None => {
            let (Some(model), Some(data)) = (&args.model, &args.data) else {
                anyhow::bail!("--model and --data are needed to start a run");
            };
            let settings = args.settings.settings(api, Some(data))?;
            settings.validate()?;
            eprintln!("loading {} …", model.display());
            api.start_run(&StartRun { model: model.clone(), data: data.clone(), val: args.val.clone(), out: args.out.clone(), overwrite: args.overwrite, settings })?
        }
    };
    if args.detach {
        println!("{}", run.id);
        eprintln!("run {} is training in the background in {}; follow it with `whet runs logs {} --follow`", run.id, run.out_dir, run.id);
        return Ok(());
    }
    crate::runs::follow_to_end(api, run.id, true)
}
