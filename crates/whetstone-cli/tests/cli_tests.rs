use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const WHET: &str = env!("CARGO_BIN_EXE_whet");

fn whet(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(WHET)
        .args(args)
        .env("WHETSTONE_HOME", home)
        .env("WHETSTONE_DEFAULT_MODEL", home.join("no-such-model.gguf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "whet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

#[test]
fn help_lists_subcommands() {
    let home = tempfile::tempdir().unwrap();
    let out = whet(home.path(), &["--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in ["hw", "models", "datasets", "runs", "serve"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from help:\n{text}"
        );
    }
}

#[test]
fn hw_json_matches_the_os() {
    let home = tempfile::tempdir().unwrap();
    let hw = json_of(&whet(home.path(), &["hw", "--json"]));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(hw["cpu_cores"], cores);
    assert!(hw["ram_total_bytes"].as_u64().unwrap() > 0);
    assert!(hw["gpus"].is_array());
    assert!(!home.path().join("whetstone.db").exists(), "hw must not need a database");
}

#[test]
fn hw_text_is_readable() {
    let home = tempfile::tempdir().unwrap();
    let text = String::from_utf8(whet(home.path(), &["hw"]).stdout).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(text.contains(&format!("{cores} logical cores")), "{text}");
    assert!(text.contains("RAM:") && text.contains("GiB total"), "{text}");
    assert!(text.contains("GPUs:"), "{text}");
}

#[test]
fn lists_start_empty() {
    let home = tempfile::tempdir().unwrap();
    for what in ["models", "datasets", "runs"] {
        let list = json_of(&whet(home.path(), &[what, "list", "--json"]));
        assert_eq!(list, Value::Array(vec![]), "{what}");
        let text = String::from_utf8(whet(home.path(), &[what, "list"]).stdout).unwrap();
        assert_eq!(text.trim(), format!("No {what} yet."));
    }
    assert!(home.path().join("whetstone.db").is_file());
}

#[test]
fn unreadable_database_fails_with_its_path() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("whetstone.db"), "plain text, not SQLite").unwrap();
    let out = Command::new(WHET)
        .args(["models", "list", "--json"])
        .env("WHETSTONE_HOME", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("whetstone.db") && stderr.contains("not an SQLite file"), "{stderr}");
}

