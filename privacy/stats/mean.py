"""Means: a bounded mean, and a mean per public category of a group column.

Privacy facts:
- Public: the column's bounds (values clamped), the mid-range used for centring, the rounding grid
  (half-range / SUM_RESOLUTION_STEPS), the group column's categories (plus missing / other).
- Row-wise maps before the measurement (centring, rounding to the public grid, the public
  restriction filter, group codes) are 1-stable.
- Mean: OpenDP's integer split sum and a count on one input, calibrated together; grouped mean:
  one OpenDP Polars measurement (per-group count and sum over the public keys, parallel over
  the groups). The cost is OpenDP's privacy map at d_in = max rows per patient.
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


def _mean_parts(col: NumericColumn, schema: Schema, mechanism: str):
    """Sum and count builders for a mean, both on the quantised centred values (one input).

    The sum uses OpenDP's integer split sum: its map is max(|L|, |U|) = H per row, what one row
    can change, where OpenDP's float checked sum on the centred bounds maps 2H (measured: 100 for
    bounds -50..50), so the sum's noise is half as large for the same epsilon. Values are
    rounded to a public grid of step half-range / 2^12 first (a row-wise public map); the
    rounding moves a mean by at most half a step, which every interval adds.
    """
    mid = (col.lower + col.upper) / 2
    half = (col.upper - col.lower) / 2
    H = SUM_RESOLUTION_STEPS
    factor = H / half                       # integer units per value unit

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
def _grouped_mean_plan(q: GroupedMeanQuery, schema: Schema, epsilon, mechanism, delta) -> Plan:
    """Per public category of `by`: noisy count and noisy centred sum in one Polars measurement.

    Public keys (all categories plus missing/other) are joined in, so the key set is public.
    """
    import polars as pl

    col, by = schema.column(q.column), schema.column(q.by)
    d_in = schema.max_rows_per_unit
    mid = (col.lower + col.upper) / 2
    half = (col.upper - col.lower) / 2
    labels = list(by.bucket_labels)
    keys = pl.LazyFrame({"g": list(range(len(labels)))}, schema={"g": pl.Int32})
    measure = dp.max_divergence() if mechanism == "laplace" else dp.zero_concentrated_divergence()
    domain = dp.lazyframe_domain([dp.series_domain("g", dp.atom_domain(T=dp.i32)),
                                  dp.series_domain("x", dp.atom_domain(T=dp.f64, nan=False))])
    domain = dp.with_margin(domain, dp.polars.Margin(by=[], max_length=schema.max_rows))
    domain = dp.with_margin(domain, dp.polars.Margin(by=[pl.col("g")], max_length=schema.max_rows))
    plan_lf = (pl.LazyFrame(schema={"g": pl.Int32, "x": pl.Float64}).group_by("g")
               .agg(dp.len(signed=True).alias("n"), pl.col("x").dp.sum((-half, half)).alias("s"))
               .join(keys, on="g", how="right"))

    def build(scale: float):
        return dp.m.make_private_lazyframe(domain, dp.symmetric_distance(), measure, plan_lf, global_scale=scale)

    m, (gscale,), cost = calibrate([build], [1.0], d_in, epsilon, mechanism, delta)
    summary = dp.summarize_polars_measurement(m if mechanism == "laplace" else build(gscale), 0.05)
    rows = {r["column"]: r for r in summary.iter_rows(named=True)}
    s_cnt, s_sum = float(rows["n"]["scale"]), float(rows["s"]["scale"])
    n_cnt = _noise_of(mechanism, True)
    n_sum = _noise_of(mechanism, rows["s"]["distribution"].startswith("Integer"))

    def groups_and_values(cohort):
        """Group codes and centred values of the non-missing rows (restricted by `where`)."""
        x = cohort.numbers[q.column]
        keep = ~np.isnan(x)
        mask = _rows(cohort, q)
        if mask is not None:
            keep &= mask
        return cohort.codes[q.by][keep], x[keep] - mid

    def make_input(cohort):
        g, v = groups_and_values(cohort)
        return pl.LazyFrame({"g": g, "x": v})

    joint = mechanism == "laplace" and n_sum == "laplace" and n_cnt == "discrete laplace"

    def finish(raw, alpha):
        from privacy.mean_interval import mean_interval
        df = raw.collect().sort("g")
        vals, lo, hi, counts = [], [], [], []
        a_s, a_c = accuracy(s_sum, alpha / 2, n_sum), accuracy(s_cnt, alpha / 2, n_cnt)
        for n, s in zip(df["n"].to_list(), df["s"].to_list()):
            n, s = float(n or 0), float(s or 0.0)
            if joint:   # per group, the joint (sum, count) interval: >= 1-alpha for each group
                est, l, h = mean_interval(s, n, half, s_sum, s_cnt, alpha, continuous=True)
            else:
                est, l, h = ratio_interval(s, n, a_s, a_c, -half, half)
            vals.append(est + mid); lo.append(l + mid); hi.append(h + mid); counts.append(n)
        return Outcome(vals, lo, hi, {"noisy_counts": counts, "count_halfwidth": a_c, "sum_halfwidth": a_s,
                                      "interval": "joint test-inversion interval for (sum, count) per group" if joint
                                      else "sum and count boxes at alpha/2 each (Bonferroni)"})

    def truth(cohort):
        g, v = groups_and_values(cohort)
        n = np.bincount(g, minlength=len(labels)).astype(float)
        s = np.bincount(g, weights=v, minlength=len(labels))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (s / n + mid).tolist()

    def preview(alpha):
        a_s, a_c = accuracy(s_sum, alpha / 2, n_sum), accuracy(s_cnt, alpha / 2, n_cnt)
        p = _mean_preview(a_s, a_c, col, schema)
        p["words"] = "in each group, " + p["words"]
        return p

    return Plan(q, schema, epsilon, mechanism, delta, m, d_in, cost, labels,
                {"sum": (n_sum, s_sum), "count": (n_cnt, s_cnt)}, make_input, finish, truth, preview,
                {"centre": mid})


register(MeanQuery, _mean_plan)
register(GroupedMeanQuery, _grouped_mean_plan)
