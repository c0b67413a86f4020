//! Review queues end to end with a real (tiny) model: variations of chosen rows written by the model and
//! kept with their provenance, decisions (accept, edit, reject, flag) replaced until the queue is applied,
//! and the new version applying makes; a data review sample with its share flagged. Nothing may enter a
//! version before apply, and the version the queue came from must stay byte for byte as it was.

mod common;

use common::trained;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use whetstone_api::augment::{variation_prompt, AugmentMode, AugmentProgress, AugmentRequest, RewriteInstruction, SYSTEM_PROMPT};
use whetstone_api::training::{generate_chat, load_adapter, load_model};
use whetstone_api::Api;
use whetstone_data::Message;
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::quant::QuantMode;

struct Home {
    _dir: tempfile::TempDir,
    api: Api,
    model: PathBuf,
}

/// A home with the tiny model and `rows` rows of the instruction samples imported as `listings`.
fn home(rows: usize) -> Home {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap().with_default_model_path(None);
    let model = dir.path().join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/instructions.jsonl");
    let text: String = std::fs::read_to_string(src).unwrap().lines().take(rows).map(|l| format!("{l}\n")).collect();
    let data = dir.path().join("listings.jsonl");
    std::fs::write(&data, text).unwrap();
    api.dispatch("data_import", json!({"path": data, "name": "listings"})).unwrap();
    Home { _dir: dir, api, model }
}

fn call(api: &Api, command: &str, args: Value) -> Value {
    api.dispatch(command, args.clone()).unwrap_or_else(|e| panic!("{command} {args}: {e}"))
}

/// Refused with `code`, saying `says`.
fn refused(api: &Api, command: &str, args: Value, code: &str, says: &str) {
    let err = api.dispatch(command, args.clone()).expect_err(&format!("{command} {args} must be refused"));
    assert_eq!(err.code(), code, "{command} {args}: {err}");
    assert!(err.to_string().contains(says), "{command} {args}: {err}");
}

fn rows_file(api: &Api, version: u32) -> Vec<u8> {
    let v = call(api, "data_versions", json!({"dataset": "listings"}));
    let v = v.as_array().unwrap().iter().find(|x| x["version"] == version).unwrap().clone();
    std::fs::read(api.home().join(v["rows_path"].as_str().unwrap())).unwrap()
}

fn all_rows(api: &Api, version: u32) -> Vec<Value> {
    call(api, "data_rows", json!({"dataset": "listings", "version": version, "limit": 200}))["rows"].as_array().unwrap().clone()
}

fn versions(api: &Api) -> Vec<Value> {
    call(api, "data_versions", json!({"dataset": "listings"})).as_array().unwrap().clone()
}

fn content(row: &Value, role: &str) -> String {
    row["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == role).unwrap()["content"].as_str().unwrap().to_string()
}

#[test]
fn variations_wait_with_their_provenance_and_only_accepted_ones_enter_the_new_version() {
    let h = home(6);
    let api = &h.api;
    let v1_before = rows_file(api, 1);
    let v1_record = versions(api)[0].clone();
    let source = all_rows(api, 1);

    let req: AugmentRequest = serde_json::from_value(json!({
        "dataset": "listings", "rows": [2, 4], "mode": "paraphrase", "per_row": 2,
        "model": h.model, "temperature": 0.9, "seed": 7, "max_new_tokens": 12
    }))
    .unwrap();
    let mut stages: Vec<AugmentProgress> = Vec::new();
    let queue = api.augment_start_with_progress(&req, &mut |p| stages.push(p.clone())).unwrap();
    let last = stages.last().unwrap();
    assert_eq!((last.stage.as_str(), last.done, last.total), ("done", 4, 4));
    assert!(stages.windows(2).all(|w| w[0].done <= w[1].done), "progress never goes back");
    let queue = serde_json::to_value(&queue).unwrap();
    let id = queue["queue"]["id"].as_i64().unwrap();
    assert_eq!(queue["queue"]["kind"], "augment");
    assert_eq!(queue["queue"]["version"], 1);
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);

    // Each variation is the model's own text for the recorded prompt and seed, in place of the question.
    let model = load_model(&h.model, QuantMode::Native).unwrap();
    for (i, item) in items.iter().enumerate() {
        let src_row = [2, 2, 4, 4][i];
        assert_eq!(item["item"], i + 1);
        assert_eq!(item["source_row"], src_row);
        assert_eq!(item["source"], source[src_row - 1], "the source row is shown as the version holds it");
        let s = &item["synthetic"];
        let question = content(&source[src_row - 1], "user");
        let prompt = variation_prompt(&AugmentMode::Paraphrase, &question);
        assert_eq!(s["prompt"], prompt.as_str());
        assert_eq!(s["system"], SYSTEM_PROMPT);
        assert_eq!(s["source_row"], src_row);
        assert_eq!(s["mode"], "paraphrase");
        assert_eq!(s["part"], "prompt");
        assert_eq!(s["seed"], 7 + i as u64);
        assert_eq!(s["temperature"], 0.9);
        assert_eq!(s["adapter"], Value::Null);
        assert!(Path::new(s["model"].as_str().unwrap()).ends_with("tiny"), "{s}");
        let opts = SamplingOptions { temperature: 0.9, top_p: 1.0, max_new_tokens: 12, seed: 7 + i as u64 };
        let (want, tokens) = generate_chat(&model, None, &[Message::system(SYSTEM_PROMPT), Message::user(prompt)], &opts, |_| {}).unwrap();
        assert_eq!(s["tokens"], tokens);
        assert_eq!(content(&item["row"], "user"), want.trim(), "item {}", i + 1);
        assert_eq!(content(&item["row"], "assistant"), content(&source[src_row - 1], "assistant"), "the answer stays");
        assert_eq!(item["decision"], Value::Null);
    }
    assert_eq!(versions(api).len(), 1, "nothing enters a version before the queue is applied");

    // Decisions: an edit in any shape an import reads, replaced decisions, and refusals that change nothing.
    let ok: Vec<u64> = items.iter().filter(|i| i["problem"].is_null()).map(|i| i["item"].as_u64().unwrap()).collect();
    assert!(!ok.is_empty(), "at least one variation imports as it is: {items:?}");
    let accepted = ok[0];
    let others: Vec<u64> = (1..=4).filter(|i| *i != accepted).collect();
    let (edited, rejected, undecided) = (others[0], others[1], others[2]);
    call(api, "queue_decide", json!({"queue": id, "item": accepted, "decision": "reject"}));
    let d = call(api, "queue_decide", json!({"queue": id, "item": accepted, "decision": "accept"}));
    assert_eq!(d["decision"], "accept", "a later decision replaces the earlier one");
    refused(api, "queue_decide", json!({"queue": id, "item": edited, "decision": {"edit": {"row": {"prompt": "Only a question"}}}}), "invalid_input", "missing field `response`");
    refused(api, "queue_decide", json!({"queue": id, "item": edited, "decision": {"edit": {"row": {"prompt": "Q", "response": "  "}}}}), "invalid_input", "field `response` is empty");
    refused(api, "queue_decide", json!({"queue": id, "item": edited, "decision": {"edit": {"row": ["not", "an", "object"]}}}), "invalid_input", "must be a JSON object");
    assert_eq!(call(api, "queue_items", json!({"queue": id}))["items"][edited as usize - 1]["decision"], Value::Null, "a refused edit records nothing");
    let d = call(api, "queue_decide", json!({"queue": id, "item": edited, "decision": {"edit": {"row": {"prompt": "How many pounds are 7 kg?", "response": "About 15.43 pounds."}}}}));
    assert_eq!(d["decision"], "edit");
    assert_eq!(content(&d["edited"], "user"), "How many pounds are 7 kg?");
    call(api, "queue_decide", json!({"queue": id, "item": rejected, "decision": "reject"}));
    refused(api, "queue_decide", json!({"queue": id, "item": undecided, "decision": {"flag": {"note": "odd"}}}), "invalid_input", "reject a variation");
    refused(api, "queue_decide", json!({"queue": id, "item": 9, "decision": "accept"}), "invalid_input", "its items are 1 to 4");
    refused(api, "queue_decide", json!({"queue": id + 100, "item": 1, "decision": "accept"}), "not_found", "data queue");
    assert_eq!(versions(api).len(), 1, "decisions alone make no version");

    let s = call(api, "queue_summary", json!({"queue": id}));
    assert_eq!((s["accepted"].as_u64(), s["edited"].as_u64(), s["rejected"].as_u64(), s["undecided"].as_u64()), (Some(1), Some(1), Some(1), Some(1)));
    assert_eq!((s["sample_size"].clone(), s["share_flagged"].clone()), (Value::Null, Value::Null));

    // Apply: the source version's rows, then exactly the accepted and the edited rows.
    let r = call(api, "queue_apply", json!({"queue": id}));
    assert_eq!(r["version"]["version"], 2);
    assert_eq!(r["version"]["parent"], 1);
    assert_eq!((r["added"].as_u64(), r["version"]["rows"].as_u64()), (Some(2), Some(8)));
    let v2 = all_rows(api, 2);
    assert_eq!(v2.len(), 8);
    for (a, b) in v2[..6].iter().zip(&source) {
        assert_eq!(a["messages"], b["messages"]);
    }
    assert_eq!(v2[6]["messages"], items[accepted as usize - 1]["row"]["messages"]);
    assert_eq!(content(&v2[7], "user"), "How many pounds are 7 kg?");
    assert_eq!(content(&v2[7], "assistant"), "About 15.43 pounds.");
    let step = &versions(api)[1]["steps"][0];
    assert_eq!(step["step"], "augment");
    assert_eq!(step["queue"], id);
    assert_eq!((step["accepted"].as_u64(), step["edited"].as_u64(), step["rejected"].as_u64(), step["undecided"].as_u64()), (Some(1), Some(1), Some(1), Some(1)));
    let listed = step["rows"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for (entry, (pos, item, was_edited)) in listed.iter().zip([(7, accepted, false), (8, edited, true)]) {
        assert_eq!(entry["row"], pos);
        assert_eq!(entry["item"], item);
        assert_eq!(entry["synthetic"], true);
        assert_eq!(entry["edited"], was_edited);
        let s = &items[item as usize - 1]["synthetic"];
        assert_eq!(entry["source_row"], s["source_row"]);
        assert_eq!(entry["prompt"], s["prompt"]);
        assert_eq!(entry["seed"], s["seed"]);
    }

    // The old version is untouched, and an applied queue takes no more.
    assert_eq!(rows_file(api, 1), v1_before);
    assert_eq!(versions(api)[0], v1_record);
    refused(api, "queue_decide", json!({"queue": id, "item": undecided, "decision": "accept"}), "queue_applied", "version 2");
    refused(api, "queue_apply", json!({"queue": id}), "queue_applied", "version 2");
    assert_eq!(versions(api).len(), 2);
    let listed = call(api, "data_queues", json!({"dataset": "listings"}));
    assert_eq!(listed[0]["queue"]["applied_version"], 2);
}

#[test]
fn a_sample_is_checked_with_edits_applied_and_flags_kept_and_reported() {
    let h = home(12);
    let api = &h.api;
    let v1_before = rows_file(api, 1);
    let source = all_rows(api, 1);

    let q = call(api, "data_sample", json!({"dataset": "listings", "size": 5, "seed": 3}));
    let id = q["queue"]["id"].as_i64().unwrap();
    assert_eq!(q["queue"]["kind"], "sample");
    let picked: Vec<u64> = q["items"].as_array().unwrap().iter().map(|i| i["source_row"].as_u64().unwrap()).collect();
    assert_eq!(picked.len(), 5);
    assert!(picked.windows(2).all(|w| w[0] < w[1]) && picked.iter().all(|&r| (1..=12).contains(&r)), "{picked:?}");
    for item in q["items"].as_array().unwrap() {
        assert_eq!(item["row"], item["source"], "a sampled row is the version's row");
        assert_eq!(item["synthetic"], Value::Null);
    }
    let again = call(api, "data_sample", json!({"dataset": "listings", "size": 5, "seed": 3}));
    let again: Vec<u64> = again["items"].as_array().unwrap().iter().map(|i| i["source_row"].as_u64().unwrap()).collect();
    assert_eq!(again, picked, "the same seed draws the same rows");
    let all = call(api, "data_sample", json!({"dataset": "listings", "size": 12, "seed": 9}));
    assert_eq!(all["items"].as_array().unwrap().iter().map(|i| i["source_row"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    refused(api, "data_sample", json!({"dataset": "listings", "size": 13}), "invalid_input", "has 12 rows");
    refused(api, "data_sample", json!({"dataset": "listings", "size": 0}), "invalid_input", "from 1 to 12");
    refused(api, "data_sample", json!({"dataset": "nope", "size": 1}), "not_found", "listings");

    call(api, "queue_decide", json!({"queue": id, "item": 1, "decision": "accept"}));
    refused(api, "queue_decide", json!({"queue": id, "item": 2, "decision": "reject"}), "invalid_input", "keeps every row");
    refused(api, "queue_decide", json!({"queue": id, "item": 2, "decision": {"flag": {"note": "   "}}}), "invalid_input", "say what is wrong");
    call(api, "queue_decide", json!({"queue": id, "item": 2, "decision": {"flag": {"note": "The price per square foot is wrong."}}}));
    let edit = json!({"messages": [{"role": "user", "content": "Convert 7 kg to pounds."}, {"role": "assistant", "content": "7 kg is 15.43 lb."}]});
    call(api, "queue_decide", json!({"queue": id, "item": 3, "decision": {"edit": {"row": edit}}}));

    let s = call(api, "queue_summary", json!({"queue": id}));
    assert_eq!(s["sample_size"], 5);
    assert_eq!(s["share_flagged"], 0.2);
    assert_eq!((s["accepted"].as_u64(), s["edited"].as_u64(), s["flagged"].as_u64(), s["undecided"].as_u64()), (Some(1), Some(1), Some(1), Some(2)));
    assert_eq!(s["flags"], json!([{"item": 2, "row": picked[1], "note": "The price per square foot is wrong."}]));
    assert_eq!(versions(api).len(), 1);

    let r = call(api, "queue_apply", json!({"queue": id}));
    assert_eq!((r["version"]["version"].as_u64(), r["version"]["rows"].as_u64(), r["changed"].as_u64()), (Some(2), Some(12), Some(1)));
    let v2 = all_rows(api, 2);
    for (i, (a, b)) in v2.iter().zip(&source).enumerate() {
        if i as u64 + 1 == picked[2] {
            assert_eq!(a["messages"], edit["messages"], "the edit replaces the row in its place");
            assert_eq!(a["line"], b["line"], "the edited row keeps where it came from");
        } else {
            assert_eq!(a["messages"], b["messages"], "row {} is kept as it was (flagged rows too)", i + 1);
        }
    }
    let step = &versions(api)[1]["steps"][0];
    assert_eq!(step["step"], "data_review");
    assert_eq!(step["queue"], id);
    assert_eq!((step["sample_size"].as_u64(), step["flagged"].as_u64(), step["share_flagged"].as_f64()), (Some(5), Some(1), Some(0.2)));
    assert_eq!(step["flagged_rows"], json!([{"row": picked[1], "item": 2, "note": "The price per square foot is wrong."}]));
    assert_eq!(step["edited_rows"], json!([{"row": picked[2], "item": 3}]));
    assert_eq!(rows_file(api, 1), v1_before, "the sampled version is untouched");
}

#[test]
fn bad_augmentation_requests_are_refused_with_a_reason_and_nothing_stored() {
    let h = home(4);
    let api = &h.api;
    let base = json!({"dataset": "listings", "rows": [1], "mode": "paraphrase", "per_row": 1, "model": h.model, "max_new_tokens": 4});
    let with = |patch: Value| {
        let mut v = base.clone();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    for (patch, says) in [
        (json!({"rows": []}), "at least one row"),
        (json!({"rows": [5]}), "row 5 is out of range"),
        (json!({"rows": [0]}), "row 0 is out of range"),
        (json!({"rows": [1, 1]}), "chosen twice"),
        (json!({"rows": (1..=51).collect::<Vec<_>>()}), "at most 50 rows"),
        (json!({"per_row": 0}), "from 1 to 10"),
        (json!({"per_row": 11}), "from 1 to 10"),
        (json!({"temperature": 0.0, "per_row": 2}), "would be the same"),
        (json!({"temperature": 3.0}), "from 0 to 2"),
        (json!({"mode": {"rewrite": {"instruction": "  "}}}), "say how to rewrite"),
        (json!({"run": 1}), "either a run or a model"),
        (json!({"max_new_tokens": 0}), "max_new_tokens"),
        (json!({"model": "no-such-model"}), "no model file or folder"),
    ] {
        refused(api, "augment_start", with(patch), "invalid_input", says);
    }
    let err = api.dispatch("augment_start", json!({"dataset": "listings", "rows": [1], "mode": "paraphrase", "per_row": 1})).unwrap_err();
    assert_eq!(err.code(), "no_model", "{err}");
    refused(api, "augment_start", with(json!({"mode": "summarise"})), "invalid_input", "unknown variant");
    refused(api, "augment_start", with(json!({"mode": {"rewrite": {"instruction": "x", "extra": 1}}})), "invalid_input", "unknown field");
    // From a page through `whet serve`, a model path outside the allowed folders is refused.
    let err = api.dispatch_from(whetstone_api::dispatch::Caller::Server, "augment_start", base.clone()).unwrap_err();
    assert_eq!(err.code(), "path_not_allowed", "{err}");
    assert_eq!(call(api, "data_queues", json!({})), json!([]), "no queue was stored");
    assert_eq!(versions(api).len(), 1);
}

#[test]
fn a_runs_tuned_model_rewrites_answers_as_asked() {
    let t = trained();
    let mode = AugmentMode::Rewrite(RewriteInstruction { instruction: "friendlier, simpler".into() });
    let req = AugmentRequest {
        dataset: "listings".into(),
        version: None,
        rows: vec![3],
        mode: mode.clone(),
        part: None,
        per_row: 1,
        model: None,
        run: Some(t.run),
        temperature: Some(0.0),
        seed: Some(5),
        max_new_tokens: Some(10),
    };
    let q = serde_json::to_value(t.api.augment_start(&req).unwrap()).unwrap();
    let item = &q["items"][0];
    let s = &item["synthetic"];
    assert_eq!((s["mode"].as_str(), s["instruction"].as_str(), s["part"].as_str(), s["run"].as_i64()), (Some("rewrite"), Some("friendlier, simpler"), Some("answer"), Some(t.run)));
    assert_eq!(Path::new(s["adapter"].as_str().unwrap()), t.adapter.as_path());
    let answer = content(&item["source"], "assistant");
    let prompt = variation_prompt(&mode, &answer);
    assert!(prompt.contains("What to change: friendlier, simpler.") && prompt.ends_with(&answer), "{prompt}");
    assert_eq!(s["prompt"], prompt.as_str());
    let model = load_model(&t.model, QuantMode::Native).unwrap();
    let adapter = load_adapter(&model, &t.adapter).unwrap();
    let opts = SamplingOptions { temperature: 0.0, top_p: 1.0, max_new_tokens: 10, seed: 5 };
    let (want, _) = generate_chat(&model, Some(&adapter), &[Message::system(SYSTEM_PROMPT), Message::user(prompt)], &opts, |_| {}).unwrap();
    assert_eq!(content(&item["row"], "assistant"), want.trim(), "the tuned model wrote it");
    assert_eq!(content(&item["row"], "user"), content(&item["source"], "user"), "the question stays");
    assert_eq!(item["row"]["split"], item["source"]["split"], "a variation stays in its source row's split");
}
