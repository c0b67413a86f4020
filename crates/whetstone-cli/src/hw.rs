use crate::human_bytes;
use clap::Args;

#[derive(Args)]
pub struct HwArgs {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: &HwArgs) -> anyhow::Result<()> {
    let hw = whetstone_api::hardware()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&hw)?);
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
    Ok(())
}
