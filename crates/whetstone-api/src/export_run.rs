//! A finished run leaving the app in the forms people use: the PEFT adapter, merged weights, GGUF
//! (with the adapter alone as a llama.cpp LoRA), an Ollama Modelfile, or the same job for Axolotl on a
//! cluster; each with a model card, written into a new folder that appears whole or not at all.
//!
//! Exported models are checked before the folder is handed over: a few held-out prompts run through
//! the exported file and through the in-app model, and the greedy answers and perplexities are shown
//! side by side, so a template or end-token mismatch is caught here rather than by the user's users.

use crate::error::{Error, Result};
use crate::jobs::{JobSpec, JOB_FILE};
use crate::training::{load_adapter, load_examples, load_model, pad_id, to_train, LoadedModel};
use crate::Api;
use candle_core::quantized::gguf_file;
use candle_core::DType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use whetstone_data::{read_training_rows, Message, RowBody, Tokenizer};
use whetstone_engine::batch::collate;
use whetstone_engine::generate::SamplingOptions;
use whetstone_engine::gguf_write::{self, GgufQuant, GgufSummary};
use whetstone_engine::merge;
use whetstone_engine::quant::QuantMode;
use whetstone_engine::{Adapter, LoraCtx, ModelFiles};
use whetstone_export::artifacts::{AxolotlExport, Artifacts};
use whetstone_export::axolotl::{self, Cluster, DatasetKind, JobInput, Length, Method, Parallelism, Schedule};
use whetstone_export::card::{CardInput, CleaningStep, DataInput, FilesInput, ResultsInput, TrainingInput};
use whetstone_export::modelfile::{create_command, run_command, Modelfile, Parameters};
use whetstone_export::probe::{probe_with_system, probe_without_system, ProbeMessage, ProbeRenderings, PROBE_BOS, PROBE_EOS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The adapter in PEFT's layout, for transformers, vLLM and Ollama's ADAPTER.
    Peft,
    /// Base and adapter folded into one HF folder of safetensors.
    Merged,
    /// The merged model as one GGUF file, plus the adapter alone as a llama.cpp LoRA GGUF.
    Gguf,
    /// The GGUF with a Modelfile and the commands that load it into Ollama.
    Ollama,
    /// The same job as an Axolotl config with its data, for a GPU cluster.
    Axolotl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "peft" | "adapter" => Ok(ExportFormat::Peft),
            "merged" | "hf" => Ok(ExportFormat::Merged),
            "gguf" => Ok(ExportFormat::Gguf),
            "ollama" => Ok(ExportFormat::Ollama),
            "axolotl" => Ok(ExportFormat::Axolotl),
            other => Err(Error::InvalidInput(format!("unknown export format `{other}`: use peft, merged, gguf, ollama or axolotl"))),
        }
    }
}

/// What to export, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RunExport {
    pub run: i64,
    pub format: ExportFormat,
    /// A new or empty folder; one that holds anything is refused unless `overwrite` is set.
    pub out: PathBuf,
    #[serde(default)]
    pub overwrite: bool,
    /// Merged weights' dtype: `f32`, `f16` or `bf16` (default f16).
    #[serde(default)]
    pub dtype: Option<String>,
    /// GGUF block type: `f16`, `q8_0` or `q4_k_m` (default q8_0).
    #[serde(default)]
    pub quant: Option<GgufQuant>,
    /// Skip re-running prompts through the exported model.
    #[serde(default)]
    pub skip_check: bool,
    /// Axolotl: how many nodes, GPUs per node, and how to spread the job.
    #[serde(default)]
    pub nodes: Option<u32>,
    #[serde(default)]
    pub gpus_per_node: Option<u32>,
    #[serde(default)]
    pub parallelism: Option<String>,
    /// Axolotl: the address of node 0 when there is more than one node.
    #[serde(default)]
    pub main_process_ip: Option<String>,
}

/// One held-out prompt answered by the in-app model and by the exported file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct CheckedPrompt {
    pub prompt: String,
    pub in_app: String,
    pub exported: String,
    pub same: bool,
}

/// The round-trip check of an exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RoundTrip {
    /// The exported file or folder that was loaded.
    pub checked: String,
    pub prompts: Vec<CheckedPrompt>,
    /// Perplexity on the same held-out rows' answers.
    pub in_app_perplexity: f64,
    pub exported_perplexity: f64,
    pub rows: usize,
    /// Largest difference of the next-token logits after the first prompt.
    pub max_logit_diff: f32,
    /// Whether both tokenize the prompts to the same ids.
    pub same_prompt_ids: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RunExportReport {
    pub format: ExportFormat,
    pub out: String,
    /// Files written, relative to `out`.
    pub files: Vec<String>,
    pub gguf: Option<GgufSummary>,
    pub round_trip: Option<RoundTrip>,
    /// Commands to use the export (e.g. `ollama create`).
    pub commands: Vec<String>,
    pub warnings: Vec<String>,
}

/// A stage of an export, for progress bars.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ExportProgress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
}

const PROMPTS_CHECKED: usize = 3;
const ROWS_MEASURED: usize = 8;
const CHECK_TOKENS: usize = 24;

/// A finished run's job, adapter and base model files: what exports and evaluations start from.
pub(crate) struct Source {
    pub(crate) spec: JobSpec,
    pub(crate) adapter_dir: PathBuf,
    files: ModelFiles,
    run: crate::Run,
}

impl Api {
    /// Exports run `req.run` as `req.format` into `req.out`.
    pub fn export_run(&self, req: &RunExport) -> Result<RunExportReport> {
        self.export_run_with_progress(req, &mut |_| {})
    }

    pub fn export_run_with_progress(&self, req: &RunExport, progress: &mut dyn FnMut(&ExportProgress)) -> Result<RunExportReport> {
        let src = self.export_source(req.run)?;
        let out = req.out.clone();
        if out.exists() && !req.overwrite && !whetstone_files::is_empty_dir(&out).unwrap_or(false) {
            return Err(Error::ExportFolderNotEmpty { path: out });
        }
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io { action: "create", path: parent.to_path_buf(), source })?;
        }
        let tmp = whetstone_files::temp_dir_beside(&out).map_err(|source| Error::Io { action: "create a folder beside", path: out.clone(), source })?;
        let result = self.fill_export(req, &src, &tmp, progress);
        let mut report = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        whetstone_files::replace_dir(&tmp, &out).map_err(|source| Error::Io { action: "move the export into", path: out.clone(), source })?;
        report.out = out.display().to_string();
        if let Some(rt) = report.round_trip.as_mut() {
            let checked = if rt.checked == "." { out.clone() } else { out.join(&rt.checked) };
            rt.checked = checked.display().to_string();
        }
        Ok(report)
    }

    pub(crate) fn export_source(&self, id: i64) -> Result<Source> {
        let run = self.get_run(id)?;
        let dir = PathBuf::from(&run.out_dir);
        if !dir.is_dir() {
            return Err(Error::RunNotReady { run: id, reason: format!("its folder {} is gone (moved or deleted)", dir.display()) });
        }
        // A run without its adapter is not ready whatever else its folder holds (or lacks).
        let adapter_dir = dir.join("adapter");
        if !adapter_dir.join("adapter_config.json").is_file() {
            return Err(Error::RunNotReady {
                run: id,
                reason: format!("it has no saved adapter yet ({} is missing); let it finish or stop it first", adapter_dir.display()),
            });
        }
        let job = dir.join(JOB_FILE);
        let text = std::fs::read(&job).map_err(|source| Error::Io { action: "read", path: job.clone(), source })?;
        let spec: JobSpec = serde_json::from_slice(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", job.display())))?;
        let files = ModelFiles::detect(&spec.model)?;
        Ok(Source { spec, adapter_dir, files, run })
    }

    fn fill_export(&self, req: &RunExport, src: &Source, dir: &Path, progress: &mut dyn FnMut(&ExportProgress)) -> Result<RunExportReport> {
        let mut report = RunExportReport {
            format: req.format,
            out: String::new(),
            files: Vec::new(),
            gguf: None,
            round_trip: None,
            commands: Vec::new(),
            warnings: Vec::new(),
        };
        let mut stage = |name: &str, done: usize, total: usize| progress(&ExportProgress { stage: name.to_string(), done, total });
        stage("loading the run", 0, 1);
        let settings = &src.spec.settings;
        let mut card = self.card_input(src)?;
        match req.format {
            ExportFormat::Peft => {
                for name in ["adapter_model.safetensors", "adapter_config.json"] {
                    copy(&src.adapter_dir.join(name), &dir.join(name))?;
                    report.files.push(name.into());
                }
                card.adapter = true;
            }
            ExportFormat::Merged => {
                let dtype = parse_dtype(req.dtype.as_deref())?;
                let adapter = self.cpu_adapter(src)?;
                stage("merging the adapter into the base", 0, 1);
                let merged = merge::merge(&src.files, Some(&adapter), settings.quant, dtype)?;
                stage("writing model.safetensors", 0, 1);
                merge::write_safetensors(&dir.join("model.safetensors"), &merged.tensors)?;
                let config = match &src.files {
                    ModelFiles::HfDir(base) => base_config_json(base, dtype)?,
                    ModelFiles::Gguf(_) => merge::hf_config_json(&merged.config, dtype),
                };
                write_text(dir, "config.json", &pretty(&config)?, &mut report)?;
                report.files.push("model.safetensors".into());
                let tok = tokenizer_of(&src.files)?;
                write_tokenizer_files(&src.files, &tok, dir, &mut report)?;
                write_text(dir, "generation_config.json", &pretty(&generation_config(&tok))?, &mut report)?;
                card.files.weights_dir = Some(".".into());
                if !req.skip_check {
                    stage("checking the exported model", 0, 1);
                    report.round_trip = Some(self.round_trip(src, dir, ".")?);
                }
            }
            ExportFormat::Gguf | ExportFormat::Ollama => {
                let quant = req.quant.unwrap_or(GgufQuant::Q8_0);
                let adapter = self.cpu_adapter(src)?;
                stage("merging the adapter into the base", 0, 1);
                let merged = merge::merge(&src.files, Some(&adapter), settings.quant, DType::F32)?;
                let tok = tokenizer_of(&src.files)?;
                let (tok_md, warning) = tokenizer_metadata(&src.files, &tok)?;
                report.warnings.extend(warning);
                let name = model_name(src);
                let file = format!("{}-{}.gguf", safe_file_stem(&name), quant.as_str());
                let summary = gguf_write::write_model(&dir.join(&file), &merged, &name, quant, &tok_md, |done, total| {
                    stage("writing GGUF tensors", done, total)
                })?;
                report.files.push(file.clone());
                report.gguf = Some(summary);
                drop(merged);
                gguf_write::write_lora(&dir.join("adapter-lora.gguf"), &adapter, &self.model_config(src)?, &format!("{name} LoRA"))?;
                report.files.push("adapter-lora.gguf".into());
                card.files.gguf = Some(file.clone());
                if req.format == ExportFormat::Ollama {
                    let ollama_name = safe_file_stem(&name).to_ascii_lowercase();
                    let modelfile = modelfile_for(&tok, &file, card.base_model_license.clone())?;
                    let text = modelfile.render()?;
                    write_text(dir, "Modelfile", &text, &mut report)?;
                    let create = create_command(&ollama_name, "Modelfile")?;
                    let run = run_command(&ollama_name)?;
                    write_text(dir, "ollama.sh", &format!("#!/usr/bin/env bash\n# Loads this export into Ollama and starts a chat with it.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\n{create}\n{run}\n"), &mut report)?;
                    report.commands.push(create);
                    report.commands.push(run);
                    card.files.modelfile = Some("Modelfile".into());
                    card.files.ollama_name = Some(ollama_name);
                } else {
                    report.commands.push(format!("llama-cli -m {file} -cnv"));
                }
                if !req.skip_check {
                    stage("checking the exported model", 0, 1);
                    report.round_trip = Some(self.round_trip(src, dir, &file)?);
                }
            }
            ExportFormat::Axolotl => {
                let artifacts = Artifacts { axolotl: Some(self.axolotl_export(req, src)?), ..Artifacts::default() };
                for (path, text) in artifacts.files()? {
                    let full = dir.join(&path);
                    if let Some(p) = full.parent() {
                        std::fs::create_dir_all(p).map_err(|source| Error::Io { action: "create", path: p.to_path_buf(), source })?;
                    }
                    write_file(&full, text.as_bytes())?;
                    report.files.push(path.display().to_string());
                }
            }
        }
        if let Some(rt) = &report.round_trip {
            card.limitations.push(format!(
                "Checked after export: the exported model's perplexity on {} held-out rows is {:.3} (the in-app model's {:.3}); {} of {} greedy answers are identical.",
                rt.rows,
                rt.exported_perplexity,
                rt.in_app_perplexity,
                rt.prompts.iter().filter(|p| p.same).count(),
                rt.prompts.len()
            ));
        }
        let readme = whetstone_export::card::render(&card)?;
        write_text(dir, "README.md", &readme, &mut report)?;
        stage("done", 1, 1);
        Ok(report)
    }

    fn model_config(&self, src: &Source) -> Result<whetstone_engine::ModelConfig> {
        Ok(src.files.config()?)
    }

    fn cpu_adapter(&self, src: &Source) -> Result<Adapter> {
        let config = self.model_config(src)?;
        Ok(Adapter::load_peft(&src.adapter_dir, &config, &candle_core::Device::Cpu)?)
    }

    /// The card's facts from the run's record, job and metrics.
    fn card_input(&self, src: &Source) -> Result<CardInput> {
        let s = &src.spec.settings;
        let model = self.get_model(src.run.model_id).ok();
        // A GGUF base says its license in its header even when the model's record does not.
        let file_license = match &src.files {
            ModelFiles::Gguf(p) => crate::read_default_model(p).ok().flatten().and_then(|d| d.license),
            ModelFiles::HfDir(_) => None,
        };
        let license = model.as_ref().and_then(|m| m.license.clone()).or(file_license);
        let method = if s.quant == QuantMode::Nf4 { Method::Qlora } else { Method::Lora };
        let rows = read_training_rows(&src.spec.data).map(|r| r.len() as u64).ok();
        let eval_rows = src.spec.val.as_deref().and_then(|v| read_training_rows(v).ok()).map(|r| r.len() as u64);
        let metrics = crate::export::read_metrics(&Path::new(&src.run.out_dir).join("metrics.jsonl"))?;
        let last_train = metrics.iter().rev().find(|m| m.get("kind").and_then(|k| k.as_str()).unwrap_or("train") == "train");
        let final_train_loss = last_train.and_then(|m| m.get("loss")).and_then(|v| v.as_f64());
        let targets: Vec<String> = whetstone_engine::Target::parse_list(&s.targets)
            .map(|t| t.iter().map(|t| t.module().to_string()).collect())
            .unwrap_or_default();
        Ok(CardInput {
            model_name: Some(model_name(src)),
            base_model: Some(model.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| src.spec.model.display().to_string())),
            base_model_license: license.clone(),
            commercial_use: model.as_ref().and_then(|m| m.commercial_use).map(|c| if c { "allowed".to_string() } else { "not allowed".to_string() }),
            license,
            adapter: false,
            method: Some(method),
            data: Some(match self.data_provenance(&src.spec.data) {
                Some((source, rows_imported, cleaning)) => DataInput { source: Some(source), rows_imported, cleaning, train_rows: rows, eval_rows },
                None => DataInput { source: Some(src.spec.data.display().to_string()), rows_imported: rows, cleaning: Vec::new(), train_rows: rows, eval_rows },
            }),
            training: Some(TrainingInput {
                lora_r: Some(s.lora_r as u32),
                lora_alpha: Some(s.lora_alpha),
                lora_dropout: Some(s.lora_dropout),
                target_modules: targets,
                learning_rate: Some(s.lr),
                schedule: Some(format!("{:?}", s.scheduler).to_lowercase()),
                warmup_steps: Some(s.warmup as u32),
                steps: Some(src.run.step),
                epochs: Some(s.epochs as f64),
                micro_batch_size: Some(s.batch as u32),
                gradient_accumulation_steps: Some(s.grad_accum as u32),
                max_length: Some(s.max_len as u32),
                base_quantisation: Some(s.quant.as_str().to_string()),
            }),
            results: Some(ResultsInput {
                final_train_loss: final_train_loss.or(src.run.last_loss),
                best_eval_loss: src.run.best_eval_loss,
                best_eval_step: src.run.best_step,
                perplexity: src.run.best_eval_loss.map(f64::exp),
                metrics: self.card_metrics(src.run.id),
                review: self.card_review(src.run.id),
            }),
            intended_use: None,
            limitations: Vec::new(),
            files: FilesInput::default(),
            ..CardInput::default()
        })
    }

    /// Where a run's rows came from when they are an imported dataset's version: the dataset, the
    /// rows first imported, and every step from the import to that version with its row counts.
    fn data_provenance(&self, data: &Path) -> Option<(String, Option<u64>, Vec<CleaningStep>)> {
        let rel = data.strip_prefix(self.datasets_dir()).ok()?;
        let mut parts = rel.iter();
        let id: i64 = parts.next()?.to_str()?.parse().ok()?;
        let version: u32 = parts.next()?.to_str()?.strip_prefix('v')?.strip_suffix(".train.jsonl")?.parse().ok()?;
        let dataset = self.get_dataset(id).ok()?;
        let versions = self.store().list_dataset_versions(id).ok()?;
        let mut chain = Vec::new();
        let mut at = Some(version);
        while let Some(n) = at {
            let v = versions.iter().find(|v| v.version == n)?;
            chain.push(v.clone());
            at = v.parent;
        }
        chain.reverse();
        let mut steps = Vec::new();
        let mut before: Option<u64> = None;
        let mut imported = None;
        for v in &chain {
            for step in v.steps.as_array().into_iter().flatten() {
                let kind = step.get("step").and_then(|s| s.as_str()).unwrap_or("step");
                let described = match kind {
                    "import" => {
                        imported = step.get("rows").and_then(|r| r.as_u64());
                        format!(
                            "import of {} ({} rows read, {} rejected with line and reason)",
                            step.get("source").and_then(|s| s.as_str()).unwrap_or("a file"),
                            step.get("rows").and_then(|r| r.as_u64()).unwrap_or(0),
                            step.get("rejected").and_then(|r| r.as_u64()).unwrap_or(0)
                        )
                    }
                    "clean" => format!("cleaning (duplicates, near-duplicates, personal data, length): {}", step.get("counts").map(|c| c.to_string()).unwrap_or_default()),
                    "split" => format!("split into train/validation/test: {}", step.get("counts").map(|c| c.to_string()).unwrap_or_default()),
                    other => other.to_string(),
                };
                steps.push(CleaningStep { step: described, rows_before: before.or(imported), rows_after: Some(v.rows) });
            }
            before = Some(v.rows);
        }
        Some((format!("dataset `{}`, version {version}", dataset.name), imported, steps))
    }

    fn axolotl_export(&self, req: &RunExport, src: &Source) -> Result<AxolotlExport> {
        let s = &src.spec.settings;
        let rows = read_training_rows(&src.spec.data)?;
        let kind = if rows.iter().all(|r| matches!(r.body, RowBody::Chat(_))) {
            DatasetKind::Chat
        } else if rows.iter().all(|r| matches!(r.body, RowBody::Text(_))) {
            DatasetKind::Text
        } else {
            return Err(Error::InvalidInput(format!(
                "{} mixes conversations and plain text; Axolotl takes one kind per dataset",
                src.spec.data.display()
            )));
        };
        let jsonl = |rows: &[whetstone_data::DataRow]| -> String {
            rows.iter()
                .map(|r| match &r.body {
                    RowBody::Chat(m) => {
                        let pairs: Vec<(&str, &str)> = m.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
                        axolotl::chat_row(&pairs)
                    }
                    RowBody::Text(t) => axolotl::text_row(t),
                })
                .map(|l| l + "\n")
                .collect()
        };
        let eval_rows = src.spec.val.as_deref().map(read_training_rows).transpose()?;
        let parallelism = match req.parallelism.as_deref().unwrap_or("data_parallel") {
            "data_parallel" | "ddp" => Parallelism::DataParallel,
            "zero2" | "deepspeed_zero2" => Parallelism::DeepspeedZero2,
            "zero3" | "deepspeed_zero3" => Parallelism::DeepspeedZero3,
            "fsdp" => Parallelism::Fsdp,
            other => return Err(Error::InvalidInput(format!("unknown parallelism `{other}`: use ddp, zero2, zero3 or fsdp"))),
        };
        let base_model = self
            .get_model(src.run.model_id)
            .ok()
            .and_then(|m| m.origin.repo_id.clone())
            .or_else(|| hub_repo_of_gguf(&src.spec.model))
            .unwrap_or_else(|| src.spec.model.display().to_string());
        let job = JobInput {
            base_model,
            method: if s.quant == QuantMode::Nf4 { Method::Qlora } else { Method::Lora },
            lora_r: s.lora_r as u32,
            lora_alpha: s.lora_alpha,
            lora_dropout: s.lora_dropout,
            target_modules: whetstone_engine::Target::parse_list(&s.targets)?.iter().map(|t| t.module().to_string()).collect(),
            dataset: kind,
            train_file: "data/train.jsonl".into(),
            eval_file: eval_rows.as_ref().map(|_| "data/eval.jsonl".into()),
            val_set_size: None,
            eval_steps: (eval_rows.is_some() && s.eval_every > 0).then_some(s.eval_every as u32),
            sequence_len: s.max_len as u32,
            micro_batch_size: s.batch as u32,
            gradient_accumulation_steps: s.grad_accum as u32,
            length: match s.steps {
                Some(n) => Length::Steps(n),
                None => Length::Epochs(s.epochs as f64),
            },
            learning_rate: s.lr,
            schedule: match format!("{:?}", s.scheduler).to_lowercase().as_str() {
                "cosine" => Schedule::Cosine,
                "constant" => Schedule::Constant,
                _ => Schedule::Linear,
            },
            warmup_steps: s.warmup as u32,
            weight_decay: s.weight_decay,
            max_grad_norm: s.max_grad_norm,
            seed: s.seed,
            gradient_checkpointing: s.grad_checkpoint,
            output_dir: "./outputs".into(),
            decoder_layer_class: Some(decoder_layer_class(self.model_config(src)?.architecture).into()),
        };
        Ok(AxolotlExport {
            job,
            parallelism,
            cluster: Cluster {
                gpus_per_node: req.gpus_per_node.unwrap_or(1),
                nodes: req.nodes.unwrap_or(1),
                main_process_ip: req.main_process_ip.clone(),
                main_process_port: 29500,
            },
            train_jsonl: jsonl(&rows),
            eval_jsonl: eval_rows.as_deref().map(jsonl),
        })
    }

    /// Loads the in-app model (base + adapter, as trained) and the exported one, and compares them on
    /// held-out rows: greedy answers, perplexity of the answers, and the first prompt's next-token logits.
    fn round_trip(&self, src: &Source, dir: &Path, exported: &str) -> Result<RoundTrip> {
        let in_app = load_model(&src.spec.model, src.spec.settings.quant)?;
        let adapter = load_adapter(&in_app, &src.adapter_dir)?;
        let out = load_model(&dir.join(exported), QuantMode::Native)?;
        let held_out = src.spec.val.clone().unwrap_or_else(|| src.spec.data.clone());
        let rows = read_training_rows(&held_out)?;
        let prompts: Vec<String> = rows
            .iter()
            .filter_map(|r| match &r.body {
                RowBody::Chat(m) => m.iter().rev().find(|m| m.role == whetstone_data::Role::User).map(|m| m.content.clone()),
                RowBody::Text(_) => None,
            })
            .take(PROMPTS_CHECKED)
            .collect();
        let opts = SamplingOptions { temperature: 0.0, top_p: 1.0, max_new_tokens: CHECK_TOKENS, seed: 0 };
        let mut checked = Vec::new();
        let mut same_ids = true;
        let mut max_logit_diff = 0f32;
        for (i, p) in prompts.iter().enumerate() {
            let a = crate::training::generate(&in_app, Some(&adapter), p, &opts, |_| {})?;
            let b = crate::training::generate(&out, None, p, &opts, |_| {})?;
            let ids_a = crate::training::prompt_ids(&in_app, p)?;
            let ids_b = crate::training::prompt_ids(&out, p)?;
            same_ids &= ids_a == ids_b;
            if i == 0 {
                max_logit_diff = next_logit_diff(&in_app, Some(&adapter), &ids_a, &out, &ids_b)?;
            }
            checked.push(CheckedPrompt { prompt: p.clone(), same: a == b, in_app: a, exported: b });
        }
        let (ppl_a, n) = perplexity(&in_app, Some(&adapter), &held_out, src.spec.settings.max_len)?;
        let (ppl_b, _) = perplexity(&out, None, &held_out, src.spec.settings.max_len)?;
        Ok(RoundTrip {
            checked: exported.to_string(),
            prompts: checked,
            in_app_perplexity: ppl_a,
            exported_perplexity: ppl_b,
            rows: n,
            max_logit_diff,
            same_prompt_ids: same_ids,
        })
    }
}

fn next_logit_diff(a: &LoadedModel, adapter: Option<&Adapter>, ids_a: &[u32], b: &LoadedModel, ids_b: &[u32]) -> Result<f32> {
    let last = |m: &LoadedModel, ad: Option<&Adapter>, ids: &[u32]| -> Result<candle_core::Tensor> {
        let ctx = ad.map(|ad| LoraCtx { adapter: ad, train: false, dropout: None });
        let x = engine(candle_core::Tensor::new(ids, &m.decoder.device).and_then(|t| t.unsqueeze(0)))?;
        let logits = m.decoder.forward(&x, None, ctx.as_ref())?;
        engine(logits.get(0).and_then(|l| l.get(ids.len() - 1)).and_then(|l| l.to_dtype(DType::F32)).and_then(|l| l.to_device(&candle_core::Device::Cpu)))
    };
    let la = last(a, adapter, ids_a)?;
    let lb = last(b, None, ids_b)?;
    if la.dims() != lb.dims() {
        return Ok(f32::INFINITY);
    }
    engine((la - lb).and_then(|d| d.abs()).and_then(|d| d.max(0)).and_then(|d| d.to_scalar::<f32>()))
}

fn engine<T>(r: candle_core::Result<T>) -> Result<T> {
    r.map_err(|e| Error::Engine(e.into()))
}

/// Perplexity of the answers of the first rows of `data`, and how many rows were measured.
fn perplexity(model: &LoadedModel, adapter: Option<&Adapter>, data: &Path, max_len: usize) -> Result<(f64, usize)> {
    let kept = load_examples(model, data, max_len, false)?.kept;
    let examples: Vec<_> = kept.into_iter().take(ROWS_MEASURED).map(|(_, e)| to_train(e)).collect();
    let ctx = adapter.map(|a| LoraCtx { adapter: a, train: false, dropout: None });
    let (mut sum, mut tokens) = (0f64, 0usize);
    for chunk in examples.chunks(4) {
        let refs: Vec<(&[u32], &[bool])> = chunk.iter().map(|e| (e.ids.as_slice(), e.trained.as_slice())).collect();
        let b = collate(&refs, pad_id(&model.tokenizer), &model.decoder.device)?;
        for (loss, n) in model.decoder.row_losses(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, ctx.as_ref())? {
            if n > 0 {
                sum += loss * n as f64;
                tokens += n;
            }
        }
    }
    if tokens == 0 {
        return Err(Error::InvalidInput(format!("{}: no answer tokens to measure the export on", data.display())));
    }
    Ok(((sum / tokens as f64).exp(), examples.len()))
}

fn decoder_layer_class(arch: whetstone_engine::Architecture) -> &'static str {
    match arch {
        whetstone_engine::Architecture::Llama => "LlamaDecoderLayer",
        whetstone_engine::Architecture::Mistral => "MistralDecoderLayer",
        whetstone_engine::Architecture::Qwen2 => "Qwen2DecoderLayer",
        whetstone_engine::Architecture::Gemma => "GemmaDecoderLayer",
        whetstone_engine::Architecture::Gemma2 => "Gemma2DecoderLayer",
    }
}

fn model_name(src: &Source) -> String {
    let base = src.spec.model.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    format!("{base}-run{}", src.run.id)
}

/// A name usable as a file name and an Ollama model name.
fn safe_file_stem(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    s.trim_matches(|c| c == '-' || c == '.').to_string()
}

fn parse_dtype(s: Option<&str>) -> Result<DType> {
    match s.unwrap_or("f16").to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" | "fp16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        other => Err(Error::InvalidInput(format!("unknown dtype `{other}`: use f32, f16 or bf16"))),
    }
}

fn tokenizer_of(files: &ModelFiles) -> Result<Tokenizer> {
    Ok(match files {
        ModelFiles::Gguf(p) => Tokenizer::from_gguf_file(p)?,
        ModelFiles::HfDir(d) => Tokenizer::from_hf_dir(d)?,
    })
}

/// The tokenizer's GGUF keys: a GGUF base's own, copied as they are; an HF base's, converted.
impl Api {
    /// People's verdict from the newest closed review of the run's tuned model against its base:
    /// only a closed session has revealed which answer was which. Machine raters are left out.
    fn card_review(&self, run: i64) -> Option<whetstone_export::card::Review> {
        use crate::evaluation::Side;
        let evaluations: Vec<i64> = self.list_evaluations(Some(run)).ok()?.iter().map(|e| e.id).collect();
        let session = self
            .review_sessions()
            .ok()?
            .into_iter()
            .filter(|s| s.closed && evaluations.contains(&s.evaluation_id) && s.baseline == Side::Base && s.candidate == Side::Tuned)
            .max_by_key(|s| s.id)?;
        let results = self.review_results(session.id).ok()?;
        let human = &results.human;
        (human.ratings > 0).then(|| whetstone_export::card::Review {
            raters: human.raters,
            items: session.items,
            preferred_tuned: human.preference.candidate,
            preferred_base: human.preference.baseline,
            ties: human.preference.tie,
            agreement_alpha: human.preference.agreement.nominal,
        })
    }

    /// The run's latest automatic evaluation as model-card rows, tuned beside base; none when the
    /// run was never evaluated.
    fn card_metrics(&self, run: i64) -> Vec<whetstone_export::card::Metric> {
        use crate::evaluation::Side;
        let Some(eval) = self.list_evaluations(Some(run)).ok().and_then(|list| list.into_iter().max_by_key(|e| e.id)) else {
            return Vec::new();
        };
        let side = |which: Side| eval.sides.iter().find(|s| s.side == which);
        let (tuned, base) = (side(Side::Tuned), side(Side::Base));
        let note = format!("evaluation #{} on {} items ({})", eval.id, eval.items, eval.source);
        let mut rows = vec![("Perplexity", tuned.and_then(|s| s.perplexity), base.and_then(|s| s.perplexity))];
        let text = |s: Option<&crate::evaluation::SideMetrics>, f: fn(&crate::evaluation::TextMetrics) -> f64| {
            s.and_then(|s| s.text.as_ref()).map(f)
        };
        let figures: [(&str, fn(&crate::evaluation::TextMetrics) -> f64); 8] = [
            ("BLEU", |t| t.bleu),
            ("chrF", |t| t.chrf),
            ("ROUGE-1", |t| t.rouge1),
            ("ROUGE-2", |t| t.rouge2),
            ("ROUGE-L", |t| t.rouge_l),
            ("METEOR", |t| t.meteor),
            ("Token F1", |t| t.f1),
            ("Exact match", |t| t.exact_match),
        ];
        for (name, f) in figures {
            rows.push((name, text(tuned, f), text(base, f)));
        }
        // Where the figures come from is said once, on the first row.
        rows.into_iter()
            .filter(|(_, t, b)| t.is_some() || b.is_some())
            .enumerate()
            .map(|(i, (name, tuned, base))| whetstone_export::card::Metric {
                name: name.into(),
                tuned,
                base,
                note: (i == 0).then(|| note.clone()),
            })
            .collect()
    }
}

/// The hub repo a GGUF file was converted from, when the catalog knows it: Axolotl loads HF weights,
/// not GGUF, so a job exported from a GGUF base must name the repo. llama.cpp's converter records
/// the organisation (`general.organization`) and names files `<repo name>.<quant>.gguf`.
fn hub_repo_of_gguf(path: &Path) -> Option<String> {
    if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
        return None;
    }
    let mut f = std::fs::File::open(path).ok()?;
    let content = gguf_file::Content::read(&mut f).ok()?;
    let org = content.metadata.get("general.organization")?.to_string().ok()?.clone();
    let stem = path.file_stem()?.to_str()?;
    let names = [stem, stem.split('.').next().unwrap_or(stem)];
    names
        .iter()
        .find_map(|name| whetstone_hub::catalog::find(&format!("{org}/{name}")))
        .map(|e| e.repo.clone())
}

fn tokenizer_metadata(files: &ModelFiles, tok: &Tokenizer) -> Result<(Vec<(String, gguf_file::Value)>, Option<String>)> {
    match files {
        ModelFiles::Gguf(p) => {
            let mut f = std::fs::File::open(p).map_err(|source| Error::Io { action: "read", path: p.clone(), source })?;
            let ct = gguf_file::Content::read(&mut f).map_err(|e| Error::InvalidModelFile { path: p.clone(), reason: e.to_string() })?;
            let mut md: Vec<(String, gguf_file::Value)> =
                ct.metadata.into_iter().filter(|(k, _)| k.starts_with("tokenizer.") || k == "general.license").collect();
            md.sort_by(|a, b| a.0.cmp(&b.0));
            Ok((md, None))
        }
        ModelFiles::HfDir(_) => Ok(tok.gguf_metadata()?),
    }
}

const HF_TOKENIZER_FILES: &[&str] = &["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "tokenizer.model"];

fn write_tokenizer_files(files: &ModelFiles, tok: &Tokenizer, dir: &Path, report: &mut RunExportReport) -> Result<()> {
    match files {
        ModelFiles::HfDir(base) => {
            for name in HF_TOKENIZER_FILES {
                if base.join(name).is_file() {
                    copy(&base.join(name), &dir.join(name))?;
                    report.files.push(name.to_string());
                }
            }
        }
        ModelFiles::Gguf(_) => {
            for (name, text) in tok.hf_files()? {
                write_text(dir, name, &text, report)?;
            }
        }
    }
    Ok(())
}

fn generation_config(tok: &Tokenizer) -> serde_json::Value {
    serde_json::json!({
        "bos_token_id": tok.bos_id(),
        "eos_token_id": tok.stop_ids(),
        "pad_token_id": tok.pad_id(),
    })
}

fn base_config_json(base: &Path, dtype: DType) -> Result<serde_json::Value> {
    let p = base.join("config.json");
    let text = std::fs::read(&p).map_err(|source| Error::Io { action: "read", path: p.clone(), source })?;
    let mut v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", p.display())))?;
    v["torch_dtype"] = serde_json::Value::String(merge::dtype_name(dtype).into());
    if let Some(o) = v.as_object_mut() {
        o.remove("quantization_config");
    }
    Ok(v)
}

/// The Modelfile for `gguf`, with the chat format recognised from how the model's own template renders
/// the probe conversations.
fn modelfile_for(tok: &Tokenizer, gguf: &str, license: Option<String>) -> Result<Modelfile> {
    let source = tok.chat_template().source();
    let probe = whetstone_data::ChatTemplate::new(source, Some(PROBE_BOS), Some(PROBE_EOS))?;
    let render = |msgs: Vec<ProbeMessage>| -> std::result::Result<String, whetstone_data::DataError> {
        let m: Vec<Message> = msgs
            .iter()
            .map(|p| Message::new(whetstone_data::Role::parse(p.role).unwrap_or(whetstone_data::Role::User), p.content))
            .collect();
        probe.render(&m, true)
    };
    let renderings = ProbeRenderings { without_system: render(probe_without_system())?, with_system: render(probe_with_system()).ok() };
    let bos = tok.bos_id().and_then(|i| tok.id_to_token(i)).unwrap_or_default();
    let eos = tok.eos_id().and_then(|i| tok.id_to_token(i)).unwrap_or_default();
    let template = whetstone_export::template::translate(&renderings, &bos, &eos)?;
    let mut m = Modelfile::new(format!("./{gguf}"), &template);
    m.license = license;
    m.parameters = Parameters { temperature: Some(0.7), top_p: Some(0.9), ..Parameters::default() };
    Ok(m)
}

fn pretty(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    whetstone_files::write_synced(path, bytes).map_err(|source| Error::Io { action: "write", path: path.to_path_buf(), source })
}

fn write_text(dir: &Path, name: &str, text: &str, report: &mut RunExportReport) -> Result<()> {
    write_file(&dir.join(name), text.as_bytes())?;
    report.files.push(name.to_string());
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|source| Error::Io { action: "read", path: from.to_path_buf(), source })?;
    write_file(to, &bytes)
}

#[cfg(test)]
mod tests {
    use super::hub_repo_of_gguf;
    use candle_core::quantized::gguf_file::{self, Value};

    fn gguf_with(path: &std::path::Path, organization: &str) {
        let org = Value::String(organization.into());
        let arch = Value::String("llama".into());
        let mut f = std::fs::File::create(path).unwrap();
        gguf_file::write(&mut f, &[("general.architecture", &arch), ("general.organization", &org)], &[]).unwrap();
    }

    #[test]
    fn a_converted_gguf_names_the_catalog_repo_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let known = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
        gguf_with(&known, "HuggingFaceTB");
        assert_eq!(hub_repo_of_gguf(&known).as_deref(), Some("HuggingFaceTB/SmolLM2-135M-Instruct"));

        let unknown = dir.path().join("my-model.Q8_0.gguf");
        gguf_with(&unknown, "Someone");
        assert_eq!(hub_repo_of_gguf(&unknown), None, "a repo the catalog does not list is not guessed");
        assert_eq!(hub_repo_of_gguf(&dir.path().join("absent.gguf")), None);
    }
}
