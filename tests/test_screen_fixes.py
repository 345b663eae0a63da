"""Defects seen in full-page screenshots: who a 'not enough ... to estimate' counts, group names kept
when no value can be shown, shares as percentages, and no negative count in the on-screen table."""
from __future__ import annotations

import numpy as np

from dashboard import charts
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
