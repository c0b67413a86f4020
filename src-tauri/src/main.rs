// No console window behind the app on Windows release builds.
#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

use anyhow::Context as _;
use whetstone_app::{context, setup, Backend};

fn main() -> anyhow::Result<()> {
    let backend = Backend::open_default();
    if let Some(e) = backend.open_error() {
        eprintln!("whetstone: {} ({}); the window will show this too", e.message, e.code);
    }
    setup(tauri::Builder::default(), backend)
        .run(context())
        .context("the Whetstone window could not start")
}
