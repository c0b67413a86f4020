use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};
use std::path::Path;
use whetstone_api::{Api, Error, DATABASE_FILE};
use whetstone_store::{ModelSource, NewDataset, NewModel, NewRun, RunStatus};

fn temp_api() -> (tempfile::TempDir, Api) {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home"))
        .unwrap()
        .with_default_model_path(Some(dir.path().join("absent.gguf")));
    (dir, api)
}

/// A real GGUF file with two F32 tensors (4×32 and 32×8 = 384 parameters).
fn write_gguf(path: &Path, metadata: &[(&str, gguf_file::Value)]) {
    let a = Tensor::zeros((4, 32), DType::F32, &Device::Cpu).unwrap();
    let b = Tensor::ones((32, 8), DType::F32, &Device::Cpu).unwrap();
    let qa = QTensor::quantize(&a, GgmlDType::F32).unwrap();
    let qb = QTensor::quantize(&b, GgmlDType::F32).unwrap();
    let meta: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta, &[("a.weight", &qa), ("b.weight", &qb)]).unwrap();
}

fn seed(api: &Api) -> (i64, i64, i64) {
    let store = api.store();
    let model = store
        .insert_model(&NewModel {
            name: "SmolLM2".into(),
            source: ModelSource::Bundled,
            location: "/models/smol.gguf".into(),
            architecture: Some("llama".into()),
            parameters: Some(134_515_008),
            license: Some("Apache-2.0".into()),
            commercial_use: Some(true),
        })
        .unwrap();
    let dataset = store
        .insert_dataset(&NewDataset {
            name: "tickets".into(),
            source_path: "/data/tickets.jsonl".into(),
            source_sha256: "ab".repeat(32),
            rows: 10,
        })
        .unwrap();
    let run = store
        .insert_run(&NewRun {
            model_id: model.id,
            dataset_id: Some(dataset.id),
            config: json!({"rank": 8}),
            status: RunStatus::Completed,
            out_dir: "/runs/1".into(),
        })
        .unwrap();
    (model.id, dataset.id, run.id)
}

#[test]
fn open_creates_home_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nested").join("home");
    let api = Api::open(&home).unwrap();
    assert!(home.join(DATABASE_FILE).is_file());
    assert_eq!(api.home(), home);
    assert!(api.list_models().unwrap().is_empty());
}

#[test]
fn open_reports_a_home_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home");
    std::fs::write(&file, "x").unwrap();
    let err = Api::open(&file).err().expect("a file is not a home folder");
    assert_eq!(err.code(), "io");
    assert!(err.to_string().contains(&file.display().to_string()), "{err}");
}

#[test]
fn open_reports_a_database_that_is_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DATABASE_FILE), "not a database at all, just text").unwrap();
    let err = Api::open(dir.path()).err().expect("must refuse");
    let body = err.body();
    assert_eq!(body.code, "store");
    assert!(body.message.contains(DATABASE_FILE), "{}", body.message);
}

#[test]
fn lists_come_from_the_store() {
    let (_dir, api) = temp_api();
    let (model_id, dataset_id, run_id) = seed(&api);
    assert_eq!(api.list_models().unwrap()[0].id, model_id);
    assert_eq!(api.list_datasets().unwrap()[0].id, dataset_id);
    assert_eq!(api.list_runs().unwrap()[0].id, run_id);

    let models = api.dispatch("list_models", Value::Null).unwrap();
    assert_eq!(models[0]["name"], "SmolLM2");
    assert_eq!(models[0]["source"], "bundled");
    let datasets = api.dispatch("list_datasets", json!({})).unwrap();
    assert_eq!(datasets[0]["rows"], 10);
    let runs = api.dispatch("list_runs", json!({})).unwrap();
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["config"]["rank"], 8);

    let run = api.dispatch("get_run", json!({"id": run_id})).unwrap();
    assert_eq!(run["model_id"], model_id);
    let model = api.dispatch("get_model", json!({"id": model_id})).unwrap();
    assert_eq!(model["parameters"], 134_515_008u64);
    let dataset = api.dispatch("get_dataset", json!({"id": dataset_id})).unwrap();
    assert_eq!(dataset["source_sha256"], "ab".repeat(32));
}

#[test]
fn hardware_matches_the_os() {
    let (_dir, api) = temp_api();
    let hw = api.dispatch("hardware", Value::Null).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(hw["cpu_cores"], cores);
    assert!(hw["ram_total_bytes"].as_u64().unwrap() > 0);
    assert!(hw["gpus"].is_array());
}

#[test]
fn overview_holds_everything() {
    let (dir, api) = temp_api();
    seed(&api);
    let model_path = dir.path().join("tiny.gguf");
    write_gguf(
        &model_path,
        &[("general.architecture", gguf_file::Value::String("llama".into()))],
    );
    let api = api.with_default_model_path(Some(model_path));
    let overview = api.dispatch("overview", Value::Null).unwrap();
    assert_eq!(overview["models"].as_array().unwrap().len(), 1);
    assert_eq!(overview["datasets"].as_array().unwrap().len(), 1);
    assert_eq!(overview["runs"].as_array().unwrap().len(), 1);
    assert!(overview["hardware"]["cpu_cores"].as_u64().unwrap() >= 1);
    assert_eq!(overview["default_model"]["parameters"], 384);

    let typed = api.overview().unwrap();
    assert_eq!(typed.models, api.list_models().unwrap());
}

#[test]
fn default_model_is_read_from_the_gguf_header() {
    let (dir, api) = temp_api();
    let path = dir.path().join("Tiny-Test.Q8_0.gguf");
    write_gguf(
        &path,
        &[
            ("general.architecture", gguf_file::Value::String("llama".into())),
            ("general.name", gguf_file::Value::String("run label".into())),
            ("general.license", gguf_file::Value::String("apache-2.0".into())),
            ("llama.context_length", gguf_file::Value::U32(2048)),
        ],
    );
    let api = api.with_default_model_path(Some(path.clone()));
    let model = api.default_model().unwrap().expect("file exists");
    assert_eq!(model.path, path);
    assert_eq!(model.name, "Tiny-Test.Q8_0");
    assert_eq!(model.architecture, "llama");
    assert_eq!(model.parameters, 384);
    assert_eq!(model.context_length, Some(2048));
    assert_eq!(model.license.as_deref(), Some("Apache-2.0"));
    assert_eq!(model.file_bytes, std::fs::metadata(&path).unwrap().len());

    let json = api.dispatch("default_model", Value::Null).unwrap();
    assert_eq!(json["license"], "Apache-2.0");
    assert_eq!(json["context_length"], 2048);
}

#[test]
fn default_model_absent_is_none() {
    let (_dir, api) = temp_api();
    assert!(api.default_model().unwrap().is_none());
    assert_eq!(api.dispatch("default_model", Value::Null).unwrap(), Value::Null);
    let api = api.with_default_model_path(None);
    assert!(api.default_model().unwrap().is_none());
}

#[test]
fn default_model_that_is_not_gguf_is_a_clear_error() {
    let (dir, api) = temp_api();
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"this is not a model file").unwrap();
    let api = api.with_default_model_path(Some(path.clone()));
    let err = api.default_model().unwrap_err();
    assert_eq!(err.code(), "invalid_model_file");
    assert!(err.to_string().contains("broken.gguf"), "{err}");
}

#[test]
fn bundled_default_model_matches_its_file() {
    let Some(path) = whetstone_api::default_model_path() else {
        panic!("no default model location: neither HOME nor XDG_CACHE_HOME is set");
    };
    let (_dir, api) = temp_api();
    let api = api.with_default_model_path(Some(path.clone()));
    assert!(path.is_file(), "the bundled model {} is missing; scripts/setup.sh installs it", path.display());
    let model = api.default_model().unwrap().expect("the file exists");
    assert_eq!(model.architecture, "llama");
    assert_eq!(model.file_bytes, std::fs::metadata(&path).unwrap().len());
    if path.file_name().unwrap() == whetstone_api::DEFAULT_MODEL_FILE {
        // SmolLM2-135M: 30 layers of width 576 with tied embeddings.
        assert!(
            (130_000_000..140_000_000).contains(&model.parameters),
            "{} parameters",
            model.parameters
        );
        assert_eq!(model.context_length, Some(8192));
        assert_eq!(model.license.as_deref(), Some("Apache-2.0"));
        assert_eq!(model.name, "SmolLM2-135M-Instruct.Q4_1");
    }
}

#[test]
fn errors_have_stable_codes_and_plain_messages() {
    let (_dir, api) = temp_api();

    let err = api.dispatch("train_everything", Value::Null).unwrap_err();
    assert!(matches!(err, Error::UnknownCommand { .. }));
    let body = err.body();
    assert_eq!(body.code, "unknown_command");
    assert!(body.message.contains("train_everything"));
    assert!(body.message.contains("overview"), "should list known commands: {}", body.message);

    let err = api.dispatch("get_model", json!({"id": 41})).unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(err.to_string(), "no model with id 41");

    let err = api.dispatch("get_run", json!({})).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("get_run") && err.to_string().contains("id"), "{err}");

    let err = api.dispatch("list_models", json!({"limit": 3})).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("limit"), "{err}");

    let err = api.dispatch("hardware", json!([1, 2])).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("an array"), "{err}");

    // Serialising the error itself gives the same body, for IPC callers.
    let serialized = serde_json::to_value(&err).unwrap();
    assert_eq!(serialized, serde_json::to_value(err.body()).unwrap());
    assert_eq!(serialized.as_object().unwrap().len(), 2);
}

#[test]
fn every_listed_command_dispatches() {
    let (dir, api) = temp_api();
    let (model_id, dataset_id, run_id) = seed(&api);
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"prompt\": \"a b c\", \"response\": \"d e f\"}\n{\"prompt\": \"g\", \"response\": \"h\"}\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "r: 4\n").unwrap();
    let extra = tempfile::tempdir().unwrap();
    for command in whetstone_api::COMMANDS.iter().map(|c| c.name) {
        let args = match command {
            "get_model" => json!({"id": model_id}),
            "get_dataset" => json!({"id": dataset_id}),
            "get_run" | "pause_run" | "resume_run" | "stop_run" | "run_metrics" | "run_metrics_csv" | "run_files" | "discard_run" => json!({"id": run_id}),
            "run_events" => json!({"id": run_id, "since": 0}),
            "run_series" => json!({"id": run_id, "buckets": 10}),
            "start_run" => json!({"model": "/no/model.gguf", "data": "/no/data.jsonl", "settings": {"steps": 3}}),
            "data_import" => json!({"path": rows, "name": "rows"}),
            "data_versions" => json!({"dataset": "rows"}),
            "data_clean" => json!({"dataset": "rows", "options": {"exact": true}}),
            "data_split" => json!({"dataset": "rows", "val": 0.5, "test": 0.0, "seed": 1}),
            "data_stats" => json!({"dataset": "rows", "max_len": 64}),
            "data_preview" => json!({"dataset": "rows", "row": 1}),
            "data_rows" => json!({"dataset": "rows", "limit": 10}),
            "train_defaults" => json!({"examples": 2, "p95_tokens": 40}),
            "data_export" => json!({"dataset": "rows", "out": out}),
            // The split above made version 2.
            "data_edit" => json!({"dataset": "rows", "version": 2, "deletes": [1]}),
            "data_upload" => json!({"name": "up.jsonl", "text": "{\"prompt\": \"a\", \"response\": \"b\"}\n"}),
            "config_open" => json!({"path": cfg}),
            "config_save" => json!({"path": dir.path().join("saved.toml"), "settings": {}}),
            "augment_start" => json!({"dataset": "rows", "rows": [1], "mode": "paraphrase", "per_row": 1}),
            "data_sample" => json!({"dataset": "rows", "size": 1, "seed": 1}),
            "data_queues" => json!({"dataset": "rows"}),
            // The table lists data_sample first: queue 1 is its sample.
            "queue_items" | "queue_summary" | "queue_apply" => json!({"queue": 1}),
            "queue_decide" => json!({"queue": 1, "item": 1, "decision": {"flag": {"note": "check the answer"}}}),
            // The table lists allow_folder before forget_folder: the second undoes the first.
            "allow_folder" | "forget_folder" => json!({"path": extra.path()}),
            "export_run" => json!({"run": run_id, "format": "peft", "out": extra.path().join("export")}),
            "eval_run" => json!({"run": run_id, "rows": [{"prompt": "hi"}]}),
            "playground" => json!({"run": run_id, "prompt": "hi", "max_new_tokens": 4}),
            "review_judge" => json!({"session": 1, "run": run_id}),
            "review_share" => json!({"bind": "127.0.0.1:0"}),
            // A file, not a folder: refused before any file manager is started.
            "open_folder" => json!({"path": dir.path().join("home").join(whetstone_api::DATABASE_FILE)}),
            "eval_results" => json!({"id": 1}),
            "eval_export" => json!({"id": 1, "format": "csv"}),
            "review_create" => json!({"evaluation": 1}),
            "review_invite" => json!({"session": 1, "name": "ann"}),
            "review_revoke" => json!({"rater": 1}),
            "review_status" | "review_close" | "review_results" | "review_preferences" => json!({"id": 1}),
            "review_export" => json!({"id": 1, "format": "jsonl"}),
            "review_accept" => json!({"session": 1, "ratings": [1]}),
            "save_table" => json!({"table": "evaluation", "id": 1, "format": "csv", "out": "evaluation-1.csv"}),
            "review_next" | "review_progress" => json!({"token": "no-such-token"}),
            "review_submit" => json!({"token": "no-such-token", "item": 1}),
            // Nothing is being downloaded: answered, with nothing cancelled.
            "cancel_pull" => json!({"repo": "org/model"}),
            // Those that reach the hub or read model files are exercised in models_tests.rs.
            "search_models" | "pull_model" | "import_model" | "plan" => continue,
            _ => Value::Null,
        };
        match command {
            // The seeded run is completed and this Api has no worker command: refused with a reason,
            // after the arguments were understood.
            "start_run" | "pause_run" | "resume_run" | "stop_run" => {
                let err = api.dispatch(command, args).unwrap_err();
                assert_eq!(err.code(), "invalid_input", "{command}: {err}");
                assert!(!err.to_string().contains("arguments for"), "{command}: {err}");
            }
            // The seeded run has no adapter folder: refused as not ready, after the arguments were understood.
            "export_run" | "eval_run" | "playground" => {
                let err = api.dispatch(command, args).unwrap_err();
                assert_eq!(err.code(), "run_not_ready", "{command}: {err}");
            }
            "review_next" | "review_progress" | "review_submit" => {
                let err = api.dispatch(command, args).unwrap_err();
                assert_eq!(err.code(), "unauthorized", "{command}: {err}");
            }
            // This program was given no review server to start: sharing says so, and nothing is shared.
            "review_share" | "review_unshare" => {
                let err = api.dispatch(command, args).unwrap_err();
                assert_eq!(err.code(), "unsupported", "{command}: {err}");
            }
            "open_folder" => {
                let err = api.dispatch(command, json!({"path": rows})).unwrap_err();
                assert_eq!(err.code(), "path_not_allowed", "{command}: {err}");
                let err = api.dispatch(command, args).unwrap_err();
                assert!(err.code() == "invalid_input" && err.to_string().contains("is not a folder"), "{command}: {err}");
            }
            // No evaluation has been run in this home, so no review either.
            "eval_results" | "eval_export" | "review_create" | "review_invite" | "review_revoke" | "review_status" | "review_close"
            | "review_results" | "review_preferences" | "review_export" | "review_accept" | "review_judge" | "save_table" => {
                let err = api.dispatch(command, args).unwrap_err();
                assert_eq!(err.code(), "not_found", "{command}: {err}");
            }
            // This home's default model is absent on purpose; reaching that check shows the command was routed.
            "data_stats" | "data_preview" | "augment_start" => {
                let err = api.dispatch(command, args).unwrap_err();
                assert_eq!(err.code(), "no_model", "{command}: {err}");
            }
            _ => {
                api.dispatch(command, args).unwrap_or_else(|e| panic!("{command} failed: {e}"));
            }
        }
    }
}

#[test]
fn run_events_returns_whole_lines_and_the_offset_to_continue_from() {
    use whetstone_api::events::{LoggedEvent, RunEvent, WorkerEvent};
    use whetstone_engine::run::Event;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let first = "{\"time\":1.5,\"type\":\"checkpoint\",\"step\":4,\"path\":\"/r/checkpoints/step-4\"}\n{\"time\":2.0,\"type\":\"status\",\"status\":\"running\",\"pid\":7}\n";
    std::fs::write(&log, format!("{first}{{\"time\":3.0,\"type\":\"sa")).unwrap();
    let (events, next) = whetstone_api::jobs::read_events(&log, 0).unwrap();
    assert_eq!(
        events,
        vec![
            LoggedEvent { time: 1.5, event: RunEvent::Train(Event::Checkpoint { step: 4, path: "/r/checkpoints/step-4".into() }) },
            LoggedEvent { time: 2.0, event: RunEvent::Worker(WorkerEvent::Status { status: whetstone_api::RunStatus::Running, pid: 7 }) },
        ],
        "the line still being written waits"
    );
    assert_eq!(next, first.len() as u64);
    let (events, next2) = whetstone_api::jobs::read_events(&log, next).unwrap();
    assert!(events.is_empty());
    assert_eq!(next2, next);
    std::fs::OpenOptions::new().append(true).open(&log).and_then(|mut f| std::io::Write::write_all(&mut f, b"ved\",\"adapter\":\"/r/adapter\"}\n")).unwrap();
    let (events, _) = whetstone_api::jobs::read_events(&log, next).unwrap();
    assert_eq!(events, vec![LoggedEvent { time: 3.0, event: RunEvent::Train(Event::Saved { adapter: "/r/adapter".into() }) }]);
    // Events keep their shape on the wire: one object, the type tag beside the time.
    assert_eq!(serde_json::to_value(&events[0]).unwrap(), json!({"time": 3.0, "type": "saved", "adapter": "/r/adapter"}));
}

#[test]
fn a_running_run_whose_worker_is_gone_is_found_interrupted() {
    let (_dir, api) = temp_api();
    let (_, _, run_id) = seed(&api);
    // A process that has exited: its pid is not alive (once reaped).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    api.store().claim_run(run_id, pid).unwrap();
    let run = api.get_run(run_id).unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(run.pid.is_none());
    assert!(run.error.unwrap().contains("ended unexpectedly"));
    // And this process, which is alive, keeps its run running.
    api.store().claim_run(run_id, std::process::id()).unwrap();
    assert_eq!(api.get_run(run_id).unwrap().status, RunStatus::Running);
}

#[test]
fn data_clean_takes_per_finding_decisions_and_changes_nothing_until_applied() {
    let (dir, api) = temp_api();
    let rows = dir.path().join("pii.jsonl");
    std::fs::write(
        &rows,
        concat!(
            "{\"prompt\": \"Who?\", \"response\": \"Mail ann@example.com or bob@example.org.\"}\n",
            "{\"prompt\": \"Card?\", \"response\": \"It is 4111 1111 1111 1111.\"}\n",
            "{\"prompt\": \"Fine\", \"response\": \"Nothing personal here.\"}\n",
        ),
    )
    .unwrap();
    api.dispatch("data_import", json!({"path": rows, "name": "pii"})).unwrap();
    let proposal = api.dispatch("data_clean", json!({"dataset": "pii", "options": {"pii": true}})).unwrap();
    let listed = proposal["proposal"]["pii"]["listed"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(proposal["version"].is_null());
    let id = |kind: &str, text: &str| {
        listed.iter().find(|f| f["kind"] == kind && f["text"] == text).unwrap()["id"].as_str().unwrap().to_string()
    };
    let (bob, card) = (id("email", "bob@example.org"), id("credit_card", "4111 1111 1111 1111"));

    // Every finding needs a decision.
    let err = api.dispatch("data_clean", json!({"dataset": "pii", "options": {"pii": true}, "apply": true})).unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    let bad = json!({"dataset": "pii", "options": {"pii": true}, "apply": true, "decisions": {"default": "redact", "findings": {"9:9:9": "keep"}}});
    assert_eq!(api.dispatch("data_clean", bad).unwrap_err().code(), "invalid_input");
    assert_eq!(api.dispatch("data_versions", json!({"dataset": "pii"})).unwrap().as_array().unwrap().len(), 1);

    let args = json!({"dataset": "pii", "options": {"pii": true}, "apply": true,
                      "decisions": {"default": "redact", "findings": {bob: "keep", card: "drop"}}});
    let r = api.dispatch("data_clean", args).unwrap();
    assert_eq!(r["applied"]["pii_redacted"], 1);
    assert_eq!(r["applied"]["pii_kept"], 1);
    assert_eq!(r["applied"]["pii_rows_dropped"], 1);
    assert_eq!(r["version"]["version"], 2);
    let out = dir.path().join("out.jsonl");
    api.dispatch("data_export", json!({"dataset": "pii", "out": out})).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("Mail [EMAIL] or bob@example.org."), "{text}");
    assert!(!text.contains("4111"), "{text}");
}

#[test]
fn api_can_be_shared_between_threads() {
    // The desktop shell keeps one Api in its state and the HTTP server calls it from a pool.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Api>();
    let (_dir, api) = temp_api();
    seed(&api);
    let api = std::sync::Arc::new(api);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            std::thread::spawn(move || api.list_runs().unwrap().len())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 1);
    }
}
