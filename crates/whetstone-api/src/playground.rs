//! The playground: one prompt answered by a run's base model and by the same model with the run's
//! adapter, side by side, through the model's chat template. Both answers are generated at once (a
//! thread each) and pushed to a listener as they grow, so the two columns fill together; the window
//! receives them over a Channel, a browser as server-sent events, and `playground` in the command
//! table returns them whole.

use crate::error::{Error, Result};
use crate::training::{self, LoadedModel};
use crate::Api;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use whetstone_data::Tokenizer;
use whetstone_engine::generate::{generate, SamplingOptions};
use whetstone_engine::quant::QuantMode;
use whetstone_engine::{Adapter, LoraCtx};

/// Longest prompt, in characters: a page of text, far more than a comparison needs, and small enough
/// that a request cannot make the server hold or template a huge text.
pub const MAX_PROMPT_CHARS: usize = 20_000;
/// Most tokens one answer may take.
pub const MAX_NEW_TOKENS: usize = 2048;
pub const DEFAULT_MAX_NEW_TOKENS: usize = 256;
/// Above this, sampling is close to picking tokens at random: nothing useful to compare.
pub const MAX_TEMPERATURE: f64 = 2.0;

/// One prompt for both sides of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PlaygroundRequest {
    /// The run whose base model and adapter answer.
    pub run: i64,
    pub prompt: String,
    /// 0 (the default) always takes the likeliest next token; higher values sample more freely.
    #[serde(default)]
    #[ts(optional)]
    pub temperature: Option<f64>,
    /// Longest answer, in tokens.
    #[serde(default)]
    #[ts(optional)]
    pub max_new_tokens: Option<usize>,
    /// Sample only among the likeliest tokens whose probabilities add up to this (1 keeps all).
    #[serde(default)]
    #[ts(optional)]
    pub top_p: Option<f64>,
    /// Seed of the sampling, the same for both sides; drawn at random when absent (and reported).
    #[serde(default)]
    #[ts(optional)]
    pub seed: Option<u64>,
}

/// Which column an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum PlaygroundSide {
    Base,
    Tuned,
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum AnswerEnd {
    /// The model wrote its end token.
    End,
    /// It reached the longest answer asked for.
    Length,
    /// The listener stopped it (Stop, or the page went away).
    Stopped,
}

/// One side's whole answer, with its pace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PlaygroundAnswer {
    pub side: PlaygroundSide,
    /// The answer decoded from all its tokens at once: what the streamed pieces add up to.
    pub text: String,
    pub tokens: usize,
    /// From the first forward pass (the prompt included) to the last token.
    pub seconds: f64,
    pub tokens_per_s: f64,
    pub end: AnswerEnd,
}

/// What both sides answer with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PlaygroundSetup {
    pub run: i64,
    /// The base model's path.
    pub model: String,
    pub adapter: String,
    /// The prompt's length in tokens once the chat template is applied.
    pub prompt_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// The model brings no chat template of its own and a generic one was used.
    pub chat_template_fallback: bool,
    /// The models were already in memory from an earlier request.
    pub reused: bool,
}

/// What the listener is told, in order: the setup once, then pieces of text of either side as they
/// come, and each side's whole answer when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlaygroundEvent {
    Started { setup: PlaygroundSetup },
    /// New text of one side: appended to what came before, or with `replace` the whole answer so
    /// far (when the tokenizer rewrote text it had already given, which a few tokenizers do).
    Text { side: PlaygroundSide, text: String, replace: bool },
    Done { answer: PlaygroundAnswer },
}

/// Both answers, for callers that wait for the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PlaygroundResult {
    pub setup: PlaygroundSetup,
    pub base: PlaygroundAnswer,
    pub tuned: PlaygroundAnswer,
}

/// A run's base model with its adapter, kept between requests so that trying one prompt after
/// another does not load the model each time.
pub(crate) struct LoadedPair {
    key: PairKey,
    model: LoadedModel,
    adapter: Adapter,
}

#[derive(Debug, Clone, PartialEq)]
struct PairKey {
    model: PathBuf,
    quant: QuantMode,
    adapter: PathBuf,
    /// A resumed and finished-again run rewrites its adapter in the same folder.
    adapter_written: Option<SystemTime>,
}

/// Text of a growing list of tokens, given piece by piece. Each piece is the new end of the text the
/// whole list decodes to, so pieces never split a character and merges across tokens come out as the
/// tokenizer writes them; a list ending inside a character waits for the rest.
pub struct IncrementalText<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    sent: String,
}

/// A piece of text: appended, or replacing everything sent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Append(String),
    Replace(String),
}

impl<'a> IncrementalText<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        IncrementalText { tokenizer, ids: Vec::new(), sent: String::new() }
    }

    /// Adds a token; returns the text it completes, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<Piece>> {
        self.ids.push(id);
        let now = self.tokenizer.decode(&self.ids, true)?;
        // An unfinished multi-byte character decodes as U+FFFD until its last byte arrives.
        if now.ends_with('\u{FFFD}') {
            return Ok(None);
        }
        Ok(self.advance(now))
    }

    /// Whatever is still held back once no more tokens come.
    pub fn finish(&mut self) -> Result<Option<Piece>> {
        let now = self.tokenizer.decode(&self.ids, true)?;
        Ok(self.advance(now))
    }

    /// Everything given so far.
    pub fn text(&self) -> &str {
        &self.sent
    }

    fn advance(&mut self, now: String) -> Option<Piece> {
        if now == self.sent {
            return None;
        }
        let piece = match now.strip_prefix(self.sent.as_str()) {
            Some(rest) => Piece::Append(rest.to_string()),
            None => Piece::Replace(now.clone()),
        };
        self.sent = now;
        Some(piece)
    }
}

/// Checked settings of a request.
struct Settings {
    sampling: SamplingOptions,
}

fn check(req: &PlaygroundRequest) -> Result<Settings> {
    if req.prompt.trim().is_empty() {
        return Err(Error::InvalidInput("the prompt is empty: write something for both models to answer".into()));
    }
    let chars = req.prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(Error::InvalidInput(format!("the prompt is {chars} characters long; the playground takes at most {MAX_PROMPT_CHARS}")));
    }
    let temperature = req.temperature.unwrap_or(0.0);
    if !(temperature.is_finite() && (0.0..=MAX_TEMPERATURE).contains(&temperature)) {
        return Err(Error::InvalidInput(format!(
            "temperature {temperature} is out of range: use 0 (always the likeliest word) up to {MAX_TEMPERATURE}"
        )));
    }
    let top_p = req.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(Error::InvalidInput(format!("top_p {top_p} must be above 0 and at most 1")));
    }
    let max_new_tokens = req.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
    if !(1..=MAX_NEW_TOKENS).contains(&max_new_tokens) {
        return Err(Error::InvalidInput(format!("max_new_tokens {max_new_tokens} is out of range: use 1 to {MAX_NEW_TOKENS}")));
    }
    let seed = match req.seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("the operating system gave no random bytes: {e}")))?;
            u64::from_le_bytes(bytes)
        }
    };
    Ok(Settings { sampling: SamplingOptions { temperature, top_p, max_new_tokens, seed } })
}

/// What a generating thread tells the one that talks to the listener.
enum Message {
    Text(PlaygroundSide, Piece),
    Done(PlaygroundAnswer),
}

/// Generates one side's answer after `prompt`, sending each new piece of text down `out`; stops early
/// when `stop` is set or nobody receives any more.
fn answer(
    model: &LoadedModel,
    adapter: Option<&Adapter>,
    side: PlaygroundSide,
    prompt: &[u32],
    opts: &SamplingOptions,
    stop: &AtomicBool,
    out: &mpsc::Sender<Message>,
) -> Result<PlaygroundAnswer> {
    let ctx = adapter.map(|a| LoraCtx { adapter: a, train: false, dropout: None });
    let mut text = IncrementalText::new(&model.tokenizer);
    let mut failed = None;
    let mut stopped = false;
    let started = Instant::now();
    let ids = generate(&model.decoder, prompt, &model.tokenizer.stop_ids(), opts, ctx.as_ref(), |id| {
        match text.push(id) {
            Ok(Some(piece)) => {
                if out.send(Message::Text(side, piece)).is_err() {
                    stopped = true;
                    return false;
                }
            }
            Ok(None) => {}
            Err(e) => {
                failed = Some(e);
                return false;
            }
        }
        if stop.load(Ordering::Relaxed) {
            stopped = true;
            return false;
        }
        true
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(piece) = text.finish()? {
        // The receiver may be gone already; the answer is returned either way.
        let _ = out.send(Message::Text(side, piece));
    }
    let end = if stopped {
        AnswerEnd::Stopped
    } else if ids.len() >= opts.max_new_tokens {
        AnswerEnd::Length
    } else {
        AnswerEnd::End
    };
    let tokens = ids.len();
    Ok(PlaygroundAnswer {
        side,
        text: text.text().to_string(),
        tokens,
        seconds,
        tokens_per_s: if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 },
        end,
    })
}

impl Api {
    /// Answers `req.prompt` with the run's base model and with its adapter at the same time, telling
    /// `send` the setup, every new piece of either answer, and each whole answer. When `send` returns
    /// false (the listener went away, or asked to stop) both answers stop at their next token, and
    /// the answers so far are returned. Inputs are checked before any model is loaded.
    pub fn playground(&self, req: &PlaygroundRequest, send: &mut dyn FnMut(&PlaygroundEvent) -> bool) -> Result<PlaygroundResult> {
        let settings = check(req)?;
        let src = self.export_source(req.run)?;
        let (pair, reused) = self.loaded_pair(&src.spec.model, src.spec.settings.quant, &src.adapter_dir)?;
        let model = &pair.model;
        let prompt = training::prompt_ids(model, &req.prompt)?;
        let opts = settings.sampling;
        let context = model.decoder.config.max_position_embeddings;
        if prompt.len() + opts.max_new_tokens > context {
            return Err(Error::InvalidInput(format!(
                "the prompt takes {} tokens and the answer up to {} more, but this model reads at most {context} tokens at once; \
                 shorten the prompt or the answer length",
                prompt.len(),
                opts.max_new_tokens
            )));
        }
        let setup = PlaygroundSetup {
            run: req.run,
            model: model.path.display().to_string(),
            adapter: src.adapter_dir.display().to_string(),
            prompt_tokens: prompt.len(),
            temperature: opts.temperature,
            top_p: opts.top_p,
            max_new_tokens: opts.max_new_tokens,
            seed: opts.seed,
            chat_template_fallback: model.tokenizer.chat_template().is_fallback(),
            reused,
        };
        let mut listening = send(&PlaygroundEvent::Started { setup: setup.clone() });
        let stop = AtomicBool::new(!listening);
        let (tx, rx) = mpsc::channel();
        let (base, tuned) = std::thread::scope(|s| {
            let (stop, prompt, opts, pair) = (&stop, &prompt, &opts, &pair);
            let spawn = |side: PlaygroundSide| {
                let tx = tx.clone();
                let adapter = (side == PlaygroundSide::Tuned).then_some(&pair.adapter);
                s.spawn(move || {
                    let result = answer(model, adapter, side, prompt, opts, stop, &tx);
                    match &result {
                        Ok(a) => {
                            let _ = tx.send(Message::Done(a.clone()));
                        }
                        // The other side has nothing left to be shown with.
                        Err(_) => stop.store(true, Ordering::Relaxed),
                    }
                    result
                })
            };
            let base = spawn(PlaygroundSide::Base);
            let tuned = spawn(PlaygroundSide::Tuned);
            drop(tx);
            // Ends when both threads have finished and dropped their senders.
            for message in rx {
                if !listening {
                    continue;
                }
                let event = match message {
                    Message::Text(side, Piece::Append(text)) => PlaygroundEvent::Text { side, text, replace: false },
                    Message::Text(side, Piece::Replace(text)) => PlaygroundEvent::Text { side, text, replace: true },
                    Message::Done(answer) => PlaygroundEvent::Done { answer },
                };
                if !send(&event) {
                    listening = false;
                    stop.store(true, Ordering::Relaxed);
                }
            }
            let joined = |h: std::thread::ScopedJoinHandle<'_, Result<PlaygroundAnswer>>| {
                h.join().unwrap_or_else(|_| Err(Error::Internal("generating an answer stopped unexpectedly".into())))
            };
            (joined(base), joined(tuned))
        });
        Ok(PlaygroundResult { setup, base: base?, tuned: tuned? })
    }

    /// Whether [`Api::playground`] would take `req`: its settings, and a run with a saved adapter. For
    /// callers that answer a refusal differently from a failure once answers are under way.
    pub fn check_playground(&self, req: &PlaygroundRequest) -> Result<()> {
        check(req)?;
        self.export_source(req.run)?;
        Ok(())
    }

    /// The run's base model and adapter, from memory when the last request used the same ones.
    fn loaded_pair(&self, model: &std::path::Path, quant: QuantMode, adapter: &std::path::Path) -> Result<(Arc<LoadedPair>, bool)> {
        let key = PairKey {
            model: model.to_path_buf(),
            quant,
            adapter: adapter.to_path_buf(),
            adapter_written: std::fs::metadata(adapter.join("adapter_model.safetensors")).and_then(|m| m.modified()).ok(),
        };
        // Held while loading, so two requests for the same run load it once.
        let mut slot = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pair) = slot.as_ref().filter(|p| p.key == key) {
            return Ok((pair.clone(), true));
        }
        // The previous pair leaves memory before the next one is read.
        *slot = None;
        let (model, adapter) = training::load_model_and_adapter(model, quant, Some(adapter))?;
        let adapter = adapter.ok_or_else(|| Error::Internal("the adapter was not loaded".into()))?;
        let pair = Arc::new(LoadedPair { key, model, adapter });
        *slot = Some(pair.clone());
        Ok((pair, false))
    }

    /// Lets go of the models the playground keeps in memory (a training run is about to need it).
    pub fn forget_loaded_models(&self) {
        *self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}
