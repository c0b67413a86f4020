//! Seeded percentile bootstrap intervals for a mean and for a win rate.
//!
//! Each resample draws n items with replacement (indices from [`SplitMix64`] through Lemire's unbiased
//! multiply-and-reject mapping), takes the statistic, and the interval is the (1 - c) / 2 and (1 + c) / 2
//! quantiles of the resampled statistics, interpolated linearly between order statistics (numpy's default
//! "linear" method). The same seed and input always give the same interval on every platform.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// SplitMix64 (Steele, Lea and Flood 2014; the constants of Vigna's public-domain reference): a 64-bit
/// counter advanced by the golden-ratio increment and passed through a fixed mixing function. It passes
/// BigCrush, needs no dependency, and any seed (0 included) is fine.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in [0, n), n > 0, without modulo bias (Lemire 2019).
    pub fn below(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// A uniform float in [0, 1) from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapOptions {
    pub resamples: usize,
    /// Coverage of the interval, in (0, 1).
    pub confidence: f64,
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 2000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The statistic on the data itself.
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    pub resamples: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Win,
    Tie,
    Loss,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// numpy's default quantile: linear interpolation between the order statistics around (n - 1) q.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// A percentile bootstrap interval for the mean of `values`.
pub fn bootstrap_mean(values: &[f64], options: BootstrapOptions) -> Result<Interval> {
    if values.is_empty() {
        return Err(Error::Empty("list of values"));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid(
            "bootstrap values must be finite numbers".into(),
        ));
    }
    if options.resamples == 0 {
        return Err(Error::Invalid(
            "the bootstrap needs at least one resample".into(),
        ));
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(Error::Invalid(format!(
            "confidence must lie strictly between 0 and 1, not {}",
            options.confidence
        )));
    }
    let mut rng = SplitMix64::new(options.seed);
    let n = values.len();
    let mut stats: Vec<f64> = (0..options.resamples)
        .map(|_| {
            (0..n)
                .map(|_| values[rng.below(n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - options.confidence) / 2.0;
    Ok(Interval {
        estimate: mean(values),
        low: quantile(&stats, tail),
        high: quantile(&stats, 1.0 - tail),
        confidence: options.confidence,
        resamples: options.resamples,
    })
}

/// A percentile bootstrap interval for the win rate of A over B, a tie counting as half a win.
pub fn bootstrap_win_rate(outcomes: &[Outcome], options: BootstrapOptions) -> Result<Interval> {
    if outcomes.is_empty() {
        return Err(Error::Empty("list of outcomes"));
    }
    let values: Vec<f64> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Win => 1.0,
            Outcome::Tie => 0.5,
            Outcome::Loss => 0.0,
        })
        .collect();
    bootstrap_mean(&values, options)
}
