"""The vectorised simulation (true aggregate once, OpenDP noise on the tiled aggregate, the
release's own `finish`) draws the release's noise law: the same as the per-draw path.

OpenDP's noise cannot be seeded, so every tolerance comes from the number of draws (the
helpers of tests/test_stats.py: 5 sigma two-sided, about one false failure in a million), and
each law check has a power check: the same draws fail it for a 20%-wrong scale. End to end,
the released values of both paths are compared by a two-sample Kolmogorov-Smirnov test at
level 1e-6 (its critical distance from the numbers of draws), which fails for a doubled scale.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from data.prepare import prepare
from privacy.measurements import build_plan
from privacy.queries import (CountQuery, CrossTabQuery, GroupedMeanQuery, GroupedQuantileQuery, HistogramQuery,
                             MeanQuery, QuantileQuery, SurvivalQuery)
from privacy.simulate import Part, Vectorised, draw_outcomes, draw_vectorised, simulate, vectorised
from tests.conftest import toy_frame, toy_schema
from tests.test_stats import moments, variance_check

KS_LEVEL = 1e-6


@pytest.fixture(scope="module")
def toy():
    return prepare(toy_frame(1000, seed=1), toy_schema())


def _empty_group_cohort():
    """The toy cohort with no patient in Gleason 8 (its group has no true value)."""
    frame = toy_frame(1000, seed=2)
    frame.loc[frame["g"] == "8", "g"] = "7"
    return prepare(frame, toy_schema())


def ks_critical(n: int, m: int, level: float = KS_LEVEL) -> float:
    """Two-sample Kolmogorov-Smirnov critical distance (asymptotic; conservative for discrete laws)."""
    return math.sqrt(-math.log(level / 2) / 2) * math.sqrt((n + m) / (n * m))


def ks_distance(a, b) -> float:
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    grid = np.union1d(a, b)
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def _check_parts(vec: Vectorised, draws: int):
    """Each part's draws minus its truth: the exact variance of the part's noise (and no bias);
    the same errors fail the check for a scale 20% off either way (power)."""
    for part in vec.parts:
        idx = np.arange(len(part.truth)) if part.noisy is None else part.noisy
        noisy = part.draws(draws)
        assert noisy.shape == (draws, len(part.truth))
        err = noisy[:, idx].astype(float) - part.truth[idx].astype(float)
        facts = moments(part.distribution, part.scale)
        ok, msg = variance_check(err, *facts)
        assert ok, (part.distribution, msg)
        for f in (0.8, 1.2):
            assert not variance_check(err, *moments(part.distribution, f * part.scale))[0], (part.distribution, f)
        if part.noisy is not None:                   # cells that get no noise keep their true value
            rest = np.setdiff1d(np.arange(len(part.truth)), idx)
            np.testing.assert_array_equal(noisy[:, rest], np.broadcast_to(part.truth[rest], (draws, len(rest))))
        if err.shape[1] > 20:                        # independent draws: no repeated noise vector
            assert len({r.tobytes() for r in noisy}) == draws


# ------------------------------------------------------------- the noise of each part, exactly
CASES = [(CountQuery(), "laplace", 5000), (CountQuery(), "gaussian", 3000),
         (HistogramQuery(column="g"), "laplace", 1000), (HistogramQuery(column="x"), "gaussian", 500),
         (CrossTabQuery(column="g", by="x"), "laplace", 200),
         (QuantileQuery(column="x", q=0.5), "laplace", 100),
         (GroupedQuantileQuery(column="x", by="g"), "laplace", 40),
         (MeanQuery(column="x"), "laplace", 5000), (MeanQuery(column="x"), "gaussian", 3000),
         (GroupedMeanQuery(column="x", by="g"), "laplace", 1000),
         (GroupedMeanQuery(column="x", by="g"), "gaussian", 700)]


@pytest.mark.parametrize("query,mechanism,draws", CASES, ids=lambda v: getattr(v, "stat", str(v)))
def test_each_part_has_the_plans_noise(toy, query, mechanism, draws):
    plan = build_plan(query, toy.schema, 1.0, mechanism)
    vec = vectorised(plan, plan.make_input(toy))
    assert vec is not None
    assert {(p.distribution, p.scale) for p in vec.parts} == set(plan.noise.values())
    _check_parts(vec, draws)


@pytest.mark.parametrize("query", [HistogramQuery(column="g"), CrossTabQuery(column="g", by="x"),
                                   QuantileQuery(column="x", q=0.5), GroupedQuantileQuery(column="x", by="g")],
                         ids=lambda q: q.stat)
def test_true_cells_are_the_measurements_own_cells(toy, query):
    """The aggregate counted once is what the plan's measurement counts: np.bincount of its input,
    and as many cells as the measurement releases."""
    plan = build_plan(query, toy.schema, 1.0)
    data = plan.make_input(toy)
    (part,) = vectorised(plan, data).parts
    assert len(part.truth) == len(plan.measurement(data))
    np.testing.assert_array_equal(part.truth, np.bincount(data, minlength=len(part.truth)))


def test_mean_aggregates_are_the_plans(toy):
    plan = build_plan(MeanQuery(column="x"), toy.schema, 1.0)
    data = plan.make_input(toy)
    s, n = vectorised(plan, data).parts
    assert int(s.truth[0]) == int(data.sum()) and int(n.truth[0]) == len(data)
    assert (s.atom, n.atom) == ("i64", "i32")
    plan = build_plan(GroupedMeanQuery(column="x", by="g"), toy.schema, 1.0)
    data = plan.make_input(toy)                        # [integer sum per group, count per group]
    s, n = vectorised(plan, data).parts
    x = toy.numbers["x"]
    g = toy.codes["g"][~np.isnan(x)]
    np.testing.assert_array_equal(n.truth, np.bincount(g, minlength=len(plan.labels)))
    np.testing.assert_array_equal(s.truth, np.asarray(data[0]))
    assert (s.atom, n.atom) == ("i64", "i64") and s.truth.dtype.kind == "i"


# ----------------------------------------------- end to end: the same released law as per-draw
def _released(plan, data, draws, vec=None):
    outs = (draw_vectorised(plan, vec, draws, workers=2) if vec is not None
            else draw_outcomes(plan, data, draws, workers=2))
    return np.array([o.values for o in outs], dtype=float)


@pytest.mark.parametrize("query,mechanism,draws", [
    (MeanQuery(column="x"), "laplace", 2500), (GroupedMeanQuery(column="x", by="g"), "laplace", 2500),
    (HistogramQuery(column="g"), "laplace", 2500)],
    ids=["mean", "grouped-mean", "histogram"])
def test_released_values_have_the_per_draw_law(toy, query, mechanism, draws):
    """Each released value: KS distance between the vectorised and the per-draw paths below the
    critical distance at level 1e-6 (Bonferroni over the values); a doubled noise scale in the
    vectorised path is detected on the same per-draw sample. (Gaussian plans: their parts'
    noise is checked exactly above; their per-draw path costs about 20 ms a draw.) A doubled
    Laplace scale moves the CDF by at most 0.125, so every case needs about 2,500 draws for the
    critical distance (0.079 at 2,500 each, 0.14 at 800) to detect it."""
    plan = build_plan(query, toy.schema, 0.5, mechanism)
    data = plan.make_input(toy)
    vec = vectorised(plan, data)
    new, old = _released(plan, data, draws, vec), _released(plan, data, draws)
    ok = np.isfinite(np.asarray(plan.truth(toy)))
    crit = ks_critical(draws, draws, KS_LEVEL / ok.sum())
    for j in np.flatnonzero(ok):
        assert ks_distance(new[:, j], old[:, j]) <= crit, (plan.labels[j], ks_distance(new[:, j], old[:, j]), crit)
    wrong = Vectorised([dataclasses.replace(p, scale=2 * p.scale) for p in vec.parts], vec.to_raw)
    bad = _released(plan, data, draws, wrong)
    assert max(ks_distance(bad[:, j], old[:, j]) for j in np.flatnonzero(ok)) > crit


def test_quantile_released_medians_have_the_per_draw_law(toy):
    """The median (values on the public grid): KS between the paths at level 1e-6, 400 draws each."""
    q = QuantileQuery(column="x", q=0.5)
    plan = build_plan(q, toy.schema, 0.1)
    data = plan.make_input(toy)
    draws = 400
    new, old = _released(plan, data, draws, vectorised(plan, data)), _released(plan, data, draws)
    assert ks_distance(new[:, 0], old[:, 0]) <= ks_critical(draws, draws)
    assert np.std(new[:, 0]) > 0 and np.std(old[:, 0]) > 0         # the noise moves the median at ε 0.1


# ------------------------------------------------------------ groups without a true value
@pytest.mark.parametrize("query", [GroupedQuantileQuery(column="x", by="g"), GroupedMeanQuery(column="x", by="g")],
                         ids=lambda q: q.stat)
def test_groups_without_truth_are_not_simulated_and_the_others_keep_their_law(query):
    cohort = _empty_group_cohort()
    full = simulate(query, cohort, 1.0, 30)
    part = simulate(query, cohort, 1.0, 30, only_groups_with_truth=True)
    truth = np.asarray(part.truth, dtype=float)
    empty = ~np.isfinite(truth)
    assert empty.sum() == 3 and part.labels[2] == "8" and empty[2]      # Gleason 8, missing, other
    assert np.isnan(part.values[:, empty]).all() and np.isnan(part.ci_low[:, empty]).all()
    assert np.isfinite(part.values[:, ~empty]).all() and np.isfinite(full.values).all()
    plan = build_plan(query, cohort.schema, 1.0)
    vec = vectorised(plan, plan.make_input(cohort), np.flatnonzero(empty))
    assert vec.hidden == tuple(np.flatnonzero(empty))
    _check_parts(vec, 400 if isinstance(query, GroupedQuantileQuery) else 2000)


def test_survival_and_fallback(toy):
    """Survival counts are vectorised too; a plan of an unknown kind falls back to per-draw."""
    from data.cohorts import load_cohort
    frame, schema = load_cohort("prostate", rows=2000)
    cohort = prepare(frame, schema)
    plan = build_plan(SurvivalQuery(column="followup_months"), schema, 1.0)
    vec = vectorised(plan, plan.make_input(cohort))
    _check_parts(vec, 150)
    s = simulate(SurvivalQuery(column="followup_months"), cohort, 1.0, 20)
    assert s.values.shape == (20, len(plan.labels))
    odd = dataclasses.replace(build_plan(CountQuery(), toy.schema, 1.0), query=object())
    assert vectorised(odd, odd.make_input(toy)) is None


def test_chunks_cover_every_draw_once(toy):
    plan = build_plan(GroupedQuantileQuery(column="x", by="g"), toy.schema, 1.0)
    vec = vectorised(plan, plan.make_input(toy))
    for workers in (1, 2, 3):
        outs = draw_vectorised(plan, vec, 37, workers=workers)
        assert len(outs) == 37 and all(len(o.values) == len(plan.labels) for o in outs)
    assert isinstance(vec.parts[0], Part) and vec.noisy_per_draw == len(vec.parts[0].truth)
