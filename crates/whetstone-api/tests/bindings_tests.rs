//! The UI's TypeScript is generated from the Rust types and the command table; this test fails
//! when the committed file no longer matches them.

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/generated/api.ts")
}

#[test]
fn the_committed_typescript_matches_the_rust_types() {
    let generated = whetstone_api::bindings::typescript();
    let path = committed();
    if std::env::var_os("WHETSTONE_WRITE_BINDINGS").is_some() {
        whetstone_files::write_atomic(&path, generated.as_bytes()).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} is stale: regenerate it with `WHETSTONE_WRITE_BINDINGS=1 cargo test -p whetstone-api --test bindings_tests`",
        path.display()
    );
}

#[test]
fn every_command_has_a_typed_client_function() {
    let ts = whetstone_api::bindings::typescript();
    for c in whetstone_api::COMMANDS {
        assert!(ts.contains(&format!("    {}: (", c.name)), "no client function for {}", c.name);
        assert!(ts.contains(&format!(">('{}', ", c.name)), "{} is not sent under its own name", c.name);
    }
    // The event a screen receives is one discriminated union over the loop's and the worker's events.
    for tag in ["\"started\"", "\"step\"", "\"eval\"", "\"checkpoint\"", "\"warning\"", "\"saved\"", "\"status\"", "\"rows_dropped\"", "\"finished\""] {
        assert!(ts.contains(&format!("\"type\": {tag}")), "event tag {tag} missing from the generated types");
    }
}

#[test]
fn every_command_dispatches_and_every_name_is_unique() {
    let dir = tempfile::tempdir().unwrap();
    let api = whetstone_api::Api::open(dir.path()).unwrap();
    let mut names = std::collections::HashSet::new();
    for c in whetstone_api::COMMANDS {
        assert!(names.insert(c.name), "{} listed twice", c.name);
        // Wrong arguments reach the command's own parser, which names the command: it is dispatched.
        let err = api.dispatch(c.name, serde_json::json!({"no_such_argument": 1})).unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{}: {err}", c.name);
        assert!(err.to_string().contains(&format!("arguments for `{}`", c.name)), "{}: {err}", c.name);
    }
    let err = api.dispatch("no_such_command", serde_json::Value::Null).unwrap_err();
    assert_eq!(err.code(), "unknown_command");
}
