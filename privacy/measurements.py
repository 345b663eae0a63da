"""Query spec + public schema + epsilon -> a calibrated OpenDP measurement (a `Plan`).

Privacy facts, for every plan:
- Input metric: symmetric distance on rows. One patient contributes at most
  `schema.max_rows_per_unit` rows (enforced in `data.prepare`), so the cost is the privacy map
  at d_in = max_rows_per_unit. The cost is read from OpenDP, never computed by hand.
- Everything used to shape the computation (categories, bin edges, bounds, candidates, the
  restriction category) is public schema metadata. Row-wise maps done in NumPy before the
  measurement (category codes, public bin ids, centring by the public mid-range, the public
  restriction filter) are 1-stable: they never increase how many rows one patient changes.
- Plans hold no data. They are cached per (query, schema, epsilon, mechanism, delta).
"""
from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from data.prepare import PreparedCohort, date_to_day
from data.schema import CategoricalColumn, DateColumn, NumericColumn, Schema
from privacy import words
from privacy.accuracy import accuracy, ratio_interval
from privacy.calibrate import DEFAULT_DELTA, calibrate
from privacy.opendp_runtime import dp
from privacy.queries import (CountQuery, CrossTabQuery, GroupedMeanQuery, HistogramQuery, MeanQuery,
                             Query, QuantileQuery, validate_epsilon, validate_mechanism, validate_query)

def _int_space():
    return dp.vector_domain(dp.atom_domain(T=dp.i32)), dp.symmetric_distance()


def _float_space():
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


@dataclass(frozen=True)
class Outcome:
    """Post-processed output of one invocation (what becomes a Release's numbers)."""

    values: list[float]
    ci_low: list[float]
    ci_high: list[float]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """A calibrated measurement for one query; holds no private data.

    `cost` is OpenDP's privacy map at d_in = max rows per patient: (epsilon, delta), a
    `calibrate.Cost` that also carries the zCDP form (`cost.rho`, `cost.zcdp`).
    `noise` names each noisy part ("counts", "sum", "count", ...) with its distribution and scale.
    """

    query: Query
    schema: Schema
    epsilon: float
    mechanism: str
    delta: float
    measurement: Any
    d_in: int
    cost: tuple[float, float]
    labels: list[str]
    noise: dict[str, tuple[str, float]]
    make_input: Callable[[PreparedCohort], Any]
    finish: Callable[[Any, float], Outcome]
    truth_fn: Callable[[PreparedCohort], list[float]]
    preview_fn: Callable[[float], dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def run(self, cohort: PreparedCohort, alpha: float = 0.05) -> Outcome:
        """Invoke the measurement once on the private cohort. Spends budget: call via release()."""
        return self.finish(self.measurement(self.make_input(cohort)), alpha)

    def truth(self, cohort: PreparedCohort) -> list[float]:
        """Non-private values of the same statistic. Data-owner views only."""
        return self.truth_fn(cohort)

    def expected_error(self, alpha: float = 0.05) -> dict[str, Any]:
        """Expected (1-alpha) error of each released value; from OpenDP accuracy, no data touched."""
        return self.preview_fn(alpha)

    @property
    def rho(self) -> float:
        """zCDP cost (OpenDP's map of the zCDP form at d_in), for zCDP accounting."""
        return self.cost.rho

    @property
    def mechanism_name(self) -> str:
        return ", ".join(f"{k}: {d} (scale {s:.4g})" for k, (d, s) in self.noise.items())


# ------------------------------------------------------------------------------- input helpers
def _rows(cohort: PreparedCohort, query: Query) -> np.ndarray | None:
    return cohort.mask(query.where.column, query.where.value) if query.where else None


def _sel(arr: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return arr[mask] if mask is not None else arr


def _noise_of(mechanism: str, discrete: bool) -> str:
    return ("discrete " if discrete else "") + ("laplace" if mechanism == "laplace" else "gaussian")


def _then_noise(mechanism: str, scale: float):
    return dp.m.then_laplace(scale=scale) if mechanism == "laplace" else dp.m.then_gaussian(scale=scale)


def _count_metric(mechanism: str):
    return dp.L1Distance[dp.i32] if mechanism == "laplace" else dp.L2Distance[dp.i32]


# --------------------------------------------------------------------------- coded histograms
def numeric_bins(col: NumericColumn, edges: tuple[float, ...] | None) -> tuple[tuple[float, ...], list[str]]:
    """Public bins of a numeric column: labels for [a, b) bins (last closed), below, above, missing."""
    e = tuple(edges or col.bin_edges)
    fmt = (lambda v: f"{v:g}")
    labels = [f"{fmt(a)}–{fmt(b)}" for a, b in zip(e, e[1:])]
    extra = []
    if e[0] > col.lower:
        extra.append(f"< {fmt(e[0])}")
    if e[-1] < col.upper:
        extra.append(f"> {fmt(e[-1])}")
    return e, labels + extra + ["missing"]


def numeric_bin_codes(x: np.ndarray, col: NumericColumn, e: tuple[float, ...]) -> np.ndarray:
    """Row-wise public map from value to bin id (1-stable). Matches `numeric_bins` labels."""
    edges = np.asarray(e)
    nb = len(e) - 1
    codes = np.searchsorted(edges, x, side="right").astype(np.int32) - 1
    codes[x == edges[-1]] = nb - 1                     # last bin is closed on the right
    below_code = nb if e[0] > col.lower else None
    above_code = nb + (1 if below_code is not None else 0) if e[-1] < col.upper else None
    missing_code = nb + (below_code is not None) + (above_code is not None)
    if below_code is not None:
        codes[x < edges[0]] = below_code
    if above_code is not None:
        codes[x > edges[-1]] = above_code
    codes[np.isnan(x)] = missing_code
    return codes


def date_bins(col: DateColumn, unit: str | None) -> tuple[np.ndarray, list[str]]:
    starts = col.bin_starts(unit)
    u = unit or col.bin_unit
    fmt = {"day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m", "quarter": "%Y-%m", "year": "%Y"}[u]
    labels = [d.strftime(fmt) if u != "quarter" else f"{d.year}-Q{(d.month - 1) // 3 + 1}" for d in starts]
    return np.array([date_to_day(d) for d in starts], dtype=np.int64), labels + ["missing"]


def _histogram_codes(cohort: PreparedCohort, q: HistogramQuery) -> np.ndarray:
    col = cohort.schema.column(q.column)
    key = ("hist-codes", q.column, q.bin_edges, q.date_unit)
    if key not in cohort._cache:
        if isinstance(col, CategoricalColumn):
            codes = cohort.codes[q.column]
        elif isinstance(col, NumericColumn):
            e, _ = numeric_bins(col, q.bin_edges)
            codes = numeric_bin_codes(cohort.numbers[q.column], col, e)
        else:
            starts, labels = date_bins(col, q.date_unit)
            codes = (np.searchsorted(starts, cohort.days[q.column], side="right") - 1).astype(np.int32)
            np.clip(codes, 0, len(starts) - 1, out=codes)
            codes[cohort.day_missing[q.column]] = len(starts)
        cohort._cache[key] = codes
    return cohort._cache[key]


def _hist_labels(schema: Schema, q: HistogramQuery) -> list[str]:
    col = schema.column(q.column)
    if isinstance(col, CategoricalColumn):
        return list(col.bucket_labels)
    if isinstance(col, NumericColumn):
        return numeric_bins(col, q.bin_edges)[1]
    return date_bins(col, q.date_unit)[1]


def _counts_plan(query: Query, schema: Schema, epsilon: float, mechanism: str, delta: float,
                 n_cats: int, labels: list[str], codes_fn: Callable[[PreparedCohort], np.ndarray],
                 extra: dict | None = None) -> Plan:
    """Counts of codes 0..n_cats-1 (one measurement, noise on each count)."""
    d_in = schema.max_rows_per_unit
    cats = list(range(n_cats))

    def build(scale: float):
        return (_int_space() >> dp.t.then_count_by_categories(categories=cats, null_category=False,
                                                              MO=_count_metric(mechanism))
                >> _then_noise(mechanism, scale))

    m, (scale,), cost = calibrate([build], [1.0], d_in, epsilon, mechanism, delta)
    noise = _noise_of(mechanism, True)

    def make_input(cohort: PreparedCohort) -> np.ndarray:
        return _sel(codes_fn(cohort), _rows(cohort, query))

    def finish(raw, alpha: float) -> Outcome:
        v = np.asarray(raw, dtype=float)
        a = accuracy(scale, alpha, noise)
        return Outcome(v.tolist(), (v - a).tolist(), (v + a).tolist(), {"halfwidth": a})

    def truth(cohort: PreparedCohort) -> list[float]:
        c = make_input(cohort)
        return np.bincount(c[(c >= 0) & (c < n_cats)], minlength=n_cats).astype(float).tolist()

    what = {"histogram": "each bar", "crosstab": "each cell"}.get(query.stat, "each count")

    def preview(alpha: float) -> dict:
        a = accuracy(scale, alpha, noise)
        return {"kind": "counts", "halfwidth": a, "unit": schema.rows_word, "words": words.counts(a, schema, what)}

    return Plan(query, schema, epsilon, mechanism, delta, m, d_in, cost, labels, {"counts": (noise, scale)},
                make_input, finish, truth, preview, extra or {})


def _count_plan(q: CountQuery, schema, epsilon, mechanism, delta) -> Plan:
    """Number of rows (optionally in one public category): OpenDP count + noise, one value."""
    d_in = schema.max_rows_per_unit
    unit = schema.rows_word

    def build(scale: float):
        return _int_space() >> dp.t.then_count(TO=dp.i32) >> _then_noise(mechanism, scale)

    m, (scale,), cost = calibrate([build], [1.0], d_in, epsilon, mechanism, delta)
    noise = _noise_of(mechanism, True)

    def make_input(cohort: PreparedCohort) -> np.ndarray:
        if "zeros" not in cohort._cache:
            cohort._cache["zeros"] = np.zeros(cohort.n_rows, dtype=np.int32)
        return _sel(cohort._cache["zeros"], _rows(cohort, q))

    def finish(raw, alpha: float) -> Outcome:
        v = float(raw)
        a = accuracy(scale, alpha, noise)
        return Outcome([v], [v - a], [v + a], {"halfwidth": a})

    def truth(cohort: PreparedCohort) -> list[float]:
        return [float(len(make_input(cohort)))]

    def preview(alpha: float) -> dict:
        a = accuracy(scale, alpha, noise)
        return {"kind": "counts", "halfwidth": a, "unit": unit, "words": words.counts(a, schema, "the count")}

    return Plan(q, schema, epsilon, mechanism, delta, m, d_in, cost, [unit], {"counts": (noise, scale)},
                make_input, finish, truth, preview)


def _histogram_plan(q: HistogramQuery, schema, epsilon, mechanism, delta) -> Plan:
    labels = _hist_labels(schema, q)
    return _counts_plan(q, schema, epsilon, mechanism, delta, len(labels), labels,
                        lambda c: _histogram_codes(c, q))


def _axis(schema: Schema, name: str) -> HistogramQuery:
    """A crosstab axis is binned like a histogram: categories, public numeric bins or date bins."""
    return HistogramQuery(column=name)


def _crosstab_plan(q: CrossTabQuery, schema, epsilon, mechanism, delta) -> Plan:
    """2-D counts of (column, by); each axis categorical, numeric (public bins) or date (public unit)."""
    ha, hb = _axis(schema, q.column), _axis(schema, q.by)
    la, lb = _hist_labels(schema, ha), _hist_labels(schema, hb)
    nb = len(lb)

    def codes(cohort: PreparedCohort) -> np.ndarray:
        key = ("xtab", q.column, q.by)
        if key not in cohort._cache:
            cohort._cache[key] = (_histogram_codes(cohort, ha) * nb + _histogram_codes(cohort, hb)).astype(np.int32)
        return cohort._cache[key]

    labels = [f"{x} | {y}" for x in la for y in lb]
    return _counts_plan(q, schema, epsilon, mechanism, delta, len(labels), labels, codes,
                        {"rows": la, "cols": lb})


# ---------------------------------------------------------------------------------------- mean
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


def _int64_space():
    return dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.symmetric_distance()


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


# ------------------------------------------------------------------------------------ builder
_BUILDERS: dict[type, Callable] = {
    CountQuery: _count_plan,
    HistogramQuery: _histogram_plan,
    CrossTabQuery: _crosstab_plan,
    MeanQuery: _mean_plan,
    GroupedMeanQuery: _grouped_mean_plan,
}


def register(query_type: type, builder: Callable) -> None:
    _BUILDERS[query_type] = builder
    build_plan.cache_clear()


def unregister(query_type: type) -> None:
    _BUILDERS.pop(query_type, None)
    build_plan.cache_clear()



@functools.lru_cache(maxsize=512)
def build_plan(query: Query, schema: Schema, epsilon: float, mechanism: str = "laplace",
               delta: float = DEFAULT_DELTA) -> Plan:
    """Validate and calibrate. Raises QueryError for bad specs/epsilon. Touches no data."""
    validate_query(query, schema)
    epsilon = validate_epsilon(epsilon)
    validate_mechanism(mechanism)
    if mechanism == "laplace":
        delta = 0.0
    return _BUILDERS[type(query)](query, schema, epsilon, mechanism, delta)


from privacy import quantile as _quantile  # noqa: E402,F401  (registers QuantileQuery)
from privacy import survival as _survival  # noqa: E402,F401  (registers SurvivalQuery)
