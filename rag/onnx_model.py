"""The embedding model on ONNX Runtime: exported once from the packaged weights, offline.

sentence-transformers' own `backend="onnx"` goes through `optimum`, whose install downgrades
transformers below what sentence-transformers 6 needs; so the export is done here with torch's
exporter (the `onnx` package) and the graph runs on onnxruntime directly. What is exported is
the whole sentence-transformers pipeline of the packaged models: the transformer (eager
attention), mean pooling over the attention mask, L2 normalisation. The vectors match
PyTorch's to a cosine of 0.99999 (docs/speed.md; `tests/test_embedding_backends.py`).

The export goes to `<model cache>/<model slug>-onnx/` (beside the assembled model; the
packaged MiniLM's own directory may be read-only), written to a temporary name and renamed
into place, so two processes exporting at once both end with a whole file. `int8` is
onnxruntime's dynamic int8 quantisation of that graph (measured, not adopted: see
docs/speed.md). torch is needed for the export only: a process that finds the export in
place never imports it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from rag.errors import ConfigError

EXPORT_VERSION = 1  # bumped when the exported graph changes; an older export is redone
INPUTS = ("input_ids", "attention_mask")


def export_dir(slug: str, cache_dir: Path) -> Path:
    """Where model `slug`'s export lives: beside the assembled models, in `cache_dir`."""
    return Path(cache_dir) / f"{slug}-onnx"


def export(model_dir: Path, out_dir: Path, quantized: bool = False) -> Path:
    """The .onnx file of the model in `model_dir` under `out_dir`, exported (and, with
    `quantized`, quantised to int8) on first use; ConfigError when that cannot be done here."""
    target = out_dir / ("model-int8.onnx" if quantized else "model.onnx")
    if _current(out_dir) and target.exists():
        return target
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (_current(out_dir) and (out_dir / "model.onnx").exists()):
            _export_fp32(model_dir, out_dir)
        if quantized and not target.exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            tmp = _tmp_name(out_dir, ".onnx")
            quantize_dynamic(str(out_dir / "model.onnx"), str(tmp), weight_type=QuantType.QInt8,
                             per_channel=True, reduce_range=True)
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


class OnnxSentenceModel:
    """An exported model with the part of `SentenceTransformer`'s interface `Embedder` uses:
    `encode` batches like sentence-transformers (sorted by length, each batch padded to its
    longest, truncated at the model's window) and returns unit-length float32 rows."""

    def __init__(self, model_dir: Path, onnx_file: Path, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((onnx_file.parent / "export.json").read_text())
        self._tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tok.enable_truncation(meta["window"])
        self._tok.no_padding()
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
