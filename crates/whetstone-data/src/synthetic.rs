//! A deterministic synthetic dataset for benchmarks: instruction rows of about 1 KB of varied words, with a
//! known share of exact duplicates, near duplicates and personal data, so every cleaning step has work to do.

use std::io::Write;
use std::path::Path;

use crate::clean::minhash::splitmix;
use crate::error::Result;

const WORDS: &[&str] = &[
    "account", "balance", "garden", "river", "engine", "window", "planet", "market", "signal", "harbor", "pencil",
    "forest", "ticket", "silver", "copper", "meadow", "thunder", "lantern", "circuit", "journal", "orchard",
    "canvas", "glacier", "velvet", "compass", "quarry", "saddle", "tunnel", "beacon", "falcon", "ember", "prairie",
    "summit", "anchor", "bridge", "cabinet", "domain", "fabric", "gravel", "hollow", "island", "jungle", "kettle",
    "ladder", "marble", "needle", "oyster", "pepper", "quiver", "ribbon", "shadow", "timber", "umbrella", "vessel",
    "wander", "yellow", "zephyr", "measure", "convert", "explain", "describe", "compare", "estimate", "listing",
    "the", "a", "of", "and", "to", "in", "is", "for", "on", "with", "as", "by", "at", "from", "that", "this",
];

/// Writes `rows` JSONL rows of roughly `row_bytes` bytes to `path`, the same for the same seed. About 5% of rows
/// repeat an earlier row exactly, 5% repeat one with a word changed, and 5% carry an e-mail or phone number.
pub fn write_synthetic_jsonl(path: &Path, rows: usize, row_bytes: usize, seed: u64) -> Result<()> {
    crate::datarow::write_atomically(path, |w| {
        let mut state = seed;
        let mut next = move || splitmix(&mut state);
        let mut kept: Vec<(String, String)> = Vec::new();
        for i in 0..rows {
            let roll = next() % 100;
            let (instruction, mut output) = if roll < 5 && !kept.is_empty() {
                kept[(next() % kept.len() as u64) as usize].clone()
            } else if roll < 10 && !kept.is_empty() {
                let (ins, out) = kept[(next() % kept.len() as u64) as usize].clone();
                let mut words: Vec<&str> = out.split(' ').collect();
                let k = (next() % words.len() as u64) as usize;
                words[k] = WORDS[(next() % WORDS.len() as u64) as usize];
                (ins, words.join(" "))
            } else {
                let mut make = |target: usize| {
                    let mut s = String::with_capacity(target + 16);
                    while s.len() < target {
                        if !s.is_empty() {
                            s.push(' ');
                        }
                        s.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
                    }
                    s
                };
                let ins = make(row_bytes / 4);
                let out = make(row_bytes * 7 / 10);
                if kept.len() < 4096 {
                    kept.push((ins.clone(), out.clone()));
                } else {
                    let k = (next() % kept.len() as u64) as usize;
                    kept[k] = (ins.clone(), out.clone());
                }
                (ins, out)
            };
            if roll >= 95 {
                if roll % 2 == 0 {
                    output.push_str(&format!(" Contact user{i}@example.com for details."));
                } else {
                    output.push_str(&format!(" Call 555-{:03}-{:04} today.", i % 1000, i % 10000));
                }
            }
            let row = serde_json::json!({"instruction": instruction, "input": "", "output": output});
            serde_json::to_writer(&mut *w, &row).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}
