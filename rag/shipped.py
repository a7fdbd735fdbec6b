"""Chunk vectors of the bundled corpus, shipped with the package, so a first `rag ingest` is seconds.

Every new user embeds the same 555 abstracts with the same model and gets the same vectors:
minutes of CPU (all-mpnet-base-v2 on 2 cores: five) for a result that is fixed. So the
vectors of both packaged models ship as package data, `rag/data/vectors/<model>.npz`, and
`rag.ingest` takes a chunk's vector from there instead of embedding its text, but only when
the whole key matches:

- the model: its name *and* its weights (the sha256 the registry checks after assembly, or
  the version of the package that holds the model), so new weights never reuse old vectors;
- the chunker settings (`chunk_size`, `chunk_overlap`) the file was made with;
- the chunk's text: the content hash that `rag.chunking.chunk_id` already puts in every
  chunk id, so an edited abstract, or any chunk the file does not hold, is embedded as usual.

A user's own papers go through the same lookup: a chunk whose text is in the file (the same
abstract from another source) gets the same vector it would have been embedded to. Off with
`RAG_SHIPPED_VECTORS=false` (the benchmark turns it off to time the embedder).

`python -m rag.shipped` (`make shipped-vectors`) regenerates the files with the real embedder;
`tests/test_shipped.py` checks them against it (same top-10 on the eval questions, cosine).
Vectors are stored as float32: the index built from them is the one the embedder builds.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from rag.models_registry import MODELS, spec_for
from rag.settings import BUNDLED_CORPUS, PACKAGE_DATA, Settings

VECTORS_DIR = PACKAGE_DATA / "vectors"
FORMAT = 1  # bumped when the file's layout changes; a file of another format is ignored


@dataclass(frozen=True)
class VectorKey:
    """What a shipped vector is valid for, besides its chunk's text."""

    model: str  # the model's slug
    weights: str  # the weights' identity: "sha256:<hex>" or "<package>==<version>"
    chunk_size: int
    chunk_overlap: int

    @classmethod
    def of(cls, settings: Settings) -> VectorKey | None:
        """The key `settings` would embed with; None for a model that ships no vectors (a local
        directory, a hub id, or a packaged model whose package is not installed)."""
        weights = weights_id(settings.embed_model)
        if weights is None or settings.chunk_size is None:
            return None
        return cls(spec_for(settings.embed_model).slug, weights, settings.chunk_size, settings.chunk_overlap)


def weights_id(model: str) -> str | None:
    """The identity of a packaged model's weights, read without hashing 440 MB: the sha256 the
    registry checks after assembly, or the installed version of the package holding the model.

    `weights_id("all-mpnet-base-v2")` -> `"sha256:78c0197b..."`; `weights_id("/my/model")` -> None.
    """
    spec = spec_for(model)
    if spec is None:
        return None
    if spec.weights_sha256:
        return f"sha256:{spec.weights_sha256}"
    if spec.package:
        dist = spec.package.replace("_", "-")
        try:
            return f"{dist}=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            return None
    return None


def text_hash(chunk_id: str) -> str:
    """The chunk text's content hash inside a chunk id (`rag.chunking.chunk_id`).

    `text_hash("p-1:0123456789abcdef")` -> `"0123456789abcdef"`
    """
    return chunk_id.rsplit(":", 1)[-1]


class ShippedVectors:
    """The shipped vectors of one key: `chunk_vectors(ids)` has the shape of
    `rag.store.Store.chunk_vectors`, so ingest reads it as it reads another index (`reuse`)."""

    def __init__(self, key: VectorKey, hashes: np.ndarray, vectors: np.ndarray):
        self.key = key
        self._rows = {h: i for i, h in enumerate(hashes.tolist())}
        self._vectors = vectors

    def __len__(self) -> int:
        return len(self._rows)

    def chunk_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """chunk id -> float32 vector, for the ids whose text hash the file holds."""
        found = {cid: self._rows.get(text_hash(cid)) for cid in ids}
        return {cid: self._vectors[row] for cid, row in found.items() if row is not None}


def path_for(model_slug: str, directory: Path = VECTORS_DIR) -> Path:
    return directory / f"{model_slug}.npz"


def load(settings: Settings, directory: Path = VECTORS_DIR) -> ShippedVectors | None:
    """The shipped vectors for `settings`' model and chunker, or None when there are none
    for that key (or `settings.shipped_vectors` is off). A file made for another key, of
    another format, or unreadable, is ignored: the chunks are then embedded."""
    key = VectorKey.of(settings) if settings.shipped_vectors else None
    if key is None:
        return None
    try:
        with np.load(path_for(key.model, directory), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT or VectorKey(**meta["key"]) != key:
                return None
            return ShippedVectors(key, data["hashes"], data["vectors"].astype(np.float32, copy=False))
    except (OSError, KeyError, ValueError, TypeError):
        return None


class _Either:
    """Vectors from `first`, then from `second` for the ids `first` lacks."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def chunk_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        found = self.first.chunk_vectors(ids)
        rest = [cid for cid in ids if cid not in found]
        return {**found, **self.second.chunk_vectors(rest)} if rest else found


def vector_source(settings: Settings, reuse=None):
    """What `rag.ingest.ingest` copies vectors from instead of embedding: `reuse` (another
    index of the same model, when given), then the shipped vectors of `settings`' key."""
    shipped = load(settings)
    if shipped is None:
        return reuse
    return shipped if reuse is None else _Either(reuse, shipped)


def make(model: str, corpus: Path = BUNDLED_CORPUS, directory: Path = VECTORS_DIR,
         progress: bool = True) -> Path:
    """Embed the chunks of `corpus` with `model` (the real `Embedder`, default Settings
    otherwise) and write them, keyed, to `directory`; returns the file written."""
    from rag.chunking import Chunker
    from rag.corpus import PaperStream
    from rag.embedding import Embedder, TokenCounter

    settings = Settings(embed_model=model, shipped_vectors=False)
    key = VectorKey.of(settings)
    if key is None:
        raise SystemExit(f"{model} is not a packaged model (or its package is not installed): nothing to ship")
    chunker = Chunker(TokenCounter(model, settings.model_cache_dir), settings.chunk_size, settings.chunk_overlap)
    texts = {text_hash(c.chunk_id): c.text for p in PaperStream([corpus]) for c in chunker.chunks(p)}
    hashes = sorted(texts)
    embedder = Embedder.from_settings(settings, for_queries=False)
    return write(key, hashes, embedder.embed([texts[h] for h in hashes], progress=progress), directory)


def write(key: VectorKey, hashes: list[str], vectors: np.ndarray, directory: Path = VECTORS_DIR) -> Path:
    """Write `vectors` (row i: the chunk whose text hash is `hashes[i]`) as the file of `key`."""
    meta = {"format": FORMAT, "key": key.__dict__, "dimension": int(vectors.shape[1]), "count": len(hashes),
            "made_by": "python -m rag.shipped", "corpus": "the bundled corpus (rag/data/corpus)"}
    directory.mkdir(parents=True, exist_ok=True)
    out = path_for(key.model, directory)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), hashes=np.array(hashes),
                        vectors=np.asarray(vectors, dtype=np.float32))
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.shipped",
                                     description="Regenerate the shipped chunk vectors of the bundled corpus.")
    parser.add_argument("--model", action="append", choices=sorted(s.name for s in MODELS.values()),
                        help="model to regenerate (repeatable; default: every packaged model)")
    parser.add_argument("--out", type=Path, default=VECTORS_DIR, help="directory to write (default: %(default)s)")
    args = parser.parse_args(argv)
    for model in args.model or [s.name for s in MODELS.values()]:
        print(f"wrote {make(model, directory=args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
