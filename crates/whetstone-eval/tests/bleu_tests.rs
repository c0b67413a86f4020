mod common;

use common::{fixture, num, strings, MaxDiff, TOL};
use serde_json::Value;
use whetstone_eval::bleu::{corpus_bleu, sentence_bleu, tokenize_13a, BleuScore};
use whetstone_eval::chrf::{corpus_chrf, sentence_chrf};

fn check_bleu(what: &str, got: &BleuScore, want: &Value, diff: &mut MaxDiff) {
    assert_eq!(
        got.printed(),
        want["printed"].as_str().unwrap(),
        "{what}: printed score"
    );
    diff.check(
        &format!("{what} score"),
        got.score,
        num(&want["score"]),
        TOL,
    );
    diff.check(&format!("{what} bp"), got.bp, num(&want["bp"]), TOL);
    for n in 0..4 {
        assert_eq!(
            got.counts[n],
            want["counts"][n].as_u64().unwrap(),
            "{what}: counts[{n}]"
        );
        assert_eq!(
            got.totals[n],
            want["totals"][n].as_u64().unwrap(),
            "{what}: totals[{n}]"
        );
        diff.check(
            &format!("{what} precisions[{n}]"),
            got.precisions[n],
            num(&want["precisions"][n]),
            TOL,
        );
    }
    assert_eq!(
        got.sys_len,
        want["sys_len"].as_u64().unwrap(),
        "{what}: sys_len"
    );
    assert_eq!(
        got.ref_len,
        want["ref_len"].as_u64().unwrap(),
        "{what}: ref_len"
    );
}

fn by_id(fx: &Value) -> std::collections::HashMap<String, (String, Vec<String>)> {
    fx["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_string();
            (
                id,
                (
                    c["prediction"].as_str().unwrap().to_string(),
                    strings(&c["references"]),
                ),
            )
        })
        .collect()
}

#[test]
fn sentence_bleu_matches_sacrebleu() {
    let fx = fixture("bleu.json");
    let mut diff = MaxDiff::default();
    for case in fx["sentences"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let got = sentence_bleu(
            case["prediction"].as_str().unwrap(),
            &strings(&case["references"]),
        )
        .unwrap();
        check_bleu(id, &got, &case["bleu"], &mut diff);
    }
    diff.report("sentence BLEU");
}

#[test]
fn corpus_bleu_matches_sacrebleu() {
    let fx = fixture("bleu.json");
    let cases = by_id(&fx);
    let mut diff = MaxDiff::default();
    for corpus in fx["corpora"].as_array().unwrap() {
        let ids = strings(&corpus["ids"]);
        let hyps: Vec<&str> = ids.iter().map(|i| cases[i].0.as_str()).collect();
        let refs: Vec<Vec<String>> = ids.iter().map(|i| cases[i].1.clone()).collect();
        let name = corpus["name"].as_str().unwrap();
        check_bleu(
            name,
            &corpus_bleu(&hyps, &refs).unwrap(),
            &corpus["bleu"],
            &mut diff,
        );
    }
    diff.report("corpus BLEU");
}

#[test]
fn chrf_matches_sacrebleu() {
    let fx = fixture("bleu.json");
    let cases = by_id(&fx);
    let mut diff = MaxDiff::default();
    for case in fx["sentences"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let got = sentence_chrf(
            case["prediction"].as_str().unwrap(),
            &strings(&case["references"]),
        )
        .unwrap();
        assert_eq!(
            got.printed(),
            case["chrf"]["printed"].as_str().unwrap(),
            "{id}: printed chrF"
        );
        diff.check(id, got.score, num(&case["chrf"]["score"]), TOL);
    }
    for corpus in fx["corpora"].as_array().unwrap() {
        let ids = strings(&corpus["ids"]);
        let hyps: Vec<&str> = ids.iter().map(|i| cases[i].0.as_str()).collect();
        let refs: Vec<Vec<String>> = ids.iter().map(|i| cases[i].1.clone()).collect();
        let got = corpus_chrf(&hyps, &refs).unwrap();
        let name = corpus["name"].as_str().unwrap();
        assert_eq!(
            got.printed(),
            corpus["chrf"]["printed"].as_str().unwrap(),
            "{name}: printed chrF"
        );
        diff.check(name, got.score, num(&corpus["chrf"]["score"]), TOL);
    }
    diff.report("chrF");
}

#[test]
fn tokenizer_13a_splits_punctuation_but_not_numbers() {
    assert_eq!(
        tokenize_13a("Hello, world. It costs $1,250.75 (approx.)"),
        "Hello , world . It costs $ 1,250.75 ( approx . )"
    );
    assert_eq!(
        tokenize_13a("Tom &amp; Jerry 1990-2000"),
        "Tom & Jerry 1990 - 2000"
    );
}

#[test]
fn reference_free_and_mismatched_inputs_are_errors() {
    assert_eq!(
        sentence_bleu::<&str>("a", &[]).unwrap_err().code(),
        "eval_no_references"
    );
    assert_eq!(
        corpus_bleu::<&str, &str>(&[], &[]).unwrap_err().code(),
        "eval_empty"
    );
    assert_eq!(
        corpus_bleu(&["a", "b"], &[vec!["a"]]).unwrap_err().code(),
        "eval_length_mismatch"
    );
    assert_eq!(
        corpus_chrf(&["a", "b"], &[vec!["a"], vec![]])
            .unwrap_err()
            .code(),
        "eval_no_references"
    );
}
