mod common;

use common::smollm2;
use serde_json::json;
use whetstone_data::{
    build_example, build_training_examples, fit, loss_mask_preview, render_row_example, DataError, DataRow, Example, Message, Tokenizer,
};

/// Decodes each maximal run of trained tokens.
fn trained_runs(tok: &Tokenizer, ex: &Example) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    for (&id, &trained) in ex.input_ids.iter().zip(&ex.loss_mask) {
        if trained {
            current.push(id);
        } else if !current.is_empty() {
            runs.push(tok.decode(&std::mem::take(&mut current), false).unwrap());
        }
    }
    if !current.is_empty() {
        runs.push(tok.decode(&current, false).unwrap());
    }
    runs
}

fn untrained_text(tok: &Tokenizer, ex: &Example) -> String {
    let ids: Vec<u32> = ex
        .input_ids
        .iter()
        .zip(&ex.loss_mask)
        .filter(|(_, &m)| !m)
        .map(|(&i, _)| i)
        .collect();
    tok.decode(&ids, false).unwrap()
}

#[test]
fn single_turn_trains_exactly_the_answer_and_end_of_turn() {
    let tok = smollm2();
    let conv = vec![
        Message::user("What is 2 + 2?"),
        Message::assistant("2 + 2 = 4, so the answer is four."),
    ];
    let ex = build_example(tok, &conv, 512).unwrap();
    assert_eq!(ex.input_ids.len(), ex.loss_mask.len());
    let full = tok.chat_template().render(&conv, false).unwrap();
    assert_eq!(
        ex.input_ids,
        tok.encode(&full, false).unwrap(),
        "no BOS added: SmolLM2 does not ask for one"
    );
    assert_eq!(
        trained_runs(tok, &ex),
        vec!["2 + 2 = 4, so the answer is four.<|im_end|>"]
    );
    let prompt = untrained_text(tok, &ex);
    assert!(
        prompt.contains("What is 2 + 2?") && prompt.contains("<|im_start|>assistant\n"),
        "{prompt:?}"
    );
    assert!(!prompt.contains("four"));
    // The newline after <|im_end|> belongs to the template, not to the answer.
    assert_eq!(ex.loss_mask.last(), Some(&false));
    assert!(!ex.loss_mask[0]);
}

#[test]
fn every_assistant_turn_of_a_multi_turn_chat_is_trained() {
    let tok = smollm2();
    let conv = vec![
        Message::system("Answer briefly."),
        Message::user("Name a colour."),
        Message::assistant("Blue."),
        Message::user("Another, with an accent: café?"),
        Message::assistant("Café au lait brown ☕, 42 shades.\n"),
        Message::user("Thanks"),
        Message::assistant(" Any time!"),
    ];
    let ex = build_example(tok, &conv, 1024).unwrap();
    assert_eq!(
        trained_runs(tok, &ex),
        vec![
            "Blue.<|im_end|>",
            "Café au lait brown ☕, 42 shades.\n<|im_end|>",
            " Any time!<|im_end|>"
        ]
    );
    let prompt = untrained_text(tok, &ex);
    for m in conv
        .iter()
        .filter(|m| m.role != whetstone_data::Role::Assistant)
    {
        assert!(
            prompt.contains(&m.content),
            "{:?} is in the prompt part",
            m.content
        );
    }
}

#[test]
fn fixture_conversations_train_only_assistant_text() {
    let tok = smollm2();
    for case in common::fixture()["chat"].as_array().unwrap() {
        let conv: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
        let expected: Vec<String> = conv
            .iter()
            .filter(|m| m.role == whetstone_data::Role::Assistant)
            .map(|m| format!("{}<|im_end|>", m.content))
            .collect();
        match build_example(tok, &conv, 4096) {
            Ok(ex) => assert_eq!(trained_runs(tok, &ex), expected),
            Err(DataError::NoAssistantTurn) => assert!(expected.is_empty()),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn truncation_keeps_the_start() {
    let tok = smollm2();
    let conv = vec![
        Message::user("Count."),
        Message::assistant("one two three four five six seven eight nine ten"),
    ];
    let full = build_example(tok, &conv, 4096).unwrap();
    let first = full.loss_mask.iter().position(|&m| m).unwrap();

    let cut = build_example(tok, &conv, first + 3).unwrap();
    assert_eq!(cut.input_ids, full.input_ids[..first + 3]);
    assert_eq!(cut.loss_mask, full.loss_mask[..first + 3]);
    assert_eq!(cut.trained_tokens(), 3);
    assert_eq!(trained_runs(tok, &cut), vec!["one two three"]);

    let same = build_example(tok, &conv, full.len()).unwrap();
    assert_eq!(same, full);

    match build_example(tok, &conv, first) {
        Err(DataError::NothingToTrain {
            max_len,
            total_tokens,
            first_trained,
        }) => {
            assert_eq!(
                (max_len, total_tokens, first_trained),
                (first, full.len(), first)
            );
        }
        other => panic!("expected NothingToTrain, got {other:?}"),
    }
}

#[test]
fn rows_too_long_for_the_limit_are_dropped_and_listed() {
    let tok = smollm2();
    let rows = vec![
        DataRow::chat(1, vec![Message::user("hi"), Message::assistant("hello")]),
        DataRow::chat(4, vec![Message::user("long prompt ".repeat(50)), Message::assistant("ok, short answer")]),
        DataRow::text(6, "a plain text row".into()),
    ];
    let built = build_training_examples(tok, &rows, 64, false).unwrap();
    assert_eq!(built.kept.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 6]);
    assert_eq!(built.dropped.len(), 1);
    let d = &built.dropped[0];
    assert_eq!(d.line, 4);
    assert!(d.first_trained >= 64 && d.tokens > d.first_trained, "{d:?}");
    assert_eq!(built.length_keeping_all(), Some(d.first_trained + 1));
    // At exactly that length the row is kept, with one trained token.
    let at = build_training_examples(tok, &rows, d.first_trained + 1, false).unwrap();
    assert!(at.dropped.is_empty());
    assert_eq!(at.kept[1].1.trained_tokens(), 1);

    // Cutting the prompt from its start keeps the row, the whole answer and the BOS rule.
    let full = render_row_example(tok, &rows[1]).unwrap();
    let cut = build_training_examples(tok, &rows, 64, true).unwrap();
    assert!(cut.dropped.is_empty());
    let (line, e) = &cut.kept[1];
    assert_eq!(*line, 4);
    assert_eq!(e.len(), 64);
    assert_eq!(e.trained_tokens(), full.trained_tokens(), "the answer survives whole");
    // SmolLM2 adds no BOS token, so the cut is taken from the very start: the last 64 tokens remain.
    assert!(!tok.adds_bos());
    assert_eq!(e.input_ids, full.input_ids[full.len() - 64..]);

    let err = build_example(tok, &vec![Message::user("only a question")], 64).unwrap_err();
    assert!(matches!(err, DataError::NoAssistantTurn), "{err}");
}

#[test]
fn fit_cuts_the_prompt_but_keeps_the_token_before_the_answer() {
    let e = Example { input_ids: (0..10).collect(), loss_mask: [false; 6].into_iter().chain([true; 4]).collect() };
    // Right cut at 5: no trained token left.
    assert_eq!(fit(e.clone(), 5, false, false), None);
    // From the start: drop 5 prompt tokens, keeping token 5 which predicts token 6.
    let f = fit(e.clone(), 5, true, false).unwrap();
    assert_eq!(f.input_ids, vec![5, 6, 7, 8, 9]);
    // Keeping the first token (BOS): drop from position 1; only 4 prompt tokens can go, the end is cut.
    let f = fit(e.clone(), 5, true, true).unwrap();
    assert_eq!(f.input_ids, vec![0, 5, 6, 7, 8]);
    assert_eq!(f.loss_mask, vec![false, false, true, true, true]);
    // Short enough: untouched.
    assert_eq!(fit(e.clone(), 10, true, true).unwrap(), e);
}

#[test]
fn preview_pairs_token_text_with_the_mask() {
    let tok = smollm2();
    let conv = vec![Message::user("Hi"), Message::assistant("Hello there")];
    let ex = build_example(tok, &conv, 256).unwrap();
    let preview = loss_mask_preview(tok, &ex);
    assert_eq!(preview.len(), ex.len());
    let trained: String = preview
        .iter()
        .filter(|(_, t)| *t)
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(trained, "Hello there<|im_end|>");
    let all: String = preview.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(all, tok.chat_template().render(&conv, false).unwrap());
}

fn hf_tokenizer(config: serde_json::Value) -> (tempfile::TempDir, Tokenizer) {
    let dir = tempfile::tempdir().unwrap();
    smollm2()
        .inner()
        .save(dir.path().join("tokenizer.json"), false)
        .unwrap();
    std::fs::write(dir.path().join("tokenizer_config.json"), config.to_string()).unwrap();
    let tok = Tokenizer::from_hf_dir(dir.path()).unwrap();
    (dir, tok)
}

#[test]
fn bos_is_added_only_when_asked_and_not_already_written() {
    let conv = vec![Message::user("Hi"), Message::assistant("Yo")];
    let plain = "{% for m in messages %}[{{ m.role }}] {{ m.content }}<|im_end|>\n{% endfor %}";

    let (_d, tok) = hf_tokenizer(
        json!({"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
        "add_bos_token": true, "chat_template": plain}),
    );
    let ex = build_example(&tok, &conv, 128).unwrap();
    assert_eq!(ex.input_ids[0], 0, "BOS prepended");
    assert!(!ex.loss_mask[0]);
    assert_eq!(
        ex.input_ids[1..],
        tok.encode("[user] Hi<|im_end|>\n[assistant] Yo<|im_end|>\n", false)
            .unwrap()[..]
    );
    assert_eq!(
        trained_runs(&tok, &ex),
        vec![" Yo<|im_end|>"],
        "the space after the role tag is in the first token"
    );

    let writes_bos = format!("{{{{ bos_token }}}}{plain}");
    let (_d, tok) = hf_tokenizer(
        json!({"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
        "add_bos_token": true, "chat_template": writes_bos}),
    );
    let ex = build_example(&tok, &conv, 128).unwrap();
    assert_eq!(
        ex.input_ids.iter().filter(|&&i| i == 0).count(),
        1,
        "BOS is not doubled"
    );
    assert_eq!(ex.input_ids[0], 0);

    let (_d, tok) = hf_tokenizer(
        json!({"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
        "add_bos_token": false, "chat_template": plain}),
    );
    let ex = build_example(&tok, &conv, 128).unwrap();
    assert_ne!(ex.input_ids[0], 0);
}

#[test]
fn templates_without_end_of_turn_token_train_the_content_only() {
    let (_d, tok) = hf_tokenizer(json!({"eos_token": "<|im_end|>",
        "chat_template": "{% for m in messages %}{{ m.role }}: {{ m.content | trim }}\n\n{% endfor %}"}));
    let conv = vec![
        Message::user("Hi"),
        Message::assistant("  Hello\nthere  "),
        Message::user("ok"),
        Message::assistant("bye"),
    ];
    let ex = build_example(&tok, &conv, 128).unwrap();
    // The space the template writes after "assistant:" is part of the first content token (" Hello"), so that
    // token is trained with it; nothing after the content is.
    assert_eq!(trained_runs(&tok, &ex), vec![" Hello\nthere", " bye"]);
}

#[test]
fn templates_that_rewrite_history_are_rejected() {
    // Writes a turn counter that changes the earlier text once later turns exist.
    let (_d, tok) = hf_tokenizer(json!({"eos_token": "<|im_end|>",
        "chat_template": "({{ messages | length }}){% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}"}));
    let conv = vec![
        Message::user("Hi"),
        Message::assistant("Hello"),
        Message::user("a"),
        Message::assistant("b"),
    ];
    let err = build_example(&tok, &conv, 128).unwrap_err();
    assert!(
        matches!(err, DataError::TemplateNotIncremental { turn: 2 }),
        "{err}"
    );
}
