"""dashboard/charts.py: pure figure/table/download builders, checked on hand-made releases."""
from __future__ import annotations

import ast
import csv
import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import charts
from dashboard.charts import GREY, PALETTE
from privacy.release import Release
from privacy.simulate import Simulation
from tests.conftest import toy_schema

OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}


def make_release(stat: str, labels, values, halfwidth=7.3, lo=None, hi=None, extra=None, description=None,
                 **query) -> Release:
    values = [float(v) for v in values]
    lo = [v - halfwidth for v in values] if lo is None else lo
    hi = [v + halfwidth for v in values] if hi is None else hi
    q = {"stat": stat, "where": None, **query}
    return Release(
        dataset_id="toy", analyst="ana", query=q, description=description or f"{stat} of something",
        labels=list(labels), values=values, ci_low=[float(x) for x in lo], ci_high=[float(x) for x in hi],
        alpha=0.05, epsilon=0.5, delta=0.0, mechanism="laplace",
        noise={"counts": {"distribution": "discrete laplace", "scale": 2.0}}, scale=2.0,
        timestamp="2025-03-01T12:00:00+00:00", release_key="ab" * 32,
        extra={"halfwidth": halfwidth, **(extra or {})})


@pytest.fixture(scope="module")
def schema():
    return toy_schema()


@pytest.fixture
def hist():
    return make_release("histogram", ["6", "7", "8", "missing", "other"], [120, 80, -3, 2, 5], column="g",
                        bin_edges=None, date_unit=None, description="Distribution of Gleason")


# ---------------------------------------------------------------------------------- counts
def test_negative_count_drawn_as_zero_raw_value_kept(hist, schema):
    fig = charts.release_figure(hist, schema)
    bar = fig.data[0]
    assert isinstance(bar, go.Bar)
    assert list(bar.y) == [120, 80, 0, 2, 5]
    assert bar.customdata[2][0] == -3                      # raw value in customdata
    assert "-3" in bar.hovertext[2] and "shown as 0" in bar.hovertext[2]
    assert fig.layout.xaxis.ticktext[2].endswith("*")      # flagged on the axis
    assert "shown as 0" in fig.layout.title.subtitle.text

    t = charts.release_table(hist)
    assert list(t.columns[:5]) == ["label", "value", "shown", "ci_low", "ci_high"]
    assert "note" in t.columns
    assert t.loc[2, "value"] == -3 and t.loc[2, "shown"] == 0
    assert t.loc[2, "ci_low"] == pytest.approx(-10.3)      # table keeps the raw interval
    assert t.loc[2, "note"] and (t.loc[[0, 1, 3, 4], "note"] == "").all()


def test_error_bars_match_interval_clipped_at_zero(hist, schema):
    bar = charts.release_figure(hist, schema).data[0]
    y = np.asarray(bar.y, float)
    top = y + np.asarray(bar.error_y.array, float)
    bottom = y - np.asarray(bar.error_y.arrayminus, float)
    assert bar.error_y.symmetric is False
    np.testing.assert_allclose(top, np.maximum(hist.ci_high, 0))
    np.testing.assert_allclose(bottom, np.maximum(hist.ci_low, 0))


def test_missing_and_other_buckets_stay_grey(hist, schema):
    bar = charts.release_figure(hist, schema).data[0]
    assert list(bar.x) == hist.labels                      # real buckets are kept
    colours = list(bar.marker.color)
    assert colours[3] == colours[4] == GREY
    assert colours[0] == colours[1] == colours[2] == PALETTE[0]


def test_layout_title_size_and_axis_units(hist, schema):
    fig = charts.release_figure(hist, schema)
    assert fig.layout.title.text == hist.description
    assert fig.layout.height == 420 and fig.layout.font.size == 13
    assert fig.layout.yaxis.title.text == "Number of patients"
    assert fig.layout.xaxis.title.text == "Gleason"
    num = make_release("histogram", ["0–2", "2–4", "missing"], [5, 6, 1], column="x", bin_edges=None,
                       date_unit=None)
    assert charts.release_figure(num, schema).layout.xaxis.title.text == "PSA (ng/mL)"
    # without a schema a histogram cannot know whether it counts patients or exams: never "rows"
    assert charts.release_figure(hist).layout.yaxis.title.text == "Number of records"


def test_single_count(schema):
    rel = make_release("count", ["patients"], [1012], column=None)
    fig = charts.release_figure(rel)
    assert len(fig.data) == 1 and list(fig.data[0].y) == [1012]
    assert fig.layout.yaxis.title.text == "Number of patients"


def test_date_histogram_is_a_line_with_band(schema):
    months = [f"2020-{m:02d}" for m in range(1, 13)] + ["missing"]
    vals = [10, 12, -2, 30, 25, 20, 18, 16, 14, 12, 10, 8, 4]
    rel = make_release("histogram", months, vals, column="d", bin_edges=None, date_unit=None)
    for fig in (charts.release_figure(rel, schema), charts.release_figure(rel)):  # schema kind or label shape
        band, line = fig.data
        assert band.fill == "toself" and band.hoverinfo == "skip"
        assert line.mode == "lines+markers" and len(line.x) == 12         # 'missing' is not a date
        assert str(line.x[0]).startswith("2020-01-01")
        assert line.y[2] == 0 and line.customdata[2][0] == -2
        assert max(band.y) == pytest.approx(30 + 7.3) and min(band.y) == 0
        assert "missing: 4" in fig.layout.title.subtitle.text
    assert charts.release_figure(rel, schema).layout.xaxis.title.text == "d (per month)"


# ----------------------------------------------------------------------------- means etc.
def test_mean_is_dot_and_interval_with_value(schema):
    rel = make_release("mean", ["PSA"], [4.873], lo=[4.21], hi=[5.53], column="x", description="Mean PSA")
    fig = charts.release_figure(rel, schema)
    (tr,) = fig.data
    assert tr.x[0] == pytest.approx(4.873)
    assert tr.error_x.array[0] == pytest.approx(5.53 - 4.873)
    assert tr.error_x.arrayminus[0] == pytest.approx(4.873 - 4.21)
    assert "4.87 ng/mL" in tr.text[0] and "4.21 to 5.53" in tr.text[0]
    assert "4.21 to 5.53" in tr.hovertext[0] and tr.marker.symbol[0] == "circle"
    tiny = make_release("mean", ["PSA"], [5.0], lo=[0.0], hi=[10.0], column="x",
                        extra={"noisy_count": 3.0, "count_halfwidth": 7.4})
    tf = charts.release_figure(tiny, schema)
    assert math.isnan(tf.data[0].x[0]) and tf.data[0].text[0] == ""          # no dot, no number
    assert tf.data[1].text == ("not enough patients to estimate",)
    assert "not enough patients to estimate" in charts.describe_interval(tiny, 0, schema)
    assert fig.layout.xaxis.title.text == "Mean PSA (ng/mL)"
    q = make_release("quantile", ["PSA"], [5.0], lo=[0.0], hi=[10.0], column="x", q=0.5,
                     extra={"interval": "public bounds (placeholder)"})
    assert charts.release_figure(q, schema).layout.xaxis.title.text == "Median PSA (ng/mL)"
    assert "public bounds" in charts.release_table(q).loc[0, "note"]


def test_grouped_mean_per_group(schema):
    rel = make_release("grouped-mean", ["6", "7", "8", "missing", "other"], [4.5, 5.2, 6.1, 5.0, 5.0],
                       lo=[4.2, 4.8, 5.4, 0, 0], hi=[4.8, 5.6, 6.8, 10, 10], column="x", by="g",
                       extra={"noisy_counts": [500, 300, 200, 3, -1], "count_halfwidth": 7.4})
    fig = charts.release_figure(rel, schema)
    tr, note = fig.data
    assert list(tr.y) == rel.labels and len(tr.x) == 5
    assert list(tr.marker.color)[3:] == [GREY, GREY]
    assert [math.isnan(x) for x in tr.x] == [False] * 3 + [True] * 2          # empty groups: no dot
    assert list(tr.text)[3:] == ["", ""] and list(note.y) == ["missing", "other"]
    assert set(note.text) == {"not enough patients to estimate"}
    assert "Group size (noisy): 300" in tr.hovertext[1]
    t = charts.release_table(rel, schema)
    assert list(t["noisy_count"]) == [500, 300, 200, 3, -1]
    assert t.loc[3, "note"].startswith("not enough patients") and t.loc[0, "note"] == ""
    assert t["shown"].isna().tolist() == [False] * 3 + [True] * 2
    d = charts.display_table(rel, schema)
    assert d["Value"].tolist()[3:] == ["not enough patients to estimate"] * 2
    assert d["95% interval"].tolist()[3:] == ["", ""] and d["Patients (noisy)"].tolist() == ["500", "300", "200", "", ""]
    assert d.columns[0] == "Gleason"
    # a grouped quantile whose interval spans the public range says nothing either
    gq = make_release("grouped-quantile", ["6", "7"], [4.0, 9.5], lo=[3.5, 0.0], hi=[4.5, 10.0], column="x",
                      by="g", q=0.5)
    g = charts.release_figure(gq, schema).data
    assert not math.isnan(g[0].x[0]) and math.isnan(g[0].x[1]) and list(g[1].y) == ["7"]
    assert fig.layout.yaxis.title.text == "Gleason"


def test_mean_on_a_public_bound_shows_its_interval_not_a_value(schema):
    """A group whose noisy mean was clamped to the column's public bound (0-10 ng/mL) with an
    informative interval: no dot and no number, its interval in grey with the words, in the chart,
    the table and the CSV; an empty group (count rule) stays silent; other groups keep their values."""
    rel = make_release("grouped-mean", ["6", "7", "8"], [10.0, 5.2, 0.0], lo=[8.1, 4.8, 0.0], hi=[10.0, 5.6, 10.0],
                       column="x", by="g", extra={"noisy_counts": [40, 300, -2], "empty_below": 9.0})
    assert charts.on_bound(rel, schema) == [True, False, False]          # '8' is empty: silent, not grey
    fig = charts.release_figure(rel, schema)
    main = fig.data[0]
    assert math.isnan(main.x[0]) and main.text[0] == "" and main.text[1] == "5.20" and math.isnan(main.x[2])
    grey = [t for t in fig.data[1:] if list(t.y) == ["6", "6"]]
    assert len(grey) == 1 and list(grey[0].x) == [8.1, 10.0]
    assert "not enough patients to estimate (95% interval 8.1 to 10 ng/mL)" in grey[0].text[1]
    assert "public bound 10 ng/mL (clamped)" in main.hovertext[0]
    silent = [t for t in fig.data[1:] if t.mode == "text"]
    assert len(silent) == 1 and list(silent[0].y) == ["8"]
    assert "public bound" in fig.layout.title.subtitle.text
    d = charts.display_table(rel, schema)
    assert d["Value"].tolist() == ["not enough patients to estimate", "5.2", "not enough patients to estimate"]
    assert d["95% interval"].tolist() == ["8.1 to 10", "4.8 to 5.6", ""]
    assert charts.release_table(rel, schema)["shown"].isna().tolist() == [True, False, True]
    # A single mean on a bound, and a value strictly inside, are told apart the same way.
    inside = make_release("mean", ["all"], [9.99], lo=[9.5], hi=[10.0], column="x")
    assert charts.on_bound(inside, schema) == [False]
    assert charts.on_bound(make_release("mean", ["all"], [0.0], lo=[0.0], hi=[0.4], column="x"), schema) == [True]


# -------------------------------------------------------------------------------- crosstab
def _crosstab(extra=True):
    rows, cols = ["6", "7", "8", "missing", "other"], ["0–2", "2–4", "4–6", "missing"]
    vals = [float(i * 3 - 4) for i in range(len(rows) * len(cols))]
    return make_release("crosstab", [f"{r} | {c}" for r in rows for c in cols], vals, halfwidth=7.3,
                        extra={"rows": rows, "cols": cols} if extra else {}, column="g", by="x"), rows, cols


def test_crosstab_heatmap_shape_and_hover(schema):
    rel, rows, cols = _crosstab()
    fig = charts.release_figure(rel, schema)
    hm, veil = fig.data
    assert isinstance(hm, go.Heatmap)
    unsure = (np.asarray(rel.values) - 7.3) <= 0               # intervals that include 0 are veiled
    np.testing.assert_array_equal(~np.isnan(np.asarray(veil.z, float)).ravel(), unsure)
    assert "interval includes 0" in json.dumps(fig.to_plotly_json()["layout"], ensure_ascii=False)
    z = np.asarray(hm.z, float)
    assert z.shape == (len(rows), len(cols))
    assert list(hm.y) == rows and list(hm.x) == cols
    np.testing.assert_allclose(z.ravel(), np.maximum(rel.values, 0))
    assert hm.text[0][0] == "≤3" and hm.text[0][2] == "≤9" and hm.text[1][0] == "8"   # -4±7.3, 2±7.3, 8±7.3
    assert "may be empty" in hm.customdata[0][0][2] and "may be empty" not in hm.customdata[1][0][2]
    assert hm.customdata[0][0][0] == -4                     # raw value kept
    assert "± 7.3" in hm.customdata[1][2][2]
    assert fig.layout.yaxis.title.text == "Gleason" and fig.layout.xaxis.title.text == "PSA (ng/mL)"
    t = charts.release_table(rel)
    assert list(t["row"][:4]) == ["6"] * 4 and list(t["col"][:4]) == cols


def test_crosstab_axes_from_labels_when_extra_is_absent():
    rel, rows, cols = _crosstab(extra=False)
    z = np.asarray(charts.release_figure(rel).data[0].z)
    assert z.shape == (len(rows), len(cols))


def test_labels_are_escaped_for_plotly_pseudo_html(schema):
    rel = make_release("histogram", ["< 0", "0–5", "> 5", "<b>x</b> & y"], [1, 2, 3, 4], column="x",
                       bin_edges=None, date_unit=None, description="PSA <i>bins</i>")
    fig = charts.release_figure(rel, schema)
    assert list(fig.layout.xaxis.ticktext) == ["&lt; 0", "0–5", "&gt; 5", "&lt;b&gt;x&lt;/b&gt; &amp; y"]
    assert fig.data[0].hovertext[0].startswith("<b>&lt; 0</b>")
    assert fig.layout.title.text == "PSA &lt;i&gt;bins&lt;/i&gt;"
    assert list(fig.data[0].x) == rel.labels                 # category values stay the raw labels


# ---------------------------------------------------------------------------------- words
def test_describe_interval(hist, schema):
    assert charts.describe_interval(hist, 0, schema) == "between 113 and 127 patients (95% interval)"
    assert charts.describe_interval(hist, 2, schema) == "between 0 and 4 patients (95% interval)"
    mean = make_release("mean", ["PSA"], [4.873], lo=[4.21], hi=[5.53], column="x")
    assert charts.describe_interval(mean, 0, schema) == "between 4.21 and 5.53 ng/mL (95% interval)"
    count = make_release("count", ["patients"], [127], column=None)
    assert charts.describe_interval(count, 0) == "between 120 and 134 patients (95% interval)"


# ------------------------------------------------------------------------------- downloads
def test_csv_neutralises_formulas_but_keeps_numbers():
    rel = make_release("histogram", ["=cmd|' /C calc'!A0", "@SUM(1)", "+1", "\tx", "ok"], [-3.5, 2, 3, 4, 5],
                       column="g", bin_edges=None, date_unit=None)
    raw = charts.release_csv_bytes(rel)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    head, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(head)}
    labels = [r[col["label"]] for r in body]
    assert labels == ["'=cmd|' /C calc'!A0", "'@SUM(1)", "'+1", "'\tx", "ok"]
    assert body[0][col["value"]] == "-3.5"                  # a negative number stays a number
    assert body[0][col["ci_low"]] == "-10.8" and body[0][col["shown"]] == "0.0"
    for meta in ("dataset", "analyst", "statistic", "epsilon", "delta", "mechanism", "interval_level",
                 "released_at", "release_key"):
        assert meta in col
    assert {r[col["epsilon"]] for r in body} == {"0.5"}
    df = pd.read_csv(io.BytesIO(raw))
    assert df["value"].dtype.kind == "f" and df.loc[0, "value"] == -3.5
    for r in body:                                          # no text cell starts a formula
        for cell in r:
            try:
                float(cell)
            except ValueError:
                assert not cell[:1] in ("=", "+", "-", "@", "\t", "\r"), cell


def test_json_round_trips(hist):
    raw = charts.release_json_bytes(hist)
    assert raw.decode().startswith("{\n  ")                 # pretty-printed
    back = Release.from_dict(json.loads(raw))
    assert back == hist
    with_nan = make_release("mean", ["PSA"], [float("nan")], lo=[0.0], hi=[10.0], column="x",
                            extra={"sum_halfwidth": float("inf")})
    d = json.loads(charts.release_json_bytes(with_nan),
                   parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert d["values"] == [None] and d["extra"]["sum_halfwidth"] is None
    assert math.isnan(Release.from_dict(d).values[0])


# ------------------------------------------------------------------------- owner-only views
def test_compare_figure():
    fig = charts.compare_figure(["6", "7", "8"], [118, 84, 1], [120, 80, -3], [112.7, 72.7, -10.3],
                                [127.3, 87.3, 4.3], "True vs private", value_title="Patients")
    true, noisy = fig.data
    assert true.name == "True value (not private)" and true.marker.pattern.shape
    assert noisy.error_y.array[1] == pytest.approx(7.3) and noisy.error_y.arrayminus[2] == pytest.approx(7.3)
    assert fig.layout.barmode == "group" and fig.layout.showlegend
    single = charts.compare_figure(["PSA"], [4.9], [4.87], [4.21], [5.53], "Mean PSA")
    assert all(isinstance(t, go.Scatter) for t in single.data)
    assert single.data[0].name == "True value (not private)"
    assert single.data[1].error_x.array[0] == pytest.approx(5.53 - 4.87)


def test_spread_figure():
    rng = np.random.default_rng(0)
    truth = np.array([118.0, 84.0, 1.0])
    draws = truth + rng.laplace(0, 2, (400, 3))
    sim = Simulation(["6", "7", "8"], truth.tolist(), draws, draws - 6, draws + 6, 0.5, 0.0, "laplace", 2.0, {})
    fig = charts.spread_figure(sim, "Spread")
    box, tr = fig.data
    assert isinstance(box, go.Box) and list(box.x) == ["6", "7", "8"]
    np.testing.assert_allclose(box.median, np.median(draws, axis=0))
    np.testing.assert_allclose(box.upperfence, np.quantile(draws, 0.975, axis=0))
    assert tr.name == "True value (not private)" and list(tr.y) == truth.tolist()


def test_size_and_timeseries_figures():
    fig = charts.size_figure([100, 1000, 10000], [0.3, 0.03, 0.003], "Relative error")
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    months = ["2021-01", "2021-02", "2021-03", "missing"]
    fig = charts.timeseries_figure(months, {"CT": ([5, -1, 7, 2], [0, -6, 2, -3], [10, 4, 12, 7]),
                                            "MRI": ([3, 4, 5, 1], [1, 2, 3, 0], [5, 6, 7, 2])},
                                   "Scans per month", "Scans (count)", clip_zero=True)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["CT", "MRI"] and len(lines[0].x) == 3
    assert lines[0].y[1] == 0 and lines[0].customdata[1][0] == -1
    assert lines[0].line.color != lines[1].line.color


def test_spend_figure_cumulative():
    entries = [
        {"ts": "2025-01-01T10:00:00+00:00", "kind": "budget", "analyst": "ana", "epsilon": 2.0},
        {"ts": "2025-01-01T10:01:00+00:00", "kind": "reserve", "analyst": "ana", "epsilon": 0.5},
        {"ts": "2025-01-01T10:02:00+00:00", "kind": "result", "analyst": "ana", "epsilon": None},
        {"ts": "2025-01-01T10:30:00+00:00", "kind": "budget", "analyst": "bob", "epsilon": 1.0},
        {"ts": "2025-01-01T12:00:00+00:00", "kind": "reserve", "analyst": "bob", "epsilon": 0.1},
        {"ts": "2025-01-01T11:00:00+00:00", "kind": "reserve", "analyst": "ana", "epsilon": 0.25},
        {"ts": "2025-01-01T11:30:00+00:00", "kind": "failure", "analyst": "ana", "epsilon": 0.25},
        {"ts": "2025-01-02T09:00:00+00:00", "kind": "budget", "analyst": "ana", "epsilon": 3.0},
        {"ts": "2025-01-02T10:00:00+00:00", "kind": "reserve", "analyst": "ana", "epsilon": 1.0},
    ]
    fig = charts.spend_figure(entries)
    by_name = {t.name: t for t in fig.data}
    ana = by_name["ana spent"]
    assert ana.line.shape == "hv"
    assert list(ana.y) == pytest.approx([0, 0.5, 0.75, 1.75, 1.75])   # start, 3 reserves, carried to the end
    assert list(by_name["bob spent"].y) == pytest.approx([0, 0.1, 0.1])
    budget = by_name["ana budget"]
    assert budget.line.dash == "dash" and list(budget.y) == [2.0, 3.0, 3.0]
    assert by_name["bob budget"].line.color == by_name["bob spent"].line.color
    no_budget = charts.spend_figure([e for e in entries if e["kind"] != "budget"])
    assert not any("budget" in t.name for t in no_budget.data)
    assert len(charts.spend_figure([]).data) == 0


# ------------------------------------------------------------------------------- colours
# Machado et al. (2009) full-severity simulation matrices, linear RGB.
_CVD = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
}


def _rgb(c: str) -> tuple[int, int, int]:
    c = c.strip()
    if c.startswith("rgba(") or c.startswith("rgb("):
        r, g, b = (int(float(x)) for x in c[c.index("(") + 1:-1].split(",")[:3])
        return r, g, b
    h = c.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def _hex(c: str) -> str:
    return "#{:02X}{:02X}{:02X}".format(*_rgb(c))


def _colours(fig: go.Figure) -> set[str]:
    found: set[str] = set()

    def add(v):
        if isinstance(v, str):
            found.add(_hex(v))
        elif isinstance(v, (list, tuple)):
            for x in v:
                add(x)

    for t in fig.data:
        j = t.to_plotly_json()
        add(j.get("fillcolor"))
        for part in ("marker", "line"):
            d = j.get(part) or {}
            add(d.get("color"))
            add((d.get("line") or {}).get("color"))
        if j.get("colorscale"):
            add([c for _, c in j["colorscale"]])
    return found


def _simulated_distance(a: str, b: str, m: np.ndarray) -> float:
    def lin(c):
        x = np.array(_rgb(c)) / 255
        return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)

    def srgb(x):
        x = np.clip(x, 0, 1)
        return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)

    return float(np.linalg.norm(srgb(m @ lin(a)) - srgb(m @ lin(b))) * 255)


def _all_figures(schema, hist):
    rel, _, _ = _crosstab()
    mean = make_release("mean", ["PSA"], [4.9], column="x")
    gm = make_release("grouped-mean", ["6", "7", "missing"], [4.5, 5.2, 5.0], column="x", by="g",
                      extra={"noisy_counts": [500, 300, 3], "count_halfwidth": 7.4})
    dates = make_release("histogram", ["2020-01", "2020-02", "missing"], [4, 5, 1], column="d", bin_edges=None,
                         date_unit=None)
    eps = np.geomspace(0.01, 10, 5)
    draws = np.array([[1.0, 2.0], [2.0, 3.0], [1.5, 2.5]])
    return [
        charts.release_figure(hist, schema), charts.release_figure(rel, schema),
        charts.release_figure(mean, schema), charts.release_figure(gm, schema), charts.release_figure(dates, schema),
        charts.compare_figure(["a", "b"], [1, 2], [1.1, 2.2], [0, 1], [2, 3], "c"),
        charts.spread_figure(Simulation(["a", "b"], [1.0, 2.0], draws, draws - 1, draws + 1, 1.0, 0.0, "laplace",
                                        1.0, {}), "s"),
        charts.tradeoff_figure(eps, 1 / eps, 1 / eps),
        charts.size_figure([10, 100], {"ε = 0.25": [0.3, 0.03], "ε = 1": [0.1, 0.01]}, "s"),
        charts.timeseries_figure(["2020-01", "2020-02"], {k: ([1, 2], [0, 1], [2, 3]) for k in "ABCDE"}, "t", "y"),
        charts.spend_figure([{"ts": "2025-01-01T10:00:00", "kind": "reserve", "analyst": a, "epsilon": 0.1}
                             for a in "abcd"]),
    ]


def test_palette_is_okabe_ito_and_no_red_green_pair(schema, hist):
    assert set(PALETTE) == OKABE_ITO and len(PALETTE) == 8
    for fig in _all_figures(schema, hist):
        used = _colours(fig)
        chromatic = {c for c in used if len(set(_rgb(c))) > 1}       # greys/black/white are always safe
        allowed = set(PALETTE) | {GREY} | {charts._HEATMAP_SCALE[0][1]}
        assert chromatic <= allowed, chromatic - allowed
        # every pair of colours that share a figure stays apart for protanopes and deuteranopes
        series = sorted((chromatic | ({GREY} & used)) - {charts._HEATMAP_SCALE[0][1]})
        for a, b in itertools.combinations(series, 2):
            for name, m in _CVD.items():
                assert _simulated_distance(a, b, m) > 30, (a, b, name, fig.layout.title.text)


@pytest.mark.parametrize("path", [Path(charts.__file__), *sorted((Path(charts.__file__).parent / "figures").glob("*.py")),
                                  Path(charts.__file__).parent / "survival_chart.py"], ids=lambda p: p.name)
def test_module_is_pure(path):
    """Figure builders (the facade, every dashboard/figures module, the survival chart) are pure."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"streamlit", "opendp", "sqlite3", "requests", "os", "random"}


def test_release_not_mutated(hist, schema):
    before = hist.to_dict()
    charts.release_figure(hist, schema)
    charts.release_table(hist)
    charts.release_csv_bytes(hist)
    assert hist.to_dict() == before


def test_rows_csv_bytes_neutralises_formulas_and_keeps_columns():
    import csv, io
    data = charts.rows_csv_bytes([{"who": "=cmd()", "ε": "0.5"}, {"who": "ann", "ε": ""}])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["who", "ε"], ["'=cmd()", "0.5"], ["ann", ""]]
    assert charts.rows_csv_bytes([]).decode("utf-8-sig") == "\r\n"


def test_display_table_has_plain_headers_whole_counts_and_no_negative_counts():
    rel = make_release("histogram", ["6", "7", "other"], [6953.5704, 12.4, -3.2], lo=[6940.1, -1.5, -16.6],
                       hi=[6967.0, 26.3, 10.2], column="g", bin_edges=None, date_unit=None)
    df = charts.display_table(rel)
    assert list(df.columns) == ["g", "Value", "95% interval", "Note"]     # the column's name: no schema here
    assert df["Value"].tolist() == ["6,954", "12", "0"]
    assert df["95% interval"].tolist() == ["6,940 to 6,967", "0 to 26", "0 to 10"]
    assert "below 0" in df["Note"].iloc[2]
    assert not any(c in df.columns for c in ("ci_low", "ci_high", "shown"))
