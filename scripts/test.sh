#!/usr/bin/env bash
# The test command (`make test`): Rust tests of the whole workspace, the UI's unit tests (vitest), and the desktop
# app end to end (scripts/e2e.sh). Prints one summary line per suite and a total.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
log=$(mktemp -d)
status=0

cargo test --workspace --locked 2>&1 | tee "$log/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
read -r cp cf ci < <(grep -E '^test result:' "$log/cargo.log" | awk '{p+=$4; f+=$6; i+=$8} END {print p+0, f+0, i+0}')

[ -d ui/node_modules ] || npm ci --prefix ui --no-audit --no-fund --loglevel=error
(cd ui && npx vitest run --reporter=default --reporter=json --outputFile.json="$log/ui.json") || status=1
E2E_JSON="$log/e2e.json"
if [ "${NANODEX_SKIP_E2E:-0}" = 1 ]; then
  echo "e2e: skipped (NANODEX_SKIP_E2E=1)"
else
  E2E_OUT="${E2E_OUT:-$PWD/ui/e2e/out}" bash scripts/e2e.sh --reporter=verbose --reporter=json --outputFile.json="$E2E_JSON" || status=1
fi

count() { # file key
  [ -f "$1" ] && python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2" || echo 0
}
up=$(count "$log/ui.json" numPassedTests); uf=$(count "$log/ui.json" numFailedTests); us=$(count "$log/ui.json" numPendingTests)
ep=$(count "$E2E_JSON" numPassedTests); ef=$(count "$E2E_JSON" numFailedTests); es=$(count "$E2E_JSON" numPendingTests)
echo "summary (rust): $cp passed, $cf failed, $ci skipped"
echo "summary (ui):   $up passed, $uf failed, $us skipped"
echo "summary (e2e):  $ep passed, $ef failed, $es skipped"
echo "summary: $((cp + up + ep)) passed, $((cf + uf + ef)) failed, $((ci + us + es)) skipped"
exit $status
