"""Issue 13: aggregate in the engine, measure in OpenDP (the in-memory NumPy engine).

For every statistic with public cells or an integer sum: the engine's aggregates equal the
row-level OpenDP transformation's output on the same input (identical truth), the aggregate noise
costs what the row-level plan costs (OpenDP's maps at d_mid = the transformation's map), and the
released noise has the same law (variance and bias against the exact law of the reported scale,
5 sigma, for the engine path and the row-level path alike; a 20%-wrong scale fails).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from data.cohorts import load_cohort
from data.prepare import prepare
from privacy.engine import ROW_LEVEL, EngineUnsupported, aggregate_noise, invoke, numpy_aggregates
from privacy.measurements import build_plan
from privacy.opendp_runtime import dp
from privacy.queries import (CountQuery, CrossTabQuery, GroupedMeanQuery, GroupedQuantileQuery, HistogramQuery,
                             MeanQuery, QuantileQuery, SurvivalQuery, Where)
from privacy.stats.mean import SUM_RESOLUTION_STEPS as H
from tests.conftest import toy_frame, toy_schema
from tests.test_stats import moments, variance_check

QUERIES = {
    "count": CountQuery(),
    "count-where": CountQuery(where=Where("risk_group", "high")),
    "hist-categorical": HistogramQuery(column="gleason_score"),
    "hist-numeric": HistogramQuery(column="psa"),
    "hist-date": HistogramQuery(column="diagnosis_date", date_unit="year"),
    "crosstab": CrossTabQuery(column="gleason_score", by="risk_group"),
    "mean": MeanQuery(column="psa"),
    "mean-where": MeanQuery(column="age", where=Where("site", "Site B")),
    "quantile": QuantileQuery(column="psa", q=0.5),
    "grouped-quantile": GroupedQuantileQuery(column="psa", by="risk_group", q=0.25),
    "grouped-mean": GroupedMeanQuery(column="psa", by="risk_group", where=Where("site", "Site A")),
    "survival": SurvivalQuery(column="followup_months", endpoint="cancer_specific", by="risk_group"),
}


@pytest.fixture(scope="module")
def prostate():
    frame, schema = load_cohort("prostate", rows=3000, seed=7)
    return prepare(frame, schema)


def _row_transformation(plan, form):
    """The row-level transformation the plan's measurement starts with (OpenDP's own constructors)."""
    space = dp.vector_domain(dp.atom_domain(T=dp.i32)), dp.symmetric_distance()
    if form.kind == "sum_count":
        s64 = dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.symmetric_distance()
        return [s64 >> dp.t.then_clamp(bounds=(-H, H)) >> dp.t.make_bounded_int_split_sum(bounds=(-H, H), T=dp.i64),
                s64 >> dp.t.then_count()]
    part = form.parts[0]
    if part.size is None:
        return [space >> dp.t.then_count(TO=dp.i32)]
    return [space >> dp.t.then_count_by_categories(categories=list(range(part.size)), null_category=False)]


def _grouped_truth(plan, cohort):
    """Per-group sums by OpenDP's split sum on each group's rounded values, counts by its
    count_by_categories on the group codes."""
    from privacy.measurements import _rows
    from privacy.stats.mean import _quantised
    q = plan.query
    mask = _rows(cohort, q)
    v = _quantised(cohort, q.column, mask, plan.extra["centre"], 1 / plan.extra["sum_unit"])
    keep = ~np.isnan(cohort.numbers[q.column]) & (mask if mask is not None else True)
    g = cohort.codes[q.by][keep]
    s64 = dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.symmetric_distance()
    split = s64 >> dp.t.then_clamp(bounds=(-H, H)) >> dp.t.make_bounded_int_split_sum(bounds=(-H, H), T=dp.i64)
    G = len(plan.labels)
    counts = (dp.vector_domain(dp.atom_domain(T=dp.i32)), dp.symmetric_distance()) >> \
        dp.t.then_count_by_categories(categories=list(range(G)), null_category=False)
    return [[split(v[g == j].copy()) for j in range(G)], counts(g.astype(np.int32))]


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("name", list(QUERIES))
def test_engine_aggregates_and_cost_equal_the_row_level_plan(prostate, name, mechanism):
    plan = build_plan(QUERIES[name], prostate.schema, 0.7, mechanism)
    form = aggregate_noise(plan)
    expected = plan.cost.rho if any(d.endswith("gaussian") for d, _ in plan.noise.values()) else plan.cost[0]
    assert form.cost == pytest.approx(expected, rel=1e-9)
    for part in form.parts:                  # d_mid is the row transformation's map at d_in
        assert part.d_mid == plan.d_in * (H if part.name == "sum" else 1)
    got = numpy_aggregates(plan, prostate)
    truth = (_grouped_truth(plan, prostate) if form.kind == "grouped_sum_count"
             else [t(plan.make_input(prostate)) for t in _row_transformation(plan, form)])
    for g, t in zip(got, truth):
        assert np.array_equal(np.asarray(g), np.asarray(t))
    raw = invoke(plan, prostate)
    ref = plan.measurement(plan.make_input(prostate))
    assert np.asarray(raw).shape == np.asarray(ref).shape
    out = plan.finish(raw, 0.05)                # the statistic's own post-processing accepts it
    assert len(out.values) == len(plan.finish(ref, 0.05).values)


def test_several_rows_per_patient_cost_and_distance():
    schema = toy_schema(max_rows_per_unit=3)
    cohort = prepare(toy_frame(900, rows_per_unit=3), schema)
    for q in (HistogramQuery(column="g"), MeanQuery(column="x"), CountQuery()):
        plan = build_plan(q, schema, 1.0)
        form = aggregate_noise(plan)
        assert form.parts[0].d_mid == 3 * (H if form.kind == "sum_count" else 1)
        assert form.cost == pytest.approx(plan.cost[0]) == pytest.approx(1.0)
        invoke(plan, cohort)


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_grouped_mean_parts_and_cost_from_opendp(prostate, mechanism):
    """Per-group sums and counts: input distances from the row transformations' maps, and the
    two parts' cost equals OpenDP's own composition of the same noises on one row-level input."""
    q = GroupedMeanQuery(column="psa", by="risk_group")
    plan = build_plan(q, prostate.schema, 0.5, mechanism)
    form = aggregate_noise(plan)
    G = len(plan.labels)
    assert form.kind == "grouped_sum_count" and [p.size for p in form.parts] == [G, G]
    assert [p.d_mid for p in form.parts] == [plan.d_in * H, plan.d_in]
    (_, s_sum), (_, s_cnt) = plan.noise["sum"], plan.noise["count"]
    space = dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.symmetric_distance()
    noise = dp.m.then_laplace if mechanism == "laplace" else dp.m.then_gaussian
    composed = dp.c.make_composition([
        space >> dp.t.then_clamp(bounds=(-H, H)) >> dp.t.make_bounded_int_split_sum(bounds=(-H, H), T=dp.i64)
        >> noise(scale=s_sum),
        space >> dp.t.then_count() >> noise(scale=s_cnt)])
    expected = plan.cost[0] if mechanism == "laplace" else plan.cost.rho
    assert composed.map(plan.d_in) == pytest.approx(expected, rel=1e-9) == pytest.approx(form.cost, rel=1e-9)
    if mechanism == "laplace":
        assert plan.cost[0] <= 0.5
    sums, counts = numpy_aggregates(plan, prostate)
    x, g = prostate.numbers["psa"], prostate.codes["risk_group"]
    assert np.array_equal(counts, np.bincount(g[~np.isnan(x)], minlength=G))
    out = plan.run(prostate)
    assert len(out.values) == G and len(out.extra["noisy_counts"]) == G


def _flat(parts) -> np.ndarray:
    return np.concatenate([np.atleast_1d(np.asarray(v, dtype=float)) for v in parts])


def _errors(plan, cohort, engine, draws):
    """Noise of `draws` releases (released aggregates minus the true aggregates), one row each."""
    truth = _flat(numpy_aggregates(plan, cohort))
    raw = [invoke(plan, cohort, engine) for _ in range(draws)]
    if aggregate_noise(plan).kind == "cells":
        raw = [[r] for r in raw]
    return np.array([_flat(r) for r in raw]) - truth


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("name", ["hist-categorical", "crosstab", "grouped-quantile", "survival"])
def test_engine_noise_has_the_row_level_law(prostate, name, mechanism):
    plan = build_plan(QUERIES[name], prostate.schema, 0.7, mechanism)
    noise, scale = plan.noise["counts"]
    var, k4 = moments(noise, scale)
    cells = aggregate_noise(plan).parts[0].size
    draws = max(20, math.ceil(4000 / cells))
    for engine in (None, ROW_LEVEL):
        err = _errors(plan, prostate, engine, draws)
        ok, msg = variance_check(err, var, k4)
        assert ok, f"{engine or 'numpy'}: {msg}"
    wrong = variance_check(_errors(plan, prostate, None, draws), *moments(noise, 1.2 * scale))
    assert not wrong[0], "a 20%-wrong scale must fail: " + wrong[1]


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("query", [QUERIES["mean"], GroupedMeanQuery(column="psa", by="risk_group")],
                         ids=["mean", "grouped-mean"])
def test_engine_mean_noise_has_the_row_level_law(prostate, mechanism, query):
    plan = build_plan(query, prostate.schema, 0.7, mechanism)
    per = len(plan.labels) if isinstance(query, GroupedMeanQuery) else 1
    (n_sum, s_sum), (n_cnt, s_cnt) = plan.noise["sum"], plan.noise["count"]
    for engine in (None, ROW_LEVEL):
        err = _errors(plan, prostate, engine, math.ceil(4000 / per))
        for part, (noise, scale) in zip((err[:, :per], err[:, per:]), ((n_sum, s_sum), (n_cnt, s_cnt))):
            ok, msg = variance_check(part, *moments(noise, scale))
            assert ok, f"{engine or 'numpy'}: {msg}"
            assert not variance_check(part, *moments(noise, 1.2 * scale))[0], "a 20%-wrong scale must fail"


def test_mean_input_is_within_the_clamp_at_the_public_bounds():
    """Values at, beyond and between the public bounds: the engine's integer sum equals OpenDP's
    clamped split sum (the engine does not clamp again)."""
    import pandas as pd
    schema = toy_schema()
    frame = pd.DataFrame({"pid": range(6), "g": ["6"] * 6, "x": [0.0, 10.0, -5.0, 25.0, 5.0, 9.999999999],
                          "d": pd.to_datetime(["2020-01-01"] * 6)})
    cohort = prepare(frame, schema)
    plan = build_plan(MeanQuery(column="x"), schema, 1.0)
    s, n = numpy_aggregates(plan, cohort)
    (t_sum, t_cnt) = _row_transformation(plan, aggregate_noise(plan))
    x = plan.make_input(cohort)
    assert np.abs(x).max() <= H and s == t_sum(x.copy()) and n == t_cnt(x.copy()) == 6


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_empty_groups_pass_the_may_be_empty_threshold_with_tiny_probability(prostate, mechanism):
    """`empty_below` (what screens use to show 'not enough patients'): an empty group's noisy count
    exceeds it with probability at most 1e-6 (exact law of OpenDP's integer noise), while the 95%
    box alone would let about 1 empty group in 80 show a value."""
    from tests.test_stats import lattice_pmf
    plan = build_plan(GroupedMeanQuery(column="psa", by="risk_group"), prostate.schema, 0.25, mechanism)
    out = plan.run(prostate)
    noise, scale = plan.noise["count"]
    k, pmf = lattice_pmf(noise, scale)
    tail = lambda t: float(pmf[k > t].sum())           # noqa: E731
    assert tail(out.extra["empty_below"]) <= 1e-6
    assert tail(out.extra["count_halfwidth"]) > 5e-3
