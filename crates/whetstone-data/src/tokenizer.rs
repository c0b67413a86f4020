//! The model's tokenizer, with the special tokens and chat template that travel with it.

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use serde_json::Value;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;

use crate::error::{DataError, Result};
use crate::template::ChatTemplate;

/// End-of-turn markers of common chat formats. One counts as a stop token when the model's template writes it
/// and the vocabulary has it as a single token.
const END_OF_TURN_MARKERS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end_of_turn|>",
    "<|END_OF_TURN_TOKEN|>",
    "<|endoftext|>",
    "<|return|>",
    "</s>",
];

/// A token's `(start, end)` byte range in the encoded text.
pub type ByteRange = (usize, usize);

/// A tokenizer with the model's special tokens and chat template.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    /// End-of-sequence ids beyond `eos` (HF `generation_config.json` may list several).
    extra_eos: Vec<u32>,
    add_bos: bool,
    template: ChatTemplate,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("add_bos", &self.add_bos)
            .field("stop_ids", &self.stop_ids())
            .field("template_is_fallback", &self.template.is_fallback())
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer(e.to_string())
}

fn gguf_u32(ct: &Content, key: &str) -> Option<u32> {
    use gguf_file::Value::*;
    match ct.metadata.get(key)? {
        U8(v) => Some(u32::from(*v)),
        U16(v) => Some(u32::from(*v)),
        U32(v) => Some(*v),
        U64(v) => u32::try_from(*v).ok(),
        I8(v) => u32::try_from(*v).ok(),
        I16(v) => u32::try_from(*v).ok(),
        I32(v) => u32::try_from(*v).ok(),
        I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

fn gguf_bool(ct: &Content, key: &str) -> Option<bool> {
    ct.metadata.get(key).and_then(|v| v.to_bool().ok())
}

fn gguf_str<'a>(ct: &'a Content, key: &str) -> Option<&'a str> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

impl Tokenizer {
    /// Builds the tokenizer stored in a GGUF file's metadata (byte-level BPE, `tokenizer.ggml.model == "gpt2"`).
    ///
    /// candle builds the BPE model; its generic pre-tokenizer (used for every `tokenizer.ggml.pre` except qwen2
    /// and llama3-style ones) adds a prefix space and keeps digit runs together, which is not what the original
    /// tokenizers do. For those we install GPT-2's byte-level split honouring `tokenizer.ggml.add_space_prefix`
    /// (default false), and for `smollm` also the single-digit split of SmolLM's `tokenizer.json`, so ids match
    /// transformers exactly.
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let mut inner =
            <tokenizers::Tokenizer as TokenizerFromGguf>::from_gguf(ct).map_err(tok_err)?;
        let pre = gguf_str(ct, "tokenizer.ggml.pre").unwrap_or("gpt2");
        if !matches!(pre, "qwen2" | "llama3" | "smaug-bpe" | "lfm2") {
            let add_prefix_space =
                gguf_bool(ct, "tokenizer.ggml.add_space_prefix").unwrap_or(false);
            let byte_level: PreTokenizerWrapper =
                ByteLevel::new(add_prefix_space, true, true).into();
            let pre_tokenizer: PreTokenizerWrapper = if pre == "smollm" {
                Sequence::new(vec![Digits::new(true).into(), byte_level]).into()
            } else {
                byte_level
            };
            inner.with_pre_tokenizer(Some(pre_tokenizer));
        }

        let bos = gguf_u32(ct, "tokenizer.ggml.bos_token_id");
        let eos = gguf_u32(ct, "tokenizer.ggml.eos_token_id");
        let pad = gguf_u32(ct, "tokenizer.ggml.padding_token_id");
        // llama.cpp treats a missing flag on a BPE vocabulary as "do not add BOS".
        let add_bos = gguf_bool(ct, "tokenizer.ggml.add_bos_token").unwrap_or(false);
        let bos_text = bos.and_then(|id| inner.id_to_token(id));
        let eos_text = eos.and_then(|id| inner.id_to_token(id));
        let template = match gguf_str(ct, "tokenizer.chat_template") {
            Some(src) if !src.trim().is_empty() => {
                ChatTemplate::new(src, bos_text.as_deref(), eos_text.as_deref())?
            }
            _ => ChatTemplate::chatml(bos_text.as_deref(), eos_text.as_deref()),
        };
        Ok(Tokenizer {
            inner,
            bos,
            eos,
            pad,
            extra_eos: Vec::new(),
            add_bos,
            template,
        })
    }

    /// Reads a GGUF file's header and builds its tokenizer.
    pub fn from_gguf_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let content = Content::read(&mut file).map_err(|e| DataError::Gguf {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_gguf(&content).map_err(|e| match e {
            DataError::Tokenizer(message) => DataError::Gguf {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Loads a Hugging Face model folder: `tokenizer.json` (required), `tokenizer_config.json` (chat template,
    /// bos/eos/pad tokens, `add_bos_token`), `chat_template.jinja` or `chat_template.json` when the config has no
    /// template, and `generation_config.json`'s `eos_token_id` (one id or a list) when present.
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(DataError::Io {
                path: tokenizer_path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "tokenizer.json not found",
                ),
            });
        }
        let inner =
            tokenizers::Tokenizer::from_file(&tokenizer_path).map_err(|e| DataError::HfConfig {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;

        let config_path = dir.join("tokenizer_config.json");
        let config = read_json_if_present(&config_path)?.unwrap_or(Value::Null);
        let bad = |reason: String| DataError::HfConfig {
            path: config_path.clone(),
            reason,
        };
        let token_of = |key: &str| -> Result<Option<String>> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    _ => Err(bad(format!("`{key}` object has no string `content`"))),
                },
                Some(_) => Err(bad(format!(
                    "`{key}` must be a string or an object with `content`"
                ))),
            }
        };
        let id_of = |key: &str| -> Result<Option<u32>> {
            match token_of(key)? {
                None => Ok(None),
                Some(tok) => inner
                    .token_to_id(&tok)
                    .map(Some)
                    .ok_or_else(|| bad(format!("`{key}` {tok:?} is not in the vocabulary"))),
            }
        };
        let bos = id_of("bos_token")?;
        let eos = id_of("eos_token")?;
        let pad = id_of("pad_token")?;
        let bos_text = token_of("bos_token")?;
        let eos_text = token_of("eos_token")?;

        let mut source = match config.get("chat_template") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(named)) => {
                let pick = named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| named.first());
                match pick.and_then(|t| t.get("template")).and_then(Value::as_str) {
                    Some(s) => Some(s.to_string()),
                    None => {
                        return Err(bad(
                            "`chat_template` list has no entry with a `template` string".into(),
                        ))
                    }
                }
            }
            Some(_) => {
                return Err(bad(
                    "`chat_template` must be a string or a list of {name, template}".into(),
                ))
            }
        };
        if source.is_none() {
            let jinja = dir.join("chat_template.jinja");
            if jinja.is_file() {
                source = Some(
                    std::fs::read_to_string(&jinja).map_err(|source| DataError::Io {
                        path: jinja,
                        source,
                    })?,
                );
            } else if let Some(v) = read_json_if_present(&dir.join("chat_template.json"))? {
                source = v
                    .get("chat_template")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        }
        let template = match source {
            Some(src) if !src.trim().is_empty() => {
                ChatTemplate::new(src, bos_text.as_deref(), eos_text.as_deref())?
            }
            _ => ChatTemplate::chatml(bos_text.as_deref(), eos_text.as_deref()),
        };

        let add_bos = match config.get("add_bos_token") {
            Some(Value::Bool(b)) => *b,
            // Without the flag, ask the tokenizer itself: does its post-processor put BOS in front?
            _ => match bos {
                Some(bos) => {
                    let with = inner.encode("a", true).map_err(tok_err)?;
                    let without = inner.encode("a", false).map_err(tok_err)?;
                    with.get_ids().first() == Some(&bos) && without.get_ids().first() != Some(&bos)
                }
                None => false,
            },
        };

        let gen_path = dir.join("generation_config.json");
        let mut extra_eos = Vec::new();
        if let Some(gen) = read_json_if_present(&gen_path)? {
            let ids = match gen.get("eos_token_id") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(v) => vec![v.clone()],
            };
            for id in ids {
                let id = id
                    .as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| DataError::HfConfig {
                        path: gen_path.clone(),
                        reason: format!("`eos_token_id` entry {id} is not a token id"),
                    })?;
                extra_eos.push(id);
            }
        }

        Ok(Tokenizer {
            inner,
            bos,
            eos,
            pad,
            extra_eos,
            add_bos,
            template,
        })
    }

    /// Token ids of `text`. With `add_special` the tokenizer's post-processor may add BOS/EOS as the model's
    /// configuration asks; special-token text such as `<|im_start|>` is always recognised as one token.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, add_special)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    /// Token ids of `text` (no added special tokens) with each token's byte range in `text`. Ranges may omit
    /// surrounding spaces, and the tokens of one multi-byte character all report that character's range.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<ByteRange>)> {
        let encoding = self.inner.encode(text, false).map_err(tok_err)?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether the model's configuration asks for BOS in front of every sequence.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary entry of `id` as stored (byte-level pieces look like `Ġword`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Ids that end generation: EOS, any extra EOS ids from the model's generation config, and the end-of-turn
    /// markers the chat template writes (such as `<|im_end|>` or `<|eot_id|>`) that are single tokens.
    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .eos
            .into_iter()
            .chain(self.extra_eos.iter().copied())
            .collect();
        for marker in END_OF_TURN_MARKERS {
            if self.template.source().contains(marker) {
                if let Some(id) = self.inner.token_to_id(marker) {
                    ids.push(id);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(*id));
        ids
    }

    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The underlying `tokenizers` tokenizer, for callers that need more than this API.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// An incremental decoder for generated ids.
    pub fn stream(&self, skip_special: bool) -> TokenStream<'_> {
        TokenStream {
            tokenizer: self,
            ids: Vec::new(),
            prev: 0,
            current: 0,
            skip_special,
        }
    }
}

/// A tokenizer as files of a Hugging Face model folder, and as GGUF metadata: what an exported model
/// carries so that transformers, llama.cpp and our own loader all tokenize and template as the run did.
impl Tokenizer {
    /// `tokenizer.json` and `tokenizer_config.json` (special tokens, `add_bos_token`, chat template).
    pub fn hf_files(&self) -> Result<Vec<(&'static str, String)>> {
        let json = self.inner.to_string(true).map_err(tok_err)?;
        let text_of = |id: Option<u32>| id.and_then(|i| self.inner.id_to_token(i));
        let mut config = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": self.add_bos,
            "add_eos_token": false,
            "clean_up_tokenization_spaces": false,
            "bos_token": text_of(self.bos),
            "eos_token": text_of(self.eos),
            "pad_token": text_of(self.pad),
        });
        if !self.template.is_fallback() {
            config["chat_template"] = Value::String(self.template.source().to_string());
        }
        let config = serde_json::to_string_pretty(&config).map_err(tok_err)?;
        Ok(vec![("tokenizer.json", json), ("tokenizer_config.json", config)])
    }

    /// `tokenizer.*` keys for a GGUF file (llama.cpp's `gpt2` byte-level BPE vocabulary), and a warning
    /// when llama.cpp's pre-tokenizer for this vocabulary cannot be named with certainty.
    pub fn gguf_metadata(&self) -> Result<(Vec<(String, gguf_file::Value)>, Option<String>)> {
        use gguf_file::Value as V;
        let json: Value = serde_json::from_str(&self.inner.to_string(false).map_err(tok_err)?).map_err(tok_err)?;
        // SentencePiece vocabularies converted to tokenizer.json (Llama 2, Mistral, Gemma) are BPE with
        // byte fallback; llama.cpp reads them as its `llama` model with scores, not as `gpt2`, so
        // writing them as `gpt2` would tokenize wrongly.
        if json["model"]["byte_fallback"].as_bool() == Some(true) {
            return Err(DataError::Tokenizer(
                "this is a SentencePiece-style vocabulary (BPE with byte fallback, as in Llama 2, Mistral and Gemma), \
                 which GGUF export here cannot write yet; export the merged model or the adapter instead"
                    .into(),
            ));
        }
        if json["model"]["type"].as_str() != Some("BPE") {
            return Err(DataError::Tokenizer(format!(
                "only byte-level BPE vocabularies can be written to GGUF here, not {}",
                json["model"]["type"]
            )));
        }
        let vocab = self.inner.get_vocab(true);
        let size = vocab.values().max().map(|m| *m as usize + 1).unwrap_or(0);
        let mut tokens: Vec<String> = (0..size).map(|i| format!("[PAD{i}]")).collect();
        for (piece, id) in &vocab {
            tokens[*id as usize] = piece.clone();
        }
        let added = self.inner.get_added_tokens_decoder();
        let types: Vec<V> = (0..size as u32)
            .map(|id| match added.get(&id) {
                Some(t) if t.special => V::I32(3),
                Some(_) => V::I32(4),
                None if vocab.values().any(|v| *v == id) => V::I32(1),
                None => V::I32(5),
            })
            .collect();
        let merges: Vec<V> = json["model"]["merges"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| match x {
                        Value::String(s) => Some(s.clone()),
                        Value::Array(p) => Some(format!("{} {}", p.first()?.as_str()?, p.get(1)?.as_str()?)),
                        _ => None,
                    })
                    .map(V::String)
                    .collect()
            })
            .unwrap_or_default();
        let (pre, warning) = llama_cpp_pre_tokenizer(&json["pre_tokenizer"]);
        let mut md = vec![
            ("tokenizer.ggml.model".to_string(), V::String("gpt2".into())),
            ("tokenizer.ggml.pre".to_string(), V::String(pre.into())),
            ("tokenizer.ggml.tokens".to_string(), V::Array(tokens.into_iter().map(V::String).collect())),
            ("tokenizer.ggml.token_type".to_string(), V::Array(types)),
            ("tokenizer.ggml.add_bos_token".to_string(), V::Bool(self.add_bos)),
        ];
        if !merges.is_empty() {
            md.push(("tokenizer.ggml.merges".to_string(), V::Array(merges)));
        }
        for (key, id) in [("bos", self.bos), ("eos", self.eos), ("padding", self.pad)] {
            if let Some(id) = id {
                md.push((format!("tokenizer.ggml.{key}_token_id"), V::U32(id)));
            }
        }
        if !self.template.is_fallback() {
            md.push(("tokenizer.chat_template".to_string(), V::String(self.template.source().to_string())));
        }
        Ok((md, warning))
    }
}

/// llama.cpp's name for a `tokenizer.json` pre-tokenizer. Its converter recognises vocabularies by
/// hashing a probe text's ids; here the splitting rules themselves are matched for the families whose
/// rules are known, and anything else is named `default` with a warning.
fn llama_cpp_pre_tokenizer(pre: &Value) -> (&'static str, Option<String>) {
    let text = pre.to_string();
    let byte_level = text.contains("\"ByteLevel\"");
    if text.contains("\"Digits\"") && text.contains("\"individual_digits\":true") && byte_level {
        return ("smollm", None);
    }
    if text.contains(r"\\p{N}{1,3}") {
        return ("llama3", None);
    }
    if text.contains(r"[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|") {
        return ("qwen2", None);
    }
    if pre.get("type").and_then(Value::as_str) == Some("ByteLevel") {
        return ("gpt2", None);
    }
    (
        "default",
        Some("llama.cpp may split text into tokens differently from the original tokenizer: its pre-tokenizer for this vocabulary is not known here, so `default` was written".into()),
    )
}

fn read_json_if_present(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: PathBuf::from(path),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DataError::HfConfig {
            path: path.to_path_buf(),
            reason: format!("invalid JSON: {e}"),
        })
}

/// Turns generated ids into text deltas. A byte-level token can hold part of a UTF-8 character; the stream holds
/// such bytes back until the character is complete, so every delta is whole characters and the concatenated
/// deltas equal the decoded sequence.
pub struct TokenStream<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    prev: usize,
    current: usize,
    skip_special: bool,
}

impl TokenStream<'_> {
    /// Adds one id; returns the newly completed text, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let before = self
            .tokenizer
            .decode(&self.ids[self.prev..self.current], self.skip_special)?;
        let now = self
            .tokenizer
            .decode(&self.ids[self.prev..], self.skip_special)?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') {
            let delta = suffix_after_common_prefix(&before, &now);
            self.prev = self.current;
            self.current = self.ids.len();
            Ok(Some(delta))
        } else {
            Ok(None)
        }
    }

    /// Text still held back (an unfinished character decodes to U+FFFD here).
    pub fn finish(&mut self) -> Result<Option<String>> {
        let before = self
            .tokenizer
            .decode(&self.ids[self.prev..self.current], self.skip_special)?;
        let now = self
            .tokenizer
            .decode(&self.ids[self.prev..], self.skip_special)?;
        self.prev = self.ids.len();
        self.current = self.ids.len();
        Ok((now.len() > before.len()).then(|| suffix_after_common_prefix(&before, &now)))
    }

    /// All ids pushed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

fn suffix_after_common_prefix(before: &str, now: &str) -> String {
    if let Some(rest) = now.strip_prefix(before) {
        return rest.to_string();
    }
    let common = before
        .char_indices()
        .zip(now.chars())
        .take_while(|((_, a), b)| a == b)
        .last()
        .map(|((i, c), _)| i + c.len_utf8())
        .unwrap_or(0);
    now[common..].to_string()
}
