use whetstone_eval::bootstrap::{
    bootstrap_mean, bootstrap_win_rate, BootstrapOptions, Outcome, SplitMix64,
};

#[test]
fn splitmix64_follows_the_reference_sequence() {
    // The first outputs of Vigna's splitmix64.c for seed 0.
    let mut rng = SplitMix64::new(0);
    assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
}

#[test]
fn below_is_uniform() {
    let mut rng = SplitMix64::new(7);
    let mut counts = [0u32; 6];
    for _ in 0..60_000 {
        counts[rng.below(6) as usize] += 1;
    }
    // Each bucket expects 10 000 with a standard deviation near 91; 500 is more than five of them.
    for c in counts {
        assert!((9_500..=10_500).contains(&c), "{counts:?}");
    }
}

#[test]
fn same_seed_same_interval_other_seed_other_interval() {
    let values: Vec<f64> = (0..40).map(|i| ((i * 37) % 11) as f64).collect();
    let opts = BootstrapOptions {
        seed: 42,
        ..BootstrapOptions::default()
    };
    let a = bootstrap_mean(&values, opts).unwrap();
    assert_eq!(a, bootstrap_mean(&values, opts).unwrap());
    let b = bootstrap_mean(&values, BootstrapOptions { seed: 43, ..opts }).unwrap();
    assert_ne!((a.low, a.high), (b.low, b.high));
    assert!(a.low < a.estimate && a.estimate < a.high, "{a:?}");
}

fn coverage(trials: u64, sample: impl Fn(&mut SplitMix64) -> f64, n: usize, truth: f64) -> f64 {
    let mut covered = 0;
    for t in 0..trials {
        let mut data_rng = SplitMix64::new(1_000_000 + t);
        let values: Vec<f64> = (0..n).map(|_| sample(&mut data_rng)).collect();
        let opts = BootstrapOptions {
            resamples: 1000,
            confidence: 0.95,
            seed: t,
        };
        let ci = bootstrap_mean(&values, opts).unwrap();
        covered += u32::from(ci.low <= truth && truth <= ci.high);
    }
    f64::from(covered) / trials as f64
}

#[test]
fn mean_interval_covers_the_true_mean_about_95_percent_of_the_time() {
    // Uniform(0, 1) samples of 50: the percentile bootstrap lands a little under nominal coverage; 400 trials
    // give a standard error near 0.011, so [0.90, 0.985] fails only for a broken interval.
    let cov = coverage(400, |r| r.next_f64(), 50, 0.5);
    assert!((0.90..=0.985).contains(&cov), "coverage {cov}");
}

#[test]
fn win_rate_interval_covers_the_true_rate() {
    // Wins 50%, ties 20%, losses 30%: the win rate with ties as half is 0.6.
    let draw = |r: &mut SplitMix64| {
        let u = r.next_f64();
        if u < 0.5 {
            1.0
        } else if u < 0.7 {
            0.5
        } else {
            0.0
        }
    };
    let cov = coverage(400, draw, 60, 0.6);
    assert!((0.90..=0.985).contains(&cov), "coverage {cov}");
}

#[test]
fn win_rate_counts_ties_as_half() {
    let outcomes = [Outcome::Win, Outcome::Tie, Outcome::Loss, Outcome::Win];
    let ci = bootstrap_win_rate(&outcomes, BootstrapOptions::default()).unwrap();
    assert_eq!(ci.estimate, 0.625);
    let ties = bootstrap_win_rate(&[Outcome::Tie; 10], BootstrapOptions::default()).unwrap();
    assert_eq!((ties.low, ties.estimate, ties.high), (0.5, 0.5, 0.5));
}

#[test]
fn more_data_narrows_the_interval() {
    let mut rng = SplitMix64::new(3);
    let values: Vec<f64> = (0..400).map(|_| rng.next_f64()).collect();
    let small = bootstrap_mean(&values[..25], BootstrapOptions::default()).unwrap();
    let large = bootstrap_mean(&values, BootstrapOptions::default()).unwrap();
    assert!(
        large.high - large.low < (small.high - small.low) / 2.0,
        "{small:?} {large:?}"
    );
}

#[test]
fn bad_inputs_are_errors() {
    let d = BootstrapOptions::default();
    assert_eq!(bootstrap_mean(&[], d).unwrap_err().code(), "eval_empty");
    assert_eq!(bootstrap_win_rate(&[], d).unwrap_err().code(), "eval_empty");
    assert_eq!(
        bootstrap_mean(&[1.0, f64::NAN], d).unwrap_err().code(),
        "invalid_input"
    );
    assert_eq!(
        bootstrap_mean(&[1.0], BootstrapOptions { resamples: 0, ..d })
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    assert_eq!(
        bootstrap_mean(
            &[1.0],
            BootstrapOptions {
                confidence: 1.0,
                ..d
            }
        )
        .unwrap_err()
        .code(),
        "invalid_input"
    );
}
