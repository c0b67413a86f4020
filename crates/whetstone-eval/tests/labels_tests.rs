mod common;

use common::{fixture, num, strings, MaxDiff, TOL};
use whetstone_eval::labels::{label_report, Average};

#[test]
fn label_scores_match_scikit_learn() {
    let fx = fixture("labels.json");
    let mut diff = MaxDiff::default();
    for case in fx["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let report = label_report(&strings(&case["y_true"]), &strings(&case["y_pred"])).unwrap();
        let labels: Vec<&str> = report.per_label.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, strings(&case["labels"]), "{id}: label order");
        for (got, want) in report
            .per_label
            .iter()
            .zip(case["per_label"].as_array().unwrap())
        {
            let what = format!("{id} {}", got.label);
            diff.check(
                &format!("{what} precision"),
                got.precision,
                num(&want["precision"]),
                TOL,
            );
            diff.check(
                &format!("{what} recall"),
                got.recall,
                num(&want["recall"]),
                TOL,
            );
            diff.check(&format!("{what} f1"), got.f1, num(&want["f1"]), TOL);
            assert_eq!(
                got.support,
                want["support"].as_u64().unwrap(),
                "{what}: support"
            );
        }
        let averages: [(&str, Average); 3] = [
            ("macro", report.macro_avg),
            ("micro", report.micro_avg),
            ("weighted", report.weighted_avg),
        ];
        for (name, got) in averages {
            let want = &case[name];
            diff.check(
                &format!("{id} {name} precision"),
                got.precision,
                num(&want["precision"]),
                TOL,
            );
            diff.check(
                &format!("{id} {name} recall"),
                got.recall,
                num(&want["recall"]),
                TOL,
            );
            diff.check(&format!("{id} {name} f1"), got.f1, num(&want["f1"]), TOL);
        }
    }
    diff.report("label precision/recall/F1");
}

#[test]
fn empty_and_mismatched_inputs_are_errors() {
    assert_eq!(
        label_report::<&str, &str>(&[], &[]).unwrap_err().code(),
        "eval_empty"
    );
    assert_eq!(
        label_report(&["a", "b"], &["a"]).unwrap_err().code(),
        "eval_length_mismatch"
    );
}
