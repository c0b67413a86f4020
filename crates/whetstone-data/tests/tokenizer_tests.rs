mod common;

use common::{fixture, smollm2};
use serde_json::{json, Value};
use whetstone_data::{ChatTemplate, Message, Role, Tokenizer};

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids array")
        .iter()
        .map(|i| i.as_u64().unwrap() as u32)
        .collect()
}

fn messages_of(v: &Value) -> Vec<Message> {
    serde_json::from_value(v.clone()).expect("fixture messages")
}

#[test]
fn encodes_exactly_like_transformers() {
    let tok = smollm2();
    let fx = fixture();
    let cases = fx["encode"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, false).unwrap(),
            ids_of(&case["ids"]),
            "encoding of {text:?}"
        );
    }
}

#[test]
fn chat_template_renders_and_encodes_like_transformers() {
    let tok = smollm2();
    let fx = fixture();
    assert_eq!(
        tok.chat_template().source(),
        fx["chat_template"].as_str().unwrap()
    );
    assert!(!tok.chat_template().is_fallback());
    assert_eq!(
        tok.chat_template().bos_token(),
        fx["bos_token"].as_str().unwrap()
    );
    assert_eq!(
        tok.chat_template().eos_token(),
        fx["eos_token"].as_str().unwrap()
    );
    for case in fx["chat"].as_array().unwrap() {
        let messages = messages_of(&case["messages"]);
        let add_gen = case["add_generation_prompt"].as_bool().unwrap();
        let text = tok.chat_template().render(&messages, add_gen).unwrap();
        assert_eq!(text, case["text"].as_str().unwrap());
        assert_eq!(
            tok.encode(&text, false).unwrap(),
            ids_of(&case["ids"]),
            "ids of {text:?}"
        );
    }
}

#[test]
fn special_tokens_match_the_model() {
    let tok = smollm2();
    let fx = fixture();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(
        tok.bos_id(),
        tok.token_to_id(fx["bos_token"].as_str().unwrap())
    );
    assert_eq!(
        tok.eos_id(),
        tok.token_to_id(fx["eos_token"].as_str().unwrap())
    );
    assert_eq!(
        tok.pad_id(),
        tok.token_to_id(fx["pad_token"].as_str().unwrap())
    );
    assert_eq!(tok.adds_bos(), fx["add_bos_token"].as_bool().unwrap());
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (Some(1), Some(2), Some(2))
    );
    // <|im_end|> is both EOS and the template's end-of-turn marker; <|endoftext|> is not written by the template.
    assert_eq!(tok.stop_ids(), vec![2]);
    for special in fx["special_tokens"].as_array().unwrap() {
        let id = special["id"].as_u64().unwrap() as u32;
        let content = special["content"].as_str().unwrap();
        assert_eq!(
            tok.encode(content, false).unwrap(),
            vec![id],
            "{content} is one token"
        );
        assert_eq!(
            tok.decode(&[id], true).unwrap(),
            "",
            "{content} is skipped as special"
        );
    }
}

#[test]
fn decode_round_trips() {
    let tok = smollm2();
    let mut texts: Vec<String> = fixture()["encode"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    texts.extend(
        [
            "",
            " ",
            "  leading",
            "x\n\n\ny",
            "ünïcödé 🦀 \u{200d}",
            "1234567890",
            "a\tb\r\nc",
        ]
        .map(String::from),
    );
    for text in &texts {
        let ids = tok.encode(text, false).unwrap();
        assert_eq!(&tok.decode(&ids, false).unwrap(), text);
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids,
            "SmolLM2 adds no special tokens"
        );
    }
    let with_specials = "<|im_start|>user\nhi<|im_end|>";
    let ids = tok.encode(with_specials, false).unwrap();
    assert_eq!(tok.decode(&ids, false).unwrap(), with_specials);
    assert_eq!(tok.decode(&ids, true).unwrap(), "user\nhi");
}

#[test]
fn offsets_are_byte_ranges_into_the_text() {
    let tok = smollm2();
    let text = "Café 42 — <|im_end|> naïve 🦀!";
    let (ids, offsets) = tok.encode_with_offsets(text).unwrap();
    assert_eq!(ids, tok.encode(text, false).unwrap());
    assert_eq!(ids.len(), offsets.len());
    let mut last_end = 0;
    for (&id, &(s, e)) in ids.iter().zip(&offsets) {
        assert!(s <= e && e <= text.len(), "{s}..{e}");
        assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
        assert!(s + 4 >= last_end, "offsets move forward");
        last_end = last_end.max(e);
        let piece = tok.decode(&[id], false).unwrap();
        if !piece.contains('\u{FFFD}') {
            // Whole-character tokens: the range is the token's text, minus any leading space trimmed off.
            assert_eq!(&text[s..e], piece.trim_start_matches(' '), "token {id}");
        }
    }
    assert_eq!(last_end, text.len());
    let im_end = ids.iter().position(|&i| i == 2).unwrap();
    assert_eq!(&text[offsets[im_end].0..offsets[im_end].1], "<|im_end|>");
}

#[test]
fn token_stream_emits_whole_characters() {
    let tok = smollm2();
    let text = "Zürich 🦀 日本語 — done.";
    let ids = tok.encode(text, false).unwrap();
    let mut stream = tok.stream(true);
    let mut out = String::new();
    let mut held_back = 0;
    for &id in &ids {
        match stream.push(id).unwrap() {
            Some(delta) => {
                assert!(!delta.contains('\u{FFFD}'), "delta {delta:?}");
                out.push_str(&delta);
            }
            None => held_back += 1,
        }
    }
    if let Some(rest) = stream.finish().unwrap() {
        out.push_str(&rest);
    }
    assert_eq!(out, text);
    assert!(
        held_back > 0,
        "multi-byte characters span several byte-level tokens"
    );
    assert_eq!(stream.ids(), &ids[..]);
}

/// Writes a Hugging Face model folder from the bundled model's tokenizer.
fn hf_dir(config: Value, generation: Option<Value>, jinja: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    smollm2()
        .inner()
        .save(dir.path().join("tokenizer.json"), false)
        .unwrap();
    std::fs::write(dir.path().join("tokenizer_config.json"), config.to_string()).unwrap();
    if let Some(g) = generation {
        std::fs::write(dir.path().join("generation_config.json"), g.to_string()).unwrap();
    }
    if let Some(j) = jinja {
        std::fs::write(dir.path().join("chat_template.jinja"), j).unwrap();
    }
    dir
}

#[test]
fn hf_dir_reads_config_template_list_and_generation_eos() {
    let fx = fixture();
    let template = fx["chat_template"].as_str().unwrap();
    let dir = hf_dir(
        json!({
            "bos_token": {"content": "<|im_start|>", "special": true},
            "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>",
            "chat_template": [
                {"name": "tool_use", "template": "{{ raise_exception('tool template picked') }}"},
                {"name": "default", "template": template},
            ],
        }),
        Some(json!({"eos_token_id": [2, 0]})),
        None,
    );
    let tok = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (Some(1), Some(2), Some(2))
    );
    assert_eq!(tok.stop_ids(), vec![2, 0]);
    assert_eq!(tok.vocab_size(), 49152);
    assert!(!tok.adds_bos());
    for case in fx["chat"].as_array().unwrap() {
        let text = tok
            .chat_template()
            .render(
                &messages_of(&case["messages"]),
                case["add_generation_prompt"].as_bool().unwrap(),
            )
            .unwrap();
        assert_eq!(text, case["text"].as_str().unwrap());
        assert_eq!(tok.encode(&text, false).unwrap(), ids_of(&case["ids"]));
    }
}

#[test]
fn hf_dir_template_file_fallback_and_errors() {
    let dir = hf_dir(
        json!({"eos_token": "<|im_end|>"}),
        Some(json!({"eos_token_id": 2})),
        Some("{{ messages[0].content }}!"),
    );
    let tok = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(
        tok.chat_template()
            .render(&[Message::user("hey")], false)
            .unwrap(),
        "hey!"
    );
    assert_eq!(tok.stop_ids(), vec![2]);

    let dir = hf_dir(json!({"eos_token": "<|im_end|>"}), None, None);
    let tok = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert!(tok.chat_template().is_fallback());
    assert_eq!(tok.bos_id(), None);
    assert_eq!(
        tok.chat_template()
            .render(&[Message::new(Role::User, "q")], true)
            .unwrap(),
        "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(tok.stop_ids(), vec![2]);

    let dir = hf_dir(json!({"eos_token": "<not-a-token>"}), None, None);
    let err = Tokenizer::from_hf_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("tokenizer_config.json") && err.contains("<not-a-token>"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let err = Tokenizer::from_hf_dir(empty.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn missing_gguf_names_the_file() {
    let err = Tokenizer::from_gguf_file("/nonexistent/model.gguf")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
}

#[test]
fn template_errors_surface_the_reason() {
    let t = ChatTemplate::new(
        "{% if messages[-1].role != 'user' %}{{ raise_exception('last must be user') }}{% endif %}",
        None,
        None,
    )
    .unwrap();
    let err = t
        .render(&[Message::assistant("x")], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("last must be user"), "{err}");
}

/// What an exported model must keep: the same ids for every fixture text, the same special tokens,
/// stop ids and rendered chat.
fn assert_same_tokenizer(ours: &Tokenizer, copy: &Tokenizer, how: &str) {
    for case in fixture()["encode"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(copy.encode(text, false).unwrap(), ids_of(&case["ids"]), "{how}: ids of {text:?}");
    }
    assert_eq!(copy.vocab_size(), ours.vocab_size(), "{how}");
    assert_eq!((copy.bos_id(), copy.eos_id(), copy.pad_id(), copy.adds_bos()), (ours.bos_id(), ours.eos_id(), ours.pad_id(), ours.adds_bos()), "{how}");
    assert_eq!(copy.stop_ids(), ours.stop_ids(), "{how}");
    let chat = [Message::user("Describe a two-bedroom flat near the park."), Message::assistant("Bright, quiet, close to the park.")];
    assert_eq!(copy.chat_template().render(&chat, false).unwrap(), ours.chat_template().render(&chat, false).unwrap(), "{how}");
    assert!(!copy.chat_template().is_fallback(), "{how}: the chat template travelled");
}

#[test]
fn tokenizer_written_as_hf_files_reads_back_the_same() {
    let tok = smollm2();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in tok.hf_files().unwrap() {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let copy = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_same_tokenizer(tok, &copy, "tokenizer.json");
}

#[test]
fn tokenizer_written_as_gguf_metadata_reads_back_the_same() {
    use candle_core::quantized::gguf_file;
    let tok = smollm2();
    let (md, warning) = tok.gguf_metadata().unwrap();
    assert_eq!(warning, None, "SmolLM2's pre-tokenizer is one llama.cpp names");
    let pre = md.iter().find(|(k, _)| k == "tokenizer.ggml.pre").unwrap();
    assert_eq!(pre.1.to_string().unwrap(), "smollm");
    let refs: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut buf = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &refs, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.gguf");
    std::fs::write(&path, buf.into_inner()).unwrap();
    let copy = Tokenizer::from_gguf_file(&path).unwrap();
    assert_same_tokenizer(tok, &copy, "GGUF");
}

#[test]
fn sentencepiece_style_vocabulary_is_refused_for_gguf_not_written_as_gpt2() {
    let dir = hf_dir(serde_json::json!({}), None, None);
    let path = dir.path().join("tokenizer.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["model"]["byte_fallback"] = Value::Bool(true);
    std::fs::write(&path, json.to_string()).unwrap();
    let tok = Tokenizer::from_hf_dir(dir.path()).unwrap();
    let err = tok.gguf_metadata().unwrap_err();
    assert!(err.to_string().contains("SentencePiece"), "{err}");
}
