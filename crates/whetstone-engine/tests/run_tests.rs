//! The training loop as a resumable job: checkpoints give bit-identical curves after a resume,
//! damaged checkpoints are skipped, early stopping, the NaN guard, the overfitting warning, the
//! first-step phase, load-best-at-end and the out-of-memory fallback, each forced through the
//! loop's hooks.

use candle_core::{Device, Tensor};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use whetstone_engine::checkpoint;
use whetstone_engine::error::{Error, Result};
use whetstone_engine::model::Decoder;
use whetstone_engine::rng::Rng;
use whetstone_engine::run::{run, Event, Hooks, Job, NoHooks, Outcome, Phase, RunSummary, TrainExample, TrainSettings};
use whetstone_engine::schedule::ScheduleKind;
use whetstone_engine::weights::BaseWeights;
use whetstone_engine::{Architecture, ModelConfig};

fn tiny() -> Decoder {
    let cfg = ModelConfig::tiny(Architecture::Llama);
    Decoder::from_weights(BaseWeights::random(&cfg, 7, &Device::Cpu).unwrap()).unwrap()
}

fn examples(n: usize, seed: u64) -> Vec<TrainExample> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = 6 + rng.below(10);
            let ids: Vec<u32> = (0..len).map(|_| 3 + rng.below(90) as u32).collect();
            let trained = (0..len).map(|i| i >= 3).collect();
            TrainExample { ids, trained }
        })
        .collect()
}

fn settings() -> TrainSettings {
    TrainSettings {
        steps: Some(12),
        lr: 1e-2,
        batch: 2,
        grad_accum: 2,
        max_len: 32,
        lora_r: 4,
        lora_dropout: 0.1,
        warmup: 2,
        scheduler: ScheduleKind::Cosine,
        eval_every: 4,
        save_every: 3,
        keep_checkpoints: 2,
        patience: 0,
        ..TrainSettings::default()
    }
}

struct Fixture {
    model: Decoder,
    train: Vec<TrainExample>,
    val: Vec<TrainExample>,
}

impl Fixture {
    fn new() -> Self {
        // 10 examples at 4 per step: the 12 steps cross several epochs and reshuffles.
        Fixture { model: tiny(), train: examples(10, 1), val: examples(5, 2) }
    }

    fn run(&self, s: &TrainSettings, out: &Path, resume: bool, interrupt: &AtomicBool, hooks: &mut dyn Hooks, events: &mut Vec<Event>) -> Result<RunSummary> {
        let job = Job { model: &self.model, train: &self.train, val: &self.val, settings: s, out, base_model_name: "tiny", pad_id: 0 };
        run(&job, resume, interrupt, hooks, |e| events.push(e.clone()))
    }
}

/// The metrics rows without the timing fields, which differ between any two runs.
fn curve(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["tokens_per_s", "elapsed_s"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect()
}

fn adapter_bytes(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("adapter/adapter_model.safetensors")).unwrap()
}

/// Raises the interrupt flag once step `at` is reported.
fn interrupt_after(flag: &AtomicBool, at: u64) -> impl FnMut(&Event) + '_ {
    move |e| {
        if let Event::Step { metrics, .. } = e {
            if metrics.step == at {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Fails step `at` with an error that is not out-of-memory, as a crash would end the process there.
struct CrashAt(u64);
impl Hooks for CrashAt {
    fn before_step(&mut self, step: u64, _micro: usize) -> Result<()> {
        if step == self.0 {
            return Err(Error::Settings("simulated crash".into()));
        }
        Ok(())
    }
}

#[test]
fn resuming_gives_the_same_curve_and_adapter_bit_for_bit() {
    let f = Fixture::new();
    let s = settings();
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let mut ev = Vec::new();
    let done = f.run(&s, &whole, false, &AtomicBool::new(false), &mut NoHooks, &mut ev).unwrap();
    assert_eq!(done.outcome, Outcome::Completed);
    assert_eq!(curve(&whole).iter().filter(|r| r["kind"] == "eval").count(), 3, "evaluations at 4, 8 and 12");

    // Paused after step 5 (a checkpoint of step 5 is written), then a crash in step 8 leaves rows of
    // steps 6 and 7 in metrics.jsonl beyond the newest checkpoint (step 6).
    let parts = tmp.path().join("parts");
    let flag = AtomicBool::new(false);
    let mut on = interrupt_after(&flag, 5);
    let job = Job { model: &f.model, train: &f.train, val: &f.val, settings: &s, out: &parts, base_model_name: "tiny", pad_id: 0 };
    let r = run(&job, false, &flag, &mut NoHooks, &mut on).unwrap();
    assert_eq!((r.outcome, r.steps), (Outcome::Interrupted, 5));
    assert!(checkpoint::step_dir(&parts.join("checkpoints"), 5).is_dir());
    let mut ev = Vec::new();
    let err = f.run(&s, &parts, true, &AtomicBool::new(false), &mut CrashAt(8), &mut ev).unwrap_err();
    assert!(err.to_string().contains("simulated crash"));
    assert!(matches!(ev[0], Event::Started { resumed_from: Some(5), .. }), "{:?}", ev[0]);
    assert_eq!(curve(&parts).last().unwrap()["step"], 7);

    let mut ev = Vec::new();
    let r = f.run(&s, &parts, true, &AtomicBool::new(false), &mut NoHooks, &mut ev).unwrap();
    assert!(matches!(ev[0], Event::Started { resumed_from: Some(6), .. }), "{:?}", ev[0]);
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(curve(&parts), curve(&whole), "no doubled rows and the same losses, bit for bit");
    assert_eq!(adapter_bytes(&parts), adapter_bytes(&whole));
    // keep-checkpoints 2 and the best: 9, 12 and the best evaluation's step.
    let kept = checkpoint::list(&parts.join("checkpoints"));
    assert!(kept.len() <= 3 && kept.contains(&12) && kept.contains(&9), "{kept:?}");
    assert!(kept.contains(&r.best.unwrap().step));
}

#[test]
fn damaged_and_half_written_checkpoints_are_skipped() {
    let f = Fixture::new();
    let s = settings();
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    f.run(&s, &whole, false, &AtomicBool::new(false), &mut NoHooks, &mut Vec::new()).unwrap();

    let out = tmp.path().join("run");
    let flag = AtomicBool::new(false);
    let mut on = interrupt_after(&flag, 6);
    let job = Job { model: &f.model, train: &f.train, val: &f.val, settings: &s, out: &out, base_model_name: "tiny", pad_id: 0 };
    run(&job, false, &flag, &mut NoHooks, &mut on).unwrap();
    let root = out.join("checkpoints");
    // Saves at 3 and 6 (every 3 steps) and 4 (best evaluation); the newest two and the best stay.
    assert_eq!(checkpoint::list(&root), vec![6, 4]);
    // One bit flipped in the newest checkpoint's optimizer state.
    let p = checkpoint::step_dir(&root, 6).join("optimizer.safetensors");
    let mut bytes = std::fs::read(&p).unwrap();
    let i = bytes.len() - 5;
    bytes[i] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    // A save that stopped before its manifest, and a temporary folder of another.
    let half = checkpoint::step_dir(&root, 7);
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join("state.json"), "{").unwrap();
    std::fs::create_dir(root.join(".step-8.tmp-1-0")).unwrap();
    assert!(checkpoint::verify(&checkpoint::step_dir(&root, 6)).unwrap_err().to_string().contains("checksum"));
    assert!(checkpoint::verify(&half).unwrap_err().to_string().contains("manifest"));

    let mut ev = Vec::new();
    f.run(&s, &out, true, &AtomicBool::new(false), &mut NoHooks, &mut ev).unwrap();
    let skipped = ev.iter().filter(|e| matches!(e, Event::Warning { code, .. } if code == "checkpoint_skipped")).count();
    assert_eq!(skipped, 2);
    assert!(ev.iter().any(|e| matches!(e, Event::Started { resumed_from: Some(4), .. })));
    assert!(!root.join(".step-8.tmp-1-0").exists());
    assert_eq!(curve(&out), curve(&whole));
    assert_eq!(adapter_bytes(&out), adapter_bytes(&whole));
}

#[test]
fn early_stopping_ends_the_run_when_validation_stops_improving() {
    let f = Fixture::new();
    // No evaluation after the first can beat the best by 10 nats.
    let s = TrainSettings { steps: Some(40), eval_every: 2, patience: 2, min_delta: 10.0, save_every: 0, ..settings() };
    let tmp = tempfile::tempdir().unwrap();
    let mut ev = Vec::new();
    let r = f.run(&s, tmp.path(), false, &AtomicBool::new(false), &mut NoHooks, &mut ev).unwrap();
    assert_eq!(r.outcome, Outcome::EarlyStopped);
    assert_eq!(r.steps, 6, "evaluations at 2 (best), 4 and 6 (no improvement twice)");
    assert!(r.reason.as_deref().unwrap().contains("has not improved for 2 evaluations"), "{:?}", r.reason);
    let evals: Vec<u64> = curve(tmp.path()).iter().filter(|r| r["kind"] == "eval").map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(evals, vec![2, 4, 6]);

    // Without min-delta and patience the same run goes to the end.
    let s = TrainSettings { steps: Some(8), eval_every: 2, patience: 0, min_delta: 10.0, save_every: 0, ..settings() };
    let r = f.run(&s, &tmp.path().join("b"), false, &AtomicBool::new(false), &mut NoHooks, &mut Vec::new()).unwrap();
    assert_eq!((r.outcome, r.steps), (Outcome::Completed, 8));
}

/// Makes the loss of the chosen steps NaN, as an overflow would.
struct Poison(Vec<u64>);
impl Hooks for Poison {
    fn after_gradients(&mut self, step: u64, loss: &mut f64, grads: &mut [Tensor]) -> Result<()> {
        if self.0.contains(&step) {
            *loss = f64::NAN;
            grads[0] = (&grads[0] * f64::INFINITY)?;
        }
        Ok(())
    }
}

#[test]
fn non_finite_steps_are_skipped_and_too_many_in_a_row_stop_the_run() {
    let f = Fixture::new();
    let s = TrainSettings { steps: Some(8), max_bad_steps: 3, save_every: 0, eval_every: 0, ..settings() };
    let tmp = tempfile::tempdir().unwrap();

    let mut ev = Vec::new();
    let r = f.run(&s, &tmp.path().join("one"), false, &AtomicBool::new(false), &mut Poison(vec![3]), &mut ev).unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    let steps: Vec<u64> = curve(&tmp.path().join("one")).iter().filter(|r| r["kind"] == "train").map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![1, 2, 4, 5, 6, 7, 8], "step 3 was skipped");
    assert!(ev.iter().any(|e| matches!(e, Event::Warning { code, step: 3, .. } if code == "bad_step")));

    // Stops after the third bad step in a row; the adapter is the one after step 2, not NaN.
    let mut ev = Vec::new();
    let out = tmp.path().join("many");
    let r = f.run(&s, &out, false, &AtomicBool::new(false), &mut Poison(vec![3, 4, 5, 6, 7, 8]), &mut ev).unwrap();
    assert_eq!((r.outcome, r.steps), (Outcome::BadSteps, 5));
    assert!(r.reason.as_deref().unwrap().contains("3 steps in a row"), "{:?}", r.reason);
    let flag = AtomicBool::new(false);
    let two = tmp.path().join("two");
    let job = Job { model: &f.model, train: &f.train, val: &f.val, settings: &s, out: &two, base_model_name: "tiny", pad_id: 0 };
    run(&job, false, &flag, &mut NoHooks, interrupt_after(&flag, 2)).unwrap();
    assert_eq!(adapter_bytes(&out), adapter_bytes(&two));
}

/// Turns training into gradient ascent after step `from`, so that validation loss rises.
struct AscendFrom(u64);
impl Hooks for AscendFrom {
    fn after_gradients(&mut self, step: u64, _loss: &mut f64, grads: &mut [Tensor]) -> Result<()> {
        if step > self.0 {
            for g in grads.iter_mut() {
                *g = g.neg()?;
            }
        }
        Ok(())
    }
}

#[test]
fn the_final_adapter_is_the_best_checkpoint_and_a_loss_rising_on_both_sides_is_not_overfitting() {
    let f = Fixture::new();
    // Validation on the training examples themselves: it falls while training descends and rises after.
    let f = Fixture { val: f.train.clone(), ..f };
    let s = TrainSettings { steps: Some(12), eval_every: 2, save_every: 0, scheduler: ScheduleKind::Constant, warmup: 0, lora_dropout: 0.0, ..settings() };
    let tmp = tempfile::tempdir().unwrap();
    let mut ev = Vec::new();
    let best_out = tmp.path().join("best");
    let r = f.run(&s, &best_out, false, &AtomicBool::new(false), &mut AscendFrom(6), &mut ev).unwrap();
    let evals: Vec<(u64, f64)> = curve(&best_out)
        .iter()
        .filter(|r| r["kind"] == "eval")
        .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
        .collect();
    let argmin = evals.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
    assert_eq!(argmin, 6, "{evals:?}");
    assert_eq!(r.best.unwrap().step, 6);
    assert!(r.adapter_is_best);
    let best_ckpt = checkpoint::step_dir(&best_out.join("checkpoints"), 6).join("adapter.safetensors");
    let a = safetensors_f32(&std::fs::read(best_ckpt).unwrap());
    let b = safetensors_f32(&adapter_bytes(&best_out));
    assert_eq!(a, b, "the final adapter holds the step-6 values");
    // Training and validation loss rise together here: that is not overfitting.
    assert!(!ev.iter().any(|e| matches!(e, Event::Warning { code, .. } if code == "overfitting")), "{ev:?}");

    let s = TrainSettings { load_best_at_end: false, ..s };
    let last_out = tmp.path().join("last");
    let r = f.run(&s, &last_out, false, &AtomicBool::new(false), &mut AscendFrom(6), &mut Vec::new()).unwrap();
    assert!(!r.adapter_is_best);
    assert_ne!(safetensors_f32(&adapter_bytes(&last_out)), b);
}

/// Gradient ascent after step `from` (the validation loss, measured on the training examples,
/// rises), while the training loss the loop records keeps falling: what a model learning its
/// training examples by heart looks like to the guards, which judge the losses the loop records.
struct MemorisingFrom(u64);
impl Hooks for MemorisingFrom {
    fn after_gradients(&mut self, step: u64, loss: &mut f64, grads: &mut [Tensor]) -> Result<()> {
        if step > self.0 {
            for g in grads.iter_mut() {
                *g = g.neg()?;
            }
            *loss = 1.0 / step as f64;
        }
        Ok(())
    }
}

#[test]
fn validation_rising_while_training_falls_is_reported_as_overfitting_naming_the_best_step() {
    let f = Fixture::new();
    let f = Fixture { val: f.train.clone(), ..f };
    let s = TrainSettings { steps: Some(12), eval_every: 2, save_every: 0, scheduler: ScheduleKind::Constant, warmup: 0, lora_dropout: 0.0, ..settings() };
    let tmp = tempfile::tempdir().unwrap();
    let mut ev = Vec::new();
    let out = tmp.path().join("over");
    let r = f.run(&s, &out, false, &AtomicBool::new(false), &mut MemorisingFrom(6), &mut ev).unwrap();
    let evals: Vec<f64> = curve(&out).iter().filter(|r| r["kind"] == "eval").map(|r| r["loss"].as_f64().unwrap()).collect();
    assert!(evals[3..].windows(2).all(|w| w[1] > w[0]) && evals[3] > evals[2], "validation rises after step 6: {evals:?}");
    assert_eq!(r.best.unwrap().step, 6);
    let warnings: Vec<(u64, String)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Warning { code, message, step } if code == "overfitting" => Some((*step, message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "once for the one best step: {warnings:?}");
    let (step, message) = &warnings[0];
    assert_eq!(*step, 12, "the evaluations at 8, 10 and 12 are the three rises");
    assert!(message.contains("The best checkpoint is from step 6"), "{message}");
    assert!(checkpoint::step_dir(&out.join("checkpoints"), 6).is_dir(), "the best checkpoint the warning names is kept");
}

#[test]
fn the_first_step_is_reported_as_a_phase_in_each_session() {
    let f = Fixture::new();
    let s = TrainSettings { steps: Some(6), eval_every: 0, save_every: 0, ..settings() };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("phases");
    let flag = AtomicBool::new(false);
    let mut ev = Vec::new();
    let job = Job { model: &f.model, train: &f.train, val: &f.val, settings: &s, out: &out, base_model_name: "tiny", pad_id: 0 };
    let mut stop = interrupt_after(&flag, 3);
    run(&job, false, &flag, &mut NoHooks, |e: &Event| {
        stop(e);
        ev.push(e.clone());
    })
    .unwrap();
    let position = |ev: &[Event], want: &dyn Fn(&Event) -> bool| ev.iter().position(want).unwrap_or_else(|| panic!("missing in {ev:?}"));
    let started = position(&ev, &|e| matches!(e, Event::PhaseStarted { phase: Phase::FirstStep }));
    let step1 = position(&ev, &|e| matches!(e, Event::Step { metrics, .. } if metrics.step == 1));
    let done = position(&ev, &|e| matches!(e, Event::PhaseDone { phase: Phase::FirstStep, .. }));
    assert!(position(&ev, &|e| matches!(e, Event::Started { .. })) < started && started < step1 && step1 < done, "{ev:?}");
    let phases = ev.iter().filter(|e| matches!(e, Event::PhaseStarted { .. } | Event::PhaseDone { .. })).count();
    assert_eq!(phases, 2, "only the first step of the session is a phase");
    match &ev[done] {
        Event::PhaseDone { seconds, .. } => assert!(*seconds > 0.0 && *seconds < 60.0, "{seconds}"),
        _ => unreachable!(),
    }

    // The resumed session's first step (step 4) is a phase of its own.
    let mut ev = Vec::new();
    f.run(&s, &out, true, &AtomicBool::new(false), &mut NoHooks, &mut ev).unwrap();
    let started = position(&ev, &|e| matches!(e, Event::PhaseStarted { phase: Phase::FirstStep }));
    let step4 = position(&ev, &|e| matches!(e, Event::Step { metrics, .. } if metrics.step == 4));
    assert_eq!(step4, started + 1, "{ev:?}");
    assert!(matches!(ev[step4 + 1], Event::PhaseDone { phase: Phase::FirstStep, .. }), "{ev:?}");
}

fn safetensors_f32(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(k, t)| (k, t.data().to_vec())).collect();
    v.sort();
    v
}

/// Fails every step that tries micro-batches of more than `limit` examples, as a GPU would.
struct MemoryLimit(usize);
impl Hooks for MemoryLimit {
    fn before_step(&mut self, _step: u64, micro: usize) -> Result<()> {
        if micro > self.0 {
            return Err(Error::Tensor(candle_core::Error::Msg("CUDA_ERROR_OUT_OF_MEMORY: out of memory".into())));
        }
        Ok(())
    }
}

#[test]
fn out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let s = TrainSettings { batch: 4, grad_accum: 1, save_every: 0, eval_every: 0, lora_dropout: 0.0, ..settings() };
    let mut ev = Vec::new();
    let r = f.run(&s, &tmp.path().join("oom"), false, &AtomicBool::new(false), &mut MemoryLimit(2), &mut ev).unwrap();
    assert_eq!((r.outcome, r.steps), (Outcome::Completed, 12));
    let ooms: Vec<&Event> = ev.iter().filter(|e| matches!(e, Event::Warning { code, .. } if code == "out_of_memory")).collect();
    assert_eq!(ooms.len(), 1, "{ooms:?}");
    let s2 = TrainSettings { batch: 2, grad_accum: 2, ..s.clone() };
    f.run(&s2, &tmp.path().join("small"), false, &AtomicBool::new(false), &mut NoHooks, &mut Vec::new()).unwrap();
    let train_rows = |p: &Path| curve(p).into_iter().filter(|r| r["kind"] == "train").collect::<Vec<_>>();
    let a = train_rows(&tmp.path().join("oom"));
    let b = train_rows(&tmp.path().join("small"));
    assert_eq!(a.len(), 12);
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x["loss"].as_f64().unwrap(), y["loss"].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-5 * y.abs(), "{x} vs {y}: the same examples per step");
    }

    // Out of memory at one example per micro-batch is an error, not a loop.
    let err = f.run(&s, &tmp.path().join("fail"), false, &AtomicBool::new(false), &mut MemoryLimit(0), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("out of memory"));
}

#[test]
fn resuming_with_other_settings_is_refused() {
    let f = Fixture::new();
    let s = settings();
    let tmp = tempfile::tempdir().unwrap();
    let flag = AtomicBool::new(false);
    let job = Job { model: &f.model, train: &f.train, val: &f.val, settings: &s, out: tmp.path(), base_model_name: "tiny", pad_id: 0 };
    run(&job, false, &flag, &mut NoHooks, interrupt_after(&flag, 3)).unwrap();
    let other = TrainSettings { lr: 5e-3, ..s };
    let err = f.run(&other, tmp.path(), true, &AtomicBool::new(false), &mut NoHooks, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("other settings"), "{err}");
}
