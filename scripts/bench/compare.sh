#!/usr/bin/env bash
# Training throughput and memory: whet against PyTorch + PEFT on the same LoRA configuration.
#
# Usage: scripts/bench/compare.sh [STEPS]        (default 10 timed steps, after 2 warm-up steps)
#
# Environment:
#   WHETSTONE_DEFAULT_MODEL  GGUF to train on (default ~/.cache/whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   REFENV_PYTHON            Python with scripts/parity/requirements.txt installed
#                            (default ~/.cache/whetstone/refenv/bin/python)
#   WHET                     whet binary (default: target/release/whet, built with cargo if missing)
#
# Both sides train on the GGUF dequantized to f32 (`--quant none`), as the reference configuration says.
#
# Prints the two JSON lines and the ratios ours/theirs for tokens/s (higher is better) and peak RSS
# (lower is better). Run it on an otherwise idle machine: both sides use 2 threads.
set -euo pipefail

steps="${1:-10}"
case "$steps" in
  ''|*[!0-9]*) echo "compare.sh: STEPS must be a positive integer, got '$steps'" >&2; exit 2 ;;
esac
[ "$steps" -ge 1 ] || { echo "compare.sh: STEPS must be at least 1" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/whetstone"
model="${WHETSTONE_DEFAULT_MODEL:-$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
py="${REFENV_PYTHON:-$cache/refenv/bin/python}"

[ -f "$model" ] || { echo "compare.sh: model file not found: $model" >&2; exit 1; }
[ -x "$py" ] || { echo "compare.sh: no Python at $py (set REFENV_PYTHON; see scripts/parity/requirements.txt)" >&2; exit 1; }

whet="${WHET:-$root/target/release/whet}"
if [ ! -x "$whet" ]; then
  if [ -n "${WHET:-}" ]; then
    echo "compare.sh: WHET=$WHET is not an executable" >&2; exit 1
  fi
  echo "compare.sh: building whet (release)..." >&2
  (cd "$root" && cargo build --release -p whetstone-cli --bin whet >&2)
fi

last_json() { grep -E '^\{' | tail -n 1; }

theirs="$("$py" "$root/scripts/bench/torch_train.py" --model "$model" --steps "$steps" | last_json)"
[ -n "$theirs" ] || { echo "compare.sh: torch_train.py printed no JSON line" >&2; exit 1; }

ours="$("$whet" bench train --model "$model" --quant none --batch 4 --seq-len 256 --lora-r 8 --threads 2 \
  --steps "$steps" --json | last_json)"
[ -n "$ours" ] || { echo "compare.sh: whet bench train printed no JSON line" >&2; exit 1; }

echo "theirs: $theirs"
echo "ours:   $ours"
"$py" - "$ours" "$theirs" <<'EOF'
import json, sys
ours, theirs = (json.loads(s) for s in sys.argv[1:3])
for side, d in (("ours", ours), ("theirs", theirs)):
    for key in ("tokens_per_s", "peak_rss_mb"):
        if not isinstance(d.get(key), (int, float)) or d[key] <= 0:
            sys.exit(f"compare.sh: {side} JSON has no positive '{key}': {d}")
print(json.dumps({
    "tokens_per_s_ratio": round(ours["tokens_per_s"] / theirs["tokens_per_s"], 3),
    "peak_rss_ratio": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3),
    "steps": ours.get("steps"),
}))
EOF
