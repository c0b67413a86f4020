//! Frozen base weights kept quantized: NF4 (QLoRA) or the GGUF block types a file ships with. They are
//! dequantized a layer at a time, when a product needs them, and never receive a gradient.

use crate::error::{Error, Result};
use crate::nf4::Nf4Device;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How the base model's linear layers are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum QuantMode {
    /// As the file has them: a GGUF's quantized blocks stay quantized, safetensors stay dense.
    #[default]
    Native,
    /// Everything dense in the compute dtype (GGUF blocks dequantized at load).
    None,
    /// NF4 with double quantization (QLoRA), quantized at load from the file's weights.
    Nf4,
}

impl QuantMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            QuantMode::Native => "native",
            QuantMode::None => "none",
            QuantMode::Nf4 => "nf4",
        }
    }
}

impl std::fmt::Display for QuantMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for QuantMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "native" | "auto" => Ok(QuantMode::Native),
            "none" | "f32" | "dense" => Ok(QuantMode::None),
            "nf4" | "qlora" => Ok(QuantMode::Nf4),
            other => Err(Error::Settings(format!("unknown quantization `{other}`: use none, native or nf4"))),
        }
    }
}

/// A quantized frozen weight `[out, in]`.
#[derive(Debug)]
pub enum QuantWeight {
    Nf4(Nf4Device),
    Gguf(QTensor),
}

impl QuantWeight {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            QuantWeight::Nf4(q) => q.shape().to_vec(),
            QuantWeight::Gguf(q) => q.shape().dims().to_vec(),
        }
    }

    /// The dense weight in `dtype`, on the weight's device.
    pub fn dequantize(&self, dtype: DType) -> candle_core::Result<Tensor> {
        Ok(match self {
            QuantWeight::Nf4(q) => q.dequantize(dtype)?,
            QuantWeight::Gguf(q) => {
                let t = q.dequantize(&q.device())?;
                if t.dtype() == dtype {
                    t
                } else {
                    t.to_dtype(dtype)?
                }
            }
        })
    }

    /// Bytes this weight holds.
    pub fn storage_bytes(&self) -> usize {
        match self {
            QuantWeight::Nf4(q) => q.storage_bytes(),
            QuantWeight::Gguf(q) => q.storage_size_in_bytes(),
        }
    }

    /// `nf4` or the GGUF type name (`q4_1`, `q6k`...).
    pub fn kind(&self) -> String {
        match self {
            QuantWeight::Nf4(_) => "nf4".into(),
            QuantWeight::Gguf(q) => format!("{:?}", q.dtype()).to_ascii_lowercase(),
        }
    }

    /// Whether a GGUF block type is kept quantized (types that are already plain floats are not).
    pub fn keeps_quantized(dtype: GgmlDType) -> bool {
        !matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
    }

    /// Whether a weight with rows of `cols` values can stay in blocks of `dtype`: candle's block dot
    /// products take rows of an even number of blocks (real models' widths always are; tiny test
    /// models' may not be), so anything else is dequantized at load.
    pub fn keeps_quantized_rows(dtype: GgmlDType, cols: usize) -> bool {
        Self::keeps_quantized(dtype) && cols % (2 * dtype.block_size()) == 0
    }
}

/// A frozen weight, dense or quantized; cheap to clone.
#[derive(Debug, Clone)]
pub enum FrozenWeight {
    Dense(Tensor),
    Quantized(Arc<QuantWeight>),
}

impl FrozenWeight {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            FrozenWeight::Dense(t) => t.dims().to_vec(),
            FrozenWeight::Quantized(q) => q.dims(),
        }
    }

    /// The weight as a dense tensor in `dtype`: the tensor itself when dense, else a fresh dequantized
    /// copy that lives only as long as the caller keeps it.
    pub fn materialize(&self, dtype: DType) -> candle_core::Result<Tensor> {
        match self {
            FrozenWeight::Dense(t) if t.dtype() == dtype => Ok(t.clone()),
            FrozenWeight::Dense(t) => t.to_dtype(dtype),
            FrozenWeight::Quantized(q) => q.dequantize(dtype),
        }
    }

    /// `x Wᵀ` for a 2-D `x` outside any graph. A GGUF weight on the CPU multiplies a few rows (token by
    /// token generation) with candle's quantized kernel, which rounds `x` to 8 bits per block but does
    /// not dequantize the whole layer for every token; larger products, and every product that may
    /// need a gradient, dequantize and multiply, so training sees exactly the dequantized weight.
    pub fn matmul_t(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        const QUANTIZED_KERNEL_MAX_ROWS: usize = 8;
        if let FrozenWeight::Quantized(q) = self {
            if let QuantWeight::Gguf(qt) = q.as_ref() {
                if x.device().is_cpu() && x.dtype() == DType::F32 && x.dim(0)? <= QUANTIZED_KERNEL_MAX_ROWS {
                    return x.contiguous()?.apply_op1_no_bwd(qt);
                }
            }
        }
        let w = self.materialize(x.dtype())?;
        crate::blas::matmul(x, &w.t()?)
    }

    pub fn storage_bytes(&self) -> usize {
        match self {
            FrozenWeight::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
            FrozenWeight::Quantized(q) => q.storage_bytes(),
        }
    }
}
