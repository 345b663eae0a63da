"""Dot-and-interval figures: one release's means and quantiles (`_point_figure`), and values
assembled from several releases (`dot_interval_figure`). Values whose interval covers (nearly)
the whole public range are shown as 'not enough patients (or exams, ...) to estimate'.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.common import (BLUE, FONT_SIZE, GREY, GREY_BUCKETS, WEAK_SHARE, _arr, _col_label, _col_unit,
                                      _column, _count, _count_unit, _decimals, _empty, _esc, _layout, _level, _median,
                                      _num, _sentence, _stat_word, _subtitle, _tick_labels, _uninformative, _with_unit,
                                      not_enough_words, on_bound)
from data.schema import Schema

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.release import Release


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
    bound = on_bound(release, schema)      # weak too, but their interval says something: drawn in grey
    col_ = _column(schema, col)
    nothing = not_enough_words(release, schema)
    single = len(labels) == 1
    label = _col_label(schema, col)
    what = f"{_stat_word(q)} {_sentence(label) if _stat_word(q) else label}".strip() or "Value"  # Median PSA
    hover, text = [], []
    for i, lab in enumerate(labels):
        if bound[i]:    # clamped to a public bound: the interval only
            edge = col_.lower if v[i] <= col_.lower + 1e-9 else col_.upper
            hover.append(f"<b>{_esc(lab)}</b><br>{nothing.capitalize()}: the estimate sits on the public bound "
                         f"{edge:g}{u} (clamped), so the release gives only its {level} interval, "
                         f"{lo[i]:.3g} to {hi[i]:.3g}{u}")
            text.append("")
            continue
        if weak[i]:     # no value, no group size: nothing can be said of this group
            hover.append(f"<b>{_esc(lab)}</b><br>{nothing.capitalize()}: the {level} interval covers (nearly) the "
                         "whole public range, so no value is shown")
            text.append("")
            continue
        h = f"<b>{_esc(lab)}</b><br>{_esc(what)}: {_num(v[i], dec)}{u}<br>{level} interval: " \
            f"{_num(lo[i], dec)} to {_num(hi[i], dec)}{u}"
        if counts is not None and i < len(counts):
            h += f"<br>Group size (noisy): {_count(float(counts[i]))} {_count_unit(release, schema)}"
        hover.append(h)
        if single:
            word = _stat_word(q)
            text.append(f"{word + ' ' if word else ''}{_num(v[i], dec)}{u}  ({level}: {_num(lo[i], dec)} to "
                        f"{_num(hi[i], dec)})")
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
        name=_esc(_with_unit(what, unit))))
    for i in (i for i, b in enumerate(bound) if b):
        fig.add_trace(go.Scatter(x=[lo[i], hi[i]], y=[labels[i]] * 2, mode="lines+text",
                                 line=dict(color="#9a9a9a", width=2), textposition="top center",
                                 text=["", f"  {nothing} ({level} interval {lo[i]:.3g} to {hi[i]:.3g}{u})"],
                                 textfont=dict(color="#6b6b6b", size=FONT_SIZE - 1), hovertext=[hover[i]] * 2,
                                 hovertemplate="%{hovertext}<extra></extra>", showlegend=False, name=nothing))
    silent = [w and not b for w, b in zip(weak, bound)]
    if any(silent):
        ok = ~np.asarray(weak) & np.isfinite(lo) & np.isfinite(hi)
        if ok.any():       # the middle of what is drawn, so the words are not cut at the plot's edge
            centre = (float(np.min(lo[ok])) + float(np.max(hi[ok]))) / 2
        elif col_ is not None and col_.kind == "numeric":
            centre = (float(col_.lower) + float(col_.upper)) / 2
        else:
            centre = float(np.nanmedian(np.where(np.isfinite(v), v, np.nan))) if np.isfinite(v).any() else 0.0
        idx = [i for i, w in enumerate(silent) if w]
        fig.add_trace(go.Scatter(x=[centre] * len(idx), y=[labels[i] for i in idx], mode="text",
                                 text=[nothing] * len(idx), textfont=dict(color="#6b6b6b", size=FONT_SIZE - 1),
                                 hovertext=[hover[i] for i in idx], hovertemplate="%{hovertext}<extra></extra>",
                                 showlegend=False, name=nothing))
    x_title = _with_unit(what if what != "Value" else "", unit)
    y_title = _col_label(schema, q.get("by")) if q.get("stat") in ("grouped-mean", "grouped-quantile") else ""
    notes = [f"'{nothing}': interval ≈ whole public range" if any(silent) else "",
             "grey: estimate on a public bound, interval only" if any(bound) else ""]
    _layout(fig, release.description, _subtitle(release, notes), x_title, y_title)
    fig.update_yaxes(type="category", autorange="reversed", tickmode="array", tickvals=labels,
                     ticktext=_tick_labels(labels), showticklabels=not single)
    fig.update_layout(margin_l=24 if single else 64)
    return fig


def dot_interval_figure(labels: Sequence[str], values: Sequence[float], ci_low: Sequence[float],
                        ci_high: Sequence[float], title: str, x_title: str = "", alpha: float = 0.05,
                        public_range: tuple[float, float] | None = None, who: str = "patients",
                        percent: bool = False) -> go.Figure:
    """Dot and interval per label, for values assembled from several releases (e.g. medians by group).
    With the column's `public_range`, values whose interval covers WEAK_SHARE of it get no dot and
    no number ('not enough {who} to estimate'); their labels stay on the y axis. `percent` shows
    shares (0-1) as percentages on the axis, the labels and the hover."""
    labels = [str(x) for x in labels]
    if not labels:
        return _empty(title, "Nothing to show")
    v, lo, hi = _arr(values), _arr(ci_low), _arr(ci_high)
    if public_range is not None:
        span = float(public_range[1]) - float(public_range[0])
        weak = ~(np.isfinite(lo) & np.isfinite(hi)) | ((hi - lo) >= WEAK_SHARE * span)
    else:
        weak = np.zeros(len(labels), dtype=bool)
    if percent:
        ok = ~weak & np.isfinite(hi - lo)
        dec = 0 if not ok.any() or _median((hi - lo)[ok] * 50) >= 1 else 1     # 52%, or 52.3% when narrow

        def fmt(x: float) -> str:
            return f"{_num(100 * x, dec)}%" if np.isfinite(x) else ""
    else:
        ok = ~weak
        dec = _decimals(_median((hi - lo)[ok] / 2), _median(np.abs(v[ok]))) if ok.any() else 1

        def fmt(x: float) -> str:
            return _num(x, dec)
    level = _level(alpha)
    nothing = f"not enough {who} to estimate"
    ys = [_esc(x) for x in labels]
    what = _esc(x_title or title)           # e.g. 'Median report turnaround (hours)': the hover says what it is
    hover = [f"<b>{_esc(lab)}</b><br>{nothing.capitalize()}: the {level} interval covers (nearly) the whole "
             "public range, so no value is shown" if weak[i] else
             f"<b>{_esc(lab)}</b><br>{what}: {fmt(v[i])} ({level} interval {fmt(lo[i])} to {fmt(hi[i])})"
             for i, lab in enumerate(labels)]
    fig = go.Figure(go.Scatter(
        x=np.where(weak, np.nan, v), y=ys, mode="markers+text",
        text=["" if weak[i] else fmt(x) for i, x in enumerate(v)],
        textposition="top center", marker=dict(size=11, color=BLUE),
        error_x=dict(type="data", symmetric=False, array=np.where(weak, 0, np.maximum(hi - v, 0)),
                     arrayminus=np.where(weak, 0, np.maximum(v - lo, 0)), color=BLUE, thickness=2, width=6),
        hovertext=hover, hoverinfo="text", showlegend=False, name=what))
    if weak.any():
        drawn = ~weak & np.isfinite(lo) & np.isfinite(hi)
        mid = ((float(np.min(lo[drawn])) + float(np.max(hi[drawn]))) / 2 if drawn.any()   # inside the plot
               else (float(public_range[0]) + float(public_range[1])) / 2)
        idx = [i for i, w in enumerate(weak) if w]
        fig.add_trace(go.Scatter(x=[mid] * len(idx), y=[ys[i] for i in idx], mode="text",
                                 text=[nothing] * len(idx), textfont=dict(color="#6b6b6b"),
                                 hovertext=[hover[i] for i in idx], hoverinfo="text", showlegend=False,
                                 name=nothing))
    _layout(fig, title, f"{level} intervals", x_title, "")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=ys, autorange="reversed")
    if percent:
        fig.update_xaxes(tickformat=".0%")
    if public_range is not None and weak.all():       # nothing to centre on: show the public range
        fig.update_xaxes(range=[float(public_range[0]), float(public_range[1])])
    return fig
