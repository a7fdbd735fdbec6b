"""Split abstracts into chunks that fit the embedding model's window, title included.

Uses llama-index's `SentenceSplitter` in its metadata-aware mode: the title line is the
"metadata" whose tokens are subtracted from the budget, so `title + passage` never exceeds
`chunk_size` word pieces and the model never silently truncates a chunk. A title longer than
half the budget (hundreds of CJK characters or symbols, one word piece each) is shortened
in the chunk text, with an ellipsis, so that a passage always fits; the paper keeps its title.
"""

from __future__ import annotations

import hashlib

from rag.embedding import TokenCounter
from rag.models import Chunk, Paper


def chunk_id(paper_id: str, text: str) -> str:
    """Content-addressed id: the same text of the same paper always gets the same id, so an
    interrupted ingest re-run finds what it already embedded and upserts never duplicate."""
    return f"{paper_id}:{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def embedded_text(title: str, passage: str) -> str:
    """What gets embedded and searched: the title line, then the passage."""
    return f"{title}\n{passage}"


class Chunker:
    """`Chunker(counter, 254, 32).chunks(paper)` -> the paper's chunks, in order."""

    def __init__(self, counter: TokenCounter, chunk_size: int, chunk_overlap: int):
        window = getattr(counter, "window", 256)  # a counter handed in by a test may not say
        if chunk_size + 2 > window:
            raise ValueError(f"chunk_size {chunk_size} + 2 special tokens exceeds the model window {window}")
        self.counter = counter
        self.chunk_size = chunk_size
        self.max_title_tokens = chunk_size // 2
        # Imported here: llama-index takes seconds to import, and a no-op ingest never chunks.
        from llama_index.core.node_parser import SentenceSplitter

        self._splitter = SentenceSplitter(
            chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 4),
            tokenizer=counter.tokens,
        )

    def chunks(self, paper: Paper) -> list[Chunk]:
        """The paper's chunks in order. A passage repeated word for word (an abstract that
        repeats itself) is kept once: it would add nothing, and its id would collide."""
        title = self.title_prefix(paper.title)
        passages = self._splitter.split_text_metadata_aware(paper.abstract, metadata_str=title + "\n")
        out: list[Chunk] = []
        seen: set[str] = set()
        for passage in passages:
            text = embedded_text(title, passage)
            cid = chunk_id(paper.paper_id, text)
            if cid in seen:
                continue
            seen.add(cid)
            out.append(Chunk(chunk_id=cid, paper_id=paper.paper_id, index=len(out), text=text))
        return out

    def title_prefix(self, title: str) -> str:
        """`title`, or its longest prefix (cut at a space when there is one) plus "…" that
        fits in `max_title_tokens` word pieces."""
        if self.counter.count(title) <= self.max_title_tokens:
            return title
        lo, hi = 0, len(title)  # binary search: the longest prefix that fits with the ellipsis
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.counter.count(title[:mid] + "…") <= self.max_title_tokens:
                lo = mid
            else:
                hi = mid - 1
        cut = title[:lo]
        if " " in cut.strip():
            cut = cut.rstrip().rsplit(" ", 1)[0]
        return cut.rstrip() + "…"
