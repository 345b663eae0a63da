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
    truth = [t(plan.make_input(prostate)) for t in _row_transformation(plan, form)]
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


def test_grouped_mean_stays_on_the_row_level_path(prostate):
    plan = build_plan(GroupedMeanQuery(column="psa", by="risk_group"), prostate.schema, 0.5)
    with pytest.raises(EngineUnsupported):
        aggregate_noise(plan)
    out = plan.run(prostate)                # falls back to OpenDP's Polars measurement
    assert len(out.values) == len(plan.labels)


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
def test_engine_mean_noise_has_the_row_level_law(prostate, mechanism):
    plan = build_plan(QUERIES["mean"], prostate.schema, 0.7, mechanism)
    (n_sum, s_sum), (n_cnt, s_cnt) = plan.noise["sum"], plan.noise["count"]
    for engine in (None, ROW_LEVEL):
        err = _errors(plan, prostate, engine, 4000)
        for col, (noise, scale) in zip(err.T, ((n_sum, s_sum), (n_cnt, s_cnt))):
            ok, msg = variance_check(col, *moments(noise, scale))
            assert ok, f"{engine or 'numpy'}: {msg}"
