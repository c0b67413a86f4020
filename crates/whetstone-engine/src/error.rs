use std::path::PathBuf;

/// Everything the engine can fail with. Variants name the file, tensor or setting at fault so that the
/// message can be shown to a user as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model at {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("unsupported model type `{0}`: Whetstone trains the Llama family (llama, mistral, qwen2, smollm)")]
    UnsupportedArchitecture(String),
    #[error("model config: {0}")]
    Config(String),
    #[error("missing tensor `{name}` in {path}")]
    MissingTensor { name: String, path: PathBuf },
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape { name: String, expected: Vec<usize>, actual: Vec<usize> },
    #[error("adapter at {path}: {message}")]
    Adapter { path: PathBuf, message: String },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("training settings: {0}")]
    Settings(String),
    #[error("tensor computation: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model { path: path.into(), message: message.into() }
    }

    /// A stable, machine-readable code for the UI's `{code, message}`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Model { .. } | Error::MissingTensor { .. } | Error::TensorShape { .. } => "bad_model",
            Error::UnsupportedArchitecture(_) => "unsupported_model",
            Error::Config(_) => "bad_model_config",
            Error::Adapter { .. } => "bad_adapter",
            Error::Checkpoint { .. } => "bad_checkpoint",
            Error::Settings(_) => "invalid_settings",
            Error::Tensor(_) => "compute",
        }
    }
}
