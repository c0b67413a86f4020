//! `whet bench train`: training throughput and peak memory on a fixed configuration.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_api::training::{self, BenchRequest};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Tokens per second and peak RSS of LoRA training steps on random tokens
    Train(TrainBenchArgs),
    /// Import, exact and near deduplication and personal-data scan of generated ~1 KB rows
    Data(DataBenchArgs),
}

#[derive(Args)]
pub struct DataBenchArgs {
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Where to write the generated file [default: a temporary folder]
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
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
        BenchCommand::Data(a) => {
            let tmp;
            let dir = match &a.dir {
                Some(d) => d.clone(),
                None => {
                    tmp = std::env::temp_dir().join(format!("whet-bench-data-{}", std::process::id()));
                    tmp.clone()
                }
            };
            std::fs::create_dir_all(&dir)?;
            let r = whetstone_api::datasets::bench_data(&dir, a.rows, |phase, s| eprintln!("{phase:<13} {s:.2} s"));
            if a.dir.is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let r = r?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("rows          {} ({:.0} MB, {} threads)", r.rows, r.source_mb, r.threads);
                println!("import        {:.2} s", r.import_s);
                println!("exact dedupe  {:.2} s  ({} duplicates)", r.exact_dedupe_s, r.exact_duplicates);
                println!("near dedupe   {:.2} s  ({} near duplicates)", r.near_dedupe_s, r.near_duplicates);
                println!("PII scan      {:.2} s  ({} findings)", r.pii_scan_s, r.pii_findings);
                println!("total         {:.2} s", r.total_s);
            }
            Ok(())
        }
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
