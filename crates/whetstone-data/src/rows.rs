//! Dataset rows: JSONL lines in the common instruction-tuning shapes, turned into conversations.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{BadRow, DataError, Result, RowError};
use crate::template::{Message, Role};

/// A conversation in order, as the chat template receives it.
pub type Conversation = Vec<Message>;

/// One dataset row in the shape it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `{"prompt", "response"}`
    PromptResponse { prompt: String, response: String },
    /// `{"prompt", "completion"}`
    PromptCompletion { prompt: String, completion: String },
    /// `{"instruction", "response"}`
    InstructionResponse {
        instruction: String,
        response: String,
    },
    /// Alpaca: `{"instruction", "input", "output"}`; `input` may be missing, null or empty.
    Alpaca {
        instruction: String,
        input: Option<String>,
        output: String,
    },
    /// `{"messages": [{"role", "content"}, ...]}`
    Messages(Vec<Message>),
}

/// A parsed row with the 1-based line it came from, so later errors can point back at the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub conversation: Conversation,
}

impl Record {
    /// Parses one JSONL line, detecting its shape from the keys present. Extra keys are ignored; a row whose
    /// keys fit two shapes is rejected rather than guessed at.
    pub fn parse(line: &str) -> Result<Record, RowError> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| RowError::InvalidJson(e.to_string()))?;
        let Value::Object(obj) = value else {
            return Err(RowError::NotAnObject(kind_name(&value)));
        };
        Self::from_object(&obj)
    }

    /// Like [`Record::parse`] for raw bytes, which must be UTF-8.
    pub fn parse_bytes(line: &[u8]) -> Result<Record, RowError> {
        let text = std::str::from_utf8(line).map_err(|_| RowError::NotUtf8)?;
        Self::parse(text)
    }

    fn from_object(obj: &Map<String, Value>) -> Result<Record, RowError> {
        let has = |k: &str| obj.contains_key(k);
        let anchors: Vec<&str> = ["messages", "instruction", "prompt"]
            .into_iter()
            .filter(|k| has(k))
            .collect();
        if anchors.len() > 1 {
            return Err(RowError::Ambiguous(anchors[0].into(), anchors[1].into()));
        }
        match anchors.first().copied() {
            Some("messages") => {
                parse_messages(obj.get("messages").expect("key checked")).map(Record::Messages)
            }
            Some("instruction") => {
                let instruction = required(obj, "instruction")?;
                match (has("output"), has("response")) {
                    (true, true) => Err(RowError::Ambiguous("output".into(), "response".into())),
                    (true, false) => Ok(Record::Alpaca {
                        instruction,
                        input: optional(obj, "input")?,
                        output: required(obj, "output")?,
                    }),
                    (false, true) => {
                        if has("input") {
                            // An `input` next to `response` would be silently dropped; make the writer choose.
                            return Err(RowError::Ambiguous("input".into(), "response".into()));
                        }
                        Ok(Record::InstructionResponse {
                            instruction,
                            response: required(obj, "response")?,
                        })
                    }
                    (false, false) => Err(RowError::MissingField("output".into())),
                }
            }
            Some(_) => {
                let prompt = required(obj, "prompt")?;
                match (has("response"), has("completion")) {
                    (true, true) => {
                        Err(RowError::Ambiguous("response".into(), "completion".into()))
                    }
                    (true, false) => Ok(Record::PromptResponse {
                        prompt,
                        response: required(obj, "response")?,
                    }),
                    (false, true) => Ok(Record::PromptCompletion {
                        prompt,
                        completion: required(obj, "completion")?,
                    }),
                    (false, false) => Err(RowError::MissingField("response".into())),
                }
            }
            None => {
                let mut keys: Vec<String> = obj.keys().take(12).map(|k| format!("{k:?}")).collect();
                keys.sort();
                if obj.len() > 12 {
                    keys.push("...".into());
                }
                Err(RowError::UnknownShape(keys.join(", ")))
            }
        }
    }

    /// The shape's name as written in docs and errors.
    pub fn shape(&self) -> &'static str {
        match self {
            Record::PromptResponse { .. } => "prompt/response",
            Record::PromptCompletion { .. } => "prompt/completion",
            Record::InstructionResponse { .. } => "instruction/response",
            Record::Alpaca { .. } => "instruction/input/output",
            Record::Messages(_) => "messages",
        }
    }

    /// The row as a user/assistant exchange. Alpaca's user text is the instruction, a blank line, then the
    /// input when there is one.
    pub fn into_conversation(self) -> Conversation {
        match self {
            Record::PromptResponse {
                prompt,
                response: answer,
            }
            | Record::PromptCompletion {
                prompt,
                completion: answer,
            }
            | Record::InstructionResponse {
                instruction: prompt,
                response: answer,
            } => {
                vec![Message::user(prompt), Message::assistant(answer)]
            }
            Record::Alpaca {
                instruction,
                input,
                output,
            } => {
                let user = match input {
                    Some(input) => format!("{instruction}\n\n{input}"),
                    None => instruction,
                };
                vec![Message::user(user), Message::assistant(output)]
            }
            Record::Messages(messages) => messages,
        }
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_value(v: &Value, field: &str) -> Result<String, RowError> {
    match v {
        Value::String(s) if s.trim().is_empty() => Err(RowError::EmptyField(field.into())),
        Value::String(s) => Ok(s.clone()),
        other => Err(RowError::WrongType {
            field: field.into(),
            expected: "a string",
            got: kind_name(other),
        }),
    }
}

fn required(obj: &Map<String, Value>, key: &str) -> Result<String, RowError> {
    match obj.get(key) {
        None => Err(RowError::MissingField(key.into())),
        Some(v) => string_value(v, key),
    }
}

/// Missing, null and blank all mean "no value" for optional fields.
fn optional(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, RowError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => string_value(v, key).map(Some),
    }
}

fn parse_messages(v: &Value) -> Result<Vec<Message>, RowError> {
    let Value::Array(items) = v else {
        return Err(RowError::WrongType {
            field: "messages".into(),
            expected: "an array",
            got: kind_name(v),
        });
    };
    if items.is_empty() {
        return Err(RowError::EmptyField("messages".into()));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(RowError::WrongType {
                field: format!("messages[{i}]"),
                expected: "an object",
                got: kind_name(item),
            });
        };
        let role_field = format!("messages[{i}].role");
        let role_name = match obj.get("role") {
            None => return Err(RowError::MissingField(role_field)),
            Some(v) => string_value(v, &role_field)?,
        };
        let role = Role::parse(&role_name).ok_or(RowError::UnknownRole {
            field: role_field,
            role: role_name,
        })?;
        let content_field = format!("messages[{i}].content");
        let content = match obj.get("content") {
            None => return Err(RowError::MissingField(content_field)),
            Some(v) => string_value(v, &content_field)?,
        };
        messages.push(Message { role, content });
    }
    if !messages.iter().any(|m| m.role == Role::Assistant) {
        return Err(RowError::NoAssistantMessage);
    }
    Ok(messages)
}

/// Parses a whole JSONL buffer. `path` only names the source in errors. Blank lines are skipped; every bad row
/// is collected so that one error lists them all (the first [`crate::MAX_LISTED_BAD_ROWS`] spelled out).
pub fn parse_jsonl(path: &Path, bytes: &[u8]) -> Result<Vec<Row>> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut total = 0;
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        total += 1;
        match Record::parse_bytes(line) {
            Ok(record) => rows.push(Row {
                line: index + 1,
                conversation: record.into_conversation(),
            }),
            Err(reason) => bad.push(BadRow {
                line: index + 1,
                reason,
            }),
        }
    }
    if !bad.is_empty() {
        return Err(DataError::BadRows {
            path: path.to_path_buf(),
            total_rows: total,
            bad,
        });
    }
    if rows.is_empty() {
        return Err(DataError::EmptyDataset {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// Reads a JSONL dataset, keeping each conversation's line number.
pub fn read_jsonl_rows(path: impl AsRef<Path>) -> Result<Vec<Row>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: PathBuf::from(path),
        source,
    })?;
    parse_jsonl(path, &bytes)
}

/// Reads a JSONL dataset into conversations; fails on any bad row (see [`parse_jsonl`]).
pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Vec<Conversation>> {
    Ok(read_jsonl_rows(path)?
        .into_iter()
        .map(|r| r.conversation)
        .collect())
}
