//! All text metrics over a set of predictions at once, for reports and the UI.

use serde::{Deserialize, Serialize};

use crate::bleu::{check_corpus, corpus_bleu, sentence_bleu, BleuScore};
use crate::chrf::{corpus_chrf, sentence_chrf, ChrfScore};
use crate::error::Result;
use crate::meteor::{Meteor, MeteorOptions};
use crate::rouge::{rouge_multi, RougeOptions, RougeScore, RougeScores};
use crate::squad::{squad, SquadScore};

#[derive(Debug, Default)]
pub struct ScoreOptions {
    pub rouge: RougeOptions,
    pub meteor: MeteorOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScores {
    pub bleu: BleuScore,
    pub chrf: ChrfScore,
    pub rouge: RougeScores,
    pub meteor: f64,
    pub squad: SquadScore,
}

/// Means over items of each ROUGE variant's F-measure (the number ROUGE reports usually quote).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanRouge {
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
    pub rouge_lsum: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub count: usize,
    /// Corpus-level BLEU (sacrebleu's `corpus_bleu`), not a mean of sentence scores.
    pub bleu: BleuScore,
    /// Corpus-level chrF.
    pub chrf: ChrfScore,
    pub rouge: MeanRouge,
    pub meteor: f64,
    /// False when METEOR ran without WordNet, so without its synonym stage.
    pub meteor_synonyms: bool,
    pub exact_match: f64,
    pub f1: f64,
    pub items: Vec<ItemScores>,
}

/// [`score_with`] with default options: ROUGE without stemming, METEOR without WordNet.
pub fn score<P: AsRef<str>, R: AsRef<str>>(
    predictions: &[P],
    references: &[Vec<R>],
) -> Result<Scores> {
    score_with(predictions, references, &ScoreOptions::default())
}

/// Scores `predictions[i]` against `references[i]` (one or more texts each) with every text metric.
pub fn score_with<P: AsRef<str>, R: AsRef<str>>(
    predictions: &[P],
    references: &[Vec<R>],
    options: &ScoreOptions,
) -> Result<Scores> {
    check_corpus(predictions.len(), references)?;
    let meteor = Meteor::new(&options.meteor);
    let mut items = Vec::with_capacity(predictions.len());
    for (p, refs) in predictions.iter().zip(references) {
        let p = p.as_ref();
        let m = meteor.score_text(p, refs)?;
        items.push(ItemScores {
            bleu: sentence_bleu(p, refs)?,
            chrf: sentence_chrf(p, refs)?,
            rouge: rouge_multi(p, refs, options.rouge)?,
            meteor: m.score,
            squad: squad(p, refs)?,
        });
    }
    let n = items.len() as f64;
    let mean = |f: &dyn Fn(&ItemScores) -> f64| items.iter().map(f).sum::<f64>() / n;
    let f = |s: RougeScore| s.fmeasure;
    Ok(Scores {
        count: items.len(),
        bleu: corpus_bleu(predictions, references)?,
        chrf: corpus_chrf(predictions, references)?,
        rouge: MeanRouge {
            rouge1: mean(&|i| f(i.rouge.rouge1)),
            rouge2: mean(&|i| f(i.rouge.rouge2)),
            rouge_l: mean(&|i| f(i.rouge.rouge_l)),
            rouge_lsum: mean(&|i| f(i.rouge.rouge_lsum)),
        },
        meteor: mean(&|i| i.meteor),
        meteor_synonyms: options.meteor.wordnet.is_some(),
        exact_match: mean(&|i| i.squad.exact_match),
        f1: mean(&|i| i.squad.f1),
        items,
    })
}
