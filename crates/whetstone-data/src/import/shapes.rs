//! Row shapes: which fields a record has, and how they become a conversation or a plain text.
//!
//! Each record is matched on its own by the fields it carries (after `--map` renames), so a file mixing
//! shapes imports row by row; a record matching no shape, or two at once, is rejected with its fields listed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::datarow::RowBody;
use crate::error::{DataError, RowError};
use crate::template::{Message, Role};

/// The shapes Whetstone recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// `instruction`, optional `input`, `output` (Alpaca)
    Alpaca,
    /// `instruction`, `response`
    InstructionResponse,
    /// `prompt`, `completion`
    PromptCompletion,
    /// `prompt`, `response`
    PromptResponse,
    /// `question`, `answer`, optional `context`
    QuestionAnswer,
    /// OpenAI chat: `messages: [{role, content}]`
    Messages,
    /// ShareGPT: `conversations: [{from, value}]`
    ShareGpt,
    /// Plain text for continued pre-training: a `text` field, or a .txt file
    Text,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Alpaca => "instruction/input/output",
            Shape::InstructionResponse => "instruction/response",
            Shape::PromptCompletion => "prompt/completion",
            Shape::PromptResponse => "prompt/response",
            Shape::QuestionAnswer => "context/question/answer",
            Shape::Messages => "messages",
            Shape::ShareGpt => "sharegpt",
            Shape::Text => "text",
        }
    }
}

/// Written as its [`Shape::name`], the same name reports and errors use.
impl Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Field names a column may be mapped to with `--map field=column`.
pub const FIELDS: &[&str] = &[
    "instruction",
    "input",
    "output",
    "response",
    "prompt",
    "completion",
    "question",
    "answer",
    "context",
    "system",
    "messages",
    "conversations",
    "text",
];

/// The field that decides a shape; a record with two of them is ambiguous.
const ANCHORS: &[&str] = &["messages", "conversations", "instruction", "prompt", "question", "text"];

/// `field ← column` renames applied to every record before its shape is matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pairs: Vec<(String, String)>,
}

impl Mapping {
    /// Builds a mapping from `field=column` pairs, checking the field names.
    pub fn new(pairs: Vec<(String, String)>) -> Result<Mapping, DataError> {
        let mut seen = std::collections::HashSet::new();
        for (field, column) in &pairs {
            if !FIELDS.contains(&field.as_str()) {
                return Err(DataError::InvalidOption(format!(
                    "--map {field}={column}: `{field}` is not a field Whetstone knows; use one of {}",
                    FIELDS.join(", ")
                )));
            }
            if column.is_empty() {
                return Err(DataError::InvalidOption(format!("--map {field}=: the column name is empty")));
            }
            if !seen.insert(field.clone()) {
                return Err(DataError::InvalidOption(format!("--map names `{field}` twice")));
            }
        }
        Ok(Mapping { pairs })
    }

    /// Parses `field=column`.
    pub fn parse_pair(s: &str) -> Result<(String, String), DataError> {
        match s.split_once('=') {
            Some((f, c)) => Ok((f.trim().to_string(), c.trim().to_string())),
            None => Err(DataError::InvalidOption(format!("--map {s}: expected field=column, e.g. prompt=question"))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    fn apply(&self, obj: &mut Map<String, Value>) -> Result<(), RowError> {
        if self.pairs.is_empty() {
            return Ok(());
        }
        let mut moved = Vec::with_capacity(self.pairs.len());
        for (field, column) in &self.pairs {
            let v = obj.remove(column).ok_or_else(|| RowError::MissingField(column.clone()))?;
            moved.push((field.clone(), v));
        }
        // A mapping that names an anchor decides the shape; other anchor-named columns are left out of the match.
        if self.pairs.iter().any(|(f, _)| ANCHORS.contains(&f.as_str())) {
            for a in ANCHORS {
                obj.remove(*a);
            }
        }
        for (field, v) in moved {
            obj.insert(field, v);
        }
        Ok(())
    }
}

pub(crate) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn take_string(v: Value, field: &str) -> Result<String, RowError> {
    match v {
        Value::String(s) if s.trim().is_empty() => Err(RowError::EmptyField(field.into())),
        Value::String(s) => Ok(s),
        other => Err(RowError::WrongType { field: field.into(), expected: "a string", got: kind_name(&other) }),
    }
}

fn required(obj: &mut Map<String, Value>, key: &str) -> Result<String, RowError> {
    match obj.remove(key) {
        None => Err(RowError::MissingField(key.into())),
        Some(v) => take_string(v, key),
    }
}

/// Missing, null and blank all mean "no value" for optional fields.
fn optional(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, RowError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => take_string(v, key).map(Some),
    }
}

/// Turns one record's fields into a row body.
pub fn from_object(mut obj: Map<String, Value>, mapping: &Mapping) -> Result<(Shape, RowBody), RowError> {
    mapping.apply(&mut obj)?;
    let anchors: Vec<&str> = ANCHORS.iter().copied().filter(|k| obj.contains_key(*k)).collect();
    if anchors.len() > 1 {
        return Err(RowError::Ambiguous(anchors[0].into(), anchors[1].into()));
    }
    let has = |obj: &Map<String, Value>, k: &str| obj.contains_key(k);
    let system = |obj: &mut Map<String, Value>| optional(obj, "system");
    let pair = |system: Option<String>, user: String, assistant: String| {
        let mut m = Vec::with_capacity(3);
        if let Some(s) = system {
            m.push(Message::system(s));
        }
        m.push(Message::user(user));
        m.push(Message::assistant(assistant));
        RowBody::Chat(m)
    };
    match anchors.first().copied() {
        Some("messages") => {
            let v = obj.remove("messages").expect("key checked");
            let v = json_in_string(v);
            Ok((Shape::Messages, RowBody::Chat(parse_messages(v, "messages", "role", "content")?)))
        }
        Some("conversations") => {
            let v = obj.remove("conversations").expect("key checked");
            let v = json_in_string(v);
            Ok((Shape::ShareGpt, RowBody::Chat(parse_messages(v, "conversations", "from", "value")?)))
        }
        Some("instruction") => {
            let instruction = required(&mut obj, "instruction")?;
            match (has(&obj, "output"), has(&obj, "response")) {
                (true, true) => Err(RowError::Ambiguous("output".into(), "response".into())),
                (true, false) => {
                    let input = optional(&mut obj, "input")?;
                    let output = required(&mut obj, "output")?;
                    let user = match input {
                        Some(input) => format!("{instruction}\n\n{input}"),
                        None => instruction,
                    };
                    Ok((Shape::Alpaca, pair(system(&mut obj)?, user, output)))
                }
                (false, true) => {
                    if optional(&mut obj, "input")?.is_some() {
                        // An `input` next to `response` would be silently dropped; make the writer choose.
                        return Err(RowError::Ambiguous("input".into(), "response".into()));
                    }
                    let response = required(&mut obj, "response")?;
                    Ok((Shape::InstructionResponse, pair(system(&mut obj)?, instruction, response)))
                }
                (false, false) => Err(RowError::MissingField("output".into())),
            }
        }
        Some("prompt") => {
            let prompt = required(&mut obj, "prompt")?;
            match (has(&obj, "response"), has(&obj, "completion")) {
                (true, true) => Err(RowError::Ambiguous("response".into(), "completion".into())),
                (true, false) => {
                    let r = required(&mut obj, "response")?;
                    Ok((Shape::PromptResponse, pair(system(&mut obj)?, prompt, r)))
                }
                (false, true) => {
                    let c = required(&mut obj, "completion")?;
                    Ok((Shape::PromptCompletion, pair(system(&mut obj)?, prompt, c)))
                }
                (false, false) => Err(RowError::MissingField("response".into())),
            }
        }
        Some("question") => {
            let question = required(&mut obj, "question")?;
            let answer = required(&mut obj, "answer")?;
            let user = match optional(&mut obj, "context")? {
                Some(context) => format!("{context}\n\n{question}"),
                None => question,
            };
            Ok((Shape::QuestionAnswer, pair(system(&mut obj)?, user, answer)))
        }
        Some(_) => Ok((Shape::Text, RowBody::Text(required(&mut obj, "text")?))),
        None => {
            let mut keys: Vec<String> = obj.keys().take(12).map(|k| format!("{k:?}")).collect();
            keys.sort();
            if obj.len() > 12 {
                keys.push("...".into());
            }
            Err(RowError::NoShape(keys.join(", ")))
        }
    }
}

/// CSV cells hold chats as JSON text; accept that.
fn json_in_string(v: Value) -> Value {
    match &v {
        Value::String(s) if s.trim_start().starts_with('[') => serde_json::from_str(s).unwrap_or(v),
        _ => v,
    }
}

fn speaker(name: &str) -> Option<Role> {
    match name.to_ascii_lowercase().as_str() {
        "system" | "developer" => Some(Role::System),
        "user" | "human" => Some(Role::User),
        "assistant" | "gpt" | "chatgpt" | "bard" | "bing" | "model" => Some(Role::Assistant),
        _ => None,
    }
}

/// Content as a string, or OpenAI's list of parts `[{"type": "text", "text": …}]` joined.
fn content_text(v: Value, field: &str) -> Result<String, RowError> {
    match v {
        Value::Array(parts) => {
            let mut out = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                let pf = format!("{field}[{j}]");
                let Value::Object(mut p) = part else {
                    return Err(RowError::WrongType { field: pf, expected: "an object", got: kind_name(&part) });
                };
                match p.remove("text") {
                    Some(t) => out.push_str(&take_string(t, &format!("{pf}.text"))?),
                    None => return Err(RowError::MissingField(format!("{pf}.text"))),
                }
            }
            if out.trim().is_empty() {
                return Err(RowError::EmptyField(field.into()));
            }
            Ok(out)
        }
        other => take_string(other, field),
    }
}

fn parse_messages(v: Value, field: &str, role_key: &str, content_key: &str) -> Result<Vec<Message>, RowError> {
    let Value::Array(items) = v else {
        return Err(RowError::WrongType { field: field.into(), expected: "an array", got: kind_name(&v) });
    };
    if items.is_empty() {
        return Err(RowError::EmptyField(field.into()));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut obj) = item else {
            return Err(RowError::WrongType {
                field: format!("{field}[{i}]"),
                expected: "an object",
                got: kind_name(&item),
            });
        };
        let role_field = format!("{field}[{i}].{role_key}");
        let role_name = match obj.remove(role_key) {
            None => return Err(RowError::MissingField(role_field)),
            Some(v) => take_string(v, &role_field)?,
        };
        let role = match speaker(&role_name) {
            Some(r) => r,
            None if role_key == "role" => return Err(RowError::UnknownRole { field: role_field, role: role_name }),
            None => return Err(RowError::UnknownSpeaker { field: role_field, value: role_name }),
        };
        let content_field = format!("{field}[{i}].{content_key}");
        let content = match obj.remove(content_key) {
            None => return Err(RowError::MissingField(content_field)),
            Some(v) => content_text(v, &content_field)?,
        };
        messages.push(Message { role, content });
    }
    if !messages.iter().any(|m| m.role == Role::Assistant) {
        return Err(RowError::NoAssistantMessage);
    }
    Ok(messages)
}

/// Counts of accepted rows per shape, in a stable order.
pub type ShapeCounts = BTreeMap<Shape, usize>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_shape_is_recognised() {
        let none = Mapping::default();
        let cases = [
            (json!({"instruction": "a", "input": "b", "output": "c"}), Shape::Alpaca),
            (json!({"instruction": "a", "response": "c"}), Shape::InstructionResponse),
            (json!({"prompt": "a", "completion": "c"}), Shape::PromptCompletion),
            (json!({"prompt": "a", "response": "c"}), Shape::PromptResponse),
            (json!({"context": "x", "question": "a", "answer": "c"}), Shape::QuestionAnswer),
            (json!({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "c"}]}), Shape::Messages),
            (json!({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "c"}]}), Shape::ShareGpt),
            (json!({"text": "hello"}), Shape::Text),
        ];
        for (v, want) in cases {
            assert_eq!(from_object(obj(v), &none).unwrap().0, want);
        }
    }

    #[test]
    fn mapping_renames_columns_and_decides_the_shape() {
        let m = Mapping::new(vec![("prompt".into(), "q".into()), ("response".into(), "a".into())]).unwrap();
        let (shape, body) = from_object(obj(json!({"q": "hi", "a": "yo", "text": "ignored"})), &m).unwrap();
        assert_eq!(shape, Shape::PromptResponse);
        assert_eq!(body, RowBody::Chat(vec![Message::user("hi"), Message::assistant("yo")]));
        assert_eq!(from_object(obj(json!({"a": "yo"})), &m).unwrap_err(), RowError::MissingField("q".into()));
        assert!(Mapping::new(vec![("nonsense".into(), "x".into())]).is_err());
    }
}
