use whetstone_hw::detect;

#[test]
fn cpu_and_memory_match_the_os() {
    let hw = detect().expect("detecting hardware must not fail on a machine without GPUs");
    let expected = std::thread::available_parallelism().unwrap().get();
    assert_eq!(hw.cpu_cores, expected);
    assert!(!hw.cpu_model.trim().is_empty());
    if let Some(physical) = hw.cpu_physical_cores {
        assert!(physical >= 1);
    }
    assert!(hw.ram_total_bytes > 0);
    assert!(hw.ram_available_bytes <= hw.ram_total_bytes);
}

#[cfg(target_os = "linux")]
#[test]
fn ram_total_agrees_with_proc_meminfo() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let hw = detect().unwrap();
    // A cgroup limit may lower the figure, never raise it.
    assert!(hw.ram_total_bytes <= kib * 1024, "{} > {}", hw.ram_total_bytes, kib * 1024);
}

#[test]
fn gpus_and_notes_are_consistent() {
    let hw = detect().unwrap();
    let nvml_present = ["/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "/usr/lib64/libnvidia-ml.so.1"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if nvml_present {
        for gpu in &hw.gpus {
            assert!(gpu.vram_free_bytes <= gpu.vram_total_bytes);
            assert!(gpu.vram_total_bytes > 0);
            assert!(!gpu.name.is_empty());
        }
    } else if cfg!(target_os = "linux") {
        // No NVIDIA driver: an empty list, and a note saying why.
        assert!(hw.gpus.is_empty(), "{:?}", hw.gpus);
        assert!(
            hw.gpu_notes.iter().any(|n| n.starts_with("NVIDIA:")),
            "expected a note explaining the missing NVIDIA driver, got {:?}",
            hw.gpu_notes
        );
    }
    let json = serde_json::to_value(&hw).unwrap();
    for key in [
        "cpu_model",
        "cpu_cores",
        "cpu_physical_cores",
        "ram_total_bytes",
        "ram_available_bytes",
        "gpus",
        "gpu_notes",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
}

#[test]
fn the_cuda_driver_is_asked_at_run_time_or_its_absence_named() {
    let hw = detect().unwrap();
    match whetstone_hw::cuda_driver::probe() {
        Ok(d) => {
            assert!(d.cuda.major() >= 10, "{d:?}");
            assert_eq!(d.cuda_text, d.cuda.to_string());
        }
        Err(e) => {
            // No driver: the program still runs, and says which library it looked for.
            assert!(e.contains("libcuda") || e.contains("nvcuda") || e.contains("not available"), "{e}");
            assert_eq!(hw.cuda_driver, None);
        }
    }
}
