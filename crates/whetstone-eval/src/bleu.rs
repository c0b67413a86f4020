//! BLEU as sacrebleu computes it with its defaults: the 13a tokenizer, case-sensitive, 4-gram precisions,
//! exponential ("exp", NIST) smoothing, the closest reference length for the brevity penalty and clipped counts
//! against the per-n-gram maximum over all references. Sentence BLEU uses effective order, as sacrebleu's
//! `sentence_bleu` does by default; corpus BLEU does not, as `corpus_bleu` does not.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text::{py_rstrip, py_split};

const MAX_ORDER: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BleuScore {
    /// 0..100, as sacrebleu reports it.
    pub score: f64,
    pub counts: [u64; MAX_ORDER],
    pub totals: [u64; MAX_ORDER],
    pub precisions: [f64; MAX_ORDER],
    pub bp: f64,
    pub sys_len: u64,
    pub ref_len: u64,
}

impl BleuScore {
    /// The score as sacrebleu prints it (two decimals).
    pub fn printed(&self) -> String {
        format!("{:.2}", self.score)
    }
}

fn in_13a_class(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// One `re.sub` of a two-character pattern: leftmost matches, never overlapping, scanning on after each one.
fn sub_pairs(
    chars: &[char],
    first: fn(char) -> bool,
    second: fn(char) -> bool,
    out: fn(&mut Vec<char>, char, char),
) -> Vec<char> {
    let mut res = Vec::with_capacity(chars.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && first(chars[i]) && second(chars[i + 1]) {
            out(&mut res, chars[i], chars[i + 1]);
            i += 2;
        } else {
            res.push(chars[i]);
            i += 1;
        }
    }
    res
}

fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// sacrebleu's `Tokenizer13a` (mteval-v13a.pl's tokenization).
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut chars = Vec::with_capacity(line.len() * 2);
    chars.push(' ');
    for c in line.chars() {
        if in_13a_class(c) {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    chars.push(' ');
    let not_digit = |c: char| !c.is_ascii_digit();
    let chars = sub_pairs(&chars, not_digit, is_period_or_comma, |o, a, b| {
        o.extend([a, ' ', b, ' '])
    });
    let chars = sub_pairs(&chars, is_period_or_comma, not_digit, |o, a, b| {
        o.extend([' ', a, ' ', b])
    });
    let chars = sub_pairs(
        &chars,
        |c| c.is_ascii_digit(),
        |c| c == '-',
        |o, a, b| o.extend([a, ' ', b, ' ']),
    );
    let joined: String = chars.into_iter().collect();
    py_split(&joined).join(" ")
}

fn preprocess(text: &str) -> String {
    tokenize_13a(py_rstrip(text))
}

fn ngram_counts(tokens: &[&str]) -> HashMap<Vec<String>, u64> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        if tokens.len() >= n {
            for gram in tokens.windows(n) {
                *counts
                    .entry(gram.iter().map(|s| s.to_string()).collect())
                    .or_insert(0) += 1;
            }
        }
    }
    counts
}

/// sacrebleu's `_get_closest_ref_len`: the nearest length, the shorter one on ties.
fn closest_ref_len(hyp_len: u64, ref_lens: &[u64]) -> u64 {
    let mut best: Option<(u64, u64)> = None;
    for &len in ref_lens {
        let diff = hyp_len.abs_diff(len);
        best = match best {
            None => Some((diff, len)),
            Some((d, l)) if diff < d || (diff == d && len < l) => Some((diff, len)),
            keep => keep,
        };
    }
    best.map_or(0, |(_, l)| l)
}

/// Per-segment statistics: [hyp_len, ref_len, correct..., total...].
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    sys_len: u64,
    ref_len: u64,
    correct: [u64; MAX_ORDER],
    total: [u64; MAX_ORDER],
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.sys_len += o.sys_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

fn segment_stats<S: AsRef<str>>(hypothesis: &str, references: &[S]) -> Stats {
    let mut ref_max: HashMap<Vec<String>, u64> = HashMap::new();
    let mut ref_lens = Vec::with_capacity(references.len());
    for r in references {
        let r = preprocess(r.as_ref());
        let tokens = py_split(&r);
        ref_lens.push(tokens.len() as u64);
        for (gram, count) in ngram_counts(&tokens) {
            let slot = ref_max.entry(gram).or_insert(0);
            *slot = (*slot).max(count);
        }
    }
    let h = preprocess(hypothesis);
    let tokens = py_split(&h);
    let mut stats = Stats {
        sys_len: tokens.len() as u64,
        ref_len: closest_ref_len(tokens.len() as u64, &ref_lens),
        ..Default::default()
    };
    for (gram, count) in ngram_counts(&tokens) {
        let n = gram.len() - 1;
        stats.total[n] += count;
        if let Some(&r) = ref_max.get(&gram) {
            stats.correct[n] += count.min(r);
        }
    }
    stats
}

/// sacrebleu's `my_log`: log with zero floored to a huge negative number rather than -inf.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// sacrebleu's `BLEU.compute_bleu` with smooth_method="exp".
fn compute(stats: Stats, effective_order: bool) -> BleuScore {
    let Stats {
        sys_len,
        ref_len,
        correct,
        total,
    } = stats;
    let mut bp = 1.0;
    if sys_len < ref_len {
        bp = if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        };
    }
    let mut precisions = [0.0; MAX_ORDER];
    let mut out = BleuScore {
        score: 0.0,
        counts: correct,
        totals: total,
        precisions,
        bp,
        sys_len,
        ref_len,
    };
    if correct.iter().all(|&c| c == 0) {
        return out;
    }
    let mut smooth = 1.0;
    let mut eff_order = MAX_ORDER;
    for n in 0..MAX_ORDER {
        if total[n] == 0 {
            break;
        }
        if effective_order {
            eff_order = n + 1;
        }
        precisions[n] = if correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * total[n] as f64)
        } else {
            100.0 * correct[n] as f64 / total[n] as f64
        };
    }
    let log_sum: f64 = precisions[..eff_order]
        .iter()
        .map(|&p| floored_log(p))
        .sum();
    out.score = bp * (log_sum / eff_order as f64).exp();
    out.precisions = precisions;
    out
}

/// `sacrebleu.sentence_bleu(hypothesis, references)`.
pub fn sentence_bleu<S: AsRef<str>>(hypothesis: &str, references: &[S]) -> Result<BleuScore> {
    if references.is_empty() {
        return Err(Error::NoReferences { index: 0 });
    }
    Ok(compute(segment_stats(hypothesis, references), true))
}

/// `sacrebleu.corpus_bleu(hypotheses, reference_streams)`, with `references[i]` the references of
/// `hypotheses[i]`; segments may have different numbers of references (sacrebleu's `None` padding).
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
) -> Result<BleuScore> {
    check_corpus(hypotheses.len(), references)?;
    let mut total = Stats::default();
    for (h, refs) in hypotheses.iter().zip(references) {
        total += segment_stats(h.as_ref(), refs);
    }
    Ok(compute(total, false))
}

pub(crate) fn check_corpus<R>(hypotheses: usize, references: &[Vec<R>]) -> Result<()> {
    if hypotheses == 0 {
        return Err(Error::Empty("list of predictions"));
    }
    if hypotheses != references.len() {
        return Err(Error::LengthMismatch {
            predictions: hypotheses,
            references: references.len(),
        });
    }
    if let Some(index) = references.iter().position(Vec::is_empty) {
        return Err(Error::NoReferences { index });
    }
    Ok(())
}
