mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use common::smollm2;
use whetstone_data::{build_examples, read_jsonl_rows, Role};

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/samples")
}

#[test]
fn sample_dataset_is_well_formed_for_smollm2() {
    let tok = smollm2();
    let train = read_jsonl_rows(samples().join("instructions.jsonl")).unwrap();
    let val = read_jsonl_rows(samples().join("instructions_val.jsonl")).unwrap();
    assert_eq!((train.len(), val.len()), (400, 60));

    let prompts = |rows: &[whetstone_data::Row]| -> HashSet<String> {
        rows.iter()
            .map(|r| r.conversation[0].content.clone())
            .collect()
    };
    let (train_prompts, val_prompts) = (prompts(&train), prompts(&val));
    assert_eq!(train_prompts.len(), 400, "training prompts are unique");
    assert!(
        train_prompts.is_disjoint(&val_prompts),
        "no validation prompt appears in training"
    );

    let mut lengths = Vec::new();
    for row in train.iter().chain(&val) {
        assert_eq!(row.conversation.len(), 2);
        assert_eq!(row.conversation[1].role, Role::Assistant);
        let n = tok
            .encode(&row.conversation[1].content, false)
            .unwrap()
            .len();
        assert!(
            (20..=80).contains(&n),
            "line {}: response is {n} tokens",
            row.line
        );
        lengths.push(n);
    }
    let examples = build_examples(tok, &train, 256).unwrap();
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
