"""Quantiles with an honest confidence interval, from ONE OpenDP noisy cumulative histogram.

Measurement (the only thing that touches data): every row's value is mapped to the index of its
cell between the public candidates c_1 < ... < c_K, i.e. code = #{j : c_j < x}, so cell 0 is
x <= c_1, cell j is c_j < x <= c_{j+1} and cell K is x > c_K (a row-wise public map: 1-stable);
OpenDP then counts the K+1 cells and adds discrete Laplace noise (`then_count_by_categories`
>> `then_laplace`). Its privacy map at d_in = max rows per patient is the whole cost. Everything
else (point estimate, interval, preview) is post-processing of those noisy counts or public math.

Truth (what the interval is for): the sample q-quantile of the group's non-missing values after
the schema's clamping, defined as `np.quantile(x, q)` (numpy's default linear interpolation).
With h = (n-1)q it lies between the order statistics x_(floor(h)+1) and x_(ceil(h)+1); the
guarantee below covers that whole sandwich, hence every usual definition (linear, lower, higher,
nearest, midpoint, inverted CDF).

Interval (test inversion, one test per cell). Let D(c) = #{x <= c} - q*n (exact) and
D~(c) = (1-q)*N~(<= c) - q*N~(> c) its noisy version from the released cells (no noisy n is
needed): D~(c_j) = D(c_j) + Z_j with
    Z_j = (1-q) * (e_0 + ... + e_{j-1}) - q * (e_j + ... + e_K),   e_i iid discrete Laplace(s).
From the sandwich: if the truth is above c then D(c) < 1-q, and if it is at or below c then
D(c) > -q. So cell j (c_j, c_{j+1}] is ruled out when D~(c_j) >= t_j + 1 - q ("the truth is
at or below c_j") or D~(c_{j+1}) <= -t_{j+1} - q ("the truth is above c_{j+1}"). The cell that
holds the truth is ruled out only if Z_j > t_j or Z_{j+1} < -t_{j+1}; with t_j the smallest
value such that P(Z_j > t_j) <= alpha/2 (Z_j is symmetric), that has probability <= alpha,
for ANY data (ties, heaping, gaps, coarse grids: nothing about the data is assumed). The
interval is the hull of the cells not ruled out (the public range if none is left).

t_j comes from the EXACT law of Z_j: sums of discrete Laplace draws, whose pmf is the inverse FFT
of the characteristic function phi(w)^m, phi(w) = (1-p)^2 / (1 - 2p cos w + p^2), p = exp(-1/s).
It is public (it depends on s, K and q only) and cached. t_j is about 1.96 sd(Z_j), against
about 4.3 sd for the union bound over candidates used before, so the interval is about half as
wide; on the hardest data (the truth in an empty cell between two heaps) it covers about 95%.

Point estimate: the candidate nearest (in rank) to the zero crossing of the isotonic (monotone
least-squares) fit of D~, clipped into the interval.

Gaussian noise is not used here: requests with mechanism "gaussian" get this pure epsilon-DP
(delta = 0) measurement instead, which is said in `plan.extra`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from privacy import words
from privacy.calibrate import calibrate
from privacy.opendp_runtime import dp
from privacy.queries import GroupedQuantileQuery, QuantileQuery
from privacy.stats.mean import EMPTY_GROUP_TAIL

NOISE = "discrete laplace"


# ----------------------------------------------------------------------------- public math
def dl_variance(scale: float) -> float:
    """Variance of OpenDP's discrete Laplace with this scale: P(k) ~ exp(-|k|/scale)."""
    if scale <= 0:
        return 0.0
    p = math.exp(-1.0 / scale)
    return 2.0 * p / (1.0 - p) ** 2


def z_std(scale: float, n_cands: int, q: float) -> np.ndarray:
    """Standard deviation of Z_j (the noise of D~ at candidate j = 1..K)."""
    j = np.arange(1, n_cands + 1, dtype=float)
    return np.sqrt(dl_variance(scale) * ((1 - q) ** 2 * j + q ** 2 * (n_cands + 1 - j)))


class DiscreteLaplaceSums:
    """Exact pmfs of sums of m iid discrete Laplace(scale) draws, m <= max_terms, on -w..w.

    Inverse FFT of phi^m on a circle of size >= 4w + 2 (aliased mass is below 1e-40); w covers
    12 sd of the largest sum plus 40 scales of exponential tail, so truncation is negligible.
    """

    def __init__(self, scale: float, max_terms: int):
        p = math.exp(-1.0 / scale) if scale > 0 else 0.0
        sd = math.sqrt(dl_variance(scale) * max_terms)
        self.w = int(math.ceil(12.0 * sd + 40.0 * scale + 20.0))
        self.size = 1 << int(math.ceil(math.log2(4 * self.w + 2)))
        omega = 2.0 * np.pi * np.arange(self.size // 2 + 1) / self.size
        self._phi = (1.0 - p) ** 2 / (1.0 - 2.0 * p * np.cos(omega) + p * p)
        self.support = np.arange(-self.w, self.w + 1)

    def pmf(self, m: int) -> np.ndarray:
        f = np.fft.irfft(self._phi ** m, self.size)
        return np.maximum(np.concatenate([f[-self.w:], f[: self.w + 1]]), 0.0)


def _upper_point(tail, sd: float) -> float:
    """Smallest t (to 0.01, rounded up) with tail(t) <= target, tail non-increasing."""
    if tail(0.0):
        lo, hi = 0.0, 3.0 * sd + 2.0
        while tail(hi):
            lo, hi = hi, 2.0 * hi
        while hi - lo > 0.01:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if tail(mid) else (lo, mid)
        return hi
    return 0.0


@functools.lru_cache(maxsize=256)
def rank_thresholds(scale: float, n_cands: int, q: float, alpha: float) -> np.ndarray:
    """t_j, j = 1..K: the smallest t with P(Z_j > t) <= alpha/2 under the exact law of Z_j.

    Z_j = (1-q) A - q B with A, B independent sums of j and K+1-j discrete Laplace draws, so
    P(Z_j > t) = sum_a P(A = a) P(B < ((1-q) a - t) / q). For q = 1/2 every Z_j is S/2 with S a
    sum of K+1 draws. Public: depends on the noise scale, K, q and alpha only. Read-only array.
    """
    k, target = int(n_cands), alpha / 2.0
    laws = DiscreteLaplaceSums(scale, k + 1)
    v, w = laws.support, laws.w
    sds = z_std(scale, k, q)
    out = np.empty(k)
    if abs(q - 0.5) < 1e-12:
        out[:] = max(_sum_upper_point(laws, k + 1, target), 0) / 2.0
    else:
        for j in range(1, k + 1):
            pa, pb = laws.pmf(j), laws.pmf(k + 1 - j)
            keep = pa > 1e-18
            a, wa = v[keep].astype(float), pa[keep]
            below = np.r_[0.0, np.cumsum(pb)]                    # below[i] = P(B < v_i), i = 0..2w+1

            def too_likely(t: float) -> bool:
                y = np.ceil(((1.0 - q) * a - t) / q - 1e-9).astype(np.int64) + w
                return float(np.dot(wa, below[np.clip(y, 0, 2 * w + 1)])) > target

            out[j - 1] = _upper_point(too_likely, float(sds[j - 1]))
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=256)
def empty_group_threshold(scale: float, n_cells: int, tail: float) -> float:
    """The smallest t with P(S > t) <= tail, S the sum of `n_cells` iid discrete Laplace(scale)
    draws (exact law): an empty group's noisy total (its cells summed) exceeds it with probability
    at most `tail`. Public: depends on the noise scale and the number of cells only."""
    return float(_sum_upper_point(DiscreteLaplaceSums(scale, n_cells), n_cells, tail))


def _sum_upper_point(laws: DiscreteLaplaceSums, m: int, tail: float) -> int:
    """The smallest integer v with P(S > v) <= tail, S a sum of m draws (exact law `laws`)."""
    over = np.cumsum(laws.pmf(m)[::-1])[::-1][1:]                # P(S > v), v = -w..w-1
    ok = np.flatnonzero(over <= tail)
    return int(ok[0]) - laws.w if len(ok) else laws.w


def rank_threshold(scale: float, n_cands: int, q: float, alpha: float) -> float:
    """The largest t_j: the interval's reach in ranks, for previews."""
    return float(rank_thresholds(scale, n_cands, q, alpha).max())


def isotonic(y: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit (pool adjacent violators, equal weights): SciPy's compiled
    PAVA, about 15x faster than a Python loop (the owner simulation calls it once per group and draw)."""
    from scipy.optimize import isotonic_regression
    y = np.asarray(y, dtype=float)
    return isotonic_regression(y).x if len(y) else y


def quantile_from_counts(counts, cands: np.ndarray, q: float, thresholds,
                         lower: float, upper: float) -> tuple[float, float, float]:
    """(point, low, high) from the K+1 noisy cell counts (pure post-processing).

    `thresholds` are the t_j (one per candidate, or one number for all): see the module docstring.
    """
    c = np.asarray(counts, dtype=float)
    cum = np.cumsum(c)
    d = cum[:-1] - q * cum[-1]               # D~(c_j) = (1-q) N~(<= c_j) - q N~(> c_j), j = 1..K
    k = len(cands)
    t = np.broadcast_to(np.asarray(thresholds, dtype=float), (k,))
    at_or_below = d >= t + (1.0 - q) + 1e-9  # "the truth is at or below c_j"
    above = d <= -t - q - 1e-9               # "the truth is above c_j"
    # cell j = (c_j, c_{j+1}]: ruled out by its lower edge's first test or its upper edge's second
    alive = ~(np.r_[False, at_or_below] | np.r_[above, False])
    cells = np.flatnonzero(alive)
    edges = np.r_[float(lower), np.asarray(cands, dtype=float), float(upper)]
    if len(cells):
        lo_v, hi_v = float(edges[cells[0]]), float(edges[cells[-1] + 1])
    else:                                    # every cell ruled out (probability <= alpha)
        lo_v, hi_v = float(lower), float(upper)
    fit = isotonic(d)
    cross = np.flatnonzero(fit >= 0)
    ip = int(cross[0]) if len(cross) else k - 1
    if ip > 0 and abs(fit[ip - 1]) < abs(fit[ip]):
        ip -= 1
    point = float(min(max(float(cands[ip]), lo_v), hi_v))
    return point, lo_v, hi_v


def cell_codes(x: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """code = #{j : c_j < x} for every row (int32), -1 for missing. Row-wise public map.

    Same result as `np.searchsorted(cands, x, side="left")`; on an evenly spaced grid it is
    computed arithmetically (3x faster at 10^6 rows) and only rows within 1e-6 of a grid point
    go through the exact search.
    """
    k = len(cands)
    step = (cands[-1] - cands[0]) / (k - 1) if k > 1 else 0.0
    if k < 3 or not step > 0 or float(np.max(np.abs(np.diff(cands) - step))) > 1e-9 * step:
        out = np.searchsorted(cands, x, side="left").astype(np.int32)
        out[np.isnan(x)] = -1
        return out
    y = x - cands[0]
    y *= 1.0 / step
    near = np.flatnonzero(np.abs(y - np.rint(y)) < 1e-6)
    np.ceil(y, out=y)
    np.clip(y, 0, k, out=y)
    y[np.isnan(y)] = -1
    out = y.astype(np.int32)
    out[near] = np.searchsorted(cands, x[near], side="left")
    return out


def _grid_step(cands: np.ndarray) -> float:
    return float(np.max(np.diff(cands))) if len(cands) > 1 else 0.0


# ------------------------------------------------------------------------------------ plan
def _quantile_plan(q, schema, epsilon, mechanism, delta):
    """One quantile (QuantileQuery) or one per public category of `by` (GroupedQuantileQuery).

    Grouped: each row's cell is group * (K+1) + value cell, a row-wise public map, and ONE OpenDP
    count over the G*(K+1) joint cells is released. A patient's rows change at most d_in cells in
    total whatever their groups, so OpenDP's map, and the cost, equal one quantile's (parallel
    composition over the disjoint groups); every group gets the same noise scale and interval.
    """
    from privacy.measurements import Outcome, Plan, _rows, _int_space

    col = schema.column(q.column)
    grouped = isinstance(q, GroupedQuantileQuery)
    groups = list(schema.column(q.by).bucket_labels) if grouped else [schema.label(q.column)]
    d_in = schema.max_rows_per_unit
    level = float(q.q)
    cands = np.asarray(col.quantile_candidates, dtype=float)
    k = len(cands)
    cells = list(range(len(groups) * (k + 1)))

    def build(scale: float):
        return (_int_space() >> dp.t.then_count_by_categories(categories=cells, null_category=False)
                >> dp.m.then_laplace(scale=scale))

    # Pure epsilon-DP whatever was requested (see module docstring); cost = OpenDP's map.
    m, (scale,), cost = calibrate([build], [1.0], d_in, epsilon, "laplace", 0.0)

    def codes(cohort) -> np.ndarray:
        key = ("quantile-cells", q.column)
        if key not in cohort._cache:
            cohort._cache[key] = cell_codes(cohort.numbers[q.column], cands)   # -1 = missing: left out
        return cohort._cache[key]

    def make_input(cohort) -> np.ndarray:
        c = codes(cohort)
        mask = _rows(cohort, q)
        keep = c >= 0 if mask is None else ((c >= 0) & mask)
        if not grouped:
            return c[keep]
        return cohort.codes[q.by][keep] * np.int32(k + 1) + c[keep]

    def values(cohort) -> list[np.ndarray]:
        x = cohort.numbers[q.column]
        keep = ~np.isnan(x)
        mask = _rows(cohort, q)
        if mask is not None:
            keep &= mask
        if not grouped:
            return [x[keep]]
        g = cohort.codes[q.by][keep]
        return [x[keep][g == i] for i in range(len(groups))]

    def finish(raw, alpha: float) -> Outcome:
        t = rank_thresholds(scale, k, level, float(alpha))
        counts = np.asarray(raw, dtype=float).reshape(len(groups), k + 1)
        points, lows, highs = zip(*(quantile_from_counts(c, cands, level, t, col.lower, col.upper) for c in counts))
        empty = {}
        if grouped:   # an empty group's cells are pure noise: its noisy total exceeds this 1 time in 10^6
            empty = {"noisy_totals": [float(x) for x in counts.sum(axis=1)],
                     "empty_below": empty_group_threshold(scale, k + 1, EMPTY_GROUP_TAIL)}
        return Outcome(list(points), list(lows), list(highs), {
            **empty, "rank_threshold": float(t.max()),
            "interval": f"covers the true quantile at least {1 - alpha:.0%} of the time for any data (one exact "
                        f"test per cell between the {k} public candidates)"})

    def truth(cohort) -> list[float]:
        return [float(np.quantile(x, level)) if len(x) else float("nan") for x in values(cohort)]

    name = "median" if level == 0.5 else f"{level:.0%} quantile"
    unit = f" {col.unit}" if col.unit else ""
    step = _grid_step(cands)
    if k < 2:
        grid = f"to the single public candidate {cands[0]:g}{unit}"
    else:
        uniform = np.allclose(np.diff(cands), step, rtol=1e-6)
        grid = f"to the public grid ({'step' if uniform else 'steps up to'} {step:.3g}{unit})"

    def preview(alpha: float) -> dict:
        t = rank_threshold(scale, k, level, float(alpha))
        typical = 2.0 * float(np.median(z_std(scale, k, level)))
        r = t + 1.0                                  # the interval's reach in ranks (see finish)
        by_n = {n: (max(0.0, level - r / n), min(1.0, level + r / n)) for n in (100, 1_000, 10_000, 100_000)}
        text = words.quantile(name, schema.label(q.column), r, col.lower, col.upper, col.unit, grid, schema, level)
        if grouped:
            text = "in each group (all groups for the price of one), " + text
        return {"kind": "quantile", "halfwidth": r, "unit": "ranks", "rank_threshold": t,
                "typical_rank_error": typical, "level_range_by_n": by_n, "grid_step": step, "words": text,
                "reference_size": words.reference_size(schema)}

    extra = {"method": "noisy cumulative histogram over the public candidates (one OpenDP measurement"
                       + (" over group x candidate cells: groups compose in parallel" if grouped else "")
                       + "); interval by exact per-cell tests",
             "candidates": k, "truth": "np.quantile of the clamped non-missing values (linear)"}
    if mechanism != "laplace":
        extra["requested_mechanism"] = mechanism
        extra["mechanism_note"] = ("Gaussian noise is not used for quantiles: this release uses pure "
                                   "epsilon-DP discrete Laplace noise (delta = 0), at most the requested epsilon.")
    return Plan(q, schema, epsilon, "laplace", 0.0, m, d_in, cost, groups,
                {"counts": (NOISE, scale)}, make_input, finish, truth, preview, extra, cells=len(cells))


from privacy.measurements import register  # noqa: E402
register(QuantileQuery, _quantile_plan)
register(GroupedQuantileQuery, _quantile_plan)
