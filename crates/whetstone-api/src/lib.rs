//! The one API that the desktop app (Tauri commands), the `whet` CLI and its HTTP server call.
//!
//! Typed methods on [`Api`] are the contract; [`Api::dispatch`] maps command names and JSON
//! arguments onto them for callers that speak JSON. Every error becomes an [`ErrorBody`] with a
//! stable `code`.

pub mod augment;
pub mod backend;
pub mod bench;
pub mod bindings;
pub mod datasets;
mod default_model;
pub mod defaults;
pub mod dispatch;
mod error;
pub mod evaluation;
pub mod gpu_bench;
pub mod events;
pub mod export;
pub mod export_run;
pub mod follow;
pub mod folders;
pub mod jobs;
pub mod judge;
pub mod models;
pub mod outputs;
pub mod plan;
pub mod pulls;
pub mod playground;
pub mod queue;
pub mod series;
pub mod sharing;
pub mod settings_files;
pub mod tables;
pub mod review;
mod rating_writer;
pub mod review_results;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
pub mod training;
pub mod uploads;
pub mod worker;

pub use default_model::{default_model_path, read_default_model, DefaultModel, DEFAULT_MODEL_FILE};
pub use dispatch::{Command, Reach, COMMANDS};
pub use error::{Error, ErrorBody, Result};
pub use folders::Access;
pub use backend::{Devices, Workers};
pub use jobs::{JobSpec, RunEvents, StartRun, WorkerCommand};
pub use whetstone_hw::{Gpu, Hardware};
pub use whetstone_hub::{CatalogEntry, FileProgress, HubModel};
pub use whetstone_store::{AllowedFolder, Dataset, DatasetVersion, Model, ModelOrigin, ModelSource, Run, RunStatus};

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use whetstone_store::Store;

pub const DATABASE_FILE: &str = "whetstone.db";

pub struct Api {
    home: PathBuf,
    store: Mutex<Store>,
    /// Raters' ratings, written in batches on a connection of their own.
    ratings: rating_writer::RatingWriter,
    default_model_path: Option<PathBuf>,
    /// How this host starts training workers; see [`Api::with_workers`].
    workers: Option<Workers>,
    /// Downloads under way, so another call can cancel one.
    pulls: pulls::Pulls,
    /// The playground's last base model and adapter (see [`Api::playground`]).
    loaded: Mutex<Option<std::sync::Arc<playground::LoadedPair>>>,
    /// How this host serves review pages to raters elsewhere; see [`Api::with_review_sharing`].
    sharing: Option<std::sync::Arc<dyn sharing::ReviewHost>>,
}

/// Everything the start screen shows, in one call.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Overview {
    pub hardware: Hardware,
    pub models: Vec<Model>,
    pub datasets: Vec<Dataset>,
    pub runs: Vec<Run>,
    pub default_model: Option<DefaultModel>,
    /// Where runs train on this computer, and with which worker.
    pub devices: Devices,
}

impl Api {
    /// Opens the Whetstone home folder `home`, creating it and its database if needed.
    pub fn open(home: &Path) -> Result<Api> {
        std::fs::create_dir_all(home).map_err(|source| Error::Io {
            action: "create the Whetstone home folder",
            path: home.to_path_buf(),
            source,
        })?;
        let store = Store::open(home.join(DATABASE_FILE))?;
        Ok(Api {
            home: home.to_path_buf(),
            store: Mutex::new(store),
            ratings: rating_writer::RatingWriter::default(),
            default_model_path: default_model_path(),
            workers: None,
            pulls: pulls::Pulls::default(),
            loaded: Mutex::new(None),
            sharing: None,
        })
    }

    /// Opens `$WHETSTONE_HOME`, else the platform data folder + `whetstone`.
    pub fn open_default() -> Result<Api> {
        Self::open(&default_home()?)
    }

    /// Looks for the default model at `path` instead of the environment's location.
    pub fn with_default_model_path(mut self, path: Option<PathBuf>) -> Api {
        self.default_model_path = path;
        self
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn hardware(&self) -> Result<Hardware> {
        hardware()
    }

    pub fn list_models(&self) -> Result<Vec<Model>> {
        Ok(self.store().list_models()?)
    }

    pub fn get_model(&self, id: i64) -> Result<Model> {
        Ok(self.store().get_model(id)?)
    }

    pub fn list_datasets(&self) -> Result<Vec<Dataset>> {
        Ok(self.store().list_datasets()?)
    }

    pub fn get_dataset(&self, id: i64) -> Result<Dataset> {
        Ok(self.store().get_dataset(id)?)
    }

    pub fn list_runs(&self) -> Result<Vec<Run>> {
        self.reconcile_runs()?;
        Ok(self.store().list_runs()?)
    }

    pub fn get_run(&self, id: i64) -> Result<Run> {
        self.reconcile_runs()?;
        Ok(self.store().get_run(id)?)
    }

    /// The rows of the run's `metrics.jsonl` (training rows, and evaluation rows with `"kind":"eval"`).
    pub fn run_metrics(&self, id: i64) -> Result<Vec<serde_json::Value>> {
        let run = self.get_run(id)?;
        export::read_metrics(&Path::new(&run.out_dir).join("metrics.jsonl"))
    }

    pub fn run_metrics_csv(&self, id: i64) -> Result<String> {
        Ok(export::metrics_csv(&self.run_metrics(id)?))
    }

    /// Writes the run's metrics as a TensorBoard event file in `dir`; returns its path.
    pub fn export_run_tensorboard(&self, id: i64, dir: &Path) -> Result<PathBuf> {
        export::write_tensorboard(&self.run_metrics(id)?, dir)
    }

    /// The bundled model, read from its GGUF header; `None` when its file is absent.
    pub fn default_model(&self) -> Result<Option<DefaultModel>> {
        match &self.default_model_path {
            Some(path) => read_default_model(path),
            None => Ok(None),
        }
    }

    pub fn overview(&self) -> Result<Overview> {
        let hardware = self.hardware()?;
        Ok(Overview {
            devices: self.devices_on(&hardware),
            models: self.list_models()?,
            datasets: self.list_datasets()?,
            runs: self.list_runs()?,
            default_model: self.default_model()?,
            hardware,
        })
    }

    /// Where runs can train on this computer: each device, whether it can be used now, and what
    /// `auto` picks.
    pub fn devices(&self) -> Result<Devices> {
        Ok(self.devices_on(&self.hardware()?))
    }

    fn devices_on(&self, hw: &Hardware) -> Devices {
        backend::options(&backend::detect(hw, &self.workers_or_self()))
    }

    /// The device and worker a run with `choice` gets; `WHETSTONE_DEVICE` wins over `choice`.
    pub fn select_device(&self, choice: whetstone_engine::device::DeviceChoice) -> Result<backend::Selection> {
        let choice = whetstone_engine::device::env_choice()?.unwrap_or(choice);
        let hw = self.hardware()?;
        Ok(backend::select(choice, &backend::detect(&hw, &self.workers_or_self()))?)
    }

    /// Direct access for the parts of Whetstone that write (imports, training runs).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        // SQLite rolls back whatever a panicking holder left half-done, so the store stays usable.
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// CPU, memory and GPUs of this machine; needs no home folder.
pub fn hardware() -> Result<Hardware> {
    Ok(whetstone_hw::detect()?)
}

/// `$WHETSTONE_HOME`, else the platform data folder (`~/.local/share`, `~/Library/Application
/// Support`, `%APPDATA%`) + `whetstone`.
pub fn default_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("WHETSTONE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    dirs::data_dir()
        .map(|d| d.join("whetstone"))
        .ok_or(Error::NoHome)
}
