//! Evaluation runs end to end: a real (tiny) training run on an imported, split dataset, then `eval_run`
//! on its held-out test split. The stored answers must be what the model and the run's adapter write for
//! those prompts, and the stored metrics what the eval crate and the loss path give for those answers.

mod common;

use common::trained;
use serde_json::{json, Value};
use whetstone_api::evaluation::{EvalProgress, EvalRequest};
use whetstone_api::training::{eval_loss, generate_chat, load_adapter, load_model};
use whetstone_data::Message;
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::quant::QuantMode;
use whetstone_eval::inputs::default_wordnet_dir;
use whetstone_eval::meteor::MeteorOptions;
use whetstone_eval::wordnet::WordNet;
use whetstone_eval::{score_with, ScoreOptions};

fn score_options() -> ScoreOptions {
    ScoreOptions {
        meteor: MeteorOptions { wordnet: default_wordnet_dir().map(|d| WordNet::open(d).unwrap()), ..Default::default() },
        ..Default::default()
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn an_evaluation_stores_what_the_models_wrote_and_the_eval_crate_figures() {
    let t = trained();
    let mut stages: Vec<EvalProgress> = Vec::new();
    let req: EvalRequest = serde_json::from_value(json!({"run": t.run, "limit": 3, "max_new_tokens": 8})).unwrap();
    let summary = t.api.eval_run_with_progress(&req, &mut |p| stages.push(p.clone())).unwrap();
    let last = stages.last().unwrap();
    assert_eq!((last.stage.as_str(), last.done, last.total), ("done", 3 * 2 + 2, 3 * 2 + 2));
    assert!(stages.windows(2).all(|w| w[0].done <= w[1].done), "progress never goes back");

    // By default: the test split of the dataset version the run trained on, base and tuned.
    assert_eq!(summary.items, 3);
    assert!(summary.source.contains("`listings` version 2, test split"), "{}", summary.source);
    assert_eq!((summary.dataset_version, summary.split.as_deref()), (Some(2), Some("test")));
    let results = t.api.dispatch("eval_results", json!({"id": summary.id})).unwrap();
    assert_eq!(results["evaluation"]["sides"].as_array().unwrap().len(), 2);
    let listed = t.api.dispatch("list_evaluations", json!({"run": t.run})).unwrap();
    assert_eq!(listed[0]["id"], summary.id);
    assert_eq!(t.api.dispatch("list_evaluations", json!({"run": t.run + 1})).unwrap(), json!([]));

    // The answers are the model's own, greedy, through its chat template, with and without the adapter.
    let model = load_model(&t.model, QuantMode::Native).unwrap();
    let adapter = load_adapter(&model, &t.adapter).unwrap();
    let opts = SamplingOptions { temperature: 0.0, top_p: 1.0, max_new_tokens: 8, seed: 0 };
    let items = results["items"].as_array().unwrap();
    let mut references = Vec::new();
    let mut texts: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for item in items {
        let messages: Vec<Message> = serde_json::from_value(item["messages"].clone()).unwrap();
        assert_eq!(messages.last().unwrap().content, item["prompt"].as_str().unwrap());
        for (side, a) in [("base", None), ("tuned", Some(&adapter))] {
            let want = generate_chat(&model, a, &messages, &opts, |_| {}).unwrap();
            let out = item["outputs"].as_array().unwrap().iter().find(|o| o["side"] == side).unwrap();
            assert_eq!(out["text"].as_str().unwrap(), want.0, "item {} {side}", item["position"]);
            assert_eq!(out["tokens"], want.1);
            texts.entry(side.to_string()).or_default().push(want.0);
        }
        references.push(vec![item["reference"].as_str().unwrap().to_string()]);
    }

    // The figures are the eval crate's on those answers, and the loss path's on those references.
    let held_out = t.root.join("held-out.jsonl");
    let lines: String = items
        .iter()
        .map(|i| {
            let mut m = i["messages"].as_array().unwrap().clone();
            m.push(json!({"role": "assistant", "content": i["reference"]}));
            format!("{}\n", json!({"messages": m}))
        })
        .collect();
    std::fs::write(&held_out, lines).unwrap();
    for side in results["evaluation"]["sides"].as_array().unwrap() {
        let name = side["side"].as_str().unwrap();
        let want = score_with(&texts[name], &references, &score_options()).unwrap();
        let text = &side["text"];
        assert_eq!(num(&text["bleu"]), want.bleu.score, "{name}");
        assert_eq!(num(&text["chrf"]), want.chrf.score, "{name}");
        assert_eq!(num(&text["rouge_l"]), want.rouge.rouge_l, "{name}");
        assert_eq!(num(&text["rouge_lsum"]), want.rouge.rouge_lsum, "{name}");
        assert_eq!(num(&text["meteor"]), want.meteor, "{name}");
        assert_eq!(text["meteor_synonyms"], want.meteor_synonyms);
        assert_eq!(num(&text["f1"]), want.f1, "{name}");
        assert_eq!(num(&text["exact_match"]), want.exact_match, "{name}");
        for (item, w) in items.iter().zip(&want.items) {
            let out = item["outputs"].as_array().unwrap().iter().find(|o| o["side"] == name).unwrap();
            assert_eq!(num(&out["scores"]["bleu"]), w.bleu.score);
            assert_eq!(num(&out["scores"]["meteor"]), w.meteor);
        }
        let a = (name == "tuned").then_some(&adapter);
        let loss = eval_loss(&model, a, &held_out, 1024).unwrap();
        assert!((num(&side["loss"]) - loss.loss).abs() < 1e-9, "{name}: {} vs {}", side["loss"], loss.loss);
        assert!((num(&side["perplexity"]) - loss.perplexity).abs() < 1e-6 * loss.perplexity);
        assert_eq!(side["loss_tokens"], loss.tokens);
    }

    // Greedy decoding is reproducible: a second evaluation stores the same answers.
    let again = t.api.eval_run(&req).unwrap();
    let again = t.api.dispatch("eval_results", json!({"id": again.id})).unwrap();
    assert_eq!(again["items"], results["items"]);

    // Exports: CSV with one line per item and side, JSON lines with one item each.
    let csv = t.api.dispatch("eval_export", json!({"id": summary.id, "format": "csv"})).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_str().unwrap().as_bytes());
    assert_eq!(reader.headers().unwrap().iter().take(3).collect::<Vec<_>>(), ["position", "line", "side"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 6);
    assert_eq!(&records[1][5], items[0]["outputs"][1]["text"].as_str().unwrap());
    let jsonl = t.api.dispatch("eval_export", json!({"id": summary.id, "format": "jsonl"})).unwrap();
    let lines: Vec<Value> = jsonl.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, *items);

    // An export's model card carries the latest evaluation, tuned beside base.
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("adapter-export");
    t.api.allow_folder(out.path()).unwrap();
    t.api.dispatch("export_run", json!({"run": t.run, "format": "peft", "out": folder})).unwrap();
    let card = std::fs::read_to_string(folder.join("README.md")).unwrap();
    let tuned_ppl = again["evaluation"]["sides"].as_array().unwrap().iter().find(|s| s["side"] == "tuned").unwrap()["perplexity"].clone();
    assert!(card.contains("Perplexity") && card.contains("BLEU") && card.contains("ROUGE-L"), "{card}");
    assert!(card.contains(&format!("evaluation #{}", again["evaluation"]["id"])), "the latest evaluation: {card}");
    assert!(tuned_ppl.is_number(), "{tuned_ppl}");
}

#[test]
fn given_rows_with_seeded_sampling_and_their_refusals() {
    let t = trained();
    let rows = json!([
        {"prompt": "Write the listing sentence for 3 Elm Street.", "reference": "3 Elm Street: a bright home.", "input": {"address": "3 Elm Street", "bedrooms": 3}},
        {"prompt": "Say hello.", "system": "Be brief."},
    ]);
    let args = json!({"model": t.model, "adapter": t.adapter, "rows": rows, "temperature": 0.9, "top_p": 0.95, "seed": 7, "max_new_tokens": 6});
    let first = t.api.dispatch("eval_run", args.clone()).unwrap();
    assert_eq!(first["source"], "2 given rows");
    assert_eq!(first["run_id"], Value::Null);
    let a = t.api.dispatch("eval_results", json!({"id": first["id"]})).unwrap();
    let b = t.api.dispatch("eval_results", json!({"id": t.api.dispatch("eval_run", args).unwrap()["id"]})).unwrap();
    assert_eq!(a["items"], b["items"], "the same seed samples the same answers");
    let items = a["items"].as_array().unwrap();
    assert_eq!(items[0]["input"], json!({"address": "3 Elm Street", "bedrooms": 3}));
    assert_eq!(items[1]["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(items[1]["reference"], Value::Null);
    assert!(items[1]["outputs"].as_array().unwrap().iter().all(|o| o["scores"].is_null()));
    // Figures cover only the items with a reference.
    for side in a["evaluation"]["sides"].as_array().unwrap() {
        assert_eq!(side["text"]["items"], 1);
        assert!(side["perplexity"].as_f64().unwrap() > 1.0);
    }

    // Refused before anything is loaded or stored.
    let before = t.api.list_evaluations(None).unwrap().len();
    let refused = [
        (json!({"run": t.run, "model": t.model, "rows": rows}), "either a run or a model"),
        (json!({"rows": rows}), "give a run"),
        (json!({"run": t.run, "sides": ["compare"], "rows": rows}), "compare_run"),
        (json!({"model": t.model, "sides": ["tuned"], "rows": rows}), "needs a run or an adapter"),
        (json!({"run": t.run, "rows": rows, "dataset": "listings"}), "one way"),
        (json!({"run": t.run, "rows": rows, "temperature": -1.0}), "temperature"),
        (json!({"run": t.run, "rows": [{"prompt": " "}]}), "prompt is empty"),
        (json!({"run": t.run, "dataset": "listings", "version": 1}), "not split"),
        (json!({"run": t.run + 5, "rows": rows}), "no run"),
    ];
    for (args, says) in refused {
        let err = t.api.dispatch("eval_run", args.clone()).unwrap_err();
        assert!(matches!(err.code(), "invalid_input" | "not_found"), "{args}: {err}");
        assert!(err.to_string().contains(says), "{args}: {err}");
    }
    assert_eq!(t.api.list_evaluations(None).unwrap().len(), before, "a refused evaluation stores nothing");
}
