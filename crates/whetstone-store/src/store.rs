use crate::error::{Error, Result};
use crate::migrations::{LATEST_VERSION, MIGRATIONS};
use crate::rows::{
    Dataset, DatasetVersion, Model, ModelOrigin, NewDataset, NewDatasetVersion, NewModel, NewRun, Run, RunProgress, RunStatus,
};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The desktop app and the CLI may write at the same moment; wait rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

const MODEL_COLUMNS: &str = "id, name, source, location, architecture, parameters, license, commercial_use, added_at, \
     path, repo_id, revision, files, sha256, context_length";
const DATASET_COLUMNS: &str = "id, name, source_path, source_sha256, rows, created_at";
const RUN_COLUMNS: &str = "id, model_id, dataset_id, config, status, out_dir, created_at, updated_at, \
     pid, step, total_steps, last_loss, best_step, best_eval_loss, heartbeat_at, error";
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

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
        let mode = enable_wal(&conn).map_err(open_err)?;
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

    /// The model added from `location`, or whose files are there: a downloaded model is added by its
    /// hub id, and a run or an import that names its snapshot folder is the same model, not a new one.
    pub fn find_model_by_location(&self, location: &str) -> Result<Option<Model>> {
        let sql = format!("SELECT {MODEL_COLUMNS} FROM models WHERE location = ?1 OR path = ?1 ORDER BY location = ?1 DESC, id LIMIT 1");
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
        check_new_dataset(new)?;
        self.conn.execute(
            "INSERT INTO datasets (name, source_path, source_sha256, rows) VALUES (?1, ?2, ?3, ?4)",
            params![new.name, new.source_path, new.source_sha256, new.rows],
        )?;
        self.get_dataset(self.conn.last_insert_rowid())
    }

    /// Inserts a dataset and its first version in one transaction. `place` runs inside it with the new
    /// dataset's id (to put the rows file where the version will point) and returns the version's rows
    /// path and steps; when it fails, or anything else does, nothing is recorded.
    pub fn insert_dataset_with_first_version<E: From<Error>>(
        &mut self,
        new: &NewDataset,
        place: impl FnOnce(i64) -> std::result::Result<(String, serde_json::Value), E>,
    ) -> std::result::Result<(Dataset, DatasetVersion), E> {
        check_new_dataset(new)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(Error::from)?;
        tx.execute(
            "INSERT INTO datasets (name, source_path, source_sha256, rows) VALUES (?1, ?2, ?3, ?4)",
            params![new.name, new.source_path, new.source_sha256, new.rows],
        )
        .map_err(Error::from)?;
        let id = tx.last_insert_rowid();
        let (rows_path, steps) = place(id)?;
        non_empty("dataset version rows path", &rows_path)?;
        let steps = serde_json::to_string(&steps).map_err(|e| Error::Invalid { what: "dataset version steps", reason: e.to_string() })?;
        tx.execute(
            "INSERT INTO dataset_versions (dataset_id, version, parent, steps, rows_path, rows) VALUES (?1, 1, NULL, ?2, ?3, ?4)",
            params![id, steps, rows_path, new.rows],
        )
        .map_err(Error::from)?;
        tx.commit().map_err(Error::from)?;
        Ok((self.get_dataset(id)?, self.get_dataset_version(id, 1)?))
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

    /// Datasets with this exact name, newest first.
    pub fn find_datasets_by_name(&self, name: &str) -> Result<Vec<Dataset>> {
        let sql = format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE name = ?1 ORDER BY id DESC");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([name], dataset_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Adds the next version of a dataset (1 for the first); its number is chosen inside the write transaction
    /// so two writers cannot take the same one. The dataset's row count follows its latest version.
    pub fn insert_dataset_version(&mut self, new: &NewDatasetVersion) -> Result<DatasetVersion> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next = insert_version_in(&tx, new)?;
        tx.commit()?;
        self.get_dataset_version(new.dataset_id, next)
    }

    pub fn get_dataset_version(&self, dataset_id: i64, version: u32) -> Result<DatasetVersion> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = ?1 AND version = ?2");
        self.conn
            .query_row(&sql, params![dataset_id, version], RawVersion::from_row)
            .optional()?
            .ok_or(Error::NotFound { what: "dataset version", id: version as i64 })?
            .into_version()
    }

    /// Every version of a dataset, oldest first.
    pub fn list_dataset_versions(&self, dataset_id: i64) -> Result<Vec<DatasetVersion>> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = ?1 ORDER BY version");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt
            .query_map([dataset_id], RawVersion::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(RawVersion::into_version).collect()
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

    /// A worker process `pid` takes the run: it is running from now on, with no error. A discarded
    /// run is not taken: its files are gone, and its record says so.
    pub fn claim_run(&self, id: i64, pid: u32) -> Result<Run> {
        let sql = format!(
            "UPDATE runs SET status = 'running', pid = ?1, error = NULL, heartbeat_at = {NOW}, updated_at = {NOW} \
             WHERE id = ?2 AND status != 'discarded'"
        );
        let n = self.conn.execute(&sql, params![pid, id])?;
        if n == 0 && self.get_run(id)?.status == RunStatus::Discarded {
            return Err(Error::Invalid { what: "run", reason: format!("run {id} was discarded; it cannot be trained") });
        }
        self.changed(n, id)
    }

    /// Records the worker's pid when the run is still waiting for it (the worker may already have
    /// claimed it, or even finished, by the time its parent gets here).
    pub fn set_run_pid_if_queued(&self, id: i64, pid: u32) -> Result<()> {
        self.conn.execute("UPDATE runs SET pid = ?1 WHERE id = ?2 AND status = 'queued'", params![pid, id])?;
        Ok(())
    }

    /// Progress and heartbeat from the worker.
    pub fn update_run_progress(&self, id: i64, p: &RunProgress) -> Result<()> {
        let sql = format!(
            "UPDATE runs SET step = ?1, total_steps = ?2, last_loss = ?3, best_step = ?4, best_eval_loss = ?5, \
             heartbeat_at = {NOW}, updated_at = {NOW} WHERE id = ?6"
        );
        let n = self.conn.execute(
            &sql,
            params![p.step as i64, p.total_steps.map(|s| s as i64), p.last_loss, p.best_step.map(|s| s as i64), p.best_eval_loss, id],
        )?;
        self.changed(n, id).map(|_| ())
    }

    /// The run's worker is gone; `status` says how it ended and `error` why, if not as planned. A
    /// discarded run stays discarded, whatever its worker said last.
    pub fn finish_run(&self, id: i64, status: RunStatus, error: Option<&str>) -> Result<Run> {
        let sql = format!("UPDATE runs SET status = ?1, pid = NULL, error = ?2, updated_at = {NOW} WHERE id = ?3 AND status != 'discarded'");
        let n = self.conn.execute(&sql, params![status.as_str(), error, id])?;
        if n == 0 {
            return self.get_run(id);
        }
        self.changed(n, id)
    }

    /// Marks the run discarded (its files deleted), with `note` saying what went; for good.
    pub fn discard_run(&self, id: i64, note: &str) -> Result<Run> {
        let sql = format!("UPDATE runs SET status = 'discarded', pid = NULL, error = ?1, updated_at = {NOW} WHERE id = ?2");
        self.changed(self.conn.execute(&sql, params![note, id])?, id)
    }

    /// Sets `status` only if the run is in one of `from`; returns whether it was.
    pub fn transition_run(&self, id: i64, from: &[RunStatus], status: RunStatus) -> Result<bool> {
        let list: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let sql = format!(
            "UPDATE runs SET status = ?1, updated_at = {NOW} WHERE id = ?2 AND status IN ({})",
            list.join(", ")
        );
        let n = self.conn.execute(&sql, params![status.as_str(), id])?;
        if n == 0 {
            self.get_run(id)?;
        }
        Ok(n > 0)
    }

    fn changed(&self, n: usize, id: i64) -> Result<Run> {
        if n == 0 {
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

/// Adds the next version of a dataset inside `tx`, which must hold the write lock (IMMEDIATE), and
/// returns its number. Callers that record something else with the version share its transaction.
pub(crate) fn insert_version_in(tx: &rusqlite::Transaction<'_>, new: &NewDatasetVersion) -> Result<u32> {
    non_empty("dataset version rows path", &new.rows_path)?;
    let steps = serde_json::to_string(&new.steps).map_err(|e| Error::Invalid {
        what: "dataset version steps",
        reason: e.to_string(),
    })?;
    let exists: Option<i64> = tx
        .query_row("SELECT id FROM datasets WHERE id = ?1", [new.dataset_id], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(Error::NotFound { what: "dataset", id: new.dataset_id });
    }
    let next: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id = ?1",
        [new.dataset_id],
        |r| r.get(0),
    )?;
    if let Some(p) = new.parent {
        if p >= next {
            return Err(Error::Invalid {
                what: "dataset version parent",
                reason: format!("version {p} does not exist yet (next is {next})"),
            });
        }
    }
    tx.execute(
        "INSERT INTO dataset_versions (dataset_id, version, parent, steps, rows_path, rows)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![new.dataset_id, next, new.parent, steps, new.rows_path, new.rows],
    )?;
    tx.execute("UPDATE datasets SET rows = ?1 WHERE id = ?2", params![new.rows, new.dataset_id])?;
    Ok(next)
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

const VERSION_COLUMNS: &str = "id, dataset_id, version, parent, steps, rows_path, rows, created_at";

struct RawVersion {
    version: DatasetVersion,
    steps: String,
}

impl RawVersion {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawVersion> {
        Ok(RawVersion {
            steps: row.get(4)?,
            version: DatasetVersion {
                id: row.get(0)?,
                dataset_id: row.get(1)?,
                version: row.get(2)?,
                parent: row.get(3)?,
                steps: serde_json::Value::Null,
                rows_path: row.get(5)?,
                rows: row.get(6)?,
                created_at: row.get(7)?,
            },
        })
    }

    fn into_version(self) -> Result<DatasetVersion> {
        let mut v = self.version;
        v.steps = serde_json::from_str(&self.steps).map_err(|e| Error::Corrupt {
            what: "dataset version",
            id: v.id,
            reason: format!("steps are not JSON: {e}"),
        })?;
        Ok(v)
    }
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
    pid: Option<u32>,
    step: i64,
    total_steps: Option<i64>,
    last_loss: Option<f64>,
    best_step: Option<i64>,
    best_eval_loss: Option<f64>,
    heartbeat_at: Option<String>,
    error: Option<String>,
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
            pid: row.get(8)?,
            step: row.get(9)?,
            total_steps: row.get(10)?,
            last_loss: row.get(11)?,
            best_step: row.get(12)?,
            best_eval_loss: row.get(13)?,
            heartbeat_at: row.get(14)?,
            error: row.get(15)?,
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
            pid: self.pid,
            step: self.step.max(0) as u64,
            total_steps: self.total_steps.map(|s| s.max(0) as u64),
            last_loss: self.last_loss,
            best_step: self.best_step.map(|s| s.max(0) as u64),
            best_eval_loss: self.best_eval_loss,
            heartbeat_at: self.heartbeat_at,
            error: self.error,
        })
    }
}

/// Switches the database to WAL (a persistent setting, so only the first open of a new file changes
/// it). SQLite answers a mode change that races another connection with "database is locked" at once,
/// without waiting on the busy timeout, so the change is retried for as long as that timeout.
fn enable_wal(conn: &Connection) -> rusqlite::Result<String> {
    let current: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(current);
    }
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

fn check_new_dataset(new: &NewDataset) -> Result<()> {
    non_empty("dataset name", &new.name)?;
    non_empty("dataset source path", &new.source_path)?;
    let sha_ok = new.source_sha256.len() == 64 && new.source_sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !sha_ok {
        return Err(Error::Invalid {
            what: "dataset source_sha256",
            reason: format!("`{}` is not 64 lowercase hex digits", new.source_sha256),
        });
    }
    Ok(())
}
