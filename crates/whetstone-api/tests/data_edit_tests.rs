//! Rows edited and deleted by hand become a new dataset version, checked by the importer's own
//! record reader; and files a page sends by content are kept in the imports folder under fresh,
//! clean names and imported from there.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use whetstone_api::dispatch::Caller;
use whetstone_api::Api;

fn setup() -> (tempfile::TempDir, Api) {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap().with_default_model_path(None);
    (dir, api)
}

/// Five prompt/response rows, imported as `support`.
fn import(dir: &Path, api: &Api) {
    let lines: Vec<String> = (1..=5).map(|i| json!({"prompt": format!("question {i}"), "response": format!("answer {i}")}).to_string()).collect();
    let file = dir.join("support.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    api.dispatch("data_import", json!({"path": file, "name": "support"})).unwrap();
}

fn rows(api: &Api, version: u32) -> Vec<Value> {
    let page = api.dispatch("data_rows", json!({"dataset": "support", "version": version, "limit": 200})).unwrap();
    page["rows"].as_array().unwrap().clone()
}

fn versions(api: &Api) -> Vec<Value> {
    api.dispatch("data_versions", json!({"dataset": "support"})).unwrap().as_array().unwrap().clone()
}

fn version_file(api: &Api, v: &Value) -> PathBuf {
    api.home().join(v["rows_path"].as_str().unwrap())
}

fn chat(user: &str, assistant: &str) -> Value {
    json!({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]})
}

#[test]
fn an_edit_makes_a_new_version_with_its_provenance_and_leaves_the_old_one_as_it_was() {
    let (dir, api) = setup();
    import(dir.path(), &api);
    let v1 = versions(&api)[0].clone();
    let v1_bytes = std::fs::read(version_file(&api, &v1)).unwrap();

    let r = api
        .dispatch_from(
            Caller::Server,
            "data_edit",
            json!({"dataset": "support", "version": 1, "edits": [{"row": 2, "content": chat("question 2", "a better answer")}], "deletes": [4]}),
        )
        .unwrap();
    assert_eq!(r["base_version"], 1);
    assert_eq!(r["version"]["version"], 2);
    assert_eq!(r["version"]["parent"], 1);
    assert_eq!(r["version"]["rows"], 4);
    assert_eq!((r["changed"].as_u64(), r["deleted"].as_u64()), (Some(1), Some(1)));
    assert_eq!(r["summary"], "manual edit: 1 row changed, 1 deleted");
    assert_eq!(r["splits"], Value::Null, "the dataset is not split");

    let step = &versions(&api)[1]["steps"][0];
    assert_eq!(step["step"], "edit");
    assert_eq!(step["summary"], "manual edit: 1 row changed, 1 deleted");
    assert_eq!((step["changed"].as_u64(), step["deleted"].as_u64()), (Some(1), Some(1)));
    assert_eq!(step["changed_rows"], json!([{"row": 2, "source_line": 2}]));
    assert_eq!(step["deleted_rows"], json!([{"row": 4, "source_line": 4}]));

    // The new version: the edit in place, row 4 gone, every row keeping the line it came from.
    let new = rows(&api, 2);
    let answers: Vec<&str> = new.iter().map(|r| r["messages"][1]["content"].as_str().unwrap()).collect();
    assert_eq!(answers, ["answer 1", "a better answer", "answer 3", "answer 5"]);
    let lines: Vec<u64> = new.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 2, 3, 5]);

    // The old version is untouched, on disk and in the store.
    assert_eq!(std::fs::read(version_file(&api, &v1)).unwrap(), v1_bytes);
    assert_eq!(versions(&api)[0], v1);
    assert_eq!(rows(&api, 1).len(), 5);
    // Training uses the newest version.
    let train = std::fs::read_to_string(api.dataset_training_file("support").unwrap()).unwrap();
    assert!(train.contains("a better answer") && !train.contains("answer 4"), "{train}");
}

#[test]
fn an_edit_that_makes_a_row_invalid_is_refused_naming_the_row_and_the_reason() {
    let (dir, api) = setup();
    import(dir.path(), &api);
    let before = std::fs::read_dir(api.home().join("datasets/1")).unwrap().count();
    let cases = [
        (chat("question 3", "  "), "`messages[1].content` is empty"),
        (json!({"messages": [{"role": "user", "content": "only a question"}]}), "no assistant message"),
        (json!({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}), "unknown role `robot`"),
        (json!({"prompt": "q"}), "missing field `response`"),
        (json!({"prompt": "q", "response": "r", "text": "t"}), "ambiguous row"),
        (json!("just a string"), "must be a JSON object"),
    ];
    for (content, reason) in cases {
        let err = api
            .dispatch("data_edit", json!({"dataset": "support", "version": 1, "edits": [{"row": 1, "content": chat("q", "fine")}, {"row": 3, "content": content}]}))
            .unwrap_err();
        assert_eq!(err.code(), "bad_data", "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("row 3 (line 3 of the imported file) cannot be saved: "), "{msg}");
        assert!(msg.contains(reason), "{reason}: {msg}");
        assert!(msg.ends_with("nothing was saved"), "{msg}");
    }
    assert_eq!(versions(&api).len(), 1, "no version was made");
    assert_eq!(std::fs::read_dir(api.home().join("datasets/1")).unwrap().count(), before, "no file was written");
}

#[test]
fn stale_and_out_of_range_edits_are_refused() {
    let (dir, api) = setup();
    import(dir.path(), &api);
    let edit = |args: Value| api.dispatch("data_edit", args).unwrap_err();

    let e = edit(json!({"dataset": "support", "version": 1, "deletes": [6]}));
    assert_eq!(e.code(), "invalid_input");
    assert!(e.to_string().contains("cannot delete row 6: version 1 of `support` has rows 1 to 5"), "{e}");
    let e = edit(json!({"dataset": "support", "version": 1, "edits": [{"row": 0, "content": chat("a", "b")}]}));
    assert!(e.to_string().contains("cannot edit row 0"), "{e}");
    let e = edit(json!({"dataset": "support", "version": 1, "edits": [{"row": 2, "content": chat("a", "b")}], "deletes": [2]}));
    assert!(e.to_string().contains("row 2 is both edited and deleted"), "{e}");
    let e = edit(json!({"dataset": "support", "version": 1, "edits": [{"row": 2, "content": chat("a", "b")}, {"row": 2, "content": chat("a", "c")}]}));
    assert!(e.to_string().contains("row 2 is edited twice"), "{e}");
    let e = edit(json!({"dataset": "support", "version": 1, "deletes": [1, 2, 3, 4, 5]}));
    assert!(e.to_string().contains("keep at least one row"), "{e}");
    let e = edit(json!({"dataset": "support", "version": 1}));
    assert!(e.to_string().contains("nothing to save"), "{e}");
    // An edit that gives the row back as it was, in another shape, changes nothing.
    let e = edit(json!({"dataset": "support", "version": 1, "edits": [{"row": 1, "content": {"prompt": "question 1", "response": "answer 1"}}]}));
    assert!(e.to_string().contains("every edited row is the same as before"), "{e}");
    let e = edit(json!({"dataset": "support", "version": 9, "deletes": [1]}));
    assert_eq!(e.code(), "not_found", "{e}");
    assert_eq!(versions(&api).len(), 1);

    // Version 2 is made; changes made on version 1's rows are now stale.
    api.dispatch("data_edit", json!({"dataset": "support", "version": 1, "deletes": [1]})).unwrap();
    let e = edit(json!({"dataset": "support", "version": 1, "deletes": [2]}));
    assert_eq!(e.code(), "stale_version", "{e}");
    assert!(e.to_string().contains("version 1 of `support` is no longer the latest (version 2 is)"), "{e}");
    assert_eq!(versions(&api).len(), 2);
}

#[test]
fn edits_keep_each_rows_split_and_take_any_shape_the_importer_reads() {
    let (dir, api) = setup();
    import(dir.path(), &api);
    api.dispatch("data_split", json!({"dataset": "support", "val": 0.4, "test": 0.0, "seed": 3})).unwrap();
    let split = rows(&api, 2);
    let val_row = split.iter().find(|r| r["split"] == "val").unwrap()["row"].as_u64().unwrap();
    let train_row = split.iter().find(|r| r["split"] == "train").unwrap()["row"].as_u64().unwrap();

    let r = api
        .dispatch(
            "data_edit",
            json!({"dataset": "support", "version": 2,
                   "edits": [{"row": train_row, "content": {"instruction": "Say hi", "input": "to Ann", "output": "Hi Ann!"}}],
                   "deletes": [val_row]}),
        )
        .unwrap();
    assert_eq!(r["splits"], json!({"train": 3, "val": 1, "test": 0}));
    let after = rows(&api, 3);
    let edited = after.iter().find(|x| x["messages"][1]["content"] == "Hi Ann!").unwrap();
    assert_eq!(edited["messages"][0]["content"], "Say hi\n\nto Ann");
    assert_eq!(edited["split"], "train", "an edited row stays in its split");
    assert_eq!(after.iter().filter(|x| x["split"] == "val").count(), 1);
}

#[test]
fn a_plain_text_row_is_edited_as_text() {
    let (dir, api) = setup();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "first paragraph\n\nsecond paragraph\n").unwrap();
    api.dispatch("data_import", json!({"path": file, "name": "notes"})).unwrap();
    let r = api.dispatch("data_edit", json!({"dataset": "notes", "version": 1, "edits": [{"row": 2, "content": {"text": "a new second paragraph"}}]})).unwrap();
    assert_eq!(r["summary"], "manual edit: 1 row changed, 0 deleted");
    let page = api.dispatch("data_rows", json!({"dataset": "notes", "limit": 10})).unwrap();
    assert_eq!(page["rows"][1]["text"], "a new second paragraph");
    let e = api.dispatch("data_edit", json!({"dataset": "notes", "version": 2, "edits": [{"row": 1, "content": {"text": ""}}]})).unwrap_err();
    assert!(e.to_string().contains("row 1 (line 1 of the imported file) cannot be saved: field `text` is empty"), "{e}");
}

#[test]
fn an_uploaded_file_is_kept_under_a_clean_fresh_name_in_the_imports_folder_and_imports_by_its_path() {
    let (_dir, api) = setup();
    let text = "{\"prompt\": \"hi\", \"response\": \"hello\"}\n";
    let imports = std::fs::canonicalize(api.home()).unwrap().join("imports");
    let up = |name: &str, text: &str| api.dispatch_from(Caller::Server, "data_upload", json!({"name": name, "text": text}));

    // Whatever path the page claims, only a cleaned last part is used, inside the imports folder.
    let first = up("../../etc/my data (v2).jsonl", text).unwrap();
    assert_eq!(first["file_name"], "my_data__v2_.jsonl");
    let path = PathBuf::from(first["path"].as_str().unwrap());
    assert_eq!(std::fs::canonicalize(&path).unwrap(), imports.join("my_data__v2_.jsonl"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(first["bytes"], text.len());
    for (given, kept) in [("/etc/cron.d/job.CSV", "job.csv"), ("C:\\Users\\me\\rows.tsv", "rows.tsv"), ("CON.txt", "file-CON.txt"), ("...jsonl", "upload.jsonl")] {
        let r = up(given, "a,b\n1,2\n").unwrap();
        assert_eq!(r["file_name"], kept, "{given}");
        assert!(std::fs::canonicalize(r["path"].as_str().unwrap()).unwrap().starts_with(&imports), "{given}");
    }

    // The same name again: a fresh name, and the first file is kept as it was.
    let second = up("my data (v2).jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n").unwrap();
    assert_eq!(second["file_name"], "my_data__v2_-2.jsonl");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // Imported by that path, as a page would next, through the same confinement as any path.
    let imported = api.dispatch_from(Caller::Server, "data_import", json!({"path": path, "name": "dropped"})).unwrap();
    assert_eq!(imported["version"]["rows"], 1);
}

#[test]
fn uploads_over_the_limit_empty_or_of_unknown_kinds_are_refused_and_write_nothing() {
    let (_dir, api) = setup();
    let imports = api.home().join("imports");
    let limit = whetstone_api::uploads::MAX_UPLOAD_BYTES;
    let big = "x".repeat(limit + 1);
    let e = api.dispatch_from(Caller::Server, "data_upload", json!({"name": "big.txt", "text": big})).unwrap_err();
    assert_eq!(e.code(), "too_large", "{e}");
    assert!(e.to_string().contains(&format!("more than the limit of {limit} bytes")), "{e}");
    assert!(e.to_string().contains("give its path instead"), "{e}");
    // Exactly the limit is accepted.
    api.dispatch_from(Caller::Server, "data_upload", json!({"name": "edge.txt", "text": "x".repeat(limit)})).unwrap();

    for (name, text, says) in [
        ("photo.png", "data", "not a file Whetstone reads"),
        ("noextension", "data", "not a file Whetstone reads"),
        ("rows.jsonl", "  \n", "is empty"),
    ] {
        let e = api.dispatch_from(Caller::Server, "data_upload", json!({"name": name, "text": text})).unwrap_err();
        assert_eq!(e.code(), "invalid_input", "{name}: {e}");
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
    let names: Vec<String> = std::fs::read_dir(&imports).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["edge.txt"]);
}
