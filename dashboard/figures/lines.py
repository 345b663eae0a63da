"""Line figures over time: several series with interval bands (`timeseries_figure`) and the
privacy budget spent per analyst from ledger rows (`spend_figure`).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.common import (PALETTE, _arr, _date_positions, _decimals, _empty, _esc, _layout, _level,
                                      _median, _num, _rgba, _series_colour)


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
