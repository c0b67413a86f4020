//! `whet bench train`: training throughput and peak memory on a fixed configuration.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_api::training::{self, BenchRequest};

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
            };
            let r = training::bench_train(&req, |i, dt| eprintln!("step {} took {dt:.2}s{}", i + 1, if i < a.warmup { " (warm-up)" } else { "" }))?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("tokens/s      {:.1}", r.tokens_per_s);
                println!("step (mean)   {:.2} s", r.step_s_mean);
                println!("step (best)   {:.2} s", r.step_s_min);
                println!("peak RSS      {:.0} MiB", r.peak_rss_mb);
                println!("config        batch {} × {} tokens, r={}, {} threads, checkpointing {}", r.batch, r.seq_len, r.lora_r, r.threads, if r.grad_checkpoint { "on" } else { "off" });
            }
            Ok(())
        }
    }
}
