//! Settings files in the words people copy from PEFT and the HF Trainer (`r`, `lora_alpha`,
//! `per_device_train_batch_size`, `lr_scheduler_type`, ...) as well as Whetstone's own flag names,
//! in TOML, YAML or JSON.
//!
//! An unknown key is an error that names it and the closest known one, since a misspelt
//! `learning_rat` silently ignored would train with the default. A known key that does not apply
//! here (`fp16` on a CPU, `logging_steps`) is a warning: the file still trains, and says what was
//! not used.

use crate::error::{Error, Result};
use crate::settings::TrainSettings;
use serde_json::{Map, Value};
use std::path::Path;

/// Settings read from a file, with what in it was not used.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsFile {
    pub settings: TrainSettings,
    pub warnings: Vec<String>,
}

/// Names PEFT and the HF Trainer use, and the Whetstone setting each one is.
const ALIASES: &[(&str, &str)] = &[
    ("r", "lora-r"),
    ("lora_r", "lora-r"),
    ("lora_alpha", "lora-alpha"),
    ("lora_dropout", "lora-dropout"),
    ("target_modules", "targets"),
    ("use_rslora", "rslora"),
    ("num_train_epochs", "epochs"),
    ("max_steps", "steps"),
    ("per_device_train_batch_size", "batch"),
    ("gradient_accumulation_steps", "grad-accum"),
    ("learning_rate", "lr"),
    ("weight_decay", "weight-decay"),
    ("warmup_steps", "warmup"),
    ("warmup_ratio", "warmup-ratio"),
    ("lr_scheduler_type", "scheduler"),
    ("max_grad_norm", "max-grad-norm"),
    ("eval_steps", "eval-every"),
    ("save_steps", "save-every"),
    ("save_total_limit", "keep-checkpoints"),
    ("load_best_model_at_end", "load-best-at-end"),
    ("gradient_checkpointing", "grad-checkpoint"),
    ("max_seq_length", "max-len"),
    ("max_length", "max-len"),
];

/// Keys that are understood but either say what Whetstone does anyway, or do not apply to it.
const CHECKED: &[&str] = &[
    "bias",
    "task_type",
    "fp16",
    "bf16",
    "logging_steps",
    "eval_strategy",
    "evaluation_strategy",
    "save_strategy",
    "metric_for_best_model",
    "greater_is_better",
    "report_to",
    "output_dir",
];

/// The forms a settings file can take, told by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    /// `.toml`, `.yaml`/`.yml` or `.json`, in any case.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Ok(Format::Toml),
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            other => Err(Error::Settings(format!(
                "{}: cannot tell the format from the extension `{other}`: use .toml, .yaml or .json",
                path.display()
            ))),
        }
    }
}

/// `settings` as the text of a settings file in Whetstone's own names, which [`read`] (and so
/// `whet train --config`) takes back as the same settings.
///
/// TOML has no empty value, so an unset optional setting (`steps`, `warmup-ratio`, `threads`) is
/// left out there; read over the defaults it is unset again. YAML and JSON write it as null.
pub fn render(settings: &TrainSettings, format: Format) -> Result<String> {
    let failed = |e: String| Error::Internal(format!("the settings could not be written as {format:?}: {e}"));
    const HEAD: &str = "# Training settings for Whetstone: `whet train --config FILE` reads this file, and so does the\n\
                        # app's Open settings. Keys are `whet train`'s flag names; PEFT and HF Trainer names\n\
                        # (r, lora_alpha, learning_rate, ...) are read too.\n";
    match format {
        Format::Json => serde_json::to_string_pretty(settings).map(|t| t + "\n").map_err(|e| failed(e.to_string())),
        Format::Yaml => serde_yaml::to_string(settings).map(|t| format!("{HEAD}{t}")).map_err(|e| failed(e.to_string())),
        Format::Toml => {
            let body = toml::to_string(settings).map_err(|e| failed(e.to_string()))?;
            let unset: Vec<&str> = [("steps", settings.steps.is_none()), ("warmup-ratio", settings.warmup_ratio.is_none()), ("threads", settings.threads.is_none())]
                .into_iter()
                .filter_map(|(k, none)| none.then_some(k))
                .collect();
            let note = if unset.is_empty() { String::new() } else { format!("# Left empty: {}.\n", unset.join(", ")) };
            Ok(format!("{HEAD}{note}{body}"))
        }
    }
}

/// Reads `path` by its extension (`.toml`, `.yaml`/`.yml`, `.json`).
pub fn read(path: &Path) -> Result<SettingsFile> {
    read_over(path, TrainSettings::default())
}

/// Reads `path` as [`read`] does, with the settings it leaves out taken from `base` (a preset).
pub fn read_over(path: &Path, base: TrainSettings) -> Result<SettingsFile> {
    let format = Format::from_path(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_text(&text, format, base).map_err(|e| match e {
        Error::Settings(m) => Error::Settings(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// The text of a settings file in `format`, read as [`read_over`] reads a file.
pub fn parse_text(text: &str, format: Format, base: TrainSettings) -> Result<SettingsFile> {
    let bad = |m: String| Error::Settings(m);
    let value: Value = match format {
        Format::Toml => toml::from_str::<toml::Value>(text).map_err(|e| bad(e.to_string())).and_then(|v| serde_json::to_value(v).map_err(|e| bad(e.to_string())))?,
        Format::Yaml => serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?,
        Format::Json => serde_json::from_str(text).map_err(|e| bad(e.to_string()))?,
    };
    let Value::Object(map) = value else {
        return Err(bad("a settings file holds one table of `key = value` settings".into()));
    };
    parse_over(map, cfg!(any(feature = "cuda", feature = "metal")), base)
}

/// Turns a table of settings into [`TrainSettings`]. `gpu_build` says whether half precision could
/// apply at all.
pub fn parse(map: Map<String, Value>, gpu_build: bool) -> Result<SettingsFile> {
    parse_over(map, gpu_build, TrainSettings::default())
}

/// [`parse`], with the settings the table leaves out taken from `base`.
pub fn parse_over(map: Map<String, Value>, gpu_build: bool, base: TrainSettings) -> Result<SettingsFile> {
    let own = own_keys();
    let mut out = Map::new();
    let mut warnings = Vec::new();
    let mut ratio: Option<f64> = None;
    for (key, value) in map {
        let normalized = key.replace('_', "-");
        if normalized == "device" {
            // Checked here so that the message names the key; the typed value would only say what is wrong.
            let text = value.as_str().ok_or_else(|| Error::Settings(format!("`{key}` must be text naming a device ({}), not {value}", crate::device::DeviceChoice::ACCEPTED)))?;
            if let Err(Error::Settings(why)) = text.parse::<crate::device::DeviceChoice>() {
                return Err(Error::Settings(format!("`{key} = \"{text}\"`: {why}")));
            }
        }
        if own.contains(&normalized.as_str()) && !ALIASES.iter().any(|(a, _)| *a == key) {
            out.insert(normalized, value);
            continue;
        }
        if let Some((_, ours)) = ALIASES.iter().find(|(a, _)| *a == key) {
            match *ours {
                "warmup-ratio" => {
                    let r = value.as_f64().filter(|r| (0.0..1.0).contains(r)).ok_or_else(|| Error::Settings(format!("`{key}` must be a fraction from 0 to below 1, not {value}")))?;
                    ratio = Some(r);
                }
                "targets" => {
                    out.insert("targets".into(), Value::String(targets(&value)?));
                }
                "steps" => {
                    // The Trainer's `max_steps = -1` means "use the epochs".
                    if value.as_i64() != Some(-1) {
                        out.insert("steps".into(), value);
                    }
                }
                "epochs" => {
                    let e = value.as_f64().ok_or_else(|| Error::Settings(format!("`{key}` must be a number, not {value}")))?;
                    if e.fract() != 0.0 {
                        warnings.push(format!("`{key} = {e}`: Whetstone trains whole epochs; {} will be used (or set max_steps)", e.ceil()));
                    }
                    out.insert("epochs".into(), Value::from(e.ceil() as u64));
                }
                "scheduler" => {
                    let s = value.as_str().unwrap_or_default();
                    let ours = match s {
                        "linear" | "cosine" | "constant" => s,
                        "constant_with_warmup" => "constant",
                        other => return Err(Error::Settings(format!("`{key} = \"{other}\"` is not available: use linear, cosine, constant or constant_with_warmup"))),
                    };
                    out.insert("scheduler".into(), Value::String(ours.into()));
                }
                other => {
                    out.insert(other.into(), value);
                }
            }
            continue;
        }
        if CHECKED.contains(&key.as_str()) {
            if let Some(w) = check(&key, &value, gpu_build)? {
                warnings.push(w);
            }
            continue;
        }
        return Err(Error::Settings(unknown(&key, &own)));
    }
    let mut merged = match serde_json::to_value(base) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    merged.extend(out);
    let mut settings: TrainSettings = serde_json::from_value(Value::Object(merged)).map_err(|e| Error::Settings(e.to_string()))?;
    if let Some(r) = ratio {
        if settings.warmup == 0 {
            settings.warmup_ratio = Some(r);
        } else {
            warnings.push("`warmup_ratio` is not used because `warmup_steps` is set, as in the HF Trainer".into());
        }
    }
    Ok(SettingsFile { settings, warnings })
}

fn targets(value: &Value) -> Result<String> {
    let names: Vec<String> = match value {
        Value::String(s) if s == "all-linear" => return Ok("q,k,v,o,gate,up,down".into()),
        Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| Error::Settings(format!("target_modules entries must be names, not {x}")))).collect::<Result<_>>()?,
        other => return Err(Error::Settings(format!("target_modules must be a list of module names, not {other}"))),
    };
    crate::lora::Target::parse_list(&names.join(","))?;
    Ok(names.join(","))
}

/// What a known key that is not a setting of ours means here: fine as it is, a warning, or an error
/// when it asks for something Whetstone does not do.
fn check(key: &str, value: &Value, gpu_build: bool) -> Result<Option<String>> {
    let s = value.as_str().unwrap_or_default();
    let refuse = |why: &str| Err(Error::Settings(format!("`{key} = {value}`: {why}")));
    match key {
        "bias" if s == "none" => Ok(None),
        "bias" => refuse("Whetstone trains LoRA weights only; use bias = \"none\""),
        "task_type" if s == "CAUSAL_LM" => Ok(None),
        "task_type" => refuse("Whetstone fine-tunes causal language models; use task_type = \"CAUSAL_LM\""),
        "fp16" | "bf16" if value.as_bool() == Some(false) => Ok(None),
        "fp16" | "bf16" if gpu_build => Ok(Some(format!("`{key}`: the precision follows the device (bf16 on a GPU, with f32 adapter weights); the setting is not used"))),
        "fp16" | "bf16" => Ok(Some(format!("`{key}`: this build trains on the CPU in f32; the setting is not used"))),
        "logging_steps" => Ok(Some("`logging_steps`: every step is logged; the setting is not used".into())),
        "eval_strategy" | "evaluation_strategy" | "save_strategy" => match s {
            "steps" | "no" => Ok(None),
            _ => refuse("Whetstone evaluates and saves every N steps (eval_steps, save_steps); use \"steps\""),
        },
        "metric_for_best_model" => match s {
            "loss" | "eval_loss" => Ok(None),
            _ => refuse("the best checkpoint is the one with the lowest validation loss; use \"eval_loss\""),
        },
        "greater_is_better" if value.as_bool() == Some(false) => Ok(None),
        "greater_is_better" => refuse("lower validation loss is better"),
        "report_to" => {
            let wants: Vec<&str> = match value {
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![s],
            };
            match wants.iter().find(|w| !matches!(**w, "none" | "tensorboard")) {
                Some(other) => refuse(&format!("`{other}` is not available here: use \"tensorboard\" (written by `whet runs export --tensorboard`) or \"none\"")),
                None => Ok(None),
            }
        }
        "output_dir" => Ok(Some("`output_dir`: the run folder is chosen with --out (or in the app); the setting is not used".into())),
        _ => Ok(None),
    }
}

/// Whetstone's own setting names (the CLI's flags).
fn own_keys() -> Vec<&'static str> {
    vec![
        "steps", "epochs", "lr", "batch", "grad-accum", "max-len", "lora-r", "lora-alpha", "lora-dropout", "targets", "rslora",
        "scheduler", "warmup", "warmup-ratio", "seed", "grad-checkpoint", "weight-decay", "max-grad-norm", "threads", "quant",
        "eval-every", "save-every", "keep-checkpoints", "patience", "min-delta", "load-best-at-end", "max-bad-steps",
        "strict-rows", "truncate-prompt", "device",
    ]
}

fn unknown(key: &str, own: &[&str]) -> String {
    let candidates = own.iter().copied().chain(ALIASES.iter().map(|(a, _)| *a)).chain(CHECKED.iter().copied());
    let best = candidates.map(|c| (distance(&key.to_ascii_lowercase(), c), c)).min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 3.max(key.len() / 3) => format!("unknown setting `{key}`; did you mean `{c}`?"),
        _ => format!("unknown setting `{key}`"),
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn peft_and_trainer_names_become_whetstone_settings() {
        let f = parse(
            table(serde_json::json!({
                "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"], "lora_dropout": 0.1, "bias": "none",
                "task_type": "CAUSAL_LM", "num_train_epochs": 3, "max_steps": -1, "per_device_train_batch_size": 2,
                "gradient_accumulation_steps": 8, "learning_rate": 1e-4, "weight_decay": 0.01, "warmup_ratio": 0.1,
                "lr_scheduler_type": "linear", "max_grad_norm": 0.5, "eval_steps": 25, "eval_strategy": "steps",
                "save_steps": 100, "save_total_limit": 3, "load_best_model_at_end": true, "metric_for_best_model": "eval_loss",
                "greater_is_better": false, "seed": 7, "gradient_checkpointing": true, "report_to": ["tensorboard"]
            })),
            false,
        )
        .unwrap();
        let s = f.settings;
        assert_eq!((s.lora_r, s.lora_alpha, s.lora_dropout, s.targets.as_str()), (16, 32.0, 0.1, "q_proj,v_proj"));
        assert_eq!((s.epochs, s.steps, s.batch, s.grad_accum), (3, None, 2, 8));
        assert_eq!((s.lr, s.weight_decay, s.warmup, s.warmup_ratio), (1e-4, 0.01, 0, Some(0.1)));
        assert_eq!(s.scheduler, crate::schedule::ScheduleKind::Linear);
        assert_eq!((s.max_grad_norm, s.eval_every, s.save_every, s.keep_checkpoints), (0.5, 25, 100, 3));
        assert!(s.load_best_at_end && s.grad_checkpoint);
        assert_eq!(s.seed, 7);
        assert_eq!(s.warmup_steps(200), 20);
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_the_closest_one() {
        let e = parse(table(serde_json::json!({"lerning_rate": 1e-4})), false).unwrap_err().to_string();
        assert!(e.contains("unknown setting `lerning_rate`; did you mean `learning_rate`?"), "{e}");
        let e = parse(table(serde_json::json!({"lora-rr": 4})), false).unwrap_err().to_string();
        assert!(e.contains("did you mean `lora-r`?"), "{e}");
        let e = parse(table(serde_json::json!({"frobnicate_everything": 1})), false).unwrap_err().to_string();
        assert!(e.ends_with("unknown setting `frobnicate_everything`"), "{e}");
    }

    #[test]
    fn keys_that_do_not_apply_warn_and_the_file_still_trains() {
        let f = parse(table(serde_json::json!({"fp16": true, "logging_steps": 10, "output_dir": "out", "lr": 3e-4})), false).unwrap();
        assert_eq!(f.settings.lr, 3e-4);
        assert_eq!(f.warnings.len(), 3);
        assert!(f.warnings[0].contains("CPU in f32") || f.warnings.iter().any(|w| w.contains("CPU in f32")), "{:?}", f.warnings);
        let gpu = parse(table(serde_json::json!({"bf16": true})), true).unwrap();
        assert!(gpu.warnings[0].contains("precision follows the device"));
    }

    #[test]
    fn requests_whetstone_cannot_honour_are_refused_with_the_reason() {
        for (k, v) in [("bias", "all"), ("task_type", "SEQ_CLS"), ("metric_for_best_model", "accuracy"), ("eval_strategy", "epoch"), ("report_to", "wandb"), ("lr_scheduler_type", "polynomial")] {
            let e = parse(table(serde_json::json!({ k: v })), false).unwrap_err().to_string();
            assert!(e.contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn a_file_over_a_preset_changes_only_what_it_names() {
        let base = TrainSettings { lora_r: 32, steps: Some(20), warmup_ratio: Some(0.05), ..TrainSettings::default() };
        let f = parse_over(table(serde_json::json!({"learning_rate": 3e-4, "num_train_epochs": 2})), false, base.clone()).unwrap();
        assert_eq!((f.settings.lr, f.settings.epochs), (3e-4, 2));
        assert_eq!((f.settings.lora_r, f.settings.steps, f.settings.warmup_ratio), (32, Some(20), Some(0.05)));
        assert_eq!(parse_over(Map::new(), false, base.clone()).unwrap().settings, base);
    }

    #[test]
    fn a_rendered_file_reads_back_as_the_same_settings_in_every_format() {
        let changed = TrainSettings {
            steps: Some(30),
            epochs: 4,
            lr: 3e-4,
            batch: 2,
            grad_accum: 3,
            max_len: 256,
            lora_r: 16,
            lora_alpha: 32.5,
            lora_dropout: 0.1,
            targets: "q,v".into(),
            rslora: true,
            scheduler: crate::schedule::ScheduleKind::Linear,
            warmup: 0,
            warmup_ratio: Some(0.05),
            seed: 9,
            grad_checkpoint: true,
            weight_decay: 0.01,
            max_grad_norm: 0.5,
            threads: Some(2),
            quant: crate::quant::QuantMode::Nf4,
            eval_every: 7,
            save_every: 11,
            keep_checkpoints: 1,
            patience: 0,
            min_delta: 0.001,
            load_best_at_end: false,
            max_bad_steps: 2,
            strict_rows: true,
            truncate_prompt: true,
            device: crate::device::DeviceChoice::Cpu,
        };
        let dir = tempfile::tempdir().unwrap();
        for settings in [changed, TrainSettings::default()] {
            for (name, format) in [("s.toml", Format::Toml), ("s.yaml", Format::Yaml), ("s.yml", Format::Yaml), ("s.json", Format::Json)] {
                let path = dir.path().join(name);
                assert_eq!(Format::from_path(&path).unwrap(), format);
                std::fs::write(&path, render(&settings, format).unwrap()).unwrap();
                let back = read(&path).unwrap();
                assert_eq!(back.settings, settings, "{name}:\n{}", std::fs::read_to_string(&path).unwrap());
                assert!(back.warnings.is_empty(), "{name}: {:?}", back.warnings);
            }
        }
        let e = Format::from_path(Path::new("/x/settings.ini")).unwrap_err().to_string();
        assert!(e.contains("use .toml, .yaml or .json"), "{e}");
    }

    #[test]
    fn the_device_is_a_setting_and_a_wrong_one_names_the_key() {
        let f = parse(table(serde_json::json!({"device": "cuda:1"})), true).unwrap();
        assert_eq!(f.settings.device, crate::device::DeviceChoice::Cuda(Some(1)));
        assert_eq!(parse(Map::new(), false).unwrap().settings.device, crate::device::DeviceChoice::Auto);
        let e = parse(table(serde_json::json!({"device": "tpu"})), false).unwrap_err().to_string();
        assert!(e.contains("`device = \"tpu\"`: unknown device `tpu`: use auto, cpu, cuda, cuda:N"), "{e}");
        let e = parse(table(serde_json::json!({"device": 0})), false).unwrap_err().to_string();
        assert!(e.contains("`device` must be text naming a device"), "{e}");
        let e = parse(table(serde_json::json!({"devise": "cpu"})), false).unwrap_err().to_string();
        assert!(e.contains("did you mean `device`?"), "{e}");
    }

    #[test]
    fn whetstone_names_still_work_with_dashes_or_underscores() {
        let f = parse(table(serde_json::json!({"lora-r": 4, "grad_accum": 2, "max_len": 128, "quant": "nf4"})), false).unwrap();
        assert_eq!((f.settings.lora_r, f.settings.grad_accum, f.settings.max_len), (4, 2, 128));
        assert_eq!(f.settings.quant, crate::quant::QuantMode::Nf4);
    }
}
