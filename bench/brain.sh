#!/usr/bin/env bash
# Brain build benchmark on the installed Python standard library (a copy, so the edit never touches the real one):
#   1. extract, then `nanodex brain` from scratch (derive, export, embed, store)
#   2. `nanodex brain` again with nothing changed
#   3. one file touched (a new function appended), extract, `nanodex brain` (incremental: only changed nodes are
#      re-exported, re-embedded and re-stored)
# Prints wall time and peak RSS of each, and the embedding side-by-side ratio from bench/embed.sh when present.
# Usage: make bench-brain
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
bash scripts/models.sh >/dev/null
BIN=${NANODEX_BIN:-$CARGO_TARGET_DIR/release/nanodex}
[ -n "${NANODEX_BIN:-}" ] || cargo build --release --quiet -p nanodex-cli
OUT=bench-out; mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
STDLIB=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
SRC="$TMP/stdlib"; WS="$TMP/ws"
cp -r "$STDLIB" "$SRC"
find "$SRC" -depth -type d \( -name site-packages -o -name test -o -name tests -o -name idle_test -o -name __pycache__ \) -exec rm -rf {} +
timed() { /usr/bin/time -f "%e %M" -o "$TMP/t" "$@" > "$TMP/last.json"; cat "$TMP/t"; }
"$BIN" extract "$SRC" --workspace "$WS" --json > /dev/null
read -r s1 kb1 < <(timed "$BIN" brain --workspace "$WS" --json)
nodes=$(python3 -c "import json;d=json.load(open('$TMP/last.json'));print(sum(d['stats']['nodes'].values()))")
emb1=$(python3 -c "import json;d=json.load(open('$TMP/last.json'));print(d['embedded'])")
read -r s2 kb2 < <(timed "$BIN" brain --workspace "$WS" --json)
emb2=$(python3 -c "import json;d=json.load(open('$TMP/last.json'));print(d['embedded'], d['exported'], d['store_inserted'])")
printf '\n\ndef nanodex_bench_probe(data):\n    """Return data unchanged (benchmark probe)."""\n    return data\n' >> "$SRC/json/__init__.py"
"$BIN" extract "$SRC" --workspace "$WS" --json > /dev/null
read -r s3 kb3 < <(timed "$BIN" brain --workspace "$WS" --json)
emb3=$(python3 -c "import json;d=json.load(open('$TMP/last.json'));print(d['embedded'], d['exported'], d['store_inserted'])")
{ echo "brain benchmark on the Python $(python3 -c 'import sys;print(sys.version.split()[0])') stdlib ($nodes brain nodes; $(git rev-parse --short HEAD), $(nproc) cores)"
  printf '%-36s %9s %9s  %s\n' run seconds rss_MiB "embedded exported stored"
  printf '%-36s %9.2f %9.0f  %s\n' "first build" "$s1" "$(echo "$kb1/1024" | bc -l)" "$emb1 (all)"
  printf '%-36s %9.2f %9.0f  %s\n' "again, nothing changed" "$s2" "$(echo "$kb2/1024" | bc -l)" "$emb2"
  printf '%-36s %9.2f %9.0f  %s\n' "after touching json/__init__.py" "$s3" "$(echo "$kb3/1024" | bc -l)" "$emb3"; } | tee "$OUT/brain.txt"
