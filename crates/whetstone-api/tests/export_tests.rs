//! Metrics exports: CSV columns, and TensorBoard event files read back record by record with their
//! CRCs checked and the protocol buffers decoded.

use serde_json::json;
use whetstone_api::export::{crc32c, masked_crc, metrics_csv, write_tensorboard};

#[test]
fn crc32c_matches_the_standard_check_value() {
    // The CRC-32C (Castagnoli) check value of "123456789".
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    assert_ne!(masked_crc(b"123456789"), crc32c(b"123456789"));
}

fn rows() -> Vec<serde_json::Value> {
    vec![
        json!({"kind": "train", "step": 1, "loss": 2.5, "lr": 1e-4, "grad_norm": 0.75, "tokens": 40, "tokens_per_s": 100.0, "elapsed_s": 0.4, "epoch": 0}),
        json!({"kind": "train", "step": 2, "loss": 2.25, "lr": 2e-4, "grad_norm": 0.5, "tokens": 42, "tokens_per_s": 105.0, "elapsed_s": 0.8, "epoch": 0}),
        json!({"kind": "eval", "step": 2, "loss": 2.0, "perplexity": 7.389, "tokens": 30, "elapsed_s": 0.9}),
    ]
}

#[test]
fn csv_has_one_line_per_row_with_empty_cells_for_missing_values() {
    let csv = metrics_csv(&rows());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "kind,step,epoch,loss,perplexity,lr,grad_norm,tokens,tokens_per_s,elapsed_s");
    assert_eq!(lines[1], "train,1,0,2.5,,0.0001,0.75,40,100.0,0.4");
    assert_eq!(lines[3], "eval,2,,2.0,7.389,,,30,,0.9");
    assert_eq!(lines.len(), 4);
}

/// Reads a protobuf message into (field, wire type, value bytes or varint).
enum Field {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(Vec<u8>),
}

fn read_varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let x = b[*i];
        *i += 1;
        v |= ((x & 0x7f) as u64) << shift;
        if x & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn parse(b: &[u8]) -> Vec<(u64, Field)> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let key = read_varint(b, &mut i);
        let f = match key & 7 {
            0 => Field::Varint(read_varint(b, &mut i)),
            1 => {
                let v = b[i..i + 8].try_into().unwrap();
                i += 8;
                Field::Fixed64(v)
            }
            2 => {
                let n = read_varint(b, &mut i) as usize;
                let v = b[i..i + n].to_vec();
                i += n;
                Field::Bytes(v)
            }
            5 => {
                let v = b[i..i + 4].try_into().unwrap();
                i += 4;
                Field::Fixed32(v)
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, f));
    }
    out
}

#[test]
fn tensorboard_file_has_valid_records_and_scalar_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tensorboard(&rows(), dir.path()).unwrap();
    assert!(path.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."));
    let bytes = std::fs::read(&path).unwrap();
    let mut i = 0;
    let mut events = Vec::new();
    while i < bytes.len() {
        let len_bytes = &bytes[i..i + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(bytes[i + 8..i + 12].try_into().unwrap()), masked_crc(len_bytes), "length CRC");
        let data = &bytes[i + 12..i + 12 + len];
        assert_eq!(u32::from_le_bytes(bytes[i + 12 + len..i + 16 + len].try_into().unwrap()), masked_crc(data), "data CRC");
        events.push(parse(data));
        i += 16 + len;
    }
    assert_eq!(i, bytes.len());
    assert_eq!(events.len(), 4, "file version + 3 rows");
    // Event 0: wall_time (1, double), step (2), file_version (3).
    let (1, Field::Fixed64(wall)) = &events[0][0] else { panic!("wall_time comes first") };
    assert!(f64::from_le_bytes(*wall) > 1.6e9, "wall time in seconds since 1970");
    assert!(events[0].iter().any(|(n, f)| *n == 3 && matches!(f, Field::Bytes(b) if b == b"brain.Event:2")));
    let scalars = |e: &Vec<(u64, Field)>| -> (u64, Vec<(String, f32)>) {
        let step = e.iter().find_map(|(n, f)| match (n, f) { (2, Field::Varint(v)) => Some(*v), _ => None }).unwrap();
        let summary = e.iter().find_map(|(n, f)| match (n, f) { (5, Field::Bytes(b)) => Some(b.clone()), _ => None }).unwrap();
        let values = parse(&summary)
            .into_iter()
            .map(|(n, f)| {
                assert_eq!(n, 1, "Summary.value");
                let Field::Bytes(v) = f else { panic!() };
                let fields = parse(&v);
                let tag = fields.iter().find_map(|(n, f)| match (n, f) { (1, Field::Bytes(b)) => Some(String::from_utf8(b.clone()).unwrap()), _ => None }).unwrap();
                let x = fields.iter().find_map(|(n, f)| match (n, f) { (2, Field::Fixed32(b)) => Some(f32::from_le_bytes(*b)), _ => None }).unwrap();
                (tag, x)
            })
            .collect();
        (step, values)
    };
    let (step, v) = scalars(&events[1]);
    assert_eq!(step, 1);
    assert_eq!(v, vec![("train/loss".into(), 2.5), ("train/lr".into(), 1e-4), ("train/grad_norm".into(), 0.75), ("train/tokens_per_s".into(), 100.0)]);
    let (step, v) = scalars(&events[3]);
    assert_eq!(step, 2);
    assert_eq!(v, vec![("eval/loss".into(), 2.0), ("eval/perplexity".into(), 7.389)]);
}
