#![allow(dead_code)]

use std::path::PathBuf;

use whetstone_export::probe::ProbeRenderings;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Probe renderings of published chat templates, made by `scripts/export/render_probes.py`.
pub fn probes() -> Vec<(String, ProbeRenderings)> {
    let text = std::fs::read_to_string(fixture("probes.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let name = v["name"].as_str().unwrap().to_string();
            (name, serde_json::from_value(v).unwrap())
        })
        .collect()
}

pub fn probe(name: &str) -> ProbeRenderings {
    probes().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no probe fixture {name}")).1
}
