//! chrF as sacrebleu computes it with its defaults: character n-grams of orders 1 to 6, no word n-grams,
//! beta 2, case-sensitive, whitespace removed before counting, no epsilon smoothing. With several references
//! each segment keeps the statistics of its best-scoring reference; a corpus sums those statistics.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::bleu::check_corpus;
use crate::error::{Error, Result};
use crate::text::is_py_space;

const CHAR_ORDER: usize = 6;
const BETA: f64 = 2.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChrfScore {
    /// 0..100, as sacrebleu reports it.
    pub score: f64,
}

impl ChrfScore {
    /// The score as sacrebleu prints it (two decimals).
    pub fn printed(&self) -> String {
        format!("{:.2}", self.score)
    }
}

/// [hyp, ref, match] counts for each order.
type Stats = [[u64; 3]; CHAR_ORDER];

/// sacrebleu's `extract_all_char_ngrams(line, 6, include_whitespace=False)` on whitespace-free characters.
fn count_ngrams(chars: &[char]) -> Vec<HashMap<&[char], u64>> {
    (1..=CHAR_ORDER)
        .map(|n| {
            let mut counts = HashMap::new();
            if chars.len() >= n {
                for gram in chars.windows(n) {
                    *counts.entry(gram).or_insert(0) += 1;
                }
            }
            counts
        })
        .collect()
}

fn strip_spaces(text: &str) -> Vec<char> {
    text.chars().filter(|&c| !is_py_space(c)).collect()
}

/// sacrebleu's `CHRF._compute_f_score` without epsilon smoothing.
fn f_score(stats: &Stats) -> f64 {
    let eps = 1e-16;
    let factor = BETA * BETA;
    let (mut avg_prec, mut avg_rec, mut effective_order) = (0.0, 0.0, 0u32);
    for &[n_hyp, n_ref, n_match] in stats {
        let prec = if n_hyp > 0 {
            n_match as f64 / n_hyp as f64
        } else {
            eps
        };
        let rec = if n_ref > 0 {
            n_match as f64 / n_ref as f64
        } else {
            eps
        };
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += prec;
            avg_rec += rec;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        avg_prec = 0.0;
        avg_rec = 0.0;
    } else {
        avg_prec /= effective_order as f64;
        avg_rec /= effective_order as f64;
    }
    if avg_prec + avg_rec != 0.0 {
        let mut score = (1.0 + factor) * avg_prec * avg_rec;
        score /= factor * avg_prec + avg_rec;
        100.0 * score
    } else {
        0.0
    }
}

fn segment_stats<S: AsRef<str>>(hypothesis: &str, references: &[S]) -> Stats {
    let hyp_chars = strip_spaces(hypothesis);
    let hyp = count_ngrams(&hyp_chars);
    let mut best: Option<(f64, Stats)> = None;
    for r in references {
        let ref_chars = strip_spaces(r.as_ref());
        let rgrams = count_ngrams(&ref_chars);
        let mut stats: Stats = [[0; 3]; CHAR_ORDER];
        for (n, (h, r)) in hyp.iter().zip(&rgrams).enumerate() {
            let hyp_count: u64 = h.values().sum();
            let matched: u64 = h
                .iter()
                .map(|(g, &c)| r.get(g).map_or(0, |&rc| c.min(rc)))
                .sum();
            // sacrebleu counts hypothesis n-grams only where the reference has n-grams of that order.
            stats[n] = [
                if r.is_empty() { 0 } else { hyp_count },
                r.values().sum(),
                matched,
            ];
        }
        let f = f_score(&stats);
        if best.as_ref().is_none_or(|(bf, _)| f > *bf) {
            best = Some((f, stats));
        }
    }
    best.map(|(_, s)| s).unwrap_or([[0; 3]; CHAR_ORDER])
}

/// `sacrebleu.sentence_chrf(hypothesis, references)`.
pub fn sentence_chrf<S: AsRef<str>>(hypothesis: &str, references: &[S]) -> Result<ChrfScore> {
    if references.is_empty() {
        return Err(Error::NoReferences { index: 0 });
    }
    Ok(ChrfScore {
        score: f_score(&segment_stats(hypothesis, references)),
    })
}

/// `sacrebleu.corpus_chrf(hypotheses, reference_streams)`, with `references[i]` the references of
/// `hypotheses[i]`.
pub fn corpus_chrf<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
) -> Result<ChrfScore> {
    check_corpus(hypotheses.len(), references)?;
    let mut total: Stats = [[0; 3]; CHAR_ORDER];
    for (h, refs) in hypotheses.iter().zip(references) {
        let s = segment_stats(h.as_ref(), refs);
        for n in 0..CHAR_ORDER {
            for k in 0..3 {
                total[n][k] += s[n][k];
            }
        }
    }
    Ok(ChrfScore {
        score: f_score(&total),
    })
}
