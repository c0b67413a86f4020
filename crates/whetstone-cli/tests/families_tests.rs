//! `whet train` on the parity fixtures of the families beyond Llama and Qwen2 (Mistral with its
//! sliding window, Gemma, Gemma 2): the run completes and the loss falls.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn whet(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whet")).arg("--home").arg(home).args(args).output().expect("whet runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The fixture's base (128 tokens, no tokenizer) copied with a byte-level tokenizer cut to fit: bytes
/// 0..125 keep their ids and the three chat markers take 125..127.
fn fixture_with_tokenizer(name: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../whetstone-engine/tests/fixtures/parity").join(name);
    let m = dir.join(name);
    std::fs::create_dir_all(&m).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), m.join(f)).unwrap();
    }
    let mut tok = whetstone_api::testing::byte_level_tokenizer();
    tok["model"]["vocab"].as_object_mut().unwrap().retain(|_, id| id.as_u64().unwrap() < 125);
    for (i, t) in tok["added_tokens"].as_array_mut().unwrap().iter_mut().enumerate() {
        t["id"] = serde_json::json!(125 + i);
    }
    std::fs::write(m.join("tokenizer.json"), tok.to_string()).unwrap();
    let cfg = serde_json::json!({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": null});
    std::fs::write(m.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    m
}

// Plain ASCII below `}` so every byte has a token.
const ROWS: &str = r#"{"prompt": "Colour of the sky?", "response": "Blue, on a clear day."}
{"prompt": "Two plus two?", "response": "Four."}
{"prompt": "Capital of France?", "response": "Paris is the capital of France."}
{"prompt": "Opposite of cold?", "response": "Hot."}
"#;

#[test]
fn whet_train_lowers_the_loss_on_mistral_gemma_and_gemma2() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("rows.jsonl");
    std::fs::write(&data, ROWS).unwrap();
    for name in ["mistral", "gemma", "gemma2"] {
        let model = fixture_with_tokenizer(name, tmp.path());
        let out = tmp.path().join(format!("run-{name}"));
        let o = whet(
            &tmp.path().join("home"),
            &[
                "train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(),
                "--steps", "12", "--batch", "4", "--lr", "1e-2", "--lora-r", "8", "--lora-dropout", "0", "--warmup", "0",
                "--scheduler", "constant", "--threads", "2",
            ],
        );
        assert!(o.status.success(), "{name}: {}", text(&o));
        let losses: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
            .collect();
        assert_eq!(losses.len(), 12, "{name}");
        // The same batch every step: the loss must fall well below where it started.
        let (first, last) = (losses[0], losses[11]);
        eprintln!("{name}: whet train loss {first:.4} -> {last:.4}");
        assert!(last < first - 0.3, "{name}: loss {losses:?}");
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("adapter/adapter_config.json")).unwrap()).unwrap();
        assert_eq!(cfg["peft_type"], "LORA");
    }
}
