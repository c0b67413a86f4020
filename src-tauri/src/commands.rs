//! The window's IPC commands: `call(command, args)`, the same contract as the HTTP server's
//! `POST /api/<command>`, answered by [`Api::dispatch_from`] for the window (paths confined to the
//! home folder and the allowed folders) with `{code, message}` on failure; and `follow_run`, the
//! Channel twin of the server's `GET /api/events/run/{id}` stream; `pull_model_follow`, the twin of
//! `POST /api/events/pull`.

use serde_json::Value;
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;
use whetstone_api::dispatch::Caller;
use whetstone_api::{Api, Error, ErrorBody, RunEvents, Workers};

/// The API, or why it could not be opened. Keeping the failure lets the window start anyway
/// and show the reason in its error banner instead of the app vanishing.
pub struct Backend(Result<Arc<Api>, ErrorBody>);

impl Backend {
    pub fn new(api: Api) -> Self {
        Backend(Ok(Arc::new(api)))
    }

    pub fn failed(error: &Error) -> Self {
        Backend(Err(error.body()))
    }

    /// Opens `$WHETSTONE_HOME` (or the platform data folder) like every other front end; training
    /// runs start this same program as their worker, with `worker_args`, or the GPU worker beside
    /// it (`whetstone-worker-cuda`) for runs on an NVIDIA GPU.
    pub fn open_default(worker_args: &[&str]) -> Self {
        let opened = Api::open_default().and_then(|api| Ok(api.with_workers(Workers::beside_current_exe(worker_args)?)));
        match opened {
            Ok(api) => Backend::new(api),
            Err(e) => Backend::failed(&e),
        }
    }

    pub fn open_error(&self) -> Option<&ErrorBody> {
        self.0.as_ref().err()
    }
}

/// Runs one API command. Imports, downloads and evaluations can take minutes, so the call runs on
/// a blocking thread and the window stays responsive.
#[tauri::command]
pub async fn call(backend: State<'_, Backend>, command: String, args: Option<Value>) -> Result<Value, ErrorBody> {
    let api = backend.0.clone()?;
    tauri::async_runtime::spawn_blocking(move || api.dispatch_from(Caller::Window, &command, args.unwrap_or(Value::Null)).map_err(|e| e.body()))
        .await
        .map_err(|e| ErrorBody { code: "internal".into(), message: format!("the command stopped unexpectedly: {e}") })?
}

/// Pushes a run's events to the page as the worker logs them: each batch (and each change of the
/// run's state) goes down `on_events`; the call returns when the run has ended or a send fails
/// because the page has gone. The same updates `whet serve` sends as server-sent events.
#[tauri::command]
pub async fn follow_run(backend: State<'_, Backend>, id: i64, since: Option<u64>, on_events: Channel<RunEvents>) -> Result<(), ErrorBody> {
    let api = backend.0.clone()?;
    tauri::async_runtime::spawn_blocking(move || {
        let interval = whetstone_api::follow::FOLLOW_INTERVAL;
        api.follow_run(id, since.unwrap_or(0), interval, &|| true, &mut |batch| on_events.send(batch.clone()).is_ok()).map_err(|e| e.body())
    })
    .await
    .map_err(|e| ErrorBody { code: "internal".into(), message: format!("following the run stopped unexpectedly: {e}") })?
}

/// Downloads a hub model, pushing its progress and then the added model down `on_events`; the
/// download stops (keeping its partial file) when the page goes or `cancel_pull` is called.
#[tauri::command]
pub async fn pull_model_follow(
    backend: State<'_, Backend>,
    request: whetstone_api::models::PullRequest,
    on_events: Channel<whetstone_api::pulls::PullEvent>,
) -> Result<(), ErrorBody> {
    let api = backend.0.clone()?;
    tauri::async_runtime::spawn_blocking(move || {
        api.pull_follow(&request, &mut |event| on_events.send(event.clone()).is_ok()).map(|_| ()).map_err(|e| e.body())
    })
    .await
    .map_err(|e| ErrorBody { code: "internal".into(), message: format!("the download stopped unexpectedly: {e}") })?
}
