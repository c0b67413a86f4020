//! `whet serve` over real HTTP/1.1 on a TCP socket, so that Host and Origin can be forged and
//! requests can be left half-sent.

mod common;

use common::http::{read_answer, send, Answer};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WHET: &str = env!("CARGO_BIN_EXE_whet");

type Headers<'a> = &'a [(&'a str, &'a str)];

/// Kills the server when a test ends, pass or fail.
struct Server {
    child: Child,
    addr: String,
    token: String,
    home: tempfile::TempDir,
    _ui: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn whet_serve(home: &Path, ui: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(WHET);
    command
        .args(["serve", "--port", "0", "--ui"])
        .arg(ui)
        .args(extra)
        .env("WHETSTONE_HOME", home)
        .env("WHETSTONE_DEFAULT_MODEL", home.join("no-such-model.gguf"))
        .env_remove("WHETSTONE_TOKEN");
    command
}

fn start(extra: &[&str]) -> Server {
    start_with(extra, |_| {})
}

fn start_with(extra: &[&str], prepare: impl FnOnce(&Path)) -> Server {
    launch(extra, None, prepare)
}

fn launch(extra: &[&str], token_env: Option<&str>, prepare: impl FnOnce(&Path)) -> Server {
    let home = tempfile::tempdir().unwrap();
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(ui.path().join("index.html"), "<!doctype html><title>Whetstone</title>").unwrap();
    prepare(ui.path());
    let mut command = whet_serve(home.path(), ui.path(), extra);
    if let Some(token) = token_env {
        command.env("WHETSTONE_TOKEN", token);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_string();
    assert!(!addr.ends_with(":0"), "must print the real port: {addr}");
    let port = addr.rsplit(':').next().unwrap().to_string();
    let second = lines.next().expect("a line with the link").unwrap();
    let token = second
        .strip_prefix(&format!("open http://127.0.0.1:{port}/#token="))
        .unwrap_or_else(|| panic!("unexpected second line: {second:?}"))
        .to_string();
    Server {
        child,
        addr,
        token,
        home,
        _ui: ui,
    }
}

impl Server {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// An API call as the web UI makes it.
    fn api(&self, command: &str, body: &str) -> Answer {
        let bearer = self.bearer();
        send(
            &self.addr,
            "POST",
            &format!("/api/{command}"),
            &[("Host", &self.addr), ("Content-Type", "application/json"), ("Authorization", &bearer)],
            body,
        )
    }

    fn get(&self, path: &str) -> Answer {
        send(&self.addr, "GET", path, &[("Host", &self.addr)], "")
    }

    fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }

    /// Allows a folder as the user does, with `whet folders add` beside the running server.
    fn allow(&self, dir: &Path) {
        let o = Command::new(WHET).arg("--home").arg(self.home.path()).args(["folders", "add"]).arg(dir).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn paths_outside_the_allowed_folders_are_refused_whatever_the_way_out() {
    let server = start(&[]);
    let home = server.home.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let out_dir = outside.path().canonicalize().unwrap();
    let data = out_dir.join("tickets.jsonl");
    std::fs::write(&data, "{\"prompt\":\"hi\",\"response\":\"hello\"}\n").unwrap();
    std::os::unix::fs::symlink(&out_dir, home.join("link")).unwrap();
    let model = home.join("tiny-model");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let inside = home.join("mine.jsonl");
    std::fs::write(&inside, "{\"prompt\":\"hi\",\"response\":\"hello\"}\n").unwrap();
    let climb = format!("{}/{}", home.display(), "../".repeat(home.components().count()) + data.strip_prefix("/").unwrap().to_str().unwrap());
    let before = tree(&home);
    let outside_before = tree(&out_dir);

    for path in [data.display().to_string(), climb.clone(), home.join("link/tickets.jsonl").display().to_string(), "tickets.jsonl".into()] {
        server.api("data_import", &json!({"path": path, "name": "x"}).to_string()).assert_refused(403, "path_not_allowed");
    }
    // A file that does not exist outside is refused the same way, so requests cannot probe the disk.
    server.api("data_import", &json!({"path": out_dir.join("nothing-here.jsonl")}).to_string()).assert_refused(403, "path_not_allowed");
    // Writes: an export, a run folder, through a link too.
    server.api("data_import", &json!({"path": inside, "name": "mine"}).to_string());
    let imported = tree(&home);
    for out in [out_dir.join("export.jsonl"), home.join("link/export.jsonl")] {
        server.api("data_export", &json!({"dataset": "mine", "out": out}).to_string()).assert_refused(403, "path_not_allowed");
    }
    let run = json!({"model": model, "data": "mine", "out": out_dir.join("run"), "settings": {"steps": 1}});
    server.api("start_run", &run.to_string()).assert_refused(403, "path_not_allowed");
    let run = json!({"model": out_dir.join("model.gguf"), "data": "mine", "settings": {"steps": 1}});
    server.api("start_run", &run.to_string()).assert_refused(403, "path_not_allowed");
    // A page cannot widen what it may reach: allowing a folder is for the app's own window.
    server.api("allow_folder", &json!({"path": out_dir}).to_string()).assert_refused(403, "forbidden_command");
    assert_eq!(server.api("allowed_folders", "").json(), json!([]));
    assert_eq!(tree(&out_dir), outside_before, "nothing was written outside");
    assert_eq!(tree(&home), imported, "nothing else was written at home");
    assert_ne!(before, imported, "the import inside the home folder worked");
}

#[test]
fn the_first_lines_give_the_address_and_a_link_with_a_fresh_random_token() {
    let a = start(&[]);
    let b = start(&[]);
    assert!(a.addr.starts_with("127.0.0.1:"), "binds loopback by default: {}", a.addr);
    for token in [&a.token, &b.token] {
        assert_eq!(token.len(), 64, "256 bits as hex: {token}");
        assert!(token.bytes().all(|c| c.is_ascii_hexdigit()), "{token}");
    }
    assert_ne!(a.token, b.token, "every server draws its own token");
}

#[test]
fn the_api_needs_the_session_token() {
    let server = start(&[]);
    let json = ("Content-Type", "application/json");
    let host = ("Host", server.addr.as_str());

    let missing = send(&server.addr, "POST", "/api/overview", &[host, json], "{}");
    missing.assert_refused(401, "unauthorized");
    assert!(missing.body.contains("whet serve"), "says where the token is: {}", missing.body);

    let mut wrong = server.token.clone().into_bytes();
    wrong[10] = if wrong[10] == b'a' { b'b' } else { b'a' };
    let wrong = format!("Bearer {}", String::from_utf8(wrong).unwrap());
    send(&server.addr, "POST", "/api/overview", &[host, json, ("Authorization", &wrong)], "{}")
        .assert_refused(401, "unauthorized");
    let prefix = format!("Bearer {}", &server.token[..32]);
    send(&server.addr, "POST", "/api/overview", &[host, json, ("Authorization", &prefix)], "{}")
        .assert_refused(401, "unauthorized");
    let other_scheme = format!("Basic {}", server.token);
    send(&server.addr, "POST", "/api/overview", &[host, json, ("Authorization", &other_scheme)], "{}")
        .assert_refused(401, "unauthorized");
    // Even unknown commands and wrong methods say nothing without the token.
    send(&server.addr, "GET", "/api/overview", &[host], "").assert_refused(401, "unauthorized");
    send(&server.addr, "POST", "/api/no_such", &[host, json], "{}").assert_refused(401, "unauthorized");

    let ok = server.api("overview", "{}");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(ok.json()["hardware"]["cpu_cores"], cores);
    let header = send(
        &server.addr,
        "POST",
        "/api/list_models",
        &[host, json, ("X-Whetstone-Token", &server.token)],
        "",
    );
    assert_eq!((header.status, header.json()), (200, json!([])));
}

#[test]
fn a_chosen_token_replaces_the_random_one_and_must_be_long_enough() {
    let chosen = "correct-horse-battery-staple";
    let server = start(&["--token", chosen]);
    assert_eq!(server.token, chosen);
    assert_eq!(server.api("list_runs", "").status, 200);

    let from_env = launch(&[], Some("from-the-environment-1234"), |_| {});
    assert_eq!(from_env.token, "from-the-environment-1234");
    let flag_wins = launch(&["--token", chosen], Some("from-the-environment-1234"), |_| {});
    assert_eq!(flag_wins.token, chosen);

    let home = tempfile::tempdir().unwrap();
    let short = whet_serve(home.path(), home.path(), &["--token", "too-short"])
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(short.stdout.is_empty(), "must not start listening");
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("at least 16"), "{stderr}");
}

#[test]
fn a_foreign_host_is_refused_on_the_api_and_the_pages() {
    let server = start(&[]);
    let bearer = server.bearer();
    let evil = format!("evil.example:{}", server.port());
    let wrong_port = "127.0.0.1:1".to_string();
    for host in [&evil, &wrong_port] {
        send(
            &server.addr,
            "POST",
            "/api/overview",
            &[("Host", host), ("Content-Type", "application/json"), ("Authorization", &bearer)],
            "{}",
        )
        .assert_refused(403, "forbidden_host");
        send(&server.addr, "GET", "/", &[("Host", host)], "").assert_refused(403, "forbidden_host");
        send(&server.addr, "GET", "/index.html", &[("Host", host)], "").assert_refused(403, "forbidden_host");
    }
    send(&server.addr, "GET", "/", &[], "").assert_refused(403, "forbidden_host");

    for name in ["localhost", "127.0.0.1", "[::1]"] {
        let host = format!("{name}:{}", server.port());
        let page = send(&server.addr, "GET", "/", &[("Host", &host)], "");
        assert_eq!(page.status, 200, "{host}: {}", page.body);
    }
}

#[test]
fn a_foreign_origin_is_refused() {
    let server = start(&[]);
    let bearer = server.bearer();
    let call = |origin: &str| {
        send(
            &server.addr,
            "POST",
            "/api/overview",
            &[
                ("Host", &server.addr),
                ("Origin", origin),
                ("Content-Type", "application/json"),
                ("Authorization", &bearer),
            ],
            "{}",
        )
    };
    let port = server.port();
    for origin in [
        format!("http://evil.example:{port}"),
        format!("https://127.0.0.1:{port}"),
        "http://127.0.0.1:1".to_string(),
        "null".to_string(),
    ] {
        call(&origin).assert_refused(403, "forbidden_origin");
    }
    let page = send(&server.addr, "GET", "/", &[("Host", &server.addr), ("Origin", "http://evil.example")], "");
    page.assert_refused(403, "forbidden_origin");
    assert_eq!(call(&format!("http://localhost:{port}")).status, 200);
    assert_eq!(call(&format!("http://{}", server.addr)).status, 200);
}

#[test]
fn an_oversized_body_is_refused_before_it_is_read() {
    let server = start(&[]);
    // Declares 9 MiB and sends a few bytes: the answer must come without the rest.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /api/overview HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nContent-Length: {}\r\n\r\n{{\"a\":",
        server.addr,
        server.bearer(),
        9 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    read_answer(&mut stream).assert_refused(413, "payload_too_large");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Without a length up front (chunked), the limit applies while reading.
    let small = start(&["--max-body", "1024"]);
    let mut stream = TcpStream::connect(&small.addr).unwrap();
    let chunk = format!("\"{}\"", "x".repeat(3000));
    let request = format!(
        "POST /api/overview HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        small.addr,
        small.bearer(),
        chunk.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    read_answer(&mut stream).assert_refused(413, "payload_too_large");
    let fits = small.api("data_preview", &format!("{{\"pad\":\"{}\"}}", "y".repeat(900)));
    assert_ne!(fits.status, 413, "a body under the limit is read: {}", fits.body);
}

#[test]
fn a_stalled_client_does_not_hold_up_others_and_is_cut_off() {
    let server = start(&["--read-timeout", "2"]);
    let started = Instant::now();
    // Half a request head, then nothing.
    let mut stalled_head = TcpStream::connect(&server.addr).unwrap();
    stalled_head
        .write_all(format!("POST /api/overview HTTP/1.1\r\nHost: {}\r\n", server.addr).as_bytes())
        .unwrap();
    // A whole head, then half the body it announced.
    let mut stalled_body = TcpStream::connect(&server.addr).unwrap();
    stalled_body
        .write_all(
            format!(
                "POST /api/overview HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Authorization: {}\r\nContent-Length: 100\r\n\r\n{{\"half\":",
                server.addr,
                server.bearer()
            )
            .as_bytes(),
        )
        .unwrap();

    let other = server.api("overview", "{}");
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(started.elapsed() < Duration::from_secs(2), "served while the others stall");

    read_answer(&mut stalled_body).assert_refused(408, "request_timeout");
    stalled_head.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    let closed = stalled_head.read_to_end(&mut rest);
    assert!(closed.is_ok(), "the server closes the stalled connection: {closed:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "not before the deadline: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "soon after the deadline: {elapsed:?}");
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = start(&["--max-connections", "1", "--read-timeout", "2"]);
    let started = Instant::now();
    let _idle = TcpStream::connect(&server.addr).unwrap();
    // Give the server time to take the idle connection into its only slot.
    std::thread::sleep(Duration::from_millis(300));
    let waited = server.api("overview", "{}");
    assert_eq!(waited.status, 200, "{}", waited.body);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "served only once the idle one timed out: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn listening_beyond_loopback_needs_allow_remote() {
    let home = tempfile::tempdir().unwrap();
    let refused = whet_serve(home.path(), home.path(), &["--host", "0.0.0.0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "must not start listening");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");

    let mut child = whet_serve(home.path(), home.path(), &["--host", "0.0.0.0", "--allow-remote"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let mut warning = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut warning).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("listening on http://0.0.0.0:"), "{first}");
    assert!(second.starts_with("open http://127.0.0.1:") && second.contains("/#token="), "{second}");
    assert!(warning.contains("other machines") && warning.contains("token"), "names the risk: {warning}");
}

#[test]
fn refused_imports_change_nothing_on_disk() {
    let server = start(&[]);
    let outside = tempfile::tempdir().unwrap();
    let data = outside.path().join("tickets.jsonl");
    std::fs::write(&data, "{\"prompt\":\"hi\",\"response\":\"hello\"}\n").unwrap();
    let model = outside.path().join("tiny-model");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let before = tree(server.home.path());

    let bearer = server.bearer();
    let evil_host = format!("evil.example:{}", server.port());
    let refusals: [(Headers, u16, &str); 3] = [
        (&[("Host", &server.addr)], 401, "unauthorized"),
        (&[("Host", &evil_host), ("Authorization", &bearer)], 403, "forbidden_host"),
        (&[("Host", &server.addr), ("Authorization", &bearer), ("Origin", "http://evil.example")], 403, "forbidden_origin"),
    ];
    let calls = [
        ("data_import", json!({"path": data}).to_string()),
        ("import_model", json!({"path": model}).to_string()),
    ];
    for (headers, status, code) in refusals {
        for (command, body) in &calls {
            let mut headers = headers.to_vec();
            headers.push(("Content-Type", "application/json"));
            send(&server.addr, "POST", &format!("/api/{command}"), &headers, body).assert_refused(status, code);
        }
    }
    assert_eq!(server.api("list_datasets", "").json(), json!([]));
    assert_eq!(server.api("list_models", "").json(), json!([]));
    assert_eq!(tree(server.home.path()), before, "the home folder changed");

    // With the token the paths are judged next: outside the home folder and the allowed folders
    // they are refused too, and nothing changes.
    for (command, body) in &calls {
        server.api(command, body).assert_refused(403, "path_not_allowed");
    }
    assert_eq!(tree(server.home.path()), before, "the home folder changed");
    // Once the user allows the folder, the same calls work, so the refusals above were what stopped them.
    server.allow(outside.path());
    for (command, body) in &calls {
        let done = server.api(command, body);
        assert_eq!(done.status, 200, "{command}: {}", done.body);
    }
    assert_eq!(server.api("list_datasets", "").json().as_array().unwrap().len(), 1);
    assert_eq!(server.api("list_models", "").json().as_array().unwrap().len(), 1);
}

/// Every file under `dir` with its size and content hash, skipping SQLite's journal files,
/// which reads alone may touch.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if !name.ends_with("-wal") && !name.ends_with("-shm") {
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn serve_answers_api_commands() {
    let server = start(&[]);
    let overview = server.api("overview", "{}");
    assert_eq!(overview.status, 200, "{}", overview.body);
    let overview = overview.json();
    assert_eq!(overview["models"], json!([]));
    assert_eq!(overview["default_model"], Value::Null);

    let err = server.api("make_coffee", "{}");
    err.assert_refused(400, "unknown_command");
    assert!(err.body.contains("make_coffee"));
    server.api("get_run", r#"{"id": 5}"#).assert_refused(404, "not_found");
    server.api("overview", "{not json").assert_refused(400, "invalid_input");

    let bearer = server.bearer();
    let host = ("Host", server.addr.as_str());
    let auth = ("Authorization", bearer.as_str());
    send(&server.addr, "POST", "/api/overview", &[host, auth, ("Content-Type", "text/plain")], "{}")
        .assert_refused(415, "unsupported_media_type");
    send(&server.addr, "GET", "/api/overview", &[host, auth], "").assert_refused(405, "method_not_allowed");
    send(&server.addr, "POST", "/api/a/b", &[host, auth, ("Content-Type", "application/json")], "{}")
        .assert_refused(404, "not_found");
}

#[test]
fn serve_without_a_built_ui_explains_itself() {
    let server = start_with(&[], |ui| std::fs::remove_file(ui.join("index.html")).unwrap());
    let page = server.get("/");
    assert_eq!(page.status, 503);
    assert!(page.body.contains("index.html"), "{}", page.body);
}

#[test]
fn pages_are_served_without_the_token() {
    let server = start_with(&[], |ui| {
        std::fs::create_dir(ui.join("assets")).unwrap();
        std::fs::write(ui.join("assets").join("app.js"), "console.log('hi')").unwrap();
    });
    let page = server.get("/");
    assert_eq!((page.status, page.body.as_str()), (200, "<!doctype html><title>Whetstone</title>"));
    let js = server.get("/assets/app.js");
    assert_eq!((js.status, js.body.as_str()), (200, "console.log('hi')"));
    // Client-side routes fall back to the app.
    let route = server.get("/runs/3");
    assert_eq!(route.status, 200);
    assert!(route.body.contains("Whetstone"));
    assert_eq!(server.get("/assets/missing.js").status, 404);
    let escape = server.get("/../Cargo.toml").status;
    assert!(escape == 400 || escape == 404, "path escape answered {escape}");
}

/// A run in the server's store whose events log is `events`, claimed by this test process so it
/// counts as running until the test finishes it.
fn seeded_run(server: &Server, live: bool, events: &str) -> (whetstone_api::Api, i64, PathBuf) {
    use whetstone_store::{ModelSource, NewModel, NewRun};
    let api = whetstone_api::Api::open(server.home.path()).unwrap();
    let run_dir = server.home.path().join("follow-run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("events.jsonl"), events).unwrap();
    let id = {
        let store = api.store();
        let model = store
            .insert_model(&NewModel {
                name: "tiny".into(),
                source: ModelSource::Local,
                location: "/m/tiny.gguf".into(),
                architecture: None,
                parameters: None,
                license: None,
                commercial_use: None,
            })
            .unwrap();
        let status = if live { whetstone_api::RunStatus::Queued } else { whetstone_api::RunStatus::Completed };
        let run = store
            .insert_run(&NewRun { model_id: model.id, dataset_id: None, config: json!({}), status, out_dir: run_dir.display().to_string() })
            .unwrap();
        if live {
            store.claim_run(run.id, std::process::id()).unwrap();
        }
        run.id
    };
    (api, id, run_dir)
}

fn checkpoint_line(step: u64) -> String {
    format!("{{\"time\":{step}.0,\"type\":\"checkpoint\",\"step\":{step},\"path\":\"/r/step-{step}\"}}\n")
}

/// Reads from a server-sent event stream until `text` has arrived; returns everything read so far.
fn read_until(stream: &mut TcpStream, seen: &mut String, text: &str) {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 4096];
    while !seen.contains(text) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before {text:?} arrived: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[test]
fn run_events_are_pushed_as_server_sent_events_while_the_run_goes_on() {
    let server = start(&[]);
    let (api, id, run_dir) = seeded_run(&server, true, &checkpoint_line(1));
    let bearer = server.bearer();
    let path = format!("/api/events/run/{id}");
    let before = tree(server.home.path());

    // The stream is behind the same token as every API call, and an unknown run is a plain 404.
    send(&server.addr, "GET", &path, &[("Host", &server.addr)], "").assert_refused(401, "unauthorized");
    send(&server.addr, "GET", "/api/events/run/999", &[("Host", &server.addr), ("Authorization", &bearer)], "")
        .assert_refused(404, "not_found");
    send(&server.addr, "GET", &format!("{path}?since=x"), &[("Host", &server.addr), ("Authorization", &bearer)], "")
        .assert_refused(400, "invalid_input");
    // A rebinding page (foreign Host) or another site's page (foreign Origin) is refused even with the token.
    send(&server.addr, "GET", &path, &[("Host", "evil.example"), ("Authorization", &bearer)], "").assert_refused(403, "forbidden_host");
    send(&server.addr, "GET", &path, &[("Host", &server.addr), ("Origin", "http://evil.example"), ("Authorization", &bearer)], "")
        .assert_refused(403, "forbidden_origin");
    assert!(tree(server.home.path()) == before, "a refused request changed files in the home folder");

    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n", server.addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "/r/step-1");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");
    assert!(seen.contains("event: events") && seen.contains("\"status\":\"running\""), "{seen}");
    assert!(!seen.contains("/r/step-2"));

    // A line the worker logs now arrives on the open connection without another request.
    std::fs::OpenOptions::new().append(true).open(run_dir.join("events.jsonl")).unwrap().write_all(checkpoint_line(2).as_bytes()).unwrap();
    read_until(&mut stream, &mut seen, "/r/step-2");

    api.store().finish_run(id, whetstone_api::RunStatus::Completed, None).unwrap();
    read_until(&mut stream, &mut seen, "event: end");
    assert!(seen.contains("\"status\":\"completed\""), "{seen}");
    assert_eq!(seen.matches("/r/step-1").count(), 1, "each event once: {seen}");
    assert_eq!(seen.matches("/r/step-2").count(), 1, "each event once: {seen}");
}

#[test]
fn a_finished_run_streams_its_log_from_an_offset_and_ends() {
    let server = start(&[]);
    let first = checkpoint_line(1);
    let (_api, id, _) = seeded_run(&server, false, &(first.clone() + &checkpoint_line(2)));
    let bearer = server.bearer();
    let answer = send(
        &server.addr,
        "GET",
        &format!("/api/events/run/{id}?since={}", first.len()),
        &[("Host", &server.addr), ("Authorization", &bearer)],
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!answer.body.contains("/r/step-1"), "{}", answer.body);
    assert!(answer.body.contains("/r/step-2") && answer.body.contains("event: end"), "{}", answer.body);
}

#[test]
fn a_model_download_streams_its_progress_then_the_model() {
    let files = tempfile::tempdir().unwrap();
    let folder = files.path().join("tiny");
    whetstone_api::testing::write_tiny_model(&folder).unwrap();
    let hub = whetstone_hub::testing::TestHub::start(None);
    hub.add(whetstone_hub::testing::TestRepo::from_dir("whetstone-tests/tiny-llama", &folder).unwrap());
    // Only downloads read these; the servers other tests start ignore them.
    std::env::set_var("HF_ENDPOINT", &hub.url);
    std::env::set_var("HF_HUB_CACHE", files.path().join("hf-cache"));
    let server = start(&[]);
    let bearer = server.bearer();
    let json = [("Host", server.addr.as_str()), ("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
    let request = r#"{"repo": "whetstone-tests/tiny-llama"}"#;
    let before = tree(server.home.path());
    let cache_before = tree(files.path());

    send(&server.addr, "POST", "/api/events/pull", &json[..2], request).assert_refused(401, "unauthorized");
    send(&server.addr, "POST", "/api/events/pull", &[json[0], ("Content-Type", "text/plain"), json[2]], request)
        .assert_refused(415, "unsupported_media_type");
    send(&server.addr, "POST", "/api/events/pull", &json, r#"{"repository": "x/y"}"#).assert_refused(400, "invalid_input");
    send(&server.addr, "POST", "/api/events/pull", &[json[0], json[1], json[2], ("Origin", "http://evil.example")], request)
        .assert_refused(403, "forbidden_origin");
    assert!(hub.log().is_empty(), "a refused request reached the hub: {:?}", hub.log());
    assert!(tree(server.home.path()) == before, "a refused download changed the home folder");
    assert!(tree(files.path()) == cache_before, "a refused download wrote into the hub cache");

    let answer = send(&server.addr, "POST", "/api/events/pull", &json, request);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("event: progress"), "{}", answer.body);
    let done = answer.body.split("event: done\ndata: ").nth(1).unwrap_or_else(|| panic!("no done event: {}", answer.body));
    let model: Value = serde_json::from_str(done.lines().next().unwrap()).unwrap();
    assert_eq!(model["repo_id"], "whetstone-tests/tiny-llama");
    let listed = server.api("list_models", "{}").json();
    assert_eq!(listed[0]["id"], model["id"]);

    // Cancelling what is not being downloaded says so instead of failing.
    let cancelled = server.api("cancel_pull", request).json();
    assert_eq!(cancelled["cancelled"], false);
}

/// A finished run of the tiny random model, trained in this process into the server's home folder.
fn trained_run(server: &Server) -> i64 {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let api = whetstone_api::Api::open(server.home.path()).unwrap();
    let model = server.home.path().join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let rows: String = (0..6).map(|i| format!("{{\"prompt\":\"Say {i}.\",\"response\":\"{i}!\"}}\n")).collect();
    let data = server.home.path().join("rows.jsonl");
    std::fs::write(&data, rows).unwrap();
    let req: whetstone_api::StartRun = serde_json::from_value(json!({
        "model": model, "data": data, "settings": {"steps": 2, "batch": 2, "max-len": 64, "lora-r": 4, "lr": 0.01, "seed": 1, "threads": 1}
    }))
    .unwrap();
    let worker = whetstone_api::WorkerCommand { program: PathBuf::from("/bin/true"), args: vec![] };
    let run = api.start_run_with(&req, &worker).unwrap();
    let status = whetstone_api::worker::run_worker(Path::new(&run.out_dir), Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(status.as_str(), "completed");
    run.id
}

/// The JSON of every `playground` message of a server-sent event stream.
fn playground_events(stream: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut name = "";
    for line in stream.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.trim();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if name == "playground" {
                out.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")));
            }
        }
    }
    out
}

#[test]
fn the_playground_streams_both_answers_behind_the_same_guards() {
    let server = start(&[]);
    let run = trained_run(&server);
    let bearer = server.bearer();
    let addr = server.addr.clone();
    let path = "/api/events/playground";
    let body = json!({"run": run, "prompt": "Describe a blue mug.", "max_new_tokens": 12}).to_string();
    let json_type = ("Content-Type", "application/json");
    let before = tree(server.home.path());

    // The same guards as every API call: the token, this server's Host, no other site's Origin, JSON only.
    send(&addr, "POST", path, &[("Host", &addr), json_type], &body).assert_refused(401, "unauthorized");
    send(&addr, "POST", path, &[("Host", &addr), json_type, ("Authorization", "Bearer not-the-token-at-all")], &body)
        .assert_refused(401, "unauthorized");
    send(&addr, "POST", path, &[("Host", &addr), json_type, ("Origin", "http://evil.example"), ("Authorization", &bearer)], &body)
        .assert_refused(403, "forbidden_origin");
    send(&addr, "POST", path, &[("Host", "evil.example"), json_type, ("Authorization", &bearer)], &body).assert_refused(403, "forbidden_host");
    send(&addr, "POST", path, &[("Host", &addr), ("Content-Type", "text/plain"), ("Authorization", &bearer)], &body)
        .assert_refused(415, "unsupported_media_type");
    send(&addr, "GET", path, &[("Host", &addr), ("Authorization", &bearer)], "").assert_refused(405, "method_not_allowed");
    let headers = [("Host", addr.as_str()), json_type, ("Authorization", bearer.as_str())];
    // A body far beyond the longest prompt is refused from its declared length, before it is read.
    let huge = json!({"run": run, "prompt": "z".repeat(400_000)}).to_string();
    send(&addr, "POST", path, &headers, &huge).assert_refused(413, "payload_too_large");
    // Requests the playground would not take are refused before the stream opens, with their status.
    send(&addr, "POST", path, &headers, &json!({"run": run, "prompt": "hi", "temperature": 9}).to_string()).assert_refused(400, "invalid_input");
    send(&addr, "POST", path, &headers, &json!({"run": run, "prompt": "z".repeat(30_000)}).to_string()).assert_refused(400, "invalid_input");
    send(&addr, "POST", path, &headers, &json!({"run": 4242, "prompt": "hi"}).to_string()).assert_refused(404, "not_found");
    send(&addr, "POST", path, &headers, "{not json").assert_refused(400, "invalid_input");
    assert!(tree(server.home.path()) == before, "a refused request changed files in the home folder");

    let answer = send(&addr, "POST", path, &headers, &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = playground_events(&answer.body);
    assert_eq!(events[0]["type"], "started", "{}", answer.body);
    assert_eq!(events[0]["setup"]["run"], run);
    assert!(answer.body.trim_end().ends_with("event: end\ndata: {}"), "{}", answer.body);
    for side in ["base", "tuned"] {
        let pieces: Vec<&Value> = events.iter().filter(|e| e["type"] == "text" && e["side"] == side).collect();
        assert!(!pieces.is_empty(), "{side}: no text arrived: {}", answer.body);
        let streamed = pieces.iter().fold(String::new(), |acc, e| {
            let t = e["text"].as_str().unwrap();
            if e["replace"] == true { t.to_string() } else { acc + t }
        });
        let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "done" && e["answer"]["side"] == side).collect();
        assert_eq!(done.len(), 1, "{side}: {}", answer.body);
        assert_eq!(done[0]["answer"]["text"], streamed.as_str(), "{side}: the pieces do not add up to the answer");
        assert!(done[0]["answer"]["tokens"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn a_page_uploads_a_file_by_content_within_the_limit_and_edits_and_settings_answer_with_their_statuses() {
    let server = start(&[]);
    let limit = whetstone_api::uploads::MAX_UPLOAD_BYTES;
    let before = tree(server.home.path());
    let big = json!({"name": "big.jsonl", "text": "x".repeat(limit + 1)}).to_string();
    server.api("data_upload", &big).assert_refused(413, "too_large");
    assert_eq!(tree(server.home.path()), before, "nothing was written");

    let text = "{\"prompt\": \"hi\", \"response\": \"hello\"}\n{\"prompt\": \"bye\", \"response\": \"see you\"}\n";
    let up = server.api("data_upload", &json!({"name": "../../rows.jsonl", "text": text}).to_string());
    assert_eq!(up.status, 200, "{}", up.body);
    let path = up.json()["path"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(server.home.path().join("imports/rows.jsonl")).unwrap(), text);
    let imported = server.api("data_import", &json!({"path": path, "name": "rows"}).to_string());
    assert_eq!(imported.status, 200, "{}", imported.body);

    // A refused edit, then an edit on a version that is no longer the latest.
    let bad = json!({"dataset": "rows", "version": 1, "edits": [{"row": 1, "content": {"prompt": "hi", "response": ""}}]});
    server.api("data_edit", &bad.to_string()).assert_refused(422, "bad_data");
    let ok = server.api("data_edit", &json!({"dataset": "rows", "version": 1, "deletes": [2]}).to_string());
    assert_eq!(ok.status, 200, "{}", ok.body);
    server.api("data_edit", &json!({"dataset": "rows", "version": 1, "deletes": [1]}).to_string()).assert_refused(409, "stale_version");

    let cfg = server.home.path().join("run.yaml");
    let save = json!({"path": cfg, "settings": {"lr": 0.0003}}).to_string();
    assert_eq!(server.api("config_save", &save).status, 200);
    server.api("config_save", &save).assert_refused(409, "file_exists");
    std::fs::write(server.home.path().join("typo.toml"), "lerning_rate = 1\n").unwrap();
    server.api("config_open", &json!({"path": server.home.path().join("typo.toml")}).to_string()).assert_refused(422, "invalid_settings");
}

/// The server-sent events of a whole stream: (event name, data) in order.
fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            name.map(|n| (n, data.join("\n")))
        })
        .collect()
}

#[test]
fn an_evaluation_pushes_its_stages_as_server_sent_events_and_ends_with_the_evaluation() {
    let server = start(&[]);
    let model = server.home.path().join("tiny");
    whetstone_api::testing::write_tiny_model(&model).unwrap();
    let bearer = server.bearer();
    let path = "/api/events/eval_run";
    let body = json!({
        "model": model, "sides": ["base"], "max_new_tokens": 3,
        "rows": [{"prompt": "one", "reference": "uno"}, {"prompt": "two", "reference": "dos"}]
    })
    .to_string();
    let json = ("Content-Type", "application/json");
    let host = ("Host", server.addr.as_str());
    let auth = ("Authorization", bearer.as_str());
    let before = tree(server.home.path());

    // Behind the same token, Host and Origin checks as every API call, and JSON only.
    send(&server.addr, "POST", path, &[host, json], &body).assert_refused(401, "unauthorized");
    send(&server.addr, "POST", path, &[("Host", "evil.example"), json, auth], &body).assert_refused(403, "forbidden_host");
    send(&server.addr, "POST", path, &[host, ("Origin", "http://evil.example"), json, auth], &body).assert_refused(403, "forbidden_origin");
    send(&server.addr, "POST", path, &[host, ("Content-Type", "text/plain"), auth], &body).assert_refused(415, "unsupported_media_type");
    // Arguments are confined and checked as `eval_run`'s are, and refused before the stream opens.
    let outside = json!({"model": model, "data": "/etc/hostname"}).to_string();
    send(&server.addr, "POST", path, &[host, json, auth], &outside).assert_refused(403, "path_not_allowed");
    let bad = json!({"model": model, "rows": [{"prompt": "x"}], "temperature": -1}).to_string();
    send(&server.addr, "POST", path, &[host, json, auth], &bad).assert_refused(400, "invalid_input");
    send(&server.addr, "POST", path, &[host, json, auth], "{not json").assert_refused(400, "invalid_input");
    assert!(tree(server.home.path()) == before, "a refused request changed files in the home folder");

    let answer = send(&server.addr, "POST", path, &[host, json, auth], &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = sse_events(&answer.body);
    let (last, progress) = events.split_last().unwrap();
    assert_eq!(last.0, "evaluation", "{}", answer.body);
    let evaluation: Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(evaluation["items"], 2);
    let stages: Vec<Value> = progress
        .iter()
        .map(|(name, data)| {
            assert_eq!(name, "progress", "{}", answer.body);
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert_eq!(stages[0]["stage"], "loading the model");
    let done: Vec<u64> = stages.iter().map(|s| s["done"].as_u64().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "stages in order: {done:?}");
    assert_eq!(stages.last().unwrap()["stage"], "done");
    assert_eq!(done.last(), stages.last().unwrap()["total"].as_u64().as_ref());
    let listed = server.api("list_evaluations", "{}").json();
    assert_eq!(listed[0], evaluation, "the evaluation sent is the one stored");
}

#[test]
fn a_review_sessions_status_is_pushed_as_raters_rate_until_it_is_closed() {
    let server = start(&[]);
    let evaluation = seeded_evaluation(&server);
    let session = server.api("review_create", &json!({"evaluation": evaluation, "raters_per_item": 1, "seed": 1}).to_string()).json();
    let sid = session["id"].as_i64().unwrap();
    let token = server.api("review_invite", &json!({"session": sid, "name": "ann"}).to_string()).json()["token"].as_str().unwrap().to_string();
    let bearer = server.bearer();
    let path = format!("/api/events/review/{sid}");
    let host = ("Host", server.addr.as_str());
    let auth = ("Authorization", bearer.as_str());
    send(&server.addr, "GET", &path, &[host], "").assert_refused(401, "unauthorized");
    send(&server.addr, "GET", &path, &[("Host", "evil.example"), auth], "").assert_refused(403, "forbidden_host");
    send(&server.addr, "GET", &path, &[host, ("Origin", "http://evil.example"), auth], "").assert_refused(403, "forbidden_origin");
    send(&server.addr, "GET", "/api/events/review/999", &[host, auth], "").assert_refused(404, "not_found");

    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n", server.addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"progress\":\"0 of 2\"");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");
    assert!(seen.contains("event: status"), "{seen}");

    // A rating through the API arrives on the open connection without another request.
    let scores = json!({"factuality": 3});
    let rating = json!({"token": token, "item": 1, "a": {"scores": scores}, "b": {"scores": scores}, "preference": "a"});
    assert_eq!(server.api("review_submit", &rating.to_string()).status, 200);
    read_until(&mut stream, &mut seen, "\"progress\":\"1 of 2\"");
    assert_eq!(server.api("review_close", &json!({"id": sid}).to_string()).status, 200);
    read_until(&mut stream, &mut seen, "event: end");
    assert!(seen.contains("\"closed\":true"), "{seen}");
    assert_eq!(seen.matches("\"progress\":\"1 of 2\"").count(), 2, "the rating, then the closing: {seen}");
}

/// An evaluation with two sides in the server's store, as `eval_run` stores one.
fn seeded_evaluation(server: &Server) -> i64 {
    use whetstone_store::{EvaluationItem, NewEvaluation, OutputRecord, SideRecord};
    let api = whetstone_api::Api::open(server.home.path()).unwrap();
    let side = |name: &str| SideRecord {
        side: name.into(),
        metrics: json!({"side": name, "model": "/m/tiny", "adapter": null, "loss": null, "perplexity": null, "loss_tokens": 0,
                        "loss_rows_dropped": 0, "generated_tokens": 2, "text": null}),
    };
    let items: Vec<EvaluationItem> = (1..=2)
        .map(|i| EvaluationItem {
            position: i,
            line: None,
            messages: json!([{"role": "user", "content": format!("q{i}")}]),
            prompt: format!("q{i}"),
            input: None,
            reference: None,
            outputs: ["base", "tuned"].iter().map(|s| OutputRecord { side: s.to_string(), text: format!("{s} {i}"), tokens: 2, scores: None }).collect(),
        })
        .collect();
    let new = NewEvaluation {
        run_id: None,
        compare_run_id: None,
        model: "/m/tiny".into(),
        adapter: None,
        dataset_id: None,
        dataset_version: None,
        split: None,
        source: "2 given rows".into(),
        settings: json!({}),
        metrics: vec![side("base"), side("tuned")],
    };
    let stored = api.store().insert_evaluation(&new, &items).unwrap();
    stored.id
}

#[test]
fn share_for_review_serves_only_the_review_pages_on_the_address_given_and_stops() {
    let server = start_with(&[], |ui| {
        std::fs::write(ui.join("review.html"), r#"<!doctype html><title>Review</title><script type="module" src="/assets/r.js"></script>"#).unwrap();
        std::fs::create_dir_all(ui.join("assets")).unwrap();
        std::fs::write(ui.join("assets").join("r.js"), "export {};").unwrap();
        std::fs::create_dir_all(ui.join(".vite")).unwrap();
        let manifest =
            json!({"review.html": {"file": "assets/r.js", "src": "review.html", "isEntry": true}});
        std::fs::write(ui.join(".vite").join("manifest.json"), manifest.to_string()).unwrap();
    });
    assert_eq!(
        server.api("review_shared", "{}").json(),
        Value::Null,
        "nothing is shared at first"
    );
    // Without the token, or from another site, sharing is refused and nothing is shared or written.
    let before = tree(server.home.path());
    let bearer = server.bearer();
    let share = r#"{"bind": "127.0.0.1:0"}"#;
    send(&server.addr, "POST", "/api/review_share", &[("Host", &server.addr), ("Content-Type", "application/json")], share)
        .assert_refused(401, "unauthorized");
    let foreign = [("Host", server.addr.as_str()), ("Content-Type", "application/json"), ("Authorization", bearer.as_str()), ("Origin", "http://evil.example")];
    send(&server.addr, "POST", "/api/review_share", &foreign, share).assert_refused(403, "forbidden_origin");
    assert_eq!(server.api("review_shared", "{}").json(), Value::Null);
    assert!(tree(server.home.path()) == before, "a refused share changed the home folder");
    server
        .api("review_share", r#"{"bind": "localhost"}"#)
        .assert_refused(400, "invalid_input");

    let shared = server.api("review_share", r#"{"bind": "127.0.0.1:0"}"#);
    assert_eq!(shared.status, 200, "{}", shared.body);
    let shared = shared.json();
    let bind = shared["bind"].as_str().unwrap().to_string();
    assert!(
        bind.starts_with("127.0.0.1:") && !bind.ends_with(":0"),
        "{shared}"
    );
    assert_eq!(shared["network"], false);
    assert_eq!(
        shared["links"],
        json!([format!("http://{bind}/review#token=")])
    );
    assert_eq!(server.api("review_shared", "{}").json(), shared);

    // The raters' server: its page and its files, and nothing of the app's.
    let page = send(&bind, "GET", "/review", &[("Host", &bind)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<title>Review</title>"), "{}", page.body);
    assert_eq!(
        send(&bind, "GET", "/assets/r.js", &[("Host", &bind)], "").status,
        200
    );
    for path in ["/", "/index.html", "/api/list_models", "/api/overview"] {
        let method = if path.starts_with("/api") {
            "POST"
        } else {
            "GET"
        };
        let answer = send(
            &bind,
            method,
            path,
            &[
                ("Host", &bind),
                ("Content-Type", "application/json"),
                ("Authorization", &server.bearer()),
            ],
            "{}",
        );
        assert_eq!(
            answer.status, 404,
            "{path} on the shared address: {}",
            answer.body
        );
    }
    // Its raters' commands want an invite token; the app's session token is not one.
    let next = send(
        &bind,
        "POST",
        "/api/review_next",
        &[
            ("Host", &bind),
            ("Content-Type", "application/json"),
            ("Authorization", &server.bearer()),
        ],
        "{}",
    );
    next.assert_refused(401, "unauthorized");

    // Asking again for the same address answers where it is; another address while shared is refused.
    assert_eq!(
        server
            .api("review_share", &json!({"bind": bind}).to_string())
            .json(),
        shared
    );
    server
        .api("review_share", r#"{"bind": "127.0.0.1:1"}"#)
        .assert_refused(409, "share_failed");

    assert_eq!(
        server.api("review_unshare", "{}").json(),
        json!({"stopped": true})
    );
    assert!(
        TcpStream::connect(&bind).is_err(),
        "the review address still answers after sharing stopped"
    );
    assert_eq!(server.api("review_shared", "{}").json(), Value::Null);
    assert_eq!(
        server.api("review_unshare", "{}").json(),
        json!({"stopped": false})
    );

    // A port another program holds is said plainly, and nothing is shared.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let refused = server.api(
        "review_share",
        &json!({"bind": format!("127.0.0.1:{port}")}).to_string(),
    );
    refused.assert_refused(409, "share_failed");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("in use"),
        "{}",
        refused.body
    );
    assert_eq!(server.api("review_shared", "{}").json(), Value::Null);
}
