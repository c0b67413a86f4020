mod common;

use common::fixture;
use whetstone_eval::porter::{PorterMode, PorterStemmer};

#[test]
fn stems_match_nltk_in_every_mode() {
    let fx = fixture("porter.json");
    let words = fx["words"].as_array().unwrap();
    assert!(words.len() >= 300, "only {} words", words.len());
    for (key, mode) in [
        ("nltk", PorterMode::NltkExtensions),
        ("martin", PorterMode::MartinExtensions),
        ("original", PorterMode::OriginalAlgorithm),
    ] {
        let stemmer = PorterStemmer::new(mode);
        let wrong: Vec<String> = words
            .iter()
            .filter_map(|w| {
                let word = w["word"].as_str().unwrap();
                let want = w[key].as_str().unwrap();
                let got = stemmer.stem(word);
                (got != want).then(|| format!("{word}: got {got}, nltk {want}"))
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{key} mode: {} of {} differ:\n{}",
            wrong.len(),
            words.len(),
            wrong.join("\n")
        );
    }
}

#[test]
fn nltk_extensions_differ_from_the_paper_where_nltk_says() {
    let nltk = PorterStemmer::new(PorterMode::NltkExtensions);
    let original = PorterStemmer::new(PorterMode::OriginalAlgorithm);
    assert_eq!(nltk.stem("dying"), "die");
    assert_eq!(original.stem("dying"), "dy");
    assert_eq!(nltk.stem("enjoy"), "enjoy");
    assert_eq!(nltk.stem("happy"), "happi");
}
