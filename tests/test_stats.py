"""Statistical tests: released errors and intervals against the noise OpenDP reports (slow).

Draws come from `privacy.simulate.simulate` (the release's own OpenDP measurement run on the true
toy data, no ledger). OpenDP's noise cannot be seeded, so every tolerance is derived from the
number of draws: each check is a two-sided Z = 5 sigma test (normal tail 5.7e-7, i.e. about one
false failure in a million runs; the exact kurtosis of each noise enters the variance check),
and the draw counts are chosen so that a noise scale off by 20% fails with overwhelming
probability. `test_checks_have_power` re-runs the checks on the same draws with a 20%-wrong
scale and a 50%-wider interval and asserts they fail.

Expected values are exact, computed from the reported scale, not from the code under test:
- discrete Laplace (OpenDP: P(k) ~ exp(-|k|/scale)) and discrete Gaussian (P(k) ~
  exp(-k^2/(2 scale^2))) moments and interval coverages by summing their pmfs;
- a count interval v +/- a covers with probability P(|e| <= a) exactly (a read off the release);
- a mean interval (ratio of the noisy centred sum to the noisy count, sum and count boxes at
  alpha/2) covers iff the count box reaches 0 or |e_sum - mu*e_count| <= a_sum + |mu|*a_count,
  where mu is the true centred mean: summed exactly over the count noise's pmf.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest

from data.prepare import prepare
from data.schema import schema_from_dict
from privacy.accuracy import accuracy
from privacy.measurements import build_plan
from privacy.quantile import quantile_from_counts, rank_threshold, rank_thresholds, z_std
from privacy.queries import CountQuery, GroupedMeanQuery, HistogramQuery, MeanQuery, QuantileQuery
from privacy.release import preview
from privacy.simulate import simulate
from tests.conftest import toy_frame, toy_schema

pytestmark = pytest.mark.slow

Z = 5.0            # two-sided 5 sigma per check
ALPHA = 0.05
EPS = 1.0
# tests sharing cached simulations run in one xdist worker (`make test` uses --dist loadgroup)
SHARED = pytest.mark.xdist_group("stats-shared-sims")


# ------------------------------------------------------------------------ exact noise facts
@functools.lru_cache(maxsize=None)
def lattice_pmf(noise: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf of OpenDP's integer noise at this scale (tails below 1e-25 dropped)."""
    if noise == "discrete laplace":
        p = math.exp(-1.0 / scale)
        kmax = int(60 * scale) + 10
        k = np.arange(-kmax, kmax + 1)
        return k, (1 - p) / (1 + p) * p ** np.abs(k)
    if noise == "discrete gaussian":
        kmax = int(12 * scale) + 10
        k = np.arange(-kmax, kmax + 1)
        w = np.exp(-(k.astype(float) ** 2) / (2 * scale ** 2))
        return k, w / w.sum()
    raise ValueError(noise)


def moments(noise: str, scale: float) -> tuple[float, float]:
    """(variance, fourth cumulant) of one noise draw."""
    if noise == "laplace":
        return 2 * scale ** 2, 12 * scale ** 4
    if noise == "gaussian":
        return scale ** 2, 0.0
    k, pmf = lattice_pmf(noise, scale)
    var = float(np.sum(k.astype(float) ** 2 * pmf))
    return var, float(np.sum(k.astype(float) ** 4 * pmf)) - 3 * var ** 2


def cdf(noise: str, scale: float, x: np.ndarray) -> np.ndarray:
    """CDF of a noise: Laplace with scale b, Gaussian with std scale, or OpenDP's integer noises
    (summed from their pmf: P(e <= floor(x)))."""
    x = np.asarray(x, dtype=float)
    if noise == "laplace":
        return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / scale), 1 - 0.5 * np.exp(-np.maximum(x, 0) / scale))
    if noise == "gaussian":
        return 0.5 * (1 + np.vectorize(math.erf)(x / (scale * math.sqrt(2))))
    k, pmf = lattice_pmf(noise, scale)
    cum = np.cumsum(pmf)
    idx = np.clip(np.floor(x) - k[0], -1, len(k) - 1).astype(int)
    return np.where(idx < 0, 0.0, cum[np.maximum(idx, 0)])


def count_coverage(noise: str, scale: float, a: float) -> float:
    k, pmf = lattice_pmf(noise, scale)
    return float(pmf[np.abs(k) <= a + 1e-9].sum())


def mean_coverage(n_true: float, mu: float, noise_s: str, s_sum: float, noise_c: str, s_cnt: float,
                  alpha: float = ALPHA) -> float:
    """Exact coverage of privacy.accuracy.ratio_interval with both boxes at alpha/2."""
    a_s, a_c = accuracy(s_sum, alpha / 2, noise_s), accuracy(s_cnt, alpha / 2, noise_c)
    k, pmf = lattice_pmf(noise_c, s_cnt)
    w = a_s + abs(mu) * a_c
    centre = mu * k
    inside = cdf(noise_s, s_sum, centre + w) - cdf(noise_s, s_sum, np.ceil(centre - w) - 1 if noise_s.startswith(
        "discrete") else centre - w)
    whole_range = (n_true + k - a_c) <= 0
    return float(np.sum(pmf * np.where(whole_range, 1.0, inside)))


# ----------------------------------------------------------------------------------- checks
def variance_check(err, var: float, k4: float) -> tuple[bool, str]:
    """Mean of squared errors (true mean 0) against the exact variance; also the bias."""
    e = np.asarray(err, dtype=float).ravel()
    m = e.size
    ratio = float(np.mean(e ** 2) / var)
    tol = Z * math.sqrt((k4 + 2 * var ** 2) / m) / var
    bias, btol = float(e.mean()), Z * math.sqrt(var / m)
    ok = abs(ratio - 1) <= tol and abs(bias) <= btol
    return ok, f"E[err^2]/var = {ratio:.4f} (allowed 1 ± {tol:.4f}), mean err {bias:.4g} (allowed ± {btol:.3g}), m={m}"


def coverage_check(hits, p: float) -> tuple[bool, str]:
    h = np.asarray(hits, dtype=bool).ravel()
    c = float(h.mean())
    tol = Z * math.sqrt(p * (1 - p) / h.size)
    return abs(c - p) <= tol and p >= 1 - ALPHA, f"coverage {c:.4f}, exact {p:.4f} ± {tol:.4f}, m={h.size}"


# ----------------------------------------------------------------------------- simulations
@functools.lru_cache(maxsize=None)
def toy():
    return prepare(toy_frame(1000, seed=1), toy_schema())


@functools.lru_cache(maxsize=None)
def sim(query, mechanism: str, draws: int, epsilon: float = EPS):
    return simulate(query, toy(), epsilon, draws, mechanism, alpha=ALPHA)


# Draws: a variance check has relative tolerance Z*sqrt((kurtosis-1)/m) on m noisy values, so
# m >= 4,000 for Laplace-type noise (kurtosis ~6: tolerance 0.18, while a scale 20% off moves the
# ratio by >= 0.31, 5+ sigma beyond it) and m >= 2,000 for Gaussian-type noise (kurtosis ~3).
NEED = {"laplace": 4000, "gaussian": 2000}
COUNT_CASES = [  # (query, noisy values per draw)
    (CountQuery(), 1),
    (HistogramQuery(column="g"), 5),
    (HistogramQuery(column="x"), 6),
]


def draws_for(per_draw: int, mechanism: str) -> int:
    return -(-NEED[mechanism] // per_draw)


def _count_draws(query, mechanism, draws):
    s = sim(query, mechanism, draws)
    noise, scale = s.noise["counts"]["distribution"], s.noise["counts"]["scale"]
    return s, noise, scale


@SHARED
@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("query,per_draw", COUNT_CASES, ids=["count", "hist-categorical", "hist-numeric"])
def test_count_and_histogram_noise_and_coverage(query, per_draw, mechanism):
    s, noise, scale = _count_draws(query, mechanism, draws_for(per_draw, mechanism))
    assert s.values.shape[1] == per_draw
    assert noise == ("discrete laplace" if mechanism == "laplace" else "discrete gaussian")
    ok, msg = variance_check(s.errors, *moments(noise, scale))
    assert ok, msg
    half = (s.ci_high - s.ci_low) / 2
    assert np.allclose(half, half.flat[0]) and np.allclose(s.values, (s.ci_low + s.ci_high) / 2)
    a = float(half.flat[0])
    assert a == pytest.approx(accuracy(scale, ALPHA, noise))
    truth = np.asarray(s.truth)[None, :]
    ok, msg = coverage_check((s.ci_low <= truth) & (truth <= s.ci_high), count_coverage(noise, scale, a))
    assert ok, msg


def _mean_facts(s, n_true, centred_mu, unit: float = 1.0):
    """(variance, fourth cumulant, exact Bonferroni-box coverage) of a mean's error. The sum's
    noise is in units of `unit` (the mean's public rounding grid), the count's in patients."""
    noise_s, s_sum = s.noise["sum"]["distribution"], s.noise["sum"]["scale"]
    noise_c, s_cnt = s.noise["count"]["distribution"], s.noise["count"]["scale"]
    v_s, k_s = moments(noise_s, s_sum)
    v_c, k_c = moments(noise_c, s_cnt)
    v_s, k_s = v_s * unit ** 2, k_s * unit ** 4
    # first order: err = (e_sum - mu e_count) / N; the second-order terms are ~1e-3 of this here
    var = (v_s + centred_mu ** 2 * v_c) / n_true ** 2
    k4 = (k_s + centred_mu ** 4 * k_c) / n_true ** 4
    cov = mean_coverage(n_true, centred_mu / unit, noise_s, s_sum, noise_c, s_cnt)
    return var, k4, cov


def band_check(hits, lo: float, hi: float) -> tuple[bool, str]:
    """Coverage within [lo, hi] up to Z binomial standard deviations (at p = lo)."""
    h = np.asarray(hits, dtype=bool).ravel()
    c = float(h.mean())
    tol = Z * math.sqrt(lo * (1 - lo) / h.size)
    return lo - tol <= c <= hi + tol, f"coverage {c:.4f}, wanted [{lo}, {hi}] ± {tol:.4f}, m={h.size}"


def _mean_sim(mechanism):
    s = sim(MeanQuery(column="x"), mechanism, draws_for(1, mechanism))
    col = toy().schema.column("x")
    mid = (col.lower + col.upper) / 2
    unit = build_plan(MeanQuery(column="x"), toy().schema, EPS, mechanism).extra["sum_unit"]
    n_true = float(np.sum(~np.isnan(toy().numbers["x"])))
    return s, mid, unit, n_true


@SHARED
@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_mean_noise_and_coverage(mechanism):
    """The mean's error has exactly the variance of (e_sum - mu e_count)/N. Laplace: the joint
    (sum, count) interval covers 95-97% (any data: >= 95%; no Bonferroni slack); Gaussian: the
    sum and count boxes cover as their exact law says."""
    s, mid, unit, n_true = _mean_sim(mechanism)
    var, k4, cov = _mean_facts(s, n_true, s.truth[0] - mid, unit)
    ok, msg = variance_check(s.errors, var, k4)
    assert ok, msg
    hits = (s.ci_low <= s.truth[0]) & (s.truth[0] <= s.ci_high)
    ok, msg = band_check(hits, 0.95, 0.97) if mechanism == "laplace" else coverage_check(hits, cov)
    assert ok, msg


@pytest.mark.parametrize("data", ["heaped at the bounds", "ties", "tiny group"])
def test_mean_joint_interval_covers_hard_data(data):
    """Coverage of the Laplace mean interval on data built to be hard: at least 95% (Z sd)."""
    rng = np.random.default_rng(11)
    n = {"heaped at the bounds": 800, "ties": 800, "tiny group": 12}[data]
    x = {"heaped at the bounds": np.r_[np.zeros(n // 2), np.full(n - n // 2, 10.0)],
         "ties": np.round(rng.uniform(0, 10, n)),
         "tiny group": rng.uniform(8, 10, n)}[data]
    frame = pd.DataFrame({"pid": np.arange(n), "g": ["6"] * n, "x": x,
                          "d": pd.Timestamp("2020-06-01")})
    cohort = prepare(frame, toy_schema())
    draws = 2000
    out = simulate(MeanQuery(column="x"), cohort, 0.5, draws, "laplace", alpha=ALPHA)
    hits = (out.ci_low <= out.truth[0]) & (out.truth[0] <= out.ci_high)
    ok, msg = band_check(hits, 0.95, 1.0 if data == "tiny group" else 0.97)
    assert ok, msg


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_grouped_mean_noise_and_coverage(mechanism):
    s = sim(GroupedMeanQuery(column="x", by="g"), mechanism, draws_for(3, mechanism))
    col = toy().schema.column("x")
    mid = (col.lower + col.upper) / 2
    codes, x = toy().codes["g"], toy().numbers["x"]
    groups = [i for i, t in enumerate(s.truth) if np.isfinite(t)]
    assert len(groups) == 3                               # the empty missing/other groups have no truth
    unit = build_plan(GroupedMeanQuery(column="x", by="g"), toy().schema, EPS, mechanism).extra["sum_unit"]
    errs, hits, facts = [], [], []
    for g in groups:
        n_g = float(np.sum((codes == g) & ~np.isnan(x)))
        var, k4, cov = _mean_facts(s, n_g, s.truth[g] - mid, unit)
        errs.append(s.errors[:, g] / math.sqrt(var))      # standardise so groups can be pooled
        facts.append((k4 / var ** 2, cov))
        hits.append((s.ci_low[:, g] <= s.truth[g]) & (s.truth[g] <= s.ci_high[:, g]))
    ok, msg = variance_check(np.concatenate(errs), 1.0, max(f[0] for f in facts))
    assert ok, msg
    for h, (_, cov) in zip(hits, facts):   # Laplace: the joint interval per group; Gaussian: the boxes
        ok, msg = band_check(h, 0.95, 0.97) if mechanism == "laplace" else coverage_check(h, cov)
        assert ok, msg


# ---------------------------------------------------------------------------------- quantile
QUANTILE = QuantileQuery(column="x", q=0.5)


def _ranks(values: np.ndarray, x_sorted: np.ndarray, q: float) -> np.ndarray:
    """D(v) = #{x <= v} - q n, the rank distance of v from the q-quantile."""
    return np.searchsorted(x_sorted, values, side="right") - q * len(x_sorted)


def test_quantile_cell_noise_and_thresholds():
    """The quantile's one OpenDP measurement: cell-count noise is exactly discrete Laplace at the
    reported scale, and the per-cell thresholds hold: P(Z_j > t_j) <= alpha/2 at every candidate
    (pooled over candidates: mean exceedance at most alpha/2; a threshold 20% lower fails)."""
    plan = build_plan(QUANTILE, toy().schema, EPS, "laplace")
    data = plan.make_input(toy())
    k = len(toy().schema.column("x").quantile_candidates)
    true = np.bincount(data, minlength=k + 1).astype(float)
    noise, scale = plan.noise["counts"]
    raws = np.array([plan.measurement(data) for _ in range(2000)], dtype=float)
    ok, msg = variance_check(raws - true, *moments(noise, scale))
    assert ok, msg
    for q in (0.5, 0.1):
        cum = np.cumsum(raws - true, axis=1)
        zj = cum[:, :-1] - q * cum[:, -1:]                    # Z_j = D~(c_j) - D(c_j)
        assert zj.std(axis=0) == pytest.approx(z_std(scale, k, q), rel=0.25)
        t = rank_thresholds(scale, k, q, ALPHA)
        # per draw, the share of the K (correlated) candidates where Z_j > t_j; its mean over the
        # independent draws is within Z standard errors (estimated from the draws) of its expectation
        for f, expect_ok in ((1.0, True), (0.8, False)):     # power: thresholds 20% lower fail
            over = (zj > f * t).mean(axis=1)
            tol = Z * float(over.std(ddof=1)) / math.sqrt(len(over))
            assert (float(over.mean()) <= ALPHA / 2 + tol) == expect_ok, (q, f, float(over.mean()), tol)


def _quantile_reach(s, x, q):
    return _ranks(s.ci_high[:, 0], x, q), -_ranks(s.ci_low[:, 0], x, q)


@pytest.mark.parametrize("q,draws", [(0.5, 2000), (0.1, 1000)])
def test_quantile_coverage_width_and_rank_error(q, draws):
    query = QuantileQuery(column="x", q=q)
    s = sim(query, "laplace", draws)
    x = np.sort(toy().numbers["x"][~np.isnan(toy().numbers["x"])])
    truth = s.truth[0]
    assert truth == pytest.approx(float(np.quantile(x, q)))
    cov = float(np.mean((s.ci_low[:, 0] <= truth) & (truth <= s.ci_high[:, 0])))
    assert cov >= 0.95 - Z * math.sqrt(0.95 * 0.05 / s.values.shape[0]), cov
    assert np.all(s.ci_low <= s.values) and np.all(s.values <= s.ci_high)
    # not uselessly wide: each endpoint sits about t ranks out (where the noisy rank curve leaves
    # the band +/- t), give or take one sd of the noise and one grid cell of data
    cands = np.asarray(toy().schema.column("x").quantile_candidates)
    k = len(cands)
    scale = s.noise["counts"]["scale"]
    t = rank_threshold(scale, k, q, ALPHA)
    sd = float(z_std(scale, k, q).max())
    cell = float(np.diff(np.searchsorted(x, cands, side="right")).max())
    for reach in _quantile_reach(s, x, q):
        m = float(reach.mean())
        assert t - sd - cell <= m <= t + sd + cell, (m, t, sd, cell)
    if draws < 2000:
        return
    # the point's rank error: noise of the rank curve at the truth plus rounding to the grid
    j = int(np.searchsorted(cands, truth))
    model_var = z_std(scale, k, q)[min(j, k - 1)] ** 2 + cell ** 2 / 12
    rank_err = _ranks(s.values[:, 0], x, q)
    ratio = float(np.mean(rank_err ** 2) / model_var)
    # sampling at 5 sigma (the rank noise is a sum of K+1 discrete Laplace draws, kurtosis ~3;
    # 3.2 used) plus a 5% allowance for the monotone fit and the grid rounding model
    tol = Z * math.sqrt(2.2 / len(rank_err)) + 0.05
    assert abs(ratio - 1) <= tol, (ratio, tol)
    # the figure the issue tracks: interval half-width over the empirical 95% rank error
    half = float(np.median((up := _quantile_reach(s, x, q))[0] + up[1]) / 2)
    assert half / float(np.quantile(np.abs(rank_err), 0.95)) < 1.6


def _hard_quantile_frame(kind: str, q: float) -> pd.DataFrame:
    """Data whose q-quantile falls in an EMPTY cell of the candidate grid between two heaps: the
    rank curve is flat (D = 0) at both edges of the truth's cell, the case the test is exact for
    (a wider gap leaves several candidate cells alive and covers more)."""
    cands = np.asarray(toy_schema().column("x").quantile_candidates)
    step, c = float(cands[1] - cands[0]), float(cands[100])
    n, below = 1000, int(round(q * 1000))
    if kind == "adjacent heaps":
        x = np.r_[np.full(below, c), np.full(n - below, c + 1.05 * step)]
    elif kind == "ties on the grid":     # values heaped on grid points, one empty cell at the truth
        rng = np.random.default_rng(3)
        x = np.r_[c - step * rng.integers(0, 40, below), c + step * (1.05 + rng.integers(0, 40, n - below))]
    else:                                # a tiny group of 9, the median in an empty cell
        x = np.array([1.0, 2.0, 3.0, 4.0, c, c + 1.05 * step, 8.0, 9.0, 9.5])
    return pd.DataFrame({"pid": np.arange(len(x)), "g": ["6"] * len(x), "x": x,
                         "d": pd.Timestamp("2020-06-01")})


@pytest.mark.parametrize("kind,q", [("adjacent heaps", 0.5), ("adjacent heaps", 0.2),
                                    ("ties on the grid", 0.5), ("tiny group", 0.5)])
def test_quantile_interval_covers_hard_data_at_95(kind, q):
    """On data built to be hard the interval covers 94-97% (Z sd): honest for any data, and no
    longer ~100% (the union bound's slack is gone); the same check fails for thresholds 50% wider
    and 30% narrower. A tiny group (its rank curve steep) only needs >= 95%."""
    frame = _hard_quantile_frame(kind, q)
    cohort = prepare(frame, toy_schema())
    query = QuantileQuery(column="x", q=q)
    plan = build_plan(query, cohort.schema, EPS, "laplace")
    truth = plan.truth(cohort)[0]
    assert truth == pytest.approx(float(np.quantile(frame["x"], q)))
    data = plan.make_input(cohort)
    raws = [plan.measurement(data) for _ in range(4000)]
    col = cohort.schema.column("x")
    cands = np.asarray(col.quantile_candidates)
    t = rank_thresholds(plan.noise["counts"][1], len(cands), q, ALPHA)

    def hits(outs):
        return np.array([lo <= truth <= hi for lo, hi in outs])

    released = hits((o.ci_low[0], o.ci_high[0]) for o in (plan.finish(r, ALPHA) for r in raws))
    lo, hi = (0.94, 0.97) if kind != "tiny group" else (0.95, 1.0)
    ok, msg = band_check(released, lo, hi)
    assert ok, msg
    if kind != "tiny group":
        for f in (1.5, 0.7):
            other = hits(quantile_from_counts(r, cands, q, f * t, col.lower, col.upper)[1:] for r in raws)
            assert not band_check(other, lo, hi)[0], f


# --------------------------------------------------------------------------- DP Wizard anchor
def test_dp_wizard_anchor_holds_in_simulation():
    """100 rows, bounds 0-10, 5 bins, epsilon 1 -> about ±3.37 per bin, and the draws agree."""
    sch = schema_from_dict({"dataset": {"id": "w", "privacy_unit": "id", "max_rows_per_unit": 1, "max_rows": 100,
                                        "default_budget": 1.0},
                            "columns": {"id": {"kind": "id"},
                                        "v": {"kind": "numeric", "lower": 0, "upper": 10, "bins": 5}}})
    rng = np.random.default_rng(7)
    cohort = prepare(pd.DataFrame({"id": np.arange(100), "v": rng.uniform(0, 10, 100)}), sch)
    query = HistogramQuery(column="v")
    assert preview(query, sch, 1.0).halfwidth == pytest.approx(3.37, abs=0.01)
    s = simulate(query, cohort, 1.0, draws_for(6, "laplace"), "laplace")
    assert s.epsilon == pytest.approx(1.0) and s.epsilon <= 1.0
    noise, scale = s.noise["counts"]["distribution"], s.noise["counts"]["scale"]
    ok, msg = variance_check(s.errors, *moments(noise, scale))
    assert ok, msg
    hits = np.abs(s.errors) <= 3.37
    ok, msg = coverage_check(hits, count_coverage(noise, scale, 3.37))
    assert ok, msg


# ------------------------------------------------------------------------------ power checks
@SHARED
def test_checks_have_power():
    """The same draws fail the checks when the reported scale is 20% off (variance check) or the
    interval is uselessly wide / its scale 50% off (coverage check, which has less power)."""
    query, per_draw = COUNT_CASES[1]
    s, noise, scale = _count_draws(query, "laplace", draws_for(per_draw, "laplace"))
    assert variance_check(s.errors, *moments(noise, scale))[0]
    for wrong in (0.8 * scale, 1.2 * scale):
        assert not variance_check(s.errors, *moments(noise, wrong))[0]
    a = float((s.ci_high - s.ci_low).flat[0] / 2)
    assert not coverage_check(np.abs(s.errors) <= 1.5 * a, count_coverage(noise, scale, a))[0]
    assert not coverage_check(np.abs(s.errors) <= a, count_coverage(noise, 1.5 * scale, a))[0]
    m, mid, unit, n_true = _mean_sim("laplace")
    var, k4, _ = _mean_facts(m, n_true, m.truth[0] - mid, unit)
    assert variance_check(m.errors, var, k4)[0]
    for f in (0.8, 1.2):
        assert not variance_check(m.errors, var * f ** 2, k4 * f ** 4)[0]
    # the joint interval's coverage check fails for an interval twice as wide (coverage ~0.998 for
    # Laplace-tailed errors; 1.5x gives ~0.989, too close to the band's edge), or 30% narrower (~0.88)
    t = m.truth[0]
    for f in (2.0, 0.7):
        centre = (m.ci_low + m.ci_high) / 2
        half = (m.ci_high - m.ci_low) / 2 * f
        assert not band_check((centre - half <= t) & (t <= centre + half), 0.95, 0.97)[0], f


@pytest.mark.parametrize("continuous", [False, True])
def test_mean_interval_miss_probability_folds_the_symmetric_count_noise_exactly(continuous):
    """`miss_probability` sums the count noise over k >= 0 with doubled weights (the sum noise is
    symmetric, so the +k and -k terms are equal): it equals the sum over every k."""
    from privacy import mean_interval as M
    rng = np.random.default_rng(5)
    for sum_scale, count_scale in ((300.0, 2.0), (16384.0, 4.0), (50.0, 9.5)):
        k, pmf, tail = M._count_pmf(count_scale)
        a = rng.uniform(0, 6 * sum_scale, 40)
        m = rng.uniform(0, 2000, 40)
        c = m[:, None] * k[None, :]
        if continuous:
            inside = M._laplace_cdf(c + a[:, None], sum_scale) - M._laplace_cdf(c - a[:, None], sum_scale)
        else:
            inside = (M._dl_cdf(np.floor(c + a[:, None]), sum_scale)
                      - M._dl_cdf(np.ceil(c - a[:, None]) - 1.0, sum_scale))
        every_k = 1.0 - (inside * pmf[None, :]).sum(axis=1) + tail
        np.testing.assert_allclose(M.miss_probability(a, m, sum_scale, count_scale, continuous), every_k,
                                   rtol=1e-12, atol=1e-14)
