"""Embedding backends to compare against the project's torch fp32 `Embedder`.

Each encoder has the embedder's shape (`batch_size`, `embed(texts)`, `embed_query(text)`,
`dimension`), so it can be handed to `rag.ingest.ingest` and `rag.pipeline.build_pipeline`.

sentence-transformers' own `backend="onnx"` needs `optimum`, whose install would downgrade
transformers in this venv; so the ONNX variants are built here from the packaged model with
torch's exporter (which needs the `onnx` package) and run with onnxruntime directly:
- `onnx-fp32`: the exported graph, onnxruntime's default graph optimisations;
- `onnx-fused`: onnxruntime.transformers' BERT fusions (attention, GELU, LayerNorm), what
  sentence-transformers calls the O2-O4 optimisation levels;
- `onnx-int8`: dynamic int8 quantisation (per-channel, reduced range: the AVX2 setting).
Mean pooling and normalisation are part of the exported graph, exactly as the model's
sentence-transformers pipeline does them (checked against it by the cosine in the results).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from rag.embedding import MAX_SEQ_TOKENS, Embedder
from rag.models_registry import window_of

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class TorchEncoder:
    """The project's `Embedder` (sentence-transformers on torch) at a batch size and thread count."""

    def __init__(self, embedder: Embedder, batch_size: int, threads: int | None = None):
        self.embedder = embedder
        self.batch_size = batch_size
        self.threads = threads
        self.name = f"torch-fp32 bs{batch_size}" + (f" threads{threads}" if threads else "")

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        import torch

        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            vectors = self.embedder.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                                 convert_to_numpy=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(before)
        return vectors.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def onnx_available() -> str | None:
    """None when ONNX variants can be built here, else why not."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed"
    if importlib.util.find_spec("onnx") is None:
        return "the `onnx` package (needed by torch's ONNX exporter and by quantisation) is not installed"
    return None


def export_onnx(model_dir: Path, out: Path) -> Path:
    """Export the packaged model (transformer + mean pooling + L2 norm) to `out`, once."""
    if out.exists():
        return out
    import torch
    from transformers import AutoModel, AutoTokenizer

    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()

    class SentenceEncoder(torch.nn.Module):
        # The layers are called one by one with an additive mask built here: transformers'
        # mask helpers take shape-dependent shortcuts that the tracer would freeze.
        def __init__(self, model):
            super().__init__()
            self.m = model

        def forward(self, ids, mask, types):
            h = self.m.embeddings(input_ids=ids, token_type_ids=types)
            additive = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            for layer in self.m.encoder.layer:
                h = layer(h, attention_mask=additive)
            w = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    sample = tok(["a short one", "and a somewhat longer sample sentence"], padding=True, return_tensors="pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(SentenceEncoder(bert), tuple(sample[k] for k in INPUTS), str(out), dynamo=False,
                          input_names=INPUTS, output_names=["embedding"], dynamic_axes=axes, opset_version=17)
    return out


def fuse_onnx(src: Path, out: Path, num_heads: int, hidden: int) -> Path:
    if not out.exists():
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden)
        optimized.save_model_to_file(str(out))
    return out


def quantize_onnx(src: Path, out: Path) -> Path:
    if not out.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    return out


def build_onnx_variants(model_dir: Path, work: Path) -> dict[str, Path]:
    """name -> .onnx file for each variant, built under `work` on first use."""
    import json

    config = json.loads((model_dir / "config.json").read_text())
    base = export_onnx(model_dir, work / "model.onnx")
    fused = fuse_onnx(base, work / "model-fused.onnx", config["num_attention_heads"], config["hidden_size"])
    return {"onnx-fp32": base, "onnx-fused": fused, "onnx-int8": quantize_onnx(base, work / "model-int8.onnx")}


class OnnxEncoder:
    """An exported model on onnxruntime, batching like sentence-transformers: texts sorted
    by length so each batch pads little, padded to its longest, truncated at the window."""

    def __init__(self, name: str, onnx_path: Path, model_dir: Path, batch_size: int = 64, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name
        self.batch_size = batch_size
        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.enable_truncation(window_of(str(model_dir)) or MAX_SEQ_TOKENS)  # the model's own window
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        # onnxruntime defaults to the physical cores it detects, which on a 2-vCPU VM can be 1;
        # torch uses every vCPU, so give both the same.
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.dimension = int(self._session.get_outputs()[0].shape[1] or 0) or len(self.embed_query("x"))

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        parts = []
        for start in range(0, len(order), self.batch_size):
            batch = [texts[i] for i in order[start:start + self.batch_size]]
            enc = self._tok.encode_batch(batch)
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            parts.append(self._session.run(None, feed)[0])
        if parts:
            stacked = np.concatenate(parts).astype(np.float32, copy=False)
            out = np.empty_like(stacked)
            out[order] = stacked
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
