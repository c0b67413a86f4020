//! `whet data …` end to end on the sample files in every shape, with a fresh home each time.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/shapes")
}

fn whet(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whet"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("whet runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(home: &Path, args: &[&str]) -> Value {
    let o = whet(home, args);
    assert!(o.status.success(), "whet {args:?} failed: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("whet {args:?}: not JSON ({e}): {}", text(&o)))
}

fn bundled_model() -> PathBuf {
    let path = whetstone_api::default_model_path().expect("HOME or XDG_CACHE_HOME is set");
    assert!(path.is_file(), "the bundled model {} is missing; run scripts/setup.sh", path.display());
    path
}

#[test]
fn every_sample_shape_imports_with_counts_that_add_up() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        ("alpaca.jsonl", "jsonl", "instruction/input/output", 8),
        ("array.json", "json_array", "prompt/completion", 3),
        ("table.csv", "csv", "instruction/input/output", 3),
        ("questions.tsv", "tsv", "context/question/answer", 2),
        ("openai.jsonl", "jsonl", "messages", 2),
        ("sharegpt.json", "json_array", "sharegpt", 2),
        ("qa.jsonl", "jsonl", "context/question/answer", 2),
        ("plain.txt", "text", "text", 3),
    ];
    for (file, format, shape, rows) in cases {
        let path = samples().join(file);
        let before = std::fs::read(&path).unwrap();
        let r = json(home.path(), &["data", "import", path.to_str().unwrap(), "--json"]);
        let rep = &r["report"];
        assert_eq!(rep["format"], format, "{file}");
        assert_eq!(rep["shape"], shape, "{file}");
        assert_eq!(rep["accepted"], rows, "{file}: {rep}");
        assert_eq!(rep["rejected"], 0, "{file}: {rep}");
        assert_eq!(r["version"]["version"], 1);
        assert_eq!(std::fs::read(&path).unwrap(), before, "{file} was changed by the import");
    }
    // Names are unique; the multi-turn chat keeps every turn.
    let again = whet(home.path(), &["data", "import", samples().join("qa.jsonl").to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    let out = home.path().join("openai.out.jsonl");
    json(home.path(), &["data", "export", "openai", "--out", out.to_str().unwrap(), "--json"]);
    let first: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["messages"].as_array().unwrap().len(), 5);
}

#[test]
fn bad_rows_are_each_reported_with_line_and_reason() {
    let home = tempfile::tempdir().unwrap();
    let path = samples().join("bad_rows.jsonl");
    let r = json(home.path(), &["data", "import", path.to_str().unwrap(), "--max-row-bytes", "4096", "--json"]);
    let rep = &r["report"];
    assert_eq!(rep["rows"], 10, "the blank line is not a row: {rep}");
    assert_eq!(rep["accepted"], 2);
    assert_eq!(rep["rejected"], 8);
    let reasons: Vec<(u64, String)> = rep["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_string()))
        .collect();
    let expect = [
        (2, "invalid JSON"),
        (3, "missing field `response`"),
        (4, "must be a string, got a number"),
        (5, "not valid UTF-8"),
        (6, "over-long: 5039 bytes"),
        (7, "must be a JSON object"),
        (8, "field `prompt` is empty"),
        (9, "--map"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:?}");
    for ((line, reason), (want_line, want)) in reasons.iter().zip(expect) {
        assert_eq!(*line, want_line);
        assert!(reason.contains(want), "line {line}: `{reason}` lacks `{want}`");
    }
    let all = std::fs::read_to_string(r["rejections_file"].as_str().unwrap()).unwrap();
    assert_eq!(all.lines().count(), 8);
    // The unknown shape imports once its columns are named.
    let unknown = home.path().join("unknown.jsonl");
    std::fs::write(&unknown, "{\"question_text\": \"Hi?\", \"reply\": \"Hello.\"}\n").unwrap();
    let plain = whet(home.path(), &["data", "import", unknown.to_str().unwrap()]);
    assert!(!plain.status.success() && text(&plain).contains("no row could be imported"), "{}", text(&plain));
    let mapped = json(
        home.path(),
        &["data", "import", unknown.to_str().unwrap(), "--map", "prompt=question_text", "--map", "response=reply", "--json"],
    );
    assert_eq!(mapped["report"]["accepted"], 1);
}

#[test]
fn import_clean_split_stats_preview_export_and_train_by_name() {
    let model = bundled_model();
    let m = model.to_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = samples().join("alpaca.jsonl");
    json(h, &["data", "import", src.to_str().unwrap(), "--name", "support", "--json"]);

    // The proposal changes nothing.
    let p = json(h, &["data", "clean", "support", "--dedupe", "--near", "0.7", "--pii", "redact", "--boilerplate", "--json"]);
    assert_eq!(p["proposal"]["rows_before"], 8);
    assert_eq!(p["proposal"]["exact_duplicates"]["removed"], 1);
    assert_eq!(p["proposal"]["exact_duplicates"]["examples"][0]["kept_line"], 1);
    assert_eq!(p["proposal"]["exact_duplicates"]["examples"][0]["removed_lines"], serde_json::json!([4]));
    assert_eq!(p["proposal"]["near_duplicates"]["removed"], 1);
    assert_eq!(p["proposal"]["boilerplate"]["removed"], 1);
    assert_eq!(p["proposal"]["pii"]["findings"], 2);
    assert!(p["version"].is_null());
    assert_eq!(json(h, &["data", "versions", "support", "--json"]).as_array().unwrap().len(), 1);

    let a = json(h, &["data", "clean", "support", "--dedupe", "--near", "0.7", "--pii", "redact", "--boilerplate", "--apply", "--json"]);
    let ap = &a["applied"];
    assert_eq!(ap["rows_after"], 5);
    assert_eq!(ap["pii_redacted"], 2);
    let removed: u64 = ["exact_duplicates_removed", "near_duplicates_removed", "length_removed", "boilerplate_removed", "pii_rows_dropped"]
        .iter()
        .map(|k| ap[k].as_u64().unwrap())
        .sum();
    assert_eq!(removed + 5, 8);
    assert_eq!(a["version"]["version"], 2);
    assert_eq!(a["version"]["parent"], 1);

    let s = json(h, &["data", "split", "support", "--val", "0.2", "--seed", "7", "--json"]);
    assert_eq!(s["counts"]["train"], 4);
    assert_eq!(s["counts"]["val"], 1);
    assert_eq!(s["leakage"]["groups"], 0);
    let versions = json(h, &["data", "versions", "support", "--json"]);
    let steps: Vec<&str> = versions.as_array().unwrap().iter().map(|v| v["steps"][0]["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["import", "clean", "split"]);
    assert_eq!(versions[0]["steps"][0]["source_sha256"].as_str().unwrap().len(), 64);

    let st = json(h, &["data", "stats", "support", "--model", m, "--max-len", "48", "--json"]);
    let t = &st["tokens"];
    assert_eq!(t["rows"], 5);
    assert_eq!(t["failed"], 0);
    let binned: u64 = t["histogram"].as_array().unwrap().iter().map(|b| b["rows"].as_u64().unwrap()).sum();
    assert_eq!(binned, 5);
    let truncated = t["truncated"].as_u64().unwrap();
    assert!(truncated > 0 && truncated < 5, "{t}");

    let pv = json(h, &["data", "preview", "support", "--row", "4", "--model", m, "--json"]);
    let toks = pv["tokens"].as_array().unwrap();
    let trained: String = toks.iter().filter(|t| t["trained"] == true).map(|t| t["text"].as_str().unwrap()).collect();
    assert!(trained.starts_with("Sorry about the delay. Please write to [EMAIL] or call [PHONE]"), "{trained}");
    let untrained: String = toks.iter().filter(|t| t["trained"] == false).map(|t| t["text"].as_str().unwrap()).collect();
    assert!(untrained.contains("My order is late."), "{untrained}");
    let marked = whet(h, &["data", "preview", "support", "--row", "4", "--model", m, "--mask"]);
    assert!(text(&marked).contains("[[Sorry about the delay."), "{}", text(&marked));

    let out = h.join("val.jsonl");
    let e = json(h, &["data", "export", "support", "--split", "val", "--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(e["rows"], 1);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1);

    // `--data` takes the dataset's name: its train split is what gets trained on.
    let run = h.join("run");
    let o = whet(h, &[
        "train", "--model", m, "--data", "support", "--out", run.to_str().unwrap(), "--steps", "1", "--batch", "2",
        "--lora-r", "2", "--targets", "q", "--threads", "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("on 4 examples"), "{}", text(&o));
    let missing = whet(h, &["train", "--model", m, "--data", "nope", "--out", run.to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("no such file, and no dataset by that name"), "{}", text(&missing));
}

#[test]
fn stats_without_a_model_says_what_is_missing() {
    let home = tempfile::tempdir().unwrap();
    json(home.path(), &["data", "import", samples().join("qa.jsonl").to_str().unwrap(), "--json"]);
    let o = whet(home.path(), &["data", "stats", "qa", "--model", "/nonexistent/model.gguf"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/model.gguf"), "{}", text(&o));
}

#[test]
fn a_plain_text_dataset_trains_on_every_token() {
    let model = bundled_model();
    let m = model.to_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plain = samples().join("plain.txt");
    json(h, &["data", "import", plain.to_str().unwrap(), "--name", "notes", "--json"]);
    let run = h.join("run");
    let o = whet(h, &[
        "train", "--model", m, "--data", "notes", "--out", run.to_str().unwrap(), "--steps", "1", "--batch", "3",
        "--lora-r", "2", "--targets", "q", "--threads", "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("on 3 examples"), "{}", text(&o));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let step: Value = serde_json::from_str(metrics.lines().find(|l| l.contains("\"train\"")).unwrap()).unwrap();
    assert!(step["loss"].as_f64().unwrap().is_finite(), "{step}");

    // A text file given directly works the same way, and a bad line in it is reported by number.
    let file = h.join("notes.jsonl");
    std::fs::write(&file, "{\"text\": \"Rivers shape valleys.\"}\n{\"text\": 3}\n{\"text\": \"Bread rises slowly.\"}\n").unwrap();
    let o = whet(h, &["train", "--model", m, "--data", file.to_str().unwrap(), "--out", h.join("run2").to_str().unwrap(), "--steps", "1"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("line 2") && text(&o).contains("text"), "{}", text(&o));
}
