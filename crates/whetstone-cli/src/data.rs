//! `whet data …`: import, clean, split, measure, preview and export datasets.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_api::datasets::{
    CleanRequest, ExportRequest, ImportRequest, PreviewRequest, SplitRequest, StatsRequest,
};
use whetstone_api::Api;
use whetstone_data::clean::{CleanOptions, PiiDecision, PiiDecisions};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Import a JSONL, JSON, CSV, TSV or text file as a new dataset
    Import(ImportArgs),
    /// Propose (and with --apply, make) a cleaned version: duplicates, personal data, length, boilerplate
    Clean(CleanArgs),
    /// Split the latest version into train / validation / test, and check for leakage between them
    Split(SplitArgs),
    /// Token lengths with a model's tokenizer and chat template
    Stats(StatsArgs),
    /// Show one row as the model sees it, with the tokens it is trained on
    Preview(PreviewArgs),
    /// Write a version to a JSONL file
    Export(ExportArgs),
    /// Every version of a dataset and the steps that made it
    Versions(VersionsArgs),
    /// Have a model write variations of chosen rows, into a queue to review before they enter a version
    Augment(crate::queue::AugmentArgs),
    /// Draw a random sample of rows into a queue for people to check before training
    Sample(crate::queue::SampleArgs),
    /// Show a review queue (or list them all) with what was decided
    Queue(crate::queue::QueueArgs),
    /// Accept, edit, reject or flag an item of a review queue
    Decide(crate::queue::DecideArgs),
    /// Make the new version from a review queue's decisions
    Apply(crate::queue::ApplyArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// Dataset name [default: the file name without extension]
    #[arg(long)]
    name: Option<String>,
    /// Use COLUMN as FIELD, e.g. --map prompt=question (fields: instruction input output response prompt
    /// completion question answer context system messages conversations text)
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// jsonl, json, csv, tsv or text [default: from the file name]
    #[arg(long)]
    format: Option<String>,
    /// Records larger than this many bytes are rejected as over-long
    #[arg(long)]
    max_row_bytes: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CleanArgs {
    /// Dataset name or id
    dataset: String,
    /// Version to clean [default: latest]
    #[arg(long)]
    version: Option<u32>,
    /// Remove exact duplicates (after whitespace and case normalisation)
    #[arg(long)]
    dedupe: bool,
    /// Remove near duplicates at this similarity (0–1, e.g. 0.8)
    #[arg(long, value_name = "T")]
    near: Option<f64>,
    /// Look for personal data and redact it, drop its rows, or keep it
    #[arg(long, value_name = "redact|drop|keep")]
    pii: Option<String>,
    /// Remove rows shorter than this many characters
    #[arg(long)]
    min_chars: Option<usize>,
    /// Remove rows longer than this many characters
    #[arg(long)]
    max_chars: Option<usize>,
    /// Remove rows with empty or boilerplate responses
    #[arg(long)]
    boilerplate: bool,
    /// Make the new version; without it only the proposal is shown and nothing changes
    #[arg(long)]
    apply: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SplitArgs {
    dataset: String,
    /// Fraction for validation
    #[arg(long, default_value_t = 0.1)]
    val: f64,
    /// Fraction for test
    #[arg(long, default_value_t = 0.0)]
    test: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Similarity above which rows in different splits are reported as leaked
    #[arg(long)]
    leakage_threshold: Option<f64>,
    #[arg(long)]
    version: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    dataset: String,
    /// GGUF file or model folder [default: the bundled model]
    #[arg(long)]
    model: Option<PathBuf>,
    /// Maximum sequence length in tokens; rows longer than this are counted as truncated
    #[arg(long, default_value_t = 1024)]
    max_len: usize,
    /// Only this split: train, val or test
    #[arg(long)]
    split: Option<String>,
    #[arg(long)]
    version: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PreviewArgs {
    dataset: String,
    /// Row number in the version, from 1
    #[arg(long)]
    row: usize,
    #[arg(long)]
    model: Option<PathBuf>,
    /// Mark trained tokens: [[like this]]
    #[arg(long)]
    mask: bool,
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    version: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    dataset: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    version: Option<u32>,
    /// Only this split: train, val or test
    #[arg(long)]
    split: Option<String>,
    /// Replace --out when it exists
    #[arg(long)]
    overwrite: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VersionsArgs {
    dataset: String,
    #[arg(long)]
    json: bool,
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn run(api: &Api, cmd: &DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Import(a) => {
            let r = api.data_import(&ImportRequest {
                path: a.file.clone(),
                name: a.name.clone(),
                map: a.map.clone(),
                format: a.format.clone(),
                max_row_bytes: a.max_row_bytes,
            })?;
            if a.json {
                return print_json(&r);
            }
            let rep = &r.report;
            println!("imported `{}` (id {}, version 1)", r.dataset.name, r.dataset.id);
            println!(
                "{} rows: {} accepted, {} rejected; shape {}",
                rep.rows,
                rep.accepted,
                rep.rejected,
                rep.shape.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
            );
            if rep.shapes.len() > 1 {
                for (s, n) in &rep.shapes {
                    println!("  {s}: {n}");
                }
            }
            for rej in rep.rejections.iter().take(20) {
                println!("  line {}: {}", rej.line, rej.reason);
            }
            if rep.rejected > 20 {
                println!("  … and {} more", rep.rejected - 20);
            }
            if let Some(p) = &r.rejections_file {
                println!("all rejected rows: {}", p.display());
            }
            Ok(())
        }
        DataCommand::Clean(a) => {
            let pii = a
                .pii
                .as_deref()
                .map(|s| PiiDecision::parse(s).ok_or_else(|| anyhow::anyhow!("--pii {s}: use redact, drop or keep")))
                .transpose()?;
            let req = CleanRequest {
                dataset: a.dataset.clone(),
                version: a.version,
                options: CleanOptions {
                    exact: a.dedupe,
                    near: a.near,
                    pii: pii.is_some(),
                    min_chars: a.min_chars,
                    max_chars: a.max_chars,
                    boilerplate: a.boilerplate,
                },
                apply: a.apply,
                decisions: PiiDecisions { default: pii, ..Default::default() },
            };
            let r = api.data_clean(&req)?;
            if a.json {
                return print_json(&r);
            }
            let p = &r.proposal;
            println!("`{}` version {}: {} rows", r.dataset, r.base_version, p.rows_before);
            if let Some(s) = &p.exact_duplicates {
                println!("exact duplicates: {} rows in {} groups would go", s.removed, s.groups);
                for e in &s.examples {
                    println!("  keep line {}, remove {:?}: {}", e.kept_line, e.removed_lines, e.kept);
                }
            }
            if let Some(s) = &p.near_duplicates {
                println!("near duplicates (≥ {}): {} rows in {} groups would go", s.threshold.unwrap_or(0.0), s.removed, s.groups);
                for e in &s.examples {
                    println!("  keep line {}, remove {:?}\n    kept:    {}\n    removed: {}", e.kept_line, e.removed_lines, e.kept, e.removed);
                }
            }
            for (name, step) in [("length", &p.length), ("boilerplate", &p.boilerplate)] {
                if let Some(s) = step {
                    println!("{name}: {} rows would go", s.removed);
                    for e in &s.examples {
                        println!("  line {}: {} — {}", e.line, e.reason, e.excerpt);
                    }
                }
            }
            if let Some(s) = &p.pii {
                let kinds: Vec<String> = s.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
                println!("personal data: {} findings in {} rows ({})", s.findings, s.rows, kinds.join(", "));
                for f in s.listed.iter().take(10) {
                    println!("  [{}] line {} {}: {} — {}", f.id, f.line, f.kind, f.text, f.context);
                }
            }
            match (&r.applied, &r.version) {
                (Some(ap), Some(v)) => println!(
                    "applied: version {} has {} rows ({} redactions, {} rows dropped for personal data)",
                    v.version, ap.rows_after, ap.pii_redacted, ap.pii_rows_dropped
                ),
                _ => println!(
                    "nothing changed; {} rows would remain (before personal-data drops). Run again with --apply to make the new version.",
                    p.rows_after_removals
                ),
            }
            Ok(())
        }
        DataCommand::Split(a) => {
            let r = api.data_split(&SplitRequest {
                dataset: a.dataset.clone(),
                version: a.version,
                val: a.val,
                test: a.test,
                seed: a.seed,
                leakage_threshold: a.leakage_threshold,
            })?;
            if a.json {
                return print_json(&r);
            }
            println!("version {}: train {}, val {}, test {}", r.version.version, r.counts.train, r.counts.val, r.counts.test);
            println!(
                "leakage (similarity ≥ {}): {} groups, {} rows in another split than their near-duplicate",
                r.leakage.threshold, r.leakage.groups, r.leakage.rows
            );
            for e in r.leakage.examples.iter().take(10) {
                println!("  line {} ({}) ~ line {} ({}): {:.2}", e.line, e.split, e.other_line, e.other_split, e.similarity);
            }
            Ok(())
        }
        DataCommand::Stats(a) => {
            let r = api.data_stats(&StatsRequest {
                dataset: a.dataset.clone(),
                version: a.version,
                model: a.model.clone(),
                max_len: a.max_len,
                split: a.split.clone(),
            })?;
            if a.json {
                return print_json(&r);
            }
            let t = &r.tokens;
            println!("`{}` version {} with {}{}", r.dataset, r.version, r.model.display(), if r.fallback_template { " (ChatML fallback template)" } else { "" });
            println!("{} rows; tokens min {} median {} p95 {} max {} mean {:.1}", t.rows, t.min, t.median, t.p95, t.max, t.mean);
            println!("{} rows are longer than {} tokens and would be cut", t.truncated, t.max_len);
            let widest = t.histogram.iter().map(|b| b.rows).max().unwrap_or(1).max(1);
            for b in &t.histogram {
                let to = b.to.map(|x| x.to_string()).unwrap_or_else(|| "∞".into());
                println!("  {:>6}–{:<6} {:>7}  {}", b.from, to, b.rows, "#".repeat(b.rows * 40 / widest));
            }
            for f in &t.failures {
                println!("  line {}: {}", f.line, f.reason);
            }
            Ok(())
        }
        DataCommand::Preview(a) => {
            let r = api.data_preview(&PreviewRequest {
                dataset: a.dataset.clone(),
                version: a.version,
                row: a.row,
                model: a.model.clone(),
                max_len: a.max_len,
            })?;
            if a.json {
                return print_json(&r);
            }
            println!("row {} (line {} of the source){}", r.row, r.line, r.split.map(|s| format!(", {s}")).unwrap_or_default());
            if a.mask {
                let mut out = String::new();
                let mut inside = false;
                for t in &r.tokens {
                    if t.trained != inside {
                        out.push_str(if t.trained { "[[" } else { "]]" });
                        inside = t.trained;
                    }
                    out.push_str(&t.text);
                }
                if inside {
                    out.push_str("]]");
                }
                println!("{out}");
                println!("({} of {} tokens trained, marked [[…]])", r.trained_tokens, r.tokens.len());
            } else {
                println!("{}", r.rendered);
            }
            Ok(())
        }
        DataCommand::Export(a) => {
            let r = api.data_export(&ExportRequest {
                dataset: a.dataset.clone(),
                version: a.version,
                out: a.out.clone(),
                split: a.split.clone(),
                overwrite: a.overwrite,
            })?;
            if a.json {
                return print_json(&r);
            }
            println!("wrote {} rows of version {} to {}", r.rows, r.version, r.path.display());
            Ok(())
        }
        DataCommand::Augment(a) => crate::queue::augment(api, a),
        DataCommand::Sample(a) => crate::queue::sample(api, a),
        DataCommand::Queue(a) => crate::queue::show(api, a),
        DataCommand::Decide(a) => crate::queue::decide(api, a),
        DataCommand::Apply(a) => crate::queue::apply(api, a),
        DataCommand::Versions(a) => {
            let vs = api.data_versions(&a.dataset)?;
            if a.json {
                return print_json(&vs);
            }
            for v in vs {
                let steps: Vec<String> = v
                    .steps
                    .as_array()
                    .map(|s| s.iter().map(|x| x["step"].as_str().unwrap_or("?").to_string()).collect())
                    .unwrap_or_default();
                println!("v{}  {} rows  {}  {}", v.version, v.rows, v.created_at, steps.join(", "));
            }
            Ok(())
        }
    }
}
