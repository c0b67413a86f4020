//! Evaluations are written whole: items, each side's outputs and the metrics come back as they went in,
//! and a failure half-way leaves nothing behind.

use serde_json::json;
use whetstone_store::{EvaluationItem, NewEvaluation, OutputRecord, SideRecord, Store};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("whetstone.db")).unwrap();
    (dir, store)
}

fn new_evaluation() -> NewEvaluation {
    NewEvaluation {
        run_id: None,
        compare_run_id: None,
        model: "/models/tiny".into(),
        adapter: Some("/runs/1/adapter".into()),
        dataset_id: None,
        dataset_version: None,
        split: Some("test".into()),
        source: "2 given rows".into(),
        settings: json!({"max_new_tokens": 8}),
        metrics: vec![
            SideRecord { side: "base".into(), metrics: json!({"perplexity": 9.5}) },
            SideRecord { side: "tuned".into(), metrics: json!({"perplexity": 4.25}) },
        ],
    }
}

fn item(position: u32, sides: &[&str]) -> EvaluationItem {
    EvaluationItem {
        position,
        line: Some(position as u64 + 10),
        messages: json!([{"role": "user", "content": format!("prompt {position}")}]),
        prompt: format!("prompt {position}"),
        input: (position == 1).then(|| json!({"bedrooms": 3})),
        reference: Some(format!("answer {position}")),
        outputs: sides
            .iter()
            .map(|s| OutputRecord { side: s.to_string(), text: format!("{s} says {position}"), tokens: 3, scores: Some(json!({"f1": 0.5})) })
            .collect(),
    }
}

#[test]
fn an_evaluation_round_trips() {
    let (_dir, mut store) = open();
    let items = vec![item(1, &["base", "tuned"]), item(2, &["base", "tuned"])];
    let e = store.insert_evaluation(&new_evaluation(), &items).unwrap();
    assert_eq!(e.items, 2);
    assert_eq!(e.metrics, new_evaluation().metrics);
    assert_eq!(e.settings, json!({"max_new_tokens": 8}));
    assert!(e.created_at.ends_with('Z'));
    assert_eq!(store.evaluation_items(e.id).unwrap(), items);
    assert_eq!(store.list_evaluations(None).unwrap(), vec![e.clone()]);
    assert!(store.list_evaluations(Some(7)).unwrap().is_empty());
    assert_eq!(store.get_evaluation(e.id + 1).unwrap_err().to_string(), format!("no evaluation with id {} in the database", e.id + 1));
}

#[test]
fn a_failed_write_leaves_nothing() {
    let (_dir, mut store) = open();
    // The second item's output names a side the schema does not know: the whole evaluation is refused.
    let items = vec![item(1, &["base"]), item(2, &["judge"])];
    assert!(store.insert_evaluation(&new_evaluation(), &items).is_err());
    assert!(store.list_evaluations(None).unwrap().is_empty());
    assert!(store.insert_evaluation(&new_evaluation(), &[]).is_err(), "an evaluation needs items");
    let ok = store.insert_evaluation(&new_evaluation(), &[item(1, &["base"])]).unwrap();
    assert_eq!(store.evaluation_items(ok.id).unwrap().len(), 1);
}
