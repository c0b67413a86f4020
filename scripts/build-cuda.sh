#!/usr/bin/env bash
# Builds the GPU (CUDA) training worker on a machine without a GPU or a CUDA install.
#
# The CUDA toolkit comes from PyPI wheels pinned to CUDA 13.0 (see cuda-toolkit.sh), candle's kernels
# are compiled for CUDA_COMPUTE_CAP (default 80: runs on A100, H100, H200 and newer), and the result
# goes into --out (default dist/cuda):
#
#   whet                    `whet` built with --features cuda (trains on the GPU, also runs `whet bench gpu`)
#   whetstone-worker-cuda   the same program under the name the app and a CPU `whet` look for beside
#                           themselves: they start it for runs on the GPU, and use their own CPU
#                           worker when it, a GPU or its libraries are missing
#   whetstone-cuda-libs/    cuBLAS, cuBLASLt, cuRAND, NVRTC and the CUDA runtime from the wheels; the
#                           binaries find them through their run path ($ORIGIN/whetstone-cuda-libs).
#                           Only libcuda.so.1 comes from the machine: it is part of the NVIDIA driver.
#
# --beside DIR (repeatable) also copies the worker and its libraries into DIR, next to a CPU `whet`
# or the desktop app (e.g. --beside target/release). --no-libs leaves the libraries out (about
# 850 MB): the machine's own CUDA 13 libraries are then found through the loader's usual search path.
#
# Slow: nvcc compiles every kernel (about 10 minutes on 2 cores), then the release build. Uses its
# own target folder ($WHETSTONE_CUDA_TARGET_DIR, default ~/.cache/whetstone/target-cuda-build) so
# the CPU build is not invalidated.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=cuda-toolkit.sh
source "$ROOT/scripts/cuda-toolkit.sh"

OUT="$ROOT/dist/cuda"
BESIDE=()
BUNDLE_LIBS=1
PROFILE="${WHETSTONE_CUDA_PROFILE:-release}"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --beside) BESIDE+=("$2"); shift 2 ;;
    --no-libs) BUNDLE_LIBS=0; shift ;;
    --profile) PROFILE="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build-cuda.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

LIBS_NAME="whetstone-cuda-libs"
started=$SECONDS
cd "$ROOT"
cargo fetch --locked -q
cuda_toolkit_fetch
cuda_driver_stub
cuda_toolkit_env
"$TOOLKIT/bin/nvcc" --version | tail -n 1
echo "[build-cuda] CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, profile $PROFILE"

export CARGO_TARGET_DIR="${WHETSTONE_CUDA_TARGET_DIR:-$CACHE/target-cuda-build}"
export CARGO_INCREMENTAL=0
# $ORIGIN is for the dynamic loader, not the shell: the run path is the folder beside the binary.
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,\$ORIGIN/$LIBS_NAME"
cargo build --locked --profile "$PROFILE" -p whetstone-cli --features whetstone-cli/cuda --bin whet

case "$PROFILE" in
  dev) BIN="$CARGO_TARGET_DIR/debug/whet" ;;
  *) BIN="$CARGO_TARGET_DIR/$PROFILE/whet" ;;
esac

mkdir -p "$OUT"
rm -rf "${OUT:?}/$LIBS_NAME"
cp -f "$BIN" "$OUT/whet"
cp -f "$BIN" "$OUT/whetstone-worker-cuda"

# The CUDA libraries the binary names, except the driver's own.
needed=$(readelf -d "$OUT/whet" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
echo "[build-cuda] the binary needs: $(echo $needed)"
if [ "$BUNDLE_LIBS" = 1 ]; then
  mkdir -p "$OUT/$LIBS_NAME"
  for lib in $needed; do
    [ "$lib" = "libcuda.so.1" ] && continue
    if [ -e "$TOOLKIT/lib/$lib" ]; then
      cp -L "$TOOLKIT/lib/$lib" "$OUT/$LIBS_NAME/"
    fi
  done
  # cuBLAS needs cuBLASLt (found through its own run path, $ORIGIN), and NVRTC opens its builtins
  # with dlopen; neither is a need of the binary itself.
  extras="libcublasLt.so.13"
  case " $needed " in *" libnvrtc.so.13 "*) extras="$extras libnvrtc-builtins.so.13.0" ;; esac
  for extra in $extras; do
    cp -L "$TOOLKIT/lib/$extra" "$OUT/$LIBS_NAME/"
  done
fi

for dir in "${BESIDE[@]}"; do
  mkdir -p "$dir"
  cp -f "$OUT/whetstone-worker-cuda" "$dir/"
  if [ "$BUNDLE_LIBS" = 1 ]; then
    rm -rf "${dir:?}/$LIBS_NAME"
    cp -r "$OUT/$LIBS_NAME" "$dir/"
  fi
  echo "[build-cuda] installed the CUDA worker beside $dir"
done

# Every library but the driver's must resolve from the bundle (or the system with --no-libs).
missing=$(ldd "$OUT/whet" | awk '/not found/ {print $1}' | grep -v '^libcuda\.so\.1$' || true)
if [ -n "$missing" ]; then
  echo "[build-cuda] libraries that will not be found at run time: $missing" >&2
  [ "$BUNDLE_LIBS" = 1 ] && exit 1
fi
if [ -n "$missing" ]; then
  # With --no-libs they come from the machine it runs on; this one lacks them, so it cannot start here.
  echo "[build-cuda] not started here: this machine has no CUDA 13 libraries, and --no-libs leaves them to the one it runs on"
else
  # Start it once with the link stub standing in for the driver's libcuda.so.1.
  smoke=$(mktemp -d)
  ln -s "$TOOLKIT/lib/stubs/libcuda.so" "$smoke/libcuda.so.1"
  LD_LIBRARY_PATH="$smoke" "$OUT/whet" --version
  rm -rf "$smoke"
fi

echo "[build-cuda] done in $((SECONDS - started)) s"
du -sh "$OUT/whet" "$OUT/whetstone-worker-cuda" 2>/dev/null
[ -d "$OUT/$LIBS_NAME" ] && du -sh "$OUT/$LIBS_NAME"
echo "[build-cuda] $OUT holds the CUDA whet and worker; copy whetstone-worker-cuda and $LIBS_NAME/"
echo "             next to a CPU whet or the app (or pass --beside DIR) to let them train on the GPU"
