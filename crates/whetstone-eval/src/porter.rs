//! A port of nltk's `PorterStemmer` (nltk.stem.porter), all three of its modes.
//!
//! METEOR's stem stage and ROUGE's `use_stemmer` both call nltk's stemmer, so this follows nltk's code line by
//! line, quirks included (for instance step 1b's rule list treats a literal "*d" suffix like a double
//! consonant, and the length check before stemming counts the word before lower-casing). Words are handled as
//! sequences of Unicode scalar values because Python indexes strings that way.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PorterMode {
    /// nltk's default, used by METEOR and ROUGE: Martin Porter's extensions plus nltk's own.
    #[default]
    NltkExtensions,
    /// Only the changes in Martin Porter's own published implementations.
    MartinExtensions,
    /// The algorithm exactly as the 1980 paper gives it.
    OriginalAlgorithm,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PorterStemmer {
    mode: PorterMode,
}

type Cond<'a> = Option<&'a dyn Fn(&[char]) -> bool>;

/// nltk's pool of irregular forms, consulted before any rule in NLTK_EXTENSIONS mode.
const IRREGULAR: &[(&str, &str)] = &[
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

fn ends_with(word: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    word.len() >= n && word[word.len() - n..].iter().copied().eq(suffix.chars())
}

fn strip(word: &[char], suffix: &str) -> Vec<char> {
    word[..word.len() - suffix.chars().count()].to_vec()
}

fn join(stem: &[char], replacement: &str) -> Vec<char> {
    let mut out = stem.to_vec();
    out.extend(replacement.chars());
    out
}

fn is_consonant(word: &[char], mut i: usize) -> bool {
    if is_vowel(word[i]) {
        return false;
    }
    if word[i] == 'y' {
        let mut negate = false;
        while i > 0 && word[i] == 'y' {
            negate = !negate;
            i -= 1;
        }
        // nltk: `(word[i] not in vowels) != negate`.
        return is_vowel(word[i]) == negate;
    }
    true
}

fn consonant_flags(word: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(word.len());
    for (i, &c) in word.iter().enumerate() {
        let flag = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(flag);
    }
    flags
}

fn measure(stem: &[char]) -> usize {
    consonant_flags(stem)
        .windows(2)
        .filter(|w| !w[0] && w[1])
        .count()
}

fn positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

fn contains_vowel(stem: &[char]) -> bool {
    !consonant_flags(stem).iter().all(|&c| c)
}

fn ends_double_consonant(word: &[char]) -> bool {
    let n = word.len();
    n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1)
}

/// The first rule whose suffix the word ends with decides: it applies if its condition holds, and otherwise
/// the word is returned unchanged without trying later rules.
fn apply_rules(word: &[char], rules: &[(&str, &str, Cond)]) -> Vec<char> {
    for &(suffix, replacement, condition) in rules {
        if ends_with(word, suffix) {
            let stem = strip(word, suffix);
            return match condition {
                Some(cond) if !cond(&stem) => word.to_vec(),
                _ => join(&stem, replacement),
            };
        }
    }
    word.to_vec()
}

impl PorterStemmer {
    pub fn new(mode: PorterMode) -> Self {
        PorterStemmer { mode }
    }

    pub fn mode(&self) -> PorterMode {
        self.mode
    }

    fn nltk(&self) -> bool {
        self.mode == PorterMode::NltkExtensions
    }

    /// nltk's `stem(word)` with its default `to_lowercase=True`.
    pub fn stem(&self, word: &str) -> String {
        let lower = crate::text::py_lower(word);
        if self.nltk() {
            if let Some((_, base)) = IRREGULAR.iter().find(|(form, _)| *form == lower) {
                return (*base).to_string();
            }
        }
        if self.mode != PorterMode::OriginalAlgorithm && word.chars().count() <= 2 {
            return lower;
        }
        let mut w: Vec<char> = lower.chars().collect();
        w = self.step1a(&w);
        w = self.step1b(&w);
        w = self.step1c(&w);
        w = self.step2(&w);
        w = step3(&w);
        w = step4(&w);
        w = self.step5a(&w);
        w = step5b(&w);
        w.into_iter().collect()
    }

    fn ends_cvc(&self, word: &[char]) -> bool {
        let n = word.len();
        (n >= 3
            && is_consonant(word, n - 3)
            && !is_consonant(word, n - 2)
            && is_consonant(word, n - 1)
            && !matches!(word[n - 1], 'w' | 'x' | 'y'))
            || (self.nltk() && n == 2 && !is_consonant(word, 0) && is_consonant(word, 1))
    }

    fn step1a(&self, word: &[char]) -> Vec<char> {
        if self.nltk() && ends_with(word, "ies") && word.len() == 4 {
            return join(&strip(word, "ies"), "ie");
        }
        apply_rules(
            word,
            &[
                ("sses", "ss", None),
                ("ies", "i", None),
                ("ss", "ss", None),
                ("s", "", None),
            ],
        )
    }

    fn step1b(&self, word: &[char]) -> Vec<char> {
        if self.nltk() && ends_with(word, "ied") {
            let replacement = if word.len() == 4 { "ie" } else { "i" };
            return join(&strip(word, "ied"), replacement);
        }
        if ends_with(word, "eed") {
            let stem = strip(word, "eed");
            return if measure(&stem) > 0 {
                join(&stem, "ee")
            } else {
                word.to_vec()
            };
        }
        let mut intermediate = None;
        for suffix in ["ed", "ing"] {
            if ends_with(word, suffix) {
                let stem = strip(word, suffix);
                if contains_vowel(&stem) {
                    intermediate = Some(stem);
                    break;
                }
            }
        }
        let Some(w) = intermediate else {
            return word.to_vec();
        };
        for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
            if ends_with(&w, suffix) {
                return join(&strip(&w, suffix), replacement);
            }
        }
        // nltk's "*d" rule: a double consonant, or (by accident of its rule list) the literal suffix "*d".
        let last = w[w.len() - 1];
        if ends_double_consonant(&w) || ends_with(&w, "*d") {
            let mut stem = w[..w.len() - 2].to_vec();
            if matches!(last, 'l' | 's' | 'z') {
                return w;
            }
            stem.push(last);
            return stem;
        }
        if measure(&w) == 1 && self.ends_cvc(&w) {
            return join(&w, "e");
        }
        w
    }

    fn step1c(&self, word: &[char]) -> Vec<char> {
        let nltk_condition = |stem: &[char]| stem.len() > 1 && is_consonant(stem, stem.len() - 1);
        let original_condition = |stem: &[char]| contains_vowel(stem);
        let cond: &dyn Fn(&[char]) -> bool = if self.nltk() {
            &nltk_condition
        } else {
            &original_condition
        };
        apply_rules(word, &[("y", "i", Some(cond))])
    }

    fn step2(&self, word: &[char]) -> Vec<char> {
        if self.nltk() && ends_with(word, "alli") && positive_measure(&strip(word, "alli")) {
            return self.step2(&join(&strip(word, "alli"), "al"));
        }
        let m: Cond = Some(&positive_measure);
        let bli = if self.mode == PorterMode::OriginalAlgorithm {
            ("abli", "able", m)
        } else {
            ("bli", "ble", m)
        };
        // nltk tests "logi" against the word less "ogi", i.e. the stem keeps its "l".
        let word_less_ogi = word[..word.len().saturating_sub(3)].to_vec();
        let nltk_logi = move |_: &[char]| positive_measure(&word_less_ogi);
        let mut rules: Vec<(&str, &str, Cond)> = vec![
            ("ational", "ate", m),
            ("tional", "tion", m),
            ("enci", "ence", m),
            ("anci", "ance", m),
            ("izer", "ize", m),
            bli,
            ("alli", "al", m),
            ("entli", "ent", m),
            ("eli", "e", m),
            ("ousli", "ous", m),
            ("ization", "ize", m),
            ("ation", "ate", m),
            ("ator", "ate", m),
            ("alism", "al", m),
            ("iveness", "ive", m),
            ("fulness", "ful", m),
            ("ousness", "ous", m),
            ("aliti", "al", m),
            ("iviti", "ive", m),
            ("biliti", "ble", m),
        ];
        match self.mode {
            PorterMode::NltkExtensions => {
                rules.push(("fulli", "ful", m));
                rules.push(("logi", "log", Some(&nltk_logi)));
            }
            PorterMode::MartinExtensions => rules.push(("logi", "log", m)),
            PorterMode::OriginalAlgorithm => {}
        }
        apply_rules(word, &rules)
    }

    fn step5a(&self, word: &[char]) -> Vec<char> {
        if ends_with(word, "e") {
            let stem = strip(word, "e");
            let m = measure(&stem);
            if m > 1 || (m == 1 && !self.ends_cvc(&stem)) {
                return stem;
            }
        }
        word.to_vec()
    }
}

fn step3(word: &[char]) -> Vec<char> {
    let m: Cond = Some(&positive_measure);
    apply_rules(
        word,
        &[
            ("icate", "ic", m),
            ("ative", "", m),
            ("alize", "al", m),
            ("iciti", "ic", m),
            ("ical", "ic", m),
            ("ful", "", m),
            ("ness", "", m),
        ],
    )
}

fn step4(word: &[char]) -> Vec<char> {
    let gt1 = |stem: &[char]| measure(stem) > 1;
    let ion = |stem: &[char]| measure(stem) > 1 && matches!(stem.last(), Some('s' | 't'));
    let m: Cond = Some(&gt1);
    apply_rules(
        word,
        &[
            ("al", "", m),
            ("ance", "", m),
            ("ence", "", m),
            ("er", "", m),
            ("ic", "", m),
            ("able", "", m),
            ("ible", "", m),
            ("ant", "", m),
            ("ement", "", m),
            ("ment", "", m),
            ("ent", "", m),
            ("ion", "", Some(&ion)),
            ("ou", "", m),
            ("ism", "", m),
            ("ate", "", m),
            ("iti", "", m),
            ("ous", "", m),
            ("ive", "", m),
            ("ize", "", m),
        ],
    )
}

fn step5b(word: &[char]) -> Vec<char> {
    // The condition looks at the word less one "l", not at the stem less "ll".
    let word_less_l = word[..word.len().saturating_sub(1)].to_vec();
    let cond = move |_: &[char]| measure(&word_less_l) > 1;
    apply_rules(word, &[("ll", "l", Some(&cond))])
}
