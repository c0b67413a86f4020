//! Which device and worker program a run gets: `select` over detections written out by hand (it is
//! a pure function of them), the listing the wizard and `whet hw` show, how the GPU worker is found
//! and asked, and that a GPU the computer cannot train on is refused before a run is created.

use std::path::{Path, PathBuf};
use std::time::Duration;
use whetstone_api::backend::{self, select, Detected, DeviceError, WorkerKind, Workers, CUDA_NEEDED, CUDA_WORKER_NAME};
use whetstone_api::{Api, StartRun, WorkerCommand};
use whetstone_engine::device::DeviceChoice;
use whetstone_hw::{CudaDriver, CudaVersion, Gpu, Hardware};

const GB: u64 = 1 << 30;

fn gpu(name: &str, backend: &str) -> Gpu {
    Gpu { name: name.into(), backend: backend.into(), vram_total_bytes: 141 * GB, vram_free_bytes: 140 * GB }
}

/// A computer with `gpus` NVIDIA GPUs, a driver running `driver` (none when `None`), and a GPU worker
/// at /opt/whetstone/whetstone-worker-cuda when `worker`, which opened the GPU fine.
fn machine(gpus: usize, driver: Option<CudaVersion>, worker: bool) -> Detected {
    Detected {
        cuda_gpus: (0..gpus).map(|i| gpu(if i == 0 { "NVIDIA H200" } else { "NVIDIA A100-SXM4-80GB" }, "cuda")).collect(),
        metal_gpus: vec![],
        cuda_driver: driver,
        driver_version: driver.map(|_| "580.65.06".into()),
        driver_problem: driver.is_none().then(|| "no NVIDIA driver library (libcuda.so.1): cannot open shared object file".into()),
        cuda_worker: worker.then(|| PathBuf::from("/opt/whetstone/whetstone-worker-cuda")),
        cuda_worker_expected: PathBuf::from("/opt/whetstone/whetstone-worker-cuda"),
        cuda_needed: CUDA_NEEDED,
        cuda_probe: (worker && gpus > 0 && driver.is_some_and(|d| d >= CUDA_NEEDED)).then_some(Ok(())),
        cuda_matmul_flops: None,
        metal_build: false,
    }
}

const CUDA_13: Option<CudaVersion> = Some(CudaVersion::new(13, 0));

#[test]
fn a_gpu_with_a_recent_driver_and_the_worker_is_where_auto_trains() {
    let d = machine(1, CUDA_13, true);
    let s = select(DeviceChoice::Auto, &d).unwrap();
    assert_eq!((s.device, s.worker), (DeviceChoice::Cuda(Some(0)), WorkerKind::Cuda));
    assert_eq!(s.label, "NVIDIA H200 (GPU 0)");
    assert_eq!(s.precision, "bf16, adapters in f32");
    assert_eq!(s.note, None);
    assert_eq!(select(DeviceChoice::Cuda(None), &d).unwrap(), s);
    // The processor stays a choice, trained on by the program itself.
    let cpu = select(DeviceChoice::Cpu, &d).unwrap();
    assert_eq!((cpu.device, cpu.worker, cpu.precision.as_str()), (DeviceChoice::Cpu, WorkerKind::Cpu, "f32"));
}

#[test]
fn a_numbered_gpu_is_that_gpu_or_an_error_naming_how_many_there_are() {
    let d = machine(2, CUDA_13, true);
    let s = select(DeviceChoice::Cuda(Some(1)), &d).unwrap();
    assert_eq!((s.device, s.label.as_str()), (DeviceChoice::Cuda(Some(1)), "NVIDIA A100-SXM4-80GB (GPU 1)"));
    let e = select(DeviceChoice::Cuda(Some(2)), &d).unwrap_err();
    assert_eq!(e, DeviceError::NoSuchGpu { index: 2, count: 2 });
    assert_eq!(e.to_string(), "There is no GPU 2: this computer has 2 NVIDIA GPUs (numbered from 0).");
}

#[test]
fn without_a_driver_auto_is_the_processor_and_the_gpu_is_refused_in_plain_words() {
    let d = machine(0, None, true);
    let s = select(DeviceChoice::Auto, &d).unwrap();
    assert_eq!((s.device, s.worker), (DeviceChoice::Cpu, WorkerKind::Cpu));
    assert_eq!(s.note, None, "no GPU and no driver: nothing to explain");
    let e = select(DeviceChoice::Cuda(None), &d).unwrap_err();
    assert!(matches!(e, DeviceError::NoDriver { .. }));
    let m = e.to_string();
    assert!(m.starts_with("No NVIDIA driver was found on this computer"), "{m}");
    assert!(m.contains("libcuda.so.1"), "the reason the driver was not found: {m}");
}

#[test]
fn an_old_driver_is_named_with_both_versions() {
    let d = machine(1, Some(CudaVersion::new(12, 2)), true);
    let e = select(DeviceChoice::Cuda(None), &d).unwrap_err();
    assert_eq!(e, DeviceError::DriverTooOld { needed: CudaVersion::new(13, 0), found: CudaVersion::new(12, 2), driver: Some("580.65.06".into()) });
    let m = e.to_string();
    assert!(m.starts_with("The NVIDIA driver is too old: training on the GPU needs CUDA 13.0, and this driver (580.65.06) supports CUDA 12.2."), "{m}");
    // Under auto the run still starts, on the processor, and says why not on the GPU.
    let s = select(DeviceChoice::Auto, &d).unwrap();
    assert_eq!(s.device, DeviceChoice::Cpu);
    assert_eq!(s.note.as_deref(), Some(format!("The NVIDIA GPU is not used: {m}").as_str()));
}

#[test]
fn a_gpu_without_the_worker_or_with_a_worker_that_fails_falls_back_under_auto_only() {
    let no_worker = machine(1, CUDA_13, false);
    let e = select(DeviceChoice::Cuda(Some(0)), &no_worker).unwrap_err();
    assert_eq!(e, DeviceError::NoCudaWorker { expected: PathBuf::from("/opt/whetstone/whetstone-worker-cuda") });
    assert!(e.to_string().contains("scripts/build-cuda.sh"), "{e}");
    let s = select(DeviceChoice::Auto, &no_worker).unwrap();
    assert_eq!(s.device, DeviceChoice::Cpu);
    assert!(s.note.as_deref().is_some_and(|n| n.contains("no GPU worker")), "{:?}", s.note);

    let mut failing = machine(1, CUDA_13, true);
    failing.cuda_probe = Some(Err("a CUDA library is missing: libcublas.so.13".into()));
    let e = select(DeviceChoice::Cuda(None), &failing).unwrap_err();
    assert_eq!(e.to_string(), "The GPU worker (/opt/whetstone/whetstone-worker-cuda) could not use the GPU: a CUDA library is missing: libcublas.so.13");
    assert_eq!(select(DeviceChoice::Auto, &failing).unwrap().device, DeviceChoice::Cpu);

    let mut no_gpu = machine(0, CUDA_13, true);
    no_gpu.driver_problem = None;
    assert_eq!(select(DeviceChoice::Cuda(None), &no_gpu).unwrap_err(), DeviceError::NoGpu);
}

#[test]
fn metal_needs_a_metal_build_and_an_apple_gpu() {
    let mut d = machine(0, None, false);
    d.metal_gpus = vec![gpu("Apple M3 Max", "metal")];
    assert_eq!(select(DeviceChoice::Metal, &d).unwrap_err(), DeviceError::NoMetal { reason: "this program was built without Metal".into() });
    assert_eq!(select(DeviceChoice::Auto, &d).unwrap().device, DeviceChoice::Cpu);
    d.metal_build = true;
    let s = select(DeviceChoice::Metal, &d).unwrap();
    assert_eq!((s.device, s.worker, s.label.as_str(), s.precision.as_str()), (DeviceChoice::Metal, WorkerKind::Cpu, "Apple M3 Max", "f32"));
    assert_eq!(select(DeviceChoice::Auto, &d).unwrap().device, DeviceChoice::Metal);
    d.metal_gpus.clear();
    assert_eq!(select(DeviceChoice::Metal, &d).unwrap_err().to_string(), "The Apple GPU (Metal) cannot be used: no Apple GPU was found.");
}

#[test]
fn the_listing_has_auto_the_processor_and_each_gpu_with_why_one_is_unavailable() {
    let d = machine(2, CUDA_13, true);
    let l = backend::options(&d);
    let values: Vec<String> = l.options.iter().map(|o| o.value.to_string()).collect();
    assert_eq!(values, ["auto", "cpu", "cuda:0", "cuda:1"]);
    assert_eq!(l.options[0].label, "Best available: NVIDIA H200 (GPU 0)");
    assert!(l.options.iter().all(|o| o.selection.is_some() && o.problem.is_none()));
    assert_eq!((l.cuda_needed.as_str(), l.cuda_driver.as_deref()), ("13.0", Some("13.0")));

    // No GPU: one generic GPU entry, unavailable, saying why.
    let l = backend::options(&machine(0, None, false));
    let values: Vec<String> = l.options.iter().map(|o| o.value.to_string()).collect();
    assert_eq!(values, ["auto", "cpu", "cuda"]);
    assert_eq!(l.auto.device, DeviceChoice::Cpu);
    let cuda = &l.options[2];
    assert!(cuda.selection.is_none());
    assert!(cuda.problem.as_deref().is_some_and(|p| p.starts_with("No NVIDIA driver was found")), "{:?}", cuda.problem);
    // The listing is what the UI reads: devices travel as the names the settings take.
    let json = serde_json::to_value(&l).unwrap();
    assert_eq!(json["options"][2]["value"], "cuda");
    assert_eq!(json["auto"]["device"], "cpu");
    assert_eq!(json["auto"]["worker"], "cpu");
}

#[test]
fn the_gpu_worker_is_found_beside_the_program_or_where_the_environment_says() {
    let dir = tempfile::tempdir().unwrap();
    let cpu = WorkerCommand { program: dir.path().join("whet"), args: vec!["worker".into()] };
    let w = Workers::find(cpu.clone(), None);
    if whetstone_engine::device::has_cuda() {
        // A CUDA build is its own GPU worker.
        assert_eq!(w.cuda.as_ref(), Some(&cpu));
        return;
    }
    assert_eq!(w.cuda, None);
    assert_eq!(w.cuda_expected, dir.path().join(CUDA_WORKER_NAME));
    assert_eq!(w.for_kind(WorkerKind::Cpu), Some(&cpu));
    assert_eq!(w.for_kind(WorkerKind::Cuda), None);
    std::fs::write(dir.path().join(CUDA_WORKER_NAME), "").unwrap();
    let w = Workers::find(cpu.clone(), None);
    assert_eq!(w.cuda, Some(WorkerCommand { program: dir.path().join(CUDA_WORKER_NAME), args: vec!["worker".into()] }));
    let elsewhere = dir.path().join("gpu").join("whet-cuda");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::write(&elsewhere, "").unwrap();
    let w = Workers::find(cpu, Some(elsewhere.clone()));
    assert_eq!(w.cuda.map(|c| c.program), Some(elsewhere));
}

#[cfg(unix)]
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[cfg(unix)]
#[test]
fn asking_the_gpu_worker_reads_its_verdict_or_says_why_it_could_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let ok = script(dir.path(), "ok", r#"[ "$1" = worker-probe ] || exit 3
echo '{"ok":true,"device":"NVIDIA GPU 0 (bf16, adapters in f32)","cuda_toolkit":"13.0","matmul_flops":5.0e14,"error":null}'"#);
    let r = backend::probe_worker(&ok, Duration::from_secs(20)).unwrap();
    assert_eq!((r.cuda_toolkit.as_deref(), r.matmul_flops), (Some("13.0"), Some(5.0e14)));

    let refused = script(dir.path(), "refused", r#"echo '{"ok":false,"device":null,"cuda_toolkit":"13.0","matmul_flops":null,"error":"NVIDIA GPU 0 could not be opened: DriverError(CUDA_ERROR_NO_DEVICE)"}'; exit 0"#);
    assert_eq!(backend::probe_worker(&refused, Duration::from_secs(20)).unwrap_err(), "NVIDIA GPU 0 could not be opened: DriverError(CUDA_ERROR_NO_DEVICE)");

    // What the dynamic loader prints when a library the worker was linked with is missing.
    let missing = script(dir.path(), "missing", r#"echo "$0: error while loading shared libraries: libcublas.so.13: cannot open shared object file: No such file or directory" >&2; exit 127"#);
    let e = backend::probe_worker(&missing, Duration::from_secs(20)).unwrap_err();
    assert!(e.starts_with("a CUDA library is missing: libcublas.so.13."), "{e}");
    assert!(e.contains("whetstone-cuda-libs"), "{e}");

    let hangs = script(dir.path(), "hangs", "sleep 30");
    let e = backend::probe_worker(&hangs, Duration::from_millis(300)).unwrap_err();
    assert_eq!(e, "it did not answer within 0.3 s");

    let silent = script(dir.path(), "silent", "exit 9");
    assert_eq!(backend::probe_worker(&silent, Duration::from_secs(20)).unwrap_err(), "it ended with status 9 and said nothing");
    assert!(backend::probe_worker(&dir.path().join("absent"), Duration::from_secs(1)).unwrap_err().starts_with("it could not be started"));
}

#[cfg(unix)]
#[test]
fn detection_asks_the_worker_only_when_a_gpu_and_a_recent_driver_are_there() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("asked");
    let worker = script(
        dir.path(),
        CUDA_WORKER_NAME,
        &format!(r#"echo x >> {}
echo '{{"ok":true,"device":"gpu","cuda_toolkit":"13.0","matmul_flops":4.0e14,"error":null}}'"#, counter.display()),
    );
    let workers = Workers::find(WorkerCommand { program: dir.path().join("whet"), args: vec!["worker".into()] }, Some(worker.clone()));
    if whetstone_engine::device::has_cuda() {
        return;
    }
    let hw = |gpus: Vec<Gpu>, driver: Option<CudaVersion>| Hardware {
        cpu_model: "test cpu".into(),
        cpu_cores: 8,
        cpu_physical_cores: Some(4),
        ram_total_bytes: 64 * GB,
        ram_available_bytes: 60 * GB,
        gpus,
        gpu_notes: vec![],
        cuda_driver: driver.map(|cuda| CudaDriver { cuda, cuda_text: cuda.to_string(), driver_version: Some("580.65.06".into()) }),
    };
    let asked = || std::fs::read_to_string(&counter).map(|t| t.lines().count()).unwrap_or(0);
    let d = backend::detect(&hw(vec![], None), &workers);
    assert_eq!((d.cuda_probe.clone(), asked()), (None, 0), "no GPU: the worker is not started");
    let d = backend::detect(&hw(vec![gpu("NVIDIA H200", "cuda")], Some(CudaVersion::new(12, 4))), &workers);
    assert_eq!((d.cuda_probe.clone(), asked()), (None, 0), "an old driver: the worker is not started");
    let d = backend::detect(&hw(vec![gpu("NVIDIA H200", "cuda")], Some(CudaVersion::new(13, 1))), &workers);
    assert_eq!((d.cuda_probe.clone(), d.cuda_matmul_flops, asked()), (Some(Ok(())), Some(4.0e14), 1));
    assert_eq!(select(DeviceChoice::Auto, &d).unwrap().worker, WorkerKind::Cuda);
    backend::detect(&hw(vec![gpu("NVIDIA H200", "cuda")], Some(CudaVersion::new(13, 1))), &workers);
    assert_eq!(asked(), 1, "a worker is asked once per process");
}

#[test]
fn a_run_on_a_gpu_this_computer_cannot_use_is_refused_before_anything_is_created() {
    // This test machine has no NVIDIA driver; on one that does, the GPU would be used instead.
    let hw = whetstone_hw::detect().unwrap();
    if hw.cuda_driver.is_some() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let api = Api::open(home.path()).unwrap().with_worker(WorkerCommand { program: PathBuf::from("/bin/true"), args: vec![] });
    let mut settings = whetstone_engine::run::TrainSettings::default();
    settings.device = DeviceChoice::Cuda(None);
    let req = StartRun { model: home.path().join("no-such-model"), data: home.path().join("no-such-data.jsonl"), val: None, out: None, overwrite: false, settings };
    let e = api.start_run(&req).unwrap_err();
    assert_eq!(e.code(), "device_unavailable");
    assert!(e.to_string().starts_with("No NVIDIA driver was found"), "{e}");
    assert!(api.list_runs().unwrap().is_empty());
    assert!(!home.path().join("runs").exists());
    // Through the command table, as the app and `whet serve` call it.
    let body = serde_json::json!({"model": "m", "data": "d.jsonl", "settings": {"device": "cuda:0"}});
    let e = api.dispatch("start_run", body).unwrap_err();
    assert_eq!(e.body().code, "device_unavailable");
    // A wrong device name is a bad setting, named as such.
    let e = api.dispatch("start_run", serde_json::json!({"model": "m", "data": "d.jsonl", "settings": {"device": "tpu"}})).unwrap_err();
    assert!(e.to_string().contains("unknown device `tpu`"), "{e}");
}

#[test]
fn the_devices_command_describes_this_computer() {
    let home = tempfile::tempdir().unwrap();
    let api = Api::open(home.path()).unwrap();
    let v = api.dispatch("devices", serde_json::Value::Null).unwrap();
    assert_eq!(v["options"][0]["value"], "auto");
    assert_eq!(v["options"][1]["value"], "cpu");
    assert_eq!(v["cuda_needed"], "13.0");
    let overview = api.dispatch("overview", serde_json::Value::Null).unwrap();
    assert_eq!(overview["devices"], v);
}
