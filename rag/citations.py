"""Citations: an answer's claims, and which of their markers the cited abstracts support.

`claims` splits an answer into sentences that keep their markers; `validate` keeps only the
markers that name a retrieved paper whose abstract supports the sentence, removes the
sentences left without support, renumbers the markers and quotes the supporting abstract
sentence. The LLM answerer checks its output with `validate`;
the eval scores answers with `claims` and the same support test, so both count alike.
Pure functions: no model, no store.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rag.models import Citation, Source
from rag.text import markers, sentences, support_score

_BRACKETED_NUMBER = re.compile(r"\[(\d+)\]")


def unmarked(sentence: str) -> str:
    """An abstract sentence fit to quote in an answer: a bracketed number the abstract itself
    holds (a reference, or planted text) becomes "(7)", so it cannot pass for a citation marker.
    `unmarked("as shown in [7].")` -> `"as shown in (7)."`"""
    return _BRACKETED_NUMBER.sub(r"(\1)", sentence)


_MARKER_LIST = re.compile(r"\[(\d+(?:\s*,\s*\d+)+)\]")  # "[1, 3]" -> "[1][3]"
_MARKER_WS = re.compile(r"\s*\[(\d+)\]")  # a marker with the space before it, removed together
# A sentence ends at . ! or ? (plus any markers right after it) before whitespace and a
# character that is not lower-case ("e.g. the" and "96.8%" do not end one), or at line end.
_BOUNDARY = re.compile(r"[.!?](?:\s*\[\d+\])*(?=\s+[^a-z\s]|\s*$)")
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}")


def claims(text: str) -> list[str]:
    """The answer split into sentences, each with the markers that follow it; joining the
    pieces gives back `text` exactly, so markers can be rewritten in place.

    `claims("ViT uses patches [1]. CvT adds convolutions. [2]\\nDone")` ->
    `["ViT uses patches [1].", " CvT adds convolutions. [2]", "\\n", "Done"]`
    """
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        start = 0
        for m in _BOUNDARY.finditer(line):
            out.append(line[start:m.end()])
            start = m.end()
        if start < len(line):
            out.append(line[start:])
    return out


class Validation(NamedTuple):
    text: str  # unsupported sentences removed; markers: only supported ones, numbered 1..k by first appearance
    citations: list[Citation]
    removed_markers: list[int]  # markers (as the model wrote them) that pointed to no source
    unsupported: list[str]  # sentences removed from the text: nothing sent supports them


_SENTENCE_END = re.compile(r"[.!?]\W*$")  # a claim, not a heading or a list label such as "Papers:"


def validate(text: str, used: list[Source], threshold: float = 0.5) -> Validation:
    """Keep only the sentences and citations the sources support; renumber the citations.

    For each sentence carrying markers, each marker `[n]` must name a source (1..len(used)),
    else it is removed and listed in `removed_markers`; and `support_score(sentence, title +
    " " + abstract)` (share of the sentence's content-word stems found in the cited paper)
    must reach `threshold`, else the marker is removed. A sentence left with no supported
    marker is removed from the text, as is one that carried no marker and that no source
    supports (an LLM's aside: "Bananas are yellow fruit."); both are listed in `unsupported`.
    A sentence that asserts nothing (no content words) and layout (headings, list labels
    ending in ":", line breaks) stay. Kept markers are renumbered densely by first
    appearance, and each citation quotes the abstract sentence that best supports the claims
    citing it.

    Worked example, with used = [ViT paper, CvT paper]:
        "CvT introduces convolutions into vision transformers [2]. It beats every model on speech [1]. See [5]."
    -> text "CvT introduces convolutions into vision transformers [1].",
       citations [Citation(n=1, paper_id=<CvT>, quote=<the CvT abstract's sentence on convolutions>)],
       removed_markers [5], unsupported ["It beats every model on speech.", "See."]
    (the ViT abstract says nothing of models or speech, and there is no source 5).
    """
    text = _MARKER_LIST.sub(lambda m: "".join(f"[{n.strip()}]" for n in m.group(1).split(",")), text)
    pieces = claims(text)
    kept: list[set[int] | None] = []  # per piece: its supported markers, or None when the piece goes
    removed: list[int] = []
    unsupported: list[str] = []
    claims_citing: dict[int, list[str]] = {}
    for piece in pieces:
        ok: set[int] = set()
        claim = " ".join(_MARKER_WS.sub("", piece).split())
        cited = list(dict.fromkeys(markers(piece)))
        for n in cited:
            if not 1 <= n <= len(used):
                if n not in removed:
                    removed.append(n)
                continue
            src = used[n - 1]
            if support_score(claim, f"{src.title} {src.paper.abstract}") >= threshold:
                ok.add(n)
                claims_citing.setdefault(n, []).append(claim)
        is_claim = bool(_SENTENCE_END.search(claim))
        baseless = not ok and (bool(cited) or not any(
            support_score(claim, f"{src.title} {src.paper.abstract}") >= threshold for src in used))
        if is_claim and baseless:
            if claim not in unsupported:
                unsupported.append(claim)
            kept.append(None)
        else:
            kept.append(ok)

    order = list(dict.fromkeys(n for piece, ok in zip(pieces, kept) if ok for n in markers(piece) if n in ok))
    renumber = {old: new for new, old in enumerate(order, start=1)}

    def rewrite(piece: str, ok: set[int] | None) -> str:
        if ok is None:
            return ""

        def one(m: re.Match) -> str:
            n = int(m.group(1))
            if n not in ok:
                return ""
            return m.group(0)[: m.group(0).index("[")] + f"[{renumber[n]}]"

        return _MARKER_WS.sub(one, piece)

    out = _SPACES.sub(" ", "".join(rewrite(p, ok) for p, ok in zip(pieces, kept))).strip()
    citations = [_cite(renumber[old], used[old - 1], claims_citing[old]) for old in order]
    return Validation(out, citations, removed, unsupported)


def _cite(n: int, src: Source, cited_for: list[str]) -> Citation:
    """Citation `n` of `src`, quoting the abstract sentence that best supports any of the
    claims that cite it (the earlier sentence on ties)."""
    sents = sentences(src.paper.abstract) or [src.paper.abstract]
    best = max(range(len(sents)), key=lambda i: (max(support_score(c, sents[i]) for c in cited_for), -i))
    return Citation(n=n, paper_id=src.paper_id, title=src.title, quote=unmarked(sents[best]))
