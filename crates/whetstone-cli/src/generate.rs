//! `whet generate`: answer one prompt with the model's chat template, streaming the text.

use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use whetstone_api::training;
use whetstone_engine::quant::QuantMode;
use whetstone_engine::generate::SamplingOptions;

#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    adapter: Option<PathBuf>,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 128)]
    max_new: usize,
    /// 0 picks the most likely token every time
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 0.9)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    threads: Option<usize>,
    /// Base weights: native (a GGUF's own quantization), none (dense) or nf4 (QLoRA)
    #[arg(long, default_value_t = QuantMode::Native)]
    quant: QuantMode,
}

pub fn run(a: &GenerateArgs) -> anyhow::Result<()> {
    crate::set_threads(a.threads);
    let model = training::load_model(&a.model, a.quant)?;
    let adapter = a.adapter.as_deref().map(|d| training::load_adapter(&model, d)).transpose()?;
    let opts = SamplingOptions { temperature: a.temperature, top_p: a.top_p, max_new_tokens: a.max_new, seed: a.seed };
    let mut stdout = std::io::stdout();
    training::generate(&model, adapter.as_ref(), &a.prompt, &opts, |piece| {
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    })?;
    println!();
    Ok(())
}
