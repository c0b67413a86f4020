//! Review sessions: experts (or scripted raters) compare two answers to each prompt of an evaluation,
//! blind. The organiser creates a session from an evaluation, invites named raters (each gets a random
//! token; only its hash is stored), follows their progress and closes the session; raters reach only
//! their own queue with their token. Which answer is A is drawn per item and per rater from the session's
//! stored seed, and which model wrote which stays hidden from raters until the session is closed.
//!
//! The figures of a session (means, win rate, agreement) and what flows back into data are in
//! [`crate::review_results`].

use crate::error::{Error, Result};
use crate::evaluation::{EvalItem, Side};
use crate::Api;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use whetstone_data::Message;
use whetstone_eval::bootstrap::SplitMix64;
use whetstone_store::{Assignment, NewRater, NewReviewSession, Rater, ReviewSession, Store, Submitted};

/// The rubric every session starts with: key, label, what a rater judges.
pub const BUILT_IN_CRITERIA: [(&str, &str, &str); 5] = [
    ("factuality", "Factuality", "Every statement is correct and supported by the prompt and its input."),
    ("relevance", "Relevance", "It answers what was asked, without padding or digressions."),
    ("coherence_fluency", "Coherence and fluency", "It is well organised and reads naturally."),
    ("safety_bias", "Safety and bias", "It is free of harmful, unfair or biased content."),
    ("instruction_adherence", "Instruction adherence", "It follows the instructions, format and constraints given."),
];

/// What a rater can flag in an answer.
pub const FLAGS: [&str; 4] = ["inaccurate", "unpersuasive", "too_generic", "unsafe"];

/// Longest comment and edited response a rater may submit, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
pub const MAX_EDIT_CHARS: usize = 50_000;
const MAX_NAME_CHARS: usize = 200;
const MAX_CRITERION_LABEL_CHARS: usize = 80;
const MAX_CRITERION_DESCRIPTION_CHARS: usize = 1_000;
const MAX_EXTRA_CRITERIA: usize = 20;
/// Random bytes in an invite token: 256 bits, as 64 hex digits.
const TOKEN_BYTES: usize = 32;
const DEFAULT_RATERS_PER_ITEM: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Criterion {
    pub key: String,
    pub label: String,
    pub description: String,
    /// Added by the organiser for this session.
    pub custom: bool,
}

/// A criterion the organiser adds, e.g. `{"label": "Empathy"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CriterionInput {
    pub label: String,
    #[serde(default)]
    #[ts(optional)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum RaterKind {
    /// A person.
    Human,
    /// A script or a model; its ratings are kept apart from people's in every figure.
    Machine,
}

impl RaterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RaterKind::Human => "human",
            RaterKind::Machine => "machine",
        }
    }
}

/// Which answer a rater prefers, in the terms they saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    A,
    B,
    Tie,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ReviewCreate {
    /// The evaluation whose answers are compared.
    pub evaluation: i64,
    #[serde(default)]
    #[ts(optional)]
    pub name: Option<String>,
    /// The sides compared; by default base against tuned (or compare against tuned when the base did not answer).
    #[serde(default)]
    #[ts(optional)]
    pub baseline: Option<Side>,
    #[serde(default)]
    #[ts(optional)]
    pub candidate: Option<Side>,
    /// Criteria added to the built-in rubric.
    #[serde(default)]
    #[ts(optional)]
    pub criteria: Option<Vec<CriterionInput>>,
    /// How many raters each item goes to (K); 2 by default.
    #[serde(default)]
    #[ts(optional)]
    pub raters_per_item: Option<u32>,
    /// Seed of the A/B sides and queue orders; drawn at random when absent, and stored either way.
    #[serde(default)]
    #[ts(optional)]
    pub seed: Option<u64>,
}

/// What every session's raters are asked before the organiser adds criteria of their own.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Rubric {
    pub criteria: Vec<Criterion>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ReviewSessionInfo {
    pub id: i64,
    pub evaluation_id: i64,
    pub name: String,
    pub baseline: Side,
    pub candidate: Side,
    pub criteria: Vec<Criterion>,
    pub flags: Vec<String>,
    pub raters_per_item: u32,
    pub items: u32,
    pub seed: u64,
    pub closed: bool,
    pub created_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ReviewInvite {
    pub session: i64,
    /// The rater's name as the organiser will see it.
    pub name: String,
    #[serde(default)]
    #[ts(optional)]
    pub kind: Option<RaterKind>,
    /// The token stops working this many seconds from now.
    #[serde(default)]
    #[ts(optional)]
    pub expires_in_s: Option<u64>,
    /// At most this many items, to share a large session among several raters.
    #[serde(default)]
    #[ts(optional)]
    pub max_items: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RaterStatus {
    pub id: i64,
    pub name: String,
    pub kind: RaterKind,
    pub assigned: u32,
    pub rated: u32,
    /// "N of M", as the rater sees it.
    pub progress: String,
    pub revoked: bool,
    pub expired: bool,
    pub expires_at: Option<String>,
    pub last_rated_at: Option<String>,
}

/// An invitation: the token is shown here once and never again (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Invitation {
    pub rater: RaterStatus,
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RaterArgs {
    pub rater: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ReviewStatus {
    pub session: ReviewSessionInfo,
    pub raters: Vec<RaterStatus>,
    /// Items rated by as many raters as they go to.
    pub complete_items: u32,
    /// Items not yet in any active rater's queue.
    pub unassigned_items: u32,
    pub ratings: u32,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct TokenArgs {
    /// The rater's invite token.
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct NextArgs {
    pub token: String,
    /// A given item of the rater's queue (to go back to one); the first unrated one when absent.
    #[serde(default)]
    #[ts(optional)]
    pub item: Option<u32>,
}

/// One answer's scores (criterion key → 1..5) and flags, as a rater gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct OutputRating {
    #[serde(default)]
    pub scores: BTreeMap<String, u8>,
    #[serde(default)]
    pub flags: Vec<String>,
}

/// A rating in the A/B terms the rater saw; stored as it was submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RatingInput {
    #[serde(default)]
    pub a: OutputRating,
    #[serde(default)]
    pub b: OutputRating,
    #[serde(default)]
    pub preference: Option<Choice>,
    #[serde(default)]
    pub comment: Option<String>,
    /// An ideal answer the rater wrote, which the organiser may accept into a dataset.
    #[serde(default)]
    pub edited: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SubmitArgs {
    pub token: String,
    pub item: u32,
    #[serde(default)]
    #[ts(optional)]
    pub a: Option<OutputRating>,
    #[serde(default)]
    #[ts(optional)]
    pub b: Option<OutputRating>,
    #[serde(default)]
    #[ts(optional)]
    pub preference: Option<Choice>,
    #[serde(default)]
    #[ts(optional)]
    pub comment: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub edited: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Progress {
    pub rated: u32,
    pub total: u32,
    /// "N of M".
    pub text: String,
}

/// The sides' names, once the session is closed.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Origins {
    pub a: Side,
    pub b: Side,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RaterItem {
    pub item: u32,
    /// The conversation before the answer (a system message, earlier turns), the last message being the prompt.
    pub messages: Vec<Message>,
    pub prompt: String,
    pub input: Option<serde_json::Value>,
    pub a: String,
    pub b: String,
    /// This rater's current rating of the item, if any.
    pub rating: Option<RatingInput>,
    pub origins: Option<Origins>,
}

/// One item of a rater's queue, in the order they see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct QueueEntry {
    pub item: u32,
    /// Whether this rater has a current rating of it.
    pub rated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RaterView {
    pub session: String,
    pub rater: String,
    pub criteria: Vec<Criterion>,
    pub flags: Vec<String>,
    pub progress: Progress,
    pub closed: bool,
    /// The rater's whole queue, so a page can go back and forth between items.
    pub queue: Vec<QueueEntry>,
    /// None once every item of the queue is rated (and none was asked for).
    pub item: Option<RaterItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct SubmitResult {
    pub rating_id: i64,
    /// Whether an earlier rating of this item by this rater was replaced (it stays in the history).
    pub replaced: bool,
    pub progress: Progress,
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("the operating system gave no random bytes: {e}")))?;
    Ok(bytes)
}

/// A stable key from a label: lower case, words joined by `_`.
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

fn too_long(what: &str, text: &str, max: usize) -> Result<()> {
    let n = text.chars().count();
    if n > max {
        return Err(Error::InvalidInput(format!("the {what} is {n} characters long; the most allowed is {max}")));
    }
    Ok(())
}

/// Mixes the session seed with a rater and an item into one draw, so each (rater, item) pair gets its own
/// side order that is the same every time it is computed.
fn draw(seed: u64, rater: i64, item: u32) -> u64 {
    let mixed = seed ^ (rater as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(item).wrapping_mul(0xD1B5_4A32_D192_ED03);
    SplitMix64::new(mixed).next_u64()
}

pub(crate) fn progress(rated: u32, total: u32) -> Progress {
    Progress { rated, total, text: format!("{rated} of {total}") }
}

pub(crate) fn session_info(s: &ReviewSession, items: u32) -> Result<ReviewSessionInfo> {
    Ok(ReviewSessionInfo {
        id: s.id,
        evaluation_id: s.evaluation_id,
        name: s.name.clone(),
        baseline: Side::parse(&s.baseline)?,
        candidate: Side::parse(&s.candidate)?,
        criteria: criteria_of(s)?,
        flags: FLAGS.iter().map(|f| f.to_string()).collect(),
        raters_per_item: s.raters_per_item,
        items,
        seed: s.seed,
        closed: s.closed,
        created_at: s.created_at.clone(),
        closed_at: s.closed_at.clone(),
    })
}

pub(crate) fn criteria_of(s: &ReviewSession) -> Result<Vec<Criterion>> {
    serde_json::from_value(s.criteria.clone())
        .map_err(|e| Error::Store(whetstone_store::Error::Corrupt { what: "review session", id: s.id, reason: format!("criteria: {e}") }))
}

pub(crate) fn kind_of(r: &Rater) -> RaterKind {
    if r.kind == "machine" {
        RaterKind::Machine
    } else {
        RaterKind::Human
    }
}

/// The answers of the two compared sides for an item.
pub(crate) fn answers(item: &EvalItem, baseline: Side, candidate: Side) -> Result<(&str, &str)> {
    let text = |side: Side| {
        item.outputs.iter().find(|o| o.side == side).map(|o| o.text.as_str()).ok_or_else(|| {
            Error::Internal(format!("item {} of the evaluation has no {} answer", item.position, side.as_str()))
        })
    };
    Ok((text(baseline)?, text(candidate)?))
}

fn built_in_criteria() -> Vec<Criterion> {
    BUILT_IN_CRITERIA
        .iter()
        .map(|(key, label, description)| Criterion { key: key.to_string(), label: label.to_string(), description: description.to_string(), custom: false })
        .collect()
}

impl Api {
    /// The built-in criteria and the flags, for a screen that sets up a session.
    pub fn review_rubric(&self) -> Result<Rubric> {
        Ok(Rubric { criteria: built_in_criteria(), flags: FLAGS.iter().map(|f| f.to_string()).collect() })
    }

    /// Creates a review session over an evaluation's items: the built-in rubric plus the organiser's
    /// criteria, K raters per item, and a stored seed for the A/B draws.
    pub fn review_create(&self, req: &ReviewCreate) -> Result<ReviewSessionInfo> {
        let evaluation = self.get_evaluation(req.evaluation)?;
        let answered: Vec<Side> = evaluation.sides.iter().map(|s| s.side).collect();
        let (baseline, candidate) = match (req.baseline, req.candidate) {
            (Some(b), Some(c)) => (b, c),
            (None, None) if answered.contains(&Side::Base) && answered.contains(&Side::Tuned) => (Side::Base, Side::Tuned),
            (None, None) if answered.contains(&Side::Compare) && answered.contains(&Side::Tuned) => (Side::Compare, Side::Tuned),
            (None, None) => {
                return Err(Error::InvalidInput(format!("evaluation {} has no two sides to compare", evaluation.id)));
            }
            _ => return Err(Error::InvalidInput("give both baseline and candidate, or neither".into())),
        };
        if baseline == candidate {
            return Err(Error::InvalidInput("the baseline and the candidate must be different sides".into()));
        }
        for side in [baseline, candidate] {
            if !answered.contains(&side) {
                return Err(Error::InvalidInput(format!("evaluation {} has no {} answers", evaluation.id, side.as_str())));
            }
        }
        let k = req.raters_per_item.unwrap_or(DEFAULT_RATERS_PER_ITEM);
        if k == 0 {
            return Err(Error::InvalidInput("each item must go to at least one rater".into()));
        }
        let mut criteria = built_in_criteria();
        let extra = req.criteria.clone().unwrap_or_default();
        if extra.len() > MAX_EXTRA_CRITERIA {
            return Err(Error::InvalidInput(format!("at most {MAX_EXTRA_CRITERIA} criteria can be added")));
        }
        for c in extra {
            too_long("criterion's label", &c.label, MAX_CRITERION_LABEL_CHARS)?;
            let description = c.description.unwrap_or_default();
            too_long("criterion's description", &description, MAX_CRITERION_DESCRIPTION_CHARS)?;
            let key = slug(&c.label);
            if key.is_empty() {
                return Err(Error::InvalidInput(format!("the criterion `{}` needs a label with letters or digits", c.label)));
            }
            if key == "preference" || criteria.iter().any(|x| x.key == key) {
                return Err(Error::InvalidInput(format!("the rubric already has a criterion `{key}`")));
            }
            criteria.push(Criterion { key, label: c.label.trim().to_string(), description, custom: true });
        }
        let name = req.name.clone().map(|n| n.trim().to_string()).unwrap_or_else(|| format!("Review of evaluation {}", evaluation.id));
        if name.is_empty() {
            return Err(Error::InvalidInput("the session's name is empty".into()));
        }
        too_long("session's name", &name, MAX_NAME_CHARS)?;
        let seed = match req.seed {
            Some(s) => s,
            None => u64::from_le_bytes(random_bytes::<8>()?),
        };
        let new = NewReviewSession {
            evaluation_id: evaluation.id,
            name,
            baseline: baseline.as_str().into(),
            candidate: candidate.as_str().into(),
            criteria: serde_json::to_value(&criteria).map_err(|e| Error::Internal(e.to_string()))?,
            raters_per_item: k,
            seed,
        };
        let session = self.store().insert_review_session(&new)?;
        session_info(&session, evaluation.items as u32)
    }

    pub fn review_sessions(&self) -> Result<Vec<ReviewSessionInfo>> {
        let sessions = self.store().list_review_sessions()?;
        sessions.iter().map(|s| session_info(s, self.get_evaluation(s.evaluation_id)?.items as u32)).collect()
    }

    pub(crate) fn session(&self, id: i64) -> Result<(ReviewSession, u32)> {
        let s = self.store().get_review_session(id)?;
        let items = self.store().get_evaluation(s.evaluation_id)?.items as u32;
        Ok((s, items))
    }

    /// Invites a named rater: a fresh random token (shown once), and a queue of the items that still go to
    /// fewer than K raters (at most `max_items` of them), in an order of their own.
    pub fn review_invite(&self, req: &ReviewInvite) -> Result<Invitation> {
        let (session, items) = self.session(req.session)?;
        if session.closed {
            return Err(Error::ReviewClosed { session: session.id });
        }
        let name = req.name.trim();
        if name.is_empty() {
            return Err(Error::InvalidInput("the rater's name is empty".into()));
        }
        too_long("rater's name", name, MAX_NAME_CHARS)?;
        if req.max_items == Some(0) {
            return Err(Error::InvalidInput("max_items must be at least 1".into()));
        }
        let max_items = req.max_items.map(|m| m as usize);
        let token = hex::encode(random_bytes::<TOKEN_BYTES>()?);
        let kind = req.kind.unwrap_or(RaterKind::Human);
        let k = session.raters_per_item;
        let seed = session.seed;
        let hash = token_hash(&token);
        let new = NewRater { session_id: session.id, name, kind: kind.as_str(), token_sha256: &hash, expires_in_s: req.expires_in_s, items };
        let rater = self.store().insert_rater(&new, |rater_id, counts| {
            let mut free: Vec<u32> = (1..=items).filter(|&i| counts[i as usize - 1] < k).collect();
            if free.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "every item of session {} already goes to {k} raters; create a session with more raters per item to add {name}",
                    session.id
                )));
            }
            // The rater's own order (Fisher–Yates from a per-rater stream), so that no item is always seen first.
            let mut rng = SplitMix64::new(seed ^ (rater_id as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            for i in (1..free.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                free.swap(i, j);
            }
            if let Some(m) = max_items {
                free.truncate(m);
            }
            Ok(free
                .into_iter()
                .enumerate()
                .map(|(q, item)| Assignment { item, queue: q as u32 + 1, swapped: draw(seed, rater_id, item) & 1 == 1 })
                .collect())
        })?;
        Ok(Invitation { rater: self.rater_status(&rater)?, token })
    }

    /// Revokes a rater's token at once; their unrated items go back to the pool for later invitations.
    pub fn review_revoke(&self, rater: i64) -> Result<RaterStatus> {
        let r = self.store().revoke_rater(rater)?;
        self.rater_status(&r)
    }

    pub(crate) fn rater_status(&self, r: &Rater) -> Result<RaterStatus> {
        let store = self.store();
        let assigned = store.assignments(r.id)?.len() as u32;
        let current = store.current_ratings_of(r.id)?;
        let rated = current.len() as u32;
        let last_rated_at = current.iter().map(|g| g.created_at.clone()).max();
        Ok(RaterStatus {
            id: r.id,
            name: r.name.clone(),
            kind: kind_of(r),
            assigned,
            rated,
            progress: progress(rated, assigned).text,
            revoked: r.revoked_at.is_some(),
            expired: r.expired,
            expires_at: r.expires_at.clone(),
            last_rated_at,
        })
    }

    /// Who is rating what: per rater, how many of their items they rated.
    pub fn review_status(&self, id: i64) -> Result<ReviewStatus> {
        let (session, items) = self.session(id)?;
        let raters = self.store().list_raters(id)?;
        let statuses = raters.iter().map(|r| self.rater_status(r)).collect::<Result<Vec<_>>>()?;
        let store = self.store();
        let ratings = store.current_ratings(id)?;
        let mut rated = vec![0u32; items as usize];
        for g in &ratings {
            if let Some(n) = rated.get_mut(g.item as usize - 1) {
                *n += 1;
            }
        }
        let mut queued = vec![false; items as usize];
        for r in raters.iter().filter(|r| r.revoked_at.is_none()) {
            for a in store.assignments(r.id)? {
                if let Some(q) = queued.get_mut(a.item as usize - 1) {
                    *q = true;
                }
            }
        }
        drop(store);
        Ok(ReviewStatus {
            session: session_info(&session, items)?,
            raters: statuses,
            complete_items: rated.iter().filter(|&&n| n >= session.raters_per_item).count() as u32,
            unassigned_items: queued.iter().filter(|q| !**q).count() as u32,
            ratings: ratings.len() as u32,
        })
    }

    /// Closes the session: no more ratings, and raters may now see which model wrote which answer.
    pub fn review_close(&self, id: i64) -> Result<ReviewSessionInfo> {
        let (_, items) = self.session(id)?;
        let s = self.store().close_review_session(id)?;
        session_info(&s, items)
    }

    /// The rater a token belongs to, if it is valid now, and their session. Raters' commands read all they
    /// need under one hold of the store, so that many raters at once do not queue for it again and again.
    fn rater_for(store: &Store, token: &str) -> Result<(Rater, ReviewSession)> {
        let refuse = |why: &str| Err(Error::Unauthorized(format!("{why}; ask the organiser for a new invitation link")));
        if token.is_empty() {
            return refuse("no invite token was given");
        }
        let Some(rater) = store.rater_by_token(&token_hash(token))? else {
            return refuse("this invite token is not known");
        };
        if rater.revoked_at.is_some() {
            return refuse("this invite token was revoked");
        }
        if rater.expired {
            return refuse("this invite token has expired");
        }
        let session = store.get_review_session(rater.session_id)?;
        Ok((rater, session))
    }

    fn rater_progress(store: &Store, rater: &Rater) -> Result<Progress> {
        let (rated, total) = store.rater_counts(rater.id)?;
        Ok(progress(rated, total))
    }

    /// The rater's next unrated item (or the one asked for), with the two answers as A and B.
    pub fn review_next(&self, args: &NextArgs) -> Result<RaterView> {
        let store = self.store();
        let (rater, session) = Self::rater_for(&store, &args.token)?;
        let queue = store.assignments(rater.id)?;
        let rated: BTreeSet<u32> = store.rated_items(rater.id)?.into_iter().collect();
        let chosen = match args.item {
            Some(item) => Some(*queue.iter().find(|a| a.item == item).ok_or(Error::ForbiddenItem { item })?),
            None => queue.iter().find(|a| !rated.contains(&a.item)).copied(),
        };
        let item = match chosen {
            None => None,
            Some(a) => {
                let e = eval_item_in(&store, session.evaluation_id, a.item)?;
                let (baseline, candidate) = (Side::parse(&session.baseline)?, Side::parse(&session.candidate)?);
                let (base_text, cand_text) = answers(&e, baseline, candidate)?;
                let (a_text, b_text, origins) =
                    if a.swapped { (cand_text, base_text, Origins { a: candidate, b: baseline }) } else { (base_text, cand_text, Origins { a: baseline, b: candidate }) };
                let rating = store
                    .current_rating(rater.id, a.item)?
                    .map(|g| serde_json::from_value::<RatingInput>(g.rating))
                    .transpose()
                    .map_err(|e| Error::Internal(format!("a stored rating is unreadable: {e}")))?;
                Some(RaterItem {
                    item: a.item,
                    messages: e.messages.clone(),
                    prompt: e.prompt.clone(),
                    input: e.input.clone(),
                    a: a_text.to_string(),
                    b: b_text.to_string(),
                    rating,
                    origins: session.closed.then_some(origins),
                })
            }
        };
        drop(store);
        Ok(RaterView {
            session: session.name.clone(),
            rater: rater.name.clone(),
            criteria: criteria_of(&session)?,
            flags: FLAGS.iter().map(|f| f.to_string()).collect(),
            progress: progress(rated.len() as u32, queue.len() as u32),
            closed: session.closed,
            queue: queue.iter().map(|a| QueueEntry { item: a.item, rated: rated.contains(&a.item) }).collect(),
            item,
        })
    }

    /// Records the rater's rating of an item of their queue, replacing their earlier one (kept as history).
    /// Everything is checked first; a refused rating writes nothing.
    pub fn review_submit(&self, args: &SubmitArgs) -> Result<SubmitResult> {
        let rating = RatingInput {
            a: args.a.clone().unwrap_or_default(),
            b: args.b.clone().unwrap_or_default(),
            preference: args.preference,
            comment: args.comment.clone().filter(|c| !c.trim().is_empty()),
            edited: args.edited.clone().filter(|e| !e.trim().is_empty()),
        };
        let value = serde_json::to_value(&rating).map_err(|e| Error::Internal(e.to_string()))?;
        let store = self.store();
        let (rater, session) = Self::rater_for(&store, &args.token)?;
        if session.closed {
            return Err(Error::ReviewClosed { session: session.id });
        }
        check_rating(&rating, &criteria_of(&session)?)?;
        if !store.assignments(rater.id)?.iter().any(|a| a.item == args.item) {
            return Err(Error::ForbiddenItem { item: args.item });
        }
        drop(store);
        // Written with other raters' ratings of the moment; the writer checks the rater, the session and the
        // queue again in its transaction, as a revocation or a close may have come in between.
        let db = crate::rating_writer::database(self.home());
        let (rating_id, replaced) = match self.ratings.submit(&db, rater.id, args.item, value)? {
            Submitted::Written { id, replaced } => (id, replaced),
            Submitted::Revoked => return Err(Error::Unauthorized("this invite token was revoked; ask the organiser for a new invitation link".into())),
            Submitted::Closed => return Err(Error::ReviewClosed { session: session.id }),
            Submitted::NotInQueue => return Err(Error::ForbiddenItem { item: args.item }),
        };
        let progress = Self::rater_progress(&self.store(), &rater)?;
        Ok(SubmitResult { rating_id, replaced, progress })
    }

    /// "N of M" for the token's rater.
    pub fn review_progress(&self, token: &str) -> Result<Progress> {
        let store = self.store();
        let (rater, _) = Self::rater_for(&store, token)?;
        Self::rater_progress(&store, &rater)
    }
}

fn eval_item_in(store: &Store, evaluation: i64, position: u32) -> Result<EvalItem> {
    match store.evaluation_item(evaluation, position)? {
        Some(i) => crate::evaluation::item_from(evaluation, i),
        None => Err(Error::Internal(format!("evaluation {evaluation} has no item {position}"))),
    }
}

/// Scores 1..=5 on known criteria, known flags, text within its limits.
fn check_rating(r: &RatingInput, criteria: &[Criterion]) -> Result<()> {
    for (side, o) in [("A", &r.a), ("B", &r.b)] {
        for (key, score) in &o.scores {
            if !criteria.iter().any(|c| &c.key == key) {
                let known: Vec<&str> = criteria.iter().map(|c| c.key.as_str()).collect();
                return Err(Error::InvalidInput(format!("answer {side}: unknown criterion `{key}`; this session's are {}", known.join(", "))));
            }
            if !(1..=5).contains(score) {
                return Err(Error::InvalidInput(format!("answer {side}: {key} is scored {score}; scores go from 1 to 5")));
            }
        }
        for flag in &o.flags {
            if !FLAGS.contains(&flag.as_str()) {
                return Err(Error::InvalidInput(format!("answer {side}: unknown flag `{flag}`; use {}", FLAGS.join(", "))));
            }
        }
        let mut seen = o.flags.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != o.flags.len() {
            return Err(Error::InvalidInput(format!("answer {side}: a flag is given twice")));
        }
    }
    if let Some(c) = &r.comment {
        too_long("comment", c, MAX_COMMENT_CHARS)?;
    }
    if let Some(e) = &r.edited {
        too_long("edited response", e, MAX_EDIT_CHARS)?;
    }
    Ok(())
}
