//! Whetstone's desktop shell. Every command is a one-line call into [`whetstone_api::Api`];
//! the window's UI reaches them through Tauri IPC, gated by the capability in tauri.conf.json.

mod commands;

pub use commands::Backend;

use tauri::{Builder, Context, Runtime};

/// Registers the backend and the commands on `builder` (a real or a mock one in tests).
pub fn setup<R: Runtime>(builder: Builder<R>, backend: Backend) -> Builder<R> {
    builder.manage(backend).invoke_handler(tauri::generate_handler![
        commands::hardware,
        commands::overview,
        commands::list_models,
        commands::catalog,
        commands::list_datasets,
        commands::list_runs,
        commands::default_model,
    ])
}

/// The app's configuration, capabilities and embedded UI, compiled in from tauri.conf.json.
pub fn context<R: Runtime>() -> Context<R> {
    tauri::generate_context!("../tauri.conf.json")
}
