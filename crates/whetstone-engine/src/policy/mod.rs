//! The decisions the training loop delegates: when to stop early, which steps to skip or warn about,
//! how to shrink the batch when memory runs out, and when to save. Each holds the part of the run's
//! state it needs (carried by checkpoints through [`crate::checkpoint::RunState`]) and takes its
//! settings as arguments, so the loop stays a loop and each rule can be tested without a model.

pub mod backoff;
pub mod checkpointing;
pub mod early_stopping;
pub mod guard;

pub use backoff::BatchShape;
pub use checkpointing::Checkpointing;
pub use early_stopping::EarlyStopping;
pub use guard::{Guard, StepCheck, Warned, Warning};
