//! The built web UI, served from a folder; client-side routes fall back to `index.html`.

use super::{error_response, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
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
pub(super) fn safe_relative_path(url_path: &str) -> Option<PathBuf> {
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

/// The files a built page loads, as paths inside the UI folder: what its HTML refers to (`./…`)
/// and, from Vite's manifest (`.vite/manifest.json`), its script with every chunk, stylesheet and
/// asset that script imports, directly or on demand. Review mode serves these and nothing else.
pub(super) fn page_files(ui_dir: &Path, page: &str) -> Result<BTreeSet<String>, String> {
    let html = std::fs::read_to_string(ui_dir.join(page)).map_err(|e| format!("cannot read {page}: {e}"))?;
    let manifest_path = ui_dir.join(".vite").join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", manifest_path.display()))?;
    if manifest.get(page).is_none() {
        return Err(format!("{} has no entry for {page}; build the UI again", manifest_path.display()));
    }
    let mut files: BTreeSet<String> = html_references(&html).into_iter().collect();
    let mut todo = vec![page.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(key) = todo.pop() {
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(chunk) = manifest.get(&key) else { continue };
        let strings = |field: &str| -> Vec<String> {
            chunk.get(field).and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
        };
        files.extend(chunk.get("file").and_then(|f| f.as_str()).map(str::to_string));
        files.extend(strings("css"));
        files.extend(strings("assets"));
        todo.extend(strings("imports"));
        todo.extend(strings("dynamicImports"));
    }
    // Only plain paths inside the folder, whatever the files say.
    Ok(files.into_iter().filter(|f| safe_relative_path(f).is_some_and(|p| !p.as_os_str().is_empty())).collect())
}

/// The `./…` paths in an HTML page's `src` and `href` attributes (the build writes relative ones).
fn html_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"./", "href=\"./"] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            let after = &rest[at + attr.len()..];
            let Some(end) = after.find('"') else { break };
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

/// A file of the UI folder and its content type.
pub(super) async fn read_page_file(file: &Path) -> std::io::Result<(&'static str, Vec<u8>)> {
    let bytes = tokio::fs::read(file).await?;
    Ok((content_type(file), bytes))
}
