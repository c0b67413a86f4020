//! `whet serve --review` over real HTTP on loopback, against a review session of a real tiny run: only
//! the raters' page (with exactly the files it loads) and the raters' commands are served, and every
//! refused request (a missing, wrong, revoked or expired token; another rater's item; a score of 9;
//! oversize text; a 10 MB body; any other endpoint) gets its status and leaves the store as it was.

mod common;

use common::http::{read_answer, send, Answer};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use whetstone_api::{Api, StartRun, WorkerCommand};

const WHET: &str = env!("CARGO_BIN_EXE_whet");

struct Session {
    _dir: tempfile::TempDir,
    home: PathBuf,
    /// A built UI as `npm run build` lays it out: the app and the raters' page, sharing a chunk.
    ui: PathBuf,
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
    let ui = dir.path().join("dist");
    built_ui(&ui);
    Session { _dir: dir, home, ui, api, sid, other, tokens, bob_items }
}

/// The raters' page's files, by path in the built UI.
const PAGE_FILES: [&str; 6] =
    ["review.html", "favicon.png", "transport.js", "assets/review-1a.js", "assets/review-1a.css", "assets/core-9z.js"];
/// The app's files, which review mode must not serve.
const APP_FILES: [&str; 4] = ["index.html", "assets/index-2b.js", "assets/index-2b.css", ".vite/manifest.json"];

/// What Vite writes for the two pages: each entry's HTML, and a manifest naming every chunk each loads
/// (the raters' page imports the shared transport and, on demand, another chunk).
fn built_ui(ui: &Path) {
    std::fs::create_dir_all(ui.join("assets")).unwrap();
    std::fs::create_dir_all(ui.join(".vite")).unwrap();
    let html = |script: &str, css: &str| {
        format!(
            "<!doctype html><html><head><link rel=\"icon\" href=\"./favicon.png\"><script type=\"module\" crossorigin \
             src=\"./{script}\"></script><link rel=\"modulepreload\" crossorigin href=\"./transport.js\"><link rel=\"stylesheet\" \
             crossorigin href=\"./{css}\"></head><body><div id=\"app\"></div></body></html>"
        )
    };
    std::fs::write(ui.join("review.html"), html("assets/review-1a.js", "assets/review-1a.css")).unwrap();
    std::fs::write(ui.join("index.html"), html("assets/index-2b.js", "assets/index-2b.css")).unwrap();
    let manifest = json!({
        "review.html": {"file": "assets/review-1a.js", "name": "review", "src": "review.html", "isEntry": true,
                        "imports": ["src/lib/transport.ts"], "css": ["assets/review-1a.css"]},
        "index.html": {"file": "assets/index-2b.js", "name": "index", "src": "index.html", "isEntry": true,
                       "imports": ["src/lib/transport.ts"], "css": ["assets/index-2b.css"]},
        "src/lib/transport.ts": {"file": "transport.js", "name": "transport", "src": "src/lib/transport.ts", "isEntry": true,
                                 "dynamicImports": ["node_modules/@tauri-apps/api/core.js"]},
        "node_modules/@tauri-apps/api/core.js": {"file": "assets/core-9z.js", "name": "core", "isDynamicEntry": true},
    });
    std::fs::write(ui.join(".vite").join("manifest.json"), manifest.to_string()).unwrap();
    for file in PAGE_FILES.iter().chain(APP_FILES.iter()).filter(|f| !f.ends_with(".html") && !f.ends_with(".json")) {
        std::fs::write(ui.join(file), format!("/* {file} */")).unwrap();
    }
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

fn serve(home: &Path, ui: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(WHET)
        .args(["serve", "--review", "--bind", "127.0.0.1:0", "--ui"])
        .arg(ui)
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
    let server = serve(&s.home, &s.ui, &[]);
    let host = ("Host", server.addr.as_str());

    let page = send(&server.addr, "GET", "/review", &[host], "");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"), "{}", page.head);
    assert!(page.header("content-security-policy").unwrap().starts_with("default-src 'none'"), "{}", page.head);
    assert_eq!(page.body, std::fs::read_to_string(s.ui.join("review.html")).unwrap());
    // Every file the page loads, directly or on demand, and none of the app's.
    for file in &PAGE_FILES[1..] {
        let answer = send(&server.addr, "GET", &format!("/{file}"), &[host], "");
        assert_eq!((answer.status, answer.body.as_str()), (200, format!("/* {file} */").as_str()), "{file}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{file}");
    }
    assert!(send(&server.addr, "GET", "/assets/review-1a.js", &[host], "").header("content-type").unwrap().starts_with("text/javascript"));
    for file in APP_FILES {
        assert!(s.ui.join(file).is_file(), "{file}");
        send(&server.addr, "GET", &format!("/{file}"), &[host], "").assert_refused(404, "not_found");
    }
    let slash = send(&server.addr, "GET", "/review/", &[host], "");
    assert_eq!((slash.status, slash.header("location")), (308, Some("/review")), "{}", slash.head);

    let before = snapshot(&s);
    let ann = s.tokens["ann"].as_str();
    let bearer = format!("Bearer {ann}");
    let json = ("Content-Type", "application/json");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/runs/3"),
        ("GET", "/review.html/../index.html"),
        ("GET", "/api/events/run/1"),
        ("POST", "/assets/review-1a.js"),
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
    let server = serve(&s.home, &s.ui, &[]);
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
    // A 10 MB comment really sent, with no length announced: cut off while it is read.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /api/review_submit HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAuthorization: Bearer {ann}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let body = with(rating(mine), "comment", json!("x".repeat(10 * 1024 * 1024))).to_string();
    for chunk in body.as_bytes().chunks(256 * 1024) {
        // The server may answer and close before the rest is sent.
        if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).and_then(|_| stream.write_all(chunk)).and_then(|_| stream.write_all(b"\r\n")).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    read_answer(&mut stream).assert_refused(413, "payload_too_large");

    // Bob's token in the body alone is no token: the header is what counts.
    let body_only = with(rating(theirs), "token", json!(s.tokens["bob"])).to_string();
    send(&server.addr, "POST", "/api/review_submit", &[host, ("Content-Type", "application/json")], &body_only).assert_refused(401, "unauthorized");
    // Another site's page cannot use a rater's browser to rate.
    send(&server.addr, "POST", "/api/review_submit", &[host, ("Origin", "http://evil.example"), ("Content-Type", "application/json"), ("Authorization", &format!("Bearer {ann}"))], &rating(mine).to_string())
        .assert_refused(403, "forbidden_origin");

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
fn the_page_is_found_where_whet_serve_finds_the_app_and_missing_it_is_explained() {
    let s = prepared();
    // WHETSTONE_UI_DIR, as for the app.
    let mut child = Command::new(WHET)
        .args(["serve", "--review", "--bind", "127.0.0.1:0"])
        .env("WHETSTONE_HOME", &s.home)
        .env("WHETSTONE_UI_DIR", &s.ui)
        .env("WHETSTONE_DEFAULT_MODEL", s.home.join("no-such-model.gguf"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open while the server runs: it prints more lines, and a closed pipe would stop it.
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    let server = Server { child, addr: first.strip_prefix("listening on http://").unwrap().to_string() };
    let page = send(&server.addr, "GET", "/review", &[("Host", &server.addr)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("assets/review-1a.js"));
    drop(server);

    // A UI built before the raters' page existed: the page says what is missing, the API still answers.
    let old = s._dir.path().join("old-dist");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("index.html"), "<!doctype html><title>Whetstone</title>").unwrap();
    let server = serve(&s.home, &old, &[]);
    let page = send(&server.addr, "GET", "/review", &[("Host", &server.addr)], "");
    assert_eq!(page.status, 503);
    assert!(page.body.contains("review.html") && page.body.contains("npm ci") && page.body.contains(&old.display().to_string()), "{}", page.body);
    send(&server.addr, "GET", "/index.html", &[("Host", &server.addr)], "").assert_refused(404, "not_found");
    let next = server.rater("review_next", Some(&s.tokens["ann"]), &json!({}));
    assert_eq!(next.status, 200, "{}", next.body);
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
