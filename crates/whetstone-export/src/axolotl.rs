//! An Axolotl config for the job Whetstone ran, so that it can be rerun on a GPU cluster, with the
//! DeepSpeed file or FSDP block it needs and the commands that launch it on N GPUs over M nodes.
//!
//! Key names follow Axolotl's pydantic schema (`src/axolotl/utils/schemas/`); the crate README names
//! the commit they were checked against and `tests/fixtures/axolotl_keys.json` lists them.

use serde::{Deserialize, Serialize};

use crate::error::{ExportError, Result};
use crate::shell::quote;
use crate::yaml::Yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Lora,
    Qlora,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Linear,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Length {
    Epochs(f64),
    Steps(u64),
}

/// What the training rows are: conversations (`{"messages": [{"role", "content"}]}` per line) or plain
/// text (`{"text"}` per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Chat,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parallelism {
    /// One process per GPU, plain data parallelism.
    DataParallel,
    DeepspeedZero2,
    DeepspeedZero3,
    /// FSDP2 with full sharding of the decoder layers.
    Fsdp,
}

/// The job, in plain fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    /// Hugging Face repo id or local path of the base model.
    pub base_model: String,
    pub method: Method,
    pub lora_r: u32,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    /// Hugging Face module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
    pub target_modules: Vec<String>,
    pub dataset: DatasetKind,
    /// JSONL paths relative to the config.
    pub train_file: String,
    pub eval_file: Option<String>,
    /// Share of the training file held out for evaluation when there is no eval file.
    pub val_set_size: Option<f64>,
    pub eval_steps: Option<u32>,
    pub sequence_len: u32,
    pub micro_batch_size: u32,
    pub gradient_accumulation_steps: u32,
    pub length: Length,
    pub learning_rate: f64,
    pub schedule: Schedule,
    pub warmup_steps: u32,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub seed: u64,
    pub gradient_checkpointing: bool,
    pub output_dir: String,
    /// The model's decoder layer class (e.g. `LlamaDecoderLayer`), which FSDP wraps.
    pub decoder_layer_class: Option<String>,
}

pub const HF_TARGET_MODULES: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Where the DeepSpeed config goes, relative to the Axolotl config.
pub const DEEPSPEED_PATH: &str = "deepspeed_configs/zero.json";

/// The files of one variant: the config and, for DeepSpeed, its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct AxolotlFiles {
    pub config_yaml: String,
    /// (path relative to the config, content).
    pub deepspeed: Option<(String, String)>,
}

pub fn config(job: &JobInput, parallelism: Parallelism) -> Result<AxolotlFiles> {
    check(job, parallelism)?;
    let mut e: Vec<(&str, Yaml)> = vec![("base_model", Yaml::str(&job.base_model))];
    e.push((
        "adapter",
        Yaml::str(match job.method {
            Method::Lora => "lora",
            Method::Qlora => "qlora",
        }),
    ));
    if job.method == Method::Qlora {
        e.push(("load_in_4bit", Yaml::Bool(true)));
    }
    e.push(("lora_r", Yaml::Int(job.lora_r.into())));
    e.push(("lora_alpha", number(job.lora_alpha)));
    e.push(("lora_dropout", Yaml::Float(job.lora_dropout)));
    e.push(("lora_target_modules", Yaml::strs(&job.target_modules)));
    // The model's own chat template, the one Whetstone trained with.
    if job.dataset == DatasetKind::Chat {
        e.push(("chat_template", Yaml::str("tokenizer_default")));
    }
    e.push((
        "datasets",
        Yaml::List(vec![dataset_entry(job, &job.train_file)]),
    ));
    if let Some(eval) = &job.eval_file {
        e.push(("test_datasets", Yaml::List(vec![dataset_entry(job, eval)])));
    } else {
        e.push(("val_set_size", Yaml::Float(job.val_set_size.unwrap_or(0.0))));
    }
    if let Some(steps) = job.eval_steps {
        e.push(("eval_steps", Yaml::Int(steps.into())));
    }
    e.push(("sequence_len", Yaml::Int(job.sequence_len.into())));
    e.push(("micro_batch_size", Yaml::Int(job.micro_batch_size.into())));
    e.push((
        "gradient_accumulation_steps",
        Yaml::Int(job.gradient_accumulation_steps.into()),
    ));
    match job.length {
        Length::Epochs(n) => e.push(("num_epochs", number(n))),
        Length::Steps(n) => e.push(("max_steps", Yaml::Int(n as i64))),
    }
    e.push(("learning_rate", Yaml::Float(job.learning_rate)));
    // Axolotl passes the name to transformers' get_scheduler; its constant schedule ignores
    // warmup, so a warmed-up constant schedule has its own name there.
    let scheduler = match (job.schedule, job.warmup_steps) {
        (Schedule::Cosine, _) => "cosine",
        (Schedule::Linear, _) => "linear",
        (Schedule::Constant, 0) => "constant",
        (Schedule::Constant, _) => "constant_with_warmup",
    };
    e.push(("lr_scheduler", Yaml::str(scheduler)));
    e.push(("warmup_steps", Yaml::Int(job.warmup_steps.into())));
    e.push(("optimizer", Yaml::str("adamw_torch")));
    e.push(("weight_decay", Yaml::Float(job.weight_decay)));
    e.push(("max_grad_norm", Yaml::Float(job.max_grad_norm)));
    e.push(("seed", Yaml::Int(job.seed as i64)));
    e.push((
        "gradient_checkpointing",
        Yaml::Bool(job.gradient_checkpointing),
    ));
    e.push(("bf16", Yaml::str("auto")));
    e.push(("output_dir", Yaml::str(&job.output_dir)));

    let mut deepspeed = None;
    match parallelism {
        Parallelism::DataParallel => {}
        Parallelism::DeepspeedZero2 | Parallelism::DeepspeedZero3 => {
            e.push(("deepspeed", Yaml::str(DEEPSPEED_PATH)));
            deepspeed = Some((
                DEEPSPEED_PATH.to_string(),
                deepspeed_json(parallelism == Parallelism::DeepspeedZero3),
            ));
        }
        Parallelism::Fsdp => {
            let layer = job.decoder_layer_class.as_deref().unwrap_or_default();
            e.push(("fsdp_version", Yaml::Int(2)));
            e.push((
                "fsdp_config",
                Yaml::map(vec![
                    ("offload_params", Yaml::Bool(false)),
                    ("cpu_ram_efficient_loading", Yaml::Bool(true)),
                    ("auto_wrap_policy", Yaml::str("TRANSFORMER_BASED_WRAP")),
                    ("transformer_layer_cls_to_wrap", Yaml::str(layer)),
                    ("state_dict_type", Yaml::str("FULL_STATE_DICT")),
                    ("reshard_after_forward", Yaml::Bool(true)),
                ]),
            ));
        }
    }
    Ok(AxolotlFiles {
        config_yaml: Yaml::map(e).render(),
        deepspeed,
    })
}

fn number(v: f64) -> Yaml {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Yaml::Int(v as i64)
    } else {
        Yaml::Float(v)
    }
}

fn dataset_entry(job: &JobInput, path: &str) -> Yaml {
    let mut entry = vec![("path", Yaml::str(path)), ("ds_type", Yaml::str("json"))];
    match job.dataset {
        DatasetKind::Chat => {
            entry.push(("type", Yaml::str("chat_template")));
            entry.push(("field_messages", Yaml::str("messages")));
            entry.push((
                "message_property_mappings",
                Yaml::map(vec![
                    ("role", Yaml::str("role")),
                    ("content", Yaml::str("content")),
                ]),
            ));
            // Whetstone computes the loss on the assistant's turns only.
            entry.push(("roles_to_train", Yaml::strs(&["assistant"])));
        }
        DatasetKind::Text => {
            entry.push(("type", Yaml::str("completion")));
            entry.push(("field", Yaml::str("text")));
        }
    }
    entry.push(("split", Yaml::str("train")));
    Yaml::map(entry)
}

fn check(job: &JobInput, parallelism: Parallelism) -> Result<()> {
    let invalid = |m: String| Err(ExportError::Invalid(m));
    if job.base_model.trim().is_empty()
        || job.train_file.trim().is_empty()
        || job.output_dir.trim().is_empty()
    {
        return invalid(
            "the Axolotl config needs a base model, a training file and an output folder".into(),
        );
    }
    if let Some(bad) = job
        .target_modules
        .iter()
        .find(|m| !HF_TARGET_MODULES.contains(&m.as_str()))
    {
        return invalid(format!(
            "{bad:?} is not a Hugging Face module name; use {}",
            HF_TARGET_MODULES.join(", ")
        ));
    }
    if job.target_modules.is_empty() {
        return invalid("LoRA needs at least one target module".into());
    }
    if job.lora_r == 0
        || job.micro_batch_size == 0
        || job.gradient_accumulation_steps == 0
        || job.sequence_len == 0
    {
        return invalid(
            "rank, batch size, accumulation steps and sequence length must be at least 1".into(),
        );
    }
    let rates = [
        ("lora_alpha", job.lora_alpha),
        ("learning_rate", job.learning_rate),
        ("weight_decay", job.weight_decay),
        ("max_grad_norm", job.max_grad_norm),
    ];
    if let Some((name, v)) = rates.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
        return invalid(format!(
            "{name} must be a finite number of at least 0, not {v}"
        ));
    }
    if !(0.0..1.0).contains(&job.lora_dropout)
        || job.val_set_size.is_some_and(|v| !(0.0..1.0).contains(&v))
    {
        return invalid("lora_dropout and val_set_size are fractions from 0 up to 1".into());
    }
    if let Length::Epochs(n) = job.length {
        if !n.is_finite() || n <= 0.0 {
            return invalid(format!("the number of epochs must be above 0, not {n}"));
        }
    }
    if parallelism == Parallelism::Fsdp
        && job
            .decoder_layer_class
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        return invalid("FSDP wraps the model's decoder layers and needs their class name (e.g. LlamaDecoderLayer)".into());
    }
    Ok(())
}

/// The DeepSpeed file: "auto" wherever the HF integration fills the value from the Axolotl config, so
/// the two never disagree.
fn deepspeed_json(stage3: bool) -> String {
    let zero = if stage3 {
        serde_json::json!({
            "stage": 3,
            "overlap_comm": true,
            "contiguous_gradients": true,
            "sub_group_size": 0,
            "reduce_bucket_size": "auto",
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "max_live_parameters": 0,
            "max_reuse_distance": 0,
            // Without it the saved adapter would be the empty shard of rank 0.
            "gather_16bit_weights_on_model_save": true
        })
    } else {
        serde_json::json!({ "stage": 2, "overlap_comm": true, "contiguous_gradients": true })
    };
    let doc = serde_json::json!({
        "zero_optimization": zero,
        "bf16": { "enabled": "auto" },
        "fp16": { "enabled": "auto" },
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "wall_clock_breakdown": false
    });
    serde_json::to_string_pretty(&doc).expect("serialise") + "\n"
}

/// The machines the job is launched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub gpus_per_node: u32,
    pub nodes: u32,
    /// Address of node 0; needed when there is more than one node.
    pub main_process_ip: Option<String>,
    pub main_process_port: u16,
}

/// `launch.sh`: runs on every node with `MACHINE_RANK` set (0 on the main node); `accelerate launch`,
/// with the `torchrun` equivalent as comments.
pub fn launch_script(cluster: &Cluster, config_file: &str) -> Result<String> {
    if cluster.gpus_per_node == 0 || cluster.nodes == 0 {
        return Err(ExportError::Invalid(
            "a cluster needs at least one node with one GPU".into(),
        ));
    }
    let ip = match (&cluster.main_process_ip, cluster.nodes) {
        (Some(ip), _) if !ip.trim().is_empty() => ip.clone(),
        (_, 1) => "127.0.0.1".into(),
        _ => {
            return Err(ExportError::Invalid(
                "more than one node needs the address of the main node".into(),
            ))
        }
    };
    let total = cluster.gpus_per_node * cluster.nodes;
    let config = quote(config_file);
    let ip = quote(&ip);
    let port = cluster.main_process_port;
    let nodes = cluster.nodes;
    let per_node = cluster.gpus_per_node;
    Ok(format!(
        "#!/usr/bin/env bash\n\
# Trains this export's job with Axolotl on {nodes} node(s) x {per_node} GPU(s).\n\
# Run it on every node, with MACHINE_RANK=0 on {ip} and 1..{last} on the others.\n\
set -euo pipefail\n\
cd \"$(dirname \"$0\")\"\n\
MACHINE_RANK=\"${{MACHINE_RANK:-0}}\"\n\
\n\
accelerate launch \\\n  --num_processes {total} \\\n  --num_machines {nodes} \\\n  --machine_rank \"$MACHINE_RANK\" \\\n  --main_process_ip {ip} \\\n  --main_process_port {port} \\\n  -m axolotl.cli.train {config}\n\
\n\
# The same with torchrun:\n\
# torchrun --nproc_per_node {per_node} --nnodes {nodes} --node_rank \"$MACHINE_RANK\" \\\n\
#   --master_addr {ip} --master_port {port} -m axolotl.cli.train {config}\n",
        last = nodes.saturating_sub(1).max(1),
    ))
}

/// One JSONL line of a chat dataset in the layout the config's `chat_template` entry reads.
pub fn chat_row(messages: &[(&str, &str)]) -> String {
    let messages: Vec<_> = messages
        .iter()
        .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
        .collect();
    serde_json::json!({ "messages": messages }).to_string()
}

/// One JSONL line of a text dataset (`type: completion`, `field: text`).
pub fn text_row(text: &str) -> String {
    serde_json::json!({ "text": text }).to_string()
}
