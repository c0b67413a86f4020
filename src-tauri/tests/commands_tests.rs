//! The IPC command through Tauri's mock runtime, with the app's real context: its
//! capabilities from tauri.conf.json decide what the window may call.

use serde_json::{json, Value};
use std::path::Path;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{WebviewUrl, WebviewWindow, WebviewWindowBuilder};
use whetstone_api::Api;
use whetstone_app::{context, setup, Backend};

fn window(backend: Backend, label: &str) -> WebviewWindow<MockRuntime> {
    let app = setup(mock_builder(), backend)
        .build(context())
        .expect("mock app builds with the real context");
    WebviewWindowBuilder::new(&app, label, WebviewUrl::default())
        .build()
        .expect("mock window opens")
}

/// The API command `cmd` through the window's `call` IPC command, as the UI sends it.
fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str) -> Result<Value, Value> {
    invoke_ipc(window, "call", json!({ "command": cmd, "args": null }))
}

fn invoke_ipc(window: &WebviewWindow<MockRuntime>, ipc: &str, body: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: ipc.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().unwrap())
}

fn to_json<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn api_in(home: &Path) -> Api {
    Api::open(home).expect("api opens in a fresh folder")
}

#[test]
fn commands_return_what_the_api_returns() {
    let home = tempfile::tempdir().unwrap();
    let expected = api_in(home.path());
    let w = window(Backend::new(api_in(home.path())), "main");

    assert_eq!(invoke(&w, "list_models").unwrap(), to_json(expected.list_models().unwrap()));
    assert_eq!(invoke(&w, "catalog").unwrap(), to_json(expected.catalog().unwrap()));
    assert_eq!(invoke(&w, "list_datasets").unwrap(), to_json(expected.list_datasets().unwrap()));
    assert_eq!(invoke(&w, "list_runs").unwrap(), to_json(expected.list_runs().unwrap()));
    assert_eq!(invoke(&w, "default_model").unwrap(), to_json(expected.default_model().unwrap()));

    // Free memory moves between two probes, so compare everything else exactly.
    let mut hw = invoke(&w, "hardware").unwrap();
    let mut want = to_json(expected.hardware().unwrap());
    for v in [&mut hw, &mut want] {
        v.as_object_mut().unwrap().remove("ram_available_bytes");
        for gpu in v["gpus"].as_array_mut().unwrap() {
            gpu.as_object_mut().unwrap().remove("vram_free_bytes");
        }
    }
    assert_eq!(hw, want);
    let cores = hw["cpu_cores"].as_u64().unwrap();
    let os_cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(cores, os_cores);
}

#[test]
fn overview_bundles_the_same_lists() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "main");
    let overview = invoke(&w, "overview").unwrap();
    for key in ["models", "datasets", "runs"] {
        assert_eq!(overview[key], invoke(&w, &format!("list_{key}")).unwrap(), "{key}");
    }
    assert_eq!(overview["default_model"], invoke(&w, "default_model").unwrap());
    assert!(overview["hardware"]["cpu_cores"].as_u64().unwrap() >= 1);
}

#[test]
fn a_failing_api_call_comes_back_as_code_and_message() {
    let home = tempfile::tempdir().unwrap();
    let bogus = home.path().join("not-a-model.gguf");
    std::fs::write(&bogus, b"this is not a GGUF file").unwrap();
    let api = api_in(&home.path().join("data")).with_default_model_path(Some(bogus.clone()));
    let w = window(Backend::new(api), "main");

    let err = invoke(&w, "default_model").unwrap_err();
    assert_eq!(err["code"], "invalid_model_file");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("not-a-model.gguf"), "message names the file: {message}");
    assert_eq!(err.as_object().unwrap().len(), 2, "only code and message: {err}");
}

#[test]
fn a_backend_that_could_not_open_reports_why_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let error = Api::open(&file.join("home")).err().expect("a home under a file cannot be created");
    let w = window(Backend::failed(&error), "main");

    for cmd in ["hardware", "overview", "list_models", "catalog", "list_datasets", "list_runs", "default_model"] {
        let err = invoke(&w, cmd).unwrap_err();
        assert_eq!(err["code"], error.code(), "{cmd}");
        assert_eq!(err["message"], error.to_string(), "{cmd}");
    }
}

#[test]
fn the_capability_admits_only_the_main_window() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "other");
    let err = invoke(&w, "hardware").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not allowed"), "unexpected denial: {text}");
}

#[test]
fn unknown_commands_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "main");
    let err = invoke(&w, "no_such_command").unwrap_err();
    assert_eq!(err["code"], "unknown_command", "{err}");
    assert!(err["message"].as_str().unwrap().contains("no_such_command"), "{err}");
    let err = invoke_ipc(&w, "no_such_ipc_command", json!({})).unwrap_err();
    assert!(err.to_string().contains("no_such_ipc_command"), "{err}");
}

#[test]
fn every_api_command_is_reachable_with_arguments() {
    let home = tempfile::tempdir().unwrap();
    let api = api_in(home.path());
    let w = window(Backend::new(api_in(home.path())), "main");
    for cmd in whetstone_api::COMMANDS.iter().map(|c| c.name) {
        // Whatever each answers without arguments, it is the API's own answer, not an IPC refusal.
        let via_ipc = invoke(&w, cmd);
        let direct = api.dispatch(cmd, Value::Null).map_err(|e| to_json(e.body()));
        match (&via_ipc, &direct) {
            (Ok(_), Ok(_)) => {}
            (Err(a), Err(b)) => assert_eq!(a["code"], b["code"], "{cmd}"),
            _ => panic!("{cmd}: IPC gave {via_ipc:?}, the API gave {direct:?}"),
        }
    }
    let err = invoke_ipc(&w, "call", json!({ "command": "get_model", "args": { "id": 12345 } })).unwrap_err();
    assert_eq!(err["code"], "not_found", "{err}");
}

#[test]
fn follow_run_is_allowed_to_the_window_and_refuses_an_unknown_run() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "main");
    let err = invoke_ipc(&w, "follow_run", json!({ "id": 4242, "since": 0, "onEvents": "__CHANNEL__:7" })).unwrap_err();
    assert_eq!(err["code"], "not_found", "{err}");
    // Another window is not given the permission.
    let other = window(Backend::new(api_in(home.path())), "other");
    let err = invoke_ipc(&other, "follow_run", json!({ "id": 4242, "since": 0, "onEvents": "__CHANNEL__:7" })).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "unexpected denial: {err}");
}

#[test]
fn pull_model_follow_is_allowed_to_the_window_and_refuses_an_empty_name() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "main");
    let args = json!({ "request": { "repo": " " }, "onEvents": "__CHANNEL__:7" });
    let err = invoke_ipc(&w, "pull_model_follow", args.clone()).unwrap_err();
    assert_eq!(err["code"], "invalid_input", "{err}");
    let other = window(Backend::new(api_in(home.path())), "other");
    let err = invoke_ipc(&other, "pull_model_follow", args).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "unexpected denial: {err}");
}

#[test]
fn the_playground_stream_is_allowed_to_the_window_and_refuses_what_the_api_refuses() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "main");
    let ask = |window: &WebviewWindow<MockRuntime>, request: Value| {
        invoke_ipc(window, "stream_playground", json!({ "request": request, "onEvent": "__CHANNEL__:9" }))
    };
    let err = ask(&w, json!({ "run": 4242, "prompt": "hi" })).unwrap_err();
    assert_eq!(err["code"], "not_found", "{err}");
    let err = ask(&w, json!({ "run": 4242, "prompt": "hi", "temperature": 7 })).unwrap_err();
    assert_eq!(err["code"], "invalid_input", "{err}");
    assert!(err["message"].as_str().unwrap().contains("temperature 7"), "{err}");
    assert_eq!(invoke_ipc(&w, "stop_playground", json!({})).unwrap(), Value::Null);
    // Another window is given neither.
    let other = window(Backend::new(api_in(home.path())), "other");
    let err = ask(&other, json!({ "run": 4242, "prompt": "hi" })).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "unexpected denial: {err}");
    let err = invoke_ipc(&other, "stop_playground", json!({})).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "unexpected denial: {err}");
}

#[test]
fn the_main_window_may_use_the_file_dialogs_and_hear_of_dropped_files_and_no_other_window_may() {
    let home = tempfile::tempdir().unwrap();
    // The dialogs themselves need a person; what is checked is who may ask for them.
    let other = window(Backend::new(api_in(home.path())), "other");
    for cmd in ["plugin:dialog|open", "plugin:dialog|save"] {
        let err = invoke_ipc(&other, cmd, json!({ "options": {} })).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{cmd}: unexpected denial: {err}");
    }
    let listen = |w: &WebviewWindow<MockRuntime>| {
        invoke_ipc(w, "plugin:event|listen", json!({ "event": "tauri://drag-drop", "target": { "kind": "Any" }, "handler": 3 }))
    };
    let err = listen(&other).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "unexpected denial: {err}");
    let main = window(Backend::new(api_in(home.path())), "main");
    for cmd in ["plugin:dialog|open", "plugin:dialog|save"] {
        // Without its options the call stops at its arguments, after the permission was granted
        // and before any dialog would open.
        let err = invoke_ipc(&main, cmd, json!({})).unwrap_err().to_string();
        assert!(!err.contains("not allowed") && err.contains("options"), "{cmd}: {err}");
    }
    let id = listen(&main).expect("the main window listens for dropped files");
    assert!(id.is_u64(), "a listener id: {id}");
}

#[test]
fn the_pushed_evaluation_and_review_commands_are_the_main_windows_alone() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(api_in(home.path())), "main");
    // Refused as `eval_run` refuses, before anything is pushed down the channel.
    let err = invoke_ipc(&w, "eval_run_with_progress", json!({ "args": { "temperature": -1 }, "onProgress": "__CHANNEL__:7" })).unwrap_err();
    assert_eq!(err["code"], "invalid_input", "{err}");
    let err = invoke_ipc(&w, "eval_run_with_progress", json!({ "args": { "run": 4242 }, "onProgress": "__CHANNEL__:7" })).unwrap_err();
    assert_eq!(err["code"], "not_found", "{err}");
    let err = invoke_ipc(&w, "follow_review", json!({ "id": 4242, "onStatus": "__CHANNEL__:8" })).unwrap_err();
    assert_eq!(err["code"], "not_found", "{err}");
    invoke_ipc(&w, "stop_following", json!({ "channel": 8 })).expect("the page may stop what it follows");

    let other = window(Backend::new(api_in(home.path())), "other");
    for (ipc, body) in [
        ("eval_run_with_progress", json!({ "args": { "run": 1 }, "onProgress": "__CHANNEL__:7" })),
        ("follow_review", json!({ "id": 1, "onStatus": "__CHANNEL__:8" })),
        ("stop_following", json!({ "channel": 8 })),
    ] {
        let err = invoke_ipc(&other, ipc, body).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{ipc}: unexpected denial: {err}");
    }
}

#[test]
fn the_window_shares_a_review_on_the_address_it_is_given_and_stops() {
    let home = tempfile::tempdir().unwrap();
    let w = window(Backend::new(Backend::sharing(api_in(home.path()))), "main");
    let call = |cmd: &str, args: Value| invoke_ipc(&w, "call", json!({ "command": cmd, "args": args }));
    assert_eq!(call("review_shared", Value::Null).unwrap(), Value::Null);
    let shared = call("review_share", json!({ "bind": "127.0.0.1:0" })).unwrap();
    let bind = shared["bind"].as_str().unwrap().to_string();
    assert_eq!(shared["links"], json!([format!("http://{bind}/review#token=")]));
    // The raters' server answers on that address with the raters' page (built by `npm run build`).
    let mut stream = std::net::TcpStream::connect(&bind).unwrap();
    std::io::Write::write_all(&mut stream, format!("GET /review HTTP/1.1\r\nHost: {bind}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(400)]);
    assert_eq!(call("review_unshare", Value::Null).unwrap(), json!({ "stopped": true }));
    assert!(std::net::TcpStream::connect(&bind).is_err(), "still served after Stop sharing");
    // A window without the permission cannot share.
    let other = window(Backend::new(Backend::sharing(api_in(home.path()))), "other");
    let err = invoke_ipc(&other, "call", json!({ "command": "review_share", "args": { "bind": "127.0.0.1:0" } })).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "unexpected denial: {err}");
}
