//! Where `whet` trains: `whet hw` says which device and worker, `--device` and the `device` key of a
//! settings file choose, a GPU this computer cannot train on is refused in plain words (and `auto`
//! falls back to the processor), and the GPU check runs its whole code path on the CPU.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WHET: &str = env!("CARGO_BIN_EXE_whet");

fn whet(home: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(WHET);
    c.args(args).env("WHETSTONE_HOME", home).env_remove("WHETSTONE_DEVICE").env_remove("WHETSTONE_CUDA_WORKER");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Whether this machine has an NVIDIA driver; the refusals below are for machines without one.
fn has_driver() -> bool {
    whetstone_api::hardware().unwrap().cuda_driver.is_some()
}

fn engine_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../whetstone-engine/tests/fixtures")
}

#[test]
fn hw_says_where_runs_train_and_which_devices_there_are() {
    if has_driver() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let o = whet(home.path(), &["hw"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("Training: the processor (f32), by this program"), "{t}");
    assert!(t.contains("GPU worker: none (scripts/build-cuda.sh makes one"), "{t}");
    assert!(t.contains("  auto     Best available: the processor"), "{t}");
    assert!(t.contains("  cuda     An NVIDIA GPU — unavailable: No NVIDIA driver was found"), "{t}");

    let o = whet(home.path(), &["hw", "--json"], &[]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["cpu_cores"].as_u64().unwrap() > 0, "the hardware's own fields stay at the top");
    assert_eq!(v["training"]["auto"]["device"], "cpu");
    assert_eq!(v["training"]["auto"]["worker"], "cpu");
    assert_eq!(v["training"]["cuda_worker"], Value::Null);
    assert_eq!(v["cuda_driver"], Value::Null);
}

#[test]
fn a_gpu_worker_without_a_gpu_is_listed_and_the_processor_still_trains() {
    if has_driver() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    // Any file will do: without a driver the worker is never started.
    let worker = home.path().join("whetstone-worker-cuda");
    std::fs::write(&worker, "not started").unwrap();
    let o = whet(home.path(), &["hw", "--json"], &[("WHETSTONE_CUDA_WORKER", &worker)]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["training"]["cuda_worker"], worker.display().to_string());
    assert_eq!(v["training"]["auto"]["device"], "cpu");
    let cuda = v["training"]["options"].as_array().unwrap().iter().find(|o| o["value"] == "cuda").unwrap();
    assert!(cuda["problem"].as_str().unwrap().contains("No NVIDIA driver was found"), "{cuda}");
}

#[test]
fn train_on_a_gpu_this_computer_lacks_is_refused_and_creates_no_run() {
    if has_driver() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let model = common::tiny_model(root.path());
    let data = common::samples("instructions.jsonl", 4, root.path());
    let home = root.path().join("home");
    let args = |device: &str| -> Vec<String> {
        ["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--steps", "1", "--device", device].iter().map(|s| s.to_string()).collect()
    };
    let a = args("cuda");
    let o = whet(&home, &a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("No NVIDIA driver was found on this computer"), "{t}");
    assert!(!home.join("runs").exists(), "nothing was created");
    let runs = whet(&home, &["runs", "list", "--json"], &[]);
    assert_eq!(serde_json::from_slice::<Value>(&runs.stdout).unwrap(), Value::Array(vec![]));

    let a = args("tpu");
    let o = whet(&home, &a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown device `tpu`: use auto, cpu, cuda, cuda:N"), "{}", text(&o));

    // In a settings file the key is named.
    let cfg = root.path().join("settings.toml");
    std::fs::write(&cfg, "device = \"gpu:x\"\nlr = 1e-4\n").unwrap();
    let o = whet(&home, &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("`device = \"gpu:x\"`: unknown device `gpu:x`"), "{}", text(&o));
}

#[test]
fn auto_and_cpu_train_on_the_processor_and_the_run_says_so() {
    let root = tempfile::tempdir().unwrap();
    let model = common::tiny_model(root.path());
    let data = common::samples("instructions.jsonl", 4, root.path());
    let home = root.path().join("home");
    let cfg = root.path().join("settings.toml");
    std::fs::write(&cfg, "device = \"cpu\"\n").unwrap();
    let out = root.path().join("run");
    let o = whet(
        &home,
        &["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--steps", "2", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--threads", "1"],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("training on the processor (f32)"), "{}", text(&o));
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let device = events.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|e| e["type"] == "device").expect("a device event");
    assert_eq!(device["device"], "cpu");
    let job: Value = serde_json::from_str(&std::fs::read_to_string(out.join("job.json")).unwrap()).unwrap();
    assert_eq!(job["settings"]["device"], "cpu", "the run keeps the user's choice");
}

#[test]
fn the_gpu_check_runs_its_whole_path_on_the_cpu() {
    let home = tempfile::tempdir().unwrap();
    let fixtures = engine_fixtures();
    let o = whet(home.path(), &["bench", "gpu", "--device", "cpu", "--quick", "--fixtures", fixtures.to_str().unwrap(), "--json"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for part in ["[1] parity", "[2] dequantization", "[3] a QLoRA step", "[4] speed and memory"] {
        assert!(t.contains(part), "{part} missing:\n{t}");
    }
    assert!(!t.contains("FAIL "), "{t}");
    let report: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["passed"], true);
    let checks = report["checks"].as_array().unwrap();
    // Three models × two precisions × two references, six NF4 cases × three, five GGUF types, three step checks.
    assert_eq!(checks.len(), 12 + 18 + 5 + 3, "{t}");
    // f32 on the CPU against the same code on the CPU is exact; bf16 is printed, not judged.
    let f32_cpu = checks.iter().find(|c| c["name"] == "llama F32 vs CPU f32").unwrap();
    assert_eq!((f32_cpu["max_rel_diff"].as_f64(), f32_cpu["passed"].as_bool()), (Some(0.0), Some(true)));
    let bf16 = checks.iter().find(|c| c["name"] == "llama BF16 vs transformers+PEFT").unwrap();
    assert_eq!(bf16["passed"], Value::Null);
    assert!(bf16["max_rel_diff"].as_f64().unwrap() > 0.0);
    let rows = report["throughput"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[1]["quant"].as_str(), rows[1]["grad_checkpoint"].as_bool()), (Some("nf4"), Some(true)));
    for r in rows {
        assert!(r["tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["memory"]["total"].as_u64().unwrap() > 0);
        assert!(r["predicted"]["peak"].as_u64().unwrap() > 0);
        assert!(r["mfu"].as_f64().is_some(), "MFU against the CPU's measured speed");
    }
}

#[cfg(unix)]
#[test]
fn the_gpu_check_script_runs_on_the_cpu_with_a_given_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("gpu-check.log");
    let o = Command::new("bash")
        .arg(root.join("scripts/gpu-check.sh"))
        .args(["--whet", WHET, "--device", "cpu", "--quick", "--skip-7b", "--log"])
        .arg(&log)
        .env("WHETSTONE_HOME", home.path())
        .env("WHETSTONE_DEFAULT_MODEL", home.path().join("none.gguf"))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let logged = std::fs::read_to_string(&log).unwrap();
    for want in ["== whet hw", "Training: ", "[1] parity", "PASSED", "SmolLM2-135M"] {
        assert!(logged.contains(want), "{want} missing from the log:\n{logged}");
    }
    assert!(t.contains("== gpu-check: exit status 0"), "{t}");
}
