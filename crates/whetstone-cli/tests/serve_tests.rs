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
