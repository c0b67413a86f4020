//! The NVIDIA driver's CUDA version, read without linking CUDA: `libcuda` is opened at run time and
//! asked with `cuDriverGetVersion`, which needs no context and no GPU work. The kernel module's
//! version (`/proc/driver/nvidia/version` on Linux) is added when the system shows it, for messages.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A CUDA version as the driver API encodes it: `1000 * major + 10 * minor` (13000 is 13.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS)]
pub struct CudaVersion(pub u32);

impl CudaVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        CudaVersion(major * 1000 + minor * 10)
    }

    pub fn major(self) -> u32 {
        self.0 / 1000
    }

    pub fn minor(self) -> u32 {
        (self.0 % 1000) / 10
    }

    /// `13.0`-style text, as in `13.0` or `12.2`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
        let minor = minor.split('.').next().unwrap_or("0");
        Some(CudaVersion::new(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

/// What the NVIDIA driver says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct CudaDriver {
    /// The newest CUDA version the driver runs.
    pub cuda: CudaVersion,
    /// `13.0`-style text of the same.
    pub cuda_text: String,
    /// The driver's own version (`580.65.06`), where the system shows it.
    pub driver_version: Option<String>,
}

#[cfg(target_os = "linux")]
const LIBCUDA: &[&str] = &["libcuda.so.1", "libcuda.so"];
#[cfg(target_os = "windows")]
const LIBCUDA: &[&str] = &["nvcuda.dll"];
#[cfg(not(any(target_os = "linux", target_os = "windows")))]
const LIBCUDA: &[&str] = &[];

/// The driver's CUDA version, or why there is none.
pub fn probe() -> Result<CudaDriver, String> {
    if LIBCUDA.is_empty() {
        return Err("CUDA is not available on this operating system".into());
    }
    let mut last = String::new();
    for name in LIBCUDA {
        // SAFETY: loading the driver library runs only its own initialisers, and the one symbol
        // used is called with the signature of the CUDA driver API (`CUresult cuDriverGetVersion(int*)`).
        let lib = match unsafe { libloading::Library::new(name) } {
            Ok(lib) => lib,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let get = unsafe { lib.get::<unsafe extern "C" fn(*mut i32) -> i32>(b"cuDriverGetVersion\0") }
            .map_err(|e| format!("{name} has no cuDriverGetVersion: {e}"))?;
        let mut version = 0i32;
        let status = unsafe { get(&mut version) };
        if status != 0 || version <= 0 {
            return Err(format!("the NVIDIA driver did not say its CUDA version (error {status})"));
        }
        let cuda = CudaVersion(version as u32);
        return Ok(CudaDriver { cuda, cuda_text: cuda.to_string(), driver_version: kernel_module_version() });
    }
    Err(format!("no NVIDIA driver library ({}): {last}", LIBCUDA.join(", ")))
}

/// `580.65.06` from `NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  ...`.
fn kernel_module_version() -> Option<String> {
    let text = std::fs::read_to_string("/proc/driver/nvidia/version").ok()?;
    parse_kernel_module_version(&text)
}

pub fn parse_kernel_module_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version"))?;
    line.split_whitespace()
        .find(|w| w.split('.').count() >= 2 && w.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_and_print_as_cuda_writes_them() {
        assert_eq!(CudaVersion(13000).to_string(), "13.0");
        assert_eq!(CudaVersion(12020).to_string(), "12.2");
        assert_eq!(CudaVersion::parse("12.2"), Some(CudaVersion(12020)));
        assert_eq!(CudaVersion::parse("13"), Some(CudaVersion(13000)));
        assert_eq!(CudaVersion::parse("13.0.88"), Some(CudaVersion(13000)));
        assert_eq!(CudaVersion::parse("x"), None);
        assert!(CudaVersion(12090) < CudaVersion::new(13, 0));
    }

    #[test]
    fn the_kernel_module_version_comes_from_the_nvrm_line() {
        let text = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Jul 15 2025\nGCC version:  gcc version 12.2.0\n";
        assert_eq!(parse_kernel_module_version(text).as_deref(), Some("580.65.06"));
        assert_eq!(parse_kernel_module_version("GCC version: 12.2.0"), None);
    }
}
