#!/usr/bin/env bash
# End-to-end test of the desktop app: builds it, starts it under Xvfb through tauri-driver (WebKitWebDriver),
# and drives it with WebdriverIO (ui/e2e/app.e2e.test.ts). Screenshots and metrics land in $E2E_OUT
# (default ui/e2e/out). NANODEX_E2E_STDLIB=1 adds the Python standard library measurement (`make bench-app`).
# Arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
PROFILE="${PROFILE:-debug}"
if ! command -v tauri-driver >/dev/null; then
  cargo install tauri-driver --locked --quiet
fi
command -v WebKitWebDriver >/dev/null || { echo "e2e: WebKitWebDriver missing: run scripts/setup.sh (Debian package webkit2gtk-driver)" >&2; exit 1; }
command -v xvfb-run >/dev/null || { echo "e2e: xvfb-run missing: run scripts/setup.sh (Debian package xvfb)" >&2; exit 1; }
[ -d ui/node_modules ] || npm ci --prefix ui --no-audit --no-fund
# Built the way `cargo test --workspace` builds it (same features, so nothing is compiled twice): the app's
# integration test makes cargo produce the binary at $CARGO_TARGET_DIR/<profile>/nanodex-app.
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p nanodex-app
else
  cargo test --workspace --locked --no-run --quiet
fi
export NANODEX_APP_BIN="$CARGO_TARGET_DIR/$PROFILE/nanodex-app"
export E2E_OUT="${E2E_OUT:-$PWD/ui/e2e/out}"
# WebKitGTK under Xvfb: no GPU, no compositing; keep it software-rendered and quiet.
export WEBKIT_DISABLE_COMPOSITING_MODE=1 LIBGL_ALWAYS_SOFTWARE=1 NO_AT_BRIDGE=1
xvfb-run -a -s "-screen 0 1280x800x24" npm --prefix ui run e2e -- "$@"
echo "e2e: screenshots and metrics in $E2E_OUT"
