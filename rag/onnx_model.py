"""The embedding model on ONNX Runtime: exported once from the packaged weights, offline.

sentence-transformers' own `backend="onnx"` goes through `optimum`, whose install downgrades
transformers below what sentence-transformers 6 needs; so the export is done here with torch's
exporter (the `onnx` package) and the graph runs on onnxruntime directly. What is exported is
the whole sentence-transformers pipeline of the packaged models: the transformer (eager
attention), mean pooling over the attention mask, L2 normalisation. The vectors match
PyTorch's to a cosine of 0.99999 (docs/speed.md; `tests/test_embedding_backends.py`).

The export goes to `<model cache>/<model slug>-onnx/` (beside the assembled model; the
packaged MiniLM's own directory may be read-only), written to a temporary name and renamed
into place, so two processes exporting at once both end with a whole file. torch is needed
for the export only: a process that finds the export in place never imports it.

`int8` (`quantize_int8`, measured, not adopted: docs/speed.md) is onnxruntime's dynamic int8
quantisation done the way these models need. Only the weights of the linear layers are
quantised (per output channel); embeddings, attention scores, LayerNorm stay float. Their
inputs are quantised per tensor at run time, and these models carry a few input channels up
to 50x the rest (the same channels in every text): quantised as they are, mpnet's vectors
kept a cosine of 0.88 to float. So each layer is first smoothed (SmoothQuant, alpha 0.5: an
input channel divided by s, the weight row multiplied by s, the product unchanged), with s
from the largest value each channel takes on calibration texts of the bundled corpus; and
the feed-forward down-projections stay float: their inputs (after GELU) have outliers of
100 that smoothing does not tame (quantised, they alone took mpnet's cosine to 0.89).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from rag.errors import ConfigError

EXPORT_VERSION = 1  # bumped when the exported graph changes; an older export is redone
INT8_FILE = "model-int8-v2.onnx"  # renamed when the quantisation recipe changes
INPUTS = ("input_ids", "attention_mask")
SMOOTH_ALPHA = 0.5  # SmoothQuant's migration strength: s = max|x|^a / max|w|^(1-a)
CALIBRATION_EVERY = 8  # every 8th paper of the bundled corpus calibrates the int8 smoothing


def export_dir(slug: str, cache_dir: Path) -> Path:
    """Where model `slug`'s export lives: beside the assembled models, in `cache_dir`."""
    return Path(cache_dir) / f"{slug}-onnx"


def export(model_dir: Path, out_dir: Path, quantized: bool = False) -> Path:
    """The .onnx file of the model in `model_dir` under `out_dir`, exported (and, with
    `quantized`, quantised to int8) on first use; ConfigError when that cannot be done here."""
    target = out_dir / (INT8_FILE if quantized else "model.onnx")
    if _current(out_dir) and target.exists():
        return target
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (_current(out_dir) and (out_dir / "model.onnx").exists()):
            _export_fp32(model_dir, out_dir)
        if quantized and not target.exists():
            tmp = _tmp_name(out_dir, ".onnx")
            quantize_int8(out_dir / "model.onnx", Path(model_dir) / "tokenizer.json", tmp)
            os.replace(tmp, target)
    except ImportError as err:
        raise ConfigError(f"RAG_EMBED_BACKEND=onnx needs the packages onnx and onnxruntime ({err.name} is "
                          "missing); run `pip install onnx onnxruntime` or set RAG_EMBED_BACKEND=torch") from None
    except OSError as err:
        raise ConfigError(f"cannot write the ONNX export to {out_dir} ({err.strerror}); "
                          "set RAG_MODEL_CACHE_DIR to a writable directory") from err
    return target


def _current(out_dir: Path) -> bool:
    try:
        return json.loads((out_dir / "export.json").read_text())["version"] == EXPORT_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _tmp_name(out_dir: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".export-", suffix=suffix, dir=out_dir)
    os.close(fd)
    return Path(name)


def _export_fp32(model_dir: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from rag.models_registry import window_of

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)

    class SentenceEncoder(torch.nn.Module):
        """Transformer, mean pooling over the mask, L2 norm: the sentence-transformers modules."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    # A padded sample: the tracer records the masked path, which also serves unpadded input.
    sample = tok(["a short one", "and a somewhat longer sample sentence to pad against"], padding=True,
                 return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"embedding": {0: "batch"}}
    tmp = _tmp_name(out_dir, ".onnx")
    with torch.no_grad():
        torch.onnx.export(SentenceEncoder(model), tuple(sample[k] for k in INPUTS), str(tmp), dynamo=False,
                          input_names=list(INPUTS), output_names=["embedding"], dynamic_axes=axes, opset_version=17)
    os.replace(tmp, out_dir / "model.onnx")
    meta = {"version": EXPORT_VERSION, "pad_id": tok.pad_token_id, "window": window_of(str(model_dir)) or 512,
            "dimension": int(model.config.hidden_size)}
    tmp = _tmp_name(out_dir, ".json")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, out_dir / "export.json")


def quantize_int8(fp32_file: Path, tokenizer_file: Path, out_file: Path, texts: list[str] | None = None) -> None:
    """Write the int8 model of `fp32_file` to `out_file` (see the module docstring): smoothed
    with the channel ranges seen on `texts` (default: `calibration_texts()`), linear weights
    int8 per channel, feed-forward down-projections float."""
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_file))
    weights = {init.name: init for init in model.graph.initializer}
    layers: dict[str, list] = {}  # input tensor -> the linear layers (MatMul by a weight) reading it
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            layers.setdefault(node.input[0], []).append(node)
    ranges = _input_ranges(fp32_file, tokenizer_file, list(layers), texts or calibration_texts())
    keep_float = []  # the down-projections: layers whose input is wider than their output (3072 -> 768)
    for x, nodes in layers.items():
        w = [numpy_helper.to_array(weights[n.input[1]]) for n in nodes]
        keep_float += [n.name for n, m in zip(nodes, w) if m.shape[0] > m.shape[1]]
        w_range = np.max([np.abs(m).max(axis=1) for m in w], axis=0)
        s = np.clip(np.maximum(ranges[x], 1e-5) ** SMOOTH_ALPHA / np.maximum(w_range, 1e-5) ** (1 - SMOOTH_ALPHA),
                    1e-2, 1e2).astype(np.float32)
        inverse = numpy_helper.from_array((1 / s).astype(np.float32), f"{x}/smooth_inverse")
        model.graph.initializer.append(inverse)
        model.graph.node.insert(list(model.graph.node).index(nodes[0]),
                                helper.make_node("Mul", [x, inverse.name], [f"{x}/smoothed"], name=f"{x}/smooth"))
        for node, m in zip(nodes, w):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array((m * s[:, None]).astype(np.float32),
                                                                    node.input[1]))
            node.input[0] = f"{x}/smoothed"
    smoothed = out_file.with_suffix(".smoothed.onnx")
    try:
        onnx.save(model, str(smoothed))
        quantize_dynamic(str(smoothed), str(out_file), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True, op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_float)
    finally:
        smoothed.unlink(missing_ok=True)


def calibration_texts() -> list[str]:
    """Title and abstract of every `CALIBRATION_EVERY`-th paper of the bundled corpus."""
    from rag.corpus import PaperStream
    from rag.settings import BUNDLED_CORPUS

    return [f"{p.title}\n{p.abstract}" for p in list(PaperStream([BUNDLED_CORPUS]))[::CALIBRATION_EVERY]]


def _input_ranges(onnx_file: Path, tokenizer_file: Path, tensors: list[str], texts: list[str]) -> dict:
    """tensor -> the largest absolute value each of its channels takes over `texts` (run
    one at a time, unpadded: padding would widen the ranges with values no text has)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_file))
    model.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    tok = _tokenizer(tokenizer_file, _export_meta(onnx_file))
    ranges: dict[str, np.ndarray] = {}
    for text in texts:
        ids = np.array([tok.encode(text).ids], dtype=np.int64)
        for name, value in zip(tensors, session.run(tensors, {"input_ids": ids, "attention_mask": np.ones_like(ids)})):
            top = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            ranges[name] = np.maximum(ranges[name], top) if name in ranges else top
    return ranges


def _export_meta(onnx_file: Path) -> dict:
    """What the export recorded beside `onnx_file` (window, pad id, dimension)."""
    return json.loads((onnx_file.parent / "export.json").read_text())


def _tokenizer(tokenizer_file: Path, meta: dict):
    """The model's tokenizer as the exported graph reads it: truncated at its window, unpadded."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.enable_truncation(meta["window"])
    tok.no_padding()
    return tok


class OnnxSentenceModel:
    """An exported model with the part of `SentenceTransformer`'s interface `Embedder` uses:
    `encode` batches like sentence-transformers (sorted by length, each batch padded to its
    longest, truncated at the model's window) and returns unit-length float32 rows."""

    def __init__(self, model_dir: Path, onnx_file: Path, threads: int = 0):
        import onnxruntime as ort

        meta = _export_meta(onnx_file)
        self._tok = _tokenizer(Path(model_dir) / "tokenizer.json", meta)
        self._pad = int(meta["pad_id"])
        self._dimension = int(meta["dimension"])
        opts = ort.SessionOptions()
        # onnxruntime counts physical cores, which on a small VM can be half the vCPUs torch uses.
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        # No spinning between runs: a spinning pool fights other processes for the cores (see
        # rag.embedding.set_torch_threads for torch's equivalent).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str], batch_size: int = 32, **_ignored) -> np.ndarray:
        encoded = self._tok.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i].ids))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(encoded[i].ids) for i in rows)
            ids = np.full((len(rows), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encoded[i].ids)
                ids[r, :n] = encoded[i].ids
                mask[r, :n] = 1
            out[rows] = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out
