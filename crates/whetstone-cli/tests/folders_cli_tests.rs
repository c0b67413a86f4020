//! `whet folders list|add|remove`.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn whet(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whet"))
        .args(args)
        .env("WHETSTONE_HOME", home)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn listed(home: &Path) -> Value {
    serde_json::from_str(&ok(whet(home, &["folders", "list", "--json"]))).unwrap()
}

#[test]
fn folders_are_added_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let home = root.join("home");
    let projects = root.join("projects");
    std::fs::create_dir(&projects).unwrap();

    let list = listed(&home);
    assert_eq!(list["home"], home.display().to_string());
    assert_eq!(list["folders"], Value::Array(vec![]));
    let text = ok(whet(&home, &["folders", "list"]));
    assert!(text.contains("Always allowed") && text.contains(&home.display().to_string()), "{text}");

    // Given in a roundabout way, stored as the folder it is.
    let roundabout = root.join("home").join("..").join("projects");
    let added = ok(whet(&home, &["folders", "add", roundabout.to_str().unwrap()]));
    assert!(added.contains(&projects.display().to_string()), "{added}");
    let list = listed(&home);
    assert_eq!(list["folders"].as_array().unwrap().len(), 1);
    assert_eq!(list["folders"][0]["path"], projects.display().to_string());
    assert!(ok(whet(&home, &["folders", "list"])).contains(&projects.display().to_string()));

    let missing = whet(&home, &["folders", "add", root.join("nope").to_str().unwrap()]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("nope") && stderr.contains("not an existing folder"), "{stderr}");

    ok(whet(&home, &["folders", "remove", projects.to_str().unwrap()]));
    assert_eq!(listed(&home)["folders"], Value::Array(vec![]));

    let again = whet(&home, &["folders", "remove", projects.to_str().unwrap()]);
    assert!(!again.status.success(), "removing what is not listed is an error");
    let home_out = whet(&home, &["folders", "remove", home.to_str().unwrap()]);
    assert!(!home_out.status.success());
    assert!(String::from_utf8_lossy(&home_out.stderr).contains("always allowed"));
}
