//! One reader of training rows behind every entry point, rows longer than the maximum length, and
//! run folders that already hold something.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("tiny");
        whetstone_api::testing::write_tiny_model(&model).unwrap();
        Env { dir, model }
    }

    fn whet(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_whet"))
            .arg("--home")
            .arg(self.dir.path().join("home"))
            .args(args)
            .env("WHETSTONE_DEVICE", "cpu")
            .output()
            .expect("whet runs")
    }

    fn m(&self) -> &str {
        self.model.to_str().unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn shapes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/shapes")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_sample_shape_is_accepted_by_every_entry_point() {
    let env = Env::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(shapes()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let good: Vec<&PathBuf> = files.iter().filter(|p| !p.ends_with("bad_rows.jsonl")).collect();
    assert!(good.len() >= 8, "{files:?}");
    for (i, file) in good.iter().enumerate() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let o = env.whet(&["data", "import", s(file), "--name", &format!("shape{i}"), "--json"]);
        assert!(o.status.success(), "import {name}: {}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["report"]["rejected"], 0, "import {name}: {report}");

        let o = env.whet(&["plan", "--model", env.m(), "--data", s(file), "--json"]);
        assert!(o.status.success(), "plan {name}: {}", text(&o));

        let o = env.whet(&["eval", "loss", "--model", env.m(), "--data", s(file)]);
        assert!(o.status.success(), "eval {name}: {}", text(&o));

        let out = env.path(&format!("run-{i}"));
        let o = env.whet(&["train", "--model", env.m(), "--data", s(file), "--out", s(&out), "--steps", "1", "--batch", "2", "--max-len", "256"]);
        assert!(o.status.success(), "train {name}: {}", text(&o));
        assert!(out.join("adapter/adapter_model.safetensors").is_file(), "train {name}");
    }
}

#[test]
fn a_file_with_bad_rows_gets_the_same_line_numbers_everywhere() {
    let env = Env::new();
    let bad = shapes().join("bad_rows.jsonl");
    let o = env.whet(&["data", "import", s(&bad), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines: Vec<u64> = report["report"]["rejections"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert!(lines.len() >= 5, "{report}");
    let out = env.path("bad-run");
    for args in [
        vec!["train", "--model", env.m(), "--data", s(&bad), "--out", s(&out), "--steps", "1"],
        vec!["plan", "--model", env.m(), "--data", s(&bad)],
        vec!["eval", "loss", "--model", env.m(), "--data", s(&bad)],
    ] {
        let o = env.whet(&args);
        assert!(!o.status.success(), "{args:?} accepted a file with bad rows");
        let t = text(&o);
        assert!(t.contains(&format!("{} bad rows", lines.len())), "{args:?}: {t}");
        for line in lines.iter().take(10) {
            assert!(t.contains(&format!("line {line}:")), "{args:?} does not name line {line}: {t}");
        }
    }
    assert!(!out.join("job.json").exists(), "nothing was started");
}

/// Three rows; the second's prompt alone is longer than 256 tokens of the byte-level tokenizer.
fn long_rows(env: &Env) -> PathBuf {
    let long = "word ".repeat(80);
    let p = env.path("long.jsonl");
    std::fs::write(
        &p,
        format!(
            "{{\"prompt\": \"short one\", \"response\": \"fine\"}}\n{{\"prompt\": \"{long}\", \"response\": \"the answer\"}}\n{{\"prompt\": \"short two\", \"response\": \"also fine\"}}\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn rows_longer_than_the_maximum_are_left_out_and_reported() {
    let env = Env::new();
    let data = long_rows(&env);
    let out = env.path("run");
    let o = env.whet(&["train", "--model", env.m(), "--data", s(&data), "--out", s(&out), "--steps", "2", "--batch", "2", "--max-len", "256"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("1 row of") && t.contains("line 2 (") && t.contains("left out of training"), "{t}");
    let keep = t.split("A maximum length of ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<usize>().ok());
    let keep = keep.unwrap_or_else(|| panic!("no length offered: {t}"));
    assert!(keep > 256 && keep < 450, "{keep}");
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let dropped: Vec<serde_json::Value> = events.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|e| e["type"] == "rows_dropped").collect();
    assert_eq!(dropped.len(), 1, "{events}");
    assert_eq!(dropped[0]["rows"][0]["line"], 2);
    let started = events.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|e| e["type"] == "started").unwrap();
    assert_eq!(started["examples"], 2, "the long row is not trained on");

    // The plan says the same before anything runs, and which length keeps every row.
    let o = env.whet(&["plan", "--model", env.m(), "--data", s(&data), "--max-len", "256", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["dataset"]["dropped"], 1, "{plan}");
    assert_eq!(plan["dataset"]["length_keeping_all"], keep as u64, "{plan}");
    // At that length nothing is left out.
    let o = env.whet(&["train", "--model", env.m(), "--data", s(&data), "--out", s(&env.path("run-keep")), "--steps", "1", "--batch", "2", "--max-len", &keep.to_string()]);
    assert!(o.status.success() && !text(&o).contains("left out"), "{}", text(&o));

    // --strict-rows refuses the file, naming the row.
    let o = env.whet(&["train", "--model", env.m(), "--data", s(&data), "--out", s(&env.path("run-strict")), "--steps", "1", "--max-len", "256", "--strict-rows"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("line 2 (") && t.contains("strict-rows"), "{t}");

    // --truncate-prompt keeps the row by cutting its prompt from the start.
    let o = env.whet(&["train", "--model", env.m(), "--data", s(&data), "--out", s(&env.path("run-cut")), "--steps", "1", "--batch", "2", "--max-len", "256", "--truncate-prompt"]);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("left out"), "{t}");
}

#[test]
fn a_run_folder_that_holds_anything_is_refused_unless_replacing_is_asked_for() {
    let env = Env::new();
    let data = long_rows(&env);
    let out = env.path("mine");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "my notes").unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--model", env.m(), "--data", s(&data), "--out", s(&out), "--steps", "1", "--batch", "2", "--max-len", "512"];
        args.extend_from_slice(extra);
        env.whet(&args)
    };
    let o = train(&[]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("already holds files") && t.contains("--overwrite"), "{t}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "nothing was written");

    // Asked to replace: the run trains there, the user's own file stays.
    let o = train(&["--overwrite"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "my notes");
    let first = std::fs::read(out.join("metrics.jsonl")).unwrap();
    // A second run into the same folder is refused again without the flag, and leaves the first run's files.
    let o = train(&[]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(out.join("metrics.jsonl")).unwrap(), first);

    // A folder in which a run is live is never emptied, even when asked.
    let live = env.path("live");
    let o = env.whet(&["train", "--model", env.m(), "--data", s(&data), "--out", s(&live), "--steps", "100000", "--max-len", "512", "--detach"]);
    assert!(o.status.success(), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let o = env.whet(&["train", "--model", env.m(), "--data", s(&data), "--out", s(&live), "--steps", "1", "--overwrite"]);
    let t = text(&o);
    let _ = env.whet(&["runs", "stop", &id]);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains(&format!("run {id} is training in")), "{t}");
    assert!(live.join("job.json").is_file(), "the live run's files are still there");
    // Wait for the stop to land so the worker is gone before the folder is removed.
    for _ in 0..300 {
        let o = env.whet(&["runs", "show", &id, "--json"]);
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if r["status"] != "running" && r["status"] != "queued" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_file_mixing_conversations_and_plain_text_trains_as_an_imported_dataset() {
    let env = Env::new();
    let data = env.path("mixed.jsonl");
    std::fs::write(&data, "{\"prompt\": \"hi\", \"response\": \"hello\"}\n{\"text\": \"a plain document\"}\n").unwrap();
    let o = env.whet(&["data", "import", s(&data), "--name", "mixed"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = env.path("run");
    let o = env.whet(&["train", "--model", env.m(), "--data", "mixed", "--out", s(&out), "--steps", "1", "--batch", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let started = events.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|e| e["type"] == "started").unwrap();
    assert_eq!(started["examples"], 2, "both kinds of row are trained on");
}
