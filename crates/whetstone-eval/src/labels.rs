//! Precision, recall and F1 for label outputs (one label per item), per label and averaged, as
//! scikit-learn's `precision_recall_fscore_support(..., zero_division=0)` computes them. Labels are the sorted
//! union of the true and predicted labels; a ratio with a zero denominator is 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// How many items truly carry this label.
    pub support: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Average {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelReport {
    pub per_label: Vec<LabelScore>,
    /// Unweighted mean over labels.
    pub macro_avg: Average,
    /// From the counts pooled over labels (equals accuracy when every item has exactly one label).
    pub micro_avg: Average,
    /// Mean over labels weighted by support.
    pub weighted_avg: Average,
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

fn scores(tp: u64, pred: u64, truth: u64) -> Average {
    let (tp, pred, truth) = (tp as f64, pred as f64, truth as f64);
    // scikit-learn's F1 from counts, (1 + b^2) tp / (b^2 (tp + fn) + tp + fp), not from rounded P and R.
    Average {
        precision: ratio(tp, pred),
        recall: ratio(tp, truth),
        f1: ratio(2.0 * tp, truth + pred),
    }
}

pub fn label_report<T: AsRef<str>, P: AsRef<str>>(
    y_true: &[T],
    y_pred: &[P],
) -> Result<LabelReport> {
    if y_true.is_empty() {
        return Err(Error::Empty("list of labels"));
    }
    if y_true.len() != y_pred.len() {
        return Err(Error::LengthMismatch {
            predictions: y_pred.len(),
            references: y_true.len(),
        });
    }
    // label -> (tp, predicted, true)
    let mut counts: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for (t, p) in y_true.iter().zip(y_pred) {
        let (t, p) = (t.as_ref(), p.as_ref());
        counts.entry(t).or_default().2 += 1;
        counts.entry(p).or_default().1 += 1;
        if t == p {
            counts.entry(t).or_default().0 += 1;
        }
    }
    let per_label: Vec<LabelScore> = counts
        .iter()
        .map(|(label, &(tp, pred, truth))| {
            let s = scores(tp, pred, truth);
            LabelScore {
                label: label.to_string(),
                precision: s.precision,
                recall: s.recall,
                f1: s.f1,
                support: truth,
            }
        })
        .collect();
    let k = per_label.len() as f64;
    let mean = |f: fn(&LabelScore) -> f64| per_label.iter().map(f).sum::<f64>() / k;
    let total_support: f64 = per_label.iter().map(|l| l.support as f64).sum();
    let weighted = |f: fn(&LabelScore) -> f64| {
        per_label
            .iter()
            .map(|l| f(l) * l.support as f64)
            .sum::<f64>()
            / total_support
    };
    let tp: u64 = counts.values().map(|c| c.0).sum();
    let n = y_true.len() as u64;
    Ok(LabelReport {
        macro_avg: Average {
            precision: mean(|l| l.precision),
            recall: mean(|l| l.recall),
            f1: mean(|l| l.f1),
        },
        micro_avg: scores(tp, n, n),
        weighted_avg: Average {
            precision: weighted(|l| l.precision),
            recall: weighted(|l| l.recall),
            f1: weighted(|l| l.f1),
        },
        per_label,
    })
}
