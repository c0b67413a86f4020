//! Streaming readers: each yields one raw record at a time with the line it starts on, so files of any size
//! are read with memory bounded by the longest accepted record.

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

use crate::error::RowError;

/// A record as read from the file, before its shape is known.
#[derive(Debug, Clone)]
pub enum RawBody {
    /// One JSON value's bytes (a JSONL line or a JSON array element).
    Json(Vec<u8>),
    /// The cells of a CSV/TSV row, in header order.
    Cells(Vec<Vec<u8>>),
    /// A plain-text document.
    Text(Vec<u8>),
    /// Rejected while reading (invalid UTF-8, over-long, truncated, wrong field count).
    Bad(RowError),
}

#[derive(Debug, Clone)]
pub struct RawRecord {
    /// 1-based line the record starts on.
    pub line: usize,
    /// 1-based record number (rows for JSONL, elements for JSON arrays, data rows for CSV, documents for text).
    pub record: usize,
    pub body: RawBody,
}

/// Passes bytes through while hashing them, so the source hash costs no second read.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Reads whatever the parser left unread, then returns the hex SHA-256 and size of the whole input.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = self.hasher.finalize();
        Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `limit + 1` bytes of it; returns the line's
/// full length, or `None` at the end of input. A line longer than the limit is skipped over, not buffered.
pub fn read_line_bounded<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, limit: usize) -> io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    let mut last = 0u8;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        let room = (limit + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len();
        if let Some(&b) = chunk.last() {
            last = b;
        }
        match done {
            Some(n) => {
                r.consume(n);
                if last == b'\r' && total > 0 {
                    // A CRLF line ending is not part of the line.
                    if buf.len() == total {
                        buf.pop();
                    }
                    total -= 1;
                }
                return Ok(Some(total));
            }
            None => {
                let n = avail.len();
                r.consume(n);
            }
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b.is_ascii_whitespace())
}

const BOM: &[u8] = "\u{feff}".as_bytes();

/// One JSON value per line; blank lines are skipped and not counted as records.
pub struct JsonlReader<R> {
    r: R,
    line: usize,
    record: usize,
    limit: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(r: R, limit: usize) -> Self {
        JsonlReader { r, line: 0, record: 0, limit, buf: Vec::new() }
    }

    pub fn next_record(&mut self) -> io::Result<Option<RawRecord>> {
        loop {
            let Some(len) = read_line_bounded(&mut self.r, &mut self.buf, self.limit)? else {
                return Ok(None);
            };
            self.line += 1;
            if self.line == 1 && self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            if len <= self.limit && is_blank(&self.buf) {
                continue;
            }
            self.record += 1;
            let body = if len > self.limit {
                RawBody::Bad(RowError::TooLong { bytes: len, limit: self.limit })
            } else {
                RawBody::Json(std::mem::take(&mut self.buf))
            };
            return Ok(Some(RawRecord { line: self.line, record: self.record, body }));
        }
    }

    pub fn into_inner(self) -> R {
        self.r
    }
}

/// A top-level JSON array read element by element: a small scanner finds where each element ends (tracking
/// strings and nesting) and only that element is buffered and parsed.
pub struct JsonArrayReader<R> {
    r: R,
    line: usize,
    record: usize,
    limit: usize,
    started: bool,
    done: bool,
    peeked: Option<u8>,
    /// Line of text found after the closing bracket, reported once the last element has been returned.
    trailing_line: Option<usize>,
}

/// What stops a JSON array from being read at all.
#[derive(Debug)]
pub enum ArrayError {
    Io(io::Error),
    NotAnArray { line: usize, found: String },
}

impl From<io::Error> for ArrayError {
    fn from(e: io::Error) -> Self {
        ArrayError::Io(e)
    }
}

impl<R: BufRead> JsonArrayReader<R> {
    pub fn new(r: R, limit: usize) -> Self {
        JsonArrayReader { r, line: 1, record: 0, limit, started: false, done: false, peeked: None, trailing_line: None }
    }

    fn next_byte(&mut self) -> io::Result<Option<u8>> {
        if let Some(b) = self.peeked.take() {
            return Ok(Some(b));
        }
        let avail = self.r.fill_buf()?;
        let Some(&b) = avail.first() else {
            return Ok(None);
        };
        self.r.consume(1);
        if b == b'\n' {
            self.line += 1;
        }
        Ok(Some(b))
    }

    fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.next_byte()? {
                Some(b) if b.is_ascii_whitespace() => continue,
                other => return Ok(other),
            }
        }
    }

    pub fn next_record(&mut self) -> Result<Option<RawRecord>, ArrayError> {
        if let Some(rec) = self.take_trailing() {
            return Ok(Some(rec));
        }
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            let mut first = self.skip_ws()?;
            if first == Some(BOM[0]) {
                for _ in 1..BOM.len() {
                    self.next_byte()?;
                }
                first = self.skip_ws()?;
            }
            match first {
                Some(b'[') => {}
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(b) => {
                    return Err(ArrayError::NotAnArray {
                        line: self.line,
                        found: String::from_utf8_lossy(&[b]).into_owned(),
                    })
                }
            }
        }
        loop {
            let Some(first) = self.skip_ws()? else {
                // Every element so far was complete; only the closing bracket is missing.
                self.done = true;
                return Ok(None);
            };
            if first == b']' {
                return self.finish_array();
            }
            if first == b',' {
                // An empty element (`[a,,b]`, `[a,]`) holds no record; nothing is lost by skipping it.
                continue;
            }
            self.peeked = Some(first);
            let start_line = self.line;
            self.record += 1;
            let record = self.record;
            let mut buf = Vec::new();
            let mut total = 0usize;
            let (mut depth, mut in_str, mut esc) = (0usize, false, false);
            let mut end_of_array = false;
            loop {
                let Some(b) = self.next_byte()? else {
                    self.done = true;
                    return Ok(Some(RawRecord { line: start_line, record, body: RawBody::Bad(RowError::Truncated) }));
                };
                if in_str {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                } else {
                    match b {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        b']' => {
                            end_of_array = true;
                            break;
                        }
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                }
                total += 1;
                if buf.len() <= self.limit {
                    buf.push(b);
                }
            }
            while buf.last().is_some_and(|b| b.is_ascii_whitespace()) {
                buf.pop();
                total -= 1;
            }
            let body = if total > self.limit {
                RawBody::Bad(RowError::TooLong { bytes: total, limit: self.limit })
            } else {
                RawBody::Json(buf)
            };
            let rec = RawRecord { line: start_line, record, body };
            if end_of_array {
                self.done = true;
                self.trailing_line = self.trailing()?;
            }
            return Ok(Some(rec));
        }
    }

    fn finish_array(&mut self) -> Result<Option<RawRecord>, ArrayError> {
        self.done = true;
        match self.trailing()? {
            Some(line) => {
                self.record += 1;
                Ok(Some(RawRecord {
                    line,
                    record: self.record,
                    body: RawBody::Bad(RowError::InvalidJson("unexpected text after the closing `]`".into())),
                }))
            }
            None => Ok(None),
        }
    }

    /// The line of the first non-blank byte after the closing bracket, if any.
    fn trailing(&mut self) -> io::Result<Option<usize>> {
        match self.skip_ws()? {
            Some(_) => Ok(Some(self.line)),
            None => Ok(None),
        }
    }

    fn take_trailing(&mut self) -> Option<RawRecord> {
        let line = self.trailing_line.take()?;
        self.record += 1;
        Some(RawRecord {
            line,
            record: self.record,
            body: RawBody::Bad(RowError::InvalidJson("unexpected text after the closing `]`".into())),
        })
    }

    pub fn into_inner(self) -> R {
        self.r
    }
}

/// Plain text: documents separated by blank lines, each starting at its first line.
pub struct TextReader<R> {
    r: R,
    line: usize,
    record: usize,
    limit: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> TextReader<R> {
    pub fn new(r: R, limit: usize) -> Self {
        TextReader { r, line: 0, record: 0, limit, buf: Vec::new() }
    }

    pub fn next_record(&mut self) -> io::Result<Option<RawRecord>> {
        let mut doc: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut start = 0usize;
        let mut bad_utf8_line = None;
        loop {
            let len = read_line_bounded(&mut self.r, &mut self.buf, self.limit)?;
            let Some(len) = len else { break };
            self.line += 1;
            if self.line == 1 && self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            let blank = len <= self.limit && is_blank(&self.buf);
            if blank {
                if start == 0 {
                    continue;
                }
                break;
            }
            if start == 0 {
                start = self.line;
            }
            if bad_utf8_line.is_none() && len <= self.limit && std::str::from_utf8(&self.buf).is_err() {
                bad_utf8_line = Some(self.line);
            }
            if total > 0 {
                total += 1;
                if doc.len() <= self.limit {
                    doc.push(b'\n');
                }
            }
            total += len;
            if doc.len() <= self.limit {
                let room = (self.limit + 1).saturating_sub(doc.len());
                doc.extend_from_slice(&self.buf[..self.buf.len().min(room)]);
            }
        }
        if start == 0 {
            return Ok(None);
        }
        self.record += 1;
        let body = if total > self.limit {
            RawBody::Bad(RowError::TooLong { bytes: total, limit: self.limit })
        } else if let Some(bad) = bad_utf8_line {
            return Ok(Some(RawRecord { line: bad, record: self.record, body: RawBody::Bad(RowError::NotUtf8) }));
        } else {
            RawBody::Text(doc)
        };
        Ok(Some(RawRecord { line: start, record: self.record, body }))
    }

    pub fn into_inner(self) -> R {
        self.r
    }
}
