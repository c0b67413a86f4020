//! Models: import, pull from a loopback hub, lookup by name, and memory plans.

use serde_json::json;
use std::path::Path;
use whetstone_api::models::PullRequest;
use whetstone_api::plan::{Fit, PlanRequest};
use whetstone_api::testing::{tiny_config, write_tiny_model};
use whetstone_api::{Api, ModelSource};
use whetstone_engine::run::TrainSettings;
use whetstone_hub::testing::{TestHub, TestRepo};

fn temp_api() -> (tempfile::TempDir, Api) {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::open(&dir.path().join("home")).unwrap().with_default_model_path(None);
    (dir, api)
}

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples/instructions.jsonl")
}

#[test]
fn import_checks_a_model_folder_and_records_where_it_is() {
    let (dir, api) = temp_api();
    let folder = dir.path().join("tiny");
    write_tiny_model(&folder).unwrap();
    let m = api.import_model(&folder).unwrap();
    assert_eq!(m.source, ModelSource::Local);
    assert_eq!(m.architecture.as_deref(), Some("llama"));
    assert_eq!(m.parameters, Some(tiny_config().num_parameters() as u64));
    let path = std::fs::canonicalize(&folder).unwrap();
    assert_eq!(m.origin.path.as_deref(), Some(path.to_str().unwrap()));
    assert_eq!(m.origin.context_length, Some(1024));
    assert_eq!(m.origin.files.as_ref().unwrap()[0]["name"], "model.safetensors");
    // Importing again refreshes the same row.
    assert_eq!(api.import_model(&folder).unwrap().id, m.id);
    assert_eq!(api.list_models().unwrap().len(), 1);
    assert_eq!(api.resolve_model_path("tiny").unwrap(), path);
    assert_eq!(api.resolve_model_path(&m.id.to_string()).unwrap(), path);
    let err = api.resolve_model_path("nothing-like-it").unwrap_err();
    assert!(err.to_string().contains("nothing-like-it"), "{err}");

    // A cut-short weights file and a missing tokenizer are named.
    let st = folder.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let err = api.import_model(&folder).unwrap_err();
    assert!(err.to_string().contains("model.safetensors") && err.to_string().contains("cut short"), "{err}");
    std::fs::write(&st, &bytes).unwrap();
    std::fs::remove_file(folder.join("tokenizer.json")).unwrap();
    let err = api.import_model(&folder).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn import_reads_a_gguf_file_with_its_tokenizer_and_license() {
    let gguf = whetstone_api::default_model_path().expect("HOME or XDG_CACHE_HOME is set");
    assert!(gguf.is_file(), "the bundled model {} is missing; scripts/setup.sh installs it", gguf.display());
    let (_dir, api) = temp_api();
    let m = api.import_model(&gguf).unwrap();
    assert_eq!(m.name, "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(m.architecture.as_deref(), Some("llama"));
    assert!(m.parameters.unwrap() > 130_000_000);
    assert_eq!(m.origin.sha256.as_ref().map(|s| s.len()), Some(64));
}

/// One test, because the hub's address comes from process-wide environment variables.
#[test]
fn pull_from_the_hub_then_find_plan_and_list_it() {
    let (dir, api) = temp_api();
    let folder = dir.path().join("tiny");
    write_tiny_model(&folder).unwrap();
    let hub = TestHub::start(Some("tok"));
    hub.add(TestRepo::from_dir("HuggingFaceTB/SmolLM2-135M-Instruct", &folder).unwrap());
    let mut gated = TestRepo::from_dir("meta-llama/Llama-3.2-1B-Instruct", &folder).unwrap().gated();
    gated.license = Some("llama3.2".into());
    hub.add(gated);
    std::env::set_var("HF_ENDPOINT", &hub.url);
    std::env::set_var("HF_HUB_CACHE", dir.path().join("hf-cache"));
    std::env::remove_var("HF_TOKEN");
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::set_var("HF_HOME", dir.path().join("hf-home"));

    let found = api.search_models("smollm2", 5).unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].in_catalog);

    let req = PullRequest { repo: "HuggingFaceTB/SmolLM2-135M-Instruct".into(), ..Default::default() };
    let m = api.pull_model(&req, None, None).unwrap();
    assert_eq!(m.source, ModelSource::Hub);
    assert_eq!(m.name, "SmolLM2 135M Instruct", "catalog models keep their catalog name");
    assert_eq!((m.license.as_deref(), m.commercial_use), (Some("apache-2.0"), Some(true)));
    assert_eq!(m.origin.repo_id.as_deref(), Some("HuggingFaceTB/SmolLM2-135M-Instruct"));
    let sha = hub.repo("HuggingFaceTB/SmolLM2-135M-Instruct").sha;
    assert_eq!(m.origin.revision.as_deref(), Some(sha.as_str()));
    let path = m.origin.path.clone().unwrap();
    assert!(path.ends_with(&format!("models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/{sha}")), "{path}");
    assert_eq!(api.resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct").unwrap(), Path::new(&path));
    let again = api.pull_model(&req, None, None).unwrap();
    assert_eq!(again.id, m.id);
    let catalog = api.catalog().unwrap();
    let entry = catalog.iter().find(|c| c.entry.repo == "HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
    assert_eq!(entry.installed_model_id, Some(m.id));

    // Gated: the error says where to accept the license; the token argument is the setting.
    let mut req = PullRequest { repo: "meta-llama/Llama-3.2-1B-Instruct".into(), ..Default::default() };
    let err = api.pull_model(&req, None, None).unwrap_err();
    assert_eq!(err.code(), "hub_gated");
    assert!(err.to_string().contains(&format!("{}/meta-llama/Llama-3.2-1B-Instruct", hub.url)), "{err}");
    req.token = Some("tok".into());
    let llama = api.pull_model(&req, None, None).unwrap();
    assert_eq!((llama.license.as_deref(), llama.commercial_use), (Some("llama3.2"), Some(true)));

    // Offline: the cache answers, the hub is not asked.
    hub.clear_log();
    let offline = PullRequest { repo: "HuggingFaceTB/SmolLM2-135M-Instruct".into(), offline: true, ..Default::default() };
    assert_eq!(api.pull_model(&offline, None, None).unwrap().id, m.id);
    assert!(hub.log().is_empty());

    // Through dispatch, as the app and the HTTP server call it.
    let v = api.dispatch("search_models", json!({"query": "llama"})).unwrap();
    assert_eq!(v[0]["id"], "meta-llama/Llama-3.2-1B-Instruct");
    let v = api.dispatch("pull_model", json!({"repo": "HuggingFaceTB/SmolLM2-135M-Instruct"})).unwrap();
    assert_eq!(v["id"], m.id);
    let v = api.dispatch("plan", json!({"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "data": samples(), "settings": {"batch": 2, "max-len": 128}})).unwrap();
    assert_eq!(v["dataset"]["examples"], 400);
    assert!(v["seq_len"].as_u64().unwrap() <= 128);
    for var in ["HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME"] {
        std::env::remove_var(var);
    }
}

#[test]
fn plan_measures_the_dataset_and_recommends_when_a_job_does_not_fit() {
    let (dir, api) = temp_api();
    let folder = dir.path().join("tiny");
    write_tiny_model(&folder).unwrap();
    let settings = TrainSettings { batch: 2, max_len: 256, ..TrainSettings::default() };
    let req = PlanRequest { model: folder.display().to_string(), data: Some(samples()), settings, device: Some("cpu".into()), base: None };
    let plan = api.plan(&req).unwrap();
    assert_eq!(plan.fit, Fit::Fits);
    let d = plan.dataset.as_ref().unwrap();
    assert_eq!(d.examples, 400);
    assert!(d.max_tokens >= d.p95_tokens && d.p95_tokens as f64 >= d.mean_tokens);
    assert_eq!(plan.seq_len, d.max_tokens.min(256) as u64, "the longest example sets the length");
    let m = &plan.memory;
    assert_eq!(m.peak, m.total.max(m.load_peak));
    assert!(plan.recommendations.is_empty());
    // One pass over 400 examples, 2 per step: 200 steps of their mean length; never trained here before.
    let t = plan.time.as_ref().expect("the data is given, so the steps are known");
    assert_eq!(t.steps, 200);
    assert_eq!(t.tokens_per_step, (2.0 * d.mean_tokens.min(256.0)).ceil() as u64);
    assert!(t.measured_flops > 0.0 && t.at_least_s > 0.0 && t.at_least_s.is_finite(), "{t:?}");
    assert!(t.from_earlier_run.is_none());
    // Without data the steps of an epoch are unknown, and so is the time.
    let plain = api.plan(&PlanRequest { data: None, ..req.clone() }).unwrap();
    assert!(plain.time.is_none());

    // The largest catalog model at a long length cannot fit this machine's RAM as asked.
    let settings = TrainSettings { batch: 64, max_len: 8192, ..TrainSettings::default() };
    let req = PlanRequest { model: "meta-llama/Llama-3.1-8B-Instruct".into(), data: None, settings, device: Some("cpu".into()), base: None };
    let plan = api.plan(&req).unwrap();
    assert_eq!(plan.fit, Fit::DoesNotFit, "{plan:?}");
    assert_eq!(plan.parameters, 8_030_261_248);
    let first = &plan.recommendations[0];
    assert!(first.settings.grad_checkpoint && first.peak_bytes < plan.memory.peak);
    let halved = plan.recommendations.iter().find(|r| r.settings.batch == 32).unwrap();
    assert_eq!(halved.settings.grad_accum, 2, "accumulation keeps the examples per step");
    let nf4 = plan.recommendations.last().unwrap();
    assert!(nf4.engine_supported && nf4.peak_bytes < halved.peak_bytes);

    let err = api.plan(&PlanRequest { model: "nobody/nothing".into(), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("nobody/nothing"), "{err}");
}

#[test]
fn llama_2_70b_fits_only_as_qlora_on_an_80_gb_gpu_and_not_at_all_on_24_gb() {
    use whetstone_api::plan::catalog_method_fits_on_gpu;
    let entry = whetstone_hub::catalog::find("meta-llama/Llama-2-70b-hf").unwrap();
    let settings = TrainSettings::default();
    let fit_of = |free: u64| -> Vec<(String, Fit)> {
        catalog_method_fits_on_gpu(entry, &settings, free).unwrap().into_iter().map(|m| (m.method, m.fit)).collect()
    };
    let on_80 = catalog_method_fits_on_gpu(entry, &settings, 80_000_000_000).unwrap();
    eprintln!("{:#?}", on_80.iter().map(|m| &m.summary).collect::<Vec<_>>());
    assert_eq!(fit_of(80_000_000_000), vec![("lora".into(), Fit::DoesNotFit), ("qlora".into(), Fit::Fits)]);
    assert!(on_80[1].summary.starts_with("QLoRA fits"), "{}", on_80[1].summary);
    assert!(on_80[0].summary.starts_with("LoRA does not fit"), "{}", on_80[0].summary);
    assert_eq!(fit_of(24_000_000_000), vec![("lora".into(), Fit::DoesNotFit), ("qlora".into(), Fit::DoesNotFit)]);
}

#[test]
fn every_new_catalog_model_has_a_plan_for_lora_and_qlora() {
    let (_dir, api) = temp_api();
    for repo in [
        "google/gemma-2b",
        "google/gemma-2-2b",
        "google/gemma-2-9b",
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-13b-hf",
        "meta-llama/Llama-2-70b-hf",
        "mistralai/Mistral-7B-v0.1",
    ] {
        let req = PlanRequest { model: repo.into(), device: Some("cpu".into()), ..Default::default() };
        let plan = api.plan(&req).unwrap();
        let entry = whetstone_hub::catalog::find(repo).unwrap();
        assert_eq!(plan.parameters, entry.parameters, "{repo}: the planner's shape gives the published count");
        assert_eq!(plan.architecture, entry.architecture, "{repo}");
        let methods: Vec<&str> = plan.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(methods, ["lora", "qlora"], "{repo}");
        // QLoRA's 4-bit base takes less memory than LoRA's dense one: where LoRA fits, so does QLoRA.
        if plan.methods[0].fit != Fit::DoesNotFit {
            assert_ne!(plan.methods[1].fit, Fit::DoesNotFit, "{repo}: {:?}", plan.methods);
        }
        assert!(plan.methods.iter().all(|m| m.summary.contains("LoRA")), "{repo}");
    }
    // Gemma's 256-wide heads are not hidden/heads: the plan counts them.
    let g = api.plan(&PlanRequest { model: "google/gemma-2-9b".into(), device: Some("cpu".into()), ..Default::default() }).unwrap();
    assert_eq!(g.parameters, 9_241_705_984);
}
