//! Data queues: rows waiting for a person's decision before they enter a dataset version. An augmentation
//! queue holds rows a model wrote from rows of a version, each with what made it; a data review queue holds a
//! sample of a version's rows. Each item keeps its current decision (replaceable until the queue is
//! applied); applying records the new version and closes the queue in one transaction.

use crate::error::{Error, Result};
use crate::rows::{DatasetVersion, NewDatasetVersion};
use crate::store::{insert_version_in, Store};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

#[derive(Debug, Clone, PartialEq)]
pub struct DataQueue {
    pub id: i64,
    /// `augment` or `sample`.
    pub kind: String,
    pub dataset_id: i64,
    /// The version the queue's rows come from.
    pub version: u32,
    pub settings: serde_json::Value,
    /// The version applying the queue made; no more decisions once set.
    pub applied_version: Option<u32>,
    pub created_at: String,
    pub applied_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDataQueue {
    pub kind: String,
    pub dataset_id: i64,
    pub version: u32,
    pub settings: serde_json::Value,
}

/// One row waiting for a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub queue_id: i64,
    /// From 1, in the order the queue shows them.
    pub item: u32,
    /// 1-based position of the row it comes from in the queue's version.
    pub source_row: u32,
    /// The row as the rows file stores it (one JSON object).
    pub row: String,
    /// How the row was made (prompt, model, seed), for rows a model wrote.
    pub provenance: Option<serde_json::Value>,
    /// Why the row cannot be accepted as it is.
    pub problem: Option<String>,
    /// `accept`, `edit`, `reject` or `flag`; none until decided.
    pub decision: Option<String>,
    /// The row as edited, with `edit`.
    pub edited_row: Option<String>,
    pub note: Option<String>,
    pub decided_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewQueueItem {
    pub source_row: u32,
    pub row: String,
    pub provenance: Option<serde_json::Value>,
    pub problem: Option<String>,
}

/// A decision to record for an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemDecision<'a> {
    pub decision: &'a str,
    pub edited_row: Option<&'a str>,
    pub note: Option<&'a str>,
}

const QUEUE_COLUMNS: &str = "id, kind, dataset_id, version, settings, applied_version, created_at, applied_at";
const ITEM_COLUMNS: &str = "queue_id, item, source_row, row, provenance, problem, decision, edited_row, note, decided_at";

fn queue_from_row(row: &Row<'_>) -> rusqlite::Result<(DataQueue, String)> {
    Ok((
        DataQueue {
            id: row.get(0)?,
            kind: row.get(1)?,
            dataset_id: row.get(2)?,
            version: row.get(3)?,
            settings: serde_json::Value::Null,
            applied_version: row.get(5)?,
            created_at: row.get(6)?,
            applied_at: row.get(7)?,
        },
        row.get(4)?,
    ))
}

fn finish_queue((mut q, settings): (DataQueue, String)) -> Result<DataQueue> {
    q.settings = serde_json::from_str(&settings).map_err(|e| Error::Corrupt { what: "data queue", id: q.id, reason: format!("settings: {e}") })?;
    Ok(q)
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<(QueueItem, Option<String>)> {
    Ok((
        QueueItem {
            queue_id: row.get(0)?,
            item: row.get(1)?,
            source_row: row.get(2)?,
            row: row.get(3)?,
            provenance: None,
            problem: row.get(5)?,
            decision: row.get(6)?,
            edited_row: row.get(7)?,
            note: row.get(8)?,
            decided_at: row.get(9)?,
        },
        row.get(4)?,
    ))
}

fn finish_item((mut item, provenance): (QueueItem, Option<String>)) -> Result<QueueItem> {
    item.provenance = provenance
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .map_err(|e| Error::Corrupt { what: "data queue", id: item.queue_id, reason: format!("item {} provenance: {e}", item.item) })?;
    Ok(item)
}

fn to_json(what: &'static str, v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Invalid { what, reason: e.to_string() })
}

impl Store {
    /// Adds a queue with its items, numbered from 1 in the order given, in one transaction.
    pub fn insert_data_queue(&mut self, new: &NewDataQueue, items: &[NewQueueItem]) -> Result<DataQueue> {
        if items.is_empty() {
            return Err(Error::Invalid { what: "data queue", reason: "it has no rows".into() });
        }
        self.get_dataset_version(new.dataset_id, new.version)?;
        let settings = to_json("data queue settings", &new.settings)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO data_queues (kind, dataset_id, version, settings) VALUES (?1, ?2, ?3, ?4)",
            params![new.kind, new.dataset_id, new.version, settings],
        )?;
        let id = tx.last_insert_rowid();
        for (i, item) in items.iter().enumerate() {
            let provenance = item.provenance.as_ref().map(|p| to_json("data queue provenance", p)).transpose()?;
            tx.execute(
                "INSERT INTO data_queue_items (queue_id, item, source_row, row, provenance, problem) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, i as u32 + 1, item.source_row, item.row, provenance, item.problem],
            )?;
        }
        tx.commit()?;
        self.get_data_queue(id)
    }

    pub fn get_data_queue(&self, id: i64) -> Result<DataQueue> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM data_queues WHERE id = ?1");
        finish_queue(self.conn.query_row(&sql, [id], queue_from_row).optional()?.ok_or(Error::NotFound { what: "data queue", id })?)
    }

    /// Queues, newest first; those of one dataset when given.
    pub fn list_data_queues(&self, dataset_id: Option<i64>) -> Result<Vec<DataQueue>> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM data_queues WHERE ?1 IS NULL OR dataset_id = ?1 ORDER BY id DESC");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt.query_map([dataset_id], queue_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(finish_queue).collect()
    }

    /// A queue's items in order.
    pub fn data_queue_items(&self, queue_id: i64) -> Result<Vec<QueueItem>> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM data_queue_items WHERE queue_id = ?1 ORDER BY item");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt.query_map([queue_id], item_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(finish_item).collect()
    }

    pub fn data_queue_item(&self, queue_id: i64, item: u32) -> Result<QueueItem> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM data_queue_items WHERE queue_id = ?1 AND item = ?2");
        let raw = self.conn.query_row(&sql, params![queue_id, item], item_from_row).optional()?;
        finish_item(raw.ok_or(Error::NotFound { what: "item in the data queue", id: item as i64 })?)
    }

    /// Records an item's decision, replacing the one before. Returns `None`, and changes nothing, when the
    /// queue was applied already.
    pub fn decide_queue_item(&self, queue_id: i64, item: u32, d: &ItemDecision<'_>) -> Result<Option<QueueItem>> {
        let sql = format!(
            "UPDATE data_queue_items SET decision = ?3, edited_row = ?4, note = ?5, decided_at = {NOW}
             WHERE queue_id = ?1 AND item = ?2
             AND EXISTS (SELECT 1 FROM data_queues WHERE id = ?1 AND applied_version IS NULL)"
        );
        let changed = self.conn.execute(&sql, params![queue_id, item, d.decision, d.edited_row, d.note])?;
        if changed == 0 {
            // Which it was: a missing queue or item is an error of its own.
            self.get_data_queue(queue_id)?;
            self.data_queue_item(queue_id, item)?;
            return Ok(None);
        }
        self.data_queue_item(queue_id, item).map(Some)
    }

    /// Adds the version a queue makes and marks the queue applied, in one transaction: a queue makes one
    /// version at most. Returns `None`, and adds nothing, when the queue was applied already.
    pub fn apply_data_queue(&mut self, queue_id: i64, new: &NewDatasetVersion) -> Result<Option<(DataQueue, DatasetVersion)>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied: Option<Option<u32>> =
            tx.query_row("SELECT applied_version FROM data_queues WHERE id = ?1", [queue_id], |r| r.get(0)).optional()?;
        match applied {
            None => return Err(Error::NotFound { what: "data queue", id: queue_id }),
            Some(Some(_)) => return Ok(None),
            Some(None) => {}
        }
        let version = insert_version_in(&tx, new)?;
        let sql = format!("UPDATE data_queues SET applied_version = ?2, applied_at = {NOW} WHERE id = ?1");
        tx.execute(&sql, params![queue_id, version])?;
        tx.commit()?;
        Ok(Some((self.get_data_queue(queue_id)?, self.get_dataset_version(new.dataset_id, version)?)))
    }
}
