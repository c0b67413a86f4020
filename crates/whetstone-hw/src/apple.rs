//! Apple GPUs through Metal. Compiled on macOS only; Apple silicon shares RAM between CPU and GPU,
//! so "VRAM" here is the working set Metal recommends for one process.

use crate::{Error, Gpu};
use objc2_metal::{MTLCopyAllDevices, MTLDevice};

pub(crate) fn probe() -> Result<Vec<Gpu>, Error> {
    let devices = MTLCopyAllDevices().to_vec();
    if devices.is_empty() {
        return Err(Error::Metal("no Metal device found".into()));
    }
    Ok(devices
        .iter()
        .map(|device| {
            let total = device.recommendedMaxWorkingSetSize();
            let used = device.currentAllocatedSize() as u64;
            Gpu {
                name: device.name().to_string(),
                backend: "metal".to_string(),
                vram_total_bytes: total,
                vram_free_bytes: total.saturating_sub(used),
            }
        })
        .collect())
}
