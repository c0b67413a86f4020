//! The built web UI, served from a folder; client-side routes fall back to `index.html`.

use super::{error_response, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

pub(super) async fn ui_file(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
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
