//! Prints, as JSON, every template the probe fixtures translate to and the conversations to render
//! with it; `scripts/export/go_render.go` renders them with Go's text/template into
//! `tests/fixtures/go_renderings.json`, which the tests compare with the Rust renderer.

use whetstone_export::probe::ProbeRenderings;
use whetstone_export::template::translate;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(dir.join("probes.jsonl")).expect("probes.jsonl");
    let mut cases = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let rendering: ProbeRenderings =
            serde_json::from_value(v.clone()).expect("probe rendering");
        let Ok(t) = translate(&rendering, "<s>", "</s>") else {
            continue;
        };
        for messages in conversations() {
            let messages: Vec<_> = messages
                .iter()
                .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
                .collect();
            cases.push(serde_json::json!({"name": v["name"], "template": t.template, "messages": messages}));
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&cases).expect("serialise")
    );
}

fn conversations() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![],
        vec![("user", "Hi {{ there }}")],
        vec![("system", "Be brief."), ("user", "Hi")],
        vec![
            ("system", "Be brief."),
            ("user", "a"),
            ("assistant", "b"),
            ("user", "c"),
        ],
        vec![("user", "a"), ("assistant", "b\n"), ("user", " c ")],
    ]
}
