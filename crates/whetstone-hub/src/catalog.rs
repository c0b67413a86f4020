//! The curated list of models Whetstone offers, from `catalog.toml` compiled into the binary.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CATALOG_TOML: &str = include_str!("../catalog.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub name: String,
    /// Hub repo id, `org/name`.
    pub repo: String,
    pub parameters: u64,
    /// `llama`, `mistral`, `qwen2`, `gemma` or `gemma2`: the families the engine trains.
    pub architecture: String,
    /// Longest context the model was trained for, in tokens.
    pub context_length: u64,
    /// The license's short name as the hub spells it.
    pub license: String,
    /// Whether the license lets a business use the model or what it writes.
    pub commercial_use: bool,
    /// The hub asks users to accept the license (and sign in) before downloading.
    pub gated: bool,
    /// Layers that get adapters by default, in the engine's short names.
    pub lora_targets: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_note: Option<String>,
    pub shape: CatalogShape,
}

/// Enough of `config.json` to plan memory before anything is downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CatalogShape {
    pub hidden: u64,
    pub intermediate: u64,
    pub layers: u64,
    pub heads: u64,
    pub kv_heads: u64,
    /// Per-head width where it is not hidden/heads (Gemma's 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    pub vocab: u64,
    pub tied_embeddings: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    model: Vec<CatalogEntry>,
}

/// Every catalog entry, in the file's order.
pub fn catalog() -> &'static [CatalogEntry] {
    static CATALOG: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The file is part of the source tree and checked by the crate's tests, so a parse failure is
        // a build defect, not user input.
        toml::from_str::<CatalogFile>(CATALOG_TOML).expect("catalog.toml is valid").model
    })
}

/// The entry for a repo id (case-insensitive, as the hub treats them) or a catalog name.
pub fn find(repo_or_name: &str) -> Option<&'static CatalogEntry> {
    catalog()
        .iter()
        .find(|e| e.repo.eq_ignore_ascii_case(repo_or_name) || e.name.eq_ignore_ascii_case(repo_or_name))
}

/// Whether a license allows commercial use, for the licenses models commonly carry.
pub fn commercial_use_of(license: &str) -> Option<bool> {
    let l = license.to_ascii_lowercase();
    if l.contains("-nc") || l.contains("non-commercial") || l.contains("noncommercial") || l == "qwen-research" || l.starts_with("cc-by-nc") {
        return Some(false);
    }
    match l.as_str() {
        "apache-2.0" | "mit" | "bsd-3-clause" | "bsd-2-clause" | "openrail" | "bigscience-openrail-m" | "creativeml-openrail-m"
        | "cc-by-4.0" | "cc-by-sa-4.0" | "cc0-1.0" | "llama2" | "llama3" | "llama3.1" | "llama3.2" | "llama3.3" | "gemma" | "qwen" => Some(true),
        _ => None,
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses_map_to_commercial_use() {
        assert_eq!(commercial_use_of("apache-2.0"), Some(true));
        assert_eq!(commercial_use_of("qwen-research"), Some(false));
        assert_eq!(commercial_use_of("cc-by-nc-4.0"), Some(false));
        assert_eq!(commercial_use_of("llama3.2"), Some(true));
        assert_eq!(commercial_use_of("other"), None);
    }
}
