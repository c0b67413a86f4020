#![allow(dead_code)]
//! Fixtures shared by the end-to-end tests of `whet`.

pub mod http;

use candle_core::Device;
use std::path::{Path, PathBuf};
use whetstone_engine::weights::BaseWeights;
use whetstone_engine::{Architecture, ModelConfig};

/// A 2-layer, 32-wide Llama with random weights and SmolLM2's tokenizer (from the bundled GGUF), as
/// an HF folder: it trains in milliseconds per step through the same code as a real model.
pub fn tiny_model(dir: &Path) -> PathBuf {
    let gguf = whetstone_api::default_model_path().expect("HOME is set");
    assert!(gguf.is_file(), "the bundled model {} is missing; run scripts/setup.sh", gguf.display());
    let tok = whetstone_data::Tokenizer::from_gguf_file(&gguf).unwrap();
    let m = dir.join("tiny-model");
    std::fs::create_dir_all(&m).unwrap();
    tok.inner().save(m.join("tokenizer.json"), false).unwrap();
    std::fs::write(m.join("tokenizer_config.json"), r#"{"bos_token": null, "eos_token": "<|im_end|>", "add_bos_token": false}"#).unwrap();
    let cfg = ModelConfig { vocab_size: 49152, tie_word_embeddings: true, max_position_embeddings: 256, ..ModelConfig::tiny(Architecture::Llama) };
    std::fs::write(
        m.join("config.json"),
        serde_json::json!({
            "model_type": "llama", "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
            "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.num_kv_heads,
            "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta, "hidden_act": "silu",
            "max_position_embeddings": cfg.max_position_embeddings, "tie_word_embeddings": true,
            "bos_token_id": 1, "eos_token_id": 2
        })
        .to_string(),
    )
    .unwrap();
    let w = BaseWeights::random(&cfg, 11, &Device::Cpu).unwrap();
    let mut tensors: Vec<(String, candle_core::Tensor)> = w.tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    whetstone_engine::lora::write_safetensors(&m.join("model.safetensors"), &tensors).unwrap();
    m
}

pub fn samples(name: &str, rows: usize, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples").join(name);
    let text: String = std::fs::read_to_string(src).unwrap().lines().take(rows).map(|l| format!("{l}\n")).collect();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

