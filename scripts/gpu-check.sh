#!/usr/bin/env bash
# The GPU check, for a single-GPU Linux machine with an NVIDIA driver for CUDA 13, no network, and a
# CUDA `whet` built elsewhere by scripts/build-cuda.sh (dist/cuda: whet, whetstone-cuda-libs/).
# Runs in under 8 minutes:
#
#   1. GPU against CPU (and transformers+PEFT) on the tiny fixtures: f32 within 1e-3, bf16 printed
#   2. NF4 and GGUF dequantization on the GPU, bit for bit
#   3. a QLoRA step in bf16
#   4. tokens/s, peak GPU memory and MFU for SmolLM2-135M (batch 8 x 512) and a randomly initialised
#      Llama-2-7B shape (QLoRA NF4, r=16 on every linear layer, batch 4 x 1024, gradient
#      checkpointing), with the planner's prediction beside each measured peak
#
# The measuring is `whet bench gpu`; this script finds the binary and its libraries, says what the
# machine has, and keeps the whole under the time limit. Speed targets are printed, not enforced;
# a parity failure makes the exit status non-zero.
#
# Usage: scripts/gpu-check.sh [--whet PATH] [--device cuda|cuda:N|cpu] [--quick] [--smollm2 PATH]
#                             [--log FILE] [any other `whet bench gpu` option]
# On a machine without a GPU, `--device cpu --quick` runs the same code on the CPU in seconds
# (this is how CI runs it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHET=""
DEVICE="cuda"
LOG=""
LIMIT_S="${GPU_CHECK_LIMIT_S:-470}"
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --whet) WHET="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --log) LOG="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

if [ -z "$WHET" ]; then
  for candidate in "$ROOT/dist/cuda/whet" "$ROOT/target/release/whet" "$(command -v whet || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then WHET="$candidate"; break; fi
  done
fi
if [ -z "$WHET" ] || [ ! -x "$WHET" ]; then
  echo "gpu-check: no whet binary; build one with scripts/build-cuda.sh or pass --whet PATH" >&2
  exit 2
fi

# The binary finds its bundled CUDA libraries through its run path. Without the bundle, look where
# CUDA 13's libraries usually are (a toolkit install, or PyTorch's wheels).
if [ ! -d "$(dirname "$WHET")/whetstone-cuda-libs" ] && [ "$DEVICE" != "cpu" ]; then
  extra=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu \
           $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/cu13/lib|'); do
    [ -e "$d/libcublas.so.13" ] && extra="$extra:$d"
  done
  [ -n "$extra" ] && export LD_LIBRARY_PATH="${extra#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

case " ${ARGS[*]:-} " in
  *" --smollm2 "*) ;;
  *)
    # The real SmolLM2 when this machine has it; otherwise the bench uses random weights of its shape.
    for m in "${WHETSTONE_DEFAULT_MODEL:-}" "$HOME/.cache/whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf"; do
      if [ -n "$m" ] && [ -e "$m" ]; then ARGS+=(--smollm2 "$m"); break; fi
    done
    ;;
esac

started=$SECONDS
{
  echo "== gpu-check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "== whet: $WHET"
  if [ "$DEVICE" != "cpu" ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader || true
  fi
  echo "== whet hw"
  "$WHET" hw || true
  echo "== whet bench gpu --device $DEVICE ${ARGS[*]:-}"
} | { if [ -n "$LOG" ]; then tee "$LOG"; else cat; fi; }

set +e
if [ -n "$LOG" ]; then
  timeout --kill-after=10 "$LIMIT_S" "$WHET" bench gpu --device "$DEVICE" --fixtures "$ROOT/crates/whetstone-engine/tests/fixtures" "${ARGS[@]}" 2>&1 | tee -a "$LOG"
  status=${PIPESTATUS[0]}
else
  timeout --kill-after=10 "$LIMIT_S" "$WHET" bench gpu --device "$DEVICE" --fixtures "$ROOT/crates/whetstone-engine/tests/fixtures" "${ARGS[@]}" 2>&1
  status=$?
fi
set -e
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  echo "gpu-check: stopped after ${LIMIT_S} s (the limit); the figures above are what was measured" >&2
fi
echo "== gpu-check: exit status $status after $((SECONDS - started)) s"
exit "$status"
