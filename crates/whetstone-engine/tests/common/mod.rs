//! What several test binaries share: the bundled model and the transformers parity fixtures.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// The bundled SmolLM2 model: `WHETSTONE_DEFAULT_MODEL`, else the cache folder `scripts/setup.sh` fills.
pub fn bundled_model() -> PathBuf {
    let path = match std::env::var_os("WHETSTONE_DEFAULT_MODEL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
            cache.join("whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    assert!(
        path.is_file(),
        "the bundled model {} is missing; run scripts/setup.sh to download it (or set WHETSTONE_DEFAULT_MODEL)",
        path.display()
    );
    path
}

/// A parity fixture's folder under `tests/fixtures/parity` (made by `scripts/parity/`).
pub fn parity_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name)
}

/// A parity fixture's inputs and transformers' outputs (`io.safetensors`), with the labels made
/// into the loss mask the engine takes (1 where a label is not -100).
pub struct ParityIo {
    pub io: HashMap<String, Tensor>,
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub loss_mask: Tensor,
    /// Tokens with a label.
    pub targets: usize,
}

pub fn parity_io(name: &str) -> ParityIo {
    let path = parity_dir(name).join("io.safetensors");
    let io = candle_core::safetensors::load(&path, &Device::Cpu).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let tensor = |key: &str| io.get(key).unwrap_or_else(|| panic!("{} has no tensor {key}", path.display())).clone();
    let input_ids = tensor("input_ids").to_dtype(DType::U32).unwrap();
    let attention_mask = tensor("attention_mask").to_dtype(DType::U32).unwrap();
    let labels: Vec<Vec<i64>> = tensor("labels").to_vec2().unwrap();
    let (b, t) = input_ids.dims2().unwrap();
    let lm: Vec<u32> = labels.iter().flatten().map(|&l| u32::from(l != -100)).collect();
    let targets = lm.iter().filter(|&&m| m == 1).count();
    let loss_mask = Tensor::from_vec(lm, (b, t), &Device::Cpu).unwrap();
    ParityIo { io, input_ids, attention_mask, loss_mask, targets }
}
