"""Export of an answer: Markdown with numbered references, and the cited papers as BibTeX that
bibtexparser (and the project's own BibTeX reader) parse back to the same fields."""

from __future__ import annotations

from urllib.parse import unquote

import bibtexparser
import pytest

from rag.export import entry_key, to_bibtex
from rag.formats.bibtex import read_bibtex
from rag.models import Answer, Citation, Paper, Source
from rag.render import to_markdown

VIT = Paper("id:vit", "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
            "We show that 95% of the {cost} goes & a pure transformer applied to image patches — after "
            "Schölkopf — works; loss is $x^2$.", authors="Alexey Dosovitskiy, Lucas Beyer, Bernhard Schölkopf",
            year=2021, url="https://arxiv.org/abs/2010.11929", venue="International Conference on Learning "
            "Representations", doi="10.48550/arXiv.2010.11929")
SAME_KEY = Paper("id:two", "Image Transformers Revisited", "A second abstract about image transformers, long "
                 "enough to be one.", authors="Alexey Dosovitskiy", year=2021, venue="Journal of Machine Learning")
NO_META = Paper("t-x", "The Untitled Work", "An abstract without any metadata at all, only text to read.")


def _answer(*papers: Paper) -> Answer:
    cites = [Citation(i, p.paper_id, p.title, p.abstract[:30]) for i, p in enumerate(papers, 1)]
    text = " ".join(f"Claim [{i}]." for i in range(1, len(papers) + 1))
    return Answer("Which papers apply transformers to images?", text, cites,
                  sources=[Source(p, 1.0 / i) for i, p in enumerate(papers, 1)])


def test_bibtex_parses_back_with_the_same_fields(tmp_path):
    answer = _answer(VIT, SAME_KEY, NO_META)
    text = to_bibtex(answer)
    library = bibtexparser.parse_string(text)
    assert not library.failed_blocks
    keys = [e.key for e in library.entries]
    assert keys == ["dosovitskiy2021image", "dosovitskiy2021imagea", "anonuntitled"]
    vit = library.entries[0]
    assert vit.entry_type == "inproceedings"
    assert vit["booktitle"] == VIT.venue and vit["doi"] == VIT.doi and vit["url"] == VIT.url
    assert vit["year"] == "2021"
    assert library.entries[1].entry_type == "article" and library.entries[1]["journal"] == SAME_KEY.venue
    assert library.entries[2].entry_type == "misc"
    assert r"Sch\"olkopf" in vit["author"] and r"95\%" in vit["abstract"]

    # Our own reader (LaTeX -> Unicode) gets the original text back.
    path = tmp_path / "cited.bib"
    path.write_text(text, encoding="utf-8")
    skipped: list = []
    records = [r for _, r in read_bibtex(path, skipped)]
    assert not skipped
    assert records[0]["title"] == VIT.title
    assert records[0]["authors"] == ["Alexey Dosovitskiy", "Lucas Beyer", "Bernhard Schölkopf"]
    assert "95% of the {cost} goes & a pure" in records[0]["abstract"] and "Schölkopf" in records[0]["abstract"]
    assert records[0]["doi"] == VIT.doi


def test_keys_are_stable_and_ascii():
    assert entry_key(VIT) == "dosovitskiy2021image"
    assert entry_key(Paper("x", "Über die Ölförderung", "", authors="Jürgen Müller", year=1999)) == "muller1999uber"
    assert entry_key(VIT) == entry_key(VIT)


def test_markdown_has_numbered_references():
    md = to_markdown(_answer(VIT, SAME_KEY), document=True)
    assert md.startswith("## Which papers apply transformers to images?")
    assert "Claim [1]. Claim [2]." in md
    refs = md.split("### References\n\n")[1].strip().split("\n\n")
    assert refs[0].startswith("[1] Alexey Dosovitskiy, Lucas Beyer, Bernhard Schölkopf (2021). *An Image is Worth")
    assert refs[0].endswith("<https://arxiv.org/abs/2010.11929>")
    assert refs[1].startswith("[2] Alexey Dosovitskiy (2021). *Image Transformers Revisited*. Journal of")


def test_no_citations_no_entries():
    abstained = Answer("cake?", "The corpus does not cover this.", abstained=True, sources=[Source(VIT, 0.1)])
    assert to_bibtex(abstained) == ""
    assert "References" not in to_markdown(abstained, document=True)


def test_ui_download_files_are_bounded(tmp_path, monkeypatch):
    """A long-running UI writes two download files per answer; only the newest EXPORTS_KEPT
    answers' files stay on disk, and the newest is complete."""
    from ui import app

    monkeypatch.setattr(app, "EXPORTS_KEPT", 3)
    answer = _answer(VIT, NO_META)
    papers = {p.paper_id: p for p in (VIT, NO_META)}
    for _ in range(7):
        md, bib = app.export_files(answer, papers, root=tmp_path)
    kept = list(tmp_path.iterdir())
    assert len(kept) == 3
    assert open(md, encoding="utf-8").read() == to_markdown(answer, papers, document=True)
    assert bibtexparser.parse_string(open(bib, encoding="utf-8").read()).entries


def test_one_author_splitter_for_export_filter_and_cards():
    """`rag.text.author_names` is the splitter of BibTeX export, the author filter's keys and
    the UI's cards. A semicolon separates surname-first names ("Doe, Jane; Smith, Bob"), whose
    comma is part of the name: the filter used to index "jane" and "doe" as two authors, so
    "Jane Doe" found nothing."""
    from rag.lexical import author_keys
    from rag.text import author_names
    from ui.render import _short_authors

    assert author_names("Ada Lovelace, Alan M. Turing and Li Wei") == ["Ada Lovelace", "Alan M. Turing", "Li Wei"]
    assert author_names("Doe, Jane; Smith, Bob") == ["Jane Doe", "Bob Smith"]
    assert author_names("Jane Doe; Bob Smith") == ["Jane Doe", "Bob Smith"]
    assert author_names("") == [] and author_names(None) == []
    assert author_keys("Doe, Jane; Smith, Bob") == ["jane doe", "doe", "bob smith", "smith"]
    assert _short_authors("Doe, Jane; Smith, Bob; Wei, Li; Ng, Andrew") == "Jane Doe, Bob Smith, Li Wei et al."
    paper = Paper("x", "Semicolons", "", authors="Doe, Jane; Smith, Bob", year=2020)
    assert entry_key(paper) == "doe2020semicolons"
    assert to_markdown(Answer("q", "A [1].", [Citation(1, "x", paper.title, "")], sources=[Source(paper, 1.0)]),
                       document=True).endswith("[1] Jane Doe, Bob Smith (2020). *Semicolons*.\n")


# Field values that broke the .bib: braces (balanced or not), an entry start, backslashes,
# LaTeX's specials, quotes and line breaks (issue 28, item 4).
HOSTILE = [
    "Eve }, title={Hacked",
    "x} @misc{evil, title={Injected",
    "Close {this} and {that",
    r"a \\ b \ c",
    '95% of #1 & $5 say "hi" at @home',
    "line one\nline two\r\n\nline three",
    "}}}{{{",
]


def _hostile_papers() -> list[Paper]:
    return [Paper(f"id:{i}", f"Title {text} end", f"Abstract {text} end.", authors=f"Ann {text}, Bo Li", year=2020,
                  venue=f"Journal {text}", url=f"https://example.org/{text}", doi=f"10.1/{text}")
            for i, text in enumerate(HOSTILE)]


def _flat(text: str) -> str:
    return " ".join(text.split())  # line breaks are whitespace to BibTeX: they come back as spaces


def test_bibtex_with_hostile_fields_parses_back_exactly_with_bibtexparser(tmp_path):
    papers = _hostile_papers()
    text = to_bibtex(_answer(*papers))
    library = bibtexparser.parse_string(text)
    assert not library.failed_blocks and len(library.entries) == len(papers)
    for entry in library.entries:
        assert set(entry.fields_dict) == {"title", "author", "year", "journal", "doi", "url", "abstract"}
        assert "@" not in entry.key and entry.entry_type == "article"
    path = tmp_path / "hostile.bib"
    path.write_text(text, encoding="utf-8")
    skipped: list = []
    records = [r for _, r in read_bibtex(path, skipped)]
    assert not skipped and len(records) == len(papers)
    for record, paper in zip(records, papers):
        assert record["title"] == _flat(paper.title)
        assert record["abstract"] == _flat(paper.abstract)
        assert record["venue"] == _flat(paper.venue)
        assert record["authors"][-1] == "Bo Li"


def test_bibtex_with_hostile_fields_parses_back_with_pybtex():
    pybtex = pytest.importorskip("pybtex.database")
    papers = _hostile_papers()
    data = pybtex.parse_string(to_bibtex(_answer(*papers)), "bibtex")
    assert len(data.entries) == len(papers)
    for entry in data.entries.values():
        assert set(entry.fields) == {"title", "year", "journal", "doi", "url", "abstract"}
        assert [str(p) for p in entry.persons["author"]][-1] == "Li, Bo"


def test_bibtex_urls_and_dois_stay_one_field():
    """URL and DOI are not LaTeX: what would break the entry is percent-encoded, so the link
    still leads to the same place."""
    papers = _hostile_papers()
    library = bibtexparser.parse_string(to_bibtex(_answer(*papers)))
    for entry, paper in zip(library.entries, papers):
        assert unquote(entry["url"]) == paper.url and unquote(entry["doi"]) == paper.doi
