//! Conversations turned into token ids with a mask of which tokens are training targets.

use serde::{Deserialize, Serialize};

use crate::datarow::{DataRow, RowBody};
use crate::error::{DataError, Result};
use crate::template::{Message, Role};
use crate::tokenizer::Tokenizer;

/// A conversation in order, as the chat template receives it.
pub type Conversation = Vec<Message>;

/// One training sequence. `loss_mask[i]` is true when token `i` is a target: the model is trained to predict it
/// from the tokens before it (the trainer does the shift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub input_ids: Vec<u32>,
    pub loss_mask: Vec<bool>,
}

impl Example {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// How many tokens are trained.
    pub fn trained_tokens(&self) -> usize {
        self.loss_mask.iter().filter(|&&m| m).count()
    }

    /// Position of the first trained token.
    pub fn first_trained(&self) -> Option<usize> {
        self.loss_mask.iter().position(|&m| m)
    }
}

/// Where one assistant turn sits in the rendered text, in bytes: `content` is the message as the template wrote
/// it, `trained_end` also covers the end-of-turn token that closes it (when the template writes one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TurnSpan {
    content_start: usize,
    content_end: usize,
    /// End of the rendered turn; the end-of-turn token is searched for between `content_end` and here.
    turn_end: usize,
}

/// Renders `conversation` (no generation prompt), tokenizes it once, and marks as trained exactly the tokens
/// inside assistant message contents plus the end-of-turn token closing each assistant turn, so the model also
/// learns to stop. Every assistant turn of a multi-turn chat is trained.
///
/// Assistant contents are located without knowing the template's syntax: for assistant turn k the conversation
/// up to k is rendered once as is and once with that turn's content emptied; the text that differs is the
/// content. The full rendering must start with each such prefix (templates that rewrite earlier turns are
/// rejected with [`DataError::TemplateNotIncremental`]).
///
/// A token counts as trained when its byte range overlaps a trained range; the closing token is the first stop
/// token ([`Tokenizer::stop_ids`]) after the content within the same turn, and everything between the content and
/// it (say, a newline the template writes before the marker) is trained too.
///
/// BOS rule: the tokenizer's BOS id is put in front only when the model's configuration asks for it
/// ([`Tokenizer::adds_bos`]) and the rendered text does not already start with the BOS token's text (templates
/// such as Llama 3's write `{{ bos_token }}` themselves); it is never trained.
///
/// Sequences longer than `max_len` keep their first `max_len` tokens; if no trained token survives that, the
/// result is [`DataError::NothingToTrain`].
pub fn build_example(
    tokenizer: &Tokenizer,
    conversation: &Conversation,
    max_len: usize,
) -> Result<Example> {
    cut(render_example(tokenizer, conversation)?, max_len)
}

/// [`build_example`] without any length limit.
pub fn render_example(tokenizer: &Tokenizer, conversation: &Conversation) -> Result<Example> {
    let template = tokenizer.chat_template();
    let full = template.render(conversation, false)?;

    let mut spans = Vec::new();
    for (k, message) in conversation.iter().enumerate() {
        if message.role != Role::Assistant || message.content.is_empty() {
            continue;
        }
        let with = template.render(&conversation[..=k], false)?;
        if !full.starts_with(&with) {
            return Err(DataError::TemplateNotIncremental { turn: k + 1 });
        }
        let mut emptied: Vec<Message> = conversation[..=k].to_vec();
        emptied[k].content.clear();
        let without = template.render(&emptied, false)?;
        let (content_start, content_end) = locate_insertion(&without, &with, &message.content)
            .ok_or(DataError::AssistantNotFound { turn: k + 1 })?;
        spans.push(TurnSpan {
            content_start,
            content_end,
            turn_end: with.len(),
        });
    }
    if spans.is_empty() {
        return Err(DataError::NoAssistantTurn);
    }

    let (mut ids, offsets) = tokenizer.encode_with_offsets(&full)?;
    let stops = tokenizer.stop_ids();
    let mut mask = vec![false; ids.len()];
    for span in &spans {
        let closing_end = ids
            .iter()
            .zip(&offsets)
            .find(|(id, (s, _))| stops.contains(id) && *s >= span.content_end && *s < span.turn_end)
            .map(|(_, &(_, e))| e);
        let trained_end = closing_end.unwrap_or(span.content_end);
        for (m, &(s, e)) in mask.iter_mut().zip(&offsets) {
            let overlaps = if s < e {
                s < trained_end && e > span.content_start
            } else {
                s >= span.content_start && s < trained_end
            };
            *m |= overlaps;
        }
    }

    if let (true, Some(bos)) = (tokenizer.adds_bos(), tokenizer.bos_id()) {
        let bos_text = tokenizer.id_to_token(bos).unwrap_or_default();
        if bos_text.is_empty() || !full.starts_with(&bos_text) {
            ids.insert(0, bos);
            mask.insert(0, false);
        }
    }

    Ok(Example {
        input_ids: ids,
        loss_mask: mask,
    })
}

/// The first `max_len` tokens, or [`DataError::NothingToTrain`] when no trained token is among them.
fn cut(example: Example, max_len: usize) -> Result<Example> {
    let total_tokens = example.len();
    let first_trained = example.first_trained().unwrap_or(total_tokens);
    fit(example, max_len, false, false).ok_or(DataError::NothingToTrain { max_len, total_tokens, first_trained })
}

/// Plain text for continued pre-training: the text's tokens (after the beginning-of-sequence token when the
/// model adds one) and an end-of-sequence token, every one of them trained.
pub fn build_text_example(tokenizer: &Tokenizer, text: &str, max_len: usize) -> Result<Example> {
    cut(render_text_example(tokenizer, text)?, max_len)
}

/// [`build_text_example`] without any length limit.
pub fn render_text_example(tokenizer: &Tokenizer, text: &str) -> Result<Example> {
    let mut ids = tokenizer.encode(text, false)?;
    let mut mask = vec![true; ids.len()];
    if let (true, Some(bos)) = (tokenizer.adds_bos(), tokenizer.bos_id()) {
        ids.insert(0, bos);
        mask.insert(0, false);
    }
    if let Some(eos) = tokenizer.eos_id() {
        ids.push(eos);
        mask.push(true);
    }
    Ok(Example { input_ids: ids, loss_mask: mask })
}

/// A dataset row as a training example: chats through the chat template (every assistant turn trained), plain
/// text with every token trained.
pub fn build_row_example(tokenizer: &Tokenizer, row: &DataRow, max_len: usize) -> Result<Example> {
    cut(render_row_example(tokenizer, row)?, max_len)
}

/// [`build_row_example`] without any length limit; the error names the row's line.
pub fn render_row_example(tokenizer: &Tokenizer, row: &DataRow) -> Result<Example> {
    match &row.body {
        RowBody::Chat(messages) => render_example(tokenizer, messages),
        RowBody::Text(text) => render_text_example(tokenizer, text),
    }
    .map_err(|e| DataError::InRow { line: row.line, source: Box::new(e) })
}

/// Fits an example into `max_len` tokens. Without `truncate_prompt` the end is cut; with it, tokens
/// are first taken from the start of the prompt (after the beginning-of-sequence token when
/// `keep_first`), always leaving the token before the first trained one, which predicts it. `None`
/// when no trained token would be left.
pub fn fit(mut example: Example, max_len: usize, truncate_prompt: bool, keep_first: bool) -> Option<Example> {
    let len = example.len();
    if len > max_len && truncate_prompt {
        if let Some(first) = example.first_trained() {
            let from = usize::from(keep_first).min(len);
            let available = first.saturating_sub(1).saturating_sub(from);
            let drop = (len - max_len).min(available);
            example.input_ids.drain(from..from + drop);
            example.loss_mask.drain(from..from + drop);
        }
    }
    example.input_ids.truncate(max_len);
    example.loss_mask.truncate(max_len);
    example.loss_mask.iter().any(|&m| m).then_some(example)
}

/// A row that cannot be trained at the chosen length: every token it trains on lies past it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct DroppedRow {
    /// Line of the row in its file.
    pub line: usize,
    /// The row's length in tokens.
    pub tokens: usize,
    /// Position of its first trained token: a maximum length above this keeps the row.
    pub first_trained: usize,
}

/// Training examples of a file's rows, with the rows the length limit leaves out.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    /// `(line, example)` in file order.
    pub kept: Vec<(usize, Example)>,
    pub dropped: Vec<DroppedRow>,
}

impl Examples {
    /// The smallest maximum length at which no row is dropped.
    pub fn length_keeping_all(&self) -> Option<usize> {
        self.dropped.iter().map(|d| d.first_trained + 1).max()
    }
}

/// Every row as an example fitted into `max_len` (see [`fit`]); rows left without a trained token
/// are listed in [`Examples::dropped`], never silently lost. A row the template cannot render fails
/// the whole call with its line.
pub fn build_training_examples(tokenizer: &Tokenizer, rows: &[DataRow], max_len: usize, truncate_prompt: bool) -> Result<Examples> {
    let mut out = Examples::default();
    for row in rows {
        let full = render_row_example(tokenizer, row)?;
        let keep_first = tokenizer.adds_bos() && tokenizer.bos_id().is_some() && full.input_ids.first() == tokenizer.bos_id().as_ref();
        let (tokens, first_trained) = (full.len(), full.first_trained().unwrap_or(full.len()));
        match fit(full, max_len, truncate_prompt, keep_first) {
            Some(e) => out.kept.push((row.line, e)),
            None => out.dropped.push(DroppedRow { line: row.line, tokens, first_trained }),
        }
    }
    Ok(out)
}

/// Each token's text with whether it is trained, for showing users what the model learns from.
pub fn loss_mask_preview(tokenizer: &Tokenizer, example: &Example) -> Vec<(String, bool)> {
    example
        .input_ids
        .iter()
        .zip(&example.loss_mask)
        .map(|(&id, &trained)| {
            let text = tokenizer
                .decode(&[id], false)
                .ok()
                .or_else(|| tokenizer.id_to_token(id))
                .unwrap_or_else(|| format!("<{id}>"));
            (text, trained)
        })
        .collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| a.len().min(b.len()))
}

fn common_suffix(a: &str, b: &str) -> usize {
    a.chars()
        .rev()
        .zip(b.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

/// `with` is `without` with the assistant content inserted somewhere; returns the inserted byte range in `with`.
/// When the boundary characters repeat (content ending in the same newline the template writes after it) several
/// positions explain the difference; the one whose inserted text is the message content wins.
fn locate_insertion(without: &str, with: &str, content: &str) -> Option<(usize, usize)> {
    let inserted = with.len().saturating_sub(without.len());
    let prefix = common_prefix(without, with);
    let suffix = common_suffix(without, with);
    let lowest = without.len().saturating_sub(suffix);
    if inserted > 0 && lowest <= prefix {
        let candidates: Vec<usize> = (lowest..=prefix)
            .filter(|&i| with.is_char_boundary(i) && with.is_char_boundary(i + inserted))
            .collect();
        let matching = |want: &str| {
            candidates
                .iter()
                .copied()
                .find(|&i| &with[i..i + inserted] == want)
        };
        let start = matching(content)
            .or_else(|| matching(content.trim()))
            .or(candidates.last().copied())?;
        return Some((start, start + inserted));
    }
    // Not a plain insertion (the template renders an empty message differently): fall back to finding the
    // content itself after the shared prefix.
    let from = prefix.min(with.len());
    for want in [content, content.trim()] {
        if want.is_empty() {
            continue;
        }
        if let Some(i) = with[from..].find(want) {
            return Some((from + i, from + i + want.len()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_prefers_the_actual_content() {
        let without = "A\n<E>\n";
        let with = "A\nfoo\n<E>\n";
        assert_eq!(locate_insertion(without, with, "foo\n"), Some((2, 6)));
        assert_eq!(locate_insertion(without, with, "\nfoo"), Some((1, 5)));
        // No candidate equals the content: the latest position is taken.
        assert_eq!(
            locate_insertion("[A] </s>", "[A] hi </s>", "hi!"),
            Some((4, 7))
        );
    }

    #[test]
    fn non_insertion_falls_back_to_search() {
        assert_eq!(
            locate_insertion("A: (none)", "A: hello", "hello"),
            Some((3, 8))
        );
        assert_eq!(locate_insertion("A: (none)", "A: bye", "hello"), None);
    }
}
