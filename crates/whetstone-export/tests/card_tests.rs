use whetstone_export::axolotl::Method;
use whetstone_export::card::{
    render, CardInput, CleaningStep, DataInput, FilesInput, Metric, ResultsInput, Review,
    TrainingInput,
};

fn full() -> CardInput {
    serde_json::from_value(serde_json::json!({
        "model_name": "Support helper",
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "base_model_license": "Apache-2.0",
        "commercial_use": "allowed under Apache-2.0",
        "license": "apache-2.0",
        "adapter": true,
        "method": "qlora",
        "language": ["en", "de"],
        "datasets": ["acme/tickets"],
        "data": {
            "source": "tickets.csv",
            "rows_imported": 1200,
            "cleaning": [
                {"step": "exact duplicates removed", "rows_before": 1200, "rows_after": 1150},
                {"step": "personal data | emails", "rows_before": 1150, "rows_after": 1100}
            ],
            "train_rows": 990,
            "eval_rows": 110
        },
        "training": {"lora_r": 16, "lora_alpha": 32.0, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
                     "learning_rate": 0.0002, "schedule": "cosine", "warmup_steps": 10, "steps": 300, "epochs": 2.0,
                     "micro_batch_size": 4, "gradient_accumulation_steps": 2, "max_length": 1024, "base_quantisation": "NF4"},
        "results": {"final_train_loss": 1.23456, "best_eval_loss": 1.5, "best_eval_step": 250,
                    "metrics": [{"name": "ROUGE-L", "tuned": 0.41, "base": 0.3}],
                    "review": {"raters": 3, "items": 40, "preferred_tuned": 25, "preferred_base": 10, "ties": 5, "agreement_alpha": 0.62}},
        "intended_use": "Drafting replies to support tickets.",
        "limitations": ["English and German only."],
        "files": {"weights_dir": "adapter", "gguf": "model q8.gguf", "modelfile": "Modelfile", "ollama_name": "support-helper"}
    }))
    .unwrap()
}

#[test]
fn front_matter_is_what_the_hub_indexes() {
    let card = render(&full()).unwrap();
    let front = card
        .strip_prefix("---\n")
        .unwrap()
        .split_once("---\n")
        .unwrap()
        .0;
    assert_eq!(
        front,
        "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\nlibrary_name: peft\nlicense: apache-2.0\ntags:\n  - whetstone\n  - lora\n  - qlora\ndatasets:\n  - acme/tickets\nlanguage:\n  - en\n  - de\npipeline_tag: text-generation\n"
    );
}

#[test]
fn awkward_strings_in_the_front_matter_are_quoted() {
    let card = CardInput {
        base_model: Some("org/model: \"v2\"\nnext".into()),
        license: Some("other".into()),
        datasets: vec!["yes".into(), "données/été".into()],
        ..CardInput::default()
    };
    let text = render(&card).unwrap();
    assert!(
        text.contains("base_model: \"org/model: \\\"v2\\\"\\nnext\"\n"),
        "{text}"
    );
    assert!(
        text.contains("  - \"yes\"\n  - \"données/été\"\n"),
        "{text}"
    );
    assert!(!text.contains("library_name"));
}

#[test]
fn every_section_is_written_with_its_numbers() {
    let card = render(&full()).unwrap();
    for needle in [
        "This is a LoRA adapter trained with QLoRA",
        "- Commercial use: allowed under Apache-2.0",
        "| exact duplicates removed | 1200 | 1150 | 50 |",
        "| personal data \\| emails | 1150 | 1100 | 50 |",
        "- Rows held out for evaluation: 110",
        "| Batch | 4 × 2 accumulation steps = 8 examples per update |",
        "| Length | 300 steps (2 epochs) |",
        "| Adapted modules | `q_proj`, `v_proj` |",
        "- Final training loss: 1.2346",
        "- Best evaluation loss: 1.5 at step 250",
        "- Perplexity on the evaluation set: 4.4817 (e^loss of the best evaluation loss)",
        "| ROUGE-L | 0.41 | 0.3 |  |",
        "| Tuned model | 25 |",
        "Krippendorff's alpha 0.62",
        "AutoPeftModelForCausalLM.from_pretrained(\"adapter\")",
        "AutoTokenizer.from_pretrained(\"HuggingFaceTB/SmolLM2-135M-Instruct\")",
        "llama-cli -m 'model q8.gguf' -cnv",
        "ollama create support-helper -f Modelfile\nollama run support-helper",
    ] {
        assert!(card.contains(needle), "missing {needle:?} in\n{card}");
    }
}

#[test]
fn missing_data_is_said_not_dropped() {
    let card = render(&CardInput::default()).unwrap();
    for heading in [
        "## Training data\n\nNot recorded",
        "## Training settings\n\nNot recorded",
        "## Results\n\nNot recorded",
    ] {
        assert!(card.contains(heading), "{heading:?} in\n{card}");
    }
    assert!(card.contains("Commercial use: not determined"));
    assert!(card.contains("No GGUF file or Ollama Modelfile was exported"));
    assert!(
        card.contains("AutoModelForCausalLM.from_pretrained(\".\")"),
        "a merged model loads without peft"
    );

    let partial = CardInput {
        results: Some(ResultsInput {
            final_train_loss: Some(2.0),
            ..ResultsInput::default()
        }),
        data: Some(DataInput {
            cleaning: vec![CleaningStep {
                step: "trimmed".into(),
                rows_before: None,
                rows_after: Some(5),
            }],
            ..DataInput::default()
        }),
        training: Some(TrainingInput::default()),
        method: Some(Method::Lora),
        adapter: true,
        files: FilesInput::default(),
        ..CardInput::default()
    };
    let card = render(&partial).unwrap();
    assert!(card.contains("- Best evaluation loss: no evaluation set was used"));
    assert!(card.contains("- Perplexity on the evaluation set: not measured"));
    assert!(card.contains("None were computed for this export."));
    assert!(card.contains("No human review was recorded."));
    assert!(card.contains("| trimmed | not recorded | 5 | – |"));
    assert!(card.contains("| LoRA rank (r) | not recorded |"));
    let _ = (Metric::default(), Review::default());
}

#[test]
fn an_unusable_ollama_name_is_an_error_not_a_broken_command() {
    let mut card = full();
    card.files.ollama_name = Some("bad name; rm".into());
    assert_eq!(render(&card).unwrap_err().code(), "invalid_input");
}
