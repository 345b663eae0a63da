"""Open a cohort whose rows live outside memory: Parquet files (DuckDB, embedded), a DuckDB
database file, a PostgreSQL table, a Spark table or path. The schema's [storage] table names where (`data.sources`).

Privacy facts: for a release only public-cell aggregates leave the engine (`privacy.engine.sql`); credentials
come from a secret named in the schema (`url_secret`), never from the schema file; an engine
cohort holds no rows in memory. Owner-only views that need rows (the anonymity report) read just
their columns of the bounded rows (`EngineCohort.owner_frame`), never for analysts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from data.schema import Schema
from data.sources import DataSource, data_source
from privacy.engine import SourceError


@dataclass
class EngineCohort:
    """A cohort = public schema + the engine that aggregates its rows (used like PreparedCohort
    by `privacy.release`)."""

    schema: Schema
    engine: object
    source: DataSource
    n_rows: None = None

    def owner_frame(self, columns, limit: int | None = None):
        """TRUE data, for the data owner's views only (the anonymity report): the patient id and
        `columns` of the rows kept by the per-patient bound, read out of the engine (at most
        `limit` rows, default DP_OWNER_ROWS_LIMIT or 10^7; else OwnerRowsTooMany). Spends nothing."""
        limit = int(os.environ.get("DP_OWNER_ROWS_LIMIT", OWNER_ROWS_LIMIT)) if limit is None else int(limit)
        unit = self.schema.privacy_unit
        return self.engine.owner_rows([unit] + [c for c in columns if c != unit], limit)


OWNER_ROWS_LIMIT = 10**7       # rows an owner-only view reads out of an engine into the app (a few GB at most)


def _duckdb_config(src: DataSource) -> dict:
    return {"config": {"memory_limit": src.memory_limit or "3GB", "threads": int(src.threads or os.cpu_count() or 2),
                       "preserve_insertion_order": False}}


def file_snapshot(pattern: str):
    """() -> (name, size, mtime_ns) of every file matching `pattern` (a path, directory or glob)."""
    import glob

    def snap():
        paths = sorted(glob.glob(os.path.join(pattern, "**", "*.parquet"), recursive=True)) if os.path.isdir(pattern) \
            else sorted(glob.glob(pattern, recursive=True))
        out = []
        for p in paths:
            st = os.stat(p)
            out.append((p, st.st_size, st.st_mtime_ns))
        return tuple(out)
    return snap


def open_cohort(schema: Schema, secrets: Mapping[str, str] | None = None, check: bool = True) -> EngineCohort:
    """The schema's cohort in its engine. Raises SourceError (public message) if it cannot be reached."""
    import sqlalchemy as sa
    from privacy.engine.sql import SqlEngine
    src = data_source(schema)
    names = [c.name for c in schema.columns]
    unit, k = schema.privacy_unit, schema.max_rows_per_unit
    if src.kind == "parquet":
        path = os.path.join(src.path, "**", "*.parquet") if os.path.isdir(src.path) else src.path
        table = sa.func.read_parquet(sa.bindparam("parquet_path", path)).table_valued(*names).alias("cohort")
        from privacy.engine.file_bound import most_rows_per_unit
        engine = SqlEngine("duckdb:///:memory:", table, unit, k, "duckdb", "Parquet files",
                           connect_args=_duckdb_config(src), snapshot=file_snapshot(src.path),
                           most_rows=most_rows_per_unit)
    elif src.kind == "duckdb":
        table = sa.table(src.table, *[sa.column(n) for n in names], schema=src.namespace or None)
        engine = SqlEngine(f"duckdb:///{src.path}", table, unit, k, "duckdb", "DuckDB database",
                           connect_args=dict(_duckdb_config(src), read_only=True), snapshot=file_snapshot(src.path))
    elif src.kind == "postgresql":
        secrets = os.environ if secrets is None else secrets
        url = secrets.get(src.url_secret, "")
        if not url:
            raise SourceError("the cohort's database is not configured; nothing was spent",
                              owner_detail=f"set the secret {src.url_secret!r} to the database URL")
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        table = sa.table(src.table, *[sa.column(n) for n in names], schema=src.namespace or None)
        engine = SqlEngine(url, table, unit, k, "postgresql", "database", connect_args={"connect_timeout": 5})
    elif src.kind == "spark":
        from privacy.engine.spark import SparkEngine
        engine = SparkEngine(table=src.table, path=src.path, unit=unit, k=k)
    else:
        raise SourceError(f"the cohort's storage kind {src.kind!r} has no engine here; nothing was spent")
    if check:
        engine.check()
    return EngineCohort(schema, engine, src)
