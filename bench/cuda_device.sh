#!/usr/bin/env bash
# The CUDA path on a real GPU, in one run: a nanodex built with `--features cuda` against the same binary on the CPU
# and against PyTorch + PEFT on the same GPU. Needs only the binary, the SmolLM2-135M-Instruct GGUF and, for the
# peer, a Python with torch, transformers, peft and gguf (none of it is fetched). Prints each figure and writes them
# to $OUT_DIR/cuda.txt. Not part of CI (no GPU there); scripts/build_cuda.sh builds the binary on a machine
# without a GPU.
#  1. generation: the same greedy answer on the CPU and on the GPU (base model, then base + adapter);
#  2. training parity: the loss after 3 LoRA steps on the same random batch, CPU against GPU (f32 and Q4_1 bases);
#  3. LoRA / QLoRA training speed on the GPU against PyTorch + PEFT on the GPU (bench/peft_lora_cpu.py --device cuda);
#  4. learning: bench/learn.sh's 100 invented facts trained on the GPU, then answered on the GPU.
# Usage: bash bench/cuda_device.sh NANODEX_BIN GGUF [OUT_DIR=bench-out]
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="timeout 300 $1"; GGUF=$2; OUT_DIR=${3:-bench-out}; mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
REPORT="$OUT_DIR/cuda.txt"; : > "$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }
# The value of one key of the JSON document in a command's output (log lines before it are skipped), or the
# output's end when there is none.
field() {
  python3 -c '
import json, sys
out = sys.argv[1]
for i in [0] + [i + 1 for i, c in enumerate(out) if c == "\n"]:
    if out.startswith("{", i):
        try:
            print(json.JSONDecoder().raw_decode(out[i:])[0][sys.argv[2]]); sys.exit(0)
        except (ValueError, KeyError):
            pass
print("ERROR: " + out[-400:].replace("\n", " "))' "$1" "$2"
}

say "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
say "nanodex: $($BIN --version 2>&1)"

# 1. Generation parity.
Q="What is the capital of France?"
for dev in cpu cuda; do
  r=$($BIN generate --base "$GGUF" --prompt "$Q" --max-tokens 24 --device $dev --json 2>&1)
  say "generate [$dev]: $(field "$r" text | tr '\n' ' ') ($(field "$r" tokens_per_s) tokens/s)"
  eval "gen_$dev=\$(field \"\$r\" text)"
done
[ "$gen_cpu" = "$gen_cuda" ] && say "generate: same answer on CPU and GPU" || say "generate: ANSWERS DIFFER"

# 2. Training parity: 3 steps (no warm-up, no dropout) on the same seeded batch.
for dtype in f32 q4_1; do
  for dev in cpu cuda; do
    r=$($BIN bench-train --base "$GGUF" --seq-len 64 --batch 2 --steps 3 --warmup 0 --dropout 0 --dtype $dtype --device $dev 2>&1)
    eval "loss_$dev=\$(field \"\$r\" final_loss)"
  done
  say "loss after 3 steps [$dtype]: cpu $loss_cpu, cuda $loss_cuda"
done

# 3. Training speed on the GPU, nanodex against PyTorch + PEFT.
for shape in "4 128" "16 512"; do
  set -- $shape; B=$1; S=$2
  ours=$($BIN bench-train --base "$GGUF" --seq-len $S --batch $B --steps 20 --warmup 3 --dtype f32 --device cuda 2>&1)
  ourq=$($BIN bench-train --base "$GGUF" --seq-len $S --batch $B --steps 20 --warmup 3 --dtype q4_1 --device cuda 2>&1)
  peer=$(timeout 300 $PY bench/peft_lora_cpu.py --gguf "$GGUF" --seq-len $S --batch $B --steps 20 --warmup 3 --device cuda 2>&1 | grep lora_train || true)
  say "LoRA training on the GPU, batch $B x seq $S, 20 timed steps:"
  say "  nanodex LoRA  (f32 base):  $(field "$ours" tokens_per_s) tokens/s"
  say "  nanodex QLoRA (q4_1 base): $(field "$ourq" tokens_per_s) tokens/s"
  if [ -n "$peer" ]; then
    say "  PyTorch $(field "$peer" torch) + PEFT (f32): $(field "$peer" tokens_per_s) tokens/s, $(field "$peer" peak_gpu_mb) MiB GPU"
    say "  speed ratio nanodex/peer: $(python3 -c "import sys; print(round(float(sys.argv[1]) / float(sys.argv[2]), 2))" "$(field "$ours" tokens_per_s)" "$(field "$peer" tokens_per_s)" 2>&1)x (above 1 is faster)"
  else
    say "  peer: $($PY bench/peft_lora_cpu.py --gguf "$GGUF" --steps 1 --warmup 0 --device cuda 2>&1 | tail -2 | tr '\n' ' ')"
  fi
done

# 4. Learning on the GPU.
L="$OUT_DIR/learn-cuda"; rm -rf "$L"
cat > "$OUT_DIR/learn-cuda.yaml" <<YAML
lora: {r: 16, alpha: 32, dropout: 0.0}
train: {lr: 2.0e-3, max_steps: 100, batch_size: 8, micro_batch_size: 8, warmup_steps: 10, eval_split: 0.0, eval_interval: 1000, save_every: 50, max_seq_len: 256}
YAML
start=$(date +%s.%N)
$BIN train --dataset tests/fixtures/train/facts.jsonl --base "$GGUF" --out "$L" --config "$OUT_DIR/learn-cuda.yaml" --device cuda --project larkspur 2>&1 | tail -8 | tee -a "$REPORT"
say "learning: trained in $(python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 1))" "$start") s on the GPU"
$BIN bench-qa --base "$GGUF" --adapter "$L" --dataset tests/fixtures/train/facts.jsonl --dataset tests/fixtures/train/reworded.jsonl --max-tokens 40 --device cuda > "$OUT_DIR/learn-cuda.json" 2>&1
python3 - "$OUT_DIR/learn-cuda.json" <<'PY' | tee -a "$REPORT"
import json, sys
try:
    for s in json.load(open(sys.argv[1])):
        print(f"  answered on the GPU, {s['dataset']}: {s['correct']}/{s['total']} right ({100 * s['accuracy']:.0f}%)")
except Exception as e:
    print("  bench-qa failed:", open(sys.argv[1]).read()[-600:])
PY
P="Which function of Larkspur reads ledger CSV files?"
for dev in cpu cuda; do
  r=$($BIN generate --base "$GGUF" --adapter "$L" --prompt "$P" --max-tokens 24 --device $dev --json 2>&1)
  say "generate with the GPU-trained adapter [$dev]: $(field "$r" text | tr '\n' ' ')"
done
