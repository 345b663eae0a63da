"""Count figures: bars for a count or a histogram, a line with its interval band for date bins.
Noisy counts below 0 are drawn at 0 (the raw value stays in the hover); intervals clipped at 0.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.common import (BLUE, GREY, GREY_BUCKETS, _arr, _col_label, _col_unit, _column, _count,
                                      _count_bounds, _count_unit, _date_unit_of, _display_values, _esc, _layout,
                                      _level, _rgba, _subtitle, _tick_labels, _with_unit)
from data.schema import Schema

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.release import Release


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
