//! Runs as worker jobs, end to end through the real `whet` binary on a tiny random model: a worker
//! killed with SIGKILL over and over (also in the middle of checkpoint saves) and resumed each time
//! ends with the same curve and adapter bytes as an uninterrupted run; pause, resume, stop and the
//! metrics exports.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use whetstone_engine::rng::Rng;

mod common;
use common::{samples, tiny_model};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    model: PathBuf,
    data: PathBuf,
    val: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Env {
            home: root.join("home"),
            model: tiny_model(&root),
            data: samples("instructions.jsonl", 24, &root),
            val: samples("instructions_val.jsonl", 6, &root),
            root,
            _tmp: tmp,
        }
    }

    fn whet(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_whet"));
        c.arg("--home").arg(&self.home).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("whet runs")
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let o = self.whet(args, env);
        assert!(o.status.success(), "whet {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn train_args(&self, out: &Path, steps: u32, extra: &[&str]) -> Vec<String> {
        let steps = steps.to_string();
        let mut v: Vec<String> = [
            "train", "--model", self.model.to_str().unwrap(), "--data", self.data.to_str().unwrap(),
            "--val", self.val.to_str().unwrap(), "--out", out.to_str().unwrap(),
            "--steps", &steps, "--batch", "2", "--max-len", "128", "--lora-r", "4", "--lora-dropout", "0.1",
            "--lr", "1e-3", "--warmup", "3", "--seed", "3", "--eval-every", "5", "--threads", "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn show(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["runs", "show", id, "--json"], &[])).unwrap()
    }

    fn wait_status(&self, id: &str, want: &[&str]) -> Value {
        let t0 = Instant::now();
        loop {
            let r = self.show(id);
            if want.contains(&r["status"].as_str().unwrap()) {
                return r;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "run {id} stayed {}", r["status"]);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// metrics.jsonl without timings.
fn curve(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().retain(|k, _| k != "tokens_per_s" && k != "elapsed_s");
            v
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// How many times a worker has started training in this run folder.
fn started(out: &Path) -> usize {
    std::fs::read_to_string(out.join("events.jsonl")).map(|t| t.lines().filter(|l| l.contains("\"type\":\"started\"")).count()).unwrap_or(0)
}

fn newest_checkpoint(out: &Path) -> u64 {
    std::fs::read_dir(out.join("checkpoints"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok()).max().unwrap_or(0))
        .unwrap_or(0)
}

fn saving(out: &Path) -> bool {
    std::fs::read_dir(out.join("checkpoints"))
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".step-")))
        .unwrap_or(false)
}

#[test]
fn a_worker_killed_again_and_again_resumes_to_the_same_curve_and_adapter() {
    let t0 = Instant::now();
    let e = Env::new();
    let reference = e.root.join("reference");
    e.ok(&args(&e.train_args(&reference, 20, &["--save-every", "10"])), &[]);

    // Saves after every step, each stretched by a pause between its files, so kills land in saves.
    let out = e.root.join("killed");
    let pause = [(whetstone_api::worker::CHECKPOINT_PAUSE_ENV, "10")];
    let id = e.ok(&args(&e.train_args(&out, 20, &["--save-every", "1", "--keep-checkpoints", "2", "--detach"])), &pause).trim().to_string();
    let mut rng = Rng::new(2024);
    let (mut kills, mut in_save) = (0, 0);
    let mut at_steps = Vec::new();
    let mut lives = 0;
    while kills < 12 {
        // Wait for this life's worker to have started training (it removes what the last kill left).
        lives += 1;
        let t = Instant::now();
        while started(&out) < lives {
            assert!(t.elapsed() < Duration::from_secs(30), "worker {lives} did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
        let r = e.show(&id);
        if r["status"] == "completed" {
            break;
        }
        let pid = r["pid"].as_u64().unwrap() as u32;
        let base = newest_checkpoint(&out);
        let t = Instant::now();
        if kills % 2 == 0 {
            // Into the next save: wait for its temporary folder to appear.
            while !saving(&out) && t.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            // Anywhere, once this life has saved a step (so that every other life makes progress).
            while newest_checkpoint(&out) <= base && t.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(rng.below(150) as u64));
        }
        let was_saving = saving(&out);
        Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        let t = Instant::now();
        while alive(pid) {
            assert!(t.elapsed() < Duration::from_secs(10), "worker {pid} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(5));
        }
        kills += 1;
        in_save += was_saving as usize;
        at_steps.push(curve(&out).iter().filter(|r| r["kind"] == "train").count());
        let r = e.show(&id);
        if r["status"] == "completed" {
            break;
        }
        assert_eq!(r["status"], "interrupted", "a dead worker's run is found interrupted: {r}");
        e.ok(&["runs", "resume", &id, "--detach"], &pause);
    }
    let r = e.wait_status(&id, &["completed", "failed", "interrupted"]);
    assert_eq!(r["status"], "completed", "{r}");
    eprintln!("{kills} kills ({in_save} during a checkpoint save) at steps {at_steps:?}, {:.1}s", t0.elapsed().as_secs_f64());
    assert!(kills >= 10, "only {kills} kills before the run ended");
    assert!(in_save >= 3, "only {in_save} kills landed in a save");
    assert_eq!(curve(&out), curve(&reference), "the resumed curve equals the uninterrupted one");
    assert_eq!(
        std::fs::read(out.join("adapter/adapter_model.safetensors")).unwrap(),
        std::fs::read(reference.join("adapter/adapter_model.safetensors")).unwrap(),
        "the final adapters are byte-identical"
    );
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let resumed = events.lines().filter(|l| l.contains("\"type\":\"started\"") && !l.contains("\"resumed_from\":null")).count();
    assert!(resumed >= 10, "{resumed} resumed starts: {}", &events[events.len().saturating_sub(4000)..]);
    assert!(at_steps.last() > at_steps.first(), "progress across lives: {at_steps:?}");
}

#[test]
fn pause_resume_stop_logs_and_exports() {
    let e = Env::new();
    let out = e.root.join("run");
    // Slow saves keep the worker busy long enough to be paused and stopped mid-run.
    let slow = [(whetstone_api::worker::CHECKPOINT_PAUSE_ENV, "30")];
    let id = e.ok(&args(&e.train_args(&out, 200, &["--save-every", "2", "--detach"])), &slow).trim().to_string();
    e.wait_status(&id, &["running"]);
    while curve(&out).len() < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    e.ok(&["runs", "pause", &id], &[]);
    let r = e.wait_status(&id, &["paused", "failed", "completed"]);
    assert_eq!(r["status"], "paused", "{r}");
    let paused_at = r["step"].as_u64().unwrap();
    assert!((2..200).contains(&paused_at), "{r}");
    assert!(out.join("checkpoints").join(format!("step-{paused_at}")).join("manifest.json").is_file(), "pausing checkpoints the current step");
    assert!(r["pid"].is_null());

    // Pausing a paused run is refused with a reason; resuming continues after the paused step.
    let o = e.whet(&["runs", "pause", &id], &[]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("paused"));
    e.ok(&["train", "--resume", &id, "--detach"], &slow);
    e.wait_status(&id, &["running"]);
    let t = Instant::now();
    while e.show(&id)["step"].as_u64().unwrap() <= paused_at + 2 {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    e.ok(&["runs", "stop", &id], &[]);
    let r = e.wait_status(&id, &["stopped", "failed", "completed"]);
    assert_eq!(r["status"], "stopped", "{r}");
    assert!(out.join("adapter/adapter_model.safetensors").is_file(), "stopping keeps what was trained");
    let steps: Vec<u64> = curve(&out).iter().filter(|r| r["kind"] == "train").map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>(), "each step once, in order, across the pause");

    let list = e.ok(&["runs", "list"], &[]);
    assert!(list.lines().any(|l| l.starts_with(&id) && l.contains("stopped")), "{list}");
    let logs = e.ok(&["runs", "logs", &id], &[]);
    assert!(logs.contains("resuming after step") && logs.contains("validation at step 5"), "{logs}");

    let csv = e.root.join("metrics.csv");
    let tb = e.root.join("tb");
    e.ok(&["runs", "export", &id, "--csv", csv.to_str().unwrap(), "--tensorboard", tb.to_str().unwrap()], &[]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("kind,step,epoch,loss"));
    assert_eq!(text.lines().count(), 1 + curve(&out).len());
    assert_eq!(std::fs::read_dir(&tb).unwrap().count(), 1);
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn discarding_a_training_run_stops_its_worker_then_deletes_its_folder_and_nothing_else() {
    let e = Env::new();
    let out = e.root.join("run");
    let id = e.ok(&args(&e.train_args(&out, 500, &["--save-every", "2", "--detach"])), &[]).trim().to_string();
    let r = e.wait_status(&id, &["running"]);
    let pid = r["pid"].as_u64().unwrap() as u32;
    while curve(&out).len() < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Everything outside the run folder: the model, the data and the home folder but its database.
    let outside = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        snapshot(root).into_iter().filter(|(p, _)| !p.starts_with(&out) && !p.starts_with(&e.home)).collect()
    };
    let before = outside(&e.root);

    // Without --yes it only lists what would go, and the run goes on.
    let listed = e.ok(&["runs", "discard", &id], &[]);
    assert!(listed.contains("checkpoints") && listed.contains("--yes"), "{listed}");
    assert_eq!(e.show(&id)["status"], "running");

    e.ok(&["runs", "discard", &id, "--yes"], &[]);
    assert!(!alive(pid), "the worker {pid} is gone once the discard returns");
    assert!(!out.exists(), "the run folder held only the run's files, so it is gone");
    let r = e.show(&id);
    assert_eq!(r["status"], "discarded", "{r}");
    assert!(r["error"].as_str().unwrap().starts_with("Discarded: "), "{r}");
    assert_eq!(outside(&e.root), before, "nothing outside the run folder changed");
    // The worker, stopped, did not bring the run back to another state.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(e.show(&id)["status"], "discarded");

    let o = e.whet(&["runs", "discard", &id, "--yes"], &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("run {id} was discarded already")), "{err}");
}
