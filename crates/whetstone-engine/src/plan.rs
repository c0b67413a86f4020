//! Peak memory of a training job, predicted from the model's shape and from what this engine keeps.
//!
//! The terms follow the code, not a rule of thumb:
//! - The base is held whole in the compute dtype (GGUF files are dequantized on load, see
//!   `weights.rs`), unless a plan asks what a quantized base would need.
//! - Every op of a block keeps its inputs for the backward pass and nothing else (`ops.rs`): per
//!   token and layer that is 6 hidden-wide tensors (block input, both norm outputs, attention and
//!   MLP outputs, the residual sum), 3 query-wide (q before and after rope, attention output), 3
//!   key/value-wide (k before and after rope, v) and 3 intermediate-wide (gate, up, their product).
//!   LoRA dropout adds one mask per adapted projection, as wide as its input. The attention
//!   probabilities are recomputed in the backward pass, not kept.
//! - candle's backward keeps the whole graph alive until it returns, so the activation peak is all
//!   kept tensors plus the largest transient of one op's backward: the MLP's (a few intermediate-wide
//!   tensors), the attention's (probabilities and their gradient, `heads × t × t` per row), or the
//!   loss's (`[256, vocab]` f32 logits chunks, `ops::linear_cross_entropy_sum`).
//! - With gradient checkpointing only each block's input is kept, and one block is rebuilt at a time.
//! - Adapters, their gradients and AdamW's two moments are f32.
//!
//! On a GPU the figures are GPU memory, not the process's resident memory: tensors live there in
//! bf16 (adapters and optimizer state in f32), the loss's chunks are composed from tensor ops
//! rather than the CPU's fused kernel, and the process's own footprint is replaced by what CUDA
//! itself takes on the GPU (its context, cuBLAS's workspace, the loaded kernels).
//!
//! Constants not read off the code: the process's own footprint, measured (a training run of a
//! 0.1M-parameter model peaks at 13.6–14.4 MiB of RSS), and how many op-sized temporaries each
//! backward pass holds at once, counted from `ops.rs` and candle's backprop (which allocates a
//! zero gradient and a sum for every input it accumulates into). `whet bench plan` checks the whole
//! model against measured peaks. Not counted: the tokenizer and the dataset a real run also loads
//! (a few MiB to a few tens of MiB for large vocabularies).

use crate::config::ModelConfig;
use crate::lora::Target;
use serde::{Deserialize, Serialize};

/// The process before any model: code, thread stacks, allocator arenas.
pub const RUNTIME_BYTES: u64 = 16 << 20;
/// GPU memory CUDA takes before any tensor: the context (code and data of the loaded kernel
/// modules, per-thread stacks), cuBLAS's handle and workspace. NVIDIA documents no figure; a context
/// on recent datacenter GPUs takes about 300–500 MiB with lazy module loading, and cuBLAS's
/// workspace 32 MiB on Hopper. `whet bench gpu` prints the measured value next to this one.
pub const GPU_RUNTIME_BYTES: u64 = 512 << 20;
/// Intermediate-wide temporaries alive at once in an MLP block's backward pass (swiglu's σ, silu,
/// its derivative and the two input gradients, plus the down projection's input gradient).
pub const MLP_BACKWARD_TEMPS: f64 = 6.0;
/// `[heads, t, t]` temporaries alive at once in attention's backward pass (probabilities, their
/// gradient, the softmax product and difference, the scores gradient).
pub const ATTENTION_BACKWARD_TEMPS: f64 = 5.0;
/// `[chunk, vocab]` f32 temporaries alive at once in the loss's backward pass, composed from tensor
/// ops (GPU): logits, softmax, the one-hot subtraction, the scaled gradient.
pub const LOSS_BACKWARD_TEMPS: f64 = 4.0;
/// The same with the CPU's single-pass kernel, which turns one logits buffer into its gradient in place.
pub const FUSED_LOSS_BACKWARD_TEMPS: f64 = 1.0;
/// Rows of logits the loss makes at once (`ops::CE_CHUNK_ROWS`).
pub const LOSS_CHUNK_ROWS: u64 = 256;

/// How the base model's weights sit in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum BaseFormat {
    F32,
    Bf16,
    F16,
    /// bitsandbytes 4-bit NormalFloat with double-quantized block scales (QLoRA).
    Nf4,
    Q8_0,
    Q6K,
    Q5K,
    Q4K,
    Q4_1,
    Q4_0,
}

impl BaseFormat {
    /// Bytes per parameter including block scales.
    pub fn bytes_per_param(self) -> f64 {
        match self {
            BaseFormat::F32 => 4.0,
            BaseFormat::Bf16 | BaseFormat::F16 => 2.0,
            // 4 bits + an 8-bit absmax per 64 weights + an f32 per 256 absmax blocks.
            BaseFormat::Nf4 => 0.5 + 1.0 / 64.0 + 4.0 / (64.0 * 256.0),
            BaseFormat::Q8_0 => 34.0 / 32.0,
            BaseFormat::Q6K => 210.0 / 256.0,
            BaseFormat::Q5K => 176.0 / 256.0,
            BaseFormat::Q4K => 144.0 / 256.0,
            BaseFormat::Q4_1 => 20.0 / 32.0,
            BaseFormat::Q4_0 => 18.0 / 32.0,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "f32" => BaseFormat::F32,
            "bf16" => BaseFormat::Bf16,
            "f16" => BaseFormat::F16,
            "nf4" => BaseFormat::Nf4,
            "q8_0" => BaseFormat::Q8_0,
            "q6_k" | "q6k" => BaseFormat::Q6K,
            "q5_k" | "q5k" | "q5_k_m" => BaseFormat::Q5K,
            "q4_k" | "q4k" | "q4_k_m" => BaseFormat::Q4K,
            "q4_1" => BaseFormat::Q4_1,
            "q4_0" => BaseFormat::Q4_0,
            _ => return None,
        })
    }

    /// Whether the engine can train with the base held this way: dense, NF4 (`--quant nf4`) and the
    /// GGUF block types it trains on as they are (`--quant native`).
    pub fn engine_holds(self) -> bool {
        true
    }

    /// Whether only the decoder's linear layers are held this way (embeddings and norms stay dense).
    pub fn is_quantized(self) -> bool {
        !matches!(self, BaseFormat::F32 | BaseFormat::Bf16 | BaseFormat::F16)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobShape {
    pub batch: u64,
    /// Padded length of the longest micro-batch, in tokens.
    pub seq_len: u64,
    /// Most tokens with a loss in one micro-batch (at most `batch × (seq_len − 1)`).
    pub trained_tokens: u64,
    pub lora_r: u64,
    pub targets: Vec<Target>,
    pub lora_dropout: f64,
    pub grad_checkpoint: bool,
    /// Bytes of one activation element: 4 for f32 (CPU), 2 for bf16 (CUDA).
    pub compute_bytes: u64,
    pub base: BaseFormat,
    /// f32 on the CPU: the loss runs as one fused kernel (see `fused.rs`), with fewer temporaries.
    pub fused_loss: bool,
    /// Largest single file read while loading (a safetensors shard is mapped whole, a GGUF tensor is
    /// read and dequantized one at a time); `None` to leave loading out.
    pub load_transient_bytes: Option<u64>,
    /// The figures are for a GPU's memory: CUDA's own share instead of the process's, and loading
    /// reads files in host memory, not on the GPU.
    pub on_gpu: bool,
}

/// Predicted bytes, by what holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct MemoryBreakdown {
    pub base_weights: u64,
    pub adapters_and_optimizer: u64,
    pub activations: u64,
    pub logits: u64,
    pub workspace: u64,
    /// The sum: the training step's peak.
    pub total: u64,
    /// Peak while loading the model, before training starts.
    pub load_peak: u64,
    /// `max(total, load_peak)`: what the process's high-water mark will be.
    pub peak: u64,
    /// When the peak happens; the breakdown is of that moment (logits are 0 when the peak is in a
    /// block, after the loss's temporaries are gone).
    pub peak_phase: String,
    pub adapter_parameters: u64,
}

/// Adapter parameters: `r × (in + out)` per adapted projection per layer.
pub fn adapter_parameters(c: &ModelConfig, r: u64, targets: &[Target]) -> u64 {
    let (h, q, kv, i) = dims(c);
    let per_layer: u64 = targets
        .iter()
        .map(|t| match t {
            Target::Q => h + q,
            Target::K | Target::V => h + kv,
            Target::O => q + h,
            Target::Gate | Target::Up => h + i,
            Target::Down => i + h,
        })
        .sum();
    r * per_layer * c.num_layers as u64
}

/// Parameters of the decoder blocks' seven linear layers, the ones a quantized base holds in blocks.
pub fn linear_parameters(c: &ModelConfig) -> u64 {
    let (h, q, kv, i) = dims(c);
    (2 * h * q + 2 * h * kv + 3 * h * i) * c.num_layers as u64
}

fn dims(c: &ModelConfig) -> (u64, u64, u64, u64) {
    (
        c.hidden_size as u64,
        (c.num_heads * c.head_dim) as u64,
        (c.num_kv_heads * c.head_dim) as u64,
        c.intermediate_size as u64,
    )
}

pub fn estimate(c: &ModelConfig, job: &JobShape) -> MemoryBreakdown {
    let (h, q, kv, i) = dims(c);
    let e = job.compute_bytes as f64;
    let layers = c.num_layers as u64;
    let n = (job.batch * job.seq_len) as f64;
    let heads = c.num_heads as f64;
    let vocab = c.vocab_size as f64;

    // A quantized base keeps embeddings, norms and an untied head dense, and dequantizes one
    // linear layer at a time for each product.
    let (base_weights, dequantized_layer) = if job.base.is_quantized() {
        let linear = linear_parameters(c);
        let dense = c.num_parameters() as u64 - linear;
        ((linear as f64 * job.base.bytes_per_param() + dense as f64 * e) as u64, (h.max(q) * i.max(q)) as f64 * e)
    } else {
        ((c.num_parameters() as f64 * job.base.bytes_per_param()) as u64, 0.0)
    };
    let adapter_parameters = adapter_parameters(c, job.lora_r, &job.targets);
    // Weights, two AdamW moments and the gradient, all f32.
    let adapters_and_optimizer = adapter_parameters * 16;

    // Kept for backward, per layer and token.
    let mut per_token_layer = (6 * h + 3 * q + 3 * kv + 3 * i) as f64;
    if job.lora_dropout > 0.0 {
        per_token_layer += job
            .targets
            .iter()
            .map(|t| match t {
                Target::Q | Target::K | Target::V | Target::Gate | Target::Up => h,
                Target::O => q,
                Target::Down => i,
            })
            .sum::<u64>() as f64;
    }
    let one_layer = n * per_token_layer * e;
    let trained = job.trained_tokens.max(1) as f64;
    // Final norm's input and output, the gathered loss rows, and the residual gradient in flight.
    let top = (3.0 * n * h as f64 + trained * h as f64) * e;
    let chunk = (LOSS_CHUNK_ROWS as f64).min(trained);
    let temps = if job.fused_loss { FUSED_LOSS_BACKWARD_TEMPS } else { LOSS_BACKWARD_TEMPS };
    let loss_temps = temps * chunk * vocab * 4.0;
    let mlp = MLP_BACKWARD_TEMPS * n * i as f64 * e;
    let attention = ATTENTION_BACKWARD_TEMPS * job.batch as f64 * heads * (job.seq_len as f64).powi(2) * e;
    let block_temps = mlp.max(attention);
    // The loss's backward runs first, then each block's: their temporaries never coexist. Without
    // checkpointing everything kept is alive through both; with it, the loss sees only the block
    // inputs and each block is rebuilt (its own kept tensors) just before its backward.
    let (kept_at_loss, kept_at_block) = if job.grad_checkpoint {
        let inputs = layers as f64 * n * h as f64 * e + top;
        (inputs, inputs + one_layer)
    } else {
        let all = layers as f64 * one_layer + top;
        (all, all)
    };
    let loss_phase = kept_at_loss + loss_temps >= kept_at_block + block_temps;
    let (activations, logits, op_temps) =
        if loss_phase { (kept_at_loss, loss_temps, 0.0) } else { (kept_at_block, 0.0, block_temps) };
    let runtime = if job.on_gpu { GPU_RUNTIME_BYTES } else { RUNTIME_BYTES };
    let workspace = runtime as f64 + op_temps + dequantized_layer;
    let activations = activations as u64;
    let logits = logits as u64;
    let total = base_weights + adapters_and_optimizer + activations + logits + workspace as u64;
    // Files are read in host memory; on a GPU only one tensor at a time is in flight while loading.
    let load_transient = if job.on_gpu { 0 } else { job.load_transient_bytes.unwrap_or(0) };
    let load_peak = runtime + base_weights + load_transient;
    let peak_phase = if load_peak > total {
        "loading the model"
    } else if loss_phase {
        "the loss's backward pass"
    } else {
        "a block's backward pass"
    };
    MemoryBreakdown {
        base_weights,
        adapters_and_optimizer,
        activations,
        logits,
        workspace: workspace as u64,
        total,
        load_peak,
        peak: total.max(load_peak),
        peak_phase: peak_phase.to_string(),
        adapter_parameters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Architecture;

    fn smol() -> ModelConfig {
        let mut c = ModelConfig::tiny(Architecture::Llama);
        (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim) =
            (49152, 576, 1536, 30, 9, 3, 64);
        c.tie_word_embeddings = true;
        c
    }

    fn job() -> JobShape {
        JobShape {
            batch: 2,
            seq_len: 256,
            trained_tokens: 2 * 255,
            lora_r: 8,
            targets: Target::ALL.to_vec(),
            lora_dropout: 0.0,
            grad_checkpoint: false,
            compute_bytes: 4,
            base: BaseFormat::F32,
            fused_loss: true,
            load_transient_bytes: None,
            on_gpu: false,
        }
    }

    #[test]
    fn terms_follow_the_settings() {
        let c = smol();
        let base = estimate(&c, &job());
        assert_eq!(base.base_weights, c.num_parameters() as u64 * 4);
        assert_eq!(base.adapter_parameters, 8 * 30 * ((576 + 576) + 2 * (576 + 192) + (576 + 576) + 3 * (576 + 1536)));
        assert_eq!(base.adapters_and_optimizer, base.adapter_parameters * 16);
        assert_eq!(base.total, base.base_weights + base.adapters_and_optimizer + base.activations + base.logits + base.workspace);
        let with = |f: &dyn Fn(&mut JobShape)| {
            let mut j = job();
            f(&mut j);
            estimate(&c, &j)
        };
        assert!(with(&|j| j.grad_checkpoint = true).activations < base.activations / 4);
        assert!(with(&|j| j.lora_dropout = 0.1).activations > base.activations);
        assert!(with(&|j| j.batch = 4).activations > base.activations * 19 / 10);
        let nf4 = with(&|j| j.base = BaseFormat::Nf4);
        // NF4 holds the blocks' linear layers at about 0.516 bytes a parameter; the embedding stays f32.
        let linear = linear_parameters(&c);
        let dense = (c.num_parameters() as u64 - linear) * 4;
        assert!(((nf4.base_weights - dense) as f64 / linear as f64 - 0.516).abs() < 0.01);
        assert!(nf4.workspace > base.workspace, "one dequantized layer at a time");
        assert_eq!(with(&|j| j.compute_bytes = 2).activations * 2, base.activations);
        let loading = with(&|j| j.load_transient_bytes = Some(10 << 30));
        assert_eq!((loading.peak, loading.peak_phase.as_str()), (loading.load_peak, "loading the model"));
    }

    #[test]
    fn on_a_gpu_the_figures_are_cudas_memory_in_bf16() {
        let c = smol();
        let cpu = estimate(&c, &job());
        let gpu_job = JobShape { compute_bytes: 2, base: BaseFormat::Bf16, fused_loss: false, on_gpu: true, load_transient_bytes: Some(10 << 30), ..job() };
        let gpu = estimate(&c, &gpu_job);
        assert_eq!(gpu.base_weights, c.num_parameters() as u64 * 2);
        // Adapters, their gradients and AdamW's moments stay f32 on the GPU too.
        assert_eq!(gpu.adapters_and_optimizer, cpu.adapters_and_optimizer);
        assert_eq!(gpu.activations * 2, cpu.activations);
        assert!(gpu.workspace >= GPU_RUNTIME_BYTES, "CUDA's context and cuBLAS's workspace are counted");
        // A shard read from disk sits in host memory, not on the GPU.
        assert_eq!(gpu.load_peak, GPU_RUNTIME_BYTES + gpu.base_weights);
        assert_ne!(gpu.peak_phase, "loading the model");
    }
}
