//! The API over HTTP: `POST /api/{command}` plus the built web UI behind a session token and
//! Host/Origin checks, or, in review mode, only the raters' page and their commands (see [`review`]).
//! `whet serve` and the desktop app's "Share for review" are both thin callers of [`serve`].

mod access;
mod listener;
mod playground;
mod review;
mod share;
mod ui_files;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use whetstone_api::dispatch::Caller;
use whetstone_api::{Api, Error as ApiError, ErrorBody};

pub use access::{check_chosen_token, host_text, random_token, MIN_TOKEN_LEN};
pub use review::check_built as check_review_page;
pub use share::ReviewSharing;

/// Largest API request body by default.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Connections served at once by default.
pub const MAX_CONNECTIONS: usize = 64;
/// Every rater's browser keeps a connection or two open between requests; at 64, fifty raters left new
/// connections waiting in the backlog for seconds until an idle one was dropped.
pub const MAX_REVIEW_CONNECTIONS: usize = 512;
/// A rating is at most a 10,000-character comment and a 50,000-character edit: far below this.
pub const MAX_REVIEW_BODY: usize = 1024 * 1024;
/// Seconds a client has by default to send a request's headers, and again its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `npm run build` in `ui/` writes, for running from a checkout.
pub fn repo_ui_dist() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/whetstone-server → the repository root.
    let root = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
    root.join("ui").join("dist")
}

/// The folder of the built web UI: `WHETSTONE_UI_DIR` when set, else `ui/dist` of this checkout.
pub fn default_ui_dir() -> PathBuf {
    std::env::var_os("WHETSTONE_UI_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(repo_ui_dist)
}

/// How a server answers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The built web UI (the raters' page too).
    pub ui_dir: PathBuf,
    /// The session token the app's API requires; unused in review mode, where raters' invite tokens are checked.
    pub token: String,
    /// Serve only the review page and the raters' commands.
    pub review: bool,
    /// Other host names clients may use to reach the server.
    pub allow_hosts: Vec<String>,
    pub max_body: usize,
    pub read_timeout: Duration,
    pub max_connections: usize,
}

impl Options {
    /// The app's server with `token`, with the default limits.
    pub fn app(ui_dir: PathBuf, token: String) -> Options {
        Options {
            ui_dir,
            token,
            review: false,
            allow_hosts: Vec::new(),
            max_body: MAX_BODY,
            read_timeout: READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }

    /// The raters' server, with review mode's limits.
    pub fn review(ui_dir: PathBuf) -> Options {
        Options {
            ui_dir,
            token: String::new(),
            review: true,
            allow_hosts: Vec::new(),
            max_body: MAX_REVIEW_BODY,
            read_timeout: READ_TIMEOUT,
            max_connections: MAX_REVIEW_CONNECTIONS,
        }
    }
}

/// Serves `api` on `socket` as `options` say until `shutdown` completes.
pub async fn serve(
    api: Api,
    socket: tokio::net::TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let addr = socket.local_addr()?;
    let review = options.review;
    let state = Arc::new(AppState {
        api,
        ui_dir: options.ui_dir,
        token: options.token,
        review,
        hosts: access::Hosts::new(addr, &options.allow_hosts),
        max_body: options.max_body,
        read_timeout: options.read_timeout,
        turns: tokio::sync::Semaphore::new(review::STORE_TURNS),
    });
    let limits = listener::Limits {
        read_timeout: state.read_timeout,
        max_connections: options.max_connections.max(1),
    };
    let app = if review {
        review::router(state)
    } else {
        router(state)
    };
    listener::serve(socket, app, &limits, shutdown).await;
    Ok(())
}

struct AppState {
    api: Api,
    ui_dir: PathBuf,
    token: String,
    /// Review mode: raters authenticate with their invite tokens, and only their commands are served.
    review: bool,
    hosts: access::Hosts,
    max_body: usize,
    read_timeout: Duration,
    /// Review mode: raters' commands waiting for the store, served in the order they came.
    turns: tokio::sync::Semaphore,
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/api/{command}",
            post(api_command).fallback(|| async {
                error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "API commands are called with POST".into(),
                )
            }),
        )
        .route("/api/events/run/{id}", get(follow_run))
        .route("/api/events/pull", post(follow_pull))
        .route(
            "/api/events/playground",
            post(playground::stream).fallback(|| async {
                error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "the playground's answers are asked for with POST".into())
            }),
        )
        .route("/api/events/eval_run", post(eval_run_with_progress))
        .route("/api/events/review/{id}", get(follow_review))
        .fallback(ui_files::ui_file)
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::guard))
        .with_state(state)
}

async fn api_command(
    State(state): State<Arc<AppState>>,
    UrlPath(command): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refusal) = refuse_non_json(&headers) {
        return refusal;
    }
    let body = match read_body(&state, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(e) => {
                let err = ApiError::InvalidInput(format!(
                    "the request body for `{command}` is not valid JSON: {e}"
                ));
                return api_error_response(&err);
            }
        }
    };
    // The command itself may run for minutes (a download, an import); only reading the
    // request has a deadline.
    let result =
        tokio::task::spawn_blocking(move || state.api.dispatch_from(Caller::Server, &command, args)).await;
    match result {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(err)) => api_error_response(&err),
        Err(join) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the command stopped unexpectedly: {join}"),
        ),
    }
}

/// Requiring a JSON content type makes browsers send a CORS preflight for cross-site requests,
/// which this server never approves: other web pages cannot drive the API.
fn refuse_non_json(headers: &HeaderMap) -> Option<Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    (!is_json).then(|| {
        error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the arguments as a JSON body with `Content-Type: application/json`".into(),
        )
    })
}

/// `GET /api/events/run/{id}?since=N`: the run's events as server-sent events, pushed as the
/// worker logs them (an `events` message per batch, the `RunEvents` JSON), then `end` when the run
/// has ended, or `error` with `{code, message}`. An unknown run is refused before the stream opens.
async fn follow_run(State(state): State<Arc<AppState>>, UrlPath(id): UrlPath<i64>, uri: axum::http::Uri) -> Response {
    let since = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("since="))
        .map(|v| v.parse::<u64>());
    let since = match since {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return api_error_response(&ApiError::InvalidInput("`since` must be a byte offset (a whole number)".into()))
        }
    };
    let check = state.clone();
    match tokio::task::spawn_blocking(move || check.api.get_run(id)).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => return api_error_response(&err),
        Err(join) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", join.to_string()),
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(16);
    tokio::task::spawn_blocking(move || {
        let interval = whetstone_api::follow::FOLLOW_INTERVAL;
        let open = tx.clone();
        let result = state.api.follow_run(id, since, interval, &|| !open.is_closed(), &mut |batch| {
            let data = serde_json::to_string(batch).unwrap_or_else(|_| "null".into());
            tx.blocking_send(SseEvent::default().event("events").data(data)).is_ok()
        });
        let last = match result {
            Ok(()) => SseEvent::default().event("end").data("{}"),
            Err(err) => SseEvent::default().event("error").data(serde_json::to_string(&err.body()).unwrap_or_default()),
        };
        let _ = tx.blocking_send(last);
    });
    sse_from(rx)
}

/// `POST /api/events/pull` with a `PullRequest` JSON body: downloads the model, pushing `progress`
/// messages (`FileProgress` JSON) as it goes, then `done` with the added model, or `error` with
/// `{code, message}` (`cancelled` after `cancel_pull`). Closing the stream cancels the download;
/// its partial file stays, so the same request later resumes it.
async fn follow_pull(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refusal) = refuse_non_json(&headers) {
        return refusal;
    }
    let body = match read_body(&state, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let req: whetstone_api::models::PullRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return api_error_response(&ApiError::InvalidInput(format!("the download request is not valid: {e}"))),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(16);
    tokio::task::spawn_blocking(move || {
        let result = state.api.pull_follow(&req, &mut |event| {
            let (name, data) = match event {
                whetstone_api::pulls::PullEvent::Progress(p) => ("progress", serde_json::to_string(p)),
                whetstone_api::pulls::PullEvent::Done { model } => ("done", serde_json::to_string(model)),
            };
            tx.blocking_send(SseEvent::default().event(name).data(data.unwrap_or_else(|_| "null".into()))).is_ok()
        });
        if let Err(err) = result {
            let _ = tx.blocking_send(SseEvent::default().event("error").data(serde_json::to_string(&err.body()).unwrap_or_default()));
        }
    });
    sse_from(rx)
}

/// A stream of server-sent events from a channel the blocking task writes to.
fn sse_from(rx: tokio::sync::mpsc::Receiver<SseEvent>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok::<_, std::convert::Infallible>(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// `POST /api/events/eval_run` with `eval_run`'s JSON arguments: the evaluation runs and its progress is
/// pushed as server-sent events (a `progress` message per stage, the `EvalProgress` JSON), then
/// `evaluation` with the stored evaluation, or `error` with `{code, message}`. Arguments that are refused
/// (a bad value, a path outside the allowed folders) get a plain error response before the stream opens.
/// A listener that leaves does not stop the evaluation: it is stored and listed like any other.
async fn eval_run_with_progress(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refusal) = refuse_non_json(&headers) {
        return refusal;
    }
    let body = match read_body(&state, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(e) => {
                return api_error_response(&ApiError::InvalidInput(format!("the request body for `eval_run` is not valid JSON: {e}")))
            }
        }
    };
    enum Sent {
        Progress(whetstone_api::evaluation::EvalProgress),
        Done(Box<whetstone_api::evaluation::Evaluation>),
        Failed(ApiError),
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent>();
    tokio::task::spawn_blocking(move || {
        let progress = tx.clone();
        let result = state.api.eval_run_from(Caller::Server, args, &mut |p| {
            // A listener that left is no reason to stop: the evaluation is kept either way.
            let _ = progress.send(Sent::Progress(p.clone()));
        });
        let _ = tx.send(match result {
            Ok(e) => Sent::Done(Box::new(e)),
            Err(e) => Sent::Failed(e),
        });
    });
    // Every check runs before the first stage is reported, so a refusal is the first thing to arrive.
    let first = match rx.recv().await {
        Some(Sent::Failed(err)) => return api_error_response(&err),
        Some(first) => first,
        None => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the evaluation stopped unexpectedly".into()),
    };
    let to_event = |sent: Sent| -> SseEvent {
        match sent {
            Sent::Progress(p) => SseEvent::default().event("progress").data(serde_json::to_string(&p).unwrap_or_default()),
            Sent::Done(e) => SseEvent::default().event("evaluation").data(serde_json::to_string(&e).unwrap_or_default()),
            Sent::Failed(err) => SseEvent::default().event("error").data(serde_json::to_string(&err.body()).unwrap_or_default()),
        }
    };
    let stream = futures_util::stream::unfold((Some(first), rx), move |(pending, mut rx)| async move {
        let next = match pending {
            Some(sent) => sent,
            None => rx.recv().await?,
        };
        Some((Ok::<_, std::convert::Infallible>(to_event(next)), (None, rx)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// `GET /api/events/review/{id}`: the review session's status (each rater's progress) as server-sent
/// events, a `status` message (the `ReviewStatus` JSON) at once and whenever a rating, an invitation or
/// a revocation changes it, then `end` once the session is closed, or `error` with `{code, message}`. An
/// unknown session is refused before the stream opens.
async fn follow_review(State(state): State<Arc<AppState>>, UrlPath(id): UrlPath<i64>) -> Response {
    let check = state.clone();
    match tokio::task::spawn_blocking(move || check.api.review_status(id)).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => return api_error_response(&err),
        Err(join) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", join.to_string()),
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(16);
    tokio::task::spawn_blocking(move || {
        let interval = whetstone_api::follow::REVIEW_FOLLOW_INTERVAL;
        let open = tx.clone();
        let result = state.api.follow_review(id, interval, &|| !open.is_closed(), &mut |status| {
            let data = serde_json::to_string(status).unwrap_or_else(|_| "null".into());
            tx.blocking_send(SseEvent::default().event("status").data(data)).is_ok()
        });
        let last = match result {
            Ok(()) => SseEvent::default().event("end").data("{}"),
            Err(err) => SseEvent::default().event("error").data(serde_json::to_string(&err.body()).unwrap_or_default()),
        };
        let _ = tx.blocking_send(last);
    });
    sse_from(rx)
}

/// The whole body, or the response refusing it: too large (judged from Content-Length before
/// reading anything, else while reading) or too slow.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    read_body_up_to(state, headers, body, state.max_body).await
}

/// [`read_body`] with a limit of its own, for routes whose requests are always small.
async fn read_body_up_to(state: &AppState, headers: &HeaderMap, body: Body, max_body: usize) -> Result<Vec<u8>, Response> {
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            if max_body == state.max_body {
                format!("the request body is larger than {max_body} bytes; start the server with a larger --max-body if this is intended")
            } else {
                format!("the request body is larger than {max_body} bytes, the most this route takes")
            },
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(too_large());
    }
    let reading = Limited::new(body, max_body).collect();
    match tokio::time::timeout(state.read_timeout, reading).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("cannot read the request body: {e}"),
        )),
        Err(_) => Err(error_response(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} seconds",
                state.read_timeout.as_secs()
            ),
        )),
    }
}

fn api_error_response(err: &ApiError) -> Response {
    (http_status(err.code()), Json(err.body())).into_response()
}

/// The HTTP status for an API error code: the caller's mistake (4xx) or the server's (5xx).
fn http_status(code: &str) -> StatusCode {
    match code {
        "not_found" | "no_model" | "hub_repo_not_found" | "hub_file_not_found" | "hub_not_cached" => StatusCode::NOT_FOUND,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "path_not_allowed" | "forbidden_command" | "hub_gated" | "forbidden_item" => StatusCode::FORBIDDEN,
        "folder_not_empty" | "file_exists" | "run_active" | "run_not_ready" | "review_closed" | "busy" => StatusCode::CONFLICT,
        "bad_data" | "rows_too_long" | "chat_template" | "invalid_model_file" | "bad_model" | "bad_model_config" | "unsupported_model"
        | "bad_adapter" | "invalid_settings" => StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input" | "unknown_command" | "eval_empty" | "eval_no_references" | "eval_length_mismatch" => StatusCode::BAD_REQUEST,
        "hub_unreachable" | "hub_http" | "hub_bad_response" => StatusCode::BAD_GATEWAY,
        "stale_version" | "share_failed" | "already_discarded" | "queue_applied" => StatusCode::CONFLICT,
        "unsupported" => StatusCode::NOT_IMPLEMENTED,
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        code: code.to_string(),
        message,
    };
    (status, Json(body)).into_response()
}
