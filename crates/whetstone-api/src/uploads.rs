//! Files handed over by content rather than by path: a page in a browser is never told where a
//! dropped file lives, so it sends the file's text, which is kept in the home folder's `imports`
//! folder under a fresh name and then imported by that path like any other file. Nothing there is
//! ever replaced: each upload gets a name no file has.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::Api;

/// The folder in the home folder that keeps uploaded files.
pub const IMPORTS_DIR: &str = "imports";

/// The largest file a page may upload. Larger files are imported by their path instead; the
/// server's request limit leaves room for this much text once it is escaped as JSON.
pub const MAX_UPLOAD_BYTES: usize = 4 << 20;

/// Extensions the importer reads (see `whetstone_data::import::SourceFormat`).
const EXTENSIONS: &[&str] = &["jsonl", "ndjson", "json", "csv", "tsv", "tab", "txt", "text", "md"];

/// Longest stem kept from a file's name.
const MAX_STEM_CHARS: usize = 80;

#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The file's name as the page knows it (`support.jsonl`); only a cleaned-up last part is used.
    pub name: String,
    /// The file's whole text.
    pub text: String,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Uploaded {
    /// Where the text was written: pass it to `data_import`.
    pub path: PathBuf,
    /// The file name it was given in the imports folder.
    pub file_name: String,
    pub bytes: usize,
}

/// The stem and extension a given name is kept under: its last path part, with every character
/// that is not a letter, digit, `-`, `_` or `.` replaced, no leading dots, and a name Windows
/// accepts. The extension must be one the importer reads.
pub fn clean_name(name: &str) -> Result<(String, String)> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let (stem, ext) = match last.rsplit_once('.') {
        Some((s, e)) => (s, e.to_ascii_lowercase()),
        None => ("", String::new()),
    };
    if !EXTENSIONS.contains(&ext.as_str()) {
        return Err(Error::InvalidInput(format!(
            "`{}` is not a file Whetstone reads: drop a .jsonl, .json, .csv, .tsv or .txt file",
            if last.is_empty() { name } else { last }
        )));
    }
    let mut clean: String = stem
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(MAX_STEM_CHARS)
        .collect();
    clean = clean.trim_matches(|c| c == '.' || c == ' ').to_string();
    const RESERVED: &[&str] = &["CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "LPT1", "LPT2", "LPT3"];
    if clean.is_empty() {
        clean = "upload".into();
    } else if RESERVED.contains(&clean.to_ascii_uppercase().as_str()) {
        clean = format!("file-{clean}");
    }
    Ok((clean, ext))
}

impl Api {
    /// Keeps an uploaded file's text in `<home>/imports` under a fresh name.
    pub fn data_upload(&self, req: &UploadRequest) -> Result<Uploaded> {
        let (stem, ext) = clean_name(&req.name)?;
        let bytes = req.text.len();
        if bytes > MAX_UPLOAD_BYTES {
            return Err(Error::TooLarge {
                what: format!(
                    "`{}` ({} MB; a page can send files of up to {} MB: for a larger file, give its path instead)",
                    req.name,
                    bytes.div_ceil(1 << 20),
                    MAX_UPLOAD_BYTES >> 20
                ),
                bytes,
                limit: MAX_UPLOAD_BYTES,
            });
        }
        if req.text.trim().is_empty() {
            return Err(Error::InvalidInput(format!("`{}` is empty: there are no examples in it", req.name)));
        }
        let dir = self.home().join(IMPORTS_DIR);
        for n in 1..10_000u32 {
            let file_name = if n == 1 { format!("{stem}.{ext}") } else { format!("{stem}-{n}.{ext}") };
            let path = dir.join(&file_name);
            match whetstone_files::write_new(&path, req.text.as_bytes()) {
                Ok(()) => return Ok(Uploaded { path, file_name, bytes }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(Error::Io { action: "write", path, source }),
            }
        }
        Err(Error::InvalidInput(format!(
            "the imports folder {} already holds 9,999 files named like `{stem}.{ext}`; rename the file",
            dir.display()
        )))
    }
}
