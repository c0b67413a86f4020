/// Only `System` is returned from [`crate::detect`]; the others become
/// [`crate::Hardware::gpu_notes`], since a missing GPU stack is an answer, not a failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read CPU and memory information from the operating system: {0}")]
    System(#[from] sysinfo::Error),

    #[error("no driver found ({0})")]
    NvidiaDriverMissing(String),

    #[error("the NVIDIA driver did not answer: {0}")]
    Nvml(#[from] nvml_wrapper::error::NvmlError),

    #[cfg(target_os = "macos")]
    #[error("{0}")]
    Metal(String),
}
