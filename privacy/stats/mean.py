"""Means: a bounded mean, and a mean per public category of a group column.

Privacy facts:
- Public: the column's bounds (values clamped), the mid-range used for centring, the rounding grid
  (half-range / SUM_RESOLUTION_STEPS), the group column's categories (plus missing / other).
- Row-wise maps before the measurement (centring, rounding to the public grid, the public
  restriction filter, group codes) are 1-stable.
- Mean: OpenDP's integer split sum and a count on one input, calibrated together; grouped mean:
  per-group integer sums and counts computed by the engine, noised by OpenDP over the group
  vectors at input distances read from the row-level transformations' maps (`_grouped_parts`).
  The cost is OpenDP's privacy maps at d_in = max rows per patient.
"""
from __future__ import annotations

import math

import numpy as np

from data.prepare import PreparedCohort
from data.schema import NumericColumn, Schema
from privacy import words
from privacy.accuracy import accuracy, ratio_interval
from privacy.calibrate import calibrate
from privacy.measurements import Outcome, Plan, _int64_space, _noise_of, _rows, _then_noise, register
from privacy.opendp_runtime import dp
from privacy.queries import GroupedMeanQuery, MeanQuery


def _centred(cohort: PreparedCohort, column: str, mask: np.ndarray | None, mid: float) -> np.ndarray:
    """Non-missing values minus the public mid-range; cached for the unrestricted case.

    OpenDP reads the array without changing it (tests/test_core_smoke checks this)."""
    key = ("centred", column, mid)
    if mask is None and key in cohort._cache:
        return cohort._cache[key]
    x = cohort.numbers[column]
    fkey = ("finite", column)
    if fkey not in cohort._cache:
        cohort._cache[fkey] = ~np.isnan(x)
    ok = cohort._cache[fkey]
    keep = ok if mask is None else (ok & mask)
    out = x[keep]
    out -= mid
    if mask is None:
        cohort._cache[key] = out
    return out


SUM_RESOLUTION_STEPS = 2 ** 12   # centred values are quantised to half-range / 2^12 (public)
# A group whose noisy count is at most `empty_below` may have no patient at all: an empty group's
# noisy count exceeds it with this probability (one-sided tail of the count's noise). Screens show
# such a group as "not enough patients to estimate" (post-processing of the release only).
EMPTY_GROUP_TAIL = 1e-6


def mean_grid(col: NumericColumn) -> tuple[float, float]:
    """(public mid-range, integer grid units per value unit) of a mean of `col`: values are
    centred on the mid-range and rounded to half-range / SUM_RESOLUTION_STEPS."""
    return (col.lower + col.upper) / 2, SUM_RESOLUTION_STEPS / ((col.upper - col.lower) / 2)


def _mean_parts(col: NumericColumn, schema: Schema, mechanism: str):
    """Sum and count builders for a mean, both on the quantised centred values (one input).

    The sum uses OpenDP's integer split sum: its map is max(|L|, |U|) = H per row, what one row
    can change, where OpenDP's float checked sum on the centred bounds maps 2H (measured: 100 for
    bounds -50..50), so the sum's noise is half as large for the same epsilon. Values are
    rounded to a public grid of step half-range / 2^12 first (a row-wise public map); the
    rounding moves a mean by at most half a step, which every interval adds.
    """
    mid, factor = mean_grid(col)            # factor: integer units per value unit
    H = SUM_RESOLUTION_STEPS

    def sum_b(scale: float):
        return (_int64_space() >> dp.t.then_clamp(bounds=(-H, H))
                >> dp.t.make_bounded_int_split_sum(bounds=(-H, H), T=dp.i64) >> _then_noise(mechanism, scale))

    def count_b(scale: float):
        return _int64_space() >> dp.t.then_count() >> _then_noise(mechanism, scale)

    return mid, factor, sum_b, count_b


def _quantised(cohort: PreparedCohort, column: str, mask: np.ndarray | None, mid: float, factor: float) -> np.ndarray:
    """Non-missing values, centred and rounded to the public grid, as int64 (cached unrestricted)."""
    key = ("quantised", column, mid, factor)
    if mask is None and key in cohort._cache:
        return cohort._cache[key]
    x = _centred(cohort, column, mask, mid)
    out = np.rint(x * factor).astype(np.int64)
    if mask is None:
        cohort._cache[key] = out
    return out


def _mean_plan(q: MeanQuery, schema: Schema, epsilon, mechanism, delta) -> Plan:
    """Bounded mean = (noisy centred sum) / (noisy count), half the budget each, one input.

    Public: the column's bounds (values clamped), mid-range used for centring, the rounding grid.
    Interval (Laplace): the joint (sum, count) test-inversion interval of `privacy.mean_interval`,
    >= 1-alpha for any data, plus half a grid step for the rounding. Gaussian: the sum's and the
    count's (1 - alpha/2) boxes -> ratio interval (>= 1-alpha), plus the same half step.
    """
    from privacy.mean_interval import mean_interval, typical_halfwidth

    col = schema.column(q.column)
    d_in = schema.max_rows_per_unit
    mid, factor, sum_b, count_b = _mean_parts(col, schema, mechanism)
    H = float(SUM_RESOLUTION_STEPS)
    m, (s_sum, s_cnt), cost = calibrate([sum_b, count_b], [1.0, 1.0], d_in, epsilon, mechanism, delta)
    n_sum = n_cnt = _noise_of(mechanism, True)
    lower, upper = col.lower - mid, col.upper - mid

    def make_input(cohort):
        return _quantised(cohort, q.column, _rows(cohort, q), mid, factor)

    def interval(s: float, n: float, alpha: float) -> tuple[float, float, float]:
        if mechanism == "laplace":
            est, lo, hi = mean_interval(s, n, H, s_sum, s_cnt, alpha)
        else:
            a_s, a_c = accuracy(s_sum, alpha / 2, n_sum), accuracy(s_cnt, alpha / 2, n_cnt)
            est, lo, hi = ratio_interval(s, n, a_s, a_c, -H, H)
        return est / factor, max(lower, (lo - 0.5) / factor), min(upper, (hi + 0.5) / factor)

    def finish(raw, alpha):
        s, n = float(raw[0]), float(raw[1])
        est, lo, hi = interval(s, n, alpha)
        return Outcome([est + mid], [lo + mid], [hi + mid],
                       {"noisy_sum": s / factor + n * mid, "noisy_count": n, "sum_unit": 1 / factor,
                        "interval": "joint test-inversion interval for (sum, count)" if mechanism == "laplace"
                        else "sum and count boxes at alpha/2 each (Bonferroni)"})

    def truth(cohort):
        x = _centred(cohort, q.column, _rows(cohort, q), mid)
        return [float(x.mean() + mid) if len(x) else float("nan")]

    def preview(alpha):
        if mechanism == "laplace":   # a(H/2)/n at the typical |mean|; no count box
            a_s, a_c = typical_halfwidth(1.0, H, s_sum, s_cnt, alpha) / factor, 0.0
        else:
            a_s, a_c = accuracy(s_sum, alpha / 2, n_sum) / factor, accuracy(s_cnt, alpha / 2, n_cnt)
        return _mean_preview(a_s, a_c, col, schema)

    return Plan(q, schema, epsilon, mechanism, delta, m, d_in, cost, [schema.label(q.column)],
                {"sum": (n_sum, s_sum), "count": (n_cnt, s_cnt)}, make_input, finish, truth, preview,
                {"centre": mid, "sum_unit": 1 / factor})


def _mean_preview(a_s: float, a_c: float, col: NumericColumn, schema: Schema) -> dict:
    """Half-width of the mean for a few group sizes; the true size is private, so the words name
    the owner's declared typical sizes (else 100 / 1,000 / 10,000). `halfwidth` is at the
    reference size (what a target accuracy refers to)."""
    def at(n: float) -> float:
        return a_s / (n - a_c) if n > a_c else math.inf

    ref = words.reference_size(schema)
    by_n = {n: at(n) for n in sorted({100, 1_000, 10_000, 100_000, ref, *words.sizes(schema)})}
    return {"kind": "mean", "sum_halfwidth": a_s, "count_halfwidth": a_c, "halfwidth_by_n": by_n,
            "halfwidth": by_n[ref], "reference_size": ref, "words": words.mean(at, col.unit, schema)}


# ------------------------------------------------------------------------------ grouped mean
def _grouped_parts(G: int, d_in: int, mechanism: str):
    """OpenDP noise builders over per-group aggregates, and the input distance of each, read from
    the row-level transformation's own map at d_in:
    - counts: `make_count_by_categories` over the G public group codes;
    - sums: the clamped integer split sum (`make_bounded_int_split_sum`, map max(|L|, |U|) = H per
      row). Each row falls in exactly one public group, so the L1 (and L2) change of the vector of
      group sums is at most the change of one sum over the same rows: that map bounds it."""
    H = SUM_RESOLUTION_STEPS
    i64 = _int64_space()
    MO = dp.L1Distance[dp.i32] if mechanism == "laplace" else dp.L2Distance[dp.i32]
    d_cnt = dp.t.make_count_by_categories(*_int32_space(), categories=list(range(G)), null_category=False, MO=MO).map(d_in)
    d_sum = (i64 >> dp.t.then_clamp(bounds=(-H, H)) >> dp.t.make_bounded_int_split_sum(bounds=(-H, H), T=dp.i64)).map(d_in)

    def noise(T, scale: float):
        dom = dp.vector_domain(dp.atom_domain(T=T), size=G)
        if mechanism == "laplace":
            return dp.m.make_laplace(dom, dp.l1_distance(T=T), scale=scale)
        return dp.m.make_gaussian(dom, dp.l2_distance(T=T), scale=scale)

    return (lambda sc: noise(dp.i64, sc), d_sum), (lambda sc: noise(dp.i64, sc), d_cnt)


def _int32_space():
    return dp.vector_domain(dp.atom_domain(T=dp.i32)), dp.symmetric_distance()


def _calibrate_parts(parts, epsilon: float, mechanism: str, delta: float):
    """Scales so that the parts, half the budget each, cost `epsilon` in total by OpenDP's maps at
    each part's input distance. The parts read different aggregates of one table, so they compose
    sequentially: epsilons add (pure DP) or rhos add (zCDP, converted to (epsilon, delta) by
    OpenDP). Returns (scales, Cost)."""
    from privacy.accounting import pure_to_rho, rho_to_epsilon
    from privacy.calibrate import Cost, rho_for
    unit = [b(1.0).map(d) for b, d in parts]
    if mechanism == "laplace":
        scales = [u / (epsilon / 2) for u in unit]
    else:
        rho = rho_for(epsilon, delta)
        scales = [math.sqrt(u / (rho / 2)) for u in unit]
    for i in range(60):
        total = math.fsum(b(sc).map(d) for (b, d), sc in zip(parts, scales))
        if mechanism == "laplace" and total <= epsilon:
            return scales, Cost(total, 0.0, pure_to_rho(total), None)
        if mechanism == "gaussian" and total <= rho:
            return scales, Cost(rho_to_epsilon(total, delta), delta, total, None)
        scales = [sc * (1 + 1e-9 * 4 ** i) for sc in scales]
    raise RuntimeError("could not calibrate the grouped mean's noise scales")


def _grouped_mean_plan(q: GroupedMeanQuery, schema: Schema, epsilon, mechanism, delta) -> Plan:
    """Per public category of `by`: the noisy integer sum of the values rounded to the public grid
    (as the mean) and the noisy count, two OpenDP noise measurements over the per-group aggregates.

    Public: the group column's categories plus missing / other (all keys, so the key set is public),
    the bounds, mid-range and grid. An engine computes the aggregates (`make_input`: NumPy bincount
    in memory, a GROUP BY in a database); the input distance of each noise is the row-level
    transformation's map (see `_grouped_parts`). Interval per group: the mean's joint (sum, count)
    interval (Laplace) or its boxes (Gaussian), plus half a grid step.
    """
    from privacy.engine.noise import AggregateNoise, NoisyPart
    from privacy.mean_interval import mean_interval, typical_halfwidth

    col, by = schema.column(q.column), schema.column(q.by)
    d_in = schema.max_rows_per_unit
    labels = list(by.bucket_labels)
    G = len(labels)
    mid, factor, _, _ = _mean_parts(col, schema, mechanism)
    H = float(SUM_RESOLUTION_STEPS)
    (b_sum, d_sum), (b_cnt, d_cnt) = _grouped_parts(G, d_in, mechanism)
    (s_sum, s_cnt), cost = _calibrate_parts([(b_sum, d_sum), (b_cnt, d_cnt)], epsilon, mechanism, delta)
    m_sum, m_cnt = b_sum(s_sum), b_cnt(s_cnt)
    n_sum = n_cnt = _noise_of(mechanism, True)
    lower, upper = col.lower - mid, col.upper - mid

    def kept(cohort):
        """Non-missing rows (restricted by `where`): (mask, their group codes)."""
        keep = ~np.isnan(cohort.numbers[q.column])
        mask = _rows(cohort, q)
        if mask is not None:
            keep &= mask
        return keep, cohort.codes[q.by][keep]

    def aggregates(cohort):
        """[integer sum per group, count per group] of the non-missing values (restricted by `where`)."""
        v = _quantised(cohort, q.column, _rows(cohort, q), mid, factor)
        _, g = kept(cohort)
        sums = np.bincount(g, weights=v, minlength=G)          # integers below 2^53: exact in float64
        return [np.rint(sums).astype(np.int64), np.bincount(g, minlength=G).astype(np.int64)]

    def measure(agg):
        return [m_sum(np.ascontiguousarray(agg[0], dtype=np.int64)), m_cnt(np.ascontiguousarray(agg[1], dtype=np.int64))]

    def finish(raw, alpha):
        vals, lo, hi, counts = [], [], [], []
        a_s, a_c = accuracy(s_sum, alpha / 2, n_sum), accuracy(s_cnt, alpha / 2, n_cnt)
        for s, n in zip(np.asarray(raw[0], dtype=float), np.asarray(raw[1], dtype=float)):
            if mechanism == "laplace":
                est, l, h = mean_interval(s, n, H, s_sum, s_cnt, alpha)
            else:
                est, l, h = ratio_interval(s, n, a_s, a_c, -H, H)
            vals.append(est / factor + mid)
            lo.append(max(lower, (l - 0.5) / factor) + mid)
            hi.append(min(upper, (h + 0.5) / factor) + mid)
            counts.append(n)
        return Outcome(vals, lo, hi, {"noisy_counts": counts, "count_halfwidth": a_c, "sum_halfwidth": a_s / factor,
                                      "empty_below": accuracy(s_cnt, 2 * EMPTY_GROUP_TAIL, n_cnt),
                                      "interval": "joint test-inversion interval for (sum, count) per group"
                                      if mechanism == "laplace" else "sum and count boxes at alpha/2 each (Bonferroni)"})

    def truth(cohort):
        keep, g = kept(cohort)
        n = np.bincount(g, minlength=G).astype(float)
        s = np.bincount(g, weights=cohort.numbers[q.column][keep] - mid, minlength=G)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (s / n + mid).tolist()

    def preview(alpha):
        if mechanism == "laplace":
            a_s, a_c = typical_halfwidth(1.0, H, s_sum, s_cnt, alpha) / factor, 0.0
        else:
            a_s, a_c = accuracy(s_sum, alpha / 2, n_sum) / factor, accuracy(s_cnt, alpha / 2, n_cnt)
        p = _mean_preview(a_s, a_c, col, schema)
        p["words"] = "in each group, " + p["words"]
        return p

    plan = Plan(q, schema, epsilon, mechanism, delta, measure, d_in, cost, labels,
                {"sum": (n_sum, s_sum), "count": (n_cnt, s_cnt)}, aggregates, finish, truth, preview,
                {"centre": mid, "sum_unit": 1 / factor})
    total = math.fsum(m.map(d) for m, d in ((m_sum, d_sum), (m_cnt, d_cnt)))
    plan._aggregate_noise = AggregateNoise("grouped_sum_count", (NoisyPart("sum", G, m_sum, d_sum, "i64"),
                                                                 NoisyPart("count", G, m_cnt, d_cnt, "i64")), total)
    return plan


register(MeanQuery, _mean_plan)
register(GroupedMeanQuery, _grouped_mean_plan)
