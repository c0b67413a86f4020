//! Whetstone's desktop shell: the window's UI reaches [`whetstone_api::Api`] through one IPC
//! command, gated by the capability in tauri.conf.json. Training runs in worker processes that are
//! this same program started with [`WORKER_ARG`] (or, for runs on an NVIDIA GPU, the GPU worker
//! beside it: see `whetstone_api::backend`), so closing the window never stops a run.

pub mod close;
mod commands;
pub mod language;

pub use commands::Backend;

/// The hidden first argument that makes this program a training worker instead of a window.
pub const WORKER_ARG: &str = "--training-worker";

use tauri::{Builder, Context, Runtime};

/// Registers the backend and the commands on `builder` (a real or a mock one in tests).
pub fn setup<R: Runtime>(builder: Builder<R>, backend: Backend) -> Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .manage(backend)
        .manage(std::sync::Arc::new(commands::Stopped::default()))
        .manage(close::CloseGuard::default())
        .on_window_event(close::on_window_event)
        .invoke_handler(tauri::generate_handler![
            commands::call,
            commands::follow_run,
            commands::pull_model_follow,
            commands::stream_playground,
            commands::stop_playground,
            commands::eval_run_with_progress,
            commands::follow_review,
            commands::stop_following,
            close::watch_close,
            close::confirm_close
        ])
}

/// The app's configuration, capabilities and embedded UI, compiled in from tauri.conf.json.
pub fn context<R: Runtime>() -> Context<R> {
    tauri::generate_context!("../tauri.conf.json")
}
