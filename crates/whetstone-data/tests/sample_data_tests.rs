mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use common::smollm2;
use whetstone_data::{build_training_examples, read_training_rows, DataRow, Role, RowBody};

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/samples")
}

#[test]
fn sample_dataset_is_well_formed_for_smollm2() {
    let tok = smollm2();
    let train = read_training_rows(&samples().join("instructions.jsonl")).unwrap();
    let val = read_training_rows(&samples().join("instructions_val.jsonl")).unwrap();
    assert_eq!((train.len(), val.len()), (400, 60));

    let chat = |r: &DataRow| match &r.body {
        RowBody::Chat(m) => m.clone(),
        RowBody::Text(_) => panic!("line {}: plain text", r.line),
    };
    let prompts = |rows: &[DataRow]| -> HashSet<String> { rows.iter().map(|r| chat(r)[0].content.clone()).collect() };
    let (train_prompts, val_prompts) = (prompts(&train), prompts(&val));
    assert_eq!(train_prompts.len(), 400, "training prompts are unique");
    assert!(
        train_prompts.is_disjoint(&val_prompts),
        "no validation prompt appears in training"
    );

    let mut lengths = Vec::new();
    for row in train.iter().chain(&val) {
        let conversation = chat(row);
        assert_eq!(conversation.len(), 2);
        assert_eq!(conversation[1].role, Role::Assistant);
        let n = tok
            .encode(&conversation[1].content, false)
            .unwrap()
            .len();
        assert!(
            (20..=80).contains(&n),
            "line {}: response is {n} tokens",
            row.line
        );
        lengths.push(n);
    }
    let built = build_training_examples(tok, &train, 256, false).unwrap();
    assert!(built.dropped.is_empty());
    let examples: Vec<_> = built.kept.into_iter().map(|(_, e)| e).collect();
    assert!(
        examples.iter().all(|e| e.len() < 256),
        "no training row is truncated at 256 tokens"
    );
    for (ex, n) in examples.iter().zip(&lengths) {
        assert_eq!(
            ex.trained_tokens(),
            n + 1,
            "response tokens plus <|im_end|>"
        );
    }
}
