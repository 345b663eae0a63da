"""Defects seen in full-page screenshots: who a 'not enough ... to estimate' counts, group names kept
when no value can be shown, shares as percentages, and no negative count in the on-screen table."""
from __future__ import annotations

import numpy as np

from dashboard import charts
from dashboard.figures import tables as charts_tables
from tests.test_charts import make_release


def _texts(fig) -> list[str]:
    out = [str(t) for tr in fig.data for t in (tr.text or []) if t]
    return out + [a.text for a in fig.layout.annotations or ()]


def test_dot_interval_says_who_it_counts():
    fig = charts.dot_interval_figure(["CT", "MR"], [20.0, 30.0], [0.0, 25.0], [168.0, 35.0], "Median", "hours",
                                     public_range=(0.0, 168.0), who="exams")
    assert "not enough exams to estimate" in _texts(fig)
    assert not any("patients" in t for t in _texts(fig))
    default = charts.dot_interval_figure(["a"], [1.0], [0.0], [10.0], "t", public_range=(0.0, 10.0))
    assert "not enough patients to estimate" in _texts(default)


def test_dot_interval_all_weak_keeps_group_names_and_no_nothing_to_show():
    labels = ["emergency", "inpatient", "oncology"]
    fig = charts.dot_interval_figure(labels, [1.0, 2.0, 3.0], [0.0] * 3, [168.0] * 3, "Median", "hours",
                                     public_range=(0.0, 168.0), who="exams")
    assert not any("Nothing to show" in t for t in _texts(fig))
    assert fig.layout.yaxis.visible is not False
    ys = {str(y) for tr in fig.data for y in (tr.y or [])}
    assert ys >= set(labels)
    assert all(np.isnan(x) for x in np.asarray(fig.data[0].x, dtype=float))     # no dot anywhere
    assert _texts(fig).count("not enough exams to estimate") == 3


def test_dot_interval_shares_as_percentages():
    fig = charts.dot_interval_figure(["CT", "MR", "NM"], [0.52, 0.615, 0.0], [0.5, 0.58, 0.0], [0.54, 0.66, 1.0],
                                     "Contrast use", "Share of exams", public_range=(0.0, 1.0), who="exams",
                                     percent=True)
    assert fig.layout.xaxis.tickformat == ".0%"
    dots = fig.data[0]
    assert dots.text[0] == "52%" and dots.text[1].startswith("6") and dots.text[1].endswith("%")
    assert "52%" in dots.hovertext[0] and "50%" in dots.hovertext[0] and "54%" in dots.hovertext[0]
    assert np.isnan(float(dots.x[2])) and dots.text[2] == ""                   # 0-100% says nothing
    assert "not enough exams to estimate" in _texts(fig)
    assert not any("0.52" in str(h) for h in dots.hovertext)


def test_display_table_never_shows_a_negative_count_but_the_export_keeps_it():
    rel = make_release("histogram", ["6", "7", "other"], [6953.5704, 12.4, -3.2], lo=[6940.1, -1.5, -16.6],
                       hi=[6967.0, 26.3, 10.2], column="g", bin_edges=None, date_unit=None)
    df = charts.display_table(rel)
    assert df["Note"].iloc[2] == "noisy count below 0: shown as 0"
    assert not df["Note"].str.contains("-").any()
    raw = charts.release_table(rel)
    assert raw["value"].iloc[2] == -3.2 and "-3.2" in raw["note"].iloc[2]


def test_mean_axis_title_is_sentence_case_and_keeps_acronyms():
    from dashboard.figures.points import _sentence
    assert f"Mean {_sentence('Report turnaround')}" == "Mean report turnaround"
    assert _sentence("PSA") == "PSA" and _sentence("CT dose") == "CT dose"


# ------------------------------------------------------------------ issue 10: Explore and sidebar
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.conftest import toy_schema  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
DATASET = "prostate-rows3000"               # the demo cohort at DP_DEMO_ROWS=3000 (app_env)
TITLE = "Prostate cancer patients (synthetic)"
SHOWN = TITLE.replace("(", "\\(").replace(")", "\\)")   # as markdown, escaped (it renders as TITLE)


def _spend_all_but(left: float) -> None:
    """Another analyst spends the cohort's budget behind the page's back, leaving `left`."""
    import os
    from privacy.ledger import BudgetLedger
    lg = BudgetLedger(os.environ["DP_LEDGER"])
    spent = lg.dataset_state(DATASET).spent
    lg.reserve(dataset=DATASET, analyst="someone else", release_key="other", epsilon=2.0 - spent - left, delta=0.0,
               mechanism="laplace", query="{}", rho=1.0)
    lg.close()


def _page_texts(at) -> str:
    kinds = ("markdown", "caption", "info", "warning", "success", "error", "metric")
    return " ".join(str(getattr(e, "value", "")) + " " + str(getattr(e, "label", "")) for k in kinds for e in at.get(k))


def test_budget_panel_redraws_from_the_ledger_and_says_epsilon(tmp_path):
    """The sidebar's panel is drawn into a slot and again after the page ran (app.py): the second
    drawing shows what the page spent, and the metric says it is ε."""
    def script(path: str):
        import streamlit as st
        from dashboard.widgets import budget_panel
        from privacy.ledger import BudgetLedger
        from tests.conftest import toy_schema
        lg, schema = BudgetLedger(path), toy_schema(budget=2.0)
        slot = st.empty()
        budget_panel(slot, lg, schema, "ana")
        lg.reserve(dataset="toy", analyst="ana", release_key="k", epsilon=0.5, delta=0.0, mechanism="laplace",
                   query="{}", rho=1.0)                      # a release on the page, after the sidebar
        budget_panel(slot, lg, schema, "ana")
    at = AppTest.from_function(script, args=(str(tmp_path / "l.sqlite"),), default_timeout=30).run()
    assert not at.exception, at.exception
    assert [(m.label, m.value) for m in at.metric] == [("Remaining budget (ε)", "1.5")]


def test_privacy_unit_words_use_the_schemas_noun_never_rows():
    import dataclasses
    from dashboard.widgets import privacy_unit_words
    assert privacy_unit_words(toy_schema()) == "Privacy unit: one patient (one record each)."
    assert privacy_unit_words(toy_schema(3)) == "Privacy unit: one patient (at most 3 records each)."
    exams = dataclasses.replace(toy_schema(5), row_noun="exam")
    assert privacy_unit_words(exams) == "Privacy unit: one patient (at most 5 exams each)."
    assert charts.rows_noun(toy_schema(3)) == "records" and charts.group_size_header(exams) == "Exams (noisy)"


def test_refusal_words_name_the_cohort_and_a_next_step_never_the_internal_id():
    from dashboard.widgets import refusal_words
    from privacy.ledger import BudgetExceeded
    e = BudgetExceeded("dataset", 0.25, 0.1, 1.35, DATASET, "ana")
    assert DATASET in str(e)                                  # the ledger's own text is technical
    text = refusal_words(e, TITLE, DATASET, clicked=True)
    assert text.startswith("Refused: ") and text.endswith("Nothing was spent.")
    assert SHOWN in text and DATASET not in text
    assert "Next step: lower ε to 0.1 or less, or ask the data owner for more budget." in text
    gone = refusal_words(BudgetExceeded("allowance", 0.25, 0.0, 1.0, DATASET, "ana"), TITLE, DATASET)
    assert gone.startswith("Not enough budget: ") and "your allowance on" in gone and "ask the data owner" in gone
    assert refusal_words(ValueError(f"cohort '{DATASET}' is closed"), TITLE, DATASET) == f"cohort {SHOWN} is closed"


@pytest.fixture
def explore(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_refusal_at_click_is_shown_once_with_a_next_step(explore):
    at = explore
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    assert not at.button(key="release").disabled
    _spend_all_but(0.1)                                   # the page still offers the release
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Refused")
    assert "Next step: lower ε to 0.1 or less, or ask the data owner for more budget." in at.error[0].value
    assert not at.warning, [w.value for w in at.warning]            # not a second time beside the button
    assert not any("press **Release**" in i.value for i in at.info)  # no 'press Release' under a refusal
    assert DATASET not in _page_texts(at), _page_texts(at)
    assert SHOWN in at.error[0].value
    assert at.button(key="release").disabled and not at.get("plotly_chart")
    at.selectbox(key="ex_column").select("gleason_score").run()   # another question: the old refusal goes
    assert not at.error and any("Not enough budget" in w.value for w in at.warning)


def release_crosstab(at) -> None:
    """Release the ISUP grade group x site crosstab at Balanced (ε 0.25)."""
    at.selectbox(key="ex_stat").select("crosstab").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    at.selectbox(key="ex_by").select("site").run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    at.button(key="release").click().run()


def ask_its_margin(at) -> None:
    """Ask the ISUP grade group histogram: a margin of the crosstab, so a free answer exists."""
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()


def test_free_answer_is_its_own_box_and_says_it_may_be_wider(explore):
    at = explore
    release_crosstab(at)
    _spend_all_but(0.1)
    ask_its_margin(at)
    left = at.columns[0]
    marks = [m.value for m in left.markdown]
    heading = "**Free: answered from an earlier release (costs nothing)**"
    assert heading in marks and "**Or pay for a fresh release** (spends budget)" in marks
    assert marks.index(heading) < marks.index("**Or pay for a fresh release** (spends budget)")
    assert any("may be wider than a fresh release's" in c.value for c in left.caption)
    assert not any("ε 0)" in b.label for b in at.button)                     # no 'Show the free answer (ε 0)'
    at.button(key="free").click().run()
    assert not at.exception, at.exception
    done = " ".join(s.value for s in at.success)
    assert "Free: answered from an earlier release (costs nothing)" in done and "may be wider" in done
    assert not any(m.value.endswith("· ε 0") for m in at.markdown)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["title"]["subtitle"]["text"].startswith("free (from an earlier release)")


def test_stale_result_is_greyed_and_says_which_question_it_answers(explore):
    at = explore
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("isup_grade_group").run()
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    fresh = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert all(t.get("opacity", 1) == 1 for t in fresh["data"])
    at.selectbox(key="ex_column").select("gleason_score").run()
    assert any(c.value.startswith("**This answers your previous question: Distribution of ISUP grade group**")
               for c in at.caption)
    assert not at.success                               # no green 'Released.' beside an old answer
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert all(t.get("opacity") == pytest.approx(0.35) for t in fig["data"])
    assert fig["layout"]["title"]["text"].startswith("Previous question: ")


def test_explore_tables_have_plain_headers_widths_and_no_size_for_empty_groups(explore):
    at = explore
    at.selectbox(key="ex_stat").select("grouped-mean").run()
    at.selectbox(key="ex_column").select("psa").run()
    at.selectbox(key="ex_by").select("risk_group").run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    at.button(key="release").click().run()
    table = at.dataframe[0].value
    assert "" not in table.columns and table.columns[0] == "Risk group (NCCN-style)"
    assert not any("row" in c.lower() for c in table.columns)
    for lab in ("missing", "other"):
        row = table.loc[table[table.columns[0]] == lab].iloc[0]
        assert row["Value"] == "not enough patients to estimate" and row["Patients (noisy)"] == ""
    config = json.loads(at.dataframe[0].proto.columns)
    assert {c for c, v in config.items() if "width" in v} >= set(table.columns)   # every column sized
    assert any("uses only the release and the public schema" in c.value for c in at.caption)


def test_table_widths_fit_the_result_column_and_show_every_row():
    rel = make_release("grouped-mean", ["low", "intermediate", "high", "very high", "missing", "other"],
                       [4.4, 11.2, 10.1, 18.1, 50.0, 50.0], lo=[0, 6.9, 0, 5.3, 0, 0], hi=[11.1, 15.6, 22.1, 30.8, 100, 100],
                       column="x", by="g", extra={"noisy_counts": [1380, 2120, 763, 721, 3, 0], "count_halfwidth": 7.4})
    table = charts.display_table(rel, toy_schema())
    widths = charts.table_column_widths(table)
    assert sum(widths.values()) <= charts_tables.TABLE_PX
    assert all(w >= charts_tables._text_px(c) for c, w in widths.items())     # no header cut
    assert charts.table_row_height(table) > 64                                 # the long cells wrap
    assert charts.table_height(table) >= 35 + len(table) * charts.table_row_height(table)


def test_median_says_median_in_hover_label_and_axis():
    schema = toy_schema()
    q = make_release("quantile", ["PSA"], [5.0], lo=[4.0], hi=[6.0], column="x", q=0.5)
    fig = charts.release_figure(q, schema)
    assert fig.layout.xaxis.title.text == "Median PSA (ng/mL)"
    assert fig.data[0].name == "Median PSA (ng/mL)"
    assert "Median PSA: 5.0" in fig.data[0].hovertext[0] and fig.data[0].text[0].startswith("Median 5.0")
    assert charts.value_name(q, 0, schema) == "Median PSA"
    g = charts.dot_interval_figure(["CT"], [20.0], [18.0], [22.0], "Median report turnaround by modality",
                                   "Median report turnaround (hours)")
    assert "Median report turnaround (hours): 20" in g.data[0].hovertext[0]


def _survival_release():
    edges = [float(6 * k) for k in range(21)]            # 0-120 months, 20 bins
    nb = len(edges) - 1
    groups, vals, lo, hi = [], [], [], []
    for name, n, med in (("low", 1400, float("inf")), ("intermediate", 2100, 96.0), ("missing", 3, float("inf"))):
        s = np.linspace(0.99, 0.8, nb)
        band = (0.0, 1.0) if name == "missing" else (0.03, 0.03)
        vals += list(s)
        lo += [0.0] * nb if name == "missing" else list(s - band[0])
        hi += [1.0] * nb if name == "missing" else list(s + band[1])
        groups.append({"group": name, "at_risk": [n - 40 * k for k in range(nb)], "median": med,
                       "median_low": 84.0, "median_high": float("inf"),
                       "landmarks": {"1-year": [0.99, 0.96, 1.0], "5-year": [0.9, 0.85, 0.94]}})
    return make_release("survival", [f"{g['group']} | {e:g}" for g in groups for e in edges[1:]], vals, lo=lo, hi=hi,
                        column="t", extra={"edges": edges, "groups": groups, "time_unit": "months"})


def test_survival_tables_fit_the_screen():
    from dashboard import survival_chart
    rel = _survival_release()
    medians = charts.display_table(rel)
    assert list(medians.columns) == ["Survival", "low", "intermediate"]       # one column per group
    assert list(medians["Survival"]) == ["Median survival", "Median: 95% interval", "1-year survival",
                                         "5-year survival"]
    assert medians["intermediate"].tolist()[:2] == ["96 months", "≥ 84 months"]
    assert sum(charts.table_column_widths(medians).values()) <= charts_tables.TABLE_PX
    at_risk = survival_chart.at_risk_table(rel, max_times=5)
    assert list(at_risk.columns) == ["Number at risk", "0 months", "30 months", "60 months", "90 months"]
    assert at_risk.loc[at_risk["Number at risk"] == "low", "30 months"].item() == "1,200"
    assert len(survival_chart.at_risk_table(rel).columns) == 21                # all of them without a limit
    assert sum(charts.table_column_widths(at_risk).values()) <= charts_tables.TABLE_PX
