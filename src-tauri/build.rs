use std::path::Path;
use std::process::Command;

/// The commands the window may call; each gets `allow-<name>` in the capability of tauri.conf.json.
/// `call` forwards to the API's dispatch, the same contract as `whet serve`'s HTTP routes;
/// `follow_run` and `pull_model_follow` push a run's events and a download's progress over a
/// Channel, as the server's event streams do; `stream_playground` pushes the playground's answers the
/// same way, and `stop_playground` stops them; `eval_run_with_progress` and `follow_review` push an
/// evaluation's stages and a review's status, and `stop_following` ends a `follow_review` whose page
/// has moved on; `watch_close` and `confirm_close` let the page ask before the window closes on a
/// training run.
const COMMANDS: &[&str] = &[
    "call",
    "follow_run",
    "pull_model_follow",
    "stream_playground",
    "stop_playground",
    "eval_run_with_progress",
    "follow_review",
    "stop_following",
    "watch_close",
    "confirm_close",
];

fn main() {
    build_ui();
    // The app config lives at the repository root next to `ui/` and `icons/`; its
    // capabilities are inlined there too, so tauri.conf.json is the one source of truth.
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    tauri_build::try_build(attributes).expect("tauri-build failed");
}

/// Builds ui/dist, which `generate_context!` embeds into the binary. This is the step the
/// Tauri CLI would run as `beforeBuildCommand`; doing it here keeps a plain `cargo build`
/// (and `cargo test --workspace`) self-sufficient and the embedded UI never stale.
fn build_ui() {
    let ui = Path::new("../ui");
    for watched in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "tsconfig.json",
        "vite.config.ts",
        "svelte.config.js",
        "copy-static.mjs",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    // copied into ui/dist as the page icon
    println!("cargo:rerun-if-changed=../icons/32x32.png");
    // Vite is the build step itself; without it the dependencies have not been installed yet.
    if !ui.join("node_modules/.bin/vite").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(ui), "npm ci");
    }
    run(Command::new("npm").args(["run", "build"]).current_dir(ui), "npm run build");
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`{what}` in ui/ failed with {status}; the app embeds ui/dist and cannot be built without it"),
        Err(e) => panic!("could not start `{what}` in ui/ ({e}); install Node.js and npm (scripts/setup.sh does)"),
    }
}
