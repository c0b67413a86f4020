//! A hub on 127.0.0.1 for tests: the few endpoints Whetstone calls, with the headers the real hub
//! sends (ETag, X-Linked-Etag/-Size, X-Repo-Commit, redirects of large files to a storage path,
//! Range), gated repos, a request log, and faults to inject.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct TestFile {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Stored in LFS: served through a redirect, with the content's SHA-256 as ETag.
    pub lfs: bool,
}

#[derive(Debug, Clone)]
pub struct TestRepo {
    pub id: String,
    pub sha: String,
    pub files: Vec<TestFile>,
    pub gated: bool,
    pub license: Option<String>,
    pub downloads: u64,
}

impl TestRepo {
    pub fn new(id: &str) -> Self {
        let sha = hex::encode(Sha256::digest(id.as_bytes()))[..40].to_string();
        Self { id: id.into(), sha, files: Vec::new(), gated: false, license: Some("apache-2.0".into()), downloads: 0 }
    }

    pub fn file(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        let lfs = [".safetensors", ".gguf", ".bin"].iter().any(|x| name.ends_with(x));
        self.files.push(TestFile { name: name.into(), bytes: bytes.into(), lfs });
        self
    }

    /// Every file of a folder (not recursive).
    pub fn from_dir(id: &str, dir: &std::path::Path) -> std::io::Result<Self> {
        let mut repo = Self::new(id);
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            repo = repo.file(&name, std::fs::read(&p)?);
        }
        Ok(repo)
    }

    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }
}

/// One request the hub answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub method: String,
    /// `repo/file` for file requests, the path otherwise.
    pub target: String,
    pub range: Option<String>,
    pub status: u16,
    /// Body bytes sent (for a dropped connection, those sent before the drop).
    pub bytes: u64,
}

#[derive(Default)]
struct Faults {
    /// File name → send this many bytes of the body, then drop the connection (once).
    drop_after: HashMap<String, u64>,
    /// File names whose next download has one byte flipped.
    corrupt_once: HashSet<String>,
    /// Bytes per second for every file body, so a download lasts long enough to watch or cancel.
    rate: Option<u64>,
}

struct Hub {
    repos: Mutex<HashMap<String, TestRepo>>,
    token: Option<String>,
    log: Mutex<Vec<Logged>>,
    faults: Mutex<Faults>,
}

/// A running test hub; it lives until the test process exits.
pub struct TestHub {
    pub url: String,
    hub: Arc<Hub>,
}

impl TestHub {
    /// Starts a hub that accepts `token` for gated repos, on its own thread and runtime so both
    /// async tests and tests that run a child process can use it.
    pub fn start(token: Option<&str>) -> TestHub {
        let hub = Arc::new(Hub {
            repos: Mutex::default(),
            token: token.map(str::to_string),
            log: Mutex::default(),
            faults: Mutex::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let app = Router::new()
            .route("/api/models", get(search))
            .route("/api/models/{org}/{name}/revision/{rev}", get(info))
            .route("/{org}/{name}/resolve/{rev}/{*file}", get(resolve))
            .route("/cdn/{org}/{name}/{*file}", get(cdn))
            .with_state(hub.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test hub runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                axum::serve(listener, app).await.expect("test hub serves");
            });
        });
        TestHub { url, hub }
    }

    pub fn add(&self, repo: TestRepo) {
        self.hub.repos.lock().unwrap().insert(repo.id.clone(), repo);
    }

    pub fn repo(&self, id: &str) -> TestRepo {
        self.hub.repos.lock().unwrap()[id].clone()
    }

    /// The next download of `file` stops after `bytes` bytes with a dropped connection.
    pub fn drop_after(&self, file: &str, bytes: u64) {
        self.hub.faults.lock().unwrap().drop_after.insert(file.into(), bytes);
    }

    /// The next download of `file` has one byte changed.
    pub fn corrupt_once(&self, file: &str) {
        self.hub.faults.lock().unwrap().corrupt_once.insert(file.into());
    }

    /// Sends every file body at about `bytes_per_second`, in small chunks.
    pub fn throttle(&self, bytes_per_second: u64) {
        self.hub.faults.lock().unwrap().rate = Some(bytes_per_second.max(1));
    }

    pub fn log(&self) -> Vec<Logged> {
        self.hub.log.lock().unwrap().clone()
    }

    /// Body bytes of `file` sent by GET requests so far.
    pub fn bytes_served(&self, file: &str) -> u64 {
        self.log().iter().filter(|l| l.method == "GET" && l.target.ends_with(&format!("/{file}"))).map(|l| l.bytes).sum()
    }

    pub fn clear_log(&self) {
        self.hub.log.lock().unwrap().clear();
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [("x-error-code", code.to_string()), ("x-error-message", message.to_string())], axum::Json(serde_json::json!({ "error": message })))
        .into_response()
}

impl Hub {
    fn authorized(&self, repo: &TestRepo, headers: &HeaderMap) -> bool {
        if !repo.gated {
            return true;
        }
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        matches!((&self.token, given), (Some(t), Some(g)) if t == g)
    }

    fn record(&self, method: &Method, target: String, range: Option<String>, status: u16, bytes: u64) {
        self.log.lock().unwrap().push(Logged { method: method.to_string(), target, range, status, bytes });
    }

    /// The repo, or the response the hub gives when it is absent or locked.
    #[allow(clippy::result_large_err)]
    fn lookup(&self, id: &str, headers: &HeaderMap) -> Result<TestRepo, Response> {
        let repo = self.repos.lock().unwrap().get(id).cloned();
        match repo {
            None => Err(error(StatusCode::UNAUTHORIZED, "RepoNotFound", "Repository not found")),
            Some(r) if !self.authorized(&r, headers) => Err(error(
                StatusCode::UNAUTHORIZED,
                "GatedRepo",
                &format!("Access to model {id} is restricted. You must have access to it and be authenticated to access it."),
            )),
            Some(r) => Ok(r),
        }
    }
}

fn card(repo: &TestRepo, full: bool) -> serde_json::Value {
    let siblings: Vec<_> = repo
        .files
        .iter()
        .map(|f| if full { serde_json::json!({"rfilename": f.name, "size": f.bytes.len()}) } else { serde_json::json!({"rfilename": f.name}) })
        .collect();
    serde_json::json!({
        "id": repo.id,
        "modelId": repo.id,
        "sha": repo.sha,
        "gated": if repo.gated { serde_json::json!("manual") } else { serde_json::json!(false) },
        "downloads": repo.downloads,
        "likes": 0,
        "tags": repo.license.iter().map(|l| format!("license:{l}")).collect::<Vec<_>>(),
        "cardData": { "license": repo.license },
        "siblings": siblings,
        "pipeline_tag": "text-generation",
    })
}

async fn search(State(hub): State<Arc<Hub>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let needle = q.get("search").cloned().unwrap_or_default().to_lowercase();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let full = q.get("full").is_some_and(|f| f == "true");
    let mut found: Vec<TestRepo> = hub.repos.lock().unwrap().values().filter(|r| r.id.to_lowercase().contains(&needle)).cloned().collect();
    found.sort_by(|a, b| b.downloads.cmp(&a.downloads).then(a.id.cmp(&b.id)));
    let body: Vec<_> = found.iter().take(limit).map(|r| card(r, full)).collect();
    hub.record(&Method::GET, format!("/api/models?search={needle}"), None, 200, 0);
    axum::Json(body).into_response()
}

async fn info(State(hub): State<Arc<Hub>>, Path((org, name, rev)): Path<(String, String, String)>, headers: HeaderMap) -> Response {
    let id = format!("{org}/{name}");
    let repo = match hub.lookup(&id, &headers) {
        Ok(r) => r,
        Err(resp) => {
            hub.record(&Method::GET, format!("/api/models/{id}"), None, resp.status().as_u16(), 0);
            return resp;
        }
    };
    if rev != "main" && rev != repo.sha {
        return error(StatusCode::NOT_FOUND, "RevisionNotFound", &format!("Invalid rev id: {rev}"));
    }
    hub.record(&Method::GET, format!("/api/models/{id}"), None, 200, 0);
    axum::Json(card(&repo, true)).into_response()
}

async fn resolve(
    State(hub): State<Arc<Hub>>,
    method: Method,
    Path((org, name, rev, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let id = format!("{org}/{name}");
    let target = format!("{id}/{file}");
    let repo = match hub.lookup(&id, &headers) {
        Ok(r) => r,
        Err(resp) => {
            hub.record(&method, target, None, resp.status().as_u16(), 0);
            return resp;
        }
    };
    if rev != "main" && rev != repo.sha {
        return error(StatusCode::NOT_FOUND, "RevisionNotFound", &format!("Invalid rev id: {rev}"));
    }
    let Some(f) = repo.files.iter().find(|f| f.name == file) else {
        hub.record(&method, target, None, 404, 0);
        return error(StatusCode::NOT_FOUND, "EntryNotFound", &format!("{file} does not exist on \"{rev}\""));
    };
    if f.lfs {
        hub.record(&method, target, None, 302, 0);
        let sha = sha256_hex(&f.bytes);
        return (
            StatusCode::FOUND,
            [
                (header::LOCATION.as_str(), format!("/cdn/{id}/{file}")),
                ("x-linked-etag", format!("\"{sha}\"")),
                ("x-linked-size", f.bytes.len().to_string()),
                ("x-repo-commit", repo.sha.clone()),
                (header::ETAG.as_str(), "\"not-the-blob\"".to_string()),
            ],
        )
            .into_response();
    }
    // Small files: the git blob id stands in as ETag, as on the hub.
    let etag = format!("\"{}\"", &sha256_hex(&f.bytes)[..40]);
    serve_bytes(&hub, &method, target, &f.bytes, &file, &headers, vec![("x-repo-commit", repo.sha.clone()), (header::ETAG.as_str(), etag)])
}

async fn cdn(State(hub): State<Arc<Hub>>, method: Method, Path((org, name, file)): Path<(String, String, String)>, headers: HeaderMap) -> Response {
    let id = format!("{org}/{name}");
    let repo = hub.repos.lock().unwrap().get(&id).cloned();
    let Some(f) = repo.and_then(|r| r.files.into_iter().find(|f| f.name == file)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", sha256_hex(&f.bytes));
    serve_bytes(&hub, &method, format!("{id}/{file}"), &f.bytes, &file, &headers, vec![(header::ETAG.as_str(), etag)])
}

fn serve_bytes(hub: &Hub, method: &Method, target: String, all: &[u8], file: &str, headers: &HeaderMap, extra: Vec<(&str, String)>) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok());
    let (status, body) = match start {
        Some(s) if s >= all.len() => {
            hub.record(method, target, range, 416, 0);
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{}", all.len()))]).into_response();
        }
        Some(s) => (StatusCode::PARTIAL_CONTENT, all[s..].to_vec()),
        None => (StatusCode::OK, all.to_vec()),
    };
    let offset = start.unwrap_or(0);
    let mut resp = Response::builder().status(status).header(header::ACCEPT_RANGES, "bytes").header(header::CONTENT_LENGTH, body.len());
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {offset}-{}/{}", all.len() - 1, all.len()));
    }
    for (k, v) in extra {
        resp = resp.header(k, v);
    }
    if method == Method::HEAD {
        hub.record(method, target, range, status.as_u16(), 0);
        return resp.body(Body::empty()).expect("response");
    }
    let mut faults = hub.faults.lock().unwrap();
    let mut body = body;
    if faults.corrupt_once.remove(file) {
        let mid = body.len() / 2;
        if let Some(b) = body.get_mut(mid) {
            *b ^= 0xff;
        }
    }
    if let Some(cut) = faults.drop_after.remove(file) {
        let cut = (cut as usize).saturating_sub(offset).min(body.len());
        hub.record(method, target, range, status.as_u16(), cut as u64);
        let first = Bytes::copy_from_slice(&body[..cut]);
        let parts: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(first), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "test hub drops the connection"))];
        return resp.body(Body::from_stream(futures_util::stream::iter(parts))).expect("response");
    }
    hub.record(method, target, range, status.as_u16(), body.len() as u64);
    if let Some(rate) = faults.rate {
        return resp.body(Body::from_stream(throttled(body, rate))).expect("response");
    }
    resp.body(Body::from(body)).expect("response")
}

/// `body` in chunks of a tenth of a second's worth, each sent after its share of time.
fn throttled(body: Vec<u8>, rate: u64) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let chunk = (rate / 10).max(1) as usize;
    let pause = std::time::Duration::from_secs_f64(chunk as f64 / rate as f64);
    futures_util::stream::unfold((body, 0usize), move |(body, at)| async move {
        if at >= body.len() {
            return None;
        }
        tokio::time::sleep(pause).await;
        let end = (at + chunk).min(body.len());
        let part = Bytes::copy_from_slice(&body[at..end]);
        Some((Ok(part), (body, end)))
    })
}
