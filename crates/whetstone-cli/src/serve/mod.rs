//! `whet serve`: the API as `POST /api/{command}` plus the built web UI, on this machine only by
//! default.

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Args;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use whetstone_api::{Api, Error as ApiError, ErrorBody};

/// Where `npm run build` in `ui/` writes, for running from a checkout.
fn repo_ui_dist() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/whetstone-cli → the repository root.
    let root = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
    root.join("ui").join("dist")
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but a loopback address exposes the API to the network
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Folder with the built web UI [default: $WHETSTONE_UI_DIR, else ui/dist of this checkout]
    #[arg(long, value_name = "DIR")]
    ui: Option<PathBuf>,
}

struct AppState {
    api: Api,
    ui_dir: PathBuf,
}

pub fn run(api: Api, args: &ServeArgs) -> anyhow::Result<()> {
    let ui_dir = args
        .ui
        .clone()
        .or_else(|| std::env::var_os("WHETSTONE_UI_DIR").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(repo_ui_dist);
    let state = Arc::new(AppState { api, ui_dir });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(state, &args.host, args.port))
}

async fn serve(state: Arc<AppState>, host: &str, port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read the port from this exact first line.
    println!("listening on http://{addr}");
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: {addr} is reachable from other machines and the API has no authentication"
        );
    }
    if !state.ui_dir.join("index.html").is_file() {
        eprintln!(
            "warning: no index.html in {}; the API works, the web UI will not",
            state.ui_dir.display()
        );
    }
    let app = Router::new()
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
        .fallback(ui_file)
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn api_command(
    State(state): State<Arc<AppState>>,
    UrlPath(command): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Requiring a JSON content type makes browsers send a CORS preflight for cross-site
    // requests, which this server never approves: other web pages cannot drive the API.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if !is_json {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the arguments as a JSON body with `Content-Type: application/json`".into(),
        );
    }
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
    let result =
        tokio::task::spawn_blocking(move || state.api.dispatch(&command, args)).await;
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

fn api_error_response(err: &ApiError) -> Response {
    let status = match err {
        ApiError::InvalidInput(_) | ApiError::UnknownCommand { .. } => StatusCode::BAD_REQUEST,
        ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(err.body())).into_response()
}

fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        code: code.to_string(),
        message,
    };
    (status, Json(body)).into_response()
}

async fn ui_file(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no API endpoint at {}; use POST /api/<command>", uri.path()),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let index = state.ui_dir.join("index.html");
    if !index.is_file() {
        return missing_ui_page(&state.ui_dir);
    }
    let Some(relative) = safe_relative_path(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    };
    let candidate = state.ui_dir.join(&relative);
    let file = if relative.as_os_str().is_empty() {
        index
    } else if candidate.is_file() {
        candidate
    } else if relative.extension().is_none() {
        // Client-side routes such as /runs/3 belong to the single-page app.
        index
    } else {
        return (StatusCode::NOT_FOUND, format!("{} not found", uri.path())).into_response();
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let headers = [
                (header::CONTENT_TYPE, content_type(&file)),
                (header::CACHE_CONTROL, "no-cache"),
            ];
            if method == Method::HEAD {
                (headers, Body::empty()).into_response()
            } else {
                (headers, bytes).into_response()
            }
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}", file.display()),
        )
            .into_response(),
    }
}

/// The URL path as a path inside the UI folder, refusing anything that could climb out of it.
fn safe_relative_path(url_path: &str) -> Option<PathBuf> {
    let relative = Path::new(url_path.trim_start_matches('/'));
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str()?;
                if part.contains('\\') || part.contains('%') {
                    return None;
                }
                clean.push(part);
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(clean)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn missing_ui_page(ui_dir: &Path) -> Response {
    let dir = html_escape(&ui_dir.display().to_string());
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Whetstone: no web UI</title></head>\
         <body><h1>The web UI is not built</h1>\
         <p>There is no <code>index.html</code> in <code>{dir}</code>.</p>\
         <p>Build it with <code>npm install &amp;&amp; npm run build</code> in <code>ui/</code>, \
         or start <code>whet serve --ui DIR</code> (or set <code>WHETSTONE_UI_DIR</code>) with the folder \
         that holds the built UI.</p>\
         <p>The API itself is running: <code>POST /api/overview</code>.</p></body></html>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
