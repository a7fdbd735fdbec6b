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
    categories: str | None = None  # arXiv categories, space-separated as in the snapshot: "cs.CV cs.LG"


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

    def title_only(self) -> Paper:
        """The cited paper known by its title alone (an export of a paper no table holds)."""
        return Paper(self.paper_id, self.title, "")


# Paper metadata that `Answer.to_dict` gives each source, beside its id, title and scores.
_PAPER_FIELDS = ("authors", "year", "venue", "url", "doi", "source")


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
        """The one JSON-ready form of an answer, used by `rag ask --json`, the UI's `/ask` API,
        the MCP `answer` tool and the eval's results.json. `sources` carry each paper's
        metadata (authors, year, venue, url, doi, source); `citations` carry paper ids, and
        `message` is the answer as an assistant turn to send back in `history`, so a
        follow-up question is restricted to these papers."""
        return {
            "question": self.question, "text": self.text, "abstained": self.abstained, "answerer": self.answerer,
            "citations": [asdict(c) for c in self.citations],
            "sources": [{"paper_id": s.paper_id, "title": s.title, "score": s.score, "dense": s.dense, "bm25": s.bm25,
                         **{k: getattr(s.paper, k) for k in _PAPER_FIELDS}} for s in self.sources],
            "notes": list(self.notes), "unsupported": list(self.unsupported),
            "removed_markers": list(self.removed_markers), "message": self.as_message(),
        }

    def as_message(self) -> dict:
        """This answer as an assistant turn of `history`, its citations carried as data."""
        return {"role": "assistant", "content": self.text,
                "citations": [{"n": c.n, "paper_id": c.paper_id, "title": c.title} for c in self.citations]}


@dataclass(frozen=True)
class Filters:
    """Metadata limits on what a question may retrieve: applied inside both retrievers (Chroma's
    `where=` and the lexical index), never after ranking, so a filter cannot drop good papers
    that a cut-off would have kept. `None` means "no limit" for each field.

    `year` is inclusive on both ends; `source` is the file name a paper was ingested from (as
    `rag stats` lists it); `author` matches one author's name, case-insensitively; `category`
    is an arXiv category such as "cs.CV".
    """

    year: tuple[int, int] | None = None
    source: str | None = None
    author: str | None = None
    category: str | None = None

    @property
    def empty(self) -> bool:
        return self.year is None and not self.source and not self.author and not self.category

    def describe(self) -> str:
        """`year 2020-2024, source my.bib`: for messages such as "no paper matches ..."."""
        parts = []
        if self.year is not None:
            lo, hi = self.year
            parts.append(f"year {lo}" if lo == hi else f"year {lo}-{hi}")
        parts += [f"{name} {value}" for name, value in
                  (("source", self.source), ("author", self.author), ("category", self.category)) if value]
        return ", ".join(parts)

    @staticmethod
    def parse_year(text: str) -> tuple[int, int]:
        """`"2020-2024"` -> (2020, 2024); `"2021"` -> (2021, 2021); `"2020-"`/`"-2019"` open-ended
        (bounded by 0 and 9999). Raises ValueError with the reason."""
        raw = text.strip()
        lo, sep, hi = raw.partition("-")
        try:
            start = int(lo) if lo.strip() else 0
            end = (int(hi) if hi.strip() else 9999) if sep else start
        except ValueError:
            raise ValueError(f"year must look like 2021, 2020-2024, 2020- or -2019, not {text!r}") from None
        if start > end:
            raise ValueError(f"year range {text!r} is empty: {start} is after {end}")
        return start, end
