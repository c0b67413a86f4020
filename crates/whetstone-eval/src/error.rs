use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nothing to score: the {0} is empty")]
    Empty(&'static str),

    #[error(
        "{predictions} predictions but {references} reference sets; each prediction needs its own"
    )]
    LengthMismatch {
        predictions: usize,
        references: usize,
    },

    #[error("prediction {index} has no reference to compare against")]
    NoReferences { index: usize },

    #[error("cannot read WordNet file {}: {source}", path.display())]
    WordNetIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("WordNet file {} is malformed at {at}: {reason}", path.display())]
    WordNetFormat {
        path: PathBuf,
        at: String,
        reason: String,
    },

    #[error(
        "the ratings matrix is ragged: rater {rater} rated {got} units, rater 0 rated {expected}"
    )]
    RaggedRatings {
        rater: usize,
        got: usize,
        expected: usize,
    },

    #[error("agreement needs at least two distinct values among the ratings")]
    SingleValue,

    #[error("agreement needs at least one unit rated by two or more raters")]
    NoPairableUnit,

    #[error("{0}")]
    Invalid(String),

    #[error("cannot read {}: {source}", path.display())]
    InputIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}, line {line}: {reason}", path.display())]
    InputLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("{}, line {line}: id `{id}` has no {wanted} in {}", path.display(), other.display())]
    MissingId {
        path: PathBuf,
        line: usize,
        id: String,
        /// "reference" or "prediction".
        wanted: &'static str,
        other: PathBuf,
    },

    #[error("{}, line {line}: a second prediction for id `{id}` (the first is on line {first_line}); give one prediction per id", path.display())]
    DuplicateId {
        path: PathBuf,
        line: usize,
        first_line: usize,
        id: String,
    },
}

impl Error {
    /// Stable machine-readable code; never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty(_) => "eval_empty",
            Error::LengthMismatch { .. } => "eval_length_mismatch",
            Error::NoReferences { .. } => "eval_no_references",
            Error::WordNetIo { .. } => "eval_wordnet_io",
            Error::WordNetFormat { .. } => "eval_wordnet_format",
            Error::RaggedRatings { .. } => "eval_ragged_ratings",
            Error::SingleValue => "eval_single_value",
            Error::NoPairableUnit => "eval_no_pairable_unit",
            Error::Invalid(_) => "invalid_input",
            Error::InputIo { .. } => "eval_io",
            Error::InputLine { .. } => "eval_bad_line",
            Error::MissingId { .. } => "eval_missing_id",
            Error::DuplicateId { .. } => "eval_duplicate_id",
        }
    }
}
