use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, ExportError>;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the model's chat template is not one Whetstone can translate for Ollama ({reason}); known formats: {known}. \
         The GGUF file keeps the model's own template, which llama.cpp applies as it is; only the Ollama Modelfile needs this translation"
    )]
    UnknownChatTemplate { reason: String, known: String },

    #[error("the {field} of the Modelfile cannot be written so that Ollama reads it back unchanged: {reason}")]
    Unrepresentable { field: String, reason: String },

    #[error("the Modelfile does not parse (line {line}): {reason}")]
    ModelfileSyntax { line: usize, reason: String },

    #[error("{} already holds files; choose an empty folder or allow overwriting", path.display())]
    FolderNotEmpty { path: PathBuf },

    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

impl ExportError {
    /// Stable machine-readable code; never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::UnknownChatTemplate { .. } => "unknown_chat_template",
            ExportError::Unrepresentable { .. } => "modelfile_unrepresentable",
            ExportError::ModelfileSyntax { .. } => "modelfile_syntax",
            ExportError::FolderNotEmpty { .. } => "folder_not_empty",
            ExportError::Io { .. } => "export_io",
            ExportError::Invalid(_) => "invalid_input",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}
