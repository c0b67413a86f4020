//! What the organiser's screens need beyond the command table: an evaluation run with its stages pushed
//! (checked and confined like `eval_run`), a review session's status pushed as raters rate, the rubric a
//! new session starts from, and tables saved into files.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use whetstone_api::dispatch::Caller;
use whetstone_api::evaluation::EvalProgress;
use whetstone_api::review::ReviewStatus;
use whetstone_api::Api;
use whetstone_store::{EvaluationItem, NewEvaluation, OutputRecord, SideRecord};

fn home() -> (tempfile::TempDir, Api) {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap().with_default_model_path(None);
    (dir, api)
}

fn side(name: &str) -> SideRecord {
    SideRecord {
        side: name.into(),
        metrics: json!({
            "side": name, "model": "/m/tiny", "adapter": null, "loss": null, "perplexity": null, "loss_tokens": 0,
            "loss_rows_dropped": 0, "generated_tokens": 3, "text": null
        }),
    }
}

/// An evaluation of three items answered by base and tuned, stored as `eval_run` stores one.
fn stored_evaluation(api: &Api) -> i64 {
    let items: Vec<EvaluationItem> = (1..=3)
        .map(|i| EvaluationItem {
            position: i,
            line: Some(u64::from(i)),
            messages: json!([{"role": "user", "content": format!("question {i}")}]),
            prompt: format!("question {i}"),
            input: None,
            reference: Some(format!("answer {i}")),
            outputs: ["base", "tuned"]
                .iter()
                .map(|s| OutputRecord { side: s.to_string(), text: format!("{s} says {i}"), tokens: 3, scores: None })
                .collect(),
        })
        .collect();
    let new = NewEvaluation {
        run_id: None,
        compare_run_id: None,
        model: "/m/tiny".into(),
        adapter: None,
        dataset_id: None,
        dataset_version: None,
        split: None,
        source: "3 given rows".into(),
        settings: json!({}),
        metrics: vec![side("base"), side("tuned")],
    };
    api.store().insert_evaluation(&new, &items).unwrap().id
}

fn call(api: &Api, command: &str, args: Value) -> Value {
    api.dispatch(command, args.clone()).unwrap_or_else(|e| panic!("{command} {args}: {e}"))
}

fn rate(api: &Api, token: &str, item: u64) {
    let scores = json!({"factuality": 4, "relevance": 3});
    call(api, "review_submit", json!({"token": token, "item": item, "a": {"scores": scores}, "b": {"scores": scores}, "preference": "tie"}));
}

#[test]
fn a_review_is_followed_from_its_first_status_to_its_closing() {
    let (_dir, api) = home();
    let evaluation = stored_evaluation(&api);
    let session = call(&api, "review_create", json!({"evaluation": evaluation, "raters_per_item": 1, "seed": 5}))["id"].as_i64().unwrap();
    let token = call(&api, "review_invite", json!({"session": session, "name": "ann"}))["token"].as_str().unwrap().to_string();
    let mut seen: Vec<ReviewStatus> = Vec::new();
    // The follower tells the rater what it has sent, and each change waits for the one before it to
    // have been sent, so that none is merged into the next.
    let (told, hear) = std::sync::mpsc::channel::<u32>();
    let (rater, token) = (&api, token.as_str());
    std::thread::scope(|s| {
        s.spawn(move || {
            let api = rater;
            let wait_for = |n: u32| while hear.recv().unwrap() < n {};
            wait_for(0);
            rate(api, token, 1);
            wait_for(1);
            rate(api, token, 2);
            wait_for(2);
            call(api, "review_close", json!({"id": session}));
        });
        api.follow_review(session, Duration::from_millis(5), &|| true, &mut |status| {
            seen.push(status.clone());
            let _ = told.send(status.raters[0].rated);
            true
        })
        .unwrap();
    });
    let rated: Vec<u32> = seen.iter().map(|s| s.raters[0].rated).collect();
    assert_eq!(rated.first(), Some(&0), "the first status is sent at once: {rated:?}");
    assert!(rated.contains(&1) && rated.contains(&2), "each rating is pushed: {rated:?}");
    assert_eq!(rated.len(), 4, "the first status, two ratings and the closing: {rated:?}");
    assert!(rated.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {rated:?}");
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "a status is sent only when it changed");
    let last = seen.last().unwrap();
    assert!(last.session.closed, "the closed status is the last message");
    assert_eq!(last, &api.review_status(session).unwrap());
    assert_eq!(seen.iter().filter(|s| s.session.closed).count(), 1);
}

#[test]
fn following_a_review_ends_when_the_listener_leaves_and_an_unknown_session_is_an_error() {
    let (_dir, api) = home();
    let evaluation = stored_evaluation(&api);
    let session = call(&api, "review_create", json!({"evaluation": evaluation}))["id"].as_i64().unwrap();
    let mut sent = 0;
    // An open session never ends by itself: the listener refusing the first message ends the loop.
    api.follow_review(session, Duration::from_millis(5), &|| true, &mut |_| {
        sent += 1;
        false
    })
    .unwrap();
    assert_eq!(sent, 1);
    let mut sent = 0;
    api.follow_review(session, Duration::from_millis(5), &|| false, &mut |_| {
        sent += 1;
        true
    })
    .unwrap();
    assert_eq!(sent, 0, "a listener gone before the first look is sent nothing");
    let err = api.follow_review(9999, Duration::from_millis(5), &|| true, &mut |_| true).unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[test]
fn an_evaluation_with_progress_reports_every_stage_in_order_and_ends_with_the_stored_evaluation() {
    let (dir, api) = home();
    let model = dir.path().join("home").join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let args = json!({
        "model": model, "sides": ["base"], "max_new_tokens": 4,
        "rows": [{"prompt": "one", "reference": "uno"}, {"prompt": "two", "reference": "dos"}, {"prompt": "three"}]
    });
    let mut stages: Vec<EvalProgress> = Vec::new();
    // From the window: the model lies in the home folder, so it is allowed.
    let e = api.eval_run_from(Caller::Window, args, &mut |p| stages.push(p.clone())).unwrap();
    assert_eq!(e.items, 3);
    assert_eq!(stages.first().unwrap().stage, "loading the model");
    let last = stages.last().unwrap();
    assert_eq!((last.stage.as_str(), last.done, last.total), ("done", 3 + 1, 3 + 1));
    assert!(stages.iter().all(|p| p.total == last.total));
    assert!(stages.windows(2).all(|w| w[0].done <= w[1].done), "progress never goes back");
    let answered: Vec<&str> = stages.iter().map(|p| p.stage.as_str()).filter(|s| s.contains("answers prompt")).collect();
    assert_eq!(answered, ["base answers prompt 1 of 3", "base answers prompt 2 of 3", "base answers prompt 3 of 3"]);
    assert_eq!(serde_json::to_value(&e).unwrap(), serde_json::to_value(api.get_evaluation(e.id).unwrap()).unwrap());
}

#[test]
fn an_evaluation_with_progress_is_refused_like_eval_run_before_anything_is_reported() {
    let (dir, api) = home();
    let outside = dir.path().join("outside.jsonl");
    std::fs::write(&outside, "{\"prompt\": \"a\", \"response\": \"b\"}\n").unwrap();
    let mut reported = 0;
    let mut count = |_: &EvalProgress| reported += 1;
    let err = api.eval_run_from(Caller::Server, json!({"model": "/m/tiny", "data": outside}), &mut count).unwrap_err();
    assert_eq!(err.code(), "path_not_allowed", "{err}");
    let err = api.eval_run_from(Caller::Reviewer, json!({"run": 1}), &mut count).unwrap_err();
    assert_eq!(err.code(), "forbidden_command", "{err}");
    let err = api.eval_run_from(Caller::Window, json!({"run": 1, "temperature": -1.0}), &mut count).unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    let err = api.eval_run_from(Caller::Window, json!({"no_such_argument": 1}), &mut count).unwrap_err();
    assert!(err.to_string().contains("arguments for `eval_run`"), "{err}");
    assert_eq!(reported, 0);
    assert_eq!(api.list_evaluations(None).unwrap().len(), 0);
}

#[test]
fn the_rubric_is_what_every_new_session_starts_with() {
    let (_dir, api) = home();
    let rubric = call(&api, "review_rubric", Value::Null);
    let evaluation = stored_evaluation(&api);
    let session = call(&api, "review_create", json!({"evaluation": evaluation, "criteria": [{"label": "Empathy"}]}));
    let criteria = session["criteria"].as_array().unwrap();
    assert_eq!(&criteria[..5], rubric["criteria"].as_array().unwrap().as_slice());
    assert_eq!(criteria[5]["key"], "empathy");
    assert_eq!(session["flags"], rubric["flags"]);
}

fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.push(e);
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(format!("{} {}", p.display(), std::fs::read(&p).unwrap().len()));
        }
    }
    out
}

#[test]
fn tables_are_saved_into_the_exports_folder_or_an_allowed_one_and_never_over_a_file_unasked() {
    let (dir, api) = home();
    let evaluation = stored_evaluation(&api);
    let session = call(&api, "review_create", json!({"evaluation": evaluation, "raters_per_item": 1, "seed": 2}))["id"].as_i64().unwrap();
    let token = call(&api, "review_invite", json!({"session": session, "name": "ann"}))["token"].as_str().unwrap().to_string();
    rate(&api, &token, 1);

    let saved = api
        .dispatch_from(Caller::Server, "save_table", json!({"table": "evaluation", "id": evaluation, "format": "csv", "out": "evaluation.csv"}))
        .unwrap();
    let path = dir.path().join("home").join("exports").join("evaluation.csv");
    assert_eq!(saved["path"], json!(path));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, api.eval_export(evaluation, whetstone_api::evaluation::TableFormat::Csv).unwrap());
    assert_eq!(saved["bytes"], text.len());

    // The same name again is refused unless replacing is asked for.
    let again = json!({"table": "review", "id": session, "format": "csv", "out": "evaluation.csv"});
    let err = api.dispatch_from(Caller::Server, "save_table", again.clone()).unwrap_err();
    assert_eq!(err.code(), "file_exists", "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "a refused save leaves the file as it was");
    let mut replace = again;
    replace["overwrite"] = json!(true);
    api.dispatch_from(Caller::Server, "save_table", replace).unwrap();
    let review_csv = call(&api, "review_export", json!({"id": session, "format": "csv"}));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), review_csv.as_str().unwrap());

    let pairs = dir.path().join("home").join("pairs.jsonl");
    api.dispatch_from(Caller::Window, "save_table", json!({"table": "preferences", "id": session, "format": "jsonl", "out": pairs})).unwrap();
    assert_eq!(std::fs::read_to_string(&pairs).unwrap(), call(&api, "review_preferences", json!({"id": session})).as_str().unwrap());

    // Outside the allowed folders, a folder in a relative name, or preference pairs as CSV: refused, nothing written.
    let before = tree(dir.path());
    let outside = dir.path().join("elsewhere.csv");
    for (args, code) in [
        (json!({"table": "evaluation", "id": evaluation, "format": "csv", "out": outside}), "path_not_allowed"),
        (json!({"table": "evaluation", "id": evaluation, "format": "csv", "out": "../up.csv"}), "path_not_allowed"),
        (json!({"table": "preferences", "id": session, "format": "csv", "out": "p.csv"}), "invalid_input"),
        (json!({"table": "evaluation", "id": 999, "format": "csv", "out": "x.csv"}), "not_found"),
    ] {
        let err = api.dispatch_from(Caller::Server, "save_table", args.clone()).unwrap_err();
        assert_eq!(err.code(), code, "{args}: {err}");
    }
    let err = api.dispatch("save_table", json!({"table": "evaluation", "id": evaluation, "format": "csv", "out": "sub/x.csv"})).unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn references_taken_as_labels_give_precision_recall_and_f1_per_label() {
    let (dir, api) = home();
    let model = dir.path().join("home").join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let rows = json!([
        {"prompt": "great film", "reference": "positive"},
        {"prompt": "dull film", "reference": " negative "},
        {"prompt": "fine film", "reference": "positive"},
        {"prompt": "no reference"}
    ]);
    let args = json!({"model": model, "sides": ["base"], "max_new_tokens": 3, "rows": rows, "labels": true});
    let e = api.eval_run_from(Caller::Local, args, &mut |_| {}).unwrap();
    let results = api.eval_results(e.id).unwrap();
    // The figures are the eval crate's on the trimmed answers and references of the items that have one.
    let said: Vec<String> = results.items[..3].iter().map(|i| i.outputs[0].text.trim().to_string()).collect();
    let want = whetstone_eval::labels::label_report(&["positive", "negative", "positive"], &said).unwrap();
    let got = e.sides[0].labels.as_ref().expect("per-label figures");
    assert_eq!(serde_json::to_value(got).unwrap(), serde_json::to_value(&want).unwrap());
    assert!(got.per_label.iter().any(|l| l.label == "positive" && l.support == 2));
    assert_eq!(e.settings["labels"], true);
    // Kept with the evaluation, and absent where not asked for.
    assert_eq!(api.get_evaluation(e.id).unwrap().sides[0].labels.as_ref(), Some(got));
    let plain = api.eval_run_from(Caller::Local, json!({"model": model, "sides": ["base"], "max_new_tokens": 2, "rows": rows}), &mut |_| {}).unwrap();
    assert!(plain.sides[0].labels.is_none());

    let err = api
        .eval_run_from(Caller::Local, json!({"model": model, "rows": [{"prompt": "x"}], "labels": true}), &mut |_| {})
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("labels are compared with the reference answers"), "{err}");
}
