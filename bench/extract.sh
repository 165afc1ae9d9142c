#!/usr/bin/env bash
# Extraction benchmark: nanodex against universal-ctags and py-tree-sitter on the same three corpora, in one run.
# Prepares corpora and peers once with ../shared/bench/peers/run_peers.sh, then, per corpus and side by side:
#   ctags -R                      (definitions only; reference)
#   py-tree-sitter parse only     (the parse alone: with the core count, the floor for any tree-sitter extractor)
#   py-tree-sitter parse + query  (definitions and call sites, nothing resolved or stored)
#   nanodex extract --no-store    (walk + parse + resolve; again pinned to one core, for the parallel share)
#   nanodex extract --full        (the same plus the SurrealDB write)
#   nanodex extract               (one file changed: incremental)
# Each timing is the median of RUNS runs (default 3; py-tree-sitter's query and nanodex --no-store run in turns, and
# their ratio is the median of the pairs' ratios); the one-file re-extraction runs INC_RUNS times (default 8,
# so that runs ending at SurrealKV's level-0 compaction trigger, every third or fourth, are among them). nanodex
# runs on a copy of the corpus, so the edit made for the incremental run never touches the shared corpus. Prints
# files/s, MB/s, records/s, peak RSS and the ratios.
# Usage: make bench [CORPORA="py java cpp"] [RUNS=3] [INC_RUNS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
R=${R:-$HOME/.cache/nanodex-peers}
PEERS=${PEERS:-../shared/bench/peers}
CORPORA=${CORPORA:-"py java cpp"}
RUNS=${RUNS:-3}
INC_RUNS=${INC_RUNS:-8}
if [ ! -f "$R/out/ts.jsonl" ] || [ ! -x "$R/venv/bin/python" ]; then R="$R" bash "$PEERS/run_peers.sh"; fi
# NANODEX_BIN: a nanodex binary to measure instead of building the checkout's release binary.
BIN=${NANODEX_BIN:-$CARGO_TARGET_DIR/release/nanodex}
[ -n "${NANODEX_BIN:-}" ] || cargo build --release --quiet -p nanodex-cli
OUT=bench-out; mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# median_of CMD...: runs CMD $RUNS times, prints "median_seconds max_rss_kb" (stdout of CMD goes to $TMP/last.out).
median_of() {
  local times=() rss=0 s kb
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$TMP/t" "$@" > "$TMP/last.out"
    read -r s kb < "$TMP/t"; times+=("$s"); [ "$kb" -gt "$rss" ] && rss=$kb
  done
  printf '%s\n' "${times[@]}" | sort -g | awk -v r="$rss" '{a[NR]=$1} END {print a[int((NR+1)/2)], r}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { printf '%-5s %-24s %8.2f %9.0f %8.1f %10s %9s\n' "$L" "$1" "$2" "$(echo "$files/$2" | bc -l)" "$(echo "$mb/$2" | bc -l)" "$3" "$4"; }

{ echo "nanodex $(git rev-parse --short HEAD) on $(nproc) cores; $(ctags --version | head -1); py-tree-sitter $("$R/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("tree-sitter"))')"
  printf '%-5s %-24s %8s %9s %8s %10s %9s\n' corpus tool seconds files/s MB/s records/s rss_MiB; } | tee "$OUT/extract.txt"
for L in $CORPORA; do
  C="$R/corpus/$L"; lang=$L; [ "$L" = py ] && lang=python
  files=$(find "$C" -type f | wc -l); mb=$(du -sm --apparent-size "$C" | cut -f1)
  case $L in
    py) ct=(ctags -R --languages=Python --fields=+nK -f "$TMP/tags" "$C") ;;
    java) ct=(ctags -R --languages=Java --fields=+nK -f "$TMP/tags" "$C") ;;
    cpp) ct=(ctags -R --languages=C++ --langmap=C++:+.ipp --fields=+nK -f "$TMP/tags" "$C") ;;
  esac
  read -r ct_s ct_kb < <(median_of "${ct[@]}")
  read -r tp_s tp_kb < <(median_of "$R/venv/bin/python" "$R/ts_bench.py" "$lang" "$C" parse)
  tp_loop=$(python3 -c "import json;print(json.load(open('$TMP/last.out'))['seconds'])")
  SRC="$TMP/src-$L"; WS="$TMP/ws-$L"; cp -r "$C" "$SRC"
  # The peer's parse + query and nanodex --no-store, alternately: on a shared machine whose speed drifts from one
  # minute to the next, each pair ran under the same conditions, and the ratio is the median of the pairs' ratios.
  "$BIN" extract "$SRC" --workspace "$WS" --no-store --json > /dev/null # warm-up: the page cache, as for the peer
  pair_ratios=(); ts_times=(); ns_times=(); ts_kb=0; ns_kb=0
  for _ in $(seq "$RUNS"); do
    read -r a kb < <(RUNS=1 median_of "$R/venv/bin/python" "$R/ts_bench.py" "$lang" "$C" query)
    ts_times+=("$a"); [ "$kb" -gt "$ts_kb" ] && ts_kb=$kb
    read -r b kb < <(RUNS=1 median_of "$BIN" extract "$SRC" --workspace "$WS" --no-store --json)
    ns_times+=("$b"); [ "$kb" -gt "$ns_kb" ] && ns_kb=$kb
    pair_ratios+=("$(echo "$b/$a" | bc -l)")
  done
  ts_s=$(median "${ts_times[@]}"); ns_s=$(median "${ns_times[@]}"); pair_ratio=$(median "${pair_ratios[@]}")
  pair_range="$(printf '%.2f' "$(printf '%s\n' "${pair_ratios[@]}" | sort -g | head -1)")-$(printf '%.2f' "$(printf '%s\n' "${pair_ratios[@]}" | sort -g | tail -1)")"
  # The same run pinned to one core (rayon then starts one thread): with the run on all cores, the share of the
  # work that runs in parallel, and from it (Amdahl's law) what more cores would give.
  ns1_s=""; [ "$(nproc)" -gt 1 ] && read -r ns1_s _ < <(median_of taskset -c 0 "$BIN" extract "$SRC" --workspace "$WS" --no-store --json)
  read -r full_s full_kb < <(median_of "$BIN" extract "$SRC" --workspace "$WS" --full --json)
  records=$(python3 -c "import json;d=json.load(open('$TMP/last.out'));print(d['write']['inserted'])")
  phases=$(python3 -c "import json;t=json.load(open('$TMP/last.out'))['report']['timings_ms'];print(' '.join(f'{k} {v}' for k,v in sorted(t.items(), key=lambda kv:-kv[1]) if k!='total'))")
  one=$(find "$SRC" -type f \( -name '*.py' -o -name '*.java' -o -name '*.hpp' \) | sort | sed -n 1p)
  inc_times=(); inc_kb=0
  for i in $(seq "$INC_RUNS"); do
    echo "// touched $i" >> "$one"
    read -r s kb < <(RUNS=1 median_of "$BIN" extract "$SRC" --workspace "$WS" --json)
    inc_times+=("$s"); [ "$kb" -gt "$inc_kb" ] && inc_kb=$kb
  done
  inc_s=$(median "${inc_times[@]}")
  { row "ctags (defs only)" "$ct_s" - $((ct_kb/1024))
    row "py-tree-sitter parse only" "$tp_s" - $((tp_kb/1024))
    row "py-tree-sitter query" "$ts_s" - $((ts_kb/1024))
    row "nanodex --no-store" "$ns_s" - $((ns_kb/1024))
    row "nanodex full (store)" "$full_s" "$(echo "$records/$full_s" | bc)" $((full_kb/1024))
    row "nanodex 1-file incr" "$inc_s" - $((inc_kb/1024))
    echo "      nanodex full, last run, by phase (ms): $phases"
    echo "      nanodex 1-file incr, each run (s): ${inc_times[*]} (max $(printf '%s\n' "${inc_times[@]}" | sort -g | tail -1))"
    printf '      ratios to py-tree-sitter: parse+resolve %.2fx (target <= 0.5; median of %d interleaved pairs, %s), full %.2fx (target <= 1.5); ctags/no-store %.2fx\n' \
      "$pair_ratio" "$RUNS" "$pair_range" "$(echo "$full_s/$ts_s" | bc -l)" "$(echo "$ct_s/$ns_s" | bc -l)"
    # The same tree-sitter parse, with nothing else, split perfectly over this machine's cores: no extractor that
    # parses every file with tree-sitter can finish parse+resolve faster than this on this machine.
    printf '      floor: tree-sitter parsing alone (py-tree-sitter, last run %.2f s in its loop) over %d cores = %.2f s = %.2fx\n' \
      "$tp_loop" "$(nproc)" "$(echo "$tp_loop/$(nproc)" | bc -l)" "$(echo "$tp_loop/$(nproc)/$ts_s" | bc -l)"
    if [ -n "$ns1_s" ]; then
      # p: parallel share of the one-core time, from T(n) = T(1) * ((1 - p) + p / n). A projection, not a measurement.
      n=$(nproc); p=$(echo "($ns1_s - $ns_s) / $ns1_s * $n / ($n - 1)" | bc -l)
      for c in 4 8; do proj[$c]=$(echo "$ns1_s * ((1 - $p) + $p / $c)" | bc -l); done
      printf '      scaling: --no-store on 1 core %.2f s, on %d cores %.2f s: %.0f%% of the work runs in parallel; Amdahl: 4 cores %.2f s = %.2fx, 8 cores %.2f s = %.2fx\n' \
        "$ns1_s" "$n" "$ns_s" "$(echo "$p * 100" | bc -l)" "${proj[4]}" "$(echo "${proj[4]}/$ts_s" | bc -l)" "${proj[8]}" "$(echo "${proj[8]}/$ts_s" | bc -l)"
    fi; } | tee -a "$OUT/extract.txt"
  rm -rf "$SRC" "$WS"
done
