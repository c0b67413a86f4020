use rusqlite::Connection;
use std::path::Path;
use whetstone_store::{Error, ModelSource, Store, LATEST_VERSION, MIGRATIONS};

/// The schema as SQLite records it, in a stable order, for comparing two databases.
fn schema(path: &Path) -> Vec<(String, String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, COALESCE(sql, '') FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn user_version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Rows written with the columns each schema version has, so they can be checked after upgrade.
fn seed(path: &Path, version: u32) {
    let conn = Connection::open(path).unwrap();
    if version >= 1 {
        conn.execute_batch(
            "INSERT INTO models (name, source, location, architecture, parameters, license, commercial_use)
                 VALUES ('SmolLM2', 'bundled', '/models/smol.gguf', 'llama', 134515008, 'Apache-2.0', 1);
             INSERT INTO datasets (name, source_path, source_sha256, rows)
                 VALUES ('support tickets', '/data/tickets.jsonl',
                         'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 42);
             INSERT INTO runs (model_id, dataset_id, config, status, out_dir)
                 VALUES (1, 1, '{\"rank\": 8}', 'completed', '/runs/1');",
        )
        .unwrap();
    }
    if version >= 5 {
        conn.execute("INSERT INTO allowed_folders (path) VALUES ('/data/projects')", [])
            .unwrap();
    }
}

#[test]
fn migration_versions_are_consecutive_from_one() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version as usize, i + 1, "migration `{}` is out of order", m.name);
    }
    assert_eq!(LATEST_VERSION as usize, MIGRATIONS.len());
}

#[test]
fn fresh_file_gets_latest_schema_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    assert_eq!(user_version(&path), LATEST_VERSION);
    let names: Vec<String> = schema(&path)
        .into_iter()
        .filter(|(t, _, _)| t == "table")
        .map(|(_, n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["allowed_folders", "data_queue_items", "data_queues", "dataset_versions", "datasets", "evaluation_items", "evaluation_metrics", "evaluation_outputs", "evaluations", "models", "review_assignments",
         "review_raters", "review_ratings", "review_sessions", "runs"]
    );

    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(store);
}

#[test]
fn empty_existing_file_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn every_earlier_version_upgrades_to_the_latest_schema_keeping_data() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.db");
    drop(Store::open(&reference).unwrap());
    let expected = schema(&reference);

    for version in 0..=LATEST_VERSION {
        let path = dir.path().join(format!("from-v{version}.db"));
        drop(Store::open_at_version(&path, version).unwrap());
        assert_eq!(user_version(&path), version, "prefix {version} not applied as asked");
        seed(&path, version);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
        assert_eq!(schema(&path), expected, "schema after upgrading from v{version}");

        if version >= 1 {
            let models = store.list_models().unwrap();
            assert_eq!(models.len(), 1);
            assert_eq!(models[0].name, "SmolLM2");
            assert_eq!(models[0].source, ModelSource::Bundled);
            assert_eq!(models[0].parameters, Some(134_515_008));
            assert_eq!(models[0].commercial_use, Some(true));
            let datasets = store.list_datasets().unwrap();
            assert_eq!(datasets.len(), 1);
            assert_eq!(datasets[0].rows, 42);
            let runs = store.list_runs().unwrap();
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0].config, serde_json::json!({"rank": 8}));
            assert_eq!(runs[0].dataset_id, Some(datasets[0].id));
            let folders: Vec<String> = store
                .list_allowed_folders()
                .unwrap()
                .into_iter()
                .map(|f| f.path)
                .collect();
            let expected_folders: &[&str] = if version >= 5 { &["/data/projects"] } else { &[] };
            assert_eq!(folders, expected_folders, "allowed folders after upgrading from v{version}");
        } else {
            assert!(store.list_models().unwrap().is_empty());
        }
    }
}

#[test]
fn reopening_at_latest_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    drop(Store::open(&path).unwrap());
    seed(&path, LATEST_VERSION);
    let before = schema(&path);
    let store = Store::open(&path).unwrap();
    assert_eq!(schema(&path), before);
    assert_eq!(store.list_models().unwrap().len(), 1);
}

#[test]
fn text_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content = b"These are my notes, not a database.\nSecond line.\n".repeat(20);
    std::fs::write(&path, &content).unwrap();

    let err = Store::open(&path).err().expect("a text file must not open as a store");
    assert!(matches!(err, Error::NotADatabase { .. }), "got {err:?}");
    let message = err.to_string();
    assert!(message.contains("notes.txt"), "message does not name the file: {message}");
    assert!(message.contains("not an SQLite file"), "unclear message: {message}");

    assert_eq!(std::fs::read(&path).unwrap(), content);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, ["notes.txt"], "opening left extra files behind");
}

#[test]
fn short_garbage_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.db");
    std::fs::write(&path, b"x").unwrap();
    let err = Store::open(&path).err().expect("a one-byte file is not a database");
    assert!(matches!(err, Error::NotADatabase { .. }), "got {err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"x");
}

#[test]
fn database_from_a_newer_release_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", LATEST_VERSION + 5)
        .unwrap();
    let before = schema(&path);
    let err = Store::open(&path).err().expect("a newer schema must be refused");
    match &err {
        Error::TooNew { found, latest, .. } => {
            assert_eq!(*found, LATEST_VERSION + 5);
            assert_eq!(*latest, LATEST_VERSION);
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert!(err.to_string().contains("future.db"));
    assert_eq!(schema(&path), before);
    assert_eq!(user_version(&path), LATEST_VERSION + 5);
}

#[test]
fn asking_for_an_unknown_version_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    let err = Store::open_at_version(&path, LATEST_VERSION + 1)
        .err()
        .expect("unknown version");
    assert!(matches!(err, Error::Invalid { .. }), "got {err:?}");
    assert!(!path.exists(), "nothing should be created for a bad request");
}

#[test]
fn migration_5_adds_an_empty_list_of_allowed_folders_with_unique_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    drop(Store::open_at_version(&path, 4).unwrap());
    seed(&path, 4);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    assert!(store.list_allowed_folders().unwrap().is_empty());
    assert_eq!(store.list_models().unwrap().len(), 1, "older rows survive");

    let conn = Connection::open(&path).unwrap();
    conn.execute("INSERT INTO allowed_folders (path) VALUES ('/srv/data')", [])
        .unwrap();
    let duplicate = conn.execute("INSERT INTO allowed_folders (path) VALUES ('/srv/data')", []);
    assert!(duplicate.is_err(), "the same folder twice must be refused by the schema");
    let empty = conn.execute("INSERT INTO allowed_folders (path) VALUES ('')", []);
    assert!(empty.is_err(), "an empty path must be refused by the schema");
    let added_at: String = conn
        .query_row("SELECT added_at FROM allowed_folders WHERE path = '/srv/data'", [], |r| r.get(0))
        .unwrap();
    assert!(added_at.ends_with('Z') && added_at.contains('T'), "RFC 3339 UTC: {added_at}");
}

#[test]
fn migration_6_keeps_evaluations_whole_and_sides_known() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    drop(Store::open_at_version(&path, 5).unwrap());
    seed(&path, 5);
    let store = Store::open(&path).unwrap();
    assert!(store.list_evaluations(None).unwrap().is_empty());
    assert_eq!(store.list_runs().unwrap().len(), 1, "older rows survive");

    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    conn.execute(
        "INSERT INTO evaluations (run_id, model, source, settings) VALUES (1, '/models/smol.gguf', 'rows', '{}')",
        [],
    )
    .unwrap();
    conn.execute("INSERT INTO evaluation_items (evaluation_id, position, messages, prompt) VALUES (1, 1, '[]', 'hi')", [])
        .unwrap();
    let unknown_side =
        conn.execute("INSERT INTO evaluation_outputs (evaluation_id, position, side, text, tokens) VALUES (1, 1, 'judge', 'x', 1)", []);
    assert!(unknown_side.is_err(), "a side other than base, tuned or compare must be refused by the schema");
    let no_item =
        conn.execute("INSERT INTO evaluation_outputs (evaluation_id, position, side, text, tokens) VALUES (1, 2, 'base', 'x', 1)", []);
    assert!(no_item.is_err(), "an output must belong to an item");
    let bad_json = conn.execute("INSERT INTO evaluation_metrics (evaluation_id, side, metrics) VALUES (1, 'base', 'not json')", []);
    assert!(bad_json.is_err());
    conn.execute("DELETE FROM runs WHERE id = 1", []).unwrap();
    let run: Option<i64> = conn.query_row("SELECT run_id FROM evaluations WHERE id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(run, None, "deleting a run keeps its evaluations");
}

#[test]
fn migration_7_keeps_one_current_rating_per_rater_and_item_and_tokens_unique() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whetstone.db");
    drop(Store::open_at_version(&path, 6).unwrap());
    seed(&path, 6);
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO evaluations (model, source, settings) VALUES ('/m', 'rows', '{}');
         INSERT INTO review_sessions (evaluation_id, name, baseline, candidate, criteria, raters_per_item, seed)
             VALUES (1, 's', 'base', 'tuned', '[]', 2, -5);
         INSERT INTO review_raters (session_id, name, kind, token_sha256) VALUES (1, 'ann', 'human', printf('%064d', 1));
         INSERT INTO review_assignments (rater_id, item, queue, swapped) VALUES (1, 1, 1, 0);
         INSERT INTO review_ratings (rater_id, item, rating, current) VALUES (1, 1, '{}', 1);",
    )
    .unwrap();
    let same_side = conn.execute(
        "INSERT INTO review_sessions (evaluation_id, name, baseline, candidate, criteria, raters_per_item, seed) VALUES (1, 's', 'base', 'base', '[]', 2, 0)",
        [],
    );
    assert!(same_side.is_err(), "a side cannot be compared with itself");
    let second_current = conn.execute("INSERT INTO review_ratings (rater_id, item, rating, current) VALUES (1, 1, '{}', 1)", []);
    assert!(second_current.is_err(), "one current rating per rater and item");
    conn.execute("INSERT INTO review_ratings (rater_id, item, rating, current) VALUES (1, 1, '{}', 0)", []).unwrap();
    let unassigned = conn.execute("INSERT INTO review_ratings (rater_id, item, rating, current) VALUES (1, 2, '{}', 0)", []);
    assert!(unassigned.is_err(), "a rating belongs to an item of the rater's queue");
    let same_token = conn.execute("INSERT INTO review_raters (session_id, name, kind, token_sha256) VALUES (1, 'bob', 'human', printf('%064d', 1))", []);
    assert!(same_token.is_err(), "two raters never share a token");
    let deleting_the_evaluation = conn.execute("DELETE FROM evaluations WHERE id = 1", []);
    assert!(deleting_the_evaluation.is_err(), "a reviewed evaluation stays");
}
