use whetstone_export::yaml::{scalar, Yaml};

/// Each string as this crate writes it; every right-hand side was read back with PyYAML 6
/// (`yaml.safe_load`) to the left-hand side.
const CASES: &[(&str, &str)] = &[
    ("plain-name_1.5/x", "plain-name_1.5/x"),
    ("./outputs/lora", "./outputs/lora"),
    ("", "\"\""),
    ("yes", "\"yes\""),
    ("No", "\"No\""),
    ("null", "\"null\""),
    ("1e-4", "\"1e-4\""),
    ("2024-01-01", "\"2024-01-01\""),
    ("key: value", "\"key: value\""),
    ("say \"hi\"", "\"say \\\"hi\\\"\""),
    ("it's", "\"it's\""),
    ("line one\nline two", "\"line one\\nline two\""),
    ("# not a comment", "\"# not a comment\""),
    ("- not a list", "\"- not a list\""),
    ("héllo 日本語 🙂", "\"héllo 日本語 🙂\""),
    ("tab\there", "\"tab\\there\""),
    ("sep\u{2028}here", "\"sep\\Lhere\""),
    ("bell\u{7}", "\"bell\\u0007\""),
    ("back\\slash", "\"back\\\\slash\""),
    ("*alias", "\"*alias\""),
    ("{a: 1}", "\"{a: 1}\""),
];

#[test]
fn strings_are_plain_only_when_nothing_else_can_be_read_into_them() {
    for (value, written) in CASES {
        assert_eq!(scalar(value), *written, "{value:?}");
    }
}

#[test]
fn nested_maps_and_lists_are_written_in_block_style() {
    let doc = Yaml::map(vec![
        ("tags", Yaml::strs(&["whetstone", "lora"])),
        ("empty", Yaml::List(vec![])),
        (
            "items",
            Yaml::List(vec![
                Yaml::map(vec![
                    ("path", Yaml::str("a.jsonl")),
                    ("opts", Yaml::map(vec![("k", Yaml::Int(1))])),
                ]),
                Yaml::str("x"),
            ]),
        ),
        ("rate", Yaml::Float(2.0)),
        ("small", Yaml::Float(0.00001)),
        ("on", Yaml::Bool(false)),
    ]);
    assert_eq!(
        doc.render(),
        "tags:\n  - whetstone\n  - lora\nempty: []\nitems:\n  - path: a.jsonl\n    opts:\n      k: 1\n  - x\nrate: 2.0\nsmall: 0.00001\n\"on\": false\n"
    );
}
