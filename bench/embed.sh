#!/usr/bin/env bash
# Embedding benchmark: nanodex (ort + tokenizers, Rust) against Python onnxruntime + tokenizers, same ONNX model,
# same tokenizer, same sentences, same batch size and thread count, in one run. The sentences are the first
# paragraphs of the installed Python standard library's docstrings (SENTENCES of them, default 2000).
# Prints sentences/s of each and the ratio (nanodex / peer; above 1 is faster). Each is the best of RUNS runs.
# Usage: make bench-embed [SENTENCES=2000] [BATCH=32] [THREADS=2] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
MODELS=${NANODEX_MODELS:-$HOME/.cache/nanodex/models}
PY=${NANODEX_PY:-$HOME/.cache/nanodex/py}
N=${SENTENCES:-2000}; BATCH=${BATCH:-32}; THREADS=${THREADS:-$(nproc)}; RUNS=${RUNS:-3}
bash scripts/models.sh >/dev/null
BIN=${NANODEX_BIN:-$CARGO_TARGET_DIR/release/nanodex}
[ -n "${NANODEX_BIN:-}" ] || cargo build --release --quiet -p nanodex-cli
OUT=bench-out; mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
python3 - "$N" > "$TMP/sentences.txt" <<'PY'
import ast, pathlib, sys, sysconfig
n = int(sys.argv[1]); out = []
for p in sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
    if "test" in p.parts or "site-packages" in p.parts:
        continue
    try:
        tree = ast.parse(p.read_text(encoding="utf-8"))
    except Exception:
        continue
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef, ast.Module)):
            doc = ast.get_docstring(node)
            if doc:
                out.append(" ".join(doc.split("\n\n")[0].split()))
    if len(out) >= n:
        break
print("\n".join(out[:n]))
PY
best() { sort -t' ' -k1 -g -r | head -1; }
for _ in $(seq "$RUNS"); do
  "$BIN" bench-embed "$TMP/sentences.txt" --model "$MODELS/all-MiniLM-L6-v2" --batch "$BATCH" --threads "$THREADS" \
    | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['per_sec'], d['sentences'])"
done | best > "$TMP/nd"
for _ in $(seq "$RUNS"); do
  "$PY/bin/python" bench/embed_peer.py "$MODELS/all-MiniLM-L6-v2" "$TMP/sentences.txt" "$BATCH" "$THREADS" \
    | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['per_sec'], d['sentences'])"
done | best > "$TMP/py"
read -r nd n1 < "$TMP/nd"; read -r py n2 < "$TMP/py"
{ echo "embedding benchmark: all-MiniLM-L6-v2 ONNX, $n1 stdlib docstring sentences, batch $BATCH, $THREADS threads, best of $RUNS ($(git rev-parse --short HEAD), $(nproc) cores)"
  printf '%-34s %12s\n' tool sentences/s
  printf '%-34s %12.1f\n' "nanodex (ort, Rust)" "$nd"
  printf '%-34s %12.1f\n' "python onnxruntime $("$PY/bin/python" -c 'import onnxruntime;print(onnxruntime.__version__)')" "$py"
  printf 'ratio nanodex/python: %.2fx (target >= 1.00)\n' "$(echo "$nd/$py" | bc -l)"; } | tee "$OUT/embed.txt"
