//! A reader for the WordNet 3.0 database files (index.*, data.*, *.exc), enough for METEOR's synonym stage:
//! nltk's `WordNetCorpusReader.synsets(word)` (with its "morphy" lemmatiser) and the lemma names of each synset.
//!
//! The files are read from a directory given at run time (Debian's `wordnet-base` puts them in
//! /usr/share/wordnet), so that nothing of WordNet is built into the crate.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// nltk's POS_LIST order, which is also the order `synsets` returns synsets in.
const PARTS: [(&str, Part); 4] = [
    ("noun", Part::Noun),
    ("verb", Part::Verb),
    ("adj", Part::Adj),
    ("adv", Part::Adv),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Noun = 0,
    Verb = 1,
    Adj = 2,
    Adv = 3,
}

/// nltk's `MORPHOLOGICAL_SUBSTITUTIONS`.
fn substitutions(part: Part) -> &'static [(&'static str, &'static str)] {
    match part {
        Part::Noun => &[
            ("s", ""),
            ("ses", "s"),
            ("ves", "f"),
            ("xes", "x"),
            ("zes", "z"),
            ("ches", "ch"),
            ("shes", "sh"),
            ("men", "man"),
            ("ies", "y"),
        ],
        Part::Verb => &[
            ("s", ""),
            ("ies", "y"),
            ("es", "e"),
            ("es", ""),
            ("ed", "e"),
            ("ed", ""),
            ("ing", "e"),
            ("ing", ""),
        ],
        Part::Adj => &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        Part::Adv => &[],
    }
}

#[derive(Debug)]
pub struct WordNet {
    dir: PathBuf,
    /// lemma -> synset offsets per part of speech.
    index: HashMap<String, [Vec<u64>; 4]>,
    exceptions: [HashMap<String, Vec<String>>; 4],
    data: [Vec<u8>; 4],
}

fn read(path: PathBuf) -> Result<Vec<u8>> {
    std::fs::read(&path).map_err(|source| Error::WordNetIo { path, source })
}

fn text(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::WordNetFormat {
        path: path.to_path_buf(),
        at: format!("byte {}", e.utf8_error().valid_up_to()),
        reason: "not UTF-8".into(),
    })
}

impl WordNet {
    /// Reads the database in `dir`: index.{noun,verb,adj,adv}, data.* and *.exc.
    pub fn open(dir: impl AsRef<Path>) -> Result<WordNet> {
        let dir = dir.as_ref().to_path_buf();
        let mut index: HashMap<String, [Vec<u64>; 4]> = HashMap::new();
        let mut exceptions: [HashMap<String, Vec<String>>; 4] = Default::default();
        let mut data: [Vec<u8>; 4] = Default::default();
        for (suffix, part) in PARTS {
            let path = dir.join(format!("index.{suffix}"));
            let body = text(&path, read(path.clone())?)?;
            for (n, line) in body.lines().enumerate() {
                // Lines that begin with a space are the license header.
                if line.starts_with(' ') || line.is_empty() {
                    continue;
                }
                let bad = |reason: &str| Error::WordNetFormat {
                    path: path.clone(),
                    at: format!("line {}", n + 1),
                    reason: reason.to_string(),
                };
                let f: Vec<&str> = line.split_whitespace().collect();
                let count = |i: usize| {
                    f.get(i)
                        .and_then(|s| s.parse::<usize>().ok())
                        .ok_or_else(|| bad("bad count"))
                };
                let n_synsets = count(2)?;
                let n_pointers = count(3)?;
                let first = 4 + n_pointers + 2;
                let offsets = f
                    .get(first..first + n_synsets)
                    .ok_or_else(|| bad("fewer synset offsets than its count"))?
                    .iter()
                    .map(|s| s.parse::<u64>().map_err(|_| bad("bad synset offset")))
                    .collect::<Result<Vec<u64>>>()?;
                index.entry(f[0].to_string()).or_default()[part as usize] = offsets;
            }
            let path = dir.join(format!("{suffix}.exc"));
            for line in text(&path, read(path.clone())?)?.lines() {
                let mut terms = line.split_whitespace();
                if let Some(form) = terms.next() {
                    exceptions[part as usize]
                        .insert(form.to_string(), terms.map(str::to_string).collect());
                }
            }
            data[part as usize] = read(dir.join(format!("data.{suffix}")))?;
        }
        Ok(WordNet {
            dir,
            index,
            exceptions,
            data,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn has(&self, form: &str, part: Part) -> bool {
        self.index
            .get(form)
            .is_some_and(|p| !p[part as usize].is_empty())
    }

    /// nltk's `_morphy(form, pos)`: the form itself and its rule-based (or exception-list) base forms that
    /// WordNet knows for this part of speech, without repeats, in nltk's order.
    fn morphy(&self, form: &str, part: Part) -> Vec<String> {
        let candidates: Vec<String> = match self.exceptions[part as usize].get(form) {
            Some(bases) => bases.clone(),
            None => substitutions(part)
                .iter()
                .filter(|(old, _)| form.ends_with(old))
                .map(|(old, new)| format!("{}{}", &form[..form.len() - old.len()], new))
                .collect(),
        };
        let mut out: Vec<String> = Vec::new();
        for f in std::iter::once(form.to_string()).chain(candidates) {
            if self.has(&f, part) && !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// The lemma names of the synset at `offset` in data.<part>, syntactic markers such as "(a)" removed.
    fn lemma_names(&self, part: Part, offset: u64) -> Result<Vec<String>> {
        let suffix = PARTS[part as usize].0;
        let bad = |reason: &str| Error::WordNetFormat {
            path: self.dir.join(format!("data.{suffix}")),
            at: format!("offset {offset}"),
            reason: reason.to_string(),
        };
        let bytes = &self.data[part as usize];
        let start = usize::try_from(offset)
            .ok()
            .filter(|&s| s < bytes.len())
            .ok_or_else(|| bad("past the end"))?;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |e| start + e);
        let line = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("not UTF-8"))?;
        if !line.starts_with(&format!("{offset:08}")) {
            return Err(bad("no synset starts there"));
        }
        let columns = line.split('|').next().unwrap_or("");
        let f: Vec<&str> = columns.split_whitespace().collect();
        let n_words = f
            .get(3)
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| bad("bad word count"))?;
        let words = f
            .get(4..4 + 2 * n_words)
            .ok_or_else(|| bad("fewer words than its count"))?;
        Ok(words
            .iter()
            .step_by(2)
            .map(|w| strip_marker(w).to_string())
            .collect())
    }

    /// The lemma names of every synset of `word` in every part of speech, as nltk's `synsets(word)` finds
    /// them (the word lower-cased, then lemmatised by morphy).
    pub fn synset_lemmas(&self, word: &str) -> Result<Vec<Vec<String>>> {
        let lemma = crate::text::py_lower(word);
        let mut out = Vec::new();
        for (_, part) in PARTS {
            for form in self.morphy(&lemma, part) {
                for &offset in &self.index[&form][part as usize] {
                    out.push(self.lemma_names(part, offset)?);
                }
            }
        }
        Ok(out)
    }

    /// METEOR's synonyms of a word: lemma names of all its synsets that are single words (no "_").
    pub fn synonyms(&self, word: &str) -> Result<BTreeSet<String>> {
        Ok(self
            .synset_lemmas(word)?
            .into_iter()
            .flatten()
            .filter(|n| !n.contains('_'))
            .collect())
    }
}

/// nltk strips a trailing parenthesised marker ("(a)", "(p)", "(ip)") from adjective lemma names.
fn strip_marker(name: &str) -> &str {
    if let (true, Some(open)) = (name.ends_with(')'), name.rfind('(')) {
        let inner = &name[open + 1..name.len() - 1];
        if !inner.contains(')') {
            return &name[..open];
        }
    }
    name
}
