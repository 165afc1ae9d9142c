#!/usr/bin/env bash
# Installs the heavy Python peer (PyTorch + transformers + PEFT + gguf, about 5.6 GB with torch's CUDA wheels; it runs
# on the CPU) into its own virtual environment, $NANODEX_TORCH_PY (default ~/.cache/nanodex/torch-py). Only needed to
# regenerate the committed reference fixtures (tests/fixtures/make_reference.py) and for the on-demand LoRA peer
# benchmark (bench/lora_peer.sh); CI never runs it. Idempotent.
set -euo pipefail
PY=${NANODEX_TORCH_PY:-$HOME/.cache/nanodex/torch-py}
if [ -x "$PY/bin/python" ] && "$PY/bin/python" -c "import torch, transformers, peft, gguf, safetensors" 2>/dev/null; then
  echo "torch peer: ok ($PY)"; exit 0
fi
python3 -m venv "$PY"
"$PY/bin/pip" install -q --disable-pip-version-check "torch==2.*" "transformers==4.*" "peft==0.*" "gguf==0.*" "safetensors" "numpy" "sentencepiece" "protobuf"
"$PY/bin/python" -c "import torch, transformers, peft; print('torch peer: torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
