//! The local judge: a model on this machine rates a review session's items as a machine rater. It is
//! invited like anyone else (kind `machine`, so its ratings are kept apart from people's in every
//! figure), reads each item of its queue through `review_next` with the A/B sides drawn for it, and
//! submits through `review_submit`, whose checks its scores pass like a person's. For each item it is
//! asked, greedily, for one JSON object with a 1–5 score per criterion for both answers and a
//! preference; an answer that holds no such object gets one shorter reminder, and an item still
//! without a usable answer is left unrated and reported with the reason.

use crate::error::{Error, Result};
use crate::review::{Choice, Criterion, NextArgs, OutputRating, RaterItem, RaterKind, RaterStatus, ReviewInvite, SubmitArgs};
use crate::training;
use crate::Api;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use whetstone_data::{Message, Role};
use whetstone_engine::generate::SamplingOptions;

/// Longest rubric prompt a request may give, in characters.
pub const MAX_RUBRIC_CHARS: usize = 10_000;
/// Tokens the judge may write per answer; a JSON verdict takes well under a hundred.
pub const DEFAULT_JUDGE_TOKENS: usize = 256;
pub const MAX_JUDGE_TOKENS: usize = 2048;
/// How much of a reply a failure report keeps, in characters.
const REPORTED_OUTPUT_CHARS: usize = 400;
/// How much of the model's stated reason goes into the rating's comment, in characters.
const MAX_REASON_CHARS: usize = 1_000;
const MAX_NAME_CHARS: usize = 200;

/// The instructions the rubric prompt opens with, unless the request brings its own.
pub const DEFAULT_RUBRIC: &str = "You are a strict, fair judge. Two assistants answered the same request. \
Rate each answer on every criterion below from 1 (very poor) to 5 (excellent), judging the answers only on \
their content, not their length or their order, then say which answer is better overall.";

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct JudgeRequest {
    /// The review session whose items are rated.
    pub session: i64,
    /// The judging model: an installed model's id, name or hub id, or a model file or folder…
    #[serde(default)]
    #[ts(optional)]
    pub model: Option<String>,
    /// …or a run's model: its base model, or with `tuned` the base model with the run's adapter.
    #[serde(default)]
    #[ts(optional)]
    pub run: Option<i64>,
    #[serde(default)]
    #[ts(optional)]
    pub tuned: Option<bool>,
    /// Instructions that replace the built-in opening of the rubric prompt; the criteria, the item
    /// and the form of the answer are always added after them.
    #[serde(default)]
    #[ts(optional)]
    pub rubric: Option<String>,
    /// The judge's name among the session's raters; "Local judge (MODEL)" by default.
    #[serde(default)]
    #[ts(optional)]
    pub name: Option<String>,
    /// At most this many items (the judge takes a place among each item's raters).
    #[serde(default)]
    #[ts(optional)]
    pub max_items: Option<u32>,
    /// Longest reply per item, in tokens.
    #[serde(default)]
    #[ts(optional)]
    pub max_new_tokens: Option<usize>,
}

/// An item the judge could not rate, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct JudgeFailure {
    pub item: u32,
    pub reason: String,
    /// The beginning of what the model wrote last for this item (empty when nothing was generated).
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct JudgeSummary {
    pub session: i64,
    /// The judge as the session's rater (kind `machine`).
    pub rater: RaterStatus,
    /// Which model judged.
    pub judge: String,
    /// Items in the judge's queue.
    pub queued: u32,
    pub rated: u32,
    /// Of those rated, how many needed the reminder.
    pub retried: u32,
    pub failed: Vec<JudgeFailure>,
    /// When some items failed, the judge's token is retired so that those items can go to another rater.
    pub returned_to_pool: bool,
}

/// One item's progress, for a command line that prints as it goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeProgress {
    pub done: u32,
    pub total: u32,
    pub item: u32,
    /// None when rated, else why not.
    pub failed: Option<String>,
}

/// A judge's reply, read: scores for A and B by criterion key, the preference, and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub a: BTreeMap<String, u8>,
    pub b: BTreeMap<String, u8>,
    pub preference: Choice,
    pub reason: Option<String>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "System",
        Role::User => "User",
        Role::Assistant => "Assistant",
    }
}

/// The form the reply must take, with every criterion key in it.
fn answer_form(criteria: &[Criterion]) -> String {
    let scores = criteria.iter().map(|c| format!("\"{}\": N", c.key)).collect::<Vec<_>>().join(", ");
    format!(
        "Reply with one JSON object and nothing else, in this form:\n\
         {{\"a\": {{{scores}}}, \"b\": {{{scores}}}, \"preference\": \"a\", \"reason\": \"one short sentence\"}}\n\
         where each N is a whole number from 1 to 5, and preference is \"a\", \"b\" or \"tie\"."
    )
}

/// The prompt the judge answers for one item: the instructions (`rubric`, else [`DEFAULT_RUBRIC`]), the
/// criteria, the conversation, the two answers as A and B, and the form of the reply.
pub fn rubric_prompt(rubric: Option<&str>, criteria: &[Criterion], item: &RaterItem) -> String {
    let mut out = String::new();
    out.push_str(rubric.map(str::trim).filter(|r| !r.is_empty()).unwrap_or(DEFAULT_RUBRIC));
    out.push_str("\n\nCriteria:\n");
    for c in criteria {
        let description = c.description.trim();
        if description.is_empty() {
            out.push_str(&format!("- {} ({})\n", c.key, c.label));
        } else {
            out.push_str(&format!("- {} ({}): {}\n", c.key, c.label, description));
        }
    }
    let earlier = &item.messages[..item.messages.len().saturating_sub(1)];
    if !earlier.is_empty() {
        out.push_str("\nThe conversation before the request:\n");
        for m in earlier {
            out.push_str(&format!("{}: {}\n", role_name(m.role), m.content));
        }
    }
    out.push_str(&format!("\nThe request:\n<<<\n{}\n>>>\n", item.prompt));
    if let Some(input) = &item.input {
        out.push_str(&format!("\nIts input:\n<<<\n{input}\n>>>\n"));
    }
    out.push_str(&format!("\nAnswer A:\n<<<\n{}\n>>>\n\nAnswer B:\n<<<\n{}\n>>>\n\n", item.a, item.b));
    out.push_str(&answer_form(criteria));
    out
}

/// What the judge is told after a reply that could not be read.
pub fn reminder(criteria: &[Criterion], problem: &str) -> String {
    format!("That reply could not be used ({problem}). {}", answer_form(criteria))
}

/// Every JSON object in `text`, in order: each `{` that starts one that parses (prose, code fences
/// and trailing words around it are skipped).
fn json_objects(text: &str) -> Vec<serde_json::Map<String, Value>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find('{') {
        let start = from + offset;
        let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(Value::Object(map))) => {
                out.push(map);
                from = start + values.byte_offset();
            }
            _ => from = start + 1,
        }
    }
    out
}

/// Lower case, with anything but letters and digits as single `_`: "Answer A" → "answer_a".
fn norm(key: &str) -> String {
    let mut out = String::new();
    for c in key.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

fn field<'a>(map: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    map.iter().find(|(k, _)| names.contains(&norm(k).as_str())).map(|(_, v)| v)
}

/// A 1–5 score: a whole number, also written as `4.0`, `"4"` or `"4/5"`.
fn score(v: &Value) -> std::result::Result<u8, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().split('/').next().and_then(|x| x.trim().parse::<f64>().ok()),
        _ => None,
    };
    match n {
        Some(x) if x.fract() == 0.0 && (1.0..=5.0).contains(&x) => Ok(x as u8),
        Some(x) => Err(format!("{x} is not a whole number from 1 to 5")),
        None => Err(format!("{v} is not a score")),
    }
}

fn scores(v: Option<&Value>, side: &str, criteria: &[Criterion]) -> std::result::Result<BTreeMap<String, u8>, String> {
    let Some(Value::Object(given)) = v else {
        return Err(format!("no scores for answer {}", side.to_uppercase()));
    };
    let mut out = BTreeMap::new();
    for c in criteria {
        let names = [norm(&c.key), norm(&c.label)];
        let found = given.iter().find(|(k, _)| names.contains(&norm(k))).map(|(_, v)| v);
        let Some(value) = found else {
            return Err(format!("answer {} has no score for {}", side.to_uppercase(), c.key));
        };
        let s = score(value).map_err(|e| format!("answer {}'s {}: {e}", side.to_uppercase(), c.key))?;
        out.insert(c.key.clone(), s);
    }
    Ok(out)
}

fn preference(v: Option<&Value>) -> std::result::Result<Choice, String> {
    let Some(Value::String(p)) = v else {
        return Err("no preference (\"a\", \"b\" or \"tie\")".into());
    };
    match norm(p).as_str() {
        "a" | "answer_a" => Ok(Choice::A),
        "b" | "answer_b" => Ok(Choice::B),
        "tie" | "equal" | "both" | "neither" | "none" => Ok(Choice::Tie),
        other => Err(format!("the preference `{other}` is none of \"a\", \"b\" or \"tie\"")),
    }
}

/// Reads a judge's reply: the first JSON object in it that has scores for both answers. Every
/// criterion must be scored 1–5 for both, and a preference given; keys may be written as the
/// criterion's key or its label, in any case. The error says what is missing or wrong.
pub fn parse_verdict(text: &str, criteria: &[Criterion]) -> std::result::Result<Verdict, String> {
    let objects = json_objects(text);
    if objects.is_empty() {
        return Err("no JSON object in the reply".into());
    }
    let a_names = ["a", "answer_a"];
    let b_names = ["b", "answer_b"];
    // A reply may hold an example or a fragment before its verdict: the first object with both sides counts.
    let Some(map) = objects.iter().find(|m| field(m, &a_names).is_some() && field(m, &b_names).is_some()) else {
        return Err("no JSON object with scores for both answers (\"a\" and \"b\")".into());
    };
    let a = scores(field(map, &a_names), "a", criteria)?;
    let b = scores(field(map, &b_names), "b", criteria)?;
    let preference = preference(field(map, &["preference", "preferred", "better", "winner"]))?;
    let reason = field(map, &["reason", "explanation", "why"])
        .and_then(Value::as_str)
        .map(|r| r.trim().chars().take(MAX_REASON_CHARS).collect::<String>())
        .filter(|r| !r.is_empty());
    Ok(Verdict { a, b, preference, reason })
}

fn beginning(text: &str) -> String {
    let mut out: String = text.chars().take(REPORTED_OUTPUT_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// What judges: a model file or folder, its adapter, and how it is named.
struct JudgeModel {
    path: PathBuf,
    quant: whetstone_engine::quant::QuantMode,
    adapter: Option<PathBuf>,
    label: String,
}

impl Api {
    fn judge_model(&self, req: &JudgeRequest) -> Result<JudgeModel> {
        match (&req.model, req.run) {
            (Some(_), Some(_)) => Err(Error::InvalidInput("give the judging model as a model or as a run, not both".into())),
            (None, None) => Err(Error::InvalidInput("give the judging model: an installed model, a model path, or a run".into())),
            (Some(m), None) => {
                if req.tuned.is_some() {
                    return Err(Error::InvalidInput("`tuned` chooses a run's tuned model; give the run too".into()));
                }
                let path = self.resolve_model_path(m)?;
                let label = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| m.clone());
                Ok(JudgeModel { path, quant: Default::default(), adapter: None, label })
            }
            (None, Some(id)) => {
                let src = self.export_source(id)?;
                let tuned = req.tuned.unwrap_or(false);
                let label = if tuned { format!("run {id}'s tuned model") } else { format!("run {id}'s base model") };
                Ok(JudgeModel { path: src.spec.model.clone(), quant: src.spec.settings.quant, adapter: tuned.then_some(src.adapter_dir.clone()), label })
            }
        }
    }

    /// Rates the session's items with a local model as a machine rater; see the module's documentation.
    pub fn review_judge(&self, req: &JudgeRequest) -> Result<JudgeSummary> {
        self.review_judge_with_progress(req, &mut |_| {})
    }

    /// [`Api::review_judge`], telling `progress` of each item as it is done. Everything is checked and
    /// the model loaded before the judge joins the session, so a refusal leaves no rater behind.
    pub fn review_judge_with_progress(&self, req: &JudgeRequest, progress: &mut dyn FnMut(&JudgeProgress)) -> Result<JudgeSummary> {
        self.check_judge(req)?;
        let max_new_tokens = req.max_new_tokens.unwrap_or(DEFAULT_JUDGE_TOKENS);
        let judge = self.judge_model(req)?;
        let (model, adapter) = training::load_model_and_adapter(&judge.path, judge.quant, judge.adapter.as_deref())?;
        let context = model.decoder.config.max_position_embeddings;
        // Greedy: the same item gets the same rating from the same model.
        let opts = SamplingOptions { temperature: 0.0, top_p: 1.0, max_new_tokens, seed: 0 };
        let mut answer = |messages: &[Message]| -> Result<String> {
            let prompt = training::chat_prompt_ids(&model, messages)?.len();
            if prompt + max_new_tokens > context {
                return Err(Error::InvalidInput(format!(
                    "the rubric prompt with this item is {prompt} tokens, and with a reply of up to {max_new_tokens} it passes the {context} tokens the judging model reads at once"
                )));
            }
            Ok(training::generate_chat(&model, adapter.as_ref(), messages, &opts, |_| {})?.0)
        };
        self.review_judge_using(req, &judge.label, &mut answer, progress)
    }

    fn check_judge(&self, req: &JudgeRequest) -> Result<()> {
        let (session, _) = self.session(req.session)?;
        if session.closed {
            return Err(Error::ReviewClosed { session: session.id });
        }
        if let Some(r) = &req.rubric {
            let n = r.chars().count();
            if n > MAX_RUBRIC_CHARS {
                return Err(Error::InvalidInput(format!("the rubric prompt is {n} characters long; the most allowed is {MAX_RUBRIC_CHARS}")));
            }
        }
        let max_new_tokens = req.max_new_tokens.unwrap_or(DEFAULT_JUDGE_TOKENS);
        if !(1..=MAX_JUDGE_TOKENS).contains(&max_new_tokens) {
            return Err(Error::InvalidInput(format!("max_new_tokens {max_new_tokens} is out of range: use 1 to {MAX_JUDGE_TOKENS}")));
        }
        Ok(())
    }

    /// The judge's work with `answer` as its model: `answer` gets the conversation to reply to (the
    /// rubric prompt, and after an unusable reply that reply and a reminder) and returns the reply.
    /// `judge` names the model in the rater's name and the ratings' comments. Ratings go through the
    /// same invitation, queue and checks as a person's.
    pub fn review_judge_using(
        &self,
        req: &JudgeRequest,
        judge: &str,
        answer: &mut dyn FnMut(&[Message]) -> Result<String>,
        progress: &mut dyn FnMut(&JudgeProgress),
    ) -> Result<JudgeSummary> {
        self.check_judge(req)?;
        let name = self.judge_name(req, judge)?;
        let invitation = self.review_invite(&ReviewInvite {
            session: req.session,
            name,
            kind: Some(RaterKind::Machine),
            expires_in_s: None,
            max_items: req.max_items,
        })?;
        let token = invitation.token;
        let rater_id = invitation.rater.id;
        let queue = self.store().assignments(rater_id)?;
        let total = queue.len() as u32;
        let (mut rated, mut retried) = (0u32, 0u32);
        let mut failed = Vec::new();
        for (done, a) in queue.iter().enumerate() {
            let view = self.review_next(&NextArgs { token: token.clone(), item: Some(a.item) })?;
            let item = view.item.ok_or_else(|| Error::Internal(format!("item {} of the judge's queue could not be read", a.item)))?;
            let outcome = judge_item(&view.criteria, req.rubric.as_deref(), &item, answer);
            let result = match outcome {
                Ok((verdict, second)) => {
                    let comment = match &verdict.reason {
                        Some(r) => format!("Local judge ({judge}): {r}"),
                        None => format!("Local judge ({judge})"),
                    };
                    let submitted = self.review_submit(&SubmitArgs {
                        token: token.clone(),
                        item: a.item,
                        a: Some(OutputRating { scores: verdict.a, flags: Vec::new() }),
                        b: Some(OutputRating { scores: verdict.b, flags: Vec::new() }),
                        preference: Some(verdict.preference),
                        comment: Some(comment),
                        edited: None,
                    });
                    match submitted {
                        Ok(_) => {
                            rated += 1;
                            retried += u32::from(second);
                            None
                        }
                        Err(e) => Some(JudgeFailure { item: a.item, reason: format!("the rating was refused: {e}"), output: String::new() }),
                    }
                }
                Err(f) => Some(f),
            };
            progress(&JudgeProgress { done: done as u32 + 1, total, item: a.item, failed: result.as_ref().map(|f| f.reason.clone()) });
            failed.extend(result);
        }
        // Its token was never shown to anyone; retiring it hands the items it could not rate back to the pool.
        let returned_to_pool = !failed.is_empty();
        let rater = if returned_to_pool { self.review_revoke(rater_id)? } else { self.rater_status(&self.store().get_rater(rater_id)?)? };
        Ok(JudgeSummary { session: req.session, rater, judge: judge.to_string(), queued: total, rated, retried, failed, returned_to_pool })
    }

    /// The request's name for the judge, else "Local judge (MODEL)" with a number if the session has one already.
    fn judge_name(&self, req: &JudgeRequest, judge: &str) -> Result<String> {
        if let Some(n) = &req.name {
            return Ok(n.clone());
        }
        let taken: Vec<String> = self.store().list_raters(req.session)?.into_iter().map(|r| r.name).collect();
        let base: String = format!("Local judge ({judge})").chars().take(MAX_NAME_CHARS - 6).collect();
        let free = (1..).map(|i| if i == 1 { base.clone() } else { format!("{base} #{i}") }).find(|n| !taken.contains(n));
        Ok(free.unwrap_or(base))
    }
}

/// One item: the rubric prompt, and once more with a reminder when the reply cannot be read. Returns the
/// verdict and whether the reminder was needed, or the failure to report.
fn judge_item(
    criteria: &[Criterion],
    rubric: Option<&str>,
    item: &RaterItem,
    answer: &mut dyn FnMut(&[Message]) -> Result<String>,
) -> std::result::Result<(Verdict, bool), JudgeFailure> {
    let fail = |reason: String, output: &str| JudgeFailure { item: item.item, reason, output: beginning(output) };
    let mut messages = vec![Message::user(rubric_prompt(rubric, criteria, item))];
    let first = answer(&messages).map_err(|e| fail(format!("the judging model could not answer: {e}"), ""))?;
    let problem = match parse_verdict(&first, criteria) {
        Ok(v) => return Ok((v, false)),
        Err(p) => p,
    };
    messages.push(Message::assistant(first.clone()));
    messages.push(Message::user(reminder(criteria, &problem)));
    let second = answer(&messages).map_err(|e| fail(format!("{problem}; asked again, the judging model could not answer: {e}"), &first))?;
    match parse_verdict(&second, criteria) {
        Ok(v) => Ok((v, true)),
        Err(again) => Err(fail(format!("{problem}; asked again: {again}"), &second)),
    }
}
