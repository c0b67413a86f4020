//! Followed downloads: progress pushed while a model downloads, cancel from another call, a second
//! pull of the same repo refused, and the next pull resuming what the cancelled one left.
//! One test: the hub address is process-wide (HF_ENDPOINT).

use std::sync::Arc;
use std::time::{Duration, Instant};
use whetstone_api::models::PullRequest;
use whetstone_api::pulls::PullEvent;
use whetstone_api::testing::write_tiny_model;
use whetstone_api::Api;
use whetstone_hub::testing::{TestHub, TestRepo};

const REPO: &str = "whetstone-tests/tiny-llama";
const OTHER: &str = "whetstone-tests/tiny-llama-again";

#[test]
fn a_followed_pull_reports_progress_cancels_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(Api::open(&dir.path().join("home")).unwrap().with_default_model_path(None));
    let folder = dir.path().join("tiny");
    write_tiny_model(&folder).unwrap();
    let weights = std::fs::metadata(folder.join("model.safetensors")).unwrap().len();
    let hub = TestHub::start(None);
    hub.add(TestRepo::from_dir(REPO, &folder).unwrap());
    hub.add(TestRepo::from_dir(OTHER, &folder).unwrap());
    // About two seconds for the weights: long enough to see progress and to cancel half-way.
    let rate = weights / 2;
    hub.throttle(rate);
    std::env::set_var("HF_ENDPOINT", &hub.url);
    std::env::set_var("HF_HUB_CACHE", dir.path().join("hf-cache"));
    std::env::set_var("HF_HOME", dir.path().join("hf-home"));
    std::env::remove_var("HF_TOKEN");
    std::env::remove_var("HF_HUB_OFFLINE");
    let req = PullRequest { repo: REPO.into(), ..Default::default() };

    // Cancelled from another call once some of the weights have arrived.
    let puller = {
        let api = api.clone();
        let req = req.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let result = api.pull_follow(&req, &mut |e| {
                seen.push(e.clone());
                true
            });
            (result, seen)
        })
    };
    let started = Instant::now();
    while hub.log().iter().all(|l| !l.target.ends_with("model.safetensors") || l.status >= 300) {
        assert!(started.elapsed() < Duration::from_secs(20), "the weights were never asked for: {:?}", hub.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(600));
    let busy = api.pull_follow(&req, &mut |_| true).unwrap_err();
    assert_eq!(busy.code(), "busy", "{busy}");
    assert!(busy.to_string().contains(REPO), "{busy}");
    assert!(api.cancel_pull(REPO).unwrap().cancelled);
    let (result, seen) = puller.join().unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code(), "cancelled", "{err}");
    let progress: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            PullEvent::Progress(p) => Some(p.clone()),
            PullEvent::Done { .. } => None,
        })
        .collect();
    assert!(seen.iter().all(|e| matches!(e, PullEvent::Progress(_))), "a cancelled pull adds no model");
    let partial = progress.iter().filter(|p| p.file == "model.safetensors" && p.phase == "download").map(|p| p.file_bytes).max().unwrap();
    assert!(partial > 0 && partial < weights, "cancelled half-way: {partial} of {weights}");
    assert!(progress.windows(2).all(|w| w[0].bytes <= w[1].bytes), "progress only grows");
    assert!(progress.iter().all(|p| p.total_bytes >= weights));
    assert!(api.list_models().unwrap().is_empty());
    assert!(!api.cancel_pull(REPO).unwrap().cancelled, "nothing left to cancel");

    // The next pull resumes: it asks for the rest of the weights only, and adds the model.
    hub.clear_log();
    let mut events = Vec::new();
    let model = api
        .pull_follow(&req, &mut |e| {
            events.push(e.clone());
            true
        })
        .unwrap();
    match events.first() {
        Some(PullEvent::Progress(p)) => assert!(p.bytes >= partial, "the first report counts what is already here: {p:?}"),
        other => panic!("progress comes first, got {other:?}"),
    }
    let ranged = hub.log().into_iter().find(|l| l.target.ends_with("model.safetensors") && l.status == 206).expect("a ranged request");
    assert!(ranged.range.as_deref().is_some_and(|r| r.starts_with("bytes=")), "{ranged:?}");
    assert!(ranged.bytes < weights, "only the rest was sent: {} of {weights}", ranged.bytes);
    match events.last() {
        Some(PullEvent::Done { model: done }) => assert_eq!(done.id, model.id),
        other => panic!("the last event is the added model, got {other:?}"),
    }
    assert_eq!(api.list_models().unwrap().len(), 1);
    assert_eq!(model.origin.repo_id.as_deref(), Some(REPO));

    // A listener that goes away cancels the pull too.
    let other = PullRequest { repo: OTHER.into(), ..Default::default() };
    let mut told = 0;
    let err = api
        .pull_follow(&other, &mut |e| {
            told += 1;
            !matches!(e, PullEvent::Progress(p) if p.file == "model.safetensors" && p.file_bytes > 0)
        })
        .unwrap_err();
    assert_eq!(err.code(), "cancelled", "{err}");
    assert!(told > 0);
    assert_eq!(api.list_models().unwrap().len(), 1);

    // An empty name is refused plainly.
    let err = api.pull_follow(&PullRequest { repo: "  ".into(), ..Default::default() }, &mut |_| true).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    for var in ["HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME"] {
        std::env::remove_var(var);
    }
}
