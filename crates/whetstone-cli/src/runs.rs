//! `whet runs …` and the hidden `whet worker`: runs listed, followed, paused, resumed, stopped and
//! exported.

use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use whetstone_api::jobs::{self, Control};
use whetstone_api::events::{LoggedEvent, RunEvent, WorkerEvent};
use whetstone_api::{Api, Run, RunStatus};
use whetstone_engine::run::{Event, Phase};

#[derive(Subcommand)]
pub enum RunsAction {
    /// List them
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// One run's state, progress and folder
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Checkpoint the run and stop its worker; `resume` continues it
    Pause { id: i64 },
    /// Continue a paused, stopped or interrupted run from its last good checkpoint
    Resume {
        id: i64,
        /// Return at once instead of following it
        #[arg(long)]
        detach: bool,
    },
    /// Checkpoint the run, save its adapter and end it
    Stop { id: i64 },
    /// Where the run's adapter and best and last checkpoints are
    Files {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Stop the run and delete its files (exports elsewhere stay); lists what would go without --yes
    Discard {
        id: i64,
        /// Delete them
        #[arg(long)]
        yes: bool,
    },
    /// The run's events: progress, evaluations, checkpoints, warnings
    Logs {
        id: i64,
        /// Keep printing new events until the run ends
        #[arg(long)]
        follow: bool,
        /// The events as JSON lines
        #[arg(long)]
        json: bool,
    },
    /// Write the run's metrics as CSV and/or TensorBoard event files
    Export {
        id: i64,
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        tensorboard: Option<PathBuf>,
    },
}

pub fn run(api: &Api, action: &RunsAction) -> anyhow::Result<()> {
    match action {
        RunsAction::List { json } => list(api, *json),
        RunsAction::Show { id, json } => {
            let r = api.get_run(*id)?;
            if *json {
                return crate::list::print_json(&r);
            }
            println!("run {}: {}", r.id, r.status);
            println!("step {} of {}", r.step, r.total_steps.map(|t| t.to_string()).unwrap_or_else(|| "?".into()));
            if let Some(l) = r.last_loss {
                println!("last loss {l:.4}");
            }
            if let (Some(s), Some(l)) = (r.best_step, r.best_eval_loss) {
                println!("best validation loss {l:.4} at step {s}");
            }
            if let Some(e) = &r.error {
                println!("note: {e}");
            }
            println!("folder {}", r.out_dir);
            Ok(())
        }
        RunsAction::Pause { id } => {
            let r = api.pause_run(*id)?;
            eprintln!("run {} will pause after its current step (it is {} now)", r.id, r.status);
            Ok(())
        }
        RunsAction::Stop { id } => {
            let r = api.stop_run(*id)?;
            eprintln!("run {}: {}", r.id, if r.status.is_active() { "stopping after its current step".to_string() } else { r.status.to_string() });
            Ok(())
        }
        RunsAction::Files { id, json } => {
            let f = api.run_files(*id)?;
            if *json {
                return crate::list::print_json(&f);
            }
            println!("folder {}", f.folder.display());
            if let Some(a) = &f.adapter {
                let from = match (a.best, a.step) {
                    (true, Some(s)) => format!(" (the best evaluation's, step {s})"),
                    (false, Some(s)) => format!(" (step {s})"),
                    _ => String::new(),
                };
                println!("adapter {}{from}", a.path.display());
            }
            if let Some(b) = &f.best {
                println!("best checkpoint {} (step {})", b.path.display(), b.step);
            }
            if let Some(l) = &f.last {
                println!("last checkpoint {} (step {})", l.path.display(), l.step);
            }
            Ok(())
        }
        RunsAction::Discard { id, yes } => {
            if !*yes {
                let f = api.run_files(*id)?;
                println!("Discarding run {id} deletes these {} from {}:", crate::human_bytes(f.own_bytes), f.folder.display());
                for file in &f.own {
                    println!("  {}  {}", crate::human_bytes(file.bytes), file.path.display());
                }
                for other in &f.others {
                    println!("  (stays) {}", other.display());
                }
                println!("Exports elsewhere stay. Run again with --yes to discard it.");
                return Ok(());
            }
            let d = api.discard_run(*id)?;
            eprintln!("run {id} discarded: {} freed", crate::human_bytes(d.freed_bytes));
            Ok(())
        }
        RunsAction::Resume { id, detach } => {
            let r = api.resume_run(*id)?;
            if *detach {
                eprintln!("run {} resumed in the background", r.id);
                return Ok(());
            }
            follow_to_end(api, r.id, true)
        }
        RunsAction::Logs { id, follow, json } => {
            let mut since = 0;
            let mut p = Printer;
            loop {
                let ev = api.run_events(*id, since)?;
                for e in &ev.events {
                    if *json {
                        println!("{}", serde_json::to_string(e)?);
                    } else {
                        p.print(e, &mut std::io::stdout());
                    }
                }
                let moved = ev.next != since;
                since = ev.next;
                if !*follow || (!ev.run.status.is_active() && !moved) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        RunsAction::Export { id, csv, tensorboard } => {
            if csv.is_none() && tensorboard.is_none() {
                anyhow::bail!("say where to export: --csv FILE and/or --tensorboard DIR");
            }
            if let Some(f) = csv {
                std::fs::write(f, api.run_metrics_csv(*id)?).with_context(|| format!("cannot write {}", f.display()))?;
                eprintln!("metrics written to {}", f.display());
            }
            if let Some(d) = tensorboard {
                let p = api.export_run_tensorboard(*id, d)?;
                eprintln!("TensorBoard events written to {}", p.display());
            }
            Ok(())
        }
    }
}

fn list(api: &Api, json: bool) -> anyhow::Result<()> {
    let runs = api.list_runs()?;
    if json {
        return crate::list::print_json(&runs);
    }
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.status.to_string(),
                format!("{}/{}", r.step, r.total_steps.map(|t| t.to_string()).unwrap_or_else(|| "?".into())),
                r.last_loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into()),
                r.best_eval_loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into()),
                r.model_id.to_string(),
                r.updated_at.clone(),
                r.out_dir.clone(),
            ]
        })
        .collect();
    crate::list::print_table("runs", &["ID", "STATUS", "STEP", "LOSS", "BEST EVAL", "MODEL", "UPDATED", "OUTPUT"], rows);
    Ok(())
}

fn phase_words(phase: Phase) -> &'static str {
    match phase {
        Phase::LoadingModel => "loading the model",
        Phase::ReadingData => "reading and tokenizing the data",
        Phase::FirstStep => "first training step",
    }
}

/// Turns events into progress lines.
struct Printer;

impl Printer {
    fn print(&mut self, e: &LoggedEvent, out: &mut dyn std::io::Write) {
        let line = match &e.event {
            RunEvent::Train(Event::Started { total_steps, examples, val_examples, trainable_parameters, resumed_from, .. }) => {
                let from = resumed_from.map(|s| format!(", resuming after step {s}")).unwrap_or_default();
                format!("training {trainable_parameters} adapter parameters on {examples} examples ({val_examples} for validation) for {total_steps} steps{from}")
            }
            RunEvent::Train(Event::Step { metrics: m, total_steps, eta_s, memory_bytes }) => {
                let mem = memory_bytes.map(|b| format!("  mem {}", crate::human_bytes(b))).unwrap_or_default();
                format!(
                    "step {}/{total_steps}  loss {:.4}  lr {:.2e}  grad-norm {:.3}  {:.0} tok/s  {:.0}s  eta {eta_s:.0}s{mem}",
                    m.step, m.loss, m.lr, m.grad_norm, m.tokens_per_s, m.elapsed_s
                )
            }
            RunEvent::Train(Event::Eval { metrics: m, best }) => {
                let best = if *best { "  (best so far)" } else { "" };
                format!("validation at step {}: loss {:.4}  perplexity {:.2}{best}", m.step, m.loss, m.perplexity)
            }
            RunEvent::Train(Event::Checkpoint { step, .. }) => format!("checkpoint saved at step {step}"),
            RunEvent::Train(Event::Warning { message, .. }) => format!("warning: {message}"),
            RunEvent::Train(Event::Saved { adapter }) => format!("adapter saved to {}", adapter.display()),
            RunEvent::Train(Event::PhaseStarted { phase }) => format!("{} …", phase_words(*phase)),
            RunEvent::Train(Event::PhaseDone { phase, seconds }) => format!("{} done in {seconds:.1} s", phase_words(*phase)),
            RunEvent::Worker(WorkerEvent::RowsDropped { message, .. }) => format!("warning: {message}"),
            RunEvent::Worker(WorkerEvent::Status { .. }) => return,
            RunEvent::Worker(WorkerEvent::Device { description, .. }) => format!("training on {description}"),
            RunEvent::Worker(WorkerEvent::Finished { status, summary, error }) => {
                let reason = summary.as_ref().and_then(|s| s.reason.as_deref()).or(error.as_ref().map(|e| e.message.as_str()));
                format!("finished ({status}){}", reason.map(|r| format!(": {r}")).unwrap_or_default())
            }
        };
        let _ = writeln!(out, "{line}");
    }
}

/// Prints the run's events as they come until it ends; Ctrl-C asks it to pause (when `pause_on_ctrl_c`).
pub fn follow_to_end(api: &Api, id: i64, pause_on_ctrl_c: bool) -> anyhow::Result<()> {
    let run = api.get_run(id)?;
    if pause_on_ctrl_c {
        let dir = PathBuf::from(&run.out_dir);
        ctrlc::set_handler(move || {
            eprintln!("\npausing after this step (a checkpoint is saved) …");
            let _ = jobs::request(&dir, Control::Pause);
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let mut since = 0;
    let mut p = Printer;
    let run: Run = loop {
        let ev = api.run_events(id, since)?;
        for e in &ev.events {
            p.print(e, &mut std::io::stderr());
        }
        let moved = ev.next != since;
        since = ev.next;
        if !ev.run.status.is_active() && !moved {
            break ev.run;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let folder = Path::new(&run.out_dir);
    match run.status {
        RunStatus::Completed => {
            eprintln!("run {} completed: adapter in {}", run.id, folder.join("adapter").display());
            Ok(())
        }
        RunStatus::Paused => {
            eprintln!("run {} paused at step {}; continue it with `whet train --resume {}`", run.id, run.step, run.id);
            Ok(())
        }
        RunStatus::Stopped => {
            eprintln!("run {} stopped at step {}: adapter in {}", run.id, run.step, folder.join("adapter").display());
            Ok(())
        }
        status => anyhow::bail!(
            "run {} {status}: {}",
            run.id,
            run.error.unwrap_or_else(|| format!("see {}", folder.join(jobs::WORKER_LOG).display()))
        ),
    }
}

/// The hidden `whet worker --run-dir DIR`: a signal (Ctrl-C, SIGTERM, SIGHUP) pauses the run after a
/// checkpoint.
pub fn worker(run_dir: &Path) -> anyhow::Result<()> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)).context("cannot install the signal handler")?;
    match whetstone_api::worker::run_worker(run_dir, interrupt)? {
        RunStatus::Failed => anyhow::bail!("training failed; see {}", run_dir.join(jobs::EVENTS_FILE).display()),
        _ => Ok(()),
    }
}
