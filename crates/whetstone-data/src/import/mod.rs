//! Importing a dataset file: JSONL, a JSON array, CSV/TSV or plain text, streamed record by record.
//!
//! Every record ends up either accepted (as a [`DataRow`] with its line number) or rejected with its line, record
//! number and reason, so `accepted + rejected = rows` always holds. The source file is only read.

pub mod readers;
pub mod shapes;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::datarow::{DataRow, RowBody};
use crate::error::{DataError, Result, RowError};
use readers::{ArrayError, HashingReader, JsonArrayReader, JsonlReader, RawBody, RawRecord, TextReader};
pub use crate::error::Rejection;
pub use shapes::{Mapping, Shape, FIELDS};

/// Default limit on one record's size; longer records are rejected as over-long without being buffered.
pub const DEFAULT_MAX_ROW_BYTES: usize = 1 << 20;

/// How many rejections an [`ImportReport`] spells out; all of them go to the `on_reject` callback.
pub const MAX_REPORTED_REJECTIONS: usize = 1000;

/// Records are parsed in parallel in batches this large, keeping memory bounded.
const BATCH: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    Jsonl,
    JsonArray,
    Csv,
    Tsv,
    Text,
}

impl SourceFormat {
    pub fn parse(s: &str) -> Option<SourceFormat> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(SourceFormat::Jsonl),
            "json" | "json-array" | "json_array" => Some(SourceFormat::JsonArray),
            "csv" => Some(SourceFormat::Csv),
            "tsv" => Some(SourceFormat::Tsv),
            "text" | "txt" => Some(SourceFormat::Text),
            _ => None,
        }
    }

    /// From the extension, looking at the first byte where the extension alone cannot tell.
    pub fn detect(path: &Path) -> Result<SourceFormat> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        match ext.as_str() {
            "jsonl" | "ndjson" => return Ok(SourceFormat::Jsonl),
            "csv" => return Ok(SourceFormat::Csv),
            "tsv" | "tab" => return Ok(SourceFormat::Tsv),
            "txt" | "text" | "md" => return Ok(SourceFormat::Text),
            _ => {}
        }
        let io = |source| DataError::Io { path: path.to_path_buf(), source };
        let mut r = BufReader::new(File::open(path).map_err(io)?);
        let head = r.fill_buf().map_err(io)?;
        let head = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => Ok(SourceFormat::JsonArray),
            Some(b'{') => Ok(SourceFormat::Jsonl),
            _ => Err(DataError::BadSource {
                path: path.to_path_buf(),
                reason: "cannot tell the file's format from its name or its first character; name it .jsonl, \
                         .json, .csv, .tsv or .txt, or pass --format"
                    .into(),
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Overrides detection from the file name.
    pub format: Option<SourceFormat>,
    pub mapping: Mapping,
    pub max_row_bytes: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { format: None, mapping: Mapping::default(), max_row_bytes: DEFAULT_MAX_ROW_BYTES }
    }
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ImportReport {
    pub path: PathBuf,
    pub format: SourceFormat,
    /// The most common shape among accepted rows.
    #[ts(as = "Option<String>")]
    pub shape: Option<Shape>,
    pub shapes: BTreeMap<String, usize>,
    /// Records read (blank lines are not records).
    pub rows: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// The first [`MAX_REPORTED_REJECTIONS`] rejections, in file order.
    pub rejections: Vec<Rejection>,
    pub source_sha256: String,
    pub source_bytes: u64,
}

/// A record's line, number, and what became of it.
type Converted = std::result::Result<(Shape, RowBody), RowError>;

enum Source<R> {
    Jsonl(JsonlReader<R>),
    Array(JsonArrayReader<R>),
    Csv { reader: csv::Reader<R>, headers: Vec<String>, record: usize },
    Text(TextReader<R>),
}

/// Reads `path`, handing each accepted row to `on_row` and each rejected record to `on_reject`, in file order.
pub fn import_file(
    path: &Path,
    opts: &ImportOptions,
    mut on_row: impl FnMut(DataRow) -> std::io::Result<()>,
    mut on_reject: impl FnMut(&Rejection) -> std::io::Result<()>,
) -> Result<ImportReport> {
    if opts.max_row_bytes == 0 {
        return Err(DataError::InvalidOption("the row size limit must be at least 1 byte".into()));
    }
    let format = match opts.format {
        Some(f) => f,
        None => SourceFormat::detect(path)?,
    };
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let hashing = HashingReader::new(file);
    let reader = BufReader::with_capacity(1 << 16, hashing);
    let limit = opts.max_row_bytes;
    let bad_source = |reason: String| DataError::BadSource { path: path.to_path_buf(), reason };
    let mut source = match format {
        SourceFormat::Jsonl => Source::Jsonl(JsonlReader::new(reader, limit)),
        SourceFormat::JsonArray => Source::Array(JsonArrayReader::new(reader, limit)),
        SourceFormat::Text => Source::Text(TextReader::new(reader, limit)),
        SourceFormat::Csv | SourceFormat::Tsv => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(if format == SourceFormat::Tsv { b'\t' } else { b',' })
                .flexible(true)
                .has_headers(true)
                .from_reader(reader);
            let headers = csv_headers(&mut reader).map_err(bad_source)?;
            Source::Csv { reader, headers, record: 0 }
        }
    };

    let mut report = ImportReport {
        path: path.to_path_buf(),
        format,
        shape: None,
        shapes: BTreeMap::new(),
        rows: 0,
        accepted: 0,
        rejected: 0,
        rejections: Vec::new(),
        source_sha256: String::new(),
        source_bytes: 0,
    };
    let mut counts: BTreeMap<Shape, usize> = BTreeMap::new();
    let headers: Vec<String> = match &source {
        Source::Csv { headers, .. } => headers.clone(),
        _ => Vec::new(),
    };
    let mut batch: Vec<RawRecord> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        while batch.len() < BATCH {
            match next_record(&mut source, limit, path)? {
                Some(r) => batch.push(r),
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        let converted: Vec<(usize, usize, Converted)> = batch
            .par_drain(..)
            .map(|raw| (raw.line, raw.record, convert(raw.body, &headers, &opts.mapping)))
            .collect();
        for (line, record, result) in converted {
            report.rows += 1;
            match result {
                Ok((shape, body)) => {
                    report.accepted += 1;
                    *counts.entry(shape).or_default() += 1;
                    on_row(DataRow { line, body, split: None }).map_err(io)?;
                }
                Err(reason) => {
                    report.rejected += 1;
                    let rej = Rejection { line, record, reason };
                    on_reject(&rej).map_err(io)?;
                    if report.rejections.len() < MAX_REPORTED_REJECTIONS {
                        report.rejections.push(rej);
                    }
                }
            }
        }
    }
    let hashing = match source {
        Source::Jsonl(r) => r.into_inner().into_inner(),
        Source::Array(r) => r.into_inner().into_inner(),
        Source::Text(r) => r.into_inner().into_inner(),
        Source::Csv { reader, .. } => reader.into_inner().into_inner(),
    };
    let (sha, bytes) = hashing.finish().map_err(io)?;
    report.source_sha256 = sha;
    report.source_bytes = bytes;
    report.shape = counts.iter().max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s))).map(|(s, _)| *s);
    report.shapes = counts.into_iter().map(|(s, n)| (s.name().to_string(), n)).collect();
    Ok(report)
}

fn csv_headers<R: std::io::Read>(reader: &mut csv::Reader<R>) -> std::result::Result<Vec<String>, String> {
    let raw = reader.byte_headers().map_err(|e| format!("cannot read the header row: {e}"))?.clone();
    let mut headers = Vec::with_capacity(raw.len());
    for (i, h) in raw.iter().enumerate() {
        let h = if i == 0 { h.strip_prefix("\u{feff}".as_bytes()).unwrap_or(h) } else { h };
        let name = std::str::from_utf8(h)
            .map_err(|_| format!("the header row (line 1) is not valid UTF-8 in column {}", i + 1))?
            .trim()
            .to_string();
        let name = if name.is_empty() { format!("column{}", i + 1) } else { name };
        if headers.contains(&name) {
            return Err(format!("the header row names column `{name}` twice"));
        }
        headers.push(name);
    }
    Ok(headers)
}

fn next_record<R: BufRead>(source: &mut Source<R>, limit: usize, path: &Path) -> Result<Option<RawRecord>> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    match source {
        Source::Jsonl(r) => r.next_record().map_err(io),
        Source::Text(r) => r.next_record().map_err(io),
        Source::Array(r) => r.next_record().map_err(|e| match e {
            ArrayError::Io(e) => io(e),
            ArrayError::NotAnArray { line, found } => DataError::BadSource {
                path: path.to_path_buf(),
                reason: format!(
                    "line {line}: a JSON file must hold an array of records (`[{{...}}, ...]`) or one record per \
                     line, but it starts with `{found}`"
                ),
            },
        }),
        Source::Csv { reader, headers, record } => {
            let mut rec = csv::ByteRecord::new();
            let more = reader.read_byte_record(&mut rec).map_err(|e| match e.into_kind() {
                csv::ErrorKind::Io(e) => io(e),
                other => DataError::BadSource { path: path.to_path_buf(), reason: format!("{other:?}") },
            })?;
            if !more {
                return Ok(None);
            }
            *record += 1;
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
            let bytes = rec.as_slice().len();
            let body = if bytes > limit {
                RawBody::Bad(RowError::TooLong { bytes, limit })
            } else if rec.len() != headers.len() {
                RawBody::Bad(RowError::WrongFieldCount { got: rec.len(), expected: headers.len() })
            } else {
                RawBody::Cells(rec.iter().map(|c| c.to_vec()).collect())
            };
            Ok(Some(RawRecord { line, record: *record, body }))
        }
    }
}

/// A raw record to a row body, or the reason it is rejected.
pub fn convert(body: RawBody, headers: &[String], mapping: &Mapping) -> std::result::Result<(Shape, RowBody), RowError> {
    match body {
        RawBody::Bad(e) => Err(e),
        RawBody::Text(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| RowError::NotUtf8)?;
            if text.trim().is_empty() {
                return Err(RowError::EmptyField("text".into()));
            }
            Ok((Shape::Text, RowBody::Text(text)))
        }
        RawBody::Json(bytes) => {
            let text = std::str::from_utf8(&bytes).map_err(|_| RowError::NotUtf8)?;
            let value: Value = serde_json::from_str(text).map_err(|e| RowError::InvalidJson(e.to_string()))?;
            let Value::Object(obj) = value else {
                return Err(RowError::NotAnObject(shapes::kind_name(&value)));
            };
            shapes::from_object(obj, mapping)
        }
        RawBody::Cells(cells) => {
            let mut obj = Map::with_capacity(cells.len());
            for (name, cell) in headers.iter().zip(cells) {
                let s = String::from_utf8(cell).map_err(|_| RowError::NotUtf8)?;
                obj.insert(name.clone(), Value::String(s));
            }
            shapes::from_object(obj, mapping)
        }
    }
}
