#!/usr/bin/env bash
# Type-checks the GPU build (`--features cuda`) on a machine without a GPU or a CUDA install:
# NVIDIA's compiler comes from PyPI wheels unpacked into the cache, and candle's kernels are
# compiled for CUDA_COMPUTE_CAP (default 90, Hopper). Slow: nvcc compiles every kernel (~9 min on
# 2 cores). Uses its own target folder so the CPU build is not invalidated.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/whetstone"
CUDA_DIR="$CACHE/cuda"
TOOLKIT="$CUDA_DIR/x13/nvidia/cu13"

if [ ! -x "$TOOLKIT/bin/nvcc" ] || [ ! -d "$TOOLKIT/nvvm" ]; then
  echo "[check-cuda] fetching nvcc, the CUDA runtime headers, CCCL and NVVM from PyPI"
  mkdir -p "$CUDA_DIR/v13" "$CUDA_DIR/x13"
  python3 -m pip download --no-deps -q -d "$CUDA_DIR/v13" \
    nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl nvidia-nvvm nvidia-cuda-crt
  for w in "$CUDA_DIR"/v13/*.whl; do
    python3 -m zipfile -e "$w" "$CUDA_DIR/x13"
  done
  chmod +x "$TOOLKIT"/bin/* "$TOOLKIT"/nvvm/bin/* 2>/dev/null || true
fi
"$TOOLKIT/bin/nvcc" --version | tail -n 1

# cudarc knows toolkit versions up to 13.4 by name; the 13.x driver API it binds is the same.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13040}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export PATH="$TOOLKIT/bin:$PATH" CUDA_ROOT="$TOOLKIT" CUDA_PATH="$TOOLKIT" CUDA_HOME="$TOOLKIT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target-cuda}"
cd "$ROOT"
cargo check -p whetstone-engine -p whetstone-api -p whetstone-cli --features whetstone-cli/cuda
