//! `whet model …`: the catalog, hub search, pulls and local imports.

use crate::human_bytes;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use whetstone_api::models::PullRequest;
use whetstone_api::{Api, FileProgress};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Models installed here, with their license
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// The models Whetstone suggests, with license and commercial-use terms
    Catalog {
        #[arg(long)]
        json: bool,
    },
    /// Search the Hugging Face Hub (HF_ENDPOINT when set)
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Download a model from the hub into the shared HF cache and add it; resumes an interrupted pull
    Pull {
        /// Repo id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct
        repo: String,
        /// Branch, tag or commit
        #[arg(long)]
        revision: Option<String>,
        /// Only these files (e.g. one .gguf); config, tokenizer and safetensors weights by default
        #[arg(long = "file")]
        files: Vec<String>,
        /// Use only files already downloaded
        #[arg(long)]
        offline: bool,
        #[arg(long)]
        json: bool,
    },
    /// Add a model folder (config.json, safetensors, tokenizer.json) or a GGUF file from this machine
    Import {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(api: &Api, cmd: &ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::List { json } => crate::list::models(api, &crate::list::ListAction::List { json: *json }),
        ModelCommand::Catalog { json } => {
            let items = api.catalog()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(());
            }
            println!("{:<40} {:>7}  {:<8} {:<14} {:<10} {:<6} INSTALLED", "REPO", "PARAMS", "ARCH", "LICENSE", "COMMERCIAL", "GATED");
            for i in &items {
                let e = &i.entry;
                println!(
                    "{:<40} {:>7}  {:<8} {:<14} {:<10} {:<6} {}",
                    e.repo,
                    crate::list::human_count(e.parameters),
                    e.architecture,
                    e.license,
                    if e.commercial_use { "yes" } else { "no" },
                    if e.gated { "yes" } else { "no" },
                    i.installed_model_id.map(|id| format!("id {id}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        ModelCommand::Search { query, limit, json } => {
            let found = api.search_models(query, *limit)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&found)?);
                return Ok(());
            }
            if found.is_empty() {
                println!("no models match `{query}`");
            }
            for m in &found {
                let commercial = match m.commercial_use {
                    Some(true) => "commercial use ok",
                    Some(false) => "NOT for commercial use",
                    None => "commercial use: read the license",
                };
                println!(
                    "{}\n    license {} ({commercial}){}  downloads {}{}{}",
                    m.id,
                    m.license.as_deref().unwrap_or("unknown"),
                    if m.gated { ", gated" } else { "" },
                    m.downloads.map(|d| d.to_string()).unwrap_or_else(|| "?".into()),
                    m.parameters.map(|p| format!("  {} parameters", crate::list::human_count(p))).unwrap_or_default(),
                    m.size_bytes.map(|s| format!("  {}", human_bytes(s))).unwrap_or_default(),
                );
            }
            Ok(())
        }
        ModelCommand::Pull { repo, revision, files, offline, json } => {
            let cancel = Arc::new(AtomicBool::new(false));
            {
                let flag = cancel.clone();
                ctrlc::set_handler(move || {
                    eprintln!("\nstopping; the next pull continues where this one stopped");
                    flag.store(true, Ordering::Relaxed);
                })
                .context("cannot install the Ctrl-C handler")?;
            }
            let req = PullRequest { repo: repo.clone(), revision: revision.clone(), files: files.clone(), token: None, offline: *offline };
            let progress: Arc<dyn Fn(&FileProgress) + Send + Sync> = Arc::new(print_progress);
            let model = api.pull_model(&req, Some(cancel), Some(progress))?;
            eprintln!();
            if *json {
                println!("{}", serde_json::to_string_pretty(&model)?);
            } else {
                println!("{} (id {}) is at {}", model.name, model.id, model.origin.path.as_deref().unwrap_or(&model.location));
                print_terms(&model);
            }
            Ok(())
        }
        ModelCommand::Import { path, json } => {
            let model = api.import_model(path)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&model)?);
            } else {
                println!("added {} (id {}): {} parameters, {}", model.name, model.id, model.parameters.map(crate::list::human_count).unwrap_or_default(), model.architecture.as_deref().unwrap_or("?"));
                print_terms(&model);
            }
            Ok(())
        }
    }
}

fn print_terms(m: &whetstone_api::Model) {
    let commercial = match m.commercial_use {
        Some(true) => "commercial use allowed",
        Some(false) => "NOT for commercial use",
        None => "commercial use unknown: read the license",
    };
    println!("license: {} ({commercial})", m.license.as_deref().unwrap_or("unknown"));
}

fn print_progress(p: &FileProgress) {
    let pct = if p.total_bytes > 0 { 100.0 * p.bytes as f64 / p.total_bytes as f64 } else { 100.0 };
    let eta = p.eta_s.map(|s| format!("  ETA {}", human_secs(s))).unwrap_or_default();
    let rate = if p.rate > 0.0 { format!("  {}/s", human_bytes(p.rate as u64)) } else { String::new() };
    eprint!(
        "\r\x1b[K{:<9} {}  {} / {} ({pct:.0}%){rate}{eta}",
        p.phase,
        p.file,
        human_bytes(p.bytes),
        human_bytes(p.total_bytes),
    );
}

fn human_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
