//! A reader for Ollama's Modelfile grammar, written from `parser/parser.go` in the Ollama sources
//! (`ParseFile`, `parseRuneForState`, `unquote`). It is what [`crate::modelfile`] checks each file
//! against before writing it: a value that Ollama would cut short, merge with the next line or strip
//! characters from is refused instead of being written.
//!
//! The grammar, in short: a command word, a space, then a value that ends at the first line break at
//! which it is complete: bare (no leading or trailing space, one line), `"…"`, or `"""…"""`; there are
//! no escape sequences; characters Go does not consider printable are dropped.

use crate::error::{ExportError, Result};

/// One command as Ollama's parser records it; `name` is lowercase (`model` for FROM, the parameter
/// name for PARAMETER), `args` is the unquoted value (`role: content` for MESSAGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: String,
}

impl Command {
    pub fn new(name: impl Into<String>, args: impl Into<String>) -> Self {
        Command {
            name: name.into(),
            args: args.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Nil,
    Name,
    Value,
    Parameter,
    Message,
    Comment,
}

const COMMANDS: &[&str] = &[
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
];

pub fn parse(text: &str) -> Result<Vec<Command>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut commands = Vec::new();
    let mut name = String::new();
    let mut state = State::Nil;
    let mut line = 1;
    let mut buf = String::new();
    let mut role = String::new();
    let syntax = |line: usize, reason: &str| ExportError::ModelfileSyntax {
        line,
        reason: reason.to_string(),
    };

    for c in text.chars() {
        if is_newline(c) {
            line += 1;
        }
        let (mut next, kept) = step(c, state).map_err(|reason| syntax(line, reason))?;
        if next != state {
            match state {
                State::Name => {
                    let word = buf.to_lowercase();
                    if !COMMANDS.contains(&word.as_str()) {
                        return Err(syntax(line, "unknown command"));
                    }
                    match word.as_str() {
                        "from" => name = "model".into(),
                        "parameter" => next = State::Parameter,
                        "message" => {
                            next = State::Message;
                            name = word;
                        }
                        _ => name = word,
                    }
                }
                State::Parameter => name = buf.clone(),
                State::Message => {
                    if !matches!(buf.as_str(), "system" | "user" | "assistant") {
                        return Err(syntax(
                            line,
                            "message role must be system, user or assistant",
                        ));
                    }
                    role = buf.clone();
                }
                State::Comment | State::Nil => {}
                State::Value => match unquote(buf.trim()) {
                    Some(value) if !is_space(c) => {
                        let args = if role.is_empty() {
                            value.to_string()
                        } else {
                            format!("{}: {value}", std::mem::take(&mut role))
                        };
                        commands.push(Command::new(name.clone(), args));
                    }
                    _ => {
                        buf.push(c);
                        continue;
                    }
                },
            }
            buf.clear();
            state = next;
        }
        if let Some(c) = kept.filter(|&c| go_printable(c)) {
            buf.push(c);
        }
    }

    match state {
        State::Comment | State::Nil => {}
        State::Value => {
            let value =
                unquote(buf.trim()).ok_or_else(|| syntax(line, "unterminated quoted value"))?;
            let args = if role.is_empty() {
                value.to_string()
            } else {
                format!("{role}: {value}")
            };
            commands.push(Command::new(name, args));
        }
        _ => return Err(syntax(line, "the file ends inside a command")),
    }
    if !commands.iter().any(|c| c.name == "model") {
        return Err(syntax(0, "no FROM line"));
    }
    Ok(commands)
}

/// The next state and the character to keep, if any (Go's `parseRuneForState`, rune 0 as `None`).
fn step(c: char, state: State) -> std::result::Result<(State, Option<char>), &'static str> {
    Ok(match state {
        State::Nil if c == '#' => (State::Comment, None),
        State::Nil if is_space(c) || is_newline(c) => (State::Nil, None),
        State::Nil => (State::Name, Some(c)),
        State::Name if c.is_ascii_alphabetic() => (State::Name, Some(c)),
        State::Name if is_space(c) => (State::Value, None),
        State::Name => return Err("unknown command"),
        State::Value if is_newline(c) || is_space(c) => (State::Nil, Some(c)),
        State::Value => (State::Value, Some(c)),
        State::Parameter if c.is_ascii_alphanumeric() || c == '_' => (State::Parameter, Some(c)),
        State::Message if c.is_ascii_alphabetic() => (State::Message, Some(c)),
        State::Parameter | State::Message if is_space(c) => (State::Value, None),
        State::Parameter | State::Message => {
            return Err("unexpected character in a parameter name or message role")
        }
        State::Comment if is_newline(c) => (State::Nil, None),
        State::Comment => (State::Comment, None),
    })
}

fn unquote(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix("\"\"\"") {
        return (s.len() >= 6)
            .then(|| rest.strip_suffix("\"\"\""))
            .flatten();
    }
    if let Some(rest) = s.strip_prefix('"') {
        return (s.len() >= 2).then(|| rest.strip_suffix('"')).flatten();
    }
    Some(s)
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space. Without
/// Unicode category tables this lists the non-printable classes instead: controls, spaces other than
/// U+0020, format characters and private use. Unassigned code points, which Go also drops, are not
/// detected.
pub fn go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}
