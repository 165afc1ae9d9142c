#!/usr/bin/env bash
# Builds the CUDA nanodex (`--features cuda`, release) on a machine without a GPU or a CUDA install, for a GPU
# machine that has an NVIDIA driver for CUDA 13 and the CUDA 13 libraries (cuBLAS, cuRAND, NVRTC, e.g. PyTorch's
# nvidia-* wheels) but no Rust. The CUDA 13.0 compiler, headers and libraries come from NVIDIA's PyPI wheels
# (about 800 MB, into $NANODEX_CUDA, default ~/.cache/nanodex/cuda13); the driver library the link needs is a stub
# with the driver functions cudarc declares (soname libcuda.so.1; the real one is loaded on the GPU machine).
# The kernels are compiled for CUDA_COMPUTE_CAP (default 90: H100/H200). Prints the binary's path.
# On the GPU machine: LD_LIBRARY_PATH=<dir of libcublas.so.13, libcurand.so.10, libnvrtc.so.13> nanodex ...
# then bench/cuda_device.sh runs the GPU checks. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
C=${NANODEX_CUDA:-$HOME/.cache/nanodex/cuda13}
ROOT="$C/root/nvidia/cu13"
if [ ! -x "$ROOT/bin/nvcc" ] || [ ! -e "$ROOT/lib/libcublas.so.13" ]; then
  mkdir -p "$C/wheels" "$C/root"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$C/wheels" \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
    "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cublas==13.0.*" "nvidia-curand==10.4.*"
  for w in "$C"/wheels/*.whl; do python3 -m zipfile -e "$w" "$C/root"; done
  chmod +x "$ROOT"/bin/* "$ROOT"/nvvm/bin/*
fi
# Unversioned names for the linker, and the driver stub.
for l in cublas cublasLt nvrtc cudart; do ln -sf "lib$l.so.13" "$ROOT/lib/lib$l.so"; done
ln -sf libcurand.so.10 "$ROOT/lib/libcurand.so"
CUDARC=$(cargo metadata --format-version 1 --locked --all-features 2>/dev/null | python3 -c \
  'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc").rsplit("/", 1)[0])')
grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+' "$CUDARC/src/driver/sys/mod.rs" | sed 's/pub unsafe fn //' | sort -u \
  | sed 's/.*/void &(void) {}/' > "$C/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/libcuda.so" "$C/libcuda_stub.c"
export PATH="$ROOT/bin:$PATH" CUDA_HOME="$ROOT" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
nvcc --version | tail -1 >&2
cargo build --release --locked -p nanodex-cli --features cuda >&2
echo "$CARGO_TARGET_DIR/release/nanodex"
