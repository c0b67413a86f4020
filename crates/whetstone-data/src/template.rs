//! Chat templates: the model's own Jinja template rendered the way transformers renders it.

use std::fmt;

use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::hf_compat;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// Parses the lowercase name used in datasets and templates.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }
}

/// The template used when a model ships none: ChatML, i.e. each message as
/// `<|im_start|>{role}\n{content}<|im_end|>\n`, and `<|im_start|>assistant\n` as the generation prompt.
/// It suits models trained on ChatML (SmolLM, Qwen); for others it is a reasonable, visible default, and
/// `ChatTemplate::is_fallback` lets callers warn about it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n\
{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template plus the special-token strings it may refer to.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    fallback: bool,
    bos_token: String,
    eos_token: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("fallback", &self.fallback)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("source", &self.source)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles a model's Jinja chat template. Missing special tokens render as empty strings.
    pub fn new(
        source: impl Into<String>,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self> {
        Self::build(source.into(), false, bos_token, eos_token)
    }

    /// The documented ChatML fallback (see [`CHATML_TEMPLATE`]).
    pub fn chatml(bos_token: Option<&str>, eos_token: Option<&str>) -> Self {
        Self::build(CHATML_TEMPLATE.to_string(), true, bos_token, eos_token)
            .expect("the built-in ChatML template compiles")
    }

    fn build(source: String, fallback: bool, bos: Option<&str>, eos: Option<&str>) -> Result<Self> {
        let mut env = Environment::new();
        // transformers compiles templates with trim_blocks and lstrip_blocks; without them whitespace differs.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", hf_compat::raise_exception);
        env.add_function("strftime_now", hf_compat::strftime_now);
        env.add_filter("tojson", hf_compat::tojson);
        env.add_template_owned(TEMPLATE_NAME, source.clone())
            .map_err(|e| {
                DataError::Template(format!(
                    "cannot compile the chat template: {}",
                    describe(&e)
                ))
            })?;
        Ok(ChatTemplate {
            env,
            source,
            fallback,
            bos_token: bos.unwrap_or_default().to_string(),
            eos_token: eos.unwrap_or_default().to_string(),
        })
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the model shipped no template and [`CHATML_TEMPLATE`] is used instead.
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation to text; with `add_generation_prompt` the text ends where the assistant's reply
    /// should begin.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| DataError::Template(describe(&e)))?;
        template
            .render(context! {
                messages => Value::from_serialize(messages),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| {
                DataError::Template(format!("cannot render the conversation: {}", describe(&e)))
            })
    }
}

/// minijinja keeps the line and the reason in separate fields; join them into one readable sentence.
fn describe(err: &minijinja::Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => detail.to_string(),
        None => err.kind().to_string(),
    };
    if let Some(line) = err.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders_documented_format() {
        let t = ChatTemplate::chatml(None, None);
        let msgs = [Message::user("Hi"), Message::assistant("Hello!")];
        assert_eq!(
            t.render(&msgs, false).unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        );
        assert_eq!(
            t.render(&msgs[..1], true).unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(t.is_fallback());
    }

    #[test]
    fn python_methods_special_tokens_and_exceptions() {
        let src = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system') }}\
                   {% endif %}[{{ m['role'].upper() }}] {{ m.content.strip() }}{% if m.content.startswith('Q') %}?{% endif %}{{ '\\n' }}\
                   {% endfor %}{{ eos_token }}";
        let t = ChatTemplate::new(src, Some("<s>"), Some("</s>")).unwrap();
        let out = t
            .render(&[Message::user("Q1  "), Message::assistant("A")], false)
            .unwrap();
        assert_eq!(out, "<s>[USER] Q1?\n[ASSISTANT] A\n</s>");
        let err = t
            .render(&[Message::system("x")], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no system"), "{err}");
    }

    #[test]
    fn block_whitespace_is_trimmed_like_transformers() {
        let src = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}\n";
        let t = ChatTemplate::new(src, None, None).unwrap();
        assert_eq!(
            t.render(&[Message::user("a"), Message::user("b")], false)
                .unwrap(),
            "U:a\nU:b\n"
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = ChatTemplate::new("{% for m in messages %}", None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot compile the chat template"), "{err}");
    }
}
