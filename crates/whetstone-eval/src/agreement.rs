//! Krippendorff's alpha from a raters × units matrix with missing ratings, as the `krippendorff` package
//! (PyPI) computes it: alpha = 1 - D_o / D_e from the coincidence matrix of pairable values.
//!
//! Distances follow that package: nominal 0/1; interval (a - b)^2; ratio ((a - b) / (a + b))^2; ordinal
//! (sum of the value counts n_g from rank a to rank b, less (n_a + n_b) / 2)^2, with ranks taken in the sorted
//! set of values that occur.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

/// `ratings[r][u]` is rater r's value for unit u, `None` when missing (NaN counts as missing too).
pub fn krippendorff_alpha(ratings: &[Vec<Option<f64>>], level: Level) -> Result<f64> {
    let Some(first) = ratings.first() else {
        return Err(Error::Empty("ratings matrix"));
    };
    let units = first.len();
    if let Some((rater, row)) = ratings.iter().enumerate().find(|(_, r)| r.len() != units) {
        return Err(Error::RaggedRatings {
            rater,
            got: row.len(),
            expected: units,
        });
    }
    let value = |r: usize, u: usize| ratings[r][u].filter(|v| !v.is_nan());
    let mut domain: Vec<f64> = ratings
        .iter()
        .flatten()
        .filter_map(|v| v.filter(|v| !v.is_nan()))
        .collect();
    domain.sort_by(f64::total_cmp);
    domain.dedup();
    if domain.len() <= 1 {
        return Err(Error::SingleValue);
    }
    let v = domain.len();
    // counts[u][k]: how many raters gave unit u the k-th value.
    let counts: Vec<Vec<f64>> = (0..units)
        .map(|u| {
            let mut row = vec![0.0; v];
            for r in 0..ratings.len() {
                if let Some(x) = value(r, u) {
                    let k = domain.partition_point(|&d| d < x);
                    row[k] += 1.0;
                }
            }
            row
        })
        .collect();
    if counts.iter().all(|row| row.iter().sum::<f64>() <= 1.0) {
        return Err(Error::NoPairableUnit);
    }
    let mut o = vec![vec![0.0; v]; v];
    for row in &counts {
        let pairable = row.iter().sum::<f64>().max(2.0);
        for c in 0..v {
            for k in 0..v {
                let diag = if c == k { row[c] } else { 0.0 };
                o[c][k] += (row[c] * row[k] - diag) / (pairable - 1.0);
            }
        }
    }
    let n_v: Vec<f64> = (0..v).map(|k| (0..v).map(|c| o[c][k]).sum()).collect();
    let n_total: f64 = n_v.iter().sum();
    let distance = |a: usize, b: usize| -> f64 {
        let (x, y) = (domain[a], domain[b]);
        match level {
            Level::Nominal => f64::from(u8::from(x != y)),
            Level::Interval => (x - y).powi(2),
            Level::Ratio => {
                let s = x + y;
                if s == 0.0 {
                    0.0
                } else {
                    ((x - y) / s).powi(2)
                }
            }
            Level::Ordinal => {
                let (lo, hi) = (a.min(b), a.max(b));
                let between: f64 = n_v[lo..=hi].iter().sum();
                (between - (n_v[lo] + n_v[hi]) / 2.0).powi(2)
            }
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..v {
        for k in 0..v {
            let d = distance(c, k);
            let e = (n_v[c] * n_v[k] - if c == k { n_v[c] } else { 0.0 }) / (n_total - 1.0);
            observed += o[c][k] * d;
            expected += e * d;
        }
    }
    Ok(1.0 - observed / expected)
}

/// One score: `rater` gave `item` the value `score` on `criterion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub rater: String,
    pub item: String,
    pub criterion: String,
    pub score: f64,
}

/// Agreement on one criterion. An alpha is `None` where the package raises (one distinct value, or no item
/// rated twice); `note` then says which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionAgreement {
    pub criterion: String,
    pub raters: usize,
    pub items: usize,
    pub ratings: usize,
    pub ordinal: Option<f64>,
    pub nominal: Option<f64>,
    pub note: Option<String>,
}

/// Krippendorff's alpha, ordinal and nominal, for each criterion in the order it first appears. Raters and
/// items are matched by name; a rater who did not score an item counts as missing there.
pub fn by_criterion(ratings: &[Rating]) -> Vec<CriterionAgreement> {
    let mut criteria: Vec<&str> = Vec::new();
    for r in ratings {
        if !criteria.contains(&r.criterion.as_str()) {
            criteria.push(&r.criterion);
        }
    }
    criteria
        .into_iter()
        .map(|criterion| {
            let mine: Vec<&Rating> = ratings.iter().filter(|r| r.criterion == criterion).collect();
            // Names to matrix rows and columns, in order of first appearance.
            let index = |names: &mut dyn Iterator<Item = &str>| -> HashMap<String, usize> {
                let mut map = HashMap::new();
                for n in names {
                    let next = map.len();
                    map.entry(n.to_string()).or_insert(next);
                }
                map
            };
            let raters = index(&mut mine.iter().map(|r| r.rater.as_str()));
            let items = index(&mut mine.iter().map(|r| r.item.as_str()));
            let mut matrix = vec![vec![None; items.len()]; raters.len()];
            for r in &mine {
                matrix[raters[&r.rater]][items[&r.item]] = Some(r.score);
            }
            let ordinal = krippendorff_alpha(&matrix, Level::Ordinal);
            let nominal = krippendorff_alpha(&matrix, Level::Nominal);
            let note = ordinal.as_ref().err().or(nominal.as_ref().err()).map(|e| e.to_string());
            CriterionAgreement {
                criterion: criterion.to_string(),
                raters: raters.len(),
                items: items.len(),
                ratings: mine.len(),
                ordinal: ordinal.ok(),
                nominal: nominal.ok(),
                note,
            }
        })
        .collect()
}
