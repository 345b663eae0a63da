"""Public metadata of a cohort, declared by the data owner in a TOML file.

Everything here is PUBLIC: column kinds, category lists, numeric bounds, bin edges, date ranges,
the privacy unit (patient id column), the maximum rows one patient may contribute, a public upper
bound on the row count and the default budget. None of it may be read off the private data
silently; `data.loaders.propose_schema` reads a proposal from data and marks it unconfirmed.

The privacy unit: `privacy_unit` names the patient id column; one patient contributes at most
`max_rows_per_unit` rows (later rows of the same patient are dropped before any release). Ids are
normalised before rows are counted per patient (`data.prepare.normalise_unit_ids`): compared as
text with surrounding whitespace removed, an integral float written as an integer, so `17`,
`17.0`, `"17"`, `"17.0"` and `" 17 "` are one patient; leading zeros and letter case are kept
(`"007"` and `"7"` are two patients); empty or whitespace-only text, NaN and infinity are a missing
id, and a table with a missing id is refused (for the data owner to fix; analysts see only that
the cohort is unavailable).

Out-of-domain values are handled as the schema documents:
- categorical: values outside `categories` are counted in an explicit "other" bucket; missing values
  in an explicit "missing" bucket. Nothing is dropped.
- numeric: values are clamped to [lower, upper]; missing values take the public `fill_value` when
  one is declared, otherwise they are left out of means/quantiles and counted in a "missing" bin.
- date: dates are clamped to [start, end]; missing dates are counted in a "missing" bin.
"""
from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union

DATE_UNITS = ("day", "week", "month", "quarter", "year")


class SchemaError(ValueError):
    """The schema itself is invalid or does not fit the table. Message names the column."""


@dataclass(frozen=True)
class CategoricalColumn:
    name: str
    categories: tuple[str, ...]
    label: str = ""
    unit: str = ""
    description: str = ""
    kind: Literal["categorical"] = "categorical"

    @property
    def bucket_labels(self) -> tuple[str, ...]:
        """Release labels: declared categories, then the explicit missing and other buckets."""
        return self.categories + ("missing", "other")


@dataclass(frozen=True)
class NumericColumn:
    name: str
    lower: float
    upper: float
    bin_edges: tuple[float, ...]
    label: str = ""
    unit: str = ""
    description: str = ""
    fill_value: float | None = None
    candidates: tuple[float, ...] = ()
    integer: bool = False
    kind: Literal["numeric"] = "numeric"

    @property
    def quantile_candidates(self) -> tuple[float, ...]:
        """Public candidate values for quantiles: declared, or 201 evenly spaced over the bounds."""
        if self.candidates:
            return self.candidates
        step = (self.upper - self.lower) / 200
        return tuple(self.lower + i * step for i in range(201))


@dataclass(frozen=True)
class DateColumn:
    name: str
    start: dt.date
    end: dt.date
    bin_unit: str = "month"
    label: str = ""
    description: str = ""
    unit: str = ""
    kind: Literal["date"] = "date"

    def bin_starts(self, unit: str | None = None) -> tuple[dt.date, ...]:
        """Public bin start dates covering [start, end] in `unit` steps."""
        return date_bin_starts(self.start, self.end, unit or self.bin_unit)


@dataclass(frozen=True)
class IdColumn:
    name: str
    label: str = ""
    description: str = ""
    unit: str = ""
    kind: Literal["id"] = "id"


Column = Union[CategoricalColumn, NumericColumn, DateColumn, IdColumn]


@dataclass(frozen=True)
class SurvivalEndpoint:
    """A public survival definition: a time column (numeric, public bounds and time bins) and an
    event column whose public categories say which rows are events and which are censored.

    Rows whose event category is in neither list (or missing) are left out of the curve; with
    `where`, only rows in that public category of another column count (e.g. colon's death rows).
    """

    name: str
    time: str
    event: str
    events: tuple[str, ...]
    censored: tuple[str, ...]
    label: str = ""
    bin_edges: tuple[float, ...] = ()      # () = the time column's public bin edges
    where: tuple[str, str] | None = None    # (categorical column, public category)


@dataclass(frozen=True)
class Schema:
    """Public metadata of one dataset. `privacy_unit` names the patient id column."""

    dataset_id: str
    title: str
    privacy_unit: str
    max_rows_per_unit: int
    max_rows: int
    default_budget: float
    columns: tuple[Column, ...]
    description: str = ""
    source: str = ""
    confirmed: bool = True
    row_noun: str = ""                         # what one row is ("exam"); "" = "patient" / "record"
    survival: tuple[SurvivalEndpoint, ...] = ()  # public survival endpoints (time + event definition)
    group_sizes: tuple[int, int] | None = None  # public typical group size range, for accuracy words
    # Owner's declaration for the anonymity-risk report (data/anonymity.py); no effect on releases.
    quasi_identifiers: tuple[str, ...] = ()    # columns an outsider may know (age, site, dates...)
    sensitive: tuple[str, ...] = ()            # columns to protect (diagnosis, grade, status...)
    # Where the rows live when not in memory ([storage]: parquet path, database table, Spark table;
    # credentials only by the name of a secret, see data/sources.py). () = loaded into memory.
    storage: tuple[tuple[str, str], ...] = ()

    def __hash__(self) -> int:
        """The fields' hash, computed once (the schema is immutable; plans are cached per schema)."""
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict:
        """Pickled without the kept hash (string hashes differ between processes)."""
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    @property
    def rows_word(self) -> str:
        """Plural noun for counted rows: 'patients' when one row is one patient, else the schema's
        row noun ('exams'), else 'records' (never 'rows' on a clinical screen)."""
        if self.row_noun:
            return self.row_noun if self.row_noun.endswith("s") else self.row_noun + "s"
        return "patients" if self.max_rows_per_unit == 1 else "records"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.columns if c.kind != "id")
        raise SchemaError(f"unknown column '{name}'; known columns: {known}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def endpoint(self, name: str = "", time: str = "") -> SurvivalEndpoint:
        """The survival endpoint called `name`, else the first one on time column `time`."""
        for e in self.survival:
            if (name and e.name == name) or (not name and (not time or e.time == time)):
                return e
        names = ", ".join(e.name for e in self.survival) or "none declared"
        raise SchemaError(f"no survival endpoint {name or time!r} in the schema (endpoints: {names})")

    def of_kind(self, *kinds: str) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.kind in kinds)

    def label(self, name: str) -> str:
        c = self.column(name)
        return c.label or c.name


def date_bin_starts(start: dt.date, end: dt.date, unit: str) -> tuple[dt.date, ...]:
    if unit not in DATE_UNITS:
        raise SchemaError(f"date bin unit '{unit}' is not one of {', '.join(DATE_UNITS)}")
    out: list[dt.date] = []
    if unit == "day":
        d = start
        while d <= end:
            out.append(d)
            d += dt.timedelta(days=1)
    elif unit == "week":
        d = start - dt.timedelta(days=start.weekday())
        while d <= end:
            out.append(d)
            d += dt.timedelta(days=7)
    else:
        months = {"month": 1, "quarter": 3, "year": 12}[unit]
        m0 = start.month - 1
        if unit == "quarter":
            m0 -= m0 % 3
        if unit == "year":
            m0 = 0
        y, m = start.year, m0
        while dt.date(y, m + 1, 1) <= end:
            out.append(dt.date(y, m + 1, 1))
            m += months
            y, m = y + m // 12, m % 12
    return tuple(out)


# ----------------------------------------------------------------------------------- validation
def _finite(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise SchemaError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise SchemaError(f"{what} must be finite, got {x!r}")
    return v


def _date(x: Any, what: str) -> dt.date:
    if isinstance(x, dt.datetime):
        return x.date()
    if isinstance(x, dt.date):
        return x
    try:
        return dt.date.fromisoformat(str(x))
    except ValueError:
        raise SchemaError(f"{what} must be a date like 2024-01-31, got {x!r}") from None


def validate_column(c: Column) -> Column:
    """Check one column's public metadata; raise SchemaError with a specific message."""
    if not c.name or not str(c.name).strip():
        raise SchemaError("a column has an empty name")
    if isinstance(c, CategoricalColumn):
        if len(c.categories) == 0:
            raise SchemaError(f"column '{c.name}': empty category list")
        if len(set(c.categories)) != len(c.categories):
            raise SchemaError(f"column '{c.name}': duplicate categories in the category list")
        if any(k in ("missing", "other") for k in c.categories):
            raise SchemaError(f"column '{c.name}': 'missing' and 'other' are reserved bucket names")
    elif isinstance(c, NumericColumn):
        lo = _finite(c.lower, f"column '{c.name}': lower bound")
        hi = _finite(c.upper, f"column '{c.name}': upper bound")
        if not lo < hi:
            raise SchemaError(f"column '{c.name}': bounds reversed or empty (lower {lo} >= upper {hi})")
        edges = [_finite(e, f"column '{c.name}': bin edge") for e in c.bin_edges]
        if len(edges) < 2:
            raise SchemaError(f"column '{c.name}': at least two bin edges are needed")
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise SchemaError(f"column '{c.name}': bin edges must be strictly increasing")
        if edges[0] < lo or edges[-1] > hi:
            raise SchemaError(
                f"column '{c.name}': bin edges outside the bounds [{lo:g}, {hi:g}] "
                f"(edges run {edges[0]:g} to {edges[-1]:g})")
        if c.fill_value is not None:
            fv = _finite(c.fill_value, f"column '{c.name}': fill value")
            if not lo <= fv <= hi:
                raise SchemaError(f"column '{c.name}': fill value {fv:g} outside the bounds")
        for v in c.candidates:
            if not lo <= _finite(v, f"column '{c.name}': candidate") <= hi:
                raise SchemaError(f"column '{c.name}': quantile candidate {v} outside the bounds")
    elif isinstance(c, DateColumn):
        if c.start > c.end:
            raise SchemaError(f"column '{c.name}': date range reversed ({c.start} after {c.end})")
        if c.bin_unit not in DATE_UNITS:
            raise SchemaError(f"column '{c.name}': bin unit '{c.bin_unit}' not one of {DATE_UNITS}")
    return c


def validate_schema(s: Schema) -> Schema:
    names = [c.name for c in s.columns]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SchemaError(f"duplicate column names in schema: {', '.join(sorted(dup))}")
    if not s.dataset_id or not s.dataset_id.replace("-", "").replace("_", "").isalnum():
        raise SchemaError(f"dataset id '{s.dataset_id}' must be letters, digits, '-' or '_'")
    if s.privacy_unit not in names:
        raise SchemaError(f"privacy unit '{s.privacy_unit}' is not a column of the schema")
    if s.column(s.privacy_unit).kind != "id":
        raise SchemaError(f"privacy unit '{s.privacy_unit}' must be declared with kind = \"id\"")
    if not isinstance(s.max_rows_per_unit, int) or s.max_rows_per_unit < 1:
        raise SchemaError("max_rows_per_unit must be a positive integer")
    if not isinstance(s.max_rows, int) or s.max_rows < 1:
        raise SchemaError("max_rows (public upper bound on the row count) must be a positive integer")
    b = _finite(s.default_budget, "default_budget")
    if b <= 0:
        raise SchemaError("default_budget must be positive")
    if s.group_sizes is not None:
        g = s.group_sizes
        if (len(g) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in g)
                or not 1 <= g[0] <= g[1]):
            raise SchemaError(f"group_sizes must be two whole numbers [smallest, largest] with "
                              f"1 <= smallest <= largest, got {list(g)!r}")
    if s.row_noun and not s.row_noun.replace(" ", "").isalpha():
        raise SchemaError(f"row_noun must be a plain word such as 'exam', got {s.row_noun!r}")
    for c in s.columns:
        validate_column(c)
    for e in s.survival:
        validate_endpoint(s, e)
    _validate_declared(s)
    return s


def _validate_declared(s: "Schema") -> None:
    """quasi_identifiers / sensitive name non-id columns of the schema, each at most once, none in both."""
    kinds = {c.name: c.kind for c in s.columns}
    for key, names in (("quasi_identifiers", s.quasi_identifiers), ("sensitive", s.sensitive)):
        bad = [n for n in names if kinds.get(n, "id") == "id"]
        if bad:
            raise SchemaError(f"{key}: {', '.join(map(repr, bad))} not a non-id column of the schema")
        if len(set(names)) != len(names):
            raise SchemaError(f"{key}: a column is listed twice")
    both = set(s.quasi_identifiers) & set(s.sensitive)
    if both:
        raise SchemaError(f"{', '.join(sorted(both))} declared both quasi-identifier and sensitive")


def validate_endpoint(s: "Schema", e: SurvivalEndpoint) -> None:
    where = f"survival endpoint '{e.name}'"
    names = [x.name for x in s.survival]
    if names.count(e.name) > 1 or not e.name.replace("_", "").replace("-", "").isalnum():
        raise SchemaError(f"{where}: the name must be unique and letters, digits, '-' or '_'")
    t = next((c for c in s.columns if c.name == e.time), None)
    if not isinstance(t, NumericColumn):
        raise SchemaError(f"{where}: time column '{e.time}' must be a numeric column of the schema")
    ev = next((c for c in s.columns if c.name == e.event), None)
    if not isinstance(ev, CategoricalColumn):
        raise SchemaError(f"{where}: event column '{e.event}' must be a categorical column of the schema")
    bad = [v for v in e.events + e.censored if v not in ev.categories]
    if bad:
        raise SchemaError(f"{where}: {', '.join(map(repr, bad))} not categories of '{e.event}'")
    if not e.events or set(e.events) & set(e.censored):
        raise SchemaError(f"{where}: needs at least one event category, none of them also censored")
    edges = e.bin_edges or t.bin_edges
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] != t.lower \
            or edges[-1] > t.upper or len(edges) > 201:
        raise SchemaError(f"{where}: time bins must be 2-201 increasing edges from the lower bound "
                          f"{t.lower:g} up to at most {t.upper:g}")
    if e.where is not None:
        wc = next((c for c in s.columns if c.name == e.where[0]), None)
        if not isinstance(wc, CategoricalColumn) or e.where[1] not in wc.categories:
            raise SchemaError(f"{where}: 'where' must name a categorical column and one of its categories")


# ----------------------------------------------------------------------------------------- TOML
def _storage(v: Any) -> tuple[tuple[str, str], ...]:
    """The [storage] table as sorted (key, text) pairs; checked in full by data.sources."""
    if v is None:
        return ()
    if not isinstance(v, dict) or not all(isinstance(x, (str, int, float)) for x in v.values()):
        raise SchemaError("[storage] must be a table of text values (kind, path, table, url_secret)")
    return tuple(sorted((str(k), str(x)) for k, x in v.items()))


def schema_from_dict(d: dict[str, Any]) -> Schema:
    """Build and validate a Schema from the parsed TOML layout (see data/cohorts/*.toml)."""
    ds = d.get("dataset")
    if not isinstance(ds, dict):
        raise SchemaError("schema has no [dataset] table")
    cols_in = d.get("columns")
    if not isinstance(cols_in, dict) or not cols_in:
        raise SchemaError("schema has no [columns.*] tables")
    cols: list[Column] = []
    for name, spec in cols_in.items():
        if not isinstance(spec, dict):
            raise SchemaError(f"column '{name}': expected a table")
        kind = spec.get("kind")
        common = dict(name=name, label=str(spec.get("label", "")), description=str(spec.get("description", "")),
                      unit=str(spec.get("unit", "")))
        if kind == "categorical":
            cats = spec.get("categories")
            if not isinstance(cats, list):
                raise SchemaError(f"column '{name}': categorical needs a 'categories' list")
            cols.append(CategoricalColumn(categories=tuple(_category_str(v) for v in cats), **common))
        elif kind == "numeric":
            if "lower" not in spec or "upper" not in spec:
                raise SchemaError(f"column '{name}': numeric needs public 'lower' and 'upper' bounds")
            lo = _finite(spec["lower"], f"column '{name}': lower bound")
            hi = _finite(spec["upper"], f"column '{name}': upper bound")
            edges = spec.get("bin_edges")
            if edges is None:
                nb = spec.get("bins", 10)
                if isinstance(nb, bool) or not isinstance(nb, int) or not 1 <= nb <= 1000:
                    raise SchemaError(f"column '{name}': bins must be a whole number from 1 to 1000, got {nb!r}")
                edges = [lo + (hi - lo) * i / nb for i in range(nb + 1)] if hi > lo else [lo, hi]
            if not isinstance(edges, (list, tuple)):
                raise SchemaError(f"column '{name}': bin_edges must be a list of numbers, got {edges!r}")
            cands = spec.get("candidates", [])
            if not isinstance(cands, (list, tuple)):
                raise SchemaError(f"column '{name}': candidates must be a list of numbers, got {cands!r}")
            fill = spec.get("fill_value")
            cols.append(NumericColumn(
                lower=lo, upper=hi, bin_edges=tuple(_finite(e, f"column '{name}': bin edge") for e in edges),
                fill_value=None if fill is None else _finite(fill, f"column '{name}': fill value"),
                candidates=tuple(_finite(v, f"column '{name}': quantile candidate") for v in cands),
                integer=bool(spec.get("integer", False)), **common))
        elif kind == "date":
            if "start" not in spec or "end" not in spec:
                raise SchemaError(f"column '{name}': date needs a public 'start' and 'end'")
            cols.append(DateColumn(start=_date(spec["start"], f"column '{name}': start"),
                                   end=_date(spec["end"], f"column '{name}': end"),
                                   bin_unit=str(spec.get("bin_unit", "month")), **common))
        elif kind == "id":
            cols.append(IdColumn(**common))
        else:
            raise SchemaError(f"column '{name}': kind must be categorical, numeric, date or id, got {kind!r}")
    try:
        s = Schema(
            dataset_id=str(ds.get("id", "")),
            title=str(ds.get("title", ds.get("id", ""))),
            privacy_unit=str(ds.get("privacy_unit", "")),
            max_rows_per_unit=ds.get("max_rows_per_unit", 1),
            max_rows=ds.get("max_rows", 0),
            default_budget=ds.get("default_budget", 1.0),
            columns=tuple(cols),
            description=str(ds.get("description", "")),
            source=str(ds.get("source", "")),
            confirmed=bool(ds.get("confirmed", True)),
            row_noun=str(ds.get("row_noun", "")).strip(),
            group_sizes=_group_sizes(ds.get("group_sizes")),
            quasi_identifiers=_names(ds.get("quasi_identifiers"), "quasi_identifiers"),
            sensitive=_names(ds.get("sensitive"), "sensitive"),
            survival=_endpoints(d.get("survival", {})),
            storage=_storage(d.get("storage")),
        )
    except TypeError as e:  # pragma: no cover - defensive
        raise SchemaError(str(e)) from None
    return validate_schema(s)


def _endpoints(d: Any) -> tuple[SurvivalEndpoint, ...]:
    if not isinstance(d, dict):
        raise SchemaError("[survival] must hold one table per endpoint, e.g. [survival.overall]")
    out = []
    for name, spec in d.items():
        if not isinstance(spec, dict):
            raise SchemaError(f"survival endpoint '{name}': expected a table")
        unknown = set(spec) - {"time", "event", "events", "censored", "label", "bin_edges", "where"}
        if unknown:
            raise SchemaError(f"survival endpoint '{name}': unknown key(s) {', '.join(sorted(unknown))}")
        w = spec.get("where")
        if w is not None and (not isinstance(w, str) or "=" not in w):
            raise SchemaError(f"survival endpoint '{name}': where must look like \"column=category\"")
        try:
            out.append(SurvivalEndpoint(
                name=str(name), time=str(spec["time"]), event=str(spec["event"]),
                events=tuple(_category_str(v) for v in spec.get("events", [])),
                censored=tuple(_category_str(v) for v in spec.get("censored", [])),
                label=str(spec.get("label", "")),
                bin_edges=tuple(_finite(v, f"survival endpoint '{name}': time bin edge")
                                for v in spec.get("bin_edges", [])),
                where=tuple(x.strip() for x in w.split("=", 1)) if w else None))  # type: ignore[arg-type]
        except KeyError as k:
            raise SchemaError(f"survival endpoint '{name}': missing {k}") from None
    return tuple(out)


def _names(v: Any, key: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise SchemaError(f"{key} must be a list of column names, got {v!r}")
    return tuple(v)


def _group_sizes(v: Any) -> tuple[int, int] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise SchemaError(f"group_sizes must be a list of two whole numbers, got {v!r}")
    return tuple(v)  # type: ignore[return-value]  (checked in validate_schema)


def _category_str(v: Any) -> str:
    """Categories are compared as strings; 7.0 and 7 both become '7'."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def load_schema(path: str | Path) -> Schema:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"schema file not found: {p}") from None
    except UnicodeDecodeError as e:
        raise SchemaError(f"schema file {p} is not UTF-8 (byte {e.start})") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SchemaError(f"schema file {p} is not valid TOML: {e}") from None
    return schema_from_dict(d)


def schema_to_toml(s: Schema) -> str:
    """Serialise a schema to the TOML layout `load_schema` reads."""
    def q(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(q(x) for x in v) + "]"
        if isinstance(v, dt.date):
            return v.isoformat()
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["[dataset]"]
    for k, v in [("id", s.dataset_id), ("title", s.title), ("description", s.description),
                 ("source", s.source), ("privacy_unit", s.privacy_unit),
                 ("max_rows_per_unit", s.max_rows_per_unit), ("max_rows", s.max_rows),
                 ("default_budget", s.default_budget), ("confirmed", s.confirmed)]:
        lines.append(f"{k} = {q(v)}")
    if s.row_noun:
        lines.append(f"row_noun = {q(s.row_noun)}")
    if s.group_sizes is not None:
        lines.append(f"group_sizes = {q(list(s.group_sizes))}")
    if s.quasi_identifiers:
        lines.append(f"quasi_identifiers = {q(list(s.quasi_identifiers))}")
    if s.sensitive:
        lines.append(f"sensitive = {q(list(s.sensitive))}")
    for c in s.columns:
        lines += ["", f"[columns.{q(c.name)}]", f"kind = {q(c.kind)}"]
        for k in ("label", "unit", "description"):
            if getattr(c, k):
                lines.append(f"{k} = {q(getattr(c, k))}")
        if isinstance(c, CategoricalColumn):
            lines.append(f"categories = {q(list(c.categories))}")
        elif isinstance(c, NumericColumn):
            lines += [f"lower = {q(c.lower)}", f"upper = {q(c.upper)}", f"bin_edges = {q(list(c.bin_edges))}"]
            if c.fill_value is not None:
                lines.append(f"fill_value = {q(float(c.fill_value))}")
            if c.candidates:
                lines.append(f"candidates = {q(list(c.candidates))}")
            if c.integer:
                lines.append("integer = true")
        elif isinstance(c, DateColumn):
            lines += [f"start = {q(c.start)}", f"end = {q(c.end)}", f"bin_unit = {q(c.bin_unit)}"]
    for e in s.survival:
        lines += ["", f"[survival.{q(e.name)}]", f"time = {q(e.time)}", f"event = {q(e.event)}",
                  f"events = {q(list(e.events))}", f"censored = {q(list(e.censored))}"]
        if e.label:
            lines.append(f"label = {q(e.label)}")
        if e.bin_edges:
            lines.append(f"bin_edges = {q(list(e.bin_edges))}")
        if e.where:
            lines.append(f"where = {q(e.where[0] + '=' + e.where[1])}")
    return "\n".join(lines) + "\n"
