//! The playground on a real (tiny) training run: both answers must be what the engine's own
//! `generate` writes for the chat-templated prompt, with and without the run's adapter; the pieces
//! streamed for each side must add up to its whole answer; bad requests are refused before any model
//! is loaded.

mod common;

use common::trained;
use serde_json::json;
use std::collections::HashMap;
use whetstone_api::playground::{AnswerEnd, IncrementalText, Piece, PlaygroundEvent, PlaygroundRequest, PlaygroundSide};
use whetstone_api::training::{load_adapter, load_model, prompt_ids};
use whetstone_data::Tokenizer;
use whetstone_engine::generate::{generate, SamplingOptions};
use whetstone_engine::quant::QuantMode;
use whetstone_engine::LoraCtx;

fn request(run: i64, prompt: &str, max_new_tokens: usize) -> PlaygroundRequest {
    PlaygroundRequest { run, prompt: prompt.into(), temperature: None, max_new_tokens: Some(max_new_tokens), top_p: None, seed: None }
}

/// Every event, and per side the text the pieces add up to.
fn collect(events: &[PlaygroundEvent]) -> HashMap<PlaygroundSide, String> {
    let mut texts = HashMap::new();
    for e in events {
        if let PlaygroundEvent::Text { side, text, replace } = e {
            let t: &mut String = texts.entry(*side).or_default();
            if *replace {
                t.clear();
            }
            t.push_str(text);
        }
    }
    texts
}

#[test]
fn greedy_answers_are_what_generate_writes_and_the_pieces_add_up_to_them() {
    let t = trained();
    let prompt = "Write a listing for a blue ceramic mug.";
    let mut events = Vec::new();
    let result = t.api.playground(&request(t.run, prompt, 24), &mut |e| {
        events.push(e.clone());
        true
    });
    let result = result.unwrap();

    // The engine's own generation, greedy, through the model's chat template.
    let model = load_model(&t.model, QuantMode::Native).unwrap();
    let adapter = load_adapter(&model, &t.adapter).unwrap();
    let ids = prompt_ids(&model, prompt).unwrap();
    let opts = SamplingOptions { temperature: 0.0, top_p: 1.0, max_new_tokens: 24, seed: 0 };
    let stop = model.tokenizer.stop_ids();
    let base_ids = generate(&model.decoder, &ids, &stop, &opts, None, |_| true).unwrap();
    let ctx = LoraCtx { adapter: &adapter, train: false, dropout: None };
    let tuned_ids = generate(&model.decoder, &ids, &stop, &opts, Some(&ctx), |_| true).unwrap();
    let base_text = model.tokenizer.decode(&base_ids, true).unwrap();
    let tuned_text = model.tokenizer.decode(&tuned_ids, true).unwrap();
    assert_eq!(result.base.text, base_text);
    assert_eq!(result.tuned.text, tuned_text);
    assert_eq!((result.base.tokens, result.tuned.tokens), (base_ids.len(), tuned_ids.len()));
    assert!(result.base.tokens > 0 && result.tuned.tokens > 0);
    // Random weights rarely write the end token within 24 tokens; whichever happened is reported.
    for a in [&result.base, &result.tuned] {
        let expected = if a.tokens == 24 { AnswerEnd::Length } else { AnswerEnd::End };
        assert_eq!(a.end, expected, "{:?}", a.side);
        assert!(a.seconds > 0.0 && (a.tokens_per_s - a.tokens as f64 / a.seconds).abs() < 1e-9);
    }
    // The adapter changes what the model writes: the two columns are not the same text by construction.
    assert_ne!(base_ids, tuned_ids, "the trained adapter left greedy decoding unchanged");

    // Setup first; each side's pieces add up to its answer; each side's Done comes after its last piece.
    let PlaygroundEvent::Started { setup } = &events[0] else { panic!("first event: {:?}", events[0]) };
    assert_eq!((setup.run, setup.prompt_tokens, setup.max_new_tokens, setup.temperature), (t.run, ids.len(), 24, 0.0));
    assert_eq!(setup, &result.setup);
    let texts = collect(&events);
    assert_eq!(texts.get(&PlaygroundSide::Base).map(String::as_str).unwrap_or(""), base_text);
    assert_eq!(texts.get(&PlaygroundSide::Tuned).map(String::as_str).unwrap_or(""), tuned_text);
    for side in [PlaygroundSide::Base, PlaygroundSide::Tuned] {
        let done: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e, PlaygroundEvent::Done { answer } if answer.side == side)).map(|(i, _)| i).collect();
        assert_eq!(done.len(), 1, "{side:?} ends once");
        let last_text = events.iter().rposition(|e| matches!(e, PlaygroundEvent::Text { side: s, .. } if *s == side));
        assert!(last_text.is_none_or(|i| i < done[0]), "{side:?}: text after its end");
    }

    // The same through the command table, and the models are reused from memory.
    let whole = t.api.dispatch("playground", json!({"run": t.run, "prompt": prompt, "max_new_tokens": 24, "temperature": 0})).unwrap();
    assert_eq!(whole["base"]["text"], base_text);
    assert_eq!(whole["tuned"]["text"], tuned_text);
    assert_eq!(whole["setup"]["reused"], true);
    assert_eq!(result.setup.reused, false);
}

#[test]
fn sampled_answers_follow_the_seed_and_the_reported_seed_repeats_them() {
    let t = trained();
    let mut req = request(t.run, "Describe a wool scarf.", 12);
    req.temperature = Some(0.9);
    req.top_p = Some(0.95);
    let drawn = t.api.playground(&req, &mut |_| true).unwrap();
    req.seed = Some(drawn.setup.seed);
    let again = t.api.playground(&req, &mut |_| true).unwrap();
    assert_eq!((&again.base.text, &again.tuned.text), (&drawn.base.text, &drawn.tuned.text));
    assert_eq!((again.setup.temperature, again.setup.top_p), (0.9, 0.95));
}

#[test]
fn a_listener_that_leaves_stops_both_answers_and_hears_nothing_more() {
    let t = trained();
    let mut after_leaving = 0;
    let mut left = false;
    let result = t
        .api
        .playground(&request(t.run, "Write a long listing for a lamp.", 400), &mut |e| {
            if left {
                after_leaving += 1;
            }
            if matches!(e, PlaygroundEvent::Text { .. }) {
                left = true;
                return false;
            }
            true
        })
        .unwrap();
    assert!(left, "no text was ever sent");
    assert_eq!(after_leaving, 0, "events were sent after the listener left");
    for a in [&result.base, &result.tuned] {
        assert_ne!(a.end, AnswerEnd::Length, "{:?} ran to its full length", a.side);
        assert!(a.tokens < 400, "{:?}: {} tokens", a.side, a.tokens);
    }
    assert!([&result.base, &result.tuned].iter().any(|a| a.end == AnswerEnd::Stopped));
}

#[test]
fn bad_requests_are_refused_with_what_is_wrong_before_a_model_is_loaded() {
    let t = trained();
    let long = "x".repeat(whetstone_api::playground::MAX_PROMPT_CHARS + 1);
    // Run 999 does not exist: these are refused for their settings before the run is even looked up.
    let cases = [
        (json!({"run": 999, "prompt": "  "}), "empty"),
        (json!({"run": 999, "prompt": long}), "20001 characters"),
        (json!({"run": 999, "prompt": "hi", "temperature": 2.5}), "temperature 2.5"),
        (json!({"run": 999, "prompt": "hi", "temperature": -0.1}), "temperature -0.1"),
        (json!({"run": 999, "prompt": "hi", "top_p": 0.0}), "top_p 0"),
        (json!({"run": 999, "prompt": "hi", "top_p": 1.5}), "top_p 1.5"),
        (json!({"run": 999, "prompt": "hi", "max_new_tokens": 0}), "max_new_tokens 0"),
        (json!({"run": 999, "prompt": "hi", "max_new_tokens": 100000}), "max_new_tokens 100000"),
        (json!({"run": 999, "prompt": "hi", "model": "/etc/passwd"}), "unknown field `model`"),
        (json!({"run": 999, "prompt": ["not", "text"]}), "arguments for `playground`"),
        (json!({"run": "1; DROP TABLE runs", "prompt": "hi"}), "arguments for `playground`"),
    ];
    for (args, says) in cases {
        let err = t.api.dispatch("playground", args.clone()).unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{args}: {err}");
        assert!(err.to_string().contains(says), "{args}: `{err}` does not say `{says}`");
    }
    let err = t.api.dispatch("playground", json!({"run": 999, "prompt": "hi"})).unwrap_err();
    assert_eq!(err.code(), "not_found", "{err}");
    // A prompt that with its answer would not fit the model's 1024 positions.
    let err = t.api.dispatch("playground", json!({"run": t.run, "prompt": "y".repeat(900), "max_new_tokens": 200})).unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    assert!(err.to_string().contains("reads at most 1024 tokens"), "{err}");
}

/// The tiny model's byte-level tokenizer: id = byte, so any byte sequence can be pushed.
fn byte_tokenizer() -> (tempfile::TempDir, Tokenizer) {
    let dir = tempfile::tempdir().unwrap();
    whetstone_api::testing::write_tiny_model(dir.path()).unwrap();
    let tok = Tokenizer::from_hf_dir(dir.path()).unwrap();
    (dir, tok)
}

fn pieces(tok: &Tokenizer, ids: &[u32]) -> Vec<Piece> {
    let mut text = IncrementalText::new(tok);
    let mut out: Vec<Piece> = ids.iter().filter_map(|&id| text.push(id).unwrap()).collect();
    out.extend(text.finish().unwrap());
    out
}

fn joined(pieces: &[Piece]) -> String {
    pieces.iter().fold(String::new(), |acc, p| match p {
        Piece::Append(s) => acc + s,
        Piece::Replace(s) => s.clone(),
    })
}

#[test]
fn pieces_never_split_a_character_and_add_up_to_the_whole_decode() {
    let (_dir, tok) = byte_tokenizer();
    let text = "Grüße, 東京 €5 🙂!";
    let ids: Vec<u32> = text.bytes().map(u32::from).collect();
    let got = pieces(&tok, &ids);
    assert_eq!(joined(&got), text);
    for p in &got {
        let Piece::Append(s) = p else { panic!("a byte tokenizer never rewrites: {p:?}") };
        assert!(!s.contains('\u{FFFD}'), "a piece splits a character: {s:?}");
    }
    // The four bytes of the emoji arrive as one piece, once the last is there.
    assert!(got.contains(&Piece::Append("🙂".into())), "{got:?}");

    // Bytes that are not UTF-8 at all: shown as U+FFFD once a later byte settles them, or at the end.
    let bad = [0xFFu32, u32::from(b'a'), 0xE2, 0x82];
    let got = pieces(&tok, &bad);
    assert_eq!(joined(&got), tok.decode(&bad, true).unwrap());
    assert_eq!(got, vec![Piece::Append("\u{FFFD}a".into()), Piece::Append("\u{FFFD}".into())]);

    // The chat markers are special tokens: not shown.
    assert_eq!(pieces(&tok, &[u32::from(b'o'), 258, u32::from(b'k')]), vec![Piece::Append("o".into()), Piece::Append("k".into())]);
}
