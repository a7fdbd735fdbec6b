"""BibTeX and RIS exports of real reference managers (fixtures in tests/fixtures/formats, one
per manager's dialect): title, abstract, authors, year, DOI/URL and venue; entries without an
abstract reported as skipped with that reason; LaTeX turned into plain Unicode text."""

from __future__ import annotations

import shutil
from pathlib import Path

from rag.corpus import load_papers

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def _load(tmp_path: Path, *names: str):
    for name in names:
        shutil.copy(FIXTURES / name, tmp_path / name)
    return load_papers([tmp_path / n for n in names])


def _venue(paper):
    return getattr(paper, "venue", None)


def test_zotero_bibtex(tmp_path):
    papers, stream = _load(tmp_path, "zotero.bib")
    assert stream.skipped == []
    attention, kpca = papers
    assert attention.title == "Attention Is All You Need"
    assert attention.abstract.startswith("The dominant sequence transduction models are based on complex")
    assert attention.authors.startswith("Ashish Vaswani, Noam Shazeer, Niki Parmar")
    assert attention.year == 2017
    assert attention.url == "https://doi.org/10.48550/arXiv.1706.03762"
    assert attention.source == "zotero.bib"
    # LaTeX: accents, braces, \emph, --, \%, \&, math become plain text
    assert kpca.title == "Kernel principal component analysis: Schölkopf and Müller revisited"
    assert kpca.authors == "Bernhard Schölkopf, Alexander Smola, Klaus-Robert Müller"
    assert "one can efficiently compute" in kpca.abstract
    assert "feature spaces – related to input space" in kpca.abstract
    assert "95% of the variance kept & no iteration; for α small, the Kernel trick" in kpca.abstract
    assert not any(c in kpca.abstract for c in "\\{}$")
    assert kpca.year == 1997 and kpca.url == "https://doi.org/10.1007/BFb0020217"
    if hasattr(kpca, "venue"):
        assert _venue(kpca) == "Artificial Neural Networks – ICANN'97"


def test_jabref_bibtex(tmp_path):
    papers, stream = _load(tmp_path, "jabref.bib")
    (resnet,) = papers
    assert resnet.title == "Deep Residual Learning for Image Recognition"
    # a bare % (not LaTeX-escaped) is text, not a comment that eats the rest of the abstract
    assert "3.57% top-5 error, and they won 1st place on the ILSVRC 2015 classification task." in resnet.abstract
    assert resnet.authors == "Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun"
    assert (resnet.year, resnet.url) == (2016, "https://doi.org/10.1109/CVPR.2016.90")
    if hasattr(resnet, "venue"):  # from the @String macro
        assert _venue(resnet) == "IEEE Conference on Computer Vision and Pattern Recognition (CVPR)"
    # the @Comment{jabref-meta...} blocks are not records; the entry without abstract is reported
    assert [(s.line, s.reason) for s in stream.skipped] == [(18, "missing abstract (@article{Hochreiter1997})")]


def test_google_scholar_bibtex_has_no_abstract(tmp_path):
    papers, stream = _load(tmp_path, "scholar.bib")
    assert papers == []
    assert [str(s) for s in stream.skipped] == ["scholar.bib:1: missing abstract (@article{vaswani2017attention})"]


def test_broken_bibtex_entry_reported_rest_read(tmp_path):
    path = tmp_path / "broken.bib"
    path.write_text((FIXTURES / "zotero.bib").read_text(encoding="utf-8").replace(
        "@inproceedings{scholkopf_kernel_1997,", "@inproceedings{scholkopf_kernel_1997,\n\ttitle = {Unclosed,", 1),
        encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == ["Attention Is All You Need"]
    assert [(s.line, s.reason) for s in stream.skipped] == [
        (17, "bad BibTeX entry (Unexpectedly reached end of file.)")]


def test_mendeley_ris(tmp_path):
    papers, stream = _load(tmp_path, "mendeley.ris")
    adam, resnet = papers
    # A1 authors, Y1 "2014///", T1 title, JO venue, N2 abstract, UR link
    assert adam.title == "Adam: A Method for Stochastic Optimization"
    assert adam.abstract.startswith("We introduce Adam, an algorithm for first-order")
    assert (adam.authors, adam.year) == ("Diederik P. Kingma, Jimmy Ba", 2014)
    assert adam.url == "http://arxiv.org/abs/1412.6980"
    # AU, PY, TI, T2 venue, AB, DO
    assert resnet.authors == "Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun"
    assert (resnet.year, resnet.url) == (2016, "https://doi.org/10.1109/CVPR.2016.90")
    if hasattr(resnet, "venue"):
        assert _venue(adam) == "arXiv preprint arXiv:1412.6980"
        assert _venue(resnet) == "Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition"
    assert [str(s) for s in stream.skipped] == ["mendeley.ris:26: missing abstract (JOUR 'Long Short-Term Memory')"]


def test_zotero_ris(tmp_path):
    papers, stream = _load(tmp_path, "zotero.ris")
    bn, dropout = papers
    assert stream.skipped == []
    assert bn.title.startswith("Batch Normalization: Accelerating Deep Network Training")
    assert (bn.authors, bn.year) == ("Sergey Ioffe, Christian Szegedy", 2015)
    assert bn.url == "https://proceedings.mlr.press/v37/ioffe15.html"
    assert dropout.url == "https://doi.org/10.5555/2627435.2670313"
    if hasattr(bn, "venue"):
        assert _venue(dropout) == "Journal of Machine Learning Research"


def test_ris_without_end_tag_and_garbage(tmp_path):
    text = (FIXTURES / "zotero.ris").read_text(encoding="utf-8")
    path = tmp_path / "cut.ris"
    path.write_text("this is not RIS\n" + text.rsplit("ER  -", 1)[0], encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title[:5] for p in papers] == ["Batch", "Dropo"]  # a last record without ER is still whole
    assert [(s.line, s.reason) for s in stream.skipped] == [(1, "not a RIS tag line: 'this is not RIS'")]


def test_mendeley_bibtex(tmp_path):
    """Mendeley Desktop: a free-text header, {{double-braced}} titles, `{\\~{}}`/`{\\%}` escapes,
    and a LaTeX abstract's own macros escaped once more (`$\\backslash$emph{\\{}x{\\}}`)."""
    papers, stream = _load(tmp_path, "mendeley.bib")
    vit, smoothing = papers
    assert vit.title == "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"
    assert "(~88.55% top-1 on ImageNet), i.e. with substantially" in vit.abstract
    assert vit.authors.startswith("Alexey Dosovitskiy, Lucas Beyer, Alexander Kolesnikov")
    assert (vit.year, vit.url) == (2020, "http://arxiv.org/abs/2010.11929")
    assert smoothing.title == "When Does Label Smoothing Help?"
    assert "Müller et al. show that smoothing the targets improves calibration and & helps" in smoothing.abstract
    assert smoothing.authors == "Rafael Müller, Simon Kornblith, Geoffrey Hinton"
    assert smoothing.venue == "Advances in Neural Information Processing Systems"
    assert not any(c in vit.abstract + smoothing.abstract for c in "\\{}$")
    assert [(s.line, s.reason) for s in stream.skipped] == [(28, "missing abstract (@article{Goodfellow2014})")]


def test_google_scholar_ris_has_no_abstract(tmp_path):
    papers, stream = _load(tmp_path, "scholar.ris")
    assert papers == []
    assert [s.reason.split(" (")[0] for s in stream.skipped] == ["missing abstract"] * 2


def test_abbreviation_macros_and_math_become_text():
    from rag.formats.bibtex import latex_to_text

    assert latex_to_text(r"we use \ie a model, \eg. CNNs, \etal{} and $x^2$ with \emph{more}") == \
        "we use i.e. a model, e.g. CNNs, et al. and x^2 with more"
    assert latex_to_text(r"$O(n^{2})$ and $\alpha$-stable, a & b") == "O(n^2) and α-stable, a & b"


def test_latex_in_other_formats_is_decoded_only_where_it_is_latex(tmp_path):
    """An arXiv/JSON abstract's LaTeX (`\\ie`, `{\\it ...}`, `\\(\\times\\)`, a paper's own
    `\\overfeat`) is plain text once indexed; text that only mentions "$5" or braces is kept."""
    import json

    rows = [{"title": r"Scaling \emph{Transformers} to $10^6$ tokens",
             "abstract": r"We use the \overfeat network (\ie a CNN) with {\it Model \(\times\) Method} and "
                         r"cost $O(n^2)$, unlike Krizhevsky \etal who report 95\% accuracy."},
            {"title": "Cheap training", "abstract": "Training costs $5 per run; we keep {a, b} sets as they are, "
                                                   "and a path like C:/data stays."}]
    path = tmp_path / "arxiv.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    papers, _ = load_papers([path])
    latex, plain = papers
    assert latex.title == "Scaling Transformers to 10^6 tokens"
    assert latex.abstract == ("We use the overfeat network (i.e. a CNN) with Model × Method and cost O(n^2), "
                              "unlike Krizhevsky et al. who report 95% accuracy.")
    assert plain.abstract == rows[1]["abstract"]


def test_string_macros_concatenation_and_crossref(tmp_path):
    """@string macros and `#` in any field (abstracts included) are resolved, and an entry
    takes its venue and year from the entry its crossref names (issue 30.5)."""
    path = tmp_path / "macros.bib"
    path.write_text("""@string{ml = "machine learning"}
@STRING{study = {A study of} # " how"}

@proceedings{conf21,
  title = {Proceedings of the Conference on Learning},
  year = 2021,
}

@inproceedings{p1,
  title = {Concatenated } # ml # { paper},
  abstract = study # " " # ml # { models learn representations from data, with many examples.},
  crossref = {conf21},
  month = jan,
}
""", encoding="utf-8")
    papers, stream = load_papers([path])
    assert len(papers) == 1 and [s.reason for s in stream.skipped] == ["missing abstract (@proceedings{conf21})"]
    paper = papers[0]
    assert paper.title == "Concatenated machine learning paper"
    assert paper.abstract == ("A study of how machine learning models learn representations from data, "
                              "with many examples.")
    assert (paper.year, paper.venue) == (2021, "Proceedings of the Conference on Learning")
