//! Datasets: import, cleaning (proposal, then confirmed application), splits, token statistics, loss-mask
//! previews and export. Every change makes a new version with its provenance; the user's file is only read,
//! and each version's rows live in `<home>/datasets/<id>/v<k>.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use whetstone_data::clean::{self, Applied, CleanOptions, PiiDecisions, Proposal};
use whetstone_data::import::{self, ImportOptions, ImportReport, Mapping, Rejection, SourceFormat};
use whetstone_data::split::{self, LeakageReport, SplitCounts};
use whetstone_data::stats::{self, TokenStats};
use whetstone_data::{build_row_example, loss_mask_preview, read_rows, write_atomically, write_rows, DataRow, RowBody, Split, Tokenizer};
use whetstone_engine::ModelFiles;
use whetstone_store::{Dataset, DatasetVersion, NewDataset, NewDatasetVersion};

use crate::error::{Error, Result};
use crate::Api;

pub const DATASETS_DIR: &str = "datasets";

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub path: PathBuf,
    /// Defaults to the file name without its extension.
    #[serde(default)]
    pub name: Option<String>,
    /// `field=column` renames, e.g. `prompt=question`.
    #[serde(default)]
    pub map: Vec<String>,
    /// jsonl, json, csv, tsv or text; detected from the file when absent.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub max_row_bytes: Option<usize>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ImportResult {
    pub dataset: Dataset,
    pub version: DatasetVersion,
    pub report: ImportReport,
    /// Every rejected record (the report lists only the first ones), one JSON object per line.
    pub rejections_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CleanRequest {
    /// Dataset name or id.
    pub dataset: String,
    /// The version to clean; the latest when absent.
    #[serde(default)]
    pub version: Option<u32>,
    pub options: CleanOptions,
    /// Without `apply` only the proposal is returned and nothing changes.
    #[serde(default)]
    pub apply: bool,
    #[serde(default)]
    pub decisions: PiiDecisions,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CleanResult {
    pub dataset: String,
    pub base_version: u32,
    pub proposal: Proposal,
    /// Present once applied.
    pub applied: Option<Applied>,
    pub version: Option<DatasetVersion>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    pub dataset: String,
    #[serde(default)]
    pub version: Option<u32>,
    pub val: f64,
    pub test: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub leakage_threshold: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SplitResult {
    pub version: DatasetVersion,
    pub counts: SplitCounts,
    pub leakage: LeakageReport,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct StatsRequest {
    pub dataset: String,
    #[serde(default)]
    pub version: Option<u32>,
    /// A GGUF file or model folder; the bundled model when absent.
    #[serde(default)]
    pub model: Option<PathBuf>,
    pub max_len: usize,
    /// Only rows of this split (train, val, test).
    #[serde(default)]
    pub split: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct DataStats {
    pub dataset: String,
    pub version: u32,
    pub model: PathBuf,
    /// True when the model has no chat template and the documented ChatML fallback was used.
    pub fallback_template: bool,
    pub splits: Option<SplitCounts>,
    pub tokens: TokenStats,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub dataset: String,
    #[serde(default)]
    pub version: Option<u32>,
    /// 1-based position of the row in the version.
    pub row: usize,
    #[serde(default)]
    pub model: Option<PathBuf>,
    #[serde(default)]
    pub max_len: Option<usize>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PreviewToken {
    pub text: String,
    pub trained: bool,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Preview {
    pub row: usize,
    /// The row's line in the imported file.
    pub line: usize,
    pub split: Option<Split>,
    pub fallback_template: bool,
    /// The row as the model sees it, through its chat template.
    pub rendered: String,
    pub tokens: Vec<PreviewToken>,
    pub trained_tokens: usize,
}

/// The most rows one `data_rows` answer holds.
pub const MAX_ROWS_PAGE: usize = 200;

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RowsRequest {
    pub dataset: String,
    /// The latest version when absent.
    #[serde(default)]
    pub version: Option<u32>,
    /// Rows to skip from the start.
    #[serde(default)]
    pub offset: usize,
    /// How many rows to return, at most 200.
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RowView {
    /// 1-based position of the row in the version (as `data_preview` takes it).
    pub row: usize,
    /// The row's line in the imported file.
    pub line: usize,
    pub split: Option<Split>,
    /// The conversation; empty for a plain-text row.
    pub messages: Vec<whetstone_data::Message>,
    /// The text of a plain-text row.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RowsPage {
    pub dataset: String,
    pub version: u32,
    /// Rows in the version.
    pub total: usize,
    pub rows: Vec<RowView>,
}

/// One row's new content in a manual edit.
#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RowEdit {
    /// 1-based position of the row in the version being edited (as `data_rows` numbers them).
    pub row: usize,
    /// The whole new row, in any shape an import reads: `{"messages": [{"role", "content"}, …]}`,
    /// `{"text": …}`, `{"prompt": …, "response": …}` and the others. It is checked by the same
    /// reader as an imported file's records.
    pub content: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// Dataset name or id.
    pub dataset: String,
    /// The version the row numbers refer to. It must still be the latest: edits made on an older
    /// version would silently undo what came after it.
    pub version: u32,
    #[serde(default)]
    pub edits: Vec<RowEdit>,
    /// 1-based positions of the rows to leave out.
    #[serde(default)]
    pub deletes: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct EditResult {
    pub dataset: String,
    pub base_version: u32,
    /// The new version; the one edited is left as it was.
    pub version: DatasetVersion,
    /// Rows whose content changed (an edit that gives a row back as it was is not counted).
    pub changed: usize,
    pub deleted: usize,
    /// The provenance line, e.g. "manual edit: 3 rows changed, 1 deleted".
    pub summary: String,
    /// Rows in each split of the new version, when the dataset is split.
    pub splits: Option<SplitCounts>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub dataset: String,
    #[serde(default)]
    pub version: Option<u32>,
    pub out: PathBuf,
    #[serde(default)]
    pub split: Option<String>,
    /// Replace `out` when it exists; without it an existing file is refused.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ExportResult {
    pub path: PathBuf,
    pub rows: usize,
    pub version: u32,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn parse_split(s: Option<&str>) -> Result<Option<Split>> {
    s.map(|s| Split::parse(s).ok_or_else(|| Error::InvalidInput(format!("unknown split `{s}`; use train, val or test"))))
        .transpose()
}

/// A row in the plain public form: `{"messages": [...]}` or `{"text": ...}`, plus its split when it has one.
fn export_json(row: &DataRow, with_split: bool) -> String {
    let mut v = match &row.body {
        RowBody::Chat(m) => json!({ "messages": m }),
        RowBody::Text(t) => json!({ "text": t }),
    };
    if let (true, Some(s)) = (with_split, row.split) {
        v["split"] = json!(s);
    }
    v.to_string()
}

impl Api {
    pub(crate) fn datasets_dir(&self) -> PathBuf {
        self.home().join(DATASETS_DIR)
    }

    fn rows_path(&self, v: &DatasetVersion) -> PathBuf {
        self.home().join(&v.rows_path)
    }

    /// A dataset by name (the newest of that name) or by numeric id.
    pub fn resolve_dataset(&self, name_or_id: &str) -> Result<Dataset> {
        let store = self.store();
        if let Some(d) = store.find_datasets_by_name(name_or_id)?.into_iter().next() {
            return Ok(d);
        }
        if let Ok(id) = name_or_id.parse::<i64>() {
            return Ok(store.get_dataset(id)?);
        }
        let known: Vec<String> = store.list_datasets()?.into_iter().map(|d| d.name).collect();
        Err(Error::NotFoundNamed {
            what: "dataset",
            name: name_or_id.to_string(),
            known: if known.is_empty() { "none yet; import one with `whet data import FILE`".into() } else { known.join(", ") },
        })
    }

    /// A version of a dataset: the given one, else the latest.
    pub fn dataset_version(&self, dataset: &Dataset, version: Option<u32>) -> Result<DatasetVersion> {
        let store = self.store();
        match version {
            Some(v) => Ok(store.get_dataset_version(dataset.id, v)?),
            None => store.list_dataset_versions(dataset.id)?.pop().ok_or_else(|| {
                Error::InvalidInput(format!("dataset `{}` has no versions (it predates versioned imports); import it again", dataset.name))
            }),
        }
    }

    pub fn data_versions(&self, dataset: &str) -> Result<Vec<DatasetVersion>> {
        let d = self.resolve_dataset(dataset)?;
        Ok(self.store().list_dataset_versions(d.id)?)
    }

    pub(crate) fn load_version(&self, dataset: &str, version: Option<u32>) -> Result<(Dataset, DatasetVersion, Vec<DataRow>)> {
        let d = self.resolve_dataset(dataset)?;
        let v = self.dataset_version(&d, version)?;
        let rows = read_rows(&self.rows_path(&v))?;
        if rows.len() as u64 != v.rows {
            return Err(Error::InvalidInput(format!(
                "{}: holds {} rows but version {} of `{}` recorded {}; the file was changed outside Whetstone",
                self.rows_path(&v).display(),
                rows.len(),
                v.version,
                d.name,
                v.rows
            )));
        }
        Ok((d, v, rows))
    }

    /// Writes `rows` as the next version of `dataset`, recording `steps` as how it was made from `parent`.
    pub(crate) fn add_version(&self, dataset: &Dataset, parent: u32, steps: serde_json::Value, rows: &[DataRow]) -> Result<DatasetVersion> {
        let next = self.store().list_dataset_versions(dataset.id)?.last().map(|v| v.version + 1).unwrap_or(1);
        let rel = format!("{DATASETS_DIR}/{}/v{next}.jsonl", dataset.id);
        let path = self.home().join(&rel);
        write_rows(&path, rows)?;
        let v = self.store().insert_dataset_version(&NewDatasetVersion {
            dataset_id: dataset.id,
            parent: Some(parent),
            steps,
            rows_path: rel,
            rows: rows.len() as u64,
        })?;
        if v.version != next {
            return Err(Error::Internal(format!(
                "another process added version {} of `{}` at the same time; run the command again",
                v.version, dataset.name
            )));
        }
        Ok(v)
    }

    /// Imports a file as a new dataset (version 1). Bad records are rejected one by one and reported; the import
    /// fails only when no record at all could be read.
    pub fn data_import(&self, req: &ImportRequest) -> Result<ImportResult> {
        let path = req.path.as_path();
        if !path.is_file() {
            return Err(Error::InvalidInput(format!("{}: no such file", path.display())));
        }
        let name = match &req.name {
            Some(n) if n.trim().is_empty() => return Err(Error::InvalidInput("the dataset name is empty".into())),
            Some(n) => n.trim().to_string(),
            None => path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "dataset".into()),
        };
        if name.parse::<i64>().is_ok() {
            return Err(Error::InvalidInput(format!("`{name}` looks like a dataset id; give the dataset a name with letters in it")));
        }
        if let Some(d) = self.store().find_datasets_by_name(&name)?.first() {
            return Err(Error::InvalidInput(format!(
                "a dataset named `{name}` already exists (id {}); choose another name with --name",
                d.id
            )));
        }
        let pairs = req.map.iter().map(|p| Mapping::parse_pair(p)).collect::<std::result::Result<Vec<_>, _>>()?;
        let format = match &req.format {
            Some(f) => Some(SourceFormat::parse(f).ok_or_else(|| {
                Error::InvalidInput(format!("unknown format `{f}`; use jsonl, json, csv, tsv or text"))
            })?),
            None => None,
        };
        let opts = ImportOptions {
            format,
            mapping: Mapping::new(pairs)?,
            max_row_bytes: req.max_row_bytes.unwrap_or(import::DEFAULT_MAX_ROW_BYTES),
        };

        let dir = self.datasets_dir();
        std::fs::create_dir_all(&dir).map_err(io_err("create the datasets folder", &dir))?;
        let stamp = format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        let tmp_rows = dir.join(format!(".import-{stamp}.jsonl"));
        let tmp_rej = dir.join(format!(".import-{stamp}.rejected.jsonl"));
        let cleanup = || {
            let _ = std::fs::remove_file(&tmp_rows);
            let _ = std::fs::remove_file(&tmp_rej);
        };
        let result = (|| -> Result<(ImportReport, Dataset, DatasetVersion, Option<PathBuf>)> {
            let mut rows_out = std::io::BufWriter::new(std::fs::File::create(&tmp_rows).map_err(io_err("create", &tmp_rows))?);
            let mut rej_out = std::io::BufWriter::new(std::fs::File::create(&tmp_rej).map_err(io_err("create", &tmp_rej))?);
            let report = import::import_file(
                path,
                &opts,
                |row| {
                    rows_out.write_all(row.to_json().as_bytes())?;
                    rows_out.write_all(b"\n")
                },
                |rej: &Rejection| {
                    serde_json::to_writer(&mut rej_out, rej).map_err(std::io::Error::other)?;
                    rej_out.write_all(b"\n")
                },
            )?;
            let finish = |w: std::io::BufWriter<std::fs::File>, p: &Path| -> Result<()> {
                let f = w.into_inner().map_err(|e| e.into_error()).map_err(io_err("write", p))?;
                f.sync_all().map_err(io_err("write", p))
            };
            finish(rows_out, &tmp_rows)?;
            finish(rej_out, &tmp_rej)?;
            if report.accepted == 0 {
                let first: String = report.rejections.iter().take(5).map(|r| format!("\n  line {}: {}", r.line, r.reason)).collect();
                return Err(whetstone_data::DataError::NoRowsAccepted {
                    path: path.to_path_buf(),
                    rows: report.rows,
                    first: if first.is_empty() { " the file has no records".into() } else { first },
                }
                .into());
            }
            let source = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let new = NewDataset {
                name: name.clone(),
                source_path: source.display().to_string(),
                source_sha256: report.source_sha256.clone(),
                rows: report.accepted as u64,
            };
            let mut rej_path = None;
            let mut placed_dir = None;
            // The rows are moved into place inside the store's transaction: a failure anywhere leaves
            // no dataset behind, and no folder of one.
            let placed = self.store().insert_dataset_with_first_version(&new, |id| -> Result<(String, serde_json::Value)> {
                let ddir = dir.join(id.to_string());
                placed_dir = Some(ddir.clone());
                let moved = (|| -> Result<String> {
                    std::fs::create_dir_all(&ddir).map_err(io_err("create", &ddir))?;
                    let rel = format!("{DATASETS_DIR}/{id}/v1.jsonl");
                    let final_rows = self.home().join(&rel);
                    std::fs::rename(&tmp_rows, &final_rows).map_err(io_err("move the imported rows to", &final_rows))?;
                    if report.rejected > 0 {
                        let p = ddir.join("v1.rejected.jsonl");
                        std::fs::rename(&tmp_rej, &p).map_err(io_err("move the rejected rows to", &p))?;
                        rej_path = Some(p);
                    }
                    whetstone_files::sync_dir(&ddir).map_err(io_err("write", &ddir))?;
                    Ok(rel)
                })();
                let rel = moved?;
                let steps = json!([{
                    "step": "import",
                    "source": source,
                    "source_sha256": report.source_sha256,
                    "source_bytes": report.source_bytes,
                    "format": report.format,
                    "shape": report.shape,
                    "shapes": report.shapes,
                    "mapping": opts.mapping.pairs(),
                    "max_row_bytes": opts.max_row_bytes,
                    "rows": report.rows,
                    "accepted": report.accepted,
                    "rejected": report.rejected,
                }]);
                Ok((rel, steps))
            });
            match placed {
                Ok((dataset, version)) => Ok((report, dataset, version, rej_path)),
                Err(e) => {
                    // The transaction was rolled back, so its id is free again: the folder it had
                    // filled must go too, or the next dataset would find it.
                    if let Some(d) = placed_dir {
                        let _ = std::fs::remove_dir_all(d);
                    }
                    Err(e)
                }
            }
        })();
        cleanup();
        let (report, dataset, version, rejections_file) = result?;
        Ok(ImportResult { dataset, version, report, rejections_file })
    }

    /// Cleaning: returns the proposal; with `apply` also makes the new version.
    pub fn data_clean(&self, req: &CleanRequest) -> Result<CleanResult> {
        let (d, v, rows) = self.load_version(&req.dataset, req.version)?;
        let proposal = clean::propose(&rows, &req.options)?;
        if !req.apply {
            return Ok(CleanResult { dataset: d.name, base_version: v.version, proposal, applied: None, version: None });
        }
        let (new_rows, applied) = clean::apply(rows, &proposal, &req.decisions)?;
        let steps = json!([{
            "step": "clean",
            "options": req.options,
            "pii_default": req.decisions.default,
            "pii_overrides": req.decisions.findings.len(),
            "counts": applied,
        }]);
        let version = self.add_version(&d, v.version, steps, &new_rows)?;
        Ok(CleanResult { dataset: d.name, base_version: v.version, proposal, applied: Some(applied), version: Some(version) })
    }

    /// Rows edited and deleted by hand, saved as a new version. Every edited row is read by the
    /// importer's own record reader, so an edit is refused for exactly what an import would reject,
    /// naming the row and the reason; nothing is written unless every edit is good.
    pub fn data_edit(&self, req: &EditRequest) -> Result<EditResult> {
        let (d, v, mut rows) = self.load_version(&req.dataset, Some(req.version))?;
        let latest = self.dataset_version(&d, None)?;
        if latest.version != v.version {
            return Err(Error::StaleVersion { dataset: d.name, version: v.version, latest: latest.version });
        }
        if req.edits.is_empty() && req.deletes.is_empty() {
            return Err(Error::InvalidInput("nothing to save: no row was edited or deleted".into()));
        }
        let n = rows.len();
        let in_range = |row: usize, what: &str| -> Result<()> {
            if row == 0 || row > n {
                return Err(Error::InvalidInput(format!(
                    "cannot {what} row {row}: version {} of `{}` has rows 1 to {n}; reload the rows and try again",
                    v.version, d.name
                )));
            }
            Ok(())
        };
        let mut deleted = std::collections::BTreeSet::new();
        for &row in &req.deletes {
            in_range(row, "delete")?;
            if !deleted.insert(row) {
                return Err(Error::InvalidInput(format!("row {row} is listed twice for deletion")));
            }
        }
        let mut edited = std::collections::BTreeSet::new();
        let mut changed = Vec::new();
        for e in &req.edits {
            in_range(e.row, "edit")?;
            if !edited.insert(e.row) {
                return Err(Error::InvalidInput(format!("row {} is edited twice; send one new content per row", e.row)));
            }
            if deleted.contains(&e.row) {
                return Err(Error::InvalidInput(format!("row {} is both edited and deleted; keep one of the two", e.row)));
            }
            let old = &rows[e.row - 1];
            let refuse = |reason: String| Error::BadEdit { row: e.row, line: old.line, reason };
            let serde_json::Value::Object(obj) = e.content.clone() else {
                return Err(refuse(whetstone_data::RowError::NotAnObject(json_kind(&e.content)).to_string()));
            };
            let (_, body) = import::shapes::from_object(obj, &Mapping::default()).map_err(|r| refuse(r.to_string()))?;
            if body != old.body {
                changed.push((e.row, old.line));
                rows[e.row - 1].body = body;
            }
        }
        if deleted.len() == n {
            return Err(Error::InvalidInput(format!(
                "deleting every row would leave version {} of `{}` empty; keep at least one row",
                v.version, d.name
            )));
        }
        if changed.is_empty() && deleted.is_empty() {
            return Err(Error::InvalidInput("nothing to save: every edited row is the same as before".into()));
        }
        let deleted_lines: Vec<serde_json::Value> =
            deleted.iter().map(|&r| json!({"row": r, "source_line": rows[r - 1].line})).collect();
        let kept: Vec<DataRow> =
            rows.into_iter().enumerate().filter(|(i, _)| !deleted.contains(&(i + 1))).map(|(_, r)| r).collect();
        let plural = |k: usize| if k == 1 { "row" } else { "rows" };
        let summary = format!("manual edit: {} {} changed, {} deleted", changed.len(), plural(changed.len()), deleted.len());
        let steps = json!([{
            "step": "edit",
            "summary": summary,
            "changed": changed.len(),
            "deleted": deleted.len(),
            "changed_rows": changed.iter().map(|(r, line)| json!({"row": r, "source_line": line})).collect::<Vec<_>>(),
            "deleted_rows": deleted_lines,
        }]);
        let version = self.add_version(&d, v.version, steps, &kept)?;
        let splits = kept.iter().any(|r| r.split.is_some()).then(|| split::counts(&kept));
        Ok(EditResult { dataset: d.name, base_version: v.version, version, changed: changed.len(), deleted: deleted.len(), summary, splits })
    }

    /// A seeded split of a version into train/val/test, as a new version, with the leakage check.
    pub fn data_split(&self, req: &SplitRequest) -> Result<SplitResult> {
        let (d, v, mut rows) = self.load_version(&req.dataset, req.version)?;
        let threshold = req.leakage_threshold.unwrap_or(split::DEFAULT_LEAKAGE_THRESHOLD);
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::InvalidInput(format!("leakage threshold {threshold} must be above 0 and at most 1")));
        }
        let assigned = split::assign(rows.len(), req.val, req.test, req.seed)?;
        for (row, s) in rows.iter_mut().zip(assigned) {
            row.split = Some(s);
        }
        let counts = split::counts(&rows);
        let leakage = split::leakage(&rows, threshold);
        let steps = json!([{
            "step": "split",
            "val": req.val,
            "test": req.test,
            "seed": req.seed,
            "counts": counts,
            "leakage": {"threshold": threshold, "groups": leakage.groups, "rows": leakage.rows},
        }]);
        let version = self.add_version(&d, v.version, steps, &rows)?;
        Ok(SplitResult { version, counts, leakage })
    }

    fn tokenizer_for(&self, model: Option<&Path>) -> Result<(PathBuf, Tokenizer)> {
        let path = match model {
            Some(p) => p.to_path_buf(),
            None => match &self.default_model_path {
                Some(p) if p.is_file() => p.clone(),
                Some(p) => {
                    return Err(Error::NoModel(format!(
                        "the bundled model is not at {}; pass --model or run scripts/setup.sh",
                        p.display()
                    )))
                }
                None => return Err(Error::NoModel("no model given; pass --model FILE".into())),
            },
        };
        let tok = match ModelFiles::detect(&path)? {
            ModelFiles::Gguf(p) => Tokenizer::from_gguf_file(p)?,
            ModelFiles::HfDir(d) => Tokenizer::from_hf_dir(d)?,
        };
        Ok((path, tok))
    }

    /// Token-length histogram with a model's tokenizer and template, and how many rows `max_len` cuts.
    pub fn data_stats(&self, req: &StatsRequest) -> Result<DataStats> {
        if req.max_len == 0 {
            return Err(Error::InvalidInput("--max-len must be at least 1".into()));
        }
        let want = parse_split(req.split.as_deref())?;
        let (d, v, mut rows) = self.load_version(&req.dataset, req.version)?;
        let (model, tok) = self.tokenizer_for(req.model.as_deref())?;
        let splits = rows.iter().any(|r| r.split.is_some()).then(|| split::counts(&rows));
        if let Some(s) = want {
            rows.retain(|r| r.split == Some(s));
        }
        let tokens = stats::token_stats(&tok, &rows, req.max_len);
        Ok(DataStats { dataset: d.name, version: v.version, model, fallback_template: tok.chat_template().is_fallback(), splits, tokens })
    }

    /// One row through the model's template, each token marked trained or not.
    pub fn data_preview(&self, req: &PreviewRequest) -> Result<Preview> {
        let (d, v, rows) = self.load_version(&req.dataset, req.version)?;
        if req.row == 0 || req.row > rows.len() {
            return Err(Error::InvalidInput(format!(
                "row {} is out of range: version {} of `{}` has rows 1 to {}",
                req.row,
                v.version,
                d.name,
                rows.len()
            )));
        }
        let row = &rows[req.row - 1];
        let (_, tok) = self.tokenizer_for(req.model.as_deref())?;
        let rendered = match &row.body {
            RowBody::Chat(m) => tok.chat_template().render(m, false)?,
            RowBody::Text(t) => t.clone(),
        };
        let example = build_row_example(&tok, row, req.max_len.unwrap_or(usize::MAX))
            .map_err(|e| whetstone_data::DataError::InRow { line: row.line, source: Box::new(e) })?;
        let tokens: Vec<PreviewToken> =
            loss_mask_preview(&tok, &example).into_iter().map(|(text, trained)| PreviewToken { text, trained }).collect();
        Ok(Preview {
            row: req.row,
            line: row.line,
            split: row.split,
            fallback_template: tok.chat_template().is_fallback(),
            rendered,
            trained_tokens: example.trained_tokens(),
            tokens,
        })
    }

    /// Writes a version (or one split of it) as JSONL: `{"messages": …}` or `{"text": …}` per row.
    pub fn data_export(&self, req: &ExportRequest) -> Result<ExportResult> {
        let want = parse_split(req.split.as_deref())?;
        let (_, v, rows) = self.load_version(&req.dataset, req.version)?;
        if req.out.exists() && !req.overwrite {
            return Err(Error::FileExists { path: req.out.clone() });
        }
        let n = write_atomically(&req.out, |w| {
            let mut n = 0;
            for row in rows.iter().filter(|r| want.is_none() || r.split == want) {
                w.write_all(export_json(row, want.is_none()).as_bytes())?;
                w.write_all(b"\n")?;
                n += 1;
            }
            Ok(n)
        })?;
        Ok(ExportResult { path: req.out.clone(), rows: n, version: v.version })
    }

    /// The training rows of a dataset's latest version (its train split, or every row when it is not split),
    /// written as JSONL beside the version for the trainer to read.
    pub fn dataset_training_file(&self, name_or_id: &str) -> Result<PathBuf> {
        self.dataset_split_file(name_or_id, Split::Train)
    }

    /// The rows of one split of a dataset's latest version, written as JSONL beside the version. A
    /// dataset that was never split is all training rows: it has no validation or test rows.
    pub fn dataset_split_file(&self, name_or_id: &str, want: Split) -> Result<PathBuf> {
        let (d, v, rows) = self.load_version(name_or_id, None)?;
        let split = rows.iter().any(|r| r.split.is_some());
        if !split && want != Split::Train {
            return Err(Error::InvalidInput(format!(
                "dataset `{}` version {} is not split, so it has no {want} rows: split it first (`whet data split {}`)",
                d.name, v.version, d.name
            )));
        }
        let out = self.datasets_dir().join(d.id.to_string()).join(format!("v{}.{want}.jsonl", v.version));
        let n = write_atomically(&out, |w| {
            let mut n = 0;
            for row in rows.iter().filter(|r| !split || r.split == Some(want)) {
                w.write_all(export_json(row, false).as_bytes())?;
                w.write_all(b"\n")?;
                n += 1;
            }
            Ok(n)
        })?;
        if n == 0 {
            return Err(Error::InvalidInput(format!("dataset `{}` version {} has no {want} rows", d.name, v.version)));
        }
        Ok(out)
    }

    /// A page of a version's rows as they will be trained: each a conversation or a text.
    pub fn data_rows(&self, req: &RowsRequest) -> Result<RowsPage> {
        if req.limit == 0 || req.limit > MAX_ROWS_PAGE {
            return Err(Error::InvalidInput(format!("limit must be from 1 to {MAX_ROWS_PAGE} rows")));
        }
        let (d, v, rows) = self.load_version(&req.dataset, req.version)?;
        let total = rows.len();
        let page = rows
            .into_iter()
            .enumerate()
            .skip(req.offset)
            .take(req.limit)
            .map(|(i, r)| {
                let (messages, text) = match r.body {
                    RowBody::Chat(m) => (m, None),
                    RowBody::Text(t) => (vec![], Some(t)),
                };
                RowView { row: i + 1, line: r.line, split: r.split, messages, text }
            })
            .collect();
        Ok(RowsPage { dataset: d.name, version: v.version, total, rows: page })
    }
}
