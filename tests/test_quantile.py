"""Quantile release: cell map, interval logic, exact per-cell thresholds, cost, fallback, preview (fast).

The statistical behaviour under real noise (coverage, widths, noise scale) is in test_stats.py.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from data.prepare import prepare
from privacy.measurements import build_plan
from privacy.quantile import (DiscreteLaplaceSums, cell_codes, dl_variance, isotonic, quantile_from_counts,
                              rank_threshold, rank_thresholds, z_std)
from privacy.queries import QuantileQuery, Where
from privacy.release import epsilon_for_error, preview, release
from tests.conftest import toy_frame, toy_schema


# ------------------------------------------------------------------------------- cell map
@pytest.mark.parametrize("cands", [np.array([i * 10 / 200 for i in range(201)]),
                                   np.array([0.0, 0.5, 1.0, 2.5, 7.0, 10.0]),
                                   np.array([1.0, 2.0]), np.array([3.0])])
def test_cell_codes_equal_searchsorted(cands):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 11, 5000), cands, cands + 1e-12, cands - 1e-12,
                        np.round(rng.uniform(0, 10, 2000) * 20) / 20, [np.nan, np.nan]])
    got = cell_codes(x, cands)
    want = np.searchsorted(cands, x, side="left")
    ok = ~np.isnan(x)
    assert got.dtype == np.int32
    assert np.array_equal(got[ok], want[ok])
    assert np.all(got[~ok] == -1)


# ------------------------------------------------------------------------ interval logic
def _exact_counts(x: np.ndarray, cands: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(cands, x, side="left"), minlength=len(cands) + 1).astype(float)


DATASETS = {
    "uniform": np.random.default_rng(1).uniform(0, 10, 999),
    "integers (ties on candidates)": np.round(np.random.default_rng(2).uniform(0, 10, 1000)),
    "heaped at 5.0": np.r_[np.full(480, 5.0), np.random.default_rng(3).uniform(0, 10, 520)],
    "inside one cell": 5.01 + 0.03 * np.random.default_rng(4).uniform(size=1000),
    "two clusters (gap at the median)": np.r_[np.full(500, 1.0), np.full(500, 9.0)],
    "tiny": np.array([2.0, 7.3, 7.3]),
}


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_noise_free_interval_brackets_every_sample_quantile(name, q):
    """With no noise (Z = 0, t = 0) the interval brackets every usual sample quantile definition
    and the point is a candidate inside it."""
    x = DATASETS[name]
    cands = np.array([i * 10 / 200 for i in range(201)])
    point, lo, hi = quantile_from_counts(_exact_counts(x, cands), cands, q, 0.0, 0.0, 10.0)
    for method in ("linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf"):
        t = float(np.quantile(x, q, method=method))
        assert lo <= t <= hi, (method, lo, t, hi)
    assert lo <= point <= hi and point in cands


def test_interval_survives_noise_up_to_the_threshold():
    """Adversarial noise with every |Z_j| <= t never breaks coverage: the guarantee's event
    (only the two edges of the truth's cell matter, but no Z_j may pass t here)."""
    rng = np.random.default_rng(5)
    cands = np.array([i * 10 / 200 for i in range(201)])
    x = np.round(rng.uniform(0, 10, 1000), 1)
    true = _exact_counts(x, cands)
    q, t = 0.5, 12.0
    for _ in range(300):
        # noise on the cells whose rank curve Z stays within +/- t: build Z, difference it back
        zj = rng.uniform(-t, t, len(cands))
        zj[rng.random(len(cands)) < 0.3] = rng.choice([-t, t])
        z_tot = rng.uniform(-50, 50)
        below = np.r_[0.0, zj + q * z_tot]             # noise of N(<= c_j), j = 0..K
        e = np.diff(np.r_[below, z_tot])
        point, lo, hi = quantile_from_counts(true + e, cands, q, t, 0.0, 10.0)
        truth = float(np.quantile(x, q))
        assert lo <= truth <= hi and lo <= point <= hi


def test_public_bounds_when_no_candidate_qualifies():
    cands = np.array([4.0, 5.0, 6.0])                 # declared candidates not reaching the bounds
    x = np.r_[np.full(50, 1.0), np.full(50, 9.0)]
    point, lo, hi = quantile_from_counts(_exact_counts(x, cands), cands, 0.05, 0.0, 0.0, 10.0)
    assert lo == 0.0 and hi == 4.0 and point == 4.0
    point, lo, hi = quantile_from_counts(_exact_counts(x, cands), cands, 0.95, 0.0, 0.0, 10.0)
    assert lo == 6.0 and hi == 10.0 and point == 6.0


def test_isotonic_is_the_monotone_least_squares_fit():
    rng = np.random.default_rng(6)
    for _ in range(200):
        y = rng.normal(size=rng.integers(1, 12)).cumsum() + rng.normal(size=1) * 3
        f = isotonic(y)
        assert np.all(np.diff(f) >= -1e-12) and f.sum() == pytest.approx(y.sum())
        # optimality (KKT): on each constant block the fit is the block mean
        for v in np.unique(np.round(f, 9)):
            blk = np.isclose(f, v)
            assert y[blk].mean() == pytest.approx(v)
    assert np.allclose(isotonic([3, 1, 2]), [2, 2, 2])


# ----------------------------------------------------------------- exact per-cell thresholds
def _dl_pmf(s: float, half: int) -> tuple[np.ndarray, np.ndarray]:
    p = math.exp(-1 / s)
    k = np.arange(-half, half + 1)
    return k, (1 - p) / (1 + p) * p ** np.abs(k)


def test_discrete_laplace_sums_match_convolution():
    for s, m in ((0.4, 1), (1.0, 7), (3.0, 30)):
        k, one = _dl_pmf(s, 400)
        assert dl_variance(s) == pytest.approx(float(np.sum(k ** 2 * one)), rel=1e-9)
        law = one
        for _ in range(m - 1):
            law = np.convolve(law, one)
        vals = np.arange(len(law)) - (len(law) - 1) // 2
        sums = DiscreteLaplaceSums(s, m)
        got = dict(zip(sums.support.tolist(), sums.pmf(m)))
        for v in range(-15, 16):
            assert got[v] == pytest.approx(float(law[vals == v][0]), rel=1e-9, abs=1e-15)
        assert sums.pmf(m).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("q", [0.5, 0.3, 0.9])
def test_thresholds_are_the_exact_upper_points(q):
    """Brute force: Z_j's law by convolving its K+1 scaled discrete Laplace terms on a 1/10 lattice
    (q in tenths); t_j is the smallest t (0.01 resolution) with P(Z_j > t) <= alpha/2."""
    s, k, alpha = 1.3, 12, 0.05
    ts = rank_thresholds(s, k, q, alpha)
    assert not ts.flags.writeable and ts.shape == (k,)
    sup, one = _dl_pmf(s, 80)
    a, b = int(round(10 * (1 - q))), int(round(10 * q))     # 10 Z_j = a * (j draws) - b * (K+1-j draws)
    for j in (1, k // 2, k):
        law = np.array([1.0])
        for w, n in ((a, j), (b, k + 1 - j)):
            step = np.zeros(w * (len(sup) - 1) + 1)
            step[::w] = one
            for _ in range(n):
                law = np.convolve(law, step)
        vals = (np.arange(len(law)) - (len(law) - 1) / 2) / 10
        def tail(t):
            return float(law[vals > t + 1e-12].sum())
        t = ts[j - 1]
        assert tail(t) <= alpha / 2 < tail(t - 0.011), (j, t, tail(t), tail(t - 0.011))


def test_rank_threshold_properties():
    t = rank_threshold(1.0, 201, 0.5, 0.05)
    sd = math.sqrt(dl_variance(1.0) * 202 / 4)
    assert 1.9 * sd < t < 2.05 * sd                     # ~1.96 sd of the rank noise (sd ~9.7)
    assert rank_threshold(10.0, 201, 0.5, 0.05) == pytest.approx(10 * t, rel=0.05)
    assert rank_threshold(1.0, 201, 0.5, 0.01) > t > rank_threshold(1.0, 201, 0.5, 0.2)
    assert rank_threshold(1.0, 2001, 0.5, 0.05) > t > rank_threshold(1.0, 21, 0.5, 0.05)
    assert z_std(1.0, 201, 0.5) == pytest.approx(np.full(201, sd))
    ts = rank_thresholds(1.0, 201, 0.1, 0.05)         # grows with the variance of Z_j
    assert np.all(np.abs(ts / z_std(1.0, 201, 0.1) - 1.96) < 0.1)
    assert rank_threshold(0.01, 201, 0.3, 0.05) == 0.0  # negligible noise: no slack


# ------------------------------------------------------------------------------------ plan
@pytest.mark.parametrize("rows_per_patient", [1, 3])
def test_cost_is_the_opendp_privacy_map(rows_per_patient):
    sch = toy_schema(rows_per_patient)
    plan = build_plan(QuantileQuery(column="x", q=0.25), sch, 0.5)
    assert plan.d_in == rows_per_patient
    assert plan.cost == (pytest.approx(plan.measurement.map(rows_per_patient)), 0.0)
    assert plan.cost[0] <= 0.5 and plan.cost[0] == pytest.approx(0.5)
    assert plan.noise["counts"][0] == "discrete laplace"
    assert plan.noise["counts"][1] == pytest.approx(rows_per_patient / 0.5, rel=1e-6)


def test_gaussian_request_falls_back_to_pure_dp(toy_cohort, ledger):
    plan = build_plan(QuantileQuery(column="x"), toy_cohort.schema, 0.5, "gaussian")
    assert plan.mechanism == "laplace" and plan.delta == 0.0 and plan.cost[1] == 0.0
    assert plan.extra["requested_mechanism"] == "gaussian"
    assert "pure epsilon-DP" in plan.extra["mechanism_note"]
    rel = release(QuantileQuery(column="x"), toy_cohort, 0.5, ledger, "ann", mechanism="gaussian")
    assert rel.delta == 0.0 and rel.mechanism == "laplace" and "mechanism_note" in rel.extra
    assert ledger.state("toy", "ann").spent == pytest.approx(0.5)


def test_release_charges_the_map_and_is_consistent(toy_cohort, ledger):
    q = QuantileQuery(column="x", q=0.5, where=Where("g", "7"))
    plan = build_plan(q, toy_cohort.schema, 0.8)
    rel = release(q, toy_cohort, 0.8, ledger, "ann")
    assert rel.epsilon == plan.cost[0] and ledger.state("toy", "ann").spent == pytest.approx(plan.cost[0])
    assert 0.0 <= rel.ci_low[0] <= rel.values[0] <= rel.ci_high[0] <= 10.0
    json.dumps(rel.to_dict())
    # the restriction is applied before the measurement, and the truth uses the same rows
    keep = toy_cohort.mask("g", "7") & ~np.isnan(toy_cohort.numbers["x"])
    assert len(plan.make_input(toy_cohort)) == int(keep.sum())
    assert plan.truth(toy_cohort) == [pytest.approx(float(np.quantile(toy_cohort.numbers["x"][keep], 0.5)))]


def test_missing_values_are_left_out():
    f = toy_frame(200)
    f.loc[f.index[:50], "x"] = np.nan
    coh = prepare(f, toy_schema())
    plan = build_plan(QuantileQuery(column="x"), coh.schema, 1.0)
    assert len(plan.make_input(coh)) == 150
    assert np.isfinite(plan.truth(coh)[0])


@pytest.mark.parametrize("frame", ["integers", "two clusters"])
def test_negligible_noise_release_covers_tricky_data(frame):
    """At epsilon 100 the discrete Laplace scale is 0.01 (P(noise != 0) ~ 1e-43 per cell)."""
    f = toy_frame(1000)
    x = f["x"].to_numpy()
    f["x"] = np.round(x) if frame == "integers" else np.where(np.arange(len(f)) % 2 == 0, 1.0, 9.0)
    coh = prepare(f, toy_schema())
    for q in (0.1, 0.5, 0.9):
        plan = build_plan(QuantileQuery(column="x", q=q), coh.schema, 100.0)
        out = plan.run(coh)
        assert out.ci_low[0] <= plan.truth(coh)[0] <= out.ci_high[0]
        assert out.ci_low[0] <= out.values[0] <= out.ci_high[0]


def test_preview_is_data_free_in_ranks_and_worded_in_percentiles():
    sch = toy_schema()
    p = preview(QuantileQuery(column="x"), sch, 1.0)
    assert p.epsilon == pytest.approx(1.0) and p.delta == 0.0
    assert p.detail["unit"] == "ranks" and p.halfwidth == pytest.approx(p.detail["rank_threshold"] + 1)
    assert "rank" not in p.words and "for 1,000: within about ±2 percentiles" in p.words, p.words
    assert "spread evenly" not in p.words and "in ng/mL, as wide as the group's values between" in p.words
    lo, hi = p.detail["level_range_by_n"][1000]
    assert lo < 0.5 < hi
    assert preview(QuantileQuery(column="x"), sch, 2.0).halfwidth < p.halfwidth
    eps = epsilon_for_error(QuantileQuery(column="x"), sch, 50.0)
    assert preview(QuantileQuery(column="x"), sch, eps).halfwidth <= 50.0


# ------------------------------------------------------------------ empty groups (grouped quantile)
def test_empty_group_threshold_is_the_exact_tail_point():
    """The noisy total an empty group (all cells pure noise) exceeds with probability <= tail: the
    smallest such integer under the sum's law by direct convolution of OpenDP's discrete Laplace."""
    from privacy.stats.quantile import empty_group_threshold
    from tests.test_stats import lattice_pmf
    for scale, cells in ((1.0, 12), (2.5, 30)):
        k, pmf = lattice_pmf("discrete laplace", scale)
        law = pmf
        for _ in range(cells - 1):
            law = np.convolve(law, pmf)
        support = np.arange(len(law)) + cells * int(k[0])
        tail = lambda t: float(law[support > t].sum())                   # noqa: E731
        for target in (1e-2, 1e-6):
            t = empty_group_threshold(scale, cells, target)
            assert tail(t) <= target < tail(t - 1), (scale, cells, target, t)


def test_empty_group_threshold_matches_opendp_draws_and_a_wrong_scale_fails():
    """OpenDP's own noise on an all-empty group: the share of noisy totals above the 5% threshold is
    5% within 5 binomial sd (4,000 totals); the threshold of a 25%-too-small scale would be exceeded
    far more often than that band allows (power check against the exact law)."""
    from privacy.opendp_runtime import dp
    from privacy.stats.quantile import empty_group_threshold
    from tests.test_stats import lattice_pmf
    scale, cells, n, target = 2.0, 50, 4000, 0.05
    m = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=scale)
    totals = np.asarray(m([0] * (cells * n)), dtype=float).reshape(n, cells).sum(axis=1)
    band = 5 * math.sqrt(target * (1 - target) / n)
    t = empty_group_threshold(scale, cells, target)
    assert abs(float(np.mean(totals > t)) - target) <= band
    k, pmf = lattice_pmf("discrete laplace", scale)
    law = pmf
    for _ in range(cells - 1):
        law = np.convolve(law, pmf)
    support = np.arange(len(law)) + cells * int(k[0])
    wrong = empty_group_threshold(0.75 * scale, cells, target)
    assert float(law[support > wrong].sum()) > target + 2 * band


@pytest.fixture(scope="module")
def prostate():
    from data.cohorts import load_cohort
    frame, schema = load_cohort("prostate", rows=3000, seed=7)
    return prepare(frame, schema)


def test_grouped_quantile_release_marks_empty_groups(prostate):
    """The prostate demo has no patient in the 'missing' and 'other' risk groups: the release carries
    each group's noisy total and the empty-group threshold, and the screens' rule hides them (a
    group is shown only above what an empty group reaches 1 time in 10^6)."""
    from dashboard.charts import _uninformative
    from privacy.queries import GroupedQuantileQuery
    from privacy.stats.quantile import empty_group_threshold
    plan = build_plan(GroupedQuantileQuery(column="psa", by="risk_group"), prostate.schema, 1.0)
    out = plan.run(prostate)
    labels = list(plan.labels)
    totals, below = out.extra["noisy_totals"], out.extra["empty_below"]
    k = out.extra.get("candidates", plan.extra["candidates"])
    assert below == empty_group_threshold(plan.noise["counts"][1], k + 1, 1e-6) > 0
    sizes = np.bincount(prostate.codes["risk_group"][~np.isnan(prostate.numbers["psa"])], minlength=len(labels))
    for i, lab in enumerate(labels):
        if sizes[i] == 0:
            assert totals[i] <= below, lab                 # fails with probability 1e-6 per empty group
        else:
            assert totals[i] > below, (lab, sizes[i])      # thousands of patients, far above it
    from privacy.release import Release
    rel = Release("prostate", "a", plan.query.to_dict(), "d", labels, out.values, out.ci_low, out.ci_high, 0.05, 1.0,
                  0.0, "laplace", {}, 1.0, "t", "k", extra=dict(plan.extra, **out.extra))
    weak = _uninformative(rel, prostate.schema)
    assert [weak[i] for i in range(len(labels)) if sizes[i] == 0] == [True] * int((sizes == 0).sum())
    assert not any(weak[i] for i in range(len(labels)) if sizes[i] > 0)
