//! `whet eval run` on a trained tiny run: the stored answers are what `whet generate` writes for the same
//! prompts, and the stored figures are what `whet eval score` gives for those answers.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{samples, tiny_model};

struct Env {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    model: PathBuf,
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

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

fn write_lines(path: &Path, lines: impl Iterator<Item = Value>) {
    std::fs::write(path, lines.map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[test]
fn a_run_is_evaluated_on_what_it_held_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let model = tiny_model(&root);
    let env = Env { home: root.join("home"), model, _tmp: tmp };
    let data = samples("instructions.jsonl", 16, &root);
    let val = samples("instructions_val.jsonl", 4, &root);
    let out = root.join("run");
    env.ok(&[
        "train", "--model", env.model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--val", val.to_str().unwrap(),
        "--out", out.to_str().unwrap(), "--steps", "4", "--batch", "2", "--max-len", "128", "--lora-r", "4",
        "--lr", "5e-3", "--seed", "3", "--threads", "1",
    ]);

    let e = env.json(&["eval", "run", "1", "--rows", "3", "--max-new", "8", "--threads", "1", "--json"]);
    assert_eq!(e["items"], 3);
    assert_eq!(e["run_id"], 1);
    assert!(e["source"].as_str().unwrap().ends_with("instructions_val.jsonl"), "the run's validation file: {}", e["source"]);
    let sides: Vec<&str> = e["sides"].as_array().unwrap().iter().map(|s| s["side"].as_str().unwrap()).collect();
    assert_eq!(sides, ["base", "tuned"]);
    let id = e["id"].to_string();

    // The text report and the stored evaluation agree.
    let text = env.ok(&["eval", "show", &id]);
    assert!(text.contains(&format!("evaluation {id}: 3 items")), "{text}");
    let results = env.json(&["eval", "show", &id, "--json"]);
    let items = results["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);

    // Each answer is what `whet generate` writes for the prompt, with and without the adapter.
    let adapter = out.join("adapter");
    for item in items {
        let prompt = item["prompt"].as_str().unwrap();
        for (side, extra) in [("base", vec![]), ("tuned", vec!["--adapter", adapter.to_str().unwrap()])] {
            let mut args = vec!["generate", "--model", env.model.to_str().unwrap(), "--prompt", prompt, "--max-new", "8", "--threads", "1"];
            args.extend(extra);
            let written = env.ok(&args);
            let stored = item["outputs"].as_array().unwrap().iter().find(|o| o["side"] == side).unwrap();
            assert_eq!(stored["text"].as_str().unwrap(), written.strip_suffix('\n').unwrap(), "item {} {side}", item["position"]);
        }
    }

    // Each side's figures are `whet eval score`'s on its stored answers.
    let refs = root.join("refs.jsonl");
    write_lines(&refs, items.iter().map(|i| json!({"id": i["position"], "text": i["reference"]})));
    for side in results["evaluation"]["sides"].as_array().unwrap() {
        let name = side["side"].as_str().unwrap();
        let preds = root.join(format!("{name}.jsonl"));
        write_lines(
            &preds,
            items.iter().map(|i| {
                let o = i["outputs"].as_array().unwrap().iter().find(|o| o["side"] == name).unwrap();
                json!({"id": i["position"], "text": o["text"]})
            }),
        );
        let scored = env.json(&["eval", "score", "--predictions", preds.to_str().unwrap(), "--references", refs.to_str().unwrap(), "--json"]);
        let t = &side["text"];
        assert_eq!(t["bleu"], scored["bleu"]["score"], "{name}");
        assert_eq!(t["chrf"], scored["chrf"]["score"], "{name}");
        assert_eq!(t["rouge_l"], scored["rouge"]["rouge_l"], "{name}");
        assert_eq!(t["meteor"], scored["meteor"], "{name}");
        assert_eq!(t["f1"], scored["f1"], "{name}");
        assert!(side["perplexity"].as_f64().unwrap() > 1.0, "{side}");
    }

    // Every answer as CSV: a header and one record per item and side.
    let csv = env.ok(&["eval", "show", &id, "--csv"]);
    assert!(csv.starts_with("position,line,side,prompt,reference,output,tokens,"), "{csv}");
    let jsonl = env.ok(&["eval", "show", &id, "--jsonl"]);
    assert_eq!(jsonl.lines().count(), 3);

    // A run that does not exist is refused with its id.
    let o = env.whet(&["eval", "run", "9", "--rows", "1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no run with id 9"), "{}", String::from_utf8_lossy(&o.stderr));
}
