"""Crosstab heatmap: noisy counts per (row, column) cell; cells whose interval includes 0 are
veiled in grey and written as '<=N'.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.bars import _bar_figure
from dashboard.figures.common import (FONT_SIZE, _HEATMAP_SCALE, _arr, _col_label, _col_unit, _count, _count_unit,
                                      _crosstab_axes, _display_values, _esc, _layout, _level, _num, _subtitle,
                                      _tick_labels, _with_unit)
from data.schema import Schema

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.release import Release


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
