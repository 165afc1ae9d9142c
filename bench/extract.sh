#!/usr/bin/env bash
# Extraction benchmark: nanodex against universal-ctags and py-tree-sitter on the same three corpora, in one run.
# Prepares corpora and peers with ../shared/bench/peers/run_peers.sh (or bench/peers/ when copied), then times
#   nanodex extract --no-store   (walk + parse + resolve)
#   nanodex extract --full       (the same plus the SurrealDB write)
#   nanodex extract (one file touched: incremental)
# and prints files/s, MB/s, records/s, peak RSS and ratios to the peers. Usage: make bench [CORPORA="py java cpp"]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
R=${R:-$HOME/.cache/nanodex-peers}
PEERS=${PEERS:-../shared/bench/peers}
CORPORA=${CORPORA:-"py java cpp"}
if [ ! -f "$R/out/ts.jsonl" ]; then R="$R" bash "$PEERS/run_peers.sh"; fi
cargo build --release --quiet -p nanodex-cli
BIN="$CARGO_TARGET_DIR/release/nanodex"
OUT=bench-out; mkdir -p "$OUT"
printf '%-5s %-22s %8s %9s %8s %10s %9s\n' corpus tool seconds files/s MB/s records/s rss_MiB | tee "$OUT/extract.txt"
for L in $CORPORA; do
  C="$R/corpus/$L"; WS=$(mktemp -d)
  files=$(find "$C" -type f | wc -l); mb=$(du -sm --apparent-size "$C" | cut -f1)
  timed() { /usr/bin/time -f "%e %M" -o "$OUT/t" "$@" > "$OUT/last.json"; cat "$OUT/t"; }
  read -r ns_s ns_kb < <(timed "$BIN" extract "$C" --workspace "$WS" --no-store --json)
  read -r full_s full_kb < <(timed "$BIN" extract "$C" --workspace "$WS" --full --json)
  records=$(python3 -c "import json;d=json.load(open('$OUT/last.json'));print(d['write']['inserted'])")
  one=$(find "$C" -type f \( -name '*.py' -o -name '*.java' -o -name '*.hpp' \) | head -1); touch "$one"; echo "// touched" >> "$one"
  read -r inc_s inc_kb < <(timed "$BIN" extract "$C" --workspace "$WS" --json)
  sed -i '$ d' "$one"
  lang=$L; [ "$L" = py ] && lang=python
  ts=$(python3 - "$R/out/ts.jsonl" "$lang" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("lang") == sys.argv[2] and r.get("mode") == "query"]
print(statistics.median(r.get("seconds", r.get("wall_s", 0)) for r in rows) if rows else 0)
PY
)
  ct=$(python3 -c "import json;d=json.load(open('$R/out/ctags_hf.json'));m={r['command']:r['median'] for r in d['results']};print(m.get('ctags-$L',0))")
  row() { printf '%-5s %-22s %8.2f %9.0f %8.1f %10s %9s\n' "$L" "$1" "$2" "$(echo "$files/$2" | bc -l)" "$(echo "$mb/$2" | bc -l)" "$3" "$4"; }
  { row "nanodex --no-store" "$ns_s" - $((ns_kb/1024))
    row "nanodex full" "$full_s" "$(echo "$records/$full_s" | bc)" $((full_kb/1024))
    row "nanodex 1-file incr" "$inc_s" - $((inc_kb/1024))
    row "py-tree-sitter query" "$ts" - -
    row "ctags" "$ct" - -
    printf '      ratios: parse+resolve/py-tree-sitter %.2fx, full/py-tree-sitter %.2fx, ctags/nanodex-no-store %.2fx\n' \
      "$(echo "$ns_s/$ts" | bc -l)" "$(echo "$full_s/$ts" | bc -l)" "$(echo "$ct/$ns_s" | bc -l)"; } | tee -a "$OUT/extract.txt"
  rm -rf "$WS"
done
