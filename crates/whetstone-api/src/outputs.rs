//! What a run leaves on disk and how to throw it away: the adapter, the best and the last
//! checkpoints, and every file of the run's folder with its size. Discarding stops the run's worker,
//! deletes the run's own files (nothing else in its folder, and nothing outside it: exports live
//! elsewhere and stay) and marks the run discarded, so the record says what happened to it.

use crate::error::{Error, Result};
use crate::events::{RunEvent, WorkerEvent};
use crate::jobs::{self, Control, EVENTS_FILE, RUN_FILES};
use crate::{Api, Run, RunStatus};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a discarded run's worker gets to stop at its next step before it is killed: it is
/// throwing its work away, so nothing is lost by not waiting for a slow model load.
pub const DISCARD_GRACE: Duration = Duration::from_secs(10);

/// A checkpoint folder of a run.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct CheckpointInfo {
    pub step: u64,
    pub path: PathBuf,
    /// Its validation loss, when it is the best evaluation's.
    pub eval_loss: Option<f64>,
    pub bytes: u64,
}

/// The adapter the run saved last (PEFT layout), usable on its own or exported.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct SavedAdapter {
    pub path: PathBuf,
    /// The step whose weights it holds, when the worker said.
    pub step: Option<u64>,
    /// It holds the best evaluation's weights rather than the last step's.
    pub best: bool,
    pub bytes: u64,
}

/// One entry of the run's folder that belongs to the run.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RunFile {
    pub path: PathBuf,
    /// Its size, a folder's with everything in it.
    pub bytes: u64,
}

/// Where a run's results are, and what discarding it would delete.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RunFiles {
    pub run: i64,
    pub folder: PathBuf,
    pub folder_exists: bool,
    pub adapter: Option<SavedAdapter>,
    /// The checkpoint of the lowest validation loss, kept whatever else is pruned.
    pub best: Option<CheckpointInfo>,
    /// The newest checkpoint.
    pub last: Option<CheckpointInfo>,
    /// Every checkpoint, newest first.
    pub checkpoints: Vec<CheckpointInfo>,
    /// The run's own files and folders: what discarding it deletes.
    pub own: Vec<RunFile>,
    /// Their size together: the space discarding frees.
    pub own_bytes: u64,
    /// Anything else in the folder, which discarding leaves where it is.
    pub others: Vec<PathBuf>,
}

/// What discarding a run did.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Discarded {
    pub run: Run,
    pub deleted: Vec<RunFile>,
    pub freed_bytes: u64,
    /// Entries of the folder that were not the run's and stay.
    pub kept: Vec<PathBuf>,
    /// The folder itself was removed (it held nothing else).
    pub folder_removed: bool,
}

/// Size of a file, or of a folder and everything under it (links are not followed).
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| size_of(&e.path())).sum()
}

/// Whether `name` is one of the files a run writes in its folder, or what an interrupted atomic
/// write of one left beside it (`.adapter.123-0.tmp`, `.adapter.123-0.old`).
fn is_run_file(name: &str) -> bool {
    RUN_FILES.contains(&name) || RUN_FILES.iter().any(|f| name.starts_with(&format!(".{f}.")) && (name.ends_with(".tmp") || name.ends_with(".old")))
}

/// The adapter's step and whether it is the best one, from the newest summary in the event log.
fn adapter_origin(dir: &Path) -> (Option<u64>, bool) {
    let path = dir.join(EVENTS_FILE);
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // The summary is the worker's last line; a few steps' worth of the tail holds it.
    let (events, _) = jobs::read_events(&path, len.saturating_sub(64 * 1024)).unwrap_or_default();
    for e in events.iter().rev() {
        if let RunEvent::Worker(WorkerEvent::Finished { summary: Some(s), .. }) = &e.event {
            return match (s.adapter_is_best, s.best) {
                (true, Some(b)) => (Some(b.step), true),
                _ => (Some(s.steps), false),
            };
        }
    }
    (None, false)
}

fn checkpoints(dir: &Path, best: Option<(u64, Option<f64>)>) -> Vec<CheckpointInfo> {
    let root = dir.join("checkpoints");
    whetstone_engine::checkpoint::list(&root)
        .into_iter()
        .map(|step| whetstone_engine::checkpoint::step_dir(&root, step))
        // A checkpoint is whole once its manifest is written; one without is a save cut short.
        .filter(|p| p.join(whetstone_engine::checkpoint::MANIFEST).is_file())
        .filter_map(|path| {
            let step = path.file_name()?.to_str()?.strip_prefix("step-")?.parse().ok()?;
            let eval_loss = best.filter(|b| b.0 == step).and_then(|b| b.1);
            Some(CheckpointInfo { step, bytes: size_of(&path), path, eval_loss })
        })
        .collect()
}

/// What lies in a run's folder: the run's results and what is not the run's.
pub fn run_files(run: &Run) -> RunFiles {
    let folder = PathBuf::from(&run.out_dir);
    let best_step = run.best_step.map(|s| (s, run.best_eval_loss));
    let checkpoints = checkpoints(&folder, best_step);
    let best = best_step.and_then(|(s, _)| checkpoints.iter().find(|c| c.step == s).cloned());
    let adapter_dir = folder.join("adapter");
    let adapter = adapter_dir.join("adapter_config.json").is_file().then(|| {
        let (step, best) = adapter_origin(&folder);
        SavedAdapter { bytes: size_of(&adapter_dir), path: adapter_dir, step, best }
    });
    let (mut own, mut others) = (Vec::new(), Vec::new());
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    for (name, path) in names {
        if is_run_file(&name) {
            own.push(RunFile { bytes: size_of(&path), path });
        } else {
            others.push(path);
        }
    }
    RunFiles {
        run: run.id,
        folder_exists: folder.is_dir(),
        own_bytes: own.iter().map(|f| f.bytes).sum(),
        last: checkpoints.first().cloned(),
        folder,
        adapter,
        best,
        checkpoints,
        own,
        others,
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    let gone = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match gone {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `12.3 MB`, for the note kept on the record.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let (mut v, mut unit) = (bytes as f64 / 1024.0, 0);
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

impl Api {
    /// Where the run's adapter and checkpoints are, and what discarding it would delete.
    pub fn run_files(&self, id: i64) -> Result<RunFiles> {
        Ok(run_files(&self.get_run(id)?))
    }

    /// Stops the run's worker if it has one, deletes the run's files from its folder (and the folder,
    /// when nothing else is left in it) and marks the run discarded. Exports and anything else
    /// outside the run's own files stay. Discarding a run twice is refused.
    pub fn discard_run(&self, id: i64) -> Result<Discarded> {
        self.reconcile_runs()?;
        let run = self.get_run(id)?;
        if run.status == RunStatus::Discarded {
            return Err(Error::AlreadyDiscarded { run: id, note: run.error.unwrap_or_default() });
        }
        if run.status.is_active() {
            self.stop_for_discard(&run)?;
        }
        let files = run_files(&self.get_run(id)?);
        let mut deleted = Vec::new();
        for f in &files.own {
            remove(&f.path).map_err(|source| Error::Io { action: "delete", path: f.path.clone(), source })?;
            deleted.push(f.clone());
        }
        let folder_removed = files.folder_exists
            && whetstone_files::is_empty_dir(&files.folder).unwrap_or(false)
            && std::fs::remove_dir(&files.folder).is_ok();
        let freed_bytes = deleted.iter().map(|f| f.bytes).sum();
        let note = format!(
            "Discarded: {} of its files deleted from {}{}.",
            human(freed_bytes),
            files.folder.display(),
            if files.others.is_empty() { String::new() } else { format!(" ({} other entries there left alone)", files.others.len()) }
        );
        let run = self.store().discard_run(id, &note)?;
        Ok(Discarded { run, deleted, freed_bytes, kept: files.others, folder_removed })
    }

    /// Asks the run's worker to stop, waits for it to be gone, and kills it if it does not stop
    /// within [`DISCARD_GRACE`] (a model still loading does not look at requests).
    fn stop_for_discard(&self, run: &Run) -> Result<()> {
        let dir = Path::new(&run.out_dir);
        jobs::request(dir, Control::Discard)?;
        let started = Instant::now();
        let mut pid = run.pid;
        let mut killed = false;
        loop {
            let now = self.store().get_run(run.id)?;
            pid = now.pid.or(pid);
            let worker_alive = pid.is_some_and(jobs::pid_alive);
            if !worker_alive && (!now.status.is_active() || pid.is_some()) {
                return Ok(());
            }
            if !worker_alive && started.elapsed() > DISCARD_GRACE {
                // Queued, with no worker ever seen: nothing is training it.
                return Ok(());
            }
            if worker_alive && started.elapsed() > DISCARD_GRACE {
                if killed && started.elapsed() > DISCARD_GRACE * 2 {
                    return Err(Error::InvalidInput(format!(
                        "the training process of run {} (pid {}) did not stop; nothing was deleted, try again",
                        run.id,
                        pid.unwrap_or(0)
                    )));
                }
                if !killed {
                    jobs::kill(pid.unwrap_or(0));
                    killed = true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
