//! `whet`: Whetstone from the command line. Each subcommand lives in its own module.

mod bench;
mod data;
mod eval;
mod export;
mod folders;
mod generate;
mod hw;
mod list;
mod runs;
mod model;
mod plan;
mod queue;
mod review;
mod serve;
mod train;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use whetstone_api::Api;

#[derive(Parser)]
#[command(
    name = "whet",
    version,
    about = "Fine-tune open language models on this machine and review what they write."
)]
struct Cli {
    /// Whetstone's data folder [default: $WHETSTONE_HOME, else the platform data folder]
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the CPU, memory and GPUs Whetstone can train with
    Hw(hw::HwArgs),
    /// Models: list, catalog, hub search, pull, import
    Model {
        #[command(subcommand)]
        action: model::ModelCommand,
    },
    /// Models Whetstone knows about (`whet models list` = `whet model list`)
    Models {
        #[command(subcommand)]
        action: list::ListAction,
    },
    /// Predict a training job's peak memory and whether it fits this machine
    Plan(Box<plan::PlanArgs>),
    /// Imported datasets
    Datasets {
        #[command(subcommand)]
        action: list::ListAction,
    },
    /// Import, clean, split, measure, preview and export datasets
    Data {
        #[command(subcommand)]
        what: data::DataCommand,
    },
    /// Folders the HTTP server and the app may read and write: list, add, remove
    Folders {
        #[command(subcommand)]
        action: folders::FoldersCommand,
    },
    /// Training runs: list, show, pause, resume, stop, logs, export
    Runs {
        #[command(subcommand)]
        action: runs::RunsAction,
    },
    /// Export a finished run: PEFT adapter, merged weights, GGUF, Ollama or an Axolotl job
    Export(Box<export::ExportArgs>),
    /// Serve the API and the web UI over HTTP on this machine
    Serve(serve::ServeArgs),
    /// Fine-tune a model with LoRA on a dataset file or an imported dataset
    Train(Box<train::TrainArgs>),
    /// Measure a model on a dataset, score texts, evaluate a run
    Eval {
        #[command(subcommand)]
        what: eval::EvalCommand,
    },
    /// Review sessions: agreement figures from plain files, a local model as a judge
    Review {
        #[command(subcommand)]
        what: review::ReviewCommand,
    },
    /// Write an answer to a prompt
    Generate(generate::GenerateArgs),
    /// Measure speed and memory
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Train the run in DIR (started by `whet train` and the app, not by hand)
    #[command(hide = true)]
    Worker {
        #[arg(long, value_name = "DIR")]
        run_dir: PathBuf,
    },
    /// Open the first NVIDIA GPU and run a small product on it; prints one JSON line (asked by the
    /// app and `whet` of their GPU worker before they start runs on it)
    #[command(hide = true)]
    WorkerProbe,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = cli.home.as_deref();
    match cli.command {
        Command::Hw(args) => hw::run(&args),
        Command::Model { action } => model::run(&open_api(home)?, &action),
        Command::Models { action } => list::models(&open_api(home)?, &action),
        Command::Plan(args) => plan::run(&open_api(home)?, &args),
        Command::Datasets { action } => list::datasets(&open_api(home)?, &action),
        Command::Data { what } => data::run(&open_api(home)?, &what),
        Command::Folders { action } => folders::run(&open_api(home)?, &action),
        Command::Runs { action } => runs::run(&open_api(home)?, &action),
        Command::Export(args) => export::run(&open_api(home)?, &args),
        Command::Serve(args) => serve::run(open_api(home)?, &args),
        Command::Train(args) => train::run(&open_api(home)?, &args),
        Command::Eval { what } => eval::run(home, &what),
        Command::Review { what } => review::run(home, &what),
        Command::Generate(args) => generate::run(&args),
        Command::Bench { what } => bench::run(&what),
        Command::Worker { run_dir } => runs::worker(&run_dir),
        Command::WorkerProbe => {
            println!("{}", serde_json::to_string(&whetstone_api::backend::probe_this_program())?);
            Ok(())
        }
    }
}

/// Compute threads for the tensor library; its pools read their settings when they start, so this
/// runs before any model is loaded.
pub(crate) fn set_threads(threads: Option<usize>) {
    whetstone_engine::device::configure_cpu(threads);
}

/// The API, able to start training workers: this same program with its hidden `worker` command,
/// and the GPU worker beside it when there is one.
pub(crate) fn open_api(home: Option<&Path>) -> anyhow::Result<Api> {
    let api = match home {
        Some(dir) => Api::open(dir)?,
        None => Api::open_default()?,
    };
    Ok(api.with_workers(workers()?))
}

/// This program as the CPU worker, and the GPU worker beside it (or this program, built with CUDA).
pub(crate) fn workers() -> anyhow::Result<whetstone_api::Workers> {
    Ok(whetstone_api::Workers::beside_current_exe(&["worker"])?)
}

/// `1536 MiB`-style sizes people can read at a glance.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
