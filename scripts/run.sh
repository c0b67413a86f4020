#!/usr/bin/env bash
# Sets up, builds and launches the Whetstone desktop app on the bundled starter model.
# Pass --xvfb to run it inside a virtual display on a machine without a screen.
# Any other arguments are passed to the app.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

wrap=()
args=()
for arg in "$@"; do
  if [ "$arg" = "--xvfb" ]; then wrap=(xvfb-run -a); else args+=("$arg"); fi
done

bash scripts/setup.sh
(cd ui && npm run build)
cargo build -p whetstone-app --bin whetstone

model="${XDG_CACHE_HOME:-$HOME/.cache}/whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf"
export WHETSTONE_DEFAULT_MODEL="${WHETSTONE_DEFAULT_MODEL:-$model}"
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "[run] starting Whetstone (starter model: $WHETSTONE_DEFAULT_MODEL)"
exec "${wrap[@]}" "$target_dir/debug/whetstone" "${args[@]}"
