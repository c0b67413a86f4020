//! Downloads against the loopback hub of `whetstone_hub::testing`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use whetstone_hub::testing::{TestHub, TestRepo};
use whetstone_hub::{catalog, DownloadOptions, Error, FileProgress, HfCache, HubClient};

const REPO: &str = "test-org/tiny-model";
const WEIGHTS: &str = "model.safetensors";
const SIZE: usize = 1 << 20;

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn tiny_repo(id: &str) -> TestRepo {
    TestRepo::new(id)
        .file("config.json", br#"{"model_type":"llama"}"#.to_vec())
        .file("tokenizer.json", b"{}".to_vec())
        .file(WEIGHTS, bytes(SIZE, 7))
        .file("other.gguf", b"GGUF".to_vec())
}

fn hub() -> TestHub {
    let hub = TestHub::start(Some("secret-token"));
    hub.add(tiny_repo(REPO));
    hub
}

fn client(hub: &TestHub, cache: &std::path::Path, token: Option<&str>) -> HubClient {
    HubClient::new(&hub.url, token.map(str::to_string), HfCache::new(cache)).unwrap().retries(3, Duration::from_millis(10))
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn catalog_has_the_families_the_engine_trains_with_their_terms() {
    let c = catalog();
    assert!(c.len() >= 15, "{} entries", c.len());
    let mut repos: Vec<_> = c.iter().map(|e| e.repo.to_lowercase()).collect();
    repos.sort();
    repos.dedup();
    assert_eq!(repos.len(), c.len(), "repeated repo ids");
    for e in c {
        assert!(["llama", "mistral", "qwen2", "gemma", "gemma2"].contains(&e.architecture.as_str()), "{}", e.repo);
        let s = e.shape;
        let d = s.head_dim.unwrap_or(s.hidden / s.heads);
        let (h, i, l, q) = (s.hidden, s.intermediate, s.layers, s.heads * d);
        let kv = s.kv_heads * d;
        let bias = if e.architecture == "qwen2" { q + 2 * kv } else { 0 };
        // Gemma 2 normalizes each block's attention and MLP outputs too: four norms a layer.
        let norms = if e.architecture == "gemma2" { 4 } else { 2 };
        let layer = 2 * h * q + 2 * h * kv + bias + 3 * h * i + norms * h;
        let embed = s.vocab * h * if s.tied_embeddings { 1 } else { 2 };
        assert_eq!(embed + l * layer + h, e.parameters, "{}: parameters do not match the shape", e.repo);
    }
    let find = |r: &str| whetstone_hub::catalog::find(r).unwrap_or_else(|| panic!("{r} missing"));
    for r in ["HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct",
        "mistralai/Mistral-7B-Instruct-v0.3"] {
        assert!(find(r).commercial_use, "{r}");
    }
    assert!(!find("Qwen/Qwen2.5-3B-Instruct").commercial_use);
    assert_eq!(find("Qwen/Qwen2.5-3B-Instruct").license, "qwen-research");
    let llama = find("meta-llama/Llama-3.2-1B-Instruct");
    assert!(llama.gated && llama.commercial_use && llama.license_note.as_deref().unwrap().contains("700 million"));
    // The models named beside Gemma: Llama 2 under its community license, gated; Mistral v0.1 beside v0.3.
    for r in ["meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf"] {
        let e = find(r);
        assert_eq!(e.license, "llama2", "{r}");
        assert!(e.gated && e.commercial_use, "{r}");
        assert!(e.license_note.as_deref().unwrap().contains("Llama 2 Community License"), "{r}");
    }
    assert_eq!(find("meta-llama/Llama-2-70b-hf").parameters, 68_976_648_192);
    assert_eq!(find("mistralai/Mistral-7B-v0.1").architecture, "mistral");
    // Gemma's terms are their own, not Apache 2.0, and the note says so.
    for r in ["google/gemma-2b", "google/gemma-2-2b", "google/gemma-2-9b"] {
        let e = find(r);
        assert_eq!(e.license, "gemma", "{r}");
        assert!(e.gated, "{r}");
        assert_eq!(e.shape.head_dim, Some(256), "{r}");
        let note = e.license_note.as_deref().unwrap();
        assert!(note.contains("not Apache 2.0") && note.contains("Prohibited Use Policy"), "{r}: {note}");
    }
    assert_eq!(find("google/gemma-2b").architecture, "gemma");
    assert_eq!(find("google/gemma-2b").shape.kv_heads, 1, "Gemma 2B is multi-query");
    assert_eq!(find("google/gemma-2-9b").architecture, "gemma2");
}

#[tokio::test]
async fn search_shows_license_downloads_and_size() {
    let hub = hub();
    let mut other = TestRepo::new("someone/tiny-model-nc").file("config.json", b"{}".to_vec());
    other.license = Some("cc-by-nc-4.0".into());
    other.downloads = 5;
    hub.add(other);
    let dir = tempfile::tempdir().unwrap();
    let found = client(&hub, dir.path(), None).search("TINY-model", 10).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].id, "someone/tiny-model-nc");
    assert_eq!(found[0].license.as_deref(), Some("cc-by-nc-4.0"));
    assert_eq!(found[0].commercial_use, Some(false));
    assert_eq!(found[0].downloads, Some(5));
    assert_eq!(found[1].commercial_use, Some(true));
    let total: usize = hub.repo(REPO).files.iter().map(|f| f.bytes.len()).sum();
    assert_eq!(found[1].size_bytes, Some(total as u64));
}

#[tokio::test]
async fn pull_fills_the_hf_cache_layout_and_reports_progress() {
    let hub = hub();
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<Mutex<Vec<FileProgress>>> = Arc::default();
    let sink = events.clone();
    let opts = DownloadOptions { progress: Some(Arc::new(move |p: &FileProgress| sink.lock().unwrap().push(p.clone()))), ..Default::default() };
    let snap = client(&hub, dir.path(), None).download(REPO, "main", None, &opts).await.unwrap();
    let repo = hub.repo(REPO);
    assert_eq!(snap.commit, repo.sha);
    let names: Vec<_> = snap.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["config.json", "model.safetensors", "tokenizer.json"], "GGUF files are not weights the pull needs");
    let repo_dir = dir.path().join("models--test-org--tiny-model");
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), repo.sha);
    let weights = snap.path.join(WEIGHTS);
    assert_eq!(snap.path, repo_dir.join("snapshots").join(&repo.sha));
    let target = std::fs::read_link(&weights).unwrap();
    let sha = sha256(&repo.files[2].bytes);
    assert_eq!(target, std::path::Path::new("../../blobs").join(&sha));
    assert_eq!(std::fs::read(&weights).unwrap(), repo.files[2].bytes);
    let pulled = snap.files.iter().find(|f| f.name == WEIGHTS).unwrap();
    assert_eq!(pulled.sha256.as_deref(), Some(sha.as_str()));
    {
        let events = events.lock().unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.phase, "done");
        assert_eq!(last.bytes, last.total_bytes);
        assert!(last.total_bytes >= SIZE as u64);
        assert!(events.iter().any(|e| e.phase == "download" && e.rate > 0.0 && e.eta_s.is_some()), "no rate or ETA reported");
    }

    // A second pull finds every blob in the cache and downloads nothing.
    hub.clear_log();
    client(&hub, dir.path(), None).download(REPO, "main", None, &DownloadOptions::default()).await.unwrap();
    assert_eq!(hub.bytes_served(WEIGHTS), 0);
}

#[tokio::test]
async fn interrupted_download_resumes_from_where_it_stopped() {
    let hub = hub();
    let dir = tempfile::tempdir().unwrap();
    let half = (SIZE / 2) as u64;
    hub.drop_after(WEIGHTS, half);
    let files = vec![WEIGHTS.to_string()];
    client(&hub, dir.path(), None).download(REPO, "main", Some(&files), &DownloadOptions::default()).await.unwrap();
    let gets: Vec<_> = hub.log().into_iter().filter(|l| l.method == "GET" && l.target.ends_with(WEIGHTS)).collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[0].bytes, half);
    assert_eq!(gets[1].range.as_deref(), Some(format!("bytes={half}-").as_str()));
    assert_eq!(hub.bytes_served(WEIGHTS), SIZE as u64, "the first half was fetched again");

    // Across runs too: a pull that gives up leaves the partial file, and the next one continues it.
    let dir = tempfile::tempdir().unwrap();
    hub.clear_log();
    hub.drop_after(WEIGHTS, half);
    let no_retry = client(&hub, dir.path(), None).retries(0, Duration::ZERO);
    let err = no_retry.download(REPO, "main", Some(&files), &DownloadOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "hub_unreachable", "{err}");
    let sha = sha256(&hub.repo(REPO).files[2].bytes);
    let part = HfCache::new(dir.path()).incomplete_path(REPO, &sha);
    assert_eq!(std::fs::metadata(&part).unwrap().len(), half);
    let snap = client(&hub, dir.path(), None).download(REPO, "main", Some(&files), &DownloadOptions::default()).await.unwrap();
    assert_eq!(hub.bytes_served(WEIGHTS), SIZE as u64);
    assert!(!part.exists());
    assert_eq!(std::fs::read(snap.path.join(WEIGHTS)).unwrap(), hub.repo(REPO).files[2].bytes);
}

#[tokio::test]
async fn corrupted_blob_is_detected_and_fetched_again() {
    let hub = hub();
    let dir = tempfile::tempdir().unwrap();
    hub.corrupt_once(WEIGHTS);
    let files = vec![WEIGHTS.to_string()];
    let snap = client(&hub, dir.path(), None).download(REPO, "main", Some(&files), &DownloadOptions::default()).await.unwrap();
    assert_eq!(hub.bytes_served(WEIGHTS), 2 * SIZE as u64, "the corrupted copy was not fetched again");
    assert_eq!(std::fs::read(snap.path.join(WEIGHTS)).unwrap(), hub.repo(REPO).files[2].bytes);

    // Corrupted every time: a clear error and no blob left claiming to be good.
    let dir = tempfile::tempdir().unwrap();
    hub.corrupt_once(WEIGHTS);
    let c = client(&hub, dir.path(), None);
    let sink_hub = Arc::new(hub);
    let h2 = sink_hub.clone();
    let opts = DownloadOptions {
        progress: Some(Arc::new(move |p: &FileProgress| {
            if p.phase == "verify" {
                h2.corrupt_once(WEIGHTS);
            }
        })),
        ..Default::default()
    };
    let err = c.download(REPO, "main", Some(&files), &opts).await.unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    assert!(err.to_string().contains(WEIGHTS), "{err}");
    let sha = sha256(&sink_hub.repo(REPO).files[2].bytes);
    assert!(!HfCache::new(dir.path()).blob_path(REPO, &sha).exists());
}

#[tokio::test]
async fn gated_repo_needs_a_token_and_says_where_to_accept_the_license() {
    let hub = hub();
    hub.add(tiny_repo("meta-test/gated-model").gated());
    let dir = tempfile::tempdir().unwrap();
    let err = client(&hub, dir.path(), None).download("meta-test/gated-model", "main", None, &DownloadOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "hub_gated");
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}/meta-test/gated-model", hub.url)), "{msg}");
    assert!(msg.contains("HF_TOKEN"), "{msg}");
    let err = client(&hub, dir.path(), Some("wrong")).download("meta-test/gated-model", "main", None, &DownloadOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let snap = client(&hub, dir.path(), Some("secret-token")).download("meta-test/gated-model", "main", None, &DownloadOptions::default()).await.unwrap();
    assert!(snap.gated);
    assert!(snap.path.join(WEIGHTS).is_file());
}

#[tokio::test]
async fn missing_file_and_missing_repo_are_named() {
    let hub = hub();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&hub, dir.path(), None);
    let files = vec!["model-00002-of-00002.safetensors".to_string()];
    let err = c.download(REPO, "main", Some(&files), &DownloadOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "hub_file_not_found");
    assert!(err.to_string().contains("model-00002-of-00002.safetensors") && err.to_string().contains(REPO), "{err}");
    let err = c.download("nobody/nothing", "main", None, &DownloadOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "hub_repo_not_found");
    assert!(err.to_string().contains("nobody/nothing"), "{err}");
    let err = c.download(REPO, "v9", None, &DownloadOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("revision v9"), "{err}");

    // A file the listing does not show but the resolve endpoint is asked for directly.
    hub.add(TestRepo::new("test-org/unlisted"));
    let err = c.download("test-org/unlisted", "main", Some(&files), &DownloadOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "hub_file_not_found", "{err}");
}

#[tokio::test]
async fn offline_mode_uses_the_cache_only() {
    let hub = hub();
    let dir = tempfile::tempdir().unwrap();
    let err = client(&hub, dir.path(), None).offline(true).download(REPO, "main", None, &DownloadOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "hub_not_cached", "{err}");
    assert!(hub.log().is_empty(), "offline mode made requests: {:?}", hub.log());
    let online = client(&hub, dir.path(), None).download(REPO, "main", None, &DownloadOptions::default()).await.unwrap();
    hub.clear_log();
    let offline = client(&hub, dir.path(), None).offline(true).download(REPO, "main", None, &DownloadOptions::default()).await.unwrap();
    assert!(hub.log().is_empty(), "offline mode made requests: {:?}", hub.log());
    assert_eq!(offline.commit, online.commit);
    assert_eq!(offline.path, online.path);
    let names: Vec<_> = offline.files.iter().map(|f| f.name.clone()).collect();
    assert_eq!(names, ["config.json", "model.safetensors", "tokenizer.json"]);
    let err = client(&hub, dir.path(), None).offline(true).search("tiny", 5).await.unwrap_err();
    assert_eq!(err.code(), "hub_not_cached");
}

#[tokio::test]
async fn cancel_stops_the_download_and_keeps_the_part_for_later() {
    let hub = hub();
    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let opts = DownloadOptions {
        cancel: Some(cancel.clone()),
        progress: Some(Arc::new(move |p: &FileProgress| {
            if p.file == WEIGHTS && p.file_bytes > 0 {
                flag.store(true, Ordering::Relaxed);
            }
        })),
    };
    let files = vec![WEIGHTS.to_string()];
    let err = client(&hub, dir.path(), None).download(REPO, "main", Some(&files), &opts).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    let sha = sha256(&hub.repo(REPO).files[2].bytes);
    let cache = HfCache::new(dir.path());
    assert!(!cache.blob_path(REPO, &sha).exists());
    let have = std::fs::metadata(cache.incomplete_path(REPO, &sha)).unwrap().len();
    assert!(have > 0 && have < SIZE as u64, "{have}");
    hub.clear_log();
    client(&hub, dir.path(), None).download(REPO, "main", Some(&files), &DownloadOptions::default()).await.unwrap();
    let gets: Vec<_> = hub.log().into_iter().filter(|l| l.method == "GET" && l.target.ends_with(WEIGHTS)).collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].range.as_deref(), Some(format!("bytes={have}-").as_str()));
    assert!(cache.blob_path(REPO, &sha).exists());
}
