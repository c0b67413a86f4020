//! Data queues: rows that wait for a person before they enter a dataset version. Two kinds share one queue:
//! variations a model wrote of chosen rows ([`crate::augment`]), each marked synthetic with its source row
//! and the prompt that made it, which enter a version only once accepted (or edited); and a random sample of
//! a version's rows for experts to check before training (accept, edit, flag). Decisions can be replaced
//! until the queue is applied; applying makes a new version and leaves the queue's own version as it was.

use crate::datasets::RowView;
use crate::error::{Error, Result};
use crate::Api;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use whetstone_data::import::readers::RawBody;
use whetstone_data::import::{convert, Mapping, DEFAULT_MAX_ROW_BYTES};
use whetstone_data::{DataRow, RowBody};
use whetstone_store::{DataQueue, Dataset, DatasetVersion, ItemDecision, NewDataQueue, NewDatasetVersion, NewQueueItem, QueueItem};

/// The most rows one data review samples.
pub const MAX_SAMPLE: usize = 1000;
/// The longest flag note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// Variations a model wrote, waiting to be accepted, edited or rejected.
    Augment,
    /// A random sample of a version's rows, waiting to be checked: accepted, edited or flagged.
    Sample,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Augment => "augment",
            QueueKind::Sample => "sample",
        }
    }
}

/// What was decided about an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Accept,
    Edit,
    Reject,
    Flag,
}

impl DecisionKind {
    fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Accept => "accept",
            DecisionKind::Edit => "edit",
            DecisionKind::Reject => "reject",
            DecisionKind::Flag => "flag",
        }
    }

    fn parse(s: &str) -> Option<DecisionKind> {
        Some(match s {
            "accept" => DecisionKind::Accept,
            "edit" => DecisionKind::Edit,
            "reject" => DecisionKind::Reject,
            "flag" => DecisionKind::Flag,
            _ => return None,
        })
    }
}

/// A decision about one item: `"accept"`, `{"edit": {"row": …}}`, `"reject"` or `{"flag": {"note": …}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Take the row as it is.
    Accept,
    /// Take another row instead.
    Edit(EditRow),
    /// Leave a model-written row out (augmentation queues).
    Reject,
    /// Keep the row but report it, with what is wrong (data review queues).
    Flag(FlagNote),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct EditRow {
    /// Any shape an import reads (`{"messages": […]}`, `{"prompt", "response"}`, `{"text"}`, …), checked the
    /// way an import checks it.
    pub row: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct FlagNote {
    /// What is wrong with the row, for whoever fixes it.
    pub note: String,
}

/// Which part of a conversation a variation rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum RowPart {
    /// The last user message (the question); the answer stays.
    Prompt,
    /// The last assistant message (the answer); the question stays.
    Answer,
}

/// How a model-written row was made: kept with the item, and with the row in the version it enters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Synthetic {
    /// 1-based position of the row it varies, in the queue's version.
    pub source_row: u32,
    /// `paraphrase` or `rewrite`.
    pub mode: String,
    /// What the user asked for, with `rewrite`.
    pub instruction: Option<String>,
    /// What was rewritten; a plain-text row is rewritten whole.
    pub part: Option<RowPart>,
    /// The messages the model was given: its instructions and the prompt with the text to vary.
    pub system: String,
    pub prompt: String,
    pub model: String,
    pub adapter: Option<String>,
    pub run: Option<i64>,
    pub seed: u64,
    pub temperature: f64,
    /// Tokens the model wrote.
    pub tokens: u64,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SampleRequest {
    /// Dataset name or id.
    pub dataset: String,
    /// The latest version when absent.
    #[serde(default)]
    #[ts(optional)]
    pub version: Option<u32>,
    /// How many rows to check, from 1 to 1000 and at most the version's rows.
    pub size: usize,
    /// The same seed draws the same rows.
    #[serde(default)]
    #[ts(optional)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct QueueArgs {
    pub queue: i64,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct QueuesArgs {
    /// Only the queues of this dataset (name or id).
    #[serde(default)]
    #[ts(optional)]
    pub dataset: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub queue: i64,
    /// The item's number in the queue, from 1.
    pub item: u32,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct QueueInfo {
    pub id: i64,
    pub kind: QueueKind,
    pub dataset_id: i64,
    pub dataset: String,
    /// The version the rows come from; it never changes.
    pub version: u32,
    /// How the queue was made (model, mode, seed, sample size…).
    pub settings: Value,
    pub items: u32,
    /// The version applying the queue made; the queue takes no more decisions then.
    pub applied_version: Option<u32>,
    pub created_at: String,
    pub applied_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct QueueItemView {
    pub item: u32,
    /// 1-based position of the source row in the queue's version.
    pub source_row: u32,
    /// The source row as the version holds it.
    pub source: RowView,
    /// The row to decide on: what the model wrote (augmentation), or the source row itself (data review).
    pub row: RowView,
    /// How the model wrote it; none for sampled rows.
    pub synthetic: Option<Synthetic>,
    /// Why the row cannot be accepted as it is (edit or reject it).
    pub problem: Option<String>,
    pub decision: Option<DecisionKind>,
    /// The row as edited.
    pub edited: Option<RowView>,
    pub note: Option<String>,
    pub decided_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct QueueItems {
    pub queue: QueueInfo,
    pub items: Vec<QueueItemView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct FlaggedRow {
    pub item: u32,
    /// 1-based position in the queue's version (and in the version applying makes).
    pub row: u32,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct QueueSummary {
    pub queue: QueueInfo,
    pub accepted: u32,
    pub edited: u32,
    pub rejected: u32,
    pub flagged: u32,
    pub undecided: u32,
    /// Rows drawn, for a data review.
    pub sample_size: Option<u32>,
    /// Flagged rows over the sample size (0 to 1), for a data review.
    pub share_flagged: Option<f64>,
    pub flags: Vec<FlaggedRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ApplyResult {
    pub dataset: Dataset,
    pub version: DatasetVersion,
    pub summary: QueueSummary,
    /// Model-written rows added (accepted and edited).
    pub added: u32,
    /// Rows of the version replaced by their edits (data review).
    pub changed: u32,
}

/// SplitMix64: the seeded draw behind a sample, so the same seed picks the same rows on every machine.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version row's view, as `data_rows` shows it.
pub(crate) fn row_view(position: usize, row: &DataRow) -> RowView {
    let (messages, text) = match &row.body {
        RowBody::Chat(m) => (m.clone(), None),
        RowBody::Text(t) => (vec![], Some(t.clone())),
    };
    RowView { row: position, line: row.line, split: row.split, messages, text }
}

/// A row body in the public form an import reads: `{"messages": […]}` or `{"text": …}`.
pub(crate) fn public_json(body: &RowBody) -> Value {
    match body {
        RowBody::Chat(m) => json!({ "messages": m }),
        RowBody::Text(t) => json!({ "text": t }),
    }
}

/// A row given as JSON, read the way an import reads a record, so a row is accepted here exactly when a
/// file holding it would import. The error is the importer's reason.
pub(crate) fn read_row(value: &Value) -> std::result::Result<RowBody, String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    if bytes.len() > DEFAULT_MAX_ROW_BYTES {
        return Err(whetstone_data::RowError::TooLong { bytes: bytes.len(), limit: DEFAULT_MAX_ROW_BYTES }.to_string());
    }
    convert(RawBody::Json(bytes), &[], &Mapping::default()).map(|(_, body)| body).map_err(|e| e.to_string())
}

fn stored_row(queue: i64, item: u32, what: &str, text: &str) -> Result<DataRow> {
    DataRow::from_json(text).map_err(|reason| {
        Error::Store(whetstone_store::Error::Corrupt { what: "data queue", id: queue, reason: format!("item {item} {what}: {reason}") })
    })
}

fn kind_of(q: &DataQueue) -> Result<QueueKind> {
    match q.kind.as_str() {
        "augment" => Ok(QueueKind::Augment),
        "sample" => Ok(QueueKind::Sample),
        other => Err(Error::Store(whetstone_store::Error::Corrupt { what: "data queue", id: q.id, reason: format!("kind `{other}`") })),
    }
}

fn decision_of(item: &QueueItem) -> Result<Option<DecisionKind>> {
    item.decision
        .as_deref()
        .map(|d| {
            DecisionKind::parse(d).ok_or_else(|| {
                Error::Store(whetstone_store::Error::Corrupt { what: "data queue", id: item.queue_id, reason: format!("item {} decision `{d}`", item.item) })
            })
        })
        .transpose()
}

/// Counts of an item list's decisions.
#[derive(Default)]
struct Counts {
    accepted: u32,
    edited: u32,
    rejected: u32,
    flagged: u32,
    undecided: u32,
}

fn counts(items: &[QueueItem]) -> Result<Counts> {
    let mut c = Counts::default();
    for item in items {
        match decision_of(item)? {
            Some(DecisionKind::Accept) => c.accepted += 1,
            Some(DecisionKind::Edit) => c.edited += 1,
            Some(DecisionKind::Reject) => c.rejected += 1,
            Some(DecisionKind::Flag) => c.flagged += 1,
            None => c.undecided += 1,
        }
    }
    Ok(c)
}

impl Api {
    /// Stores a new queue over `version` of `dataset` and returns it with its items.
    pub(crate) fn create_queue(&self, kind: QueueKind, dataset: &Dataset, version: u32, settings: Value, items: &[NewQueueItem]) -> Result<QueueItems> {
        let q = self.store().insert_data_queue(&NewDataQueue { kind: kind.as_str().into(), dataset_id: dataset.id, version, settings }, items)?;
        self.queue_items(q.id)
    }

    fn queue_info(&self, q: &DataQueue, items: u32) -> Result<QueueInfo> {
        let dataset = self.get_dataset(q.dataset_id)?;
        Ok(QueueInfo {
            id: q.id,
            kind: kind_of(q)?,
            dataset_id: q.dataset_id,
            dataset: dataset.name,
            version: q.version,
            settings: q.settings.clone(),
            items,
            applied_version: q.applied_version,
            created_at: q.created_at.clone(),
            applied_at: q.applied_at.clone(),
        })
    }

    /// Draws `size` rows of a version at random (seeded) into a data review queue, in the version's order.
    pub fn data_sample(&self, req: &SampleRequest) -> Result<QueueItems> {
        let (d, v, rows) = self.load_version(&req.dataset, req.version)?;
        let most = rows.len().min(MAX_SAMPLE);
        if req.size == 0 || req.size > most {
            return Err(Error::InvalidInput(format!(
                "sample size {} is out of range: version {} of `{}` has {} rows, so check from 1 to {most} of them",
                req.size,
                v.version,
                d.name,
                rows.len()
            )));
        }
        let seed = req.seed.unwrap_or(0);
        // A partial Fisher-Yates shuffle: the first `size` places hold a uniform sample without repeats.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut state = seed;
        for i in 0..req.size {
            let j = i + (splitmix(&mut state) % (rows.len() - i) as u64) as usize;
            order.swap(i, j);
        }
        let mut picked = order[..req.size].to_vec();
        picked.sort_unstable();
        let items: Vec<NewQueueItem> = picked
            .iter()
            .map(|&i| NewQueueItem { source_row: i as u32 + 1, row: rows[i].to_json(), provenance: None, problem: None })
            .collect();
        let settings = json!({"size": req.size, "seed": seed, "rows": rows.len()});
        self.create_queue(QueueKind::Sample, &d, v.version, settings, &items)
    }

    /// Queues, newest first, each with its counts; those of one dataset when given.
    pub fn data_queues(&self, dataset: Option<&str>) -> Result<Vec<QueueSummary>> {
        let id = dataset.map(|d| self.resolve_dataset(d)).transpose()?.map(|d| d.id);
        let queues = self.store().list_data_queues(id)?;
        queues.iter().map(|q| self.summary_of(q)).collect()
    }

    /// A queue with every item: the source row, the row to decide on, how it was made, and its decision.
    pub fn queue_items(&self, queue: i64) -> Result<QueueItems> {
        let q = self.store().get_data_queue(queue)?;
        let items = self.store().data_queue_items(queue)?;
        let (_, _, rows) = self.load_version(&q.dataset_id.to_string(), Some(q.version))?;
        let views = items
            .iter()
            .map(|it| {
                let source = rows.get(it.source_row as usize - 1).ok_or_else(|| {
                    Error::Internal(format!("queue {queue} item {} names row {}, beyond the version's {} rows", it.item, it.source_row, rows.len()))
                })?;
                let row = stored_row(queue, it.item, "row", &it.row)?;
                let edited = it.edited_row.as_deref().map(|e| stored_row(queue, it.item, "edited row", e)).transpose()?;
                let synthetic = it
                    .provenance
                    .clone()
                    .map(serde_json::from_value::<Synthetic>)
                    .transpose()
                    .map_err(|e| Error::Store(whetstone_store::Error::Corrupt { what: "data queue", id: queue, reason: format!("item {} provenance: {e}", it.item) }))?;
                let position = it.source_row as usize;
                Ok(QueueItemView {
                    item: it.item,
                    source_row: it.source_row,
                    source: row_view(position, source),
                    row: row_view(position, &row),
                    synthetic,
                    problem: it.problem.clone(),
                    decision: decision_of(it)?,
                    edited: edited.as_ref().map(|e| row_view(position, e)),
                    note: it.note.clone(),
                    decided_at: it.decided_at.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(QueueItems { queue: self.queue_info(&q, items.len() as u32)?, items: views })
    }

    /// Records a decision about one item, replacing any earlier one, until the queue is applied.
    pub fn queue_decide(&self, req: &DecideRequest) -> Result<QueueItemView> {
        let q = self.store().get_data_queue(req.queue)?;
        if let Some(version) = q.applied_version {
            return Err(Error::QueueApplied { queue: q.id, version });
        }
        let kind = kind_of(&q)?;
        let found = self.store().data_queue_item(q.id, req.item);
        let item = match found {
            Ok(item) => item,
            Err(whetstone_store::Error::NotFound { .. }) => {
                let n = self.store().data_queue_items(q.id)?.len();
                return Err(Error::InvalidInput(format!("queue {} has no item {}: its items are 1 to {n}", q.id, req.item)));
            }
            Err(other) => return Err(other.into()),
        };
        let what = format!("item {} of queue {}", req.item, q.id);
        let (kind_str, edited, note) = match &req.decision {
            Decision::Accept => {
                if let Some(problem) = &item.problem {
                    return Err(Error::InvalidInput(format!("{what} cannot be accepted as the model wrote it ({problem}); edit it or reject it")));
                }
                (DecisionKind::Accept, None, None)
            }
            Decision::Edit(EditRow { row }) => {
                let body = read_row(row).map_err(|reason| Error::InvalidInput(format!("{what}: the edited row cannot be used: {reason}")))?;
                let current = stored_row(q.id, item.item, "row", &item.row)?;
                // An edit changes what the row says; where it came from and its split stay.
                let edited = DataRow { line: current.line, body, split: current.split };
                (DecisionKind::Edit, Some(edited.to_json()), None)
            }
            Decision::Reject => {
                if kind == QueueKind::Sample {
                    return Err(Error::InvalidInput(format!(
                        "{what}: a data review keeps every row; flag the row with a note saying what is wrong, or edit it"
                    )));
                }
                (DecisionKind::Reject, None, None)
            }
            Decision::Flag(FlagNote { note }) => {
                if kind == QueueKind::Augment {
                    return Err(Error::InvalidInput(format!("{what}: flags are for checking a sample; reject a variation you do not want")));
                }
                let note = note.trim();
                if note.is_empty() {
                    return Err(Error::InvalidInput(format!("{what}: say what is wrong with the row in the note")));
                }
                if note.chars().count() > MAX_NOTE_CHARS {
                    return Err(Error::InvalidInput(format!("{what}: the note is longer than {MAX_NOTE_CHARS} characters")));
                }
                (DecisionKind::Flag, None, Some(note.to_string()))
            }
        };
        let decided = self.store().decide_queue_item(
            q.id,
            req.item,
            &ItemDecision { decision: kind_str.as_str(), edited_row: edited.as_deref(), note: note.as_deref() },
        )?;
        if decided.is_none() {
            let q = self.store().get_data_queue(q.id)?;
            return Err(Error::QueueApplied { queue: q.id, version: q.applied_version.unwrap_or(0) });
        }
        let view = self.queue_items(q.id)?;
        view.items.into_iter().find(|i| i.item == req.item).ok_or_else(|| Error::Internal(format!("item {} vanished from queue {}", req.item, q.id)))
    }

    fn summary_of(&self, q: &DataQueue) -> Result<QueueSummary> {
        let items = self.store().data_queue_items(q.id)?;
        let c = counts(&items)?;
        let info = self.queue_info(q, items.len() as u32)?;
        let sample = info.kind == QueueKind::Sample;
        let flags = items
            .iter()
            .filter(|i| i.decision.as_deref() == Some("flag"))
            .map(|i| FlaggedRow { item: i.item, row: i.source_row, note: i.note.clone().unwrap_or_default() })
            .collect();
        Ok(QueueSummary {
            accepted: c.accepted,
            edited: c.edited,
            rejected: c.rejected,
            flagged: c.flagged,
            undecided: c.undecided,
            sample_size: sample.then_some(info.items),
            share_flagged: (sample && info.items > 0).then(|| c.flagged as f64 / info.items as f64),
            flags,
            queue: info,
        })
    }

    /// What has been decided so far: counts, and for a data review the sample size and the share flagged.
    pub fn queue_summary(&self, queue: i64) -> Result<QueueSummary> {
        let q = self.store().get_data_queue(queue)?;
        self.summary_of(&q)
    }

    /// Makes the queue's new version from the version its rows came from. Augmentation: every row of that
    /// version, then the accepted and edited model-written rows, each listed in the version's provenance as
    /// synthetic with its source row and prompt. Data review: that version's rows with the edits applied;
    /// flagged rows stay in and are listed. The queue's version is left as it was.
    pub fn queue_apply(&self, queue: i64) -> Result<ApplyResult> {
        let q = self.store().get_data_queue(queue)?;
        if let Some(version) = q.applied_version {
            return Err(Error::QueueApplied { queue: q.id, version });
        }
        let kind = kind_of(&q)?;
        let items = self.store().data_queue_items(queue)?;
        let c = counts(&items)?;
        let (d, v, mut rows) = self.load_version(&q.dataset_id.to_string(), Some(q.version))?;
        let (step, added, changed) = match kind {
            QueueKind::Augment => {
                if c.accepted + c.edited == 0 {
                    return Err(Error::InvalidInput(format!(
                        "queue {queue} has no accepted or edited rows yet, so there is nothing to add; accept or edit at least one"
                    )));
                }
                let mut listed = Vec::new();
                for it in &items {
                    let (row, edited) = match decision_of(it)? {
                        Some(DecisionKind::Accept) => (stored_row(queue, it.item, "row", &it.row)?, false),
                        Some(DecisionKind::Edit) => (stored_row(queue, it.item, "edited row", it.edited_row.as_deref().unwrap_or_default())?, true),
                        _ => continue,
                    };
                    rows.push(row);
                    let mut entry = json!({"row": rows.len(), "item": it.item, "synthetic": true, "edited": edited});
                    if let (Some(Value::Object(p)), Value::Object(e)) = (&it.provenance, &mut entry) {
                        e.extend(p.clone());
                    }
                    listed.push(entry);
                }
                let added = listed.len() as u32;
                let s = &q.settings;
                let step = json!({
                    "step": "augment",
                    "queue": queue,
                    "from_version": v.version,
                    "mode": s["mode"],
                    "instruction": s["instruction"],
                    "part": s["part"],
                    "model": s["model"],
                    "adapter": s["adapter"],
                    "run": s["run"],
                    "candidates": items.len(),
                    "accepted": c.accepted,
                    "edited": c.edited,
                    "rejected": c.rejected,
                    "undecided": c.undecided,
                    "rows": listed,
                });
                (step, added, 0)
            }
            QueueKind::Sample => {
                let mut edits = Vec::new();
                for it in items.iter().filter(|i| i.decision.as_deref() == Some("edit")) {
                    let row = stored_row(queue, it.item, "edited row", it.edited_row.as_deref().unwrap_or_default())?;
                    rows[it.source_row as usize - 1] = row;
                    edits.push(json!({"row": it.source_row, "item": it.item}));
                }
                let flags: Vec<Value> = items
                    .iter()
                    .filter(|i| i.decision.as_deref() == Some("flag"))
                    .map(|i| json!({"row": i.source_row, "item": i.item, "note": i.note}))
                    .collect();
                let changed = edits.len() as u32;
                let step = json!({
                    "step": "data_review",
                    "queue": queue,
                    "from_version": v.version,
                    "sample_size": items.len(),
                    "seed": q.settings["seed"],
                    "accepted": c.accepted,
                    "edited": c.edited,
                    "flagged": c.flagged,
                    "undecided": c.undecided,
                    "share_flagged": c.flagged as f64 / items.len().max(1) as f64,
                    "edited_rows": edits,
                    "flagged_rows": flags,
                });
                (step, 0, changed)
            }
        };
        let next = self.store().list_dataset_versions(d.id)?.last().map(|v| v.version + 1).unwrap_or(1);
        let rel = format!("{}/{}/v{next}.jsonl", crate::datasets::DATASETS_DIR, d.id);
        whetstone_data::write_rows(&self.home().join(&rel), &rows)?;
        let new = NewDatasetVersion { dataset_id: d.id, parent: Some(v.version), steps: json!([step]), rows_path: rel, rows: rows.len() as u64 };
        let applied = self.store().apply_data_queue(queue, &new)?;
        let Some((q, version)) = applied else {
            let q = self.store().get_data_queue(queue)?;
            return Err(Error::QueueApplied { queue, version: q.applied_version.unwrap_or(0) });
        };
        if version.version != next {
            return Err(Error::Internal(format!(
                "another process added version {} of `{}` at the same time; check the dataset's versions",
                version.version, d.name
            )));
        }
        let summary = self.summary_of(&q)?;
        Ok(ApplyResult { dataset: self.get_dataset(d.id)?, version, summary, added, changed })
    }
}
