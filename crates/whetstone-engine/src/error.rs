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
    /// The device a run asked for cannot be used here; says why in plain words.
    #[error("{0}")]
    Device(String),
    /// Training produced NaN or infinite values where a result must be finite.
    #[error("{0}")]
    NonFinite(String),
    /// A broken invariant of the engine itself, not something the user set or supplied.
    #[error("internal error: {0}")]
    Internal(String),
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
            Error::Device(_) => "device_unavailable",
            Error::NonFinite(_) => "non_finite",
            Error::Internal(_) => "internal",
            Error::Tensor(_) => "compute",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_own_stable_code() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let cases = [
            (Error::io("a", io()), "io"),
            (Error::model("m", "bad"), "bad_model"),
            (Error::MissingTensor { name: "w".into(), path: "m".into() }, "bad_model"),
            (Error::TensorShape { name: "w".into(), expected: vec![1], actual: vec![2] }, "bad_model"),
            (Error::UnsupportedArchitecture("gpt2".into()), "unsupported_model"),
            (Error::Config("x".into()), "bad_model_config"),
            (Error::Adapter { path: "a".into(), message: "x".into() }, "bad_adapter"),
            (Error::Checkpoint { path: "c".into(), message: "x".into() }, "bad_checkpoint"),
            (Error::Settings("x".into()), "invalid_settings"),
            (Error::Device("x".into()), "device_unavailable"),
            (Error::NonFinite("x".into()), "non_finite"),
            (Error::Internal("x".into()), "internal"),
            (Error::Tensor(candle_core::Error::Msg("x".into())), "compute"),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn non_finite_and_internal_messages_read_as_written() {
        assert_eq!(Error::NonFinite("the adapter holds NaN".into()).to_string(), "the adapter holds NaN");
        assert_eq!(Error::Internal("encoding".into()).to_string(), "internal error: encoding");
    }
}
