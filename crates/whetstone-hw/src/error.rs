#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read CPU and memory information from the operating system: {0}")]
    System(#[from] sysinfo::Error),

    /// Reported as a note in [`crate::Hardware::gpu_notes`], never returned from `detect`.
    #[error("{0}")]
    Nvml(#[from] nvml_wrapper::error::NvmlError),

    #[cfg(target_os = "macos")]
    #[error("{0}")]
    Metal(String),
}
