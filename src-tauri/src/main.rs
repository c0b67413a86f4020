// No console window behind the app on Windows release builds.
#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

use anyhow::{bail, Context as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use whetstone_app::{context, setup, Backend, WORKER_ARG};

fn main() -> anyhow::Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == WORKER_ARG) {
        return worker(&args[2..]);
    }
    // Asked by an app that uses this program as its GPU worker (an app built with `cuda`).
    if args.get(1).is_some_and(|a| a == whetstone_api::backend::PROBE_ARG) {
        println!("{}", serde_json::to_string(&whetstone_api::backend::probe_this_program())?);
        return Ok(());
    }
    let backend = Backend::open_default(&[WORKER_ARG]);
    if let Some(e) = backend.open_error() {
        eprintln!("whetstone: {} ({}); the window will show this too", e.message, e.code);
    }
    setup(tauri::Builder::default(), backend)
        .setup(|app| Ok(whetstone_app::language::correct_window_language(app)?))
        .run(context())
        .context("the Whetstone window could not start")
}

/// `--training-worker --run-dir DIR`: trains the run in DIR in this process. Ctrl-C or SIGTERM
/// pauses it at the next step boundary, with a checkpoint.
fn worker(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let [flag, dir] = args else { bail!("usage: whetstone {WORKER_ARG} --run-dir DIR") };
    if flag != "--run-dir" {
        bail!("usage: whetstone {WORKER_ARG} --run-dir DIR");
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)).context("cannot install the signal handler")?;
    let run_dir = PathBuf::from(dir);
    match whetstone_api::worker::run_worker(&run_dir, interrupt)? {
        whetstone_api::RunStatus::Failed => bail!("training failed; see {}", run_dir.join(whetstone_api::jobs::EVENTS_FILE).display()),
        _ => Ok(()),
    }
}
