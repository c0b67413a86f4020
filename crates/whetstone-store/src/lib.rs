//! The SQLite store behind Whetstone: which models, datasets and runs exist, and what evaluations found.
//!
//! One file (`whetstone.db`) in WAL mode, so the desktop app and the `whet` CLI can read it at the
//! same time. The schema is a list of migrations; `PRAGMA user_version` records how many ran.

mod error;
mod evaluations;
mod folders;
mod migrations;
mod queues;
mod reviews;
mod rows;
mod store;

pub use error::{Error, Result};
pub use evaluations::{Evaluation, EvaluationItem, NewEvaluation, OutputRecord, SideRecord};
pub use folders::AllowedFolder;
pub use migrations::{Migration, LATEST_VERSION, MIGRATIONS};
pub use queues::{DataQueue, ItemDecision, NewDataQueue, NewQueueItem, QueueItem};
pub use reviews::{Assignment, NewRater, NewRating, NewReviewSession, Rater, ReviewSession, StoredRating, Submitted};
pub use rows::{
    Dataset, DatasetVersion, Model, ModelOrigin, ModelSource, NewDataset, NewDatasetVersion, NewModel, NewRun, Run, RunProgress,
    RunStatus,
};
pub use store::Store;
