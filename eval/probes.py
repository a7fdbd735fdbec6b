"""Probes built from the corpus itself: question kinds no hand-written set covers enough.

The question sets (eval/*.jsonl) are written by people and checked by hand, so they are small.
Two failure kinds need many questions to show, and the corpus can write them with a known
answer:
- **names** ("Which papers use VGG?"): capitalised names (an inner capital: VGG, DeiT, MSCOCO)
  that 3-12 abstracts contain; the papers containing the name are the answer. An embedder has
  no meaning for most of them, so this measures how well BM25's exact match is kept.
- **known item** ("What does the paper '<title>' propose?"): the quoted paper must come first.
- **follow-ups**: after "Which papers use <name>?", a second question narrows the answer to the
  papers that contain another name, worded six ways ("Which of those use <Y>?", "Which use
  <Y>?", "Any that use <Y>?", ...); the answer must keep to the earlier papers and find the
  ones containing it. Then "Summarise the first one." and "And the second?" must give the
  first answer's second paper.

`python -m eval.probes [--model M] [--out FILE]` prints the figures (and writes them as JSON).
Samples are drawn with fixed seeds, so two runs over the same index ask the same questions.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

NAME = re.compile(r"\b[A-Z][A-Za-z]*[A-Z][A-Za-z0-9-]*\b")  # an inner capital: VGG, DeiT, ResNet-50
NAME_PAPERS = (3, 12)  # how many abstracts a probed name is in
NAMES, KNOWN_ITEMS, FOLLOW_UPS = 40, 60, 30  # questions per probe
# Ways a narrowing follow-up is worded: with a pointer back ("those", "only the ones") and
# without a subject of its own ("Which use ...").
NARROWING = ("Which of those use {}?", "Which use {}?", "Do any mention {}?", "Any that use {}?",
             "Only the ones with {}", "And which of them report {}?")


def _probe_names(pipe) -> tuple[dict[str, str], list[str]]:
    """Each paper's title + abstract by id, and the names (an inner capital) that 3-12 of them
    contain, sorted: what the names and follow-up probes draw from."""
    texts = {pid: f"{p.title} {p.abstract}" for pid, p in pipe.index.papers.items()}
    counts = Counter(w for text in texts.values() for w in set(NAME.findall(text)))
    names = sorted(w for w, c in counts.items() if NAME_PAPERS[0] <= c <= NAME_PAPERS[1] and len(w) >= 3)
    return texts, names


def name_probe(pipe, n: int = NAMES, seed: int = 0) -> dict[str, float]:
    """R-precision (share of the name's papers among the first as many), recall@20 and the
    share declined, over `n` names asked as "Which papers use <name>?"."""
    texts, names = _probe_names(pipe)
    r_prec, r20, declined = [], [], []
    for name in sorted(random.Random(seed).sample(names, min(n, len(names)))):
        having = {pid for pid, text in texts.items() if re.search(rf"\b{re.escape(name)}\b", text)}
        ev = pipe.gather(f"Which papers use {name}?", None, pipe.settings)
        ids = [src.paper_id for src in ev.ranked]
        r_prec.append(len(having & set(ids[:len(having)])) / len(having))
        r20.append(len(having & set(ids[:20])) / len(having))
        declined.append(ev.abstain)
    return {"questions": len(r_prec), "r_precision": _mean(r_prec), "recall@20": _mean(r20),
            "declined": _mean(declined)}


def known_item_probe(pipe, n: int = KNOWN_ITEMS, seed: int = 1) -> dict[str, float]:
    """Share of `n` papers ranked first, and the MRR, when asked for by quoted title."""
    ids = random.Random(seed).sample(sorted(pipe.index.papers), n)
    reciprocal = []
    for pid in ids:
        ev = pipe.gather(f"What does the paper '{pipe.index.paper(pid).title}' propose?", None, pipe.settings)
        ranked = [src.paper_id for src in ev.ranked]
        reciprocal.append(1.0 / (ranked.index(pid) + 1) if pid in ranked else 0.0)
    return {"questions": len(reciprocal), "first": _mean([r == 1.0 for r in reciprocal]), "mrr": _mean(reciprocal)}


def follow_up_probe(pipe, n: int = FOLLOW_UPS, seed: int = 2) -> dict[str, float]:
    """Conversations over the corpus's names (see the module docstring). For the narrowing
    question: citation precision and recall against the earlier answer's papers that contain the
    second name, and the share that kept to the earlier papers; for "And the second?" after a
    one-paper summary, the share that cite exactly the first answer's second paper."""
    texts, names = _probe_names(pipe)
    rng = random.Random(seed)
    precision, recall, kept, second = [], [], [], []
    for name in rng.sample(names, len(names)):
        if len(precision) == n:
            break
        question = f"Which papers use {name}?"
        first = pipe.answer(question)
        listed = [c.paper_id for c in first.citations]
        inner = Counter(w for pid in listed for w in set(NAME.findall(texts.get(pid, ""))) if w != name)
        narrower = sorted(w for w, c in inner.items() if 0 < c < len(listed) and len(w) >= 3)
        if first.abstained or len(listed) < 2 or not narrower:
            continue
        other = rng.choice(narrower)
        gold = {pid for pid in listed if re.search(rf"\b{re.escape(other)}\b", texts[pid])}
        history = [{"role": "user", "content": question}, first.as_message()]
        wording = NARROWING[len(precision) % len(NARROWING)]
        cited = {c.paper_id for c in pipe.answer(wording.format(other), history).citations}
        precision.append(len(cited & gold) / len(cited) if cited else 0.0)
        recall.append(len(cited & gold) / len(gold))
        kept.append(bool(cited) and cited <= set(listed))
        summary = pipe.answer("Summarise the first one.", history)
        turns = history + [{"role": "user", "content": "Summarise the first one."}, summary.as_message()]
        second.append([c.paper_id for c in pipe.answer("And the second?", turns).citations] == [listed[1]])
    return {"conversations": len(precision), "narrowing_precision": _mean(precision),
            "narrowing_recall": _mean(recall), "kept_to_earlier": _mean(kept), "second_after_summary": _mean(second)}


def _mean(values) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    from rag.pipeline import build_pipeline
    from rag.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="embedding model (default: RAG_EMBED_MODEL or the default model)")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    settings = Settings(**({"embed_model": args.model} if args.model else {}))
    pipe = build_pipeline(settings)
    figures = {"embed_model": settings.embed_model, "names": name_probe(pipe), "known_item": known_item_probe(pipe),
               "follow_ups": follow_up_probe(pipe)}
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
