"""Plotly figures, tables and downloads for DP releases. PURE functions of their arguments.

Nothing here touches data, noise, the ledger or Streamlit: every number drawn comes from a
`Release` (OpenDP output and its post-processing) or, for owner-only views, from a `Simulation`
or numbers the caller passes in. Display-only post-processing done here:

- noisy counts below 0 are drawn as 0 (a true count cannot be negative); the raw value stays in
  the hover, the table and the downloads;
- count intervals are clipped at 0 for display;
- "missing" / "other" buckets are real buckets and stay, drawn in grey.

Colours: Okabe-Ito (`PALETTE`), safe for the common colour-vision deficiencies.
"""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import math
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data.schema import Schema, SchemaError

if TYPE_CHECKING:  # keep this module light: no OpenDP import just for type hints
    from privacy.release import Release
    from privacy.simulate import Simulation

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
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


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


def _count_unit(release: "Release", schema: Schema | None = None) -> str:
    """What a count counts: patients (one row per patient) or rows. Without a schema only a
    plain count says which; other counts fall back to 'rows', which is always literally true."""
    if schema is not None:
        return schema.rows_word
    if release.query.get("stat") == "count" and len(release.labels) == 1:
        return release.labels[0]
    return "rows"


def _stat_word(query: Mapping[str, Any]) -> str:
    stat = query.get("stat")
    if stat in ("quantile", "grouped-quantile"):
        q = float(query.get("q", 0.5))
        return "Median" if q == 0.5 else f"{q:.0%} quantile"
    return "Mean" if stat in ("mean", "grouped-mean") else ""


def _subtitle(release: "Release", notes: Sequence[str] = ()) -> str:
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


# ---------------------------------------------------------------------------------- releases
FIGURES: dict[str, Any] = {}   # statistic -> figure builder (release, schema) -> Figure, for plug-ins


def register_figure(stat: str, builder) -> None:
    """A statistic plug-in's own chart; without one its release is drawn as dots with intervals."""
    FIGURES[stat] = builder


def release_figure(release: "Release", schema: Schema | None = None) -> go.Figure:
    """The chart for one release, chosen by its statistic. `schema` (public) adds labels/units."""
    stat = release.query.get("stat")
    if not release.labels:
        return _empty(release.description, "This release has no values.")
    if stat in FIGURES:
        return FIGURES[stat](release, schema)
    if stat == "histogram":
        col = _column(schema, release.query.get("column"))
        is_date_col = col is not None and col.kind == "date"
        if col is None or is_date_col:
            pos = _date_positions(release.labels, allow_year=is_date_col)
            if pos is not None:
                return _date_count_figure(release, schema, pos)
        return _bar_figure(release, schema)
    if stat == "count":
        return _bar_figure(release, schema)
    if stat == "crosstab":
        return _heatmap_figure(release, schema)
    return _point_figure(release, schema)


def _count_hover(label: str, raw: float, lo: float, hi: float, unit: str, level: str) -> str:
    a, b = _count_bounds(lo, hi) if math.isfinite(lo) and math.isfinite(hi) else (lo, hi)
    text = f"<b>{_esc(label)}</b><br>Noisy count: {_count(raw)} {unit}"
    if math.isfinite(raw) and raw < 0:
        text += " (below 0 after noise, shown as 0)"
    return text + f"<br>{level} interval: {_count(a)} to {_count(b)} {unit}"


def _bar_figure(release: "Release", schema: Schema | None) -> go.Figure:
    labels = [str(x) for x in release.labels]
    v, lo, hi = _arr(release.values), _arr(release.ci_low), _arr(release.ci_high)
    shown = _display_values(release)
    up = np.clip(np.maximum(hi, 0.0) - shown, 0.0, None)
    down = np.clip(shown - np.maximum(lo, 0.0), 0.0, None)
    clipped = np.isfinite(v) & (v < 0)
    unit, level = _count_unit(release, schema), _level(release.alpha)
    colours = [GREY if lab in GREY_BUCKETS else BLUE for lab in labels]
    text = ["" if c else _count(s) for s, c in zip(shown, clipped)]
    ticks = [f"{t}*" if c else t for t, c in zip(_tick_labels(labels), clipped)]
    hover = [_count_hover(lab, r, a, b, unit, level) for lab, r, a, b in zip(labels, v, lo, hi)]
    fig = go.Figure(go.Bar(
        x=labels, y=shown, marker=dict(color=colours, line=dict(width=0)),
        error_y=dict(type="data", symmetric=False, array=up, arrayminus=down, color="#333333", thickness=1.3,
                     width=4),
        customdata=np.column_stack([v, np.maximum(lo, 0.0), np.maximum(hi, 0.0)]),
        text=text, textposition="inside", insidetextanchor="start", hovertext=hover,
        hovertemplate="%{hovertext}<extra></extra>", name="Noisy count",
        width=0.5 if len(labels) == 1 else None,
    ))
    stat = release.query.get("stat")
    col = release.query.get("column")
    x_title = _with_unit(_col_label(schema, col), _col_unit(schema, col)) if stat == "histogram" else ""
    notes = ["* below 0 after noise, shown as 0" if clipped.any() else ""]
    _layout(fig, release.description, _subtitle(release, notes), x_title, f"Number of {unit}")
    fig.update_xaxes(type="category", tickmode="array", tickvals=labels, ticktext=ticks)
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(bargap=0.15 if stat == "histogram" else 0.4, uniformtext=dict(minsize=10, mode="hide"))
    return fig


def _date_count_figure(release: "Release", schema: Schema | None, pos: list[dt.date | None]) -> go.Figure:
    labels = [str(x) for x in release.labels]
    v, lo, hi = _arr(release.values), _arr(release.ci_low), _arr(release.ci_high)
    shown = _display_values(release)
    unit, level = _count_unit(release, schema), _level(release.alpha)
    idx = [i for i, d in enumerate(pos) if d is not None]
    xs = [pos[i] for i in idx]
    fig = go.Figure()
    band = [i for i in idx if math.isfinite(lo[i]) and math.isfinite(hi[i])]
    if band:
        fig.add_trace(go.Scatter(
            x=[pos[i] for i in band] + [pos[i] for i in reversed(band)],
            y=[max(hi[i], 0.0) for i in band] + [max(lo[i], 0.0) for i in reversed(band)],
            fill="toself", fillcolor=_rgba(BLUE, 0.18), line=dict(width=0), hoverinfo="skip",
            name=f"{level} interval", showlegend=False))
    clipped = [bool(math.isfinite(v[i]) and v[i] < 0) for i in idx]
    fig.add_trace(go.Scatter(
        x=xs, y=[shown[i] for i in idx], mode="lines+markers", name="Noisy count",
        line=dict(color=BLUE, width=2),
        marker=dict(size=6, color=BLUE, symbol=["circle-open" if c else "circle" for c in clipped]),
        customdata=[[v[i], max(lo[i], 0.0), max(hi[i], 0.0)] for i in idx],
        hovertext=[_count_hover(labels[i], v[i], lo[i], hi[i], unit, level) for i in idx],
        hovertemplate="%{hovertext}<extra></extra>"))
    notes = []
    for i, d in enumerate(pos):
        if d is None:
            a, b = _count_bounds(lo[i], hi[i]) if math.isfinite(lo[i]) and math.isfinite(hi[i]) else (lo[i], hi[i])
            notes.append(f"{labels[i]}: {_count(shown[i])} ({_count(a)} to {_count(b)})")
    if any(clipped):
        notes.append("open dots: below 0 after noise, shown as 0")
    col = release.query.get("column")
    c = _column(schema, col)
    date_unit = release.query.get("date_unit") or getattr(c, "bin_unit", "") or _date_unit_of(labels)
    x_title = _with_unit(_col_label(schema, col), f"per {date_unit}" if date_unit else "")
    _layout(fig, release.description, _subtitle(release, notes), x_title, f"Number of {unit}")
    fig.update_yaxes(rangemode="tozero")
    return fig


def _point_figure(release: "Release", schema: Schema | None) -> go.Figure:
    """Dot and interval per value (mean, quantile, grouped mean), horizontal, value annotated."""
    q = release.query
    labels = [str(x) for x in release.labels]
    v, lo, hi = _arr(release.values), _arr(release.ci_low), _arr(release.ci_high)
    col = q.get("column")
    unit = _col_unit(schema, col)
    level = _level(release.alpha)
    dec = _decimals(_median((hi - lo) / 2), _median(np.abs(v)))
    u = f" {_esc(unit)}" if unit else ""
    counts = release.extra.get("noisy_counts")
    weak = _uninformative(release, schema)
    nothing = not_enough_words(release, schema)
    single = len(labels) == 1
    hover, text = [], []
    for i, lab in enumerate(labels):
        h = f"<b>{_esc(lab)}</b><br>{_stat_word(q) or 'Value'}: {_num(v[i], dec)}{u}<br>{level} interval: " \
            f"{_num(lo[i], dec)} to {_num(hi[i], dec)}{u}"
        if counts is not None and i < len(counts):
            h += f"<br>Group size (noisy): {_count(float(counts[i]))} {_count_unit(release, schema)}"
        if weak[i]:
            h = f"<b>{_esc(lab)}</b><br>{nothing.capitalize()}: the {level} interval covers (nearly) the whole " \
                "public range, so no value is shown"
            if counts is not None and i < len(counts):
                h += f"<br>Group size (noisy): {_count(float(counts[i]))} {_count_unit(release, schema)}"
        hover.append(h)
        if weak[i]:
            text.append("")
        elif single:
            text.append(f"{_num(v[i], dec)}{u}  ({level}: {_num(lo[i], dec)} to {_num(hi[i], dec)})")
        else:
            text.append(_num(v[i], dec))
    colours = [GREY if lab in GREY_BUCKETS else BLUE for lab in labels]
    shown = np.where(weak, np.nan, v)                  # no dot, no number where nothing can be said
    fig = go.Figure(go.Scatter(
        x=shown, y=labels, mode="markers+text", text=text, textposition="top center",
        textfont=dict(size=FONT_SIZE + (1 if single else -1)),
        marker=dict(size=12 if single else 10, color=colours,
                    symbol=["circle-open" if w else "circle" for w in weak], line=dict(width=2, color=colours)),
        error_x=dict(type="data", symmetric=False, array=np.where(weak, 0, np.clip(hi - v, 0, None)),
                     arrayminus=np.where(weak, 0, np.clip(v - lo, 0, None)), color="#333333", thickness=1.6, width=6),
        customdata=np.column_stack([v, lo, hi]), hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        name=_stat_word(q) or "Value"))
    if any(weak):
        col_ = _column(schema, col)
        centre = (float(col_.lower) + float(col_.upper)) / 2 if col_ is not None and col_.kind == "numeric" else \
            float(np.nanmedian(np.where(np.isfinite(v), v, np.nan))) if np.isfinite(v).any() else 0.0
        idx = [i for i, w in enumerate(weak) if w]
        fig.add_trace(go.Scatter(x=[centre] * len(idx), y=[labels[i] for i in idx], mode="text",
                                 text=[nothing] * len(idx), textfont=dict(color="#6b6b6b", size=FONT_SIZE - 1),
                                 hovertext=[hover[i] for i in idx], hovertemplate="%{hovertext}<extra></extra>",
                                 showlegend=False, name=nothing))
    x_title = _with_unit(f"{_stat_word(q)} {_col_label(schema, col)}".strip(), unit)
    y_title = _col_label(schema, q.get("by")) if q.get("stat") == "grouped-mean" else ""
    notes = [f"groups marked '{nothing}': their interval covers (nearly) the whole public range" if any(weak) else ""]
    _layout(fig, release.description, _subtitle(release, notes), x_title, y_title)
    fig.update_yaxes(type="category", autorange="reversed", tickmode="array", tickvals=labels,
                     ticktext=_tick_labels(labels), showticklabels=not single)
    fig.update_layout(margin_l=24 if single else 64)
    return fig


WEAK_SHARE = 0.9   # an interval over >= 90% of the public range says nothing about the group


def _uninformative(release: "Release", schema: Schema | None = None) -> list[bool]:
    """Values that say nothing (post-processing of the release and the public schema only):
    a mean whose noisy count box reaches 0, or any mean/quantile whose interval covers at least
    WEAK_SHARE of the column's public range. Shown as 'not enough patients to estimate'."""
    n = len(release.labels)
    weak = [False] * n
    counts = release.extra.get("noisy_counts")
    if counts is None and release.extra.get("noisy_count") is not None:
        counts = [release.extra["noisy_count"]]
    a = release.extra.get("count_halfwidth")
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
    who = schema.rows_word if schema is not None else "records"
    return f"not enough {who} to estimate"


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


def _heatmap_figure(release: "Release", schema: Schema | None) -> go.Figure:
    axes = _crosstab_axes(release)
    if axes is None:
        return _bar_figure(release, schema)
    rows, cols = axes
    nr, nc = len(rows), len(cols)
    v, lo, hi = _arr(release.values), _arr(release.ci_low), _arr(release.ci_high)
    shown = _display_values(release)
    hw_extra = release.extra.get("halfwidth")
    hw = np.full(len(v), float(hw_extra)) if hw_extra is not None else (hi - lo) / 2
    unit, level = _count_unit(release, schema), _level(release.alpha)
    z = shown.reshape(nr, nc)
    unsure = (v - hw) <= 0                                   # the interval reaches 0: maybe nobody there
    text, custom = [], []
    for r in range(nr):
        trow, crow = [], []
        for c in range(nc):
            i = r * nc + c
            if unsure[i]:
                trow.append(f"≤{_count(max(v[i] + hw[i], 0.0))}")
            else:
                trow.append(_count(shown[i]))
            h = (f"<b>{_esc(rows[r])} × {_esc(cols[c])}</b><br>Noisy count: {_count(v[i])} {unit}"
                 + (" (below 0 after noise, shown as 0)" if v[i] < 0 else "")
                 + f"<br>± {_num(hw[i], 1)} ({level} interval)"
                 + ("<br>The interval includes 0: this cell may be empty" if unsure[i] else ""))
            crow.append([v[i], hw[i], h])
        text.append(trow)
        custom.append(crow)
    fig = go.Figure(go.Heatmap(
        z=z, x=cols, y=rows, text=text, texttemplate="%{text}", textfont=dict(size=FONT_SIZE - 1),
        customdata=custom, hovertemplate="%{customdata[2]}<extra></extra>", colorscale=_HEATMAP_SCALE,
        zmin=0, xgap=1, ygap=1, colorbar=dict(title=dict(text=unit.capitalize(), side="right"), thickness=14)))
    if unsure.any():   # grey veil over the cells whose interval includes 0
        fig.add_trace(go.Heatmap(z=np.where(unsure, 1.0, np.nan).reshape(nr, nc), x=cols, y=rows, showscale=False,
                                 colorscale=[[0, "rgba(200,200,200,0.65)"], [1, "rgba(200,200,200,0.65)"]],
                                 xgap=1, ygap=1, hoverinfo="skip"))
    q = release.query
    notes = [f"grey cells (≤N): the {level} interval includes 0, at most N {unit}" if unsure.any() else ""]
    _layout(fig, release.description, _subtitle(release, notes),
            _with_unit(_col_label(schema, q.get("by")), _col_unit(schema, q.get("by"))),
            _with_unit(_col_label(schema, q.get("column")), _col_unit(schema, q.get("column"))))
    fig.update_xaxes(type="category", tickmode="array", tickvals=cols, ticktext=_tick_labels(cols), showgrid=False)
    fig.update_yaxes(type="category", tickmode="array", tickvals=rows, ticktext=_tick_labels(rows),
                     autorange="reversed", showgrid=False)
    return fig


def describe_interval(release: "Release", i: int, schema: Schema | None = None) -> str:
    """The i-th interval in plain words, e.g. 'between 120 and 134 patients (95% interval)'."""
    lo, hi = _arr(release.ci_low)[i], _arr(release.ci_high)[i]
    level = _level(release.alpha)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval available"
    if _is_count(release):
        a, b = _count_bounds(lo, hi)
        return f"between {_count(a)} and {_count(b)} {_count_unit(release, schema)} ({level} interval)"
    unit = _col_unit(schema, release.query.get("column"))
    dec = _decimals((hi - lo) / 2, _arr(release.values)[i])
    text = f"between {_num(lo, dec)} and {_num(hi, dec)}{' ' + unit if unit else ''} ({level} interval"
    if _uninformative(release, schema)[i]:
        text += f"; {not_enough_words(release, schema)}: nothing more than the public range can be said"
    return text + ")"


# ------------------------------------------------------------------------------ table + files
def release_table(release: "Release", schema: Schema | None = None) -> pd.DataFrame:
    """One row per released value: label, value (raw, may be negative), shown (display value:
    counts clipped at 0), ci_low, ci_high (raw), extra per-statistic columns (crosstab: row, col;
    grouped mean: noisy_count), note (why a value is displayed differently, else '')."""
    v, lo, hi = _arr(release.values), _arr(release.ci_low), _arr(release.ci_high)
    shown = _display_values(release)
    n = len(release.labels)
    df = pd.DataFrame({"label": [str(x) for x in release.labels], "value": v, "shown": shown,
                       "ci_low": lo, "ci_high": hi})
    stat = release.query.get("stat")
    if stat == "crosstab" and (axes := _crosstab_axes(release)) is not None:
        rows, cols = axes
        df["row"] = [rows[i // len(cols)] for i in range(n)]
        df["col"] = [cols[i % len(cols)] for i in range(n)]
    counts = release.extra.get("noisy_counts")
    if stat == "grouped-mean" and counts is not None and len(counts) == n:
        df["noisy_count"] = _arr(counts)
    weak = _uninformative(release, schema)
    df.loc[np.asarray(weak, dtype=bool), "shown"] = np.nan
    interval_note = release.extra.get("interval")
    notes = []
    for i in range(n):
        if _is_count(release) and math.isfinite(v[i]) and v[i] < 0:
            notes.append(f"noisy count {v[i]:g} is below 0 because of the noise; shown as 0")
        elif weak[i]:
            notes.append(f"{not_enough_words(release, schema)}: the interval is (nearly) the whole public range; "
                         "the raw value is not an estimate")
        elif isinstance(interval_note, str) and interval_note:
            notes.append(f"interval: {interval_note}")
        else:
            notes.append("")
    df["note"] = notes
    return df


def display_table(release: "Release", schema: Schema | None = None) -> pd.DataFrame:
    """`release_table` for people: plain headers, counts and their intervals as whole numbers
    clipped at 0 (the raw values stay in the CSV/JSON downloads), others to 3 significant digits."""
    if release.query.get("stat") == "survival":
        from dashboard.survival_chart import median_table
        return median_table(release)
    df = release_table(release, schema)
    count = _is_count(release)
    lo = np.maximum(df["ci_low"], 0.0) if count else df["ci_low"]
    hi = np.maximum(df["ci_high"], 0.0) if count else df["ci_high"]
    fmt = (lambda v: f"{v:,.0f}" if math.isfinite(v) else "") if count else (
        lambda v: f"{v:.3g}" if math.isfinite(v) else "")
    weak = _uninformative(release, schema)
    out = pd.DataFrame({"": df["label"], "Value": [fmt(v) for v in df["shown"]],
                        f"{_level(release.alpha)} interval": [
                            "" if w or not math.isfinite(a) else f"{fmt(a)} to {fmt(b)}" for a, b, w in zip(lo, hi, weak)]})
    if "noisy_count" in df:
        out["Group size (noisy)"] = [f"{max(v, 0):,.0f}" for v in df["noisy_count"]]
    out["Note"] = df["note"]
    return out


def _neutralise(s: str) -> str:
    """Stop spreadsheets from running a text cell as a formula (leading ', OWASP CSV injection)."""
    return "'" + s if s.lstrip(" ").startswith(_FORMULA_PREFIXES) else s


def _csv_cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x)) if math.isfinite(x) else ""
    if isinstance(x, (dict, list, tuple)):
        x = json.dumps(_jsonable(x), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _neutralise(str(x))


def _metadata(release: "Release") -> dict[str, Any]:
    return {
        "dataset": release.dataset_id, "analyst": release.analyst, "statistic": release.query.get("stat"),
        "description": release.description, "query": release.query, "epsilon": float(release.epsilon),
        "delta": float(release.delta), "mechanism": release.mechanism, "noise": release.noise,
        "noise_scale": float(release.scale), "interval_level": round(1 - float(release.alpha), 10),
        "released_at": release.timestamp, "release_key": release.release_key,
    }


def release_csv_bytes(release: "Release", schema: Schema | None = None) -> bytes:
    """CSV (UTF-8 with BOM so spreadsheets read the labels right): the `release_table` columns,
    then the release metadata repeated as columns on every row. Text cells that a spreadsheet
    would run as a formula get a leading apostrophe; numbers stay numbers."""
    df = release_table(release, schema)
    meta = _metadata(release)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([_csv_cell(c) for c in list(df.columns) + list(meta)])
    for rec in df.itertuples(index=False):
        w.writerow([_csv_cell(x) for x in rec] + [_csv_cell(x) for x in meta.values()])
    return buf.getvalue().encode("utf-8-sig")


def rows_csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """CSV of plain rows (e.g. the ledger's audit trail), with the same cell safety as releases."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    cols = list(rows[0]) if rows else []
    w.writerow([_csv_cell(c) for c in cols])
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in cols])
    return buf.getvalue().encode("utf-8-sig")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (dt.date, dt.datetime)):
        return x.isoformat()
    return x


def release_json_bytes(release: "Release") -> bytes:
    """`release.to_dict()` as strict, pretty-printed UTF-8 JSON (non-finite numbers -> null);
    reads back with `Release.from_dict(json.loads(...))`."""
    return (json.dumps(_jsonable(release.to_dict()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
            ).encode("utf-8")


# -------------------------------------------------------------------- owner-only demonstrations
TRUE_NAME = "True value (not private)"


def compare_figure(labels: Sequence[str], truth: Sequence[float], noisy: Sequence[float],
                   ci_low: Sequence[float], ci_high: Sequence[float], title: str, *,
                   value_title: str = "Value", alpha: float = 0.05) -> go.Figure:
    """Truth next to one noisy draw (owner only). Noisy values are drawn raw (not clipped) to show
    what noise does; intervals on the noisy series. A single value is a dot plot."""
    labels = [str(x) for x in labels]
    t, v, lo, hi = _arr(truth), _arr(noisy), _arr(ci_low), _arr(ci_high)
    level = _level(alpha)
    dec = _decimals(_median((hi - lo) / 2), _median(np.abs(t)))
    noisy_hover = [f"<b>{_esc(lab)}</b><br>Private release: {_num(v[i], dec)}<br>{level} interval: "
                   f"{_num(lo[i], dec)} to {_num(hi[i], dec)}<br>True value: {_num(t[i], dec)}"
                   for i, lab in enumerate(labels)]
    true_hover = [f"<b>{_esc(lab)}</b><br>True value (not private): {_num(t[i], dec)}"
                  for i, lab in enumerate(labels)]
    err = dict(type="data", symmetric=False, array=np.clip(hi - v, 0, None), arrayminus=np.clip(v - lo, 0, None),
               color="#333333", thickness=1.3, width=4)
    fig = go.Figure()
    if len(labels) == 1:
        names = [TRUE_NAME, "Private release"]
        fig.add_trace(go.Scatter(x=t, y=[names[0]], mode="markers+text", name=TRUE_NAME,
                                 marker=dict(symbol="diamond", size=13, color=BLACK),
                                 text=[_num(t[0], dec)], textposition="top center",
                                 hovertext=true_hover, hovertemplate="%{hovertext}<extra></extra>"))
        fig.add_trace(go.Scatter(x=v, y=[names[1]], mode="markers+text", name="Private release (one noisy draw)",
                                 marker=dict(size=12, color=BLUE), error_x=err, text=[_num(v[0], dec)],
                                 textposition="top center", hovertext=noisy_hover,
                                 hovertemplate="%{hovertext}<extra></extra>"))
        _layout(fig, title, f"error bar: {level} interval of the private release", value_title, "", legend=True)
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=names[::-1])
        return fig
    fig.add_trace(go.Bar(x=labels, y=t, name=TRUE_NAME, hovertext=true_hover,
                         hovertemplate="%{hovertext}<extra></extra>",
                         marker=dict(color="#FFFFFF", line=dict(color=BLACK, width=1.2),
                                     pattern=dict(shape="/", fgcolor=BLACK, size=6, solidity=0.25))))
    fig.add_trace(go.Bar(x=labels, y=v, name="Private release (one noisy draw)", error_y=err,
                         marker=dict(color=BLUE), hovertext=noisy_hover, hovertemplate="%{hovertext}<extra></extra>"))
    _layout(fig, title, f"error bars: {level} interval of the private release", "", value_title, legend=True)
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05)
    fig.update_xaxes(type="category", tickmode="array", tickvals=labels, ticktext=_tick_labels(labels))
    return fig


def spread_figure(sim: "Simulation", title: str, *, y_title: str = "Released value") -> go.Figure:
    """Distribution of simulated releases per label (owner only): box = middle 50% of draws,
    whiskers = middle 95%, line = median; the true value as a diamond. Box statistics are computed
    here so the figure stays small however many draws there are."""
    labels = [str(x) for x in sim.labels]
    vals = np.asarray(sim.values, dtype=float).reshape(-1, len(labels)) if len(labels) else np.empty((0, 0))
    if vals.size == 0:
        return _empty(title, "No simulated draws.")
    with np.errstate(all="ignore"):
        qs = np.nanquantile(vals, [0.025, 0.25, 0.5, 0.75, 0.975], axis=0)
        mean = np.nanmean(vals, axis=0)
    ok = np.isfinite(qs).all(axis=0)
    keep = [i for i in range(len(labels)) if ok[i]]
    truth = _arr(sim.truth)
    fig = go.Figure()
    fig.add_trace(go.Box(
        x=[labels[i] for i in keep], lowerfence=qs[0, keep], q1=qs[1, keep], median=qs[2, keep], q3=qs[3, keep],
        upperfence=qs[4, keep], mean=mean[keep], name="Simulated private releases",
        marker=dict(color=BLUE), fillcolor=_rgba(BLUE, 0.25), line=dict(color=BLUE, width=1.5)))
    tk = [i for i in range(len(labels)) if i < len(truth) and math.isfinite(truth[i])]
    fig.add_trace(go.Scatter(
        x=[labels[i] for i in tk], y=truth[tk], mode="markers", name=TRUE_NAME,
        marker=dict(symbol="diamond", size=11, color=VERMILLION, line=dict(color=BLACK, width=1)),
        hovertext=[f"<b>{_esc(labels[i])}</b><br>True value (not private): {truth[i]:,.4g}" for i in tk],
        hovertemplate="%{hovertext}<extra></extra>"))
    n = vals.shape[0]
    cov = sim.coverage
    sub = f"{n:,} draws at ε = {sim.epsilon:.4g} · box: middle 50%, whiskers: middle 95%"
    if math.isfinite(cov):
        sub += f" · intervals held the truth {cov:.1%} of the time"
    _layout(fig, title, sub, "", y_title, legend=True)
    fig.update_xaxes(type="category", tickmode="array", tickvals=labels, ticktext=_tick_labels(labels))
    return fig


from dashboard.tradeoff_charts import size_figure, tradeoff_figure  # noqa: E402,F401  (moved there)


def timeseries_figure(x_labels: Sequence[str], series: Mapping[str, tuple[Sequence[float], Sequence[float],
                                                                          Sequence[float]]],
                      title: str, y_title: str, *, x_title: str = "", clip_zero: bool = False,
                      alpha: float = 0.05) -> go.Figure:
    """Several lines (e.g. one per modality) with interval bands. Date-like labels (YYYY-MM,
    YYYY-MM-DD, YYYY-Qn, YYYY) become a time axis; 'missing'/'other' points are then left out.
    `clip_zero=True` draws values and bands of counts at max(., 0) (raw values stay in the hover)."""
    labels = [str(x) for x in x_labels]
    pos = _date_positions(labels, allow_year=True)
    keep = [i for i in range(len(labels)) if pos is None or pos[i] is not None]
    xs = [pos[i] if pos is not None else labels[i] for i in keep]
    level = _level(alpha)
    fig = go.Figure()
    for k, (name, (vals, lo, hi)) in enumerate(series.items()):
        v, a, b = _arr(vals), _arr(lo), _arr(hi)
        show, a2, b2 = (np.maximum(v, 0), np.maximum(a, 0), np.maximum(b, 0)) if clip_zero else (v, a, b)
        c = _series_colour(k, name)
        band = [j for j, i in enumerate(keep) if math.isfinite(a2[i]) and math.isfinite(b2[i])]
        if band:
            fig.add_trace(go.Scatter(
                x=[xs[j] for j in band] + [xs[j] for j in reversed(band)],
                y=[b2[keep[j]] for j in band] + [a2[keep[j]] for j in reversed(band)],
                fill="toself", fillcolor=_rgba(c, 0.15), line=dict(width=0), hoverinfo="skip",
                legendgroup=str(name), showlegend=False, name=f"{_esc(name)} {level} interval"))
        dec = _decimals(_median((b - a) / 2), _median(np.abs(v)))
        hover = [f"<b>{_esc(name)}</b> · {_esc(labels[i])}<br>{_num(v[i], dec)} "
                 f"({level} interval {_num(a2[i], dec)} to {_num(b2[i], dec)})"
                 + (" · below 0 after noise, shown as 0" if clip_zero and v[i] < 0 else "")
                 for i in keep]
        fig.add_trace(go.Scatter(x=xs, y=[show[i] for i in keep], mode="lines+markers", name=_esc(name),
                                 legendgroup=str(name), line=dict(color=c, width=2), marker=dict(color=c, size=6),
                                 customdata=[[v[i], a[i], b[i]] for i in keep], hovertext=hover,
                                 hovertemplate="%{hovertext}<extra></extra>"))
    _layout(fig, title, f"bands: {level} intervals", x_title, y_title, legend=True)
    if pos is None:
        fig.update_xaxes(type="category")
    if clip_zero:
        fig.update_yaxes(rangemode="tozero")
    return fig


def _ts(x: Any) -> pd.Timestamp | None:
    try:
        t = pd.Timestamp(x)
    except (TypeError, ValueError):
        return None
    if pd.isna(t):
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def spend_figure(entries: Sequence[Mapping[str, Any]], *, title: str = "Privacy budget spent") -> go.Figure:
    """Cumulative epsilon spent per analyst from ledger rows (keys ts, kind, analyst, epsilon;
    only kind 'reserve' is spending), as a step line; each analyst's budget total ('budget'
    rows, latest value wins) as a dashed step line in the same colour. Analysts are keyed by
    'analyst · dataset' when the rows span several datasets."""
    rows = []
    for e in entries:
        kind = e.get("kind")
        t = _ts(e.get("ts"))
        try:
            eps = float(e.get("epsilon"))
        except (TypeError, ValueError):
            eps = float("nan")
        if kind in ("reserve", "budget") and t is not None and math.isfinite(eps):
            rows.append((t, kind, str(e.get("analyst", "")), str(e.get("dataset", "") or ""), eps))
    if not rows:
        return _empty(title, "No budget spent yet.")
    multi = len({r[3] for r in rows}) > 1
    key = (lambda r: f"{r[2]} · {r[3]}") if multi else (lambda r: r[2])
    end = max(r[0] for r in rows)
    groups = list(dict.fromkeys(key(r) for r in sorted(rows, key=lambda r: r[0])))
    fig = go.Figure()
    for k, g in enumerate(groups):
        c = PALETTE[k % len(PALETTE)]
        mine = sorted((r for r in rows if key(r) == g), key=lambda r: r[0])
        res = [r for r in mine if r[1] == "reserve"]
        spent = np.cumsum([r[4] for r in res]).tolist()
        xs = [mine[0][0]] + [r[0] for r in res] + [end]
        ys = [0.0] + spent + [spent[-1] if spent else 0.0]
        hover = ["start: 0"] + [f"+{r[4]:.4g} → {s:.4g} spent" for r, s in zip(res, spent)] + \
                [f"{ys[-1]:.4g} spent"]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", line_shape="hv", name=f"{_esc(g)} spent",
                                 legendgroup=g, line=dict(color=c, width=2.5),
                                 marker=dict(size=[0] + [7] * len(res) + [0], color=c),
                                 hovertext=hover,
                                 hovertemplate=f"<b>{_esc(g)}</b><br>%{{x}}<br>%{{hovertext}}<extra></extra>"))
        bud = [r for r in mine if r[1] == "budget"]
        if bud:
            bx = [r[0] for r in bud] + [end]
            by = [r[4] for r in bud] + [bud[-1][4]]
            fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", line_shape="hv", name=f"{_esc(g)} budget",
                                     legendgroup=g, line=dict(color=c, width=1.5, dash="dash"),
                                     hovertemplate=f"<b>{_esc(g)}</b><br>budget ε %{{y:.4g}}<extra></extra>"))
    _layout(fig, title, "", "Time (UTC)", "Privacy budget ε (cumulative)", legend=True)
    fig.update_yaxes(rangemode="tozero")
    return fig


def dot_interval_figure(labels: Sequence[str], values: Sequence[float], ci_low: Sequence[float],
                        ci_high: Sequence[float], title: str, x_title: str = "", alpha: float = 0.05,
                        public_range: tuple[float, float] | None = None) -> go.Figure:
    """Dot and interval per label, for values assembled from several releases (e.g. medians by group).
    With the column's `public_range`, values whose interval covers WEAK_SHARE of it get no dot and
    no number ('not enough patients to estimate')."""
    labels = [str(x) for x in labels]
    if not labels:
        return _empty(title, "Nothing to show")
    v, lo, hi = _arr(values), _arr(ci_low), _arr(ci_high)
    if public_range is not None:
        weak = (hi - lo) >= WEAK_SHARE * (public_range[1] - public_range[0])
        keep = [i for i, w in enumerate(weak) if not w]
        gone = [labels[i] for i, w in enumerate(weak) if w]
        fig = dot_interval_figure([labels[i] for i in keep], v[keep], lo[keep], hi[keep], title, x_title, alpha)
        if gone:
            mid = (public_range[0] + public_range[1]) / 2
            fig.add_trace(go.Scatter(x=[mid] * len(gone), y=[_esc(x) for x in gone], mode="text",
                                     text=["not enough patients to estimate"] * len(gone),
                                     textfont=dict(color="#6b6b6b"), hoverinfo="skip", showlegend=False))
            fig.update_yaxes(categoryorder="array", categoryarray=[_esc(x) for x in labels])
        return fig
    dec = _decimals(_median((hi - lo) / 2), _median(np.abs(v)))
    level = _level(alpha)
    hover = [f"<b>{_esc(lab)}</b><br>{_num(v[i], dec)} ({level} interval {_num(lo[i], dec)} to {_num(hi[i], dec)})"
             for i, lab in enumerate(labels)]
    fig = go.Figure(go.Scatter(
        x=v, y=[_esc(x) for x in labels], mode="markers+text", text=[_num(x, dec) for x in v],
        textposition="top center", marker=dict(size=11, color=BLUE),
        error_x=dict(type="data", symmetric=False, array=np.maximum(hi - v, 0), arrayminus=np.maximum(v - lo, 0),
                     color=BLUE, thickness=2, width=6),
        hovertext=hover, hoverinfo="text"))
    _layout(fig, title, f"{level} intervals", x_title, "")
    fig.update_yaxes(autorange="reversed")
    return fig


from dashboard import survival_chart as _survival_chart  # noqa: E402,F401  (registers the survival figure)
