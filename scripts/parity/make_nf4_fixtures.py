"""NF4 fixtures for the engine's `nf4_tests`, produced with bitsandbytes itself.

How to run (CI never runs this; the output is committed):

    ~/.cache/whetstone/refenv/bin/pip install bitsandbytes      # 0.50.2 was used
    ~/.cache/whetstone/refenv/bin/python scripts/parity/make_nf4_fixtures.py

The reference is bitsandbytes' CPU backend: `functional.quantize_4bit(..., quant_type="nf4")` with and
without `compress_statistics` (double quantization) and `functional.dequantize_4bit`.  On the CPU,
4-bit quantization is bitsandbytes' portable torch kernel (bucketize on the float32 midpoints of the
16 levels, ties to the lower level; packing high nibble first) and the 8-bit quantization of the
absmax constants is its C++ `quantize_cpu` (value times 1/absmax, rounded onto a grid of 65536 points
whose nearest dynamic-map level comes from a table).  A numpy transcription of both is included
below and must agree with bitsandbytes on every case, so a future bitsandbytes that changes its
algorithm is noticed here rather than in the Rust tests.

Writes crates/whetstone-engine/tests/fixtures/nf4/nf4.safetensors with, per case `<c>`:
  <c>.weight       the input (float32, or bfloat16 for the bf16 case)
  <c>.packed       uint8, two codes per byte, element 2i in the high nibble
  <c>.absmax       float32 per block of 64
  <c>.dequant      float32, dequantize_4bit of the above (portable kernel; see portable_dequantize)
  <c>.dq.qabsmax   uint8, absmax - offset quantized with the dynamic map in blocks of 256
  <c>.dq.offset    float32 [1], the mean of the absmax constants
  <c>.dq.absmax2   float32 per block of 256 absmax constants
  <c>.dq.dequant   float32, dequantize_4bit with double quantization
and the tables `nf4_code` [16] and `dynamic_code` [256] as bitsandbytes holds them.
"""

import os

import numpy as np
import torch
from safetensors.torch import save_file

import bitsandbytes
import bitsandbytes.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "crates", "whetstone-engine", "tests", "fixtures", "nf4")


def np_quantize_nf4(a, code, blocksize=64):
    """bitsandbytes' default `quantize_4bit` kernel, in numpy float32."""
    flat = a.reshape(-1).astype(np.float32)
    n = flat.size
    rem = n % blocksize
    full = n - rem
    bounds = ((code[:-1] + code[1:]) / np.float32(2)).astype(np.float32)
    com = flat[:full].reshape(-1, blocksize)
    absmax = np.abs(com).max(axis=1).astype(np.float32)
    recip = (np.float32(1) / np.maximum(absmax, np.float32(1e-38))).astype(np.float32)
    scaled = np.clip(com * recip[:, None], -1, 1).reshape(-1)
    if rem:
        am = np.maximum(np.abs(flat[full:]).max(), np.float32(1e-38)).astype(np.float32)
        absmax = np.concatenate([absmax, [am]]).astype(np.float32)
        scaled = np.concatenate([scaled, np.clip(flat[full:] / am, -1, 1)])
    if scaled.size % 2:
        scaled = np.concatenate([scaled, [np.float32(0)]])
    q = np.searchsorted(bounds, scaled.astype(np.float32), side="left").astype(np.uint8)
    return ((q[0::2] << 4) | q[1::2]).astype(np.uint8), absmax


def np_quantize_blockwise(a, code, blocksize=256):
    """bitsandbytes' C++ `quantize_cpu` (8-bit, dynamic map), in numpy float32: each value times
    1/absmax is mapped to one of 65536 points on [-1, 1] and a table gives the level nearest that point
    (not the level nearest the value itself)."""
    f32 = np.float32
    mid = (f32(0.5) * (code[:-1] + code[1:])).astype(f32)
    grid = (f32(-1.0) + (f32(2.0) * np.arange(65536).astype(f32)) / f32(65535)).astype(f32)
    lut = np.searchsorted(mid, grid, side="left").astype(np.uint8)
    out = np.zeros(a.size, np.uint8)
    absmax = []
    for start in range(0, a.size, blocksize):
        blk = a[start : start + blocksize].astype(f32)
        am = f32(np.abs(blk).max())
        absmax.append(am)
        if am == 0:
            continue
        v = np.clip((blk * f32(f32(1) / am)).astype(f32), -1, 1)
        t = ((v + f32(1)) * f32(0.5)).astype(f32)
        idx = np.floor((t * f32(65535)).astype(f32) + f32(0.5)).astype(np.int64)
        out[start : start + blocksize] = lut[idx]
    return out, np.array(absmax, f32)


def np_dequantize_nf4(packed, absmax, code, n, blocksize=64):
    q = np.empty(packed.size * 2, np.int64)
    q[0::2] = packed >> 4
    q[1::2] = packed & 0xF
    vals = code[q[:n]]
    scale = absmax[np.arange(n) // blocksize]
    return (vals * scale).astype(np.float32)


def portable_dequantize(packed, absmax, code, shape):
    """bitsandbytes' portable `dequantize_4bit` kernel (the CUDA kernel's semantics: blocks of 64 over
    the flattened tensor).  bitsandbytes 0.50.2's C++ CPU kernel, which `dequantize_4bit` picks on the
    CPU, takes the block index per row and so is wrong when the last dimension is not a multiple of
    the block size (checked below for the shapes where it is right)."""
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute

    return _dequantize_4bit_compute(packed.reshape(-1), absmax, code, 64, tuple(shape), torch.float32)


def main():
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    cases = {
        # rows of whole blocks
        "f32_16x64": torch.randn(16, 64),
        # blocks that span rows (in = 96)
        "f32_24x96": torch.randn(24, 96) * 0.02,
        # a last, partial block (315 = 4·64 + 59) and an odd count of codes
        "f32_7x45": torch.randn(7, 45) * 3.0,
        # over 256 blocks, so the absmax constants have two blocks of their own (the second partial)
        "f32_64x320": torch.randn(64, 320) * 0.05 + 0.001,
        # a bf16 input is quantized from its float32 value
        "bf16_32x128": (torch.randn(32, 128) * 0.1).to(torch.bfloat16),
    }
    # heavy tails: a few large weights dominate their blocks, as in real checkpoints
    heavy = torch.randn(8, 128) * 0.01
    heavy[0, 3] = 1.5
    heavy[5, 100] = -2.0
    cases["f32_heavy_8x128"] = heavy
    nf4_code = F.get_4bit_type("nf4", device="cpu").float()
    out = {"nf4_code": nf4_code.contiguous()}
    dynamic = None
    for name, w in cases.items():
        n = w.numel()
        packed, st = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=False)
        deq = portable_dequantize(packed, st.absmax, nf4_code, w.shape)
        packed_dq, st_dq = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
        absmax_dq = F.dequantize_blockwise(st_dq.absmax, st_dq.state2) + st_dq.offset
        deq_dq = portable_dequantize(packed_dq, absmax_dq.float(), nf4_code, w.shape)
        if w.shape[-1] % 64 == 0:
            # the C++ CPU kernel agrees wherever blocks do not span rows
            assert torch.equal(F.dequantize_4bit(packed, st), deq.to(w.dtype)), name
            assert torch.equal(F.dequantize_4bit(packed_dq, st_dq), deq_dq.to(w.dtype)), name
        assert torch.equal(packed, packed_dq)
        if dynamic is None:
            dynamic = st_dq.state2.code.float().clone()
        assert torch.equal(dynamic, st_dq.state2.code.float())
        out[f"{name}.weight"] = w.contiguous()
        out[f"{name}.packed"] = packed.reshape(-1).contiguous()
        out[f"{name}.absmax"] = st.absmax.float().contiguous()
        out[f"{name}.dequant"] = deq.reshape(w.shape).contiguous()
        out[f"{name}.dq.qabsmax"] = st_dq.absmax.reshape(-1).contiguous()
        out[f"{name}.dq.offset"] = st_dq.offset.float().reshape(1).contiguous()
        out[f"{name}.dq.absmax2"] = st_dq.state2.absmax.float().contiguous()
        out[f"{name}.dq.dequant"] = deq_dq.reshape(w.shape).contiguous()

        # the numpy transcription must agree with bitsandbytes bit for bit
        a = w.float().numpy()
        code = nf4_code.numpy()
        p, am = np_quantize_nf4(a, code)
        assert np.array_equal(p, packed.reshape(-1).numpy()), name
        assert np.array_equal(am.view(np.uint32), st.absmax.numpy().view(np.uint32)), name
        d = np_dequantize_nf4(p, am, code, n)
        assert np.array_equal(d.view(np.uint32), deq.reshape(-1).numpy().view(np.uint32)), name
        offset = st_dq.offset.float().numpy().astype(np.float32)
        qa, am2 = np_quantize_blockwise((am - offset).astype(np.float32), dynamic.numpy())
        bad = np.nonzero(qa != st_dq.absmax.numpy())[0]
        assert bad.size == 0, (name, bad, qa[bad], st_dq.absmax.numpy()[bad], ((am - offset) / np.repeat(am2, 256)[: am.size])[bad])
        assert np.array_equal(am2, st_dq.state2.absmax.numpy()), name
        am_back = (dynamic.numpy()[qa] * am2[np.arange(am.size) // 256]).astype(np.float32) + offset
        d2 = np_dequantize_nf4(p, am_back.astype(np.float32), code, n)
        assert np.array_equal(d2.view(np.uint32), deq_dq.reshape(-1).numpy().view(np.uint32)), name
        mean64 = np.float32(am.astype(np.float64).mean())
        print(f"{name}: {n} weights, {am.size} blocks, offset {float(offset)!r} (f64 mean rounded: {mean64!r})")
    out["dynamic_code"] = dynamic.contiguous()
    os.makedirs(OUT, exist_ok=True)
    save_file(out, os.path.join(OUT, "nf4.safetensors"), metadata={"bitsandbytes": bitsandbytes.__version__})
    print("wrote", os.path.join(OUT, "nf4.safetensors"), "with bitsandbytes", bitsandbytes.__version__)


if __name__ == "__main__":
    main()
