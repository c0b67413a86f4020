//! `whet serve --review`: what raters on other machines reach, and nothing else. The raters' page
//! (`/review`, the `review.html` page of the built UI, found as `whet serve` finds the app) with exactly
//! the files it loads, and the rater commands (`POST /api/review_next`, `review_submit`,
//! `review_progress`); every other path answers 404, the app's own pages and files included. A rater
//! authenticates with `Authorization: Bearer <invite token>`, which the API checks (unknown, revoked or
//! expired: 401) and which confines them to their own queue (another rater's item: 403).

use super::{api_error_response, error_response, read_body, ui_files, AppState};
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use whetstone_api::dispatch::{is_rater_command, Caller};
use whetstone_api::Error as ApiError;

/// The raters' page in the built UI (a Vite entry of its own, `ui/review.html`).
pub(super) const PAGE: &str = "review.html";

/// Raters' commands running at once; the others wait their turn, first come, first served. Without the
/// queue, dozens of raters' threads contended for the store's lock, which is not fair: some waited over
/// a second while others went again and again. Enough run at once for their ratings to share commits.
pub(super) const STORE_TURNS: usize = 16;

/// The page loads only its own scripts and styles and talks only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/review", get(page))
        // The page's files are addressed relative to /review; under /review/ they would not be found.
        .route("/review/", get(|| async { Redirect::permanent("/review") }))
        .route("/api/{command}", post(rater_command).fallback(not_post))
        .fallback(page_file)
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::access::guard))
        .with_state(state)
}

/// Whether the built UI in `ui_dir` has the raters' page; why not, if not.
pub fn check_built(ui_dir: &Path) -> Result<(), String> {
    ui_files::page_files(ui_dir, PAGE).map(|_| ())
}

fn served(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn page(State(state): State<Arc<AppState>>) -> Response {
    if let Err(why) = check_built(&state.ui_dir) {
        return not_built(&state.ui_dir, &why);
    }
    match ui_files::read_page_file(&state.ui_dir.join(PAGE)).await {
        Ok((content_type, bytes)) => served(content_type, bytes),
        Err(e) => not_built(&state.ui_dir, &format!("cannot read {PAGE}: {e}")),
    }
}

/// One of the files the raters' page loads; anything else is not served here.
async fn page_file(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if method != Method::GET && method != Method::HEAD {
        return no_such_endpoint(path);
    }
    let wanted = path.trim_start_matches('/');
    let files = match ui_files::page_files(&state.ui_dir, PAGE) {
        Ok(files) => files,
        Err(_) => return no_such_endpoint(path),
    };
    if !files.contains(wanted) {
        return no_such_endpoint(path);
    }
    // HEAD gets the same headers; the server leaves the body out.
    match ui_files::read_page_file(&state.ui_dir.join(wanted)).await {
        Ok((content_type, bytes)) => served(content_type, bytes),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("cannot read {wanted}: {e}")),
    }
}

/// The page is missing from the built UI: say where it was looked for and how to build it.
fn not_built(ui_dir: &Path, why: &str) -> Response {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Whetstone: rating page not built</title></head>\
         <body><h1>The rating page is not built</h1><p>{}</p><p>Looked in <code>{}</code>. Build the UI with \
         <code>npm ci &amp;&amp; npm run build</code> in <code>ui/</code>, or start <code>whet serve --review</code> with \
         <code>--ui DIR</code> (or <code>WHETSTONE_UI_DIR</code>) naming the folder that holds the built UI.</p></body></html>",
        escape(why),
        escape(&ui_dir.display().to_string()),
    );
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

fn no_such_endpoint(path: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{path} is not served in review mode; raters use the page /review and POST /api/review_next, review_submit or review_progress"),
    )
}

async fn not_post(UrlPath(command): UrlPath<String>, uri: Uri) -> Response {
    if is_rater_command(&command) {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "review commands are called with POST".into());
    }
    no_such_endpoint(uri.path())
}

fn unauthorized(message: String) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The invite token from `Authorization: Bearer …`; anything else counts as none.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

async fn rater_command(State(state): State<Arc<AppState>>, UrlPath(command): UrlPath<String>, headers: HeaderMap, body: Body) -> Response {
    if !is_rater_command(&command) {
        return no_such_endpoint(&format!("/api/{command}"));
    }
    let Some(token) = bearer(&headers) else {
        return unauthorized("send your invite token as `Authorization: Bearer TOKEN` (it is in the link you were given)".into());
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the arguments as a JSON body with `Content-Type: application/json`".into(),
        );
    }
    let body = match read_body(&state, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut args = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return api_error_response(&ApiError::InvalidInput(format!("the request body for `{command}` must be a JSON object"))),
            Err(e) => return api_error_response(&ApiError::InvalidInput(format!("the request body for `{command}` is not valid JSON: {e}"))),
        }
    };
    // The token is the header's, whatever the body says: one rater, one queue.
    args["token"] = Value::String(token);
    let queue = state.clone();
    let Ok(_turn) = queue.turns.acquire().await else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is stopping".into());
    };
    let result = tokio::task::spawn_blocking(move || state.api.dispatch_from(Caller::Reviewer, &command, args)).await;
    match result {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(err)) if err.code() == "unauthorized" => unauthorized(err.to_string()),
        Ok(Err(err)) => api_error_response(&err),
        Err(join) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("the command stopped unexpectedly: {join}")),
    }
}
