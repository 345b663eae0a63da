"""Turn a private table plus its public schema into encoded NumPy columns ready for OpenDP.

Privacy facts:
- Encoding uses only public metadata (schema categories, bounds, date range): categorical values
  become codes 0..K-1 for the declared categories, K for "missing", K+1 for "other"; numerics
  are clamped to the public bounds (missing -> public fill value, else NaN = left out of
  means and counted as "missing" in histograms); dates become day numbers clamped to the range.
- Patient ids are normalised first (`normalise_unit_ids`: text with surrounding whitespace
  removed, integral floats written as integers, empty text = missing), so `17`, `17.0`, `"17"` and
  `" 17 "` are one patient. Then rows per patient are truncated to the schema's
  `max_rows_per_unit` (first rows in file order), so one patient changes at most that many rows.
  How many rows were dropped or coerced is in the `PreparationReport`, for the data owner only.
- A table that cannot be prepared (more rows than `max_rows`, rows without a patient id, no rows)
  raises `DataValidationError`: `str(e)` is the same public sentence whatever went wrong, the
  exact reason with its counts is `e.owner_detail`, for the data owner only.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.schema import (CategoricalColumn, DateColumn, IdColumn, NumericColumn, Schema,
                         SchemaError, _category_str)

EPOCH = np.datetime64("1970-01-01", "D")


class DataValidationError(ValueError):
    """The table cannot be prepared under its schema (empty table, too many rows, missing ids, ...).

    Two texts, because the reason is itself a private fact:
    - `str(e)` (also `e.public`) depends on no private fact. `prepare` uses one sentence for every
      data-dependent failure (`unavailable_message`), so it may be shown to analysts and printed by
      the CLI.
    - `e.owner_detail` is the exact reason (row counts, ids, bounds) for the data owner only.
      It defaults to the public text when the reason is public anyway.

    Subclass `data.loaders.LoadError` (a file that cannot be read) is the exception: its message
    describes the file to whoever supplied it (the owner's upload, a CLI `--data FILE` user, who
    holds the file anyway), and `owner_detail` is the same text. Views shown to analysts must not
    display any data error's text beyond the cohort being unavailable.
    """

    def __init__(self, public: str, owner_detail: str | None = None):
        super().__init__(public)
        self.public = public
        self.owner_detail = public if owner_detail is None else owner_detail


def unavailable_message(dataset: str) -> str:
    """The public text of every data-dependent preparation failure (names only the public dataset id)."""
    return (f"cohort '{dataset}' is unavailable: its table does not meet the data owner's schema; "
            "ask the data owner")


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


SMALL_INT_RANGE = 4096
PARALLEL_FROM_ROWS = 200_000     # columns are encoded on threads from here (NumPy releases the GIL)


def _small_int_codes(s: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """(index, the text of each index's value) for a NumPy integer column spanning few values (a
    grade, a score): the same labels as factorising and writing each distinct value, without
    hashing. Values 0..SMALL_INT_RANGE-1 are their own index (no new array: fresh memory is what
    costs most at 10^7 rows); other small ranges are offsets from the minimum."""
    if not (isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu") or len(s) == 0:
        return None
    x = s.to_numpy()
    lo, hi = int(x.min()), int(x.max())
    if hi - lo >= SMALL_INT_RANGE:
        return None
    if 0 <= lo and hi < SMALL_INT_RANGE:
        return x, [str(v) for v in range(hi + 1)]
    raw = x - np.uint64(lo) if x.dtype == np.uint64 else np.subtract(x, lo, dtype=np.int64)
    return raw, [str(v) for v in range(lo, hi + 1)]


def _encode_categorical(s: pd.Series, col: CategoricalColumn, rep: PreparationReport) -> np.ndarray:
    """Codes of the declared categories. The distinct values are labelled once (as text, the way
    they were always compared) and every row is a gather by code: no Python per row."""
    k = len(col.categories)
    lookup = {c: i for i, c in enumerate(col.categories)}
    if isinstance(s.dtype, pd.CategoricalDtype):
        # No per-row strings: translate the few dtype categories, then gather by code.
        labels = [_category_str(v) for v in s.dtype.categories]
        raw = np.asarray(s.cat.codes)
    elif s.dtype == object:
        # Mixed Python values (e.g. an Excel column): each row's own text, since 1, 1.0 and True
        # are equal as values but not as text.
        missing = s.isna().to_numpy()
        codes = pd.Index(list(col.categories), dtype="string").get_indexer(s.astype("string")).astype(np.int32)
        other = (codes < 0) & ~missing
        codes[missing] = k
        codes[other] = k + 1
        rep.missing[col.name] = int(missing.sum())
        rep.other[col.name] = int(other.sum())
        return codes
    elif (small := _small_int_codes(s)) is not None:
        raw, labels = small                      # e.g. a grade 1..5: offsets, no hashing
    else:
        raw, uniques = pd.factorize(s, use_na_sentinel=True)      # missing -> -1
        if s.dtype.kind == "f":
            labels = [_category_str(v) for v in np.asarray(uniques, dtype=np.float64)]
        else:                                    # as `s.astype("string")` writes each value
            labels = list(pd.Series(uniques).astype("string").to_numpy(dtype=object, na_value=None))
    table = np.array([lookup.get(v, k + 1) for v in labels] + [k], dtype=np.int32)   # -1 -> last entry
    codes = table[raw]
    rep.missing[col.name] = int(np.count_nonzero(codes == k))
    rep.other[col.name] = int(np.count_nonzero(codes == k + 1))
    return codes


def _encode_numeric(s: pd.Series, col: NumericColumn, rep: PreparationReport) -> np.ndarray:
    # `x` may share memory with the frame (kept for owner views): it is only read, never written.
    if pd.api.types.is_numeric_dtype(s.dtype):           # numbers already: nothing can fail to parse
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
        coerced_n = 0
    else:
        raw_missing = s.isna().to_numpy()
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        coerced_n = int((np.isnan(x) & ~raw_missing).sum())
    inf = np.isinf(x)
    if inf.any():                                        # +/-inf: treated as unparseable
        coerced_n += int(inf.sum())
        x = np.where(inf, np.nan, x)
    rep.coerced[col.name] = coerced_n
    miss = np.isnan(x)
    rep.missing[col.name] = int(np.count_nonzero(miss))
    rep.clamped[col.name] = int(np.count_nonzero(x < col.lower) + np.count_nonzero(x > col.upper))
    if x.flags.writeable and not np.may_share_memory(x, s.to_numpy()):
        out = np.clip(x, col.lower, col.upper, out=x)    # x is this function's own (e.g. from integers)
    else:
        out = np.clip(x, col.lower, col.upper)           # a new array: the one copy of the column
    if col.fill_value is not None:
        out[miss] = float(col.fill_value)
    return out


_NAT = np.iinfo(np.int64).min
_PER_DAY = {"D": 1, "h": 24, "m": 1440, "s": 86_400, "ms": 86_400_000, "us": 86_400_000_000,
            "ns": 86_400_000_000_000}


def _day_numbers(d: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 days since 1970-01-01, missing mask) of a datetime Series (tz-aware: the UTC day), by
    integer division at the column's own unit: no overflow outside 1677-2262 (the nanosecond
    range), and no per-element datetime arithmetic."""
    if isinstance(d.dtype, pd.DatetimeTZDtype):
        d = d.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = np.asarray(d.to_numpy())
    unit, step = np.datetime_data(arr.dtype)
    if unit not in _PER_DAY or _PER_DAY[unit] % step:
        arr, unit, step = arr.astype("datetime64[D]"), "D", 1
    i = arr.view(np.int64)
    miss = i == _NAT
    days = i // (_PER_DAY[unit] // step) if _PER_DAY[unit] // step != 1 else i.copy()   # floor: the day
    return days, miss


def _encode_date(s: pd.Series, col: DateColumn, rep: PreparationReport) -> tuple[np.ndarray, np.ndarray]:
    raw_missing = s.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(s):
        days, miss = _day_numbers(s)
    elif s.dtype != object and pd.api.types.is_string_dtype(s):
        # Text dates: parse each distinct text once (a cohort has a few thousand dates), gather by code.
        raw, uniques = pd.factorize(s, use_na_sentinel=True)
        u_days, u_miss = _day_numbers(pd.to_datetime(pd.Series(uniques, dtype=object), errors="coerce",
                                                     format="mixed"))
        days, miss = np.append(u_days, 0)[raw], np.append(u_miss, True)[raw]      # code -1: missing
    else:
        d = pd.to_datetime(s, errors="coerce", format="mixed") if s.dtype == object \
            else pd.to_datetime(s, errors="coerce")
        days, miss = _day_numbers(d)
    rep.coerced[col.name] = int((miss & ~raw_missing).sum())
    rep.missing[col.name] = int(miss.sum())
    lo = (np.datetime64(col.start, "D") - EPOCH).astype(np.int64)
    hi = (np.datetime64(col.end, "D") - EPOCH).astype(np.int64)
    days[miss] = lo
    rep.clamped[col.name] = int(((days < lo) | (days > hi)).sum())
    np.clip(days, lo, hi, out=days)
    return days, miss


def _integral_text(t: pd.Series) -> pd.Series:
    """Text like '17.0' or '-3.' (how an integral float is written) as the integer '17', '-3'."""
    m = t.str.fullmatch(r"-?\d+\.0*").fillna(False).to_numpy(dtype=bool)
    if m.any():
        t = t.copy()
        t[m] = t[m].str.replace(r"\.0*$", "", regex=True)
    return t


def normalise_unit_ids(s: pd.Series) -> pd.Series:
    """The privacy-unit (patient id) column in canonical form; missing ids are NA.

    Ids are compared as text with surrounding whitespace removed, integral floats written as
    integers ('17.0' and 17.0 -> '17'), and empty or whitespace-only text, NaN and +/-inf as
    missing: 17, 17.0, "17" and " 17 " are one patient. Leading zeros and letter case are kept ("007" is not "7").
    Integer and boolean columns are returned unchanged and float columns as numbers (integers
    when all are integral): equal numbers are equal ids, so this is the same grouping without
    writing a million strings. Vectorised (no Python per row).
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = normalise_unit_ids(pd.Series(np.asarray(s.cat.categories, dtype=object), dtype=object))
        values = np.append(cats.astype("string").to_numpy(dtype=object, na_value=None), None)
        return pd.Series(values[np.asarray(s.cat.codes)], index=s.index, dtype="string")  # code -1 -> None
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        return s
    if pd.api.types.is_float_dtype(s.dtype):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0          # -0.0 -> 0.0
        finite = np.isfinite(x)
        all_finite = bool(finite.all())
        if np.all(~finite | ((x == np.floor(x)) & (np.abs(x) < 2.0**63))):
            if all_finite:                                              # the usual case: plain int64
                return pd.Series(x.astype(np.int64), index=s.index)
            out = pd.array(np.where(finite, x, 0).astype(np.int64), dtype="Int64")
            out[~finite] = pd.NA                                        # NaN, +/-inf: missing id
            return pd.Series(out, index=s.index)
        return pd.Series(x if all_finite else np.where(finite, x, np.nan), index=s.index)  # inf: missing
    t = s.astype("string").str.strip()
    t = t.mask(t == "")
    return _integral_text(t)


def _increasing_integers(s: pd.Series) -> bool:
    """A NumPy integer column in strictly increasing order (its values are then all distinct)."""
    if not (isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu"):
        return False
    x = s.to_numpy()
    return len(x) < 2 or bool((x[1:] > x[:-1]).all())


def prepare(frame: pd.DataFrame, schema: Schema, keep_frame: bool = True) -> PreparedCohort:
    """Validate `frame` against `schema` and encode it. Raises DataValidationError / SchemaError.

    A DataValidationError's `str()` is public (`unavailable_message`); its `owner_detail` holds the
    counts. Missing schema columns raise SchemaError naming them (schema and column names are no
    patient's data)."""
    public = unavailable_message(schema.dataset_id)
    if frame is None or len(frame.columns) == 0:
        raise DataValidationError(public, "the table has no columns")
    if len(frame) == 0:
        raise DataValidationError(public, "the table has no rows")
    missing_cols = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing_cols:
        raise SchemaError("the schema names columns the table does not have: " + ", ".join(missing_cols))
    if len(frame) > schema.max_rows:
        raise DataValidationError(
            public,
            f"the table has more rows ({len(frame):,}) than the schema's public bound max_rows "
            f"({schema.max_rows:,}); the data owner must raise the bound")
    rep = PreparationReport(rows_in=len(frame))
    # One canonical id per patient, then bound each patient's contribution: keep the first
    # max_rows_per_unit rows per patient.
    raw_unit = frame[schema.privacy_unit]
    unit = normalise_unit_ids(raw_unit)
    if _increasing_integers(unit):             # e.g. 1..n: all distinct, none missing (no hashing)
        codes_u, n_units = None, len(frame)
    else:
        codes_u, uniques_u = pd.factorize(unit, use_na_sentinel=True)
        n_units = len(uniques_u)
        if (codes_u < 0).any():
            raise DataValidationError(
                public, f"{int((codes_u < 0).sum()):,} rows have no patient id in '{schema.privacy_unit}' "
                        "(missing, or empty text)")
    if unit is not raw_unit:                       # owner views and later steps see the canonical ids
        frame = frame.assign(**{schema.privacy_unit: unit})
    if schema.max_rows_per_unit >= 1 and n_units < len(frame):   # all distinct: nothing to drop
        rank = pd.Series(codes_u).groupby(codes_u, sort=False).cumcount().to_numpy()
        keep = rank < schema.max_rows_per_unit
        if not keep.all():
            rep.rows_truncated = int((~keep).sum())
            rep.units_truncated = int(np.unique(codes_u[~keep]).size)
            frame = frame.loc[keep].reset_index(drop=True)
    rep.rows_out = len(frame)
    codes, numbers, days, day_missing = {}, {}, {}, {}

    def encode(col, s: pd.Series) -> None:
        if isinstance(col, CategoricalColumn):
            codes[col.name] = _encode_categorical(s, col, rep)
        elif isinstance(col, NumericColumn):
            numbers[col.name] = _encode_numeric(s, col, rep)
        elif isinstance(col, DateColumn):
            days[col.name], day_missing[col.name] = _encode_date(s, col, rep)

    work = [(col, frame[col.name]) for col in schema.columns if not isinstance(col, IdColumn)]
    if len(frame) >= PARALLEL_FROM_ROWS and len(work) > 1 and (os.cpu_count() or 1) > 1:
        # Each column on its own thread (one Series each, read only; NumPy's kernels release the GIL):
        # about 40 % less time at 10^6 rows on 2 CPUs. Every dict is put back in schema order.
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda cs: encode(*cs), work))
        order = [c.name for c in schema.columns]
        for d in (codes, numbers, days, day_missing, rep.coerced, rep.missing, rep.other, rep.clamped):
            items = sorted(d.items(), key=lambda kv: order.index(kv[0]))
            d.clear()
            d.update(items)
    else:
        for col, s in work:
            encode(col, s)
    return PreparedCohort(schema=schema, n_rows=len(frame), codes=codes, numbers=numbers, days=days,
                          day_missing=day_missing, report=rep, frame=frame if keep_frame else None)


def date_to_day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - EPOCH).astype(np.int64))
