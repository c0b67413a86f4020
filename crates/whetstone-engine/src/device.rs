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
