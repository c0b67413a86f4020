//! Import of each source format, record by record: line numbers, rejections and their reasons.

mod common;

use whetstone_data::import::{import_file, ImportOptions, Rejection, Shape, SourceFormat};
use whetstone_data::{build_text_example, DataRow, Message, RowBody};

fn run(name: &str, bytes: &[u8], opts: ImportOptions) -> (Vec<DataRow>, Vec<Rejection>, whetstone_data::import::ImportReport) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    let report = import_file(
        &path,
        &opts,
        |r| {
            rows.push(r);
            Ok(())
        },
        |r| {
            rejected.push(r.clone());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(report.accepted + report.rejected, report.rows);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the source was changed");
    (rows, rejected, report)
}

fn lines(rej: &[Rejection]) -> Vec<String> {
    rej.iter().map(|r| format!("{}: {}", r.line, r.reason)).collect()
}

fn expect(want: &[(usize, &str)]) -> Vec<String> {
    want.iter().map(|(l, r)| format!("{l}: {r}")).collect()
}

#[test]
fn json_arrays_are_read_element_by_element_with_their_lines() {
    let src = b"\xef\xbb\xbf[\n  {\"prompt\": \"a [tricky] \\\"string\\\", with commas\", \"response\": \"b\"},\n  {\"prompt\": 1, \"response\": \"x\"},\n\n  {\"prompt\": \"multi\",\n   \"response\": \"line\"}\n]\n";
    let (rows, rej, rep) = run("a.json", src, ImportOptions::default());
    assert_eq!(rep.format, SourceFormat::JsonArray);
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(rows[0].body, RowBody::Chat(vec![Message::user("a [tricky] \"string\", with commas"), Message::assistant("b")]));
    assert_eq!(lines(&rej), expect(&[(3, "field `prompt` must be a string, got a number")]));

    // A truncated file loses only the unfinished element, and says so.
    let (rows, rej, _) = run("t.json", b"[{\"text\": \"one\"}, {\"text\": \"tw", ImportOptions::default());
    assert_eq!(rows.len(), 1);
    assert_eq!(lines(&rej), expect(&[(1, "the file ends inside this record")]));

    // Text after the closing bracket is reported, not ignored.
    let (rows, rej, _) = run("g.json", b"[{\"text\": \"one\"}]\ngarbage", ImportOptions::default());
    assert_eq!(rows.len(), 1);
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0].line, 2);
}

#[test]
fn a_json_file_that_is_not_an_array_or_lines_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.json");
    std::fs::write(&path, "\"just a string\"").unwrap();
    let err = import_file(&path, &ImportOptions::default(), |_| Ok(()), |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("cannot tell the file's format"), "{err}");
    let err = import_file(
        &path,
        &ImportOptions { format: Some(SourceFormat::JsonArray), ..Default::default() },
        |_| Ok(()),
        |_| Ok(()),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("must hold an array of records"), "{err}");
}

#[test]
fn csv_rows_keep_their_line_even_with_quoted_newlines() {
    let src = b"prompt,response\n\"first\nline two\",ok\nshort\n\"third\",\"\"\n\"bad \xff\",x\n\"fine\",\"yes\"\n";
    let (rows, rej, rep) = run("t.csv", src, ImportOptions::default());
    assert_eq!(rep.format, SourceFormat::Csv);
    assert_eq!(rep.shape, Some(Shape::PromptResponse));
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 7]);
    assert_eq!(
        lines(&rej),
        expect(&[(4, "has 1 fields but the header has 2"), (5, "field `response` is empty"), (6, "not valid UTF-8")])
    );
}

#[test]
fn over_long_rows_are_skipped_without_being_buffered() {
    let mut src = b"{\"text\": \"short\"}\n{\"text\": \"".to_vec();
    src.extend(std::iter::repeat_n(b'x', 10_000));
    src.extend(b"\"}\r\n{\"text\": \"after\"}\r\n");
    let opts = ImportOptions { max_row_bytes: 100, ..Default::default() };
    let (rows, rej, _) = run("l.jsonl", &src, opts);
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(rej.len(), 1);
    assert!(rej[0].reason.to_string().starts_with("over-long: 10012 bytes"), "{}", rej[0].reason);
}

#[test]
fn text_files_are_documents_separated_by_blank_lines() {
    let (rows, rej, rep) = run("d.txt", b"\n\nfirst doc\nstill first\n\n\nsecond \xff doc\n\nthird\n", ImportOptions::default());
    assert_eq!(rep.shape, Some(Shape::Text));
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].line, &rows[0].body), (3, &RowBody::Text("first doc\nstill first".into())));
    assert_eq!(rows[1].line, 9);
    assert_eq!(lines(&rej), expect(&[(7, "not valid UTF-8")]));
}

#[test]
fn source_hash_covers_the_whole_file() {
    let (_, _, rep) = run("h.jsonl", b"{\"text\": \"abc\"}\n", ImportOptions::default());
    // sha256 of the exact bytes, as `sha256sum` prints it.
    assert_eq!(rep.source_sha256, "b3b44c015f2cfd9f6727c04576599da0309a65ffc71323b91e87b469177983c2");
    assert_eq!(rep.source_bytes, 16);
}

#[test]
fn plain_text_trains_every_token_and_ends_with_end_of_sequence() {
    let tok = common::smollm2();
    let ex = build_text_example(tok, "Rivers shape valleys.", 1024).unwrap();
    let eos = tok.eos_id().unwrap();
    assert_eq!(*ex.input_ids.last().unwrap(), eos);
    let first_trained = ex.loss_mask.iter().position(|&m| m).unwrap();
    assert!(ex.loss_mask[first_trained..].iter().all(|&m| m));
    assert_eq!(tok.decode(&ex.input_ids[first_trained..ex.len() - 1], false).unwrap(), "Rivers shape valleys.");
    let cut = build_text_example(tok, "Rivers shape valleys.", 2).unwrap();
    assert_eq!(cut.len(), 2);
}
