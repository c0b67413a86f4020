# Sourced by check-cuda.sh and build-cuda.sh: NVIDIA's compiler, runtime, cuBLAS, cuRAND and NVRTC
# from PyPI wheels, unpacked into the cache, so that a machine without a GPU or a CUDA install can
# build the GPU worker. Sets TOOLKIT (the unpacked toolkit root), CUDA_VERSION_PINNED and the
# variables nvcc, cudaforge and cudarc read.
#
# The versions are pinned to CUDA 13.0: candle's kernels are shipped as PTX that the driver compiles
# when they are first loaded, and a driver can only compile PTX from a toolkit no newer than itself.
# PTX from 13.0 loads on every driver that supports CUDA 13 (R580 and later); PTX from 13.2 would
# fail on a 13.0 driver with "unsupported PTX version".

CUDA_VERSION_PINNED="13.0"
CUDA_WHEELS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.1.0.3
  nvidia-curand==10.4.0.35
)

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/whetstone"
CUDA_WHEEL_DIR="$CACHE/cuda/w$CUDA_VERSION_PINNED"
CUDA_UNPACKED="$CACHE/cuda/t$CUDA_VERSION_PINNED"
TOOLKIT="$CUDA_UNPACKED/nvidia/cu13"

cuda_toolkit_fetch() {
  local stamp="$CUDA_UNPACKED/.complete"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${CUDA_WHEELS[*]}" ]; then
    return 0
  fi
  echo "[cuda] fetching CUDA $CUDA_VERSION_PINNED wheels from PyPI into $CUDA_WHEEL_DIR"
  mkdir -p "$CUDA_WHEEL_DIR"
  python3 -m pip download --no-deps -q -d "$CUDA_WHEEL_DIR" "${CUDA_WHEELS[@]}"
  rm -rf "$CUDA_UNPACKED"
  mkdir -p "$CUDA_UNPACKED"
  local spec name version file
  for spec in "${CUDA_WHEELS[@]}"; do
    name="${spec%%==*}"
    version="${spec##*==}"
    file=$(ls "$CUDA_WHEEL_DIR/${name//-/_}-$version-"*.whl | head -n 1)
    python3 -m zipfile -e "$file" "$CUDA_UNPACKED"
  done
  chmod +x "$TOOLKIT"/bin/* "$TOOLKIT"/nvvm/bin/* 2>/dev/null || true

  # The wheels carry only versioned library names; the linker looks for the plain ones.
  local lib base
  for lib in "$TOOLKIT"/lib/lib*.so.*; do
    base="${lib##*/}"
    base="${base%%.so.*}.so"
    [ -e "$TOOLKIT/lib/$base" ] || ln -s "${lib##*/}" "$TOOLKIT/lib/$base"
  done

  echo "${CUDA_WHEELS[*]}" > "$stamp"
}

# libcuda belongs to the driver, which a build machine need not have: link against a stub that
# defines the driver API's names (as the CUDA toolkit's own lib/stubs/libcuda.so does). The real
# libcuda.so.1 of the machine's driver is loaded at run time; should the stub ever be loaded
# instead, every call answers CUDA_ERROR_NO_DEVICE (100) rather than doing anything.
cuda_driver_stub() {
  local sys
  sys=$(ls "$HOME"/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | head -n 1)
  if [ -z "$sys" ]; then
    echo "[cuda] cudarc's sources are missing; run 'cargo fetch' first" >&2
    return 1
  fi
  mkdir -p "$TOOLKIT/lib/stubs"
  grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$sys" | awk '{print "int " $4 "(void) { return 100; }"}' | sort -u \
    > "$TOOLKIT/lib/stubs/libcuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$TOOLKIT/lib/stubs/libcuda.so" "$TOOLKIT/lib/stubs/libcuda.c"
}

cuda_toolkit_env() {
  # cudarc names toolkit versions it knows; the pinned one is among them.
  export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
  # 80 (Ampere) by default: PTX for compute 8.0 is compiled by the driver for every newer GPU too
  # (A100, H100, H200, ...), and bf16 needs 8.0. Set 90 for Hopper-only builds.
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
  export PATH="$TOOLKIT/bin:$PATH" CUDA_ROOT="$TOOLKIT" CUDA_PATH="$TOOLKIT" CUDA_HOME="$TOOLKIT"
  # Recorded in the binary, so that `whet hw` and the app can say which toolkit a worker needs.
  export WHETSTONE_CUDA_TOOLKIT="$CUDA_VERSION_PINNED"
}
