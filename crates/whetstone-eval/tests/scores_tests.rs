mod common;

use std::collections::HashMap;

use common::{fixture, fixtures_dir, num, strings, MaxDiff, TOL};
use whetstone_eval::meteor::MeteorOptions;
use whetstone_eval::wordnet::WordNet;
use whetstone_eval::{score, score_with, ScoreOptions};

/// The per-case reference values of every fixture, keyed by case id, averaged the way `score` averages.
#[test]
fn score_combines_the_reference_values() {
    let bleu = fixture("bleu.json");
    let rouge = fixture("rouge.json");
    let meteor = fixture("meteor.json");
    let squad = fixture("squad.json");
    let sentences = bleu["sentences"].as_array().unwrap();
    let preds: Vec<String> = sentences
        .iter()
        .map(|c| c["prediction"].as_str().unwrap().to_string())
        .collect();
    let refs: Vec<Vec<String>> = sentences
        .iter()
        .map(|c| strings(&c["references"]))
        .collect();
    let index = |v: &serde_json::Value,
                 pick: &dyn Fn(&serde_json::Value) -> bool|
     -> HashMap<String, serde_json::Value> {
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| pick(c))
            .map(|c| (c["id"].as_str().unwrap().to_string(), c.clone()))
            .collect()
    };
    let rouge_plain = index(&rouge, &|c| !c["use_stemmer"].as_bool().unwrap());
    let meteor_by = index(&meteor, &|_| true);
    let squad_by = index(&squad, &|_| true);
    let ids: Vec<&str> = sentences
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mean = |f: &dyn Fn(&str) -> f64| ids.iter().map(|id| f(id)).sum::<f64>() / ids.len() as f64;

    let options = ScoreOptions {
        meteor: MeteorOptions {
            wordnet: Some(WordNet::open(fixtures_dir().join("wordnet")).unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    let got = score_with(&preds, &refs, &options).unwrap();
    let all = bleu["corpora"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "all")
        .unwrap();
    let mut diff = MaxDiff::default();
    assert_eq!(got.count, ids.len());
    assert_eq!(got.bleu.printed(), all["bleu"]["printed"].as_str().unwrap());
    diff.check(
        "corpus BLEU",
        got.bleu.score,
        num(&all["bleu"]["score"]),
        TOL,
    );
    diff.check(
        "corpus chrF",
        got.chrf.score,
        num(&all["chrf"]["score"]),
        TOL,
    );
    for (name, value) in [
        ("rouge1", got.rouge.rouge1),
        ("rouge2", got.rouge.rouge2),
        ("rougeL", got.rouge.rouge_l),
        ("rougeLsum", got.rouge.rouge_lsum),
    ] {
        diff.check(
            name,
            value,
            mean(&|id| num(&rouge_plain[id]["scores"][name]["fmeasure"])),
            TOL,
        );
    }
    assert!(got.meteor_synonyms);
    diff.check(
        "METEOR",
        got.meteor,
        mean(&|id| num(&meteor_by[id]["with_wordnet"])),
        TOL,
    );
    diff.check(
        "exact match",
        got.exact_match,
        mean(&|id| num(&squad_by[id]["exact_match"])),
        TOL,
    );
    diff.check("F1", got.f1, mean(&|id| num(&squad_by[id]["f1"])), TOL);
    for (id, item) in ids.iter().zip(&got.items) {
        let s = sentences.iter().find(|c| c["id"] == *id).unwrap();
        diff.check(
            &format!("{id} sentence BLEU"),
            item.bleu.score,
            num(&s["bleu"]["score"]),
            TOL,
        );
    }
    diff.report("score()");

    let plain = score(&preds, &refs).unwrap();
    assert!(
        !plain.meteor_synonyms,
        "without WordNet the result must say so"
    );
    diff.check(
        "METEOR without WordNet",
        plain.meteor,
        mean(&|id| num(&meteor_by[id]["without_wordnet"])),
        TOL,
    );
    let json = serde_json::to_value(&plain).unwrap();
    assert_eq!(json["count"], ids.len());
}

#[test]
fn mismatched_inputs_are_errors() {
    assert_eq!(
        score(&["a"], &[vec!["a"], vec!["b"]]).unwrap_err().code(),
        "eval_length_mismatch"
    );
    assert_eq!(
        score::<&str, &str>(&["a"], &[vec![]]).unwrap_err().code(),
        "eval_no_references"
    );
}
