//! NF4, the 4-bit NormalFloat format of QLoRA, exactly as bitsandbytes stores it.
//!
//! A tensor is cut, in row-major order, into blocks of 64 values. Each block keeps its absolute
//! maximum (`absmax`) and, per value, the index of the nearest of 16 levels (normal quantiles scaled to
//! [-1, 1], with an exact 0) of `value / absmax`. Two indices share a byte, the first in the high nibble.
//! With double quantization the absmax constants are stored as 8 bits too: their mean (the offset) is
//! subtracted and the rest quantized blockwise (blocks of 256) with bitsandbytes' signed dynamic map,
//! each of those blocks keeping its own absmax. That is 4 + 8/64 + 32/(64·256) ≈ 4.127 bits per weight.
//!
//! Every step is written to give bitsandbytes' own float32 results bit for bit (see
//! `scripts/parity/make_nf4_fixtures.py` and `tests/nf4_tests.rs`), so a base quantized here behaves as
//! the same base loaded with `load_in_4bit` in transformers.

use candle_core::{DType, Device, Result, Storage, Tensor};

/// Values per absmax block, bitsandbytes' default for 4-bit weights.
pub const BLOCK: usize = 64;
/// Absmax constants per block of the second quantization.
pub const ABSMAX_BLOCK: usize = 256;

/// The 16 NF4 levels, bitsandbytes' float32 constants as Python prints them (the tests check the bits).
#[allow(clippy::excessive_precision)]
pub const NF4_LEVELS: [f32; 16] = [
    -1.0,
    -0.696_192_800_998_687_7,
    -0.525_073_051_452_636_7,
    -0.394_917_488_098_144_53,
    -0.284_441_381_692_886_35,
    -0.184_773_430_228_233_34,
    -0.091_050_036_251_544_95,
    0.0,
    0.079_580_299_556_255_34,
    0.160_930_201_411_247_25,
    0.246_112_301_945_686_34,
    0.337_915_241_718_292_24,
    0.440_709_829_330_444_34,
    0.562_617_003_917_694_1,
    0.722_956_836_223_602_3,
    1.0,
];

/// bitsandbytes' `create_dynamic_map(signed=True)`, as float32 bit patterns: the 8-bit code the
/// absmax constants are stored in.
const DYNAMIC_MAP_BITS: [u32; 256] = [
    0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
    0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
    0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
    0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
    0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
    0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
    0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
    0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
    0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
    0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
    0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
    0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
    0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
    0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
    0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
    0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
    0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
    0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
    0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
    0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
    0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
    0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
    0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
    0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
    0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
    0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
    0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
    0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
    0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
    0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
    0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
    0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
];

/// The 256 levels of bitsandbytes' signed dynamic map.
pub fn dynamic_map() -> [f32; 256] {
    DYNAMIC_MAP_BITS.map(f32::from_bits)
}

/// The 4-bit index for a value already scaled to [-1, 1]: bitsandbytes compares with the float32
/// midpoints of neighbouring levels and sends a value on a midpoint to the lower level.
fn nf4_index(x: f32) -> u8 {
    let mut i = 0u8;
    while (i as usize) < 15 {
        let mid = (NF4_LEVELS[i as usize] + NF4_LEVELS[i as usize + 1]) / 2.0;
        if x <= mid {
            break;
        }
        i += 1;
    }
    i
}

/// Absmax constants, plain or double-quantized.
#[derive(Debug, Clone, PartialEq)]
pub enum Absmax {
    /// One float32 per block of 64.
    Plain(Vec<f32>),
    /// `dynamic_map[q[i]] · scale[i / 256] + offset`.
    Double { q: Vec<u8>, offset: f32, scale: Vec<f32> },
}

impl Absmax {
    /// The float32 absmax of every block, as bitsandbytes reconstructs it.
    pub fn values(&self) -> Vec<f32> {
        match self {
            Absmax::Plain(v) => v.clone(),
            Absmax::Double { q, offset, scale } => {
                let map = dynamic_map();
                q.iter().enumerate().map(|(i, &c)| map[c as usize] * scale[i / ABSMAX_BLOCK] + offset).collect()
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Absmax::Plain(v) => 4 * v.len(),
            Absmax::Double { q, scale, .. } => q.len() + 4 * scale.len() + 4,
        }
    }
}

/// An NF4-quantized tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Nf4 {
    pub shape: Vec<usize>,
    /// Two indices per byte, element `2i` in the high nibble; an odd count is padded with the index
    /// of 0.0.
    pub packed: Vec<u8>,
    pub absmax: Absmax,
}

/// bitsandbytes' 8-bit blockwise quantization on the CPU: each value times `1/absmax` is rounded onto
/// a grid of 65,536 points on [-1, 1], and a table built from the map's float32 midpoints gives the
/// level nearest that grid point. Returns the codes and each block's absmax.
pub fn quantize_blockwise_8bit(values: &[f32], map: &[f32; 256], block: usize) -> (Vec<u8>, Vec<f32>) {
    const GRID: usize = 65_536;
    let mids: Vec<f32> = (0..255).map(|i| 0.5f32 * (map[i] + map[i + 1])).collect();
    let mut table = vec![0u8; GRID];
    let mut code = 0usize;
    for (i, slot) in table.iter_mut().enumerate() {
        let v = -1.0f32 + (2.0f32 * i as f32) / (GRID - 1) as f32;
        while code < 255 && mids[code] < v {
            code += 1;
        }
        *slot = code as u8;
    }
    let mut out = vec![0u8; values.len()];
    let mut absmax = Vec::with_capacity(values.len().div_ceil(block));
    for (b, chunk) in values.chunks(block).enumerate() {
        let am = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        absmax.push(am);
        if am == 0.0 {
            continue;
        }
        let inv = 1.0f32 / am;
        for (j, &v) in chunk.iter().enumerate() {
            let x = (v * inv).clamp(-1.0, 1.0);
            let idx = ((x + 1.0) * 0.5 * (GRID - 1) as f32 + 0.5) as usize;
            out[b * block + j] = table[idx.min(GRID - 1)];
        }
    }
    (out, absmax)
}

impl Nf4 {
    /// Quantizes float32 values (row-major, `shape`) as bitsandbytes' `quantize_4bit(quant_type="nf4",
    /// blocksize=64, compress_statistics=double)`.
    pub fn quantize(values: &[f32], shape: &[usize], double: bool) -> Self {
        use rayon::prelude::*;
        let n = values.len();
        debug_assert_eq!(n, shape.iter().product::<usize>());
        let full = n - n % BLOCK;
        // Whole blocks are independent, so they are quantized in parallel (a 7B model's linear
        // layers hold 6.5 billion values); each block's arithmetic is the same as one at a time.
        const BLOCKS_PER_TASK: usize = 1024;
        let parts: Vec<(Vec<f32>, Vec<u8>)> = values[..full]
            .par_chunks(BLOCK * BLOCKS_PER_TASK)
            .map(|task| {
                let mut absmax = Vec::with_capacity(task.len() / BLOCK);
                let mut packed = Vec::with_capacity(task.len() / 2);
                for chunk in task.chunks(BLOCK) {
                    let am = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
                    absmax.push(am);
                    // bitsandbytes multiplies by the reciprocal here (and guards an all-zero block)...
                    let inv = 1.0f32 / am.max(1e-38);
                    packed.extend(chunk.chunks(2).map(|p| (nf4_index((p[0] * inv).clamp(-1.0, 1.0)) << 4) | nf4_index((p[1] * inv).clamp(-1.0, 1.0))));
                }
                (absmax, packed)
            })
            .collect();
        let mut absmax = Vec::with_capacity(n.div_ceil(BLOCK));
        let mut packed = Vec::with_capacity(n.div_ceil(2));
        for (a, p) in parts {
            absmax.extend(a);
            packed.extend(p);
        }
        if full < n {
            // ...but divides in the last, partial block, whose stored absmax is the guarded one.
            let rest = &values[full..];
            let am = rest.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-38);
            absmax.push(am);
            let mut codes: Vec<u8> = rest.iter().map(|&v| nf4_index((v / am).clamp(-1.0, 1.0))).collect();
            if codes.len() % 2 == 1 {
                codes.push(nf4_index(0.0));
            }
            packed.extend(codes.chunks(2).map(|p| (p[0] << 4) | p[1]));
        }
        let absmax = if double { double_quantize(&absmax) } else { Absmax::Plain(absmax) };
        Nf4 { shape: shape.to_vec(), packed, absmax }
    }

    /// Quantizes a tensor of any float dtype (read as float32, as bitsandbytes does).
    pub fn quantize_tensor(t: &Tensor, double: bool) -> Result<Self> {
        let values: Vec<f32> = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        Ok(Self::quantize(&values, t.dims(), double))
    }

    pub fn elem_count(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes held: packed indices and absmax constants (with their own constants).
    pub fn storage_bytes(&self) -> usize {
        self.packed.len() + self.absmax.bytes()
    }

    /// `level[index] · absmax[block]` in float32, as bitsandbytes' `dequantize_4bit`.
    pub fn dequantize_values(&self) -> Vec<f32> {
        let n = self.elem_count();
        let absmax = self.absmax.values();
        let mut out = Vec::with_capacity(n);
        for (i, byte) in self.packed.iter().enumerate() {
            out.push(NF4_LEVELS[(byte >> 4) as usize] * absmax[(2 * i) / BLOCK]);
            if 2 * i + 1 < n {
                out.push(NF4_LEVELS[(byte & 0x0f) as usize] * absmax[(2 * i + 1) / BLOCK]);
            }
        }
        out
    }

    /// The dequantized tensor on the CPU, in float32.
    pub fn dequantize_cpu(&self) -> Result<Tensor> {
        Tensor::from_vec(self.dequantize_values(), self.shape.as_slice(), &Device::Cpu)
    }

    /// The same tensor as device tensors, for [`Nf4Device::dequantize`].
    pub fn to_device(&self, device: &Device) -> Result<Nf4Device> {
        let packed = Tensor::from_slice(&self.packed, self.packed.len(), device)?;
        let absmax = match &self.absmax {
            Absmax::Plain(v) => DeviceAbsmax::Plain(Tensor::from_slice(v, v.len(), device)?),
            Absmax::Double { q, offset, scale } => DeviceAbsmax::Double {
                q: Tensor::from_slice(q, q.len(), device)?,
                offset: *offset,
                scale: Tensor::from_slice(scale, scale.len(), device)?,
                map: Tensor::from_slice(&dynamic_map(), 256, device)?,
            },
        };
        let levels = Tensor::from_slice(&NF4_LEVELS, 16, device)?;
        Ok(Nf4Device { shape: self.shape.clone(), packed, absmax, levels, bytes: self.storage_bytes() })
    }
}

/// bitsandbytes' `compress_statistics`: subtract the mean of the absmax constants and store the rest
/// as 8 bits with the dynamic map, in blocks of 256.
fn double_quantize(absmax: &[f32]) -> Absmax {
    // torch's float32 mean, reproduced by summing in f64 and rounding once (checked on the fixtures).
    let offset = (absmax.iter().map(|&v| v as f64).sum::<f64>() / absmax.len().max(1) as f64) as f32;
    let centred: Vec<f32> = absmax.iter().map(|&v| v - offset).collect();
    let (q, scale) = quantize_blockwise_8bit(&centred, &dynamic_map(), ABSMAX_BLOCK);
    Absmax::Double { q, offset, scale }
}

#[derive(Debug, Clone)]
enum DeviceAbsmax {
    Plain(Tensor),
    Double { q: Tensor, offset: f32, scale: Tensor, map: Tensor },
}

/// An NF4 tensor whose buffers live on a device; dequantized there with tensor ops (a gather of the
/// 16 levels, times the block's absmax), in float32 as bitsandbytes computes, then cast.
#[derive(Debug, Clone)]
pub struct Nf4Device {
    shape: Vec<usize>,
    packed: Tensor,
    absmax: DeviceAbsmax,
    levels: Tensor,
    bytes: usize,
}

impl Nf4Device {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn device(&self) -> &Device {
        self.packed.device()
    }

    pub fn storage_bytes(&self) -> usize {
        self.bytes
    }

    fn absmax(&self) -> Result<Tensor> {
        match &self.absmax {
            DeviceAbsmax::Plain(a) => Ok(a.clone()),
            DeviceAbsmax::Double { q, offset, scale, map } => {
                let n = q.dim(0)?;
                let blocks = scale.dim(0)?;
                let vals = pad_to(map.index_select(&q.to_dtype(DType::U32)?, 0)?, blocks * ABSMAX_BLOCK)?;
                let v = vals.reshape((blocks, ABSMAX_BLOCK))?.broadcast_mul(&scale.unsqueeze(1)?)?;
                let offset = Tensor::from_slice(&[*offset], 1, q.device())?;
                v.flatten_all()?.narrow(0, 0, n)?.broadcast_add(&offset)
            }
        }
    }

    /// The dequantized tensor in `dtype`. On the CPU this is the host loop; on an NVIDIA GPU one
    /// kernel that writes bf16 or f32 directly (`src/cuda/nf4.cu`); elsewhere tensor ops
    /// ([`Self::dequantize_ops`]).
    pub fn dequantize(&self, dtype: DType) -> Result<Tensor> {
        if self.device().is_cpu() {
            let out = self.dequantize_host()?;
            return if dtype == DType::F32 { Ok(out) } else { out.to_dtype(dtype) };
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() && matches!(dtype, DType::BF16 | DType::F32) {
            return self.dequantize_kernel(dtype);
        }
        self.dequantize_ops(dtype)
    }

    /// [`Self::dequantize`] by the CUDA kernel, with `dtype` bf16 or f32.
    #[cfg(feature = "cuda")]
    pub fn dequantize_kernel(&self, dtype: DType) -> Result<Tensor> {
        let n: usize = self.shape.iter().product();
        let op = cuda::Dequantize { absmax: self.absmax()?.contiguous()?, levels: self.levels.clone(), n, dtype };
        self.packed.apply_op1_no_bwd(&op)?.reshape(self.shape.as_slice())
    }

    fn dequantize_host(&self) -> Result<Tensor> {
        let (st, layout) = self.packed.storage_and_layout();
        let packed = match &*st {
            Storage::Cpu(s) => &s.as_slice::<u8>()?[layout.start_offset()..],
            _ => candle_core::bail!("nf4 codes are not on the cpu"),
        };
        let absmax: Vec<f32> = self.absmax()?.to_vec1()?;
        let n: usize = self.shape.iter().product();
        let mut out = Vec::with_capacity(n);
        for (i, byte) in packed.iter().take(n.div_ceil(2)).enumerate() {
            out.push(NF4_LEVELS[(byte >> 4) as usize] * absmax[(2 * i) / BLOCK]);
            if 2 * i + 1 < n {
                out.push(NF4_LEVELS[(byte & 0x0f) as usize] * absmax[(2 * i + 1) / BLOCK]);
            }
        }
        Tensor::from_vec(out, self.shape.as_slice(), &Device::Cpu)
    }

    /// Dequantization with tensor ops alone, for GPUs: codes unpacked with integer arithmetic on u8,
    /// levels gathered with `index_select`, scaled by each block's absmax in float32, then cast.
    pub fn dequantize_ops(&self, dtype: DType) -> Result<Tensor> {
        let n: usize = self.shape.iter().product();
        let bytes = self.packed.dim(0)?;
        // Every step is exact in f32: bytes are below 256.
        let p = self.packed.to_dtype(DType::F32)?;
        let hi = (&p / 16.0)?.floor()?;
        let lo = (&p - (&hi * 16.0)?)?;
        let idx = Tensor::stack(&[&hi, &lo], 1)?.reshape(2 * bytes)?.to_dtype(DType::U32)?;
        let vals = self.levels.index_select(&idx, 0)?.narrow(0, 0, n)?;
        let absmax = self.absmax()?;
        let blocks = absmax.dim(0)?;
        let vals = pad_to(vals, blocks * BLOCK)?;
        let out = vals.reshape((blocks, BLOCK))?.broadcast_mul(&absmax.unsqueeze(1)?)?;
        out.flatten_all()?.narrow(0, 0, n)?.reshape(self.shape.as_slice())?.to_dtype(dtype)
    }
}

/// `v` (1-D) extended with zeros to `len` elements.
fn pad_to(v: Tensor, len: usize) -> Result<Tensor> {
    let n = v.dim(0)?;
    if n >= len {
        return Ok(v);
    }
    let zeros = Tensor::zeros(len - n, v.dtype(), v.device())?;
    Tensor::cat(&[&v, &zeros], 0)
}

#[cfg(feature = "cuda")]
mod cuda {
    //! The NF4 kernel as a candle op over the packed codes.

    use candle_core::backend::BackendStorage;
    use candle_core::cuda::cudarc::driver::{LaunchConfig, PushKernelArg};
    use candle_core::cuda::WrapErr;
    use candle_core::{CpuStorage, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor};

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/nf4.ptx"));

    pub(super) struct Dequantize {
        /// Float32 absmax of every block of 64, on the GPU.
        pub absmax: Tensor,
        pub levels: Tensor,
        pub n: usize,
        pub dtype: DType,
    }

    impl CustomOp1 for Dequantize {
        fn name(&self) -> &'static str {
            "nf4-dequantize"
        }

        fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
            candle_core::bail!("nf4: the kernel runs on the gpu; the cpu has its own loop")
        }

        fn cuda_fwd(&self, packed: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
            let dev = packed.device().clone();
            let codes = packed.as_cuda_slice::<u8>()?.slice(layout.start_offset()..);
            let (am_storage, am_layout) = self.absmax.storage_and_layout();
            let (lv_storage, lv_layout) = self.levels.storage_and_layout();
            let (Storage::Cuda(am), Storage::Cuda(lv)) = (&*am_storage, &*lv_storage) else {
                candle_core::bail!("nf4: the block constants are not on the gpu")
            };
            let absmax = am.as_cuda_slice::<f32>()?.slice(am_layout.start_offset()..);
            let levels = lv.as_cuda_slice::<f32>()?.slice(lv_layout.start_offset()..);
            let bytes = self.n.div_ceil(2);
            let cfg = LaunchConfig::for_num_elems(bytes as u32);
            let n = self.n as u32;
            let out = match self.dtype {
                DType::F32 => {
                    let func = dev.get_or_load_custom_func("nf4_dequantize_f32", "whetstone_nf4", PTX)?;
                    // SAFETY: every element is written by the kernel below.
                    let out = unsafe { dev.alloc::<f32>(self.n)? };
                    let mut b = func.builder();
                    b.arg(&codes).arg(&absmax).arg(&levels).arg(&out).arg(&n);
                    // SAFETY: the arguments match the kernel's signature in nf4.cu.
                    unsafe { b.launch(cfg) }.w()?;
                    CudaStorage::wrap_cuda_slice(out, dev)
                }
                DType::BF16 => {
                    let func = dev.get_or_load_custom_func("nf4_dequantize_bf16", "whetstone_nf4", PTX)?;
                    // SAFETY: as above.
                    let out = unsafe { dev.alloc::<half::bf16>(self.n)? };
                    let mut b = func.builder();
                    b.arg(&codes).arg(&absmax).arg(&levels).arg(&out).arg(&n);
                    // SAFETY: as above; bf16 is passed as its 16 bits.
                    unsafe { b.launch(cfg) }.w()?;
                    CudaStorage::wrap_cuda_slice(out, dev)
                }
                other => candle_core::bail!("nf4: no kernel for {other:?}"),
            };
            Ok((out, Shape::from(self.n)))
        }
    }
}
