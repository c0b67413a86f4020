//! Closing the window while a run trains asks first. Runs train in worker processes of their own,
//! so quitting never stops one; but a user who closes the window may not know that, or may want the
//! computer back. The page registers a Channel with `watch_close`; a close request while a run is
//! active is held and sent down it, and the page answers with `confirm_close` (quit, the runs go on
//! or were paused by the page) or by doing nothing (the window stays). Without a page listening (it
//! failed to load), the window closes as asked: the runs go on either way.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tauri::ipc::Channel;
use tauri::{Manager, Runtime, State, Window, WindowEvent};
use whetstone_api::Run;

/// What the page is told when the user asks to close the window.
#[derive(Debug, Clone, Serialize)]
pub struct CloseRequest {
    /// The runs still training, which quitting leaves to train in the background.
    pub active: Vec<Run>,
}

#[derive(Default)]
pub struct CloseGuard {
    listener: Mutex<Option<Channel<CloseRequest>>>,
    /// The page said to close: the next request goes through.
    confirmed: AtomicBool,
}

/// What to do with a close request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Close,
    /// Hold the window and ask the page about these runs.
    Ask(Vec<i64>),
}

/// The rule: ask only when a run is training, the page can ask, and has not said yes already.
pub fn verdict(runs: &[Run], confirmed: bool, page_listens: bool) -> Verdict {
    let active: Vec<i64> = runs.iter().filter(|r| r.status.is_active()).map(|r| r.id).collect();
    if confirmed || !page_listens || active.is_empty() {
        Verdict::Close
    } else {
        Verdict::Ask(active)
    }
}

/// The window-event handler the app registers: holds a close request while a run trains.
pub fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else { return };
    let guard = window.state::<CloseGuard>();
    let backend = window.state::<crate::Backend>();
    // Reading the runs failing is no reason to keep someone from closing the window.
    let runs = backend.api().and_then(|a| a.list_runs().ok()).unwrap_or_default();
    let listener = guard.listener.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Verdict::Ask(ids) = verdict(&runs, guard.confirmed.load(Ordering::SeqCst), listener.is_some()) else { return };
    let active = runs.into_iter().filter(|r| ids.contains(&r.id)).collect();
    if listener.is_some_and(|l| l.send(CloseRequest { active }).is_ok()) {
        api.prevent_close();
    }
}

/// The page listens for close requests on `on_request` (the newest page's Channel replaces an
/// earlier one, after a reload).
#[tauri::command]
pub fn watch_close(guard: State<'_, CloseGuard>, on_request: Channel<CloseRequest>) {
    *guard.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(on_request);
}

/// The page's answer to a close request: close the window after all.
#[tauri::command]
pub fn confirm_close<R: Runtime>(window: Window<R>, guard: State<'_, CloseGuard>) -> Result<(), whetstone_api::ErrorBody> {
    guard.confirmed.store(true, Ordering::SeqCst);
    window.close().map_err(|e| whetstone_api::ErrorBody { code: "internal".into(), message: format!("the window could not close: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use whetstone_api::RunStatus;

    fn run(id: i64, status: RunStatus) -> Run {
        Run {
            id,
            model_id: 1,
            dataset_id: None,
            config: serde_json::json!({}),
            status,
            out_dir: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
            pid: None,
            step: 0,
            total_steps: None,
            last_loss: None,
            best_step: None,
            best_eval_loss: None,
            heartbeat_at: None,
            error: None,
        }
    }

    #[test]
    fn asks_about_the_active_runs_only() {
        let runs = [run(1, RunStatus::Completed), run(2, RunStatus::Running), run(3, RunStatus::Queued), run(4, RunStatus::Paused)];
        assert_eq!(verdict(&runs, false, true), Verdict::Ask(vec![2, 3]));
    }

    #[test]
    fn closes_without_asking_when_nothing_trains_when_confirmed_or_when_no_page_can_ask() {
        let idle = [run(1, RunStatus::Completed), run(2, RunStatus::Discarded)];
        assert_eq!(verdict(&idle, false, true), Verdict::Close);
        let busy = [run(1, RunStatus::Running)];
        assert_eq!(verdict(&busy, true, true), Verdict::Close, "the page said yes");
        assert_eq!(verdict(&busy, false, false), Verdict::Close, "no page to ask: the run goes on anyway");
        assert_eq!(verdict(&[], false, true), Verdict::Close);
    }
}
