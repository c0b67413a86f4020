//! Saving an evaluation's answers, a review's ratings or its preference pairs into a file: what the
//! desktop window does where a browser downloads the same text. A bare file name lands in the `exports`
//! folder of Whetstone's home folder; a full path must lie in the home folder or an allowed folder. An
//! existing file is replaced only when asked, and the file is written atomically.

use crate::error::{Error, Result};
use crate::evaluation::TableFormat;
use crate::review::RaterKind;
use crate::review_results::{ReviewExportArgs, ReviewPreferencesArgs};
use crate::Api;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The folder under the home folder that bare file names are saved into.
pub const EXPORTS_DIR: &str = "exports";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// An evaluation's answers (`eval_export`).
    Evaluation,
    /// A review session's ratings (`review_export`).
    Review,
    /// A review session's preference pairs (`review_preferences`), always JSON lines.
    Preferences,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SaveTable {
    pub table: TableKind,
    /// The evaluation's or the review session's id.
    pub id: i64,
    pub format: TableFormat,
    /// Only this kind of rater (review and preferences; see `review_export` and `review_preferences`).
    #[serde(default)]
    #[ts(optional)]
    pub kind: Option<RaterKind>,
    /// A file name (saved in the home folder's `exports` folder) or a full path.
    pub out: PathBuf,
    /// Replace `out` when it exists; without it an existing file is refused.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct SavedTable {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The name alone when `out` is a bare file name (no folder in it).
pub(crate) fn bare_name(out: &Path) -> Option<&std::ffi::OsStr> {
    let mut parts = out.components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) => Some(name),
        _ => None,
    }
}

impl Api {
    /// Writes the chosen table into `out` (see [`SaveTable`]).
    pub fn save_table(&self, req: &SaveTable) -> Result<SavedTable> {
        let path = match bare_name(&req.out) {
            Some(name) => self.home().join(EXPORTS_DIR).join(name),
            None if req.out.is_absolute() => req.out.clone(),
            None => {
                return Err(Error::InvalidInput(format!(
                    "{}: give a file name (saved in Whetstone's exports folder) or a full path",
                    req.out.display()
                )))
            }
        };
        let text = match req.table {
            TableKind::Evaluation => {
                if req.kind.is_some() {
                    return Err(Error::InvalidInput("an evaluation's answers have no raters; leave out kind".into()));
                }
                self.eval_export(req.id, req.format)?
            }
            TableKind::Review => self.review_export(&ReviewExportArgs { id: req.id, format: req.format, kind: req.kind })?,
            TableKind::Preferences => {
                if req.format != TableFormat::Jsonl {
                    return Err(Error::InvalidInput("preference pairs are saved as JSON lines; use the jsonl format".into()));
                }
                self.review_preferences(&ReviewPreferencesArgs { id: req.id, kind: req.kind })?
            }
        };
        if path.exists() && !req.overwrite {
            return Err(Error::FileExists { path });
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io { action: "create the folder", path: dir.to_path_buf(), source })?;
        }
        whetstone_files::write_atomic(&path, text.as_bytes()).map_err(|source| Error::Io { action: "write", path: path.clone(), source })?;
        Ok(SavedTable { path, bytes: text.len() as u64 })
    }
}
