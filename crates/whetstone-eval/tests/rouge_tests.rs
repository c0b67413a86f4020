mod common;

use common::{fixture, num, strings, MaxDiff, TOL};
use whetstone_eval::rouge::{rouge_multi, tokenize, RougeOptions, RougeScore};

#[test]
fn rouge_matches_rouge_score() {
    let fx = fixture("rouge.json");
    let mut diff = MaxDiff::default();
    let mut stemmed = 0;
    for case in fx["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let use_stemmer = case["use_stemmer"].as_bool().unwrap();
        stemmed += usize::from(use_stemmer);
        let refs = strings(&case["references"]);
        let got = rouge_multi(
            case["prediction"].as_str().unwrap(),
            &refs,
            RougeOptions { use_stemmer },
        )
        .unwrap();
        let pairs: [(&str, RougeScore); 4] = [
            ("rouge1", got.rouge1),
            ("rouge2", got.rouge2),
            ("rougeL", got.rouge_l),
            ("rougeLsum", got.rouge_lsum),
        ];
        for (name, s) in pairs {
            let want = &case["scores"][name];
            for (field, value) in [
                ("precision", s.precision),
                ("recall", s.recall),
                ("fmeasure", s.fmeasure),
            ] {
                diff.check(
                    &format!("{id} stem={use_stemmer} {name} {field}"),
                    value,
                    num(&want[field]),
                    TOL,
                );
            }
        }
    }
    assert!(
        stemmed >= 40,
        "the fixture should cover the stemmed variant too"
    );
    diff.report("ROUGE");
}

#[test]
fn tokenizer_keeps_only_ascii_letters_and_digits() {
    assert_eq!(
        tokenize("Café-au-lait, 3.5% über 東京!", None),
        ["caf", "au", "lait", "3", "5", "ber"]
    );
    assert!(tokenize("東京 🌅", None).is_empty());
}

#[test]
fn no_references_is_an_error() {
    let err = rouge_multi::<&str>("a b", &[], RougeOptions::default()).unwrap_err();
    assert_eq!(err.code(), "eval_no_references");
}
