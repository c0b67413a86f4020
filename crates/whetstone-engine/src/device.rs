//! Where training runs and in which precision.
//!
//! On an NVIDIA GPU the decoder computes in bf16 while the LoRA weights, their gradients and AdamW's
//! moments stay f32 (see `lora.rs` and `optim.rs`: adapters are cast to the activations' dtype inside
//! each product, and their gradients come back through that cast as f32). On the CPU and on Apple
//! GPUs everything is f32: bf16 products on CPUs are slow or missing, and candle's Metal kernels do
//! not cover every bf16 op the decoder uses.

use crate::error::{Error, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The environment variable a worker is started with, naming the device the app chose; it wins over
/// the run's `device` setting. `WHETSTONE_DEVICE=cpu` also forces the CPU by hand.
pub const DEVICE_ENV: &str = "WHETSTONE_DEVICE";

/// Which device a run trains on, as people name it: `auto` (the best this computer has), `cpu`,
/// `cuda` (the first NVIDIA GPU), `cuda:N`, or `metal` (Apple GPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, ts_rs::TS)]
#[ts(type = "string")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    /// An NVIDIA GPU: `None` for the first one.
    Cuda(Option<usize>),
    Metal,
}

impl DeviceChoice {
    /// What `device` accepts, for messages.
    pub const ACCEPTED: &'static str = "auto, cpu, cuda, cuda:N (N is the GPU's number in `whet hw`) or metal";

    pub fn is_gpu(self) -> bool {
        matches!(self, DeviceChoice::Cuda(_) | DeviceChoice::Metal)
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(None) => f.write_str("cuda"),
            DeviceChoice::Cuda(Some(i)) => write!(f, "cuda:{i}"),
            DeviceChoice::Metal => f.write_str("metal"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || Error::Settings(format!("unknown device `{}`: use {}", s.trim(), DeviceChoice::ACCEPTED));
        Ok(match t.as_str() {
            "auto" | "" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "cuda" | "gpu" => DeviceChoice::Cuda(None),
            "metal" | "mps" => DeviceChoice::Metal,
            other => {
                let n = other.strip_prefix("cuda:").or_else(|| other.strip_prefix("gpu:")).ok_or_else(bad)?;
                DeviceChoice::Cuda(Some(n.parse().map_err(|_| bad())?))
            }
        })
    }
}

// As the text people write (`cuda:1`), in settings files, job files and the API alike.
impl Serialize for DeviceChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|e: Error| match e {
            Error::Settings(m) => serde::de::Error::custom(m),
            other => serde::de::Error::custom(other),
        })
    }
}

/// The compute dtype on `device`: bf16 on CUDA, f32 elsewhere. Adapters and optimizer state are f32
/// everywhere.
pub fn compute_dtype(device: &Device) -> DType {
    if device.is_cuda() {
        DType::BF16
    } else {
        DType::F32
    }
}

/// The device named in [`DEVICE_ENV`], if set.
pub fn env_choice() -> Result<Option<DeviceChoice>> {
    match std::env::var(DEVICE_ENV) {
        Ok(v) if !v.trim().is_empty() => v.parse().map(Some).map_err(|e| Error::Settings(format!("{DEVICE_ENV}: {e}"))),
        _ => Ok(None),
    }
}

/// Whether this program was built to train on NVIDIA GPUs.
pub const fn has_cuda() -> bool {
    cfg!(feature = "cuda")
}

/// Whether this program was built to train on Apple GPUs.
pub const fn has_metal() -> bool {
    cfg!(feature = "metal")
}

/// The CUDA toolkit this program was built with (`13.0`), from `scripts/build-cuda.sh`; `None` for a
/// build without CUDA or one made without the script.
pub fn cuda_toolkit() -> Option<&'static str> {
    if has_cuda() {
        option_env!("WHETSTONE_CUDA_TOOLKIT")
    } else {
        None
    }
}

/// Opens the device `choice` names, with its compute dtype. `auto` takes the first CUDA GPU when this
/// build has CUDA and one answers, else the first Metal GPU likewise, else the CPU. A GPU named
/// explicitly that cannot be opened is an error saying why, never a silent fall back to the CPU.
pub fn open(choice: DeviceChoice) -> Result<(Device, DType)> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, DType::F32)),
        DeviceChoice::Cuda(index) => open_cuda(index.unwrap_or(0)),
        DeviceChoice::Metal => open_metal(),
        DeviceChoice::Auto => {
            if has_cuda() {
                if let Ok(d) = open_cuda(0) {
                    return Ok(d);
                }
            }
            if has_metal() {
                if let Ok(d) = open_metal() {
                    return Ok(d);
                }
            }
            Ok((Device::Cpu, DType::F32))
        }
    }
}

fn open_cuda(index: usize) -> Result<(Device, DType)> {
    #[cfg(feature = "cuda")]
    {
        let device = Device::new_cuda(index).map_err(|e| Error::Device(format!("NVIDIA GPU {index} could not be opened: {}", first_line(&e))))?;
        cuda::keep_freed_memory(&device);
        Ok((device, DType::BF16))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = index;
        Err(Error::Device(
            "this program was built without CUDA; the GPU worker (whetstone-worker-cuda, made by scripts/build-cuda.sh) trains on NVIDIA GPUs".into(),
        ))
    }
}

fn open_metal() -> Result<(Device, DType)> {
    #[cfg(feature = "metal")]
    {
        let device = Device::new_metal(0).map_err(|e| Error::Device(format!("the Apple GPU could not be opened: {}", first_line(&e))))?;
        Ok((device, DType::F32))
    }
    #[cfg(not(feature = "metal"))]
    {
        Err(Error::Device("this program was built without Metal (build with --features metal on macOS)".into()))
    }
}

/// An error's message without the backtrace candle appends when `RUST_BACKTRACE` is set.
#[allow(dead_code)]
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The device and compute dtype for `settings_choice`, with [`DEVICE_ENV`] winning when set.
pub fn for_run(settings_choice: DeviceChoice) -> Result<(Device, DType)> {
    open(env_choice()?.unwrap_or(settings_choice))
}

/// `auto`, or what [`DEVICE_ENV`] says; falls back to the CPU when the named device fails. For
/// tools (benches, evaluation) that have no run settings.
pub fn best() -> (Device, DType) {
    let choice = env_choice().ok().flatten().unwrap_or_default();
    open(choice).unwrap_or((Device::Cpu, DType::F32))
}

/// Words for a device: `NVIDIA GPU 0 (bf16)`, `the processor (f32)`.
pub fn describe(device: &Device, dtype: DType) -> String {
    let precision = if dtype == DType::BF16 { "bf16, adapters in f32" } else { "f32" };
    match device {
        Device::Cpu => format!("the processor ({precision})"),
        Device::Cuda(_) => format!("NVIDIA GPU {} ({precision})", cuda_ordinal(device).unwrap_or(0)),
        Device::Metal(_) => format!("the Apple GPU ({precision})"),
    }
}

/// The device as [`DeviceChoice`] names it: `cpu`, `cuda:N`, `metal`.
pub fn name(device: &Device) -> DeviceChoice {
    match device {
        Device::Cpu => DeviceChoice::Cpu,
        Device::Cuda(_) => DeviceChoice::Cuda(Some(cuda_ordinal(device).unwrap_or(0))),
        Device::Metal(_) => DeviceChoice::Metal,
    }
}

fn cuda_ordinal(device: &Device) -> Option<usize> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        return Some(d.cuda_stream().context().ordinal());
    }
    let _ = device;
    None
}

/// Sets how many CPU threads the tensor library uses, and keeps its worker pool from spinning.
///
/// candle runs matrix products on rayon's pool and element-wise kernels on a pool of its own whose
/// idle workers spin (25,000 turns by default) before they sleep. On a machine with few cores a
/// spinning worker takes a core from the matrix product that follows: on 2 cores, batch 2 × 256,
/// a training step went from 30.5 s to 21.9 s with the spinning cut short. Both pools read these
/// variables once, when first used, so this must run before any tensor work; values already set in
/// the environment win.
pub fn configure_cpu(threads: Option<usize>) {
    if let Some(n) = threads.filter(|&n| n > 0) {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "64");
    }
}

/// Keeps the memory a training step frees for the steps after it, instead of handing it back to
/// the system.
///
/// glibc gives every buffer above its mmap threshold (which adapts, but only up to 32 MiB) pages
/// of its own and returns them on free, so each step mapped its large buffers afresh and the kernel
/// zeroed every page again: at batch 1 × 2048 on SmolLM2-135M, 540,000 page faults a step and
/// 14.9 s a step, against 4 faults and 13.9 s with this; the peak RSS stayed the same (2.49 GB),
/// since a step reaches its peak either way. For processes that train, which end with the run; a
/// long-lived server would keep its highest use for good.
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes thresholds of the allocator's own bookkeeping; it is safe to
    // call at any time, from any thread.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// GPU memory as the CUDA driver accounts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GpuMemory {
    /// Bytes held by tensors now.
    pub allocated: u64,
    /// Highest bytes held by tensors at once (the allocation pool's used high-water mark).
    pub allocated_peak: u64,
    /// Highest bytes the pool held from the device at once, freed tensors' memory included.
    pub reserved_peak: u64,
    /// Device memory in use now, by every process (`total - free`).
    pub device_used: u64,
    pub device_total: u64,
}

/// The allocation pool's high-water marks and the device's use; `None` on devices other than CUDA.
pub fn gpu_memory(device: &Device) -> Result<Option<GpuMemory>> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        return cuda::memory(device).map(Some);
    }
    let _ = device;
    Ok(None)
}

/// Resets the pool's high-water marks to what is held now, so the next [`gpu_memory`] shows the peak
/// of what runs in between.
pub fn reset_gpu_peak(device: &Device) -> Result<()> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        return cuda::reset_peak(device);
    }
    let _ = device;
    Ok(())
}

/// Returns the memory freed tensors left in the GPU's pool to the device, so that what follows is
/// measured from what is really held.
pub fn trim_gpu_pool(device: &Device) -> Result<()> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        device.synchronize()?;
        return cuda::trim(device);
    }
    let _ = device;
    Ok(())
}

#[cfg(feature = "cuda")]
mod cuda {
    //! candle allocates through cudarc with `cuMemAllocAsync` from the device's default memory pool;
    //! its attributes give exact high-water marks and let freed memory stay in the pool.

    use super::GpuMemory;
    use crate::error::{Error, Result};
    use candle_core::cuda::cudarc::driver::{result, sys};
    use candle_core::Device;

    fn pool(device: &Device) -> Result<(sys::CUmemoryPool, std::sync::Arc<candle_core::cuda::cudarc::driver::CudaContext>)> {
        let Device::Cuda(d) = device else { return Err(Error::Internal("not a CUDA device".into())) };
        let ctx = d.cuda_stream().context().clone();
        ctx.bind_to_thread().map_err(|e| Error::Device(e.to_string()))?;
        // SAFETY: the device handle comes from a live context.
        let pool = unsafe { result::device::get_default_mem_pool(ctx.cu_device()) }.map_err(|e| Error::Device(e.to_string()))?;
        Ok((pool, ctx))
    }

    fn get(pool: sys::CUmemoryPool, attr: sys::CUmemPool_attribute) -> Result<u64> {
        let mut v: u64 = 0;
        // SAFETY: the high-water and threshold attributes are 64-bit integers.
        unsafe { result::mem_pool::get_attribute(pool, attr, &mut v as *mut u64 as *mut _) }.map_err(|e| Error::Device(e.to_string()))?;
        Ok(v)
    }

    fn set(pool: sys::CUmemoryPool, attr: sys::CUmemPool_attribute, mut v: u64) -> Result<()> {
        // SAFETY: as in `get`.
        unsafe { result::mem_pool::set_attribute(pool, attr, &mut v as *mut u64 as *mut _) }.map_err(|e| Error::Device(e.to_string()))
    }

    /// Keeps memory freed by tensors in the pool instead of returning it to the device at every
    /// synchronisation (the default threshold of 0 does): each training step frees and allocates
    /// the same sizes again, and mapping them anew every step costs time. PyTorch's caching
    /// allocator behaves the same way. Best effort: training works without it.
    pub(super) fn keep_freed_memory(device: &Device) {
        if let Ok((pool, _ctx)) = pool(device) {
            let _ = set(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, u64::MAX);
        }
    }

    pub(super) fn memory(device: &Device) -> Result<GpuMemory> {
        let (pool, ctx) = pool(device)?;
        let allocated = get(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?;
        let allocated_peak = get(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH)?;
        let reserved_peak = get(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH)?;
        let (free, total) = ctx.mem_get_info().map_err(|e| Error::Device(e.to_string()))?;
        Ok(GpuMemory { allocated, allocated_peak, reserved_peak, device_used: (total - free) as u64, device_total: total as u64 })
    }

    pub(super) fn trim(device: &Device) -> Result<()> {
        let (pool, _ctx) = pool(device)?;
        // SAFETY: the pool belongs to a live context; trimming only releases unused memory.
        unsafe { result::mem_pool::trim_to(pool, 0) }.map_err(|e| Error::Device(e.to_string()))
    }

    pub(super) fn reset_peak(device: &Device) -> Result<()> {
        let (pool, _ctx) = pool(device)?;
        // Setting a high-water mark to 0 resets it to the current value.
        set(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH, 0)?;
        set(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_read_and_print_the_same() {
        for (text, want) in [
            ("auto", DeviceChoice::Auto),
            ("CPU", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(None)),
            ("gpu", DeviceChoice::Cuda(None)),
            ("cuda:1", DeviceChoice::Cuda(Some(1))),
            (" gpu:0 ", DeviceChoice::Cuda(Some(0))),
            ("metal", DeviceChoice::Metal),
        ] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap(), want, "{text}");
        }
        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(None), DeviceChoice::Cuda(Some(3)), DeviceChoice::Metal] {
            assert_eq!(d.to_string().parse::<DeviceChoice>().unwrap(), d);
            assert_eq!(serde_json::to_value(d).unwrap(), serde_json::Value::String(d.to_string()));
        }
        for bad in ["tpu", "cuda:", "cuda:x", "cuda:-1"] {
            let e = bad.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(e.contains(&format!("unknown device `{bad}`")) && e.contains("cuda:N"), "{e}");
        }
        assert!(serde_json::from_value::<DeviceChoice>(serde_json::json!("tpu")).is_err());
    }

    #[test]
    fn the_cpu_computes_in_f32_and_a_build_without_a_gpu_says_so() {
        assert_eq!(open(DeviceChoice::Cpu).unwrap().1, DType::F32);
        assert_eq!(compute_dtype(&Device::Cpu), DType::F32);
        if !has_cuda() {
            let e = open(DeviceChoice::Cuda(Some(0))).unwrap_err();
            assert_eq!(e.code(), "device_unavailable");
            assert!(e.to_string().contains("built without CUDA"), "{e}");
            assert!(cuda_toolkit().is_none());
        }
        if !has_metal() {
            assert!(open(DeviceChoice::Metal).unwrap_err().to_string().contains("built without Metal"));
        }
    }
}
