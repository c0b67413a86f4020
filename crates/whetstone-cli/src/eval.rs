//! `whet eval loss`: how well a model (with or without an adapter) predicts the responses of a dataset.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_api::training;
use whetstone_engine::quant::QuantMode;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Mean loss and perplexity over response tokens, per row and overall
    Loss(LossArgs),
}

#[derive(Args)]
pub struct LossArgs {
    #[arg(long)]
    model: PathBuf,
    /// A LoRA adapter folder (PEFT layout)
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Rows to evaluate (any format and shape `whet data import` reads)
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 1024)]
    max_len: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Base weights: native (a GGUF's own quantization), none (dense) or nf4 (QLoRA)
    #[arg(long, default_value_t = QuantMode::Native)]
    quant: QuantMode,
    /// Print the full report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: &EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Loss(a) => {
            crate::set_threads(a.threads);
            let model = training::load_model(&a.model, a.quant)?;
            let adapter = a.adapter.as_deref().map(|d| training::load_adapter(&model, d)).transpose()?;
            let report = training::eval_loss(&model, adapter.as_ref(), &a.data, a.max_len)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("loss {:.4}  perplexity {:.2}  over {} response tokens in {} rows", report.loss, report.perplexity, report.tokens, report.rows.len());
                if !report.dropped.is_empty() {
                    eprintln!("warning: {}", training::dropped_rows_message(&a.data, &report.dropped, a.max_len));
                }
            }
            Ok(())
        }
    }
}
