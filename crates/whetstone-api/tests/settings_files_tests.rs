//! Settings files the app opens and saves: what `config_save` writes, `config_open` and the reader
//! of `whet train --config` read back as the same settings; a file there is kept unless replacing
//! it was asked for; PEFT and Trainer names land on the defaults; misspelt keys are named.

use serde_json::{json, Value};
use std::path::Path;
use whetstone_api::dispatch::Caller;
use whetstone_api::Api;
use whetstone_engine::run::TrainSettings;

fn setup() -> (tempfile::TempDir, Api) {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap();
    (dir, api)
}

/// Settings that differ from the defaults in every field.
fn changed() -> Value {
    json!({
        "steps": 30, "epochs": 4, "lr": 0.0003, "batch": 2, "grad-accum": 3, "max-len": 256, "lora-r": 16,
        "lora-alpha": 32.0, "lora-dropout": 0.1, "targets": "q,v", "rslora": true, "scheduler": "linear",
        "warmup": 5, "warmup-ratio": null, "seed": 9, "grad-checkpoint": true, "weight-decay": 0.01,
        "max-grad-norm": 0.5, "threads": 2, "quant": "nf4", "eval-every": 7, "save-every": 11,
        "keep-checkpoints": 1, "patience": 0, "min-delta": 0.001, "load-best-at-end": false,
        "max-bad-steps": 2, "strict-rows": true, "truncate-prompt": true, "device": "cpu"
    })
}

#[test]
fn saved_settings_open_again_and_read_as_whet_train_reads_them_in_every_format() {
    let (_dir, api) = setup();
    let want: TrainSettings = serde_json::from_value(changed()).unwrap();
    for name in ["run.toml", "run.yaml", "run.yml", "run.json", "RUN.JSON"] {
        let path = api.home().join("configs").join(name);
        let saved = api.dispatch_from(Caller::Server, "config_save", json!({"path": path, "settings": changed()})).unwrap();
        assert_eq!(saved["replaced"], false, "{name}");
        let opened = api.dispatch_from(Caller::Server, "config_open", json!({"path": path})).unwrap();
        assert_eq!(opened["settings"], changed(), "{name}:\n{}", std::fs::read_to_string(&path).unwrap());
        assert_eq!(opened["warnings"], json!([]), "{name}");
        assert_eq!(opened["format"], saved["format"]);
        // The reader `whet train --config FILE` uses.
        assert_eq!(whetstone_engine::settings_file::read(&path).unwrap().settings, want, "{name}");
    }
    let text = std::fs::read_to_string(api.home().join("configs/run.toml")).unwrap();
    assert!(text.starts_with("# Training settings for Whetstone"), "{text}");
    assert!(text.contains("lora-r = 16"), "{text}");
}

#[test]
fn a_file_that_is_there_is_kept_unless_replacing_it_was_asked_for() {
    let (_dir, api) = setup();
    let path = api.home().join("mine.yaml");
    std::fs::write(&path, "r: 4\n").unwrap();
    let e = api.dispatch("config_save", json!({"path": path, "settings": changed()})).unwrap_err();
    assert_eq!(e.code(), "file_exists", "{e}");
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "r: 4\n");

    let r = api.dispatch("config_save", json!({"path": path, "settings": changed(), "overwrite": true})).unwrap();
    assert_eq!(r["replaced"], true);
    assert_eq!(api.dispatch("config_open", json!({"path": path})).unwrap()["settings"], changed());
    let names: Vec<String> = std::fs::read_dir(api.home()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "no temporary file is left: {names:?}");
}

#[test]
fn peft_and_trainer_names_land_on_the_defaults_and_what_does_not_apply_is_said() {
    let (_dir, api) = setup();
    let path = api.home().join("peft.json");
    std::fs::write(&path, r#"{"r": 16, "lora_alpha": 32, "learning_rate": 0.0001, "fp16": true, "logging_steps": 10, "output_dir": "out"}"#).unwrap();
    let opened = api.dispatch("config_open", json!({"path": path})).unwrap();
    let s = &opened["settings"];
    assert_eq!((s["lora-r"].as_u64(), s["lora-alpha"].as_f64(), s["lr"].as_f64()), (Some(16), Some(32.0), Some(0.0001)));
    // Everything the file leaves out is the default train_defaults reports.
    let defaults = api.dispatch("train_defaults", json!({})).unwrap()["defaults"].clone();
    for (k, v) in defaults.as_object().unwrap() {
        if !["lora-r", "lora-alpha", "lr"].contains(&k.as_str()) {
            assert_eq!(&s[k], v, "{k}");
        }
    }
    let warnings: Vec<&str> = opened["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("`fp16`")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("`logging_steps`: every step is logged")), "{warnings:?}");
}

#[test]
fn unknown_keys_bad_values_and_bad_names_are_refused_with_the_reason() {
    let (_dir, api) = setup();
    let home = api.home().to_path_buf();
    let write = |name: &str, text: &str| {
        let p = home.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let open = |p: &Path| api.dispatch("config_open", json!({"path": p})).unwrap_err();

    let e = open(&write("typo.yaml", "r: 4\nlerning_rate: 0.001\n"));
    assert_eq!(e.code(), "invalid_settings", "{e}");
    assert!(e.to_string().contains("typo.yaml: unknown setting `lerning_rate`; did you mean `learning_rate`?"), "{e}");
    let e = open(&write("broken.toml", "r = \n"));
    assert_eq!(e.code(), "invalid_settings", "{e}");
    assert!(e.to_string().contains("broken.toml"), "{e}");
    let e = open(&write("list.json", "[1, 2]"));
    assert!(e.to_string().contains("one table of `key = value` settings"), "{e}");
    let e = open(&write("settings.ini", "r = 4\n"));
    assert!(e.to_string().contains("use .toml, .yaml or .json"), "{e}");
    let e = open(&home.join("missing.yaml"));
    assert_eq!(e.code(), "io", "{e}");

    // Settings no run could use are not saved.
    let mut bad = changed();
    bad["batch"] = json!(0);
    let out = home.join("bad.toml");
    let e = api.dispatch("config_save", json!({"path": out, "settings": bad})).unwrap_err();
    assert_eq!(e.code(), "invalid_settings", "{e}");
    assert!(e.to_string().contains("batch must be at least 1"), "{e}");
    let e = api.dispatch("config_save", json!({"path": home.join("s.ini"), "settings": changed()})).unwrap_err();
    assert!(e.to_string().contains("use .toml, .yaml or .json"), "{e}");
    let e = api.dispatch("config_save", json!({"path": home.join("run.toml"), "settings": {"lerning-rate": 1}})).unwrap_err();
    assert_eq!(e.code(), "invalid_input", "{e}");
    assert!(!out.exists() && !home.join("run.toml").exists());
}

#[test]
fn paths_from_a_page_are_confined_to_the_allowed_folders() {
    let (dir, api) = setup();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let theirs = outside.join("theirs.yaml");
    std::fs::write(&theirs, "r: 4\n").unwrap();
    let e = api.dispatch_from(Caller::Server, "config_open", json!({"path": theirs})).unwrap_err();
    assert_eq!(e.code(), "path_not_allowed", "{e}");
    let e = api.dispatch_from(Caller::Server, "config_save", json!({"path": outside.join("new.yaml"), "settings": changed()})).unwrap_err();
    assert_eq!(e.code(), "path_not_allowed", "{e}");
    let sneaky = api.home().join("..").join("outside").join("new.json");
    let e = api.dispatch_from(Caller::Server, "config_save", json!({"path": sneaky, "settings": changed()})).unwrap_err();
    assert_eq!(e.code(), "path_not_allowed", "{e}");
    assert!(!outside.join("new.yaml").exists() && !outside.join("new.json").exists());
    // Once the folder is allowed, both work.
    api.allow_folder(&outside).unwrap();
    api.dispatch_from(Caller::Server, "config_open", json!({"path": theirs})).unwrap();
    api.dispatch_from(Caller::Server, "config_save", json!({"path": outside.join("new.yaml"), "settings": changed()})).unwrap();
}
