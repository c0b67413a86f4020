#![allow(dead_code)]

use std::path::PathBuf;

use whetstone_export::axolotl::{DatasetKind, JobInput, Length, Method, Schedule};
use whetstone_export::probe::ProbeRenderings;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Probe renderings of published chat templates, made by `scripts/export/render_probes.py`.
pub fn probes() -> Vec<(String, ProbeRenderings)> {
    let text = std::fs::read_to_string(fixture("probes.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let name = v["name"].as_str().unwrap().to_string();
            (name, serde_json::from_value(v).unwrap())
        })
        .collect()
}

pub fn probe(name: &str) -> ProbeRenderings {
    probes()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no probe fixture {name}"))
        .1
}

/// A QLoRA chat job with an eval file.
pub fn job() -> JobInput {
    JobInput {
        base_model: "HuggingFaceTB/SmolLM2-135M-Instruct".into(),
        method: Method::Qlora,
        lora_r: 16,
        lora_alpha: 32.0,
        lora_dropout: 0.05,
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"]
            .map(String::from)
            .to_vec(),
        dataset: DatasetKind::Chat,
        train_file: "data/train.jsonl".into(),
        eval_file: Some("data/eval.jsonl".into()),
        val_set_size: None,
        eval_steps: Some(50),
        sequence_len: 1024,
        micro_batch_size: 4,
        gradient_accumulation_steps: 2,
        length: Length::Epochs(3.0),
        learning_rate: 0.0002,
        schedule: Schedule::Cosine,
        warmup_steps: 10,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        seed: 42,
        gradient_checkpointing: true,
        output_dir: "./outputs/lora".into(),
        decoder_layer_class: Some("LlamaDecoderLayer".into()),
    }
}
