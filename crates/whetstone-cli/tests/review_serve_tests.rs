//! `whet serve --review` over real HTTP on loopback, against a review session of a real tiny run: only
//! the review page and the raters' commands are served, and every refused request (a missing, wrong,
//! revoked or expired token; another rater's item; a score of 9; oversize text; a 10 MB body; any other
//! endpoint) gets its status and leaves the store as it was.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use whetstone_api::{Api, StartRun, WorkerCommand};

const WHET: &str = env!("CARGO_BIN_EXE_whet");

struct Session {
    _dir: tempfile::TempDir,
    home: PathBuf,
    api: Api,
    /// The open session: ann and bob with two items each.
    sid: i64,
    /// A second session whose raters' tokens were revoked (carol) or have expired (dave).
    other: i64,
    tokens: std::collections::BTreeMap<&'static str, String>,
    bob_items: Vec<u32>,
}

/// A home with a trained tiny run, its evaluation, and review sessions with invited raters.
fn prepared() -> Session {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let api = Api::open(&home).unwrap().with_default_model_path(None);
    let model = dir.path().join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/instructions.jsonl");
    let rows: String = std::fs::read_to_string(src).unwrap().lines().take(30).map(|l| format!("{l}\n")).collect();
    let data = dir.path().join("listings.jsonl");
    std::fs::write(&data, rows).unwrap();
    api.dispatch("data_import", json!({"path": data, "name": "listings"})).unwrap();
    api.dispatch("data_split", json!({"dataset": "listings", "val": 0.1, "test": 0.2, "seed": 1})).unwrap();
    let req: StartRun = serde_json::from_value(json!({
        "model": model, "data": "listings",
        "settings": {"steps": 2, "batch": 2, "max-len": 512, "lora-r": 4, "lr": 0.005, "seed": 3, "threads": 1}
    }))
    .unwrap();
    let run = api.start_run_with(&req, &WorkerCommand { program: PathBuf::from("/bin/true"), args: vec![] }).unwrap();
    whetstone_api::worker::run_worker(Path::new(&run.out_dir), Arc::new(AtomicBool::new(false))).unwrap();
    let eval = api.dispatch("eval_run", json!({"run": run.id, "limit": 4, "max_new_tokens": 4})).unwrap();
    let call = |command: &str, args: Value| api.dispatch(command, args).unwrap();
    let sid = call("review_create", json!({"evaluation": eval["id"], "raters_per_item": 1, "seed": 3}))["id"].as_i64().unwrap();
    let mut tokens = std::collections::BTreeMap::new();
    let mut ids = std::collections::BTreeMap::new();
    for name in ["ann", "bob"] {
        let inv = call("review_invite", json!({"session": sid, "name": name, "max_items": 2}));
        tokens.insert(name, inv["token"].as_str().unwrap().to_string());
        ids.insert(name, inv["rater"]["id"].as_i64().unwrap());
    }
    let other = call("review_create", json!({"evaluation": eval["id"], "raters_per_item": 1}))["id"].as_i64().unwrap();
    let carol = call("review_invite", json!({"session": other, "name": "carol"}));
    call("review_revoke", json!({"rater": carol["rater"]["id"]}));
    tokens.insert("carol", carol["token"].as_str().unwrap().to_string());
    let dave = call("review_invite", json!({"session": other, "name": "dave", "expires_in_s": 0}));
    tokens.insert("dave", dave["token"].as_str().unwrap().to_string());
    let bob_items = api.store().assignments(ids["bob"]).unwrap().iter().map(|a| a.item).collect();
    Session { _dir: dir, home, api, sid, other, tokens, bob_items }
}

/// Kills the server when a test ends, pass or fail.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(home: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(WHET)
        .args(["serve", "--review", "--bind", "127.0.0.1:0"])
        .args(extra)
        .env("WHETSTONE_HOME", home)
        .env("WHETSTONE_DEFAULT_MODEL", home.join("no-such-model.gguf"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let addr = first.strip_prefix("listening on http://").unwrap_or_else(|| panic!("unexpected first line: {first:?}")).to_string();
    let second = lines.next().expect("a second line").unwrap();
    assert!(second.contains("/review#token="), "{second}");
    Server { child, addr }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
    }
}

fn read_answer(stream: &mut TcpStream) -> Answer {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !response.is_empty() => break,
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Answer { status, head: head.to_string(), body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    read_answer(&mut stream)
}

impl Server {
    /// A rater's call as the review page (or an agent with curl) makes it.
    fn rater(&self, command: &str, token: Option<&str>, body: &Value) -> Answer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Host", self.addr.as_str()), ("Content-Type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        send(&self.addr, "POST", &format!("/api/{command}"), &headers, &body.to_string())
    }
}

/// Everything a refusal must leave alone: every rating and rater of both sessions.
fn snapshot(s: &Session) -> (u64, u64, Value, Value) {
    let status = |id: i64| s.api.dispatch("review_status", json!({"id": id})).unwrap()["raters"].clone();
    let count = |id: i64| s.api.store().count_ratings(id).unwrap();
    (count(s.sid), count(s.other), status(s.sid), status(s.other))
}

#[test]
fn only_the_review_page_and_the_raters_api_are_served() {
    let s = prepared();
    let server = serve(&s.home, &[]);
    let host = ("Host", server.addr.as_str());

    let page = send(&server.addr, "GET", "/review", &[host], "");
    assert_eq!(page.status, 200);
    let head = page.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html") && head.contains("content-security-policy: default-src 'none'"), "{}", page.head);
    assert!(page.body.contains("/review/review.js"));
    let script = send(&server.addr, "GET", "/review/review.js", &[host], "");
    assert_eq!(script.status, 200);
    assert!(script.body.contains("review_submit"));

    let before = snapshot(&s);
    let ann = s.tokens["ann"].as_str();
    let bearer = format!("Bearer {ann}");
    let json = ("Content-Type", "application/json");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/runs/3"),
        ("POST", "/api/overview"),
        ("POST", "/api/list_runs"),
        ("POST", "/api/review_create"),
        ("POST", "/api/review_invite"),
        ("POST", "/api/allow_folder"),
        ("POST", "/api/no_such_command"),
    ] {
        let with_token = send(&server.addr, method, path, &[host, json, ("Authorization", &bearer)], "{}");
        with_token.assert_refused(404, "not_found");
        send(&server.addr, method, path, &[host, json], "{}").assert_refused(404, "not_found");
    }
    assert_eq!(snapshot(&s), before, "nothing was written");

    // The rater's own queue, through the same commands an agent uses.
    let next = server.rater("review_next", Some(ann), &json!({}));
    assert_eq!(next.status, 200, "{}", next.body);
    let view = next.json();
    assert_eq!(view["progress"]["text"], "0 of 2");
    assert_eq!(view["item"]["origins"], Value::Null);
    let item = view["item"]["item"].as_u64().unwrap();
    let submitted = server.rater("review_submit", Some(ann), &json!({"item": item, "a": {"scores": {"factuality": 4}}, "b": {"scores": {"factuality": 2}}, "preference": "a"}));
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    assert_eq!(submitted.json()["progress"]["text"], "1 of 2");
    assert_eq!(server.rater("review_progress", Some(ann), &json!({})).json()["text"], "1 of 2");
    assert_eq!(s.api.store().count_ratings(s.sid).unwrap(), 1);
    let get = send(&server.addr, "GET", "/api/review_next", &[host, ("Authorization", &bearer)], "");
    assert_eq!(get.status, 405);
}

#[test]
fn refused_requests_get_their_status_and_write_nothing() {
    let s = prepared();
    let server = serve(&s.home, &[]);
    let ann = s.tokens["ann"].as_str();
    let theirs = s.bob_items[0];
    let mine = {
        let v = server.rater("review_next", Some(ann), &json!({})).json();
        v["item"]["item"].as_u64().unwrap() as u32
    };
    let rating = |item: u32| json!({"item": item, "a": {"scores": {"relevance": 3}}, "b": {"scores": {"relevance": 4}}, "preference": "b"});
    let with = |mut v: Value, key: &str, value: Value| {
        v[key] = value;
        v
    };
    let before = snapshot(&s);
    let wrong = "f".repeat(64);
    let cases: Vec<(&str, Option<&str>, Value, u16, &str)> = vec![
        ("missing token", None, rating(mine), 401, "unauthorized"),
        ("wrong token", Some(wrong.as_str()), rating(mine), 401, "unauthorized"),
        ("revoked token", Some(s.tokens["carol"].as_str()), rating(1), 401, "unauthorized"),
        ("expired token", Some(s.tokens["dave"].as_str()), rating(1), 401, "unauthorized"),
        ("another rater's item", Some(ann), rating(theirs), 403, "forbidden_item"),
        // The token is the header's: naming bob's token in the body changes nothing.
        ("a token in the body", Some(ann), with(rating(theirs), "token", json!(s.tokens["bob"])), 403, "forbidden_item"),
        ("a score of 9", Some(ann), with(rating(mine), "a", json!({"scores": {"relevance": 9}})), 400, "invalid_input"),
        ("an unknown criterion", Some(ann), with(rating(mine), "a", json!({"scores": {"charm": 3}})), 400, "invalid_input"),
        ("a long comment", Some(ann), with(rating(mine), "comment", json!("x".repeat(10_001))), 400, "invalid_input"),
        ("a long edit", Some(ann), with(rating(mine), "edited", json!("x".repeat(50_001))), 400, "invalid_input"),
        ("not an object", Some(ann), json!([1, 2]), 400, "invalid_input"),
    ];
    for (what, token, body, status, code) in cases {
        let answer = server.rater("review_submit", token, &body);
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        answer.assert_refused(status, code);
        if status == 401 {
            assert!(answer.head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{what}: {}", answer.head);
        }
        assert_eq!(snapshot(&s), before, "{what}: nothing may be written");
    }
    server.rater("review_next", Some(ann), &json!({"item": theirs})).assert_refused(403, "forbidden_item");
    server.rater("review_next", Some(&s.tokens["carol"]), &json!({})).assert_refused(401, "unauthorized");
    server.rater("review_progress", None, &json!({})).assert_refused(401, "unauthorized");
    let basic = format!("Basic {ann}");
    let host = ("Host", server.addr.as_str());
    send(&server.addr, "POST", "/api/review_next", &[host, ("Content-Type", "application/json"), ("Authorization", &basic)], "{}")
        .assert_refused(401, "unauthorized");
    send(&server.addr, "POST", "/api/review_submit", &[host, ("Content-Type", "application/json"), ("Authorization", &format!("Bearer {ann}"))], "{not json")
        .assert_refused(400, "invalid_input");

    // A 10 MB body is refused from its announced length, before it is read.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /api/review_submit HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAuthorization: Bearer {ann}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        10 * 1024 * 1024 + 40
    );
    stream.write_all(head.as_bytes()).unwrap();
    read_answer(&mut stream).assert_refused(413, "payload_too_large");

    // A foreign Host (DNS rebinding) is refused before anything else.
    let answer = send(&server.addr, "POST", "/api/review_next", &[("Host", "evil.example:80"), ("Content-Type", "application/json"), ("Authorization", &format!("Bearer {ann}"))], "{}");
    answer.assert_refused(403, "forbidden_host");
    assert_eq!(snapshot(&s), before, "nothing was written");

    // And the same rating, valid, is taken.
    let ok = server.rater("review_submit", Some(ann), &rating(mine));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(s.api.store().count_ratings(s.sid).unwrap(), before.0 + 1);
}

#[test]
fn review_mode_needs_an_explicit_address() {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(WHET).args(["serve", "--review"]).env("WHETSTONE_HOME", home.path()).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--bind"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(WHET).args(["serve", "--review", "--bind", "127.0.0.1:0", "--token", "a-session-token-here"]).env("WHETSTONE_HOME", home.path()).output().unwrap();
    assert!(!o.status.success(), "review mode has no session token");
}
