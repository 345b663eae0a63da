"""Owner-uploaded cohorts: data file + owner-confirmed schema saved under the uploads folder.

Layout: `uploads_dir()/<dataset id>/data.parquet` and `schema.toml` (`confirmed = true`). Only
cohorts whose schema the owner confirmed are listed (`uploaded_cohorts`) or opened
(`load_uploaded`); a proposal read from the data lives only in the owner's session until then.

The upload page (dashboard/pages/upload.py) is a thin layer over the plain functions here:

    draft = make_draft(raw_bytes, "cohort.csv")              # read + propose (or read a schema TOML)
    table = review_table(draft)                              # rows for st.data_editor (+ review ticks)
    status = review_status(table, edited, privacy_unit)      # columns still to review before Confirm
    mrpu = parse_row_limit(text, "max rows per patient")     # typed by the owner, never read off the data
    schema = schema_from_table(edited, draft.schema, dataset_id=..., privacy_unit=..., ...)
    saved = save_upload(draft.frame, schema, overwrite=False)   # validate, prepare, write atomically
    saved.report.lines()                                     # PreparationReport for the owner
    draft = draft_from_saved("cohort"); delete_upload("cohort")   # edit or delete a confirmed cohort

Review (proposals read off the data): every column with public values (categories, bounds, bin
edges, date range) must be reviewed before Confirm: the owner ticks "I declare this public" in its
row, or edits one of its values (an edit is a review). Rare categories are not proposed
(data.propose.MIN_CATEGORY_COUNT) and the row limits are typed, not proposed.

Optional DP bounds helper (`bounds_helper` + `run_bounds_helper`): the 2nd and 98th percentiles of
one numeric column over a wide public range the owner types, released through this project's
OpenDP quantile (`QuantileQuery` in one `release_report` reservation, so both levels are charged
together or not at all) on the cohort's budget in the persistent ledger, then rounded outward.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from data.loaders import DEFAULT_MAX_BYTES, LoadError, LoadReport, load_table, load_table_with_report
from data.prepare import DataValidationError, PreparationReport, PreparedCohort, prepare
from data.propose import (MIN_CATEGORY_COUNT, NoIdColumnError, add_row_ids, nice_bounds, propose,
                          round_outward)
from data.schema import (DATE_UNITS, CategoricalColumn, Column, DateColumn, IdColumn, NumericColumn, Schema,
                         SchemaError, SurvivalEndpoint, _category_str, _date, _finite, load_schema, schema_from_dict,
                         schema_to_toml, validate_endpoint, validate_schema)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KINDS = ("id", "categorical", "numeric", "date", "leave out")
TABLE_COLUMNS = ("column", "kind", "label", "unit", "categories", "lower", "upper", "bin_edges", "fill_value")
UPLOAD_MAX_BYTES = DEFAULT_MAX_BYTES


class UploadError(ValueError):
    """The upload cannot be saved (name taken, reserved or invalid). Message for the data owner."""


class UploadDataError(UploadError):
    """The uploaded data does not prepare under the schema. The message is the exact reason
    (`DataValidationError.owner_detail`, with row counts): for the data owner's upload page only."""


def _prepare_for_owner(frame: pd.DataFrame, schema: Schema) -> PreparedCohort:
    """prepare() on the owner's upload path: its public "cohort unavailable" text would not help the
    owner, so a DataValidationError (not a file LoadError) becomes an UploadDataError with the detail."""
    try:
        return prepare(frame, schema, keep_frame=False)
    except LoadError:
        raise
    except DataValidationError as e:
        raise UploadDataError(f"the data does not fit the schema: {e.owner_detail}") from e


def uploads_dir() -> Path:
    return Path(os.environ.get("DP_UPLOADS", "var/uploads"))


def uploaded_cohorts() -> list[str]:
    root = uploads_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and NAME_RE.match(d.name) and (d / "schema.toml").is_file() and any(d.glob("data.*")):
            try:
                if load_schema(d / "schema.toml").confirmed:
                    out.append(d.name)
            except Exception:
                continue
    return out


@st.cache_resource(show_spinner="Preparing the uploaded cohort…", max_entries=4)
def _load(name: str, mtime: float) -> PreparedCohort:
    root = uploads_dir()
    d = root / name
    schema = load_schema(d / "schema.toml")
    if not schema.confirmed:
        raise ValueError(f"the schema of '{name}' is not confirmed by the data owner")
    data = next(d.glob("data.*"))
    return prepare(load_table(data, root=root, max_bytes=2**62), schema)


def load_uploaded(name: str) -> PreparedCohort:
    if not NAME_RE.match(name):
        raise ValueError(f"invalid cohort name {name!r}")
    d = uploads_dir() / name
    if not d.is_dir():
        raise ValueError(f"no uploaded cohort called '{name}'")
    mtime = max(p.stat().st_mtime for p in d.iterdir())
    return _load(name, mtime)


# ------------------------------------------------------------------------------------ reading
@dataclass
class Draft:
    """One upload in the owner's session: the private frame and an UNCONFIRMED schema."""

    key: tuple = ()
    filename: str = ""
    frame: pd.DataFrame | None = None
    load_report: LoadReport | None = None
    schema: Schema | None = None
    from_data: bool = True             # True: proposal read off the data; False: owner's TOML file
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    no_id_column: bool = False         # the proposal found no patient id column
    column_notes: dict[str, list[str]] = field(default_factory=dict)   # per row of the review table
    rare: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # categories not proposed
    edit_of: str | None = None         # editing this saved, confirmed cohort (its values are public)

    @property
    def needs_review(self) -> bool:
        """A proposal read off the data: each of its public values must be reviewed before Confirm."""
        return self.from_data and self.edit_of is None


def dataset_id_from_filename(filename: str) -> str:
    stem = Path(str(filename or "")).stem
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:64]
    return s or "cohort"


def read_upload(data: bytes, filename: str, *, encoding: str | None = None, delimiter: str | None = None,
                max_bytes: int = UPLOAD_MAX_BYTES) -> tuple[pd.DataFrame, LoadReport]:
    return load_table_with_report(data, filename=filename, encoding=encoding, delimiter=delimiter,
                                  max_bytes=max_bytes)


def parse_schema_toml(data: bytes, name: str = "the schema file") -> Schema:
    """A schema from TOML bytes the owner uploaded. Raises SchemaError with a specific message."""
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SchemaError(f"{name} is not UTF-8 text (byte {e.start:,})") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SchemaError(f"{name} is not valid TOML: {e}") from None
    try:
        return schema_from_dict(d)
    except SchemaError:
        raise
    except (ValueError, TypeError, ArithmeticError, AttributeError, KeyError) as e:
        # malformed fields schema_from_dict does not name (e.g. bins = 0, text bin edges)
        raise SchemaError(f"{name}: a value has the wrong type or is out of range ({type(e).__name__}: {e})") from None


def make_draft(data: bytes, filename: str, *, encoding: str | None = None, delimiter: str | None = None,
               schema_bytes: bytes | None = None, schema_name: str = "the schema file",
               number_rows: bool = False, key: tuple = ()) -> Draft:
    """Read the upload and propose a schema (or parse the owner's TOML). Never raises for bad input:
    the problem is in `Draft.error`."""
    draft = Draft(key=key, filename=filename)
    try:
        frame, report = read_upload(data, filename, encoding=encoding, delimiter=delimiter)
    except LoadError as e:
        draft.error = str(e)
        return draft
    if number_rows:
        frame = add_row_ids(frame)
        report.warnings.append(f"Added the column '{frame.columns[0]}' numbering the rows as the patient id")
    draft.frame, draft.load_report = frame, report
    if schema_bytes is not None:
        draft.from_data = False
        try:
            draft.schema = parse_schema_toml(schema_bytes, schema_name)
        except SchemaError as e:
            draft.error = str(e) if str(e).startswith(schema_name) else f"{schema_name}: {e}"
        else:
            missing = [c.name for c in draft.schema.columns if c.name not in set(frame.columns)]
            if missing:
                draft.notes.append("The schema names columns the data does not have: " + ", ".join(missing))
        return draft
    try:
        prop = propose(frame, dataset_id_from_filename(filename), min_category_count=MIN_CATEGORY_COUNT,
                       row_limits_from_data=False)
        draft.schema, draft.notes = prop.schema, prop.notes
        draft.column_notes, draft.rare = prop.column_notes, prop.rare
    except NoIdColumnError as e:
        draft.error, draft.no_id_column = str(e), True
    except SchemaError as e:
        draft.error = str(e)
    except DataValidationError as e:      # owner's page: the exact reason, not the public text
        draft.error = e.owner_detail
    return draft


# ------------------------------------------------------------------------------------ editor table
def _num_text(x: float | None) -> str:
    if x is None:
        return ""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def format_categories(cats) -> str:
    """Comma list; categories holding commas, quotes or outer spaces are double-quoted."""
    out = []
    for c in cats:
        c = str(c)
        if any(ch in c for ch in ',"\n\r') or c != c.strip():
            c = '"' + c.replace('"', '""') + '"'
        out.append(c)
    return ", ".join(out)


def parse_categories(text: Any) -> tuple[str, ...]:
    """Inverse of `format_categories`: commas separate; "double quotes" keep commas and spaces."""
    t = _cell(text)
    out: list[str] = []
    i, n = 0, len(t)
    while i < n:
        while i < n and t[i] == " ":
            i += 1
        if i < n and t[i] == '"':
            i += 1
            buf: list[str] = []
            while i < n:
                if t[i] == '"':
                    if i + 1 < n and t[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(t[i])
                i += 1
            else:
                raise SchemaError("a double quote in the category list is never closed")
            while i < n and t[i] == " ":
                i += 1
            if i < n and t[i] != ",":
                raise SchemaError(f"text after the quoted category \"{''.join(buf)}\" must be a comma")
            i += 1
            if "".join(buf).strip():
                out.append("".join(buf))
        else:
            j = t.find(",", i)
            j = n if j < 0 else j
            if t[i:j].strip():
                out.append(t[i:j].strip())
            i = j + 1
    return tuple(out)


def schema_table(schema: Schema, columns) -> pd.DataFrame:
    """Editable rows, one per column: the data's columns in file order (unlisted ones as 'leave out'),
    then columns the schema names but the data lacks. All cells are text."""
    by_name = {c.name: c for c in schema.columns}
    names = [str(c) for c in columns] + [c.name for c in schema.columns if c.name not in set(map(str, columns))]
    rows = []
    for n in names:
        c = by_name.get(n)
        row = dict.fromkeys(TABLE_COLUMNS, "")
        row["column"] = n
        row["kind"] = c.kind if c is not None else "leave out"
        if c is not None:
            row["label"], row["unit"] = c.label, c.unit
        if isinstance(c, CategoricalColumn):
            row["categories"] = format_categories(c.categories)
        elif isinstance(c, NumericColumn):
            row["lower"], row["upper"] = _num_text(c.lower), _num_text(c.upper)
            row["bin_edges"] = ", ".join(_num_text(e) for e in c.bin_edges)
            row["fill_value"] = _num_text(c.fill_value)
        elif isinstance(c, DateColumn):
            row["lower"], row["upper"], row["bin_edges"] = c.start.isoformat(), c.end.isoformat(), c.bin_unit
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS), dtype=object)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    try:
        if isinstance(v, float) and math.isnan(v) or v is pd.NA or v is pd.NaT:
            return ""
    except TypeError:
        pass
    return str(v).strip()


def _number(v: Any, what: str, required: bool = True) -> float | None:
    t = _cell(v)
    if not t:
        if required:
            raise SchemaError(f"{what} is required")
        return None
    try:
        x = float(t)
    except ValueError:
        raise SchemaError(f"{what} must be a number like 12.5, got '{t}'") from None
    return _finite(x, what)


def _int(v: Any, what: str) -> int:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise SchemaError(f"{what} must be a whole number, got {v!r}") from None
    if not math.isfinite(x) or not x.is_integer() or x < 1:
        raise SchemaError(f"{what} must be a positive whole number, got {v!r}")
    return int(x)


def schema_from_table(table: pd.DataFrame, base: Schema | None, *, dataset_id: str, title: str = "",
                      privacy_unit: str, max_rows_per_unit: Any, max_rows: Any, default_budget: Any,
                      description: str | None = None) -> Schema:
    """The schema the owner edited (still unconfirmed). Raises SchemaError naming the column.

    The privacy unit column is always an identifier. Descriptions, integer flags and quantile
    candidates (when still inside the bounds) are kept from `base`."""
    base_cols = {c.name: c for c in base.columns} if base is not None else {}
    cols: list[Column] = []
    for row in table.to_dict("records"):
        name = _cell(row.get("column"))
        kind = _cell(row.get("kind")) or "leave out"
        if name == privacy_unit:
            kind = "id"
        if kind == "leave out":
            continue
        prev = base_cols.get(name)
        common = dict(name=name, label=_cell(row.get("label")), unit=_cell(row.get("unit")),
                      description=prev.description if prev is not None else "")
        where = f"column '{name}'"
        if kind == "id":
            cols.append(IdColumn(**common))
        elif kind == "categorical":
            cats = parse_categories(row.get("categories"))
            if not cats:
                raise SchemaError(f"{where}: list its categories (comma-separated), or choose another kind")
            cols.append(CategoricalColumn(categories=cats, **common))
        elif kind == "numeric":
            lo = _number(row.get("lower"), f"{where}: lower bound")
            hi = _number(row.get("upper"), f"{where}: upper bound")
            edges_text = _cell(row.get("bin_edges"))
            if edges_text:
                edges = tuple(_number(e, f"{where}: bin edge") for e in re.split(r"[,;\s]+", edges_text) if e)
            else:
                edges = tuple(lo + (hi - lo) * i / 10 for i in range(11)) if hi > lo else (lo, hi)
            fill = _number(row.get("fill_value"), f"{where}: fill value", required=False)
            integer = isinstance(prev, NumericColumn) and prev.integer
            cand = prev.candidates if isinstance(prev, NumericColumn) and all(
                lo <= v <= hi for v in prev.candidates) else ()
            cols.append(NumericColumn(lower=lo, upper=hi, bin_edges=edges, fill_value=fill, candidates=cand,
                                      integer=integer, **common))
        elif kind == "date":
            start = _date(_cell(row.get("lower")), f"{where}: start date (lower)")
            end = _date(_cell(row.get("upper")), f"{where}: end date (upper)")
            unit = _cell(row.get("bin_edges")) or "month"
            if unit not in DATE_UNITS:
                raise SchemaError(f"{where}: for a date, 'bin edges' is the bin unit, one of "
                                  f"{', '.join(DATE_UNITS)}; got '{unit}'")
            cols.append(DateColumn(start=start, end=end, bin_unit=unit, **common))
        else:
            raise SchemaError(f"{where}: kind must be one of {', '.join(KINDS)}, got '{kind}'")
    if privacy_unit not in {c.name for c in cols}:
        raise SchemaError(f"privacy unit '{privacy_unit}' is not one of the columns")
    try:
        budget = float(default_budget)
    except (TypeError, ValueError):
        raise SchemaError(f"default budget must be a number, got {default_budget!r}") from None
    s = Schema(dataset_id=str(dataset_id).strip(), title=str(title).strip() or str(dataset_id).strip(),
               privacy_unit=privacy_unit,
               max_rows_per_unit=_int(max_rows_per_unit, "max rows per patient"),
               max_rows=_int(max_rows, "max rows"), default_budget=budget, columns=tuple(cols),
               description=description if description is not None else (base.description if base else ""),
               source=base.source if base is not None and base.source else "uploaded by the data owner",
               confirmed=False)
    s = validate_schema(s)
    kept = []
    for e in (base.survival if base is not None else ()):   # endpoints of a schema file, while still valid
        try:
            validate_endpoint(replace(s, survival=(e,)), e)
            kept.append(e)
        except SchemaError:
            pass
    return replace(s, survival=tuple(kept))


def with_survival_endpoint(schema: Schema, *, time: str, event: str, events, censored, label: str = "",
                           name: str = "survival") -> Schema:
    """The owner's survival endpoint (public: which categories are events, which censored) added to
    the schema, replacing one of the same name. Raises SchemaError with a specific message."""
    e = SurvivalEndpoint(name=str(name).strip() or "survival", time=time, event=event,
                         events=tuple(str(v) for v in events), censored=tuple(str(v) for v in censored),
                         label=str(label).strip())
    rest = tuple(x for x in schema.survival if x.name != e.name)
    return validate_schema(replace(schema, survival=rest + (e,)))


# ------------------------------------------------------------------------------------ review
VALUE_FIELDS = ("kind", "categories", "lower", "upper", "bin_edges", "fill_value")   # editing one = a review
REVIEW_COLUMNS = ("public", "note")
NO_VALUES = ("id", "leave out")
MAX_ROWS_PER_UNIT_LIMIT = 100_000
MAX_ROWS_LIMIT = 4_000_000_000          # OpenDP's Polars margins hold the row bound as a 32-bit count


def review_table(draft: "Draft") -> pd.DataFrame:
    """`schema_table` plus the review columns: 'public' (the owner's "I declare this public" tick,
    unticked) and 'note' (what the proposal did for this column: rare categories left out with
    their row counts, bounds rounded outward; owner only)."""
    table = schema_table(draft.schema, draft.frame.columns)
    notes = []
    for name, kind in zip(table["column"], table["kind"]):
        parts = list(draft.column_notes.get(name, []))
        if name == draft.schema.privacy_unit:
            parts = ["patient id: never shown or analysed"]
        elif kind == "id":
            parts = ["identifier: never shown or analysed"] + parts
        elif draft.needs_review and kind not in NO_VALUES:
            parts = ["read from the data: tick or edit"] + parts
        notes.append("; ".join(parts))
    table["public"] = pd.Series([False] * len(table), dtype=bool)
    table["note"] = pd.Series(notes, dtype=object)
    return table


def _truthy(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return _cell(v).lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class ReviewStatus:
    needs_review: tuple[str, ...]        # columns with public values
    unreviewed: tuple[str, ...]          # of those, neither ticked nor edited

    @property
    def complete(self) -> bool:
        return not self.unreviewed

    def message(self) -> str:
        names = ", ".join(f"'{n}'" for n in self.unreviewed[:12]) + (
            f" and {len(self.unreviewed) - 12} more" if len(self.unreviewed) > 12 else "")
        return (f"{len(self.unreviewed)} of {len(self.needs_review)} columns are not reviewed yet: {names}. "
                "For each, tick “I declare this public” in its row, or edit its values.")


def review_status(proposal: pd.DataFrame, edited: pd.DataFrame, privacy_unit: str,
                  applied: Any = ()) -> ReviewStatus:
    """Which columns still need the owner's review. A column needs it when it will carry public
    values (kind categorical, numeric or date; not the privacy unit); it is reviewed when its
    'public' box is ticked, when one of its values (kind, categories, bounds, bin edges, fill
    value) differs from the proposal, or when the owner applied DP-suggested bounds (`applied`)."""
    orig = {_cell(r.get("column")): r for r in proposal.to_dict("records")}
    applied = set(applied)
    needs, open_ = [], []
    for row in edited.to_dict("records"):
        name = _cell(row.get("column"))
        kind = _cell(row.get("kind")) or "leave out"
        if name == privacy_unit or kind in NO_VALUES:
            continue
        needs.append(name)
        before = orig.get(name)
        changed = before is None or any(_cell(row.get(f)) != _cell(before.get(f)) for f in VALUE_FIELDS)
        if not (changed or _truthy(row.get("public")) or name in applied):
            open_.append(name)
    return ReviewStatus(tuple(needs), tuple(open_))


_GROUPED_INT = re.compile(r"^\d{1,3}(,\d{3})+$")


def parse_row_limit(text: Any, what: str, limit: int | None = None) -> int:
    """A row limit the owner typed: a whole number >= 1 (digits, optionally 10,000-style commas).
    Raises SchemaError with a specific message (empty, decimals, text, zero/negative, too large)."""
    typed = _cell(text)
    t = typed.replace("_", "").replace(" ", "")
    if not t:
        raise SchemaError(f"type {what} (a whole number, at least 1)")
    if _GROUPED_INT.match(t):
        t = t.replace(",", "")
    if re.fullmatch(r"[+-]?\d+", t):
        v = int(t)
    else:
        try:
            x = float(t.replace(",", "."))
        except ValueError:
            raise SchemaError(f"{what} must be a whole number like 5, got {typed!r}") from None
        if not math.isfinite(x):
            raise SchemaError(f"{what} must be a whole number like 5, got {typed!r}")
        if not x.is_integer():
            raise SchemaError(f"{what} must be a whole number (no decimals), got {typed!r}")
        v = int(x)
    if v < 1:
        raise SchemaError(f"{what} must be at least 1, got {typed!r}")
    if limit is not None and v > limit:
        raise SchemaError(f"{what} must be at most {limit:,}, got {typed!r}")
    return v


def parse_row_limits(mrpu_text: Any, max_rows_text: Any) -> tuple[int | None, int | None, list[str]]:
    """(max rows per patient, max rows, error messages) from the owner's two fields."""
    errors: list[str] = []
    out: list[int | None] = []
    for text, what, limit in ((mrpu_text, "max rows per patient", MAX_ROWS_PER_UNIT_LIMIT),
                              (max_rows_text, "max rows", MAX_ROWS_LIMIT)):
        try:
            out.append(parse_row_limit(text, what, limit))
        except SchemaError as e:
            out.append(None)
            errors.append(str(e))
    return out[0], out[1], errors


# ------------------------------------------------------------------------------------ saving
@dataclass
class SavedUpload:
    dataset_id: str
    path: Path
    schema: Schema
    report: PreparationReport
    replaced: bool = False


def _builtin_ids() -> set[str]:
    try:
        from data.cohorts import COHORT_NAMES, cohort_schema
        return {n.lower() for n in COHORT_NAMES} | {cohort_schema(n).dataset_id.lower() for n in COHORT_NAMES}
    except Exception:  # pragma: no cover - catalogue unavailable
        return set()


def cohort_exists(dataset_id: str) -> bool:
    return bool(NAME_RE.match(str(dataset_id))) and (uploads_dir() / str(dataset_id)).exists()


def check_dataset_id(dataset_id: str, overwrite: bool = False) -> None:
    """Refuse names that are not [A-Za-z0-9_-]{1,64}, built-in cohort ids, and taken ids (unless overwrite)."""
    i = str(dataset_id)
    if not NAME_RE.match(i):
        raise UploadError(f"dataset id '{i}' must be 1-64 letters, digits, '-' or '_' (no spaces, dots or "
                          "slashes)")
    if i.lower() in _builtin_ids():
        raise UploadError(f"'{i}' is the id of a built-in cohort; choose another dataset id")
    if (uploads_dir() / i).exists() and not overwrite:
        raise UploadError(f"a cohort called '{i}' already exists; tick 'Overwrite' to replace it, or choose "
                          "another dataset id")


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding mixed types (common in spreadsheets) are stored as text."""
    import pyarrow as pa
    out = frame.reset_index(drop=True).copy()
    out.columns = [str(c) for c in out.columns]
    for c in out.columns:
        if out[c].dtype == object:
            try:
                pa.array(out[c], from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                out[c] = out[c].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v))
                                    else (v if isinstance(v, str) else _category_str(v))).astype(object)
    return out


def save_upload(frame: pd.DataFrame, schema: Schema, *, overwrite: bool = False) -> SavedUpload:
    """Confirm `schema` and save it with the data under uploads_dir()/<dataset id>/.

    Checks, in order (nothing is written when one fails): the dataset id (UploadError), the
    schema (SchemaError), that the TOML round-trips exactly, and that the data prepares under it
    (SchemaError / UploadDataError, whose message has the owner-only detail). The data is stored as
    Parquet, re-read, and prepared again so the returned PreparationReport is exactly what analysts'
    releases will use. The folder appears atomically (temporary folder + rename)."""
    check_dataset_id(schema.dataset_id, overwrite)
    schema = validate_schema(replace(schema, confirmed=True))
    text = schema_to_toml(schema)
    try:
        again = schema_from_dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as e:
        raise SchemaError(f"the schema contains characters that cannot be stored in TOML ({e}); "
                          "remove control characters from names, labels and categories") from None
    if again != schema:
        raise SchemaError("the schema does not survive saving unchanged; check names, labels and categories "
                          "for unusual characters")
    _prepare_for_owner(frame, schema)                     # fail before writing anything
    root = uploads_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = root / schema.dataset_id
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{schema.dataset_id}-", dir=root))
    try:
        _parquet_ready(frame).to_parquet(tmp / "data.parquet", index=False)
        (tmp / "schema.toml").write_text(text, encoding="utf-8")
        reread = load_table(tmp / "data.parquet", root=root, max_bytes=2**62)
        report = _prepare_for_owner(reread, load_schema(tmp / "schema.toml")).report
        replaced = target.exists()
        if replaced:
            if not overwrite:
                raise UploadError(f"a cohort called '{schema.dataset_id}' already exists")
            old = Path(tempfile.mkdtemp(prefix=f".old-{schema.dataset_id}-", dir=root))
            os.replace(target, old / "x")
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, target)
            except OSError:
                raise UploadError(f"a cohort called '{schema.dataset_id}' was just created by someone "
                                  "else; choose another dataset id") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return SavedUpload(schema.dataset_id, target, schema, report, replaced)


# ------------------------------------------------------------------------------------ edit / delete
def draft_from_saved(dataset_id: str) -> Draft:
    """A draft for editing a saved cohort: its stored data and its CONFIRMED schema (public values
    the owner already declared, so nothing needs review again; saving replaces the cohort)."""
    i = str(dataset_id)
    if not NAME_RE.match(i):
        raise UploadError(f"invalid cohort name {i!r}")
    d = uploads_dir() / i
    if not (d / "schema.toml").is_file():
        raise UploadError(f"no uploaded cohort called '{i}'")
    schema = load_schema(d / "schema.toml")
    data = next(d.glob("data.*"), None)
    if data is None:
        raise UploadError(f"the uploaded cohort '{i}' has no data file")
    frame, report = load_table_with_report(data, root=uploads_dir(), max_bytes=2**62)
    return Draft(key=("saved", i), filename=data.name, frame=frame, load_report=report,
                 schema=replace(schema, confirmed=False), from_data=False, edit_of=i)


def delete_upload(dataset_id: str) -> Path:
    """Remove a saved cohort's folder (data and schema): analysts no longer see it. Its rows in the
    budget ledger stay (append-only): budget spent on it stays spent if the id is used again."""
    i = str(dataset_id)
    if not NAME_RE.match(i):
        raise UploadError(f"invalid cohort name {i!r}")
    root = uploads_dir()
    target = root / i
    if not target.is_dir():
        raise UploadError(f"no uploaded cohort called '{i}'")
    trash = Path(tempfile.mkdtemp(prefix=f".del-{i}-", dir=root))
    os.replace(target, trash / "x")           # disappears at once for every session
    shutil.rmtree(trash, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------------ DP bounds helper
BOUNDS_HELPER_EPSILON = 0.05           # shown and editable on the page
BOUNDS_HELPER_LEVELS = (0.02, 0.98)    # the 2nd and 98th percentiles
BOUNDS_HELPER_CANDIDATES = 51          # public grid over the wide range (50 steps): fewer cells, less noise


@dataclass(frozen=True)
class BoundsHelper:
    """A planned DP bounds suggestion for one numeric column (nothing read or spent yet).

    `schema` is a temporary schema: the privacy unit, and the column under a helper name that
    names the wide public range (so a suggestion over another range is another question in the
    ledger), with that range as its public bounds. Its quantiles are `items` of one report."""

    column: str
    source: Any                       # the frame's own column label
    privacy_unit: str
    source_unit: Any
    wide_lower: float
    wide_upper: float
    epsilon: float
    integer: bool
    schema: Schema
    items: tuple
    name: str

    def plans(self) -> list:
        """The OpenDP plans `release_report` will run (their maps are the cost). No data read."""
        from privacy.measurements import build_plan
        return [build_plan(it.query, self.schema, it.epsilon(self.epsilon), "laplace") for it in self.items]

    @property
    def cost(self) -> float:
        """Epsilon the suggestion costs: the sum of OpenDP's privacy maps at max rows per patient."""
        return math.fsum(float(p.cost[0]) for p in self.plans())

    def accuracy_rows(self, alpha: float = 0.05) -> float:
        """Expected (1 - alpha) error of each percentile, in positions of the sorted rows (public
        math on the noise scale: no data read)."""
        return max(float(p.expected_error(alpha).get("halfwidth", float("nan"))) for p in self.plans())

    def refusal(self, ledger, analyst: str):
        """The BudgetExceeded the suggestion would meet now, or None (for disabling the button)."""
        from privacy.release import report_refusal
        return report_refusal(self.name, list(self.items), self.epsilon, self.schema, ledger, analyst)


@dataclass(frozen=True)
class BoundsSuggestion:
    column: str
    lower: float                      # rounded outward, inside the wide range
    upper: float
    bin_edges: tuple[float, ...]
    low_quantile: float               # the DP 2nd and 98th percentiles (OpenDP output)
    high_quantile: float
    low_interval: tuple[float, float]
    high_interval: tuple[float, float]
    epsilon_spent: float              # charged now (0 for a repeat served from the ledger)
    epsilon_cost: float               # what the release cost when it was first made
    cached: bool
    dataset_id: str
    total: float
    spent: float
    remaining: float
    wide_lower: float
    wide_upper: float

    @property
    def uncertain(self) -> bool:
        """Either percentile's 95% interval covers more than half the wide range (too few rows for ε)."""
        half = (self.wide_upper - self.wide_lower) / 2
        return any(b - a > half for a, b in (self.low_interval, self.high_interval))


def _grid(lo: float, hi: float, k: int) -> tuple[float, ...]:
    g = [lo + (hi - lo) * i / (k - 1) for i in range(k)]
    g[0], g[-1] = lo, hi
    out = [g[0]]
    for v in g[1:]:
        if v > out[-1]:
            out.append(v)
    return tuple(out)


def _helper_name(column: str, lo: float, hi: float) -> str:
    return f"{column} (bounds helper, public range {_num_text(lo)} to {_num_text(hi)})"


def bounds_helper(frame: pd.DataFrame, column: Any, wide_lower: Any, wide_upper: Any, epsilon: Any, *,
                  dataset_id: str, privacy_unit: str, max_rows_per_unit: int, max_rows: int, default_budget: Any,
                  integer: bool = False, overwrite: bool = False) -> BoundsHelper:
    """Check the owner's inputs and plan the suggestion. Raises SchemaError / UploadError /
    QueryError with a specific message; reads no data and spends nothing."""
    from privacy.queries import QuantileQuery, validate_epsilon
    from privacy.reports import ReportItem
    check_dataset_id(dataset_id, overwrite)
    names = [str(c) for c in frame.columns]
    column = _cell(column)
    if column not in names:
        raise SchemaError(f"'{column}' is not a column of the data")
    if column == privacy_unit:
        raise SchemaError("choose a numeric column, not the patient id")
    if privacy_unit not in names:
        raise SchemaError(f"privacy unit '{privacy_unit}' is not a column of the data")
    lo = _number(wide_lower, "the wide range's lower end")
    hi = _number(wide_upper, "the wide range's upper end")
    if not lo < hi:
        raise SchemaError(f"the wide range's lower end must be below its upper end (got {_num_text(lo)} "
                          f"and {_num_text(hi)})")
    try:
        eps = validate_epsilon(float(epsilon))
    except (TypeError, ValueError) as e:
        raise SchemaError(f"ε for the bounds helper: {e}") from None
    mrpu = parse_row_limit(max_rows_per_unit, "max rows per patient", MAX_ROWS_PER_UNIT_LIMIT)
    mr = parse_row_limit(max_rows, "max rows", MAX_ROWS_LIMIT)
    try:
        budget = float(default_budget)
    except (TypeError, ValueError):
        raise SchemaError(f"default budget must be a number, got {default_budget!r}") from None
    name = _helper_name(column, lo, hi)
    unit_name = privacy_unit if privacy_unit != name else privacy_unit + "_"
    schema = validate_schema(Schema(
        dataset_id=str(dataset_id), title=str(dataset_id), privacy_unit=unit_name, max_rows_per_unit=mrpu,
        max_rows=mr, default_budget=budget, confirmed=False, source="bounds helper",
        columns=(IdColumn(name=unit_name),
                 NumericColumn(name=name, lower=lo, upper=hi, bin_edges=(lo, hi), integer=bool(integer),
                               label=name, candidates=_grid(lo, hi, BOUNDS_HELPER_CANDIDATES)))))
    share = 1.0 / len(BOUNDS_HELPER_LEVELS)
    items = tuple(ReportItem(f"q{int(round(q * 100)):02d}", f"{q:.0%} percentile of {column}",
                             QuantileQuery(column=name, q=q), share) for q in BOUNDS_HELPER_LEVELS)
    return BoundsHelper(column, frame.columns[names.index(column)], unit_name,
                        frame.columns[names.index(privacy_unit)], lo, hi, eps, bool(integer), schema, items,
                        f"bounds helper: {name}")


def _edges_within(lo: float, hi: float, integer: bool) -> tuple[float, ...]:
    a, b, edges = nice_bounds(lo, hi, integer=integer)
    if a >= lo and b <= hi:
        return edges
    return tuple(lo + (hi - lo) * i / 10 for i in range(11))


def run_bounds_helper(helper: BoundsHelper, frame: pd.DataFrame, ledger, analyst: str) -> BoundsSuggestion:
    """Spend the helper's epsilon (one reservation in the ledger, before the measurement runs) and
    suggest bounds. Raises UploadDataError (the data does not prepare: nothing spent),
    BudgetExceeded (refused: nothing spent), QueryError / ReportError (nothing spent) or
    ReleaseError (charged, the measurement failed)."""
    from privacy.release import release_report
    sub = pd.DataFrame({helper.privacy_unit: frame[helper.source_unit].to_numpy(),
                        helper.schema.columns[1].name: frame[helper.source].to_numpy()})
    cohort = _prepare_for_owner(sub, helper.schema)          # before any spending
    rep = release_report(helper.name, list(helper.items), helper.epsilon, cohort, ledger, analyst)
    a, b = (rep.releases[it.key] for it in helper.items)
    qa, qb = float(a.values[0]), float(b.values[0])
    if qa < qb:
        lo_q, hi_q = qa, qb
    else:                      # noise put the percentiles together: the hull of their 95% intervals
        lo_q, hi_q = float(min(a.ci_low[0], b.ci_low[0])), float(max(a.ci_high[0], b.ci_high[0]))
    lo, hi, _ = round_outward(lo_q, hi_q, integer=helper.integer)
    lo, hi = max(lo, helper.wide_lower), min(hi, helper.wide_upper)
    if not lo < hi:
        lo, hi = helper.wide_lower, helper.wide_upper
    state = ledger.dataset_state(helper.schema.dataset_id)
    return BoundsSuggestion(
        helper.column, lo, hi, _edges_within(lo, hi, helper.integer), qa, qb,
        (float(a.ci_low[0]), float(a.ci_high[0])), (float(b.ci_low[0]), float(b.ci_high[0])),
        0.0 if rep.cached else float(rep.epsilon), float(rep.epsilon), bool(rep.cached),
        helper.schema.dataset_id, state.total, state.spent, state.remaining, helper.wide_lower, helper.wide_upper)


def apply_bounds(table: pd.DataFrame, suggestion: BoundsSuggestion) -> pd.DataFrame:
    """The review table with the suggested bounds and bin edges in the column's row."""
    out = table.copy()
    rows = np.flatnonzero(out["column"].astype(str).to_numpy() == suggestion.column)
    for r in rows:
        out.at[out.index[r], "kind"] = "numeric"
        out.at[out.index[r], "lower"] = _num_text(suggestion.lower)
        out.at[out.index[r], "upper"] = _num_text(suggestion.upper)
        out.at[out.index[r], "bin_edges"] = ", ".join(_num_text(e) for e in suggestion.bin_edges)
        fill = _cell(out.at[out.index[r], "fill_value"])
        try:
            if fill and not suggestion.lower <= float(fill) <= suggestion.upper:
                out.at[out.index[r], "fill_value"] = ""
        except ValueError:
            pass
    return out


# ------------------------------------------------------------------------------------ display
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md_escape(text: Any) -> str:
    """Text from files (names, values, messages) made literal for st.markdown/st.error/st.warning:
    no markup, links, HTML, LaTeX or colour directives."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")
