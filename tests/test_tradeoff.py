"""Trade-off page (data owner): figure builders, the expected line, the page as owner, and that the
faster simulation (input converted once to OpenDP's native object, draws on threads) still draws
exactly the release's noise. No timings are asserted here (see benchmarks/simulate_speed.py)."""
from __future__ import annotations

import ast
import base64
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dashboard import charts
from dashboard import tradeoff_charts as tc
from dashboard.widgets import PRESETS
from data.prepare import prepare
from privacy.measurements import Outcome, build_plan
from privacy.queries import (CountQuery, GroupedMeanQuery, GroupedQuantileQuery, HistogramQuery, MeanQuery,
                             QuantileQuery)
from privacy.release import preview
from privacy.simulate import (Tradeoff, count_error_by_size, draw_outcomes, native_input, simulate, tradeoff,
                              true_mean)
from tests.conftest import toy_frame, toy_schema
from tests.test_stats import moments, variance_check

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
EPS = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0]


@pytest.fixture(scope="module")
def toy():
    return prepare(toy_frame(1000, seed=1), toy_schema())


def _dashed(fig):
    return [s for s in fig.layout.shapes if s.line.dash == "dash"]


# ------------------------------------------------------------------------ pure figure builders
def test_preset_lines_are_explores_presets():
    eps = np.geomspace(0.01, 10, 12)
    fig = tc.tradeoff_figure(eps, 3 / eps, 3.1 / eps, PRESETS)
    assert fig.layout.xaxis.type == "log"
    by_eps = sorted(PRESETS.items(), key=lambda kv: kv[1])
    assert [s.x0 for s in _dashed(fig)] == [v for _, v in by_eps]
    assert [a.text for a in fig.layout.annotations] == [k for k, _ in by_eps]
    assert [a.x for a in fig.layout.annotations] == pytest.approx([math.log10(v) for _, v in by_eps])
    text = json.dumps(fig.to_plotly_json(), default=str).lower()
    assert "dp creator" not in text and "high privacy" not in text and "low privacy" not in text
    assert [t.name for t in fig.data] == [tc.EXPECTED_NAME, tc.SIMULATED_NAME]
    assert fig.data[0].mode == "lines" and fig.data[1].mode == "markers"


def test_log_error_axis_keeps_the_preset_region_readable():
    """On the log axis every positive error is inside the range and the errors at the presets are
    spread over a good part of it (on a linear axis ε 0.01 squashes them to the bottom 10%); an
    error of 0 sits at the bottom edge as an open triangle, its hover says 0, the title says so."""
    eps = np.array(sorted({0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, *PRESETS.values()}))
    analytic = 3.0 / eps
    empirical = np.where(eps >= 10, 0.0, 3.1 / eps)
    fig = tc.tradeoff_figure(eps, analytic, empirical, PRESETS, y_title="95% error (patients)", log_y=True)
    y = fig.layout.yaxis
    assert y.type == "log" and y.title.text == "95% error (patients, log scale); ▽ = 0"
    assert len(y.title.text) <= 60                            # fits the vertical axis at 1400x900
    assert "▽ at the bottom edge: an error of exactly 0" in tc.tradeoff_caption(
        eps, analytic, draws=20, basis="b", zeros=tc.has_zero(empirical))
    assert tc._log_title("95% error (patients), median over bars") == \
        "95% error (patients, log scale), median over bars"
    assert tc._log_title("95% error") == "95% error (log scale)"
    lo, hi = y.range
    pos = np.r_[analytic, empirical[empirical > 0]]
    assert lo < math.log10(pos.min()) and math.log10(pos.max()) < hi
    at = np.log10([3.0 / v for v in PRESETS.values()])
    assert (at.max() - at.min()) / (hi - lo) > 0.25          # the presets' errors use a quarter of the axis
    dots = fig.data[1]
    assert list(dots.marker.symbol)[-1] == "triangle-down-open" and list(dots.customdata)[-1] == 0.0
    assert math.log10(list(dots.y)[-1]) == pytest.approx(lo + math.log10(1.25))
    assert "customdata" in dots.hovertemplate
    linear = tc.tradeoff_figure(eps, analytic, empirical, PRESETS)
    assert linear.layout.yaxis.type is None and linear.layout.yaxis.rangemode == "tozero"
    # nothing positive to show: a linear axis, no failure
    none = tc.tradeoff_figure([0.1, 1.0], [0.0, 0.0], [0.0, 0.0], PRESETS, log_y=True)
    assert none.layout.yaxis.type is None


def test_charts_reexports_the_moved_builders():
    assert charts.tradeoff_figure is tc.tradeoff_figure and charts.size_figure is tc.size_figure
    assert not hasattr(charts, "_tier_name")


def test_no_line_without_expected_values_and_caption_says_why():
    eps = [0.1, 0.5, 2.0]
    fig = tc.tradeoff_figure(eps, [math.nan] * 3, [3.0, 1.0, 0.5], PRESETS)
    assert [t.name for t in fig.data] == [tc.SIMULATED_NAME]
    cap = tc.tradeoff_caption(eps, [math.nan] * 3, draws=100, basis="b", missing="no true value", presets=PRESETS)
    assert cap.startswith("No expected-error line: no true value") and "Line:" not in cap
    # without a reason it still says that there is no line, never promises one
    assert "No expected-error line" in tc.tradeoff_caption(eps, None, draws=10, basis="b")


def test_partial_line_is_drawn_where_finite_and_the_caption_names_the_gaps():
    eps = [0.01, 0.1, 1.0]
    fig = tc.tradeoff_figure(eps, [math.inf, 2.0, 0.2], [9.0, 2.1, 0.2], PRESETS)
    line = fig.data[0]
    assert line.name == tc.EXPECTED_NAME and list(line.x) == [0.1, 1.0]
    cap = tc.tradeoff_caption(eps, [math.nan, 2.0, 0.2], draws=60, basis="the preview", missing="too few patients")
    assert "not drawn at ε 0.01: too few patients" in cap
    for name in PRESETS:
        assert name in tc.tradeoff_caption(eps, [1, 2, 3], draws=60, basis="b", presets=PRESETS)


def test_axis_titles():
    assert tc.tradeoff_y_title("histogram", "", per_value=True) == "95% error (patients), median over bars"
    assert tc.tradeoff_y_title("quantile", "ng/mL") == "95% error (ng/mL)"
    assert tc.tradeoff_y_title("grouped-mean", "ng/mL", per_value=True).endswith("median over groups")
    t = tc.size_y_title("mean", true_mean=7.25, unit="ng/mL")
    assert "relative to the true mean (7.25 ng/mL)" in t and "bound" not in t and "range" not in t
    assert "true mean" in tc.size_y_title("grouped-mean")
    assert "ranks" in tc.size_y_title("quantile")


def test_module_is_pure():
    tree = ast.parse(Path(tc.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"streamlit", "opendp", "sqlite3", "os", "random"}


# ------------------------------------------------------------------- the expected (analytic) line
@pytest.mark.parametrize("query", [CountQuery(), HistogramQuery(column="g"), MeanQuery(column="x"),
                                   QuantileQuery(column="x", q=0.5), QuantileQuery(column="x", q=0.1),
                                   GroupedMeanQuery(column="x", by="g"), GroupedQuantileQuery(column="x", by="g")],
                         ids=lambda q: q.stat + ("" if not hasattr(q, "q") else f"-{q.q}"))
def test_expected_line_for_every_statistic(toy, query):
    res = tradeoff(query, toy, EPS, draws=30)
    assert isinstance(res, Tradeoff) and [p.epsilon for p in res.points] == EPS
    analytic = [p.analytic for p in res.points]
    assert all(math.isfinite(a) and a >= 0 for a in analytic), analytic
    assert all(math.isfinite(p.empirical) for p in res.points)
    assert res.basis and not res.missing
    cap = tc.tradeoff_caption(EPS, analytic, draws=res.draws, basis=res.basis, missing=res.missing,
                              presets=PRESETS, stat=query.stat)
    assert cap.startswith("Line: expected 95% error from the release's public preview")
    fig = tc.tradeoff_figure(EPS, analytic, [p.empirical for p in res.points], PRESETS)
    assert fig.data[0].name == tc.EXPECTED_NAME and len(fig.data[0].x) == len(EPS)
    assert "rank" not in tc.tradeoff_y_title(query.stat, "ng/mL")


def test_expected_line_is_the_previews_accuracy(toy):
    """Counts: exactly the preview's ±. Mean: the preview's sum ± over the true number of patients."""
    res = tradeoff(CountQuery(), toy, [0.5], draws=20)
    assert res.points[0].analytic == pytest.approx(preview(CountQuery(), toy.schema, 0.5).halfwidth)
    res = tradeoff(MeanQuery(column="x"), toy, [0.5], draws=20)
    d = preview(MeanQuery(column="x"), toy.schema, 0.5).detail
    n = int(np.sum(~np.isnan(toy.numbers["x"])))
    assert res.points[0].analytic == pytest.approx(d["sum_halfwidth"] / (n - d["count_halfwidth"]))


def test_quantile_line_in_the_columns_unit_matches_the_simulation(toy):
    """The median's line (the preview's ± ranks stated in ng/mL on the true data) is the size of
    the simulated 95% error: within a factor 2 either way at each epsilon (200 draws)."""
    res = tradeoff(QuantileQuery(column="x", q=0.5), toy, [0.1, 0.5, 2.0], draws=200)
    for p in res.points:
        assert 0.5 <= p.empirical / p.analytic <= 2.0, p
    # at a huge epsilon the ranks are exact and only the rounding to the candidate grid is left
    big = tradeoff(QuantileQuery(column="x", q=0.5), toy, [50.0], draws=20).points[0]
    step = float(np.max(np.diff(toy.schema.column("x").quantile_candidates)))
    assert big.analytic <= step and big.empirical == pytest.approx(big.analytic, abs=1e-9)


def test_size_view_is_relative_to_the_true_mean(toy):
    m = true_mean(MeanQuery(column="x"), toy)
    assert m == pytest.approx(float(np.nanmean(toy.numbers["x"])))
    rel = count_error_by_size(MeanQuery(column="x"), toy.schema, 0.5, [100, 1000], true_mean=m)
    d = preview(MeanQuery(column="x"), toy.schema, 0.5).detail
    assert rel == pytest.approx([d["sum_halfwidth"] / (n - d["count_halfwidth"]) / m for n in (100, 1000)])
    assert all(math.isnan(r) for r in count_error_by_size(MeanQuery(column="x"), toy.schema, 0.5, [100]))
    counts = count_error_by_size(CountQuery(), toy.schema, 0.5, [100, 1000])
    assert counts == pytest.approx([preview(CountQuery(), toy.schema, 0.5).halfwidth / n for n in (100, 1000)])


# ------------------------------------------------- the faster simulation draws the same noise
def _raw_plan(plan):
    """The same plan whose post-processing keeps the raw noisy output (to check the noise itself)."""
    return dataclasses.replace(plan, finish=lambda raw, alpha: Outcome(list(np.ravel(raw)), [], []))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("query,draws", [(CountQuery(), 4000), (HistogramQuery(column="g"), 800),
                                         (QuantileQuery(column="x", q=0.5), 30)],
                         ids=["count", "histogram", "quantile-cells"])
def test_reused_native_input_draws_the_releases_noise(toy, query, draws, workers):
    """Noisy outputs of the one built measurement invoked on the once-converted input, on one or
    two threads: errors against the true counts have the exact variance of the reported noise
    (tolerance from the number of draws, tests/test_stats.py's variance_check: 5 sigma) and
    the draws are independent (no repeated output)."""
    plan = build_plan(query, toy.schema, 1.0)
    data = plan.make_input(toy)
    n_cells = len(plan.labels) if not isinstance(query, QuantileQuery) else len(
        toy.schema.column("x").quantile_candidates) + 1
    true = (np.bincount(data[(data >= 0) & (data < n_cells)], minlength=n_cells).astype(float)
            if not isinstance(query, CountQuery) else np.array([float(len(data))]))
    raws = np.array([o.values for o in draw_outcomes(_raw_plan(plan), data, draws, workers=workers)], dtype=float)
    assert raws.shape == (draws, len(true))
    noise, scale = plan.noise["counts"]
    ok, msg = variance_check(raws - true, *moments(noise, scale))
    assert ok, msg
    if raws.shape[1] > 20:
        assert len({r.tobytes() for r in raws}) == draws


def test_native_input_is_opendps_own_conversion(toy):
    plan = build_plan(QuantileQuery(column="x", q=0.5), toy.schema, 1.0)
    data = plan.make_input(toy)
    native = native_input(plan.measurement, data)
    assert type(native).__name__ == "AnyObjectPtr"
    before = data.copy()
    plan.measurement(native)
    np.testing.assert_array_equal(data, before)          # the prepared input is left as it was
    assert native_input(plan.measurement, "not an array") == "not an array"   # falls back, never raises


def test_grouped_mean_counts_keep_their_noise_through_polars(toy):
    """The grouped mean (a Polars measurement, its LazyFrame converted once): each group's noisy
    count minus the true count has the reported count noise's variance (threads on)."""
    q = GroupedMeanQuery(column="x", by="g")
    plan = build_plan(q, toy.schema, 1.0)
    x = toy.numbers["x"]
    g = toy.codes["g"][~np.isnan(x)]
    true = np.bincount(g, minlength=len(plan.labels)).astype(float)
    outs = draw_outcomes(plan, plan.make_input(toy), 700, workers=2)
    counts = np.array([o.extra["noisy_counts"] for o in outs], dtype=float)
    ok, msg = variance_check(counts - true, *moments(*plan.noise["count"]))
    assert ok, msg


def test_simulate_threads_and_one_thread_agree(toy):
    """Same released statistic law on one thread and on several: the mean's errors against the
    truth have the same spread (two-sample variance ratio within 5 sigma for 1,500 draws each)."""
    q = MeanQuery(column="x")
    a = simulate(q, toy, 0.5, 1500, workers=1).errors.ravel()
    b = simulate(q, toy, 0.5, 1500, workers=3).errors.ravel()
    va, vb = np.var(a), np.var(b)
    kurt = float(np.mean((a - a.mean()) ** 4) / va ** 2)
    tol = 5 * math.sqrt(2 * (kurt - 1) / len(a))          # sd of log(va/vb), delta method
    assert abs(math.log(va / vb)) <= tol, (va, vb, tol)
    assert abs(a.mean() - b.mean()) <= 5 * math.sqrt((va + vb) / len(a))


# ----------------------------------------------------------------------- the page as data owner
# the app_env fixture (private ledger, demo cohort, local owner) is in tests/conftest.py


def _figs(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _values(v) -> list[float]:
    """A Plotly JSON array: a list, or {'dtype': ..., 'bdata': base64} (typed arrays)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


@pytest.mark.parametrize("stat", ["quantile", "mean", "histogram"])
def test_page_as_owner(app_env, stat):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/tradeoff.py").run()
    assert not at.exception, at.exception
    assert any("true data" in w.value for w in at.warning)
    at.selectbox(key="tr_stat").select(stat).run()
    at.slider(key="tr_draws").set_value(20).run()
    at.button(key="tr_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    figs = _figs(at)
    main = figs[0]
    names = [d.get("name") for d in main["data"]]
    assert names == [tc.EXPECTED_NAME, tc.SIMULATED_NAME]
    by_eps = sorted(PRESETS.items(), key=lambda kv: kv[1])
    assert [a["text"] for a in main["layout"]["annotations"]] == [k for k, _ in by_eps]
    assert [s["x0"] for s in main["layout"]["shapes"]] == [v for _, v in by_eps]
    assert set(PRESETS.values()) <= set(_values(main["data"][1]["x"]))        # a simulated dot on every preset line
    cap = " ".join(c.value for c in at.caption)
    assert cap.startswith("Line: expected 95% error from the release's public preview")
    assert all(k in cap for k in PRESETS) and "DP Creator" not in cap
    if stat == "quantile":
        assert main["layout"]["yaxis"]["title"]["text"].startswith("95% error (years, log scale)")   # age
        assert "stated in years on the true values" in cap
    if stat == "mean":
        size = figs[1]
        assert "relative to the true mean" in size["layout"]["yaxis"]["title"]["text"]
    if stat == "histogram":
        assert main["layout"]["yaxis"]["title"]["text"].startswith("95% error (patients, log scale), median over bars")
    assert main["layout"]["yaxis"]["type"] == "log"


def test_survival_tradeoff_has_an_expected_line_near_the_simulated_error():
    """Survival on the Trade-off page: the expected line is the noise part of the release's own
    band on the true counts; at epsilon 1 it is within a factor 2 of the simulated 95% error."""
    from data.cohorts import load_cohort
    from data.prepare import prepare
    from privacy.queries import make_query
    from privacy.simulate import tradeoff
    frame, schema = load_cohort("prostate", rows=3000)
    cohort = prepare(frame, schema)
    res = tradeoff(make_query("survival", column="followup_months"), cohort, [0.5, 2.0], 60)
    for p in res.points:
        assert math.isfinite(p.analytic) and math.isfinite(p.empirical)
        assert 0.3 < p.analytic / p.empirical < 3.0, (p.epsilon, p.analytic, p.empirical)
    assert res.points[1].analytic < res.points[0].analytic
    assert "delta method" in res.basis and res.per_value
