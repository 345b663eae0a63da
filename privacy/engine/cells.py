"""Public cell maps as engine-neutral expressions, built from the query and the public schema only.

Each expression mirrors a row-wise public map of the in-memory path (`data.prepare` encoding plus
the statistic's cell codes), so an engine that evaluates it row by row, after the per-patient
bound, computes the same aggregates as `privacy.engine.numpy_aggregates`:
- `Category(col, categories)`: code i of the declared category (compared as text), K if missing,
  K+1 for any other value (as `data.prepare._encode_categorical`).
- `Numeric(col, lower, upper, fill)`: the value clamped to the public bounds, missing -> the
  public fill value (else missing).
- `Bins(x, edges, below, above, missing)`: public numeric bin id (as `numeric_bin_codes`).
- `DateBins(col, starts, missing)`: public date bin id of the day, clamped to the range.
- `Above(x, candidates)`: #{candidates < x} (quantile cells, as `cell_codes`).
- `Rounded(x, mid, factor)`: round-half-even((x - mid) * factor), the mean's public grid.
- `Mixed(a, b, nb)`: a * nb + b (crosstab and grouped cells).
No value in these expressions comes from the data: names, categories, edges and bounds are the
schema's, and engines bind them as parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from data.schema import CategoricalColumn, DateColumn, NumericColumn
from privacy.engine.noise import EngineUnsupported
from privacy.queries import (CountQuery, CrossTabQuery, GroupedMeanQuery, GroupedQuantileQuery, HistogramQuery,
                             MeanQuery, QuantileQuery, SurvivalQuery)


@dataclass(frozen=True)
class Category:
    column: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Numeric:
    column: str
    lower: float
    upper: float
    fill: float | None


@dataclass(frozen=True)
class Bins:
    x: Numeric
    edges: tuple[float, ...]
    below: int | None
    above: int | None
    missing: int


@dataclass(frozen=True)
class DateBins:
    column: str
    starts: tuple  # datetime.date bin starts (public)
    missing: int


@dataclass(frozen=True)
class Above:
    x: Numeric
    candidates: tuple[float, ...]


@dataclass(frozen=True)
class Rounded:
    x: Numeric
    mid: float
    factor: float


@dataclass(frozen=True)
class SurvivalCell:
    """Survival cell of a row: 2*bin + kind (kind 0 = event, 1 = censored) for a time within the
    public follow-up, 2*nb (at risk throughout) past it or censored at its end; rows whose event
    category is in neither list are filtered out by `kind_known` (as `privacy.stats.survival`)."""
    t: Numeric
    event: Category
    events: tuple[int, ...]        # public category codes that are events
    censored: tuple[int, ...]      # ... and that are censored
    edges: tuple[float, ...]


@dataclass(frozen=True)
class Mixed:
    a: "Expr"
    b: "Expr"
    nb: int


Expr = Union[Category, Bins, DateBins, Above, Mixed, Rounded, SurvivalCell]


@dataclass(frozen=True)
class CellSpec:
    """What an engine computes for one plan, after the per-patient bound.

    kind "cells": counts of `cell` over rows where every `(expr, code)` in `where` holds and every
    `present` value is not missing, for cells 0..n-1 (`cell` None: one count).
    kind "sum_count": the integer sum of `value` and the number of rows, same row filter;
    kind "grouped_sum_count": both per cell of `cell` (n cells)."""

    kind: str
    n: int
    cell: Expr | None = None
    value: Rounded | None = None
    where: tuple[tuple[Category, int], ...] = ()
    present: tuple[Numeric, ...] = ()
    kind_known: SurvivalCell | None = None      # survival: keep rows whose event kind is known


def _category(schema, name: str) -> Category:
    col = schema.column(name)
    if not isinstance(col, CategoricalColumn):
        raise EngineUnsupported(f"'{name}' is not categorical")
    return Category(name, tuple(col.categories))


def _numeric(schema, name: str) -> Numeric:
    col = schema.column(name)
    return Numeric(name, float(col.lower), float(col.upper),
                   None if col.fill_value is None else float(col.fill_value))


def _axis(schema, q: HistogramQuery) -> Expr:
    from privacy.stats.counts import extra_bin_codes, numeric_bins
    col = schema.column(q.column)
    if isinstance(col, CategoricalColumn):
        return _category(schema, q.column)
    if isinstance(col, NumericColumn):
        e, _ = numeric_bins(col, q.bin_edges)
        return Bins(_numeric(schema, q.column), tuple(float(v) for v in e), *extra_bin_codes(col, e))
    if isinstance(col, DateColumn):
        starts = col.bin_starts(q.date_unit)
        return DateBins(q.column, tuple(starts), len(starts))
    raise EngineUnsupported(f"'{q.column}' cannot be binned")


def _where(schema, q) -> tuple[tuple[Category, int], ...]:
    if not q.where:
        return ()
    col = schema.column(q.where.column)
    return ((_category(schema, q.where.column), list(col.bucket_labels).index(q.where.value)),)


def cell_spec(plan) -> CellSpec:
    """The plan's public cell map for push-down engines. Raises EngineUnsupported for statistics
    without one (they run in memory or on OpenDP's row-level path)."""
    from privacy.engine.noise import n_cells
    q, schema = plan.query, plan.schema
    where = _where(schema, q)
    if isinstance(q, CountQuery):
        return CellSpec("cells", 1, None, where=where)
    if isinstance(q, HistogramQuery):
        return CellSpec("cells", n_cells(plan), _axis(schema, q), where=where)
    if isinstance(q, CrossTabQuery):           # each axis binned like a histogram of that column
        a, b = (_axis(schema, HistogramQuery(column=name)) for name in (q.column, q.by))
        return CellSpec("cells", n_cells(plan), Mixed(a, b, len(plan.extra["cols"])), where=where)
    if isinstance(q, (QuantileQuery, GroupedQuantileQuery)):
        x = _numeric(schema, q.column)
        cands = tuple(float(c) for c in np.asarray(schema.column(q.column).quantile_candidates, dtype=float))
        cell: Expr = Above(x, cands)
        if isinstance(q, GroupedQuantileQuery):
            cell = Mixed(_category(schema, q.by), cell, len(cands) + 1)
        return CellSpec("cells", n_cells(plan), cell, where=where, present=(x,))
    if isinstance(q, (MeanQuery, GroupedMeanQuery)):
        from privacy.stats.mean import mean_grid
        x = _numeric(schema, q.column)
        value = Rounded(x, *mean_grid(schema.column(q.column)))      # the mean's public grid
        if isinstance(q, GroupedMeanQuery):
            return CellSpec("grouped_sum_count", len(plan.labels), _category(schema, q.by), value=value,
                            where=where, present=(x,))
        return CellSpec("sum_count", 2, value=value, where=where, present=(x,))
    if isinstance(q, SurvivalQuery):
        e = schema.endpoint(q.endpoint, q.column)
        ev = schema.column(e.event)
        labels = list(ev.bucket_labels)
        edges = tuple(float(v) for v in (e.bin_edges or schema.column(e.time).bin_edges))
        t = _numeric(schema, e.time)
        cell_: Expr = SurvivalCell(t, _category(schema, e.event), tuple(labels.index(v) for v in e.events),
                                   tuple(labels.index(v) for v in e.censored), edges)
        if q.by:
            cell_ = Mixed(_category(schema, q.by), cell_, 2 * (len(edges) - 1) + 1)
        if e.where:
            wc = schema.column(e.where[0])
            where = where + ((_category(schema, e.where[0]), list(wc.bucket_labels).index(e.where[1])),)
        return CellSpec("cells", n_cells(plan), cell_, where=where, present=(t,),
                        kind_known=cell_ if isinstance(cell_, SurvivalCell) else cell_.b)
    raise EngineUnsupported(f"{type(q).__name__} is not yet pushed down to database engines")


# ------------------------------------------------------------- shared by the engines' compilers
def cell_parts(e, weight: int = 1) -> list[tuple[object, int]]:
    """A cell expression as (leaf, weight) parts: cell = sum of code(leaf) * weight."""
    if isinstance(e, Mixed):
        return cell_parts(e.a, weight * e.nb) + cell_parts(e.b, weight)
    return [(e, weight)]


def synthetic_cells(schema, q) -> CellSpec:
    """A synthetic cohort's cells: each chosen column binned like its histogram (the buckets
    `privacy.stats.synthetic` gives OpenDP's contingency table), one cell per combination of the
    columns' buckets, after the query's restriction. Only the engine's grouped rows are read
    (`cell_codes`: the non-empty combinations and their counts), never a dense vector."""
    from privacy.stats.counts import _hist_labels
    axes = [_axis(schema, HistogramQuery(column=c)) for c in q.columns]
    sizes = [len(_hist_labels(schema, HistogramQuery(column=c))) for c in q.columns]
    cell = axes[0]
    for e, nb in zip(axes[1:], sizes[1:]):
        cell = Mixed(cell, e, nb)
    return CellSpec("cells", int(np.prod(sizes, dtype=object)), cell, where=_where(schema, q))


def cell_codes(rows, spec: CellSpec) -> tuple[np.ndarray, np.ndarray]:
    """(codes, counts) of an engine's grouped rows (part_0, ..., [sum,] n): one row per non-empty
    cell, its public code in each part (a categorical part's text becomes its code here, as
    `data.prepare` encodes it: declared category i, K if missing, K+1 for any other value)."""
    parts = cell_parts(spec.cell)
    codes = np.zeros((len(rows), len(parts)), dtype=np.int64)
    for j, (e, _) in enumerate(parts):
        values = [row[j] for row in rows]
        if isinstance(e, Category):
            look, k = {c: i for i, c in enumerate(e.categories)}, len(e.categories)
            codes[:, j] = [k if v is None else look.get(v, k + 1) for v in values]
        else:
            codes[:, j] = [int(v) for v in values]
    return codes, np.array([int(row[-1]) for row in rows], dtype=np.int64)


def cell_vector(rows, spec: CellSpec):
    """Per-cell counts 0..n-1 from an engine's grouped rows (part_0, ..., [sum,] n) (absent cells
    are 0); or [sum, count]."""
    if spec.kind == "sum_count":
        (s, n), = rows
        return [int(s or 0), int(n)]
    if spec.cell is None:
        (n,), = rows
        return [int(n)]
    codes, counts = cell_codes(rows, spec)
    cell = codes @ np.array([w for _, w in cell_parts(spec.cell)], dtype=np.int64)
    out = np.zeros(spec.n, dtype=np.int64)
    np.add.at(out, cell, counts)                       # exact integers (no float weights)
    if spec.kind == "grouped_sum_count":
        sums = np.zeros(spec.n, dtype=np.int64)
        np.add.at(sums, cell, np.array([int(row[-2] or 0) for row in rows], dtype=np.int64))
        return [sums, out]
    return [out]
