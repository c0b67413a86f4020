//! With the `cuda` feature, compiles the engine's own CUDA kernels (`src/cuda/*.cu`) to PTX with
//! nvcc, for the compute capability candle's kernels are built for (`CUDA_COMPUTE_CAP`). The driver
//! compiles the PTX for the GPU it runs on when the kernels are first used.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=src/cuda");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let cap: String = cap.chars().filter(|c| c.is_ascii_digit()).collect();
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    for kernel in ["nf4"] {
        let src = format!("src/cuda/{kernel}.cu");
        let ptx = out.join(format!("{kernel}.ptx"));
        let status = std::process::Command::new(&nvcc)
            .args(["--ptx", "-O3", "-std=c++17"])
            .arg(format!("--gpu-architecture=compute_{cap}"))
            .arg("-o")
            .arg(&ptx)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {nvcc} to compile {src} (the cuda feature needs nvcc on the PATH): {e}"));
        assert!(status.success(), "{nvcc} failed on {src}");
    }
}
