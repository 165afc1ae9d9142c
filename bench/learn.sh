#!/usr/bin/env bash
# Learning benchmark: trains a LoRA on SmolLM2-135M-Instruct (CPU) on 100 invented facts about an invented codebase
# (tests/fixtures/train/facts.jsonl, written by make_facts.py), then answers the training questions and reworded
# ones (reworded.jsonl) greedily and reports the share answered right (every key term of the expected answer present).
# Usage: bash bench/learn.sh [STEPS=100] [THREADS=2] [NANODEX_BIN=path]. Takes minutes: not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
MODELS=${NANODEX_MODELS:-$HOME/.cache/nanodex/models}
STEPS=${STEPS:-100}; export RAYON_NUM_THREADS=${THREADS:-2}
GGUF="$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
bash scripts/models.sh >/dev/null
BIN=${NANODEX_BIN:-$CARGO_TARGET_DIR/release/nanodex}
[ -n "${NANODEX_BIN:-}" ] || cargo build --release --quiet -p nanodex-cli
OUT=bench-out/learn; rm -rf "$OUT"; mkdir -p bench-out
cat > bench-out/learn.yaml <<YAML
lora: {r: 16, alpha: 32, dropout: 0.0}
train: {lr: 2.0e-3, max_steps: $STEPS, batch_size: 8, micro_batch_size: 8, warmup_steps: 10, eval_split: 0.0, eval_interval: 1000, save_every: 50, max_seq_len: 256}
YAML
start=$(date +%s)
"$BIN" train --dataset tests/fixtures/train/facts.jsonl --base "$GGUF" --out "$OUT" --config bench-out/learn.yaml --device cpu --project larkspur
secs=$(( $(date +%s) - start ))
"$BIN" bench-qa --base "$GGUF" --adapter "$OUT" --dataset tests/fixtures/train/facts.jsonl --dataset tests/fixtures/train/reworded.jsonl > bench-out/learn.json
python3 - "$secs" <<'PY' | tee bench-out/learn.txt
import json, sys
sets = json.load(open("bench-out/learn.json"))
print(f"learning: SmolLM2-135M-Instruct + LoRA r=16 on 100 invented facts, trained in {sys.argv[1]} s on the CPU")
for s in sets:
    print(f"  {s['dataset']}: {s['correct']}/{s['total']} right ({100 * s['accuracy']:.0f}%)")
PY
