//! Guards on the numbers a run produces: steps whose loss or gradient is not finite, a training loss
//! that climbs away, a validation loss that keeps rising, and a dataset too small for the run; and
//! the record that lets a warning be given once per run.

use crate::checkpoint::Best;
use serde::{Deserialize, Serialize};

/// Something the user should know, in plain words; `code` is stable for programs.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

/// Keys of the warnings already given. Checkpoints carry it, so a resumed run does not repeat them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Warned(Vec<String>);

impl Warned {
    /// `warning` the first time `key` comes; nothing after.
    pub fn once(&mut self, key: &str, warning: Warning) -> Option<Warning> {
        if self.0.iter().any(|k| k == key) {
            return None;
        }
        self.0.push(key.to_string());
        Some(warning)
    }
}

/// What to do with a step whose gradients are computed.
#[derive(Debug, Clone, PartialEq)]
pub enum StepCheck {
    Apply,
    /// Leave the adapter as it is and go on.
    Skip(Warning),
    /// Too many bad steps in a row: end the run, for `reason`.
    Stop { warning: Warning, reason: String },
}

/// What checkpoints carry of the guards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Guard {
    pub bad_steps_in_row: u64,
    /// `(step, eval loss)` of every evaluation.
    pub evals: Vec<(u64, f64)>,
    /// Lowest training loss seen, for the divergence warning.
    pub min_loss: Option<f64>,
    /// Sum and count of the training losses since the last evaluation, for the mean the overfitting
    /// warning compares. Absent from checkpoints made before it existed, hence the defaults.
    #[serde(default)]
    pub train_since_eval: (f64, u64),
    /// The mean training loss between each evaluation and the one before it, in step with `evals`
    /// (None where no step was applied in between).
    #[serde(default)]
    pub train_at_evals: Vec<Option<f64>>,
}

impl Guard {
    /// Judges step `step` by its loss and gradient norm before anything reaches the adapter: a NaN
    /// or infinity would poison the weights and every step after, so such a step is skipped, and
    /// `max_bad_steps` of them in a row end the run.
    pub fn check_step(&mut self, step: u64, loss: f64, grad_norm: f64, max_bad_steps: u64) -> StepCheck {
        if loss.is_finite() && grad_norm.is_finite() {
            self.bad_steps_in_row = 0;
            return StepCheck::Apply;
        }
        self.bad_steps_in_row += 1;
        let n = self.bad_steps_in_row;
        let warning = Warning {
            code: "bad_step",
            message: format!(
                "Step {step}: the loss or the gradient was not a finite number, so the step was skipped and the adapter left as it was ({n} in a row)."
            ),
        };
        if n < max_bad_steps {
            return StepCheck::Skip(warning);
        }
        StepCheck::Stop {
            warning,
            reason: format!(
                "Stopped at step {step}: {n} steps in a row had a loss or gradient that was not a finite number. The learning rate may be too high, or some examples may be broken. The adapter keeps what was learned before."
            ),
        }
    }

    /// Records the training loss of an applied step; warns (once per run) when it has climbed well
    /// above the lowest seen. The first steps are spared: their loss jumps about before it settles.
    pub fn observe_loss(&mut self, step: u64, loss: f64, warned: &mut Warned) -> Option<Warning> {
        let min = self.min_loss.map_or(loss, |m| m.min(loss));
        self.min_loss = Some(min);
        self.train_since_eval.0 += loss;
        self.train_since_eval.1 += 1;
        if step <= 5 || loss <= 2.0 * min + 1.0 {
            return None;
        }
        warned.once("diverging", Warning {
            code: "diverging",
            message: format!(
                "The training loss is climbing ({loss:.3} at step {step}, down to {min:.3} before). The learning rate is probably too high; try a lower one."
            ),
        })
    }

    /// Records the evaluation at `step`; warns of overfitting when the validation loss has risen
    /// [`OVERFITTING_RISES`] times in a row while the training loss kept falling (both rising is
    /// divergence, which [`Guard::observe_loss`] reports), once for each best checkpoint it can
    /// point to (`best` already counts this evaluation).
    pub fn observe_eval(&mut self, step: u64, loss: f64, best: Option<Best>, warned: &mut Warned) -> Option<Warning> {
        let (sum, n) = std::mem::take(&mut self.train_since_eval);
        self.evals.push((step, loss));
        self.train_at_evals.push((n > 0).then(|| sum / n as f64));
        let b = best?;
        let k = OVERFITTING_RISES + 1;
        // A checkpoint from before the training means were kept has fewer of them than evaluations:
        // only evaluations that have one are judged.
        if self.evals.len() < k || self.train_at_evals.len() < k {
            return None;
        }
        let val = &self.evals[self.evals.len() - k..];
        let train = &self.train_at_evals[self.train_at_evals.len() - k..];
        let val_rising = val.windows(2).all(|w| w[1].1 > w[0].1);
        // Between the first and the last of these evaluations.
        let train_falling = matches!((train[0], train[k - 1]), (Some(first), Some(last)) if last < first);
        if !val_rising || !train_falling {
            return None;
        }
        warned.once(&format!("overfitting-{}", b.step), Warning {
            code: "overfitting",
            message: format!(
                "The validation loss has risen for {OVERFITTING_RISES} evaluations in a row while the training loss kept falling: the model is starting to learn the training examples by heart (overfitting). The best checkpoint is from step {} (validation loss {:.4}); stopping now keeps it.",
                b.step, b.eval_loss
            ),
        })
    }
}

/// Rises of the validation loss in a row that, with a falling training loss, mean overfitting.
pub const OVERFITTING_RISES: usize = 3;

/// Warns (once per run) when `n` examples are too few for `total` steps of `per_step` examples:
/// each step repeats examples, or each example is seen more than ten times.
pub fn too_few_examples(n: usize, per_step: usize, total: u64, warned: &mut Warned) -> Option<Warning> {
    let message = if n < per_step {
        format!("The data has only {n} examples but each step uses {per_step}, so every step repeats some of them. Add examples or lower the batch size.")
    } else {
        let passes = total as f64 * per_step as f64 / n as f64;
        if passes <= 10.0 {
            return None;
        }
        format!(
            "Each of the {n} examples will be seen about {passes:.0} times. With this few examples the model is likely to learn them by heart instead of the task; add examples or train for fewer steps or epochs."
        )
    };
    warned.once("few_examples", Warning { code: "too_few_examples", message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warned_gives_each_key_once() {
        let mut w = Warned::default();
        let x = Warning { code: "x", message: "m".into() };
        assert_eq!(w.once("a", x.clone()), Some(x.clone()));
        assert_eq!(w.once("a", x.clone()), None);
        assert_eq!(w.once("b", x.clone()), Some(x));
    }

    #[test]
    fn warned_round_trips_as_a_plain_list() {
        let mut w = Warned::default();
        w.once("diverging", Warning { code: "diverging", message: String::new() });
        assert_eq!(serde_json::to_string(&w).unwrap(), r#"["diverging"]"#);
        let back: Warned = serde_json::from_str(r#"["diverging"]"#).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn finite_steps_apply_and_reset_the_bad_count() {
        let mut g = Guard { bad_steps_in_row: 2, ..Guard::default() };
        assert_eq!(g.check_step(7, 1.5, 0.3, 3), StepCheck::Apply);
        assert_eq!(g.bad_steps_in_row, 0);
    }

    #[test]
    fn non_finite_steps_are_skipped_until_max_bad_steps_in_a_row() {
        let mut g = Guard::default();
        for (step, loss, norm) in [(1, f64::NAN, 1.0), (2, 1.0, f64::INFINITY)] {
            match g.check_step(step, loss, norm, 3) {
                StepCheck::Skip(w) => {
                    assert_eq!(w.code, "bad_step");
                    assert!(w.message.contains(&format!("({step} in a row)")), "{}", w.message);
                }
                other => panic!("step {step}: {other:?}"),
            }
        }
        match g.check_step(3, f64::NEG_INFINITY, 1.0, 3) {
            StepCheck::Stop { warning, reason } => {
                assert_eq!(warning.code, "bad_step");
                assert!(reason.starts_with("Stopped at step 3: 3 steps in a row"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_good_step_between_bad_ones_starts_the_count_again() {
        let mut g = Guard::default();
        assert!(matches!(g.check_step(1, f64::NAN, 1.0, 2), StepCheck::Skip(_)));
        assert_eq!(g.check_step(2, 1.0, 1.0, 2), StepCheck::Apply);
        assert!(matches!(g.check_step(3, f64::NAN, 1.0, 2), StepCheck::Skip(_)));
        assert!(matches!(g.check_step(4, f64::NAN, 1.0, 2), StepCheck::Stop { .. }));
    }

    #[test]
    fn max_bad_steps_of_one_stops_at_the_first() {
        assert!(matches!(Guard::default().check_step(1, f64::NAN, 1.0, 1), StepCheck::Stop { .. }));
    }

    #[test]
    fn a_climbing_loss_warns_once_after_step_5() {
        let (mut g, mut w) = (Guard::default(), Warned::default());
        assert_eq!(g.observe_loss(1, 1.0, &mut w), None);
        // 3.5 > 2·1 + 1, but step 5 is spared.
        assert_eq!(g.observe_loss(5, 3.5, &mut w), None);
        // Exactly 2·min + 1 is not above it.
        assert_eq!(g.observe_loss(6, 3.0, &mut w), None);
        let warning = g.observe_loss(7, 3.5, &mut w).expect("climbing");
        assert_eq!(warning.code, "diverging");
        assert_eq!(
            warning.message,
            "The training loss is climbing (3.500 at step 7, down to 1.000 before). The learning rate is probably too high; try a lower one."
        );
        assert_eq!(g.observe_loss(8, 9.0, &mut w), None, "given once per run");
        assert_eq!(g.min_loss, Some(1.0));
    }

    #[test]
    fn the_lowest_loss_follows_the_run() {
        let (mut g, mut w) = (Guard::default(), Warned::default());
        for (step, loss) in [(1, 4.0), (2, 0.5), (3, 2.0)] {
            g.observe_loss(step, loss, &mut w);
        }
        assert_eq!(g.min_loss, Some(0.5));
        assert!(g.observe_loss(6, 2.1, &mut w).is_some(), "2.1 > 2·0.5 + 1");
    }

    /// One training step with loss `train` (at step `step - 1`), then an evaluation at `step`.
    fn eval(g: &mut Guard, w: &mut Warned, step: u64, loss: f64, train: f64, best: Best) -> Option<Warning> {
        g.observe_loss(step - 1, train, &mut Warned::default());
        g.observe_eval(step, loss, Some(best), w)
    }

    #[test]
    fn three_rises_while_training_falls_warn_of_overfitting_once_per_best() {
        let (mut g, mut w) = (Guard::default(), Warned::default());
        let b = Best { step: 10, eval_loss: 1.0 };
        assert_eq!(eval(&mut g, &mut w, 10, 1.0, 2.0, b), None);
        assert_eq!(eval(&mut g, &mut w, 20, 1.1, 1.8, b), None);
        assert_eq!(eval(&mut g, &mut w, 30, 1.2, 1.6, b), None, "two rises are not yet a trend");
        let warning = eval(&mut g, &mut w, 40, 1.3, 1.4, b).expect("three rises");
        assert_eq!(warning.code, "overfitting");
        assert!(warning.message.contains("while the training loss kept falling"), "{}", warning.message);
        assert!(warning.message.contains("The best checkpoint is from step 10 (validation loss 1.0000)"), "{}", warning.message);
        assert_eq!(eval(&mut g, &mut w, 50, 1.4, 1.2, b), None, "not again for the same best");
        // A new best, then three more rises: the warning names the new one.
        let b2 = Best { step: 60, eval_loss: 0.5 };
        for (step, loss, train) in [(60, 0.5, 1.0), (70, 0.6, 0.9), (80, 0.7, 0.8)] {
            assert_eq!(eval(&mut g, &mut w, step, loss, train, b2), None);
        }
        let warning = eval(&mut g, &mut w, 90, 0.8, 0.7, b2).expect("three rises after the new best");
        assert!(warning.message.contains("from step 60"), "{}", warning.message);
    }

    #[test]
    fn the_training_mean_between_evaluations_is_what_is_compared() {
        let (mut g, mut w) = (Guard::default(), Warned::default());
        let b = Best { step: 10, eval_loss: 1.0 };
        // Steps 1-4 average 2.5, steps 6-9 average 1.5.
        for (step, loss) in [(1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)] {
            g.observe_loss(step, loss, &mut Warned::default());
        }
        assert_eq!(g.observe_eval(5, 1.0, Some(b), &mut w), None);
        assert_eq!(g.train_at_evals, [Some(2.5)]);
        assert_eq!(g.train_since_eval, (0.0, 0), "the sum starts again after each evaluation");
        // No applied step before an evaluation: nothing to compare there.
        assert_eq!(g.observe_eval(6, 1.1, Some(b), &mut w), None);
        assert_eq!(g.train_at_evals, [Some(2.5), None]);
    }

    #[test]
    fn a_rising_validation_loss_with_a_rising_training_loss_is_not_overfitting() {
        let (mut g, mut w) = (Guard::default(), Warned::default());
        let b = Best { step: 10, eval_loss: 1.0 };
        for (step, loss, train) in [(10, 1.0, 1.0), (20, 1.1, 1.1), (30, 1.2, 1.2), (40, 1.3, 1.3)] {
            assert_eq!(eval(&mut g, &mut w, step, loss, train, b), None, "step {step}");
        }
        // Nor without training losses to compare (a checkpoint from before they were kept).
        let mut old = Guard { evals: vec![(10, 1.0), (20, 1.1), (30, 1.2)], ..Guard::default() };
        assert_eq!(old.observe_eval(40, 1.3, Some(b), &mut w), None);
    }

    #[test]
    fn a_flat_evaluation_breaks_the_rise() {
        let (mut g, mut w) = (Guard::default(), Warned::default());
        let b = Best { step: 10, eval_loss: 1.0 };
        for (step, loss, train) in [(10, 1.0, 2.0), (20, 1.1, 1.8), (30, 1.1, 1.6), (40, 1.2, 1.4)] {
            assert_eq!(eval(&mut g, &mut w, step, loss, train, b), None);
        }
        assert_eq!(g.evals.len(), 4);
    }

    #[test]
    fn a_checkpoint_without_the_training_means_still_loads() {
        let g: Guard = serde_json::from_str(r#"{"bad_steps_in_row":0,"evals":[[10,1.0]],"min_loss":0.5}"#).unwrap();
        assert_eq!(g.evals, [(10, 1.0)]);
        assert!(g.train_at_evals.is_empty());
        let round: Guard = serde_json::from_str(&serde_json::to_string(&Guard { train_at_evals: vec![None, Some(1.5)], ..g }).unwrap()).unwrap();
        assert_eq!(round.train_at_evals, [None, Some(1.5)]);
    }

    #[test]
    fn too_few_examples_for_one_step_or_for_many_passes() {
        let mut w = Warned::default();
        let m = too_few_examples(3, 4, 1, &mut w).expect("fewer examples than a step uses");
        assert_eq!(m.code, "too_few_examples");
        assert!(m.message.starts_with("The data has only 3 examples but each step uses 4"), "{}", m.message);
        assert_eq!(too_few_examples(3, 4, 1, &mut w), None, "given once per run");
        // 100 examples, 4 per step: 250 steps are exactly 10 passes, 251 are more.
        assert_eq!(too_few_examples(100, 4, 250, &mut Warned::default()), None);
        let m = too_few_examples(100, 4, 251, &mut Warned::default()).expect("more than 10 passes");
        assert!(m.message.starts_with("Each of the 100 examples will be seen about 10 times."), "{}", m.message);
        assert_eq!(too_few_examples(4, 4, 10, &mut Warned::default()), None, "exactly one step's worth, 10 passes");
    }
}
