#!/usr/bin/env bash
# Type-checks the GPU build (`--features cuda`) on a machine without a GPU or a CUDA install, with
# the same pinned toolkit from PyPI wheels as build-cuda.sh (see cuda-toolkit.sh); candle's kernels
# are compiled for CUDA_COMPUTE_CAP (default 80). Slow: nvcc compiles every kernel (~9 min on
# 2 cores). Uses its own target folder so the CPU build is not invalidated; build-cuda.sh makes
# the binaries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=cuda-toolkit.sh
source "$ROOT/scripts/cuda-toolkit.sh"
cd "$ROOT"
cargo fetch --locked -q
cuda_toolkit_fetch
cuda_toolkit_env
"$TOOLKIT/bin/nvcc" --version | tail -n 1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target-cuda}"
cargo check -p whetstone-engine -p whetstone-api -p whetstone-cli --features whetstone-cli/cuda
