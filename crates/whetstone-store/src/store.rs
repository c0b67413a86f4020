use crate::error::{Error, Result};
use crate::migrations::{LATEST_VERSION, MIGRATIONS};
use crate::rows::{Dataset, Model, ModelOrigin, NewDataset, NewModel, NewRun, Run, RunStatus};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The desktop app and the CLI may write at the same moment; wait rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const MODEL_COLUMNS: &str = "id, name, source, location, architecture, parameters, license, commercial_use, added_at, \
     path, repo_id, revision, files, sha256, context_length";
const DATASET_COLUMNS: &str = "id, name, source_path, source_sha256, rows, created_at";
const RUN_COLUMNS: &str =
    "id, model_id, dataset_id, config, status, out_dir, created_at, updated_at";

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_at_version(path, LATEST_VERSION)
    }

    /// Opens the database and applies migrations only up to `version`. Used to build databases
    /// as older releases left them, so upgrades can be tested.
    pub fn open_at_version(path: impl AsRef<Path>, version: u32) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if version > LATEST_VERSION {
            return Err(Error::Invalid {
                what: "schema version",
                reason: format!("{version} is beyond the latest known version {LATEST_VERSION}"),
            });
        }
        check_header(&path)?;
        let conn = Connection::open(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let open_err = |source: rusqlite::Error| classify_open_error(&path, source);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let found = read_user_version(&conn).map_err(open_err)?;
        if found > LATEST_VERSION {
            return Err(Error::TooNew {
                path,
                found,
                latest: LATEST_VERSION,
            });
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid {
                what: "journal mode",
                reason: format!("{} stayed in `{mode}` mode instead of WAL", path.display()),
            });
        }
        let mut store = Store { conn, path };
        store.migrate_to(version)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of migrations applied to this database.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(read_user_version(&self.conn)?)
    }

    fn migrate_to(&mut self, target: u32) -> Result<()> {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening a
        // fresh file at once cannot both run the same migration.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = read_user_version(&tx)?;
        for migration in MIGRATIONS
            .iter()
            .filter(|m| m.version > current && m.version <= target)
        {
            let fail = |source| Error::Migration {
                path: self.path.clone(),
                version: migration.version,
                name: migration.name,
                source,
            };
            tx.execute_batch(migration.sql).map_err(fail)?;
            tx.pragma_update(None, "user_version", migration.version)
                .map_err(fail)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn insert_model(&self, new: &NewModel) -> Result<Model> {
        non_empty("model name", &new.name)?;
        non_empty("model location", &new.location)?;
        if let Some(p) = new.parameters {
            i64::try_from(p).map_err(|_| Error::Invalid {
                what: "model parameters",
                reason: format!("{p} does not fit in a signed 64-bit integer"),
            })?;
        }
        self.conn.execute(
            "INSERT INTO models (name, source, location, architecture, parameters, license, commercial_use)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.name,
                new.source.as_str(),
                new.location,
                new.architecture,
                new.parameters,
                new.license,
                new.commercial_use
            ],
        )?;
        self.get_model(self.conn.last_insert_rowid())
    }

    /// Records where a model's files are and where they came from, and refreshes what is known of
    /// it (a second pull of a repo updates its row).
    pub fn set_model_origin(&self, id: i64, origin: &ModelOrigin) -> Result<Model> {
        let files = origin.files.as_ref().map(|f| f.to_string());
        let changed = self.conn.execute(
            "UPDATE models SET path = ?2, repo_id = ?3, revision = ?4, files = ?5, sha256 = ?6, context_length = ?7
             WHERE id = ?1",
            params![id, origin.path, origin.repo_id, origin.revision, files, origin.sha256, origin.context_length],
        )?;
        if changed == 0 {
            return Err(Error::NotFound { what: "model", id });
        }
        self.get_model(id)
    }

    /// Updates what describes a model (name, architecture, size, license) in place.
    pub fn update_model(&self, id: i64, new: &NewModel) -> Result<Model> {
        non_empty("model name", &new.name)?;
        let changed = self.conn.execute(
            "UPDATE models SET name = ?2, source = ?3, architecture = ?4, parameters = ?5, license = ?6, commercial_use = ?7
             WHERE id = ?1",
            params![id, new.name, new.source.as_str(), new.architecture, new.parameters, new.license, new.commercial_use],
        )?;
        if changed == 0 {
            return Err(Error::NotFound { what: "model", id });
        }
        self.get_model(id)
    }

    pub fn get_model(&self, id: i64) -> Result<Model> {
        let sql = format!("SELECT {MODEL_COLUMNS} FROM models WHERE id = ?1");
        let raw = self
            .conn
            .query_row(&sql, [id], RawModel::from_row)
            .optional()?
            .ok_or(Error::NotFound { what: "model", id })?;
        raw.into_model()
    }

    pub fn find_model_by_location(&self, location: &str) -> Result<Option<Model>> {
        let sql = format!("SELECT {MODEL_COLUMNS} FROM models WHERE location = ?1");
        self.conn
            .query_row(&sql, [location], RawModel::from_row)
            .optional()?
            .map(RawModel::into_model)
            .transpose()
    }

    pub fn list_models(&self) -> Result<Vec<Model>> {
        let sql = format!("SELECT {MODEL_COLUMNS} FROM models ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt
            .query_map([], RawModel::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(RawModel::into_model).collect()
    }

    pub fn insert_dataset(&self, new: &NewDataset) -> Result<Dataset> {
        non_empty("dataset name", &new.name)?;
        non_empty("dataset source path", &new.source_path)?;
        let sha_ok = new.source_sha256.len() == 64
            && new
                .source_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !sha_ok {
            return Err(Error::Invalid {
                what: "dataset source_sha256",
                reason: format!(
                    "`{}` is not 64 lowercase hex digits",
                    new.source_sha256
                ),
            });
        }
        self.conn.execute(
            "INSERT INTO datasets (name, source_path, source_sha256, rows) VALUES (?1, ?2, ?3, ?4)",
            params![new.name, new.source_path, new.source_sha256, new.rows],
        )?;
        self.get_dataset(self.conn.last_insert_rowid())
    }

    pub fn get_dataset(&self, id: i64) -> Result<Dataset> {
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = ?1");
        self.conn
            .query_row(&sql, [id], dataset_from_row)
            .optional()?
            .ok_or(Error::NotFound {
                what: "dataset",
                id,
            })
    }

    pub fn list_datasets(&self) -> Result<Vec<Dataset>> {
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], dataset_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn insert_run(&self, new: &NewRun) -> Result<Run> {
        non_empty("run out_dir", &new.out_dir)?;
        // Checked here so the caller learns which reference is wrong, not just "FOREIGN KEY failed".
        self.get_model(new.model_id)?;
        if let Some(dataset_id) = new.dataset_id {
            self.get_dataset(dataset_id)?;
        }
        let config = serde_json::to_string(&new.config).map_err(|e| Error::Invalid {
            what: "run config",
            reason: e.to_string(),
        })?;
        self.conn.execute(
            "INSERT INTO runs (model_id, dataset_id, config, status, out_dir) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                new.model_id,
                new.dataset_id,
                config,
                new.status.as_str(),
                new.out_dir
            ],
        )?;
        self.get_run(self.conn.last_insert_rowid())
    }

    pub fn get_run(&self, id: i64) -> Result<Run> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let raw = self
            .conn
            .query_row(&sql, [id], RawRun::from_row)
            .optional()?
            .ok_or(Error::NotFound { what: "run", id })?;
        raw.into_run()
    }

    pub fn list_runs(&self) -> Result<Vec<Run>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt
            .query_map([], RawRun::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(RawRun::into_run).collect()
    }

    pub fn set_run_status(&self, id: i64, status: RunStatus) -> Result<Run> {
        let changed = self.conn.execute(
            "UPDATE runs SET status = ?1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?2",
            params![status.as_str(), id],
        )?;
        if changed == 0 {
            return Err(Error::NotFound { what: "run", id });
        }
        self.get_run(id)
    }
}

/// Refuses files that are clearly something else before SQLite touches them, so a wrong path
/// can never be turned into a database.
fn check_header(path: &Path) -> Result<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Let SQLite report directories and permission problems in its own words.
        Err(_) => return Ok(()),
    };
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Ok(());
    }
    let mut header = Vec::with_capacity(16);
    if file.by_ref().take(16).read_to_end(&mut header).is_err() {
        return Ok(());
    }
    if header.is_empty() || header.as_slice() == SQLITE_MAGIC {
        return Ok(());
    }
    Err(Error::NotADatabase {
        path: path.to_path_buf(),
    })
}

fn classify_open_error(path: &Path, source: rusqlite::Error) -> Error {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => Error::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn read_user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

fn non_empty(what: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::Invalid {
            what,
            reason: "it is empty".into(),
        });
    }
    Ok(())
}

fn dataset_from_row(row: &Row<'_>) -> rusqlite::Result<Dataset> {
    Ok(Dataset {
        id: row.get(0)?,
        name: row.get(1)?,
        source_path: row.get(2)?,
        source_sha256: row.get(3)?,
        rows: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// A row before its text-coded columns are parsed, so a bad value can be reported with its id.
struct RawModel {
    model: Model,
    source: String,
    files: Option<String>,
}

impl RawModel {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawModel> {
        Ok(RawModel {
            source: row.get(2)?,
            model: Model {
                id: row.get(0)?,
                name: row.get(1)?,
                source: crate::rows::ModelSource::Local,
                location: row.get(3)?,
                architecture: row.get(4)?,
                parameters: row.get(5)?,
                license: row.get(6)?,
                commercial_use: row.get(7)?,
                added_at: row.get(8)?,
                origin: ModelOrigin {
                    path: row.get(9)?,
                    repo_id: row.get(10)?,
                    revision: row.get(11)?,
                    files: None,
                    sha256: row.get(13)?,
                    context_length: row.get(14)?,
                },
            },
            files: row.get(12)?,
        })
    }

    fn into_model(self) -> Result<Model> {
        let mut model = self.model;
        model.source = self.source.parse().map_err(|reason| Error::Corrupt {
            what: "model",
            id: model.id,
            reason,
        })?;
        if let Some(files) = self.files {
            model.origin.files = Some(serde_json::from_str(&files).map_err(|e| Error::Corrupt {
                what: "model",
                id: model.id,
                reason: format!("files column: {e}"),
            })?);
        }
        Ok(model)
    }
}

struct RawRun {
    id: i64,
    model_id: i64,
    dataset_id: Option<i64>,
    config: String,
    status: String,
    out_dir: String,
    created_at: String,
    updated_at: String,
}

impl RawRun {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            id: row.get(0)?,
            model_id: row.get(1)?,
            dataset_id: row.get(2)?,
            config: row.get(3)?,
            status: row.get(4)?,
            out_dir: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
        })
    }

    fn into_run(self) -> Result<Run> {
        let corrupt = |reason: String| Error::Corrupt {
            what: "run",
            id: self.id,
            reason,
        };
        let config = serde_json::from_str(&self.config)
            .map_err(|e| corrupt(format!("config is not JSON: {e}")))?;
        let status = self.status.parse().map_err(corrupt)?;
        Ok(Run {
            id: self.id,
            model_id: self.model_id,
            dataset_id: self.dataset_id,
            config,
            status,
            out_dir: self.out_dir,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
