//! The one source of training defaults: every setting described with a safe range, presets sized
//! for the data and the machine, and the dataset commands the app's wizard reads rows through.

use serde_json::{json, Value};
use whetstone_api::defaults::{check, presets, setting_docs, PresetName};
use whetstone_api::Api;
use whetstone_engine::run::TrainSettings;
use whetstone_hw::{Gpu, Hardware};

const GB: u64 = 1 << 30;

fn machine(ram_free_gb: u64, gpu_free_gb: Option<u64>) -> Hardware {
    Hardware {
        cpu_model: "test cpu".into(),
        cpu_cores: 8,
        cpu_physical_cores: Some(4),
        ram_total_bytes: 64 * GB,
        ram_available_bytes: ram_free_gb * GB,
        gpus: gpu_free_gb
            .map(|g| vec![Gpu { name: "test gpu".into(), backend: "cuda".into(), vram_total_bytes: 80 * GB, vram_free_bytes: g * GB }])
            .unwrap_or_default(),
        gpu_notes: vec![],
        cuda_driver: None,
    }
}

#[test]
fn every_setting_is_described_once_and_its_default_is_safe() {
    let defaults = serde_json::to_value(TrainSettings::default()).unwrap();
    let keys: Vec<&str> = defaults.as_object().unwrap().keys().map(String::as_str).collect();
    let docs = setting_docs();
    let described: Vec<&str> = docs.iter().map(|d| d.key).collect();
    for k in &keys {
        assert_eq!(described.iter().filter(|d| *d == k).count(), 1, "{k} must be described exactly once");
    }
    assert_eq!(described.len(), keys.len(), "a description without a setting: {described:?}");
    for d in &docs {
        assert!(!d.label.is_empty() && !d.help.is_empty(), "{}", d.key);
        assert!(d.help.lines().count() == 1, "{}: one line", d.key);
        assert_eq!(d.safe_min.is_some(), d.below.is_some(), "{}: a lower safe bound needs its warning", d.key);
        assert_eq!(d.safe_max.is_some(), d.above.is_some(), "{}: an upper safe bound needs its warning", d.key);
        // An optional setting may be empty; every other default is a value of the setting's kind.
        let v = &defaults[d.key];
        assert!(d.optional || !v.is_null(), "{} has no default", d.key);
        if !d.choices.is_empty() {
            assert!(d.choices.contains(&v.as_str().unwrap()), "{}: default {v} not among {:?}", d.key, d.choices);
        }
    }
    assert!(check(&TrainSettings::default()).is_empty(), "{:?}", check(&TrainSettings::default()));
}

#[test]
fn a_setting_outside_its_safe_range_is_named_with_the_reason() {
    let s = TrainSettings { lr: 0.01, lora_r: 2, ..TrainSettings::default() };
    let warnings = check(&s);
    let keys: Vec<&str> = warnings.iter().map(|w| w.key).collect();
    assert_eq!(keys, ["lr", "lora-r"]);
    assert!(warnings[0].message.starts_with("lr = 0.01: Above 0.001"), "{}", warnings[0].message);
    assert!(warnings[1].message.contains("below 4"), "{}", warnings[1].message);
    // The hard limits are the ones the engine refuses.
    for d in setting_docs() {
        let Some(min) = d.min.filter(|m| *m >= 1.0) else { continue };
        let mut v = serde_json::to_value(TrainSettings::default()).unwrap();
        v[d.key] = json!(min as u64 - 1);
        let below: TrainSettings = serde_json::from_value(v).unwrap();
        assert!(below.validate().is_err(), "{} = {} should be refused", d.key, min - 1.0);
    }
}

#[test]
fn presets_follow_the_data_size_and_the_hardware() {
    let cpu = machine(32, None);
    let small = presets(Some(12), Some(100), &cpu);
    assert_eq!(small.iter().map(|p| p.name).collect::<Vec<_>>(), PresetName::ALL);
    for p in &small {
        p.settings.validate().unwrap();
        assert!(check(&p.settings).is_empty(), "{:?}: {:?}", p.name, check(&p.settings));
        assert!(p.settings.batch * p.settings.grad_accum <= 12, "{:?} repeats examples within a step", p.name);
        assert_eq!(p.settings.max_len, 128, "95% fit in 100 tokens");
        assert!(p.reasons[0].contains("12 training examples") && p.reasons[0].contains("no GPU"), "{:?}", p.reasons);
    }
    let [quick, balanced, thorough] = [&small[0].settings, &small[1].settings, &small[2].settings];
    let steps = quick.steps.unwrap();
    assert!((1..=20).contains(&steps));
    assert!(steps as usize * quick.batch * quick.grad_accum <= 10 * 12, "each example seen at most 10 times");
    assert!(quick.lora_r < balanced.lora_r && balanced.lora_r < thorough.lora_r);
    assert!(balanced.epochs < thorough.epochs);

    // Large data: fewer passes; a large GPU: more examples at once.
    let big = presets(Some(50_000), None, &machine(32, Some(70)));
    assert_eq!(big[1].settings.epochs, 1);
    assert_eq!(big[1].settings.batch, 8);
    assert_eq!(big[1].settings.max_len, TrainSettings::default().max_len, "no lengths given");
    assert!(big[1].reasons[0].contains("test gpu"));
    // Little free memory: parts of the model are recomputed.
    let low = presets(Some(500), None, &machine(4, None));
    assert!(low.iter().all(|p| p.settings.grad_checkpoint && p.settings.batch == 2));
}

#[test]
fn train_defaults_through_dispatch_and_presets_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(dir.path()).unwrap();
    let v = api.dispatch("train_defaults", json!({"examples": 40})).unwrap();
    assert_eq!(v["defaults"], serde_json::to_value(TrainSettings::default()).unwrap());
    assert_eq!(v["fields"].as_array().unwrap().len(), setting_docs().len());
    assert_eq!(v["fields"][0]["flag"], "--epochs");
    assert_eq!(v["presets"].as_array().unwrap().len(), 3);
    assert_eq!(v["presets"][0]["name"], "quick_test");
    assert!(v["hardware"].as_str().unwrap().contains("examples at once"));
    let s = api.preset("balanced", Some(40)).unwrap();
    assert_eq!(serde_json::to_value(&s).unwrap(), v["presets"][1]["settings"]);
    assert_eq!(api.preset("quick-test", Some(40)).unwrap(), api.preset("quick_test", Some(40)).unwrap());
    let err = api.preset("fastest", None).unwrap_err();
    assert!(err.to_string().contains("quick-test, balanced or thorough"), "{err}");
}

#[test]
fn rows_page_through_a_version_and_a_dataset_name_gives_each_split() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap();
    let file = dir.path().join("qa.jsonl");
    let text: String = (1..=10).map(|i| format!("{{\"question\": \"What is {i} plus {i}?\", \"answer\": \"{}\"}}\n", 2 * i)).collect();
    std::fs::write(&file, text).unwrap();
    api.dispatch("data_import", json!({"path": file, "name": "qa"})).unwrap();

    let page = api.dispatch("data_rows", json!({"dataset": "qa", "offset": 8, "limit": 5})).unwrap();
    assert_eq!(page["total"], 10);
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["row"].as_u64(), rows[0]["line"].as_u64()), (Some(9), Some(9)));
    assert_eq!(rows[0]["messages"][0], json!({"role": "user", "content": "What is 9 plus 9?"}));
    assert_eq!(rows[0]["messages"][1], json!({"role": "assistant", "content": "18"}));
    assert!(rows[0]["text"].is_null());
    let err = api.dispatch("data_rows", json!({"dataset": "qa", "limit": 0})).unwrap_err();
    assert_eq!(err.code(), "invalid_input");

    // Not split yet: every row trains, and there is nothing to validate on.
    let train = whetstone_data::read_training_rows(&api.dataset_training_file("qa").unwrap()).unwrap();
    assert_eq!(train.len(), 10);
    let err = whetstone_api::training::resolve_validation_data(&api, std::path::Path::new("qa")).unwrap_err();
    assert!(err.to_string().contains("not split"), "{err}");

    let split = api.dispatch("data_split", json!({"dataset": "qa", "val": 0.3, "test": 0.0, "seed": 1})).unwrap();
    let val_rows = split["counts"]["val"].as_u64().unwrap() as usize;
    assert!(val_rows > 0);
    let val = whetstone_api::training::resolve_validation_data(&api, std::path::Path::new("qa")).unwrap();
    let train = whetstone_api::training::resolve_training_data(&api, std::path::Path::new("qa")).unwrap();
    let (val, train) = (whetstone_data::read_training_rows(&val).unwrap(), whetstone_data::read_training_rows(&train).unwrap());
    assert_eq!((val.len(), train.len()), (val_rows, 10 - val_rows));
    let page = api.dispatch("data_rows", json!({"dataset": "qa", "limit": 10})).unwrap();
    let splits: Vec<&Value> = page["rows"].as_array().unwrap().iter().map(|r| &r["split"]).collect();
    assert_eq!(splits.iter().filter(|s| **s == "val").count(), val_rows);
}
