use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} is not a Whetstone database (it is not an SQLite file); it was left untouched")]
    NotADatabase { path: PathBuf },

    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "the database {path} has schema version {found}, newer than this build knows ({latest}); \
         update Whetstone to open it"
    )]
    TooNew { path: PathBuf, found: u32, latest: u32 },

    #[error("migration to schema version {version} ({name}) failed in {path}: {source}")]
    Migration {
        path: PathBuf,
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    #[error("no {what} with id {id} in the database")]
    NotFound { what: &'static str, id: i64 },

    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },

    #[error("the database holds an unreadable {what} (id {id}): {reason}")]
    Corrupt { what: &'static str, id: i64, reason: String },

    #[error("database query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
