mod common;

use common::{fixture, fixtures_dir, num, strings, MaxDiff, TOL};
use whetstone_eval::meteor::{Meteor, MeteorOptions};
use whetstone_eval::wordnet::WordNet;

fn excerpt() -> WordNet {
    WordNet::open(fixtures_dir().join("wordnet"))
        .expect("the WordNet excerpt in tests/fixtures/wordnet")
}

fn tokens(v: &serde_json::Value) -> Vec<Vec<String>> {
    v.as_array().unwrap().iter().map(strings).collect()
}

#[test]
fn meteor_matches_nltk_with_and_without_wordnet() {
    let fx = fixture("meteor.json");
    let with = MeteorOptions {
        wordnet: Some(excerpt()),
        ..MeteorOptions::default()
    };
    let without = MeteorOptions::default();
    let (m_with, m_without) = (Meteor::new(&with), Meteor::new(&without));
    let (mut d_with, mut d_without) = (MaxDiff::default(), MaxDiff::default());
    let mut synonym_cases = 0;
    for case in fx["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let hyp = strings(&case["hypothesis_tokens"]);
        let refs = tokens(&case["reference_tokens"]);
        let a = m_with.score_tokens(&hyp, &refs).unwrap();
        let b = m_without.score_tokens(&hyp, &refs).unwrap();
        assert!(
            a.synonyms && !b.synonyms,
            "{id}: the result must say whether synonyms were used"
        );
        d_with.check(
            &format!("{id} with WordNet"),
            a.score,
            num(&case["with_wordnet"]),
            TOL,
        );
        d_without.check(
            &format!("{id} without WordNet"),
            b.score,
            num(&case["without_wordnet"]),
            TOL,
        );
        // The text entry point splits as the fixture script did.
        let t = m_with
            .score_text(
                case["prediction"].as_str().unwrap(),
                &strings(&case["references"]),
            )
            .unwrap();
        assert_eq!(
            t.score, a.score,
            "{id}: text and token entry points disagree"
        );
        synonym_cases += usize::from(num(&case["with_wordnet"]) != num(&case["without_wordnet"]));
    }
    assert!(
        synonym_cases >= 3,
        "the fixture should exercise the synonym stage ({synonym_cases} cases do)"
    );
    d_with.report("METEOR with WordNet");
    d_without.report("METEOR without WordNet");
}

#[test]
fn wordnet_synonyms_match_nltk() {
    let fx = fixture("wordnet_synonyms.json");
    let wn = excerpt();
    let words = fx["words"].as_array().unwrap();
    let mut with_synonyms = 0;
    for w in words {
        let word = w["word"].as_str().unwrap();
        let got: Vec<String> = wn.synonyms(word).unwrap().into_iter().collect();
        assert_eq!(got, strings(&w["synonyms"]), "synonyms of {word:?}");
        with_synonyms += usize::from(!got.is_empty());
    }
    assert!(
        with_synonyms >= 100,
        "only {with_synonyms} of {} words have synonyms",
        words.len()
    );
}

#[test]
fn missing_wordnet_directory_is_an_io_error() {
    let err = WordNet::open(fixtures_dir().join("no-such-wordnet")).unwrap_err();
    assert_eq!(err.code(), "eval_wordnet_io");
}

#[test]
fn no_references_is_an_error() {
    let options = MeteorOptions::default();
    let err = Meteor::new(&options)
        .score_text::<&str>("a cat", &[])
        .unwrap_err();
    assert_eq!(err.code(), "eval_no_references");
}
