"""The UI's request parameters (ui/params.py) and the login throttle (ui/guard.py), without
a server: wrong types get a reason, Settings change only through `with_overrides`."""

from __future__ import annotations

import math

import pytest

from rag.errors import ConfigError, QuestionError
from rag.settings import Settings
from ui import params
from ui.guard import LoginThrottle


@pytest.mark.parametrize("value", [[1], {"a": 1}, 1, "sometimes"])
def test_follow_up_refuses_anything_but_its_three_words(value):
    with pytest.raises(QuestionError, match="follow_up must be one of 'auto', 'on', 'off'"):
        params.follow_up_mode(value)


def test_follow_up_words():
    assert [params.follow_up_mode(v) for v in ("auto", "on", "off", None, "")] == [None, True, False, None, None]


@pytest.mark.parametrize("value", ["abc", "5", [1], True, math.nan, math.inf, -1, 2.5])
def test_paper_limit_refuses_what_is_not_a_whole_count(value):
    with pytest.raises(QuestionError, match="max_papers must be a whole number"):
        params.paper_limit(value)


def test_paper_limit_accepts_slider_floats_and_zero_keeps_the_server_setting():
    assert [params.paper_limit(v) for v in (3, 5.0, 0, None)] == [3, 5, None, None]


@pytest.mark.parametrize("history,where", [("hi", "list of messages"), ([{"role": "user"}], "item 1"),
                                           ([{"role": "user", "content": "q"}, "a"], "item 2"),
                                           ([{"role": "system", "content": "q"}], "item 1"),
                                           ([{"role": "assistant", "content": "a", "citations": "x"}], "citations")])
def test_history_must_be_messages(history, where):
    with pytest.raises(QuestionError, match=where):
        params.history_messages(history)


def test_call_settings_goes_through_with_overrides(tmp_path):
    s = Settings(data_dir=tmp_path, min_papers=3)
    assert params.call_settings(s, None, 0) is s
    t = params.call_settings(s, "llm", 2.0)
    assert (t.answerer, t.max_papers, t.min_papers) == ("llm", 2, 2)  # the minimum follows a lower limit
    with pytest.raises(ConfigError, match="invalid setting max_papers 101"):
        params.call_settings(s, None, 101)


def test_login_throttle_doubles_the_wait_after_free_failures_and_forgets_on_success():
    now = [1000.0]
    t = LoginThrottle(free=2, base=1.0, cap=5.0, clock=lambda: now[0])
    waits = []
    for _ in range(6):
        t.failed("10.0.0.1")
        waits.append(t.wait("10.0.0.1"))
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 5.0]  # capped at 5 s
    assert t.wait("10.0.0.2") == 0.0  # per client
    now[0] += 5.0
    assert t.wait("10.0.0.1") == 0.0
    t.succeeded("10.0.0.1")
    t.failed("10.0.0.1")
    assert t.wait("10.0.0.1") == 0.0  # the count started over


def test_login_throttle_memory_is_bounded():
    t = LoginThrottle(free=0, base=1.0, clock=lambda: 0.0, most_clients=3)
    for i in range(10):
        t.failed(f"10.0.0.{i}")
    assert len(t._failures) == 3 and t.wait("10.0.0.9") > 0


def test_history_citations_keep_only_well_formed_known_papers():
    from ui.params import history_messages, well_formed_citations

    assert well_formed_citations([{"n": "1", "paper_id": "a"}, "b", {"paper_id": 5}], {"a", "b"}) == [
        {"paper_id": "a"}, {"paper_id": "b"}]
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": "x [1]", "citations": [{"n": 1, "paper_id": "gone", "title": "T"},
                                                                       {"n": 2, "paper_id": "a", "title": None}]}]
    kept = history_messages(history, {"a"})
    assert kept[1]["citations"] == [{"paper_id": "a", "n": 2}] and history[1]["citations"][0]["paper_id"] == "gone"
