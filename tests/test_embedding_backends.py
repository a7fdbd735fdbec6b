"""The ONNX Runtime backend (rag/onnx_model.py) against PyTorch, with the real packaged model.

The export is made once into the model cache (here under tmp_path) and reused; its vectors are
PyTorch's, batched or one question at a time (unpadded: the traced graph must not depend on
the padding of the sample it was exported with).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import PLUMBING_MODEL
from rag import onnx_model
from rag.embedding import Embedder
from rag.settings import Settings


def _against_torch(backend: str, cache: Path, torch_embedder, papers) -> tuple[Embedder, list[str], np.ndarray,
                                                                           np.ndarray]:
    """An embedder of `backend` (its export made under `cache`), the texts, its vectors, torch's."""
    texts = [f"{p.title}\n{p.abstract}" for p in papers[:12]] + ["Which papers bridge CNNs and ViTs?"]
    other = Embedder(PLUMBING_MODEL, 4, backend=backend, cache_dir=cache)
    return other, texts, other.embed(texts), torch_embedder.embed(texts)


@pytest.mark.slow
def test_onnx_backend_gives_torchs_vectors_and_exports_once(tmp_path, embedder, real_papers):
    onnx, texts, batched, reference = _against_torch("onnx", tmp_path, embedder, real_papers)
    assert batched.shape == reference.shape
    assert np.sum(batched * reference, axis=1).min() >= 0.9999
    single = onnx.embed(texts[-1:])[0]
    assert float(single @ reference[-1]) >= 0.9999
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)

    exported = tmp_path / "all-minilm-l6-v2-onnx" / "model.onnx"
    stamp = exported.stat().st_mtime_ns
    again = Embedder(PLUMBING_MODEL, 4, backend="onnx", cache_dir=tmp_path)
    assert float(again.embed(texts[:1])[0] @ reference[0]) >= 0.9999
    assert exported.stat().st_mtime_ns == stamp  # reused, not exported again


def test_backend_follows_the_model_unless_set():
    assert Settings(embed_model=PLUMBING_MODEL).embed_backend in ("torch", "onnx")
    assert Settings(embed_model=PLUMBING_MODEL, embed_backend="torch").embed_backend == "torch"
    assert Settings(embed_model="/some/local/model").embed_backend == "torch"  # only packaged models are checked


@pytest.mark.slow
def test_int8_backend_quantises_only_the_smoothed_linear_layers(tmp_path, embedder, real_papers):
    import onnx

    _, _, vectors, reference = _against_torch("onnx-int8", tmp_path, embedder, real_papers)
    cosine = np.sum(vectors * reference, axis=1)
    # 0.9988 mean, 0.9984 least here; quantised as before (no smoothing, embeddings and
    # down-projections int8 too) 0.993 and 0.987 (docs/speed.md).
    assert cosine.mean() >= 0.996 and cosine.min() >= 0.99, cosine
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    graph = onnx.load(str(tmp_path / "all-minilm-l6-v2-onnx" / onnx_model.INT8_FILE)).graph
    ops = [node.op_type for node in graph.node]
    layers = 6  # MiniLM-L6: q, k, v, attention output and the up-projection are int8 in each
    assert ops.count("MatMulInteger") == 5 * layers
    assert ops.count("Mul") >= 4 * layers  # the smoothing of each int8 layer's input (q, k, v share one)
    weights = {i.name for i in graph.initializer}
    float_weights = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert len(float_weights) == layers  # the down-projections
    assert "word_embeddings" in " ".join(n.input[0] for n in graph.node if n.op_type == "Gather")  # float
