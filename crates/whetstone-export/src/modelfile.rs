//! The Ollama Modelfile of an export and the commands that load it into Ollama.

use serde::{Deserialize, Serialize};

use crate::error::{ExportError, Result};
use crate::modelfile_parser::{go_printable, parse, Command};
use crate::shell::quote as shell_quote;
use crate::template::OllamaTemplate;

/// Sampling settings written as `PARAMETER` lines; a missing one keeps Ollama's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub num_ctx: Option<u32>,
    pub repeat_penalty: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Modelfile {
    /// A GGUF path relative to the Modelfile, or an Ollama model name.
    pub from: String,
    pub template: String,
    pub stops: Vec<String>,
    pub parameters: Parameters,
    pub system: Option<String>,
    pub license: Option<String>,
    /// A LoRA adapter (GGUF or safetensors folder) applied over `from`.
    pub adapter: Option<String>,
}

impl Modelfile {
    /// A Modelfile for `from` speaking the model's chat format; the template's default system prompt
    /// becomes `SYSTEM`.
    pub fn new(from: impl Into<String>, template: &OllamaTemplate) -> Self {
        Modelfile {
            from: from.into(),
            template: template.template.clone(),
            stops: template.stops.clone(),
            system: template.default_system.clone(),
            ..Modelfile::default()
        }
    }

    /// The commands in the order they are written, as Ollama's parser will read them back.
    pub fn commands(&self) -> Result<Vec<Command>> {
        if self.from.trim().is_empty() {
            return Err(ExportError::Invalid(
                "a Modelfile needs a FROM: the GGUF file or base model".into(),
            ));
        }
        let mut out = vec![Command::new("model", &self.from)];
        if let Some(adapter) = &self.adapter {
            out.push(Command::new("adapter", adapter));
        }
        if !self.template.is_empty() {
            out.push(Command::new("template", &self.template));
        }
        if let Some(system) = &self.system {
            out.push(Command::new("system", system));
        }
        for stop in &self.stops {
            if stop.is_empty() {
                return Err(ExportError::Invalid(
                    "an empty stop sequence would stop every answer at once".into(),
                ));
            }
            out.push(Command::new("stop", stop));
        }
        let p = &self.parameters;
        let floats = [
            ("temperature", p.temperature),
            ("top_p", p.top_p),
            ("repeat_penalty", p.repeat_penalty),
        ];
        for (name, value) in floats {
            if let Some(v) = value {
                if !v.is_finite() || v < 0.0 {
                    return Err(ExportError::Invalid(format!(
                        "{name} must be a finite number of at least 0, not {v}"
                    )));
                }
            }
        }
        let mut push = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push(Command::new(name, v));
            }
        };
        push("temperature", p.temperature.map(|v| v.to_string()));
        push("top_p", p.top_p.map(|v| v.to_string()));
        push("top_k", p.top_k.map(|v| v.to_string()));
        push("num_ctx", p.num_ctx.map(|v| v.to_string()));
        push("repeat_penalty", p.repeat_penalty.map(|v| v.to_string()));
        if let Some(license) = &self.license {
            out.push(Command::new("license", license));
        }
        Ok(out)
    }

    /// The file's text. Every value is checked by reading the text back with Ollama's grammar, so
    /// what Ollama gets is exactly what was meant or nothing is written.
    pub fn render(&self) -> Result<String> {
        let commands = self.commands()?;
        let mut text = String::new();
        for c in &commands {
            let line = line(c)?;
            // Read each line back alone (after a FROM, which the grammar requires) so that a value
            // Ollama would cut short or run into the next line is named.
            let alone = if c.name == "model" {
                format!("{line}\n")
            } else {
                format!("FROM x\n{line}\n")
            };
            let back = parse(&alone).ok().and_then(|cs| cs.last().cloned());
            if back.as_ref() != Some(c) {
                return Err(ExportError::Unrepresentable {
                    field: c.name.clone(),
                    reason: "no quoting makes Ollama's parser read it back unchanged (a line ending in \"\"\" inside it, or a leading quote)".into(),
                });
            }
            text += &line;
            text.push('\n');
        }
        debug_assert_eq!(parse(&text).ok().as_ref(), Some(&commands));
        Ok(text)
    }
}

fn line(c: &Command) -> Result<String> {
    let value = quote(c)?;
    Ok(match c.name.as_str() {
        "model" => format!("FROM {value}"),
        "adapter" | "template" | "system" | "license" => {
            format!("{} {value}", c.name.to_uppercase())
        }
        _ => format!("PARAMETER {} {value}", c.name),
    })
}

/// A value in the form Ollama's own `quote` writes (bare, `"…"` or `"""…"""`), also quoting what it
/// leaves bare but cannot read back (a value that starts with a quote, an empty one). There are no
/// escapes, so a value that no form carries intact is refused.
fn quote(c: &Command) -> Result<String> {
    let s = c.args.as_str();
    let unrepresentable = |reason: String| ExportError::Unrepresentable {
        field: c.name.clone(),
        reason,
    };
    if let Some(bad) = s
        .chars()
        .find(|&ch| !go_printable(ch) && !matches!(ch, '\n' | '\r' | '\t'))
    {
        return Err(unrepresentable(format!(
            "it contains U+{:04X}, which Ollama drops when it reads the file",
            bad as u32
        )));
    }
    let edge_space = |ch: char| matches!(ch, ' ' | '\t');
    let plain = !s.is_empty()
        && !s.contains(['\n', '\r'])
        && !s.starts_with(edge_space)
        && !s.ends_with(edge_space)
        && !s.starts_with('"');
    if plain {
        return Ok(s.to_string());
    }
    if !s.contains('"') {
        return Ok(format!("\"{s}\""));
    }
    Ok(format!("\"\"\"{s}\"\"\""))
}

/// `ollama create` for a Modelfile at `modelfile` (relative to the folder the command runs in).
pub fn create_command(name: &str, modelfile: &str) -> Result<String> {
    check_model_name(name)?;
    Ok(format!(
        "ollama create {name} -f {}",
        shell_quote(modelfile)
    ))
}

pub fn run_command(name: &str) -> Result<String> {
    check_model_name(name)?;
    Ok(format!("ollama run {name}"))
}

/// Ollama model names: `[namespace/]model[:tag]` of letters, digits, `_`, `-` and `.`; checked here
/// so the name is safe to paste into a shell unquoted.
fn check_model_name(name: &str) -> Result<()> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    let (path, tag) = name.split_once(':').unwrap_or((name, "latest"));
    if path.split('/').all(part_ok) && part_ok(tag) && path.split('/').count() <= 3 {
        Ok(())
    } else {
        Err(ExportError::Invalid(format!(
            "{name:?} is not an Ollama model name: use letters, digits, '-', '_' and '.', optionally a namespace/ and a :tag"
        )))
    }
}
