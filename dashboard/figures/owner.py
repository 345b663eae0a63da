"""Owner-only demonstrations: the true value next to one noisy draw, and the spread of simulated
releases. They show true (not private) values: the data owner's pages only.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.common import (BLACK, BLUE, VERMILLION, _arr, _decimals, _empty, _esc, _layout, _level,
                                      _median, _num, _rgba, _tick_labels)

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.simulate import Simulation


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
