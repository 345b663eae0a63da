"""Query specs: small immutable, hashable, JSON-serialisable descriptions of one statistic.

A spec names only public things: column names, a public category to restrict to, quantile levels,
and optional public bin edges. It holds no data and no epsilon; `release` pairs it with a cost.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Union

from data.schema import CategoricalColumn, DateColumn, NumericColumn, Schema, SchemaError, DATE_UNITS

MECHANISMS = ("laplace", "gaussian")
EPSILON_MIN, EPSILON_MAX = 1e-3, 100.0


class QueryError(ValueError):
    """A query spec or its parameters are invalid for the schema (specific message)."""


def _mid_sentence(label: str) -> str:
    """'Report turnaround' -> 'report turnaround' inside a sentence; acronyms ('PSA', 'CT dose') stay."""
    words = label.split(" ")
    first = words[0]
    # single words are often proper names ('Gleason'): keep them; lower only multi-word phrases
    return label[0].lower() + label[1:] if len(words) > 1 and len(first) > 1 and first[1:].islower() else label


@dataclass(frozen=True)
class Where:
    """Restrict to rows where categorical `column` equals the public category `value`."""

    column: str
    value: str

    def __str__(self) -> str:
        return f"{self.column}={self.value}"


@dataclass(frozen=True)
class _Query:
    stat: ClassVar[str] = ""
    where: Where | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"stat": self.stat}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Where):
                v = {"column": v.column, "value": v.value}
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def describe(self, schema: Schema | None = None) -> str:
        """One plain sentence: 'Distribution of Gleason score among clinical T stage T3a'."""
        lab = (lambda c: _mid_sentence(schema.label(c))) if schema else (lambda c: c)
        text = self._describe(lab)
        if isinstance(self, CountQuery) and schema is not None:
            text = "Number of patients" if schema.max_rows_per_unit == 1 else "Number of rows"
        if self.where:
            text += f" among {lab(self.where.column)} {self.where.value}"
        return text[:1].upper() + text[1:]

    def _describe(self, lab) -> str:  # pragma: no cover - overridden
        return self.stat


@dataclass(frozen=True)
class CountQuery(_Query):
    stat: ClassVar[str] = "count"

    def _describe(self, lab) -> str:
        return "Number of rows"


@dataclass(frozen=True)
class HistogramQuery(_Query):
    """Counts per category (categorical) or per public bin (numeric edges / date unit)."""

    stat: ClassVar[str] = "histogram"
    column: str = ""
    bin_edges: tuple[float, ...] | None = None   # numeric: public edges, None = schema default
    date_unit: str | None = None                  # date: day/week/month/quarter/year

    def _describe(self, lab) -> str:
        return f"Distribution of {lab(self.column)}"


@dataclass(frozen=True)
class MeanQuery(_Query):
    stat: ClassVar[str] = "mean"
    column: str = ""

    def _describe(self, lab) -> str:
        return f"Mean {lab(self.column)}"


@dataclass(frozen=True)
class QuantileQuery(_Query):
    """Quantile over the schema's public candidate values (q=0.5 is the median)."""

    stat: ClassVar[str] = "quantile"
    column: str = ""
    q: float = 0.5

    def _describe(self, lab) -> str:
        name = "Median" if self.q == 0.5 else f"{self.q:.0%} quantile"
        return f"{name} {lab(self.column)}"


@dataclass(frozen=True)
class GroupedMeanQuery(_Query):
    """Mean of numeric `column` per public category of `by` (with counts)."""

    stat: ClassVar[str] = "grouped-mean"
    column: str = ""
    by: str = ""

    def _describe(self, lab) -> str:
        return f"Mean {lab(self.column)} by {lab(self.by)}"


@dataclass(frozen=True)
class GroupedQuantileQuery(_Query):
    """Quantile of numeric `column` in every public category of `by` (e.g. median turnaround per
    department). The groups are disjoint, so all of them are one measurement costing one quantile."""

    stat: ClassVar[str] = "grouped-quantile"
    column: str = ""
    by: str = ""
    q: float = 0.5

    def _describe(self, lab) -> str:
        name = "Median" if self.q == 0.5 else f"{self.q:.0%} quantile"
        return f"{name} {lab(self.column)} by {lab(self.by)}"


@dataclass(frozen=True)
class CrossTabQuery(_Query):
    """Counts for every pair of public buckets of two columns (categories, numeric bins, date bins)."""

    stat: ClassVar[str] = "crosstab"
    column: str = ""
    by: str = ""

    def _describe(self, lab) -> str:
        return f"{lab(self.column)} by {lab(self.by)}"


@dataclass(frozen=True)
class SurvivalQuery(_Query):
    """Survival curve (Kaplan-Meier over public time bins) of a schema endpoint, optionally per
    public category of `by` (disjoint groups: one measurement). `column` is the endpoint's time
    column; `endpoint` names the schema's event definition ('' = the first on that column)."""

    stat: ClassVar[str] = "survival"
    column: str = ""
    endpoint: str = ""
    by: str = ""

    def describe(self, schema: Schema | None = None) -> str:
        """'Overall survival by risk group', from the endpoint's public label."""
        name = ""
        if schema is not None:
            try:
                e = schema.endpoint(self.endpoint, self.column)
                name = e.label or e.name.replace("_", " ")
            except SchemaError:
                pass
        name = name or (self.endpoint.replace("_", " ") + " survival" if self.endpoint else "Survival")
        lab = (lambda c: _mid_sentence(schema.label(c))) if schema else (lambda c: c)
        text = name + (f" by {lab(self.by)}" if self.by else "")
        if self.where:
            text += f" among {lab(self.where.column)} {self.where.value}"
        return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class SyntheticQuery(_Query):
    """A DP synthetic table of public-domain columns (categories, public numeric or date bins),
    fitted by OpenDP's marginal-based inference (`opendp.extras.mbi`: MST or AIM). Its plan lives in
    `privacy.stats.synthetic`; it is not in Explore's statistic list (it has its own page)."""

    stat: ClassVar[str] = "synthetic"
    columns: tuple[str, ...] = ()
    algorithm: str = "mst"

    def __post_init__(self):
        object.__setattr__(self, "columns", tuple(str(c) for c in self.columns))

    def describe(self, schema: Schema | None = None) -> str:
        lab = (lambda c: _mid_sentence(schema.label(c))) if schema else (lambda c: c)
        text = f"DP synthetic cohort of {', '.join(lab(c) for c in self.columns)} ({self.algorithm.upper()})"
        if self.where:
            text += f" among {lab(self.where.column)} {self.where.value}"
        return text

    def validate(self, schema: Schema) -> None:
        if not 2 <= len(self.columns) <= 12 or len(set(self.columns)) != len(self.columns):
            raise QueryError("a synthetic cohort needs 2 to 12 different columns")
        for c in self.columns:
            _need(schema, c, ("categorical", "numeric", "date"), "synthetic column")
        if self.algorithm not in ("mst", "aim"):
            raise QueryError(f"algorithm must be 'mst' or 'aim', got {self.algorithm!r}")


Query = Union[CountQuery, HistogramQuery, MeanQuery, QuantileQuery, GroupedMeanQuery, GroupedQuantileQuery,
              CrossTabQuery, SurvivalQuery, SyntheticQuery]
QUERY_TYPES: dict[str, type] = {c.stat: c for c in (CountQuery, HistogramQuery, MeanQuery, QuantileQuery,
                                                     GroupedMeanQuery, GroupedQuantileQuery, CrossTabQuery,
                                                     SurvivalQuery, SyntheticQuery)}
STATS = tuple(QUERY_TYPES)   # the built-in ones; with plug-ins: privacy.statistics.names()
SPECIAL = ("synthetic",)     # query types with their own page, not offered as a statistic


def query_from_dict(d: dict[str, Any]) -> Query:
    d = dict(d)
    stat = d.pop("stat", None)
    if stat not in QUERY_TYPES:
        raise QueryError(f"unknown statistic {stat!r}; choose one of {', '.join(QUERY_TYPES)}")
    cls = QUERY_TYPES[stat]
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise QueryError(f"unknown field(s) for {stat}: {', '.join(sorted(unknown))}")
    w = d.get("where")
    if isinstance(w, dict):
        d["where"] = Where(str(w["column"]), str(w["value"]))
    if d.get("bin_edges") is not None:
        d["bin_edges"] = tuple(float(x) for x in d["bin_edges"])
    if isinstance(d.get("columns"), list):
        d["columns"] = tuple(d["columns"])
    return cls(**d)


def make_query(stat: str, column: str | None = None, by: str | None = None, where: str | Where | None = None,
               q: float | None = None, bin_edges=None, date_unit: str | None = None,
               endpoint: str | None = None) -> Query:
    """Build a query from loose parameters (CLI/UI). `where` may be 'column=value'."""
    if isinstance(where, str):
        if "=" not in where:
            raise QueryError(f"--where must look like COLUMN=VALUE, got {where!r}")
        c, v = where.split("=", 1)
        where = Where(c.strip(), v.strip())
    if stat not in QUERY_TYPES:
        raise QueryError(f"unknown statistic {stat!r}; choose one of {', '.join(QUERY_TYPES)}")
    if stat not in STATS:        # a plug-in: fill the fields its spec declares
        cls = QUERY_TYPES[stat]
        given = {"column": column, "by": by, "q": q, "endpoint": endpoint, "date_unit": date_unit,
                 "bin_edges": tuple(float(x) for x in bin_edges) if bin_edges else None}
        names = {f.name for f in fields(cls)}
        return cls(where=where, **{k: v for k, v in given.items() if k in names and v is not None})
    if stat == "count":
        return CountQuery(where=where)
    if not column:
        raise QueryError(f"statistic '{stat}' needs a column")
    if stat == "histogram":
        return HistogramQuery(where=where, column=column,
                              bin_edges=tuple(float(x) for x in bin_edges) if bin_edges else None,
                              date_unit=date_unit)
    if stat == "mean":
        return MeanQuery(where=where, column=column)
    if stat == "quantile":
        return QuantileQuery(where=where, column=column, q=0.5 if q is None else float(q))
    if stat == "survival":
        return SurvivalQuery(where=where, column=column, endpoint=endpoint or "", by=by or "")
    if not by:
        raise QueryError(f"statistic '{stat}' needs a second column (--by)")
    if stat == "grouped-mean":
        return GroupedMeanQuery(where=where, column=column, by=by)
    if stat == "grouped-quantile":
        return GroupedQuantileQuery(where=where, column=column, by=by, q=0.5 if q is None else float(q))
    return CrossTabQuery(where=where, column=column, by=by)


def validate_epsilon(epsilon: Any) -> float:
    """Epsilon must be a finite number in [EPSILON_MIN, EPSILON_MAX]."""
    try:
        e = float(epsilon)
    except (TypeError, ValueError):
        raise QueryError(f"epsilon must be a number, got {epsilon!r}") from None
    if math.isnan(e):
        raise QueryError("epsilon must be a number, got NaN")
    if math.isinf(e):
        raise QueryError("epsilon must be finite")
    if e <= 0:
        raise QueryError(f"epsilon must be positive, got {e:g}")
    if e < EPSILON_MIN or e > EPSILON_MAX:
        raise QueryError(f"epsilon {e:g} is outside the allowed range {EPSILON_MIN:g} to {EPSILON_MAX:g}")
    return e


def validate_mechanism(mechanism: str) -> str:
    if mechanism not in MECHANISMS:
        raise QueryError(f"mechanism must be one of {', '.join(MECHANISMS)}, got {mechanism!r}")
    return mechanism


def _need(schema: Schema, name: str, kinds: tuple[str, ...], role: str):
    try:
        col = schema.column(name)
    except SchemaError as e:
        raise QueryError(str(e)) from None
    if col.kind not in kinds:
        raise QueryError(f"{role} '{name}' is {col.kind}; it must be {' or '.join(kinds)}")
    return col


def validate_query(query: Query, schema: Schema) -> Query:
    """Check a query against the public schema. Raises QueryError with a specific message."""
    if not isinstance(query, tuple(QUERY_TYPES.values())):
        raise QueryError(f"not a query spec: {query!r}")
    if query.where is not None:
        col = _need(schema, query.where.column, ("categorical",), "restriction column")
        assert isinstance(col, CategoricalColumn)
        if query.where.value not in col.bucket_labels:
            raise QueryError(f"'{query.where.value}' is not a category of '{col.name}' "
                             f"(one of: {', '.join(col.bucket_labels)})")
    if isinstance(query, HistogramQuery):
        col = _need(schema, query.column, ("categorical", "numeric", "date"), "histogram column")
        if query.bin_edges is not None:
            if not isinstance(col, NumericColumn):
                raise QueryError("bin edges apply only to numeric columns")
            e = query.bin_edges
            if len(e) < 2 or any(not math.isfinite(x) for x in e) or any(b <= a for a, b in zip(e, e[1:])):
                raise QueryError("bin edges must be at least two finite, strictly increasing numbers")
            if e[0] < col.lower or e[-1] > col.upper:
                raise QueryError(f"bin edges outside the public bounds [{col.lower:g}, {col.upper:g}] of '{col.name}'")
            if len(e) > 1001:
                raise QueryError("at most 1000 bins")
        if query.date_unit is not None:
            if not isinstance(col, DateColumn):
                raise QueryError("a date unit applies only to date columns")
            if query.date_unit not in DATE_UNITS:
                raise QueryError(f"date unit must be one of {', '.join(DATE_UNITS)}")
    elif isinstance(query, (MeanQuery, QuantileQuery, GroupedQuantileQuery)):
        _need(schema, query.column, ("numeric",), "column")
        if isinstance(query, GroupedQuantileQuery):
            _need(schema, query.by, ("categorical",), "group-by column")
        if isinstance(query, (QuantileQuery, GroupedQuantileQuery)):
            try:
                q = float(query.q)
            except (TypeError, ValueError):
                raise QueryError(f"quantile level must be a number, got {query.q!r}") from None
            if not (0.0 < q < 1.0):
                raise QueryError(f"quantile level must be strictly between 0 and 1, got {query.q!r}")
    elif isinstance(query, GroupedMeanQuery):
        _need(schema, query.column, ("numeric",), "column")
        _need(schema, query.by, ("categorical",), "group-by column")
    elif isinstance(query, SurvivalQuery):
        try:
            e = schema.endpoint(query.endpoint, query.column)
        except SchemaError as err:
            raise QueryError(str(err)) from None
        if e.time != query.column:
            raise QueryError(f"survival endpoint '{e.name}' is measured on '{e.time}', not '{query.column}'")
        if query.by:
            _need(schema, query.by, ("categorical",), "compare-by column")
            if query.by == e.event:
                raise QueryError("compare by a column other than the event column")
    elif isinstance(query, CrossTabQuery):
        _need(schema, query.column, ("categorical", "numeric", "date"), "column")
        _need(schema, query.by, ("categorical", "numeric", "date"), "second column")
        if query.column == query.by:
            raise QueryError("a 2-D count needs two different columns")
    elif hasattr(query, "validate"):   # a plug-in's own checks (it names its columns' roles)
        query.validate(schema)
    return query


def release_key(dataset_id: str, query: Query, epsilon: float, mechanism: str, delta: float = 0.0) -> str:
    """Identity of a release on a dataset (whoever asks): an identical key -> the stored release
    is returned, never fresh noise."""
    payload = json.dumps({"dataset": dataset_id, "query": query.to_dict(), "epsilon": repr(float(epsilon)),
                          "mechanism": mechanism, "delta": repr(float(delta))}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def legacy_release_key(dataset_id: str, analyst: str, query: Query, epsilon: float, mechanism: str,
                       delta: float = 0.0) -> str:
    """The per-analyst key ledgers used before releases were shared per dataset (read only)."""
    payload = json.dumps({"dataset": dataset_id, "analyst": analyst, "query": query.to_dict(),
                          "epsilon": repr(float(epsilon)), "mechanism": mechanism, "delta": repr(float(delta))},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
