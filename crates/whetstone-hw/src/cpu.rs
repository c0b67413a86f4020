use crate::Error;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

pub(crate) struct CpuMemory {
    pub model: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub ram_total_bytes: u64,
    pub ram_available_bytes: u64,
}

pub(crate) fn probe() -> Result<CpuMemory, Error> {
    let mut sys = System::new()?;
    sys.refresh_cpu_list(CpuRefreshKind::nothing());
    sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());

    let model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(System::cpu_arch);

    // Training threads are sized from this, so it must be what this process can actually use,
    // not what the host has (containers and taskset often give fewer).
    let logical_cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or_else(|_| sys.cpus().len().max(1));

    let mut ram_total_bytes = sys.total_memory();
    let mut ram_available_bytes = sys.available_memory();
    // In a container the host's RAM is not ours to use: a memory estimate against it would let
    // the kernel kill the run.
    if let Some(limits) = sys.cgroup_limits() {
        if limits.total_memory > 0 && limits.total_memory < ram_total_bytes {
            ram_total_bytes = limits.total_memory;
            ram_available_bytes = ram_available_bytes.min(limits.free_memory);
        }
    }

    Ok(CpuMemory {
        model,
        logical_cores,
        physical_cores: System::physical_core_count().ok(),
        ram_total_bytes,
        ram_available_bytes,
    })
}
