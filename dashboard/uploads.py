"""Owner-uploaded cohorts: data file + owner-confirmed schema saved under the uploads folder.

Layout: `uploads_dir()/<dataset id>/data.parquet` and `schema.toml` (`confirmed = true`). Only
cohorts whose schema the owner confirmed are listed (`uploaded_cohorts`) or opened
(`load_uploaded`); a proposal read from the data lives only in the owner's session until then.

The upload page (dashboard/pages/upload.py) is a thin layer over the plain functions here:

    draft = make_draft(raw_bytes, "cohort.csv")              # read + propose (or read a schema TOML)
    table = schema_table(draft.schema, draft.frame.columns)  # rows for st.data_editor
    schema = schema_from_table(edited, draft.schema, dataset_id=..., privacy_unit=..., ...)
    saved = save_upload(draft.frame, schema, overwrite=False)   # validate, prepare, write atomically
    saved.report.lines()                                     # PreparationReport for the owner
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

import pandas as pd
import streamlit as st

from data.loaders import DEFAULT_MAX_BYTES, LoadError, LoadReport, load_table, load_table_with_report
from data.prepare import DataValidationError, PreparationReport, PreparedCohort, prepare
from data.propose import NoIdColumnError, add_row_ids, propose_schema_with_notes
from data.schema import (DATE_UNITS, CategoricalColumn, Column, DateColumn, IdColumn, NumericColumn, Schema,
                         SchemaError, _category_str, _date, _finite, load_schema, schema_from_dict, schema_to_toml,
                         validate_schema)

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
        draft.schema, draft.notes = propose_schema_with_notes(frame, dataset_id_from_filename(filename))
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
    return validate_schema(s)


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


# ------------------------------------------------------------------------------------ display
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md_escape(text: Any) -> str:
    """Text from files (names, values, messages) made literal for st.markdown/st.error/st.warning:
    no markup, links, HTML, LaTeX or colour directives."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")
