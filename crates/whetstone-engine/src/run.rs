//! The training loop: epochs, shuffling, batching, the step, evaluation, checkpoints, metrics on disk
//! and the saved adapter. The rules it follows (early stopping, guards, the out-of-memory back-off,
//! when to save) are in [`crate::policy`]. Progress goes out as events, so a terminal, the desktop app
//! or a worker process can show it as each sees fit; an interrupt flag stops the loop between steps,
//! after a checkpoint, and a later call with `resume` continues from the newest good checkpoint with
//! the same bits as if nothing had happened.

use crate::batch::collate;
use crate::checkpoint::{self, Best, OrderState, RunState};
use crate::error::{Error, Result};
use crate::lora::Adapter;
use crate::model::{Decoder, LoraCtx};
use crate::optim::{global_norm, AdamWConfig};
use crate::policy::guard::{self, StepCheck, Warning};
use crate::policy::{BatchShape, Checkpointing, EarlyStopping, Guard, Warned};
use crate::rng::Rng;
use crate::schedule::Schedule;
use crate::train::{Gradients, StepOptions, Trainer};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

// Re-exported so that `run::TrainSettings`, its home before it had a module of its own, still works.
pub use crate::settings::TrainSettings;

/// A tokenized example: ids and which of them are trained.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainExample {
    pub ids: Vec<u32>,
    pub trained: Vec<bool>,
}

/// One training row of `metrics.jsonl` (written with `"kind": "train"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
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

/// One evaluation row of `metrics.jsonl` (written with `"kind": "eval"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct EvalMetrics {
    pub step: u64,
    /// Mean loss over the validation set's response tokens.
    pub loss: f64,
    pub perplexity: f64,
    pub tokens: usize,
    pub elapsed_s: f64,
}

#[derive(Serialize)]
struct Row<'a, T: Serialize> {
    kind: &'static str,
    #[serde(flatten)]
    row: &'a T,
}

/// What happens before a run's first step is done, in order. The worker reports the first two
/// around its own work, the loop the third; each is started, then done with how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the base model's weights (and quantizing them, for QLoRA).
    LoadingModel,
    /// Reading the data files and turning their rows into tokens.
    ReadingData,
    /// The first training step of this session, the slowest: memory is set up on the way.
    FirstStep,
}

/// What the loop reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Started {
        total_steps: u64,
        examples: usize,
        val_examples: usize,
        trainable_parameters: usize,
        /// The checkpoint step the run continues from.
        resumed_from: Option<u64>,
        micro_batch: usize,
        grad_accum: usize,
    },
    Step {
        metrics: StepMetrics,
        total_steps: u64,
        /// Estimated seconds to the last step, from this session's pace.
        eta_s: f64,
        /// Memory the training holds: on a GPU the bytes its tensors hold in GPU memory, else the
        /// training process's resident memory.
        memory_bytes: Option<u64>,
    },
    Eval {
        metrics: EvalMetrics,
        /// The lowest validation loss so far.
        best: bool,
    },
    Checkpoint {
        step: u64,
        path: PathBuf,
    },
    /// Something the user should know, in plain words; `code` is stable for programs.
    Warning {
        code: String,
        message: String,
        step: u64,
    },
    Saved {
        adapter: PathBuf,
    },
    /// A stage of the preparation began.
    PhaseStarted {
        phase: Phase,
    },
    /// A stage of the preparation ended after `seconds`.
    PhaseDone {
        phase: Phase,
        seconds: f64,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All steps done.
    Completed,
    /// The validation loss stopped improving (patience ran out).
    EarlyStopped,
    /// The interrupt flag was raised; a checkpoint of the current step was saved.
    Interrupted,
    /// Too many steps in a row had a non-finite loss or gradient.
    BadSteps,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RunSummary {
    pub steps: u64,
    pub total_steps: u64,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub adapter: PathBuf,
    pub outcome: Outcome,
    /// Why the run ended before its last step, in plain words.
    pub reason: Option<String>,
    pub best: Option<Best>,
    /// The final adapter is the best evaluation's rather than the last step's.
    pub adapter_is_best: bool,
}

/// Places where a caller can watch or disturb the loop. Tests use them to inject faults (a NaN
/// gradient, an out-of-memory error, a slow save); the product passes [`NoHooks`].
pub trait Hooks {
    /// Before step `step` (1-based) builds its batches of `micro_batch` examples.
    fn before_step(&mut self, _step: u64, _micro_batch: usize) -> Result<()> {
        Ok(())
    }
    /// After the gradients of step `step` are computed and before they are checked and applied.
    fn after_gradients(&mut self, _step: u64, _loss: &mut f64, _grads: &mut [Tensor]) -> Result<()> {
        Ok(())
    }
    /// Between the files of a checkpoint being saved.
    fn between_checkpoint_files(&mut self) {}
}

pub struct NoHooks;
impl Hooks for NoHooks {}

/// What to train and where.
pub struct Job<'a> {
    pub model: &'a Decoder,
    pub train: &'a [TrainExample],
    /// Validation examples; empty for none (no evaluation, early stopping or best checkpoint).
    pub val: &'a [TrainExample],
    pub settings: &'a TrainSettings,
    pub out: &'a Path,
    pub base_model_name: &'a str,
    pub pad_id: u32,
}

/// Train an adapter on `examples` and write `out/metrics.jsonl` and `out/adapter/` (PEFT layout),
/// from scratch and without validation.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &Decoder,
    examples: &[TrainExample],
    settings: &TrainSettings,
    out: &Path,
    base_model_name: &str,
    pad_id: u32,
    interrupt: &AtomicBool,
    on_event: impl FnMut(&Event),
) -> Result<RunSummary> {
    let job = Job { model, train: examples, val: &[], settings, out, base_model_name, pad_id };
    run(&job, false, interrupt, &mut NoHooks, on_event)
}

/// What training on `device` holds in memory: GPU memory held by tensors on a GPU, else the
/// process's resident memory.
pub fn training_memory(device: &candle_core::Device) -> Option<u64> {
    match crate::device::gpu_memory(device) {
        Ok(Some(m)) => Some(m.allocated),
        _ => memory_in_use(),
    }
}

/// Resident memory of this process, where the OS tells it cheaply.
pub fn memory_in_use() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Whether an error says the device or the allocator ran out of memory.
pub fn is_out_of_memory(e: &Error) -> bool {
    let m = e.to_string().to_lowercase();
    ["out of memory", "out_of_memory", "outofmemory", "memory allocation of", "failed to allocate"].iter().any(|p| m.contains(p))
}

/// What identifies a run's computation: settings that change the numbers, and the data sizes.
fn fingerprint(s: &TrainSettings, train: usize, val: usize) -> String {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        // None changes what is computed (the device only within rounding), so a resumed run may use
        // others: a run paused on the GPU can go on on the CPU.
        o.remove("threads");
        o.remove("keep-checkpoints");
        o.remove("device");
    }
    format!("{v}|train={train}|val={val}")
}

/// Mean loss over the response tokens of `examples`, adapter on and dropout off.
pub fn evaluate(model: &Decoder, adapter: &Adapter, examples: &[TrainExample], batch: usize, max_len: usize, pad_id: u32) -> Result<(f64, usize)> {
    let ctx = LoraCtx { adapter, train: false, dropout: None };
    let (mut sum, mut n) = (0f64, 0usize);
    for chunk in examples.chunks(batch.max(1)) {
        let rows: Vec<(&[u32], &[bool])> = chunk
            .iter()
            .map(|e| {
                let k = e.ids.len().min(max_len);
                (&e.ids[..k], &e.trained[..k])
            })
            .collect();
        let b = collate(&rows, pad_id, &model.device)?;
        let (ls, k) = model.loss_sum(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, Some(&ctx))?;
        sum += ls.detach().to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        n += k;
    }
    if n == 0 {
        return Err(Error::Settings("the validation examples have no response tokens to measure".into()));
    }
    Ok((sum / n as f64, n))
}

/// Builds the step's micro-batches from the data stream and computes its gradients.
fn attempt(job: &Job, trainer: &Trainer, order: &mut OrderState, micro: usize, accum: usize, step: u64, hooks: &mut dyn Hooks) -> Result<Gradients> {
    hooks.before_step(step, micro)?;
    let max_len = job.settings.max_len;
    let mut batches = Vec::with_capacity(accum);
    for _ in 0..accum {
        let rows: Vec<(&[u32], &[bool])> = (0..micro)
            .map(|_| {
                let e = &job.train[order.next_index()];
                let n = e.ids.len().min(max_len);
                (&e.ids[..n], &e.trained[..n])
            })
            .collect();
        batches.push(collate(&rows, job.pad_id, &job.model.device)?);
    }
    let mut g = trainer.accumulate(&batches)?;
    hooks.after_gradients(step, &mut g.loss, &mut g.grads)?;
    Ok(g)
}

fn warning(step: u64, w: Warning) -> Event {
    Event::Warning { code: w.code.into(), message: w.message, step }
}

/// A `metrics.jsonl` line: `row`'s fields and its `kind`.
fn row_json<T: Serialize>(kind: &'static str, row: &T) -> Result<String> {
    serde_json::to_string(&Row { kind, row }).map_err(|e| Error::Internal(format!("encoding a {kind} metrics row: {e}")))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    whetstone_files::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

fn all_finite(adapter: &Adapter) -> Result<bool> {
    for (_, v) in adapter.named_vars() {
        let s = v.as_tensor().abs()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        if !s.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Trains, evaluates and checkpoints as `job.settings` say. With `resume`, continues from the newest
/// checkpoint under `out/checkpoints` that passes its check (skipping damaged ones); without, starts
/// afresh and removes checkpoints an earlier run left in `out`.
pub fn run(job: &Job, resume: bool, interrupt: &AtomicBool, hooks: &mut dyn Hooks, mut on_event: impl FnMut(&Event)) -> Result<RunSummary> {
    let s = job.settings;
    let model = job.model;
    s.validate()?;
    if job.train.is_empty() {
        return Err(Error::Settings("the dataset has no examples".into()));
    }
    let out = job.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let root = out.join("checkpoints");
    let n = job.train.len();
    let total = s.total_steps(n);
    let mut rng = Rng::new(s.seed);
    let adapter = Adapter::init(&model.config, s.lora()?, &mut rng, &model.device)?;
    let schedule = Schedule { kind: s.scheduler, base_lr: s.lr, warmup_steps: s.warmup_steps(total), total_steps: total };
    let adamw = AdamWConfig { weight_decay: s.weight_decay, ..AdamWConfig::default() };
    let options = StepOptions { max_grad_norm: (s.max_grad_norm > 0.0).then_some(s.max_grad_norm), grad_checkpoint: s.grad_checkpoint };
    let mut state = RunState {
        step: 0,
        optimizer_step: 0,
        fingerprint: fingerprint(s, n, job.val.len()),
        dropout_rng: rng.clone(),
        order: OrderState::new(n, s.seed),
        batch: BatchShape { micro_batch: s.batch, grad_accum: s.grad_accum },
        early_stopping: EarlyStopping::default(),
        guard: Guard::default(),
        elapsed_s: 0.0,
        warned: Warned::default(),
        first_loss: None,
        last_loss: None,
    };
    let mut trainer = Trainer::new(model, adapter, adamw, schedule, options, rng)?;
    let mut metrics_buf: Vec<u8> = Vec::new();
    let mut resumed_from = None;
    if resume {
        checkpoint::remove_leftovers(&root);
        let (found, skipped) = checkpoint::latest_good(&root);
        for (dir, why) in &skipped {
            on_event(&Event::Warning {
                code: "checkpoint_skipped".into(),
                message: format!("The checkpoint {} was not used ({why}); continuing from an earlier one.", dir.display()),
                step: 0,
            });
            let _ = std::fs::remove_dir_all(dir);
        }
        match found {
            Some(l) => {
                if l.state.fingerprint != state.fingerprint {
                    return Err(Error::Settings(format!(
                        "the checkpoints in {} were made with other settings or other data; start a new run instead of resuming",
                        root.display()
                    )));
                }
                l.restore_adapter(&trainer.adapter)?;
                l.restore_optimizer(&trainer.adapter, &mut trainer.optimizer)?;
                *trainer.rng.borrow_mut() = l.state.dropout_rng.clone();
                metrics_buf = l.metrics.clone();
                state = l.state.clone();
                resumed_from = Some(state.step);
            }
            None => on_event(&Event::Warning {
                code: "no_checkpoint".into(),
                message: "No usable checkpoint was found, so training starts again from the beginning.".into(),
                step: 0,
            }),
        }
    } else if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    }
    // Back to the checkpoint's rows, so steps done after it and done again are not listed twice.
    let metrics_path = out.join("metrics.jsonl");
    write_atomic(&metrics_path, &metrics_buf)?;
    let mut metrics = std::fs::OpenOptions::new().append(true).open(&metrics_path).map_err(|e| Error::io(&metrics_path, e))?;
    let mut write_row = |buf: &mut Vec<u8>, line: String| -> Result<()> {
        let line = format!("{line}\n");
        metrics.write_all(line.as_bytes()).map_err(|e| Error::io(&metrics_path, e))?;
        metrics.flush().map_err(|e| Error::io(&metrics_path, e))?;
        buf.extend_from_slice(line.as_bytes());
        Ok(())
    };
    on_event(&Event::Started {
        total_steps: total,
        examples: n,
        val_examples: job.val.len(),
        trainable_parameters: trainer.adapter.num_parameters(),
        resumed_from,
        micro_batch: state.batch.micro_batch,
        grad_accum: state.batch.grad_accum,
    });
    if let Some(w) = guard::too_few_examples(n, s.batch * s.grad_accum, total, &mut state.warned) {
        on_event(&warning(state.step, w));
    }
    let session = Instant::now();
    let session_first = state.step;
    let base_elapsed = state.elapsed_s;
    let elapsed = |t: &Instant| base_elapsed + t.elapsed().as_secs_f64();
    let mut outcome = Outcome::Completed;
    let mut reason = None;
    // A resumed session starts from a checkpoint, so its first step needs no save on interrupt.
    let mut saving = Checkpointing { save_every: s.save_every, keep: s.keep_checkpoints, last_saved: resumed_from };
    let save = |state: &mut RunState, trainer: &Trainer, buf: &[u8], saving: &mut Checkpointing, hooks: &mut dyn Hooks, on_event: &mut dyn FnMut(&Event)| -> Result<()> {
        state.elapsed_s = elapsed(&session);
        state.dropout_rng = trainer.rng.borrow().clone();
        let path = checkpoint::save(&root, state, &trainer.adapter, &trainer.optimizer, buf, &mut || hooks.between_checkpoint_files())?;
        saving.saved(state.step);
        checkpoint::prune(&root, saving, state.early_stopping.best.map(|b| b.step))?;
        on_event(&Event::Checkpoint { step: state.step, path });
        Ok(())
    };
    while state.step < total {
        if interrupt.load(Ordering::Relaxed) {
            outcome = Outcome::Interrupted;
            reason = Some(format!("Paused at step {} of {total}.", state.step));
            break;
        }
        let step = state.step + 1;
        let t0 = Instant::now();
        let first = step == session_first + 1;
        if first {
            on_event(&Event::PhaseStarted { phase: Phase::FirstStep });
        }
        let lr = trainer.schedule.lr(state.step);
        let (order0, rng0) = (state.order.clone(), trainer.rng.borrow().clone());
        let mut g = loop {
            let shape = state.batch;
            match attempt(job, &trainer, &mut state.order, shape.micro_batch, shape.grad_accum, step, hooks) {
                Ok(g) => break g,
                Err(e) if is_out_of_memory(&e) => {
                    let Some(w) = state.batch.back_off(step) else { return Err(e) };
                    // Nothing of the failed attempt reached the adapter: rewind the data and dropout
                    // streams so the smaller micro-batches hold the same examples.
                    state.order = order0.clone();
                    *trainer.rng.borrow_mut() = rng0.clone();
                    on_event(&warning(step, w));
                }
                Err(e) => return Err(e),
            }
        };
        let grad_norm = global_norm(&g.grads)?;
        state.step = step;
        let mut bad_steps_stop = false;
        match state.guard.check_step(step, g.loss, grad_norm, s.max_bad_steps) {
            StepCheck::Stop { warning: w, reason: why } => {
                on_event(&warning(step, w));
                outcome = Outcome::BadSteps;
                reason = Some(why);
                bad_steps_stop = true;
            }
            StepCheck::Skip(w) => on_event(&warning(step, w)),
            StepCheck::Apply => {
                trainer.apply(&mut g.grads, grad_norm, lr)?;
                state.optimizer_step = trainer.optimizer.step;
                let dt = t0.elapsed().as_secs_f64();
                let m = StepMetrics {
                    step,
                    loss: g.loss,
                    lr,
                    grad_norm,
                    tokens: g.tokens,
                    tokens_per_s: g.tokens as f64 / dt.max(1e-9),
                    elapsed_s: elapsed(&session),
                    epoch: state.order.epoch,
                };
                write_row(&mut metrics_buf, row_json("train", &m)?)?;
                state.first_loss.get_or_insert(g.loss);
                state.last_loss = Some(g.loss);
                if let Some(w) = state.guard.observe_loss(step, g.loss, &mut state.warned) {
                    on_event(&warning(step, w));
                }
                let done = step - session_first;
                let eta_s = session.elapsed().as_secs_f64() / done as f64 * (total - step) as f64;
                on_event(&Event::Step { metrics: m, total_steps: total, eta_s, memory_bytes: training_memory(&model.device) });
            }
        }
        if first {
            on_event(&Event::PhaseDone { phase: Phase::FirstStep, seconds: t0.elapsed().as_secs_f64() });
        }
        if bad_steps_stop {
            break;
        }
        let mut new_best = false;
        let mut stop = false;
        if !job.val.is_empty() && (step == total || (s.eval_every > 0 && step.is_multiple_of(s.eval_every))) {
            let (loss, tokens) = evaluate(model, &trainer.adapter, job.val, state.batch.micro_batch, s.max_len, job.pad_id)?;
            new_best = state.early_stopping.observe(step, loss, s.min_delta);
            let m = EvalMetrics { step, loss, perplexity: loss.exp(), tokens, elapsed_s: elapsed(&session) };
            write_row(&mut metrics_buf, row_json("eval", &m)?)?;
            on_event(&Event::Eval { metrics: m, best: new_best });
            if let Some(w) = state.guard.observe_eval(step, loss, state.early_stopping.best, &mut state.warned) {
                on_event(&warning(step, w));
            }
            if let Some(why) = state.early_stopping.stop_reason(step, s.patience) {
                outcome = Outcome::EarlyStopped;
                reason = Some(why);
                stop = true;
            }
        }
        if saving.due(step, new_best) {
            save(&mut state, &trainer, &metrics_buf, &mut saving, hooks, &mut on_event)?;
        }
        if stop {
            break;
        }
    }
    if outcome == Outcome::Interrupted && saving.due_on_interrupt(state.step) {
        save(&mut state, &trainer, &metrics_buf, &mut saving, hooks, &mut on_event)?;
    }
    let best = state.early_stopping.best;
    let mut adapter_is_best = false;
    if let (true, Some(b)) = (s.load_best_at_end, best) {
        match checkpoint::verify(&checkpoint::step_dir(&root, b.step)).and_then(|l| l.restore_adapter(&trainer.adapter)) {
            Ok(()) => adapter_is_best = true,
            Err(e) => on_event(&Event::Warning {
                code: "best_unavailable".into(),
                message: format!("The best checkpoint (step {}) could not be read ({e}); the final adapter is the last step's.", b.step),
                step: state.step,
            }),
        }
    }
    if !all_finite(&trainer.adapter)? {
        return Err(Error::NonFinite("the adapter holds values that are not finite numbers, so it was not saved".into()));
    }
    let adapter_dir = out.join("adapter");
    trainer.adapter.save_peft(&adapter_dir, job.base_model_name, model.config.architecture.model_type())?;
    on_event(&Event::Saved { adapter: adapter_dir.clone() });
    Ok(RunSummary {
        steps: state.step,
        total_steps: total,
        first_loss: state.first_loss,
        last_loss: state.last_loss,
        adapter: adapter_dir,
        outcome,
        reason,
        best,
        adapter_is_best,
    })
}
