//! What this machine has to train with: CPU, RAM and GPUs.
//!
//! GPU libraries are loaded at run time (NVML through `dlopen`), so one binary runs on machines
//! with and without a driver. A missing driver is an ordinary answer — no GPUs, plus a note saying
//! why — not an error.

mod cpu;
pub mod cuda_driver;
mod error;
mod nvidia;

#[cfg(target_os = "macos")]
mod apple;

pub use cuda_driver::{CudaDriver, CudaVersion};
pub use error::Error;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Hardware {
    pub cpu_model: String,
    /// Logical cores this process may run on (affinity and cgroup quotas applied).
    pub cpu_cores: usize,
    /// `None` where the OS does not say.
    pub cpu_physical_cores: Option<usize>,
    /// Physical RAM, or the cgroup memory limit when that is smaller.
    pub ram_total_bytes: u64,
    pub ram_available_bytes: u64,
    pub gpus: Vec<Gpu>,
    /// Why a GPU backend found nothing (driver missing, library failed to load, ...).
    pub gpu_notes: Vec<String>,
    /// The NVIDIA driver's CUDA version, when a driver answered.
    pub cuda_driver: Option<CudaDriver>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Gpu {
    pub name: String,
    /// `"cuda"` or `"metal"`.
    pub backend: String,
    pub vram_total_bytes: u64,
    pub vram_free_bytes: u64,
}

/// Probes the CPU, memory and every GPU backend this platform supports.
pub fn detect() -> Result<Hardware, Error> {
    let cpu = cpu::probe()?;
    let mut gpus = Vec::new();
    let mut gpu_notes = Vec::new();

    let nvidia = nvidia::probe();
    let cuda_driver = match &nvidia {
        // Without NVML there is no driver to ask either; its note says why.
        Err(_) => None,
        Ok(found) => match cuda_driver::probe() {
            Ok(d) => Some(d),
            Err(e) => {
                if !found.is_empty() {
                    gpu_notes.push(format!("NVIDIA: {e}"));
                }
                None
            }
        },
    };
    match nvidia {
        Ok(found) => gpus.extend(found),
        Err(e) => gpu_notes.push(format!("NVIDIA: {e}")),
    }

    #[cfg(target_os = "macos")]
    match apple::probe() {
        Ok(found) => gpus.extend(found),
        Err(e) => gpu_notes.push(format!("Metal: {e}")),
    }

    Ok(Hardware {
        cpu_model: cpu.model,
        cpu_cores: cpu.logical_cores,
        cpu_physical_cores: cpu.physical_cores,
        ram_total_bytes: cpu.ram_total_bytes,
        ram_available_bytes: cpu.ram_available_bytes,
        gpus,
        gpu_notes,
        cuda_driver,
    })
}
