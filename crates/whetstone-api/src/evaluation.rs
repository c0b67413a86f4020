//! Evaluation runs: the same prompts answered by the base model, the tuned one (a run's adapter) and
//! optionally another run, through the model's own chat template, greedy or with seeded sampling; each
//! side's answers scored against the references with every text metric of the eval crate, and its
//! perplexity on the references measured the way `whet eval loss` measures it. Kept in the store with the
//! run, so the figures can be shown, exported and reviewed later.

use crate::error::{Error, Result};
use crate::training::{self, load_adapter, load_model, LoadedModel};
use crate::Api;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use whetstone_data::{read_training_rows, DataRow, Message, Role, RowBody, Split};
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::quant::QuantMode;
use whetstone_engine::Adapter;
use whetstone_eval::inputs::default_wordnet_dir;
use whetstone_eval::labels::{label_report, LabelReport};
use whetstone_eval::meteor::MeteorOptions;
use whetstone_eval::wordnet::WordNet;
use whetstone_eval::{score_with, ItemScores, ScoreOptions, Scores};
use whetstone_store::{EvaluationItem, NewEvaluation, OutputRecord, SideRecord};

/// Who answered: the model alone, the model with the run's adapter, or another run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Base,
    Tuned,
    Compare,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Tuned => "tuned",
            Side::Compare => "compare",
        }
    }

    pub fn parse(s: &str) -> Result<Side> {
        match s {
            "base" => Ok(Side::Base),
            "tuned" => Ok(Side::Tuned),
            "compare" => Ok(Side::Compare),
            other => Err(Error::InvalidInput(format!("unknown side `{other}`: use base, tuned or compare"))),
        }
    }
}

/// A prompt given directly rather than taken from a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct EvalRowInput {
    pub prompt: String,
    #[serde(default)]
    #[ts(optional)]
    pub system: Option<String>,
    /// Structured input shown to reviewers beside the prompt (the model sees only the prompt).
    #[serde(default)]
    #[ts(optional)]
    pub input: Option<serde_json::Value>,
    /// The answer the outputs are scored against.
    #[serde(default)]
    #[ts(optional)]
    pub reference: Option<String>,
}

/// What to evaluate, on which rows, and how to decode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct EvalRequest {
    /// A training run: its base model answers as `base`, with the run's adapter as `tuned`.
    #[serde(default)]
    #[ts(optional)]
    pub run: Option<i64>,
    /// Without a run: a model (a path, or an installed model's id or name)…
    #[serde(default)]
    #[ts(optional)]
    pub model: Option<String>,
    /// …and an adapter folder (PEFT layout) for the `tuned` side.
    #[serde(default)]
    #[ts(optional)]
    pub adapter: Option<PathBuf>,
    #[serde(default)]
    #[ts(optional)]
    pub quant: Option<QuantMode>,
    /// Another run answering the same prompts, as the `compare` side.
    #[serde(default)]
    #[ts(optional)]
    pub compare_run: Option<i64>,
    /// Rows from a dataset version (name or id; the latest version unless `version`), its `split`
    /// (`test` by default).
    #[serde(default)]
    #[ts(optional)]
    pub dataset: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub version: Option<u32>,
    #[serde(default)]
    #[ts(optional)]
    pub split: Option<String>,
    /// Rows from a file (any format `whet data import` reads).
    #[serde(default)]
    #[ts(optional)]
    pub data: Option<PathBuf>,
    /// Rows given here.
    #[serde(default)]
    #[ts(optional)]
    pub rows: Option<Vec<EvalRowInput>>,
    /// Only the first N rows.
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<usize>,
    /// Which sides answer; by default base and tuned, and compare when `compare_run` is given.
    #[serde(default)]
    #[ts(optional)]
    pub sides: Option<Vec<Side>>,
    /// 0 (the default) decodes greedily; above 0 samples, seeded per item from `seed`.
    #[serde(default)]
    #[ts(optional)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[ts(optional)]
    pub top_p: Option<f64>,
    #[serde(default)]
    #[ts(optional)]
    pub seed: Option<u64>,
    #[serde(default)]
    #[ts(optional)]
    pub max_new_tokens: Option<usize>,
    /// Longest prompt + reference measured for perplexity, in tokens.
    #[serde(default)]
    #[ts(optional)]
    pub max_len: Option<usize>,
    /// The references are labels (one category per item, such as `positive`): each side also gets
    /// precision, recall and F1 per label, comparing its answers and the references with surrounding
    /// white space trimmed.
    #[serde(default)]
    #[ts(optional)]
    pub labels: Option<bool>,
}

/// Text metrics of one output against its references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ItemMetrics {
    /// Sentence BLEU, 0..100.
    pub bleu: f64,
    /// Sentence chrF, 0..100.
    pub chrf: f64,
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
    pub rouge_lsum: f64,
    pub meteor: f64,
    pub exact_match: f64,
    pub f1: f64,
}

impl From<&ItemScores> for ItemMetrics {
    fn from(s: &ItemScores) -> Self {
        ItemMetrics {
            bleu: s.bleu.score,
            chrf: s.chrf.score,
            rouge1: s.rouge.rouge1.fmeasure,
            rouge2: s.rouge.rouge2.fmeasure,
            rouge_l: s.rouge.rouge_l.fmeasure,
            rouge_lsum: s.rouge.rouge_lsum.fmeasure,
            meteor: s.meteor,
            exact_match: s.squad.exact_match,
            f1: s.squad.f1,
        }
    }
}

/// A side's text metrics over every item that has a reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct TextMetrics {
    pub items: usize,
    /// Corpus BLEU (sacrebleu's `corpus_bleu`), 0..100.
    pub bleu: f64,
    /// Corpus chrF, 0..100.
    pub chrf: f64,
    /// Means over items of the F-measures.
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
    pub rouge_lsum: f64,
    pub meteor: f64,
    /// False when METEOR ran without WordNet, so without its synonym stage.
    pub meteor_synonyms: bool,
    pub exact_match: f64,
    pub f1: f64,
}

impl From<&Scores> for TextMetrics {
    fn from(s: &Scores) -> Self {
        TextMetrics {
            items: s.count,
            bleu: s.bleu.score,
            chrf: s.chrf.score,
            rouge1: s.rouge.rouge1,
            rouge2: s.rouge.rouge2,
            rouge_l: s.rouge.rouge_l,
            rouge_lsum: s.rouge.rouge_lsum,
            meteor: s.meteor,
            meteor_synonyms: s.meteor_synonyms,
            exact_match: s.exact_match,
            f1: s.f1,
        }
    }
}

/// Precision, recall and F1 of one label, as scikit-learn's `classification_report` gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LabelMetric {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// How many items' references carry this label.
    pub support: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LabelAverage {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Per-label figures of a side whose answers are labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LabelMetrics {
    pub per_label: Vec<LabelMetric>,
    /// Unweighted mean over labels.
    pub macro_avg: LabelAverage,
    /// From the counts pooled over labels: the share of answers that are the right label.
    pub micro_avg: LabelAverage,
    /// Mean over labels weighted by their support.
    pub weighted_avg: LabelAverage,
}

impl From<&LabelReport> for LabelMetrics {
    fn from(r: &LabelReport) -> Self {
        let avg = |a: &whetstone_eval::labels::Average| LabelAverage { precision: a.precision, recall: a.recall, f1: a.f1 };
        LabelMetrics {
            per_label: r
                .per_label
                .iter()
                .map(|l| LabelMetric { label: l.label.clone(), precision: l.precision, recall: l.recall, f1: l.f1, support: l.support })
                .collect(),
            macro_avg: avg(&r.macro_avg),
            micro_avg: avg(&r.micro_avg),
            weighted_avg: avg(&r.weighted_avg),
        }
    }
}

/// One side's aggregate figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SideMetrics {
    pub side: Side,
    pub model: String,
    pub adapter: Option<String>,
    /// Mean loss over the references' tokens (as `whet eval loss`), and its exponential.
    pub loss: Option<f64>,
    pub perplexity: Option<f64>,
    pub loss_tokens: usize,
    /// Items whose prompt and reference did not fit `max_len`, left out of the perplexity.
    pub loss_rows_dropped: usize,
    pub generated_tokens: u64,
    /// None when no item has a reference.
    pub text: Option<TextMetrics>,
    /// Per-label figures, when the evaluation was asked to treat the references as labels.
    #[serde(default)]
    pub labels: Option<LabelMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Evaluation {
    pub id: i64,
    pub run_id: Option<i64>,
    pub compare_run_id: Option<i64>,
    pub model: String,
    pub adapter: Option<String>,
    pub dataset_id: Option<i64>,
    pub dataset_version: Option<u32>,
    pub split: Option<String>,
    /// Where the rows came from, in words.
    pub source: String,
    /// Decoding and measuring settings as used.
    pub settings: serde_json::Value,
    pub sides: Vec<SideMetrics>,
    pub items: u64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct EvalOutput {
    pub side: Side,
    pub text: String,
    pub tokens: u64,
    pub scores: Option<ItemMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct EvalItem {
    pub position: u32,
    pub line: Option<u64>,
    /// The conversation the model answered (its last message is the prompt).
    pub messages: Vec<Message>,
    pub prompt: String,
    pub input: Option<serde_json::Value>,
    pub reference: Option<String>,
    pub outputs: Vec<EvalOutput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct EvalResults {
    pub evaluation: Evaluation,
    pub items: Vec<EvalItem>,
}

/// A stage of an evaluation, for progress bars.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct EvalProgress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Csv,
    Jsonl,
}

pub const DEFAULT_MAX_NEW_TOKENS: usize = 128;
const DEFAULT_MAX_LEN: usize = 1024;

/// A prompt to answer, with what it is scored against.
struct Prompt {
    line: Option<u64>,
    messages: Vec<Message>,
    input: Option<serde_json::Value>,
    reference: Option<String>,
}

impl Prompt {
    fn text(&self) -> String {
        self.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.clone()).unwrap_or_default()
    }
}

/// Where the rows came from.
struct Rows {
    prompts: Vec<Prompt>,
    source: String,
    dataset_id: Option<i64>,
    dataset_version: Option<u32>,
    split: Option<Split>,
}

/// A model, with an adapter or not, and the names recorded for it.
struct Answerer<'a> {
    side: Side,
    model: &'a LoadedModel,
    adapter: Option<&'a Adapter>,
    adapter_dir: Option<PathBuf>,
}

/// The prompt of a dataset row: every message before its last assistant turn, and that turn as the reference.
fn prompt_of(row: &DataRow, what: &str) -> Result<Prompt> {
    let RowBody::Chat(messages) = &row.body else {
        return Err(Error::InvalidInput(format!("{what}, line {}: plain text has no prompt to answer; evaluate rows with a prompt and an answer", row.line)));
    };
    let last = messages.iter().rposition(|m| m.role == Role::Assistant);
    let (context, reference) = match last {
        Some(i) => (messages[..i].to_vec(), Some(messages[i].content.clone())),
        None => (messages.clone(), None),
    };
    if !context.iter().any(|m| m.role == Role::User) {
        return Err(Error::InvalidInput(format!("{what}, line {}: no user message to answer", row.line)));
    }
    Ok(Prompt { line: Some(row.line as u64), messages: context, input: None, reference })
}

impl Api {
    /// Runs an evaluation and stores it; see [`Api::eval_run_with_progress`].
    pub fn eval_run(&self, req: &EvalRequest) -> Result<Evaluation> {
        self.eval_run_with_progress(req, &mut |_| {})
    }

    /// Answers every prompt with every side, scores the answers and measures perplexity, then stores the
    /// evaluation in one transaction. Inputs are checked before any model is loaded.
    pub fn eval_run_with_progress(&self, req: &EvalRequest, progress: &mut dyn FnMut(&EvalProgress)) -> Result<Evaluation> {
        let temperature = req.temperature.unwrap_or(0.0);
        let top_p = req.top_p.unwrap_or(1.0);
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::InvalidInput(format!("temperature {temperature} must be 0 (greedy) or above")));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(Error::InvalidInput(format!("top_p {top_p} must be above 0 and at most 1")));
        }
        let max_new_tokens = req.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
        let max_len = req.max_len.unwrap_or(DEFAULT_MAX_LEN);
        if max_new_tokens == 0 || max_len == 0 {
            return Err(Error::InvalidInput("max_new_tokens and max_len must be at least 1".into()));
        }
        let seed = req.seed.unwrap_or(0);

        // What answers.
        let (model_path, quant, adapter_dir, run_spec) = match (req.run, &req.model) {
            (Some(_), Some(_)) => return Err(Error::InvalidInput("give either a run or a model (with an adapter), not both".into())),
            (Some(id), None) => {
                if req.adapter.is_some() || req.quant.is_some() {
                    return Err(Error::InvalidInput("a run brings its own adapter and quantization; leave out adapter and quant".into()));
                }
                let src = self.export_source(id)?;
                (src.spec.model.clone(), src.spec.settings.quant, Some(src.adapter_dir.clone()), Some(src.spec))
            }
            (None, Some(m)) => {
                let path = self.resolve_model_path(m)?;
                if let Some(a) = &req.adapter {
                    if !a.join("adapter_config.json").is_file() {
                        return Err(Error::InvalidInput(format!("{}: not an adapter folder (no adapter_config.json)", a.display())));
                    }
                }
                (path, req.quant.unwrap_or_default(), req.adapter.clone(), None)
            }
            (None, None) => return Err(Error::InvalidInput("give a run, or a model and an adapter, to evaluate".into())),
        };
        let compare = req.compare_run.map(|id| self.export_source(id)).transpose()?;
        let sides: Vec<Side> = match &req.sides {
            Some(s) => {
                let mut s = s.clone();
                s.sort();
                s.dedup();
                s
            }
            None => {
                let mut s = vec![Side::Base];
                if adapter_dir.is_some() {
                    s.push(Side::Tuned);
                }
                if compare.is_some() {
                    s.push(Side::Compare);
                }
                s
            }
        };
        if sides.is_empty() {
            return Err(Error::InvalidInput("choose at least one side to evaluate (base, tuned, compare)".into()));
        }
        if sides.contains(&Side::Tuned) && adapter_dir.is_none() {
            return Err(Error::InvalidInput("the tuned side needs a run or an adapter".into()));
        }
        if sides.contains(&Side::Compare) != compare.is_some() {
            return Err(Error::InvalidInput("the compare side and compare_run go together: give both or neither".into()));
        }

        // What is answered.
        let mut rows = self.eval_rows(req, run_spec.as_ref())?;
        if let Some(n) = req.limit {
            if n == 0 {
                return Err(Error::InvalidInput("limit must be at least 1".into()));
            }
            rows.prompts.truncate(n);
        }
        if rows.prompts.is_empty() {
            return Err(Error::InvalidInput(format!("{}: no rows to evaluate", rows.source)));
        }
        if req.labels == Some(true) && rows.prompts.iter().all(|p| p.reference.is_none()) {
            return Err(Error::InvalidInput(format!(
                "{}: labels are compared with the reference answers, and these rows have none",
                rows.source
            )));
        }

        let steps_total = rows.prompts.len() * sides.len() + sides.len();
        let mut done = 0usize;
        let mut stage = |name: String, done: usize| progress(&EvalProgress { stage: name, done, total: steps_total });
        stage("loading the model".into(), 0);
        let (model, adapter) = training::load_model_and_adapter(&model_path, quant, adapter_dir.as_deref())?;
        let compare_loaded = match &compare {
            Some(c) if c.spec.model == model_path && c.spec.settings.quant == quant => None,
            Some(c) => Some(load_model(&c.spec.model, c.spec.settings.quant)?),
            None => None,
        };
        let compare_model = compare_loaded.as_ref().unwrap_or(&model);
        let compare_adapter = compare.as_ref().map(|c| load_adapter(compare_model, &c.adapter_dir)).transpose()?;
        let answerers: Vec<Answerer> = sides
            .iter()
            .map(|&side| match side {
                Side::Base => Answerer { side, model: &model, adapter: None, adapter_dir: None },
                Side::Tuned => Answerer { side, model: &model, adapter: adapter.as_ref(), adapter_dir: adapter_dir.clone() },
                Side::Compare => Answerer {
                    side,
                    model: compare_model,
                    adapter: compare_adapter.as_ref(),
                    adapter_dir: compare.as_ref().map(|c| c.adapter_dir.clone()),
                },
            })
            .collect();

        let wordnet_dir = default_wordnet_dir();
        let options = ScoreOptions {
            meteor: MeteorOptions { wordnet: wordnet_dir.as_deref().map(WordNet::open).transpose()?, ..Default::default() },
            ..Default::default()
        };
        let scored: Vec<usize> = (0..rows.prompts.len()).filter(|&i| rows.prompts[i].reference.is_some()).collect();
        let labels = req.labels.unwrap_or(false);
        let references: Vec<Vec<String>> = scored.iter().map(|&i| vec![rows.prompts[i].reference.clone().unwrap_or_default()]).collect();
        let loss_rows: Vec<DataRow> = rows
            .prompts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let reference = p.reference.as_ref()?;
                let mut messages = p.messages.clone();
                messages.push(Message::assistant(reference.clone()));
                Some(DataRow { line: i + 1, body: RowBody::Chat(messages), split: None })
            })
            .collect();

        let mut outputs: Vec<Vec<OutputRecord>> = (0..rows.prompts.len()).map(|_| Vec::new()).collect();
        let mut metrics = Vec::new();
        for a in &answerers {
            let mut texts = Vec::with_capacity(rows.prompts.len());
            let mut generated = 0u64;
            for (i, p) in rows.prompts.iter().enumerate() {
                stage(format!("{} answers prompt {} of {}", a.side.as_str(), i + 1, rows.prompts.len()), done);
                // Each item samples from its own seed, the same for every side, so sides are compared on equal terms.
                let opts = SamplingOptions { temperature, top_p, max_new_tokens, seed: seed.wrapping_add(i as u64) };
                let (text, n) = training::generate_chat(a.model, a.adapter, &p.messages, &opts, |_| {})?;
                generated += n as u64;
                texts.push((text, n));
                done += 1;
            }
            stage(format!("{}: perplexity on the references", a.side.as_str()), done);
            let (loss, loss_tokens, dropped) = if loss_rows.is_empty() {
                (None, 0, 0)
            } else {
                match training::eval_loss_rows(a.model, a.adapter, &loss_rows, max_len, &rows.source) {
                    Ok(r) => (Some(r.loss), r.tokens, r.dropped.len()),
                    // Every reference longer than max_len: no perplexity, but the answers still count.
                    Err(Error::InvalidInput(_)) => (None, 0, loss_rows.len()),
                    Err(e) => return Err(e),
                }
            };
            done += 1;
            let predictions: Vec<&str> = scored.iter().map(|&i| texts[i].0.as_str()).collect();
            let scores = if scored.is_empty() { None } else { Some(score_with(&predictions, &references, &options)?) };
            let label_metrics = if labels {
                let truth: Vec<&str> = references.iter().map(|r| r[0].trim()).collect();
                let said: Vec<&str> = predictions.iter().map(|p| p.trim()).collect();
                Some(LabelMetrics::from(&label_report(&truth, &said)?))
            } else {
                None
            };
            let mut item_scores = vec![None; rows.prompts.len()];
            if let Some(s) = &scores {
                for (&i, item) in scored.iter().zip(&s.items) {
                    item_scores[i] = Some(ItemMetrics::from(item));
                }
            }
            for (i, (text, n)) in texts.into_iter().enumerate() {
                let scores = item_scores[i].as_ref().map(to_value).transpose()?;
                outputs[i].push(OutputRecord { side: a.side.as_str().into(), text, tokens: n as u64, scores });
            }
            metrics.push(SideMetrics {
                side: a.side,
                model: a.model.path.display().to_string(),
                adapter: a.adapter_dir.as_ref().map(|d| d.display().to_string()),
                loss,
                perplexity: loss.map(f64::exp),
                loss_tokens,
                loss_rows_dropped: dropped,
                generated_tokens: generated,
                text: scores.as_ref().map(TextMetrics::from),
                labels: label_metrics,
            });
        }
        stage("saving".into(), done);

        let items: Vec<EvaluationItem> = rows
            .prompts
            .iter()
            .zip(outputs)
            .enumerate()
            .map(|(i, (p, outputs))| {
                Ok(EvaluationItem {
                    position: i as u32 + 1,
                    line: p.line,
                    messages: to_value(&p.messages)?,
                    prompt: p.text(),
                    input: p.input.clone(),
                    reference: p.reference.clone(),
                    outputs,
                })
            })
            .collect::<Result<_>>()?;
        let settings = serde_json::json!({
            "sides": sides,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "max_new_tokens": max_new_tokens,
            "max_len": max_len,
            "quant": quant,
            "limit": req.limit,
            "labels": labels,
            "chat_template_fallback": model.tokenizer.chat_template().is_fallback(),
            "wordnet": wordnet_dir,
        });
        let new = NewEvaluation {
            run_id: req.run,
            compare_run_id: req.compare_run,
            model: model.path.display().to_string(),
            adapter: adapter_dir.as_ref().map(|d| d.display().to_string()),
            dataset_id: rows.dataset_id,
            dataset_version: rows.dataset_version,
            split: rows.split.map(|s| s.as_str().to_string()),
            source: rows.source.clone(),
            settings,
            metrics: metrics.iter().map(|m| Ok(SideRecord { side: m.side.as_str().into(), metrics: to_value(m)? })).collect::<Result<_>>()?,
        };
        let stored = self.store().insert_evaluation(&new, &items)?;
        stage("done".into(), steps_total);
        evaluation_from(stored)
    }

    /// The rows an evaluation answers: given ones, a file, a dataset version's split, or by default what the
    /// run held out (the test split of the dataset version it trained on, else its validation file).
    fn eval_rows(&self, req: &EvalRequest, run: Option<&crate::JobSpec>) -> Result<Rows> {
        let given = [req.rows.is_some(), req.data.is_some(), req.dataset.is_some()].iter().filter(|&&b| b).count();
        if given > 1 {
            return Err(Error::InvalidInput("give the rows one way: rows, data or dataset".into()));
        }
        if req.dataset.is_none() && (req.version.is_some() || req.split.is_some()) {
            return Err(Error::InvalidInput("version and split choose rows of a dataset; give the dataset too".into()));
        }
        if let Some(rows) = &req.rows {
            let prompts = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    if r.prompt.trim().is_empty() {
                        return Err(Error::InvalidInput(format!("row {}: the prompt is empty", i + 1)));
                    }
                    let mut messages = Vec::new();
                    if let Some(s) = &r.system {
                        messages.push(Message::system(s.clone()));
                    }
                    messages.push(Message::user(r.prompt.clone()));
                    Ok(Prompt { line: None, messages, input: r.input.clone(), reference: r.reference.clone() })
                })
                .collect::<Result<Vec<_>>>()?;
            let source = format!("{} given row{}", rows.len(), if rows.len() == 1 { "" } else { "s" });
            return Ok(Rows { prompts, source, dataset_id: None, dataset_version: None, split: None });
        }
        if let Some(path) = &req.data {
            return self.file_rows(path);
        }
        if let Some(dataset) = &req.dataset {
            let split = match req.split.as_deref() {
                None => Split::Test,
                Some(s) => Split::parse(s).ok_or_else(|| Error::InvalidInput(format!("unknown split `{s}`; use train, val or test")))?,
            };
            return self.dataset_rows(dataset, req.version, split);
        }
        let Some(spec) = run else {
            return Err(Error::InvalidInput("give the rows to evaluate: rows, data or dataset".into()));
        };
        if let Some((id, version)) = self.trained_version(&spec.data) {
            let rows = self.dataset_rows(&id.to_string(), Some(version), Split::Test);
            if rows.as_ref().is_ok_and(|r| !r.prompts.is_empty()) {
                return rows;
            }
        }
        match &spec.val {
            Some(val) => self.file_rows(val),
            None => Err(Error::InvalidInput(format!(
                "run {} held nothing out (no test split, no validation file); give the rows to evaluate: rows, data or dataset",
                spec.run_id
            ))),
        }
    }

    fn file_rows(&self, path: &Path) -> Result<Rows> {
        let what = path.display().to_string();
        let prompts = read_training_rows(path)?.iter().map(|r| prompt_of(r, &what)).collect::<Result<_>>()?;
        Ok(Rows { prompts, source: what, dataset_id: None, dataset_version: None, split: None })
    }

    fn dataset_rows(&self, dataset: &str, version: Option<u32>, split: Split) -> Result<Rows> {
        let (d, v, rows) = self.load_version(dataset, version)?;
        if !rows.iter().any(|r| r.split.is_some()) {
            return Err(Error::InvalidInput(format!(
                "version {} of `{}` is not split into train, validation and test; split it (`whet data split`) or give rows",
                v.version, d.name
            )));
        }
        let what = format!("dataset `{}` version {}", d.name, v.version);
        let prompts = rows.iter().filter(|r| r.split == Some(split)).map(|r| prompt_of(r, &what)).collect::<Result<_>>()?;
        Ok(Rows { prompts, source: format!("{what}, {split} split"), dataset_id: Some(d.id), dataset_version: Some(v.version), split: Some(split) })
    }

    /// The dataset version a training file was written for (`<home>/datasets/<id>/v<k>.train.jsonl`).
    fn trained_version(&self, data: &Path) -> Option<(i64, u32)> {
        let dir = data.parent()?;
        let root = dir.parent()?;
        let datasets = self.datasets_dir();
        if root != datasets && datasets.canonicalize().ok().as_deref() != Some(root) {
            return None;
        }
        let id = dir.file_name()?.to_str()?.parse().ok()?;
        let version = data.file_name()?.to_str()?.strip_prefix('v')?.strip_suffix(".train.jsonl")?.parse().ok()?;
        Some((id, version))
    }

    pub fn get_evaluation(&self, id: i64) -> Result<Evaluation> {
        evaluation_from(self.store().get_evaluation(id)?)
    }

    /// Evaluations, newest first; with `run`, those in which it answered.
    pub fn list_evaluations(&self, run: Option<i64>) -> Result<Vec<Evaluation>> {
        self.store().list_evaluations(run)?.into_iter().map(evaluation_from).collect()
    }

    /// An evaluation with every item's prompt, reference and answers.
    pub fn eval_results(&self, id: i64) -> Result<EvalResults> {
        let evaluation = self.get_evaluation(id)?;
        let items = self.store().evaluation_items(id)?;
        let items = items.into_iter().map(|i| item_from(id, i)).collect::<Result<_>>()?;
        Ok(EvalResults { evaluation, items })
    }

    /// Every item's answers as a table: CSV with one line per item and side, or JSON lines with one item each.
    pub fn eval_export(&self, id: i64, format: TableFormat) -> Result<String> {
        let results = self.eval_results(id)?;
        match format {
            TableFormat::Jsonl => {
                let mut out = String::new();
                for item in &results.items {
                    out.push_str(&serde_json::to_string(item).map_err(|e| Error::Internal(e.to_string()))?);
                    out.push('\n');
                }
                Ok(out)
            }
            TableFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let header = [
                    "position", "line", "side", "prompt", "reference", "output", "tokens", "bleu", "chrf", "rouge1", "rouge2", "rouge_l",
                    "rouge_lsum", "meteor", "exact_match", "f1",
                ];
                let csv_err = |e: csv::Error| Error::Internal(format!("cannot write CSV: {e}"));
                w.write_record(header).map_err(csv_err)?;
                for item in &results.items {
                    for o in &item.outputs {
                        let num = |f: fn(&ItemMetrics) -> f64| o.scores.as_ref().map(|s| f(s).to_string()).unwrap_or_default();
                        w.write_record([
                            item.position.to_string(),
                            item.line.map(|l| l.to_string()).unwrap_or_default(),
                            o.side.as_str().to_string(),
                            item.prompt.clone(),
                            item.reference.clone().unwrap_or_default(),
                            o.text.clone(),
                            o.tokens.to_string(),
                            num(|s| s.bleu),
                            num(|s| s.chrf),
                            num(|s| s.rouge1),
                            num(|s| s.rouge2),
                            num(|s| s.rouge_l),
                            num(|s| s.rouge_lsum),
                            num(|s| s.meteor),
                            num(|s| s.exact_match),
                            num(|s| s.f1),
                        ])
                        .map_err(csv_err)?;
                    }
                }
                let bytes = w.into_inner().map_err(|e| Error::Internal(format!("cannot write CSV: {e}")))?;
                String::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))
            }
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("cannot encode as JSON: {e}")))
}

fn corrupt(id: i64, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Store(whetstone_store::Error::Corrupt { what: "evaluation", id, reason: format!("{what}: {e}") })
}

fn evaluation_from(e: whetstone_store::Evaluation) -> Result<Evaluation> {
    let sides = e
        .metrics
        .iter()
        .map(|m| serde_json::from_value::<SideMetrics>(m.metrics.clone()).map_err(|err| corrupt(e.id, "metrics", err)))
        .collect::<Result<_>>()?;
    Ok(Evaluation {
        id: e.id,
        run_id: e.run_id,
        compare_run_id: e.compare_run_id,
        model: e.model,
        adapter: e.adapter,
        dataset_id: e.dataset_id,
        dataset_version: e.dataset_version,
        split: e.split,
        source: e.source,
        settings: e.settings,
        sides,
        items: e.items,
        created_at: e.created_at,
    })
}

pub(crate) fn item_from(id: i64, i: EvaluationItem) -> Result<EvalItem> {
    let outputs = i
        .outputs
        .into_iter()
        .map(|o| {
            Ok(EvalOutput {
                side: Side::parse(&o.side).map_err(|e| corrupt(id, "side", e))?,
                text: o.text,
                tokens: o.tokens,
                scores: o.scores.map(serde_json::from_value).transpose().map_err(|e| corrupt(id, "scores", e))?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(EvalItem {
        position: i.position,
        line: i.line,
        messages: serde_json::from_value(i.messages).map_err(|e| corrupt(id, "messages", e))?,
        prompt: i.prompt,
        input: i.input,
        reference: i.reference,
        outputs,
    })
}
