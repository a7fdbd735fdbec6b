"""The documentation stays true: the generated parts equal what their generators write from
the committed files (README's figures table from eval/summary.json and bench/results.json;
docs/settings.md from rag/settings.py), every relative link and anchor resolves, and the
README stays a short user guide (no dated logs, no lab vocabulary)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
# Pages the README links to that other branches of the same issue write; once merged they
# exist and their links and anchors are checked like any other.
WRITTEN_ELSEWHERE = {"docs/reliability.md", "docs/security.md", "docs/speed.md", "docs/questions.md",
                     "docs/integrations.md"}
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_readme_figures_table_is_generated():
    proc = run_module("docs.figures", "--check")
    assert proc.returncode == 0, proc.stderr + "\nrun `python -m docs.figures` and commit README.md"


def test_settings_page_is_generated():
    proc = run_module("docs.settings_doc", "--check")
    assert proc.returncode == 0, proc.stderr + "\nrun `python -m docs.settings_doc` and commit docs/settings.md"


def _figures():
    sys.path.insert(0, str(ROOT))
    try:
        from docs import figures
    finally:
        sys.path.remove(str(ROOT))
    return figures


def test_figures_come_from_the_committed_results():
    figures = _figures()
    summary = json.loads(figures.EVAL_SUMMARY.read_text(encoding="utf-8"))
    bench = json.loads(figures.BENCH_RESULTS.read_text(encoding="utf-8"))
    table = figures.block(summary, bench)
    assert f"| {summary['sets']['main']['summary']['overall']['mrr']:.3f} / " in table
    # A new measurement changes the table: the figures are read, not written by hand.
    faster = copy.deepcopy(bench)
    faster["warm"]["new_answer_ms"] = {"p50": 12.3, "p95": 45.6}
    better = copy.deepcopy(summary)
    better["sets"]["main"]["summary"]["overall"]["mrr"] = 0.9876
    changed = figures.block(better, faster)
    assert "| 12 / 46 ms |" in changed and "| 0.988 / " in changed
    assert changed != table
    # Rewriting touches only the block between the markers.
    readme = README.read_text(encoding="utf-8")
    rewritten = figures.render(readme, changed)
    assert rewritten.split(figures.START)[0] == readme.split(figures.START)[0]
    assert rewritten.split(figures.END)[1] == readme.split(figures.END)[1]


def test_eval_digest_keeps_the_default_configuration(tmp_path):
    figures = _figures()
    results = {"meta": {"created": "2026-12-06T20:00:00", "n_questions": 3,
                        "configs": {"hybrid": {"embed_model": "m", "answerer": "extractive"},
                                    "bm25": {"embed_model": "m", "answerer": "extractive"}}},
               "summary": {"hybrid": {"overall": {"n": 3, "mrr": 0.5}}, "bm25": {"overall": {"n": 3, "mrr": 0.1}}},
               "questions": {"hybrid": [], "bm25": []}}
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    out = tmp_path / "summary.json"
    figures.write_eval_summary(tmp_path / "main", None, out)
    written = json.loads(out.read_text(encoding="utf-8"))["sets"]
    assert written == {"main": {"created": "2026-12-06T20:00:00", "questions": 3, "embed_model": "m",
                                "answerer": "extractive", "summary": {"overall": {"n": 3, "mrr": 0.5}}}}


def test_the_blind_realistic_set_gets_its_own_rows(tmp_path):
    figures = _figures()
    results = {"meta": {"created": "2026-12-07T02:37:00", "n_questions": 44,
                        "configs": {"default": {"embed_model": "m", "answerer": "extractive"}}},
               "summary": {"default": {"overall": {"n": 44, "cite_precision": 0.776, "cite_recall": 0.784,
                                                   "cite_f1": 0.666, "correct": 0.786, "yes_no": 0.667,
                                                   "false_abstention": 0.189},
                                       "unanswerable": {"n": 7, "abstention": 1.0}}}}
    for name in ("main", "real"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results), encoding="utf-8")
    out = tmp_path / "summary.json"
    figures.write_eval_summary(tmp_path / "main", None, out, realistic=tmp_path / "real")
    sets = json.loads(out.read_text(encoding="utf-8"))["sets"]
    assert sets["realistic"]["summary"]["overall"]["yes_no"] == 0.667
    rows = [r for r in figures.quality_rows({"main": {"questions": 44, "summary": {
        "overall": {"recall@10": 1, "recall@20": 1, "mrr": 1, "ndcg@10": 1, "cite_precision": 1, "cite_recall": 1,
                    "cite_f1": 1, "invalid_citations": 0, "false_abstention": 0}}}, "realistic": sets["realistic"]})
            if r[2].startswith("realistic")]
    assert [r[1] for r in rows] == ["0.776 / 0.784 / 0.666", "0.786 / 0.667", "1.000 / 0.189"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: `slug("The chat UI as a service")` -> `"the-chat-ui-as-a-service"`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def test_slug():
    assert slug("Filters and exports") == "filters-and-exports"
    assert slug("`rag eval`") == "rag-eval"
    assert slug("The lexical index (tantivy)") == "the-lexical-index-tantivy"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_and_anchors_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        name = str(dest.relative_to(ROOT)) if dest.is_relative_to(ROOT) else str(dest)
        if not dest.exists():
            if name not in WRITTEN_ELSEWHERE:
                broken.append(target)
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_is_a_short_user_guide():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
    outside_table = text.split("<!-- figures:start -->")[0] + text.split("<!-- figures:end -->")[1]
    assert not re.findall(r"\b20\d\d-\d\d-\d\d\b", outside_table), "dated entries belong in docs/"
    assert not re.findall(r"\b(?:pass|round|session)\b", text, flags=re.IGNORECASE)
    assert (ROOT / "docs" / "chat.png").exists()
