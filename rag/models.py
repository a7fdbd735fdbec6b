"""Typed records that cross module boundaries: the CLI, the UI and the eval consume these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Paper:
    """One paper of the corpus. `paper_id` is stable across runs (see corpus.paper_id_for)."""

    paper_id: str
    title: str
    abstract: str
    authors: str | None = None
    year: int | None = None
    url: str | None = None
    source: str | None = None
    venue: str | None = None  # journal or conference, when the source file names one (BibTeX, RIS)
    doi: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A piece of one abstract; `text` is what gets embedded (title line + passage)."""

    chunk_id: str
    paper_id: str
    index: int
    text: str


@dataclass(frozen=True)
class Source:
    """A retrieved paper as the answerer saw it, ranked by `score` (fused)."""

    paper: Paper
    score: float
    dense: float | None = None  # best chunk cosine similarity, when dense search ran
    bm25: float | None = None  # best chunk BM25 score, when BM25 ran

    @property
    def paper_id(self) -> str:
        return self.paper.paper_id

    @property
    def title(self) -> str:
        return self.paper.title


@dataclass(frozen=True)
class Citation:
    """Marker `[n]` in an answer, pointing to a retrieved paper and the abstract text backing it."""

    n: int
    paper_id: str
    title: str
    quote: str


@dataclass
class Answer:
    """What `answer()` returns. When `abstained`, `citations` is empty and `sources` holds the
    nearest papers, which do not answer the question."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    sources: list[Source] = field(default_factory=list)
    answerer: str = "extractive"
    notes: list[str] = field(default_factory=list)  # e.g. "LLM unreachable: fell back to extractive"
    unsupported: list[str] = field(default_factory=list)  # sentences whose citation lacks support
    removed_markers: list[int] = field(default_factory=list)  # markers that pointed nowhere

    def to_dict(self) -> dict:
        """The one JSON-ready form of an answer, used by `rag ask --json`, the UI's `/ask` API
        and the eval's results.json. `citations` carry paper ids, so a client can send the
        answer back as an assistant turn (`{"role": "assistant", "content": text,
        "citations": [...]}`) and a follow-up question is restricted to these papers."""
        return {
            "question": self.question, "text": self.text, "abstained": self.abstained, "answerer": self.answerer,
            "citations": [asdict(c) for c in self.citations],
            "sources": [{"paper_id": s.paper_id, "title": s.title, "score": s.score, "dense": s.dense, "bm25": s.bm25}
                        for s in self.sources],
            "notes": list(self.notes), "unsupported": list(self.unsupported),
            "removed_markers": list(self.removed_markers),
        }

    def as_message(self) -> dict:
        """This answer as an assistant turn of `history`, its citations carried as data."""
        return {"role": "assistant", "content": self.text,
                "citations": [{"n": c.n, "paper_id": c.paper_id, "title": c.title} for c in self.citations]}
