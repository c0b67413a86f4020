#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use whetstone_data::Tokenizer;

pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The bundled model: `WHETSTONE_DEFAULT_MODEL`, else `${XDG_CACHE_HOME:-$HOME/.cache}/whetstone/models/`.
/// A missing model fails the test: these tests exist to check the real tokenizer.
pub fn model_path() -> PathBuf {
    let path = match std::env::var_os("WHETSTONE_DEFAULT_MODEL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
                });
            cache.join("whetstone").join("models").join(MODEL_FILE)
        }
    };
    assert!(
        path.is_file(),
        "the bundled model {} is missing; run scripts/setup.sh to download it (or set WHETSTONE_DEFAULT_MODEL)",
        path.display()
    );
    path
}

pub fn smollm2() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        Tokenizer::from_gguf_file(model_path()).expect("load the bundled model's tokenizer")
    })
}

pub fn fixture() -> serde_json::Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_reference.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}
