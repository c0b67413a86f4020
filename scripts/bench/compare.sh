#!/usr/bin/env bash
# Training throughput and memory: whet against PyTorch + PEFT on the same LoRA configuration.
#
# Usage: scripts/bench/compare.sh [--steps N] [--batch B] [--seq-len T] [--lora-dropout P]
#        scripts/bench/compare.sh --all [--steps N]
#
# The reference configuration is the default: SmolLM2-135M in f32, r=8 on all seven targets,
# batch 4 x 256, 2 threads, 10 timed steps after 2 warm-up steps. `--all` runs it, then the same
# with dropout 0.05, then batch 1 x 2048 and 1 x 4096 (fewer steps for the long ones).
#
# Environment:
#   WHETSTONE_DEFAULT_MODEL  GGUF to train on (default ~/.cache/whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   REFENV_PYTHON            Python with scripts/parity/requirements.txt installed
#                            (default ~/.cache/whetstone/refenv/bin/python)
#   WHET                     whet binary (default: release/whet in $CARGO_TARGET_DIR or target/,
#                            built with cargo if missing)
#
# Both sides train on the GGUF dequantized to f32 (`--quant none`) with 2 threads. Prints each side's
# JSON line, then the ratios ours/theirs for tokens/s (higher is better) and peak RSS (lower is
# better), and our effective GFLOP/s against this machine's measured f32 product speed. Run it on an
# otherwise idle machine.
set -euo pipefail

steps=10 batch=4 seq_len=256 dropout=0 all=0
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --seq-len) seq_len="$2"; shift 2 ;;
    --lora-dropout) dropout="$2"; shift 2 ;;
    --all) all=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    [0-9]*) steps="$1"; shift ;;
    *) echo "compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$steps" "$batch" "$seq_len"; do
  case "$v" in
    ''|*[!0-9]*|0) echo "compare.sh: --steps, --batch and --seq-len take positive integers, got '$v'" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/whetstone"
model="${WHETSTONE_DEFAULT_MODEL:-$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
py="${REFENV_PYTHON:-$cache/refenv/bin/python}"

[ -f "$model" ] || { echo "compare.sh: model file not found: $model" >&2; exit 1; }
[ -x "$py" ] || { echo "compare.sh: no Python at $py (set REFENV_PYTHON; see scripts/parity/requirements.txt)" >&2; exit 1; }

whet="${WHET:-${CARGO_TARGET_DIR:-$root/target}/release/whet}"
if [ ! -x "$whet" ]; then
  if [ -n "${WHET:-}" ]; then
    echo "compare.sh: WHET=$WHET is not an executable" >&2; exit 1
  fi
  echo "compare.sh: building whet (release)..." >&2
  (cd "$root" && cargo build --release -p whetstone-cli --bin whet >&2)
fi

last_json() { grep -E '^\{' | tail -n 1; }

one() {
  local steps="$1" batch="$2" seq_len="$3" dropout="$4"
  echo "== batch $batch x $seq_len, lora dropout $dropout, $steps timed steps"
  local theirs ours
  theirs="$("$py" "$root/scripts/bench/torch_train.py" --model "$model" --steps "$steps" --batch "$batch" \
    --seq-len "$seq_len" --lora-dropout "$dropout" | last_json)"
  [ -n "$theirs" ] || { echo "compare.sh: torch_train.py printed no JSON line" >&2; exit 1; }
  ours="$("$whet" bench train --model "$model" --quant none --batch "$batch" --seq-len "$seq_len" --lora-r 8 \
    --lora-dropout "$dropout" --threads 2 --steps "$steps" --json | last_json)"
  [ -n "$ours" ] || { echo "compare.sh: whet bench train printed no JSON line" >&2; exit 1; }
  echo "theirs: $theirs"
  echo "ours:   $ours"
  "$py" - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = (json.loads(s) for s in sys.argv[1:3])
for side, d in (("ours", ours), ("theirs", theirs)):
    for key in ("tokens_per_s", "peak_rss_mb"):
        if not isinstance(d.get(key), (int, float)) or d[key] <= 0:
            sys.exit(f"compare.sh: {side} JSON has no positive '{key}': {d}")
print(json.dumps({
    "batch": ours.get("batch"), "seq_len": ours.get("seq_len"), "lora_dropout": ours.get("lora_dropout"),
    "tokens_per_s_ratio": round(ours["tokens_per_s"] / theirs["tokens_per_s"], 3),
    "peak_rss_ratio": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3),
    "ours_gflop_per_s": ours.get("gflop_per_s"),
    "share_of_sgemm_peak": ours.get("share_of_sgemm_peak"),
    "steps": ours.get("steps"),
}))
PY
}

if [ "$all" = 1 ]; then
  one "$steps" 4 256 0
  one "$steps" 4 256 0.05
  long=$(( steps < 4 ? steps : 4 ))
  one "$long" 1 2048 0
  one "$long" 1 4096 0
else
  one "$steps" "$batch" "$seq_len" "$dropout"
fi
