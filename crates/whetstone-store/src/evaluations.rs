//! Evaluations: the prompts a model and its adapters answered, each side's answer per item, and the
//! aggregate metrics per side. An evaluation is written whole in one transaction, so a half-finished one
//! (a crash in the middle of generating) never shows up as if it were complete.

use crate::error::{Error, Result};
use crate::store::Store;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

/// One side's aggregate metrics (perplexity, text metrics), as JSON the API types.
#[derive(Debug, Clone, PartialEq)]
pub struct SideRecord {
    pub side: String,
    pub metrics: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    pub side: String,
    pub text: String,
    /// Generated tokens.
    pub tokens: u64,
    /// The item's text metrics against its reference, when it has one.
    pub scores: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationItem {
    /// 1-based, in the order the rows were given.
    pub position: u32,
    /// The row's line in its dataset or file, when it came from one.
    pub line: Option<u64>,
    /// The conversation the model was given (`[{role, content}]`), before the answer.
    pub messages: serde_json::Value,
    /// The last user message: what a reader is shown as the prompt.
    pub prompt: String,
    /// Structured input shown beside the prompt (e.g. a property's attributes).
    pub input: Option<serde_json::Value>,
    pub reference: Option<String>,
    pub outputs: Vec<OutputRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvaluation {
    pub run_id: Option<i64>,
    pub compare_run_id: Option<i64>,
    pub model: String,
    pub adapter: Option<String>,
    pub dataset_id: Option<i64>,
    pub dataset_version: Option<u32>,
    pub split: Option<String>,
    /// Where the rows came from, in words.
    pub source: String,
    pub settings: serde_json::Value,
    pub metrics: Vec<SideRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub id: i64,
    pub run_id: Option<i64>,
    pub compare_run_id: Option<i64>,
    pub model: String,
    pub adapter: Option<String>,
    pub dataset_id: Option<i64>,
    pub dataset_version: Option<u32>,
    pub split: Option<String>,
    pub source: String,
    pub settings: serde_json::Value,
    /// In the order the sides were written.
    pub metrics: Vec<SideRecord>,
    pub items: u64,
    pub created_at: String,
}

const COLUMNS: &str = "id, run_id, compare_run_id, model, adapter, dataset_id, dataset_version, split, source, settings, created_at, \
     (SELECT COUNT(*) FROM evaluation_items i WHERE i.evaluation_id = evaluations.id)";

fn json(what: &'static str, v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Invalid { what, reason: e.to_string() })
}

fn parse(id: i64, what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt { what: "evaluation", id, reason: format!("{what} is not JSON: {e}") })
}

struct Raw {
    e: Evaluation,
    settings: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        settings: row.get(9)?,
        e: Evaluation {
            id: row.get(0)?,
            run_id: row.get(1)?,
            compare_run_id: row.get(2)?,
            model: row.get(3)?,
            adapter: row.get(4)?,
            dataset_id: row.get(5)?,
            dataset_version: row.get(6)?,
            split: row.get(7)?,
            source: row.get(8)?,
            settings: serde_json::Value::Null,
            metrics: Vec::new(),
            created_at: row.get(10)?,
            items: row.get(11)?,
        },
    })
}

impl Store {
    /// Writes an evaluation with its items, each side's outputs and the aggregate metrics, all or nothing.
    pub fn insert_evaluation(&mut self, new: &NewEvaluation, items: &[EvaluationItem]) -> Result<Evaluation> {
        if items.is_empty() {
            return Err(Error::Invalid { what: "evaluation", reason: "it has no items".into() });
        }
        let settings = json("evaluation settings", &new.settings)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO evaluations (run_id, compare_run_id, model, adapter, dataset_id, dataset_version, split, source, settings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                new.run_id,
                new.compare_run_id,
                new.model,
                new.adapter,
                new.dataset_id,
                new.dataset_version,
                new.split,
                new.source,
                settings
            ],
        )?;
        let id = tx.last_insert_rowid();
        for m in &new.metrics {
            tx.execute(
                "INSERT INTO evaluation_metrics (evaluation_id, side, metrics) VALUES (?1, ?2, ?3)",
                params![id, m.side, json("evaluation metrics", &m.metrics)?],
            )?;
        }
        for item in items {
            let input = item.input.as_ref().map(|v| json("evaluation input", v)).transpose()?;
            tx.execute(
                "INSERT INTO evaluation_items (evaluation_id, position, line, messages, prompt, input, reference)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, item.position, item.line, json("evaluation messages", &item.messages)?, item.prompt, input, item.reference],
            )?;
            for o in &item.outputs {
                let scores = o.scores.as_ref().map(|v| json("evaluation scores", v)).transpose()?;
                tx.execute(
                    "INSERT INTO evaluation_outputs (evaluation_id, position, side, text, tokens, scores)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, item.position, o.side, o.text, o.tokens, scores],
                )?;
            }
        }
        tx.commit()?;
        self.get_evaluation(id)
    }

    pub fn get_evaluation(&self, id: i64) -> Result<Evaluation> {
        let sql = format!("SELECT {COLUMNS} FROM evaluations WHERE id = ?1");
        let raw = self.conn.query_row(&sql, [id], from_row).optional()?.ok_or(Error::NotFound { what: "evaluation", id })?;
        self.finish(raw)
    }

    /// Every evaluation, or those of one run (as the tuned side or the compared one), newest first.
    pub fn list_evaluations(&self, run: Option<i64>) -> Result<Vec<Evaluation>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM evaluations WHERE ?1 IS NULL OR run_id = ?1 OR compare_run_id = ?1 ORDER BY id DESC"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt.query_map([run], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(|r| self.finish(r)).collect()
    }

    fn finish(&self, raw: Raw) -> Result<Evaluation> {
        let mut e = raw.e;
        e.settings = parse(e.id, "settings", &raw.settings)?;
        let mut stmt = self.conn.prepare("SELECT side, metrics FROM evaluation_metrics WHERE evaluation_id = ?1 ORDER BY rowid")?;
        let rows = stmt
            .query_map([e.id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (side, metrics) in rows {
            e.metrics.push(SideRecord { metrics: parse(e.id, "metrics", &metrics)?, side });
        }
        Ok(e)
    }

    /// The items of an evaluation in order, each with every side's output.
    pub fn evaluation_items(&self, id: i64) -> Result<Vec<EvaluationItem>> {
        self.get_evaluation(id)?;
        self.items_where(id, None)
    }

    /// One item of an evaluation, with every side's output.
    pub fn evaluation_item(&self, id: i64, position: u32) -> Result<Option<EvaluationItem>> {
        Ok(self.items_where(id, Some(position))?.pop())
    }

    fn items_where(&self, id: i64, position: Option<u32>) -> Result<Vec<EvaluationItem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT position, line, messages, prompt, input, reference FROM evaluation_items
             WHERE evaluation_id = ?1 AND (?2 IS NULL OR position = ?2) ORDER BY position",
        )?;
        type RawItem = (u32, Option<u64>, String, String, Option<String>, Option<String>);
        let raws = stmt
            .query_map(params![id, position], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<rusqlite::Result<Vec<RawItem>>>()?;
        let mut outputs = self.conn.prepare(
            "SELECT position, side, text, tokens, scores FROM evaluation_outputs
             WHERE evaluation_id = ?1 AND (?2 IS NULL OR position = ?2) ORDER BY position, rowid",
        )?;
        let mut by_position: std::collections::HashMap<u32, Vec<OutputRecord>> = std::collections::HashMap::new();
        let rows = outputs
            .query_map(params![id, position], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, u64>(3)?, r.get::<_, Option<String>>(4)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (position, side, text, tokens, scores) in rows {
            let scores = scores.map(|s| parse(id, "scores", &s)).transpose()?;
            by_position.entry(position).or_default().push(OutputRecord { side, text, tokens, scores });
        }
        raws.into_iter()
            .map(|(position, line, messages, prompt, input, reference)| {
                Ok(EvaluationItem {
                    position,
                    line,
                    messages: parse(id, "messages", &messages)?,
                    prompt,
                    input: input.map(|i| parse(id, "input", &i)).transpose()?,
                    reference,
                    outputs: by_position.remove(&position).unwrap_or_default(),
                })
            })
            .collect()
    }
}
