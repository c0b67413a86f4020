use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: i64 },

    #[error("{0}")]
    InvalidInput(String),

    #[error("no {what} named `{name}`; known: {known}")]
    NotFoundNamed { what: &'static str, name: String, known: String },

    #[error("{0}")]
    NoModel(String),

    #[error("unknown command `{command}`; known commands: {}", crate::COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>().join(", "))]
    UnknownCommand { command: String },

    #[error("`{command}` can only be used in the Whetstone app's own window")]
    OutOfReach { command: String },

    #[error("{0}")]
    Store(whetstone_store::Error),

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Hardware(#[from] whetstone_hw::Error),

    #[error("{path} is not a readable GGUF model file: {reason}")]
    InvalidModelFile { path: PathBuf, reason: String },

    #[error(
        "cannot find a folder for Whetstone's data: set WHETSTONE_HOME to a folder where it may \
         keep its database"
    )]
    NoHome,

    #[error(
        "{} is not in a folder Whetstone may use: {reason}. Allow the folder that holds it with \
         `whet folders add DIR` and try again",
        .path.display()
    )]
    PathNotAllowed { path: PathBuf, reason: String },

    #[error("internal error: {0}")]
    Internal(String),

    #[error("{0}")]
    Engine(#[from] whetstone_engine::Error),

    #[error("{0}")]
    Data(#[from] whetstone_data::DataError),

    #[error("{0}")]
    Hub(#[from] whetstone_hub::Error),

    #[error(
        "{} already holds files; choose an empty or new folder for the run, or ask to replace the earlier run there \
         (--overwrite, or confirm in the app)",
        path.display()
    )]
    FolderNotEmpty { path: PathBuf },

    #[error("{} already exists; choose another file name, or ask to replace it (--overwrite)", path.display())]
    FileExists { path: PathBuf },

    #[error("{} already holds files; choose an empty or new folder for the export, or ask to replace it (--overwrite)", path.display())]
    ExportFolderNotEmpty { path: PathBuf },

    #[error("run {run} is not ready to use yet: {reason}")]
    RunNotReady { run: i64, reason: String },

    #[error("{0}")]
    Export(#[from] whetstone_export::ExportError),

    #[error("{0}")]
    Eval(#[from] whetstone_eval::Error),

    #[error("{0}")]
    Unauthorized(String),

    #[error("item {item} is not in your review queue")]
    ForbiddenItem { item: u32 },

    #[error("review session {session} is closed; it takes no more ratings or raters")]
    ReviewClosed { session: i64 },

    #[error("run {run} was discarded already; its files are gone. {note}")]
    AlreadyDiscarded { run: i64, note: String },

    #[error("run {run} is training in {}; pause or stop it before starting another run there", path.display())]
    RunFolderBusy { path: PathBuf, run: i64 },

    #[error("{repo} is already being downloaded; wait for that download to end or cancel it first")]
    PullBusy { repo: String },

    #[error("sharing for review is not available in this program; start `whet serve --review --bind ADDR` beside it")]
    SharingUnavailable,

    #[error("cannot share for review on {bind}: {reason}")]
    ShareFailed { bind: String, reason: String },

    #[error("data queue {queue} was already added to its dataset as version {version}; it takes no more decisions, so start a new queue")]
    QueueApplied { queue: i64, version: u32 },
    /// The device a run asked for cannot train on this computer.
    #[error(transparent)]
    Device(#[from] crate::backend::DeviceError),

    #[error("{}", crate::training::rows_too_long_message(path, *rows, dropped, *max_len, *keep_all))]
    RowsTooLong {
        path: PathBuf,
        max_len: usize,
        /// Rows in the file.
        rows: usize,
        dropped: Vec<whetstone_data::DroppedRow>,
        /// The smallest maximum length that keeps every row.
        keep_all: usize,
    },

    #[error(
        "version {version} of `{dataset}` is no longer the latest (version {latest} is): the changes were made \
         on rows that have changed since; reload the rows and make them again"
    )]
    StaleVersion { dataset: String, version: u32, latest: u32 },

    #[error("row {row} (line {line} of the imported file) cannot be saved: {reason}; nothing was saved")]
    BadEdit { row: usize, line: usize, reason: String },

    #[error("{what} is {} bytes, more than the limit of {limit} bytes", .bytes)]
    TooLarge { what: String, bytes: usize, limit: usize },
}

impl Error {
    /// Stable machine-readable code; the UI and scripts branch on it, so never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::InvalidInput(_) => "invalid_input",
            Error::NotFoundNamed { .. } => "not_found",
            Error::NoModel(_) => "no_model",
            Error::UnknownCommand { .. } => "unknown_command",
            Error::OutOfReach { .. } => "forbidden_command",
            Error::Store(_) => "store",
            Error::Io { .. } => "io",
            Error::Hardware(_) => "hardware",
            Error::InvalidModelFile { .. } => "invalid_model_file",
            Error::NoHome => "no_home",
            Error::PathNotAllowed { .. } => "path_not_allowed",
            Error::Internal(_) => "internal",
            Error::Engine(e) => e.code(),
            Error::Data(e) => e.code(),
            Error::Hub(e) => e.code(),
            Error::RowsTooLong { .. } => "rows_too_long",
            Error::FolderNotEmpty { .. } => "folder_not_empty",
            Error::FileExists { .. } => "file_exists",
            Error::RunFolderBusy { .. } => "run_active",
            Error::ExportFolderNotEmpty { .. } => "folder_not_empty",
            Error::RunNotReady { .. } => "run_not_ready",
            Error::Export(e) => e.code(),
            Error::Eval(e) => e.code(),
            Error::Unauthorized(_) => "unauthorized",
            Error::ForbiddenItem { .. } => "forbidden_item",
            Error::ReviewClosed { .. } => "review_closed",
            Error::PullBusy { .. } => "busy",
            Error::StaleVersion { .. } => "stale_version",
            Error::BadEdit { .. } => "bad_data",
            Error::TooLarge { .. } => "too_large",
            Error::AlreadyDiscarded { .. } => "already_discarded",
            Error::QueueApplied { .. } => "queue_applied",
            Error::SharingUnavailable => "unsupported",
            Error::ShareFailed { .. } => "share_failed",
            Error::Device(_) => "device_unavailable",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.to_string(),
        }
    }
}

impl From<whetstone_store::Error> for Error {
    fn from(e: whetstone_store::Error) -> Self {
        match e {
            whetstone_store::Error::NotFound { what, id } => Error::NotFound { what, id },
            whetstone_store::Error::Invalid { .. } => Error::InvalidInput(e.to_string()),
            other => Error::Store(other),
        }
    }
}

/// What every caller (Tauri IPC, HTTP, CLI `--json`) sees of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        e.body()
    }
}

/// Serialises as [`ErrorBody`], so commands can return `Result<T, Error>` over IPC directly.
impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.body().serialize(serializer)
    }
}

/// Writes `bytes` to `path` through [`whetstone_files::write_atomic`], with the path in the error.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    whetstone_files::write_atomic(path, bytes).map_err(|source| Error::Io { action: "write", path: path.to_path_buf(), source })
}
