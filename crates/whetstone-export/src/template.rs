//! The chat template of an Ollama Modelfile, for a model whose Jinja template is one of the known
//! chat formats.
//!
//! Arbitrary Jinja cannot be translated into Go's text/template, and a near miss is worse than
//! nothing: a model answering in a format it was not tuned on degrades without any error. So a format
//! is accepted only when one of the known formats, with the model's own BOS and EOS, renders the probe
//! conversations ([`crate::probe`]) to exactly the text the model's template rendered. The Go template
//! is generated from the same description as the Rust renderer used for that comparison, so what
//! Ollama will render is what was compared (`tests/fixtures/go_renderings.json` holds Go's own output
//! for every format, checked against the Rust renderer).

use crate::error::{ExportError, Result};
use crate::probe::{
    probe_with_system, probe_without_system, ProbeMessage, ProbeRenderings, PROBE_BOS, PROBE_EOS,
    PROBE_SYSTEM,
};

/// Stands for the model's BOS token in a [`Format`]; written only after the first turn, because
/// llama.cpp and Ollama put the first BOS in themselves when they tokenize the prompt.
const BOS: &str = "\u{2}";
/// Stands for the model's EOS token in a [`Format`].
const EOS: &str = "\u{3}";
/// Splits a rendering around the system text; no template emits it.
const MARK: &str = "\u{1}";

/// The chat formats Whetstone can translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    ChatMl,
    Llama3,
    Llama2,
    Mistral,
    Gemma,
    Phi3,
    Zephyr,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::ChatMl => "ChatML (SmolLM2, Qwen2/2.5)",
            Family::Llama3 => "Llama 3 / 3.1",
            Family::Llama2 => "Llama 2 [INST] <<SYS>>",
            Family::Mistral => "Mistral [INST]",
            Family::Gemma => "Gemma <start_of_turn>",
            Family::Phi3 => "Phi-3 <|user|> <|end|>",
            Family::Zephyr => "Zephyr <|user|> </s>",
        }
    }
}

/// The list the `unknown_chat_template` error shows.
pub fn known_formats() -> String {
    let mut names: Vec<&str> = FORMATS.iter().map(|f| f.family.name()).collect();
    names.dedup();
    names.join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wrap {
    prefix: &'static str,
    suffix: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SystemStyle {
    /// A turn of its own.
    Own(Wrap),
    /// Written inside the next user turn, before its content.
    IntoUser(Wrap),
    /// The format has no place for it.
    None,
}

/// One way a family lays out a conversation. Families have variants where the published templates
/// differ in whitespace or EOS placement; each variant is compared exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    family: Family,
    system: SystemStyle,
    user: Wrap,
    assistant: Wrap,
    generation: &'static str,
    /// Ollama's stop list for the family (`template/*.json` in the Ollama sources), EOS as [`EOS`].
    stops: &'static [&'static str],
}

const fn wrap(prefix: &'static str, suffix: &'static str) -> Wrap {
    Wrap { prefix, suffix }
}

const CHATML_STOPS: &[&str] = &["<|im_start|>", "<|im_end|>"];
const LLAMA3_STOPS: &[&str] = &["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
const LLAMA2_STOPS: &[&str] = &["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"];
// Ollama's mistral-instruct.json lists ChatML markers, which a Mistral model never writes; the
// [INST] markers are what it would start a new turn with.
const MISTRAL_STOPS: &[&str] = &["[INST]", "[/INST]"];
const GEMMA_STOPS: &[&str] = &["<start_of_turn>", "<end_of_turn>"];
const PHI3_STOPS: &[&str] = &["<|end|>", "<|system|>", "<|user|>", "<|assistant|>"];
const ZEPHYR_STOPS: &[&str] = &["<|system|>", EOS, "<|user|>", "<|assistant|>"];

const FORMATS: &[Format] = &[
    Format {
        family: Family::ChatMl,
        system: SystemStyle::Own(wrap("<|im_start|>system\n", "<|im_end|>\n")),
        user: wrap("<|im_start|>user\n", "<|im_end|>\n"),
        assistant: wrap("<|im_start|>assistant\n", "<|im_end|>\n"),
        generation: "<|im_start|>assistant\n",
        stops: CHATML_STOPS,
    },
    Format {
        family: Family::Llama3,
        system: SystemStyle::Own(wrap(
            "<|start_header_id|>system<|end_header_id|>\n\n",
            "<|eot_id|>",
        )),
        user: wrap("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
        assistant: wrap(
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "<|eot_id|>",
        ),
        generation: "<|start_header_id|>assistant<|end_header_id|>\n\n",
        stops: LLAMA3_STOPS,
    },
    Format {
        family: Family::Llama2,
        system: SystemStyle::IntoUser(wrap("<<SYS>>\n", "\n<</SYS>>\n\n")),
        user: wrap("\u{2}[INST] ", " [/INST]"),
        assistant: wrap(" ", " \u{3}"),
        generation: "",
        stops: LLAMA2_STOPS,
    },
    Format {
        family: Family::Mistral,
        system: SystemStyle::None,
        user: wrap("[INST] ", " [/INST]"),
        assistant: wrap("", "\u{3}"),
        generation: "",
        stops: MISTRAL_STOPS,
    },
    Format {
        family: Family::Mistral,
        system: SystemStyle::None,
        user: wrap("[INST] ", " [/INST]"),
        assistant: wrap("", "\u{3} "),
        generation: "",
        stops: MISTRAL_STOPS,
    },
    Format {
        family: Family::Gemma,
        system: SystemStyle::IntoUser(wrap("", "\n\n")),
        user: wrap("<start_of_turn>user\n", "<end_of_turn>\n"),
        assistant: wrap("<start_of_turn>model\n", "<end_of_turn>\n"),
        generation: "<start_of_turn>model\n",
        stops: GEMMA_STOPS,
    },
    Format {
        family: Family::Phi3,
        system: SystemStyle::Own(wrap("<|system|>\n", "<|end|>\n")),
        user: wrap("<|user|>\n", "<|end|>\n"),
        assistant: wrap("<|assistant|>\n", "<|end|>\n"),
        generation: "<|assistant|>\n",
        stops: PHI3_STOPS,
    },
    Format {
        family: Family::Zephyr,
        system: SystemStyle::Own(wrap("<|system|>\n", "\u{3}\n")),
        user: wrap("<|user|>\n", "\u{3}\n"),
        assistant: wrap("<|assistant|>\n", "\u{3}\n"),
        generation: "<|assistant|>\n",
        stops: ZEPHYR_STOPS,
    },
    Format {
        family: Family::Zephyr,
        system: SystemStyle::Own(wrap("<|system|>\n", "\u{3}\n")),
        user: wrap("<|user|>\n", "\n"),
        assistant: wrap("<|assistant|>\n", "\u{3}\n"),
        generation: "<|assistant|>\n",
        stops: ZEPHYR_STOPS,
    },
];

/// How the recognised template treats a system message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum System {
    /// Rendered in its own turn, after fixed text the template always adds (Llama 3.1's dates), which
    /// also appears alone when there is no system message.
    Own { preamble: String },
    /// Written inside the next user turn.
    IntoUser,
    /// Refused or dropped by the model's template: the model never saw one, so none is written.
    Ignored,
}

/// A model's chat format as Ollama needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaTemplate {
    pub family: Family,
    /// The Modelfile's `TEMPLATE`, Go text/template over `.Messages`.
    pub template: String,
    /// The Modelfile's `PARAMETER stop` values.
    pub stops: Vec<String>,
    /// The system prompt the model's template adds when a conversation has none; goes to `SYSTEM`,
    /// which Ollama sends as the first message in that case.
    pub default_system: Option<String>,
    /// False when the model's template refuses or drops system messages; a `SYSTEM` line would then
    /// be ignored by the template, so none should be written.
    pub accepts_system: bool,
    format: Format,
    system: System,
    bos: String,
    eos: String,
}

impl OllamaTemplate {
    /// What Ollama will render for `messages` (role, content) with this template, generation prompt
    /// included, without the leading BOS that llama.cpp adds itself.
    pub fn render(&self, messages: &[(&str, &str)]) -> String {
        render(&self.format, &self.system, messages, &self.bos, &self.eos)
    }
}

/// Recognises the format from the probe renderings and writes the Ollama template for a model whose
/// BOS and EOS tokens are `bos` and `eos`.
pub fn translate(renderings: &ProbeRenderings, bos: &str, eos: &str) -> Result<OllamaTemplate> {
    for format in FORMATS {
        if let Some((system, default_system)) = matches(format, renderings) {
            return build(*format, system, default_system, bos, eos);
        }
    }
    Err(unknown(
        "no known format renders the probe conversation exactly as the model's template does"
            .into(),
    ))
}

fn unknown(reason: String) -> ExportError {
    ExportError::UnknownChatTemplate {
        reason,
        known: known_formats(),
    }
}

fn build(
    format: Format,
    system: System,
    default_system: Option<String>,
    bos: &str,
    eos: &str,
) -> Result<OllamaTemplate> {
    if bos.is_empty() && (format.user.prefix.contains(BOS) || format.assistant.prefix.contains(BOS))
    {
        return Err(unknown(format!(
            "the {} format needs the model's BOS token, and none was given",
            format.family.name()
        )));
    }
    if eos.is_empty() && uses_eos(&format) {
        return Err(unknown(format!(
            "the {} format needs the model's EOS token, and none was given",
            format.family.name()
        )));
    }
    let template = go_template(&format, &system, bos, eos);
    let mut stops: Vec<String> = format.stops.iter().map(|s| s.replace(EOS, eos)).collect();
    stops.dedup();
    Ok(OllamaTemplate {
        family: format.family,
        template,
        stops,
        default_system,
        accepts_system: system != System::Ignored,
        format,
        system,
        bos: bos.to_string(),
        eos: eos.to_string(),
    })
}

fn uses_eos(format: &Format) -> bool {
    let own = match format.system {
        SystemStyle::Own(w) | SystemStyle::IntoUser(w) => vec![w.prefix, w.suffix],
        SystemStyle::None => vec![],
    };
    own.into_iter()
        .chain([
            format.user.prefix,
            format.user.suffix,
            format.assistant.prefix,
            format.assistant.suffix,
            format.generation,
        ])
        .any(|s| s.contains(EOS))
}

/// Whether `format` explains both renderings; if so, how it treats system messages and the default
/// system prompt it adds.
fn matches(format: &Format, r: &ProbeRenderings) -> Option<(System, Option<String>)> {
    let without = strip_bos(&r.without_system);
    let system = match r.with_system.as_deref().map(strip_bos) {
        None => System::Ignored,
        Some(with) if !with.contains(PROBE_SYSTEM) => System::Ignored,
        Some(with) => {
            let system = match format.system {
                SystemStyle::Own(_) => System::Own {
                    preamble: preamble(format, with)?,
                },
                SystemStyle::IntoUser(_) => System::IntoUser,
                SystemStyle::None => return None,
            };
            if probe_render(format, &system, &probe_with_system()) != with {
                return None;
            }
            system
        }
    };
    if probe_render(format, &system, &probe_without_system()) == without {
        return Some((system, None));
    }
    // A default system prompt only exists where system messages have a turn of their own.
    let System::Own { preamble } = &system else {
        return None;
    };
    let middle = around_system(format, &system, without)?;
    let default = middle.strip_prefix(preamble.as_str())?;
    let mut messages: Vec<(&str, &str)> = vec![("system", default)];
    messages.extend(probe_without_system().iter().map(|m| (m.role, m.content)));
    let expected = render(format, &system, &messages, PROBE_BOS, PROBE_EOS);
    (!default.is_empty() && expected == without)
        .then(|| (system.clone(), Some(default.to_string())))
}

/// The fixed text the template writes before a given system message.
fn preamble(format: &Format, with: &str) -> Option<String> {
    let bare = System::Own {
        preamble: String::new(),
    };
    let middle = around_system(format, &bare, with)?;
    middle.strip_suffix(PROBE_SYSTEM).map(str::to_string)
}

/// The text `rendering` has where `format` writes the system message of the probe.
fn around_system<'a>(format: &Format, system: &System, rendering: &'a str) -> Option<&'a str> {
    let mut messages = vec![("system", MARK)];
    messages.extend(probe_without_system().iter().map(|m| (m.role, m.content)));
    let marked = render(format, system, &messages, PROBE_BOS, PROBE_EOS);
    let (before, after) = marked.split_once(MARK)?;
    rendering.strip_prefix(before)?.strip_suffix(after)
}

fn probe_render(format: &Format, system: &System, probe: &[ProbeMessage]) -> String {
    let messages: Vec<(&str, &str)> = probe.iter().map(|m| (m.role, m.content)).collect();
    render(format, system, &messages, PROBE_BOS, PROBE_EOS)
}

fn strip_bos(s: &str) -> &str {
    s.strip_prefix(PROBE_BOS).unwrap_or(s)
}

/// The Rust twin of [`go_template`]: the same walk over the messages, the same literal pieces.
fn render(
    format: &Format,
    system: &System,
    messages: &[(&str, &str)],
    bos: &str,
    eos: &str,
) -> String {
    let fill = |s: &str, started: bool| {
        s.replace(BOS, if started { bos } else { "" })
            .replace(EOS, eos)
    };
    let mut out = String::new();
    let mut started = false;
    let mut pending = String::new();
    if let (System::Own { preamble }, SystemStyle::Own(w)) = (system, format.system) {
        if !preamble.is_empty() && messages.first().map(|m| m.0) != Some("system") {
            out += &fill(w.prefix, started);
            out += preamble;
            out += &fill(w.suffix, started);
            started = true;
        }
    }
    for &(role, content) in messages {
        match role {
            "system" => match (system, format.system) {
                (System::Own { preamble }, SystemStyle::Own(w)) => {
                    out += &fill(w.prefix, started);
                    out += preamble;
                    out += content;
                    out += &fill(w.suffix, started);
                    started = true;
                }
                (System::IntoUser, _) => pending = content.to_string(),
                _ => {}
            },
            "user" => {
                out += &fill(format.user.prefix, started);
                if let (false, SystemStyle::IntoUser(w)) = (pending.is_empty(), format.system) {
                    out += &fill(w.prefix, started);
                    out += &pending;
                    out += &fill(w.suffix, started);
                    pending.clear();
                }
                out += content;
                out += &fill(format.user.suffix, started);
                started = true;
            }
            "assistant" => {
                out += &fill(format.assistant.prefix, started);
                out += content;
                out += &fill(format.assistant.suffix, started);
                started = true;
            }
            _ => {}
        }
    }
    out += &fill(format.generation, started);
    out
}

/// Go text/template source for Ollama; mirrors [`render`] step by step.
fn go_template(format: &Format, system: &System, bos: &str, eos: &str) -> String {
    let uses_bos = [
        format.user.prefix,
        format.user.suffix,
        format.assistant.prefix,
        format.assistant.suffix,
    ]
    .iter()
    .any(|s| s.contains(BOS));
    let lit = |s: &str| {
        let mut out = String::new();
        for (i, part) in s.split(BOS).enumerate() {
            if i > 0 {
                out += "{{ if $started }}";
                out += &text(bos);
                out += "{{ end }}";
            }
            out += &text(&part.replace(EOS, eos));
        }
        out
    };
    let mark = if uses_bos {
        "{{ $started = true }}"
    } else {
        ""
    };
    let mut t = String::new();
    if uses_bos {
        t += "{{ $started := false }}";
    }
    if *system == System::IntoUser {
        t += "{{ $system := \"\" }}";
    }
    if let (System::Own { preamble }, SystemStyle::Own(w)) = (system, format.system) {
        if !preamble.is_empty() {
            t += "{{ if or (not .Messages) (ne (index .Messages 0).Role \"system\") }}";
            t += &format!(
                "{}{}{}{mark}{{{{ end }}}}",
                lit(w.prefix),
                text(preamble),
                lit(w.suffix)
            );
        }
    }
    t += "{{ range .Messages }}";
    match (system, format.system) {
        (System::Own { preamble }, SystemStyle::Own(w)) => {
            t += &format!(
                "{{{{ if eq .Role \"system\" }}}}{}{}{{{{ .Content }}}}{}{mark}",
                lit(w.prefix),
                text(preamble),
                lit(w.suffix)
            );
            t += "{{ else if eq .Role \"user\" }}";
        }
        (System::IntoUser, _) => {
            t += "{{ if eq .Role \"system\" }}{{ $system = .Content }}";
            t += "{{ else if eq .Role \"user\" }}";
        }
        _ => t += "{{ if eq .Role \"user\" }}",
    }
    t += &lit(format.user.prefix);
    if let (System::IntoUser, SystemStyle::IntoUser(w)) = (system, format.system) {
        t += &format!(
            "{{{{ if $system }}}}{}{{{{ $system }}}}{}{{{{ $system = \"\" }}}}{{{{ end }}}}",
            lit(w.prefix),
            lit(w.suffix)
        );
    }
    t += &format!("{{{{ .Content }}}}{}{mark}", lit(format.user.suffix));
    t += &format!(
        "{{{{ else if eq .Role \"assistant\" }}}}{}{{{{ .Content }}}}{}{mark}",
        lit(format.assistant.prefix),
        lit(format.assistant.suffix)
    );
    t += "{{ end }}{{ end }}";
    t += &lit(format.generation);
    t
}

/// Literal text in a Go template: everything stands for itself except the action delimiter.
fn text(s: &str) -> String {
    s.replace("{{", "{{ \"{{\" }}")
}
