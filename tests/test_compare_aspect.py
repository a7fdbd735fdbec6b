"""Compare answers quote the sentence that states the asked aspect (rag.extractive): the
papers' names are taken out of the question by the rules that found them, words of the
papers' titles count less, a fixed number of sentences is quoted for the aspect, and sentence
vectors are embedded once per sentence text."""

from __future__ import annotations

import numpy as np

from rag.extractive import Extractive, SentenceScorer, _without_names, nearest_aspect
from rag.models import Paper, Source
from rag.text import Idf, terms

GATED = Paper(paper_id="g", title="Gated Mixture Networks for Speech Enhancement", abstract="")
HOPF = Paper(paper_id="h", title="HopfNet: Oscillator Memory for Denoising", abstract="")


def test_a_paper_asked_for_by_the_head_of_its_title_loses_the_head():
    # The question names the first paper by the words before "for", the second by its short
    # name: neither is what the question asks about the pair.
    aspect = _without_names("How do Gated Mixture Networks and HopfNet suppress background noise?", [GATED, HOPF])
    assert "gated" not in aspect.lower() and "hopfnet" not in aspect.lower()
    assert "suppress background noise" in aspect


def test_a_full_title_quoted_inside_the_question_is_removed():
    aspect = _without_names("'HopfNet: Oscillator Memory for Denoising' versus Gated Mixture Networks: "
                            "which one is causal?", [GATED, HOPF])
    assert "oscillator" not in aspect.lower() and "which one is causal?" in aspect


SPEECH = [
    "Speech enhancement removes noise from speech recordings.",  # the topic, in the title's words
    "Speech enhancement networks are widely used in hearing aids.",
    "A gate computed from the noisy spectrum mixes two expert masks for each frame.",  # the mechanism
    "Experiments on VoiceBank show gains of 0.3 PESQ.",
]


def _idf(sentences: list[str]) -> Idf:
    return Idf.of([terms(s) for s in sentences])


def test_title_words_count_less_than_the_asked_mechanism():
    question = "How does speech enhancement mix the outputs?"
    plain = SentenceScorer(question, _idf(SPEECH))
    topical = SentenceScorer(question, _idf(SPEECH), topic=terms(GATED.title))
    # On every word alike, the sentence that repeats the topic ties with the mechanism;
    # with the title's words at half weight the mechanism leads.
    assert plain(SPEECH[0], 0) >= plain(SPEECH[2], 2)
    assert topical(SPEECH[2], 2) > topical(SPEECH[0], 0)


def test_nearest_aspect_quotes_as_many_sentences_when_meaning_and_terms_agree():
    sents = ["s0 alpha", "s1 beta", "s2 alpha beta", "s3 gamma"]
    scorer = SentenceScorer("alpha beta", _idf(sents))  # by terms: s2, then s0 / s1, then s3
    # The closest in meaning is s3, which no term picks: two by terms and s3.
    assert nearest_aspect(sents, scorer, np.array([0.1, 0.2, 0.3, 0.9])) == ["s0 alpha", "s2 alpha beta", "s3 gamma"]
    # The closest in meaning is s2, the best by terms too: the third by terms fills its place.
    assert len(nearest_aspect(sents, scorer, np.array([0.1, 0.2, 0.9, 0.3]))) == 3
    # Without an embedder, the two best by terms.
    assert len(nearest_aspect(sents, scorer)) == 2


ABSTRACTS = {
    "g": SPEECH,
    "h": ["We propose HopfNet.", "Oscillators store a memory of the clean signal.", "Results improve on DNS."],
    "k": ["We present a third denoiser.", "It filters each band with a learned kernel.", "Tests on DNS agree."],
}
TITLES = {"g": GATED.title, "h": HOPF.title, "k": "Kernel Denoisers"}


def test_a_sentence_is_embedded_once_whichever_pair_it_comes_with(embedder):
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return embedder.embed(texts)

    answerer = Extractive(ABSTRACTS.__getitem__, _idf([s for v in ABSTRACTS.values() for s in v]), embed=counting)

    def ask(a: str, b: str):
        pair = [Source(paper=Paper(paper_id=p, title=TITLES[p], abstract=" ".join(ABSTRACTS[p])), score=1.0)
                for p in (a, b)]
        return answerer("How do they remove noise?", pair, "compare")

    def embedded(since: int) -> list[str]:
        return [t for call in calls[since:] for t in call]

    ask("g", "h")
    assert len(embedded(0)) == 1 + len(SPEECH) + 3  # the aspect and every sentence of both
    seen = len(calls)
    ask("g", "k")
    # A new pair that shares a paper: the aspect and the new paper's sentences only.
    assert sorted(embedded(seen)) == sorted(["How do they remove noise?", *ABSTRACTS["k"]])
    seen = len(calls)
    ask("h", "k")
    assert calls[seen:] == [["How do they remove noise?"]]  # both known: only the aspect, in one call
