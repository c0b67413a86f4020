//! The one reader of training files: every shape and format import accepts, bad records listed by line.

use std::io::Write;
use std::path::PathBuf;

use whetstone_data::{read_training_rows, DataError, Message, RowBody, RowError};

fn write(suffix: &str, content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/samples")
}

#[test]
fn every_shape_reads_with_its_line() {
    let file = write(
        ".jsonl",
        concat!(
            r#"{"prompt": "P1", "response": "R1"}"#,
            "\n",
            r#"{"prompt": "P2", "completion": "C2", "id": 7}"#,
            "\n\n",
            r#"{"instruction": "I3", "response": "R3"}"#,
            "\r\n",
            r#"{"instruction": "I4", "input": "in4", "output": "O4"}"#,
            "\n",
            r#"{"instruction": "I5", "input": "", "output": "O5"}"#,
            "\n   \t\n",
            r#"{"question": "Q7", "answer": "A7", "context": "C7"}"#,
            "\n",
            r#"{"conversations": [{"from": "human", "value": "H8"}, {"from": "gpt", "value": "G8"}]}"#,
            "\n",
            r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]}"#,
            "\n",
            r#"{"text": "plain ten"}"#,
            "\n",
        ),
    );
    let rows = read_training_rows(file.path()).unwrap();
    let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![1, 2, 4, 5, 6, 8, 9, 10, 11]);
    let pair = |u: &str, a: &str| RowBody::Chat(vec![Message::user(u), Message::assistant(a)]);
    assert_eq!(rows[0].body, pair("P1", "R1"));
    assert_eq!(rows[1].body, pair("P2", "C2"));
    assert_eq!(rows[2].body, pair("I3", "R3"));
    assert_eq!(rows[3].body, pair("I4\n\nin4", "O4"));
    assert_eq!(rows[4].body, pair("I5", "O5"));
    assert_eq!(rows[5].body, pair("C7\n\nQ7", "A7"));
    assert_eq!(rows[6].body, pair("H8", "G8"));
    assert_eq!(rows[7].body, RowBody::Chat(vec![Message::system("S"), Message::user("U"), Message::assistant("A")]));
    assert_eq!(rows[8].body, RowBody::Text("plain ten".into()));
}

#[test]
fn every_sample_shape_file_reads_like_import_does() {
    for entry in std::fs::read_dir(samples().join("shapes")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (mut accepted, mut rejected) = (Vec::new(), 0);
        whetstone_data::import::import_file(
            &path,
            &Default::default(),
            |r| {
                accepted.push(r);
                Ok(())
            },
            |_| {
                rejected += 1;
                Ok(())
            },
        )
        .unwrap();
        match read_training_rows(&path) {
            Ok(rows) => {
                assert_eq!(rejected, 0, "{name}");
                assert_eq!(rows, accepted, "{name}: the reader and import agree row for row");
            }
            Err(DataError::BadRows { bad, .. }) => {
                assert_eq!(bad.len(), rejected, "{name}: every rejected record is reported");
                assert!(rejected > 0);
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn bad_rows_are_all_reported_with_line_numbers() {
    let file = write(
        ".jsonl",
        concat!(
            "{\"prompt\": \"ok\", \"response\": \"ok\"}\n",
            "{\"prompt\": \"ok\", \"response\": \"ok\"}\n",
            "{\"prompt\": \"broken\", \"response\": \n",
            "{\"prompt\": \"ok\", \"response\": \"ok\"}\n",
            "\n",
            "{\"prompt\": \"ok\", \"response\": \"ok\"}\n",
            "{\"prompt\": \"no answer\"}\n",
            "{\"prompt\": \"ok\", \"response\": \"ok\"}\n",
        ),
    );
    let err = read_training_rows(file.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&file.path().display().to_string()), "{text}");
    assert!(text.contains("2 bad rows out of 7"), "{text}");
    assert!(text.contains("line 3: invalid JSON"), "{text}");
    assert!(text.contains("line 7: missing field `response`"), "{text}");
    match err {
        DataError::BadRows { bad, total_rows, .. } => {
            assert_eq!(total_rows, 7);
            assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 7]);
            assert!(matches!(bad[0].reason, RowError::InvalidJson(_)));
            assert_eq!(bad[1].reason, RowError::MissingField("response".into()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn csv_and_text_files_train_too() {
    let csv = write(".csv", "prompt,response\nHow tall?,Three metres.\n\"Two, words\",\"Yes\"\n");
    let rows = read_training_rows(csv.path()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].body, RowBody::Chat(vec![Message::user("Two, words"), Message::assistant("Yes")]));
    let txt = write(".txt", "First document.\n\nSecond\ndocument.\n");
    let rows = read_training_rows(txt.path()).unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3]);
}

#[test]
fn long_error_lists_are_summarised() {
    let mut content = String::new();
    for i in 0..25 {
        content.push_str(if i % 2 == 0 { "{}\n" } else { "{\"prompt\":\"a\",\"response\":\"b\"}\n" });
    }
    let file = write(".jsonl", &content);
    let err = read_training_rows(file.path()).unwrap_err().to_string();
    assert!(err.contains("13 bad rows out of 25"), "{err}");
    assert_eq!(err.matches("\n  line ").count(), 10);
    assert!(err.contains("line 19: cannot tell what this row holds") && !err.contains("line 21:"), "{err}");
    assert!(err.ends_with("... and 3 more"), "{err}");
}

#[test]
fn missing_and_empty_files_are_named() {
    let err = read_training_rows(std::path::Path::new("/definitely/not/here.jsonl")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("/definitely/not/here.jsonl"), "{err}");

    let file = write(".jsonl", "\n  \n");
    let err = read_training_rows(file.path()).unwrap_err().to_string();
    assert!(err.contains("no rows") && err.contains(&file.path().display().to_string()), "{err}");
}

#[test]
fn errors_carry_codes_that_say_what_went_wrong() {
    let missing = read_training_rows(std::path::Path::new("/definitely/not/here.jsonl")).unwrap_err();
    assert_eq!(missing.code(), "io");
    let bad = write(".jsonl", "{\"prompt\": 1, \"response\": \"x\"}\n");
    assert_eq!(read_training_rows(bad.path()).unwrap_err().code(), "bad_data");
    let in_row = DataError::InRow { line: 3, source: Box::new(DataError::TemplateNotIncremental { turn: 1 }) };
    assert_eq!(in_row.code(), "chat_template");
    assert_eq!(DataError::InvalidOption("x".into()).code(), "invalid_input");
}
