"""A schema PROPOSAL read off a private table, for the data owner to check, edit and confirm.

Everything a schema declares (categories, bounds, bin edges, date ranges, row limits) is public
metadata. Values read from the data are not: they describe the private rows (a minimum, a rare
category). So a proposal is always `confirmed=False`, is shown only to the data owner with the
warning that it was read from the data, and never reaches analysts until the owner confirms it
(`dashboard.uploads.save_upload` writes `confirmed = true` only then).

    schema, notes = propose_schema_with_notes(frame, "my_cohort")
    schema = propose_schema(frame, "my_cohort", privacy_unit="patient_id")

Guesses, per column:
- id: integer or text columns named like an identifier (patient_id, PatientID, mrn, ...), with many
  distinct values; the privacy unit is the patient-like one (or the first).
- date: datetime columns, or text that parses as dates (2024-01-31, 31/01/2024, ...); the range is
  widened to whole years (whole months when it spans under two years).
- categorical: at most 30 distinct values (integers only when values repeat), listed sorted.
- numeric otherwise: bounds rounded outward to multiples of a power of ten (3.7..97.2 -> 0..100,
  41..92 -> 40..100) and about ten round bin edges inside them.
- left out (not in the schema; notes say why): empty columns, free text with many distinct values.
Row limits: max_rows = a round number at least twice the row count; max_rows_per_unit = the largest
number of rows one id has in the data.

The upload page uses `propose()` with its hardened defaults instead: categories seen in fewer than
MIN_CATEGORY_COUNT rows are not proposed (rare values would be published by name; the owner may
type them in), and no row limits are read from the data (`Proposal.schema` then holds placeholders
max_rows_per_unit = max_rows = 1, which the owner must replace by typing the limits). Numeric
bounds are always rounded outward to a multiple of a power of ten (`round_outward`).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data.prepare import DataValidationError, normalise_unit_ids, unavailable_message
from data.schema import (DATE_UNITS, CategoricalColumn, Column, DateColumn, IdColumn, NumericColumn, Schema,
                         SchemaError, _category_str, validate_schema)

MAX_CATEGORIES = 30
MIN_CATEGORY_COUNT = 10      # categories seen in fewer rows are not proposed on the upload page
TARGET_BINS = 10
DEFAULT_BUDGET = 1.0
RESERVED = ("missing", "other")
ID_TOKENS = {"id", "ids", "pid", "mrn", "uuid", "guid", "nhs", "ssn", "pseudonym"}
ID_NAMES = {"patientid", "subjectid", "caseid", "personid", "recordid", "studyid", "participantid"}
UNIT_TOKENS = {"patient", "patients", "subject", "person", "participant", "pid", "mrn", "nhs", "pseudonym"}
_DATE_RE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?"
                      r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( \d{1,2}:\d{2}(:\d{2})?)?)\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MIN_YEAR, _MAX_YEAR = 1700, 2200          # pandas' nanosecond dates run 1677..2262


# ---------------------------------------------------------------------------------- public API
class NoIdColumnError(SchemaError):
    """No column looks like a patient identifier; the owner must name one or number the rows."""


@dataclass
class Proposal:
    """An UNCONFIRMED schema read off the data, with what the owner needs to review it.

    `column_notes[name]`: short notes for the column's row in the review table (owner only).
    `rare[name]`: (value, rows) of categories not proposed because they are seen in fewer than
    `min_category_count` rows. `row_limits_from_data`: False means the schema's max_rows_per_unit
    and max_rows are placeholders (1) the owner must replace."""

    schema: Schema
    notes: list[str] = field(default_factory=list)
    column_notes: dict[str, list[str]] = field(default_factory=dict)
    rare: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    min_category_count: int = 1
    row_limits_from_data: bool = True


def propose_schema(frame: pd.DataFrame, dataset_id: str, privacy_unit: str | None = None,
                   max_rows_per_unit: int | None = None) -> Schema:
    """An UNCONFIRMED schema guessed from `frame` (see the module docstring)."""
    return propose_schema_with_notes(frame, dataset_id, privacy_unit, max_rows_per_unit)[0]


def propose_schema_with_notes(frame: pd.DataFrame, dataset_id: str, privacy_unit: str | None = None,
                              max_rows_per_unit: int | None = None) -> tuple[Schema, list[str]]:
    """(unconfirmed schema, notes on what was guessed or left out). Owner-only: read from the data.

    Every category seen is proposed and the row limits are read from the data (the upload page
    uses `propose`, which does neither). Raises as `propose`.
    """
    p = propose(frame, dataset_id, privacy_unit=privacy_unit, max_rows_per_unit=max_rows_per_unit,
                min_category_count=1, row_limits_from_data=True)
    return p.schema, p.notes


def propose(frame: pd.DataFrame, dataset_id: str, *, privacy_unit: str | None = None,
            max_rows_per_unit: int | None = None, min_category_count: int = MIN_CATEGORY_COUNT,
            row_limits_from_data: bool = False) -> Proposal:
    """The proposal the upload page shows. Owner-only: read from the data.

    Raises DataValidationError for an empty table, NoIdColumnError when no column looks like a
    patient id (pass `privacy_unit=`, or `add_row_ids` when each row is a different patient), and
    SchemaError for an invalid `dataset_id` or `privacy_unit`.
    """
    if not isinstance(frame, pd.DataFrame) or len(frame.columns) == 0:
        raise DataValidationError(unavailable_message(str(dataset_id)), "the table has no columns")
    if len(frame) == 0:
        raise DataValidationError(unavailable_message(str(dataset_id)), "the table has no rows")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise SchemaError("the table has duplicate column names")
    if privacy_unit is not None and privacy_unit not in names:
        raise SchemaError(f"privacy unit '{privacy_unit}' is not a column of the table "
                          f"(columns: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''})")
    min_count = max(1, int(min_category_count))
    prop = Proposal(schema=None, min_category_count=min_count,  # type: ignore[arg-type]
                    row_limits_from_data=bool(row_limits_from_data or max_rows_per_unit is not None))
    columns: list[Column] = []
    for name, col in zip(names, frame.columns):
        c = _propose_column(name, frame[col], prop, force_id=(name == privacy_unit))
        if c is not None:
            columns.append(c)
    notes = prop.notes
    ids = [c for c in columns if c.kind == "id"]
    if privacy_unit is None:
        if not ids:
            raise NoIdColumnError(
                "no column looks like a patient identifier (an integer or text column named like "
                "'patient_id' with many distinct values). Name the privacy unit column, add one to the "
                "file, or, if each row is a different patient, number the rows")
        privacy_unit = _pick_unit([c.name for c in ids])
        notes.append(f"Privacy unit (one patient): '{privacy_unit}'" + (
            f"; other identifier columns: {', '.join(repr(c.name) for c in ids if c.name != privacy_unit)}"
            if len(ids) > 1 else ""))
    unit = normalise_unit_ids(frame[frame.columns[names.index(privacy_unit)]])   # as prepare counts them
    if unit.isna().all():
        raise SchemaError(f"privacy unit '{privacy_unit}' is empty in every row")
    if max_rows_per_unit is None and prop.row_limits_from_data:
        counts = unit.dropna().value_counts()
        max_rows_per_unit = int(counts.max()) if len(counts) else 1
        notes.append(f"Max rows per patient {max_rows_per_unit}: the most rows one '{privacy_unit}' has in "
                     "this file. Declare the limit your study design guarantees instead if you can")
    n = len(frame)
    if prop.row_limits_from_data:
        limits = dict(max_rows_per_unit=int(max_rows_per_unit), max_rows=_max_rows(n))
    else:                      # placeholders: the owner types both (nothing read from the data)
        limits = dict(max_rows_per_unit=1, max_rows=1)
    schema = Schema(dataset_id=str(dataset_id), title=str(dataset_id), privacy_unit=privacy_unit,
                    default_budget=DEFAULT_BUDGET, columns=tuple(columns),
                    description="", source="uploaded by the data owner", confirmed=False, **limits)
    prop.schema = validate_schema(schema)
    return prop


def add_row_ids(frame: pd.DataFrame, name: str = "row_id") -> pd.DataFrame:
    """`frame` with a first column numbering the rows 1..n, for tables with one row per patient
    and no id column. The name gets a suffix if taken."""
    taken = {str(c) for c in frame.columns}
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    out = frame.copy()
    out.insert(0, name, np.arange(1, len(frame) + 1, dtype=np.int64))
    return out


def nice_bounds(lo: float, hi: float, integer: bool = False) -> tuple[float, float, tuple[float, ...]]:
    """(lower, upper, bin_edges): [lo, hi] widened outward to round numbers, ~10 round bins.

    >>> nice_bounds(0.37, 97.2)[:2]
    (0.0, 100.0)
    """
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("bounds must be finite")
    if lo > hi:
        lo, hi = hi, lo
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):        # one value: a window around it
        half = max(abs(lo) / 2, 1.0 if integer else 0.5)
        lo, hi = lo - half, hi + half
    best = None
    span10 = hi / TARGET_BINS - lo / TARGET_BINS           # no overflow near ±1e308
    k0 = math.floor(math.log10(span10))
    for k in range(k0 - 1, k0 + 2):
        for m in (1.0, 2.0, 2.5, 5.0):
            step = m * 10.0 ** k
            if integer and step < 1:
                continue
            if not math.isfinite(step) or step <= 0:
                continue
            a, b = math.floor(lo / step), math.ceil(hi / step)
            nb = b - a
            if nb < 1:
                continue
            score = (abs(nb - TARGET_BINS), -step)
            if best is None or score < best[0]:
                best = (score, step, a, b)
    if best is not None:
        _, step, a, b = best
        nd = max(0, -math.floor(math.log10(step)) + 2)
        edges = tuple(_clean(round(i * step, nd)) for i in range(a, b + 1))
        if all(math.isfinite(e) for e in edges) and all(y > x for x, y in zip(edges, edges[1:])) \
                and edges[0] <= lo and edges[-1] >= hi:
            return edges[0], edges[-1], edges
    # Pathological magnitudes: keep the exact range, split evenly.
    edges = tuple(lo * (1 - i / TARGET_BINS) + hi * (i / TARGET_BINS) for i in range(TARGET_BINS + 1))
    edges = tuple(e for i, e in enumerate(edges) if i == 0 or e > edges[i - 1])
    if len(edges) < 2 or edges[-1] != hi:
        edges = (lo, hi)
    return lo, hi, edges


def round_outward(lo: float, hi: float, integer: bool = False) -> tuple[float, float, tuple[float, ...]]:
    """(lower, upper, bin_edges): [lo, hi] widened outward to multiples of the power of ten just
    below its span, so the bounds do not give away the observed minimum and maximum, then about
    ten round bins (`nice_bounds`) inside them.

    >>> round_outward(3.7, 97.2)[:2]
    (0.0, 100.0)
    >>> round_outward(41, 92, integer=True)[:2]
    (40.0, 100.0)
    """
    lo, hi = float(lo), float(hi)
    if lo > hi:
        lo, hi = hi, lo
    span = hi - lo
    if math.isfinite(span) and span > 1e-12 * max(1.0, abs(lo), abs(hi)):
        k = math.floor(math.log10(span))
        step = 10.0 ** k
        a, b = math.floor(lo / step) * step, math.ceil(hi / step) * step
        nd = max(0, -k)
        a, b = _clean(round(a, nd)), _clean(round(b, nd))
        if math.isfinite(b - a) and a <= lo and b >= hi and a < b:
            n = int(round((b - a) / step))                 # whole steps: 1 to 12
            per = 1 if n >= 6 else (2 if n >= 3 else (5 if n == 2 else 10))
            if integer and step / per < 1:
                per = 1
            count = n * per
            edges = tuple([a] + [_clean(round(a + i * step / per, nd + 2)) for i in range(1, count)] + [b])
            if all(y > x for x, y in zip(edges, edges[1:])):
                return a, b, edges
    return nice_bounds(lo, hi, integer=integer)


# ---------------------------------------------------------------------------------- per column
def _tokens(name: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]


def _id_like(name: str) -> bool:
    toks = _tokens(name)
    return bool(ID_TOKENS.intersection(toks)) or re.sub(r"[^a-z]", "", name.lower()) in ID_NAMES


def _pick_unit(ids: list[str]) -> str:
    for n in ids:
        if UNIT_TOKENS.intersection(_tokens(n)) or re.sub(r"[^a-z]", "", n.lower()).startswith(
                ("patient", "subject", "person", "participant")):
            return n
    return ids[0]


def _integer_valued(x: np.ndarray) -> bool:
    return bool(len(x)) and bool(np.all(np.floor(x) == x)) and bool(np.all(np.abs(x) < 2**53))


def _propose_column(name: str, s: pd.Series, prop: Proposal, force_id: bool = False) -> Column | None:
    """Work on distinct values (value counts), so large tables with few distinct values stay fast."""
    notes = prop.notes
    if force_id:
        return IdColumn(name=name)
    nonnull = s.dropna()
    n = len(nonnull)
    if n == 0:
        notes.append(f"'{name}' is empty in every row: left out")
        return None
    if pd.api.types.is_bool_dtype(s.dtype) or all(isinstance(v, (bool, np.bool_)) for v in nonnull.iloc[:1000]):
        counts: dict[str, int] = {}
        for v, k in nonnull.map(lambda v: _category_str(bool(v))).value_counts().items():
            counts[str(v)] = counts.get(str(v), 0) + int(k)
        return _categorical(name, sorted(counts), prop, counts)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return _date_column(name, nonnull.min(), nonnull.max(), prop)
    numeric_dtype = pd.api.types.is_numeric_dtype(s.dtype)
    texts: pd.Series | None = None             # distinct text values -> row counts
    if numeric_dtype:
        num = nonnull.to_numpy(dtype=np.float64, na_value=np.nan)
        fin = np.isfinite(num)
        finite_u, finite_n = np.unique(num[fin], return_counts=True)
        n_finite = int(fin.sum())
        parsed_share = float(np.mean(~np.isnan(num)))
        distinct = len(np.unique(num[~np.isnan(num)]))
    else:
        try:
            vc = nonnull.value_counts(sort=False)
        except TypeError:                          # unhashable cells (e.g. nested Parquet lists)
            vc = nonnull.map(lambda v: _category_str(v)).value_counts(sort=False)
        keys = [_key(v) for v in vc.index]
        texts = pd.Series(vc.to_numpy(), index=pd.Index(keys, dtype=object)).groupby(level=0).sum()
        distinct = len(texts)
        w = texts.to_numpy()
        num_u = pd.to_numeric(pd.Series(texts.index, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan)
        fin = np.isfinite(num_u)
        finite_u, n_finite = np.unique(num_u[fin]), int(w[fin].sum())
        finite_n = None
        parsed_share = float(w[~np.isnan(num_u)].sum()) / n
    # identifiers
    if _id_like(name) and (not numeric_dtype or _integer_valued(finite_u) and n_finite == n) \
            and (distinct > MAX_CATEGORIES or distinct >= 0.1 * n) and distinct >= min(2, n):
        return IdColumn(name=name)
    # dates written as text
    if texts is not None and parsed_share < 0.95:
        values = pd.Series(texts.index, dtype=object)
        if float(values.iloc[:2000].map(lambda v: bool(_DATE_RE.match(v))).mean()) >= 0.9:
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            ok = parsed.notna().to_numpy()
            if float(texts.to_numpy()[ok].sum()) / n >= 0.9:
                return _date_column(name, parsed[ok].min(), parsed[ok].max(), prop)
    # numbers (numeric dtype, or text that is numbers with a few stray entries)
    if numeric_dtype or parsed_share >= 0.95:
        if n_finite == 0:
            notes.append(f"'{name}' has no finite numbers: left out")
            return None
        integer = _integer_valued(finite_u)
        if integer and len(finite_u) <= MAX_CATEGORIES and len(finite_u) * 2 <= n_finite \
                and (texts is None or distinct <= MAX_CATEGORIES):
            # categories as the file writes them: text '07' stays '07', numbers 7.0 become '7'
            if texts is not None:
                counts = {str(k): int(v) for k, v in texts.items()}
            else:
                counts = {_category_str(float(v)): int(k) for v, k in zip(finite_u, finite_n)}
            if any(k >= prop.min_category_count for k in counts.values()):
                return _categorical(name, sorted(counts, key=_sort_key), prop, counts)
            prop.column_notes.setdefault(name, []).append(
                f"whole numbers, each value seen in fewer than {prop.min_category_count} rows: proposed as "
                "numeric instead of categories")
        if not numeric_dtype and parsed_share < 1:
            notes.append(f"'{name}': {int(round((1 - parsed_share) * n)):,} values are not numbers "
                         "and will be counted as unparseable")
        lo, hi, edges = round_outward(float(finite_u[0]), float(finite_u[-1]), integer=integer)
        prop.column_notes.setdefault(name, []).append("bounds rounded outward from the data's range")
        return NumericColumn(name=name, lower=lo, upper=hi, bin_edges=edges, integer=integer)
    # text categories
    if distinct <= MAX_CATEGORIES:
        return _categorical(name, sorted(texts.index, key=_sort_key), prop, {str(k): int(v) for k, v in texts.items()})
    notes.append(f"'{name}' has {distinct:,} distinct text values (more than {MAX_CATEGORIES}): left out; "
                 "declare its categories to analyse it")
    prop.column_notes.setdefault(name, []).append(
        f"{distinct:,} distinct text values: left out; choose 'categorical' and type its categories to analyse it")
    return None


def _key(v: Any) -> str:
    return v if isinstance(v, str) else _category_str(v)


def _sort_key(v: str):
    try:
        x = float(v)
        if math.isfinite(x):
            return (0, x, v)
    except ValueError:
        pass
    return (1, 0.0, v)


def _categorical(name: str, cats: list[str], prop: Proposal, counts: dict[str, int] | None = None) -> Column | None:
    notes = prop.notes
    kept, rare = [], []
    for c in cats:
        if c in RESERVED:
            notes.append(f"'{name}': the value '{c}' is a reserved bucket name; such rows will be counted in "
                         "the 'other' bucket unless you rename the value in the file")
        elif not c.strip():
            notes.append(f"'{name}': blank values will be counted in the 'other' bucket")
        elif _CONTROL.search(c):
            notes.append(f"'{name}': a value with a line break or control character was left out of the "
                         "categories (counted as 'other')")
        elif counts is not None and counts.get(c, 0) < prop.min_category_count:
            rare.append((c, int(counts.get(c, 0))))
        else:
            kept.append(c)
    if rare:
        prop.rare[name] = rare
        shown = ", ".join(f"'{v}' ({k} row{'s' if k != 1 else ''})" for v, k in rare[:5])
        more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
        text = (f"{len(rare)} categor{'y' if len(rare) == 1 else 'ies'} seen in fewer than "
                f"{prop.min_category_count} rows not proposed: {shown}{more}; type a value into the categories "
                "to add it (otherwise such rows count as 'other')")
        notes.append(f"'{name}': {text}")
        prop.column_notes.setdefault(name, []).append(text)
    if not kept:
        if rare:
            prop.column_notes[name][-1] = (f"every category is seen in fewer than {prop.min_category_count} rows: "
                                           "left out; choose 'categorical' and type its categories to add it")
        notes.append(f"'{name}': no usable category values: left out")
        return None
    return CategoricalColumn(name=name, categories=tuple(kept))


def _date_column(name: str, lo, hi, prop: Proposal) -> Column | None:
    notes = prop.notes
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        notes.append(f"'{name}' has no readable dates: left out")
        return None
    lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
    y0, y1 = max(int(lo.year), _MIN_YEAR), min(int(hi.year), _MAX_YEAR)
    if y0 > y1:
        notes.append(f"'{name}': dates outside the years {_MIN_YEAR}-{_MAX_YEAR}: left out")
        return None
    if lo.year < _MIN_YEAR or hi.year > _MAX_YEAR:
        notes.append(f"'{name}': dates outside {_MIN_YEAR}-{_MAX_YEAR} will be clamped")
    years = y1 - y0 + 1
    if years > 2:
        start, end = dt.date(y0, 1, 1), dt.date(y1, 12, 31)
    else:
        m0 = lo.month if lo.year == y0 else 1
        m1 = hi.month if hi.year == y1 else 12
        start = dt.date(y0, m0, 1)
        end = dt.date(y1 + (m1 == 12), m1 % 12 + 1, 1) - dt.timedelta(days=1)
    unit = "month" if years <= 3 else ("quarter" if years <= 12 else "year")
    assert unit in DATE_UNITS
    prop.column_notes.setdefault(name, []).append(
        "date range widened to whole years" if years > 2 else "date range widened to whole months")
    return DateColumn(name=name, start=start, end=end, bin_unit=unit)


def _max_rows(n: int) -> int:
    """A round public bound at least twice the row count: 1, 2 or 5 times a power of ten (>= 100)."""
    target = max(2 * n, 100)
    k = 10 ** max(0, len(str(target)) - 1)
    for m in (1, 2, 5, 10):
        if m * k >= target:
            return m * k
    return 10 * k  # pragma: no cover


def _clean(x: float) -> float:
    return 0.0 if x == 0 else float(x)
