//! Learning-rate schedules with linear warmup, with the formulas of HF transformers'
//! `get_{constant,linear,cosine}_schedule_with_warmup`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    Linear,
    Cosine,
}

impl std::str::FromStr for ScheduleKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(ScheduleKind::Constant),
            "linear" => Ok(ScheduleKind::Linear),
            "cosine" => Ok(ScheduleKind::Cosine),
            other => Err(Error::Settings(format!("unknown scheduler `{other}` (constant, linear or cosine)"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl Schedule {
    /// The learning rate applied by optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        let (s, w, n) = (step as f64, self.warmup_steps as f64, self.total_steps as f64);
        let factor = if step < self.warmup_steps {
            s / w.max(1.0)
        } else {
            match self.kind {
                ScheduleKind::Constant => 1.0,
                ScheduleKind::Linear => ((n - s) / (n - w).max(1.0)).max(0.0),
                ScheduleKind::Cosine => {
                    let progress = (s - w) / (n - w).max(1.0);
                    (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
                }
            }
        };
        self.base_lr * factor
    }
}
