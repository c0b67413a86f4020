//! Typed rows as the API hands them out. Timestamps are RFC 3339 UTC strings written by SQLite.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
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
            "completed" => Ok(RunStatus::Completed),
            "failed" => Ok(RunStatus::Failed),
            "cancelled" => Ok(RunStatus::Cancelled),
            other => Err(format!(
                "unknown run status `{other}` (expected queued, running, completed, failed or cancelled)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewRun {
    pub model_id: i64,
    pub dataset_id: Option<i64>,
    pub config: serde_json::Value,
    pub status: RunStatus,
    pub out_dir: String,
}
