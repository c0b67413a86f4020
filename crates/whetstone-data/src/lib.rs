//! Tokenizers, chat templates, and dataset rows turned into training examples.
//!
//! - [`Tokenizer`] loads the tokenizer and chat template from a GGUF file or a Hugging Face model folder.
//! - [`ChatTemplate`] renders conversations with the model's own Jinja template (as transformers does), or the
//!   documented ChatML fallback.
//! - [`import`] streams JSONL, JSON arrays, CSV/TSV and plain text in every common shape into [`DataRow`]s,
//!   rejecting bad records one by one with their line numbers; [`clean`] proposes and applies deduplication,
//!   filters and personal-data handling; [`split`] and [`stats`] split and measure a dataset.
//! - [`read_training_rows`] is the one reader of training files, over [`import`]; [`build_training_examples`] turns
//!   rows into token ids with a loss mask covering what the assistant says, fitted to the maximum length.

pub mod clean;
mod datarow;
mod error;
mod example;
mod hf_compat;
pub mod import;
mod read;
pub mod split;
pub mod stats;
pub mod synthetic;
mod template;
mod tokenizer;

pub use error::{DataError, Rejection, Result, RowError, MAX_LISTED_BAD_ROWS};
pub use datarow::{excerpt, read_rows, write_atomically, write_rows, DataRow, RowBody, Split};
pub use example::{
    build_example, build_row_example, build_text_example, build_training_examples, fit, loss_mask_preview, render_example,
    render_row_example, render_text_example, Conversation, DroppedRow, Example, Examples,
};
pub use read::read_training_rows;
pub use template::{ChatTemplate, Message, Role, CHATML_TEMPLATE};
pub use tokenizer::{ByteRange, TokenStream, Tokenizer};
