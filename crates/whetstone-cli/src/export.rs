//! `whet export`: a finished run as a PEFT adapter, merged weights, GGUF, an Ollama model or an
//! Axolotl job, with a progress line and the round-trip check's answers side by side.

use std::io::Write;
use std::path::PathBuf;

use whetstone_api::export_run::{ExportFormat, ExportProgress, RunExport, RunExportReport};
use whetstone_api::Api;
use whetstone_engine::gguf_write::GgufQuant;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The run's id (see `whet runs list`)
    pub run: i64,
    /// peft, merged, gguf, ollama or axolotl
    #[arg(long)]
    pub format: String,
    /// A new or empty folder to write into
    #[arg(long)]
    pub out: PathBuf,
    /// Merged weights: f32, f16 or bf16
    #[arg(long)]
    pub dtype: Option<String>,
    /// GGUF and Ollama: f16, q8_0 or q4_k_m
    #[arg(long)]
    pub quant: Option<String>,
    /// Replace what the folder holds
    #[arg(long)]
    pub overwrite: bool,
    /// Do not re-run held-out prompts through the exported model
    #[arg(long)]
    pub skip_check: bool,
    /// Axolotl: number of nodes
    #[arg(long)]
    pub nodes: Option<u32>,
    /// Axolotl: GPUs per node
    #[arg(long)]
    pub gpus_per_node: Option<u32>,
    /// Axolotl: ddp, zero2, zero3 or fsdp
    #[arg(long)]
    pub parallelism: Option<String>,
    /// Axolotl: address of node 0 when there are several nodes
    #[arg(long)]
    pub main_process_ip: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(api: &Api, args: &ExportArgs) -> anyhow::Result<()> {
    let req = RunExport {
        run: args.run,
        format: ExportFormat::parse(&args.format)?,
        out: args.out.clone(),
        overwrite: args.overwrite,
        dtype: args.dtype.clone(),
        quant: args.quant.as_deref().map(GgufQuant::parse).transpose()?,
        skip_check: args.skip_check,
        nodes: args.nodes,
        gpus_per_node: args.gpus_per_node,
        parallelism: args.parallelism.clone(),
        main_process_ip: args.main_process_ip.clone(),
    };
    let report = api.export_run_with_progress(&req, &mut print_progress)?;
    eprintln!();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_progress(p: &ExportProgress) {
    let mut err = std::io::stderr();
    if p.total > 1 {
        let width = 30;
        let filled = p.done * width / p.total.max(1);
        let _ = write!(err, "\r\x1b[2K{} [{}{}] {}/{}", p.stage, "#".repeat(filled), " ".repeat(width - filled), p.done, p.total);
    } else {
        let _ = write!(err, "\r\x1b[2K{}", p.stage);
    }
    let _ = err.flush();
}

fn print_report(r: &RunExportReport) {
    println!("exported to {}", r.out);
    for f in &r.files {
        println!("  {f}");
    }
    if let Some(g) = &r.gguf {
        let types: Vec<String> = g.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        println!("GGUF: {} tensors ({}), {:.1} MB", g.tensors, types.join(", "), g.bytes as f64 / 1e6);
    }
    if let Some(rt) = &r.round_trip {
        println!("check of {}:", rt.checked);
        println!(
            "  perplexity on {} held-out rows: in the app {:.4}, exported {:.4}; next-token logits differ by at most {:.2e}{}",
            rt.rows,
            rt.in_app_perplexity,
            rt.exported_perplexity,
            rt.max_logit_diff,
            if rt.same_prompt_ids { "" } else { "; the prompts tokenize DIFFERENTLY" }
        );
        for p in &rt.prompts {
            println!("  prompt: {}", p.prompt);
            println!("    in the app: {}", p.in_app.trim());
            println!("    exported:   {}{}", p.exported.trim(), if p.same { "  (same)" } else { "  (differs)" });
        }
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    for c in &r.commands {
        println!("run: {c}");
    }
}
