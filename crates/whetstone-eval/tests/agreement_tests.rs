mod common;

use common::{fixture, num, MaxDiff, TOL};
use serde_json::Value;
use whetstone_eval::agreement::{krippendorff_alpha, Level};

fn matrix(v: &Value) -> Vec<Vec<Option<f64>>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(Value::as_f64).collect())
        .collect()
}

#[test]
fn alpha_matches_the_krippendorff_package() {
    let fx = fixture("agreement.json");
    let mut diff = MaxDiff::default();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let data = matrix(&case["data"]);
        for (key, level) in [
            ("nominal", Level::Nominal),
            ("ordinal", Level::Ordinal),
            ("interval", Level::Interval),
            ("ratio", Level::Ratio),
        ] {
            if let Some(want) = case.get(key) {
                diff.check(
                    &format!("{id} {key}"),
                    krippendorff_alpha(&data, level).unwrap(),
                    num(want),
                    TOL,
                );
            }
        }
    }
    diff.report("Krippendorff's alpha");
}

#[test]
fn the_package_errors_are_typed_errors() {
    let fx = fixture("agreement.json");
    for case in fx["errors"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let err = krippendorff_alpha(&matrix(&case["data"]), Level::Nominal).unwrap_err();
        let want = match case["error"].as_str().unwrap() {
            "There has to be more than one value in the domain." => "eval_single_value",
            "There has to be at least one unit with values assigned by at least two coders." => {
                "eval_no_pairable_unit"
            }
            other => panic!("{id}: no mapping for the reference's error {other:?}"),
        };
        assert_eq!(err.code(), want, "{id}");
    }
}

#[test]
fn ragged_and_empty_matrices_are_errors() {
    let ragged = vec![vec![Some(1.0), Some(2.0)], vec![Some(1.0)]];
    assert_eq!(
        krippendorff_alpha(&ragged, Level::Nominal)
            .unwrap_err()
            .code(),
        "eval_ragged_ratings"
    );
    assert_eq!(
        krippendorff_alpha(&[], Level::Nominal).unwrap_err().code(),
        "eval_empty"
    );
}

#[test]
fn nan_counts_as_missing() {
    let with_none = vec![
        vec![Some(1.0), None, Some(3.0), Some(2.0)],
        vec![Some(1.0), Some(2.0), Some(2.0), Some(2.0)],
    ];
    let with_nan = vec![
        vec![Some(1.0), Some(f64::NAN), Some(3.0), Some(2.0)],
        with_none[1].clone(),
    ];
    assert_eq!(
        krippendorff_alpha(&with_none, Level::Interval).unwrap(),
        krippendorff_alpha(&with_nan, Level::Interval).unwrap()
    );
}
