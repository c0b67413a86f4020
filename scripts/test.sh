#!/usr/bin/env bash
# Sets up, builds, and runs every test: all crates' Rust tests, the web UI in headless
# Chromium against `whet serve`, and the desktop window through tauri-driver under Xvfb.
# Every test step runs even when an earlier one fails; the exit status is non-zero if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# A test run builds every crate once; incremental caches would only add gigabytes to the
# build folder (one per test binary), which a small CI disk cannot hold.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

started=$SECONDS
failed=()
summary=()

step() {
  local name="$1"
  shift
  printf '\n=== %s ===\n' "$name"
  local t0=$SECONDS
  if "$@"; then
    summary+=("ok    $name ($((SECONDS - t0)) s)")
  else
    summary+=("FAIL  $name ($((SECONDS - t0)) s)")
    failed+=("$name")
  fi
}

bash scripts/setup.sh

printf '\n=== build ===\n'
(cd ui && npm run build)
cargo build --workspace --bins
# The loopback hub the download tests serve models from.
cargo build -p whetstone-hub --features testing --example test_hub

step "cargo test --workspace" cargo test --workspace
step "web UI tests (headless Chromium)" bash -c 'cd tests && node --test --test-concurrency=1 ui/'
step "window test (tauri-driver, Xvfb)" bash -c 'cd tests && xvfb-run -a node --test --test-concurrency=1 window/'

printf '\n=== summary ===\n'
printf '%s\n' "${summary[@]}"
printf 'wall time: %d s\n' "$((SECONDS - started))"
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${failed[*]}" >&2
  exit 1
fi
