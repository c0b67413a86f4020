//! The worker process: trains one run described by `job.json` in its folder, appends its events to
//! `events.jsonl` and keeps the run's row in the database up to date. Any program can host it (the
//! CLI's hidden `whet worker`, the desktop app's own executable).

use crate::error::{Error, Result};
use crate::events::{LoggedEvent, RunEvent, WorkerEvent};
use crate::jobs::{self, Control, JobSpec, EVENTS_FILE, JOB_FILE};
use crate::training::{dropped_rows_message, load_model_on, pad_id, to_train, training_examples};
use crate::RunStatus;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whetstone_engine::run::{self, Event, Hooks, Job, Outcome, Phase, TrainExample};
use whetstone_store::{RunProgress, Store};

/// Test-only: milliseconds to sleep between the files of every checkpoint save, to widen the window
/// in which a kill lands inside a save. Unset in normal use.
pub const CHECKPOINT_PAUSE_ENV: &str = "WHETSTONE_TEST_CHECKPOINT_PAUSE_MS";

struct WorkerHooks {
    pause: Option<Duration>,
}

impl Hooks for WorkerHooks {
    fn between_checkpoint_files(&mut self) {
        if let Some(d) = self.pause {
            std::thread::sleep(d);
        }
    }
}

/// Appends events as JSON lines, each flushed as written, so a reader never waits on a buffer.
struct EventLog {
    file: std::fs::File,
}

impl EventLog {
    fn open(dir: &Path) -> Result<Self> {
        let p = dir.join(EVENTS_FILE);
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|source| Error::Io { action: "open", path: p, source })?;
        Ok(EventLog { file })
    }

    fn write(&mut self, event: impl Into<RunEvent>) {
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let line = LoggedEvent { time, event: event.into() };
        // A full disk must not end training; the metrics file and checkpoints still record it.
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(self.file, "{text}");
            let _ = self.file.flush();
        }
    }
}

/// Reads the job in `run_dir` and trains it; `interrupt` (raised by a signal handler, or by a pause
/// or stop request this function polls for) ends it after a checkpoint. Returns the run's final
/// status, which is also in the database and the event log.
pub fn run_worker(run_dir: &Path, interrupt: Arc<AtomicBool>) -> Result<RunStatus> {
    let job_path = run_dir.join(JOB_FILE);
    let text = std::fs::read(&job_path).map_err(|source| Error::Io { action: "read", path: job_path.clone(), source })?;
    let spec: JobSpec = serde_json::from_slice(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", job_path.display())))?;
    whetstone_engine::device::configure_cpu(spec.settings.threads);
    whetstone_engine::device::keep_freed_memory();
    let store = Store::open(spec.home.join(crate::DATABASE_FILE))?;
    store.claim_run(spec.run_id, std::process::id())?;
    let mut log = EventLog::open(run_dir)?;
    log.write(WorkerEvent::Status { status: RunStatus::Running, pid: std::process::id() });

    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (dir, flag, done) = (run_dir.to_path_buf(), interrupt.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if jobs::requested(&dir).is_some() {
                    flag.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let result = train(&spec, run_dir, &interrupt, &store, &mut log);
    done.store(true, Ordering::Relaxed);
    let _ = poller.join();

    let (status, error) = match &result {
        Ok(summary) => match summary.outcome {
            Outcome::Completed | Outcome::EarlyStopped => (RunStatus::Completed, None),
            Outcome::BadSteps => (RunStatus::Failed, summary.reason.clone()),
            Outcome::Interrupted => match jobs::requested(run_dir) {
                Some(Control::Stop | Control::Discard) => (RunStatus::Stopped, None),
                _ => (RunStatus::Paused, None),
            },
        },
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    let (summary, error_body) = match &result {
        Ok(summary) => (Some(summary.clone()), None),
        Err(e) => (None, Some(e.body())),
    };
    log.write(WorkerEvent::Finished { status, summary, error: error_body });
    let _ = std::fs::remove_file(run_dir.join(jobs::CONTROL_FILE));
    store.finish_run(spec.run_id, status, error.as_deref())?;
    result.map(|_| status)
}

fn train(spec: &JobSpec, run_dir: &Path, interrupt: &AtomicBool, store: &Store, log: &mut EventLog) -> Result<run::RunSummary> {
    let s = &spec.settings;
    // The app names the device it chose in the environment; the run's own setting otherwise.
    let (device, dtype) = whetstone_engine::device::for_run(s.device)?;
    log.write(WorkerEvent::Device { device: whetstone_engine::device::name(&device).to_string(), description: whetstone_engine::device::describe(&device, dtype) });
    log.write(Event::PhaseStarted { phase: Phase::LoadingModel });
    let t = Instant::now();
    let model = load_model_on(&spec.model, s.quant, &device, dtype)?;
    log.write(Event::PhaseDone { phase: Phase::LoadingModel, seconds: t.elapsed().as_secs_f64() });
    log.write(Event::PhaseStarted { phase: Phase::ReadingData });
    let t = Instant::now();
    let mut examples = |p: &Path| -> Result<Vec<TrainExample>> {
        let built = training_examples(&model, p, s)?;
        if !built.dropped.is_empty() {
            let message = dropped_rows_message(p, &built.dropped, s.max_len);
            log.write(WorkerEvent::RowsDropped { data: p.to_path_buf(), max_len: s.max_len, rows: built.dropped, message });
        }
        Ok(built.kept.into_iter().map(|(_, e)| to_train(e)).collect())
    };
    let train = examples(&spec.data)?;
    let val = match &spec.val {
        Some(v) => examples(v)?,
        None => Vec::new(),
    };
    log.write(Event::PhaseDone { phase: Phase::ReadingData, seconds: t.elapsed().as_secs_f64() });
    let job = Job { model: &model.decoder, train: &train, val: &val, settings: s, out: run_dir, base_model_name: &model.name, pad_id: pad_id(&model.tokenizer) };
    let pause = std::env::var(CHECKPOINT_PAUSE_ENV).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
    let mut hooks = WorkerHooks { pause };
    let resume = run_dir.join("checkpoints").exists();
    // A resumed run keeps the best evaluation of its earlier sessions: the checkpoint it continues
    // from carries it too, and this session reports only the bests it finds itself.
    let mut progress = RunProgress::default();
    if resume {
        if let Ok(before) = store.get_run(spec.run_id) {
            progress.best_step = before.best_step;
            progress.best_eval_loss = before.best_eval_loss;
        }
    }
    let mut last_beat = Instant::now() - Duration::from_secs(10);
    let summary = run::run(&job, resume, interrupt, &mut hooks, |e: &Event| {
        let mut beat = false;
        match e {
            Event::Started { total_steps, .. } => {
                progress.total_steps = Some(*total_steps);
                beat = true;
            }
            Event::Step { metrics, .. } => {
                progress.step = metrics.step;
                progress.last_loss = Some(metrics.loss);
            }
            Event::Eval { metrics, best } => {
                if *best {
                    progress.best_step = Some(metrics.step);
                    progress.best_eval_loss = Some(metrics.loss);
                }
                beat = true;
            }
            Event::Checkpoint { step, .. } => {
                progress.step = progress.step.max(*step);
                beat = true;
            }
            _ => {}
        }
        log.write(e.clone());
        if beat || last_beat.elapsed() >= Duration::from_secs(1) {
            last_beat = Instant::now();
            // The heartbeat is best effort: a busy database must not stop training.
            let _ = store.update_run_progress(spec.run_id, &progress);
        }
    });
    let _ = store.update_run_progress(spec.run_id, &progress);
    Ok(summary?)
}
