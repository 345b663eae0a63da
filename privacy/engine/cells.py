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
    from privacy.stats.counts import numeric_bins
    col = schema.column(q.column)
    if isinstance(col, CategoricalColumn):
        return _category(schema, q.column)
    if isinstance(col, NumericColumn):
        e, labels = numeric_bins(col, q.bin_edges)
        nb = len(e) - 1
        below = nb if e[0] > col.lower else None
        above = (nb + (below is not None)) if e[-1] < col.upper else None
        return Bins(_numeric(schema, q.column), tuple(float(v) for v in e), below, above, len(labels) - 1)
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
    if isinstance(q, CrossTabQuery):
        a, b = HistogramQuery(column=q.column), HistogramQuery(column=q.by)
        nb = len(plan.extra["cols"])
        return CellSpec("cells", n_cells(plan), Mixed(_axis(schema, a), _axis(schema, b), nb), where=where)
    if isinstance(q, (QuantileQuery, GroupedQuantileQuery)):
        x = _numeric(schema, q.column)
        cands = tuple(float(c) for c in np.asarray(schema.column(q.column).quantile_candidates, dtype=float))
        cell: Expr = Above(x, cands)
        if isinstance(q, GroupedQuantileQuery):
            cell = Mixed(_category(schema, q.by), cell, len(cands) + 1)
        return CellSpec("cells", n_cells(plan), cell, where=where, present=(x,))
    if isinstance(q, GroupedMeanQuery):
        x = _numeric(schema, q.column)
        from privacy.stats.mean import SUM_RESOLUTION_STEPS
        mid, half = (x.lower + x.upper) / 2, (x.upper - x.lower) / 2
        return CellSpec("grouped_sum_count", len(plan.labels), _category(schema, q.by),
                        value=Rounded(x, mid, SUM_RESOLUTION_STEPS / half), where=where, present=(x,))
    if isinstance(q, MeanQuery):
        x = _numeric(schema, q.column)
        from privacy.stats.mean import SUM_RESOLUTION_STEPS
        mid, half = (x.lower + x.upper) / 2, (x.upper - x.lower) / 2
        return CellSpec("sum_count", 2, value=Rounded(x, mid, SUM_RESOLUTION_STEPS / half), where=where, present=(x,))
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
