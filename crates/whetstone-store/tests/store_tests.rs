use serde_json::json;
use whetstone_store::{Error, ModelSource, NewDataset, NewDatasetVersion, NewModel, NewRun, RunStatus, Store};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("whetstone.db")).unwrap();
    (dir, store)
}

fn smol() -> NewModel {
    NewModel {
        name: "SmolLM2-135M-Instruct".into(),
        source: ModelSource::Bundled,
        location: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        architecture: Some("llama".into()),
        parameters: Some(134_515_008),
        license: Some("Apache-2.0".into()),
        commercial_use: Some(true),
    }
}

fn tickets() -> NewDataset {
    NewDataset {
        name: "tickets".into(),
        source_path: "/data/tickets.jsonl".into(),
        source_sha256: "0123456789abcdef".repeat(4),
        rows: 1200,
    }
}

#[test]
fn models_round_trip() {
    let (_dir, store) = open();
    let a = store.insert_model(&smol()).unwrap();
    let mut other = smol();
    other.name = "Local Qwen".into();
    other.source = ModelSource::Local;
    other.location = "/models/qwen".into();
    other.parameters = None;
    other.commercial_use = None;
    let b = store.insert_model(&other).unwrap();

    assert_eq!(store.get_model(a.id).unwrap(), a);
    assert_eq!(a.parameters, Some(134_515_008));
    assert!(a.added_at.ends_with('Z') && a.added_at.contains('T'), "{}", a.added_at);
    assert_eq!(b.commercial_use, None);
    assert_eq!(store.list_models().unwrap(), vec![a.clone(), b]);
    assert_eq!(
        store.find_model_by_location(&a.location).unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(store.find_model_by_location("/nowhere").unwrap(), None);

    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["source"], "bundled");
    assert_eq!(json["commercial_use"], true);
}

#[test]
fn duplicate_model_location_is_rejected() {
    let (_dir, store) = open();
    store.insert_model(&smol()).unwrap();
    let err = store.insert_model(&smol()).unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
}

#[test]
fn missing_rows_are_not_found() {
    let (_dir, store) = open();
    match store.get_model(7).unwrap_err() {
        Error::NotFound { what, id } => assert_eq!((what, id), ("model", 7)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(store.get_dataset(1), Err(Error::NotFound { what: "dataset", .. })));
    assert!(matches!(store.get_run(1), Err(Error::NotFound { what: "run", .. })));
    assert!(matches!(
        store.set_run_status(1, RunStatus::Failed),
        Err(Error::NotFound { what: "run", .. })
    ));
}

#[test]
fn invalid_inserts_name_the_field() {
    let (_dir, store) = open();
    let mut bad = smol();
    bad.name = "  ".into();
    let err = store.insert_model(&bad).unwrap_err();
    assert!(err.to_string().contains("model name"), "{err}");

    let mut bad = tickets();
    bad.source_sha256 = "XYZ".into();
    let err = store.insert_dataset(&bad).unwrap_err();
    assert!(err.to_string().contains("source_sha256"), "{err}");
    assert!(store.list_datasets().unwrap().is_empty());
}

#[test]
fn runs_reference_models_and_datasets() {
    let (_dir, store) = open();
    let model = store.insert_model(&smol()).unwrap();
    let dataset = store.insert_dataset(&tickets()).unwrap();
    assert_eq!(dataset.rows, 1200);

    let run = store
        .insert_run(&NewRun {
            model_id: model.id,
            dataset_id: Some(dataset.id),
            config: json!({"rank": 16, "alpha": 32, "lr": 2e-4}),
            status: RunStatus::Queued,
            out_dir: "/runs/1".into(),
        })
        .unwrap();
    assert_eq!(run.config["rank"], 16);
    assert_eq!(run.status, RunStatus::Queued);

    let updated = store.set_run_status(run.id, RunStatus::Running).unwrap();
    assert_eq!(updated.status, RunStatus::Running);
    assert!(updated.updated_at >= run.updated_at);
    assert_eq!(store.list_runs().unwrap(), vec![updated]);

    let err = store
        .insert_run(&NewRun {
            model_id: model.id + 100,
            dataset_id: None,
            config: json!({}),
            status: RunStatus::Queued,
            out_dir: "/runs/2".into(),
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "model", .. }), "{err:?}");

    let err = store
        .insert_run(&NewRun {
            model_id: model.id,
            dataset_id: Some(dataset.id + 100),
            config: json!({}),
            status: RunStatus::Queued,
            out_dir: "/runs/2".into(),
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "dataset", .. }), "{err:?}");
}

#[test]
fn foreign_keys_are_enforced_by_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    let store = Store::open(&path).unwrap();
    let model = store.insert_model(&smol()).unwrap();
    store
        .insert_run(&NewRun {
            model_id: model.id,
            dataset_id: None,
            config: json!({}),
            status: RunStatus::Completed,
            out_dir: "/runs/1".into(),
        })
        .unwrap();
    // Deleting a model that a run points at must fail, or the run would dangle.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    let err = conn
        .execute("DELETE FROM models WHERE id = ?1", [model.id])
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
}

#[test]
fn corrupt_values_are_reported_with_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    let store = Store::open(&path).unwrap();
    let model = store.insert_model(&smol()).unwrap();
    store
        .insert_run(&NewRun {
            model_id: model.id,
            dataset_id: None,
            config: json!({}),
            status: RunStatus::Completed,
            out_dir: "/runs/1".into(),
        })
        .unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE runs SET status = 'exploded'", [])
        .unwrap();
    let err = store.list_runs().unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Corrupt { what: "run", id: 1, .. }), "{err:?}");
    assert!(message.contains("exploded"), "{message}");
}

#[test]
fn two_handles_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    let first = Store::open(&path).unwrap();
    let second = Store::open(&path).unwrap();
    let model = first.insert_model(&smol()).unwrap();
    assert_eq!(second.list_models().unwrap(), vec![model]);
}

#[test]
fn dataset_versions_number_themselves_and_keep_their_provenance() {
    let (_dir, mut store) = open();
    let d = store.insert_dataset(&tickets()).unwrap();
    let v = |parent, rows, step: &str| NewDatasetVersion {
        dataset_id: d.id,
        parent,
        steps: json!([{"step": step, "removed": 3}]),
        rows_path: format!("/home/datasets/{}/v.jsonl", d.id),
        rows,
    };
    let v1 = store.insert_dataset_version(&v(None, 1200, "import")).unwrap();
    let v2 = store.insert_dataset_version(&v(Some(1), 1197, "dedupe")).unwrap();
    assert_eq!((v1.version, v2.version, v2.parent), (1, 2, Some(1)));
    assert_eq!(v2.steps[0]["step"], "dedupe");
    assert_eq!(store.get_dataset(d.id).unwrap().rows, 1197);
    assert_eq!(store.list_dataset_versions(d.id).unwrap(), vec![v1, v2.clone()]);
    assert_eq!(store.get_dataset_version(d.id, 2).unwrap(), v2);
    assert!(matches!(store.insert_dataset_version(&v(Some(5), 1, "x")), Err(Error::Invalid { .. })));
    let mut missing = v(None, 1, "x");
    missing.dataset_id = 999;
    assert!(matches!(store.insert_dataset_version(&missing), Err(Error::NotFound { .. })));
    assert_eq!(store.find_datasets_by_name("tickets").unwrap().len(), 1);
}

#[test]
fn a_dataset_and_its_first_version_are_recorded_together_or_not_at_all() {
    let (_dir, mut store) = open();
    let (d, v) = store
        .insert_dataset_with_first_version::<Error>(&tickets(), |id| Ok((format!("datasets/{id}/v1.jsonl"), json!([{"step": "import"}]))))
        .unwrap();
    assert_eq!((v.dataset_id, v.version, v.parent, v.rows), (d.id, 1, None, d.rows));
    assert_eq!(v.rows_path, format!("datasets/{}/v1.jsonl", d.id));

    // Placing the rows fails: neither the dataset nor a version is left behind.
    let mut other = tickets();
    other.name = "other".into();
    let err = store
        .insert_dataset_with_first_version(&other, |_| Err::<(String, serde_json::Value), _>(Error::Invalid { what: "rows file", reason: "disk full".into() }))
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(store.find_datasets_by_name("other").unwrap().is_empty());
    assert_eq!(store.list_datasets().unwrap(), vec![store.get_dataset(d.id).unwrap()]);
    // An invalid dataset never reaches `place`.
    let mut bad = tickets();
    bad.source_sha256 = "xyz".into();
    let called = std::cell::Cell::new(false);
    assert!(store
        .insert_dataset_with_first_version::<Error>(&bad, |_| {
            called.set(true);
            Ok(("p".into(), json!([])))
        })
        .is_err());
    assert!(!called.get());
}

#[test]
fn model_origin_is_recorded_and_updated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("w.db")).unwrap();
    let m = store.insert_model(&smol()).unwrap();
    assert_eq!(m.origin, whetstone_store::ModelOrigin::default());
    let origin = whetstone_store::ModelOrigin {
        path: Some("/cache/models--a--b/snapshots/abc".into()),
        repo_id: Some("a/b".into()),
        revision: Some("abc".into()),
        files: Some(serde_json::json!([{"name": "model.safetensors", "size": 3, "sha256": "00"}])),
        sha256: None,
        context_length: Some(8192),
    };
    let m = store.set_model_origin(m.id, &origin).unwrap();
    assert_eq!(m.origin, origin);
    assert_eq!(store.get_model(m.id).unwrap().origin, origin);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["repo_id"], "a/b", "origin fields sit beside the others: {json}");
    let mut renamed = smol();
    renamed.name = "renamed".into();
    renamed.commercial_use = Some(false);
    let m = store.update_model(m.id, &renamed).unwrap();
    assert_eq!((m.name.as_str(), m.commercial_use), ("renamed", Some(false)));
    assert!(store.set_model_origin(9999, &origin).is_err());
}

#[test]
fn many_processes_opening_a_new_database_at_once_all_succeed() {
    // The CLI, a training worker and the app can all open a fresh home at the same moment.
    for _ in 0..25 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Store::open(&path).map(|s| s.schema_version().unwrap()))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), whetstone_store::LATEST_VERSION);
        }
    }
}

#[test]
fn allowed_folders_add_list_and_remove() {
    let (_dir, store) = open();
    assert!(store.list_allowed_folders().unwrap().is_empty());
    let b = store.add_allowed_folder("/srv/b").unwrap();
    let a = store.add_allowed_folder("/srv/a").unwrap();
    assert_eq!(a.path, "/srv/a");
    assert_ne!(a.id, b.id);

    let again = store.add_allowed_folder("/srv/a").unwrap();
    assert_eq!(again, a, "adding twice keeps the first row");
    let listed: Vec<String> = store
        .list_allowed_folders()
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(listed, ["/srv/a", "/srv/b"]);

    assert_eq!(store.remove_allowed_folder("/srv/a").unwrap(), Some(a));
    assert_eq!(store.remove_allowed_folder("/srv/a").unwrap(), None);
    assert_eq!(store.list_allowed_folders().unwrap(), [b]);

    let err = store.add_allowed_folder("  ").unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "got {err:?}");
}

#[test]
fn a_data_queue_makes_one_version_at_most_and_then_takes_no_decisions() {
    use whetstone_store::{ItemDecision, NewDataQueue, NewQueueItem};
    let (_dir, mut store) = open();
    let d = store.insert_dataset(&tickets()).unwrap();
    let version = |parent, rows| NewDatasetVersion {
        dataset_id: d.id,
        parent,
        steps: json!([{"step": "x"}]),
        rows_path: format!("/home/datasets/{}/v.jsonl", d.id),
        rows,
    };
    store.insert_dataset_version(&version(None, 2)).unwrap();
    let new = NewDataQueue { kind: "sample".into(), dataset_id: d.id, version: 1, settings: json!({"size": 2}) };
    let item = |source_row| NewQueueItem { source_row, row: r#"{"line":1,"text":"a"}"#.into(), provenance: None, problem: None };
    assert!(matches!(store.insert_data_queue(&new, &[]), Err(Error::Invalid { .. })), "a queue holds rows");
    let missing = NewDataQueue { version: 9, ..new.clone() };
    assert!(matches!(store.insert_data_queue(&missing, &[item(1)]), Err(Error::NotFound { .. })));
    let q = store.insert_data_queue(&new, &[item(2), item(1)]).unwrap();
    let items = store.data_queue_items(q.id).unwrap();
    assert_eq!(items.iter().map(|i| (i.item, i.source_row)).collect::<Vec<_>>(), [(1, 2), (2, 1)]);

    let flag = ItemDecision { decision: "flag", edited_row: None, note: Some("wrong") };
    let decided = store.decide_queue_item(q.id, 1, &flag).unwrap().unwrap();
    assert_eq!((decided.decision.as_deref(), decided.note.as_deref()), (Some("flag"), Some("wrong")));
    assert!(decided.decided_at.is_some());
    // The table itself refuses an edit without its row.
    let bad = ItemDecision { decision: "edit", edited_row: None, note: None };
    assert!(store.decide_queue_item(q.id, 2, &bad).is_err());
    assert!(matches!(store.decide_queue_item(q.id, 7, &flag), Err(Error::NotFound { .. })));

    let (applied, v2) = store.apply_data_queue(q.id, &version(Some(1), 2)).unwrap().unwrap();
    assert_eq!((applied.applied_version, v2.version, v2.parent), (Some(2), 2, Some(1)));
    assert!(store.apply_data_queue(q.id, &version(Some(1), 2)).unwrap().is_none(), "a queue makes one version");
    assert_eq!(store.list_dataset_versions(d.id).unwrap().len(), 2);
    assert!(store.decide_queue_item(q.id, 2, &flag).unwrap().is_none(), "an applied queue takes no decisions");
    assert_eq!(store.data_queue_item(q.id, 2).unwrap().decision, None);
    assert_eq!(store.list_data_queues(Some(d.id)).unwrap(), vec![applied.clone()]);
    assert_eq!(store.list_data_queues(Some(d.id + 1)).unwrap(), vec![]);
    assert!(matches!(store.apply_data_queue(q.id + 1, &version(Some(1), 2)), Err(Error::NotFound { .. })));
}

#[test]
fn a_downloaded_model_is_found_by_its_snapshot_folder_as_well_as_its_hub_id() {
    let (_dir, store) = open();
    let mut hub = smol();
    hub.source = ModelSource::Hub;
    hub.location = "HuggingFaceTB/SmolLM2-135M-Instruct".into();
    let added = store.insert_model(&hub).unwrap();
    let snapshot = "/cache/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/abc";
    let origin = whetstone_store::ModelOrigin {
        path: Some(snapshot.into()),
        repo_id: Some(hub.location.clone()),
        revision: Some("abc".into()),
        files: None,
        sha256: None,
        context_length: None,
    };
    let added = store.set_model_origin(added.id, &origin).unwrap();
    // A run started on the snapshot folder names the model that is already there.
    assert_eq!(store.find_model_by_location(snapshot).unwrap(), Some(added.clone()));
    assert_eq!(store.find_model_by_location(&hub.location).unwrap(), Some(added));
    assert_eq!(store.find_model_by_location("/cache/elsewhere").unwrap(), None);
}
