// NF4 dequantization on NVIDIA GPUs, one packed byte (two values) per thread.
//
// Each value is `level[index] * absmax[block]` in float32, as bitsandbytes' dequantize_4bit and the
// engine's CPU loop compute it; the bf16 output is that float32 rounded to nearest even, as the
// `half` crate's bf16::from_f32 rounds, so the GPU's weights are the CPU's bit for bit.

__device__ __forceinline__ unsigned short to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (unsigned short)((u >> 16) | 0x0040u);  // NaN stays a (quiet) NaN
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

extern "C" __global__ void nf4_dequantize_f32(
    const unsigned char* packed, const float* absmax, const float* levels, float* out, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = 2u * i;
    if (j >= n) return;
    unsigned char b = packed[i];
    out[j] = levels[b >> 4] * absmax[j / 64u];
    if (j + 1u < n) out[j + 1u] = levels[b & 15u] * absmax[(j + 1u) / 64u];
}

extern "C" __global__ void nf4_dequantize_bf16(
    const unsigned char* packed, const float* absmax, const float* levels, unsigned short* out, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int j = 2u * i;
    if (j >= n) return;
    unsigned char b = packed[i];
    out[j] = to_bf16(levels[b >> 4] * absmax[j / 64u]);
    if (j + 1u < n) out[j + 1u] = to_bf16(levels[b & 15u] * absmax[(j + 1u) / 64u]);
}
