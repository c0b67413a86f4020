//! Where a run trains, and which worker program trains it.
//!
//! The app and `whet` are CPU programs that start on every computer. Training on an NVIDIA GPU takes
//! a program built with CUDA, and such a program does not start where CUDA's libraries are missing:
//! so the GPU worker is a program of its own, `whetstone-worker-cuda`, beside the app or `whet`
//! (`scripts/build-cuda.sh` makes it and its library folder), started only for runs on the GPU.
//!
//! What decides is [`select`]: a pure function of what was found on this computer ([`Detected`]:
//! GPUs, the driver's CUDA version, the GPU worker and whether it could use the GPU) and what the
//! user chose (`auto`, `cpu`, `cuda`, `cuda:N`, `metal`). It returns the device and the worker, or a
//! [`DeviceError`] that says in plain words what is missing. [`detect`] gathers the facts.

use crate::jobs::WorkerCommand;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use whetstone_engine::device::DeviceChoice;
use whetstone_hw::{CudaVersion, Gpu, Hardware};

/// The GPU worker's file name, looked for beside the running program.
pub const CUDA_WORKER_NAME: &str = if cfg!(windows) { "whetstone-worker-cuda.exe" } else { "whetstone-worker-cuda" };
/// A path to the GPU worker, used instead of the one beside the running program.
pub const CUDA_WORKER_ENV: &str = "WHETSTONE_CUDA_WORKER";
/// The CUDA version the GPU worker needs from the driver: `scripts/cuda-toolkit.sh` builds it with
/// CUDA 13.0, whose kernels a driver can only load when it runs CUDA 13.0 or later.
pub const CUDA_NEEDED: CudaVersion = CudaVersion::new(13, 0);
/// The argument that makes a worker program open the GPU, run a test product and print a
/// [`ProbeReport`]: `whet worker-probe`, and the same first argument to the desktop app.
pub const PROBE_ARG: &str = "worker-probe";
/// How long the GPU worker may take to open the GPU and run its first products.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(90);

/// The worker programs this host can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    /// Trains on the CPU (and on Metal when built with it): the app or `whet` itself.
    pub cpu: WorkerCommand,
    /// Trains on NVIDIA GPUs; `None` when there is no such program.
    pub cuda: Option<WorkerCommand>,
    /// Where the GPU worker was looked for, for the message when it is missing.
    pub cuda_expected: PathBuf,
}

impl Workers {
    /// Only `cpu`: a host that never trains on an NVIDIA GPU.
    pub fn cpu_only(cpu: WorkerCommand) -> Workers {
        let cuda_expected = cpu.program.with_file_name(CUDA_WORKER_NAME);
        Workers { cpu, cuda: None, cuda_expected }
    }

    /// This program as the CPU worker (started with `cpu_args`). The GPU worker is this program too
    /// when it was built with CUDA; else `$WHETSTONE_CUDA_WORKER`, else `whetstone-worker-cuda`
    /// beside this program, when it is there. The GPU worker is a CUDA build of `whet`, started as
    /// `whet worker`.
    pub fn beside_current_exe(cpu_args: &[&str]) -> crate::Result<Workers> {
        let cpu = WorkerCommand::current_exe(cpu_args)?;
        Ok(Workers::find(cpu, std::env::var_os(CUDA_WORKER_ENV).map(PathBuf::from)))
    }

    /// [`Workers::beside_current_exe`] for a given CPU worker and `$WHETSTONE_CUDA_WORKER` value.
    pub fn find(cpu: WorkerCommand, env_worker: Option<PathBuf>) -> Workers {
        let mut w = Workers::cpu_only(cpu);
        if whetstone_engine::device::has_cuda() {
            w.cuda = Some(w.cpu.clone());
            w.cuda_expected = w.cpu.program.clone();
            return w;
        }
        let path = env_worker.filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| w.cuda_expected.clone());
        w.cuda_expected = path.clone();
        if path.is_file() {
            w.cuda = Some(WorkerCommand { program: path, args: vec!["worker".into()] });
        }
        w
    }

    pub fn for_kind(&self, kind: WorkerKind) -> Option<&WorkerCommand> {
        match kind {
            WorkerKind::Cpu => Some(&self.cpu),
            WorkerKind::Cuda => self.cuda.as_ref(),
        }
    }
}

/// What was found on this computer that decides where training can run.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// NVIDIA GPUs the driver lists, in its order.
    pub cuda_gpus: Vec<Gpu>,
    /// Apple GPUs.
    pub metal_gpus: Vec<Gpu>,
    /// The newest CUDA the NVIDIA driver runs, when a driver answered.
    pub cuda_driver: Option<CudaVersion>,
    /// The driver's own version (`580.65.06`), for messages.
    pub driver_version: Option<String>,
    /// Why no NVIDIA driver answered, when none did.
    pub driver_problem: Option<String>,
    /// The GPU worker program, when there is one.
    pub cuda_worker: Option<PathBuf>,
    /// Where it was looked for.
    pub cuda_worker_expected: PathBuf,
    /// The CUDA version the GPU worker needs.
    pub cuda_needed: CudaVersion,
    /// Whether the GPU worker opened the GPU and ran its first products (its CUDA libraries found,
    /// its kernels loaded); `None` when it was not tried because something before it was missing.
    pub cuda_probe: Option<Result<(), String>>,
    /// bf16 matrix-product speed the GPU worker measured on GPU 0, in floating-point operations per
    /// second, for time estimates made in a program that cannot use the GPU itself.
    pub cuda_matmul_flops: Option<f64>,
    /// This program trains on Apple GPUs (built with the `metal` feature).
    pub metal_build: bool,
}

/// Which worker program a run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// The app or `whet` itself.
    Cpu,
    /// `whetstone-worker-cuda`.
    Cuda,
}

/// Where a run trains.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Selection {
    /// The device itself: `cpu`, `cuda:N` or `metal`.
    pub device: DeviceChoice,
    pub worker: WorkerKind,
    /// In words: `NVIDIA H200 (GPU 0)`, `the processor`.
    pub label: String,
    /// `bf16, adapters in f32` or `f32`.
    pub precision: String,
    /// Under `auto` on the processor: why no GPU is used, when this computer has one or a driver.
    pub note: Option<String>,
}

/// Why a device cannot train here, in words a user can act on. The same sentence refuses a run on
/// it and explains, in the list of devices, why it is unavailable, so it does not assume it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("No NVIDIA driver was found on this computer{}. Install the NVIDIA driver to train on the GPU, or train on the processor.", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NoDriver { detail: Option<String> },
    #[error("The NVIDIA driver lists no GPU on this computer.")]
    NoGpu,
    #[error("The NVIDIA driver is too old: training on the GPU needs CUDA {needed}, and this driver{} supports CUDA {found}. Update the NVIDIA driver, or train on the processor.", driver.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    DriverTooOld { needed: CudaVersion, found: CudaVersion, driver: Option<String> },
    #[error("There is no GPU {index}: this computer has {count} NVIDIA GPU{} (numbered from 0).", if *count == 1 { "" } else { "s" })]
    NoSuchGpu { index: usize, count: usize },
    #[error("This installation has no GPU worker: {} is missing. scripts/build-cuda.sh builds it and puts it there; until then, train on the processor.", expected.display())]
    NoCudaWorker { expected: PathBuf },
    #[error("The GPU worker ({}) could not use the GPU: {reason}", path.display())]
    CudaWorkerFailed { path: PathBuf, reason: String },
    #[error("The Apple GPU (Metal) cannot be used: {reason}.")]
    NoMetal { reason: String },
}

fn cuda_selection(index: usize, d: &Detected) -> Result<Selection, DeviceError> {
    let Some(found) = d.cuda_driver else {
        return Err(DeviceError::NoDriver { detail: d.driver_problem.clone() });
    };
    if d.cuda_gpus.is_empty() {
        return Err(DeviceError::NoGpu);
    }
    if found < d.cuda_needed {
        return Err(DeviceError::DriverTooOld { needed: d.cuda_needed, found, driver: d.driver_version.clone() });
    }
    let Some(gpu) = d.cuda_gpus.get(index) else {
        return Err(DeviceError::NoSuchGpu { index, count: d.cuda_gpus.len() });
    };
    let Some(path) = &d.cuda_worker else {
        return Err(DeviceError::NoCudaWorker { expected: d.cuda_worker_expected.clone() });
    };
    if let Some(Err(reason)) = &d.cuda_probe {
        return Err(DeviceError::CudaWorkerFailed { path: path.clone(), reason: reason.clone() });
    }
    Ok(Selection {
        device: DeviceChoice::Cuda(Some(index)),
        worker: WorkerKind::Cuda,
        label: format!("{} (GPU {index})", gpu.name),
        precision: "bf16, adapters in f32".into(),
        note: None,
    })
}

fn metal_selection(d: &Detected) -> Result<Selection, DeviceError> {
    if !d.metal_build {
        return Err(DeviceError::NoMetal { reason: "this program was built without Metal".into() });
    }
    let Some(gpu) = d.metal_gpus.first() else {
        return Err(DeviceError::NoMetal { reason: "no Apple GPU was found".into() });
    };
    Ok(Selection { device: DeviceChoice::Metal, worker: WorkerKind::Cpu, label: gpu.name.clone(), precision: "f32".into(), note: None })
}

fn cpu_selection(note: Option<String>) -> Selection {
    Selection { device: DeviceChoice::Cpu, worker: WorkerKind::Cpu, label: "the processor".into(), precision: "f32".into(), note }
}

/// The device and worker for `choice`. `auto` takes the first NVIDIA GPU when it can train there,
/// else the Apple GPU, else the processor, with a note saying why a GPU this computer has is not used.
/// A GPU chosen by name that cannot train is an error, never a quiet fall back to the processor.
pub fn select(choice: DeviceChoice, d: &Detected) -> Result<Selection, DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu_selection(None)),
        DeviceChoice::Cuda(index) => cuda_selection(index.unwrap_or(0), d),
        DeviceChoice::Metal => metal_selection(d),
        DeviceChoice::Auto => {
            let cuda = cuda_selection(0, d);
            if let Ok(s) = cuda {
                return Ok(s);
            }
            if let Ok(s) = metal_selection(d) {
                return Ok(s);
            }
            // Say why only where a GPU might have been expected: a GPU listed or a driver present.
            let note = match cuda {
                Err(e) if !d.cuda_gpus.is_empty() || d.cuda_driver.is_some() => Some(format!("The NVIDIA GPU is not used: {e}")),
                _ => None,
            };
            Ok(cpu_selection(note))
        }
    }
}

/// A device a run can name, and whether it can train there now.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DeviceOption {
    /// What the `device` setting takes: `auto`, `cpu`, `cuda:0`, `metal`.
    pub value: DeviceChoice,
    pub label: String,
    /// Where a run with this choice trains; `None` when it cannot.
    pub selection: Option<Selection>,
    /// Why it cannot, in plain words.
    pub problem: Option<String>,
}

/// Where runs can train on this computer, for the wizard's device field, the start screen and `whet hw`.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Devices {
    /// Where `auto` trains now.
    pub auto: Selection,
    /// `auto`, the processor, each NVIDIA GPU (or a generic `cuda` saying why there is none) and, on
    /// a Mac, the Apple GPU.
    pub options: Vec<DeviceOption>,
    /// The GPU worker program, when this installation has one.
    pub cuda_worker: Option<PathBuf>,
    /// The CUDA version the GPU worker needs from the driver (`13.0`).
    pub cuda_needed: String,
    /// The NVIDIA driver's CUDA version, when a driver answered.
    pub cuda_driver: Option<String>,
}

/// Every device a run could name, each resolved against `d`.
pub fn options(d: &Detected) -> Devices {
    let option = |value: DeviceChoice, label: String| {
        let (selection, problem) = match select(value, d) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        DeviceOption { value, label, selection, problem }
    };
    let auto = select(DeviceChoice::Auto, d).unwrap_or_else(|_| cpu_selection(None));
    let mut options = vec![
        DeviceOption { value: DeviceChoice::Auto, label: format!("Best available: {}", auto.label), selection: Some(auto.clone()), problem: None },
        option(DeviceChoice::Cpu, "The processor (CPU)".into()),
    ];
    if d.cuda_gpus.is_empty() {
        options.push(option(DeviceChoice::Cuda(None), "An NVIDIA GPU".into()));
    }
    for (i, g) in d.cuda_gpus.iter().enumerate() {
        options.push(option(DeviceChoice::Cuda(Some(i)), format!("{} (NVIDIA GPU {i})", g.name)));
    }
    if d.metal_build || !d.metal_gpus.is_empty() {
        let name = d.metal_gpus.first().map(|g| g.name.clone()).unwrap_or_else(|| "Apple GPU".into());
        options.push(option(DeviceChoice::Metal, format!("{name} (Metal)")));
    }
    Devices {
        auto,
        options,
        cuda_worker: d.cuda_worker.clone(),
        cuda_needed: d.cuda_needed.to_string(),
        cuda_driver: d.cuda_driver.map(|v| v.to_string()),
    }
}

/// What the GPU worker says when asked to open the GPU (`whet worker-probe`), as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub ok: bool,
    /// The device it opened, in words.
    pub device: Option<String>,
    /// The CUDA toolkit it was built with.
    pub cuda_toolkit: Option<String>,
    /// bf16 products of 2048 × 4096 by 4096 × 4096, in floating-point operations per second.
    pub matmul_flops: Option<f64>,
    pub error: Option<String>,
}

/// Opens the first NVIDIA GPU in this program and runs a small bf16 product and softmax on it, which
/// needs cuBLAS and loads the kernels the training uses. What `whet worker-probe` prints.
pub fn probe_this_program() -> ProbeReport {
    let run = || -> whetstone_engine::Result<(String, f64)> {
        let (device, dtype) = whetstone_engine::device::open(DeviceChoice::Cuda(Some(0)))?;
        let a = candle_core::Tensor::randn(0f32, 1.0, (64, 64), &device)?.to_dtype(dtype)?;
        let s = (a.matmul(&a.t()?)? / 64.0)?;
        let e = s.broadcast_sub(&s.max_keepdim(1)?)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(1)?)?;
        let total = p.to_dtype(candle_core::DType::F32)?.sum_all()?.to_scalar::<f32>()?;
        if (total - 64.0).abs() > 0.5 {
            return Err(whetstone_engine::Error::Device(format!("a test product on the GPU gave a wrong result ({total} instead of 64)")));
        }
        let flops = matmul_flops(&device, dtype, 2048, 4096)?;
        Ok((whetstone_engine::device::describe(&device, dtype), flops))
    };
    let toolkit = whetstone_engine::device::cuda_toolkit().map(str::to_string);
    match run() {
        Ok((device, flops)) => ProbeReport { ok: true, device: Some(device), cuda_toolkit: toolkit, matmul_flops: Some(flops), error: None },
        Err(e) => ProbeReport { ok: false, device: None, cuda_toolkit: toolkit, matmul_flops: None, error: Some(e.to_string()) },
    }
}

/// Speed of `[rows, width] × [width, width]` products in `dtype` on `device`, repeated for about
/// 50 ms after one warm-up, in floating-point operations per second.
pub fn matmul_flops(device: &candle_core::Device, dtype: candle_core::DType, rows: usize, width: usize) -> whetstone_engine::Result<f64> {
    let a = candle_core::Tensor::randn(0f32, 1.0, (rows, width), device)?.to_dtype(dtype)?;
    let b = candle_core::Tensor::randn(0f32, 1.0, (width, width), device)?.to_dtype(dtype)?;
    let product = || -> whetstone_engine::Result<()> {
        if device.is_cpu() {
            whetstone_engine::blas::matmul(&a, &b)?;
        } else {
            a.matmul(&b)?;
            device.synchronize()?;
        }
        Ok(())
    };
    product()?;
    let start = Instant::now();
    let mut reps = 0u32;
    while reps < 3 || start.elapsed().as_secs_f64() < 0.05 {
        product()?;
        reps += 1;
    }
    Ok(reps as f64 * 2.0 * (rows * width * width) as f64 / start.elapsed().as_secs_f64())
}

/// Starts `worker` with `worker-probe` and reads its verdict. A worker that cannot start (a CUDA
/// library missing), crashes or hangs gives the reason in plain words.
pub fn probe_worker(worker: &Path, timeout: Duration) -> Result<ProbeReport, String> {
    let mut child = Command::new(worker)
        .arg(PROBE_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("it could not be started: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("it did not answer within {} s", timeout.as_secs_f64()));
            }
            Err(e) => return Err(format!("it could not be watched: {e}")),
        }
    };
    let read = |r: Option<&mut dyn std::io::Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    };
    let stdout = read(child.stdout.as_mut().map(|s| s as &mut dyn std::io::Read));
    let stderr = read(child.stderr.as_mut().map(|s| s as &mut dyn std::io::Read));
    if let Some(report) = stdout.lines().rev().find_map(|l| serde_json::from_str::<ProbeReport>(l).ok()) {
        return match (report.ok, &report.error) {
            (true, _) => Ok(report),
            (false, Some(e)) => Err(e.clone()),
            (false, None) => Err("it reported a failure without a reason".into()),
        };
    }
    Err(explain_start_failure(&stderr, status.code()))
}

/// Turns what the loader or a crashed worker printed into a reason a user can act on.
pub fn explain_start_failure(stderr: &str, code: Option<i32>) -> String {
    // glibc: "error while loading shared libraries: libcublas.so.13: cannot open shared object file"
    if let Some(rest) = stderr.split("error while loading shared libraries: ").nth(1) {
        let lib = rest.split(':').next().unwrap_or(rest).trim();
        return format!(
            "a CUDA library is missing: {lib}. Keep the whetstone-cuda-libs folder that scripts/build-cuda.sh makes beside the worker, or install CUDA {CUDA_NEEDED}'s libraries"
        );
    }
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    match (last.is_empty(), code) {
        (true, Some(c)) => format!("it ended with status {c} and said nothing"),
        (true, None) => "it was ended by a signal".into(),
        (false, _) => last.to_string(),
    }
}

/// Probe results by worker path: a worker is asked once per process.
fn probes() -> &'static Mutex<HashMap<PathBuf, Result<ProbeReport, String>>> {
    static PROBES: OnceLock<Mutex<HashMap<PathBuf, Result<ProbeReport, String>>>> = OnceLock::new();
    PROBES.get_or_init(Default::default)
}

/// Gathers [`Detected`] from the hardware and the workers. The GPU worker is started to check
/// itself only when everything before it is in place (a GPU, a recent driver), and once per process.
pub fn detect(hw: &Hardware, workers: &Workers) -> Detected {
    let (cuda_gpus, metal_gpus): (Vec<Gpu>, Vec<Gpu>) = hw.gpus.iter().cloned().partition(|g| g.backend == "cuda");
    let driver_problem = match &hw.cuda_driver {
        Some(_) => None,
        // "NVIDIA: no driver found (cannot load …)" says only the part in parentheses in a sentence
        // that already says no driver was found.
        None => hw.gpu_notes.iter().find(|n| n.starts_with("NVIDIA")).map(|n| {
            let n = n.trim_start_matches("NVIDIA: ");
            n.strip_prefix("no driver found (").and_then(|r| r.strip_suffix(')')).unwrap_or(n).to_string()
        }),
    };
    let mut d = Detected {
        cuda_gpus,
        metal_gpus,
        cuda_driver: hw.cuda_driver.as_ref().map(|c| c.cuda),
        driver_version: hw.cuda_driver.as_ref().and_then(|c| c.driver_version.clone()),
        driver_problem,
        cuda_worker: workers.cuda.as_ref().map(|w| w.program.clone()),
        cuda_worker_expected: workers.cuda_expected.clone(),
        cuda_needed: CUDA_NEEDED,
        cuda_probe: None,
        cuda_matmul_flops: None,
        metal_build: whetstone_engine::device::has_metal(),
    };
    // Everything but the probe in place: ask the worker.
    let ready = matches!(cuda_selection(0, &d), Ok(_));
    if let (true, Some(path)) = (ready, &d.cuda_worker) {
        let mut cache = probes().lock().unwrap_or_else(|p| p.into_inner());
        let verdict = cache.entry(path.clone()).or_insert_with(|| probe_worker(path, PROBE_TIMEOUT)).clone();
        d.cuda_matmul_flops = verdict.as_ref().ok().and_then(|r| r.matmul_flops);
        d.cuda_probe = Some(verdict.map(|_| ()));
    }
    d
}
