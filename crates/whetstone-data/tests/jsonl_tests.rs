use std::io::Write;
use std::path::Path;

use whetstone_data::{
    parse_jsonl, read_jsonl, read_jsonl_rows, DataError, Message, Record, RowError,
};

fn write(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

#[test]
fn every_shape_parses() {
    let file = write(concat!(
        r#"{"prompt": "P1", "response": "R1"}"#,
        "\n",
        r#"{"prompt": "P2", "completion": "C2", "id": 7}"#,
        "\n",
        "\n",
        r#"{"instruction": "I3", "response": "R3"}"#,
        "\r\n",
        r#"{"instruction": "I4", "input": "in4", "output": "O4"}"#,
        "\n",
        r#"{"instruction": "I5", "input": "", "output": "O5"}"#,
        "\n",
        "   \t\n",
        r#"{"instruction": "I6", "output": "O6"}"#,
        "\n",
        r#"{"instruction": "I7", "input": null, "output": "O7"}"#,
        "\n",
        r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]}"#,
    ));
    let rows = read_jsonl_rows(file.path()).unwrap();
    let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![1, 2, 4, 5, 6, 8, 9, 10]);
    let convs = read_jsonl(file.path()).unwrap();
    let pair = |u: &str, a: &str| vec![Message::user(u), Message::assistant(a)];
    assert_eq!(convs[0], pair("P1", "R1"));
    assert_eq!(convs[1], pair("P2", "C2"));
    assert_eq!(convs[2], pair("I3", "R3"));
    assert_eq!(convs[3], pair("I4\n\nin4", "O4"));
    assert_eq!(convs[4], pair("I5", "O5"));
    assert_eq!(convs[5], pair("I6", "O6"));
    assert_eq!(convs[6], pair("I7", "O7"));
    assert_eq!(
        convs[7],
        vec![
            Message::system("S"),
            Message::user("U"),
            Message::assistant("A"),
            Message::user("U2"),
            Message::assistant("A2")
        ]
    );
    assert_eq!(
        Record::parse(r#"{"instruction":"a","input":"b","output":"c"}"#)
            .unwrap()
            .shape(),
        "instruction/input/output"
    );
}

#[test]
fn bad_rows_are_all_reported_with_line_numbers() {
    let file = write(concat!(
        r#"{"prompt": "ok", "response": "ok"}"#,
        "\n",
        r#"{"prompt": "ok", "response": "ok"}"#,
        "\n",
        r#"{"prompt": "broken", "response": "#,
        "\n",
        r#"{"prompt": "ok", "response": "ok"}"#,
        "\n",
        "\n",
        r#"{"prompt": "ok", "response": "ok"}"#,
        "\n",
        r#"{"prompt": "no answer"}"#,
        "\n",
        r#"{"prompt": "ok", "response": "ok"}"#,
        "\n",
    ));
    let err = read_jsonl(file.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&file.path().display().to_string()), "{text}");
    assert!(text.contains("2 bad rows out of 7"), "{text}");
    assert!(text.contains("line 3: invalid JSON"), "{text}");
    assert!(text.contains("line 7: missing field `response`"), "{text}");
    match err {
        DataError::BadRows {
            bad, total_rows, ..
        } => {
            assert_eq!(total_rows, 7);
            assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 7]);
            assert!(matches!(bad[0].reason, RowError::InvalidJson(_)));
            assert_eq!(bad[1].reason, RowError::MissingField("response".into()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_kind_of_bad_row_has_a_clear_reason() {
    let cases: &[(&str, &str)] = &[
        (r#"[1, 2]"#, "row must be a JSON object, got an array"),
        (
            r#"{"prompt": "", "response": "r"}"#,
            "field `prompt` is empty",
        ),
        (
            r#"{"prompt": "p", "response": "   "}"#,
            "field `response` is empty",
        ),
        (
            r#"{"prompt": 5, "response": "r"}"#,
            "field `prompt` must be a string, got a number",
        ),
        (
            r#"{"prompt": "p", "response": "r", "completion": "c"}"#,
            "ambiguous row: has both `response` and `completion`",
        ),
        (
            r#"{"question": "q", "answer": "a"}"#,
            r#"unknown row shape with keys ["answer", "question"]"#,
        ),
        (
            r#"{"instruction": "i", "input": 3, "output": "o"}"#,
            "field `input` must be a string, got a number",
        ),
        (r#"{"instruction": "i"}"#, "missing field `output`"),
        (r#"{"messages": []}"#, "field `messages` is empty"),
        (
            r#"{"messages": "hi"}"#,
            "field `messages` must be an array, got a string",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "q"}]}"#,
            "no assistant message",
        ),
        (
            r#"{"messages": [{"role": "tool", "content": "q"}]}"#,
            "unknown role `tool` in `messages[0].role`",
        ),
        (
            r#"{"messages": [{"role": "user"}]}"#,
            "missing field `messages[0].content`",
        ),
        (
            r#"{"messages": [{"role": "user", "content": null}]}"#,
            "field `messages[0].content` must be a string, got null",
        ),
        (
            r#"{"messages": [1]}"#,
            "field `messages[0]` must be an object, got a number",
        ),
        (
            r#"{"messages": [], "prompt": "p"}"#,
            "ambiguous row: has both `messages` and `prompt`",
        ),
    ];
    for (line, want) in cases {
        let err = Record::parse(line).unwrap_err().to_string();
        assert!(err.contains(want), "{line}: got {err:?}, want {want:?}");
    }
    assert_eq!(
        Record::parse_bytes(b"{\"prompt\": \"\xff\"}").unwrap_err(),
        RowError::NotUtf8
    );
}

#[test]
fn long_error_lists_are_summarised() {
    let mut content = String::new();
    for i in 0..25 {
        content.push_str(if i % 2 == 0 {
            "{}\n"
        } else {
            "{\"prompt\":\"a\",\"response\":\"b\"}\n"
        });
    }
    let err = parse_jsonl(Path::new("many.jsonl"), content.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("many.jsonl: 13 bad rows out of 25"),
        "{err}"
    );
    assert_eq!(err.matches("\n  line ").count(), 10);
    assert!(
        err.contains("line 19: unknown row shape") && !err.contains("line 21:"),
        "{err}"
    );
    assert!(err.ends_with("... and 3 more"), "{err}");
}

#[test]
fn missing_and_empty_files_are_named() {
    let err = read_jsonl("/definitely/not/here.jsonl").unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(
        err.to_string().contains("/definitely/not/here.jsonl"),
        "{err}"
    );

    let file = write("\n  \n");
    let err = read_jsonl(file.path()).unwrap_err().to_string();
    assert!(
        err.contains("no rows") && err.contains(&file.path().display().to_string()),
        "{err}"
    );
}

/// xorshift64*: a fixed-seed generator so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    // Fragments that steer random rows into the parser's deeper branches.
    let fragments: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"\"prompt\"",
        b"\"response\"",
        b"\"completion\"",
        b"\"instruction\"",
        b"\"input\"",
        b"\"output\"",
        b"\"messages\"",
        b"\"role\"",
        b"\"content\"",
        b"\"user\"",
        b"\"assistant\"",
        b"\"system\"",
        b"null",
        b"true",
        b"1e999",
        b"-0",
        b"\"\\u0000\"",
        b"\"\\ud800\"",
        b" ",
        b"\n",
        b"\r",
        b"\xff",
        b"\xe2\x82",
        "é".as_bytes(),
        b"\"x\"",
    ];
    for round in 0..4000 {
        let mut bytes = Vec::new();
        let len = rng.below(40);
        for _ in 0..len {
            if round % 2 == 0 {
                bytes.push(rng.next() as u8);
            } else {
                bytes.extend_from_slice(fragments[rng.below(fragments.len())]);
            }
        }
        let _ = Record::parse_bytes(&bytes);
        let _ = Record::parse(&String::from_utf8_lossy(&bytes));
        let _ = parse_jsonl(Path::new("fuzz.jsonl"), &bytes);
    }
    // Deep nesting must be an error, not a stack overflow.
    let deep = format!(
        "{{\"messages\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(Record::parse(&deep).is_err());
}
