//! A run's metrics as CSV and as TensorBoard event files.
//!
//! TensorBoard reads TFRecord files: each record is `u64 length`, `u32 masked CRC-32C of the length`,
//! the bytes, `u32 masked CRC-32C of the bytes` (little-endian), and each record holds one `Event`
//! protocol buffer. The few fields needed (wall_time, step, file_version, summary.value{tag,
//! simple_value}) are encoded here by hand rather than pulling in a protobuf stack.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The rows of a `metrics.jsonl`.
pub fn read_metrics(path: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { action: "read", path: path.to_path_buf(), source }),
    };
    // A last line cut short by a crash is not a row yet.
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

pub const CSV_COLUMNS: [&str; 10] = ["kind", "step", "epoch", "loss", "perplexity", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"];

/// One line per row, training and evaluation rows together; empty cells where a kind has no value.
pub fn metrics_csv(rows: &[Value]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let cells: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|c| match (c, r.get(*c)) {
                (&"kind", None) => "train".to_string(),
                (_, Some(Value::String(s))) => s.clone(),
                (_, Some(Value::Number(n))) => n.to_string(),
                _ => String::new(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// CRC-32C (Castagnoli), bitwise; metrics files are small.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// TFRecord's masked CRC.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `Event { wall_time = 1; step = 2; file_version = 3 | summary = 5 }`.
pub fn event_bytes(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut e = Vec::new();
    varint((1 << 3) | 1, &mut e);
    e.extend_from_slice(&wall_time.to_le_bytes());
    varint(2 << 3, &mut e);
    varint(step as u64, &mut e);
    if let Some(v) = file_version {
        bytes_field(3, v.as_bytes(), &mut e);
    }
    if !scalars.is_empty() {
        // Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }.
        let mut summary = Vec::new();
        for (tag, x) in scalars {
            let mut value = Vec::new();
            bytes_field(1, tag.as_bytes(), &mut value);
            varint((2 << 3) | 5, &mut value);
            value.extend_from_slice(&x.to_le_bytes());
            bytes_field(1, &value, &mut summary);
        }
        bytes_field(5, &summary, &mut e);
    }
    e
}

/// One TFRecord around `data`.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut r = Vec::with_capacity(data.len() + 16);
    r.extend_from_slice(&len);
    r.extend_from_slice(&masked_crc(&len).to_le_bytes());
    r.extend_from_slice(data);
    r.extend_from_slice(&masked_crc(data).to_le_bytes());
    r
}

/// Writes `events.out.tfevents.<time>.whetstone` in `dir`: `train/loss`, `train/lr`,
/// `train/grad_norm`, `train/tokens_per_s`, `eval/loss` and `eval/perplexity` by step.
pub fn write_tensorboard(rows: &[Value], dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { action: "create", path: dir.to_path_buf(), source })?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut out = record(&event_bytes(now, 0, Some("brain.Event:2"), &[]));
    for r in rows {
        let step = r.get("step").and_then(Value::as_i64).unwrap_or(0);
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("train");
        let keys: &[&str] = if kind == "eval" { &["loss", "perplexity"] } else { &["loss", "lr", "grad_norm", "tokens_per_s"] };
        let tags: Vec<String> = keys.iter().map(|k| format!("{kind}/{k}")).collect();
        let scalars: Vec<(&str, f32)> = keys
            .iter()
            .zip(&tags)
            .filter_map(|(k, t)| r.get(*k).and_then(Value::as_f64).map(|v| (t.as_str(), v as f32)))
            .collect();
        if !scalars.is_empty() {
            out.extend(record(&event_bytes(now, step, None, &scalars)));
        }
    }
    let path = dir.join(format!("events.out.tfevents.{}.whetstone", now as u64));
    crate::error::write_atomic(&path, &out)?;
    Ok(path)
}
