//! Tokenizers, chat templates, and dataset rows turned into training examples.
//!
//! - [`Tokenizer`] loads the tokenizer and chat template from a GGUF file or a Hugging Face model folder.
//! - [`ChatTemplate`] renders conversations with the model's own Jinja template (as transformers does), or the
//!   documented ChatML fallback.
//! - [`read_jsonl`] reads datasets in the common instruction shapes; [`build_example`] turns a conversation into
//!   token ids with a loss mask covering what the assistant says.

mod error;
mod example;
mod hf_compat;
mod rows;
mod template;
mod tokenizer;

pub use error::{BadRow, DataError, Result, RowError, MAX_LISTED_BAD_ROWS};
pub use example::{build_example, build_examples, loss_mask_preview, Example};
pub use rows::{parse_jsonl, read_jsonl, read_jsonl_rows, Conversation, Record, Row};
pub use template::{ChatTemplate, Message, Role, CHATML_TEMPLATE};
pub use tokenizer::{ByteRange, TokenStream, Tokenizer};
