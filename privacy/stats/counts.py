"""Counts, histograms and crosstabs: noisy counts of public cells (one OpenDP measurement each).

Privacy facts:
- Public: the categories of a categorical column, a numeric column's bin edges (the schema's or the
  query's, plus below / above / missing buckets), a date column's bin unit and range, the
  restriction category. The cells are public; the data only fill them.
- Row-wise maps done in NumPy before the measurement (category codes, public bin ids, the joint
  cell id of a crosstab, the public restriction filter) are 1-stable.
- One measurement (`then_count` or `then_count_by_categories` + discrete Laplace / Gaussian noise);
  the cost is OpenDP's privacy map at d_in = max rows per patient. A crosstab's cells are one
  count over the joint public cells, so it costs what one histogram would.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from data.prepare import PreparedCohort, date_to_day
from data.schema import CategoricalColumn, DateColumn, NumericColumn, Schema
from privacy import words
from privacy.accuracy import accuracy
from privacy.calibrate import calibrate
from privacy.measurements import (Outcome, Plan, _count_metric, _int_space, _noise_of, _rows, _sel, _then_noise,
                                  register)
from privacy.opendp_runtime import dp
from privacy.queries import CountQuery, CrossTabQuery, HistogramQuery, Query


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


def extra_bin_codes(col: NumericColumn, e: tuple[float, ...]) -> tuple[int | None, int | None, int]:
    """Codes of the public below / above / missing buckets after the len(e)-1 bins (None: no such
    bucket, the edges reach the bound), as `numeric_bins` labels them."""
    nb = len(e) - 1
    below = nb if e[0] > col.lower else None
    above = nb + (below is not None) if e[-1] < col.upper else None
    return below, above, nb + (below is not None) + (above is not None)


def numeric_bin_codes(x: np.ndarray, col: NumericColumn, e: tuple[float, ...]) -> np.ndarray:
    """Row-wise public map from value to bin id (1-stable). Matches `numeric_bins` labels."""
    edges = np.asarray(e)
    nb = len(e) - 1
    codes = np.searchsorted(edges, x, side="right").astype(np.int32) - 1
    codes[x == edges[-1]] = nb - 1                     # last bin is closed on the right
    below_code, above_code, missing_code = extra_bin_codes(col, e)
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
                make_input, finish, truth, preview, extra or {}, cells=n_cats)


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


register(CountQuery, _count_plan)
register(HistogramQuery, _histogram_plan)
register(CrossTabQuery, _crosstab_plan)
