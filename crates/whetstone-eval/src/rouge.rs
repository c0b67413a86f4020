//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum as Google's `rouge-score` package computes them.
//!
//! Tokens: the text is lower-cased and every run of characters outside [a-z0-9] becomes a separator, so
//! accented letters, CJK and emoji vanish (as they do in the reference). With `use_stemmer` each token longer
//! than three characters goes through nltk's Porter stemmer (NLTK_EXTENSIONS mode), as `rouge-score` does.
//! ROUGE-Lsum splits both texts on "\n" into sentences and scores the union LCS of each reference sentence.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::porter::{PorterMode, PorterStemmer};

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RougeScore {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RougeScores {
    pub rouge1: RougeScore,
    pub rouge2: RougeScore,
    pub rouge_l: RougeScore,
    pub rouge_lsum: RougeScore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RougeOptions {
    /// `RougeScorer(..., use_stemmer=True)`; the reference's default is off.
    pub use_stemmer: bool,
}

/// `rouge_score.tokenize.tokenize`.
pub fn tokenize(text: &str, stemmer: Option<&PorterStemmer>) -> Vec<String> {
    let lower = crate::text::py_lower(text);
    lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(|t| match stemmer {
            Some(s) if t.len() > 3 => s.stem(t),
            _ => t.to_string(),
        })
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        .collect()
}

fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn score(precision: f64, recall: f64) -> RougeScore {
    RougeScore {
        precision,
        recall,
        fmeasure: fmeasure(precision, recall),
    }
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

fn score_ngrams(target: &[String], prediction: &[String], n: usize) -> RougeScore {
    let t = ngrams(target, n);
    let p = ngrams(prediction, n);
    let overlap: usize = t
        .iter()
        .map(|(g, &c)| c.min(p.get(g).copied().unwrap_or(0)))
        .sum();
    let t_total: usize = t.values().sum();
    let p_total: usize = p.values().sum();
    score(
        overlap as f64 / p_total.max(1) as f64,
        overlap as f64 / t_total.max(1) as f64,
    )
}

fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<usize>> {
    let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i][j] = if a[i - 1] == b[j - 1] {
                t[i - 1][j - 1] + 1
            } else {
                t[i - 1][j].max(t[i][j - 1])
            };
        }
    }
    t
}

fn score_lcs(target: &[String], prediction: &[String]) -> RougeScore {
    if target.is_empty() || prediction.is_empty() {
        return RougeScore::default();
    }
    let lcs = lcs_table(target, prediction)[target.len()][prediction.len()] as f64;
    score(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// Indices into `reference` of one longest common subsequence, chosen by the reference's backtrack.
fn lcs_indices(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let t = lcs_table(reference, candidate);
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i][j - 1] > t[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    out.reverse();
    out
}

fn summary_level_lcs(reference: &[Vec<String>], candidate: &[Vec<String>]) -> RougeScore {
    if reference.is_empty() || candidate.is_empty() {
        return RougeScore::default();
    }
    let m: usize = reference.iter().map(Vec::len).sum();
    let n: usize = candidate.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return RougeScore::default();
    }
    let mut left_r: HashMap<&str, usize> = HashMap::new();
    let mut left_c: HashMap<&str, usize> = HashMap::new();
    for t in reference.iter().flatten() {
        *left_r.entry(t).or_insert(0) += 1;
    }
    for t in candidate.iter().flatten() {
        *left_c.entry(t).or_insert(0) += 1;
    }
    let mut hits = 0usize;
    for r in reference {
        let mut union: Vec<usize> = candidate.iter().flat_map(|c| lcs_indices(r, c)).collect();
        union.sort_unstable();
        union.dedup();
        for i in union {
            let t = r[i].as_str();
            let (cr, cc) = (
                left_r.get(t).copied().unwrap_or(0),
                left_c.get(t).copied().unwrap_or(0),
            );
            if cc > 0 && cr > 0 {
                hits += 1;
                left_r.insert(t, cr - 1);
                left_c.insert(t, cc - 1);
            }
        }
    }
    score(hits as f64 / n as f64, hits as f64 / m as f64)
}

fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').filter(|s| !s.is_empty())
}

/// `RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer).score(reference, prediction)`.
pub fn rouge(prediction: &str, reference: &str, options: RougeOptions) -> RougeScores {
    let stemmer = options
        .use_stemmer
        .then(|| PorterStemmer::new(PorterMode::NltkExtensions));
    let stemmer = stemmer.as_ref();
    let target = tokenize(reference, stemmer);
    let pred = tokenize(prediction, stemmer);
    let target_sents: Vec<Vec<String>> =
        sentences(reference).map(|s| tokenize(s, stemmer)).collect();
    let pred_sents: Vec<Vec<String>> = sentences(prediction)
        .map(|s| tokenize(s, stemmer))
        .collect();
    RougeScores {
        rouge1: score_ngrams(&target, &pred, 1),
        rouge2: score_ngrams(&target, &pred, 2),
        rouge_l: score_lcs(&target, &pred),
        rouge_lsum: summary_level_lcs(&target_sents, &pred_sents),
    }
}

/// `RougeScorer.score_multi(references, prediction)`: for each ROUGE type separately, the scores against the
/// reference with the highest F-measure (the first such reference on ties).
pub fn rouge_multi<S: AsRef<str>>(
    prediction: &str,
    references: &[S],
    options: RougeOptions,
) -> Result<RougeScores> {
    if references.is_empty() {
        return Err(Error::NoReferences { index: 0 });
    }
    let all: Vec<RougeScores> = references
        .iter()
        .map(|r| rouge(prediction, r.as_ref(), options))
        .collect();
    let best = |pick: fn(&RougeScores) -> RougeScore| {
        let mut best = pick(&all[0]);
        for s in &all[1..] {
            if pick(s).fmeasure > best.fmeasure {
                best = pick(s);
            }
        }
        best
    };
    Ok(RougeScores {
        rouge1: best(|s| s.rouge1),
        rouge2: best(|s| s.rouge2),
        rouge_l: best(|s| s.rouge_l),
        rouge_lsum: best(|s| s.rouge_lsum),
    })
}
