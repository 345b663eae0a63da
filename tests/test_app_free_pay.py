"""Explore with a free answer available (issue 10): paying for a fresh release is the analyst's
choice, and the budget warning (a fresh release would not fit) is shown only once they choose to pay,
not under 'Or pay for a fresh release' beside the free answer."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_screen_fixes import APP, _spend_all_but, ask_its_margin, release_crosstab

PAY_LABEL = "Pay for a fresh release instead"      # dashboard/pages/explore.py (a page: not importable)


@pytest.fixture
def free_and_broke(app_env):
    """A crosstab released, the budget then spent down to 0.1 by someone else, and the histogram of
    one of its columns asked: it has a free answer, and a Balanced (ε 0.25) release would not fit."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    release_crosstab(at)
    _spend_all_but(0.1)
    ask_its_margin(at)
    assert not at.exception, at.exception
    assert at.button(key="free")                      # the free answer is offered
    return at


def _budget_warnings(at) -> list[str]:
    return [w.value for w in at.warning if "Not enough budget" in w.value]


def test_no_budget_warning_beside_a_free_answer_until_the_analyst_chooses_to_pay(free_and_broke):
    at = free_and_broke
    assert not _budget_warnings(at), _budget_warnings(at)
    assert "release" not in [b.key for b in at.button]          # paying is not offered before it is chosen
    toggle = at.toggle(key="ex_pay")
    assert toggle.label == PAY_LABEL and toggle.value is False
    toggle.set_value(True).run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    assert not at.exception, at.exception
    assert len(_budget_warnings(at)) == 1                       # now, once, with its next step
    assert at.button(key="release").disabled


def test_free_answer_still_shown_and_paying_still_possible(free_and_broke):
    at = free_and_broke
    at.button(key="free").click().run()
    assert any("Free: answered from an earlier release" in s.value for s in at.success)
    assert not _budget_warnings(at)
    at.toggle(key="ex_pay").set_value(True).run()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()   # fits the 0.1 left
    assert not _budget_warnings(at)
    # the shown free answer answers the same question: not greyed as stale when the pay controls appear
    assert not any("previous question" in c.value for c in at.caption)
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Released. Cost ε 0.1") for s in at.success)


def test_without_a_free_answer_nothing_changes(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "ex_pay" not in [t.key for t in at.toggle]
    assert at.button(key="release") and not at.button(key="release").disabled


def test_free_answer_with_no_result_yet_says_what_to_do(app_env):
    """The result area's hint names the free answer, not a Release button that is not offered."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    release_crosstab(at)
    at2 = AppTest.from_file(APP, default_timeout=60).run()          # a new session: no result shown
    ask_its_margin(at2)
    assert at2.button(key="free")
    assert any("free answer" in i.value for i in at2.info), [i.value for i in at2.info]
    assert not any("press **Release**" in i.value for i in at2.info)
