//! `whet train --config FILE` in the words people copy from PEFT and the HF Trainer, in TOML, YAML
//! and JSON: settings are taken, keys that do not apply here warn, a misspelt key stops the run
//! before anything is created and names the closest key.

use std::path::Path;
use std::process::Command;

mod common;
use common::{samples, tiny_model};

fn whet(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_whet")).arg("--home").arg(home).args(args).output().unwrap()
}

#[test]
fn a_peft_and_trainer_config_in_each_format_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = tiny_model(root);
    let data = samples("instructions.jsonl", 8, root);
    let files = [
        ("cfg.yaml", "r: 4\nlora_alpha: 8\ntarget_modules: [q_proj, v_proj]\nbias: none\ntask_type: CAUSAL_LM\nmax_steps: 2\nper_device_train_batch_size: 2\nlearning_rate: 0.001\nlr_scheduler_type: linear\nwarmup_ratio: 0.5\nfp16: true\nlogging_steps: 1\nseed: 5\nmax_seq_length: 128\n"),
        ("cfg.toml", "r = 4\nlora_alpha = 8\ntarget_modules = [\"q_proj\", \"v_proj\"]\nmax_steps = 2\nper_device_train_batch_size = 2\nlearning_rate = 0.001\nlr_scheduler_type = \"linear\"\nwarmup_ratio = 0.5\nfp16 = true\nlogging_steps = 1\nseed = 5\nmax-len = 128\n"),
        ("cfg.json", r#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 0.001, "lr_scheduler_type": "linear", "warmup_ratio": 0.5, "fp16": true, "logging_steps": 1, "seed": 5, "max_len": 128}"#),
    ];
    for (name, text) in files {
        let cfg = root.join(name);
        std::fs::write(&cfg, text).unwrap();
        let out = root.join(format!("run-{name}"));
        let o = whet(&root.join("home"), &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--threads", "1"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        assert!(err.contains("`fp16`: this build trains on the CPU in f32"), "{name}: {err}");
        assert!(err.contains("`logging_steps`"), "{name}: {err}");
        let adapter: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("adapter/adapter_config.json")).unwrap()).unwrap();
        assert_eq!(adapter["r"], 4, "{name}");
        assert_eq!(adapter["lora_alpha"], 8.0, "{name}");
        assert_eq!(adapter["target_modules"], serde_json::json!(["q_proj", "v_proj"]), "{name}");
        // Warm-up of half the 2 steps: the first step's learning rate is 0.
        let first: serde_json::Value = serde_json::from_str(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(first["lr"], 0.0, "{name}: {first}");
    }
}

#[test]
fn a_misspelt_key_stops_before_anything_is_created_and_names_the_closest_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = tiny_model(root);
    let data = samples("instructions.jsonl", 8, root);
    let cfg = root.join("cfg.yaml");
    std::fs::write(&cfg, "r: 4\nlerning_rate: 0.001\n").unwrap();
    let out = root.join("run");
    let o = whet(&root.join("home"), &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cfg.yaml: unknown setting `lerning_rate`; did you mean `learning_rate`?"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_preset_sized_for_the_data_trains_with_a_file_and_flags_on_top_and_risky_values_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = tiny_model(root);
    let data = samples("instructions.jsonl", 6, root);
    let cfg = root.join("cfg.toml");
    std::fs::write(&cfg, "r = 4\n").unwrap();
    let out = root.join("run");
    let o = whet(
        &root.join("home"),
        &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--preset", "quick-test", "--config", cfg.to_str().unwrap(), "--lr", "0.01", "--max-len", "128", "--out", out.to_str().unwrap(), "--threads", "1"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // The same words the app shows beside the field.
    assert!(err.contains("warning: lr = 0.01: Above 0.001 training often becomes unstable"), "{err}");
    assert!(!err.contains("lora-r ="), "4 is within the safe range: {err}");
    let job: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("job.json")).unwrap()).unwrap();
    let s = &job["settings"];
    // The preset's steps for 6 examples (each seen at most 10 times), the file's rank, the flag's rate.
    let per_step = s["batch"].as_u64().unwrap() * s["grad-accum"].as_u64().unwrap();
    assert_eq!(s["steps"], (60 / per_step).min(20));
    assert_eq!((s["lora-r"].as_u64(), s["lr"].as_f64()), (Some(4), Some(0.01)));

    let o = whet(&root.join("home"), &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--preset", "fastest"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown preset `fastest`: quick-test, balanced or thorough"));
}

#[test]
fn settings_saved_by_the_app_train_as_exactly_those_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = tiny_model(root);
    let data = samples("instructions.jsonl", 6, root);
    let home = root.join("home");
    let api = whetstone_api::Api::open(&home).unwrap();
    let settings = serde_json::json!({
        "steps": 2, "epochs": 3, "lr": 0.0007, "batch": 2, "grad-accum": 1, "max-len": 128, "lora-r": 4,
        "lora-alpha": 12.0, "lora-dropout": 0.0, "targets": "q,v", "rslora": true, "scheduler": "linear",
        "warmup": 1, "warmup-ratio": null, "seed": 5, "grad-checkpoint": false, "weight-decay": 0.01,
        "max-grad-norm": 0.5, "threads": 1, "quant": "none", "eval-every": 0, "save-every": 0,
        "keep-checkpoints": 1, "patience": 0, "min-delta": 0.0, "load-best-at-end": false,
        "max-bad-steps": 3, "strict-rows": false, "truncate-prompt": true, "device": "cpu"
    });
    for name in ["saved.toml", "saved.yaml", "saved.json"] {
        let cfg = root.join(name);
        api.dispatch("config_save", serde_json::json!({"path": cfg, "settings": settings})).unwrap();
        let out = root.join(format!("run-{name}"));
        let o = whet(&home, &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        assert!(!err.contains("warning"), "{name}: nothing in a saved file goes unused: {err}");
        let job: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("job.json")).unwrap()).unwrap();
        assert_eq!(job["settings"], settings, "{name}");
    }
}
