//! The one reader of training rows. `whet train`, evaluation, the memory planner, dataset import and
//! the app all accept exactly the files [`crate::import`] accepts (JSONL, JSON arrays, CSV/TSV, text;
//! every shape it knows) and report bad records the same way, by line.

use std::path::Path;

use crate::datarow::DataRow;
use crate::error::{DataError, Result};
use crate::import::{import_file, ImportOptions};

/// Reads every row of a training file. Training needs every row it was given, so any rejected record
/// fails the read, and the error lists each one with its line and reason.
pub fn read_training_rows(path: &Path) -> Result<Vec<DataRow>> {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let report = import_file(
        path,
        &ImportOptions::default(),
        |row| {
            rows.push(row);
            Ok(())
        },
        |rejection| {
            bad.push(rejection.clone());
            Ok(())
        },
    )?;
    if !bad.is_empty() {
        return Err(DataError::BadRows { path: path.to_path_buf(), total_rows: report.rows, bad });
    }
    if rows.is_empty() {
        return Err(DataError::EmptyDataset { path: path.to_path_buf() });
    }
    Ok(rows)
}
