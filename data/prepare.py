"""Turn a private table plus its public schema into encoded NumPy columns ready for OpenDP.

Privacy facts:
- Encoding uses only public metadata (schema categories, bounds, date range): categorical values
  become codes 0..K-1 for the declared categories, K for "missing", K+1 for "other"; numerics
  are clamped to the public bounds (missing -> public fill value, else NaN = left out of
  means and counted as "missing" in histograms); dates become day numbers clamped to the range.
- Rows per patient are truncated to the schema's `max_rows_per_unit` (first rows in file order),
  so one patient changes at most that many rows. How many rows were dropped or coerced is in the
  `PreparationReport`, for the data owner only.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.schema import (CategoricalColumn, DateColumn, IdColumn, NumericColumn, Schema,
                         SchemaError, _category_str)

EPOCH = np.datetime64("1970-01-01", "D")


class DataValidationError(ValueError):
    """The table cannot be prepared under its schema (missing column, empty table, ...)."""


@dataclass
class PreparationReport:
    """What preparation changed. Owner-only: counts derived from private data."""

    rows_in: int = 0
    rows_out: int = 0
    rows_truncated: int = 0
    units_truncated: int = 0
    coerced: dict[str, int] = field(default_factory=dict)      # values that failed to parse -> missing
    missing: dict[str, int] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)        # categorical values outside the list
    clamped: dict[str, int] = field(default_factory=dict)      # numeric / date values clamped to bounds

    def lines(self) -> list[str]:
        out = [f"{self.rows_in:,} rows read, {self.rows_out:,} kept"]
        if self.rows_truncated:
            out.append(f"{self.rows_truncated:,} rows dropped from {self.units_truncated:,} patients "
                       "above the per-patient row limit")
        for title, d in (("unparseable values set to missing", self.coerced),
                         ("missing values", self.missing),
                         ("values outside the declared categories (counted as 'other')", self.other),
                         ("values clamped to the public bounds", self.clamped)):
            nz = {k: v for k, v in d.items() if v}
            if nz:
                out.append(title + ": " + ", ".join(f"{k} {v:,}" for k, v in nz.items()))
        return out


@dataclass
class PreparedCohort:
    """Encoded private columns of one dataset. Never shown to analysts as such."""

    schema: Schema
    n_rows: int
    codes: dict[str, np.ndarray]        # categorical -> int32 codes
    numbers: dict[str, np.ndarray]      # numeric -> float64 clamped, NaN = missing
    days: dict[str, np.ndarray]         # date -> int64 days since 1970-01-01, -1 = missing... see mask
    day_missing: dict[str, np.ndarray]  # date -> bool mask of missing dates
    report: PreparationReport
    frame: pd.DataFrame | None = None   # validated private frame (owner views only)
    _cache: dict = field(default_factory=dict, repr=False)

    def mask(self, column: str, value: str) -> np.ndarray:
        """Rows where categorical `column` equals the public category `value`."""
        col = self.schema.column(column)
        if not isinstance(col, CategoricalColumn):
            raise SchemaError(f"restriction column '{column}' must be categorical")
        labels = col.bucket_labels
        if value not in labels:
            raise SchemaError(f"'{value}' is not a category of '{column}' (one of: {', '.join(labels)})")
        key = ("mask", column, value)
        if key not in self._cache:
            self._cache[key] = self.codes[column] == labels.index(value)
        return self._cache[key]


def _encode_categorical(s: pd.Series, col: CategoricalColumn, rep: PreparationReport) -> np.ndarray:
    k = len(col.categories)
    if isinstance(s.dtype, pd.CategoricalDtype):
        # Fast path (no per-row strings): translate the few dtype categories, then gather by code.
        lookup = {c: i for i, c in enumerate(col.categories)}
        table = np.array([lookup.get(_category_str(v), k + 1) for v in s.dtype.categories] + [k],
                         dtype=np.int32)                       # code -1 (missing) -> last entry
        codes = table[np.asarray(s.cat.codes)]
        rep.missing[col.name] = int((codes == k).sum())
        rep.other[col.name] = int((codes == k + 1).sum())
        return codes
    missing = s.isna().to_numpy()
    if s.dtype.kind == "f":
        as_str = s.map(lambda v: _category_str(v) if pd.notna(v) else None)
    else:
        as_str = s.astype("string")
    codes = pd.Index(list(col.categories), dtype="string").get_indexer(as_str).astype(np.int32)
    other = (codes < 0) & ~missing
    codes[missing] = k
    codes[other] = k + 1
    rep.missing[col.name] = int(missing.sum())
    rep.other[col.name] = int(other.sum())
    return codes


def _encode_numeric(s: pd.Series, col: NumericColumn, rep: PreparationReport) -> np.ndarray:
    raw_missing = s.isna()
    num = pd.to_numeric(s, errors="coerce")
    coerced = num.isna() & ~raw_missing
    x = num.to_numpy(dtype=np.float64, na_value=np.nan).copy()
    x[~np.isfinite(x) & ~np.isnan(x)] = np.nan  # +/-inf: treated as unparseable
    coerced_n = int(coerced.sum()) + int(np.isinf(num.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
    rep.coerced[col.name] = coerced_n
    miss = np.isnan(x)
    rep.missing[col.name] = int(miss.sum())
    rep.clamped[col.name] = int(((x < col.lower) | (x > col.upper)).sum())
    np.clip(x, col.lower, col.upper, out=x)
    if col.fill_value is not None:
        x[miss] = float(col.fill_value)
    return x


def _encode_date(s: pd.Series, col: DateColumn, rep: PreparationReport) -> tuple[np.ndarray, np.ndarray]:
    raw_missing = s.isna()
    if pd.api.types.is_datetime64_any_dtype(s):
        d = s
    else:
        d = pd.to_datetime(s, errors="coerce", format="mixed") if s.dtype == object or pd.api.types.is_string_dtype(s) \
            else pd.to_datetime(s, errors="coerce")
    coerced = d.isna() & ~raw_missing
    rep.coerced[col.name] = int(coerced.sum())
    days = d.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    miss = np.isnat(days)
    rep.missing[col.name] = int(miss.sum())
    lo = (np.datetime64(col.start, "D") - EPOCH).astype(np.int64)
    hi = (np.datetime64(col.end, "D") - EPOCH).astype(np.int64)
    n = np.where(miss, lo, (days - EPOCH).astype(np.int64))
    rep.clamped[col.name] = int(((n < lo) | (n > hi)).sum())
    np.clip(n, lo, hi, out=n)
    return n, miss


def prepare(frame: pd.DataFrame, schema: Schema, keep_frame: bool = True) -> PreparedCohort:
    """Validate `frame` against `schema` and encode it. Raises DataValidationError / SchemaError."""
    if frame is None or len(frame.columns) == 0:
        raise DataValidationError("the table has no columns")
    if len(frame) == 0:
        raise DataValidationError("the table has no rows")
    missing_cols = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing_cols:
        raise SchemaError("the schema names columns the table does not have: " + ", ".join(missing_cols))
    if len(frame) > schema.max_rows:
        raise DataValidationError(
            f"the table has more rows ({len(frame):,}) than the schema's public bound max_rows "
            f"({schema.max_rows:,}); the data owner must raise the bound")
    rep = PreparationReport(rows_in=len(frame))
    # Bound each patient's contribution: keep the first max_rows_per_unit rows per patient.
    unit = frame[schema.privacy_unit]
    if unit.isna().any():
        raise DataValidationError(
            f"{int(unit.isna().sum()):,} rows have no patient id in '{schema.privacy_unit}'")
    if schema.max_rows_per_unit >= 1:
        rank = frame.groupby(unit, sort=False).cumcount().to_numpy()
        keep = rank < schema.max_rows_per_unit
        if not keep.all():
            rep.rows_truncated = int((~keep).sum())
            rep.units_truncated = int(unit[~keep].nunique())
            frame = frame.loc[keep].reset_index(drop=True)
    rep.rows_out = len(frame)
    codes, numbers, days, day_missing = {}, {}, {}, {}
    for col in schema.columns:
        s = frame[col.name]
        if isinstance(col, CategoricalColumn):
            codes[col.name] = _encode_categorical(s, col, rep)
        elif isinstance(col, NumericColumn):
            numbers[col.name] = _encode_numeric(s, col, rep)
        elif isinstance(col, DateColumn):
            days[col.name], day_missing[col.name] = _encode_date(s, col, rep)
        elif isinstance(col, IdColumn):
            pass
    return PreparedCohort(schema=schema, n_rows=len(frame), codes=codes, numbers=numbers, days=days,
                          day_missing=day_missing, report=rep, frame=frame if keep_frame else None)


def date_to_day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - EPOCH).astype(np.int64))
