//! Randomised robustness test of every parser, with a fixed seed so failures reproduce: arbitrary bytes and
//! arbitrary JSON shapes, in every source format, must never panic, and every record must be either accepted
//! or rejected (`accepted + rejected = rows`). The cleaning steps then run on whatever was accepted.

use serde_json::{json, Map, Value};
use whetstone_data::clean::{self, CleanOptions, PiiDecision, PiiDecisions};
use whetstone_data::import::{import_file, ImportOptions, Mapping, SourceFormat, FIELDS};
use whetstone_data::DataRow;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FORMATS: [SourceFormat; 5] =
    [SourceFormat::Jsonl, SourceFormat::JsonArray, SourceFormat::Csv, SourceFormat::Tsv, SourceFormat::Text];

/// Bytes biased towards the characters parsers care about.
fn bytes(rng: &mut Rng) -> Vec<u8> {
    const SPECIAL: &[u8] = b"{}[]\",:\\\n\r\t ";
    let n = rng.below(300);
    (0..n)
        .map(|_| match rng.below(4) {
            0 => SPECIAL[rng.below(SPECIAL.len())],
            1 => rng.next() as u8,
            _ => b'a' + rng.below(26) as u8,
        })
        .collect()
}

fn string(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "", " ", "hello", "x@y.io", "555-123-4567", "4111 1111 1111 1111", "123-45-6789", "10.0.0.1",
        "12 Main Street", "é", "\u{1F600}", "\n", "\"", "\\", "user", "assistant", "gpt", "human",
    ];
    (0..rng.below(4)).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    match if depth > 3 { rng.below(4) } else { rng.below(7) } {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => Value::String(string(rng)),
        4 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        5 => {
            // A message-like object, so chat parsing goes deep.
            let mut m = Map::new();
            for k in ["role", "content", "from", "value", "text"] {
                if rng.below(2) == 0 {
                    m.insert(k.into(), value(rng, depth + 1));
                }
            }
            Value::Object(m)
        }
        _ => record(rng, depth + 1),
    }
}

fn record(rng: &mut Rng, depth: usize) -> Value {
    let mut m = Map::new();
    for _ in 0..rng.below(5) {
        let key = if rng.below(5) == 0 { string(rng) } else { FIELDS[rng.below(FIELDS.len())].to_string() };
        let v = if rng.below(3) == 0 { Value::String(string(rng)) } else { value(rng, depth) };
        m.insert(key, v);
    }
    Value::Object(m)
}

fn check(path: &std::path::Path, format: SourceFormat, mapping: &Mapping, limit: usize) -> Vec<DataRow> {
    let opts = ImportOptions { format: Some(format), mapping: mapping.clone(), max_row_bytes: limit };
    let mut rows = Vec::new();
    let mut rejected = 0;
    let on_row = |r| {
        rows.push(r);
        Ok(())
    };
    let on_reject = |_: &_| {
        rejected += 1;
        Ok(())
    };
    match import_file(path, &opts, on_row, on_reject) {
        Ok(rep) => {
            assert_eq!(rep.accepted + rep.rejected, rep.rows, "{format:?}: counts do not add up");
            assert_eq!(rep.accepted, rows.len());
            assert_eq!(rep.rejected, rejected);
            for r in &rows {
                assert!(r.line >= 1);
                assert_eq!(DataRow::from_json(&r.to_json()).as_ref(), Ok(r));
            }
        }
        // A whole-file problem (not an array, bad CSV header) is an error, never a panic.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    rows
}

fn clean_all(rows: Vec<DataRow>) {
    let opts = CleanOptions { exact: true, near: Some(0.5), pii: true, min_chars: Some(2), max_chars: Some(200), boilerplate: true };
    let p = clean::propose(&rows, &opts).unwrap();
    let decisions = PiiDecisions { default: Some(PiiDecision::Redact), ..Default::default() };
    let n = rows.len();
    let (out, applied) = clean::apply(rows, &p, &decisions).unwrap();
    assert_eq!(out.len(), applied.rows_after);
    assert_eq!(
        n,
        applied.rows_after
            + applied.exact_duplicates_removed
            + applied.near_duplicates_removed
            + applied.length_removed
            + applied.boilerplate_removed
            + applied.pii_rows_dropped
    );
}

#[test]
fn arbitrary_bytes_never_panic_in_any_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    let mut rng = Rng(2025);
    for i in 0..600 {
        let mut data = Vec::new();
        for _ in 0..rng.below(6) {
            data.extend(bytes(&mut rng));
        }
        if i % 3 == 0 {
            data.insert(0, b'[');
        }
        std::fs::write(&path, &data).unwrap();
        let limit = [1, 16, 200, 1 << 20][rng.below(4)];
        for f in FORMATS {
            check(&path, f, &Mapping::default(), limit);
        }
    }
}

#[test]
fn arbitrary_json_shapes_never_panic_and_rows_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    let mut rng = Rng(7);
    let mappings = [
        Mapping::default(),
        Mapping::new(vec![("prompt".into(), "text".into()), ("response".into(), "value".into())]).unwrap(),
        Mapping::new(vec![("messages".into(), "conversations".into())]).unwrap(),
    ];
    for i in 0..400 {
        let recs: Vec<Value> = (0..rng.below(12)).map(|_| record(&mut rng, 0)).collect();
        let mapping = &mappings[i % mappings.len()];
        let lines: Vec<String> = recs.iter().map(|r| r.to_string()).collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let rows = check(&path, SourceFormat::Jsonl, mapping, 1 << 20);
        clean_all(rows);

        // Sometimes cut anywhere, even inside a character, as a truncated download would.
        let mut text = Value::Array(recs.clone()).to_string().into_bytes();
        if rng.below(4) == 0 {
            text.truncate(rng.below(text.len() + 1));
        }
        std::fs::write(&path, &text).unwrap();
        check(&path, SourceFormat::JsonArray, mapping, 1 << 20);

        // The same records as a table: keys of the first record as the header, values as JSON text.
        let header: Vec<String> = recs.first().and_then(|r| r.as_object()).map(|o| o.keys().cloned().collect()).unwrap_or_default();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header).unwrap();
        for r in &recs {
            let o = r.as_object().unwrap();
            let cells: Vec<String> = header
                .iter()
                .map(|k| match o.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                })
                .collect();
            w.write_record(&cells).unwrap();
        }
        std::fs::write(&path, w.into_inner().unwrap()).unwrap();
        let rows = check(&path, SourceFormat::Csv, mapping, 1 << 20);
        clean_all(rows);
    }
}
