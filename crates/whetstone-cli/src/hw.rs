use crate::human_bytes;
use clap::Args;
use whetstone_api::backend::{self, WorkerKind};

#[derive(Args)]
pub struct HwArgs {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: &HwArgs) -> anyhow::Result<()> {
    let hw = whetstone_api::hardware()?;
    let devices = backend::options(&backend::detect(&hw, &crate::workers()?));
    if args.json {
        // The hardware's own fields, with where runs train beside them.
        let mut value = serde_json::to_value(&hw)?;
        value["training"] = serde_json::to_value(&devices)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let physical = hw
        .cpu_physical_cores
        .map(|n| format!(", {n} physical"))
        .unwrap_or_default();
    println!("CPU:  {} ({} logical cores{physical})", hw.cpu_model, hw.cpu_cores);
    println!(
        "RAM:  {} total, {} available",
        human_bytes(hw.ram_total_bytes),
        human_bytes(hw.ram_available_bytes)
    );
    if hw.gpus.is_empty() {
        println!("GPUs: none found");
    } else {
        println!("GPUs:");
        for gpu in &hw.gpus {
            println!(
                "  {} ({}): {} VRAM, {} free",
                gpu.name,
                gpu.backend,
                human_bytes(gpu.vram_total_bytes),
                human_bytes(gpu.vram_free_bytes)
            );
        }
    }
    for note in &hw.gpu_notes {
        println!("  note: {note}");
    }
    if let Some(d) = &hw.cuda_driver {
        let version = d.driver_version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        println!("NVIDIA driver{version}: runs CUDA {} (the GPU worker needs {})", d.cuda_text, devices.cuda_needed);
    }
    let auto = &devices.auto;
    let worker = match auto.worker {
        WorkerKind::Cpu => "this program".to_string(),
        WorkerKind::Cuda => format!("the GPU worker {}", devices.cuda_worker.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
    };
    println!("Training: {} ({}), by {worker}", auto.label, auto.precision);
    if let Some(note) = &auto.note {
        println!("  note: {note}");
    }
    match &devices.cuda_worker {
        Some(p) => println!("GPU worker: {}", p.display()),
        None => println!("GPU worker: none (scripts/build-cuda.sh makes one; it goes beside this program)"),
    }
    println!("Devices (whet train --device, or `device` in a settings file):");
    for o in &devices.options {
        match (&o.selection, &o.problem) {
            (Some(s), _) => println!("  {:<8} {} — trains on {} ({})", o.value.to_string(), o.label, s.label, s.precision),
            (None, Some(p)) => println!("  {:<8} {} — unavailable: {p}", o.value.to_string(), o.label),
            (None, None) => println!("  {:<8} {}", o.value.to_string(), o.label),
        }
    }
    Ok(())
}
