//! Training, evaluation and generation on model and data files: the engine and the data crate put
//! together, so that the CLI and the desktop app translate arguments and nothing more.

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use whetstone_data::{build_training_examples, read_training_rows, DataRow, DroppedRow, Examples, Message, Tokenizer};
use whetstone_engine::batch::collate;
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::run::{TrainExample, TrainSettings};
use whetstone_engine::quant::QuantMode;
use whetstone_engine::{Adapter, Decoder, LoraCtx, ModelFiles};

/// A base model ready to run, with its tokenizer and chat template.
pub struct LoadedModel {
    pub decoder: Decoder,
    pub tokenizer: Tokenizer,
    pub path: PathBuf,
    /// What adapters record as `base_model_name_or_path`.
    pub name: String,
}

/// Loads a model folder or GGUF file on the best device this build can use (see
/// [`whetstone_engine::device::best`]), with its own tokenizer; the base's linear layers are held as
/// `quant` says.
pub fn load_model(path: &Path, quant: QuantMode) -> Result<LoadedModel> {
    let (device, dtype) = whetstone_engine::device::best();
    load_model_on(path, quant, &device, dtype)
}

/// [`load_model`] on a given device, computing in `dtype`.
pub fn load_model_on(path: &Path, quant: QuantMode, device: &candle_core::Device, dtype: candle_core::DType) -> Result<LoadedModel> {
    let files = ModelFiles::detect(path)?;
    files.config()?;
    let tokenizer = match &files {
        ModelFiles::Gguf(p) => Tokenizer::from_gguf_file(p)?,
        ModelFiles::HfDir(d) => Tokenizer::from_hf_dir(d)?,
    };
    let decoder = Decoder::load_quant(&files, dtype, device, quant)?;
    if tokenizer.vocab_size() > decoder.config.vocab_size {
        return Err(Error::InvalidInput(format!(
            "{}: the tokenizer has {} tokens but the model only {}",
            path.display(),
            tokenizer.vocab_size(),
            decoder.config.vocab_size
        )));
    }
    let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string());
    Ok(LoadedModel { decoder, tokenizer, path: files.path().to_path_buf(), name })
}

/// Padding id for batches: the model's pad token, else end-of-sequence, else 0. Padded positions
/// are masked out of attention and loss, so any valid id works.
pub fn pad_id(tok: &Tokenizer) -> u32 {
    tok.pad_id().or(tok.eos_id()).unwrap_or(0)
}

pub fn to_train(e: whetstone_data::Example) -> TrainExample {
    TrainExample { ids: e.input_ids, trained: e.loss_mask }
}

/// `--data` for training: a JSONL file as it is, or else the name (or id) of an imported dataset, whose latest
/// version's training rows are used (see [`crate::Api::dataset_training_file`]).
pub fn resolve_training_data(api: &crate::Api, name_or_path: &Path) -> Result<PathBuf> {
    resolve_data(api, name_or_path, whetstone_data::Split::Train)
}

/// `--val` for training: a file as it is, or else an imported dataset's name, whose latest version's
/// validation split is used, so that `--data NAME --val NAME` trains on one split and checks on the other.
pub fn resolve_validation_data(api: &crate::Api, name_or_path: &Path) -> Result<PathBuf> {
    resolve_data(api, name_or_path, whetstone_data::Split::Val)
}

fn resolve_data(api: &crate::Api, name_or_path: &Path, split: whetstone_data::Split) -> Result<PathBuf> {
    if name_or_path.is_file() {
        return Ok(name_or_path.to_path_buf());
    }
    let name = name_or_path.to_string_lossy();
    let flag = if split == whetstone_data::Split::Val { "--val" } else { "--data" };
    api.dataset_split_file(&name, split).map_err(|e| match e {
        Error::NotFoundNamed { known, .. } => Error::InvalidInput(format!(
            "{flag} {name}: no such file, and no dataset by that name (datasets: {known})"
        )),
        other => other,
    })
}

/// The rows of a training file as examples fitted to `max_len` (see [`whetstone_data::fit`]), with
/// the rows the limit leaves out. Any file the one reader accepts will do.
pub fn load_examples(model: &LoadedModel, data: &Path, max_len: usize, truncate_prompt: bool) -> Result<Examples> {
    let rows = read_training_rows(data)?;
    Ok(build_training_examples(&model.tokenizer, &rows, max_len, truncate_prompt)?)
}

/// The examples a run trains on: rows that do not fit are reported, or with `strict` refused; a
/// file left with no row at all is an error that says which length would keep them.
pub fn training_examples(model: &LoadedModel, data: &Path, settings: &TrainSettings) -> Result<Examples> {
    let built = load_examples(model, data, settings.max_len, settings.truncate_prompt)?;
    if built.dropped.is_empty() {
        return Ok(built);
    }
    let keep_all = built.length_keeping_all().unwrap_or(settings.max_len);
    if settings.strict_rows || built.kept.is_empty() {
        return Err(Error::RowsTooLong {
            path: data.to_path_buf(),
            max_len: settings.max_len,
            rows: built.kept.len() + built.dropped.len(),
            dropped: built.dropped,
            keep_all,
        });
    }
    Ok(built)
}

/// What a run says about rows that do not fit, in plain words: which, how long, and what would keep them.
pub fn dropped_rows_message(data: &Path, dropped: &[DroppedRow], max_len: usize) -> String {
    let keep_all = dropped.iter().map(|d| d.first_trained + 1).max().unwrap_or(max_len);
    format!(
        "{} of {}: {}. {} left out of training. {}",
        count_rows(dropped.len()),
        data.display(),
        too_long(dropped, max_len),
        if dropped.len() == 1 { "It is" } else { "They are" },
        keep_them(keep_all),
    )
}

pub(crate) fn rows_too_long_message(data: &Path, rows: usize, dropped: &[DroppedRow], max_len: usize, keep_all: usize) -> String {
    let what = if dropped.len() == rows { "no row is left to train on".to_string() } else { "the run was refused (strict-rows)".to_string() };
    format!("{}: {} of {rows}: {}; {what}. {}", data.display(), count_rows(dropped.len()), too_long(dropped, max_len), keep_them(keep_all))
}

fn count_rows(n: usize) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

fn too_long(dropped: &[DroppedRow], max_len: usize) -> String {
    let listed: Vec<String> = dropped.iter().take(10).map(|d| format!("line {} ({} tokens)", d.line, d.tokens)).collect();
    let more = if dropped.len() > 10 { format!(" and {} more", dropped.len() - 10) } else { String::new() };
    format!("no answer token within the maximum length of {max_len} tokens: {}{more}", listed.join(", "))
}

fn keep_them(keep_all: usize) -> String {
    format!("A maximum length of {keep_all} tokens keeps every row; or cut long prompts from their start (truncate-prompt).")
}

#[derive(Debug, Clone, Serialize)]
pub struct RowLoss {
    /// Line of the row in the data file.
    pub line: usize,
    pub loss: f64,
    pub tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Mean over all response tokens of all rows.
    pub loss: f64,
    pub tokens: usize,
    pub perplexity: f64,
    pub rows: Vec<RowLoss>,
    /// Rows with no answer token within the maximum length, which are not measured.
    pub dropped: Vec<DroppedRow>,
}

/// Mean loss over response tokens, with and without an adapter; no gradients are recorded.
pub fn eval_loss(model: &LoadedModel, adapter: Option<&Adapter>, data: &Path, max_len: usize) -> Result<EvalReport> {
    let rows = read_training_rows(data)?;
    eval_loss_rows(model, adapter, &rows, max_len, &data.display().to_string())
}

/// [`eval_loss`] over rows already read (an evaluation's prompts with their references); `source` names them
/// in the error when none has an answer token to measure.
pub fn eval_loss_rows(model: &LoadedModel, adapter: Option<&Adapter>, rows: &[DataRow], max_len: usize, source: &str) -> Result<EvalReport> {
    let Examples { kept, dropped } = build_training_examples(&model.tokenizer, rows, max_len, false)?;
    let examples: Vec<(usize, TrainExample)> = kept.into_iter().map(|(l, e)| (l, to_train(e))).collect();
    let ctx = adapter.map(|a| LoraCtx { adapter: a, train: false, dropout: None });
    let pad = pad_id(&model.tokenizer);
    let mut rows = Vec::with_capacity(examples.len());
    let (mut sum, mut tokens) = (0f64, 0usize);
    for chunk in examples.chunks(4) {
        let refs: Vec<(&[u32], &[bool])> = chunk.iter().map(|(_, e)| (e.ids.as_slice(), e.trained.as_slice())).collect();
        let b = collate(&refs, pad, &model.decoder.device)?;
        let losses = model.decoder.row_losses(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, ctx.as_ref())?;
        for ((line, _), (loss, n)) in chunk.iter().zip(losses) {
            if n > 0 {
                sum += loss * n as f64;
                tokens += n;
            }
            rows.push(RowLoss { line: *line, loss, tokens: n });
        }
    }
    if tokens == 0 {
        return Err(Error::InvalidInput(format!("{source}: no response tokens to evaluate")));
    }
    let loss = sum / tokens as f64;
    Ok(EvalReport { loss, tokens, perplexity: loss.exp(), rows, dropped })
}

pub fn load_adapter(model: &LoadedModel, dir: &Path) -> Result<Adapter> {
    Ok(Adapter::load_peft(dir, &model.decoder.config, &model.decoder.device)?)
}

/// A base model and, when `adapter_dir` is given, the adapter trained on it: one model in memory
/// answers as both base and tuned, since the adapter is applied only when asked for.
pub fn load_model_and_adapter(path: &Path, quant: QuantMode, adapter_dir: Option<&Path>) -> Result<(LoadedModel, Option<Adapter>)> {
    let model = load_model(path, quant)?;
    let adapter = adapter_dir.map(|d| load_adapter(&model, d)).transpose()?;
    Ok((model, adapter))
}

/// The chat-templated prompt for one user message, as token ids.
pub fn prompt_ids(model: &LoadedModel, user: &str) -> Result<Vec<u32>> {
    chat_prompt_ids(model, &[Message::user(user)])
}

/// The chat-templated prompt for a conversation (system and earlier turns included), ready for the answer.
pub fn chat_prompt_ids(model: &LoadedModel, messages: &[Message]) -> Result<Vec<u32>> {
    let tok = &model.tokenizer;
    let text = tok.chat_template().render(messages, true)?;
    let mut ids = tok.encode(&text, false)?;
    if tok.adds_bos() && !text.starts_with(tok.chat_template().bos_token()) {
        if let Some(bos) = tok.bos_id() {
            ids.insert(0, bos);
        }
    }
    Ok(ids)
}

/// Answers `user` through the model's chat template; `on_text` receives the text as it is produced.
pub fn generate(
    model: &LoadedModel,
    adapter: Option<&Adapter>,
    user: &str,
    opts: &SamplingOptions,
    on_text: impl FnMut(&str),
) -> Result<String> {
    Ok(generate_chat(model, adapter, &[Message::user(user)], opts, on_text)?.0)
}

/// Answers the conversation `messages` through the model's chat template; returns the text and how many
/// tokens were generated.
pub fn generate_chat(
    model: &LoadedModel,
    adapter: Option<&Adapter>,
    messages: &[Message],
    opts: &SamplingOptions,
    mut on_text: impl FnMut(&str),
) -> Result<(String, usize)> {
    let ids = chat_prompt_ids(model, messages)?;
    let ctx = adapter.map(|a| LoraCtx { adapter: a, train: false, dropout: None });
    let mut stream = model.tokenizer.stream(true);
    let mut out = String::new();
    let mut failed = None;
    let generated = whetstone_engine::generate::generate(&model.decoder, &ids, &model.tokenizer.stop_ids(), opts, ctx.as_ref(), |id| {
        match stream.push(id) {
            Ok(Some(piece)) => {
                on_text(&piece);
                out.push_str(&piece);
            }
            Ok(None) => {}
            Err(e) => {
                failed = Some(e);
                return false;
            }
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(rest) = stream.finish()? {
        on_text(&rest);
        out.push_str(&rest);
    }
    Ok((out, generated.len()))
}

