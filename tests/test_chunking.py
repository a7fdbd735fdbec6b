"""Chunks fit the model window, counted with the model's own tokenizer, and carry the title.

Word pieces are counted independently of `TokenCounter`: straight from the model's
tokenizer.json, with [CLS]/[SEP] added and truncation off, so an over-long chunk would show.
"""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer

from rag.chunking import Chunker, chunk_id
from rag.corpus import load_papers
from rag.embedding import MAX_SEQ_TOKENS, TokenCounter, model_path
from rag.models import Paper
from rag.settings import BUNDLED_CORPUS, Settings


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(model_path("all-MiniLM-L6-v2") / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    s = Settings()
    return Chunker(TokenCounter(s.embed_model), s.chunk_size, s.chunk_overlap)


def pieces(tokenizer: Tokenizer, text: str) -> int:
    """Word pieces the model sees, [CLS] and [SEP] included."""
    return len(tokenizer.encode(text, add_special_tokens=True).ids)


def test_model_window_is_256(embedder):
    assert embedder.model.max_seq_length == MAX_SEQ_TOKENS == 256


def test_bundled_chunks_fit_the_window(chunker, tokenizer, capsys):
    papers, _ = load_papers([BUNDLED_CORPUS])
    sizes = []
    for paper in papers:
        chunks = chunker.chunks(paper)
        assert chunks, paper.title
        assert [c.index for c in chunks] == list(range(len(chunks)))
        assert len({c.chunk_id for c in chunks}) == len(chunks)
        for c in chunks:
            assert c.paper_id == paper.paper_id
            assert c.text.startswith(paper.title + "\n")
            assert c.chunk_id == chunk_id(paper.paper_id, c.text)
            sizes.append(pieces(tokenizer, c.text))
        # Every sentence start of the abstract is in some chunk: nothing dropped.
        joined = " ".join(c.text.split("\n", 1)[1] for c in chunks)
        assert all(s[:40] in joined for s in paper.abstract.split(". ") if s)
    over = [n for n in sizes if n > MAX_SEQ_TOKENS]
    assert over == []
    with capsys.disabled():
        print(f"\n[chunking] {len(papers)} papers, {len(sizes)} chunks, largest {max(sizes)} word pieces "
              f"with [CLS]/[SEP] (window {MAX_SEQ_TOKENS}), {len(over)} truncated")


def test_chunking_is_deterministic(chunker):
    papers, _ = load_papers([BUNDLED_CORPUS])
    first = [c for p in papers[:50] for c in chunker.chunks(p)]
    again = [c for p in papers[:50] for c in chunker.chunks(p)]
    assert first == again


def test_megabyte_abstract_fits(chunker, tokenizer):
    """A 1 MB abstract is refused by the reader (see test_corpus); should one reach the
    chunker anyway, every chunk still fits and ids stay unique."""
    rng = random.Random(7)
    words = ("vision transformer convolution attention token patch image dataset training "
             "accuracy benchmark segmentation detection model layer").split()
    sentences = []
    while sum(map(len, sentences)) < 1_000_000:
        sentences.append(" ".join(rng.choice(words) for _ in range(rng.randint(6, 40))).capitalize() + ".")
    paper = Paper(paper_id="big", title="A Huge Abstract", abstract=" ".join(sentences))
    chunks = chunker.chunks(paper)
    assert len(chunks) > 500
    assert max(pieces(tokenizer, c.text) for c in chunks) <= MAX_SEQ_TOKENS
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_repeated_passages_get_one_chunk(chunker):
    paper = Paper(paper_id="rep", title="Echo", abstract="The same sentence, again and again. " * 400)
    chunks = chunker.chunks(paper)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize("title", ["視覺變換器" * 80, "Vision " * 200, "∑ α " * 150])
def test_long_token_titles_are_shortened_not_fatal(chunker, tokenizer, title):
    paper = Paper(paper_id="t", title=title, abstract="We study vision transformers on many datasets. " * 30)
    chunks = chunker.chunks(paper)
    assert chunks
    assert max(pieces(tokenizer, c.text) for c in chunks) <= MAX_SEQ_TOKENS
    prefix = chunks[0].text.split("\n", 1)[0]
    assert prefix.endswith("…") and title.startswith(prefix[:-1].rstrip())
    assert pieces(tokenizer, prefix) - 2 <= chunker.max_title_tokens


def test_chunk_size_beyond_window_refused():
    with pytest.raises(ValueError, match="exceeds the model window"):
        Chunker(TokenCounter("all-MiniLM-L6-v2"), 255, 0)
