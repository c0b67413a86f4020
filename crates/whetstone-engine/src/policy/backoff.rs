//! The out-of-memory back-off: when a step does not fit, split the same examples into smaller
//! micro-batches and accumulate more of them, so the run trains on exactly what it would have.

use super::guard::Warning;
use serde::{Deserialize, Serialize};

/// How a step's examples are batched; it changes only when memory runs out, and checkpoints carry
/// it so a resumed run does not run out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchShape {
    /// Examples per forward and backward pass.
    pub micro_batch: usize,
    /// Micro-batches whose gradients make one step.
    pub grad_accum: usize,
}

impl BatchShape {
    pub fn examples_per_step(self) -> usize {
        self.micro_batch * self.grad_accum
    }

    /// Shrinks the micro-batch after step `step` ran out of memory, to the largest divisor of it that
    /// is at most half, so the examples per step stay the same; the warning tells the user.
    /// None when the micro-batch is 1 and there is nothing left to split.
    pub fn back_off(&mut self, step: u64) -> Option<Warning> {
        let old = self.micro_batch;
        if old <= 1 {
            return None;
        }
        let new = (1..=old / 2).rev().find(|d| old.is_multiple_of(*d)).unwrap_or(1);
        self.grad_accum *= old / new;
        self.micro_batch = new;
        Some(Warning {
            code: "out_of_memory",
            message: format!(
                "Step {step} ran out of memory. Continuing with {new} examples per micro-batch and {} micro-batches per step, which trains on the same {} examples per step.",
                self.grad_accum,
                self.examples_per_step()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backed(micro_batch: usize, grad_accum: usize) -> Option<BatchShape> {
        let mut s = BatchShape { micro_batch, grad_accum };
        s.back_off(1).map(|_| s)
    }

    #[test]
    fn an_even_micro_batch_halves() {
        assert_eq!(backed(6, 1), Some(BatchShape { micro_batch: 3, grad_accum: 2 }));
        assert_eq!(backed(8, 3), Some(BatchShape { micro_batch: 4, grad_accum: 6 }));
        assert_eq!(backed(2, 1), Some(BatchShape { micro_batch: 1, grad_accum: 2 }));
    }

    #[test]
    fn an_odd_micro_batch_takes_its_largest_divisor_up_to_half() {
        assert_eq!(backed(5, 1), Some(BatchShape { micro_batch: 1, grad_accum: 5 }));
        assert_eq!(backed(9, 2), Some(BatchShape { micro_batch: 3, grad_accum: 6 }));
        assert_eq!(backed(15, 1), Some(BatchShape { micro_batch: 5, grad_accum: 3 }));
    }

    #[test]
    fn examples_per_step_never_change() {
        for micro in 2..=64 {
            let s = backed(micro, 3).unwrap();
            assert_eq!(s.examples_per_step(), micro * 3, "micro-batch {micro}");
            assert!(s.micro_batch <= micro / 2, "micro-batch {micro} became {}", s.micro_batch);
        }
    }

    #[test]
    fn a_micro_batch_of_one_is_refused_and_left_alone() {
        let mut s = BatchShape { micro_batch: 1, grad_accum: 4 };
        assert_eq!(s.back_off(3), None);
        assert_eq!(s, BatchShape { micro_batch: 1, grad_accum: 4 });
    }

    #[test]
    fn the_warning_names_the_new_shape() {
        let mut s = BatchShape { micro_batch: 6, grad_accum: 1 };
        let w = s.back_off(12).unwrap();
        assert_eq!(w.code, "out_of_memory");
        assert_eq!(
            w.message,
            "Step 12 ran out of memory. Continuing with 3 examples per micro-batch and 2 micro-batches per step, which trains on the same 6 examples per step."
        );
    }
}
