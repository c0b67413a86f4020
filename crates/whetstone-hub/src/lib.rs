//! Where models come from: a curated catalog, the Hugging Face Hub (search and downloads into the
//! cache folder every HF tool shares), and nothing else. Knows nothing of tensors or training.

pub mod cache;
pub mod catalog;
mod client;
mod error;
#[cfg(feature = "testing")]
pub mod testing;

pub use cache::HfCache;
pub use catalog::{catalog, CatalogEntry, CatalogShape};
pub use client::{
    default_files, DownloadOptions, FileProgress, HubClient, ProgressFn, HubModel, PulledFile, RepoInfo, Snapshot,
    DEFAULT_ENDPOINT,
};
pub use error::{Error, Result};
