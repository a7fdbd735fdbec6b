"""Split abstracts into chunks that fit the embedding model's window, title included.

Uses llama-index's `SentenceSplitter` in its metadata-aware mode: the title line is the
"metadata" whose tokens are subtracted from the budget, so `title + passage` never exceeds
`chunk_size` word pieces and the model never silently truncates a chunk.
"""

from __future__ import annotations

import hashlib

from llama_index.core.node_parser import SentenceSplitter

from rag.embedding import MAX_SEQ_TOKENS, TokenCounter
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
        if chunk_size + 2 > MAX_SEQ_TOKENS:
            raise ValueError(f"chunk_size {chunk_size} + 2 special tokens exceeds the model window {MAX_SEQ_TOKENS}")
        self.counter = counter
        self.chunk_size = chunk_size
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 4),
            tokenizer=counter.tokens,
        )

    def chunks(self, paper: Paper) -> list[Chunk]:
        # "\n" after the title costs no word piece, but count it as one for safety.
        title_line = paper.title + "\n"
        passages = self._splitter.split_text_metadata_aware(paper.abstract, metadata_str=title_line)
        out = []
        for i, passage in enumerate(passages):
            text = embedded_text(paper.title, passage)
            out.append(Chunk(chunk_id=chunk_id(paper.paper_id, text), paper_id=paper.paper_id, index=i, text=text))
        return out
