//! Augmentation: variations of chosen rows of a dataset version, written by a local model (an installed model,
//! or a run's base model with its tuned adapter) through the model's own chat template. Each variation is the
//! source row with one part rewritten (the question by default when paraphrasing, the answer when following
//! the user's instruction), and it waits in a review queue ([`crate::queue`]) with its source row, the prompt
//! that made it, the model and the seed; nothing enters a version until a person accepts or edits it.

use crate::error::{Error, Result};
use crate::queue::{public_json, read_row, QueueItems, QueueKind, RowPart, Synthetic};
use crate::training::{self, load_adapter, load_model};
use crate::Api;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use whetstone_data::{DataRow, Message, Role, RowBody};
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::quant::QuantMode;
use whetstone_store::NewQueueItem;

/// The most rows one request varies.
pub const MAX_ROWS: usize = 50;
/// The most variations of one row.
pub const MAX_PER_ROW: usize = 10;
/// The most variations one request writes, all rows together: generation runs while the caller waits.
pub const MAX_CANDIDATES: usize = 100;
pub const DEFAULT_TEMPERATURE: f64 = 0.8;
pub const DEFAULT_MAX_NEW_TOKENS: usize = 256;
const MAX_NEW_TOKENS_LIMIT: usize = 2048;
const MAX_INSTRUCTION_CHARS: usize = 500;

/// What the model is asked to do with the text.
pub const SYSTEM_PROMPT: &str =
    "You rewrite text for a training dataset. Reply with the rewritten text only: no introduction, no quotation marks, no notes.";

/// How to vary a row: `"paraphrase"` or `{"rewrite": {"instruction": "friendlier, simpler"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum AugmentMode {
    /// The same meaning in other words.
    Paraphrase,
    /// Rewritten as the instruction says.
    Rewrite(RewriteInstruction),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RewriteInstruction {
    /// What to change, in the user's words: "friendlier, simpler".
    pub instruction: String,
}

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct AugmentRequest {
    /// Dataset name or id.
    pub dataset: String,
    /// The latest version when absent.
    #[serde(default)]
    #[ts(optional)]
    pub version: Option<u32>,
    /// 1-based positions of the rows to vary (as `data_rows` numbers them), at most 50.
    pub rows: Vec<usize>,
    pub mode: AugmentMode,
    /// What to rewrite in a conversation: the question (the default for paraphrase) or the answer (the
    /// default for rewrite). A plain-text row is rewritten whole.
    #[serde(default)]
    #[ts(optional)]
    pub part: Option<RowPart>,
    /// Variations of each row, 1 to 10; at most 100 in all.
    pub per_row: usize,
    /// An installed model (id, name or hub id) or a model file or folder; the bundled model when neither
    /// this nor `run` is given.
    #[serde(default)]
    #[ts(optional)]
    pub model: Option<String>,
    /// A finished run: its base model with its tuned adapter writes the variations.
    #[serde(default)]
    #[ts(optional)]
    pub run: Option<i64>,
    /// 0 writes the one most likely text; higher varies more (default 0.8, at most 2).
    #[serde(default)]
    #[ts(optional)]
    pub temperature: Option<f64>,
    /// Each variation samples from `seed` plus its place in the queue, so the same request writes the same rows.
    #[serde(default)]
    #[ts(optional)]
    pub seed: Option<u64>,
    /// The longest variation, in tokens (default 256).
    #[serde(default)]
    #[ts(optional)]
    pub max_new_tokens: Option<usize>,
}

/// How far the writing has come, for progress bars.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct AugmentProgress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
}

/// The message that asks for one variation of `text`.
pub fn variation_prompt(mode: &AugmentMode, text: &str) -> String {
    match mode {
        AugmentMode::Paraphrase => {
            format!("Say the following in other words. Keep its meaning, its language and every fact in it.\n\nText:\n{text}")
        }
        AugmentMode::Rewrite(RewriteInstruction { instruction }) => format!(
            "Rewrite the following text. What to change: {}. Keep its language and every fact in it.\n\nText:\n{text}",
            instruction.trim().trim_end_matches('.')
        ),
    }
}

/// The message of `row` that `part` names (its last one of that role), or why the row has none.
fn part_index(row: &DataRow, part: RowPart) -> std::result::Result<Option<usize>, String> {
    let RowBody::Chat(messages) = &row.body else { return Ok(None) };
    let role = match part {
        RowPart::Prompt => Role::User,
        RowPart::Answer => Role::Assistant,
    };
    match messages.iter().rposition(|m| m.role == role) {
        Some(i) => Ok(Some(i)),
        None => Err(match part {
            RowPart::Prompt => "has no question (user message) to vary; choose the answer instead".into(),
            RowPart::Answer => "has no answer (assistant message) to vary; choose the question instead".into(),
        }),
    }
}

impl Api {
    /// Writes the variations into a new review queue; see [`Api::augment_start_with_progress`].
    pub fn augment_start(&self, req: &AugmentRequest) -> Result<QueueItems> {
        self.augment_start_with_progress(req, &mut |_| {})
    }

    /// Checks the request, loads the model, writes `per_row` variations of each chosen row and stores them
    /// as a review queue over the version. Every input is checked before the model is loaded.
    pub fn augment_start_with_progress(&self, req: &AugmentRequest, progress: &mut dyn FnMut(&AugmentProgress)) -> Result<QueueItems> {
        if req.rows.is_empty() {
            return Err(Error::InvalidInput("choose at least one row to make variations of".into()));
        }
        if req.rows.len() > MAX_ROWS {
            return Err(Error::InvalidInput(format!("{} rows chosen; make variations of at most {MAX_ROWS} rows at a time", req.rows.len())));
        }
        if req.per_row == 0 || req.per_row > MAX_PER_ROW {
            return Err(Error::InvalidInput(format!("variations per row must be from 1 to {MAX_PER_ROW}, not {}", req.per_row)));
        }
        let total = req.rows.len() * req.per_row;
        if total > MAX_CANDIDATES {
            return Err(Error::InvalidInput(format!(
                "{} rows × {} variations is {total}; ask for at most {MAX_CANDIDATES} at a time",
                req.rows.len(),
                req.per_row
            )));
        }
        let temperature = req.temperature.unwrap_or(DEFAULT_TEMPERATURE);
        if !(temperature.is_finite() && (0.0..=2.0).contains(&temperature)) {
            return Err(Error::InvalidInput(format!("temperature {temperature} must be from 0 to 2")));
        }
        if temperature == 0.0 && req.per_row > 1 {
            return Err(Error::InvalidInput(
                "at temperature 0 every variation of a row would be the same; raise the temperature or ask for one per row".into(),
            ));
        }
        let max_new_tokens = req.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
        if max_new_tokens == 0 || max_new_tokens > MAX_NEW_TOKENS_LIMIT {
            return Err(Error::InvalidInput(format!("max_new_tokens must be from 1 to {MAX_NEW_TOKENS_LIMIT}")));
        }
        let (mode_name, instruction) = match &req.mode {
            AugmentMode::Paraphrase => ("paraphrase", None),
            AugmentMode::Rewrite(RewriteInstruction { instruction }) => {
                let i = instruction.trim();
                if i.is_empty() {
                    return Err(Error::InvalidInput("say how to rewrite the rows, e.g. \"friendlier, simpler\"".into()));
                }
                if i.chars().count() > MAX_INSTRUCTION_CHARS {
                    return Err(Error::InvalidInput(format!("the instruction is longer than {MAX_INSTRUCTION_CHARS} characters")));
                }
                ("rewrite", Some(i.to_string()))
            }
        };
        let part = req.part.unwrap_or(match req.mode {
            AugmentMode::Paraphrase => RowPart::Prompt,
            AugmentMode::Rewrite(_) => RowPart::Answer,
        });
        let seed = req.seed.unwrap_or(0);

        let (d, v, rows) = self.load_version(&req.dataset, req.version)?;
        let mut seen = std::collections::BTreeSet::new();
        let mut sources = Vec::with_capacity(req.rows.len());
        for &r in &req.rows {
            if r == 0 || r > rows.len() {
                return Err(Error::InvalidInput(format!(
                    "row {r} is out of range: version {} of `{}` has rows 1 to {}",
                    v.version,
                    d.name,
                    rows.len()
                )));
            }
            if !seen.insert(r) {
                return Err(Error::InvalidInput(format!("row {r} is chosen twice")));
            }
            let row = &rows[r - 1];
            let at = part_index(row, part).map_err(|why| Error::InvalidInput(format!("row {r} {why}")))?;
            let text = match (&row.body, at) {
                (RowBody::Chat(m), Some(i)) => m[i].content.clone(),
                (RowBody::Text(t), _) => t.clone(),
                (RowBody::Chat(_), None) => unreachable!("part_index finds a message in every conversation or fails"),
            };
            sources.push((r, row, at, text));
        }

        // What writes.
        let (model_path, quant, adapter_dir) = match (req.run, &req.model) {
            (Some(_), Some(_)) => return Err(Error::InvalidInput("give either a run or a model, not both".into())),
            (Some(id), None) => {
                let src = self.export_source(id)?;
                (src.spec.model.clone(), src.spec.settings.quant, Some(src.adapter_dir.clone()))
            }
            (None, Some(m)) => (self.resolve_model_path(m)?, QuantMode::default(), None),
            (None, None) => match &self.default_model_path {
                Some(p) if p.is_file() => (p.clone(), QuantMode::default(), None),
                _ => return Err(Error::NoModel("choose the model that writes the variations: an installed model or a finished run".into())),
            },
        };

        let mut stage = |stage: String, done: usize| progress(&AugmentProgress { stage, done, total });
        stage("loading the model".into(), 0);
        let model = load_model(&model_path, quant)?;
        let adapter = adapter_dir.as_deref().map(|dir| load_adapter(&model, dir)).transpose()?;
        let model_name = model.path.display().to_string();
        let adapter_name = adapter_dir.as_ref().map(|p: &PathBuf| p.display().to_string());

        let mut items = Vec::with_capacity(total);
        for (r, row, at, text) in &sources {
            let prompt = variation_prompt(&req.mode, text);
            let messages = vec![Message::system(SYSTEM_PROMPT), Message::user(prompt.clone())];
            for k in 0..req.per_row {
                stage(format!("row {r}: variation {} of {}", k + 1, req.per_row), items.len());
                let item_seed = seed.wrapping_add(items.len() as u64);
                let opts = SamplingOptions { temperature, top_p: 1.0, max_new_tokens, seed: item_seed };
                let (written, tokens) = training::generate_chat(&model, adapter.as_ref(), &messages, &opts, |_| {})?;
                let written = written.trim().to_string();
                let mut candidate = (*row).clone();
                match (&mut candidate.body, at) {
                    (RowBody::Chat(m), Some(i)) => m[*i].content = written.clone(),
                    (RowBody::Text(t), _) => *t = written.clone(),
                    (RowBody::Chat(_), None) => unreachable!("checked above"),
                }
                // What the model wrote is checked the way an import checks a row; a row that would not
                // import waits with the reason, to be edited or rejected.
                let problem = if written.is_empty() {
                    Some("the model wrote nothing".to_string())
                } else {
                    read_row(&public_json(&candidate.body)).err()
                };
                let synthetic = Synthetic {
                    source_row: *r as u32,
                    mode: mode_name.into(),
                    instruction: instruction.clone(),
                    part: matches!(row.body, RowBody::Chat(_)).then_some(part),
                    system: SYSTEM_PROMPT.into(),
                    prompt: prompt.clone(),
                    model: model_name.clone(),
                    adapter: adapter_name.clone(),
                    run: req.run,
                    seed: item_seed,
                    temperature,
                    tokens: tokens as u64,
                };
                let provenance = serde_json::to_value(&synthetic).map_err(|e| Error::Internal(format!("cannot encode provenance: {e}")))?;
                items.push(NewQueueItem { source_row: *r as u32, row: candidate.to_json(), provenance: Some(provenance), problem });
            }
        }
        stage("saving the queue".into(), items.len());
        let settings = json!({
            "mode": mode_name,
            "instruction": instruction,
            "part": part,
            "rows": req.rows,
            "per_row": req.per_row,
            "model": model_name,
            "adapter": adapter_name,
            "run": req.run,
            "quant": quant,
            "temperature": temperature,
            "seed": seed,
            "max_new_tokens": max_new_tokens,
            "chat_template_fallback": model.tokenizer.chat_template().is_fallback(),
        });
        let queue = self.create_queue(QueueKind::Augment, &d, v.version, settings, &items)?;
        stage("done".into(), total);
        Ok(queue)
    }
}
