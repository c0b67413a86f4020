//! Automatic metrics for model outputs and agreement statistics for expert ratings.
//!
//! Every text metric reproduces a reference implementation exactly (see the crate README): ROUGE as
//! `rouge-score`, BLEU and chrF as `sacrebleu`, METEOR as nltk, exact match and F1 as SQuAD v1.1's script, label
//! scores as scikit-learn, Krippendorff's alpha as the `krippendorff` package.

pub mod agreement;
pub mod bleu;
pub mod bootstrap;
pub mod chrf;
pub mod error;
pub mod inputs;
pub mod labels;
pub mod meteor;
pub mod porter;
pub mod rouge;
pub mod scores;
pub mod squad;
pub mod text;
pub mod wordnet;

pub use error::{Error, Result};
pub use scores::{score, score_with, ItemScores, MeanRouge, ScoreOptions, Scores};
