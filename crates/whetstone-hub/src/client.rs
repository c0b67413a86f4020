//! The hub's HTTP API: search, repo metadata and file downloads.
//!
//! Downloads are written here with reqwest rather than through the `hf-hub` crate. `hf-hub` 1.0's
//! tokio API restarts a partial file from byte 0 (it writes `.incomplete` afresh on every GET), does
//! not check blobs against their SHA-256, has no cancel flag or offline-only switch, and pulls in
//! the Xet client; 0.4/0.5 read the token only from `$HF_HOME/token`. What Whetstone needs — resume
//! with `Range`, SHA-256 of LFS blobs, cancel, progress with rate and ETA — is this module, writing
//! the same cache layout (see [`crate::cache`]) so files stay shared with other HF tools.

use crate::cache::{hf_home, HfCache};
use crate::error::{Error, Result};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, ETAG, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How often progress is reported while bytes flow.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

pub struct HubClient {
    endpoint: String,
    token: Option<String>,
    cache: HfCache,
    offline: bool,
    retries: u32,
    backoff: Duration,
    http: reqwest::Client,
    /// For metadata: the hub answers LFS files with a redirect whose own headers carry the blob's
    /// ETag and size, which following it would lose.
    no_redirect: reqwest::Client,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct HubModel {
    pub id: String,
    pub downloads: Option<u64>,
    pub likes: Option<u64>,
    pub license: Option<String>,
    /// From the license's terms where Whetstone knows them, else `None`.
    pub commercial_use: Option<bool>,
    pub gated: bool,
    pub parameters: Option<u64>,
    /// Sum of the repo's file sizes, when the hub lists them.
    pub size_bytes: Option<u64>,
    pub pipeline_tag: Option<String>,
    /// Whether the catalog lists this repo.
    pub in_catalog: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoFile {
    pub name: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoInfo {
    pub id: String,
    /// The commit the revision points at.
    pub sha: String,
    pub files: Vec<RepoFile>,
    pub gated: bool,
    pub license: Option<String>,
}

/// One file of a pulled snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledFile {
    pub name: String,
    pub size: u64,
    /// The hub's ETag: SHA-256 of the content for LFS files, a git blob id for small ones.
    pub etag: String,
    /// Set when the content was checked against it.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    /// `snapshots/<commit>` in the cache: a model folder the engine reads directly.
    pub path: PathBuf,
    pub files: Vec<PulledFile>,
    pub license: Option<String>,
    pub gated: bool,
}

/// What a download reports as it goes.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct FileProgress {
    pub file: String,
    pub file_bytes: u64,
    pub file_total: Option<u64>,
    /// Over all files of the pull.
    pub bytes: u64,
    pub total_bytes: u64,
    /// Bytes per second fetched in this pull (cached and resumed bytes excluded).
    pub rate: f64,
    pub eta_s: Option<f64>,
    /// `download`, `verify`, `cached` or `done`.
    #[ts(type = "string")]
    pub phase: &'static str,
}

pub type ProgressFn = dyn Fn(&FileProgress) + Send + Sync;

#[derive(Clone, Default)]
pub struct DownloadOptions {
    /// Set it to stop; the partial file stays and the next pull resumes it.
    pub cancel: Option<Arc<AtomicBool>>,
    pub progress: Option<Arc<ProgressFn>>,
}

impl DownloadOptions {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Which failure a status code stands for, by what was asked.
enum Asked<'a> {
    Search,
    Repo { repo: &'a str, revision: &'a str },
    File { repo: &'a str, revision: &'a str, file: &'a str },
}

struct FileMeta {
    etag: String,
    size: Option<u64>,
    commit: Option<String>,
    url: Url,
}

impl HubClient {
    pub fn new(endpoint: &str, token: Option<String>, cache: HfCache) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        Url::parse(&endpoint).map_err(|e| Error::Invalid(format!("hub address `{endpoint}`: {e}")))?;
        // reqwest is built without a default crypto provider; ring needs no C toolchain beyond cc.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |redirects: bool| {
            let b = reqwest::Client::builder()
                .user_agent(concat!("whetstone/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(20))
                .read_timeout(Duration::from_secs(60));
            let b = if redirects { b } else { b.redirect(reqwest::redirect::Policy::none()) };
            b.build().map_err(|e| Error::Network { url: endpoint.clone(), reason: e.to_string() })
        };
        Ok(Self {
            http: build(true)?,
            no_redirect: build(false)?,
            endpoint,
            token: token.filter(|t| !t.trim().is_empty()).map(|t| t.trim().to_string()),
            cache,
            offline: false,
            retries: 5,
            backoff: Duration::from_millis(500),
        })
    }

    /// The endpoint from `HF_ENDPOINT`, the cache from `HF_HUB_CACHE`/`HF_HOME`, offline when
    /// `HF_HUB_OFFLINE` is set; the token is `token` if given, else `HF_TOKEN`, else the file
    /// `huggingface-cli login` writes.
    pub fn from_env(token: Option<String>) -> Result<Self> {
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()).unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let token = token
            .filter(|t| !t.trim().is_empty())
            .or_else(|| std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty()))
            .or_else(|| std::fs::read_to_string(hf_home().join("token")).ok());
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on"));
        Ok(Self::new(&endpoint, token, HfCache::from_env())?.offline(offline))
    }

    /// Use only what the cache holds; never touch the network.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    pub fn retries(mut self, retries: u32, first_backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = first_backoff;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn cache(&self) -> &HfCache {
        &self.cache
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    fn model_page(&self, repo: &str) -> String {
        format!("{}/{repo}", self.endpoint)
    }

    fn auth(&self, req: reqwest::RequestBuilder, url: &Url) -> reqwest::RequestBuilder {
        // The token goes to the hub only, never to the storage a download is redirected to.
        match &self.token {
            Some(t) if url.as_str().starts_with(&self.endpoint) => req.header(AUTHORIZATION, format!("Bearer {t}")),
            _ => req,
        }
    }

    fn url(&self, path: &str) -> Result<Url> {
        Url::parse(&format!("{}{path}", self.endpoint)).map_err(|e| Error::Invalid(format!("bad hub address for {path}: {e}")))
    }

    fn offline_error(&self, what: &str) -> Error {
        Error::NotCached { what: what.to_string(), cache: self.cache.root().to_path_buf() }
    }

    async fn get_json(&self, url: Url, asked: Asked<'_>) -> Result<serde_json::Value> {
        let mut attempt = 0;
        loop {
            let res = async {
                let resp = self.auth(self.http.get(url.clone()), &url).send().await.map_err(|e| net(&url, e))?;
                let resp = self.check(resp, &asked).await?;
                resp.json::<serde_json::Value>().await.map_err(|e| Error::BadResponse { url: url.to_string(), reason: e.to_string() })
            }
            .await;
            match res {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Models whose id matches `query`, most downloaded first.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<HubModel>> {
        if self.offline {
            return Err(self.offline_error("a hub search"));
        }
        let base = format!("{}/api/models", self.endpoint);
        let limit = limit.clamp(1, 100).to_string();
        let url = Url::parse_with_params(
            &base,
            &[("search", query), ("limit", &limit), ("full", "true"), ("sort", "downloads"), ("direction", "-1")],
        )
        .map_err(|e| Error::Invalid(format!("bad hub address {base}: {e}")))?;
        let v = self.get_json(url.clone(), Asked::Search).await?;
        let items = v.as_array().ok_or_else(|| Error::BadResponse { url: url.to_string(), reason: "expected a list of models".into() })?;
        Ok(items.iter().filter_map(parse_hub_model).collect())
    }

    /// The commit `revision` points at and the files it holds.
    pub async fn repo_info(&self, repo: &str, revision: &str) -> Result<RepoInfo> {
        check_repo_id(repo)?;
        if self.offline {
            return Err(self.offline_error(&format!("the file list of {repo}")));
        }
        let url = self.url(&format!("/api/models/{repo}/revision/{}", encode_segment(revision)))?;
        let v = self.get_json(url.clone(), Asked::Repo { repo, revision }).await?;
        let sha = v
            .get("sha")
            .and_then(|s| s.as_str())
            .ok_or_else(|| Error::BadResponse { url: url.to_string(), reason: "no `sha` in the repo's metadata".into() })?
            .to_string();
        let files = v
            .get("siblings")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|f| {
                        Some(RepoFile {
                            name: f.get("rfilename")?.as_str()?.to_string(),
                            size: f.get("size").and_then(|s| s.as_u64()).or_else(|| f.pointer("/lfs/size").and_then(|s| s.as_u64())),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(RepoInfo {
            id: v.get("id").and_then(|s| s.as_str()).unwrap_or(repo).to_string(),
            sha,
            files,
            gated: gated_flag(&v),
            license: license_of(&v),
        })
    }

    async fn check(&self, resp: reqwest::Response, asked: &Asked<'_>) -> Result<reqwest::Response> {
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            return Ok(resp);
        }
        let url = resp.url().to_string();
        let code = header(resp.headers(), "x-error-code").unwrap_or_default();
        let hub_message = header(resp.headers(), "x-error-message");
        let body = resp.text().await.unwrap_or_default();
        let message = hub_message.unwrap_or_else(|| {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| body.chars().take(200).collect())
        });
        let (repo, revision, file) = match asked {
            Asked::Search => return Err(Error::Http { url, status: status.as_u16(), message }),
            Asked::Repo { repo, revision } => (*repo, *revision, None),
            Asked::File { repo, revision, file } => (*repo, *revision, Some(*file)),
        };
        let repo_missing = || Error::RepoNotFound { repo: repo.to_string(), revision: None };
        Err(match status {
            // The hub answers 401 for repos that do not exist as well as for gated ones, and tells
            // them apart with X-Error-Code.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if code == "RepoNotFound" => repo_missing(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Error::Gated { repo: repo.to_string(), page: self.model_page(repo), had_token: self.token.is_some() }
            }
            StatusCode::NOT_FOUND if code == "RepoNotFound" => repo_missing(),
            StatusCode::NOT_FOUND if code == "RevisionNotFound" => {
                Error::RepoNotFound { repo: repo.to_string(), revision: Some(revision.to_string()) }
            }
            StatusCode::NOT_FOUND => match file {
                Some(f) => Error::FileNotFound { repo: repo.to_string(), revision: revision.to_string(), file: f.to_string() },
                None => repo_missing(),
            },
            _ => Error::Http { url, status: status.as_u16(), message },
        })
    }

    /// ETag, size and commit of a file, and where its bytes are, without downloading it.
    async fn file_meta(&self, repo: &str, revision: &str, file: &str) -> Result<FileMeta> {
        let mut url = self.url(&format!("/{repo}/resolve/{}/{}", encode_segment(revision), encode_path(file)))?;
        let asked = Asked::File { repo, revision, file };
        let mut attempt = 0;
        let mut hops = 0;
        loop {
            let sent = self.auth(self.no_redirect.head(url.clone()), &url).header("accept-encoding", "identity").send().await;
            let resp = match sent.map_err(|e| net(&url, e)) {
                Ok(r) => self.check(r, &asked).await,
                Err(e) => Err(e),
            };
            let resp = match resp {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                    continue;
                }
                other => other?,
            };
            let h = resp.headers();
            let linked_etag = header(h, "x-linked-etag");
            let location = header(h, LOCATION.as_str());
            if resp.status().is_redirection() && linked_etag.is_none() {
                // A renamed repo: the hub points at the new name; follow it on the hub itself.
                let next = location
                    .and_then(|l| url.join(&l).ok())
                    .ok_or_else(|| Error::BadResponse { url: url.to_string(), reason: "redirect without a location".into() })?;
                hops += 1;
                if hops > 5 {
                    return Err(Error::BadResponse { url: url.to_string(), reason: "too many redirects".into() });
                }
                url = next;
                continue;
            }
            let etag = linked_etag
                .or_else(|| header(h, ETAG.as_str()))
                .map(|e| clean_etag(&e))
                .filter(|e| !e.is_empty())
                .ok_or_else(|| Error::BadResponse { url: url.to_string(), reason: "no ETag for the file".into() })?;
            let size = header(h, "x-linked-size")
                .or_else(|| if resp.status().is_redirection() { None } else { header(h, CONTENT_LENGTH.as_str()) })
                .and_then(|s| s.parse().ok());
            let commit = header(h, "x-repo-commit");
            let data_url = match (resp.status().is_redirection(), location) {
                (true, Some(l)) => url.join(&l).map_err(|e| Error::BadResponse { url: url.to_string(), reason: e.to_string() })?,
                _ => url.clone(),
            };
            return Ok(FileMeta { etag, size, commit, url: data_url });
        }
    }

    /// Downloads `files` of `repo` at `revision` (all weights, config and tokenizer files when
    /// `None`) into the cache, resuming partial files, and returns the snapshot folder.
    pub async fn download(&self, repo: &str, revision: &str, files: Option<&[String]>, opts: &DownloadOptions) -> Result<Snapshot> {
        check_repo_id(repo)?;
        if self.offline {
            return self.cached_snapshot(repo, revision, files);
        }
        let info = self.repo_info(repo, revision).await?;
        let commit = info.sha.clone();
        let wanted: Vec<String> = match files {
            Some(f) if !f.is_empty() => f.to_vec(),
            _ => default_files(repo, &info)?,
        };
        if !info.files.is_empty() {
            if let Some(missing) = wanted.iter().find(|w| !info.files.iter().any(|f| &f.name == *w)) {
                return Err(Error::FileNotFound { repo: repo.into(), revision: revision.into(), file: missing.clone() });
            }
        }
        let mut metas = Vec::with_capacity(wanted.len());
        for f in &wanted {
            if opts.cancelled() {
                return Err(Error::Cancelled);
            }
            let meta = self.file_meta(repo, &commit, f).await?;
            if let Some(c) = meta.commit.as_deref().filter(|c| *c != commit) {
                return Err(Error::BadResponse {
                    url: meta.url.to_string(),
                    reason: format!("asked for commit {commit} of {repo} and got {c}"),
                });
            }
            metas.push(meta);
        }
        let total = metas.iter().map(|m| m.size.unwrap_or(0)).sum();
        let mut tracker = Tracker::new(total, opts.progress.clone());
        // What is already here (whole files, and what a stopped pull left) counts from the first
        // report, so a resumed download's bar starts where the last one stopped.
        for (name, meta) in wanted.iter().zip(&metas) {
            tracker.present(name, self.present_bytes(repo, meta));
        }
        tracker.phase("", "download");
        let mut pulled = Vec::with_capacity(wanted.len());
        for (name, meta) in wanted.iter().zip(&metas) {
            pulled.push(self.fetch_file(repo, &commit, name, meta, opts, &mut tracker).await?);
        }
        self.cache.write_ref(repo, revision, &commit)?;
        tracker.done();
        Ok(Snapshot {
            repo: repo.to_string(),
            revision: revision.to_string(),
            path: self.cache.snapshot_dir(repo, &commit),
            commit,
            files: pulled,
            license: info.license,
            gated: info.gated,
        })
    }

    /// Bytes of a file already in the cache: the whole blob, or the partial file a stopped pull left.
    fn present_bytes(&self, repo: &str, meta: &FileMeta) -> u64 {
        let len = |p: std::path::PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
        match len(self.cache.blob_path(repo, &meta.etag)) {
            Some(l) if meta.size.is_none_or(|s| s == l) => l,
            _ => len(self.cache.incomplete_path(repo, &meta.etag)).filter(|&l| meta.size.is_none_or(|s| l <= s)).unwrap_or(0),
        }
    }

    async fn fetch_file(&self, repo: &str, commit: &str, name: &str, meta: &FileMeta, opts: &DownloadOptions, tracker: &mut Tracker) -> Result<PulledFile> {
        tracker.start_file(name);
        let blob = self.cache.blob_path(repo, &meta.etag);
        let is_sha = is_sha256(&meta.etag);
        let existing = std::fs::metadata(&blob).ok().map(|m| m.len());
        if let Some(len) = existing.filter(|&l| meta.size.is_none_or(|s| s == l)) {
            tracker.cached(name, len);
            self.cache.link(repo, commit, name, &meta.etag)?;
            return Ok(PulledFile { name: name.into(), size: len, etag: meta.etag.clone(), sha256: None });
        }
        let part = self.cache.incomplete_path(repo, &meta.etag);
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let mut corrupted = 0;
        let sha256 = loop {
            self.fetch_with_retries(repo, commit, name, meta, &part, opts, tracker).await?;
            if !is_sha {
                break None;
            }
            tracker.phase(name, "verify");
            let actual = sha256_file(&part)?;
            if actual == meta.etag {
                break Some(actual);
            }
            // The bytes are not what the hub published: throw them away and fetch once more.
            std::fs::remove_file(&part).map_err(|e| Error::io("delete the corrupted download", &part, e))?;
            tracker.rewind(meta.size.unwrap_or(0));
            corrupted += 1;
            if corrupted > 1 {
                return Err(Error::Integrity { file: name.into(), expected: meta.etag.clone(), actual });
            }
        };
        let size = std::fs::metadata(&part).map_err(|e| Error::io("read", &part, e))?.len();
        std::fs::rename(&part, &blob).map_err(|e| Error::io("store the download as", &blob, e))?;
        self.cache.link(repo, commit, name, &meta.etag)?;
        Ok(PulledFile { name: name.into(), size, etag: meta.etag.clone(), sha256 })
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_with_retries(&self, repo: &str, commit: &str, name: &str, meta: &FileMeta, part: &Path, opts: &DownloadOptions, tracker: &mut Tracker) -> Result<()> {
        let mut attempt = 0;
        loop {
            let before = file_len(part);
            match self.fetch_range(repo, commit, name, meta, part, opts, tracker).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && attempt < self.retries => {
                    // Progress since the last failure earns a fresh set of tries.
                    if file_len(part) > before {
                        attempt = 0;
                    }
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends the rest of the file to `part`, asking only for the bytes it lacks.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_range(&self, repo: &str, commit: &str, name: &str, meta: &FileMeta, part: &Path, opts: &DownloadOptions, tracker: &mut Tracker) -> Result<()> {
        if opts.cancelled() {
            return Err(Error::Cancelled);
        }
        let mut have = file_len(part);
        if let Some(size) = meta.size {
            if have == size {
                tracker.resumed(name, have, meta.size);
                return Ok(());
            }
            if have > size {
                truncate(part)?;
                have = 0;
            }
        }
        let url = &meta.url;
        let mut req = self.auth(self.http.get(url.clone()), url).header("accept-encoding", "identity");
        if have > 0 {
            req = req.header(RANGE, format!("bytes={have}-"));
        }
        let resp = req.send().await.map_err(|e| net(url, e))?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && meta.size.is_none() && have > 0 {
            return Ok(());
        }
        let mut resp = self.check(resp, &Asked::File { repo, revision: commit, file: name }).await?;
        if have > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
            // The server ignored the range and sends everything: start the file over.
            truncate(part)?;
            have = 0;
        }
        tracker.resumed(name, have, meta.size);
        let mut out = std::fs::OpenOptions::new().create(true).append(true).open(part).map_err(|e| Error::io("write", part, e))?;
        loop {
            if opts.cancelled() {
                out.flush().map_err(|e| Error::io("write", part, e))?;
                return Err(Error::Cancelled);
            }
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    out.write_all(&bytes).map_err(|e| Error::io("write", part, e))?;
                    tracker.advance(bytes.len() as u64);
                }
                Ok(None) => break,
                Err(e) => {
                    out.flush().map_err(|e| Error::io("write", part, e))?;
                    return Err(net(url, e));
                }
            }
        }
        out.sync_all().map_err(|e| Error::io("write", part, e))?;
        let got = file_len(part);
        match meta.size {
            Some(size) if got < size => Err(Error::Network { url: url.to_string(), reason: format!("the connection closed after {got} of {size} bytes") }),
            _ => Ok(()),
        }
    }

    /// A snapshot from the cache alone.
    pub fn cached_snapshot(&self, repo: &str, revision: &str, files: Option<&[String]>) -> Result<Snapshot> {
        let commit = self
            .cache
            .resolve_offline(repo, revision)
            .ok_or_else(|| self.offline_error(&format!("{repo} at revision {revision}")))?;
        let dir = self.cache.snapshot_dir(repo, &commit);
        let names: Vec<String> = match files {
            Some(f) if !f.is_empty() => f.to_vec(),
            _ => list_files(&dir, &dir)?,
        };
        let mut pulled = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let meta = std::fs::metadata(&path).map_err(|_| self.offline_error(&format!("{name} of {repo}")))?;
            let etag = std::fs::read_link(&path)
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_default();
            pulled.push(PulledFile { name, size: meta.len(), etag, sha256: None });
        }
        Ok(Snapshot { repo: repo.into(), revision: revision.into(), commit, path: dir, files: pulled, license: None, gated: false })
    }
}

/// The files a training run needs from a repo: config, tokenizer and safetensors weights.
pub fn default_files(repo: &str, info: &RepoInfo) -> Result<Vec<String>> {
    const WANTED: &[&str] = &[
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
        "model.safetensors.index.json",
        "README.md",
        "LICENSE",
    ];
    let mut out: Vec<String> = info
        .files
        .iter()
        .map(|f| f.name.clone())
        .filter(|n| WANTED.contains(&n.as_str()) || (!n.contains('/') && n.ends_with(".safetensors")))
        .collect();
    if !out.iter().any(|n| n.ends_with(".safetensors")) {
        let ggufs: Vec<&str> = info.files.iter().map(|f| f.name.as_str()).filter(|n| n.ends_with(".gguf")).collect();
        return Err(Error::Invalid(if ggufs.is_empty() {
            format!("{repo} has no safetensors weights Whetstone can train")
        } else {
            format!("{repo} has no safetensors weights; pick one of its GGUF files with --file: {}", ggufs.join(", "))
        }));
    }
    if !out.iter().any(|n| n == "config.json") {
        return Err(Error::Invalid(format!("{repo} has no config.json, so it is not a model Whetstone can train")));
    }
    out.sort();
    Ok(out)
}

struct Tracker {
    total: u64,
    done: u64,
    fetched: u64,
    file: String,
    file_bytes: u64,
    file_total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
    /// `done` at the last report.
    last_done: u64,
    on: Option<Arc<ProgressFn>>,
    /// Bytes counted in `done` before their file's turn came, by file name.
    ahead: HashMap<String, u64>,
}

impl Tracker {
    fn new(total: u64, on: Option<Arc<ProgressFn>>) -> Self {
        Self {
            total,
            done: 0,
            fetched: 0,
            file: String::new(),
            file_bytes: 0,
            file_total: None,
            start: Instant::now(),
            last: None,
            last_done: 0,
            on,
            ahead: HashMap::new(),
        }
    }

    fn emit(&mut self, phase: &'static str, force: bool) {
        let Some(on) = &self.on else { return };
        let now = Instant::now();
        // Every 200 ms, or every 1% of the pull on a fast link.
        let step = self.done.abs_diff(self.last_done) * 100 >= self.total.max(1);
        if !force && !step && self.last.is_some_and(|l| now - l < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(now);
        self.last_done = self.done;
        let secs = (now - self.start).as_secs_f64();
        let rate = if secs > 0.0 { self.fetched as f64 / secs } else { 0.0 };
        let eta_s = (rate > 0.0).then(|| self.total.saturating_sub(self.done) as f64 / rate);
        on(&FileProgress {
            file: self.file.clone(),
            file_bytes: self.file_bytes,
            file_total: self.file_total,
            bytes: self.done,
            total_bytes: self.total,
            rate,
            eta_s,
            phase,
        });
    }

    fn present(&mut self, file: &str, bytes: u64) {
        self.done += bytes;
        *self.ahead.entry(file.to_string()).or_default() += bytes;
    }

    /// A file's own turn: from here on its bytes are counted as it is checked or fetched.
    fn start_file(&mut self, file: &str) {
        if let Some(n) = self.ahead.remove(file) {
            self.done -= n;
        }
    }

    fn resumed(&mut self, file: &str, have: u64, size: Option<u64>) {
        if self.file != file {
            self.file = file.to_string();
            self.file_bytes = 0;
        }
        self.done = self.done - self.file_bytes + have;
        self.file_bytes = have;
        self.file_total = size;
        self.emit("download", true);
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        self.fetched += n;
        self.file_bytes += n;
        self.emit("download", false);
    }

    fn cached(&mut self, file: &str, len: u64) {
        self.file = file.to_string();
        self.file_bytes = len;
        self.file_total = Some(len);
        self.done += len;
        self.emit("cached", true);
        self.file_bytes = 0;
        self.file.clear();
    }

    fn phase(&mut self, file: &str, phase: &'static str) {
        self.file = file.to_string();
        self.emit(phase, true);
    }

    fn rewind(&mut self, _size: u64) {
        self.done -= self.file_bytes;
        self.file_bytes = 0;
    }

    fn done(&mut self) {
        self.emit("done", true);
    }
}

fn net(url: &Url, e: reqwest::Error) -> Error {
    let mut reason = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        reason = format!("{reason}: {s}");
        src = s.source();
    }
    Error::Network { url: url.to_string(), reason }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `W/"abc"` → `abc`.
fn clean_etag(e: &str) -> String {
    e.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn truncate(p: &Path) -> Result<()> {
    std::fs::File::create(p).map(|_| ()).map_err(|e| Error::io("restart", p, e))
}

pub(crate) fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).map_err(|e| Error::io("read", p, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", p, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn list_files(root: &Path, dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let path = entry.map_err(|e| Error::io("list", dir, e))?.path();
        if path.is_dir() {
            out.extend(list_files(root, &path)?);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    out.sort();
    Ok(out)
}

fn check_repo_id(repo: &str) -> Result<()> {
    let ok = !repo.is_empty()
        && repo.split('/').count() <= 2
        && repo.split('/').all(|p| !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("`{repo}` is not a hub model id (expected `organisation/name`)")))
    }
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_path(s: &str) -> String {
    s.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

fn gated_flag(v: &serde_json::Value) -> bool {
    match v.get("gated") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => !s.is_empty() && s != "false",
        _ => false,
    }
}

fn license_of(v: &serde_json::Value) -> Option<String> {
    v.pointer("/cardData/license")
        .and_then(|l| l.as_str())
        .map(str::to_string)
        .or_else(|| {
            v.get("tags")?
                .as_array()?
                .iter()
                .filter_map(|t| t.as_str())
                .find_map(|t| t.strip_prefix("license:").map(str::to_string))
        })
}

fn parse_hub_model(v: &serde_json::Value) -> Option<HubModel> {
    let id = v.get("id").or_else(|| v.get("modelId"))?.as_str()?.to_string();
    let license = license_of(v);
    let sizes: Option<Vec<u64>> = v
        .get("siblings")
        .and_then(|s| s.as_array())
        .filter(|a| !a.is_empty())
        .map(|a| a.iter().map(|f| f.get("size").and_then(|s| s.as_u64())).collect::<Option<Vec<_>>>())
        .unwrap_or(None);
    Some(HubModel {
        in_catalog: crate::catalog::find(&id).is_some(),
        commercial_use: license.as_deref().and_then(crate::catalog::commercial_use_of),
        license,
        downloads: v.get("downloads").and_then(|d| d.as_u64()),
        likes: v.get("likes").and_then(|d| d.as_u64()),
        gated: gated_flag(v),
        parameters: v.pointer("/safetensors/total").and_then(|d| d.as_u64()),
        size_bytes: sizes.map(|s| s.iter().sum()),
        pipeline_tag: v.get("pipeline_tag").and_then(|d| d.as_str()).map(str::to_string),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weak_marks() {
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(clean_etag("\"0123\""), "0123");
    }

    #[test]
    fn repo_ids_are_checked() {
        assert!(check_repo_id("Qwen/Qwen2.5-0.5B").is_ok());
        assert!(check_repo_id("gpt2").is_ok());
        assert!(check_repo_id("../etc").is_err());
        assert!(check_repo_id("a/b/c").is_err());
        assert!(check_repo_id("").is_err());
    }
}
