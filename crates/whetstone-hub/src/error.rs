use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{repo} is gated: accept its license at {page} while signed in, then give Whetstone an access \
         token (the hub token setting, or the HF_TOKEN environment variable){}",
        if *.had_token { "; the token given was refused, or its account has not accepted the license yet" } else { "" }
    )]
    Gated { repo: String, page: String, had_token: bool },

    #[error("the hub has no model {repo}{}", revision.as_deref().map(|r| format!(" at revision {r}")).unwrap_or_default())]
    RepoNotFound { repo: String, revision: Option<String> },

    #[error("{repo} has no file {file} at revision {revision}")]
    FileNotFound { repo: String, revision: String, file: String },

    #[error("offline: {what} is not in the download cache {cache}; connect and pull it first")]
    NotCached { what: String, cache: PathBuf },

    #[error("the download of {file} was corrupted twice in a row (expected SHA-256 {expected}, got {actual}); try again later")]
    Integrity { file: String, expected: String, actual: String },

    #[error("download cancelled")]
    Cancelled,

    #[error("cannot reach the hub at {url}: {reason}")]
    Network { url: String, reason: String },

    #[error("the hub answered {status} for {url}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Http { url: String, status: u16, message: String },

    #[error("the hub sent an answer Whetstone does not understand for {url}: {reason}")]
    BadResponse { url: String, reason: String },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Stable machine-readable code; never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Gated { .. } => "hub_gated",
            Error::RepoNotFound { .. } => "hub_repo_not_found",
            Error::FileNotFound { .. } => "hub_file_not_found",
            Error::NotCached { .. } => "hub_not_cached",
            Error::Integrity { .. } => "hub_integrity",
            Error::Cancelled => "cancelled",
            Error::Network { .. } => "hub_unreachable",
            Error::Http { .. } => "hub_http",
            Error::BadResponse { .. } => "hub_bad_response",
            Error::Io { .. } => "io",
            Error::Invalid(_) => "invalid_input",
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// Worth another try: the network or the server failed, not the request.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Network { .. } => true,
            Error::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
