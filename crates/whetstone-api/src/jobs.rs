//! Training runs as jobs: each run trains in a worker process of its own, started detached so that
//! closing the app (or the terminal) does not end it, and a crash or out-of-memory in it cannot take
//! the app down. The worker reports through files in the run folder and the database; the app reads
//! them back, also after a restart.
//!
//! Run folder: `job.json` (what to train), `events.jsonl` (one JSON event per line, appended),
//! `metrics.jsonl`, `checkpoints/`, `adapter/`, `control` (a request to pause or stop, which the
//! worker polls between steps) and `worker.log` (the worker's stderr).

use crate::error::{write_atomic, Error, Result};
use crate::events::LoggedEvent;
use crate::{Api, Run, RunStatus, Workers};
use whetstone_engine::device::DeviceChoice;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use whetstone_engine::run::TrainSettings;
use whetstone_engine::ModelFiles;
use whetstone_store::{ModelSource, NewModel, NewRun};

pub const JOB_FILE: &str = "job.json";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const CONTROL_FILE: &str = "control";
pub const WORKER_LOG: &str = "worker.log";

/// Everything a run writes into its folder; `overwrite` removes these and nothing else.
pub const RUN_FILES: &[&str] = &[JOB_FILE, EVENTS_FILE, CONTROL_FILE, WORKER_LOG, "metrics.jsonl", "settings.json", "checkpoints", "adapter"];

/// What a worker trains; written to `job.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub run_id: i64,
    /// Whetstone's home folder, whose database the worker updates.
    pub home: PathBuf,
    pub model: PathBuf,
    pub data: PathBuf,
    pub val: Option<PathBuf>,
    pub settings: TrainSettings,
}

/// A new run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub model: PathBuf,
    /// A data file, or an imported dataset's name (its latest version's train split).
    pub data: PathBuf,
    /// Validation data: a file, or an imported dataset's name (its latest version's val split).
    #[serde(default)]
    pub val: Option<PathBuf>,
    /// The run folder; by default a new folder under `<home>/runs`. A folder that holds anything is
    /// refused unless `overwrite` is set.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// Replace an earlier run's files in `out` (never a live run's; other files are left alone).
    #[serde(default)]
    pub overwrite: bool,
    #[serde(default)]
    pub settings: TrainSettings,
}

/// How to start a worker: `program args… --run-dir DIR`. The CLI passes `whet worker`; the desktop
/// app passes its own executable with its hidden worker flag; the GPU worker is a CUDA build of
/// `whet` (see [`crate::backend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// This executable with `args` (e.g. `["worker"]`).
    pub fn current_exe(args: &[&str]) -> Result<Self> {
        let program = std::env::current_exe().map_err(|source| Error::Io { action: "find", path: PathBuf::from("the running program"), source })?;
        Ok(WorkerCommand { program, args: args.iter().map(|s| s.to_string()).collect() })
    }
}

/// A request the worker picks up between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Control {
    /// Checkpoint and exit; resumable.
    Pause,
    /// Checkpoint, save the adapter and end.
    Stop,
    /// End at once: the run is being thrown away, its files deleted once the worker is gone.
    Discard,
}

/// Writes a pause or stop request into a run folder.
pub fn request(run_dir: &Path, control: Control) -> Result<()> {
    let p = run_dir.join(CONTROL_FILE);
    let text = match control {
        Control::Pause => "pause",
        Control::Stop => "stop",
        Control::Discard => "discard",
    };
    write_atomic(&p, text.as_bytes())
}

/// The request waiting in a run folder, if any.
pub fn requested(run_dir: &Path) -> Option<Control> {
    match std::fs::read_to_string(run_dir.join(CONTROL_FILE)).ok()?.trim() {
        "pause" => Some(Control::Pause),
        "stop" => Some(Control::Stop),
        "discard" => Some(Control::Discard),
        _ => None,
    }
}

/// Ends process `pid` at once (SIGKILL), for a worker whose run is being discarded.
pub fn kill(pid: u32) {
    #[cfg(unix)]
    if pid > 0 {
        // SAFETY: sends a signal; no memory is involved.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}


/// Whether process `pid` is alive (a zombie is not).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !exists {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name in parentheses.
            Ok(s) => s.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(true),
            Err(_) => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// New events of a run since byte `since` of its event log.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RunEvents {
    pub events: Vec<LoggedEvent>,
    /// Pass this as `since` next time.
    pub next: u64,
    pub run: Run,
}

/// Reads whole lines of `path` from byte `since`; a line still being written is left for next time.
pub fn read_events(path: &Path, since: u64) -> Result<(Vec<LoggedEvent>, u64)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), since)),
        Err(source) => return Err(Error::Io { action: "read", path: path.to_path_buf(), source }),
    };
    let io = |source| Error::Io { action: "read", path: path.to_path_buf(), source };
    f.seek(SeekFrom::Start(since)).map_err(io)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(io)?;
    let end = buf.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
    let events = buf[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    Ok((events, since + end as u64))
}

impl Api {
    /// Sets how this host starts workers (needed by [`Api::start_run`] through `dispatch`): the
    /// CPU worker and, when there is one, the GPU worker.
    pub fn with_workers(mut self, workers: Workers) -> Api {
        self.workers = Some(workers);
        self
    }

    /// [`Api::with_workers`] with a CPU worker only.
    pub fn with_worker(self, worker: WorkerCommand) -> Api {
        self.with_workers(Workers::cpu_only(worker))
    }

    fn workers(&self) -> Result<&Workers> {
        self.workers.as_ref().ok_or_else(|| Error::InvalidInput("this program cannot start training workers".into()))
    }

    /// The configured workers, or this program as the only (CPU) worker, for describing devices.
    pub(crate) fn workers_or_self(&self) -> Workers {
        match &self.workers {
            Some(w) => w.clone(),
            None => Workers::cpu_only(WorkerCommand { program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("whet")), args: vec![] }),
        }
    }

    /// The worker for a run with device `choice`, and the device it is to train on.
    fn worker_for(&self, choice: DeviceChoice) -> Result<(WorkerCommand, DeviceChoice)> {
        let workers = self.workers()?;
        let selection = self.select_device(choice)?;
        let worker = workers
            .for_kind(selection.worker)
            .ok_or_else(|| Error::Internal(format!("no {:?} worker for {}", selection.worker, selection.device)))?;
        Ok((worker.clone(), selection.device))
    }

    /// Creates a run and starts the worker for its device: the GPU worker for a run on an NVIDIA
    /// GPU, this program otherwise. A device that cannot train here is refused before anything is
    /// created.
    pub fn start_run(&self, req: &StartRun) -> Result<Run> {
        req.settings.validate()?;
        let (worker, device) = self.worker_for(req.settings.device)?;
        self.start_run_on(req, &worker, Some(device))
    }

    /// Creates a run for `req` and starts `worker` on it, which picks its device from the run's
    /// settings. Inputs are checked first (settings, model config, rows of the data files), so that
    /// mistakes are reported here and nothing is created.
    pub fn start_run_with(&self, req: &StartRun, worker: &WorkerCommand) -> Result<Run> {
        self.start_run_on(req, worker, None)
    }

    fn start_run_on(&self, req: &StartRun, worker: &WorkerCommand, device: Option<DeviceChoice>) -> Result<Run> {
        req.settings.validate()?;
        // A path, or an installed model's id, name or hub id.
        let model = self.resolve_model_path(&req.model.to_string_lossy())?;
        let files = ModelFiles::detect(&model)?;
        let config = files.config()?;
        // A file, or an imported dataset's name (its latest version's train split).
        let data = crate::training::resolve_training_data(self, &req.data)?;
        // An imported dataset's name as `val`: its validation split.
        let val = req.val.as_deref().map(|v| crate::training::resolve_validation_data(self, v)).transpose()?;
        whetstone_data::read_training_rows(&data)?;
        if let Some(v) = &val {
            whetstone_data::read_training_rows(v)?;
        }
        let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let model_path = abs(&model);
        let location = model_path.display().to_string();
        let model_id = {
            let store = self.store();
            match store.find_model_by_location(&location)? {
                Some(m) => m.id,
                None => {
                    let bundled = self.default_model_path.as_deref().map(abs).as_deref() == Some(model_path.as_path());
                    let name = model_path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| location.clone());
                    let new = NewModel {
                        name,
                        source: if bundled { ModelSource::Bundled } else { ModelSource::Local },
                        location: location.clone(),
                        architecture: Some(config.architecture.model_type().to_string()),
                        parameters: Some(config.num_parameters() as u64),
                        license: None,
                        commercial_use: None,
                    };
                    match store.insert_model(&new) {
                        Ok(m) => m.id,
                        // Another process registered the same model a moment ago.
                        Err(e) => store.find_model_by_location(&location)?.map(|m| m.id).ok_or(e)?,
                    }
                }
            }
        };
        let out = match &req.out {
            Some(o) => self.prepare_run_folder(o, req.overwrite)?,
            None => self.new_run_folder()?,
        };
        let data = abs(&data);
        let val = val.as_deref().map(abs);
        let run = self.store().insert_run(&NewRun {
            model_id,
            dataset_id: None,
            config: serde_json::json!({ "model": model_path, "data": data, "val": val, "settings": req.settings }),
            status: RunStatus::Queued,
            out_dir: out.display().to_string(),
        })?;
        let spec = JobSpec { run_id: run.id, home: self.home.clone(), model: model_path, data, val, settings: req.settings.clone() };
        let text = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&out.join(JOB_FILE), &text)?;
        self.spawn_worker(&run, worker, device)
    }

    /// A new, empty folder under `<home>/runs`, created here so two runs started at once never share one.
    fn new_run_folder(&self) -> Result<PathBuf> {
        let root = self.home.join("runs");
        std::fs::create_dir_all(&root).map_err(|source| Error::Io { action: "create the runs folder", path: root.clone(), source })?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        for n in 0.. {
            let dir = root.join(if n == 0 { format!("run-{stamp}") } else { format!("run-{stamp}-{n}") });
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(std::fs::canonicalize(&dir).unwrap_or(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(Error::Io { action: "create the run folder", path: dir, source }),
            }
        }
        unreachable!("an unbounded range always yields")
    }

    /// The folder the user named for a run. Nothing the user has is lost: a folder holding anything
    /// is refused unless `overwrite` asks to replace an earlier run there, and even then only that
    /// run's own files go; a folder in which a run is live is never touched.
    fn prepare_run_folder(&self, out: &Path, overwrite: bool) -> Result<PathBuf> {
        std::fs::create_dir_all(out).map_err(|source| Error::Io { action: "create the run folder", path: out.to_path_buf(), source })?;
        let out = std::fs::canonicalize(out).map_err(|source| Error::Io { action: "find the run folder", path: out.to_path_buf(), source })?;
        self.reconcile_runs()?;
        if let Some(live) = self.store().list_runs()?.into_iter().find(|r| r.status.is_active() && Path::new(&r.out_dir) == out) {
            return Err(Error::RunFolderBusy { path: out, run: live.id });
        }
        let empty = whetstone_files::is_empty_dir(&out).map_err(|source| Error::Io { action: "read the run folder", path: out.clone(), source })?;
        if !empty && !overwrite {
            return Err(Error::FolderNotEmpty { path: out });
        }
        if !empty {
            for name in RUN_FILES {
                let p = out.join(name);
                let gone = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                match gone {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Io { action: "replace the earlier run's files in", path: p, source }),
                }
            }
        }
        Ok(out)
    }

    /// Starts `worker` on `run`'s folder; with `device`, the worker trains there (through
    /// `WHETSTONE_DEVICE`) whatever the run's settings say.
    fn spawn_worker(&self, run: &Run, worker: &WorkerCommand, device: Option<DeviceChoice>) -> Result<Run> {
        // The worker is another process: the memory the playground's models hold here is better given to it.
        self.forget_loaded_models();
        let dir = PathBuf::from(&run.out_dir);
        let _ = std::fs::remove_file(dir.join(CONTROL_FILE));
        let log_path = dir.join(WORKER_LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| Error::Io { action: "open", path: log_path.clone(), source })?;
        let mut cmd = Command::new(&worker.program);
        cmd.args(&worker.args).arg("--run-dir").arg(&dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        if let Some(d) = device {
            cmd.env(whetstone_engine::device::DEVICE_ENV, d.to_string());
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: Ctrl-C in a terminal or the app closing does not reach it.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| Error::Io { action: "start the training worker", path: worker.program.clone(), source })?;
        self.store().set_run_pid_if_queued(run.id, child.id())?;
        // Reap it when it ends, so that it does not linger as a zombie that looks alive.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(self.store().get_run(run.id)?)
    }

    /// Marks runs whose worker is gone as interrupted (resumable). Called whenever runs are read,
    /// so that a run found after a restart shows what happened to it.
    pub fn reconcile_runs(&self) -> Result<()> {
        let store = self.store();
        for run in store.list_runs()? {
            if !run.status.is_active() {
                continue;
            }
            let gone = match run.pid {
                Some(pid) => !pid_alive(pid),
                // Queued without a worker for over a minute: its start failed.
                None => run.status == RunStatus::Running || stale(&run.updated_at),
            };
            if gone {
                store.finish_run(run.id, RunStatus::Interrupted, Some("The training process ended unexpectedly; resume continues from the last checkpoint."))?;
            }
        }
        Ok(())
    }

    /// Asks the worker to checkpoint and exit. The run becomes `paused` once it has.
    pub fn pause_run(&self, id: i64) -> Result<Run> {
        self.control_run(id, Control::Pause)
    }

    /// Asks the worker to checkpoint, save the adapter and end. A run without a worker is marked
    /// stopped at once.
    pub fn stop_run(&self, id: i64) -> Result<Run> {
        self.control_run(id, Control::Stop)
    }

    fn control_run(&self, id: i64, control: Control) -> Result<Run> {
        self.reconcile_runs()?;
        let run = self.get_run(id)?;
        if run.status.is_active() {
            request(Path::new(&run.out_dir), control)?;
        } else if control == Control::Stop && matches!(run.status, RunStatus::Paused | RunStatus::Interrupted) {
            self.store().transition_run(id, &[RunStatus::Paused, RunStatus::Interrupted], RunStatus::Stopped)?;
        } else {
            return Err(Error::InvalidInput(format!("run {id} is {}; only a queued or running run can be {}", run.status, if control == Control::Pause { "paused" } else { "stopped" })));
        }
        self.get_run(id)
    }

    /// Starts a worker that continues the run from its last good checkpoint, on the device its
    /// settings name as this computer has it now (a run paused on the GPU may go on on the CPU).
    pub fn resume_run(&self, id: i64) -> Result<Run> {
        let run = self.get_run(id)?;
        let job = Path::new(&run.out_dir).join(JOB_FILE);
        let choice = match std::fs::read(&job) {
            Ok(text) => serde_json::from_slice::<JobSpec>(&text).map(|j| j.settings.device).unwrap_or_default(),
            // `resume_run_on` says what is missing.
            Err(_) => DeviceChoice::Auto,
        };
        let (worker, device) = self.worker_for(choice)?;
        self.resume_run_on(id, &worker, Some(device))
    }

    pub fn resume_run_with(&self, id: i64, worker: &WorkerCommand) -> Result<Run> {
        self.resume_run_on(id, worker, None)
    }

    fn resume_run_on(&self, id: i64, worker: &WorkerCommand, device: Option<DeviceChoice>) -> Result<Run> {
        self.reconcile_runs()?;
        let run = self.get_run(id)?;
        if !run.status.is_resumable() {
            return Err(Error::InvalidInput(format!("run {id} is {}; only a paused, stopped, interrupted or failed run can be resumed", run.status)));
        }
        if !Path::new(&run.out_dir).join(JOB_FILE).is_file() {
            return Err(Error::InvalidInput(format!("run {id} has no {JOB_FILE} in {}; it cannot be resumed", run.out_dir)));
        }
        let from = [RunStatus::Paused, RunStatus::Stopped, RunStatus::Interrupted, RunStatus::Failed];
        if !self.store().transition_run(id, &from, RunStatus::Queued)? {
            return Err(Error::InvalidInput(format!("run {id} changed state meanwhile; try again")));
        }
        let run = self.get_run(id)?;
        self.spawn_worker(&run, worker, device)
    }

    /// Events the run's worker wrote since byte `since` of its log.
    pub fn run_events(&self, id: i64, since: u64) -> Result<RunEvents> {
        self.reconcile_runs()?;
        let run = self.get_run(id)?;
        let (events, next) = read_events(&Path::new(&run.out_dir).join(EVENTS_FILE), since)?;
        Ok(RunEvents { events, next, run })
    }
}

/// Whether an SQLite timestamp is more than a minute old.
fn stale(updated_at: &str) -> bool {
    // Compared as text against now minus a minute in the same format, which sorts chronologically.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let then = now.saturating_sub(60);
    updated_at < crate::time::rfc3339(then).as_str()
}
