//! The one event type of a run, from the worker to every screen: what the training loop reports
//! ([`whetstone_engine::run::Event`]) and what the worker adds around it. The worker writes these to
//! `events.jsonl`, the CLI prints them, the UI receives them; each reads the same Rust type (the UI
//! through the TypeScript generated from it).

use crate::{ErrorBody, RunStatus};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use whetstone_data::DroppedRow;
use whetstone_engine::run::{Event, RunSummary};

/// What the worker reports besides the training loop's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// The worker took the run.
    Status { status: RunStatus, pid: u32 },
    /// Where the worker trains: `cuda:0`, `cpu`, `metal`, and the same in words with the precision.
    Device { device: String, description: String },
    /// Rows of a data file that have no answer token within the maximum length, left out of training.
    RowsDropped {
        data: PathBuf,
        max_len: usize,
        rows: Vec<DroppedRow>,
        /// The same in plain words.
        message: String,
    },
    /// The run ended: its summary when training returned, else the error that ended it.
    Finished {
        status: RunStatus,
        #[serde(default)]
        summary: Option<RunSummary>,
        #[serde(default)]
        error: Option<ErrorBody>,
    },
}

/// Any event of a run. Both kinds carry a `type` tag and no tag is shared, so the JSON needs no
/// wrapper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(untagged)]
pub enum RunEvent {
    Train(Event),
    Worker(WorkerEvent),
}

/// One line of `events.jsonl`: the event and when it was written (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LoggedEvent {
    pub time: f64,
    #[serde(flatten)]
    pub event: RunEvent,
}

impl From<Event> for RunEvent {
    fn from(e: Event) -> Self {
        RunEvent::Train(e)
    }
}

impl From<WorkerEvent> for RunEvent {
    fn from(e: WorkerEvent) -> Self {
        RunEvent::Worker(e)
    }
}
