//! `whet train`, `eval loss` and `generate` on the bundled SmolLM2 model, and their errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The model the app itself falls back to, found the same way.
fn bundled_model() -> PathBuf {
    let path = whetstone_api::default_model_path().expect("HOME or XDG_CACHE_HOME is set");
    assert!(path.is_file(), "the bundled model {} is missing; run scripts/setup.sh", path.display());
    path
}

/// Runs `whet` with a home folder of its own (runs are recorded in its database).
fn whet(args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!("whet-train-tests-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_whet")).arg("--home").arg(&home).args(args).output().expect("whet runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const ROWS: &str = r#"{"prompt": "Convert 3 metres to feet.", "response": "3 metres is 9.84 feet."}
{"instruction": "Reverse the words.", "input": "red green blue", "output": "blue green red"}
{"prompt": "What is 12 times 3?", "response": "12 times 3 is 36."}
{"instruction": "Name the capital of Italy.", "output": "The capital of Italy is Rome."}
"#;

#[test]
fn train_writes_metrics_and_a_peft_adapter_that_eval_and_generate_use() {
    let model = bundled_model();
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "rows.jsonl", ROWS);
    let out = tmp.path().join("run");
    let m = model.to_str().unwrap();
    let o = whet(&[
        "train", "--model", m, "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(),
        "--steps", "3", "--batch", "2", "--lr", "1e-3", "--lora-r", "4", "--targets", "q,v", "--threads", "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"], i as u64 + 1);
        for k in ["loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"] {
            assert!(l[k].is_number(), "metrics line {i} lacks {k}: {l}");
        }
        assert!(l["loss"].as_f64().unwrap().is_finite());
    }
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("adapter/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["target_modules"], serde_json::json!(["q_proj", "v_proj"]));
    assert!(out.join("adapter/adapter_model.safetensors").is_file());

    let adapter = out.join("adapter");
    let o = whet(&["eval", "loss", "--model", m, "--adapter", adapter.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["rows"].as_array().unwrap().len(), 4);
    assert_eq!(report["rows"][1]["line"], 2);
    let loss = report["loss"].as_f64().unwrap();
    assert!((report["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-9 * loss.exp());

    let o = whet(&["generate", "--model", m, "--adapter", adapter.to_str().unwrap(), "--prompt", "What is 12 times 3?", "--max-new", "8"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
}

#[test]
fn qlora_trains_on_an_nf4_base_and_eval_uses_it() {
    let model = bundled_model();
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "rows.jsonl", ROWS);
    let out = tmp.path().join("run");
    let m = model.to_str().unwrap();
    let o = whet(&[
        "train", "--model", m, "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(),
        "--steps", "1", "--batch", "2", "--lora-r", "2", "--targets", "q,down", "--threads", "2", "--quant", "nf4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The run folder's job spec records how the base was held.
    let job: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("job.json")).unwrap()).unwrap();
    assert_eq!(job["settings"]["quant"], "nf4", "{job}");
    // The adapter keeps PEFT's layout whatever the base was held in.
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("adapter/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["target_modules"], serde_json::json!(["q_proj", "down_proj"]));
    let adapter = out.join("adapter");
    let o = whet(&["eval", "loss", "--model", m, "--adapter", adapter.to_str().unwrap(), "--data", data.to_str().unwrap(), "--quant", "nf4", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["loss"].as_f64().unwrap().is_finite());

    let o = whet(&["train", "--model", m, "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quant", "int3"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("int3") && text(&o).contains("nf4"), "{}", text(&o));
}

#[test]
fn training_settings_come_from_a_toml_file_and_unknown_keys_are_refused() {
    let model = bundled_model();
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "rows.jsonl", ROWS);
    let cfg = write(tmp.path(), "run.toml", "steps = 1\nbatch = 1\nlora-r = 2\ntargets = \"o\"\n");
    let out = tmp.path().join("run");
    let o = whet(&["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let cfg_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("adapter/adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["r"], 2);
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 1);

    let bad = write(tmp.path(), "bad.toml", "steps = 1\nlearning-rate = 0.1\n");
    let o = whet(&["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--config", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("learning-rate"), "{}", text(&o));
}

#[test]
fn clear_errors_for_missing_files_bad_rows_and_unknown_models() {
    let model = bundled_model();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let m = model.to_str().unwrap();

    let o = whet(&["train", "--model", m, "--data", "/no/such/file.jsonl", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/no/such/file.jsonl"), "{}", text(&o));

    let bad = write(tmp.path(), "bad.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\"}\n{not json\n");
    let o = whet(&["train", "--model", m, "--data", bad.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("line 2") && t.contains("line 3"), "{t}");

    let gpt2 = tmp.path().join("gpt2");
    std::fs::create_dir(&gpt2).unwrap();
    write(&gpt2, "config.json", r#"{"model_type": "gpt2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rms_norm_eps": 1e-5}"#);
    let data = write(tmp.path(), "rows.jsonl", ROWS);
    let o = whet(&["train", "--model", gpt2.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unsupported model type `gpt2`"), "{}", text(&o));

    let o = whet(&["train", "--model", "/no/such/model.gguf", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/no/such/model.gguf"), "{}", text(&o));
    assert!(!out.exists(), "nothing is written when the run cannot start");
}
