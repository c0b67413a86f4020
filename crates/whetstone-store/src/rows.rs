//! Typed rows as the API hands them out. Timestamps are RFC 3339 UTC strings written by SQLite.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ModelSource {
    /// Shipped with Whetstone (the default model).
    Bundled,
    /// Downloaded from the Hugging Face Hub.
    Hub,
    /// A file or folder the user pointed at.
    Local,
}

impl ModelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelSource::Bundled => "bundled",
            ModelSource::Hub => "hub",
            ModelSource::Local => "local",
        }
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bundled" => Ok(ModelSource::Bundled),
            "hub" => Ok(ModelSource::Hub),
            "local" => Ok(ModelSource::Local),
            other => Err(format!(
                "unknown model source `{other}` (expected bundled, hub or local)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Model {
    pub id: i64,
    pub name: String,
    pub source: ModelSource,
    /// Hub repo id for `hub`, a filesystem path otherwise.
    pub location: String,
    pub architecture: Option<String>,
    pub parameters: Option<u64>,
    pub license: Option<String>,
    /// `None` when the license terms are not known.
    pub commercial_use: Option<bool>,
    pub added_at: String,
    #[serde(flatten)]
    pub origin: ModelOrigin,
}

/// Where a model's files are and where they came from (schema version 2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ModelOrigin {
    /// The model folder or GGUF file on this machine.
    pub path: Option<String>,
    /// Hub repo id, for models pulled from the hub (or imported from a hub cache folder).
    pub repo_id: Option<String>,
    /// The commit the files were pulled at.
    pub revision: Option<String>,
    /// `[{name, size, etag?, sha256?}]` of the files the model is made of.
    pub files: Option<serde_json::Value>,
    /// SHA-256 of a single-file model (GGUF).
    pub sha256: Option<String>,
    pub context_length: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewModel {
    pub name: String,
    pub source: ModelSource,
    pub location: String,
    pub architecture: Option<String>,
    pub parameters: Option<u64>,
    pub license: Option<String>,
    pub commercial_use: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Dataset {
    pub id: i64,
    pub name: String,
    pub source_path: String,
    /// Lowercase hex SHA-256 of the source file when it was imported.
    pub source_sha256: String,
    pub rows: u64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewDataset {
    pub name: String,
    pub source_path: String,
    pub source_sha256: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    /// Checkpointed and stopped on request; can be resumed.
    Paused,
    /// Stopped on request with its adapter saved; it can still be resumed.
    Stopped,
    Completed,
    Failed,
    Cancelled,
    /// Its worker died without saying so (crash, kill, power loss); resumable from its last checkpoint.
    Interrupted,
    /// Thrown away on request: its files are deleted, its record stays so that nothing vanishes unsaid.
    Discarded,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Stopped => "stopped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Discarded => "discarded",
        }
    }
}

impl RunStatus {
    /// A worker may be at work on the run.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The run can continue from its last checkpoint.
    pub fn is_resumable(self) -> bool {
        matches!(self, RunStatus::Paused | RunStatus::Stopped | RunStatus::Interrupted | RunStatus::Failed)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(RunStatus::Queued),
            "running" => Ok(RunStatus::Running),
            "paused" => Ok(RunStatus::Paused),
            "stopped" => Ok(RunStatus::Stopped),
            "interrupted" => Ok(RunStatus::Interrupted),
            "completed" => Ok(RunStatus::Completed),
            "failed" => Ok(RunStatus::Failed),
            "cancelled" => Ok(RunStatus::Cancelled),
            "discarded" => Ok(RunStatus::Discarded),
            other => Err(format!(
                "unknown run status `{other}` (expected queued, running, paused, stopped, completed, failed, cancelled, interrupted or discarded)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Run {
    pub id: i64,
    pub model_id: i64,
    pub dataset_id: Option<i64>,
    /// The training configuration as given when the run was created.
    pub config: serde_json::Value,
    pub status: RunStatus,
    pub out_dir: String,
    pub created_at: String,
    pub updated_at: String,
    /// The worker process while one is at work.
    pub pid: Option<u32>,
    pub step: u64,
    pub total_steps: Option<u64>,
    pub last_loss: Option<f64>,
    pub best_step: Option<u64>,
    pub best_eval_loss: Option<f64>,
    /// When the worker last reported.
    pub heartbeat_at: Option<String>,
    /// Why the run failed or stopped early, in plain words.
    pub error: Option<String>,
}

/// Progress a worker reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunProgress {
    pub step: u64,
    pub total_steps: Option<u64>,
    pub last_loss: Option<f64>,
    pub best_step: Option<u64>,
    pub best_eval_loss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewRun {
    pub model_id: i64,
    pub dataset_id: Option<i64>,
    pub config: serde_json::Value,
    pub status: RunStatus,
    pub out_dir: String,
}

/// One version of a dataset: its rows file and how it was made from its parent.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DatasetVersion {
    pub id: i64,
    pub dataset_id: i64,
    pub version: u32,
    pub parent: Option<u32>,
    /// The steps that made this version from its parent, each with its parameters and counts.
    pub steps: serde_json::Value,
    pub rows_path: String,
    pub rows: u64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDatasetVersion {
    pub dataset_id: i64,
    pub parent: Option<u32>,
    pub steps: serde_json::Value,
    pub rows_path: String,
    pub rows: u64,
}
