#![allow(dead_code)]
//! A real tiny training run shared by the evaluation and review tests.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use whetstone_api::{Api, StartRun, WorkerCommand};

pub struct Trained {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub api: Api,
    pub model: PathBuf,
    pub run: i64,
    pub adapter: PathBuf,
}

fn samples(dir: &Path, rows: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/instructions.jsonl");
    let text: String = std::fs::read_to_string(src).unwrap().lines().take(rows).map(|l| format!("{l}\n")).collect();
    let p = dir.join("listings.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

/// Imports 30 rows, splits them, and trains four steps on the train split in this process (the worker
/// command only has to exit; the test runs the worker itself).
pub fn trained() -> Trained {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let api = Api::open(&root.join("home")).unwrap().with_default_model_path(None);
    let model = root.join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let data = samples(&root, 30);
    api.dispatch("data_import", json!({"path": data, "name": "listings"})).unwrap();
    api.dispatch("data_split", json!({"dataset": "listings", "val": 0.1, "test": 0.2, "seed": 1})).unwrap();
    let req: StartRun = serde_json::from_value(json!({
        "model": model, "data": "listings",
        "settings": {"steps": 4, "batch": 2, "max-len": 512, "lora-r": 4, "lr": 0.005, "seed": 3, "threads": 1}
    }))
    .unwrap();
    let run = api.start_run_with(&req, &WorkerCommand { program: PathBuf::from("/bin/true"), args: vec![] }).unwrap();
    let status = whetstone_api::worker::run_worker(Path::new(&run.out_dir), Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(status.as_str(), "completed");
    let adapter = Path::new(&run.out_dir).join("adapter");
    Trained { _dir: dir, root, api, model, run: run.id, adapter }
}

