"""Figures and words of the owner-only Trade-off page: error against epsilon, and against cohort size.

Pure functions (no Streamlit, no OpenDP): numbers in, Plotly figures or plain text out. The
privacy levels drawn are the ones analysts pick in Explore (`dashboard.widgets.PRESETS`), passed
in by the page, so the two pages always show the same names and values.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

COUNT_STATS = ("count", "histogram", "crosstab")
GROUPED_STATS = ("grouped-mean", "grouped-quantile")
EXPECTED_NAME = "Expected (public preview)"
SIMULATED_NAME = "Simulated"


def _c():
    """dashboard.charts, imported on use: it re-exports this module's builders (no import cycle)."""
    from dashboard import charts
    return charts


def _finite(xs: Sequence[float] | None) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in ([] if xs is None else xs)], dtype=float)


def _log_range(values: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """(low, high) of a log axis holding every positive finite value with some room, or None."""
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in values]) if values else np.array([])
    pos = v[np.isfinite(v) & (v > 0)]
    if not len(pos):
        return None
    lo, hi = float(pos.min()), float(pos.max())
    if hi <= lo * 4:                                   # a flat series: at least a factor 16 shown
        mid = math.sqrt(lo * hi)
        lo, hi = mid / 4, mid * 4
    return lo / 2.5, hi * 1.6


def _log_title(y_title: str) -> str:
    """'95% error (patients), median over bars' -> '95% error (patients, log scale), median over bars'."""
    if "(" in y_title and ")" in y_title:
        i = y_title.index(")")
        return y_title[:i] + ", log scale" + y_title[i:]
    return y_title + " (log scale)"


def has_zero(values) -> bool:
    """Any error of exactly 0 among `values` (drawn as ▽ at the bottom of a log axis)."""
    v = _finite(values)
    return bool(np.any(np.isfinite(v) & (v <= 0)))


def tradeoff_figure(epsilons: Sequence[float], analytic: Sequence[float] | None, empirical: Sequence[float] | None,
                    presets: Mapping[str, float] | None = None, y_title: str = "95% error", *,
                    title: str = "Accuracy against privacy budget", log_y: bool = False) -> go.Figure:
    """Expected (analytic) error as a line and simulated (empirical) error as markers against
    epsilon on a log axis, with a dashed line at each preset (name -> epsilon, e.g. Explore's
    `PRESETS`), labelled with its name. The line is drawn through the epsilons where the expected
    error is a finite number only, and left out when there is none.

    `log_y`: the error on a log axis too, so the preset region is as readable as the smallest
    epsilons (on a linear axis the errors at epsilon 0.01 squash everything from 0.1 up to 0);
    its range holds every positive value. An error of exactly 0 (e.g. counts at epsilon 10) has
    no place on a log axis: it is drawn at the bottom edge (open triangle; hover says 0) and
    the axis title says so."""
    c = _c()
    eps = _finite(epsilons)
    fig = go.Figure()
    a = _finite(analytic) if analytic is not None else np.full(len(eps), np.nan)
    e = _finite(empirical) if empirical is not None else np.full(len(eps), np.nan)
    ok_x = np.isfinite(eps) & (eps > 0)
    rng = _log_range([a[ok_x], e[ok_x]]) if log_y else None
    floor = rng[0] * 1.25 if rng else 0.0

    def shown(y: np.ndarray) -> np.ndarray:
        return np.where(y > 0, y, floor) if rng else y

    zeros = False
    m = np.isfinite(a) & ok_x
    if m.any():
        zeros |= bool(rng and (a[m] <= 0).any())
        fig.add_trace(go.Scatter(x=eps[m], y=shown(a[m]), customdata=a[m], mode="lines", name=EXPECTED_NAME,
                                 line=dict(color=c.BLUE, width=2.5),
                                 hovertemplate="ε = %{x:.3g}<br>expected: %{customdata:,.4g}<extra></extra>"))
    if empirical is not None:
        m = np.isfinite(e) & ok_x
        zero = rng is not None and e[m] <= 0
        zeros |= bool(np.any(zero))
        fig.add_trace(go.Scatter(x=eps[m], y=shown(e[m]), customdata=e[m], mode="markers", name=SIMULATED_NAME,
                                 marker=dict(color=c.ORANGE, size=9, line=dict(color=c.BLACK, width=1),
                                             symbol=np.where(zero, "triangle-down-open", "circle").tolist()
                                             if np.any(zero) else "circle"),
                                 hovertemplate="ε = %{x:.3g}<br>simulated: %{customdata:,.4g}<extra></extra>"))
    levels = sorted(((str(k), float(v)) for k, v in (presets or {}).items() if v is not None and float(v) > 0),
                    key=lambda kv: kv[1])
    for i, (name, t) in enumerate(levels):
        fig.add_shape(type="line", xref="x", yref="paper", x0=t, x1=t, y0=0, y1=1,
                      line=dict(color=c.GREY, width=1.5, dash="dash"))
        fig.add_annotation(x=math.log10(t), xref="x", y=0.99 - 0.08 * i, yref="paper", yanchor="top",
                           xanchor="left", xshift=3, showarrow=False, text=c._esc(name),
                           font=dict(size=c.FONT_SIZE - 2, color="#444444"), bgcolor="rgba(255,255,255,0.8)")
    if rng:   # short enough for the vertical axis at 1400x900: the caption explains the triangles
        y_title = _log_title(y_title) + ("; ▽ = 0" if zeros else "")
    c._layout(fig, title, "", "Privacy budget ε (log scale)", y_title, legend=True)
    fig.update_xaxes(type="log")
    if rng:
        fig.update_yaxes(type="log", range=[math.log10(rng[0]), math.log10(rng[1])])
    else:
        fig.update_yaxes(rangemode="tozero")
    return fig


def tradeoff_y_title(stat: str, unit: str = "", *, per_value: bool = False) -> str:
    """Axis title of the error-against-epsilon chart: the unit of the released numbers, and how
    several values (bars, groups) are summarised."""
    unit = "patients" if stat in COUNT_STATS else unit
    text = "95% error" + (f" ({unit})" if unit else "")
    if stat in GROUPED_STATS:
        text += ", median over groups"
    elif per_value:
        text += ", median over bars"
    return text


def _eps_list(xs: Sequence[float]) -> str:
    return ", ".join(f"{x:g}" for x in xs)


def tradeoff_caption(epsilons: Sequence[float], analytic: Sequence[float] | None, *, draws: int, basis: str,
                     missing: str = "", presets: Mapping[str, float] | None = None, stat: str = "",
                     zeros: bool = False) -> str:
    """What the chart shows, true to what is drawn: the line is described only where it exists,
    and where it is missing the caption says at which epsilons and why."""
    eps = _finite(epsilons)
    a = _finite(analytic) if analytic is not None else np.full(len(eps), np.nan)
    drawn = np.isfinite(a)
    parts = []
    if drawn.all() and len(eps):
        parts.append(f"Line: expected 95% error from the release's public preview: {basis}.")
    elif drawn.any():
        parts.append(f"Line: expected 95% error from the release's public preview: {basis}. It is not drawn at ε "
                     f"{_eps_list(eps[~drawn])}" + (f": {missing}." if missing else "."))
    else:
        parts.append("No expected-error line: " + (missing or "the preview gives no accuracy for this statistic")
                     + ".")
    several = " (the median over the groups that have patients)" if stat in GROUPED_STATS else (
        " (the median over the bars)" if stat in ("histogram", "crosstab") else "")
    parts.append(f"Dots: 95th percentile of the error over {int(draws):,} simulated releases per ε on the true "
                 f"data{several}: OpenDP's own noise, nothing spent.")
    if zeros:
        parts.append("▽ at the bottom edge: an error of exactly 0, which has no place on the log axis.")
    if presets:
        parts.append("Dashed lines: the privacy levels offered in Explore ("
                     + ", ".join(str(k) for k, _ in sorted(presets.items(), key=lambda kv: kv[1])) + ").")
    return " ".join(parts)


def size_y_title(stat: str, *, true_mean: float | None = None, unit: str = "") -> str:
    """Axis title of the relative-error-against-size chart: relative to what."""
    if stat in ("mean", "grouped-mean"):
        if true_mean is None or not math.isfinite(true_mean):
            return "95% error relative to the true mean"
        u = f" {unit}" if unit else ""
        return f"95% error relative to the true mean ({true_mean:,.3g}{u})"
    if stat in ("quantile", "grouped-quantile"):
        return "95% error in ranks, as a share of the patients"
    if stat == "count":
        return "95% error relative to the number of patients"
    return "95% error of each count, relative to the number of patients"


def size_figure(sizes: Sequence[float], rel_errors: Sequence[float] | Mapping[str, Sequence[float]], title: str, *,
                x_title: str = "Cohort size (patients)", y_title: str = "Relative error (95%)") -> go.Figure:
    """Relative error against cohort size, log-log. `rel_errors` may map a series name (e.g.
    'ε = 0.25') to its values to draw several lines."""
    c = _c()
    x = c._arr(sizes)
    series = dict(rel_errors) if isinstance(rel_errors, Mapping) else {"Relative error": rel_errors}
    fig = go.Figure()
    for i, (name, ys) in enumerate(series.items()):
        y = c._arr(ys)
        m = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        col = c._series_colour(i, name)
        fig.add_trace(go.Scatter(x=x[m], y=y[m], mode="lines+markers", name=c._esc(name),
                                 line=dict(color=col, width=2), marker=dict(color=col, size=7),
                                 hovertemplate=f"{c._esc(name)}<br>size %{{x:,.0f}}: %{{y:.2~p}}<extra></extra>"))
    c._layout(fig, title, "", x_title, y_title, legend=len(series) > 1)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", tickformat=".2~p")
    return fig
