use crate::{Error, Gpu};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

/// Lists NVIDIA GPUs through NVML, which `nvml-wrapper` loads with `dlopen`: where no driver is
/// installed this returns why instead of failing to start.
pub(crate) fn probe() -> Result<Vec<Gpu>, Error> {
    let nvml = Nvml::init().map_err(|e| match e {
        NvmlError::LibloadingError(load) => {
            Error::NvidiaDriverMissing(format!("cannot load the NVML library: {load}"))
        }
        NvmlError::DriverNotLoaded => {
            Error::NvidiaDriverMissing("NVML is installed but the kernel driver is not loaded".into())
        }
        NvmlError::LibraryNotFound => {
            Error::NvidiaDriverMissing("NVML could not find its shared library".into())
        }
        other => Error::Nvml(other),
    })?;
    let count = nvml.device_count()?;
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml.device_by_index(index)?;
        let memory = device.memory_info()?;
        gpus.push(Gpu {
            name: device.name()?,
            backend: "cuda".to_string(),
            vram_total_bytes: memory.total,
            vram_free_bytes: memory.free,
        });
    }
    Ok(gpus)
}
