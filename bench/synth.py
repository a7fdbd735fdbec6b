"""A deterministic synthetic corpus, recombined from the real abstracts, with cheap vectors.

`python -m bench.synth --n 100000 --seed 1 --out papers.jsonl` streams `{"id", "title",
"abstract", "authors", "year", "categories"}` lines (`--vectors` adds "embedding");
`rag ingest papers.jsonl` reads them.

How a paper is made (all choices from one `numpy` generator seeded with `seed`, in order, so
the same seed gives the same papers whatever the consumer does with them):
- two parent papers A and B of the real corpus; 3 to 7 sentences, about 60% of them from A's
  abstract and the rest from B's, each parent's in their original order: the abstract;
- the title: "head of A's title: tail of B's title" when both have a colon, else A's title;
- the vector: the mean of the vectors of the real chunks that hold those sentences, plus
  Gaussian noise (sigma 0.02 per dimension, about 0.4 in norm), L2-normalised. So vectors
  live in the real model's space, cluster like the real papers, and cost microseconds instead
  of a transformer pass: the 2-core CPU is not what a scale run measures.
- the filter fields (year 2007-2024, two or three authors out of a pool of 5,000 names, one
  or two arXiv categories) come from a second generator seeded with (seed, 1), so adding them
  did not change the texts or vectors of any seed.

The real material (`Base`) comes from an existing index of the bundled corpus (titles,
abstracts, chunk texts and chunk vectors); it is only read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NOISE_SIGMA = 0.02
CATEGORIES = ("cs.CV", "cs.LG", "cs.CL", "cs.AI", "stat.ML", "cs.NE", "cs.IR", "eess.IV", "cs.RO", "cs.SD")
_GIVEN = ("Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hiro", "Ines", "Jonas")
_FAMILY = ("Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen")
AUTHOR_POOL = 5000


@dataclass(frozen=True)
class SynthPaper:
    paper_id: str
    title: str
    abstract: str
    sentences: tuple[str, ...]  # the real sentences the abstract is made of, in order
    vector: np.ndarray | None  # unit length, float32; None when not asked for
    year: int = 2020
    authors: str = ""
    categories: str = ""

    def record(self):
        """The `rag.models.Paper` the assistant stores for this paper."""
        from rag.models import Paper

        return Paper(paper_id=self.paper_id, title=self.title, abstract=self.abstract, authors=self.authors,
                     year=self.year, source="synthetic", categories=self.categories)


def author_name(n: int) -> str:
    """Author `n` of the pool (distinct for every n): `author_name(123)` -> "Dara M. Abara"."""
    name = f"{_GIVEN[n % 10]} {chr(65 + n // 10 % 26)}. {_FAMILY[n // 260 % 10]}"
    return name if n < 2600 else f"{name}-{n // 2600 + 1}"


@dataclass
class Base:
    """The real corpus, split into sentences, each with the vector of the chunk holding it."""

    titles: list[str]
    sentences: list[str]
    paper_sentences: list[np.ndarray]  # per paper: indices into `sentences`, in abstract order
    vectors: np.ndarray  # (len(sentences), dim) float32

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])


def base_from_store(store) -> Base:
    """`Base` from a `rag.store.Store` holding an index of real papers (read only)."""
    from rag.store import get_all, mean_vector, record_fields
    from rag.text import sentences as split_sentences

    papers = get_all(store.papers, ["documents", "metadatas"])
    chunks = get_all(store.chunks, ["documents", "metadatas", "embeddings"])
    by_paper: dict[str, list[tuple[int, str, np.ndarray]]] = {}
    for text, meta, vec in zip(chunks["documents"], chunks["metadatas"], chunks["embeddings"]):
        by_paper.setdefault(meta["paper_id"], []).append((meta["index"], text, np.asarray(vec, np.float32)))
    titles, all_sentences, paper_sentences, vectors = [], [], [], []
    order = sorted(range(len(papers["ids"])), key=lambda i: papers["ids"][i])  # stable across stores
    for i in order:
        pid, fields = papers["ids"][i], record_fields(papers["documents"][i], papers["metadatas"][i])
        own = sorted(by_paper.get(pid, []), key=lambda c: c[0])
        fallback = mean_vector([vec for _, _, vec in own])
        idx = []
        for sentence in split_sentences(fields["abstract"]):
            holder = next((vec for _, text, vec in own if sentence in text), fallback)
            idx.append(len(all_sentences))
            all_sentences.append(sentence)
            vectors.append(holder)
        if idx:
            titles.append(fields["title"])
            paper_sentences.append(np.array(idx))
    return Base(titles, all_sentences, paper_sentences, np.stack(vectors).astype(np.float32))


def base_from_settings(settings) -> Base:
    from rag.store import Store, open_client

    return base_from_store(Store(open_client(settings), settings.embed_model, create=False))


def _title(a: str, b: str) -> str:
    head, sep_a, _ = a.partition(":")
    _, sep_b, tail = b.partition(":")
    if sep_a and sep_b and head.strip() and tail.strip():
        return f"{head.strip()}: {tail.strip()}"
    return a


def synth_papers(base: Base, n: int, seed: int, vectors: bool = True) -> Iterator[SynthPaper]:
    """`n` synthetic papers, one at a time (a generator: a million never sit in memory).

    `vectors=False` skips the vector arithmetic but draws the same random numbers, so the
    texts are the same as with vectors.
    """
    rng = np.random.default_rng(seed)
    fields = np.random.default_rng((seed, 1))  # the filter fields: a stream of their own
    n_papers, dim = len(base.titles), base.dimension
    low, high = np.array([0, 0, 3]), np.array([n_papers, n_papers, 8])  # parents A, B; sentence count
    for i in range(n):
        a, b, k = (int(x) for x in rng.integers(low, high))
        sa, sb = base.paper_sentences[a], base.paper_sentences[b]
        ka = min(len(sa), max(1, round(k * 0.6)))
        kb = min(len(sb), k - ka) if b != a else 0
        picked = np.concatenate([sa[np.sort(rng.permutation(len(sa))[:ka])],
                                 sb[np.sort(rng.permutation(len(sb))[:kb])]])
        noise = rng.normal(0.0, NOISE_SIGMA, size=dim)
        vec = None
        if vectors:
            mix = base.vectors[picked].sum(axis=0) / len(picked) + noise
            vec = (mix / np.sqrt(mix @ mix)).astype(np.float32)
        chosen = tuple(base.sentences[j] for j in picked)
        year, n_auth, n_cat, *draws = (int(x) for x in fields.integers(
            [2007, 2, 1, 0, 0, 0, 0, 0], [2025, 4, 3, AUTHOR_POOL, AUTHOR_POOL, AUTHOR_POOL, 10, 10]))
        authors = ", ".join(author_name(x) for x in dict.fromkeys(draws[:n_auth]))
        categories = " ".join(CATEGORIES[x] for x in dict.fromkeys(draws[3:3 + n_cat]))
        yield SynthPaper(paper_id=f"syn{seed}-{i:07d}", title=_title(base.titles[a], base.titles[b]),
                         abstract=" ".join(chosen), sentences=chosen, vector=vec, year=year, authors=authors,
                         categories=categories)


def write_jsonl(papers: Iterator[SynthPaper], out, with_vectors: bool = False) -> int:
    """Write papers as JSON Lines to the open text file `out`; returns how many."""
    count = 0
    for p in papers:
        record = {"id": p.paper_id, "title": p.title, "abstract": p.abstract, "authors": p.authors,
                  "year": p.year, "categories": p.categories}
        if with_vectors and p.vector is not None:
            record["embedding"] = [round(float(x), 5) for x in p.vector]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, required=True, help="number of papers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="-", help="JSON Lines file to write ('-': stdout)")
    parser.add_argument("--vectors", action="store_true", help="include each paper's vector as 'embedding'")
    parser.add_argument("--data-dir", type=Path, help="index of the real corpus to recombine (default: RAG_DATA_DIR)")
    args = parser.parse_args(argv)

    from rag.settings import Settings

    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    base = base_from_settings(settings)
    papers = synth_papers(base, args.n, args.seed, vectors=args.vectors)
    if args.out == "-":
        count = write_jsonl(papers, sys.stdout, args.vectors)
    else:
        with open(args.out, "w", encoding="utf-8") as fh:
            count = write_jsonl(papers, fh, args.vectors)
    print(f"synth: {count} papers from {len(base.titles)} real ones (seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
