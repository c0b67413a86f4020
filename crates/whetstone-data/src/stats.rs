//! Token lengths of a dataset with a model's tokenizer and chat template: a histogram, and how many rows a
//! maximum length would cut.

use rayon::prelude::*;
use serde::Serialize;

use crate::datarow::DataRow;
use crate::example::build_row_example;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Bin {
    /// Inclusive lower bound in tokens.
    pub from: usize,
    /// Exclusive upper bound; `None` for the last, open bin.
    pub to: Option<usize>,
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RowFailure {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TokenStats {
    pub rows: usize,
    /// Rows whose template rendering or tokenization failed (listed in `failures`).
    pub failed: usize,
    pub failures: Vec<RowFailure>,
    pub min: usize,
    pub max: usize,
    pub mean: f64,
    pub median: usize,
    pub p95: usize,
    pub max_len: usize,
    /// Rows longer than `max_len`, which training cuts.
    pub truncated: usize,
    /// Tokens trained on over all rows, before truncation.
    pub trained_tokens: usize,
    pub histogram: Vec<Bin>,
}

/// Bin edges: powers of two from 16, always including `max_len` so the truncation point is visible.
fn edges(max_seen: usize, max_len: usize) -> Vec<usize> {
    let mut e = vec![0];
    let mut x = 16;
    while x <= max_seen.max(max_len) {
        e.push(x);
        x *= 2;
    }
    if !e.contains(&max_len) {
        e.push(max_len);
        e.sort_unstable();
    }
    e
}

pub fn token_stats(tok: &Tokenizer, rows: &[DataRow], max_len: usize) -> TokenStats {
    let results: Vec<Result<(usize, usize), String>> = rows
        .par_iter()
        .map(|r| build_row_example(tok, r, usize::MAX).map(|e| (e.len(), e.trained_tokens())).map_err(|e| e.to_string()))
        .collect();
    let mut lens = Vec::with_capacity(rows.len());
    let mut failures = Vec::new();
    let mut trained = 0;
    for (r, res) in rows.iter().zip(results) {
        match res {
            Ok((n, t)) => {
                lens.push(n);
                trained += t;
            }
            Err(reason) => failures.push(RowFailure { line: r.line, reason }),
        }
    }
    let mut sorted = lens.clone();
    sorted.sort_unstable();
    let pick = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    let max_seen = sorted.last().copied().unwrap_or(0);
    let e = edges(max_seen, max_len);
    let mut histogram: Vec<Bin> = e
        .iter()
        .enumerate()
        .map(|(k, &from)| Bin { from, to: e.get(k + 1).copied(), rows: 0 })
        .collect();
    for &n in &lens {
        let k = e.partition_point(|&edge| edge <= n) - 1;
        histogram[k].rows += 1;
    }
    TokenStats {
        rows: rows.len(),
        failed: failures.len(),
        failures,
        min: sorted.first().copied().unwrap_or(0),
        max: max_seen,
        mean: if lens.is_empty() { 0.0 } else { lens.iter().sum::<usize>() as f64 / lens.len() as f64 },
        median: pick(0.5),
        p95: pick(0.95),
        max_len,
        truncated: lens.iter().filter(|&&n| n > max_len).count(),
        trained_tokens: trained,
        histogram,
    }
}
