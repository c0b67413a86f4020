//! Seeded train / validation / test splits, and a check for near-duplicates that straddle them (a validation
//! row that nearly repeats a training row makes the validation loss look better than it is).

use serde::Serialize;

use crate::clean::minhash::{near_duplicate_groups, similarity};
use crate::clean::signatures;
use crate::datarow::{DataRow, Split};
use crate::error::{DataError, Result};

/// Default similarity above which rows in different splits count as leaked.
pub const DEFAULT_LEAKAGE_THRESHOLD: f64 = 0.8;

#[derive(Debug, Clone, Copy, Serialize, ts_rs::TS)]
pub struct SplitCounts {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

/// Assigns each of `n` rows a split: a seeded Fisher–Yates shuffle, then the first `round(n·test)` go to test,
/// the next `round(n·val)` to validation, the rest to training.
pub fn assign(n: usize, val: f64, test: f64, seed: u64) -> Result<Vec<Split>> {
    for (name, f) in [("validation", val), ("test", test)] {
        if !(0.0..1.0).contains(&f) {
            return Err(DataError::InvalidOption(format!("the {name} fraction {f} must be at least 0 and below 1")));
        }
    }
    if val + test >= 1.0 {
        return Err(DataError::InvalidOption(format!(
            "validation ({val}) and test ({test}) together leave nothing to train on"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        let j = (crate::clean::minhash::splitmix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let n_test = (n as f64 * test).round() as usize;
    let n_val = (n as f64 * val).round() as usize;
    if n_test + n_val >= n && n > 0 {
        return Err(DataError::InvalidOption(format!(
            "{n} rows are too few for these fractions: nothing would be left to train on"
        )));
    }
    let mut out = vec![Split::Train; n];
    for (k, &i) in order.iter().enumerate() {
        out[i] = if k < n_test {
            Split::Test
        } else if k < n_test + n_val {
            Split::Val
        } else {
            Split::Train
        };
    }
    Ok(out)
}

pub fn counts(rows: &[DataRow]) -> SplitCounts {
    let mut c = SplitCounts { train: 0, val: 0, test: 0 };
    for r in rows {
        match r.split {
            Some(Split::Train) => c.train += 1,
            Some(Split::Val) => c.val += 1,
            Some(Split::Test) => c.test += 1,
            None => {}
        }
    }
    c
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct LeakedPair {
    pub line: usize,
    pub split: Split,
    pub other_line: usize,
    pub other_split: Split,
    pub similarity: f64,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct LeakageReport {
    pub threshold: f64,
    /// Groups of near-duplicate rows that fall in more than one split.
    pub groups: usize,
    /// Rows in such groups that are not in the group's first row's split.
    pub rows: usize,
    pub examples: Vec<LeakedPair>,
}

/// Near-duplicates across splits of `rows` (all of which carry a split).
pub fn leakage(rows: &[DataRow], threshold: f64) -> LeakageReport {
    let idx: Vec<usize> = (0..rows.len()).collect();
    let sigs = signatures(rows, &idx);
    let mut report = LeakageReport { threshold, groups: 0, rows: 0, examples: Vec::new() };
    for g in near_duplicate_groups(&sigs, threshold) {
        let first = g[0];
        let leaked: Vec<usize> = g[1..].iter().copied().filter(|&i| rows[i].split != rows[first].split).collect();
        let spans = g.iter().any(|&i| rows[i].split != rows[first].split);
        if !spans {
            continue;
        }
        report.groups += 1;
        report.rows += leaked.len();
        for &i in &leaked {
            if report.examples.len() < 20 {
                report.examples.push(LeakedPair {
                    line: rows[i].line,
                    split: rows[i].split.unwrap_or(Split::Train),
                    other_line: rows[first].line,
                    other_split: rows[first].split.unwrap_or(Split::Train),
                    similarity: match (&sigs[i], &sigs[first]) {
                        (Some(a), Some(b)) => similarity(a, b),
                        _ => 0.0,
                    },
                });
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_and_sized() {
        let a = assign(1000, 0.1, 0.05, 7).unwrap();
        assert_eq!(a, assign(1000, 0.1, 0.05, 7).unwrap());
        assert_ne!(a, assign(1000, 0.1, 0.05, 8).unwrap());
        assert_eq!(a.iter().filter(|s| **s == Split::Val).count(), 100);
        assert_eq!(a.iter().filter(|s| **s == Split::Test).count(), 50);
        assert!(assign(10, 0.6, 0.5, 1).is_err());
        assert!(assign(2, 0.5, 0.5, 1).is_err());
    }
}
