#!/usr/bin/env bash
# Type-checks the CUDA build (`--features cuda`) on a machine without a GPU: installs the CUDA toolkit from Debian
# (bookworm non-free: CUDA 11.8, about 1.6 GB) when nvcc is missing, then runs `cargo check` on the CLI with the
# feature, which also compiles candle's CUDA kernels to PTX with nvcc. Not part of CI (size and time); run it after
# changing candle, the cuda feature or device code: `make check-cuda`.
# CUDA_COMPUTE_CAP picks the kernels' target (default 80, Ampere); CUDA 11.8 cannot build 90 (Hopper's `compute_90a`),
# so on an H100/H200 build with CUDA 12 and CUDA_COMPUTE_CAP=90.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
if ! command -v nvcc >/dev/null; then
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" != bookworm ] || [ "$(id -u)" != 0 ]; then
    echo "check-cuda: nvcc is missing; this script installs it only on Debian bookworm as root. Install the CUDA toolkit and rerun." >&2
    exit 1
  fi
  if [ ! -f /etc/apt/sources.list.d/nanodex-nonfree.sources ]; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/nanodex-nonfree.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit
fi
nvcc --version | tail -1
CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}" cargo check --locked -p nanodex-cli --features cuda
echo "cuda feature: check passed (CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80})"
