mod common;

use std::collections::BTreeSet;

use common::job;
use whetstone_export::axolotl::{
    chat_row, config, launch_script, Cluster, DatasetKind, Length, Method, Parallelism, Schedule,
};

/// Keys of the YAML this crate writes: `indent` spaces deep, under the line `parent` (None: top level).
fn keys_at(yaml: &str, indent: usize, parent: Option<&str>) -> BTreeSet<String> {
    let mut inside = parent.is_none();
    let mut out = BTreeSet::new();
    for line in yaml.lines() {
        let depth = line.len() - line.trim_start_matches([' ', '-']).len();
        if let Some(p) = parent {
            if depth == 0 {
                inside = line.starts_with(&format!("{p}:"));
                continue;
            }
        }
        if inside && depth == indent {
            if let Some((key, _)) = line.trim_start_matches([' ', '-']).split_once(':') {
                out.insert(key.to_string());
            }
        }
    }
    out
}

fn allowed(section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(common::fixture("axolotl_keys.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[section]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_key_written_is_one_axolotls_schema_accepts() {
    let top = allowed("top_level");
    let dataset = allowed("dataset");
    let fsdp = allowed("fsdp_config");
    assert!(top.len() > 300 && top.contains("lora_target_modules"));
    let mut text_job = job();
    text_job.dataset = DatasetKind::Text;
    text_job.eval_file = None;
    text_job.val_set_size = Some(0.1);
    text_job.length = Length::Steps(500);
    for j in [job(), text_job] {
        for p in [
            Parallelism::DataParallel,
            Parallelism::DeepspeedZero2,
            Parallelism::DeepspeedZero3,
            Parallelism::Fsdp,
        ] {
            let yaml = config(&j, p).unwrap().config_yaml;
            let written = keys_at(&yaml, 0, None);
            assert!(written.len() > 20, "{yaml}");
            assert_eq!(
                written.difference(&top).collect::<Vec<_>>(),
                Vec::<&String>::new(),
                "{p:?}"
            );
            for list in ["datasets", "test_datasets"] {
                let entry = keys_at(&yaml, 4, Some(list));
                assert_eq!(
                    entry.difference(&dataset).collect::<Vec<_>>(),
                    Vec::<&String>::new()
                );
            }
            let fsdp_keys = keys_at(&yaml, 2, Some("fsdp_config"));
            assert_eq!(
                fsdp_keys.difference(&fsdp).collect::<Vec<_>>(),
                Vec::<&String>::new()
            );
            assert_eq!(p == Parallelism::Fsdp, !fsdp_keys.is_empty());
        }
    }
}

#[test]
fn the_qlora_chat_config_reads_as_expected() {
    let yaml = config(&job(), Parallelism::DataParallel)
        .unwrap()
        .config_yaml;
    let expected = "base_model: HuggingFaceTB/SmolLM2-135M-Instruct
adapter: qlora
load_in_4bit: true
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_modules:
  - q_proj
  - k_proj
  - v_proj
  - o_proj
chat_template: tokenizer_default
datasets:
  - path: data/train.jsonl
    ds_type: json
    type: chat_template
    field_messages: messages
    message_property_mappings:
      role: role
      content: content
    roles_to_train:
      - assistant
    split: train
test_datasets:
  - path: data/eval.jsonl
    ds_type: json
    type: chat_template
    field_messages: messages
    message_property_mappings:
      role: role
      content: content
    roles_to_train:
      - assistant
    split: train
eval_steps: 50
sequence_len: 1024
micro_batch_size: 4
gradient_accumulation_steps: 2
num_epochs: 3
learning_rate: 0.0002
lr_scheduler: cosine
warmup_steps: 10
optimizer: adamw_torch
weight_decay: 0.0
max_grad_norm: 1.0
seed: 42
gradient_checkpointing: true
bf16: auto
output_dir: ./outputs/lora
";
    assert_eq!(yaml, expected);
}

#[test]
fn deepspeed_variants_point_at_the_json_written_beside_them() {
    for (p, stage) in [
        (Parallelism::DeepspeedZero2, 2),
        (Parallelism::DeepspeedZero3, 3),
    ] {
        let files = config(&job(), p).unwrap();
        let (path, json) = files.deepspeed.unwrap();
        assert!(files
            .config_yaml
            .contains(&format!("\ndeepspeed: {path}\n")));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["zero_optimization"]["stage"], stage);
        assert_eq!(v["train_micro_batch_size_per_gpu"], "auto");
    }
    assert!(config(&job(), Parallelism::DataParallel)
        .unwrap()
        .deepspeed
        .is_none());
}

#[test]
fn schedules_map_onto_transformers_names() {
    let mut j = job();
    j.method = Method::Lora;
    for (schedule, warmup, name) in [
        (Schedule::Linear, 5, "linear"),
        (Schedule::Constant, 0, "constant"),
        (Schedule::Constant, 5, "constant_with_warmup"),
    ] {
        j.schedule = schedule;
        j.warmup_steps = warmup;
        let yaml = config(&j, Parallelism::DataParallel).unwrap().config_yaml;
        assert!(
            yaml.contains(&format!("\nlr_scheduler: {name}\n")),
            "{yaml}"
        );
        assert!(!yaml.contains("load_in_4bit"));
    }
}

#[test]
fn jobs_axolotl_cannot_run_are_refused() {
    let mut j = job();
    j.target_modules = vec!["self_attn.q".into()];
    assert_eq!(
        config(&j, Parallelism::DataParallel).unwrap_err().code(),
        "invalid_input"
    );
    let mut j = job();
    j.decoder_layer_class = None;
    assert_eq!(
        config(&j, Parallelism::Fsdp).unwrap_err().code(),
        "invalid_input"
    );
    let mut j = job();
    j.learning_rate = f64::NAN;
    assert_eq!(
        config(&j, Parallelism::DataParallel).unwrap_err().code(),
        "invalid_input"
    );
}

#[test]
fn launch_commands_cover_n_gpus_on_m_nodes() {
    let cluster = Cluster {
        gpus_per_node: 8,
        nodes: 2,
        main_process_ip: Some("10.0.0.1".into()),
        main_process_port: 29500,
    };
    let script = launch_script(&cluster, "config.yml").unwrap();
    assert!(script.contains("accelerate launch \\\n  --num_processes 16 \\\n  --num_machines 2 \\\n  --machine_rank \"$MACHINE_RANK\" \\\n  --main_process_ip 10.0.0.1 \\\n  --main_process_port 29500 \\\n  -m axolotl.cli.train config.yml"), "{script}");
    assert!(
        script.contains("# torchrun --nproc_per_node 8 --nnodes 2 --node_rank \"$MACHINE_RANK\""),
        "{script}"
    );
    let two_nodes_no_ip = Cluster {
        main_process_ip: None,
        ..cluster
    };
    assert_eq!(
        launch_script(&two_nodes_no_ip, "config.yml")
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    let single = Cluster {
        gpus_per_node: 1,
        nodes: 1,
        main_process_ip: None,
        main_process_port: 29500,
    };
    assert!(launch_script(&single, "my config.yml")
        .unwrap()
        .contains("--main_process_ip 127.0.0.1"));
    assert!(launch_script(&single, "my config.yml")
        .unwrap()
        .contains("axolotl.cli.train 'my config.yml'"));
}

#[test]
fn chat_rows_are_the_messages_layout_the_config_names() {
    let row = chat_row(&[("user", "Hi \"there\"\n"), ("assistant", "Hello")]);
    let v: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert_eq!(v["messages"][0]["role"], "user");
    assert_eq!(v["messages"][0]["content"], "Hi \"there\"\n");
    assert!(!row.contains('\n'));
}
