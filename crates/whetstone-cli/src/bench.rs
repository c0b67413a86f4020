//! `whet bench train`: training throughput and peak memory on a fixed configuration.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_api::training::{self, BenchRequest};
use whetstone_engine::quant::QuantMode;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Tokens per second and peak RSS of LoRA training steps on random tokens
    Train(TrainBenchArgs),
}

#[derive(Args)]
pub struct TrainBenchArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 256)]
    seq_len: usize,
    #[arg(long, default_value_t = 8)]
    lora_r: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed steps, after the warm-up ones
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long)]
    grad_checkpoint: bool,
    /// Base weights: native (a GGUF's own quantization), none (dense) or nf4 (QLoRA)
    #[arg(long, default_value_t = QuantMode::Native)]
    quant: QuantMode,
    /// One JSON line instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: &BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Train(a) => {
            crate::set_threads(Some(a.threads));
            let req = BenchRequest {
                model: &a.model,
                batch: a.batch,
                seq_len: a.seq_len,
                lora_r: a.lora_r,
                steps: a.steps,
                warmup_steps: a.warmup,
                grad_checkpoint: a.grad_checkpoint,
                quant: a.quant,
            };
            let r = training::bench_train(&req, |i, dt| eprintln!("step {} took {dt:.2}s{}", i + 1, if i < a.warmup { " (warm-up)" } else { "" }))?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("tokens/s      {:.1}", r.tokens_per_s);
                println!("step (mean)   {:.2} s", r.step_s_mean);
                println!("step (best)   {:.2} s", r.step_s_min);
                println!("peak RSS      {:.0} MiB", r.peak_rss_mb);
                let kinds = if r.quant_kinds.is_empty() { "dense".to_string() } else { r.quant_kinds.join(", ") };
                println!("base          {:.1} MiB, {:.3} bytes/param ({kinds})", r.base_mb, r.base_bytes_per_param);
                if let Some(b) = r.linear_bytes_per_param {
                    println!("linear layers {b:.4} bytes/param ({:.3} bits)", b * 8.0);
                }
                println!("config        batch {} × {} tokens, r={}, {} threads, checkpointing {}, quant {}", r.batch, r.seq_len, r.lora_r, r.threads, if r.grad_checkpoint { "on" } else { "off" }, r.quant);
            }
            Ok(())
        }
    }
}
