"""Which retrieved papers an answer uses, given what the question asks.

`choose(query, ranking, ...)` turns a ranking into the papers to answer from:
- a comparison uses the two papers the question names, ranked or not;
- a follow-up restricted to the previous answer's papers keeps every one the new question
  matches (they were already judged relevant);
- a topic question whose evidence concentrates on one paper is about that paper (`focus`:
  a fact; a yes/no or a first pass far ahead of the rest: that paper alone);
- otherwise the relative cut-off (`rag.retrieval.select`) keeps the papers whose score is
  close enough to the best one (closer for a narrow yes/no: `YES_NO_CLOSE`), and a fact
  question that names its paper by title or short name is answered from that paper first.
Deciding whether to answer at all is rag/abstain.py's; this module only picks papers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from rag import numbers
from rag.models import Paper, Source
from rag.question_model import Kind
from rag.questions import Query
from rag.retrieval import Ranking, select
from rag.settings import Settings
from rag.text import terms

MAX_COMPARED = 5  # papers side by side in one comparison ("Compare CvT, ConViT and CrossViT")
# Candidates a superlative question compares numbers across: the cut-off keeps the papers
# closest to the question's words, but the best number may be in a paper a little further down.
SUPERLATIVE_POOL = 15


@dataclass
class Evidence:
    """What retrieval found for a question: the papers to use, and whether to abstain."""

    query: Query
    kind: Kind  # the answer's shape: the question's kind, or a list for a multi-paper follow-up
    ranked: list[Source]
    first: list[Source]  # first-pass ranking, before feedback: the evidence for abstaining
    used: list[Source]
    abstain: bool = False

    @property
    def question(self) -> str:
        return self.query.text

    @property
    def follow_up(self) -> bool:
        return self.query.follow_up


# A question read as a topic is about one paper when the evidence concentrates on it: in the
# ranking searched as a topic (with feedback), the second paper scores under this share of the
# first. On the main, generalisation and both realistic sets no question with several gold
# papers falls under it (the lowest ratio is 0.63); a long question that describes one paper's
# result, which the model may read as a list, does.
CONCENTRATED = 0.6
# A topic question whose first-pass ranking (before pseudo-relevance feedback, which pulls in
# papers resembling the top one) has its second paper under this share of the first is about
# that paper: "Is there a paper on chess?" finds the one paper on chess (second at 0.21), and
# feedback would add papers that classify other images. On the main, generalisation and
# realistic sets every topic question with several gold papers has its second paper at 0.47
# or more.
FIRST_PASS_CONCENTRATED = 0.4

# A yes/no answer claims that each paper it names does what was asked ("Yes: 2 papers do").
# When the first pass peaks (its second paper under this share of the first), the question is
# narrow, and the answer names only the papers scoring at least YES_NO_CLOSE of the best; a
# broad yes/no ("Are there studies on inputs crafted to fool classifiers?", second paper at
# 0.93) keeps the list's cut-off. On the opened realistic sets' 20 answered yes/no questions with
# a gold paper the named papers' precision rose 0.56 -> 0.72 at the same recall; no
# generalisation question moved (docs/quality.md, "fifth round").
YES_NO_PEAKED = 0.6
YES_NO_CLOSE = 0.7


def concentrated(ranked: list[Source], share: float = CONCENTRATED) -> bool:
    """One paper far above the rest: `concentrated([<1.0>, <0.4>, ...])` -> True."""
    return len(ranked) == 1 or (len(ranked) > 1 and ranked[0].score > 0
                                and ranked[1].score < share * ranked[0].score)


def focus(query: Query, ranking: Ranking) -> tuple[Query, Ranking]:
    """The question as its evidence reads it. Read as a topic, but one paper stands far above
    the rest even with feedback: the question describes that paper, and is answered as a fact
    from the first pass, as a fact question is searched. A confident yes/no keeps its shape
    ("Yes: 1 paper ..."); `choose` answers it from that one paper."""
    if query.kind.topical and (query.uncertain or query.kind != Kind.EXISTS) and query.restrict is None \
            and not query.single and concentrated(ranking.sources):
        return replace(query, kind=Kind.FACT), Ranking(ranking.first, ranking.first)
    return query, ranking


def _unranked(paper_id: str, ranked: list[Source], paper: Callable[[str], Paper | None]) -> Source | None:
    """The paper's entry in the ranking, or a zero-score entry when retrieval missed it; None
    when the paper is no longer in the index (removed while the question was answered)."""
    found = next((src for src in ranked if src.paper_id == paper_id), None)
    if found is not None:
        return found
    record = paper(paper_id)
    return None if record is None else Source(paper=record, score=0.0)


def _entries(paper_ids, ranked: list[Source], paper: Callable[[str], Paper | None]) -> list[Source]:
    """`_unranked` for each id, the removed papers left out."""
    return [src for pid in paper_ids if (src := _unranked(pid, ranked, paper)) is not None]


def choose(query: Query, ranking: Ranking, s: Settings, paper: Callable[[str], Paper],
           naming: Callable[[list[str]], list[str]] | None = None) -> list[Source]:
    """The papers to answer `query` from, best first; `paper(id)` looks a paper up, and
    `naming(terms)` lists the papers whose text holds those terms, best first (the lexical index).

    With a ranking scored [1.0, 0.9, 0.2] and `s.relative_cutoff` 0.3, a list question uses
    the first two; "How do ConViT and CvT differ?" uses ConViT and CvT whatever their rank (up
    to MAX_COMPARED named papers: "Compare CvT, ConViT and CrossViT" uses three), and so does
    "How does the first compare with the second?" after an answer that listed them.
    """
    ranked = ranking.sources
    if query.kind == "compare":  # the papers named, or picked by position in the earlier answer
        # Beyond two, only papers named by title or short name: a method name that several
        # abstracts use ("ConvNeXt") would add a paper nobody asked about.
        compared = query.titled if len(query.titled) >= 2 else \
            query.named[:2] if len(query.named) >= 2 else query.restrict or ()
        return _entries(compared[:MAX_COMPARED], ranked, paper)
    # A number the question asks for ("Give me 3 papers ...") caps the list; the cut-off still
    # decides relevance, so fewer may come back, never papers it judged irrelevant.
    most = min(s.max_papers, query.limit or s.max_papers)
    if query.restrict is not None:
        # "What did they find?" asks about every earlier paper, in the earlier answer's order
        # (so "the first three" keeps its numbering); "Which of those ..." chooses.
        if query.each:
            return _entries(query.restrict[:most], ranked, paper)
        return select(ranked, s.relative_cutoff, 1, most)
    if query.kind == Kind.SUPERLATIVE and not query.single:
        pool = ranked[:max(most, SUPERLATIVE_POOL)]
        benchmark = [t for name in numbers.benchmarks_in(query.asked) for t in terms(name)]
        if benchmark and naming is not None:
            # The best number on a named benchmark may be in a paper that names it once, which
            # the question's other words ("top accuracy") rank low: every paper naming the
            # benchmark competes, after the ranked ones.
            seen = {src.paper_id for src in pool}
            pool += _entries([pid for pid in naming(benchmark) if pid not in seen][:SUPERLATIVE_POOL], ranked, paper)
        return pool
    if query.kind.topical and not query.titled and concentrated(ranking.first, FIRST_PASS_CONCENTRATED):
        return _entries([ranking.first[0].paper_id], ranked, paper)
    narrow_yes_no = query.kind == Kind.EXISTS and concentrated(ranking.first, YES_NO_PEAKED)
    cutoff = max(s.relative_cutoff, YES_NO_CLOSE) if narrow_yes_no else s.relative_cutoff
    used = select(ranked, cutoff, min(s.min_papers, most), most)
    return _led_by(query.titled[0], used, ranked, paper) if query.titled else used


def _led_by(paper_id: str, sources: list[Source], ranked: list[Source], paper: Callable[[str], Paper]) -> list[Source]:
    """`sources` with the paper `paper_id` first (its ranking entry, or a zero-score one), the
    rest in their order."""
    return _entries([paper_id], ranked, paper) + [src for src in sources if src.paper_id != paper_id]


def named_first(query: Query, ranked: list[Source], paper: Callable[[str], Paper]) -> list[Source]:
    """The ranking as the answer sees it: a paper a fact question names by title or short name
    (`query.titled`) comes first, as it does among the papers used, whatever its retrieval
    rank; the rest keep their order.

    For "What top-1 accuracy does SimMIM report?" with SimMIM ranked third -> SimMIM, then the
    first and second.
    """
    if not query.single or query.restrict is not None:
        return ranked
    return _led_by(query.titled[0], ranked, ranked, paper)


def shape(query: Query, used: list[Source]) -> Kind:
    """The answer's shape: a restricted follow-up that keeps several papers is a list, unless
    it asks something a list does not answer (a comparison, a yes/no, a superlative)."""
    one_paper_kinds = (Kind.FACT, Kind.HOW, Kind.ORIGIN)
    return Kind.LIST if query.restrict is not None and len(used) > 1 and query.kind in one_paper_kinds \
        else query.kind
