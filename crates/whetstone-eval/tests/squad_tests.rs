mod common;

use common::{fixture, num, strings, MaxDiff, TOL};
use whetstone_eval::squad::{normalize_answer, squad};

#[test]
fn squad_matches_the_official_script() {
    let fx = fixture("squad.json");
    let (mut em, mut f1) = (MaxDiff::default(), MaxDiff::default());
    for case in fx["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let pred = case["prediction"].as_str().unwrap();
        assert_eq!(
            normalize_answer(pred),
            case["normalized_prediction"].as_str().unwrap(),
            "{id}: normalisation"
        );
        let got = squad(pred, &strings(&case["references"])).unwrap();
        em.check(
            &format!("{id} exact match"),
            got.exact_match,
            num(&case["exact_match"]),
            0.0,
        );
        f1.check(&format!("{id} f1"), got.f1, num(&case["f1"]), TOL);
    }
    em.report("SQuAD exact match");
    f1.report("SQuAD F1");
}

#[test]
fn articles_are_removed_only_as_whole_words() {
    assert_eq!(
        normalize_answer("The theatre, an anthem & a band!"),
        "theatre anthem band"
    );
}
