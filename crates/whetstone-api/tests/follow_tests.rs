use serde_json::json;
use std::io::Write;
use std::time::Duration;
use whetstone_api::jobs::EVENTS_FILE;
use whetstone_api::{Api, RunStatus};
use whetstone_store::{NewModel, NewRun};

fn run_in(api: &Api, dir: &std::path::Path, status: RunStatus) -> i64 {
    let store = api.store();
    let model = store
        .insert_model(&NewModel {
            name: "tiny".into(),
            source: whetstone_store::ModelSource::Local,
            location: "/models/tiny.gguf".into(),
            architecture: Some("llama".into()),
            parameters: Some(1),
            license: None,
            commercial_use: None,
        })
        .unwrap();
    store
        .insert_run(&NewRun { model_id: model.id, dataset_id: None, config: json!({}), status, out_dir: dir.display().to_string() })
        .unwrap()
        .id
}

fn checkpoint_line(step: u64) -> String {
    format!("{{\"time\":{step}.0,\"type\":\"checkpoint\",\"step\":{step},\"path\":\"/r/checkpoints/step-{step}\"}}\n")
}

#[test]
fn a_finished_run_is_sent_once_with_its_whole_log() {
    let home = tempfile::tempdir().unwrap();
    let api = Api::open(&home.path().join("home")).unwrap();
    let run_dir = home.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join(EVENTS_FILE), checkpoint_line(1) + &checkpoint_line(2)).unwrap();
    let id = run_in(&api, &run_dir, RunStatus::Completed);
    let mut batches = Vec::new();
    api.follow_run(id, 0, Duration::from_millis(5), &|| true, &mut |b| {
        batches.push(b.clone());
        true
    })
    .unwrap();
    assert_eq!(batches.len(), 1, "one batch, then the stream ends");
    assert_eq!(batches[0].events.len(), 2);
    assert_eq!(batches[0].run.status, RunStatus::Completed);
}

#[test]
fn a_live_run_is_followed_line_by_line_until_it_ends() {
    let home = tempfile::tempdir().unwrap();
    let api = Api::open(&home.path().join("home")).unwrap();
    let run_dir = home.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let id = run_in(&api, &run_dir, RunStatus::Queued);
    // This test process stands in for the worker: its pid is alive, so the run is not reconciled away.
    api.store().claim_run(id, std::process::id()).unwrap();
    let mut steps = Vec::new();
    let mut statuses = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(run_dir.join(EVENTS_FILE)).unwrap();
            for step in 1..=5 {
                std::thread::sleep(Duration::from_millis(30));
                // Half a line first: it must wait for the rest.
                let line = checkpoint_line(step);
                let (a, b) = line.split_at(line.len() / 2);
                log.write_all(a.as_bytes()).unwrap();
                log.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
                log.write_all(b.as_bytes()).unwrap();
            }
            api.store().finish_run(id, RunStatus::Completed, None).unwrap();
        });
        api.follow_run(id, 0, Duration::from_millis(5), &|| true, &mut |b| {
            statuses.push(b.run.status);
            for e in &b.events {
                let v = serde_json::to_value(e).unwrap();
                steps.push(v["step"].as_u64().unwrap());
            }
            true
        })
        .unwrap();
    });
    assert_eq!(steps, [1, 2, 3, 4, 5], "every step once, in order, none half-read");
    assert_eq!(statuses.first(), Some(&RunStatus::Running));
    assert_eq!(statuses.last(), Some(&RunStatus::Completed));
    assert!(statuses.len() >= 3, "updates came as the log grew, not all at the end: {statuses:?}");
}

#[test]
fn following_stops_when_the_listener_leaves_and_a_missing_run_is_an_error() {
    let home = tempfile::tempdir().unwrap();
    let api = Api::open(&home.path().join("home")).unwrap();
    let run_dir = home.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let id = run_in(&api, &run_dir, RunStatus::Queued);
    api.store().claim_run(id, std::process::id()).unwrap();
    let mut calls = 0;
    // The run never ends; the listener leaving is what ends the loop.
    api.follow_run(id, 0, Duration::from_millis(5), &|| true, &mut |_| {
        calls += 1;
        false
    })
    .unwrap();
    assert_eq!(calls, 1);
    // A listener that is gone before anything new happens ends the loop too.
    let mut sent = 0;
    api.follow_run(id, 0, Duration::from_millis(5), &|| false, &mut |_| {
        sent += 1;
        true
    })
    .unwrap();
    assert_eq!(sent, 0);
    let err = api.follow_run(9999, 0, Duration::from_millis(5), &|| true, &mut |_| true).unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[test]
fn the_series_is_thinned_from_the_whole_history_and_says_where_to_follow_from() {
    let home = tempfile::tempdir().unwrap();
    let api = Api::open(&home.path().join("home")).unwrap();
    let run_dir = home.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut metrics = String::new();
    for step in 1..=5000u64 {
        metrics += &format!("{{\"kind\":\"train\",\"step\":{step},\"loss\":{}}}\n", 4.0 - step as f64 / 5000.0);
    }
    // Resumed from step 4990: those steps come again, and the later rows count.
    for step in 4990..=5000u64 {
        metrics += &format!("{{\"kind\":\"train\",\"step\":{step},\"loss\":0.5}}\n");
    }
    metrics += "{\"kind\":\"eval\",\"step\":5000,\"loss\":1.25,\"perplexity\":3.49}\n";
    std::fs::write(run_dir.join("metrics.jsonl"), metrics).unwrap();
    let step = "{\"time\":2.5,\"type\":\"step\",\"metrics\":{\"step\":5000,\"loss\":0.5,\"lr\":0.0001,\"grad_norm\":0.7,\"tokens\":64,\"tokens_per_s\":321.5,\"elapsed_s\":99.0,\"epoch\":3},\"total_steps\":5000,\"eta_s\":0.0,\"memory_bytes\":123456789}\n";
    let logged = checkpoint_line(1) + step + &checkpoint_line(2);
    std::fs::write(run_dir.join(EVENTS_FILE), format!("{logged}{{\"time\":3.0,\"ty")).unwrap();
    let id = run_in(&api, &run_dir, RunStatus::Completed);

    let series = api.dispatch("run_series", json!({"id": id, "buckets": 100})).unwrap();
    assert_eq!(series["train_points"], 5000);
    assert_eq!(series["eval_points"], 1);
    let train = series["train"].as_array().unwrap();
    assert!(train.len() <= 200, "{}", train.len());
    assert_eq!(train.last().unwrap()["loss"], 0.5, "the resumed run's value of step 5000");
    assert_eq!(series["eval"][0]["loss"], 1.25);
    assert_eq!(series["events_offset"], logged.len(), "up to the last whole line of the event log");
    assert_eq!(series["latest_step"]["metrics"]["tokens_per_s"], 321.5, "the newest step, for the figures");
    assert_eq!(series["latest_step"]["memory_bytes"], 123456789);
    assert!(series["latest_eval"].is_null());
    let err = api.dispatch("run_series", json!({"id": id, "buckets": 0})).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
}
