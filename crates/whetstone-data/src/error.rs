use std::fmt;
use std::path::PathBuf;

/// How many bad rows a dataset error spells out before summarising the rest.
pub const MAX_LISTED_BAD_ROWS: usize = 10;

/// One rejected record: its 1-based line (where it starts), its number among the file's records, and
/// why it was rejected. Reports and errors carry the reason as text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct Rejection {
    pub line: usize,
    pub record: usize,
    #[ts(as = "String")]
    pub reason: RowError,
}

/// Written as its message, the way reports and the UI show it.
impl serde::Serialize for RowError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a single record could not be turned into a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("row must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("missing field `{0}`")]
    MissingField(String),
    #[error("field `{0}` is empty")]
    EmptyField(String),
    #[error("field `{field}` must be {expected}, got {got}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("unknown role `{role}` in `{field}` (expected system, user or assistant)")]
    UnknownRole { field: String, role: String },
    #[error("`messages` has no assistant message, so there is nothing to train on")]
    NoAssistantMessage,
    #[error("ambiguous row: has both `{0}` and `{1}`")]
    Ambiguous(String, String),
    #[error(
        "cannot tell what this row holds (fields: [{0}]); expected instruction/input/output, instruction/response, \
         prompt/completion, prompt/response, question/answer (with optional context), messages, conversations or \
         text; name the columns with --map, e.g. --map prompt=my_question --map response=my_answer"
    )]
    NoShape(String),
    #[error("over-long: {bytes} bytes, more than the limit of {limit}")]
    TooLong { bytes: usize, limit: usize },
    #[error("has {got} fields but the header has {expected}")]
    WrongFieldCount { got: usize, expected: usize },
    #[error("the file ends inside this record")]
    Truncated,
    #[error("unknown speaker `{value}` in `{field}` (expected human, user, gpt, assistant or system)")]
    UnknownSpeaker { field: String, value: String },
}

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read GGUF file {}: {message}", path.display())]
    Gguf { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{}: {reason}", path.display())]
    HfConfig { path: PathBuf, reason: String },
    #[error("chat template: {0}")]
    Template(String),
    #[error("{}", BadRowsDisplay { path, total_rows: *total_rows, bad })]
    BadRows {
        path: PathBuf,
        total_rows: usize,
        /// Every bad row, in file order; the message lists the first few.
        bad: Vec<Rejection>,
    },
    #[error("{}: no rows (the file is empty or has only blank lines)", path.display())]
    EmptyDataset { path: PathBuf },
    #[error(
        "nothing to train: after truncating to {max_len} tokens no assistant token is left \
         (the conversation is {total_tokens} tokens long and its first trained token is at position {first_trained}); \
         raise the maximum sequence length or shorten the prompt"
    )]
    NothingToTrain {
        max_len: usize,
        total_tokens: usize,
        first_trained: usize,
    },
    #[error("conversation has no assistant message with content, so there is nothing to train on")]
    NoAssistantTurn,
    #[error(
        "chat template does not render the conversation incrementally (turn {turn} renders differently on its own \
         than inside the full conversation), so assistant tokens cannot be located"
    )]
    TemplateNotIncremental { turn: usize },
    #[error(
        "cannot find the content of assistant turn {turn} in the rendered conversation; the chat template \
         rewrites message contents in a way the trainer cannot follow"
    )]
    AssistantNotFound { turn: usize },
    #[error("{}: {reason}", path.display())]
    BadSource { path: PathBuf, reason: String },
    #[error("{}: line {line}: {reason} (the file was changed outside Whetstone)", path.display())]
    CorruptRows { path: PathBuf, line: usize, reason: String },
    #[error("{}: no row could be imported out of {rows}; first problems:{first}", path.display())]
    NoRowsAccepted { path: PathBuf, rows: usize, first: String },
    #[error("{0}")]
    InvalidOption(String),
    #[error("row at line {line}: {source}")]
    InRow {
        line: usize,
        #[source]
        source: Box<DataError>,
    },
}

impl DataError {
    /// Stable machine-readable code, as the API reports it.
    pub fn code(&self) -> &'static str {
        match self {
            DataError::Io { .. } => "io",
            DataError::Gguf { .. } | DataError::Tokenizer(_) | DataError::HfConfig { .. } => "invalid_model_file",
            DataError::Template(_) | DataError::TemplateNotIncremental { .. } | DataError::AssistantNotFound { .. } => "chat_template",
            DataError::BadRows { .. }
            | DataError::EmptyDataset { .. }
            | DataError::NothingToTrain { .. }
            | DataError::NoAssistantTurn
            | DataError::BadSource { .. }
            | DataError::CorruptRows { .. }
            | DataError::NoRowsAccepted { .. } => "bad_data",
            DataError::InvalidOption(_) => "invalid_input",
            DataError::InRow { source, .. } => source.code(),
        }
    }
}

struct BadRowsDisplay<'a> {
    path: &'a PathBuf,
    total_rows: usize,
    bad: &'a [Rejection],
}

impl fmt::Display for BadRowsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} bad row{} out of {}",
            self.path.display(),
            self.bad.len(),
            if self.bad.len() == 1 { "" } else { "s" },
            self.total_rows
        )?;
        for row in self.bad.iter().take(MAX_LISTED_BAD_ROWS) {
            write!(f, "\n  line {}: {}", row.line, row.reason)?;
        }
        if self.bad.len() > MAX_LISTED_BAD_ROWS {
            write!(
                f,
                "\n  ... and {} more",
                self.bad.len() - MAX_LISTED_BAD_ROWS
            )?;
        }
        Ok(())
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
