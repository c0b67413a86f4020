//! Cleaning a dataset version: first a [`Proposal`] (what each step would remove or change, with counts and
//! examples), then, once the user has confirmed, [`apply`] to produce the new rows. Nothing is removed without
//! that second call.
//!
//! Steps run in a fixed order: exact duplicates, near duplicates, length filter, boilerplate responses, then
//! personal data on what is left. Each row is counted by the first step that removes it, so
//! `rows_before = rows_after + Σ removed`.

pub mod minhash;
pub mod pii;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::datarow::{excerpt, DataRow, RowBody};
use crate::error::{DataError, Result};
use minhash::{MinHasher, Signature};
use pii::{PiiKind, PiiMatch};

/// How many examples each step shows.
pub const EXAMPLES: usize = 5;
/// How many personal-data findings a proposal lists one by one (all are counted).
pub const MAX_LISTED_FINDINGS: usize = 1000;
const EXCERPT: usize = 160;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct CleanOptions {
    /// Remove exact duplicates (same text after whitespace and case normalisation).
    pub exact: bool,
    /// Remove near duplicates at this estimated Jaccard similarity of word 3-grams (0 < t ≤ 1).
    pub near: Option<f64>,
    /// Look for personal data.
    pub pii: bool,
    /// Remove rows with fewer characters than this.
    pub min_chars: Option<usize>,
    /// Remove rows with more characters than this.
    pub max_chars: Option<usize>,
    /// Remove rows whose response is empty or boilerplate ("N/A", "As an AI language model…").
    pub boilerplate: bool,
}

impl CleanOptions {
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.near {
            if !(t > 0.0 && t <= 1.0) {
                return Err(DataError::InvalidOption(format!("near-duplicate threshold {t} must be above 0 and at most 1")));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_chars, self.max_chars) {
            if lo > hi {
                return Err(DataError::InvalidOption(format!("--min-chars {lo} is above --max-chars {hi}")));
            }
        }
        if !self.exact && self.near.is_none() && !self.pii && self.min_chars.is_none() && self.max_chars.is_none() && !self.boilerplate {
            return Err(DataError::InvalidOption(
                "choose at least one cleaning step: exact duplicates, near duplicates, personal data, length or boilerplate".into(),
            ));
        }
        Ok(())
    }
}

/// A group of duplicates: the row kept and those that would go.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct DuplicateExample {
    pub kept_line: usize,
    pub removed_lines: Vec<usize>,
    pub kept: String,
    pub removed: String,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct DuplicateStep {
    pub groups: usize,
    pub removed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub examples: Vec<DuplicateExample>,
    #[serde(skip)]
    remove: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct FilteredRow {
    pub line: usize,
    pub reason: String,
    pub excerpt: String,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct FilterStep {
    pub removed: usize,
    pub examples: Vec<FilteredRow>,
    #[serde(skip)]
    remove: Vec<usize>,
}

/// One piece of personal data, with a stable id for per-finding decisions.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PiiFinding {
    /// `line:field:byte` — the row's source line, which text of the row (message index), and where in it.
    pub id: String,
    pub line: usize,
    pub kind: PiiKind,
    /// The text found.
    pub text: String,
    /// The surrounding text.
    pub context: String,
    #[serde(skip)]
    row: usize,
    #[serde(skip)]
    field: usize,
    #[serde(skip)]
    span: (usize, usize),
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PiiStep {
    pub findings: usize,
    pub rows: usize,
    pub by_kind: BTreeMap<PiiKind, usize>,
    /// The first [`MAX_LISTED_FINDINGS`] findings.
    pub listed: Vec<PiiFinding>,
    #[serde(skip)]
    all: Vec<PiiFinding>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Proposal {
    pub rows_before: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_duplicates: Option<DuplicateStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_duplicates: Option<DuplicateStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<FilterStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boilerplate: Option<FilterStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiStep>,
    /// Rows left if every removal is confirmed and personal data is redacted or kept (not dropped).
    pub rows_after_removals: usize,
}

/// What to do with a piece of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum PiiDecision {
    /// Replace it with a typed placeholder such as `[EMAIL]`.
    Redact,
    /// Remove the whole row.
    Drop,
    /// Leave it as it is.
    Keep,
}

impl PiiDecision {
    pub fn parse(s: &str) -> Option<PiiDecision> {
        match s {
            "redact" => Some(PiiDecision::Redact),
            "drop" => Some(PiiDecision::Drop),
            "keep" => Some(PiiDecision::Keep),
            _ => None,
        }
    }
}

/// The user's decisions on personal data: one for everything, overridden per finding id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct PiiDecisions {
    pub default: Option<PiiDecision>,
    pub findings: HashMap<String, PiiDecision>,
}

/// What applying a proposal did, step by step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Applied {
    pub rows_before: usize,
    pub exact_duplicates_removed: usize,
    pub near_duplicates_removed: usize,
    pub length_removed: usize,
    pub boilerplate_removed: usize,
    pub pii_rows_dropped: usize,
    pub pii_redacted: usize,
    pub pii_kept: usize,
    pub rows_after: usize,
}

/// Normalised text for exact comparison: lowercase, runs of whitespace as one space, roles included so a user
/// turn never equals an assistant turn.
fn normalized_key(row: &DataRow, buf: &mut String) -> (u64, u64) {
    buf.clear();
    let mut push = |s: &str| {
        let mut space = true;
        for c in s.chars() {
            if c.is_whitespace() {
                if !space {
                    buf.push(' ');
                    space = true;
                }
            } else {
                space = false;
                if c.is_ascii() {
                    buf.push(c.to_ascii_lowercase());
                } else {
                    buf.extend(c.to_lowercase());
                }
            }
        }
        if buf.ends_with(' ') {
            buf.pop();
        }
    };
    match &row.body {
        RowBody::Chat(m) => {
            for msg in m {
                push(msg.role.as_str());
                push("\u{1}");
                push(&msg.content);
                push("\u{2}");
            }
        }
        RowBody::Text(t) => push(t),
    }
    let mut a = std::collections::hash_map::DefaultHasher::new();
    buf.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0xfeed_u64.hash(&mut b);
    buf.hash(&mut b);
    (a.finish(), b.finish())
}

/// Groups of rows (indices into `alive`'s rows) with the same normalised text, first occurrence first.
pub fn exact_duplicate_groups(rows: &[DataRow], alive: &[usize]) -> Vec<Vec<usize>> {
    let keys: Vec<(u64, u64)> = alive.par_iter().map_init(String::new, |buf, &i| normalized_key(&rows[i], buf)).collect();
    let mut first: HashMap<(u64, u64), usize> = HashMap::with_capacity(alive.len());
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    for (k, &i) in keys.into_iter().zip(alive) {
        match first.get(&k) {
            Some(&f) => {
                let g = *group_of.entry(f).or_insert_with(|| {
                    groups.push(vec![f]);
                    groups.len() - 1
                });
                groups[g].push(i);
            }
            None => {
                first.insert(k, i);
            }
        }
    }
    groups
}

/// MinHash signatures of rows, in parallel.
pub fn signatures(rows: &[DataRow], idx: &[usize]) -> Vec<Option<Signature>> {
    let h = MinHasher::default();
    idx.par_iter().map(|&i| h.signature(rows[i].texts())).collect()
}

fn duplicate_step(rows: &[DataRow], groups: Vec<Vec<usize>>, threshold: Option<f64>) -> DuplicateStep {
    let mut remove = Vec::new();
    let mut examples = Vec::new();
    for g in &groups {
        remove.extend_from_slice(&g[1..]);
        if examples.len() < EXAMPLES {
            examples.push(DuplicateExample {
                kept_line: rows[g[0]].line,
                removed_lines: g[1..].iter().map(|&i| rows[i].line).collect(),
                kept: rows[g[0]].excerpt(EXCERPT),
                removed: rows[g[1]].excerpt(EXCERPT),
            });
        }
    }
    remove.sort_unstable();
    DuplicateStep { groups: groups.len(), removed: remove.len(), threshold, examples, remove }
}

const BOILERPLATE: &[&str] = &[
    "n/a", "na", "none", "null", "nil", "undefined", "nan", "todo", "tbd", "tba", "...", "…", "-", "--", "?", ".",
    "no answer", "no response", "i don't know", "i do not know", "idk", "lorem ipsum", "test", "answer", "response",
];
const BOILERPLATE_PREFIXES: &[&str] = &["as an ai language model", "as an ai model", "i'm sorry, but as an ai", "lorem ipsum dolor"];

/// Why a response is boilerplate, if it is.
pub fn boilerplate_reason(response: &str) -> Option<String> {
    let norm: String = response.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let bare = norm.trim_end_matches(['.', '!']);
    if norm.is_empty() {
        return Some("empty response".into());
    }
    if BOILERPLATE.contains(&norm.as_str()) || BOILERPLATE.contains(&bare) {
        return Some(format!("boilerplate response \"{}\"", excerpt(response, 40)));
    }
    BOILERPLATE_PREFIXES
        .iter()
        .find(|p| norm.starts_with(*p))
        .map(|p| format!("boilerplate response starting \"{p}\""))
}

fn filter_step(rows: &[DataRow], alive: &[usize], why: impl Fn(&DataRow) -> Option<String> + Sync) -> FilterStep {
    let hits: Vec<(usize, String)> =
        alive.par_iter().filter_map(|&i| why(&rows[i]).map(|r| (i, r))).collect();
    FilterStep {
        removed: hits.len(),
        examples: hits
            .iter()
            .take(EXAMPLES)
            .map(|(i, r)| FilteredRow { line: rows[*i].line, reason: r.clone(), excerpt: rows[*i].excerpt(EXCERPT) })
            .collect(),
        remove: hits.into_iter().map(|(i, _)| i).collect(),
    }
}

fn context_of(text: &str, start: usize, end: usize) -> String {
    let mut a = start.saturating_sub(40);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (end + 40).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    excerpt(&text[a..b], 120)
}

/// Personal data in every text of the given rows.
pub fn pii_findings(rows: &[DataRow], alive: &[usize]) -> Vec<PiiFinding> {
    let per_row: Vec<Vec<PiiFinding>> = alive
        .par_iter()
        .map(|&i| {
            let row = &rows[i];
            let mut out = Vec::new();
            for (field, text) in row.texts().into_iter().enumerate() {
                for PiiMatch { kind, start, end } in pii::scan(text) {
                    out.push(PiiFinding {
                        id: format!("{}:{field}:{start}", row.line),
                        line: row.line,
                        kind,
                        text: text[start..end].to_string(),
                        context: context_of(text, start, end),
                        row: i,
                        field,
                        span: (start, end),
                    });
                }
            }
            out
        })
        .collect();
    per_row.into_iter().flatten().collect()
}

/// What each requested step would do to `rows`; changes nothing.
pub fn propose(rows: &[DataRow], opts: &CleanOptions) -> Result<Proposal> {
    opts.validate()?;
    let mut removed = vec![false; rows.len()];
    let alive_now = |removed: &[bool]| -> Vec<usize> { (0..rows.len()).filter(|&i| !removed[i]).collect() };
    let mark = |removed: &mut [bool], idx: &[usize]| idx.iter().for_each(|&i| removed[i] = true);

    let exact = opts.exact.then(|| {
        let step = duplicate_step(rows, exact_duplicate_groups(rows, &alive_now(&removed)), None);
        mark(&mut removed, &step.remove);
        step
    });
    let near = opts.near.map(|t| {
        let alive = alive_now(&removed);
        let sigs = signatures(rows, &alive);
        let groups = minhash::near_duplicate_groups(&sigs, t)
            .into_iter()
            .map(|g| g.into_iter().map(|k| alive[k]).collect())
            .collect();
        let step = duplicate_step(rows, groups, Some(t));
        mark(&mut removed, &step.remove);
        step
    });
    let length = (opts.min_chars.is_some() || opts.max_chars.is_some()).then(|| {
        let (lo, hi) = (opts.min_chars, opts.max_chars);
        let step = filter_step(rows, &alive_now(&removed), |r| {
            let n = r.chars();
            match (lo, hi) {
                (Some(lo), _) if n < lo => Some(format!("{n} characters, fewer than {lo}")),
                (_, Some(hi)) if n > hi => Some(format!("{n} characters, more than {hi}")),
                _ => None,
            }
        });
        mark(&mut removed, &step.remove);
        step
    });
    let boilerplate = opts.boilerplate.then(|| {
        let step = filter_step(rows, &alive_now(&removed), |r| r.responses().into_iter().find_map(boilerplate_reason));
        mark(&mut removed, &step.remove);
        step
    });
    let pii = opts.pii.then(|| {
        let all = pii_findings(rows, &alive_now(&removed));
        let mut by_kind = BTreeMap::new();
        for f in &all {
            *by_kind.entry(f.kind).or_default() += 1;
        }
        let rows_hit: HashSet<usize> = all.iter().map(|f| f.row).collect();
        PiiStep {
            findings: all.len(),
            rows: rows_hit.len(),
            by_kind,
            listed: all.iter().take(MAX_LISTED_FINDINGS).cloned().collect(),
            all,
        }
    });
    let rows_after_removals = removed.iter().filter(|r| !**r).count();
    Ok(Proposal { rows_before: rows.len(), exact_duplicates: exact, near_duplicates: near, length, boilerplate, pii, rows_after_removals })
}

/// The rows after confirming `proposal` (made from the same `rows`), with personal data handled per `decisions`.
/// Every finding needs a decision: a default, or its own entry.
pub fn apply(rows: Vec<DataRow>, proposal: &Proposal, decisions: &PiiDecisions) -> Result<(Vec<DataRow>, Applied)> {
    if rows.len() != proposal.rows_before {
        return Err(DataError::InvalidOption("the proposal was made for a different set of rows".into()));
    }
    let mut removed = vec![false; rows.len()];
    let mut count = |step: Option<&[usize]>| {
        let idx = step.unwrap_or(&[]);
        idx.iter().for_each(|&i| removed[i] = true);
        idx.len()
    };
    let exact = count(proposal.exact_duplicates.as_ref().map(|s| s.remove.as_slice()));
    let near = count(proposal.near_duplicates.as_ref().map(|s| s.remove.as_slice()));
    let length = count(proposal.length.as_ref().map(|s| s.remove.as_slice()));
    let boiler = count(proposal.boilerplate.as_ref().map(|s| s.remove.as_slice()));

    let findings: &[PiiFinding] = proposal.pii.as_ref().map(|p| p.all.as_slice()).unwrap_or(&[]);
    let known: HashSet<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    if let Some(unknown) = decisions.findings.keys().find(|k| !known.contains(k.as_str())) {
        return Err(DataError::InvalidOption(format!("there is no personal-data finding with id `{unknown}`")));
    }
    let mut drop_rows = HashSet::new();
    let mut redactions: HashMap<(usize, usize), Vec<PiiMatch>> = HashMap::new();
    let (mut redacted, mut kept) = (0, 0);
    for f in findings {
        let decision = decisions.findings.get(&f.id).copied().or(decisions.default).ok_or_else(|| {
            DataError::InvalidOption(format!(
                "personal data found ({} at line {}) needs a decision: redact, drop or keep",
                f.kind, f.line
            ))
        })?;
        match decision {
            PiiDecision::Drop => {
                drop_rows.insert(f.row);
            }
            PiiDecision::Redact => {
                redacted += 1;
                redactions.entry((f.row, f.field)).or_default().push(PiiMatch { kind: f.kind, start: f.span.0, end: f.span.1 });
            }
            PiiDecision::Keep => kept += 1,
        }
    }
    // Findings in dropped rows are gone with the row; count them as neither redacted nor kept.
    for f in findings.iter().filter(|f| drop_rows.contains(&f.row)) {
        match decisions.findings.get(&f.id).copied().or(decisions.default) {
            Some(PiiDecision::Redact) => redacted -= 1,
            Some(PiiDecision::Keep) => kept -= 1,
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for (i, mut row) in rows.into_iter().enumerate() {
        if removed[i] || drop_rows.contains(&i) {
            continue;
        }
        for (field, text) in row.texts_mut().into_iter().enumerate() {
            if let Some(ms) = redactions.get_mut(&(i, field)) {
                ms.sort_by_key(|m| m.start);
                *text = pii::redact(text, ms);
            }
        }
        out.push(row);
    }
    let applied = Applied {
        rows_before: proposal.rows_before,
        exact_duplicates_removed: exact,
        near_duplicates_removed: near,
        length_removed: length,
        boilerplate_removed: boiler,
        pii_rows_dropped: drop_rows.len(),
        pii_redacted: redacted,
        pii_kept: kept,
        rows_after: out.len(),
    };
    debug_assert_eq!(applied.rows_before, applied.rows_after + exact + near + length + boiler + drop_rows.len());
    Ok((out, applied))
}
