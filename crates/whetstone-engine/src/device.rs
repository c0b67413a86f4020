//! Where training runs and in which precision.

use candle_core::{DType, Device};

/// The device and compute dtype to use: the first CUDA GPU in bf16 (adapters stay f32) when this build
/// has the `cuda` feature and a GPU answers, Metal likewise with `metal`, else the CPU in f32 (bf16
/// matmul on CPUs is slow or missing). `WHETSTONE_DEVICE=cpu` forces the CPU.
pub fn best() -> (Device, DType) {
    if std::env::var("WHETSTONE_DEVICE").is_ok_and(|v| v == "cpu") {
        return (Device::Cpu, DType::F32);
    }
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return (d, DType::BF16);
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return (d, DType::F32);
    }
    (Device::Cpu, DType::F32)
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
