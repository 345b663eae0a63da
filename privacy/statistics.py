"""The registry of statistics: the one place the CLI, the UI's statistic list and query builder,
simulate, reports and exports look a statistic up.

A statistic is a plug-in: a frozen query spec class (`stat` ClassVar, public fields only), a plan
builder `(query, schema, epsilon, mechanism, delta) -> Plan` (its OpenDP measurement, input,
post-processing, preview words and owner truth), a label, and the inputs its query builder needs
(query field -> allowed column kinds). Registering one makes it a query type (`query_from_dict`,
`make_query`, `validate_query`), a plan (`build_plan`), a `--stat` of the CLI and an entry of the
Explore statistic list; a figure, if the default dot-and-interval chart does not fit, is
registered on the dashboard side (`dashboard.charts.register_figure`). A new statistic is one new
module calling `register_statistic` plus its tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from privacy import queries   # light: no OpenDP, no pandas (the CLI's --help stays quick)


@dataclass(frozen=True)
class Statistic:
    name: str
    query_type: type
    build_plan: Callable | None     # None: a built-in, whose builder lives in privacy.measurements
    label: str
    inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_REGISTRY: dict[str, Statistic] = {}


def register_statistic(s: Statistic) -> Statistic:
    """Add (or replace) a statistic; its query type and plan builder become known everywhere."""
    if getattr(s.query_type, "stat", None) != s.name:
        raise ValueError(f"{s.query_type.__name__}.stat must be {s.name!r}")
    _REGISTRY[s.name] = s
    queries.QUERY_TYPES[s.name] = s.query_type
    if s.build_plan is not None:
        from privacy import measurements
        measurements.register(s.query_type, s.build_plan)
    return s


def unregister_statistic(name: str) -> None:
    """Remove a plug-in (tests). Built-in statistics stay registered."""
    s = _REGISTRY.pop(name, None)
    if s is not None and name not in _BUILT_IN:
        from privacy import measurements
        queries.QUERY_TYPES.pop(name, None)
        measurements.unregister(s.query_type)


def statistics() -> tuple[Statistic, ...]:
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def statistic(name: str) -> Statistic:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise queries.QueryError(f"unknown statistic {name!r}; choose one of {', '.join(_REGISTRY)}") from None


def label(name: str) -> str:
    s = _REGISTRY.get(name)
    return s.label if s else name


# ------------------------------------------------------------------------------- built-ins
_NUM, _CAT, _BIN = ("numeric",), ("categorical",), ("categorical", "numeric", "date")
_BUILT_IN = {
    "histogram": ("Distribution (histogram)", {"column": _BIN}),
    "count": ("Count of patients", {}),
    "mean": ("Mean", {"column": _NUM}),
    "quantile": ("Median / quantile", {"column": _NUM}),
    "grouped-mean": ("Mean by group", {"column": _NUM, "by": _CAT}),
    "grouped-quantile": ("Median / quantile by group", {"column": _NUM, "by": _CAT}),
    "crosstab": ("2-D counts (table)", {"column": _BIN, "by": _BIN}),
    "survival": ("Survival curve", {"column": _NUM, "by": _CAT}),
}
for _name, (_label, _inputs) in _BUILT_IN.items():
    register_statistic(Statistic(_name, queries.QUERY_TYPES[_name], None, _label, _inputs))
