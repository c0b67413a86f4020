//! METEOR as nltk's `meteor_score` computes it: words are aligned in three stages (exact match, Porter-stem
//! match, WordNet synonym match), then F-mean (alpha 0.9) is discounted by a fragmentation penalty
//! (gamma 0.5, beta 3). With several references the best score wins.
//!
//! nltk takes pre-tokenised input; the `_text` entry points split on whitespace as Python's `str.split()` does.
//! Without a WordNet database the third stage finds nothing, which the result reports in `synonyms`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::porter::{PorterMode, PorterStemmer};
use crate::text::{py_lower, py_split};
use crate::wordnet::WordNet;

#[derive(Debug)]
pub struct MeteorOptions {
    /// WordNet for the synonym stage; `None` runs METEOR without synonyms.
    pub wordnet: Option<WordNet>,
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

impl Default for MeteorOptions {
    fn default() -> Self {
        MeteorOptions {
            wordnet: None,
            alpha: 0.9,
            beta: 3.0,
            gamma: 0.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeteorScore {
    /// 0..1.
    pub score: f64,
    /// Whether the synonym stage ran (a WordNet database was given).
    pub synonyms: bool,
}

/// (position in the original token list, word).
type Enum = Vec<(usize, String)>;
type Aligned = (Vec<(usize, usize)>, Enum, Enum);

/// nltk's `_match_enums`: each hypothesis word, from last to first, takes the latest unused reference word
/// that is equal to it.
fn match_enums(hyp: Enum, refs: Enum) -> Aligned {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, w)) in refs.iter().enumerate() {
        positions.entry(w.as_str()).or_default().push(j);
    }
    let mut matches = Vec::new();
    let (mut hyp_used, mut ref_used) = (vec![false; hyp.len()], vec![false; refs.len()]);
    for i in (0..hyp.len()).rev() {
        if let Some(j) = positions.get_mut(hyp[i].1.as_str()).and_then(Vec::pop) {
            hyp_used[i] = true;
            ref_used[j] = true;
            matches.push((hyp[i].0, refs[j].0));
        }
    }
    (matches, unused(hyp, &hyp_used), unused(refs, &ref_used))
}

fn unused(list: Enum, used: &[bool]) -> Enum {
    list.into_iter()
        .zip(used)
        .filter(|(_, &u)| !u)
        .map(|(p, _)| p)
        .collect()
}

/// A METEOR scorer over borrowed options, so that one WordNet serves many scorers.
pub struct Meteor<'a> {
    options: &'a MeteorOptions,
    stemmer: PorterStemmer,
}

impl<'a> Meteor<'a> {
    pub fn new(options: &'a MeteorOptions) -> Self {
        Meteor {
            options,
            stemmer: PorterStemmer::new(PorterMode::NltkExtensions),
        }
    }

    /// nltk's `_enum_wordnetsyn_match`: each hypothesis word, from last to first, takes the latest unused
    /// reference word among its synonyms (or itself).
    fn synonym_match(&self, wordnet: &WordNet, hyp: Enum, refs: Enum) -> Result<Aligned> {
        let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, (_, w)) in refs.iter().enumerate() {
            positions.entry(w.as_str()).or_default().push(j);
        }
        let mut matches = Vec::new();
        let (mut hyp_used, mut ref_used) = (vec![false; hyp.len()], vec![false; refs.len()]);
        for i in (0..hyp.len()).rev() {
            let mut syns = wordnet.synonyms(&hyp[i].1)?;
            syns.insert(hyp[i].1.clone());
            let best = syns
                .iter()
                .filter_map(|s| {
                    positions
                        .get(s.as_str())
                        .and_then(|p| p.last())
                        .map(|&j| (j, s))
                })
                .max_by_key(|&(j, _)| j);
            if let Some((j, word)) = best {
                let word = word.clone();
                if let Some(p) = positions.get_mut(word.as_str()) {
                    p.pop();
                }
                hyp_used[i] = true;
                ref_used[j] = true;
                matches.push((hyp[i].0, refs[j].0));
            }
        }
        Ok((matches, unused(hyp, &hyp_used), unused(refs, &ref_used)))
    }

    fn align(&self, hyp: Enum, refs: Enum) -> Result<Vec<(usize, usize)>> {
        let (mut matches, hyp, refs) = match_enums(hyp, refs);
        let stem = |list: Enum| {
            list.into_iter()
                .map(|(i, w)| (i, self.stemmer.stem(&w)))
                .collect::<Enum>()
        };
        // Like nltk, the synonym stage sees the stems of the words left over, not the words.
        let (stem_matches, hyp, refs) = match_enums(stem(hyp), stem(refs));
        matches.extend(stem_matches);
        if let Some(wordnet) = &self.options.wordnet {
            matches.extend(self.synonym_match(wordnet, hyp, refs)?.0);
        }
        matches.sort_by_key(|&(h, _)| h);
        Ok(matches)
    }

    /// nltk's `single_meteor_score(reference, hypothesis)`.
    fn single<S: AsRef<str>>(&self, hypothesis: &[S], reference: &[S]) -> Result<f64> {
        let enumerate = |t: &[S]| {
            t.iter()
                .map(|w| py_lower(w.as_ref()))
                .enumerate()
                .collect::<Enum>()
        };
        let (hyp, refs) = (enumerate(hypothesis), enumerate(reference));
        let (hyp_len, ref_len) = (hyp.len(), refs.len());
        let matches = self.align(hyp, refs)?;
        let m = matches.len();
        // nltk returns 0 wherever its arithmetic would divide by zero.
        if m == 0 || hyp_len == 0 || ref_len == 0 {
            return Ok(0.0);
        }
        let MeteorOptions {
            alpha, beta, gamma, ..
        } = *self.options;
        let precision = m as f64 / hyp_len as f64;
        let recall = m as f64 / ref_len as f64;
        let fmean = (precision * recall) / (alpha * precision + (1.0 - alpha) * recall);
        let frag = chunks(&matches) as f64 / m as f64;
        let penalty = gamma * frag.powf(beta);
        Ok((1.0 - penalty) * fmean)
    }

    /// nltk's `meteor_score(references, hypothesis)` on tokens.
    pub fn score_tokens<S: AsRef<str>>(
        &self,
        hypothesis: &[S],
        references: &[Vec<S>],
    ) -> Result<MeteorScore> {
        if references.is_empty() {
            return Err(Error::NoReferences { index: 0 });
        }
        let mut best = f64::NEG_INFINITY;
        for r in references {
            best = best.max(self.single(hypothesis, r)?);
        }
        Ok(MeteorScore {
            score: best,
            synonyms: self.options.wordnet.is_some(),
        })
    }

    /// METEOR on texts split on whitespace.
    pub fn score_text<S: AsRef<str>>(
        &self,
        hypothesis: &str,
        references: &[S],
    ) -> Result<MeteorScore> {
        let refs: Vec<Vec<&str>> = references.iter().map(|r| py_split(r.as_ref())).collect();
        self.score_tokens(&py_split(hypothesis), &refs)
    }
}

/// nltk's `_count_chunks`: runs of matches adjacent in both the hypothesis and the reference.
fn chunks(matches: &[(usize, usize)]) -> usize {
    1 + matches
        .windows(2)
        .filter(|w| !(w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1))
        .count()
}
