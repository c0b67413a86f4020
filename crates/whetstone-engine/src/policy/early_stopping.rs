//! Early stopping: the best evaluation so far, and how many evaluations have gone by without a real
//! improvement.

use crate::checkpoint::Best;
use serde::{Deserialize, Serialize};

/// What checkpoints carry of early stopping; `patience` and `min_delta` come from the settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    pub best: Option<Best>,
    /// Evaluations since the last one that improved by more than the minimum delta.
    pub evals_without_improvement: u64,
}

impl EarlyStopping {
    /// Records the evaluation at `step` and says whether it is the best so far. Any lower loss
    /// becomes the best (its checkpoint is the one worth keeping), but only one lower by more than
    /// `min_delta` restarts the patience count, so a loss that creeps down by crumbs still stops.
    pub fn observe(&mut self, step: u64, loss: f64, min_delta: f64) -> bool {
        let before = self.best;
        if before.is_none_or(|b| loss < b.eval_loss - min_delta) {
            self.evals_without_improvement = 0;
        } else {
            self.evals_without_improvement += 1;
        }
        let is_best = before.is_none_or(|b| loss < b.eval_loss);
        if is_best {
            self.best = Some(Best { step, eval_loss: loss });
        }
        is_best
    }

    /// Why the run should stop at `step`, in plain words, once `patience` evaluations in a row have
    /// not improved; patience 0 never stops.
    pub fn stop_reason(&self, step: u64, patience: u64) -> Option<String> {
        if patience == 0 || self.evals_without_improvement < patience {
            return None;
        }
        let b = self.best?;
        Some(format!(
            "Stopped early at step {step}: the validation loss has not improved for {} evaluations. The best was {:.4} at step {}.",
            self.evals_without_improvement, b.eval_loss, b.step
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(losses: &[f64], min_delta: f64) -> (EarlyStopping, Vec<bool>) {
        let mut e = EarlyStopping::default();
        let bests = losses.iter().enumerate().map(|(i, &l)| e.observe(10 * (i as u64 + 1), l, min_delta)).collect();
        (e, bests)
    }

    #[test]
    fn the_first_evaluation_is_the_best() {
        let (e, bests) = fed(&[2.5], 0.0);
        assert_eq!(bests, [true]);
        assert_eq!(e.best, Some(Best { step: 10, eval_loss: 2.5 }));
        assert_eq!(e.evals_without_improvement, 0);
    }

    #[test]
    fn an_equal_loss_is_neither_best_nor_an_improvement() {
        let (e, bests) = fed(&[2.0, 2.0], 0.0);
        assert_eq!(bests, [true, false]);
        assert_eq!(e.best.unwrap().step, 10, "a tie keeps the earlier best");
        assert_eq!(e.evals_without_improvement, 1);
    }

    #[test]
    fn a_gain_within_min_delta_is_a_new_best_but_does_not_reset_patience() {
        let (e, bests) = fed(&[2.0, 3.0, 1.95], 0.1);
        assert_eq!(bests, [true, false, true]);
        assert_eq!(e.best, Some(Best { step: 30, eval_loss: 1.95 }));
        assert_eq!(e.evals_without_improvement, 2);
    }

    #[test]
    fn a_gain_beyond_min_delta_resets_patience() {
        let (e, _) = fed(&[2.0, 3.0, 1.85], 0.1);
        assert_eq!(e.evals_without_improvement, 0);
        // Exactly min_delta lower is not more than min_delta lower.
        let (e, _) = fed(&[2.0, 3.0, 1.5], 0.5);
        assert_eq!(e.evals_without_improvement, 2);
    }

    #[test]
    fn stops_once_patience_evaluations_did_not_improve() {
        let (e, _) = fed(&[2.0, 2.1], 0.0);
        assert_eq!(e.stop_reason(20, 2), None, "one evaluation without improvement of two allowed");
        let (e, _) = fed(&[2.0, 2.1, 2.2], 0.0);
        let why = e.stop_reason(30, 2).expect("patience is used up");
        assert_eq!(why, "Stopped early at step 30: the validation loss has not improved for 2 evaluations. The best was 2.0000 at step 10.");
    }

    #[test]
    fn patience_zero_never_stops() {
        let (e, _) = fed(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0);
        assert_eq!(e.evals_without_improvement, 4);
        assert_eq!(e.stop_reason(50, 0), None);
        assert!(e.stop_reason(50, 4).is_some());
    }

    #[test]
    fn without_evaluations_nothing_stops() {
        assert_eq!(EarlyStopping::default().stop_reason(5, 1), None);
    }
}
