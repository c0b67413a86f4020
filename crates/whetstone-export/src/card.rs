//! The model card (README.md) in the Hugging Face layout: YAML front matter the Hub indexes, then
//! sections in plain words. A section without data says so instead of disappearing, so a reader can
//! tell "not measured" from "forgotten".

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::axolotl::Method;
use crate::error::Result;
use crate::modelfile::{create_command, run_command};
use crate::shell::quote;
use crate::yaml::Yaml;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CardInput {
    pub model_name: Option<String>,
    pub base_model: Option<String>,
    pub base_model_license: Option<String>,
    /// What the base model's license says about commercial use, in plain words.
    pub commercial_use: Option<String>,
    /// The license of this model (an SPDX-like id the Hub knows, e.g. `apache-2.0`).
    pub license: Option<String>,
    /// True for a LoRA adapter, false for merged weights.
    pub adapter: bool,
    pub method: Option<Method>,
    pub language: Vec<String>,
    /// Hub dataset ids, for the front matter.
    pub datasets: Vec<String>,
    pub data: Option<DataInput>,
    pub training: Option<TrainingInput>,
    pub results: Option<ResultsInput>,
    pub intended_use: Option<String>,
    pub limitations: Vec<String>,
    pub files: FilesInput,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataInput {
    /// Where the rows came from: a file name, a Hub dataset, a URL.
    pub source: Option<String>,
    pub rows_imported: Option<u64>,
    pub cleaning: Vec<CleaningStep>,
    pub train_rows: Option<u64>,
    pub eval_rows: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CleaningStep {
    pub step: String,
    pub rows_before: Option<u64>,
    pub rows_after: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingInput {
    pub lora_r: Option<u32>,
    pub lora_alpha: Option<f64>,
    pub lora_dropout: Option<f64>,
    pub target_modules: Vec<String>,
    pub learning_rate: Option<f64>,
    pub schedule: Option<String>,
    pub warmup_steps: Option<u32>,
    pub steps: Option<u64>,
    pub epochs: Option<f64>,
    pub micro_batch_size: Option<u32>,
    pub gradient_accumulation_steps: Option<u32>,
    pub max_length: Option<u32>,
    /// How the base weights were held during training, e.g. "NF4 (QLoRA)", "bf16".
    pub base_quantisation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultsInput {
    pub final_train_loss: Option<f64>,
    pub best_eval_loss: Option<f64>,
    pub best_eval_step: Option<u64>,
    /// When missing and there is an eval loss, e^loss is shown and said to be computed.
    pub perplexity: Option<f64>,
    pub metrics: Vec<Metric>,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metric {
    pub name: String,
    pub tuned: Option<f64>,
    pub base: Option<f64>,
    pub note: Option<String>,
}

/// Blind side-by-side human review of the tuned model against the base model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Review {
    pub raters: u32,
    pub items: u32,
    pub preferred_tuned: u32,
    pub preferred_base: u32,
    pub ties: u32,
    /// Krippendorff's alpha over the raters' choices.
    pub agreement_alpha: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesInput {
    /// Folder of the adapter or merged weights, as a user would pass it to `from_pretrained`.
    pub weights_dir: Option<String>,
    pub gguf: Option<String>,
    pub modelfile: Option<String>,
    pub ollama_name: Option<String>,
}

const MISSING: &str = "Not recorded for this export.";

pub fn render(card: &CardInput) -> Result<String> {
    let mut out = String::from("---\n");
    out += &front_matter(card).render();
    out += "---\n\n";
    let name = card.model_name.as_deref().unwrap_or("Fine-tuned model");
    let _ = writeln!(out, "# {}\n", inline(name));
    what_it_is(&mut out, card);
    base_model(&mut out, card);
    data(&mut out, card.data.as_ref());
    training(&mut out, card.training.as_ref(), card.method);
    results(&mut out, card.results.as_ref());
    use_and_limits(&mut out, card);
    how_to_use(&mut out, card)?;
    Ok(out)
}

fn front_matter(card: &CardInput) -> Yaml {
    let mut e = Vec::new();
    if let Some(base) = &card.base_model {
        e.push(("base_model", Yaml::str(base)));
    }
    if card.adapter {
        e.push(("library_name", Yaml::str("peft")));
    }
    if let Some(license) = &card.license {
        e.push(("license", Yaml::str(license)));
    }
    let mut tags = vec!["whetstone".to_string()];
    match card.method {
        Some(Method::Lora) => tags.push("lora".into()),
        Some(Method::Qlora) => tags.extend(["lora".into(), "qlora".into()]),
        None => {}
    }
    e.push(("tags", Yaml::strs(&tags)));
    if !card.datasets.is_empty() {
        e.push(("datasets", Yaml::strs(&card.datasets)));
    }
    if !card.language.is_empty() {
        e.push(("language", Yaml::strs(&card.language)));
    }
    e.push(("pipeline_tag", Yaml::str("text-generation")));
    Yaml::map(e)
}

fn what_it_is(out: &mut String, card: &CardInput) {
    let kind = match (card.adapter, card.method) {
        (true, Some(Method::Qlora)) => {
            "a LoRA adapter trained with QLoRA (the base model held in 4-bit during training)"
        }
        (true, _) => {
            "a LoRA adapter: a small set of extra weights applied on top of the base model"
        }
        (false, _) => "a full model: the base model with its LoRA adapter merged into the weights",
    };
    let base = card
        .base_model
        .as_deref()
        .map(|b| format!(" for `{}`", code(b)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "## What this is\n\nThis is {kind}{base}, fine-tuned with Whetstone.\n"
    );
}

fn base_model(out: &mut String, card: &CardInput) {
    out.push_str("## Base model and license\n\n");
    match &card.base_model {
        Some(b) => {
            let _ = writeln!(out, "- Base model: `{}`", code(b));
        }
        None => {
            let _ = writeln!(out, "- Base model: {MISSING}");
        }
    }
    let _ = writeln!(
        out,
        "- Base model license: {}",
        card.base_model_license
            .as_deref()
            .map(inline)
            .unwrap_or_else(|| MISSING.into())
    );
    let _ = writeln!(
        out,
        "- This model's license: {}",
        card.license
            .as_deref()
            .map(inline)
            .unwrap_or_else(|| MISSING.into())
    );
    let commercial = card
        .commercial_use
        .as_deref()
        .map(inline)
        .unwrap_or_else(|| "not determined; read the base model's license before any commercial use, since its terms carry over to this model.".into());
    let _ = writeln!(out, "- Commercial use: {commercial}\n");
}

fn data(out: &mut String, data: Option<&DataInput>) {
    out.push_str("## Training data\n\n");
    let Some(d) = data else {
        let _ = writeln!(out, "{MISSING}\n");
        return;
    };
    let _ = writeln!(
        out,
        "- Source: {}",
        d.source
            .as_deref()
            .map(inline)
            .unwrap_or_else(|| MISSING.into())
    );
    let _ = writeln!(out, "- Rows imported: {}", count(d.rows_imported));
    if d.cleaning.is_empty() {
        out.push_str("- Cleaning: none recorded.\n");
    } else {
        out.push_str("\nCleaning, in order:\n\n| Step | Rows before | Rows after | Removed |\n| --- | ---: | ---: | ---: |\n");
        for s in &d.cleaning {
            let removed = match (s.rows_before, s.rows_after) {
                (Some(b), Some(a)) => b.saturating_sub(a).to_string(),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {removed} |",
                cell(&s.step),
                count(s.rows_before),
                count(s.rows_after)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "- Rows used for training: {}", count(d.train_rows));
    let _ = writeln!(
        out,
        "- Rows held out for evaluation: {}\n",
        count(d.eval_rows)
    );
}

fn training(out: &mut String, t: Option<&TrainingInput>, method: Option<Method>) {
    out.push_str("## Training settings\n\n");
    let Some(t) = t else {
        let _ = writeln!(out, "{MISSING}\n");
        return;
    };
    let method = match method {
        Some(Method::Lora) => "LoRA",
        Some(Method::Qlora) => "QLoRA",
        None => "not recorded",
    };
    let batch = match (t.micro_batch_size, t.gradient_accumulation_steps) {
        (Some(b), Some(a)) => format!(
            "{b} × {a} accumulation steps = {} examples per update",
            b as u64 * a as u64
        ),
        (Some(b), None) => format!("{b} (accumulation not recorded)"),
        _ => "not recorded".into(),
    };
    let length = match (t.steps, t.epochs) {
        (Some(s), Some(e)) => format!("{s} steps ({} epochs)", num(e)),
        (Some(s), None) => format!("{s} steps"),
        (None, Some(e)) => format!("{} epochs", num(e)),
        (None, None) => "not recorded".into(),
    };
    let targets = if t.target_modules.is_empty() {
        "not recorded".into()
    } else {
        t.target_modules
            .iter()
            .map(|m| format!("`{}`", code(m)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = [
        ("Method", method.to_string()),
        ("LoRA rank (r)", opt(t.lora_r.map(|v| v.to_string()))),
        ("LoRA alpha", opt(t.lora_alpha.map(num))),
        ("LoRA dropout", opt(t.lora_dropout.map(num))),
        ("Adapted modules", targets),
        ("Learning rate", opt(t.learning_rate.map(num))),
        ("Schedule", opt(t.schedule.as_deref().map(cell))),
        ("Warm-up steps", opt(t.warmup_steps.map(|v| v.to_string()))),
        ("Length", length),
        ("Batch", batch),
        (
            "Maximum sequence length",
            opt(t.max_length.map(|v| format!("{v} tokens"))),
        ),
        (
            "Base weights during training",
            opt(t.base_quantisation.as_deref().map(cell)),
        ),
    ];
    out.push_str("| Setting | Value |\n| --- | --- |\n");
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    out.push('\n');
}

fn results(out: &mut String, r: Option<&ResultsInput>) {
    out.push_str("## Results\n\n");
    let Some(r) = r else {
        let _ = writeln!(out, "{MISSING}\n");
        return;
    };
    let _ = writeln!(
        out,
        "- Final training loss: {}",
        opt(r.final_train_loss.map(num))
    );
    let best = match (r.best_eval_loss, r.best_eval_step) {
        (Some(l), Some(s)) => format!("{} at step {s}", num(l)),
        (Some(l), None) => num(l),
        _ => "no evaluation set was used".into(),
    };
    let _ = writeln!(out, "- Best evaluation loss: {best}");
    let perplexity = match (r.perplexity, r.best_eval_loss) {
        (Some(p), _) => num(p),
        (None, Some(l)) => format!("{} (e^loss of the best evaluation loss)", num(l.exp())),
        (None, None) => "not measured".into(),
    };
    let _ = writeln!(out, "- Perplexity on the evaluation set: {perplexity}\n");
    out.push_str("Lower loss and perplexity mean the model predicts the held-out answers better; they do not by themselves show the answers are good.\n\n");

    out.push_str("### Automatic metrics\n\n");
    if r.metrics.is_empty() {
        out.push_str("None were computed for this export.\n\n");
    } else {
        out.push_str("| Metric | Tuned model | Base model | Note |\n| --- | ---: | ---: | --- |\n");
        for m in &r.metrics {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&m.name),
                opt(m.tuned.map(num)),
                opt(m.base.map(num)),
                m.note.as_deref().map(cell).unwrap_or_default()
            );
        }
        out.push('\n');
    }

    out.push_str("### Human review\n\n");
    match &r.review {
        None => out.push_str("No human review was recorded.\n\n"),
        Some(v) => {
            let _ = writeln!(out, "{} rater(s) compared answers of the tuned and the base model on {} item(s) without knowing which was which.\n", v.raters, v.items);
            out.push_str("| Preferred | Count |\n| --- | ---: |\n");
            let _ = writeln!(
                out,
                "| Tuned model | {} |\n| Base model | {} |\n| Tie | {} |",
                v.preferred_tuned, v.preferred_base, v.ties
            );
            let alpha = v
                .agreement_alpha
                .map(|a| format!("Krippendorff's alpha {}", num(a)))
                .unwrap_or_else(|| "not computed".into());
            let _ = writeln!(out, "\nAgreement between raters: {alpha}.\n");
        }
    }
}

fn use_and_limits(out: &mut String, card: &CardInput) {
    out.push_str("## Intended use and limitations\n\n");
    let _ = writeln!(
        out,
        "{}\n",
        card.intended_use
            .as_deref()
            .map(inline)
            .unwrap_or_else(|| "The intended use was not recorded.".into())
    );
    if card.limitations.is_empty() {
        out.push_str("No specific limitations were recorded. Like any fine-tuned model, it can state false things confidently, carries the biases of its base model and training data, and was only checked on the data described above.\n\n");
    } else {
        for l in &card.limitations {
            let _ = writeln!(out, "- {}", inline(l));
        }
        out.push('\n');
    }
}

fn how_to_use(out: &mut String, card: &CardInput) -> Result<()> {
    out.push_str("## How to use\n\n");
    let weights = card.files.weights_dir.as_deref().unwrap_or(".");
    let weights = serde_json::to_string(weights).expect("a string always serialises");
    if card.adapter {
        let base = card
            .base_model
            .as_deref()
            .map(|b| serde_json::to_string(b).expect("a string always serialises"));
        let _ = writeln!(out, "With Python, `transformers` and `peft`:\n\n```python\nfrom peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\nmodel = AutoPeftModelForCausalLM.from_pretrained({weights})");
        let _ = writeln!(
            out,
            "tokenizer = AutoTokenizer.from_pretrained({})\n```\n",
            base.unwrap_or_else(|| weights.clone())
        );
    } else {
        let _ = writeln!(out, "With Python and `transformers`:\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\nmodel = AutoModelForCausalLM.from_pretrained({weights})\ntokenizer = AutoTokenizer.from_pretrained({weights})\n```\n");
    }
    if let Some(gguf) = &card.files.gguf {
        let _ = writeln!(out, "With llama.cpp (the GGUF file carries the model's chat template):\n\n```sh\nllama-cli -m {} -cnv\n```\n", quote(gguf));
    }
    if let Some(modelfile) = &card.files.modelfile {
        let name = card.files.ollama_name.as_deref().unwrap_or("my-model");
        let _ = writeln!(
            out,
            "With Ollama:\n\n```sh\n{}\n{}\n```\n",
            create_command(name, modelfile)?,
            run_command(name)?
        );
    }
    if card.files.gguf.is_none() && card.files.modelfile.is_none() {
        out.push_str("No GGUF file or Ollama Modelfile was exported with this model.\n");
    }
    Ok(())
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "not recorded".into())
}

fn count(v: Option<u64>) -> String {
    v.map(|n| n.to_string())
        .unwrap_or_else(|| "not recorded".into())
}

/// Numbers as people read them: at most four significant decimals, no trailing zeros.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v != 0.0 && v.abs() < 0.001 {
        return format!("{v:e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Text on one Markdown line: line breaks would end the list item or heading.
fn inline(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text inside a table cell: a pipe would start a new cell.
fn cell(s: &str) -> String {
    inline(s).replace('|', "\\|")
}

/// Text inside backticks: a backtick would end the code span.
fn code(s: &str) -> String {
    inline(s).replace('`', "'")
}
