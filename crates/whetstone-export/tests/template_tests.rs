mod common;

use whetstone_export::probe::{
    probe_with_system, probe_without_system, ProbeRenderings, PROBE_BOS, PROBE_EOS,
};
use whetstone_export::template::{translate, Family};

/// The family Ollama's own template index assigns to a published template, where it is one of ours.
fn expected_family(name: &str) -> Option<Family> {
    // This one writes the system message bare, before any ChatML marker; Ollama's fuzzy index calls
    // it ChatML, but a ChatML template would change the prompt the model was tuned on.
    if name == "ollama-index-00-chatml" {
        return None;
    }
    let label = name
        .strip_prefix("ollama-index-")
        .map(|rest| &rest[3..])
        .unwrap_or(name);
    match label {
        "chatml" | "smollm2-135m-instruct-chatml" => Some(Family::ChatMl),
        "llama3-instruct" => Some(Family::Llama3),
        "llama2-chat" => Some(Family::Llama2),
        "mistral-instruct" => Some(Family::Mistral),
        "gemma-instruct" | "gemma3-instruct" => Some(Family::Gemma),
        "phi-3" => Some(Family::Phi3),
        "zephyr" => Some(Family::Zephyr),
        _ => None,
    }
}

fn pairs(messages: &[whetstone_export::probe::ProbeMessage]) -> Vec<(&'static str, &'static str)> {
    messages.iter().map(|m| (m.role, m.content)).collect()
}

#[test]
fn every_published_template_of_a_known_family_is_recognised_and_no_other_is() {
    let probes = common::probes();
    assert!(probes.len() > 30);
    for (name, rendering) in probes {
        let got = translate(&rendering, PROBE_BOS, PROBE_EOS);
        match (expected_family(&name), got) {
            (Some(family), Ok(t)) => assert_eq!(t.family, family, "{name}"),
            (None, Err(e)) => assert_eq!(e.code(), "unknown_chat_template", "{name}"),
            (Some(_), Err(e)) => panic!("{name} not recognised: {e}"),
            (None, Ok(t)) => panic!("{name} taken for {:?}", t.family),
        }
    }
}

#[test]
fn the_ollama_rendering_equals_the_models_own_for_both_probes() {
    for (name, rendering) in common::probes() {
        let Ok(t) = translate(&rendering, PROBE_BOS, PROBE_EOS) else {
            continue;
        };
        let without = rendering
            .without_system
            .strip_prefix(PROBE_BOS)
            .unwrap_or(&rendering.without_system);
        let mut messages = pairs(&probe_without_system());
        let default = t.default_system.clone();
        if let Some(system) = &default {
            // Ollama sends SYSTEM as the first message when the conversation has none.
            messages.insert(0, ("system", system.as_str()));
        }
        assert_eq!(t.render(&messages), without, "{name}");
        if let (true, Some(with)) = (t.accepts_system, &rendering.with_system) {
            assert_eq!(
                t.render(&pairs(&probe_with_system())),
                with.strip_prefix(PROBE_BOS).unwrap_or(with),
                "{name}"
            );
        }
    }
}

#[test]
fn smollm2_keeps_its_default_system_prompt_as_the_modelfile_system() {
    let t = translate(
        &common::probe("smollm2-135m-instruct-chatml"),
        "<|im_start|>",
        "<|im_end|>",
    )
    .unwrap();
    assert_eq!(t.family, Family::ChatMl);
    assert_eq!(
        t.default_system.as_deref(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    assert_eq!(t.stops, ["<|im_start|>", "<|im_end|>"]);
    assert_eq!(
        t.template,
        "{{ range .Messages }}{{ if eq .Role \"system\" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n\
         {{ else if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n\
         {{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n\
         {{ end }}{{ end }}<|im_start|>assistant\n"
    );
}

#[test]
fn llama31_dates_stay_in_the_system_turn_even_without_a_system_message() {
    let t = translate(
        &common::probe("ollama-index-24-llama3-instruct"),
        "<|begin_of_text|>",
        "<|eot_id|>",
    )
    .unwrap();
    assert_eq!(t.default_system, None);
    assert!(t
        .template
        .contains("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"));
    let rendered = t.render(&[("user", "hi")]);
    assert!(
        rendered.starts_with("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge"),
        "{rendered}"
    );
    assert_eq!(
        t.stops,
        ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    );
}

#[test]
fn a_template_that_refuses_system_messages_gets_one_that_ignores_them() {
    let t = translate(
        &common::probe("ollama-index-21-gemma-instruct"),
        "<bos>",
        "<eos>",
    )
    .unwrap();
    assert_eq!(t.family, Family::Gemma);
    assert!(!t.accepts_system);
    assert_eq!(
        t.render(&[("system", "be brief"), ("user", "hi")]),
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    );
}

#[test]
fn llama2_writes_bos_before_every_turn_but_the_first_and_folds_the_system_prompt() {
    let t = translate(&common::probe("ollama-index-28-llama2-chat"), "<s>", "</s>").unwrap();
    assert_eq!(
        t.render(&[
            ("system", "S"),
            ("user", "a"),
            ("assistant", "b"),
            ("user", "c")
        ]),
        "[INST] <<SYS>>\nS\n<</SYS>>\n\na [/INST] b </s><s>[INST] c [/INST]"
    );
}

#[test]
fn zephyr_stops_at_the_models_own_eos() {
    let t = translate(&common::probe("ollama-index-02-zephyr"), "<s>", "</s>").unwrap();
    assert_eq!(t.stops, ["<|system|>", "</s>", "<|user|>", "<|assistant|>"]);
}

#[test]
fn a_near_miss_is_refused_not_approximated() {
    let mut r = common::probe("smollm2-135m-instruct-chatml");
    r.without_system = r.without_system.replace(
        "<|im_end|>\n<|im_start|>assistant",
        "<|im_end|><|im_start|>assistant",
    );
    let e = translate(&r, PROBE_BOS, PROBE_EOS).unwrap_err();
    assert_eq!(e.code(), "unknown_chat_template");
    let message = e.to_string();
    assert!(
        message.contains("ChatML") && message.contains("Zephyr"),
        "{message}"
    );
    assert!(message.contains("llama.cpp"), "{message}");
}

#[test]
fn a_format_needing_an_eos_token_refuses_an_empty_one() {
    let e = translate(&common::probe("ollama-index-02-zephyr"), "<s>", "").unwrap_err();
    assert_eq!(e.code(), "unknown_chat_template");
}

#[test]
fn alpaca_is_not_a_known_format() {
    let r = ProbeRenderings {
        without_system: "### Instruction:\nUSER-PROBE-1\n\n### Response:\nASSISTANT-PROBE-1\n\n### Instruction:\nUSER-PROBE-2\n\n### Response:\n".into(),
        with_system: None,
    };
    assert_eq!(
        translate(&r, "<s>", "</s>").unwrap_err().code(),
        "unknown_chat_template"
    );
}

/// `go_renderings.json` is Go's text/template output for every translated template (see
/// `scripts/export/go_render.go`): the template text must still be the one Go ran, and the Rust
/// renderer the recogniser relies on must agree with Go on every conversation.
#[test]
fn go_renders_every_template_exactly_as_the_rust_twin_does() {
    let text = std::fs::read_to_string(common::fixture("go_renderings.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 100);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let t = translate(&common::probe(name), "<s>", "</s>").unwrap();
        assert_eq!(
            t.template,
            case["template"].as_str().unwrap(),
            "{name}: template changed; regenerate the fixture"
        );
        let messages: Vec<(&str, &str)> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        assert_eq!(
            t.render(&messages),
            case["rendered"].as_str().unwrap(),
            "{name} {messages:?}"
        );
    }
}
