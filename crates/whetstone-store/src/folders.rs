//! The folders outside the home folder that the API may read and write, as the user listed them.
//! Paths are stored as given; callers canonicalise before adding so that one folder has one row.

use crate::error::{Error, Result};
use crate::store::Store;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct AllowedFolder {
    pub id: i64,
    pub path: String,
    pub added_at: String,
}

const COLUMNS: &str = "id, path, added_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AllowedFolder> {
    Ok(AllowedFolder {
        id: row.get(0)?,
        path: row.get(1)?,
        added_at: row.get(2)?,
    })
}

impl Store {
    /// Adds `path`; adding it again returns the existing row unchanged.
    pub fn add_allowed_folder(&self, path: &str) -> Result<AllowedFolder> {
        if path.trim().is_empty() {
            return Err(Error::Invalid {
                what: "allowed folder",
                reason: "the path is empty".into(),
            });
        }
        self.conn.execute(
            "INSERT INTO allowed_folders (path) VALUES (?1) ON CONFLICT (path) DO NOTHING",
            params![path],
        )?;
        let sql = format!("SELECT {COLUMNS} FROM allowed_folders WHERE path = ?1");
        Ok(self.conn.query_row(&sql, params![path], from_row)?)
    }

    pub fn list_allowed_folders(&self) -> Result<Vec<AllowedFolder>> {
        let sql = format!("SELECT {COLUMNS} FROM allowed_folders ORDER BY path");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Removes `path`; returns the removed row, or `None` when it was not in the list.
    pub fn remove_allowed_folder(&self, path: &str) -> Result<Option<AllowedFolder>> {
        let sql = format!("DELETE FROM allowed_folders WHERE path = ?1 RETURNING {COLUMNS}");
        Ok(self
            .conn
            .query_row(&sql, params![path], from_row)
            .optional()?)
    }
}
