//! The curated list of models Whetstone offers, from `catalog.toml` compiled into the binary.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CATALOG_TOML: &str = include_str!("../catalog.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub name: String,
    /// Hub repo id, `org/name`.
    pub repo: String,
    pub parameters: u64,
    /// `llama`, `mistral` or `qwen2`: the families the engine trains.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogShape {
    pub hidden: u64,
    pub intermediate: u64,
    pub layers: u64,
    pub heads: u64,
    pub kv_heads: u64,
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
