//! When the loop saves a checkpoint and which checkpoints stay on disk.

/// Saving rules for one session of a run. `last_saved` is not carried by checkpoints: a resumed
/// session starts from one, so the step it resumed at counts as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointing {
    /// Save every this many steps; 0: only on a new best and when pausing or stopping.
    pub save_every: u64,
    /// Newest checkpoints kept besides the best one.
    pub keep: usize,
    pub last_saved: Option<u64>,
}

impl Checkpointing {
    /// Whether to save after `step`: on the schedule, and whenever an evaluation found a new best,
    /// so that the best adapter can still be loaded at the end.
    pub fn due(&self, step: u64, new_best: bool) -> bool {
        new_best || (self.save_every > 0 && step.is_multiple_of(self.save_every))
    }

    /// Whether an interrupt at `step` needs a save: not when this very step was just saved.
    pub fn due_on_interrupt(&self, step: u64) -> bool {
        self.last_saved != Some(step)
    }

    pub fn saved(&mut self, step: u64) {
        self.last_saved = Some(step);
    }

    /// Which of `steps` (newest first) to delete: all but the `keep` newest, at least one, and the
    /// best, which load-best-at-end needs whatever its age.
    pub fn to_remove(&self, steps_newest_first: &[u64], best: Option<u64>) -> Vec<u64> {
        let keep = self.keep.max(1);
        steps_newest_first.iter().enumerate().filter(|&(i, &s)| i >= keep && Some(s) != best).map(|(_, &s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(save_every: u64, keep: usize) -> Checkpointing {
        Checkpointing { save_every, keep, last_saved: None }
    }

    #[test]
    fn saves_every_n_steps() {
        let p = policy(5, 2);
        let due: Vec<u64> = (1..=12).filter(|&s| p.due(s, false)).collect();
        assert_eq!(due, [5, 10]);
    }

    #[test]
    fn save_every_zero_saves_only_on_a_new_best() {
        let p = policy(0, 2);
        assert!(!(1..=100).any(|s| p.due(s, false)));
        assert!(p.due(7, true));
    }

    #[test]
    fn a_new_best_saves_off_the_schedule() {
        assert!(policy(5, 2).due(3, true));
    }

    #[test]
    fn an_interrupt_saves_unless_this_step_was_just_saved() {
        let mut p = policy(5, 2);
        assert!(p.due_on_interrupt(0), "nothing saved yet");
        p.saved(5);
        assert!(!p.due_on_interrupt(5));
        assert!(p.due_on_interrupt(6));
        let resumed = Checkpointing { last_saved: Some(40), ..policy(5, 2) };
        assert!(!resumed.due_on_interrupt(40), "the checkpoint a session resumed from is saved already");
    }

    #[test]
    fn keeps_the_newest_and_the_best() {
        let p = policy(5, 2);
        assert_eq!(p.to_remove(&[30, 25, 20, 15, 10], None), [20, 15, 10]);
        assert_eq!(p.to_remove(&[30, 25, 20, 15, 10], Some(15)), [20, 10]);
        assert_eq!(p.to_remove(&[30, 25, 20], Some(30)), [20], "a best among the newest takes no extra room");
        assert!(p.to_remove(&[30, 25], None).is_empty());
    }

    #[test]
    fn keep_zero_still_keeps_the_newest() {
        assert_eq!(policy(5, 0).to_remove(&[30, 25, 20], Some(20)), [25]);
    }
}
