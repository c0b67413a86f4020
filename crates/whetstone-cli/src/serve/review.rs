//! `whet serve --review`: what raters on other machines reach, and nothing else. The review page and
//! the rater commands (`POST /api/review_next`, `review_submit`, `review_progress`) are served; every other
//! path answers 404. A rater authenticates with `Authorization: Bearer <invite token>`, which the API checks
//! (unknown, revoked or expired: 401) and which confines them to their own queue (another rater's item: 403).

use super::{api_error_response, error_response, read_body, AppState};
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;
use whetstone_api::dispatch::{is_rater_command, Caller};
use whetstone_api::Error as ApiError;

const PAGE: &str = include_str!("review_page/review.html");
const SCRIPT: &str = include_str!("review_page/review.js");
const STYLE: &str = include_str!("review_page/review.css");

/// The page loads only its own script and style and talks only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/review", get(page))
        .route("/review/", get(page))
        .route("/review/review.js", get(script))
        .route("/review/review.css", get(style))
        .route("/api/{command}", post(rater_command).fallback(not_post))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::access::guard))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn no_such_endpoint(path: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{path} is not served in review mode; raters use /review and POST /api/review_next, review_submit or review_progress"),
    )
}

async fn not_found(uri: axum::http::Uri) -> Response {
    no_such_endpoint(uri.path())
}

async fn not_post(UrlPath(command): UrlPath<String>, uri: axum::http::Uri) -> Response {
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
    let result = tokio::task::spawn_blocking(move || state.api.dispatch_from(Caller::Reviewer, &command, args)).await;
    match result {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(err)) if err.code() == "unauthorized" => unauthorized(err.to_string()),
        Ok(Err(err)) => api_error_response(&err),
        Err(join) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("the command stopped unexpectedly: {join}")),
    }
}
