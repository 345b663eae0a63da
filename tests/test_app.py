"""App logic with Streamlit's AppTest: budget spent only on Release, cached repeats, roles, refusals."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from pathlib import Path

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def _env(app_env):
    yield


def _remaining(at=None) -> float:
    """Remaining budget as the sidebar metric of a freshly loaded page (like a browser refresh).

    AppTest drops sidebar elements on reruns of an st.navigation app, so each reading opens the
    app anew; the value comes from the persistent ledger, which is what must hold anyway.
    """
    fresh = AppTest.from_file(APP, default_timeout=60).run()
    m = [m for m in fresh.sidebar.metric if m.label == "Remaining budget (ε)"]
    assert m, "sidebar has no Remaining budget (ε) metric"
    return float(m[0].value)


def _app(role=None, monkeypatch=None):
    at = AppTest.from_file(APP, default_timeout=60)
    return at.run()


def test_budget_changes_only_after_release_and_repeat_is_free():
    at = _app()
    assert not at.exception, at.exception
    start = _remaining(at)
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    assert _remaining(at) == start, "changing widgets must not spend"
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    after = _remaining(at)
    assert after == pytest.approx(start - 0.25, abs=1e-3)
    charts = at.get("plotly_chart")
    assert charts, "a chart is shown after Release"
    fig = json.loads(charts[0].proto.spec)
    assert fig["data"], "chart has data"
    at.run()  # a rerun spends nothing
    assert _remaining(at) == after
    at.button(key="release").click().run()  # identical query again
    assert _remaining(at) == after
    assert any("cost nothing" in s.value for s in at.success)


def test_refusal_when_budget_exhausted():
    at = _app()
    at.selectbox(key="ex_stat").select("mean").run()
    at.radio(key="ex_mode").set_value("High accuracy (ε 1)").run()
    at.button(key="release").click().run()
    at.selectbox(key="ex_column").select("psa").run()
    at.button(key="release").click().run()           # default budget 2.0 -> spent
    assert _remaining(at) == pytest.approx(0.0, abs=1e-3)
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    assert not at.exception
    assert at.button(key="release").disabled          # it cannot fit: not clickable
    assert any("only ε 0 is left of the budget of" in w.value for w in at.warning), [w.value for w in at.warning]
    at.radio(key="ex_mode").set_value("High accuracy (ε 1)").run()
    assert not at.button(key="release").disabled      # the identical release is stored: free to show again
    assert _remaining(at) == pytest.approx(0.0, abs=1e-3)


def test_refusal_at_click_replaces_the_old_answer(tmp_path):
    """Another analyst spends the budget between drawing the page and the click: the click is
    refused, and the earlier chart does not stay beside the refusal."""
    from privacy.ledger import BudgetLedger
    at = _app()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    assert at.get("plotly_chart")
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    assert not at.button(key="release").disabled
    lg = BudgetLedger(tmp_path / "ledger.sqlite")
    lg.reserve(dataset="prostate-rows3000", analyst="someone else", release_key="other", epsilon=1.85, delta=0.0,
               mechanism="laplace", query="{}", rho=1.0)
    lg.close()
    at.button(key="release").click().run()
    assert not at.exception
    assert any(e.value.startswith("Refused") and "shared by all analysts" in e.value for e in at.error)
    assert not at.get("plotly_chart") and not at.success


def test_analyst_cannot_reach_owner_pages(monkeypatch, tmp_path):
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = _app()
    assert not at.exception
    for page in ("pages/compare.py", "pages/tradeoff.py", "pages/upload.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)          # not registered for analysts: no URL reaches it
    # ...and each owner page refuses by itself even when run directly with an analyst context
    from dashboard.auth import Identity
    from dashboard.context import Context
    from dashboard.services import prepared_cohort
    from privacy.ledger import BudgetLedger
    ctx = Context(Identity("ana", "analyst", "env"), "prostate", prepared_cohort("prostate", 3000),
                  BudgetLedger(tmp_path / "l.sqlite"), "laplace")
    root = Path(APP).parent
    for page in ("compare.py", "tradeoff.py", "upload.py"):
        pt = AppTest.from_file(str(root / "pages" / page), default_timeout=60)
        pt.session_state["_ctx"] = ctx
        pt.run()
        assert not pt.exception, pt.exception
        assert any("data owner only" in e.value for e in pt.error), page
        assert not pt.get("plotly_chart") and not pt.button, page


def test_owner_compare_shows_truth_marked_not_private():
    at = _app()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert any("not private" in w.value for w in at.warning)
    at.button(key="cmp_run").click().run()
    assert not at.exception, at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = " ".join(str(t.get("name", "")) for t in fig["data"])
    assert "not private" in names.lower()
    # simulation spends nothing
    assert _remaining(at) == pytest.approx(2.0)


def test_epsilon_target_accuracy_mode_solves_for_epsilon():
    at = _app()
    at.selectbox(key="ex_stat").select("histogram").run()
    at.radio(key="ex_mode").set_value("Target accuracy").run()
    at.number_input(key="ex_target").set_value(20.0).run()
    assert not at.exception
    assert any("Needs ε" in c.value for c in at.caption)


def test_radiology_report_splits_one_epsilon_and_exports_offline_html():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["cohort"] = "radiology"
    at.run()
    at.switch_page("pages/radiology.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) >= 5
    assert float(table["ε"].sum()) == pytest.approx(0.5, abs=1e-3)   # default total split across statistics
    start = _remaining_for("radiology")
    at.button(key="rad_release").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= 5
    assert _remaining_for("radiology") == pytest.approx(start - 0.5, abs=1e-3)
    from dashboard.report_export import report_html
    import plotly.graph_objects as go
    html = report_html({"a": go.Figure(go.Bar(x=[1], y=[2]))}, "t", rows=[{"statistic": "<b>x</b>", "ε": "0.1"}],
                       released_at="2026-12-01T09:00:00+00:00", cohort="Radiology")
    assert "Released: 2026-12-01" in html and "Cohort: Radiology" in html and "How to read" in html
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in html
    import re
    assert not re.search(r"<script[^>]+src=", html), "the report must not load scripts from anywhere"
    assert len(html) > 1_000_000 and "Plotly.newPlot" in html   # plotly.js embedded


def _remaining_for(cohort: str) -> float:
    fresh = AppTest.from_file(APP, default_timeout=60)
    fresh.query_params["cohort"] = cohort
    fresh.run()
    return float([m for m in fresh.sidebar.metric if m.label == "Remaining budget (ε)"][0].value)


def _table(at, column: str):
    """The first dataframe on the page that has `column` (dataframes have no key in AppTest)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def test_ledger_page_lists_releases_and_owner_can_raise_budget():
    at = _app()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    at.switch_page("pages/ledger.py").run()
    assert not at.exception, at.exception
    releases = _table(at, "yours")
    assert len(releases) == 1 and releases["yours"].tolist() == ["✓"]
    trail = _table(at, "event")
    assert trail["event"].tolist() == ["cohort budget set", "release charged"]
    assert "Distribution of" in trail["what"].iloc[1] and "{" not in trail["what"].iloc[1]   # words, not a dict
    at.number_input(key="budget_total").set_value(5.0)
    at.text_input(key="budget_note").input("raised for the audit")
    [b for b in at.button if b.label == "Save budget"][0].click().run()
    assert not at.exception, at.exception
    assert any("set to ε 5" in s.value for s in at.success)   # the confirmation survives the rerun
    assert _remaining() == pytest.approx(5.0 - 0.1, abs=1e-3)
    at.switch_page("pages/ledger.py").run()
    trail = _table(at, "event")
    assert (trail["event"] == "cohort budget set").sum() == 2      # schema default + the owner's audit row
    assert any("raised for the audit" in i.value for i in at.info)  # the owner's note is shown
    at.text_input(key="allow_analyst").input("ana")
    at.number_input(key="allow_total").set_value(0.5)
    [b for b in at.button if b.label == "Save allowance"][0].click().run()
    assert any("Allowance of ana" in s.value for s in at.success)
    assert any("hash chain intact" in c.value for c in at.caption)


def test_analyst_ledger_page_shows_cohort_releases_but_not_who_asked(monkeypatch):
    at = _app()                                            # the owner releases first
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    an = _app()
    an.switch_page("pages/ledger.py").run()
    assert not an.exception, an.exception
    releases = _table(an, "yours")
    assert len(releases) == 1 and releases["yours"].tolist() == [""]
    assert "local owner" not in json.dumps(releases.to_dict())
    assert an.get("plotly_chart")                          # the stored release, drawn for free
    assert not [d for d in an.dataframe if "event" in d.value.columns or "who" in d.value.columns]
    assert not [b for b in an.button if b.label in ("Save budget", "Save allowance")]


def test_analyst_pages_render_no_true_values(monkeypatch):
    """As an analyst, every reachable page renders only releases: no 'true value' element anywhere."""
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = _app()
    at.selectbox(key="ex_stat").select("histogram").run()
    at.button(key="release").click().run()
    assert not at.exception
    texts = []
    for page in ("pages/explore.py", "pages/ledger.py", "pages/radiology.py"):
        if page != "pages/explore.py":
            at.switch_page(page).run()
        assert not at.exception, at.exception
        for kind in ("markdown", "caption", "info", "warning", "success", "error", "metric", "title", "text"):
            texts += [str(getattr(e, "value", "")) + str(getattr(e, "label", "")) for e in at.get(kind)]
        for ch in at.get("plotly_chart"):
            fig = json.loads(ch.proto.spec)
            texts += [str(t.get("name", "")) for t in fig["data"]]
    blob = " ".join(texts).lower()
    assert "not private" not in blob and "true value" not in blob


def test_png_export_renders_with_system_chromium():
    import shutil
    if not shutil.which("chromium"):
        pytest.skip("Debian chromium not installed (make test installs it)")
    import plotly.graph_objects as go
    from dashboard.report_export import figures_png_zip
    import io, zipfile
    z = zipfile.ZipFile(io.BytesIO(figures_png_zip({"a": go.Figure(go.Bar(x=["x"], y=[1]))})))
    assert z.read("a.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_free_answer_from_an_earlier_release_spends_nothing():
    at = _app()
    at.selectbox(key="ex_stat").select("crosstab").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    at.selectbox(key="ex_by").select("site").run()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    after = _remaining()
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    assert any("Free: answered from an earlier release (costs nothing)" in m.value for m in at.markdown)
    at.button(key="free").click().run()
    assert not at.exception, at.exception
    assert any("Free: answered from an earlier release" in s.value for s in at.success)
    assert at.get("plotly_chart")
    assert _remaining() == after                                      # nothing spent
    at.switch_page("pages/ledger.py").run()
    assert "answer derived (free)" in _table(at, "event")["event"].tolist()


def test_result_says_when_it_no_longer_answers_the_question():
    at = _app()
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    assert not at.warning and any("Distribution of" in m.value for m in at.markdown)
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()            # another epsilon: another question
    assert any("This answers your previous question" in c.value for c in at.caption)
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    assert not any("previous question" in c.value for c in at.caption)
    at.selectbox(key="ex_column").select("gleason_score").run()            # another column
    assert any("This answers your previous question" in c.value for c in at.caption)
    assert any("ε = 0.1: whatever is released" in c.value for c in at.caption)   # words for the chosen epsilon


def test_audit_trail_filters_by_who():
    at = _app()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    at.switch_page("pages/ledger.py").run()
    assert set(_table(at, "event")["who"]) == {"schema-default", "local owner"}
    at.multiselect(key="ledger_who").select("local owner").run()
    trail = _table(at, "event")
    assert set(trail["who"]) == {"local owner"} and trail["event"].tolist() == ["release charged"]


def _explore(role: str, monkeypatch, **selects: str) -> AppTest:
    """Explore as the owner or as analyst 'ana', with these selectboxes chosen (in order) and the
    Balanced preset; nothing released yet."""
    if role == "analyst":
        monkeypatch.setenv("DP_ROLE", "analyst")
        monkeypatch.setenv("DP_ANALYST", "ana")
    at = _app()
    for key, value in selects.items():
        at.selectbox(key=key).select(value).run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    return at


@pytest.mark.parametrize("role", ["owner", "analyst"])
def test_empty_groups_show_no_number(role, monkeypatch):
    at = _explore(role, monkeypatch, ex_stat="grouped-mean", ex_column="psa", ex_by="risk_group")
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    import base64
    import math
    import numpy as np

    def arr(v):   # Plotly's JSON keeps numeric arrays as typed binary
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]) if isinstance(v, dict) else v

    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    dots, note = fig["data"][0], fig["data"][1]
    x = arr(dots["x"])
    empty = [i for i, lab in enumerate(dots["y"]) if lab in ("missing", "other")]
    assert empty and all(math.isnan(x[i]) and dots["text"][i] == "" for i in empty)
    assert not any(math.isnan(x[i]) for i in range(len(x)) if i not in empty)
    assert set(note["y"]) >= {"missing", "other"} and set(note["text"]) == {"not enough patients to estimate"}
    table = _table(at, "Value")
    assert table.columns[0] == "Risk group (NCCN-style)"                   # a plain header, not ""
    for lab in ("missing", "other"):
        row = table.loc[table[table.columns[0]] == lab]
        assert row["Value"].item() == "not enough patients to estimate"
        assert row["95% interval"].item() == "" and row["Patients (noisy)"].item() == ""   # no noisy size


def test_saved_set_of_statistics_is_released_once():
    at = _app()
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    at.button(key="add_report").click().run()
    at.selectbox(key="ex_stat").select("mean").run()
    at.button(key="add_report").click().run()
    start = _remaining()
    at.select_slider(key="ex_basket_total").set_value(0.5).run()
    at.button(key="basket_release").click().run()
    assert not at.exception, at.exception
    assert any("charged once" in s.value for s in at.success), [s.value for s in at.success]
    assert len([c for c in at.get("plotly_chart")]) >= 2
    assert _remaining() == pytest.approx(start - 0.5, abs=1e-3)
    from privacy.ledger import BudgetLedger
    import os
    lg = BudgetLedger(os.environ["DP_LEDGER"])
    assert len(lg.entries(kinds=("reserve",))) == 1                 # one reservation for the whole set
    at.button(key="basket_release").click().run()                   # the same set again: free
    assert any("cost nothing" in s.value for s in at.success)
    assert len(lg.entries(kinds=("reserve",))) == 1


@pytest.mark.parametrize("role", ["owner", "analyst"])
def test_survival_by_risk_group(role, monkeypatch):
    """Explore: survival curve by risk group, bands drawn, number-at-risk and median tables; an
    analyst's page shows no true value (nothing but the release's noisy numbers)."""
    at = _explore(role, monkeypatch, ex_stat="survival", ex_endpoint="cancer_specific", ex_by="risk_group")
    assert "events and censorings per time bin within ±" in " ".join(i.value for i in at.info)
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {t.get("name") for t in fig["data"] if t.get("name")}
    assert {"low", "intermediate", "high"} <= names
    assert any(t.get("fill") == "tonexty" for t in fig["data"]), "each curve has its band"
    at_risk = at.dataframe[0].value
    assert at_risk.columns[0] == "Number at risk" and "low" in set(at_risk["Number at risk"])
    medians = at.dataframe[1].value
    assert medians.columns[0] == "Survival" and {"low", "intermediate", "high"} <= set(medians.columns)
    assert {"Median survival", "Median: 95% interval", "1-year survival"} <= set(medians["Survival"])
    text = " ".join(str(x.value) for x in (*at.markdown, *at.caption, *at.success))
    assert "true" not in text.lower() or role == "owner"


def test_compare_survival_shows_true_and_private_curves():
    at = _app()
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="cmp_stat").select("survival").run()
    at.slider(key="cmp_draws").set_value(20).run()
    at.button(key="cmp_run").click().run()
    assert not at.exception, at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t.get("name", "") for t in fig["data"]]
    assert any(n.endswith("true (not private)") for n in names) and any(n.endswith(": private") for n in names)
