#!/usr/bin/env python3
"""Peer for bench/embed.sh: Python onnxruntime + tokenizers embedding the same sentences with the same ONNX model
and tokenizer, the same recipe as nanodex (sort by length, batches, attention-masked mean, L2 norm).

Usage: embed_peer.py MODEL_DIR SENTENCES_FILE BATCH THREADS  ->  prints JSON {sentences, seconds, per_sec, dim}
"""
import json, sys, time
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

def main(model_dir, path, batch, threads):
    sentences = [l.rstrip("\n") for l in open(path, encoding="utf-8") if l.strip()]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(f"{model_dir}/model.onnx", opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.enable_truncation(256)
    tok.enable_padding()
    sess.run(None, {"input_ids": np.ones((1, 4), np.int64), "attention_mask": np.ones((1, 4), np.int64), "token_type_ids": np.zeros((1, 4), np.int64)})
    t = time.perf_counter()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = [None] * len(sentences)
    for k in range(0, len(order), batch):
        idx = order[k:k + batch]
        enc = tok.encode_batch([sentences[i] for i in idx])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        m = mask[:, :, None].astype(np.float32)
        vec = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        for i, v in zip(idx, vec):
            out[i] = v
    secs = time.perf_counter() - t
    print(json.dumps({"sentences": len(sentences), "seconds": secs, "per_sec": len(sentences) / secs, "dim": int(out[0].shape[0])}))

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
