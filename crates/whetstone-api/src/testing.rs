//! Model folders for tests of this crate and of the CLI: random weights of a small Llama shape
//! and a byte-level tokenizer, so a test can pull, import and train without any download.

use crate::error::Result;
use std::path::Path;
use whetstone_engine::{Architecture, ModelConfig};

/// The shape of [`write_tiny_model`]: 320 tokens (256 bytes and 3 chat markers, padded).
pub fn tiny_config() -> ModelConfig {
    let mut c = ModelConfig::tiny(Architecture::Llama);
    c.vocab_size = 320;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.max_position_embeddings = 1024;
    c.bos_token_id = None;
    c.eos_token_ids = vec![258];
    c
}

/// Writes `config.json`, `model.safetensors`, `tokenizer.json` and `tokenizer_config.json`.
pub fn write_tiny_model(dir: &Path) -> Result<()> {
    crate::plan::write_random_model(dir, &tiny_config(), 3)?;
    let io = |path: std::path::PathBuf, source| crate::Error::Io { action: "write", path, source };
    let p = dir.join("tokenizer.json");
    std::fs::write(&p, byte_level_tokenizer().to_string()).map_err(|e| io(p.clone(), e))?;
    let p = dir.join("tokenizer_config.json");
    let cfg = serde_json::json!({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": null});
    std::fs::write(&p, cfg.to_string()).map_err(|e| io(p.clone(), e))?;
    Ok(())
}

/// GPT-2's byte-level BPE with no merges: every byte is a token (id = byte value), plus
/// `<|endoftext|>` (256), `<|im_start|>` (257) and `<|im_end|>` (258).
pub fn byte_level_tokenizer() -> serde_json::Value {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let vocab: serde_json::Map<String, serde_json::Value> = bs
        .iter()
        .zip(&cs)
        .map(|(b, c)| (char::from_u32(*c).unwrap_or('?').to_string(), serde_json::json!(b)))
        .collect();
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(256, "<|endoftext|>"), special(257, "<|im_start|>"), special(258, "<|im_end|>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []}
    })
}
