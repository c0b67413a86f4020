use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const WHET: &str = env!("CARGO_BIN_EXE_whet");

fn whet(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(WHET)
        .args(args)
        .env("WHETSTONE_HOME", home)
        .env("WHETSTONE_DEFAULT_MODEL", home.join("no-such-model.gguf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "whet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

#[test]
fn help_lists_subcommands() {
    let home = tempfile::tempdir().unwrap();
    let out = whet(home.path(), &["--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in ["hw", "models", "datasets", "runs", "serve"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from help:\n{text}"
        );
    }
}

#[test]
fn hw_json_matches_the_os() {
    let home = tempfile::tempdir().unwrap();
    let hw = json_of(&whet(home.path(), &["hw", "--json"]));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(hw["cpu_cores"], cores);
    assert!(hw["ram_total_bytes"].as_u64().unwrap() > 0);
    assert!(hw["gpus"].is_array());
    assert!(!home.path().join("whetstone.db").exists(), "hw must not need a database");
}

#[test]
fn hw_text_is_readable() {
    let home = tempfile::tempdir().unwrap();
    let text = String::from_utf8(whet(home.path(), &["hw"]).stdout).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(text.contains(&format!("{cores} logical cores")), "{text}");
    assert!(text.contains("RAM:") && text.contains("GiB total"), "{text}");
    assert!(text.contains("GPUs:"), "{text}");
}

#[test]
fn lists_start_empty() {
    let home = tempfile::tempdir().unwrap();
    for what in ["models", "datasets", "runs"] {
        let list = json_of(&whet(home.path(), &[what, "list", "--json"]));
        assert_eq!(list, Value::Array(vec![]), "{what}");
        let text = String::from_utf8(whet(home.path(), &[what, "list"]).stdout).unwrap();
        assert_eq!(text.trim(), format!("No {what} yet."));
    }
    assert!(home.path().join("whetstone.db").is_file());
}

#[test]
fn unreadable_database_fails_with_its_path() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("whetstone.db"), "plain text, not SQLite").unwrap();
    let out = Command::new(WHET)
        .args(["models", "list", "--json"])
        .env("WHETSTONE_HOME", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("whetstone.db") && stderr.contains("not an SQLite file"), "{stderr}");
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

fn start_server(home: &Path, ui: &Path) -> Server {
    let mut child = Command::new(WHET)
        .args(["serve", "--port", "0", "--ui"])
        .arg(ui)
        .env("WHETSTONE_HOME", home)
        .env("WHETSTONE_DEFAULT_MODEL", home.join("no-such-model.gguf"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "binds loopback by default: {addr}");
    assert!(!addr.ends_with(":0"), "must print the real port: {addr}");
    Server { child, addr }
}

/// A minimal HTTP/1.1 exchange: status code and body.
fn http(addr: &str, method: &str, path: &str, content_type: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        request.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
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

fn post(addr: &str, command: &str, body: &str) -> (u16, Value) {
    let (status, text) = http(addr, "POST", &format!("/api/{command}"), Some("application/json"), body);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

#[test]
fn serve_answers_api_commands() {
    let home = tempfile::tempdir().unwrap();
    let ui = tempfile::tempdir().unwrap();
    let server = start_server(home.path(), ui.path());

    let (status, overview) = post(&server.addr, "overview", "{}");
    assert_eq!(status, 200, "{overview}");
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(overview["hardware"]["cpu_cores"], cores);
    assert_eq!(overview["models"], Value::Array(vec![]));
    assert_eq!(overview["default_model"], Value::Null);

    let (status, models) = post(&server.addr, "list_models", "");
    assert_eq!(status, 200);
    assert_eq!(models, Value::Array(vec![]));

    let (status, err) = post(&server.addr, "make_coffee", "{}");
    assert_eq!(status, 400);
    assert_eq!(err["code"], "unknown_command");
    assert!(err["message"].as_str().unwrap().contains("make_coffee"));
    assert_eq!(err.as_object().unwrap().len(), 2, "{err}");

    let (status, err) = post(&server.addr, "get_run", r#"{"id": 5}"#);
    assert_eq!(status, 404);
    assert_eq!(err["code"], "not_found");

    let (status, err) = post(&server.addr, "overview", "{not json");
    assert_eq!(status, 400);
    assert_eq!(err["code"], "invalid_input");

    let (status, text) = http(&server.addr, "POST", "/api/overview", Some("text/plain"), "{}");
    assert_eq!(status, 415);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["code"], "unsupported_media_type");

    let (status, text) = http(&server.addr, "GET", "/api/overview", None, "");
    assert_eq!(status, 405);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["code"], "method_not_allowed");

    let (status, text) = http(&server.addr, "POST", "/api/a/b", Some("application/json"), "{}");
    assert_eq!(status, 404);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["code"], "not_found");
}

#[test]
fn serve_without_a_built_ui_explains_itself() {
    let home = tempfile::tempdir().unwrap();
    let ui = tempfile::tempdir().unwrap();
    let server = start_server(home.path(), ui.path());
    let (status, page) = http(&server.addr, "GET", "/", None, "");
    assert_eq!(status, 503);
    assert!(page.contains("index.html"), "{page}");
    assert!(page.contains(&ui.path().display().to_string()), "names the folder: {page}");
}

#[test]
fn serve_serves_the_ui_folder() {
    let home = tempfile::tempdir().unwrap();
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(ui.path().join("index.html"), "<!doctype html><title>Whetstone</title>").unwrap();
    std::fs::create_dir(ui.path().join("assets")).unwrap();
    std::fs::write(ui.path().join("assets").join("app.js"), "console.log('hi')").unwrap();
    let server = start_server(home.path(), ui.path());

    let (status, page) = http(&server.addr, "GET", "/", None, "");
    assert_eq!((status, page.as_str()), (200, "<!doctype html><title>Whetstone</title>"));
    let (status, js) = http(&server.addr, "GET", "/assets/app.js", None, "");
    assert_eq!((status, js.as_str()), (200, "console.log('hi')"));
    // Client-side routes fall back to the app.
    let (status, page) = http(&server.addr, "GET", "/runs/3", None, "");
    assert_eq!(status, 200);
    assert!(page.contains("Whetstone"));
    let (status, _) = http(&server.addr, "GET", "/assets/missing.js", None, "");
    assert_eq!(status, 404);
    let (status, _) = http(&server.addr, "GET", "/../Cargo.toml", None, "");
    assert!(status == 400 || status == 404, "path escape answered {status}");
}
