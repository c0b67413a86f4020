//! `whet bench train`: training throughput and peak memory on a fixed configuration.
//! `whet bench plan`: the memory planner's predictions against measured peaks.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use whetstone_api::bench::{self, BenchRequest, MeasureRequest};
use whetstone_api::plan;
use whetstone_engine::quant::QuantMode;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Tokens per second and peak RSS of LoRA training steps on random tokens
    Train(TrainBenchArgs),
    /// Predicted against measured peak memory over several training configurations, each run in a
    /// fresh process
    Plan(PlanBenchArgs),
    /// One configuration of `bench plan` (runs in the child process)
    #[command(hide = true)]
    PlanChild {
        /// The configuration as JSON
        #[arg(long)]
        config: String,
    },
    /// Import, exact and near deduplication and personal-data scan of generated ~1 KB rows
    Data(DataBenchArgs),
    /// The GPU check: parity with the CPU and PyTorch on the tiny fixtures, NF4/GGUF dequantization
    /// and a QLoRA step on the device, then tokens/s, peak GPU memory, MFU and the planner's
    /// prediction for SmolLM2-135M and a 7B-shaped Llama (scripts/gpu-check.sh runs it)
    Gpu(GpuBenchArgs),
}

#[derive(Args)]
pub struct GpuBenchArgs {
    /// The device to check: cuda, cuda:N, or cpu (with --quick, how CI runs this code)
    #[arg(long, default_value = "cuda")]
    device: whetstone_engine::device::DeviceChoice,
    /// Small shapes and one timed step, for the CPU
    #[arg(long)]
    quick: bool,
    /// The engine's test fixtures
    #[arg(long, default_value = "crates/whetstone-engine/tests/fixtures")]
    fixtures: PathBuf,
    /// SmolLM2-135M as a GGUF file or safetensors folder [default: random weights of its shape]
    #[arg(long)]
    smollm2: Option<PathBuf>,
    /// Timed steps per shape, after one warm-up step
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Dense bf16 peak of the GPU in TFLOP/s, for MFU on GPUs the built-in table does not know
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Leave out the 7B-shaped model
    #[arg(long)]
    skip_7b: bool,
    /// The whole report as one JSON line at the end
    #[arg(long)]
    json: bool,
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
pub struct PlanBenchArgs {
    /// A GGUF model to include [default: the bundled SmolLM2-135M when present]
    #[arg(long)]
    model: Option<PathBuf>,
    /// Optimizer steps per configuration
    #[arg(long, default_value_t = 2)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Only the configurations on the small random model (fast)
    #[arg(long)]
    quick: bool,
    /// JSON lines instead of a table
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
    /// LoRA dropout on every adapter's input
    #[arg(long, default_value_t = 0.0)]
    lora_dropout: f64,
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
            let r = bench::bench_data(&dir, a.rows, |phase, s| eprintln!("{phase:<13} {s:.2} s"));
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
        BenchCommand::Plan(a) => bench_plan(a),
        BenchCommand::Gpu(a) => {
            let req = whetstone_api::gpu_bench::GpuBenchRequest {
                device: a.device,
                quick: a.quick,
                fixtures: a.fixtures.clone(),
                smollm2: a.smollm2.clone(),
                steps: a.steps,
                peak_tflops: a.peak_tflops,
                skip_7b: a.skip_7b,
            };
            let report = whetstone_api::gpu_bench::run(&req, &mut |line| println!("{line}"))?;
            if a.json {
                println!("{}", serde_json::to_string(&report)?);
            }
            if !report.passed {
                anyhow::bail!("the GPU check failed: see the FAIL lines above");
            }
            Ok(())
        }
        BenchCommand::PlanChild { config } => {
            let req: MeasureRequest = serde_json::from_str(config).context("bad configuration")?;
            crate::set_threads(None);
            whetstone_engine::device::keep_freed_memory();
            let peak = bench::measure_peak(&req)?;
            println!("{peak}");
            Ok(())
        }
        BenchCommand::Train(a) => {
            crate::set_threads(Some(a.threads));
            whetstone_engine::device::keep_freed_memory();
            let req = BenchRequest {
                model: &a.model,
                batch: a.batch,
                seq_len: a.seq_len,
                lora_r: a.lora_r,
                lora_dropout: a.lora_dropout,
                steps: a.steps,
                warmup_steps: a.warmup,
                grad_checkpoint: a.grad_checkpoint,
                quant: a.quant,
            };
            let r = bench::bench_train(&req, |i, dt| eprintln!("step {} took {dt:.2}s{}", i + 1, if i < a.warmup { " (warm-up)" } else { "" }))?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("tokens/s      {:.1}", r.tokens_per_s);
                println!("step (mean)   {:.2} s", r.step_s_mean);
                println!("step (best)   {:.2} s", r.step_s_min);
                println!("peak RSS      {:.0} MiB", r.peak_rss_mb);
                if let Some(f) = r.minor_faults_per_step {
                    println!("page faults   {f:.0} a step");
                }
                println!("model FLOPs   {:.2} GFLOP a token, {:.1} GFLOP/s", r.gflop_per_token, r.gflop_per_s);
                if let (Some(peak), Some(share)) = (r.sgemm_peak_gflop_per_s, r.share_of_sgemm_peak) {
                    println!("f32 product   {peak:.1} GFLOP/s measured here; the step reached {:.0}% of it", share * 100.0);
                }
                let kinds = if r.quant_kinds.is_empty() { "dense".to_string() } else { r.quant_kinds.join(", ") };
                println!("base          {:.1} MiB, {:.3} bytes/param ({kinds})", r.base_mb, r.base_bytes_per_param);
                if let Some(b) = r.linear_bytes_per_param {
                    println!("linear layers {b:.4} bytes/param ({:.3} bits)", b * 8.0);
                }
                println!("config        batch {} × {} tokens, r={}, dropout {}, {} threads, checkpointing {}, quant {}", r.batch, r.seq_len, r.lora_r, r.lora_dropout, r.threads, if r.grad_checkpoint { "on" } else { "off" }, r.quant);
            }
            Ok(())
        }
    }
}

/// (model, batch, seq-len, r, targets, dropout, checkpointing)
type Config = (&'static str, usize, usize, usize, &'static str, f64, bool, QuantMode);

const ALL: &str = "q,k,v,o,gate,up,down";

const GGUF_CONFIGS: &[Config] = &[
    ("gguf", 1, 256, 8, ALL, 0.0, false, QuantMode::None),
    ("gguf", 2, 256, 8, ALL, 0.05, false, QuantMode::None),
    ("gguf", 2, 256, 8, ALL, 0.0, true, QuantMode::None),
    ("gguf", 2, 128, 16, "q,v", 0.0, false, QuantMode::None),
    ("gguf", 2, 256, 8, ALL, 0.0, false, QuantMode::Native),
    ("gguf", 2, 256, 8, ALL, 0.0, false, QuantMode::Nf4),
];

const RANDOM_CONFIGS: &[Config] = &[
    ("random", 4, 256, 8, ALL, 0.05, false, QuantMode::None),
    ("random", 8, 512, 32, "q,k,v,o", 0.0, true, QuantMode::None),
    ("random", 2, 1024, 8, ALL, 0.0, false, QuantMode::None),
    ("random", 16, 128, 64, ALL, 0.0, false, QuantMode::None),
    ("random", 4, 256, 16, "gate,up,down", 0.1, false, QuantMode::None),
    ("random", 4, 256, 8, ALL, 0.0, false, QuantMode::Nf4),
];

/// A 40M-parameter Llama shape: big enough that activations, not the process, set the peak.
fn random_config() -> whetstone_engine::ModelConfig {
    let mut c = whetstone_engine::ModelConfig::tiny(whetstone_engine::Architecture::Llama);
    c.vocab_size = 16384;
    c.hidden_size = 512;
    c.intermediate_size = 1376;
    c.num_layers = 8;
    c.num_heads = 8;
    c.num_kv_heads = 4;
    c.head_dim = 64;
    c.max_position_embeddings = 2048;
    c.tie_word_embeddings = false;
    c
}

fn bench_plan(a: &PlanBenchArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the whet binary to run configurations in")?;
    let tmp = tempfile::tempdir()?;
    let random = tmp.path().join("random-40m");
    plan::write_random_model(&random, &random_config(), 0)?;
    let gguf = a.model.clone().or_else(whetstone_api::default_model_path).filter(|p| p.is_file());
    let mut configs: Vec<Config> = RANDOM_CONFIGS.to_vec();
    match (&gguf, a.quick) {
        (Some(_), false) => configs.splice(0..0, GGUF_CONFIGS.iter().copied()).for_each(drop),
        (None, false) => eprintln!("the bundled model is missing; measuring the random model only"),
        _ => {}
    }
    if !a.json {
        println!("{:<8} {:>6} {:>5} {:>6} {:>4} {:<20} {:>5} {:>5} | {:>10} {:>10} {:>7}  peak at", "model", "quant", "batch", "len", "r", "targets", "drop", "ckpt", "predicted", "measured", "error");
    }
    let mut worst = 0f64;
    for &(which, batch, seq_len, r, targets, dropout, ckpt, quant) in &configs {
        let model = if which == "gguf" { gguf.clone().unwrap_or_default() } else { random.clone() };
        let req = MeasureRequest { model, batch, seq_len, lora_r: r, targets: targets.into(), lora_dropout: dropout, grad_checkpoint: ckpt, steps: a.steps, quant };
        let predicted = plan::predict_peak(&req)?;
        let out = std::process::Command::new(&exe)
            .args(["bench", "plan-child", "--config", &serde_json::to_string(&req)?])
            .env("RAYON_NUM_THREADS", a.threads.to_string())
            .env("WHETSTONE_DEVICE", "cpu")
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("cannot run a configuration")?;
        if !out.status.success() {
            anyhow::bail!("configuration {req:?} failed");
        }
        let measured: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("the child printed no peak")?;
        let err = (predicted.peak as f64 - measured as f64) / measured as f64 * 100.0;
        worst = worst.max(err.abs());
        if a.json {
            println!("{}", serde_json::json!({"config": req, "predicted_bytes": predicted.peak, "measured_bytes": measured, "error_pct": err, "breakdown": predicted}));
        } else {
            let mib = |b: u64| format!("{:.0} MiB", b as f64 / 1048576.0);
            let quant = serde_json::to_value(quant)?.as_str().unwrap_or_default().to_string();
            println!("{which:<8} {quant:>6} {batch:>5} {seq_len:>6} {r:>4} {targets:<20} {dropout:>5} {:>5} | {:>10} {:>10} {err:>+6.1}%  {}", if ckpt { "yes" } else { "no" }, mib(predicted.peak), mib(measured), predicted.peak_phase);
        }
    }
    if !a.json {
        println!("largest error {worst:.1}% over {} configurations (CPU, f32, {} threads)", configs.len(), a.threads);
    }
    Ok(())
}
