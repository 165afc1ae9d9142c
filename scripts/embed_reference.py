#!/usr/bin/env python3
"""Reference sentence vectors from Python onnxruntime + tokenizers for the Rust embedder's test.

Usage: ~/.cache/nanodex/py/bin/python scripts/embed_reference.py MODEL_DIR > tests/fixtures/embed/reference.json
Same recipe as sentence-transformers for all-MiniLM-L6-v2: tokenize (max 256 tokens), run the ONNX graph,
attention-masked mean of last_hidden_state, L2-normalise. Writes the first 16 dimensions and the norm-1 vectors'
pairwise cosines, which the Rust test compares against.
"""
import json, sys
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

SENTENCES = [
    "Deserialize a JSON document from a string to a Python object.",
    "Raised when a JSON document cannot be decoded.",
    "Open a TCP connection to a remote host and send bytes.",
    "def loads(s, *, cls=None, object_hook=None, parse_float=None)",
]

def main(model_dir):
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.enable_truncation(256)
    tok.enable_padding()
    sess = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    types = np.array([e.type_ids for e in enc], dtype=np.int64)
    hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    m = mask[:, :, None].astype(np.float32)
    vec = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    out = {
        "sentences": SENTENCES,
        "head": [[round(float(x), 6) for x in v[:16]] for v in vec],
        "cosine": [[round(float(x), 6) for x in row] for row in vec @ vec.T],
    }
    json.dump(out, sys.stdout, indent=1)
    print()

if __name__ == "__main__":
    main(sys.argv[1])
