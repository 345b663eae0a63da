"""Shared by every figure module: style (Okabe-Ito colours, layout, template), number and label
formatting, public schema metadata (labels, units), date-bin labels, and what a release says
(display values of counts, uninformative values, crosstab axes). Pure functions.
"""
from __future__ import annotations

import datetime as dt
import html
import math
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from data.schema import Schema, SchemaError

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.release import Release


# --------------------------------------------------------------------------------------- style
# Okabe-Ito colours, in the order series use them (yellow is last: weak contrast on white).
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#000000",  # black
)
BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, YELLOW, BLACK = PALETTE
GREY = "#999999"            # "missing" / "other" buckets, reference lines
GREY_BUCKETS = ("missing", "other")
HEIGHT = 420
FONT_SIZE = 13
COUNT_STATS = ("count", "histogram", "crosstab")
_HEATMAP_SCALE = [[0.0, "#F4F8FB"], [1.0, BLUE]]
_AXIS = dict(gridcolor="#EBF0F8", linecolor="#EBF0F8", zerolinecolor="#EBF0F8", zerolinewidth=2, ticks="",
             title=dict(standoff=12), automargin=True)
# A small white template (like "plotly_white", which is ~50x larger to copy into every figure).
_TEMPLATE = go.layout.Template(layout=dict(
    font=dict(color="#2a3f5f"), paper_bgcolor="white", plot_bgcolor="white", xaxis=_AXIS, yaxis=_AXIS,
    colorway=list(PALETTE), hovermode="closest", hoverlabel=dict(align="left"),
    shapedefaults=dict(line=dict(color="#2a3f5f")),
    annotationdefaults=dict(arrowcolor="#2a3f5f", arrowhead=0, arrowwidth=1)))


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:g})"


def _series_colour(i: int, name: str = "") -> str:
    return GREY if str(name).strip().lower() in GREY_BUCKETS else PALETTE[i % len(PALETTE)]


def _esc(x: Any) -> str:
    """Plotly renders text as pseudo-HTML: escape labels that come from data or callers."""
    return html.escape(str(x), quote=False)


def _layout(fig: go.Figure, title: str, subtitle: str = "", x_title: str = "", y_title: str = "",
            legend: bool = False) -> go.Figure:
    title, subtitle, x_title, y_title = _esc(title), _esc(subtitle), _esc(x_title), _esc(y_title)
    top = 44 + (22 if subtitle else 0) + (30 if legend else 0)
    fig.update_layout(
        template=_TEMPLATE, height=HEIGHT, font=dict(size=FONT_SIZE),
        margin=dict(l=64, r=24, t=top, b=56),
        title=dict(text=title, x=0.01, xanchor="left", y=1.0, yref="container", yanchor="top", pad=dict(t=10),
                   font=dict(size=FONT_SIZE + 3), subtitle=dict(text=subtitle, font=dict(size=FONT_SIZE - 1,
                                                                                         color="#555555"))),
        hoverlabel=dict(font_size=FONT_SIZE), showlegend=legend,
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", bgcolor="rgba(0,0,0,0)"),
    )
    fig.update_xaxes(title_text=x_title, automargin=True)
    fig.update_yaxes(title_text=y_title, automargin=True)
    return fig


def _empty(title: str, message: str) -> go.Figure:
    fig = _layout(go.Figure(), title)
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=FONT_SIZE + 1, color="#555555"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# ------------------------------------------------------------------------------------ numbers
def _arr(x: Any) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in x], dtype=float)


def _median(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _level(alpha: float) -> str:
    try:
        return f"{(1 - float(alpha)) * 100:.3g}%"
    except (TypeError, ValueError):
        return "95%"


def _decimals(halfwidth: float, value: float = float("nan")) -> int:
    """Decimals that show about two significant digits of the interval's half-width."""
    if math.isfinite(halfwidth) and halfwidth > 0:
        return int(min(max(1 - math.floor(math.log10(halfwidth)), 0), 6))
    if math.isfinite(value) and value != 0:
        return int(min(max(2 - math.floor(math.log10(abs(value))), 0), 6))
    return 2


def _num(x: float, decimals: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.{decimals}f}"


def _count(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}"


def _count_bounds(lo: float, hi: float) -> tuple[float, float]:
    """Display bounds of a count interval: clipped at 0 and, since a true count is an integer,
    tightened to the integers inside [lo, hi] when there are any."""
    lo, hi = max(lo, 0.0), max(hi, 0.0)
    a, b = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    return (float(a), float(b)) if a <= b else (round(lo), round(hi))


def _is_count(release: "Release") -> bool:
    return release.query.get("stat") in COUNT_STATS


def _display_values(release: "Release") -> np.ndarray:
    v = _arr(release.values)
    return np.where(np.isfinite(v), np.maximum(v, 0.0), np.nan) if _is_count(release) else v


# ----------------------------------------------------------------------------------- metadata
def _column(schema: Schema | None, name: str | None):
    if schema is None or not name:
        return None
    try:
        return schema.column(name)
    except SchemaError:
        return None


def _col_label(schema: Schema | None, name: str | None) -> str:
    c = _column(schema, name)
    return (c.label or c.name) if c is not None else (name or "")


def _col_unit(schema: Schema | None, name: str | None) -> str:
    c = _column(schema, name)
    return (getattr(c, "unit", "") or "") if c is not None else ""


def _with_unit(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def rows_noun(schema: Schema | None) -> str:
    """What one row of the cohort is, in the plural, for people: the schema's noun ('patients',
    'exams'); 'records' where the schema only knows 'rows' (several rows per patient)."""
    word = schema.rows_word if schema is not None else "records"
    return "records" if word == "rows" else word


def _count_unit(release: "Release", schema: Schema | None = None) -> str:
    """What a count counts: patients (one row per patient), the schema's noun (exams), or
    'records'. Without a schema only a plain count says which; others fall back to 'records'."""
    if schema is not None:
        return rows_noun(schema)
    if release.query.get("stat") == "count" and len(release.labels) == 1:
        return release.labels[0]
    return "records"


def _sentence(label: str) -> str:
    """A label after a word ('Mean Report turnaround' -> 'Mean report turnaround'); acronyms
    (PSA, CT dose) and single letters keep their case."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def _stat_word(query: Mapping[str, Any]) -> str:
    stat = query.get("stat")
    if stat in ("quantile", "grouped-quantile"):
        q = float(query.get("q", 0.5))
        return "Median" if q == 0.5 else f"{q:.0%} quantile"
    return "Mean" if stat in ("mean", "grouped-mean") else ""


def greyed(fig: go.Figure) -> go.Figure:
    """A copy of `fig` drawn faded and grey: the result of a question that is no longer asked."""
    out = go.Figure(fig)
    out.update_traces(opacity=0.35)
    out.update_layout(font_color="#9a9a9a", title_font_color="#9a9a9a")
    out.update_layout(title_text=f"Previous question: {fig.layout.title.text or ''}")
    return out


def _subtitle(release: "Release", notes: Sequence[str] = ()) -> str:
    if release.extra.get("derived_from"):     # a free answer: its cost is nothing, not "ε = 0"
        parts = ["free (from an earlier release)"]
    else:
        parts = [f"ε = {release.epsilon:.4g}"]
    if release.delta:
        parts[0] += f", δ = {release.delta:.2g}"
    parts.append(f"{_level(release.alpha)} intervals")
    if release.mechanism:
        parts.append(f"{release.mechanism.capitalize()} noise")
    return " · ".join(parts + [n for n in notes if n])


def _tick_labels(labels: Sequence[str]) -> list[str]:
    return [f"<span style='color:{GREY}'>{_esc(lab)}</span>" if str(lab) in GREY_BUCKETS else _esc(lab)
            for lab in labels]


# -------------------------------------------------------------------------------- date labels
_RE_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_RE_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RE_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_RE_YEAR = re.compile(r"^(\d{4})$")


def _parse_date_label(s: str, allow_year: bool = False) -> dt.date | None:
    s = str(s).strip()
    try:
        if m := _RE_DAY.match(s):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _RE_MONTH.match(s):
            return dt.date(int(m[1]), int(m[2]), 1)
        if m := _RE_QUARTER.match(s):
            return dt.date(int(m[1]), 3 * (int(m[2]) - 1) + 1, 1)
        if allow_year and (m := _RE_YEAR.match(s)):
            return dt.date(int(m[1]), 1, 1)
    except ValueError:
        return None
    return None


def _date_positions(labels: Sequence[str], allow_year: bool = False) -> list[dt.date | None] | None:
    """Dates for labels that are date bins ('missing' -> None); None if they are not all dates."""
    out: list[dt.date | None] = []
    for lab in labels:
        if str(lab) in GREY_BUCKETS:
            out.append(None)
            continue
        d = _parse_date_label(lab, allow_year)
        if d is None:
            return None
        out.append(d)
    return out if any(d is not None for d in out) else None


def _date_unit_of(labels: Sequence[str]) -> str:
    for lab in labels:
        s = str(lab)
        if _RE_DAY.match(s):
            return "day"
        if _RE_MONTH.match(s):
            return "month"
        if _RE_QUARTER.match(s):
            return "quarter"
        if _RE_YEAR.match(s):
            return "year"
    return ""


# --------------------------------------------------------------------- what a release says
WEAK_SHARE = 0.9   # an interval over >= 90% of the public range says nothing about the group


def on_bound(release: "Release", schema: Schema | None = None) -> list[bool]:
    """Means whose estimate sits on a public bound of the column while their interval says something:
    the noisy mean fell at or beyond the bound and was clamped there, so the release supports an
    interval, not a value. Shown with no dot, the interval in grey (post-processing of the release
    and the public schema only)."""
    return _on_bound(release, schema, _says_nothing(release, schema))


def _on_bound(release: "Release", schema: Schema | None, says_nothing: list[bool]) -> list[bool]:
    n = len(release.labels)
    col = _column(schema, release.query.get("column"))
    if col is None or col.kind != "numeric" or release.query.get("stat") not in ("mean", "grouped-mean"):
        return [False] * n
    v = _arr(release.values)
    lo, hi = float(col.lower), float(col.upper)
    return [not says_nothing[i] and bool(np.isfinite(v[i])) and (v[i] <= lo + 1e-9 or v[i] >= hi - 1e-9)
            for i in range(n)]


def _uninformative(release: "Release", schema: Schema | None = None) -> list[bool]:
    """Values shown as 'not enough patients to estimate' (no dot, no number): those that say nothing
    (`_says_nothing`) and means on a public bound (`on_bound`, whose interval is still drawn)."""
    base = _says_nothing(release, schema)
    return [a or b for a, b in zip(base, _on_bound(release, schema, base))]


def _says_nothing(release: "Release", schema: Schema | None = None) -> list[bool]:
    """Values that say nothing (post-processing of the release and the public schema only):
    a mean whose noisy count is within the release's "may be empty" threshold (`empty_below`), or any mean/quantile whose interval covers at least
    WEAK_SHARE of the column's public range. Shown as 'not enough patients to estimate'."""
    n = len(release.labels)
    weak = [False] * n
    counts = release.extra.get("noisy_counts")
    if counts is None and release.extra.get("noisy_count") is not None:
        counts = [release.extra["noisy_count"]]
    if counts is None:           # a grouped quantile: each group's cells summed (no group size shown)
        counts = release.extra.get("noisy_totals")
    # the release's own threshold for "may be empty" (grouped mean: an empty group's noisy count
    # exceeds it with probability 1e-6), else, for older releases, the count's 95% box
    a = release.extra.get("empty_below", release.extra.get("count_halfwidth"))
    if counts is not None and a is not None:
        weak = [i < len(counts) and counts[i] is not None and float(counts[i]) - float(a) <= 0 for i in range(n)]
    col = _column(schema, release.query.get("column"))
    if col is not None and col.kind == "numeric" and not _is_count(release):
        span = float(col.upper) - float(col.lower)
        lo, hi = _arr(release.ci_low), _arr(release.ci_high)
        weak = [w or not (math.isfinite(lo[i]) and math.isfinite(hi[i])) or (hi[i] - lo[i]) >= WEAK_SHARE * span
                for i, w in enumerate(weak)]
    return weak


def not_enough_words(release: "Release", schema: Schema | None = None) -> str:
    return f"not enough {rows_noun(schema)} to estimate"


def _crosstab_axes(release: "Release") -> tuple[list[str], list[str]] | None:
    rows, cols = release.extra.get("rows"), release.extra.get("cols")
    n = len(release.labels)
    if rows and cols and len(rows) * len(cols) == n:
        return [str(r) for r in rows], [str(c) for c in cols]
    parts = [str(lab).split(" | ", 1) for lab in release.labels]
    if all(len(p) == 2 for p in parts):
        rows = list(dict.fromkeys(p[0] for p in parts))
        cols = list(dict.fromkeys(p[1] for p in parts))
        if len(rows) * len(cols) == n and all(p == [rows[i // len(cols)], cols[i % len(cols)]]
                                               for i, p in enumerate(parts)):
            return rows, cols
    return None
