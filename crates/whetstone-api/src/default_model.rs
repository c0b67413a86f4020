//! The small model Whetstone ships with, read from its real GGUF header.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DefaultModel {
    pub path: PathBuf,
    /// The file name without `.gguf`: GGUF `general.name` is often a training-run label.
    pub name: String,
    pub architecture: String,
    /// Sum of the element counts of every tensor in the file.
    pub parameters: u64,
    pub context_length: Option<u64>,
    /// SPDX id from `general.license`; `None` when the file does not say.
    pub license: Option<String>,
    pub file_bytes: u64,
}

/// `$WHETSTONE_DEFAULT_MODEL`, else `${XDG_CACHE_HOME:-$HOME/.cache}/whetstone/models/<file>`,
/// the place setup extracts it to.
pub fn default_model_path() -> Option<PathBuf> {
    if let Some(p) = non_empty_env("WHETSTONE_DEFAULT_MODEL") {
        return Some(PathBuf::from(p));
    }
    let cache = non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))?;
    Some(cache.join("whetstone").join("models").join(DEFAULT_MODEL_FILE))
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the model description from the GGUF header at `path`; `Ok(None)` when there is no file.
pub fn read_default_model(path: &Path) -> Result<Option<DefaultModel>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                action: "open the default model",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let file_bytes = file
        .metadata()
        .map_err(|source| Error::Io {
            action: "read the size of the default model",
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let invalid = |reason: String| Error::InvalidModelFile {
        path: path.to_path_buf(),
        reason,
    };
    let content = Content::read(&mut file).map_err(|e| invalid(e.to_string()))?;

    let architecture = content
        .metadata
        .get("general.architecture")
        .ok_or_else(|| invalid("the header has no `general.architecture`".into()))?
        .to_string()
        .map_err(|e| invalid(format!("`general.architecture` is not a string: {e}")))?
        .clone();
    let context_key = format!("{architecture}.context_length");
    let context_length = match content.metadata.get(&context_key) {
        Some(v) => Some(
            v.to_u64()
                .map_err(|e| invalid(format!("`{context_key}` is not an unsigned integer: {e}")))?,
        ),
        None => None,
    };
    let license = match content.metadata.get("general.license") {
        Some(Value::String(s)) => Some(canonical_license(s)),
        Some(other) => {
            return Err(invalid(format!(
                "`general.license` is not a string: {other:?}"
            )))
        }
        None => None,
    };
    let parameters = content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .sum();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .map(|n| n.strip_suffix(".gguf").unwrap_or(&n).to_string())
        .unwrap_or_default();

    Ok(Some(DefaultModel {
        path: path.to_path_buf(),
        name,
        architecture,
        parameters,
        context_length,
        license,
        file_bytes,
    }))
}

/// GGUF converters write the Hub's lowercase license tags; show the SPDX spelling people know.
fn canonical_license(tag: &str) -> String {
    const KNOWN: &[&str] = &[
        "Apache-2.0",
        "MIT",
        "BSD-3-Clause",
        "BSD-2-Clause",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "GPL-3.0",
        "LGPL-3.0",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(tag))
        .map(|k| k.to_string())
        .unwrap_or_else(|| tag.to_string())
}
