//! The plain files behind `whet eval score` and `whet review agreement`, so that every figure the app shows
//! can be reproduced outside it: predictions and references as JSON lines (`{"id": …, "text": …}`), ratings
//! as CSV (`rater,item,criterion,score`). Every mistake is reported with its file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::agreement::Rating;
use crate::error::{Error, Result};

/// One line of a predictions or references file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub id: String,
    pub text: String,
    /// 1-based line in its file.
    pub line: usize,
}

/// Predictions in the order of their file, each with every reference given for its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    pub ids: Vec<String>,
    pub predictions: Vec<String>,
    pub references: Vec<Vec<String>>,
}

fn read_to_string(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::InputIo { path: path.to_path_buf(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::InputLine { path: path.to_path_buf(), line, reason: "the file is not UTF-8 text".into() }
    })?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// Reads `{"id": "…", "text": "…"}` lines; an id may also be an integer. Blank lines are skipped and other
/// fields ignored, so files written for other tools can be read as they are.
pub fn read_texts(path: &Path) -> Result<Vec<Text>> {
    let body = read_to_string(path)?;
    let mut out = Vec::new();
    for (i, raw) in body.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| Error::InputLine { path: path.to_path_buf(), line, reason };
        let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Some(obj) = value.as_object() else {
            return Err(bad(r#"expected an object like {"id": "1", "text": "…"}"#.into()));
        };
        let id = match obj.get("id") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(other) => return Err(bad(format!("`id` must be a non-empty string or an integer, not {other}"))),
            None => return Err(bad("no `id`".into())),
        };
        let text = match obj.get("text") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => return Err(bad(format!("`text` must be a string, not {other}"))),
            None => return Err(bad("no `text`".into())),
        };
        out.push(Text { id, text, line });
    }
    Ok(out)
}

/// Pairs a predictions file with a references file: one prediction per id, one or more references per id,
/// and no id on one side only (a figure over a silently smaller set would not reproduce).
pub fn read_pairs(predictions: &Path, references: &Path) -> Result<Paired> {
    let preds = read_texts(predictions)?;
    let refs = read_texts(references)?;
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for p in &preds {
        if let Some(&first) = first_line.get(p.id.as_str()) {
            return Err(Error::DuplicateId { path: predictions.to_path_buf(), line: p.line, first_line: first, id: p.id.clone() });
        }
        first_line.insert(&p.id, p.line);
    }
    let mut by_id: HashMap<&str, Vec<String>> = HashMap::new();
    for r in &refs {
        if !first_line.contains_key(r.id.as_str()) {
            return Err(missing(references, r, "prediction", predictions));
        }
        by_id.entry(&r.id).or_default().push(r.text.clone());
    }
    let mut paired = Paired { ids: Vec::new(), predictions: Vec::new(), references: Vec::new() };
    for p in &preds {
        let Some(texts) = by_id.remove(p.id.as_str()) else {
            return Err(missing(predictions, p, "reference", references));
        };
        paired.ids.push(p.id.clone());
        paired.predictions.push(p.text.clone());
        paired.references.push(texts);
    }
    if paired.ids.is_empty() {
        return Err(Error::Empty("predictions file"));
    }
    Ok(paired)
}

fn missing(path: &Path, t: &Text, wanted: &'static str, other: &Path) -> Error {
    Error::MissingId { path: path.to_path_buf(), line: t.line, id: t.id.clone(), wanted, other: other.to_path_buf() }
}

const RATING_COLUMNS: [&str; 4] = ["rater", "item", "criterion", "score"];

/// Reads ratings from a CSV file with a header naming (in any order) the columns rater, item, criterion and
/// score; other columns are ignored and an empty score is a rating not given. A second score by the same
/// rater for the same item and criterion is an error: agreement counts each rater once per unit.
pub fn read_ratings(path: &Path) -> Result<Vec<Rating>> {
    let body = read_to_string(path)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body.as_bytes());
    let at = |line: u64, reason: String| Error::InputLine { path: path.to_path_buf(), line: line as usize, reason };
    let csv_err = |e: csv::Error| {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        at(line, e.to_string())
    };
    let headers = reader.headers().map_err(csv_err)?.clone();
    let mut columns = [0usize; 4];
    for (slot, name) in columns.iter_mut().zip(RATING_COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| at(1, format!("no `{name}` column; the header must name rater, item, criterion and score")))?;
    }
    let mut seen: HashMap<(String, String, String), u64> = HashMap::new();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let cell = |i: usize| record.get(columns[i]).unwrap_or("").trim().to_string();
        let (rater, item, criterion, score) = (cell(0), cell(1), cell(2), cell(3));
        if score.is_empty() {
            continue;
        }
        for (name, value) in RATING_COLUMNS.iter().zip([&rater, &item, &criterion]) {
            if value.is_empty() {
                return Err(at(line, format!("the `{name}` cell is empty")));
            }
        }
        let score: f64 = score.parse().ok().filter(|s: &f64| s.is_finite()).ok_or_else(|| at(line, format!("score `{score}` is not a number")))?;
        let key = (rater.clone(), item.clone(), criterion.clone());
        if let Some(first) = seen.get(&key) {
            return Err(at(
                line,
                format!("rater `{rater}` already scored item `{item}` on `{criterion}` on line {first}; keep one score per rater, item and criterion"),
            ));
        }
        seen.insert(key, line);
        out.push(Rating { rater, item, criterion, score });
    }
    if out.is_empty() {
        return Err(Error::Empty("ratings file"));
    }
    Ok(out)
}

/// Where a WordNet 3.0 database is usually installed: `$WHETSTONE_WORDNET`, else Debian's `wordnet-base`
/// (`/usr/share/wordnet`), when it holds the index files.
pub fn default_wordnet_dir() -> Option<PathBuf> {
    let candidates = std::env::var_os("WHETSTONE_WORDNET")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(PathBuf::from("/usr/share/wordnet")));
    candidates.into_iter().find(|d| d.join("index.noun").is_file())
}
