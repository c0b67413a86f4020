//! A run's phases, warnings and files as the dashboard reads them, and discarding a run: a real
//! tiny training run in this process (the worker command only has to exit; the test runs the
//! worker itself).

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use whetstone_api::events::{LoggedEvent, RunEvent};
use whetstone_api::jobs::{read_events, EVENTS_FILE};
use whetstone_api::series::SeriesArgs;
use whetstone_api::{Api, RunStatus, StartRun, WorkerCommand};
use whetstone_engine::run::{Event, Phase};

struct Trained {
    _dir: tempfile::TempDir,
    root: PathBuf,
    api: Api,
    run: i64,
    out: PathBuf,
}

fn rows(dir: &Path, name: &str, skip: usize, take: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/instructions.jsonl");
    let text: String = std::fs::read_to_string(src).unwrap().lines().skip(skip).take(take).map(|l| format!("{l}\n")).collect();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Six steps with an evaluation and a checkpoint every two, trained to the end.
fn trained(settings: serde_json::Value) -> Trained {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let api = Api::open(&root.join("home")).unwrap().with_default_model_path(None);
    let model = root.join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let data = rows(&root, "train.jsonl", 0, 12);
    let val = rows(&root, "val.jsonl", 12, 4);
    let mut s = json!({"steps": 6, "batch": 2, "max-len": 256, "lora-r": 4, "lr": 0.005, "seed": 3, "threads": 1,
                       "eval-every": 2, "save-every": 2, "keep-checkpoints": 1});
    s.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
    let req: StartRun = serde_json::from_value(json!({"model": model, "data": data, "val": val, "settings": s})).unwrap();
    let run = api.start_run_with(&req, &WorkerCommand { program: PathBuf::from("/bin/true"), args: vec![] }).unwrap();
    let out = PathBuf::from(&run.out_dir);
    whetstone_api::worker::run_worker(&out, Arc::new(AtomicBool::new(false))).unwrap();
    Trained { _dir: dir, root, api, run: run.id, out }
}

fn events(out: &Path) -> Vec<LoggedEvent> {
    read_events(&out.join(EVENTS_FILE), 0).unwrap().0
}

/// Every file under `dir` with its bytes, for comparing a folder before and after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn the_worker_reports_each_phase_where_its_work_happens_and_the_series_gives_them_back() {
    let t = trained(json!({}));
    let ev: Vec<RunEvent> = events(&t.out).into_iter().map(|e| e.event).collect();
    let phase_events: Vec<(Phase, bool)> = ev
        .iter()
        .filter_map(|e| match e {
            RunEvent::Train(Event::PhaseStarted { phase }) => Some((*phase, false)),
            RunEvent::Train(Event::PhaseDone { phase, seconds }) => {
                assert!(*seconds >= 0.0 && *seconds < 120.0, "{phase:?} took {seconds}");
                Some((*phase, true))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        phase_events,
        [
            (Phase::LoadingModel, false),
            (Phase::LoadingModel, true),
            (Phase::ReadingData, false),
            (Phase::ReadingData, true),
            (Phase::FirstStep, false),
            (Phase::FirstStep, true)
        ]
    );
    // The model is loaded before the data is read, the data before training starts, and the first
    // step is done only after step 1 is reported.
    let at = |want: &dyn Fn(&RunEvent) -> bool| ev.iter().position(want).unwrap();
    let data_done = at(&|e| matches!(e, RunEvent::Train(Event::PhaseDone { phase: Phase::ReadingData, .. })));
    let started = at(&|e| matches!(e, RunEvent::Train(Event::Started { .. })));
    let step1 = at(&|e| matches!(e, RunEvent::Train(Event::Step { metrics, .. }) if metrics.step == 1));
    let first_done = at(&|e| matches!(e, RunEvent::Train(Event::PhaseDone { phase: Phase::FirstStep, .. })));
    assert!(data_done < started && started < step1 && step1 < first_done, "{ev:?}");

    // A screen that opens the run later gets the phases and the warnings from run_series.
    let series = t.api.run_series(&SeriesArgs { id: t.run, buckets: None }).unwrap();
    assert_eq!(series.phases.len(), 6);
    let warned = ev.iter().filter(|e| matches!(e, RunEvent::Train(Event::Warning { .. }))).count();
    assert_eq!(series.warnings.len(), warned);
    assert!(series.warnings.iter().all(|w| matches!(w.event, RunEvent::Train(Event::Warning { .. }))));
}

#[test]
fn the_series_keeps_the_newest_sessions_phases_and_every_warning() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    let lines = [
        r#"{"time":1.0,"type":"status","status":"running","pid":1}"#,
        r#"{"time":1.1,"type":"phase_started","phase":"loading_model"}"#,
        r#"{"time":1.2,"type":"phase_done","phase":"loading_model","seconds":0.1}"#,
        r#"{"time":1.3,"type":"warning","code":"too_few_examples","message":"few","step":0}"#,
        r#"{"time":2.0,"type":"status","status":"running","pid":2}"#,
        r#"{"time":2.1,"type":"phase_started","phase":"loading_model"}"#,
        r#"{"time":2.2,"type":"warning","code":"diverging","message":"up","step":9}"#,
    ];
    std::fs::write(out.join(EVENTS_FILE), lines.join("\n") + "\n").unwrap();
    let id = {
        let store = api.store();
        let m = store
            .insert_model(&whetstone_store::NewModel {
                name: "m".into(),
                source: whetstone_store::ModelSource::Local,
                location: "/m".into(),
                architecture: None,
                parameters: None,
                license: None,
                commercial_use: None,
            })
            .unwrap();
        store
            .insert_run(&whetstone_store::NewRun { model_id: m.id, dataset_id: None, config: json!({}), status: RunStatus::Paused, out_dir: out.display().to_string() })
            .unwrap()
            .id
    };
    let s = api.run_series(&SeriesArgs { id, buckets: None }).unwrap();
    assert_eq!(s.phases.len(), 1, "the second session's phases only: {:?}", s.phases);
    assert_eq!(s.phases[0].time, 2.1);
    let codes: Vec<String> = s
        .warnings
        .iter()
        .map(|w| match &w.event {
            RunEvent::Train(Event::Warning { code, .. }) => code.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, ["too_few_examples", "diverging"], "warnings of every session, oldest first");
}

#[test]
fn run_files_names_the_adapter_and_the_best_and_last_checkpoints() {
    let t = trained(json!({}));
    let run = t.api.get_run(t.run).unwrap();
    let best = run.best_step.expect("the run evaluated");
    let f = t.api.run_files(t.run).unwrap();
    assert_eq!(f.folder, t.out);
    assert!(f.folder_exists);
    let b = f.best.as_ref().expect("the best checkpoint is kept");
    assert_eq!(b.step, best);
    assert_eq!(b.eval_loss, run.best_eval_loss);
    assert!(b.path.join("manifest.json").is_file());
    let last = f.last.as_ref().expect("a last checkpoint");
    assert_eq!(last.step, 6);
    let steps: Vec<u64> = f.checkpoints.iter().map(|c| c.step).collect();
    // keep-checkpoints 1 keeps the newest; the best stays besides it.
    let mut want = vec![6];
    if best != 6 {
        want.push(best);
    }
    assert_eq!(steps, want);
    let adapter = f.adapter.as_ref().expect("an adapter");
    assert!(adapter.path.join("adapter_model.safetensors").is_file());
    assert!(adapter.best, "load-best-at-end: the adapter is the best evaluation's");
    assert_eq!(adapter.step, Some(best));
    let names: Vec<String> = f.own.iter().map(|o| o.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for name in ["adapter", "checkpoints", "events.jsonl", "job.json", "metrics.jsonl"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    assert_eq!(f.own_bytes, f.own.iter().map(|o| o.bytes).sum::<u64>());
    assert!(f.own_bytes > adapter.bytes);
    assert!(f.others.is_empty());
}

#[test]
fn discarding_deletes_the_runs_files_only_marks_it_and_a_second_discard_is_refused() {
    let t = trained(json!({}));
    // The user's own file in the run folder, and an export elsewhere, must survive.
    std::fs::write(t.out.join("my-notes.txt"), "keep me").unwrap();
    let export = t.root.join("exports").join("tuned");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::copy(t.out.join("adapter/adapter_model.safetensors"), export.join("adapter_model.safetensors")).unwrap();
    let outside_before = snapshot(&t.root.join("exports"));
    let data_before = std::fs::read(t.root.join("train.jsonl")).unwrap();
    let expected = t.api.run_files(t.run).unwrap();

    let d = t.api.discard_run(t.run).unwrap();
    assert_eq!(d.run.status, RunStatus::Discarded);
    assert_eq!(d.freed_bytes, expected.own_bytes);
    assert_eq!(d.deleted, expected.own);
    assert_eq!(d.kept, vec![t.out.join("my-notes.txt")]);
    assert!(!d.folder_removed, "the folder still holds the user's file");
    let left: Vec<String> = std::fs::read_dir(&t.out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["my-notes.txt"]);
    assert_eq!(std::fs::read_to_string(t.out.join("my-notes.txt")).unwrap(), "keep me");
    assert_eq!(snapshot(&t.root.join("exports")), outside_before, "exports are untouched");
    assert_eq!(std::fs::read(t.root.join("train.jsonl")).unwrap(), data_before, "the data is untouched");
    assert!(t.root.join("tiny/model.safetensors").is_file(), "the model is untouched");

    // The record stays, saying what happened; the run can no longer be resumed or discarded.
    let run = t.api.get_run(t.run).unwrap();
    assert_eq!(run.status, RunStatus::Discarded);
    assert!(run.error.as_deref().unwrap().starts_with("Discarded: "), "{:?}", run.error);
    assert!(t.api.list_runs().unwrap().iter().any(|r| r.id == t.run));
    let again = t.api.discard_run(t.run).unwrap_err();
    assert_eq!(again.code(), "already_discarded");
    assert!(again.to_string().contains(&format!("run {} was discarded already", t.run)), "{again}");
    assert_eq!(t.api.resume_run_with(t.run, &WorkerCommand { program: "/bin/true".into(), args: vec![] }).unwrap_err().code(), "invalid_input");
    // What a screen reads of it still answers, with nothing in it.
    assert!(t.api.run_events(t.run, 0).unwrap().events.is_empty());
    let s = t.api.run_series(&SeriesArgs { id: t.run, buckets: None }).unwrap();
    assert_eq!(s.train_points, 0);
    // A worker that would still report on it cannot bring it back.
    t.api.store().finish_run(t.run, RunStatus::Stopped, None).unwrap();
    assert_eq!(t.api.get_run(t.run).unwrap().status, RunStatus::Discarded);
    assert!(t.api.store().claim_run(t.run, 1).is_err());
}

#[test]
fn discarding_a_run_whose_folder_holds_only_its_files_removes_the_folder() {
    let t = trained(json!({"steps": 2, "eval-every": 0}));
    let d = t.api.dispatch("discard_run", json!({"id": t.run})).unwrap();
    assert_eq!(d["folder_removed"], true);
    assert!(!t.out.exists());
    assert!(t.root.join("home").join("whetstone.db").is_file());
    let f = t.api.run_files(t.run).unwrap();
    assert!(!f.folder_exists && f.own.is_empty() && f.adapter.is_none());
}
