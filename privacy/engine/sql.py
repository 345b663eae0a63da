"""Push-down of public cell maps to SQL (DuckDB over Parquet, PostgreSQL) via SQLAlchemy Core.

Privacy facts:
- The statement is generated from the public schema only (`privacy.engine.cells`): table and
  column names are quoted identifiers, every category, edge, bound and candidate is a bound
  parameter. Nothing an analyst types reaches the SQL text.
- The per-patient bound is applied in the database before anything is aggregated: a window
  `row_number() OVER (PARTITION BY <patient id>)` keeps at most `max_rows_per_unit` rows per
  patient (rows without an id share one partition, so they count as one patient). The query
  then returns only per-cell counts, or one integer sum and count: no row leaves the database.
- A live database (PostgreSQL) keeps the window unless its catalog guarantees one row per patient
  (the patient id column is NOT NULL with a unique one-column index, e.g. a primary key).
- For immutable files (Parquet, a DuckDB file) the engine may instead verify once per snapshot
  (file names, sizes, modification times) that no patient has more than `max_rows_per_unit` rows;
  while that holds the window is a no-op and is skipped (same aggregates, 10-20x faster). The
  snapshot is read again after each query and a changed one is re-aggregated with the window.
  Parquet files that hold disjoint ranges of patient ids are checked file by file
  (`privacy.engine.file_bound`); others by one `GROUP BY` in the engine.
- Noise is added afterwards by OpenDP (`privacy.engine.noise`); the database never sees it.
"""
from __future__ import annotations

import sqlalchemy as sa

from privacy.engine.cells import (Above, Bins, Category, CellSpec, DateBins, Numeric, Rounded, SurvivalCell,
                                 cell_parts, cell_vector)


def _num(t, e: Numeric):
    x = sa.cast(t.c[e.column], sa.Float)
    x = sa.func.least(sa.func.greatest(x, sa.literal(e.lower, sa.Float)), sa.literal(e.upper, sa.Float))
    return x if e.fill is None else sa.func.coalesce(x, sa.literal(e.fill, sa.Float))


def _ladder(x, thresholds, strict: bool, offset: int = 0):
    """#{j : thresholds[j] < x} (strict) or #{j : thresholds[j] <= x}, as a balanced CASE tree
    (log2(k) comparisons per row); thresholds are sorted public values."""
    k = len(thresholds)
    if k == 0:
        return sa.literal(offset, sa.Integer)
    mid = k // 2
    t = sa.literal(float(thresholds[mid]), sa.Float)
    test = x > t if strict else x >= t
    return sa.case((test, _ladder(x, thresholds[mid + 1:], strict, offset + mid + 1)),
                   else_=_ladder(x, thresholds[:mid], strict, offset))


def _date_ladder(d, starts, offset: int = 0):
    k = len(starts)
    if k == 0:
        return sa.literal(offset, sa.Integer)
    mid = k // 2
    return sa.case((d >= sa.literal(starts[mid], sa.Date), _date_ladder(d, starts[mid + 1:], offset + mid + 1)),
                   else_=_date_ladder(d, starts[:mid], offset))


def compile_expr(t, e, dialect: str):
    """SQLAlchemy expression of one public cell map over table/subquery `t` (a categorical part is
    grouped by its own text and `Mixed` is split into parts: see `aggregate_statement`)."""
    if isinstance(e, Bins):
        x = _num(t, e.x)
        nb = len(e.edges) - 1
        whens = [(x.is_(None), e.missing)]
        if e.below is not None:
            whens.append((x < sa.literal(e.edges[0], sa.Float), e.below))
        if e.above is not None:
            whens.append((x > sa.literal(e.edges[-1], sa.Float), e.above))
        # searchsorted(edges, x, right) - 1, the last bin closed: #{edges[1..nb-1] <= x}
        return sa.case(*whens, else_=_ladder(x, e.edges[1:nb], strict=False))
    if isinstance(e, DateBins):
        d = sa.cast(t.c[e.column], sa.Date)
        return sa.case((d.is_(None), e.missing), else_=_date_ladder(d, e.starts[1:]))
    if isinstance(e, Above):
        return _ladder(_num(t, e.x), e.candidates, strict=True)
    if isinstance(e, SurvivalCell):
        x, nb, end = _num(t, e.t), len(e.edges) - 1, sa.literal(e.edges[-1], sa.Float)
        kind = sa.case((survival_kind_known(t, e, events_only=True), 0), else_=1)
        return sa.case((x > end, 2 * nb), (sa.and_(x >= end, kind == 1), 2 * nb),
                       else_=_ladder(x, e.edges[1:nb], strict=False) * sa.literal(2, sa.Integer) + kind)
    if isinstance(e, Rounded):
        v = (_num(t, e.x) - sa.literal(e.mid, sa.Float)) * sa.literal(e.factor, sa.Float)
        rounded = {"duckdb": sa.func.round_even(v, 0), "postgresql": sa.func.round(v)}[dialect]   # half to even
        return sa.cast(rounded, sa.BigInteger)
    raise TypeError(f"unknown cell expression {type(e).__name__}")


def bounded(table: sa.FromClause, unit: str, k: int) -> sa.Subquery:
    """The table with at most `k` rows per patient (`unit`), as a subquery."""
    rn = sa.func.row_number().over(partition_by=table.c[unit]).label("_dp_row_in_unit")
    return sa.select(table, rn).subquery("bounded")


def survival_kind_known(t, e: SurvivalCell, events_only: bool = False):
    """Rows whose event category is an event (or, unless `events_only`, censored)."""
    codes = e.events if events_only else e.events + e.censored
    return sa.or_(*[_category_is(t, e.event, c) for c in codes])


def _category_is(t, e: Category, code: int):
    """Rows whose category code is `code` (declared category, K = missing, K+1 = any other)."""
    text, k = sa.cast(t.c[e.column], sa.String), len(e.categories)
    if code < k:
        return text == sa.literal(e.categories[code], sa.String)
    if code == k:
        return t.c[e.column].is_(None)
    return sa.and_(t.c[e.column].is_not(None), text.not_in([sa.literal(c, sa.String) for c in e.categories]))


def aggregate_statement(spec: CellSpec, table: sa.FromClause, unit: str, k: int, dialect: str,
                        window: bool = True) -> sa.Select:
    """One SELECT after the per-patient bound (`window=False` only where the table is verified to
    hold at most k rows per patient): (part_0, ..., n) rows grouped by the cell's parts, a
    categorical part as its text (mapped to the public codes by `cell_vector`, so the database groups
    by its own values instead of evaluating a CASE per row); or one (sum, n) row."""
    b = bounded(table, unit, k) if window else table
    conds = [b.c["_dp_row_in_unit"] <= sa.literal(int(k), sa.Integer)] if window else []
    conds += [_category_is(b, w, code) for w, code in spec.where]
    conds += [_num(b, x).is_not(None) for x in spec.present]
    if spec.kind_known is not None:
        conds.append(survival_kind_known(b, spec.kind_known))
    if spec.kind == "sum_count":
        v = compile_expr(b, spec.value, dialect)
        return sa.select(sa.func.coalesce(sa.func.sum(v), 0).label("s"), sa.func.count().label("n")
                         ).select_from(b).where(*conds)
    if spec.cell is None:
        return sa.select(sa.func.count().label("n")).select_from(b).where(*conds)
    extra = []
    if spec.kind == "grouped_sum_count":
        extra = [compile_expr(b, spec.value, dialect).label("v")]
    cols = [(sa.cast(b.c[e.column], sa.String) if isinstance(e, Category) else compile_expr(b, e, dialect)
             ).label(f"p{i}") for i, (e, _) in enumerate(cell_parts(spec.cell))]
    cells = sa.select(*cols, *extra).select_from(b).where(*conds).subquery("cells")
    keys = [cells.c[f"p{i}"] for i in range(len(cols))]
    sums = [sa.func.coalesce(sa.func.sum(cells.c.v), 0).label("s")] if extra else []
    return sa.select(*keys, *sums, sa.func.count().label("n")).group_by(*keys)


class SqlEngine:
    """Aggregates of one cohort table in a SQL database (PostgreSQL) or in DuckDB over Parquet.

    `table` is a SQLAlchemy FROM clause with the schema's columns; `url` a SQLAlchemy URL (from
    a secret for a server, never from the schema file). Connection and statement errors become
    `SourceError` before anything is charged."""

    def __init__(self, url: str, table: sa.FromClause, unit: str, k: int, dialect: str, what: str,
                 connect_args: dict | None = None, snapshot=None, most_rows=None):
        self.url_engine = sa.create_engine(url, connect_args=connect_args or {}, pool_pre_ping=True)
        self.table, self.unit, self.k, self.dialect, self.what = table, unit, int(k), dialect, what
        self.snapshot = snapshot       # () -> hashable identity of immutable files, or None (always window)
        self._within_bound: dict = {}  # snapshot -> every patient has <= k rows (checked in the engine)
        self.most_rows = most_rows     # (snapshot, unit) -> most rows per patient, or None: ask the engine
        self.last_seconds = 0.0        # engine time of the last aggregate (benchmarks split it out)

    def _error(self, e):
        from privacy.engine import SourceError
        return SourceError(f"the cohort's {self.what} could not be read; nothing was spent",
                           owner_detail=f"{type(e).__name__}: {str(getattr(e, 'orig', None) or e)[:500]}")

    def _run(self, stmt_or_read):
        """Rows of one statement, or what `read(connection)` returns (one consistent read)."""
        import time
        t = time.perf_counter()
        try:
            with self.url_engine.connect() as c:
                rows = stmt_or_read(c) if callable(stmt_or_read) else c.execute(stmt_or_read).fetchall()
        except sa.exc.SQLAlchemyError as e:
            raise self._error(e) from e
        self.last_seconds = time.perf_counter() - t
        return rows

    def check(self) -> None:
        """Reach the source and read no row (`LIMIT 0`): a missing table or column fails here."""
        self._run(sa.select(self.table).limit(0))

    def _most_rows_per_unit(self):
        per_unit = sa.select(sa.func.count().label("c")).select_from(self.table).group_by(
            self.table.c[self.unit]).subquery("per_unit")
        return sa.select(sa.func.coalesce(sa.func.max(per_unit.c.c), 0))

    def _unique_unit(self, c) -> bool:
        """PostgreSQL: is the patient id column NOT NULL with a unique one-column index (catalog only)?"""
        if self.dialect != "postgresql" or self.k < 1:
            return False
        q = sa.text("SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(quote_ident(:ns) || '.' || "
                    "quote_ident(:tbl)) AND i.indisunique AND i.indnatts = 1 AND a.attnotnull AND a.attname = :unit")
        (n,), = c.execute(q, {"ns": self.table.schema or "public", "tbl": self.table.name, "unit": self.unit}).fetchall()
        return int(n) > 0

    def _bound_holds(self) -> tuple[object, bool]:
        """(snapshot, whether no patient has more than k rows in it); (None, False) without one."""
        snap = self.snapshot() if self.snapshot else None
        if snap is not None and snap not in self._within_bound:
            most = self.most_rows(snap, self.unit) if self.most_rows else None
            if most is None:
                (most,), = self._run(self._most_rows_per_unit())
            self._within_bound[snap] = int(most) <= self.k
        return snap, bool(snap is not None and self._within_bound[snap])

    def aggregates(self, plan, form) -> list:
        from privacy.engine.cells import cell_spec
        spec = cell_spec(plan)
        return cell_vector(self.grouped_rows(spec), spec)

    def grouped_rows(self, spec: CellSpec) -> list:
        """The rows of `spec`'s one SELECT after the per-patient bound (`aggregate_statement`)."""
        def stmt(window: bool):
            return aggregate_statement(spec, self.table, self.unit, self.k, self.dialect, window=window)

        if self.snapshot is None:
            # A live database: one REPEATABLE READ, read-only transaction; the window is left out only
            # where the catalog guarantees one row per patient (a unique, NOT NULL patient id) and k >= 1.
            def read(c):
                c = c.execution_options(isolation_level="REPEATABLE READ")
                with c.begin():
                    if self.dialect == "postgresql":
                        c.exec_driver_sql("SET TRANSACTION READ ONLY")
                    return c.execute(stmt(window=not self._unique_unit(c))).fetchall()
            return self._run(read)
        return self._read_bounded(stmt)

    def _read_bounded(self, stmt) -> list:
        """Rows of `stmt(window)`: without the per-patient window while this snapshot of the files is
        verified within the bound, read again with it if the files changed under the read."""
        snap, holds = self._bound_holds()
        rows = self._run(stmt(window=not holds))
        if holds and self.snapshot() != snap:      # the files changed under the query: bound them in SQL
            rows = self._run(stmt(window=True))
        return rows

    def owner_rows(self, columns, limit: int):
        """TRUE rows, for the data owner's views only (the anonymity report): `columns` of the rows
        kept by the per-patient bound, as a DataFrame; OwnerRowsTooMany past `limit` rows."""
        import pandas as pd

        from privacy.engine import check_owner_rows
        def stmt(window: bool):
            b = bounded(self.table, self.unit, self.k) if window else self.table
            conds = [b.c["_dp_row_in_unit"] <= sa.literal(self.k, sa.Integer)] if window else []
            return sa.select(*[b.c[c] for c in columns]).select_from(b).where(*conds).limit(int(limit) + 1)

        rows = self._read_bounded(stmt)
        check_owner_rows(len(rows), limit)
        return pd.DataFrame.from_records(rows, columns=list(columns))

    def statement_sql(self, plan) -> str:
        """The SQL text sent for `plan`, parameters left as placeholders (for review and tests)."""
        from privacy.engine.cells import cell_spec
        stmt = aggregate_statement(cell_spec(plan), self.table, self.unit, self.k, self.dialect,
                                   window=not self._bound_holds()[1])
        return str(stmt.compile(self.url_engine))
