//! `whet review judge`: a local model rates a review session from the command line. A tiny random
//! model writes no JSON verdict, so every item must be reported as not rated, with the reason, and
//! handed back to the session.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn whet(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whet")).arg("--home").arg(home).args(args).output().expect("whet runs")
}

/// A trained tiny run, a two-item evaluation of it, and a session over it; returns the session's id.
fn session(home: &Path, root: &Path) -> i64 {
    let api = whetstone_api::Api::open(home).unwrap();
    let model = root.join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let rows: String = (0..6).map(|i| format!("{{\"prompt\":\"Say {i}.\",\"response\":\"{i}!\"}}\n")).collect();
    let data = root.join("rows.jsonl");
    std::fs::write(&data, rows).unwrap();
    let req: whetstone_api::StartRun = serde_json::from_value(json!({
        "model": model, "data": data, "settings": {"steps": 2, "batch": 2, "max-len": 64, "lora-r": 4, "lr": 0.01, "seed": 1, "threads": 1}
    }))
    .unwrap();
    let worker = whetstone_api::WorkerCommand { program: PathBuf::from("/bin/true"), args: vec![] };
    let run = api.start_run_with(&req, &worker).unwrap();
    whetstone_api::worker::run_worker(Path::new(&run.out_dir), Arc::new(AtomicBool::new(false))).unwrap();
    let rows = json!([{"prompt": "Describe a mug.", "reference": "A mug."}, {"prompt": "Describe a lamp.", "reference": "A lamp."}]);
    let eval = api.dispatch("eval_run", json!({"run": run.id, "rows": rows, "max_new_tokens": 6})).unwrap();
    let s = api.dispatch("review_create", json!({"evaluation": eval["id"], "raters_per_item": 2, "seed": 3})).unwrap();
    s["id"].as_i64().unwrap()
}

/// The tiny model's shape with room for the rubric prompt, whose bytes are each a token here.
fn judge_model(root: &Path) -> PathBuf {
    let dir = root.join("judge");
    let mut config = whetstone_api::testing::tiny_config();
    config.max_position_embeddings = 8192;
    whetstone_api::plan::write_random_model(&dir, &config, 9).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(root.join("tiny").join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn the_judge_reports_every_item_it_could_not_rate_and_rates_nothing_it_could_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let home = root.join("home");
    let sid = session(&home, root);
    let judge = judge_model(root);
    let sid_arg = sid.to_string();
    let judge_arg = judge.to_str().unwrap();

    let o = whet(&home, &["review", "judge", &sid_arg, "--model", judge_arg, "--max-new-tokens", "16", "--threads", "1"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("Local judge (judge) rated 0 of 2 item(s) of session {sid} as a machine rater (judge).")), "{stdout}");
    assert!(stdout.contains("Not rated (2):"), "{stdout}");
    assert_eq!(stdout.matches("; asked again: ").count(), 2, "{stdout}");
    assert!(stdout.contains("Those items went back to the session for another rater."), "{stdout}");
    assert!(stderr.contains("[1/2] item ") && stderr.contains("[2/2] item ") && stderr.contains("not rated: no JSON object"), "{stderr}");

    // The items went back, so a second judge gets them, under a name of its own.
    let o = whet(&home, &["review", "judge", &sid_arg, "--model", judge_arg, "--max-new-tokens", "16", "--threads", "1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((s["queued"].as_u64(), s["rated"].as_u64(), s["failed"].as_array().unwrap().len()), (Some(2), Some(0), 2));
    assert_eq!((s["rater"]["name"].as_str(), s["rater"]["kind"].as_str()), (Some("Local judge (judge) #2"), Some("machine")));
    let api = whetstone_api::Api::open(&home).unwrap();
    assert_eq!(api.store().count_ratings(sid).unwrap(), 0, "no rating was stored");

    // Refusals name what is wrong, and leave no rater behind.
    let raters = api.review_status(sid).unwrap().raters.len();
    let o = whet(&home, &["review", "judge", "999", "--model", judge_arg]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("999"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = whet(&home, &["review", "judge", &sid_arg, "--model", "no-such-model"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no installed model"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = whet(&home, &["review", "judge", &sid_arg]);
    assert!(!o.status.success(), "a judge needs a model or a run");
    assert_eq!(api.review_status(sid).unwrap().raters.len(), raters);
}
