//! The window's IPC commands: `call(command, args)`, the same contract as the HTTP server's
//! `POST /api/<command>`, answered by [`Api::dispatch_from`] for the window (paths confined to the
//! home folder and the allowed folders) with `{code, message}` on failure; and the Channel twins of
//! the server's event streams: `follow_run` (`GET /api/events/run/{id}`), `pull_model_follow`
//! (`POST /api/events/pull`), `stream_playground` with `stop_playground`
//! (`POST /api/events/playground`), `eval_run_with_progress` (`POST /api/events/eval_run`) and
//! `follow_review` (`GET /api/events/review/{id}`), with `stop_following` for the page to leave a
//! review it follows.

use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tauri::ipc::Channel;
use tauri::State;
use whetstone_api::dispatch::Caller;
use whetstone_api::evaluation::{EvalProgress, Evaluation};
use whetstone_api::playground::{PlaygroundEvent, PlaygroundRequest, PlaygroundResult};
use whetstone_api::review::ReviewStatus;
use whetstone_api::{Api, Error, ErrorBody, RunEvents, Workers};

/// The API, or why it could not be opened. Keeping the failure lets the window start anyway
/// and show the reason in its error banner instead of the app vanishing. The second field counts
/// the playground's generations: one goes on only while it is the newest and nobody asked to stop.
pub struct Backend(Result<Arc<Api>, ErrorBody>, Arc<AtomicU64>);

impl Backend {
    pub fn new(api: Api) -> Self {
        Backend(Ok(Arc::new(api)), Arc::default())
    }

    /// `api` able to share review sessions from the window: "Share for review" starts the raters'
    /// server over the same home folder, with the raters' page from [`review_ui_dir`].
    pub fn sharing(api: Api) -> Api {
        let sharing = whetstone_server::ReviewSharing::new(api.home().to_path_buf(), review_ui_dir());
        api.with_review_sharing(Arc::new(sharing))
    }

    pub fn failed(error: &Error) -> Self {
        Backend(Err(error.body()), Arc::default())
    }

    /// Opens `$WHETSTONE_HOME` (or the platform data folder) like every other front end; training
    /// runs start this same program as their worker, with `worker_args`, or the GPU worker beside
    /// it (`whetstone-worker-cuda`) for runs on an NVIDIA GPU.
    pub fn open_default(worker_args: &[&str]) -> Self {
        let opened = Api::open_default().and_then(|api| Ok(Backend::sharing(api.with_workers(Workers::beside_current_exe(worker_args)?))));
        match opened {
            Ok(api) => Backend::new(api),
            Err(e) => Backend::failed(&e),
        }
    }

    pub fn open_error(&self) -> Option<&ErrorBody> {
        self.0.as_ref().err()
    }

    /// The API, when it could be opened.
    pub fn api(&self) -> Option<Arc<Api>> {
        self.0.as_ref().ok().cloned()
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

/// Answers one prompt with a run's base model and its tuned one, pushing each piece of either answer
/// down `on_event` as it is written (the events of `POST /api/events/playground`); returns both whole
/// answers. A newer generation, or `stop_playground`, stops this one at its next token: a page cannot
/// close a Channel, so Stop is a command of its own.
#[tauri::command]
pub async fn stream_playground(
    backend: State<'_, Backend>,
    request: PlaygroundRequest,
    on_event: Channel<PlaygroundEvent>,
) -> Result<PlaygroundResult, ErrorBody> {
    let api = backend.0.clone()?;
    let generations = backend.1.clone();
    let mine = generations.fetch_add(1, Ordering::SeqCst) + 1;
    tauri::async_runtime::spawn_blocking(move || {
        api.playground(&request, &mut |event| generations.load(Ordering::SeqCst) == mine && on_event.send(event.clone()).is_ok())
            .map_err(|e| e.body())
    })
    .await
    .map_err(|e| ErrorBody { code: "internal".into(), message: format!("the playground stopped unexpectedly: {e}") })?
}

/// Stops the playground's generation under way, if any.
#[tauri::command]
pub fn stop_playground(backend: State<'_, Backend>) {
    backend.1.fetch_add(1, Ordering::SeqCst);
}

/// Runs an evaluation (`eval_run`'s arguments) and sends each stage down `on_progress` as it goes;
/// returns the stored evaluation. The same as the server's `POST /api/events/eval_run` stream.
#[tauri::command]
pub async fn eval_run_with_progress(backend: State<'_, Backend>, args: Option<Value>, on_progress: Channel<EvalProgress>) -> Result<Evaluation, ErrorBody> {
    let api = backend.0.clone()?;
    tauri::async_runtime::spawn_blocking(move || {
        // A page that went away does not stop the evaluation: it is stored and listed either way.
        api.eval_run_from(Caller::Window, args.unwrap_or(Value::Null), &mut |p| {
            let _ = on_progress.send(p.clone());
        })
        .map_err(|e| e.body())
    })
    .await
    .map_err(|e| ErrorBody { code: "internal".into(), message: format!("the evaluation stopped unexpectedly: {e}") })?
}

/// The channels whose page asked to stop following. A Channel cannot tell that its page has moved on
/// (sending to it still succeeds), and a review may stay open for days, so the page says so itself.
#[derive(Default)]
pub struct Stopped(Mutex<HashSet<u32>>);

impl Stopped {
    fn has(&self, channel: u32) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(&channel)
    }

    fn forget(&self, channel: u32) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&channel);
    }
}

/// Pushes a review session's status to the page at once and whenever it changes (a rating, an
/// invitation, a revocation), until the session is closed or the page calls `stop_following` with
/// this channel's id. The same updates `whet serve` sends on `GET /api/events/review/{id}`.
#[tauri::command]
pub async fn follow_review(
    backend: State<'_, Backend>,
    stopped: State<'_, Arc<Stopped>>,
    id: i64,
    on_status: Channel<ReviewStatus>,
) -> Result<(), ErrorBody> {
    let api = backend.0.clone()?;
    let stopped = stopped.inner().clone();
    tauri::async_runtime::spawn_blocking(move || {
        let channel = on_status.id();
        let interval = whetstone_api::follow::REVIEW_FOLLOW_INTERVAL;
        let result = api
            .follow_review(id, interval, &|| !stopped.has(channel), &mut |status| on_status.send(status.clone()).is_ok())
            .map_err(|e| e.body());
        stopped.forget(channel);
        result
    })
    .await
    .map_err(|e| ErrorBody { code: "internal".into(), message: format!("following the review stopped unexpectedly: {e}") })?
}

/// Asks the `follow_review` that sends to `channel` to end at its next look.
#[tauri::command]
pub fn stop_following(stopped: State<'_, Arc<Stopped>>, channel: u32) {
    stopped.0.lock().unwrap_or_else(|p| p.into_inner()).insert(channel);
}

/// Where the raters' page is read from when the window shares a review: a `ui` folder beside the
/// program (where an installed app keeps the built pages), else `WHETSTONE_UI_DIR`, else `ui/dist` of
/// the checkout it was built from. The window's own pages are compiled into the program; the review
/// server hands files to other computers' browsers, so it serves them from a folder.
pub fn review_ui_dir() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("ui")))
        .filter(|dir| dir.join("review.html").is_file())
        .unwrap_or_else(whetstone_server::default_ui_dir)
}
