//! SQuAD v1.1's exact match and token F1 (the official evaluate-v1.1.py), the maximum over the references.
//!
//! Normalisation: lower-case, drop ASCII punctuation, replace the words "a", "an" and "the" with a space,
//! collapse whitespace. A word is a run of Unicode alphanumerics and "_", as Python's `\b` sees it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text::{py_lower, py_split};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SquadScore {
    /// 1.0 when some reference normalises to the same text, else 0.0.
    pub exact_match: f64,
    /// The best token-overlap F1 over the references, 0..1.
    pub f1: f64,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `re.sub(r"\b(a|an|the)\b", " ", text)`: whole words only, so "theatre" and "thé" stay.
fn remove_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if matches!(word.as_str(), "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The official `normalize_answer`.
pub fn normalize_answer(text: &str) -> String {
    let no_punct: String = py_lower(text)
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    py_split(&remove_articles(&no_punct)).join(" ")
}

fn f1(prediction: &str, reference: &str) -> f64 {
    let p = normalize_answer(prediction);
    let r = normalize_answer(reference);
    let (p, r) = (py_split(&p), py_split(&r));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &r {
        *counts.entry(t).or_insert(0) += 1;
    }
    let mut same = 0usize;
    for t in &p {
        if let Some(c) = counts.get_mut(t).filter(|c| **c > 0) {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / r.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// Exact match and F1 of one prediction against its references.
pub fn squad<S: AsRef<str>>(prediction: &str, references: &[S]) -> Result<SquadScore> {
    if references.is_empty() {
        return Err(Error::NoReferences { index: 0 });
    }
    let norm = normalize_answer(prediction);
    let exact = references
        .iter()
        .any(|r| normalize_answer(r.as_ref()) == norm);
    let best_f1 = references
        .iter()
        .map(|r| f1(prediction, r.as_ref()))
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(SquadScore {
        exact_match: if exact { 1.0 } else { 0.0 },
        f1: best_f1,
    })
}
