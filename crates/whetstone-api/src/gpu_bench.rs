//! `whet bench gpu`: the GPU check. Numbers on a device against the CPU and against PyTorch's, then
//! speed and memory of real training shapes, each printed as it is measured:
//!
//! 1. Parity on the tiny fixtures (`crates/whetstone-engine/tests/fixtures`): loss and LoRA
//!    gradients of three tiny models on the device against the same code on the CPU and against
//!    transformers + PEFT: f32 within 1e-3 (a failure), bf16 printed.
//! 2. NF4 and GGUF dequantization on the device against the CPU and bitsandbytes: bit for bit.
//! 3. A QLoRA step (NF4 base, bf16 on a GPU) against the same step in f32 on the CPU.
//! 4. Tokens per second, peak memory and model FLOPs utilisation for SmolLM2-135M (batch 8 × 512)
//!    and a randomly initialised Llama-2-7B shape (QLoRA NF4, r = 16 on every linear layer, batch
//!    4 × 1024, gradient checkpointing), each with the planner's prediction beside the measured peak.
//!
//! Speed targets are printed as met or not; they never fail the check (it is a benchmark). Parity
//! failures do. `--device cpu --quick` runs every part on the CPU with small shapes, so CI runs this
//! code without a GPU.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use whetstone_engine::batch::Batch;
use whetstone_engine::config::{Architecture, ModelConfig};
use whetstone_engine::device::{self as dev, DeviceChoice};
use whetstone_engine::lora::{Adapter, LoraConfig, Target};
use whetstone_engine::model::{Decoder, LoraCtx};
use whetstone_engine::nf4::Nf4;
use whetstone_engine::optim::AdamWConfig;
use whetstone_engine::plan::{self, BaseFormat, JobShape};
use whetstone_engine::quant::{QuantMode, QuantWeight};
use whetstone_engine::rng::Rng;
use whetstone_engine::schedule::{Schedule, ScheduleKind};
use whetstone_engine::train::{StepOptions, Trainer};
use whetstone_engine::weights::BaseWeights;
use whetstone_engine::ModelFiles;

/// f32 on the device must agree with the CPU and with PyTorch to this, relative to the largest value.
pub const F32_TOLERANCE: f64 = 1e-3;
/// The 7B target: model FLOPs utilisation in bf16.
pub const TARGET_MFU: f64 = 0.35;
/// The 7B target: GPU memory the allocator holds at its peak (what PyTorch's figures report).
pub const TARGET_VRAM_BYTES: u64 = 7 << 30;
/// The planner's prediction against the measured peak.
pub const TARGET_PLAN_ERROR: f64 = 0.10;

#[derive(Debug, Clone)]
pub struct GpuBenchRequest {
    pub device: DeviceChoice,
    /// Small shapes and one timed step: every part runs, in seconds, on the CPU too.
    pub quick: bool,
    /// `crates/whetstone-engine/tests/fixtures` or a copy of it.
    pub fixtures: PathBuf,
    /// A SmolLM2-135M model (GGUF or safetensors folder); its random-weight twin when absent.
    pub smollm2: Option<PathBuf>,
    /// Timed steps per throughput shape (after one warm-up step).
    pub steps: usize,
    /// Dense bf16 peak of the GPU, when the name table does not know it.
    pub peak_tflops: Option<f64>,
    pub skip_7b: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub part: String,
    pub name: String,
    /// The largest difference, relative to the largest reference value (0 for bit-exact).
    pub max_rel_diff: f64,
    /// `None` for figures that are printed, not judged.
    pub passed: Option<bool>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub what: String,
    pub wanted: String,
    pub got: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub name: String,
    pub model: String,
    pub parameters: u64,
    pub batch: usize,
    pub seq_len: usize,
    pub lora_r: usize,
    pub quant: QuantMode,
    pub grad_checkpoint: bool,
    pub steps: usize,
    pub load_s: f64,
    pub step_s_mean: f64,
    pub tokens_per_s: f64,
    /// Model FLOPs per trained token: 4 × parameters + 6 × layers × hidden × sequence length.
    pub flops_per_token: f64,
    pub achieved_tflops: f64,
    pub peak_tflops: Option<f64>,
    pub mfu: Option<f64>,
    /// Memory measured at the peak: GPU memory (tensors' peak, the pool's peak, CUDA's own share)
    /// on a GPU, the process's resident peak on the CPU.
    pub memory: MeasuredMemory,
    /// GPU memory the pool held while the model loaded, given back before training.
    pub load_reserved_peak: Option<u64>,
    pub predicted: plan::MemoryBreakdown,
    /// (predicted − measured) / measured, for a training step (loading is measured apart).
    pub plan_error: f64,
    pub targets: Vec<Goal>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct MeasuredMemory {
    pub allocated_peak: Option<u64>,
    pub reserved_peak: Option<u64>,
    /// CUDA's context, cuBLAS and loaded kernels, measured once when the device opened.
    pub runtime: Option<u64>,
    /// The figure the planner's total is compared with: runtime + reserved peak on a GPU, the
    /// resident peak on the CPU.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuBenchReport {
    pub device: String,
    pub gpu: Option<String>,
    pub cuda_toolkit: Option<String>,
    pub cuda_driver: Option<String>,
    pub checks: Vec<Check>,
    pub throughput: Vec<Throughput>,
    pub total_s: f64,
    /// Every judged check passed.
    pub passed: bool,
}

fn engine(e: candle_core::Error) -> Error {
    Error::Engine(e.into())
}

/// Largest |a − b| relative to the largest |b|.
fn rel_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    let a = a.to_device(&Device::Cpu).and_then(|t| t.to_dtype(DType::F64)).and_then(|t| t.flatten_all()).map_err(engine)?;
    let b = b.to_device(&Device::Cpu).and_then(|t| t.to_dtype(DType::F64)).and_then(|t| t.flatten_all()).map_err(engine)?;
    if a.dims() != b.dims() {
        return Err(Error::Internal(format!("comparing {:?} with {:?}", a.dims(), b.dims())));
    }
    let diff: f64 = (&a - &b).and_then(|d| d.abs()).and_then(|d| d.flatten_all()).and_then(|d| d.max(0)).and_then(|d| d.to_scalar()).map_err(engine)?;
    let scale: f64 = b.abs().and_then(|d| d.flatten_all()).and_then(|d| d.max(0)).and_then(|d| d.to_scalar()).map_err(engine)?;
    Ok(diff / scale.max(1e-30))
}

fn bits_equal(a: &Tensor, b: &Tensor) -> Result<(bool, usize)> {
    let a: Vec<f32> = a.to_device(&Device::Cpu).and_then(|t| t.to_dtype(DType::F32)).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(engine)?;
    let b: Vec<f32> = b.to_device(&Device::Cpu).and_then(|t| t.to_dtype(DType::F32)).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(engine)?;
    let differing = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count() + a.len().abs_diff(b.len());
    Ok((differing == 0, differing))
}

/// Nominal dense bf16 tensor throughput of NVIDIA's datacenter and workstation GPUs, from their data
/// sheets, by a part of the name NVML reports.
pub fn nominal_bf16_tflops(gpu: &str) -> Option<f64> {
    let n = gpu.to_ascii_uppercase();
    let table: &[(&str, f64)] = &[
        ("H200", 989.4),
        ("H100 PCIE", 756.0),
        ("H100 NVL", 835.0),
        ("H100", 989.4),
        ("H800", 989.4),
        ("GH200", 989.4),
        ("B200", 2250.0),
        ("A100", 312.0),
        ("A800", 312.0),
        ("L40S", 362.1),
        ("L40", 181.0),
        ("L4", 121.0),
        ("A10G", 70.0),
        ("A10", 125.0),
        ("RTX 6000 ADA", 364.2),
        ("RTX 4090", 165.2),
        ("RTX 3090", 71.0),
    ];
    table.iter().find(|(k, _)| n.contains(k)).map(|(_, v)| *v)
}

/// Model FLOPs per trained token of LoRA training: a forward and a backward pass to the inputs
/// through every weight (4 per parameter; the frozen base gets no weight gradients) and attention
/// over the sequence (6 × layers × hidden × length). Recomputation for checkpointing is not counted,
/// as MFU counts the model's work, not the implementation's.
pub fn flops_per_token(c: &ModelConfig, seq_len: usize) -> f64 {
    4.0 * c.num_parameters() as f64 + 6.0 * (c.num_layers * c.hidden_size * seq_len) as f64
}

/// Llama-2-7B's shape.
pub fn llama2_7b() -> ModelConfig {
    let mut c = ModelConfig::tiny(Architecture::Llama);
    (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim) = (32000, 4096, 11008, 32, 32, 32, 128);
    c.max_position_embeddings = 4096;
    c.tie_word_embeddings = false;
    c.rms_norm_eps = 1e-5;
    c
}

/// SmolLM2-135M's shape.
pub fn smollm2_135m() -> ModelConfig {
    let mut c = ModelConfig::tiny(Architecture::Llama);
    (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim) = (49152, 576, 1536, 30, 9, 3, 64);
    c.max_position_embeddings = 8192;
    c.tie_word_embeddings = true;
    c
}

/// Small stand-ins for the quick run: the same kinds of model (tied 30-layer-like, untied
/// 7B-like with NF4), shrunk so that a CPU runs a step in a moment.
fn quick_shapes() -> (ModelConfig, ModelConfig) {
    let mut small = smollm2_135m();
    (small.vocab_size, small.hidden_size, small.intermediate_size, small.num_layers, small.num_heads, small.num_kv_heads, small.head_dim) = (512, 64, 128, 2, 4, 2, 16);
    let mut big = llama2_7b();
    (big.vocab_size, big.hidden_size, big.intermediate_size, big.num_layers, big.num_heads, big.num_kv_heads, big.head_dim) = (512, 128, 256, 2, 4, 4, 32);
    (small, big)
}

struct Ctx<'a> {
    device: Device,
    dtype: DType,
    out: &'a mut dyn FnMut(&str),
    checks: Vec<Check>,
}

impl Ctx<'_> {
    fn say(&mut self, line: &str) {
        (self.out)(line);
    }

    fn check(&mut self, part: &str, name: &str, diff: f64, passed: Option<bool>, note: String) {
        let verdict = match passed {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "    ",
        };
        self.say(&format!("  {verdict}  {name:<44} {diff:>10.3e}  {note}"));
        self.checks.push(Check { part: part.into(), name: name.into(), max_rel_diff: diff, passed, note });
    }
}

/// Runs the check, printing each line through `out` as it is measured.
pub fn run(req: &GpuBenchRequest, out: &mut dyn FnMut(&str)) -> Result<GpuBenchReport> {
    let started = Instant::now();
    let hw = whetstone_hw::detect()?;
    let gpu_index = match req.device {
        DeviceChoice::Cuda(i) => Some(i.unwrap_or(0)),
        _ => None,
    };
    let gpu_info = gpu_index.and_then(|i| hw.gpus.iter().filter(|g| g.backend == "cuda").nth(i).cloned());
    // What the GPU held before this process opened it, to measure CUDA's own share.
    let used_before = gpu_info.as_ref().map(|g| g.vram_total_bytes - g.vram_free_bytes);
    let (device, dtype) = dev::open(req.device)?;
    let mut ctx = Ctx { device: device.clone(), dtype, out, checks: Vec::new() };
    let gpu_name = gpu_info.as_ref().map(|g| g.name.clone());
    ctx.say(&format!(
        "device: {}{}",
        dev::describe(&device, dtype),
        gpu_name.as_ref().map(|n| format!(", {n}")).unwrap_or_default()
    ));
    if let Some(t) = dev::cuda_toolkit() {
        ctx.say(&format!("built with CUDA {t}"));
    }
    if let Some(d) = &hw.cuda_driver {
        ctx.say(&format!("NVIDIA driver {}: CUDA {}", d.driver_version.as_deref().unwrap_or("(version not shown)"), d.cuda_text));
    }
    // One product so that cuBLAS and the first kernels are loaded before CUDA's share is measured.
    crate::backend::matmul_flops(&device, dtype, 256, 256)?;
    let runtime = match (dev::gpu_memory(&device)?, used_before) {
        (Some(m), Some(before)) => Some(m.device_used.saturating_sub(before).saturating_sub(m.reserved_peak)),
        _ => None,
    };
    if let Some(r) = runtime {
        ctx.say(&format!("CUDA context, cuBLAS and kernels: {} on the GPU (the planner assumes {})", mib(r), mib(plan::GPU_RUNTIME_BYTES)));
    }

    ctx.say("\n[1] parity on the tiny fixtures: loss and LoRA gradients (relative to the largest reference value)");
    parity(&mut ctx, &req.fixtures)?;
    ctx.say("\n[2] dequantization on the device (bit for bit)");
    dequantization(&mut ctx, &req.fixtures)?;
    ctx.say("\n[3] a QLoRA step (NF4 base) on the device against the same step in f32 on the CPU");
    qlora_step(&mut ctx, &req.fixtures)?;

    ctx.say("\n[4] speed and memory");
    let peak_tflops = req.peak_tflops.or_else(|| gpu_name.as_deref().and_then(nominal_bf16_tflops));
    let peak_tflops = match (&device, peak_tflops) {
        (Device::Cpu, None) => {
            // The CPU has no data-sheet figure: its own measured f32 product speed stands in.
            let f = crate::backend::matmul_flops(&device, DType::F32, 256, 1024)? / 1e12;
            ctx.say(&format!("peak: the CPU's measured f32 product speed, {f:.3} TFLOP/s"));
            Some(f)
        }
        (_, Some(p)) => {
            ctx.say(&format!("peak: {p:.1} TFLOP/s dense bf16{}", if req.peak_tflops.is_some() { " (given)" } else { " (the GPU's data sheet)" }));
            Some(p)
        }
        (_, None) => {
            ctx.say("peak: unknown for this GPU, so MFU is not computed (pass --peak-tflops)");
            None
        }
    };
    let mut throughput = Vec::new();
    let (small, big) = if req.quick { quick_shapes() } else { (smollm2_135m(), llama2_7b()) };
    let steps = if req.quick { 1 } else { req.steps.max(1) };
    let smol = Shape {
        name: if req.quick { "SmolLM2-135M, scaled down" } else { "SmolLM2-135M" },
        config: small,
        file: if req.quick { None } else { req.smollm2.clone() },
        batch: if req.quick { 2 } else { 8 },
        seq_len: if req.quick { 64 } else { 512 },
        lora_r: 16,
        quant: QuantMode::None,
        grad_checkpoint: false,
        targets_7b: false,
    };
    throughput.push(measure(&mut ctx, &smol, steps, peak_tflops, runtime)?);
    if !req.skip_7b {
        let seven = Shape {
            name: if req.quick { "Llama-2-7B, scaled down" } else { "Llama-2-7B" },
            config: big,
            file: None,
            batch: if req.quick { 2 } else { 4 },
            seq_len: if req.quick { 128 } else { 1024 },
            lora_r: 16,
            quant: QuantMode::Nf4,
            grad_checkpoint: true,
            targets_7b: !req.quick,
        };
        throughput.push(measure(&mut ctx, &seven, steps, peak_tflops, runtime)?);
    }
    let passed = ctx.checks.iter().all(|c| c.passed != Some(false));
    let total_s = started.elapsed().as_secs_f64();
    ctx.say(&format!(
        "\n{} in {total_s:.0} s: {} checks passed, {} failed",
        if passed { "PASSED" } else { "FAILED" },
        ctx.checks.iter().filter(|c| c.passed == Some(true)).count(),
        ctx.checks.iter().filter(|c| c.passed == Some(false)).count()
    ));
    Ok(GpuBenchReport {
        device: dev::describe(&device, dtype),
        gpu: gpu_name,
        cuda_toolkit: dev::cuda_toolkit().map(str::to_string),
        cuda_driver: hw.cuda_driver.as_ref().map(|d| d.cuda_text.clone()),
        checks: ctx.checks,
        throughput,
        total_s,
        passed,
    })
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / 1048576.0)
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

struct Fixture {
    files: ModelFiles,
    io: HashMap<String, Tensor>,
    batch: Batch,
}

fn fixture(root: &Path, name: &str) -> Result<Fixture> {
    let d = root.join("parity").join(name);
    let io = candle_core::safetensors::load(d.join("io.safetensors"), &Device::Cpu).map_err(|e| Error::InvalidInput(format!("{}: {e} (pass --fixtures crates/whetstone-engine/tests/fixtures)", d.display())))?;
    let input_ids = io["input_ids"].to_dtype(DType::U32).map_err(engine)?;
    let attention_mask = io["attention_mask"].to_dtype(DType::U32).map_err(engine)?;
    let labels: Vec<Vec<i64>> = io["labels"].to_vec2().map_err(engine)?;
    let (b, t) = input_ids.dims2().map_err(engine)?;
    let lm: Vec<u32> = labels.iter().flatten().map(|&l| u32::from(l != -100)).collect();
    let targets = lm.iter().filter(|&&m| m == 1).count();
    let loss_mask = Tensor::from_vec(lm, (b, t), &Device::Cpu).map_err(engine)?;
    Ok(Fixture { files: ModelFiles::HfDir(d), io, batch: Batch { input_ids, attention_mask, loss_mask, tokens: b * t, targets } })
}

fn batch_to(b: &Batch, device: &Device) -> Result<Batch> {
    Ok(Batch {
        input_ids: b.input_ids.to_device(device).map_err(engine)?,
        attention_mask: b.attention_mask.to_device(device).map_err(engine)?,
        loss_mask: b.loss_mask.to_device(device).map_err(engine)?,
        tokens: b.tokens,
        targets: b.targets,
    })
}

/// Mean loss and every adapter gradient of a fixture's model with its initial PEFT adapter.
fn loss_and_grads(f: &Fixture, device: &Device, dtype: DType, quant: QuantMode) -> Result<(Tensor, Vec<(String, Tensor)>)> {
    let model = Decoder::load_quant(&f.files, dtype, device, quant)?;
    let adapter = Adapter::load_peft(&f.files.path().join("adapter_init"), &model.config, device)?;
    let ctx = LoraCtx { adapter: &adapter, train: true, dropout: None };
    let b = batch_to(&f.batch, device)?;
    let (sum, n) = model.loss_sum(&b.input_ids, Some(&b.attention_mask), &b.loss_mask, Some(&ctx))?;
    let loss = (sum.to_dtype(DType::F32).map_err(engine)? / n as f64).map_err(engine)?;
    let grads = loss.backward().map_err(engine)?;
    let mut out = Vec::new();
    for (key, var) in adapter.named_vars() {
        let g = grads.get(var.as_tensor()).ok_or_else(|| Error::Internal(format!("no gradient for {key}")))?;
        if g.dtype() != DType::F32 {
            return Err(Error::Internal(format!("the gradient of {key} is {:?}; adapters train in f32", g.dtype())));
        }
        out.push((key, g.to_device(&Device::Cpu).map_err(engine)?));
    }
    Ok((loss.to_device(&Device::Cpu).map_err(engine)?, out))
}

fn parity(ctx: &mut Ctx, root: &Path) -> Result<()> {
    for name in ["llama", "qwen2", "llama3_rope"] {
        let f = fixture(root, name)?;
        let (cpu_loss, cpu_grads) = loss_and_grads(&f, &Device::Cpu, DType::F32, QuantMode::None)?;
        let torch_loss = f.io["loss_init"].flatten_all().map_err(engine)?;
        for dtype in [DType::F32, DType::BF16] {
            let (loss, grads) = loss_and_grads(&f, &ctx.device, dtype, QuantMode::None)?;
            let mut worst_cpu = rel_diff(&loss, &cpu_loss)?;
            let mut worst_torch = rel_diff(&loss, &torch_loss)?;
            for ((key, g), (_, c)) in grads.iter().zip(&cpu_grads) {
                worst_cpu = worst_cpu.max(rel_diff(g, c)?);
                worst_torch = worst_torch.max(rel_diff(g, &f.io[&format!("grad.{key}")])?);
            }
            let judged = (dtype == DType::F32).then_some(worst_cpu <= F32_TOLERANCE && worst_torch <= F32_TOLERANCE);
            let loss_v: f32 = loss.flatten_all().and_then(|t| t.get(0)).and_then(|t| t.to_scalar()).map_err(engine)?;
            let label = format!("{name} {dtype:?} vs CPU f32");
            ctx.check("parity", &label, worst_cpu, judged, format!("loss {loss_v:.6}"));
            let label = format!("{name} {dtype:?} vs transformers+PEFT");
            ctx.check("parity", &label, worst_torch, judged, format!("{} gradients", grads.len()));
        }
    }
    Ok(())
}

fn dequantization(ctx: &mut Ctx, root: &Path) -> Result<()> {
    let p = root.join("nf4").join("nf4.safetensors");
    let fx = candle_core::safetensors::load(&p, &Device::Cpu).map_err(|e| Error::InvalidInput(format!("{}: {e}", p.display())))?;
    for case in ["f32_16x64", "f32_24x96", "f32_7x45", "f32_64x320", "bf16_32x128", "f32_heavy_8x128"] {
        let w = &fx[&format!("{case}.weight")];
        let q = Nf4::quantize_tensor(w, true).map_err(engine)?;
        let on = q.to_device(&ctx.device).map_err(engine)?;
        let want = &fx[&format!("{case}.dq.dequant")];
        let (same, n) = bits_equal(&on.dequantize(DType::F32).map_err(engine)?, want)?;
        ctx.check("dequantization", &format!("NF4 {case} f32 vs bitsandbytes"), n as f64, Some(same), "values differing".into());
        let (same, n) = bits_equal(&on.dequantize_ops(DType::F32).map_err(engine)?, want)?;
        ctx.check("dequantization", &format!("NF4 {case} f32 (tensor ops) vs bitsandbytes"), n as f64, Some(same), "values differing".into());
        let cpu_bf16 = q.dequantize_cpu().and_then(|t| t.to_dtype(DType::BF16)).map_err(engine)?;
        let (same, n) = bits_equal(&on.dequantize(DType::BF16).map_err(engine)?, &cpu_bf16)?;
        ctx.check("dequantization", &format!("NF4 {case} bf16 vs CPU"), n as f64, Some(same), "values differing".into());
    }
    use candle_core::quantized::{GgmlDType, QTensor};
    let mut rng = Rng::new(7);
    let values: Vec<f32> = (0..64 * 512).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let dense = Tensor::from_vec(values, (64, 512), &Device::Cpu).map_err(engine)?;
    for kind in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K] {
        let q = QTensor::quantize(&dense, kind).map_err(engine)?;
        let cpu = QuantWeight::Gguf(QTensor::quantize(&dense, kind).map_err(engine)?).dequantize(DType::F32).map_err(engine)?;
        let on = QuantWeight::Gguf(whetstone_engine::weights::qtensor_to(q, &ctx.device)?).dequantize(DType::F32).map_err(engine)?;
        // The GPU's kernels compute scale × code in f32 too; allow a rounding step of difference.
        let d = rel_diff(&on, &cpu)?;
        ctx.check("dequantization", &format!("GGUF {kind:?} f32 vs CPU"), d, Some(d <= 1e-6), String::new());
    }
    Ok(())
}

fn qlora_step(ctx: &mut Ctx, root: &Path) -> Result<()> {
    let f = fixture(root, "llama")?;
    let step = |device: &Device, dtype: DType| -> Result<(f64, f64, Vec<Tensor>)> {
        let model = Decoder::load_quant(&f.files, dtype, device, QuantMode::Nf4)?;
        let adapter = Adapter::load_peft(&f.files.path().join("adapter_init"), &model.config, device)?;
        let schedule = Schedule { kind: ScheduleKind::Constant, base_lr: 2e-3, warmup_steps: 0, total_steps: 1 };
        let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: true };
        let mut t = Trainer::new(&model, adapter, AdamWConfig::default(), schedule, opts, Rng::new(0))?;
        let r = t.step(&[batch_to(&f.batch, device)?])?;
        for v in t.adapter.vars() {
            if v.dtype() != DType::F32 {
                return Err(Error::Internal(format!("an adapter weight is {:?} after a step; adapters train in f32", v.dtype())));
            }
        }
        let (m, v) = t.optimizer.moments();
        if m.iter().chain(v.iter()).any(|t| t.dtype() != DType::F32) {
            return Err(Error::Internal("AdamW's state left f32".into()));
        }
        let weights = t.adapter.vars().iter().map(|v| v.as_tensor().to_device(&Device::Cpu)).collect::<candle_core::Result<Vec<_>>>().map_err(engine)?;
        Ok((r.loss, r.grad_norm, weights))
    };
    let (cpu_loss, cpu_norm, cpu_w) = step(&Device::Cpu, DType::F32)?;
    let (loss, norm, w) = step(&ctx.device, ctx.dtype)?;
    let mut worst = 0f64;
    for (a, b) in w.iter().zip(&cpu_w) {
        worst = worst.max(rel_diff(a, b)?);
    }
    let loss_rel = ((loss - cpu_loss) / cpu_loss).abs();
    let norm_rel = ((norm - cpu_norm) / cpu_norm).abs();
    let finite = loss.is_finite() && norm.is_finite() && worst.is_finite();
    let dtype = ctx.dtype;
    ctx.check("qlora", &format!("NF4 step {dtype:?}: loss"), loss_rel, Some(finite), format!("{loss:.6} vs {cpu_loss:.6} on the CPU"));
    ctx.check("qlora", &format!("NF4 step {dtype:?}: gradient norm"), norm_rel, Some(finite), format!("{norm:.6} vs {cpu_norm:.6}"));
    ctx.check("qlora", &format!("NF4 step {dtype:?}: adapter after the step"), worst, Some(finite), "weights and AdamW state in f32".into());
    Ok(())
}

struct Shape {
    name: &'static str,
    config: ModelConfig,
    file: Option<PathBuf>,
    batch: usize,
    seq_len: usize,
    lora_r: usize,
    quant: QuantMode,
    grad_checkpoint: bool,
    targets_7b: bool,
}

/// Resident peak of this process, reset so the next reading starts from now (Linux).
fn rss_peak(reset: bool) -> Option<u64> {
    let mb = crate::bench::peak_rss_mb()?;
    if reset {
        // Writing 5 to clear_refs resets the kernel's high-water mark (VmHWM).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    Some((mb * 1048576.0) as u64)
}

fn measure(ctx: &mut Ctx, s: &Shape, steps: usize, peak_tflops: Option<f64>, runtime: Option<u64>) -> Result<Throughput> {
    let device = ctx.device.clone();
    let dtype = ctx.dtype;
    dev::trim_gpu_pool(&device)?;
    dev::reset_gpu_peak(&device)?;
    rss_peak(true);
    let t0 = Instant::now();
    let (decoder, model) = match &s.file {
        Some(p) => (Decoder::load_quant(&ModelFiles::detect(p)?, dtype, &device, s.quant)?, p.display().to_string()),
        None => (Decoder::from_weights(BaseWeights::random_on(&s.config, 0, &device, dtype, s.quant)?)?, "random weights in its shape".to_string()),
    };
    let load_s = t0.elapsed().as_secs_f64();
    // What loading left in the pool (a dense tensor goes up in f32 and is cast there) is given back,
    // so the peak below is the training's, the figure the planner predicts.
    let load_reserved = dev::gpu_memory(&device)?.map(|m| m.reserved_peak);
    dev::trim_gpu_pool(&device)?;
    dev::reset_gpu_peak(&device)?;
    rss_peak(true);
    let c = decoder.config.clone();
    ctx.say(&format!(
        "{}: {} ({} parameters, loaded in {load_s:.1} s), batch {} × {}, LoRA r={} on every linear layer, base {}{}",
        s.name,
        model,
        crate::bench::human_count(c.num_parameters() as u64),
        s.batch,
        s.seq_len,
        s.lora_r,
        s.quant,
        if s.grad_checkpoint { ", gradient checkpointing" } else { "" }
    ));
    let mut rng = Rng::new(0);
    let lora = LoraConfig { r: s.lora_r, alpha: 2.0 * s.lora_r as f64, dropout: 0.0, targets: Target::ALL.to_vec(), use_rslora: false };
    let adapter = Adapter::init(&c, lora, &mut rng, &device)?;
    let schedule = Schedule { kind: ScheduleKind::Constant, base_lr: 1e-4, warmup_steps: 0, total_steps: (steps + 1) as u64 };
    let opts = StepOptions { max_grad_norm: Some(1.0), grad_checkpoint: s.grad_checkpoint };
    let mut trainer = Trainer::new(&decoder, adapter, AdamWConfig { weight_decay: 0.0, ..AdamWConfig::default() }, schedule, opts, Rng::new(1))?;
    let n = s.batch * s.seq_len;
    let ids: Vec<u32> = (0..n).map(|_| rng.below(c.vocab_size) as u32).collect();
    let batch = Batch {
        input_ids: Tensor::from_vec(ids, (s.batch, s.seq_len), &device).map_err(engine)?,
        attention_mask: Tensor::ones((s.batch, s.seq_len), DType::U32, &device).map_err(engine)?,
        loss_mask: Tensor::ones((s.batch, s.seq_len), DType::U32, &device).map_err(engine)?,
        tokens: n,
        targets: s.batch * (s.seq_len - 1),
    };
    let mut times = Vec::with_capacity(steps);
    for i in 0..=steps {
        let t = Instant::now();
        let r = trainer.step(std::slice::from_ref(&batch))?;
        device.synchronize().map_err(engine)?;
        let dt = t.elapsed().as_secs_f64();
        ctx.say(&format!("    step {} {:.3} s, loss {:.4}{}", i + 1, dt, r.loss, if i == 0 { " (warm-up)" } else { "" }));
        if i > 0 {
            times.push(dt);
        }
    }
    let step_s_mean = times.iter().sum::<f64>() / times.len() as f64;
    let tokens_per_s = n as f64 / step_s_mean;
    let fpt = flops_per_token(&c, s.seq_len);
    let achieved_tflops = tokens_per_s * fpt / 1e12;
    let mfu = peak_tflops.map(|p| achieved_tflops / p);
    let memory = match dev::gpu_memory(&device)? {
        Some(m) => MeasuredMemory {
            allocated_peak: Some(m.allocated_peak),
            reserved_peak: Some(m.reserved_peak),
            runtime,
            total: runtime.unwrap_or(0) + m.reserved_peak,
        },
        None => MeasuredMemory { total: rss_peak(false).unwrap_or(0), ..MeasuredMemory::default() },
    };
    let on_gpu = device.is_cuda();
    let base = match (s.quant, dtype) {
        (QuantMode::Nf4, _) => BaseFormat::Nf4,
        (_, DType::BF16) => BaseFormat::Bf16,
        _ => BaseFormat::F32,
    };
    let job = JobShape {
        batch: s.batch as u64,
        seq_len: s.seq_len as u64,
        trained_tokens: (s.batch * (s.seq_len - 1)) as u64,
        lora_r: s.lora_r as u64,
        targets: Target::ALL.to_vec(),
        lora_dropout: 0.0,
        grad_checkpoint: s.grad_checkpoint,
        compute_bytes: dtype.size_in_bytes() as u64,
        base,
        fused_loss: device.is_cpu() && dtype == DType::F32,
        load_transient_bytes: None,
        on_gpu,
    };
    let predicted = plan::estimate(&c, &job);
    // The training step's peak against the step's prediction; loading is measured apart.
    let plan_error = (predicted.total as f64 - memory.total as f64) / (memory.total as f64).max(1.0);
    ctx.say(&format!(
        "    {tokens_per_s:.0} tokens/s ({step_s_mean:.3} s a step), {:.1} GFLOP a token, {achieved_tflops:.2} TFLOP/s{}",
        fpt / 1e9,
        mfu.map(|m| format!(", MFU {:.1}%", m * 100.0)).unwrap_or_default()
    ));
    match (memory.allocated_peak, memory.reserved_peak) {
        (Some(a), Some(r)) => ctx.say(&format!(
            "    GPU memory at the peak: tensors {}, pool {}, with CUDA's own {} (measured) = {}",
            gib(a),
            gib(r),
            runtime.map(mib).unwrap_or_else(|| "unknown".into()),
            gib(memory.total)
        )),
        _ => ctx.say(&format!("    resident memory at the peak: {}", gib(memory.total))),
    }
    if let Some(r) = load_reserved {
        ctx.say(&format!("    while loading, the pool held up to {} (given back before training)", gib(r)));
    }
    ctx.say(&format!(
        "    planner: {} for a training step ({}; tensors {}), {:+.1}% against the measured {}",
        gib(predicted.total),
        predicted.peak_phase,
        gib(predicted.total.saturating_sub(if on_gpu { plan::GPU_RUNTIME_BYTES } else { plan::RUNTIME_BYTES })),
        plan_error * 100.0,
        gib(memory.total)
    ));
    let mut targets = Vec::new();
    if s.targets_7b {
        if let Some(m) = mfu {
            targets.push(Goal { what: "MFU in bf16".into(), wanted: format!("≥ {:.0}%", TARGET_MFU * 100.0), got: format!("{:.1}%", m * 100.0), met: m >= TARGET_MFU });
        }
        let vram = memory.reserved_peak.unwrap_or(memory.total);
        targets.push(Goal { what: "GPU memory (allocator's peak)".into(), wanted: format!("≤ {}", gib(TARGET_VRAM_BYTES)), got: gib(vram), met: vram <= TARGET_VRAM_BYTES });
        targets.push(Goal {
            what: "planner against the measured peak".into(),
            wanted: format!("within {:.0}%", TARGET_PLAN_ERROR * 100.0),
            got: format!("{:+.1}%", plan_error * 100.0),
            met: plan_error.abs() <= TARGET_PLAN_ERROR,
        });
        for t in &targets {
            ctx.say(&format!("    target {}: {} {}, got {}", if t.met { "met" } else { "NOT met" }, t.what, t.wanted, t.got));
        }
    }
    Ok(Throughput {
        name: s.name.into(),
        model,
        parameters: c.num_parameters() as u64,
        batch: s.batch,
        seq_len: s.seq_len,
        lora_r: s.lora_r,
        quant: s.quant,
        grad_checkpoint: s.grad_checkpoint,
        steps,
        load_s,
        step_s_mean,
        tokens_per_s,
        flops_per_token: fpt,
        achieved_tflops,
        peak_tflops,
        mfu,
        memory,
        load_reserved_peak: load_reserved,
        predicted,
        plan_error,
        targets,
    })
}
