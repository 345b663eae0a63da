"""Where a cohort's rows live: the schema's public [storage] table, validated.

    [storage]
    kind = "parquet"              # parquet (a file, a directory or a glob), duckdb, postgresql, spark
    path = "/data/exams/*.parquet"
    # kind = "postgresql"; table = "exams"; namespace = "radiology"; url_secret = "DP_EXAMS_DB_URL"
    # kind = "spark"; table = "lakehouse.exams" (or path = "s3a://..." read by the Spark cluster)

The schema is public: it never holds a password or a connection URL. A server's URL is read from
the secret named by `url_secret` (an environment variable, or Streamlit's secrets in the app).
"""
from __future__ import annotations

from dataclasses import dataclass

from data.schema import Schema, SchemaError

KINDS = ("memory", "parquet", "duckdb", "postgresql", "spark")
KIND_NAMES = {"memory": "memory", "parquet": "Parquet files", "duckdb": "a DuckDB database",
              "postgresql": "PostgreSQL", "spark": "Spark"}     # as a sentence names them
_KEYS = {"kind", "path", "table", "namespace", "url_secret", "memory_limit", "threads"}


@dataclass(frozen=True)
class DataSource:
    kind: str = "memory"
    path: str = ""
    table: str = ""
    namespace: str = ""
    url_secret: str = ""
    memory_limit: str = ""
    threads: str = ""

    @property
    def kind_name(self) -> str:
        """The storage kind as a sentence names it ("Parquet files", "PostgreSQL")."""
        return KIND_NAMES.get(self.kind, self.kind)


def data_source(schema: Schema) -> DataSource:
    """The schema's storage, checked: a known kind, what that kind needs, no inline credentials."""
    d = dict(schema.storage)
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        hint = " (put the URL in a secret and name it with url_secret)" if {"url", "password", "dsn"} & set(unknown) else ""
        raise SchemaError(f"[storage]: unknown key(s) {', '.join(unknown)}{hint}")
    src = DataSource(**d) if d else DataSource()
    if src.kind not in KINDS:
        raise SchemaError(f"[storage]: kind must be one of {', '.join(KINDS)}, got {src.kind!r}")
    need = {"parquet": ("path",), "duckdb": ("path", "table"), "postgresql": ("table", "url_secret")}.get(src.kind, ())
    if src.kind == "spark" and not (src.table or src.path):
        raise SchemaError("[storage]: kind 'spark' needs a catalog table or a Parquet path")
    missing = [k for k in need if not getattr(src, k)]
    if missing:
        raise SchemaError(f"[storage]: kind {src.kind!r} needs {', '.join(missing)}")
    if ("://" in src.path and src.kind != "spark") or "@" in src.url_secret:
        raise SchemaError("[storage]: a URL or credential does not belong in the schema; name a secret with url_secret")
    return src
