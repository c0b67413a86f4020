//! `whet eval score` and `whet review agreement` on files written from the eval crate's committed fixtures:
//! the figures must be the reference implementations' (rouge-score, sacrebleu, nltk, the SQuAD script,
//! scikit-learn, krippendorff), and every malformed input must name its file and line.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOL: f64 = 1e-6;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../whetstone-eval/tests/fixtures")
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn whet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whet")).args(args).env_remove("WHETSTONE_WORDNET").output().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let o = whet(args);
    assert!(o.status.success(), "whet {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn failure(args: &[&str]) -> String {
    let o = whet(args);
    assert!(!o.status.success(), "whet {args:?} should fail: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= TOL, "{what}: got {got}, reference {want}");
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The 49 text cases as a predictions file and a references file; references are written in the reverse
/// order of the ids, one line per reference, so pairing must go by id.
fn text_files(dir: &Path) -> (PathBuf, PathBuf, Vec<Value>) {
    let cases = fixture("bleu.json")["sentences"].as_array().unwrap().clone();
    let preds: Vec<Value> = cases.iter().map(|c| json!({"id": c["id"], "text": c["prediction"]})).collect();
    let refs: Vec<Value> = cases
        .iter()
        .rev()
        .flat_map(|c| c["references"].as_array().unwrap().iter().map(|r| json!({"id": c["id"], "text": r})).collect::<Vec<_>>())
        .collect();
    let (p, r) = (dir.join("predictions.jsonl"), dir.join("references.jsonl"));
    write_lines(&p, &preds);
    write_lines(&r, &refs);
    (p, r, cases)
}

fn by_id(fx: &Value, keep: impl Fn(&Value) -> bool) -> HashMap<String, Value> {
    fx["cases"].as_array().unwrap().iter().filter(|c| keep(c)).map(|c| (c["id"].as_str().unwrap().to_string(), c.clone())).collect()
}

#[test]
fn score_reproduces_every_reference_figure() {
    let dir = tempfile::tempdir().unwrap();
    let (p, r, cases) = text_files(dir.path());
    let wordnet = fixtures().join("wordnet");
    let args = ["eval", "score", "--predictions", p.to_str().unwrap(), "--references", r.to_str().unwrap(), "--json"];
    let mut with_wordnet = args.to_vec();
    with_wordnet.extend(["--wordnet", wordnet.to_str().unwrap()]);
    let got = ok_json(&with_wordnet);

    let bleu = fixture("bleu.json");
    let all = bleu["corpora"].as_array().unwrap().iter().find(|c| c["name"] == "all").unwrap();
    assert_eq!(got["count"], cases.len());
    assert_eq!(format!("{:.2}", num(&got["bleu"]["score"])), all["bleu"]["printed"].as_str().unwrap());
    close("corpus BLEU", num(&got["bleu"]["score"]), num(&all["bleu"]["score"]));
    close("corpus chrF", num(&got["chrf"]["score"]), num(&all["chrf"]["score"]));
    assert_eq!(got["bleu"]["counts"], all["bleu"]["counts"]);

    let ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let mean = |f: &dyn Fn(&str) -> f64| ids.iter().map(|id| f(id)).sum::<f64>() / ids.len() as f64;
    let rouge = fixture("rouge.json");
    let plain = by_id(&rouge, |c| c["use_stemmer"] == false);
    for (key, name) in [("rouge1", "rouge1"), ("rouge2", "rouge2"), ("rouge_l", "rougeL"), ("rouge_lsum", "rougeLsum")] {
        close(name, num(&got["rouge"][key]), mean(&|id| num(&plain[id]["scores"][name]["fmeasure"])));
    }
    let meteor = by_id(&fixture("meteor.json"), |_| true);
    assert_eq!(got["meteor_synonyms"], true);
    close("METEOR", num(&got["meteor"]), mean(&|id| num(&meteor[id]["with_wordnet"])));
    let squad = by_id(&fixture("squad.json"), |_| true);
    close("exact match", num(&got["exact_match"]), mean(&|id| num(&squad[id]["exact_match"])));
    close("F1", num(&got["f1"]), mean(&|id| num(&squad[id]["f1"])));

    // Per item, in the predictions file's order, each with its id.
    let items = got["items"].as_array().unwrap();
    for (item, case) in items.iter().zip(&cases) {
        let id = case["id"].as_str().unwrap();
        assert_eq!(item["id"], id);
        close(&format!("{id} sentence BLEU"), num(&item["bleu"]["score"]), num(&case["bleu"]["score"]));
        close(&format!("{id} sentence chrF"), num(&item["chrf"]["score"]), num(&case["chrf"]["score"]));
        close(&format!("{id} ROUGE-L"), num(&item["rouge"]["rouge_l"]["fmeasure"]), num(&plain[id]["scores"]["rougeL"]["fmeasure"]));
        close(&format!("{id} METEOR"), num(&item["meteor"]), num(&meteor[id]["with_wordnet"]));
        close(&format!("{id} F1"), num(&item["squad"]["f1"]), num(&squad[id]["f1"]));
    }

    // Without WordNet, METEOR is nltk's without synonyms and the report says so.
    let mut without = args.to_vec();
    without.push("--no-wordnet");
    let got = ok_json(&without);
    assert_eq!(got["meteor_synonyms"], false);
    assert_eq!(got["wordnet"], Value::Null);
    close("METEOR without WordNet", num(&got["meteor"]), mean(&|id| num(&meteor[id]["without_wordnet"])));

    // With the stemmer, rouge-score's use_stemmer=True.
    let stemmed = by_id(&rouge, |c| c["use_stemmer"] == true);
    without.push("--stem");
    let got = ok_json(&without);
    close("stemmed ROUGE-1", num(&got["rouge"]["rouge1"]), mean(&|id| num(&stemmed[id]["scores"]["rouge1"]["fmeasure"])));

    // The text report names the same figures.
    let o = whet(&[&with_wordnet[..6], &["--wordnet", wordnet.to_str().unwrap()]].concat());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(text.contains(all["bleu"]["printed"].as_str().unwrap()), "{text}");
    assert!(text.contains(&format!("{} predictions", cases.len())), "{text}");
}

#[test]
fn labels_match_scikit_learn() {
    let dir = tempfile::tempdir().unwrap();
    for case in fixture("labels.json")["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let (truth, pred) = (case["y_true"].as_array().unwrap(), case["y_pred"].as_array().unwrap());
        let p = dir.path().join(format!("{id}.p.jsonl"));
        let r = dir.path().join(format!("{id}.r.jsonl"));
        write_lines(&p, &pred.iter().enumerate().map(|(i, t)| json!({"id": i, "text": t})).collect::<Vec<_>>());
        write_lines(&r, &truth.iter().enumerate().map(|(i, t)| json!({"id": i, "text": t})).collect::<Vec<_>>());
        let got = ok_json(&["eval", "score", "--predictions", p.to_str().unwrap(), "--references", r.to_str().unwrap(), "--labels", "--no-wordnet", "--json"]);
        let labels = &got["labels"];
        let per = labels["per_label"].as_array().unwrap();
        assert_eq!(per.len(), case["per_label"].as_array().unwrap().len(), "{id}");
        for (g, w) in per.iter().zip(case["per_label"].as_array().unwrap()) {
            assert_eq!(g["label"], w["label"], "{id}");
            assert_eq!(g["support"], w["support"], "{id}");
            for k in ["precision", "recall", "f1"] {
                close(&format!("{id} {} {k}", w["label"]), num(&g[k]), num(&w[k]));
            }
        }
        for (mine, theirs) in [("macro_avg", "macro"), ("micro_avg", "micro"), ("weighted_avg", "weighted")] {
            for k in ["precision", "recall", "f1"] {
                close(&format!("{id} {theirs} {k}"), num(&labels[mine][k]), num(&case[theirs][k]));
            }
        }
    }
}

#[test]
fn bad_inputs_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let refs = write("refs.jsonl", "{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n{\"id\":\"b\",\"text\":\"deux\"}\n");
    let score = |preds: &str, refs: &str| failure(&["eval", "score", "--predictions", preds, "--references", refs, "--no-wordnet"]);

    let broken = write("broken.jsonl", "{\"id\":\"a\",\"text\":\"one\"}\n\n{\"id\":\"b\",\"text\": two}\n");
    let err = score(&broken, &refs);
    assert!(err.contains(&format!("{broken}, line 3")) && err.contains("not JSON"), "{err}");

    let no_text = write("no_text.jsonl", "{\"id\":\"a\",\"txt\":\"one\"}\n");
    let err = score(&no_text, &refs);
    assert!(err.contains(&format!("{no_text}, line 1")) && err.contains("no `text`"), "{err}");

    let missing = write("missing.jsonl", "{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n{\"id\":\"c\",\"text\":\"three\"}\n");
    let err = score(&missing, &refs);
    assert!(err.contains(&format!("{missing}, line 3")) && err.contains("id `c` has no reference") && err.contains(&refs), "{err}");

    let short = write("short.jsonl", "{\"id\":\"a\",\"text\":\"one\"}\n");
    let err = score(&short, &refs);
    assert!(err.contains(&format!("{refs}, line 2")) && err.contains("id `b` has no prediction"), "{err}");

    let twice = write("twice.jsonl", "{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n{\"id\":\"a\",\"text\":\"uno\"}\n");
    let err = score(&twice, &refs);
    assert!(err.contains(&format!("{twice}, line 3")) && err.contains("second prediction for id `a`") && err.contains("line 1"), "{err}");

    let two_refs = write("preds.jsonl", "{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n");
    let err = failure(&["eval", "score", "--predictions", &two_refs, "--references", &refs, "--labels", "--no-wordnet"]);
    assert!(err.contains("id `b` has 2"), "{err}");
}

/// The agreement fixtures as one CSV: each case is a criterion, each column of its matrix an item.
fn ratings_csv(path: &Path, cases: &[Value]) {
    let mut csv = String::from("session,rater,item,criterion,score\n");
    for case in cases {
        let id = case["id"].as_str().unwrap();
        for (r, row) in case["data"].as_array().unwrap().iter().enumerate() {
            for (u, v) in row.as_array().unwrap().iter().enumerate() {
                let score = if v.is_null() { String::new() } else { v.to_string() };
                csv.push_str(&format!("s1,rater {r},\"item, {u}\",{id},{score}\n"));
            }
        }
    }
    std::fs::write(path, csv).unwrap();
}

#[test]
fn agreement_matches_the_krippendorff_package() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture("agreement.json");
    let cases = fx["cases"].as_array().unwrap();
    let csv = dir.path().join("ratings.csv");
    ratings_csv(&csv, cases);
    let got = ok_json(&["review", "agreement", csv.to_str().unwrap(), "--json"]);
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), cases.len());
    for (g, case) in got.iter().zip(cases) {
        let id = case["id"].as_str().unwrap();
        assert_eq!(g["criterion"], id);
        assert_eq!(g["raters"], case["data"].as_array().unwrap().len(), "{id}");
        close(&format!("{id} ordinal"), num(&g["ordinal"]), num(&case["ordinal"]));
        close(&format!("{id} nominal"), num(&g["nominal"]), num(&case["nominal"]));
    }
    let o = whet(&["review", "agreement", csv.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    let first = &cases[0];
    let line = text.lines().find(|l| l.starts_with(first["id"].as_str().unwrap())).unwrap();
    assert!(line.contains(&format!("{:.4}", num(&first["ordinal"]))) && line.contains(&format!("{:.4}", num(&first["nominal"]))), "{text}");

    // Where the package raises, the figure is absent and the reason is given.
    let errors = dir.path().join("errors.csv");
    ratings_csv(&errors, fx["errors"].as_array().unwrap());
    let got = ok_json(&["review", "agreement", errors.to_str().unwrap(), "--json"]);
    for g in got.as_array().unwrap() {
        assert_eq!(g["ordinal"], Value::Null, "{g}");
        assert!(!g["note"].as_str().unwrap().is_empty(), "{g}");
    }
}

#[test]
fn bad_rating_files_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let no_score = write("a.csv", "rater,item,criterion\nann,1,fluency\n");
    let err = failure(&["review", "agreement", &no_score]);
    assert!(err.contains(&format!("{no_score}, line 1")) && err.contains("no `score` column"), "{err}");
    let nan = write("b.csv", "rater,item,criterion,score\nann,1,fluency,4\nbob,1,fluency,high\n");
    let err = failure(&["review", "agreement", &nan]);
    assert!(err.contains(&format!("{nan}, line 3")) && err.contains("`high` is not a number"), "{err}");
    let twice = write("c.csv", "rater,item,criterion,score\nann,1,fluency,4\nbob,1,fluency,3\nann,1,fluency,5\n");
    let err = failure(&["review", "agreement", &twice]);
    assert!(err.contains(&format!("{twice}, line 4")) && err.contains("line 2"), "{err}");
}
