//! `whet data augment|sample|queue|decide|apply` end to end with the tiny model: the queue and its next steps
//! are printed, decisions are recorded, and applying makes the new version.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn whet(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whet")).arg("--home").arg(home).args(args).env("RUST_BACKTRACE", "0").output().expect("whet runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(home: &Path, args: &[&str]) -> String {
    let o = whet(home, args);
    assert!(o.status.success(), "whet {args:?} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn json(home: &Path, args: &[&str]) -> Value {
    let out = ok(home, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("whet {args:?}: not JSON ({e}): {out}"))
}

#[test]
fn variations_and_a_sample_are_reviewed_and_applied_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let model = dir.path().join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let data = dir.path().join("faq.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"Do you ship abroad?\", \"response\": \"Yes, to every EU country.\"}\n\
         {\"prompt\": \"Can I pay by card?\", \"response\": \"Yes, with any major card.\"}\n\
         {\"prompt\": \"Where is my order?\", \"response\": \"It arrives on Friday.\"}\n",
    )
    .unwrap();
    ok(&home, &["data", "import", data.to_str().unwrap()]);
    let m = model.to_str().unwrap();

    let out = ok(&home, &["data", "augment", "faq", "--rows", "1,3", "--per-row", "1", "--model", m, "--max-new", "8", "--seed", "4"]);
    assert!(out.contains("queue 1: 2 variations to review from `faq` version 1"), "{out}");
    assert!(out.contains("source:    user: Do you ship abroad?"), "{out}");
    assert!(out.contains("whet data decide 1 ITEM accept|edit --row JSON|reject") && out.contains("whet data apply 1"), "{out}");
    let o = whet(&home, &["data", "augment", "faq", "--rows", "1", "--mode", "rewrite", "--model", m]);
    assert!(!o.status.success() && text(&o).contains("--mode rewrite needs --instruction"), "{}", text(&o));

    let o = whet(&home, &["data", "decide", "1", "1", "edit", "--row", "{\"prompt\": \"Only a question\"}"]);
    assert!(!o.status.success() && text(&o).contains("missing field `response`"), "{}", text(&o));
    let out = ok(&home, &["data", "decide", "1", "1", "edit", "--row", "{\"prompt\": \"Do you deliver abroad?\", \"response\": \"Yes, to every EU country.\"}"]);
    assert!(out.contains("item 1 of queue 1: edit") && out.contains("0 accepted, 1 edited, 0 rejected, 1 not decided"), "{out}");
    ok(&home, &["data", "decide", "1", "2", "reject"]);
    let out = ok(&home, &["data", "apply", "1"]);
    assert!(out.contains("`faq` version 2: 4 rows (1 accepted rows added); version 1 is unchanged"), "{out}");
    let versions = json(&home, &["data", "versions", "faq", "--json"]);
    assert_eq!(versions[1]["steps"][0]["rows"][0]["prompt"].as_str().unwrap().ends_with("Do you ship abroad?"), true);

    let out = ok(&home, &["data", "sample", "faq", "--size", "2", "--seed", "1"]);
    assert!(out.contains("queue 2: 2 sampled rows to check from `faq` version 2"), "{out}");
    let out = ok(&home, &["data", "decide", "2", "1", "flag", "--note", "too short"]);
    assert!(out.contains("sample of 2 rows: 1 flagged (50.0%)") && out.contains("(item 1): too short"), "{out}");
    let out = ok(&home, &["data", "queue"]);
    assert!(out.contains("queue 2 (sample)") && out.contains("queue 1 (augment) on `faq` version 1, applied as version 2"), "{out}");
    let out = ok(&home, &["data", "apply", "2"]);
    assert!(out.contains("version 3: 4 rows (0 edited rows changed, 1 flagged rows kept and listed)"), "{out}");
}
