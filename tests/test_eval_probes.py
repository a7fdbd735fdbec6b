"""The corpus-built probes (eval/probes.py) on the default configuration's real index."""

from __future__ import annotations

import json

from eval.probes import follow_up_probe, known_item_probe, main, name_probe


def test_names_the_embedder_does_not_know_are_found(default_pipeline):
    """40 names (VGG, DeiT, MSCOCO, ...) asked as "Which papers use <name>?": 0.545 of their
    papers lead the ranking here; 0.412 before fusion scaled weak dense runs and the feedback
    query kept the question's own words."""
    names = name_probe(default_pipeline)
    assert names["questions"] == 40
    assert names["r_precision"] >= 0.5 and names["recall@20"] >= 0.7 and names["declined"] <= 0.05, names


def test_a_paper_asked_for_by_quoted_title_comes_first(default_pipeline):
    """"What does the paper '<title>' propose?" read as a list question (0.93 first) before."""
    known = known_item_probe(default_pipeline)
    assert known["questions"] == 60 and known["first"] >= 0.95, known


def test_follow_ups_keep_to_the_earlier_answer_however_worded(default_pipeline):
    """30 conversations: "Which papers use <X>?", then a narrowing question worded six ways,
    then "Summarise the first one." and "And the second?". Before subject-less questions ("Which
    use <Y>?", "Any that ...") counted as follow-ups: kept to the earlier papers 0.80, recall
    0.80, and "And the second?" answered from the one-paper summary (0.0)."""
    fu = follow_up_probe(default_pipeline)
    assert fu["conversations"] == 30, fu
    assert fu["kept_to_earlier"] >= 0.95 and fu["narrowing_recall"] >= 0.9, fu
    assert fu["narrowing_precision"] >= 0.7 and fu["second_after_summary"] >= 0.9, fu


def test_the_probe_command_writes_its_figures(tmp_path, bundled_settings, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(bundled_settings.data_dir))
    monkeypatch.setenv("RAG_EMBED_MODEL", bundled_settings.embed_model)
    out = tmp_path / "probes.json"
    assert main(["--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["embed_model"] == bundled_settings.embed_model
    assert figures["names"]["questions"] == 40 and 0.0 <= figures["names"]["r_precision"] <= 1.0
    assert figures["known_item"]["questions"] == 60 and figures["known_item"]["first"] >= 0.9
    assert figures["follow_ups"]["conversations"] == 30
