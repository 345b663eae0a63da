"""Push-down of public cell maps to Spark (PySpark DataFrame API; local mode in tests, a cluster in use).

Privacy facts (as `privacy.engine.sql`):
- Expressions are built from the public schema only, as Spark Columns (`F.lit` values, escaped
  column identifiers): no SQL text is assembled from anything an analyst types.
- The per-patient bound runs in Spark before any aggregate: `row_number()` over a window
  partitioned by the patient id keeps at most `max_rows_per_unit` rows per patient, on every
  query (a Spark table has no snapshot the engine could verify once).
- Only per-cell counts (and integer sums) are collected; OpenDP adds the noise in this process.

For a cluster, point Spark at it the usual way (`spark.master` / `SPARK_REMOTE` in the environment
or `DP_SPARK_MASTER`); the catalog table or path is the schema's `[storage]`.
"""
from __future__ import annotations

import os
import time

from privacy.engine.cells import (Above, Bins, Category, CellSpec, DateBins, Numeric, Rounded, SurvivalCell,
                                 cell_parts, cell_vector)


def _col(name: str):
    from pyspark.sql import functions as F
    return F.col("`" + name.replace("`", "``") + "`")


def _num(e: Numeric):
    from pyspark.sql import functions as F
    x = F.least(F.greatest(_col(e.column).cast("double"), F.lit(e.lower)), F.lit(e.upper))
    return x if e.fill is None else F.coalesce(x, F.lit(e.fill))


def _ladder(x, thresholds, strict: bool, offset: int = 0):
    from pyspark.sql import functions as F
    k = len(thresholds)
    if k == 0:
        return F.lit(offset)
    mid = k // 2
    test = x > F.lit(float(thresholds[mid])) if strict else x >= F.lit(float(thresholds[mid]))
    return F.when(test, _ladder(x, thresholds[mid + 1:], strict, offset + mid + 1)).otherwise(
        _ladder(x, thresholds[:mid], strict, offset))


def _date_ladder(d, starts, offset: int = 0):
    from pyspark.sql import functions as F
    k = len(starts)
    if k == 0:
        return F.lit(offset)
    mid = k // 2
    return F.when(d >= F.lit(starts[mid]), _date_ladder(d, starts[mid + 1:], offset + mid + 1)).otherwise(
        _date_ladder(d, starts[:mid], offset))


def compile_expr(e):
    """Spark Column of one public cell map (the same codes as `privacy.engine.sql.compile_expr`;
    categorical parts are grouped by their text and `Mixed` split into parts, as there)."""
    from pyspark.sql import functions as F
    if isinstance(e, Bins):
        x = _num(e.x)
        nb = len(e.edges) - 1
        out = F.when(x.isNull(), F.lit(e.missing))
        if e.below is not None:
            out = out.when(x < F.lit(e.edges[0]), F.lit(e.below))
        if e.above is not None:
            out = out.when(x > F.lit(e.edges[-1]), F.lit(e.above))
        return out.otherwise(_ladder(x, e.edges[1:nb], strict=False))
    if isinstance(e, DateBins):
        d = _col(e.column).cast("date")
        return F.when(d.isNull(), F.lit(e.missing)).otherwise(_date_ladder(d, e.starts[1:]))
    if isinstance(e, Above):
        return _ladder(_num(e.x), e.candidates, strict=True)
    if isinstance(e, SurvivalCell):
        x, nb, end = _num(e.t), len(e.edges) - 1, F.lit(e.edges[-1])
        kind = F.when(_kind_known(e, events_only=True), F.lit(0)).otherwise(F.lit(1))
        return (F.when(x > end, F.lit(2 * nb)).when((x >= end) & (kind == 1), F.lit(2 * nb))
                .otherwise(_ladder(x, e.edges[1:nb], strict=False) * F.lit(2) + kind))
    if isinstance(e, Rounded):
        v = (_num(e.x) - F.lit(e.mid)) * F.lit(e.factor)
        return F.bround(v, 0).cast("long")                     # half to even, as numpy.rint
    raise TypeError(f"unknown cell expression {type(e).__name__}")


def _kind_known(e: SurvivalCell, events_only: bool = False):
    from functools import reduce
    codes = e.events if events_only else e.events + e.censored
    return reduce(lambda a, b: a | b, [_category_is(e.event, c) for c in codes])


def _category_is(e: Category, code: int):
    from pyspark.sql import functions as F
    text, k = _col(e.column).cast("string"), len(e.categories)
    if code < k:
        return text == F.lit(e.categories[code])
    if code == k:
        return _col(e.column).isNull()
    return _col(e.column).isNotNull() & ~text.isin([F.lit(c) for c in e.categories])


def _bounded(df, unit: str, k: int):
    """`df` with at most `k` rows per patient (`unit`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    w = Window.partitionBy(_col(unit)).orderBy(_col(unit))
    return df.withColumn("_dp_row_in_unit", F.row_number().over(w)).where(F.col("_dp_row_in_unit") <= F.lit(int(k)))


def aggregate_rows(df, spec: CellSpec, unit: str, k: int) -> list[tuple]:
    """Rows in `privacy.engine.cells.cell_vector`'s format, computed by Spark after the per-patient bound."""
    from pyspark.sql import functions as F
    b = _bounded(df, unit, k)
    for e, code in spec.where:
        b = b.where(_category_is(e, code))
    for x in spec.present:
        b = b.where(_num(x).isNotNull())
    if spec.kind_known is not None:
        b = b.where(_kind_known(spec.kind_known))
    if spec.kind == "sum_count":
        r = b.agg(F.coalesce(F.sum(compile_expr(spec.value)), F.lit(0)).alias("s"), F.count(F.lit(1)).alias("n")).collect()
        return [(r[0]["s"], r[0]["n"])]
    if spec.cell is None:
        return [(b.count(),)]
    parts = [(_col(e.column).cast("string") if isinstance(e, Category) else compile_expr(e)).alias(f"p{i}")
             for i, (e, _) in enumerate(cell_parts(spec.cell))]
    extra = [compile_expr(spec.value).alias("v")] if spec.kind == "grouped_sum_count" else []
    cells = b.select(*parts, *extra)
    keys = [f"p{i}" for i in range(len(parts))]
    aggs = ([F.coalesce(F.sum("v"), F.lit(0)).alias("s")] if extra else []) + [F.count(F.lit(1)).alias("n")]
    return [tuple(r) for r in cells.groupBy(*keys).agg(*aggs).collect()]


class SparkEngine:
    """Aggregates of one cohort table in Spark (a catalog table or a Parquet path)."""

    def __init__(self, table: str = "", path: str = "", unit: str = "", k: int = 1, session=None):
        self.table, self.path, self.unit, self.k = table, path, unit, int(k)
        self._session = session
        self.last_seconds = 0.0

    def session(self):
        if self._session is None:
            from pyspark.sql import SparkSession
            b = SparkSession.builder.appName("dp-cohort-dashboard")
            if not os.environ.get("SPARK_REMOTE"):
                b = (b.master(os.environ.get("DP_SPARK_MASTER", "local[2]")).config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false"))
            self._session = b.getOrCreate()
        return self._session

    def _frame(self):
        s = self.session()
        return s.read.table(self.table) if self.table else s.read.parquet(self.path)

    def _error(self, e):
        from privacy.engine import SourceError
        return SourceError("the cohort's Spark table could not be read; nothing was spent",
                           owner_detail=f"{type(e).__name__}: {str(e)[:500]}")

    def check(self) -> None:
        """Resolve the table and the schema's columns without reading a row."""
        try:
            df = self._frame()
            missing = [c for c in [self.unit] if c not in df.columns]
            if missing:
                raise KeyError(f"no column {missing[0]!r}")
        except Exception as e:           # AnalysisException, missing path, a Java error
            raise self._error(e) from e

    def owner_rows(self, columns, limit: int):
        """TRUE rows, for the data owner's views only (as `privacy.engine.sql.SqlEngine.owner_rows`)."""
        import pandas as pd

        from privacy.engine import check_owner_rows
        try:
            rows = _bounded(self._frame(), self.unit, self.k).select(*[_col(c) for c in columns]) \
                .limit(int(limit) + 1).collect()
        except Exception as e:
            raise self._error(e) from e
        check_owner_rows(len(rows), limit)
        return pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(columns))

    def aggregates(self, plan, form) -> list:
        from privacy.engine.cells import cell_spec
        spec = cell_spec(plan)
        return cell_vector(self.grouped_rows(spec), spec)

    def grouped_rows(self, spec: CellSpec) -> list:
        """`aggregate_rows` of the table, after the per-patient bound."""
        t = time.perf_counter()
        try:
            rows = aggregate_rows(self._frame(), spec, self.unit, self.k)
        except Exception as e:
            raise self._error(e) from e
        self.last_seconds = time.perf_counter() - t
        return rows
