//! `POST /api/events/playground`: the playground's answers as server-sent events, the twin of the
//! window's `stream_playground` Channel. Both go through [`Api::playground`].

use super::{api_error_response, error_response, read_body_up_to, refuse_non_json, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use whetstone_api::playground::{PlaygroundEvent, PlaygroundRequest, MAX_PROMPT_CHARS};
use whetstone_api::Error as ApiError;

/// A request is a prompt and a few numbers: room for the longest prompt, every character escaped.
const MAX_BODY: usize = MAX_PROMPT_CHARS * 12 + 4096;

/// Each event of [`Api::playground`] as a `playground` message (the event's JSON), then `end`, or
/// `error` with `{code, message}` if answering failed once under way. A request the playground would
/// not take (bad settings, an unknown run or one without an adapter) is refused before the stream
/// opens, with the status of its error. When the client goes away both answers stop.
///
/// [`Api::playground`]: whetstone_api::Api::playground
pub async fn stream(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refused) = refuse_non_json(&headers) {
        return refused;
    }
    let body = match read_body_up_to(&state, &headers, body, MAX_BODY.min(state.max_body)).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let req: PlaygroundRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => return api_error_response(&ApiError::InvalidInput(format!("the playground request: {e}"))),
    };
    let check = state.clone();
    let checked = req.clone();
    match tokio::task::spawn_blocking(move || check.api.check_playground(&checked)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return api_error_response(&err),
        Err(join) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", join.to_string()),
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(64);
    tokio::task::spawn_blocking(move || {
        let result = state.api.playground(&req, &mut |event: &PlaygroundEvent| {
            let data = serde_json::to_string(event).unwrap_or_else(|_| "null".into());
            // Fails once the client has gone and the stream with it: the answers stop there.
            tx.blocking_send(SseEvent::default().event("playground").data(data)).is_ok()
        });
        let last = match result {
            Ok(_) => SseEvent::default().event("end").data("{}"),
            Err(err) => SseEvent::default().event("error").data(serde_json::to_string(&err.body()).unwrap_or_default()),
        };
        let _ = tx.blocking_send(last);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok::<_, std::convert::Infallible>(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
