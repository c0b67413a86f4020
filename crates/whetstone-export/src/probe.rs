//! The fixed conversations a model's Jinja chat template is rendered with before export, so that its
//! format is recognised by what it produces rather than by how its Jinja is written.
//!
//! The caller renders them with the model's own template engine (the one training used), passing
//! [`PROBE_BOS`] and [`PROBE_EOS`] as `bos_token` / `eos_token` and `add_generation_prompt = true`.
//! `scripts/export/render_probes.py` does the same with jinja2 for the test fixtures; keep both equal.

use serde::{Deserialize, Serialize};

pub const PROBE_SYSTEM: &str = "SYSTEM-PROBE";
pub const PROBE_BOS: &str = "<BOS-PROBE>";
pub const PROBE_EOS: &str = "<EOS-PROBE>";

/// One message of a conversation, by role name as chat templates spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeMessage {
    pub role: &'static str,
    pub content: &'static str,
}

const TURNS: [ProbeMessage; 3] = [
    ProbeMessage {
        role: "user",
        content: "USER-PROBE-1",
    },
    ProbeMessage {
        role: "assistant",
        content: "ASSISTANT-PROBE-1",
    },
    ProbeMessage {
        role: "user",
        content: "USER-PROBE-2",
    },
];

/// User, assistant, user: every template must render this.
pub fn probe_without_system() -> Vec<ProbeMessage> {
    TURNS.to_vec()
}

/// The same conversation after a system message; some templates refuse it (Gemma 1 and 2, Mistral).
pub fn probe_with_system() -> Vec<ProbeMessage> {
    let mut messages = vec![ProbeMessage {
        role: "system",
        content: PROBE_SYSTEM,
    }];
    messages.extend(TURNS);
    messages
}

/// What the model's template made of the two probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRenderings {
    pub without_system: String,
    /// `None` when the template raised an error for the system message.
    pub with_system: Option<String>,
}
