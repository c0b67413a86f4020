//! The text artifacts of an export: the Ollama Modelfile and its chat template, the model card, and an
//! Axolotl config with launch scripts for training the same job on a cluster.

pub mod artifacts;
pub mod axolotl;
pub mod card;
pub mod error;
pub mod modelfile;
pub mod modelfile_parser;
pub mod probe;
pub mod shell;
pub mod template;
pub mod yaml;

pub use artifacts::{write, Artifacts, AxolotlExport};
pub use error::{ExportError, Result};
