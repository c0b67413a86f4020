//! `whet model …` and `whet plan` against a hub on 127.0.0.1, and training what was pulled.

use std::path::Path;
use std::process::{Command, Output};
use whetstone_hub::testing::{TestHub, TestRepo};

const REPO: &str = "test-org/tiny-llama";

struct Env {
    dir: tempfile::TempDir,
    hub: TestHub,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("upload");
        whetstone_api::testing::write_tiny_model(&folder).unwrap();
        let hub = TestHub::start(None);
        hub.add(TestRepo::from_dir(REPO, &folder).unwrap());
        Env { dir, hub }
    }

    fn whet(&self, args: &[&str]) -> Output {
        let home = self.dir.path().join("home");
        Command::new(env!("CARGO_BIN_EXE_whet"))
            .arg("--home")
            .arg(&home)
            .args(args)
            .env("HF_ENDPOINT", &self.hub.url)
            .env("HF_HUB_CACHE", self.dir.path().join("hf-cache"))
            .env("HF_HOME", self.dir.path().join("hf-home"))
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env("WHETSTONE_DEVICE", "cpu")
            .output()
            .expect("whet runs")
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/instructions.jsonl")
}

#[test]
fn a_model_pulled_from_the_hub_trains_with_whet_train() {
    let env = Env::new();
    let found = env.whet(&["model", "search", "tiny"]);
    assert!(found.status.success() && text(&found).contains(REPO) && text(&found).contains("apache-2.0"), "{}", text(&found));

    let pulled = env.whet(&["model", "pull", REPO, "--json"]);
    let model = json(&pulled);
    assert!(String::from_utf8_lossy(&pulled.stderr).contains("done"), "no progress on stderr: {}", text(&pulled));
    assert_eq!(model["source"], "hub");
    assert_eq!(model["repo_id"], REPO);
    let path = model["path"].as_str().unwrap().to_string();
    assert!(Path::new(&path).join("model.safetensors").is_file());

    let listed = json(&env.whet(&["model", "list", "--json"]));
    assert_eq!(listed[0]["repo_id"], REPO);
    assert_eq!(json(&env.whet(&["models", "list", "--json"])), listed, "the old spelling still works");

    let plan = json(&env.whet(&["plan", "--model", REPO, "--data", samples().to_str().unwrap(), "--batch", "2", "--max-len", "512", "--device", "cpu", "--json"]));
    assert_eq!(plan["fit"], "fits");
    assert_eq!(plan["dataset"]["examples"], 400);
    assert!(plan["seq_len"].as_u64().unwrap() <= 512);

    // Trained by its hub id, as the store knows it.
    let out = env.dir.path().join("run");
    let o = env.whet(&[
        "train", "--model", REPO, "--data", samples().to_str().unwrap(), "--out", out.to_str().unwrap(),
        "--steps", "2", "--batch", "2", "--max-len", "512", "--threads", "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("adapter/adapter_model.safetensors").is_file(), "{}", text(&o));
    assert!(out.join("adapter/adapter_config.json").is_file());
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().filter(|l| l.contains("\"step\"")).count(), 2, "{metrics}");
}

#[test]
fn pull_errors_name_the_file_or_the_license_page() {
    let env = Env::new();
    let o = env.whet(&["model", "pull", REPO, "--file", "model-00009-of-00009.safetensors"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("model-00009-of-00009.safetensors"), "{}", text(&o));

    let folder = env.dir.path().join("upload");
    env.hub.add(TestRepo::from_dir("meta-test/locked", &folder).unwrap().gated());
    let o = env.whet(&["model", "pull", "meta-test/locked"]);
    assert!(!o.status.success());
    assert!(text(&o).contains(&format!("{}/meta-test/locked", env.hub.url)), "{}", text(&o));

    let o = env.whet(&["model", "pull", REPO, "--offline"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("offline"), "{}", text(&o));

    let o = env.whet(&["train", "--model", "no-such-model", "--data", samples().to_str().unwrap(), "--out", "/nonexistent/x", "--steps", "1"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no-such-model"), "{}", text(&o));
}

#[test]
fn import_adds_a_local_folder() {
    let env = Env::new();
    let folder = env.dir.path().join("upload");
    let m = json(&env.whet(&["model", "import", folder.to_str().unwrap(), "--json"]));
    assert_eq!(m["source"], "local");
    assert_eq!(m["architecture"], "llama");
    let o = env.whet(&["model", "import", env.dir.path().join("nothing").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("nothing"), "{}", text(&o));
}
