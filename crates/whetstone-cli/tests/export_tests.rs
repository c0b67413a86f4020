//! `whet export` end to end on a run of a tiny random model with SmolLM2's tokenizer: every format
//! is written, read back (our loader for merged and GGUF files, candle's GGUF reader for the LoRA),
//! and checked against the in-app model; a folder that holds anything is never written over unasked.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{samples, tiny_model};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Env {
    fn whet(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_whet")).arg("--home").arg(&self.home).args(args).output().expect("whet runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.whet(args);
        assert!(o.status.success(), "whet {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn export(&self, format: &str, out: &Path, extra: &[&str]) -> Value {
        let mut args = vec!["export", "1", "--format", format, "--out", out.to_str().unwrap(), "--json"];
        args.extend(extra);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }
}

/// One trained run shared by the tests of this file: training is the slow part.
fn trained() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let env = Env { home: root.join("home"), root: root.clone(), _tmp: tmp };
    let model = tiny_model(&root);
    let data = samples("instructions.jsonl", 16, &root);
    let val = samples("instructions_val.jsonl", 4, &root);
    let out = root.join("run");
    env.ok(&[
        "train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--val", val.to_str().unwrap(),
        "--out", out.to_str().unwrap(), "--steps", "8", "--batch", "2", "--max-len", "128", "--lora-r", "4",
        "--lr", "5e-3", "--seed", "3", "--threads", "1",
    ]);
    assert!(out.join("adapter/adapter_config.json").is_file());
    env
}

fn files(report: &Value) -> Vec<String> {
    report["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

#[test]
fn every_format_is_written_and_reads_back() {
    let env = trained();

    // PEFT: the run's adapter, byte for byte, with a card.
    let peft = env.root.join("out-peft");
    let r = env.export("peft", &peft, &[]);
    assert_eq!(std::fs::read(peft.join("adapter_model.safetensors")).unwrap(), std::fs::read(env.root.join("run/adapter/adapter_model.safetensors")).unwrap());
    assert!(files(&r).contains(&"README.md".to_string()));
    let card = std::fs::read_to_string(peft.join("README.md")).unwrap();
    assert!(card.starts_with("---\n"), "{card}");

    // Merged f32: the same answers and perplexity as base + adapter in the app.
    let merged = env.root.join("out-merged");
    let r = env.export("merged", &merged, &["--dtype", "f32"]);
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md"] {
        assert!(merged.join(f).is_file(), "merged export lacks {f}");
    }
    let rt = &r["round_trip"];
    assert!(rt["same_prompt_ids"].as_bool().unwrap());
    assert!(rt["prompts"].as_array().unwrap().len() >= 2);
    assert!(rt["prompts"].as_array().unwrap().iter().all(|p| p["same"].as_bool().unwrap()), "{rt}");
    assert!(rel(rt["exported_perplexity"].as_f64().unwrap(), rt["in_app_perplexity"].as_f64().unwrap()) < 1e-4, "{rt}");
    assert!(rt["max_logit_diff"].as_f64().unwrap() < 1e-4, "{rt}");

    // GGUF f16, and the adapter alone as a llama.cpp LoRA.
    let gguf = env.root.join("out-gguf");
    let r = env.export("gguf", &gguf, &["--quant", "f16"]);
    let names = files(&r);
    let model_file = names.iter().find(|f| f.ends_with("-f16.gguf")).expect("the model's GGUF").clone();
    assert!(names.contains(&"adapter-lora.gguf".to_string()));
    let rt = &r["round_trip"];
    assert!(rt["same_prompt_ids"].as_bool().unwrap(), "the tokenizer travelled in the GGUF metadata: {rt}");
    assert!(rel(rt["exported_perplexity"].as_f64().unwrap(), rt["in_app_perplexity"].as_f64().unwrap()) < 1e-2, "{rt}");
    let mut f = std::fs::File::open(gguf.join(&model_file)).unwrap();
    let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    assert_eq!(ct.metadata["tokenizer.ggml.pre"].to_string().unwrap(), "smollm");
    assert_eq!(ct.metadata["general.architecture"].to_string().unwrap(), "llama");
    let mut f = std::fs::File::open(gguf.join("adapter-lora.gguf")).unwrap();
    let lora = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    assert_eq!(lora.metadata["adapter.type"].to_string().unwrap(), "lora");
    assert_eq!(lora.tensor_infos["blk.0.attn_q.weight.lora_a"].shape.dims(), &[4, 32]);

    // Ollama: q4_k_m GGUF with a Modelfile speaking the model's chat format.
    let ollama = env.root.join("out-ollama");
    let r = env.export("ollama", &ollama, &["--quant", "q4_k_m"]);
    let modelfile = std::fs::read_to_string(ollama.join("Modelfile")).unwrap();
    assert!(modelfile.starts_with("FROM ./") && modelfile.contains("-q4_k_m.gguf"), "{modelfile}");
    assert!(modelfile.contains("<|im_start|>") && modelfile.contains("PARAMETER stop"), "{modelfile}");
    assert!(r["commands"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with("ollama create")));
    assert!(r["round_trip"]["same_prompt_ids"].as_bool().unwrap());

    // Axolotl: the job and its rows.
    let ax = env.root.join("out-axolotl");
    let r = env.export("axolotl", &ax, &["--gpus-per-node", "4", "--nodes", "2", "--parallelism", "zero2", "--main-process-ip", "10.0.0.1"]);
    assert!(files(&r).iter().any(|f| f.ends_with("config.yml")));
    let config = std::fs::read_to_string(ax.join("axolotl/config.yml")).unwrap();
    assert!(config.contains("lora_r: 4"), "{config}");
    let train = std::fs::read_to_string(ax.join("axolotl/data/train.jsonl")).unwrap();
    assert_eq!(train.lines().count(), 16);
    let launch = std::fs::read_to_string(ax.join("axolotl/launch.sh")).unwrap();
    assert!(launch.contains("--num_processes 8"), "{launch}");
}

#[test]
fn exports_never_write_over_what_the_user_has_unasked() {
    let env = trained();
    let out = env.root.join("mine");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    let o = env.whet(&["export", "1", "--format", "peft", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already holds files") && err.contains("--overwrite"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "keep me");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    // Nothing half-written is left beside it either.
    let leftovers: Vec<_> = std::fs::read_dir(&env.root).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with(".mine")).collect();
    assert!(leftovers.is_empty());

    // Asked: the folder becomes the export.
    env.ok(&["export", "1", "--format", "peft", "--out", out.to_str().unwrap(), "--overwrite"]);
    assert!(out.join("adapter_model.safetensors").is_file());

    // A run that does not exist, a format that does not, a quantization that does not.
    let o = env.whet(&["export", "7", "--format", "peft", "--out", env.root.join("x").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no run with id 7"));
    let o = env.whet(&["export", "1", "--format", "onnx", "--out", env.root.join("x").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown export format `onnx`"));
    let o = env.whet(&["export", "1", "--format", "gguf", "--quant", "q3", "--out", env.root.join("x").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown GGUF quantization `q3`"));
    assert!(!env.root.join("x").exists());
}

#[test]
fn the_model_card_traces_an_imported_dataset_from_its_file_to_the_version_trained_on() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let env = Env { home: root.join("home"), root: root.clone(), _tmp: tempfile::tempdir().unwrap() };
    let model = tiny_model(&root);
    let data = samples("instructions.jsonl", 20, &root);
    env.ok(&["data", "import", data.to_str().unwrap(), "--name", "listings"]);
    env.ok(&["data", "split", "listings", "--val", "0.2", "--seed", "1"]);
    let out = root.join("run");
    env.ok(&[
        "train", "--model", model.to_str().unwrap(), "--data", "listings", "--out", out.to_str().unwrap(),
        "--steps", "2", "--batch", "2", "--max-len", "128", "--lora-r", "4", "--threads", "1",
    ]);
    let card_dir = root.join("card");
    env.export("peft", &card_dir, &[]);
    let card = std::fs::read_to_string(card_dir.join("README.md")).unwrap();
    assert!(card.contains("dataset `listings`, version 2"), "{card}");
    assert!(card.contains("import of") && card.contains("20 rows read, 0 rejected"), "{card}");
    assert!(card.contains("split into train/validation/test"), "{card}");
}
