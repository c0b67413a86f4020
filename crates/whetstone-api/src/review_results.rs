//! What a review session found, with people's and machines' ratings kept apart in every figure: per
//! criterion the mean score of each side with a 95% bootstrap interval (seeded by the session, over the
//! sorted scores), the candidate's win rate with its
//! interval, Krippendorff's alpha (ordinal and nominal) per criterion and for the preference, and the items
//! raters disagree on most. Exports (CSV that `whet review agreement` reads back, JSON lines), preference
//! pairs for preference tuning, and accepted edits as a new dataset version with provenance "review".

use crate::error::{Error, Result};
use crate::evaluation::{EvalItem, Side, TableFormat};
use crate::review::{answers, criteria_of, kind_of, session_info, Choice, Criterion, OutputRating, RaterKind, RatingInput, ReviewSessionInfo, FLAGS};
use crate::Api;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use whetstone_data::{DataRow, Message, RowBody};
use whetstone_eval::agreement::{by_criterion, CriterionAgreement, Rating};
use whetstone_eval::bootstrap::{bootstrap_mean, bootstrap_win_rate, BootstrapOptions, Interval, Outcome};
use whetstone_store::{Dataset, DatasetVersion, ReviewSession};

const MOST_DISAGREED: usize = 10;

/// A mean with its 95% percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ts_rs::TS)]
pub struct Estimate {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
}

/// Krippendorff's alpha; absent where it is undefined (one value only, or no unit rated twice), with why.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Alpha {
    pub ordinal: Option<f64>,
    pub nominal: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct CriterionResult {
    pub key: String,
    pub label: String,
    pub baseline: Option<Estimate>,
    pub candidate: Option<Estimate>,
    /// Over each answer (item and side) as the unit.
    pub agreement: Alpha,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct PreferenceResult {
    pub candidate: u32,
    pub baseline: u32,
    pub tie: u32,
    /// How often the candidate is preferred, a tie counting half.
    pub candidate_win_rate: Option<Estimate>,
    /// Over items, the preference coded baseline < tie < candidate.
    pub agreement: Alpha,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct FlagCount {
    pub flag: String,
    pub baseline: u32,
    pub candidate: u32,
}

/// The figures from one kind of rater.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct GroupResults {
    pub kind: RaterKind,
    pub raters: u32,
    pub ratings: u32,
    pub criteria: Vec<CriterionResult>,
    pub preference: PreferenceResult,
    pub flags: Vec<FlagCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DisagreedItem {
    pub item: u32,
    pub prompt: String,
    pub ratings: u32,
    /// Mean over criteria and sides of the spread (highest less lowest) of the scores given.
    pub score_spread: f64,
    /// Whether raters chose differently between baseline, candidate and tie.
    pub preference_split: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ReviewResults {
    pub session: ReviewSessionInfo,
    pub human: GroupResults,
    pub machine: GroupResults,
    /// People's ratings only.
    pub most_disagreed: Vec<DisagreedItem>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ReviewExportArgs {
    pub id: i64,
    pub format: TableFormat,
    /// Only this kind of rater; both when absent (each line says which).
    #[serde(default)]
    #[ts(optional)]
    pub kind: Option<RaterKind>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ReviewPreferencesArgs {
    pub id: i64,
    /// Whose preferences; people's when absent.
    #[serde(default)]
    #[ts(optional)]
    pub kind: Option<RaterKind>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ReviewAccept {
    pub session: i64,
    /// The ratings whose edited responses are accepted (ids from the session's export or results).
    pub ratings: Vec<i64>,
    /// The dataset that gets the new version; by default the one the evaluation's rows came from.
    #[serde(default)]
    #[ts(optional)]
    pub dataset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct AcceptResult {
    pub dataset: Dataset,
    pub version: DatasetVersion,
    pub rows: usize,
}

/// Which side a rater preferred, by origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Preferred {
    Baseline,
    Candidate,
    Tie,
}

/// A current rating turned from the A/B terms the rater saw into baseline and candidate.
pub(crate) struct Resolved {
    pub id: i64,
    pub rater: String,
    pub kind: RaterKind,
    pub item: u32,
    /// Whether the rater saw the candidate as A.
    pub swapped: bool,
    pub baseline: OutputRating,
    pub candidate: OutputRating,
    pub preference: Option<Preferred>,
    pub comment: Option<String>,
    pub edited: Option<String>,
    pub created_at: String,
}

fn estimate(i: Interval, n: usize) -> Estimate {
    Estimate { mean: i.estimate, low: i.low, high: i.high, n }
}

fn alpha(a: Option<&CriterionAgreement>) -> Alpha {
    match a {
        Some(a) => Alpha { ordinal: a.ordinal, nominal: a.nominal, note: a.note.clone() },
        None => Alpha { ordinal: None, nominal: None, note: Some("no ratings".into()) },
    }
}

fn preferred_value(p: Preferred) -> f64 {
    match p {
        Preferred::Baseline => 0.0,
        Preferred::Tie => 0.5,
        Preferred::Candidate => 1.0,
    }
}

/// The ratings behind the agreement figures: each answer (item and side) scored on each criterion, and
/// each item's preference. `whet review agreement` reads the same from the CSV export.
fn agreement_ratings(ratings: &[&Resolved], baseline: Side, candidate: Side) -> Vec<Rating> {
    let mut out = Vec::new();
    for r in ratings {
        for (side, o) in [(baseline, &r.baseline), (candidate, &r.candidate)] {
            for (criterion, score) in &o.scores {
                out.push(Rating { rater: r.rater.clone(), item: format!("{}:{}", r.item, side.as_str()), criterion: criterion.clone(), score: f64::from(*score) });
            }
        }
        if let Some(p) = r.preference {
            out.push(Rating { rater: r.rater.clone(), item: r.item.to_string(), criterion: "preference".into(), score: preferred_value(p) });
        }
    }
    out
}

fn group(kind: RaterKind, all: &[Resolved], criteria: &[Criterion], session: &ReviewSession, baseline: Side, candidate: Side) -> Result<GroupResults> {
    let mine: Vec<&Resolved> = all.iter().filter(|r| r.kind == kind).collect();
    let options = BootstrapOptions { seed: session.seed, ..BootstrapOptions::default() };
    // Values are sorted before resampling, so an interval depends on the scores given and not on the order
    // raters happened to work in: anyone can reproduce it from an export.
    let mean = |mut values: Vec<f64>| -> Result<Option<Estimate>> {
        if values.is_empty() {
            return Ok(None);
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Ok(Some(estimate(bootstrap_mean(&values, options)?, n)))
    };
    let agreement = by_criterion(&agreement_ratings(&mine, baseline, candidate));
    let find = |key: &str| agreement.iter().find(|a| a.criterion == key);
    let criteria = criteria
        .iter()
        .map(|c| {
            let scores = |pick: fn(&Resolved) -> &OutputRating| mine.iter().filter_map(|r| pick(r).scores.get(&c.key).map(|s| f64::from(*s))).collect::<Vec<_>>();
            Ok(CriterionResult {
                key: c.key.clone(),
                label: c.label.clone(),
                baseline: mean(scores(|r| &r.baseline))?,
                candidate: mean(scores(|r| &r.candidate))?,
                agreement: alpha(find(&c.key)),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let prefs: Vec<Preferred> = mine.iter().filter_map(|r| r.preference).collect();
    let count = |p: Preferred| prefs.iter().filter(|x| **x == p).count() as u32;
    let mut outcomes: Vec<Outcome> = prefs
        .iter()
        .map(|p| match p {
            Preferred::Baseline => Outcome::Loss,
            Preferred::Tie => Outcome::Tie,
            Preferred::Candidate => Outcome::Win,
        })
        .collect();
    outcomes.sort_by_key(|o| match o {
        Outcome::Loss => 0,
        Outcome::Tie => 1,
        Outcome::Win => 2,
    });
    let win_rate = if outcomes.is_empty() { None } else { Some(estimate(bootstrap_win_rate(&outcomes, options)?, outcomes.len())) };
    let flags = FLAGS
        .iter()
        .map(|f| FlagCount {
            flag: f.to_string(),
            baseline: mine.iter().filter(|r| r.baseline.flags.iter().any(|x| x == f)).count() as u32,
            candidate: mine.iter().filter(|r| r.candidate.flags.iter().any(|x| x == f)).count() as u32,
        })
        .collect();
    Ok(GroupResults {
        kind,
        raters: mine.iter().map(|r| r.rater.as_str()).collect::<BTreeSet<_>>().len() as u32,
        ratings: mine.len() as u32,
        criteria,
        preference: PreferenceResult {
            candidate: count(Preferred::Candidate),
            baseline: count(Preferred::Baseline),
            tie: count(Preferred::Tie),
            candidate_win_rate: win_rate,
            agreement: alpha(find("preference")),
        },
        flags,
    })
}

fn most_disagreed(all: &[Resolved], items: &BTreeMap<u32, EvalItem>) -> Vec<DisagreedItem> {
    let mut by_item: BTreeMap<u32, Vec<&Resolved>> = BTreeMap::new();
    for r in all.iter().filter(|r| r.kind == RaterKind::Human) {
        by_item.entry(r.item).or_default().push(r);
    }
    let mut out: Vec<DisagreedItem> = by_item
        .into_iter()
        .filter(|(_, rs)| rs.len() >= 2)
        .map(|(item, rs)| {
            // unit (criterion, side) -> scores given
            let mut units: BTreeMap<(String, bool), Vec<u8>> = BTreeMap::new();
            for r in &rs {
                for (candidate, o) in [(false, &r.baseline), (true, &r.candidate)] {
                    for (k, s) in &o.scores {
                        units.entry((k.clone(), candidate)).or_default().push(*s);
                    }
                }
            }
            let spreads: Vec<f64> = units
                .values()
                .filter(|v| v.len() >= 2)
                .map(|v| f64::from(v.iter().max().copied().unwrap_or(0) - v.iter().min().copied().unwrap_or(0)))
                .collect();
            let score_spread = if spreads.is_empty() { 0.0 } else { spreads.iter().sum::<f64>() / spreads.len() as f64 };
            let chosen: BTreeSet<u8> = rs.iter().filter_map(|r| r.preference.map(|p| (preferred_value(p) * 2.0) as u8)).collect();
            DisagreedItem {
                item,
                prompt: items.get(&item).map(|i| i.prompt.clone()).unwrap_or_default(),
                ratings: rs.len() as u32,
                score_spread,
                preference_split: chosen.len() > 1,
            }
        })
        .filter(|d| d.score_spread > 0.0 || d.preference_split)
        .collect();
    out.sort_by(|a, b| b.score_spread.total_cmp(&a.score_spread).then(b.preference_split.cmp(&a.preference_split)).then(a.item.cmp(&b.item)));
    out.truncate(MOST_DISAGREED);
    out
}

impl Api {
    /// The current rating of every rater, resolved to baseline and candidate.
    pub(crate) fn resolved_ratings(&self, session: &ReviewSession) -> Result<Vec<Resolved>> {
        let store = self.store();
        let raters: BTreeMap<i64, whetstone_store::Rater> = store.list_raters(session.id)?.into_iter().map(|r| (r.id, r)).collect();
        let mut swapped: BTreeMap<(i64, u32), bool> = BTreeMap::new();
        for id in raters.keys() {
            for a in store.assignments(*id)? {
                swapped.insert((*id, a.item), a.swapped);
            }
        }
        store
            .current_ratings(session.id)?
            .into_iter()
            .map(|g| {
                let rater = raters.get(&g.rater_id).ok_or_else(|| Error::Internal(format!("rating {} has no rater", g.id)))?;
                let input: RatingInput = serde_json::from_value(g.rating).map_err(|e| Error::Internal(format!("rating {} is unreadable: {e}", g.id)))?;
                let s = swapped.get(&(g.rater_id, g.item)).copied().unwrap_or(false);
                let (baseline, candidate) = if s { (input.b, input.a) } else { (input.a, input.b) };
                let preference = input.preference.map(|c| match (c, s) {
                    (Choice::Tie, _) => Preferred::Tie,
                    (Choice::A, false) | (Choice::B, true) => Preferred::Baseline,
                    (Choice::A, true) | (Choice::B, false) => Preferred::Candidate,
                });
                Ok(Resolved {
                    id: g.id,
                    rater: rater.name.clone(),
                    kind: kind_of(rater),
                    item: g.item,
                    swapped: s,
                    baseline,
                    candidate,
                    preference,
                    comment: input.comment,
                    edited: input.edited,
                    created_at: g.created_at,
                })
            })
            .collect()
    }

    fn session_items(&self, session: &ReviewSession) -> Result<BTreeMap<u32, EvalItem>> {
        Ok(self.eval_results(session.evaluation_id)?.items.into_iter().map(|i| (i.position, i)).collect())
    }

    /// The session's figures, people's and machines' apart.
    pub fn review_results(&self, id: i64) -> Result<ReviewResults> {
        let (session, items) = self.session(id)?;
        let criteria = criteria_of(&session)?;
        let (baseline, candidate) = (Side::parse(&session.baseline)?, Side::parse(&session.candidate)?);
        let all = self.resolved_ratings(&session)?;
        let eval_items = self.session_items(&session)?;
        Ok(ReviewResults {
            session: session_info(&session, items)?,
            human: group(RaterKind::Human, &all, &criteria, &session, baseline, candidate)?,
            machine: group(RaterKind::Machine, &all, &criteria, &session, baseline, candidate)?,
            most_disagreed: most_disagreed(&all, &eval_items),
        })
    }

    /// Every current rating with the sides named: CSV in long form (`rater,item,criterion,score` first, so
    /// `whet review agreement` reproduces the session's alpha from it) or one JSON line per rating.
    pub fn review_export(&self, args: &ReviewExportArgs) -> Result<String> {
        let (session, _) = self.session(args.id)?;
        let (baseline, candidate) = (Side::parse(&session.baseline)?, Side::parse(&session.candidate)?);
        let all = self.resolved_ratings(&session)?;
        let chosen: Vec<&Resolved> = all.iter().filter(|r| args.kind.is_none_or(|k| r.kind == k)).collect();
        match args.format {
            TableFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let csv_err = |e: csv::Error| Error::Internal(format!("cannot write CSV: {e}"));
                w.write_record(["rater", "item", "criterion", "score", "kind", "position", "side", "rating_id"]).map_err(csv_err)?;
                let kinds: BTreeMap<&str, RaterKind> = chosen.iter().map(|r| (r.rater.as_str(), r.kind)).collect();
                let ids: BTreeMap<(&str, u32), i64> = chosen.iter().map(|r| ((r.rater.as_str(), r.item), r.id)).collect();
                for rating in agreement_ratings(&chosen, baseline, candidate) {
                    let (position, side) = rating.item.split_once(':').unwrap_or((rating.item.as_str(), ""));
                    let position: u32 = position.parse().unwrap_or(0);
                    w.write_record([
                        rating.rater.as_str(),
                        rating.item.as_str(),
                        rating.criterion.as_str(),
                        &rating.score.to_string(),
                        kinds.get(rating.rater.as_str()).map(|k| k.as_str()).unwrap_or(""),
                        &position.to_string(),
                        side,
                        &ids.get(&(rating.rater.as_str(), position)).map(|i| i.to_string()).unwrap_or_default(),
                    ])
                    .map_err(csv_err)?;
                }
                let bytes = w.into_inner().map_err(|e| Error::Internal(format!("cannot write CSV: {e}")))?;
                String::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))
            }
            TableFormat::Jsonl => {
                let items = self.session_items(&session)?;
                let mut out = String::new();
                for r in chosen {
                    let item = items.get(&r.item).ok_or_else(|| Error::Internal(format!("no item {}", r.item)))?;
                    let (base_text, cand_text) = answers(item, baseline, candidate)?;
                    let line = json!({
                        "rating_id": r.id,
                        "rater": r.rater,
                        "kind": r.kind,
                        "item": r.item,
                        "prompt": item.prompt,
                        "input": item.input,
                        "baseline": {"side": baseline, "text": base_text, "shown_as": if r.swapped { "b" } else { "a" }, "scores": r.baseline.scores, "flags": r.baseline.flags},
                        "candidate": {"side": candidate, "text": cand_text, "shown_as": if r.swapped { "a" } else { "b" }, "scores": r.candidate.scores, "flags": r.candidate.flags},
                        "preference": r.preference,
                        "comment": r.comment,
                        "edited": r.edited,
                        "submitted_at": r.created_at,
                    });
                    out.push_str(&line.to_string());
                    out.push('\n');
                }
                Ok(out)
            }
        }
    }

    /// Preference pairs for preference tuning (DPO and the like): `{"prompt", "chosen", "rejected"}` per rating
    /// that preferred one side (ties are left out), as JSON lines; `system` is added when the prompt had one.
    pub fn review_preferences(&self, args: &ReviewPreferencesArgs) -> Result<String> {
        let (session, _) = self.session(args.id)?;
        let (baseline, candidate) = (Side::parse(&session.baseline)?, Side::parse(&session.candidate)?);
        let kind = args.kind.unwrap_or(RaterKind::Human);
        let items = self.session_items(&session)?;
        let mut out = String::new();
        for r in self.resolved_ratings(&session)?.iter().filter(|r| r.kind == kind) {
            let item = items.get(&r.item).ok_or_else(|| Error::Internal(format!("no item {}", r.item)))?;
            let (base_text, cand_text) = answers(item, baseline, candidate)?;
            let (chosen, rejected) = match r.preference {
                Some(Preferred::Candidate) => (cand_text, base_text),
                Some(Preferred::Baseline) => (base_text, cand_text),
                Some(Preferred::Tie) | None => continue,
            };
            let mut line = json!({"prompt": item.prompt, "chosen": chosen, "rejected": rejected});
            if let Some(system) = item.messages.iter().find(|m| m.role == whetstone_data::Role::System) {
                line["system"] = json!(system.content);
            }
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    }

    /// Turns accepted edited responses into a new version of a dataset: one row per accepted edit (the
    /// prompt's conversation and the edit as the answer), with the session and each row's rater recorded
    /// as its provenance.
    pub fn review_accept(&self, req: &ReviewAccept) -> Result<AcceptResult> {
        let (session, _) = self.session(req.session)?;
        if req.ratings.is_empty() {
            return Err(Error::InvalidInput("choose at least one rating whose edited response to accept".into()));
        }
        let all = self.resolved_ratings(&session)?;
        let items = self.session_items(&session)?;
        let evaluation = self.get_evaluation(session.evaluation_id)?;
        let dataset = match (&req.dataset, evaluation.dataset_id) {
            (Some(d), _) => self.resolve_dataset(d)?,
            (None, Some(id)) => self.get_dataset(id)?,
            (None, None) => {
                return Err(Error::InvalidInput(format!(
                    "evaluation {} did not come from a dataset; name the dataset that gets the accepted responses",
                    evaluation.id
                )))
            }
        };
        let mut seen = BTreeSet::new();
        let mut rows = Vec::new();
        let mut provenance = Vec::new();
        for id in &req.ratings {
            if !seen.insert(*id) {
                return Err(Error::InvalidInput(format!("rating {id} is listed twice")));
            }
            let r = all.iter().find(|r| r.id == *id).ok_or_else(|| {
                Error::InvalidInput(format!("rating {id} is not a current rating of review session {}", session.id))
            })?;
            let Some(edited) = &r.edited else {
                return Err(Error::InvalidInput(format!("rating {id} has no edited response to accept")));
            };
            let item = items.get(&r.item).ok_or_else(|| Error::Internal(format!("no item {}", r.item)))?;
            let mut messages: Vec<Message> = item.messages.clone();
            messages.push(Message::assistant(edited.clone()));
            rows.push(DataRow { line: rows.len() + 1, body: RowBody::Chat(messages), split: None });
            provenance.push(json!({"row": rows.len(), "rating": r.id, "rater": r.rater, "kind": r.kind, "item": r.item, "source_line": item.line}));
        }
        let parent = self.dataset_version(&dataset, None)?;
        let steps = json!([{
            "step": "review",
            "session": session.id,
            "session_name": session.name,
            "evaluation": evaluation.id,
            "accepted": rows.len(),
            "rows": provenance,
        }]);
        let version = self.add_version(&dataset, parent.version, steps, &rows)?;
        let dataset = self.get_dataset(dataset.id)?;
        Ok(AcceptResult { dataset, version, rows: rows.len() })
    }
}
