#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub const TOL: f64 = 1e-6;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Tracks the largest difference seen so a test can report it, and fails on the first one over `tol`.
#[derive(Default)]
pub struct MaxDiff {
    pub max: f64,
    pub count: usize,
}

impl MaxDiff {
    pub fn check(&mut self, what: &str, got: f64, want: f64, tol: f64) {
        let d = (got - want).abs();
        assert!(
            d <= tol,
            "{what}: got {got}, reference {want} (difference {d:e})"
        );
        self.max = self.max.max(d);
        self.count += 1;
    }

    pub fn report(&self, metric: &str) {
        assert!(self.count > 0, "{metric}: no values compared");
        eprintln!(
            "{metric}: {} values, max abs difference {:e}",
            self.count, self.max
        );
    }
}
