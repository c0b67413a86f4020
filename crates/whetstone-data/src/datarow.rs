//! Imported rows in Whetstone's own normalised form: a chat or a plain text, the line (or record) it came
//! from, and the split it belongs to. Stored one JSON object per line:
//! `{"line":12,"messages":[{"role":"user","content":"…"},…]}` or `{"line":13,"text":"…","split":"train"}`.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::template::{Message, Role};

/// What a row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowBody {
    /// A conversation; every assistant turn is trained.
    Chat(Vec<Message>),
    /// Plain text for continued pre-training; every token is trained.
    Text(String),
}

/// Which part of a split dataset a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "val" | "validation" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a dataset version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    /// 1-based line (or, for CSV and JSON arrays, the line the record starts on) in the source file.
    pub line: usize,
    pub body: RowBody,
    pub split: Option<Split>,
}

#[derive(Serialize)]
struct WireOut<'a> {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<&'a [Message]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<Split>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    line: usize,
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    split: Option<Split>,
}

impl DataRow {
    pub fn chat(line: usize, messages: Vec<Message>) -> Self {
        DataRow { line, body: RowBody::Chat(messages), split: None }
    }

    pub fn text(line: usize, text: String) -> Self {
        DataRow { line, body: RowBody::Text(text), split: None }
    }

    /// The row as one JSON line (no newline).
    pub fn to_json(&self) -> String {
        let (messages, text) = match &self.body {
            RowBody::Chat(m) => (Some(m.as_slice()), None),
            RowBody::Text(t) => (None, Some(t.as_str())),
        };
        serde_json::to_string(&WireOut { line: self.line, messages, text, split: self.split })
            .expect("rows of strings always serialise")
    }

    pub fn from_json(s: &str) -> std::result::Result<DataRow, String> {
        let w: WireIn = serde_json::from_str(s).map_err(|e| e.to_string())?;
        let body = match (w.messages, w.text) {
            (Some(m), None) => RowBody::Chat(m),
            (None, Some(t)) => RowBody::Text(t),
            _ => return Err("a row needs exactly one of `messages` and `text`".into()),
        };
        Ok(DataRow { line: w.line, body, split: w.split })
    }

    /// Every piece of text in the row, in order: message contents, or the text.
    pub fn texts(&self) -> Vec<&str> {
        match &self.body {
            RowBody::Chat(m) => m.iter().map(|m| m.content.as_str()).collect(),
            RowBody::Text(t) => vec![t.as_str()],
        }
    }

    /// Mutable access to the same pieces as [`DataRow::texts`], in the same order.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        match &mut self.body {
            RowBody::Chat(m) => m.iter_mut().map(|m| &mut m.content).collect(),
            RowBody::Text(t) => vec![t],
        }
    }

    /// Total characters of text in the row.
    pub fn chars(&self) -> usize {
        self.texts().iter().map(|t| t.chars().count()).sum()
    }

    /// The assistant turns (empty for plain text).
    pub fn responses(&self) -> Vec<&str> {
        match &self.body {
            RowBody::Chat(m) => m.iter().filter(|m| m.role == Role::Assistant).map(|m| m.content.as_str()).collect(),
            RowBody::Text(_) => Vec::new(),
        }
    }

    /// A short one-line excerpt for reports.
    pub fn excerpt(&self, max_chars: usize) -> String {
        let joined = match &self.body {
            RowBody::Chat(m) => m.iter().map(|m| format!("{}: {}", m.role, m.content)).collect::<Vec<_>>().join(" | "),
            RowBody::Text(t) => t.clone(),
        };
        excerpt(&joined, max_chars)
    }
}

/// `s` on one line, cut to `max_chars` with an ellipsis.
pub fn excerpt(s: &str, max_chars: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let mut out: String = flat.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Reads a rows file written by [`write_rows`].
pub fn read_rows(path: &Path) -> Result<Vec<DataRow>> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader = std::io::BufReader::new(file);
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let row = DataRow::from_json(&line).map_err(|reason| DataError::CorruptRows {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Writes rows as JSONL to `path` atomically: a temporary file next to it, synced, then renamed over it.
pub fn write_rows<'a>(path: &Path, rows: impl IntoIterator<Item = &'a DataRow>) -> Result<usize> {
    write_atomically(path, |w| {
        let mut n = 0;
        for row in rows {
            w.write_all(row.to_json().as_bytes())?;
            w.write_all(b"\n")?;
            n += 1;
        }
        Ok(n)
    })
}

/// [`whetstone_files::write_atomic_with`], with this crate's error.
pub fn write_atomically<T>(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<T>,
) -> Result<T> {
    whetstone_files::write_atomic_with(path, fill).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_json() {
        let mut a = DataRow::chat(3, vec![Message::user("hi"), Message::assistant("hello")]);
        a.split = Some(Split::Val);
        let b = DataRow::text(9, "plain\ntext".into());
        for row in [a, b] {
            assert_eq!(DataRow::from_json(&row.to_json()).unwrap(), row);
        }
        assert!(DataRow::from_json(r#"{"line":1}"#).is_err());
        assert!(DataRow::from_json(r#"{"line":1,"text":"a","messages":[]}"#).is_err());
    }
}
